"""Writing a deployment's plugin and skill configs, and what must hold while they are on.

- A write keeps what it does not name: `enabled` alone toggles and keeps the settings; a PUT's
  `config` replaces the plugin's settings, a PATCH's is merged into them (a field set to null goes
  back to its default, as in a JSON merge patch). A skill's `cronOverride` omitted is kept, null
  clears it (back to the default schedule).
- An enabled plugin has every API key it needs (catalog keys plus what its config needs, e.g. the
  chosen provider's); an enabled skill has every plugin it needs enabled. Enabling without them is
  a 409 naming what is missing; disabling or deleting a plugin an enabled skill uses, or deleting a
  key an enabled plugin needs, is a 409 naming who uses it.

A write also takes the plan's guard (shared/plan_limits.py: enabling one more than the plan allows is a
409 `plan_limit`). Each write reads what it checks in its own transaction, so two opposite writes (enable a skill,
disable its plugin) cannot both pass: both read and write the same documents and one retries.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

from shared import db, repos
from shared.deploy import catalog
from shared.errors import Conflict, not_found
from shared.models import PluginConfig, SkillConfig

KEEP: Any = object()  # a field the request did not name
# (tx, existing config or None) -> writes to add to the transaction, or None; reads only, may refuse
# (shared/plan_limits.config_guard: enabling one more than the plan allows)
Guard = Callable[[Any, Any], Callable[[Any], None] | None]
# (the config as stored, or None) -> raises to refuse the write: the request's If-Match (shared/http.precondition),
# called inside the write's transaction
Check = Callable[[Any], None]
C = TypeVar("C", PluginConfig, SkillConfig)


def needed_keys(plugin_id: str, config: dict) -> list[str]:
    p = catalog.PLUGINS[plugin_id]
    return list(dict.fromkeys(p.keys + p.schema.model_validate(config).needed_keys()))


def _require_deployment(tx, deployment_id: str) -> None:
    if repos.deployments.get(deployment_id, tx) is None:
        raise not_found(f"deployment {deployment_id!r}")


def _enabled_plugins(tx, deployment_id: str) -> dict[str, PluginConfig]:
    return {p.pluginId: p for p in repos.plugin_configs.all({"deploymentId": deployment_id}, cap=100, tx=tx)
            if p.enabled and p.pluginId in catalog.PLUGINS}


def _skills_using(tx, deployment_id: str, plugin_id: str) -> list[str]:
    skills = repos.skill_configs.all({"deploymentId": deployment_id}, cap=100, tx=tx)
    return sorted(s.skillId for s in skills if s.enabled and s.skillId in catalog.SKILLS
                  and plugin_id in catalog.SKILLS[s.skillId].plugins)


def _plugin_unused(tx, deployment_id: str, plugin_id: str, doing: str) -> None:
    users = _skills_using(tx, deployment_id, plugin_id)
    if users:
        raise Conflict("plugin_in_use", f"cannot {doing} plugin {plugin_id}: enabled skills use it "
                       f"({', '.join(users)}); disable them first", {"skills": users})


@db.transactional
def write_plugin(tx, deployment_id: str, plugin_id: str, enabled: Any, config: Any, merge: bool,
                 user_id: str, guard: Guard | None = None, check: Check | None = None) -> tuple[PluginConfig, bool]:
    """Upsert one plugin config (True when new). `enabled`/`config` KEEP: unchanged. `guard`, `check`: see
    Guard, Check."""
    old = _current(tx, repos.plugin_configs, deployment_id, plugin_id, check)
    stored = old.config if old else {}
    if config is KEEP:
        config = stored
    elif merge:
        config = {k: v for k, v in {**stored, **config}.items() if v is not None}
    config = catalog.validate_plugin_config(plugin_id, config)
    on = (old.enabled if old else False) if enabled is KEEP else enabled
    if on:
        have = {k.keyName for k in repos.api_keys.all({"deploymentId": deployment_id}, cap=200, tx=tx)}
        missing = [k for k in needed_keys(plugin_id, config) if k not in have]
        if missing:
            raise Conflict("missing_keys", f"plugin {plugin_id} needs the API key(s) {', '.join(missing)}: "
                           f"set them first (PUT /apiKeys/{deployment_id}/<keyName>)", {"missingKeys": missing})
    elif old is not None and old.enabled:
        _plugin_unused(tx, deployment_id, plugin_id, "disable")
    return _put(tx, repos.plugin_configs, old, guard, PluginConfig(
        _id=f"{deployment_id}_{plugin_id}", deploymentId=deployment_id, userId=user_id, pluginId=plugin_id,
        enabled=on, config=config))


@db.transactional
def delete_plugin(tx, deployment_id: str, plugin_id: str, check: Check | None = None) -> None:
    old = _existing(tx, repos.plugin_configs, f"{deployment_id}_{plugin_id}", f"plugin config {plugin_id!r}", check)
    if old.enabled:
        _plugin_unused(tx, deployment_id, plugin_id, "delete")
    repos.plugin_configs.delete(old.id, tx)


@db.transactional
def write_skill(tx, deployment_id: str, skill_id: str, enabled: Any, cron: Any,
                user_id: str, guard: Guard | None = None, check: Check | None = None) -> tuple[SkillConfig, bool]:
    """Upsert one skill config (True when new). `enabled`/`cron` KEEP: unchanged; cron None: default."""
    old = _current(tx, repos.skill_configs, deployment_id, skill_id, check)
    on = (old.enabled if old else False) if enabled is KEEP else enabled
    cron = (old.cronOverride if old else None) if cron is KEEP else cron
    if on:
        have = _enabled_plugins(tx, deployment_id)
        missing = [p for p in catalog.SKILLS[skill_id].plugins if p not in have]
        if missing:
            raise Conflict("missing_plugins", f"skill {skill_id} needs the plugin(s) {', '.join(missing)} "
                           "enabled first", {"missingPlugins": missing})
    return _put(tx, repos.skill_configs, old, guard, SkillConfig(
        _id=f"{deployment_id}_{skill_id}", deploymentId=deployment_id, userId=user_id, skillId=skill_id,
        enabled=on, cronOverride=cron))


@db.transactional
def delete_skill(tx, deployment_id: str, skill_id: str, check: Check | None = None) -> None:
    old = _existing(tx, repos.skill_configs, f"{deployment_id}_{skill_id}", f"skill config {skill_id!r}", check)
    repos.skill_configs.delete(old.id, tx)


def _current(tx, repo: db.Repo[C], deployment_id: str, item_id: str, check: Check | None) -> C | None:
    """What a write replaces (None: nothing yet) in a deployment that must exist; `check` may refuse it."""
    _require_deployment(tx, deployment_id)
    old = repo.get(f"{deployment_id}_{item_id}", tx)
    if check:
        check(old)
    return old


def _put(tx, repo: db.Repo[C], old: C | None, guard: Guard | None, item: C) -> tuple[C, bool]:
    """Write a config (True when new) and what the guard adds; the guard reads first, as a
    transaction's reads must all come before its first write, and may refuse."""
    writes = guard(tx, old) if guard else None
    repo.set(item, tx)
    if writes:
        writes(tx)
    return item, old is None


def _existing(tx, repo: db.Repo[C], doc_id: str, what: str, check: Check | None) -> C:
    """A config to delete: 404 if there is none; `check` may refuse it."""
    old = repo.get(doc_id, tx)
    if old is None:
        raise not_found(what)
    if check:
        check(old)
    return old


def key_unused(deployment_id: str, key_name: str) -> None:
    """Before deleting an API key: no enabled plugin may need it (409 naming them)."""
    users = sorted(p.pluginId for p in _enabled_plugins(None, deployment_id).values()
                   if key_name in needed_keys(p.pluginId, p.config))
    if users:
        raise Conflict("key_in_use", f"enabled plugins need {key_name} ({', '.join(users)}); disable them "
                       "first", {"plugins": users})
