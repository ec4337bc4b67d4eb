"""`pluginConfigs`: which plugins a deployment's bot has, and their settings (validated by schema).
PUT and PATCH keep what they do not name (shared/deploy/configs.py)."""
from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field, StrictBool, model_validator

from shared import plan_limits, repos
from shared.api.inputs import Strict
from shared.deploy import access, catalog, configs
from shared.http import Api, Request, list_of
from shared.models import PluginConfig

api = Api("pluginConfigs", "Plugins of a deployment's bot")


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class PluginWrite(Strict):
    enabled: StrictBool
    config: dict[str, Any] | None = Field(None, description="the plugin's settings, replaced whole; "
                                          "omitted: the stored ones are kept (defaults for a new one)")


class PluginPatch(Strict):
    enabled: StrictBool | None = None
    config: dict[str, Any] | None = Field(None, description="merged into the stored settings; a field set "
                                          "to null goes back to its default")

    @model_validator(mode="after")
    def _something(self):
        if self.enabled is None and self.config is None:
            raise ValueError("give enabled, config or both")
        return self


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


def _write(req: Request, config: Any, merge: bool):
    dep = access.owned(req.params["deploymentId"], req.caller)
    plugin_id = catalog.plugin(req.params["pluginId"]).id
    enabled = configs.KEEP if req.body.enabled is None else req.body.enabled
    guard = None
    if enabled is True and not req.caller.is_admin:  # enabling one more must fit the plan (shared/plan_limits.py)
        plan_limits.ensure_lock(dep.userId)
        guard = plan_limits.config_guard("plugin", dep.userId, dep.id, True)
    item, created = configs.write_plugin(dep.id, plugin_id, enabled, configs.KEEP if config is None else config,
                                         merge, dep.userId, guard)
    return item, (201 if created else 200)


@api.route("PUT", "/{deploymentId}/{pluginId}", body=PluginWrite, status=(200, 201), response=PluginConfig)
def put(req: Request):
    """Enable/disable a plugin and set its config (applied by the next deploy); 201 when new. Enabling
    needs the plugin's API keys (409 names the missing ones) and room in the plan."""
    return _write(req, req.body.config, merge=False)


@api.route("PATCH", "/{deploymentId}/{pluginId}", body=PluginPatch, status=(200, 201), response=PluginConfig)
def patch(req: Request):
    """Toggle a plugin or change some of its settings, keeping the rest; 201 when new."""
    return _write(req, req.body.config, merge=True)


@api.route("DELETE", "/{deploymentId}/{pluginId}", status=204)
def delete(req: Request):
    """Remove a plugin's config (409 while an enabled skill uses the plugin)."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    configs.delete_plugin(dep.id, req.params["pluginId"])
