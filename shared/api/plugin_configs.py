"""`pluginConfigs`: which plugins a deployment's bot has, and their settings (validated by schema).
PUT and PATCH keep what they do not name (shared/deploy/configs.py)."""
from __future__ import annotations

from functools import cache
from typing import Annotated, Any, Optional

from pydantic import BaseModel, ConfigDict, Field, StrictBool, ValidationError, create_model, model_validator

from shared import plan_limits, repos
from shared.api.inputs import Omittable, Strict
from shared.deploy import access, catalog, configs
from shared.errors import Conflict, Invalid, validation_error
from shared.http import Api, Request, list_of, precondition
from shared.models import PluginConfig

api = Api("pluginConfigs", "Plugins of a deployment's bot")


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class PluginWrite(Strict):
    enabled: StrictBool
    config: Omittable[dict[str, Any]] = Field(None, description="the plugin's settings, replaced whole; "
                                                    "omitted: the stored ones are kept (defaults for a new one)")


class PluginPatch(Strict):
    model_config = ConfigDict(json_schema_extra={"anyOf": [{"required": ["enabled"]}, {"required": ["config"]}]})
    enabled: Omittable[StrictBool] = None
    config: Omittable[dict[str, Any]] = Field(None, description="merged into the stored settings; a field set to "
                                                                "null goes back to its default")

    @model_validator(mode="after")
    def _something(self):
        if self.enabled is None and self.config is None:
            raise ValueError("give enabled, config or both")
        return self


@cache
def _partial(schema: type[BaseModel]) -> type[BaseModel]:
    """A PATCH's config: the plugin's settings, each optional, null meaning its default."""
    fields: dict[str, Any] = {}
    for name, f in schema.model_fields.items():
        optional: Any = Optional[f.annotation]  # noqa: UP045  (a type built at run time)
        fields[name] = (Annotated[(optional, *f.metadata)] if f.metadata else optional,
                        Field(None, description=f.description))
    return create_model(f"{schema.__name__}Patch", __config__=schema.model_config, **fields)


def _bodies(base: type[BaseModel], partial: bool) -> tuple[str, dict]:
    """The document's body per plugin (Route.variants): `config` is that plugin's settings."""
    def body(schema):
        config = _partial(schema) if partial else schema
        return create_model(f"{base.__name__}_{schema.__name__}", __base__=base,
                            config=(config, Field(None, description=base.model_fields["config"].description)))
    models = {schema: body(schema) for schema in {p.schema for p in catalog.PLUGINS.values()}}
    return "pluginId", {pid: models[p.schema] for pid, p in catalog.PLUGINS.items()}


def _check_config(plugin_id: str, config: dict | None, merge: bool) -> None:
    """What the client sent, checked alone (422); the settings it makes together with the stored ones are
    checked by the write (a 409 then: the request is valid, the stored state does not allow it)."""
    if config is None:
        return
    schema = catalog.PLUGINS[plugin_id].schema
    try:
        (_partial(schema) if merge else schema).model_validate(config)
    except ValidationError as exc:
        raise validation_error(exc, "config") from None


class PluginInfo(BaseModel):
    id: str
    name: str
    description: str
    keys: list[str] = Field(description="API keys it always needs (apiKeys)")
    optionalKeys: list[str] = Field(description="API keys it uses when set (a Drive folder needs the Drive ones)")
    providerKeys: dict[str, str] = Field(description="the key each `provider` choice of its config needs")
    configSchema: dict[str, Any]  # JSON Schema of the plugin's `config`


class SkillInfo(BaseModel):
    id: str
    name: str
    description: str
    defaultCron: str | None = Field(description="UTC; null: runs when asked in chat (a cronOverride schedules it)")
    plugins: list[str] = Field(description="plugins that must be enabled first")
    bundledSkills: list[str] = Field(description="a pack: the agents it installs")


class Catalog(BaseModel):
    plugins: list[PluginInfo]
    skills: list[SkillInfo]
    keyNames: list[str]


@api.route("GET", "/catalog", access="public", response=Catalog)
def list_catalog(req: Request):
    """Known plugins, skills and key names, with each plugin's config schema."""
    return catalog.describe()


@api.route("GET", "/", query=ByDeployment, response=list_of(PluginConfig))
def list_for(req: Request):
    """A deployment's plugin configs."""
    dep = access.owned(req.query.deploymentId, req.caller)
    return {"items": repos.plugin_configs.all({"deploymentId": dep.id}, cap=100)}


@api.route("GET", "/{deploymentId}/{pluginId}", response=PluginConfig, etag=True)
def get_one(req: Request):
    """One plugin config of a deployment, with its ETag (send it as If-Match to edit)."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    return repos.plugin_configs.require(f"{dep.id}_{catalog.plugin(req.params['pluginId']).id}")


def _write(req: Request, config: Any, merge: bool):
    dep = access.owned(req.params["deploymentId"], req.caller)
    plugin_id = catalog.plugin(req.params["pluginId"]).id
    _check_config(plugin_id, config, merge)
    enabled = configs.KEEP if req.body.enabled is None else req.body.enabled
    guard = None
    if enabled is True and not req.caller.is_admin:  # enabling one more must fit the plan (shared/plan_limits.py)
        plan_limits.ensure_lock(dep.userId)
        guard = plan_limits.config_guard("plugin", dep.userId, dep.id, True)
    try:
        item, created = configs.write_plugin(dep.id, plugin_id, enabled, configs.KEEP if config is None else config,
                                             merge, dep.userId, guard, lambda old: precondition(req, old))
    except Invalid as exc:
        if exc.code != "invalid_config":
            raise
        raise Conflict("incomplete_config", f"with the stored settings: {exc.message}; send the whole config (PUT)",
                       exc.details) from None
    return item, (201 if created else 200)


@api.route("PUT", "/{deploymentId}/{pluginId}", body=PluginWrite, status=(200, 201), response=PluginConfig,
           etag=True, variants=lambda: _bodies(PluginWrite, partial=False))
def put(req: Request):
    """Enable/disable a plugin and set its config (applied by the next deploy); 201 when new. Enabling
    needs the plugin's API keys (409 names the missing ones) and room in the plan."""
    return _write(req, req.body.config, merge=False)


@api.route("PATCH", "/{deploymentId}/{pluginId}", body=PluginPatch, status=(200, 201), response=PluginConfig,
           etag=True, variants=lambda: _bodies(PluginPatch, partial=True))
def patch(req: Request):
    """Toggle a plugin or change some of its settings, keeping the rest; 201 when new."""
    return _write(req, req.body.config, merge=True)


@api.route("DELETE", "/{deploymentId}/{pluginId}", status=204, etag=True)
def delete(req: Request):
    """Remove a plugin's config (409 while an enabled skill uses the plugin)."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    configs.delete_plugin(dep.id, req.params["pluginId"], lambda old: precondition(req, old))
