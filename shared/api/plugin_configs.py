"""`pluginConfigs`: which plugins a deployment's bot has, and their settings (validated by schema)."""
from __future__ import annotations

from typing import Any

from pydantic import Field

from shared import repos
from shared.api.inputs import Strict
from shared.deploy import access, catalog
from shared.http import Api, Reply, Request, list_of
from shared.models import PluginConfig

api = Api("pluginConfigs", "Plugins of a deployment's bot")


class ByDeployment(Strict):
    deploymentId: str = Field(min_length=1, max_length=128)


class PluginWrite(Strict):
    enabled: bool
    config: dict[str, Any] = Field(default_factory=dict)


class PluginInfo(Reply):
    id: str
    description: str
    keys: list[str]
    configSchema: dict[str, Any]  # JSON Schema of the plugin's `config`


class SkillInfo(Reply):
    id: str
    description: str
    defaultCron: str
    plugins: list[str]


class Catalog(Reply):
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


@api.route("PUT", "/{deploymentId}/{pluginId}", body=PluginWrite, status=(200, 201), response=PluginConfig)
def put(req: Request):
    """Enable/disable a plugin and set its config (applied by the next deploy); 201 when new."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    plugin_id = catalog.plugin(req.params["pluginId"]).id
    config = catalog.validate_plugin_config(plugin_id, req.body.config)
    item = PluginConfig(_id=f"{dep.id}_{plugin_id}", deploymentId=dep.id, userId=dep.userId, pluginId=plugin_id,
                        enabled=req.body.enabled, config=config)
    return item, (201 if access.upsert_config(repos.plugin_configs, item) else 200)


@api.route("DELETE", "/{deploymentId}/{pluginId}", status=204)
def delete(req: Request):
    """Remove a plugin's config."""
    dep = access.owned(req.params["deploymentId"], req.caller)
    access.delete_config(repos.plugin_configs, dep.id, req.params["pluginId"], "plugin config")
