"""pluginConfigs, skillConfigs and apiKeys: upserts validated against the catalog, ownership, and
API key values only in (local) Secret Manager; the startup config carries them as secret names."""
from __future__ import annotations

import json
from pathlib import Path

from test_deployments_api import create

ANTHROPIC = "sk-ant-api03-" + "Q" * 40 + "wxyz"


def keys(dep_id: str, user_id: str, *names: str) -> None:
    """Registry entries of API keys (what enabling checks; the values do not matter here)."""
    from shared import repos
    from shared.models import ApiKey

    for name in names:
        repos.api_keys.set(ApiKey(_id=f"{dep_id}_{name}", deploymentId=dep_id, userId=user_id, keyName=name,
                                  maskedValue="x****y"))


def test_plugin_configs_upsert_validated_by_schema(api, callers, denv):
    dep, _ = create(api, callers["owner"])
    base = f"/pluginConfigs/{dep['_id']}"
    pub = {"publicationId": "pub_1234abcd"}
    keys(dep["_id"], callers["owner"].user_id, "beehiiv-api-key")
    r = api("PUT", f"{base}/beehiiv", callers["owner"], json={"enabled": True, "config": pub})
    assert r.status_code == 201 and r.json["config"] == {"publicationId": "pub_1234abcd", "defaultStatus": "draft"}
    r = api("PUT", f"{base}/beehiiv", callers["owner"], json={"enabled": False, "config": pub})
    assert r.status_code == 200 and r.json["enabled"] is False
    for plugin, config in (("beehiiv", {}), ("beehiiv", {"publicationId": "nope"}),
                           ("video-gen", {"maxDurationSeconds": 600}), ("postiz", {"channels": ["myspace"]}),
                           ("image-gen", {"extra": 1}), ("knowledge", {"maxResults": "5"}),
                           ("knowledge", {"autoIngest": 1}), ("image-gen", {"provider": "midjourney"}),
                           ("clarify-ai", {}), ("zoho", {"dataCenter": "mars"})):
        r = api("PUT", f"{base}/{plugin}", callers["owner"], json={"enabled": True, "config": config})
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_config", (plugin, r.json)
    assert api("PUT", f"{base}/unknown", callers["owner"], json={"enabled": True}).status_code == 404
    assert api("PUT", f"{base}/postiz", callers["other"], json={"enabled": True}).status_code == 404
    for body in ({"enabled": 0}, {"enabled": "true"}, {"enabled": None}, {"config": {}},
                 {"enabled": True, "config": []}):
        r = api("PUT", f"{base}/knowledge", callers["owner"], json=body)
        assert r.status_code == 422, body  # strict: 0 is not false
    items = api("GET", f"/pluginConfigs?deploymentId={dep['_id']}", callers["owner"]).json["items"]
    assert [(i["pluginId"], i["enabled"]) for i in items] == [("beehiiv", False)]
    assert api("GET", f"/pluginConfigs?deploymentId={dep['_id']}", callers["other"]).status_code == 404
    assert api("DELETE", f"{base}/beehiiv", callers["owner"]).status_code == 204


def test_catalog_offers_every_plugin_and_skill_of_the_old_system(api):
    """tests/fixtures/seed_catalog.json is the old system's catalog; convex-knowledge is our knowledge."""
    seed = json.loads((Path(__file__).parent / "fixtures" / "seed_catalog.json").read_text())
    ours = {"convex-knowledge": "knowledge"}
    got = api("GET", "/pluginConfigs/catalog").json
    plugins = {p["id"]: p for p in got["plugins"]}
    assert set(plugins) == {ours.get(p["id"], p["id"]) for p in seed["plugins"]}
    not_secret = {"postiz-url", "beehiiv-publication-id", "github-default-owner", "zoho-data-center",
                  "clarify-workspace-slug", "drive-media-folder-id", "convex-url"}  # config fields / our backend
    for p in seed["plugins"]:
        mine = plugins[ours.get(p["id"], p["id"])]
        needed = set(mine["keys"]) | set(mine["providerKeys"].values()) | set(mine["optionalKeys"])
        assert set(p["requiredSecrets"]) - not_secret <= needed, p["id"]
        assert mine["name"] and mine["description"] and mine["configSchema"]["type"] == "object"
        assert set(mine["keys"]) <= set(got["keyNames"]) and set(mine["optionalKeys"]) <= set(got["keyNames"])
    skills = {s["id"]: s for s in got["skills"]}
    assert set(skills) == {s["id"] for s in seed["skills"]}
    for s in seed["skills"]:
        mine = skills[s["id"]]
        assert mine["defaultCron"] == s["cron"] and mine["plugins"] == [ours.get(p, p) for p in s["requiredPlugins"]]
        assert mine["bundledSkills"] == s.get("bundledSkills", [])
    assert plugins["image-gen"]["providerKeys"]["google"] == "google-ai-api-key"


def test_enabling_needs_keys_and_plugins_and_in_use_cannot_be_removed(api, callers, denv):
    owner = callers["owner"]
    dep, job = create(api, owner)
    denv.wait_job(job["_id"])
    d = dep["_id"]
    r = api("PUT", f"/pluginConfigs/{d}/zoho", owner, json={"enabled": True})
    assert (r.status_code, r.json["error"]["code"]) == (409, "missing_keys")
    assert r.json["error"]["details"]["missingKeys"] == ["zoho-client-id", "zoho-client-secret", "zoho-refresh-token"]
    assert "zoho-client-id" in r.json["error"]["message"]
    # the provider chosen decides the key; a Drive folder needs the Drive credentials
    r = api("PUT", f"/pluginConfigs/{d}/image-gen", owner, json={"enabled": True, "config": {"provider": "openai"}})
    assert r.json["error"]["details"]["missingKeys"] == ["openai-api-key"]
    assert api("PUT", f"/apiKeys/{d}/openai-api-key", owner, json={"value": "sk-" + "a" * 40}).status_code == 200
    r = api("PUT", f"/pluginConfigs/{d}/image-gen", owner, json={"enabled": True, "config": {"provider": "openai"}})
    assert r.status_code == 201, r.json
    r = api("PATCH", f"/pluginConfigs/{d}/image-gen", owner, json={"config": {"driveFolderId": "1AbCdEfGhIjK"}})
    assert r.status_code == 409 and r.json["error"]["details"]["missingKeys"] == [
        "drive-oauth-client-id", "drive-oauth-client-secret", "drive-oauth-refresh-token"]
    r = api("DELETE", f"/apiKeys/{d}/openai-api-key", owner)
    assert (r.status_code, r.json["error"]["code"], r.json["error"]["details"]) == (409, "key_in_use",
                                                                                    {"plugins": ["image-gen"]})
    # a skill needs its plugins on
    r = api("PUT", f"/skillConfigs/{d}/daily-posts", owner, json={"enabled": True})
    assert (r.status_code, r.json["error"]["code"]) == (409, "missing_plugins")
    assert r.json["error"]["details"]["missingPlugins"] == ["postiz", "knowledge"]
    assert api("PATCH", f"/pluginConfigs/{d}/knowledge", owner, json={"enabled": True}).status_code == 201
    r = api("PATCH", f"/skillConfigs/{d}/content-engine", owner, json={"enabled": True})
    assert r.status_code == 201 and r.json["cronOverride"] is None
    assert api("PUT", f"/skillConfigs/{d}/agency-sales-pack", owner, json={"enabled": True}).status_code == 201
    for method, body in (("PATCH", {"enabled": False}), ("PUT", {"enabled": False}), ("DELETE", None)):
        r = api(method, f"/pluginConfigs/{d}/knowledge", owner, json=body)
        assert (r.status_code, r.json["error"]["code"]) == (409, "plugin_in_use"), method
        assert r.json["error"]["details"] == {"skills": ["content-engine"]}
    assert api("PATCH", f"/skillConfigs/{d}/content-engine", owner, json={"enabled": False}).status_code == 200
    assert api("PATCH", f"/pluginConfigs/{d}/knowledge", owner, json={"enabled": False}).status_code == 200
    # what the VM is given: enabled entries, the default schedule unless overridden, packs' agents
    config = bot_config(d)
    assert set(config["plugins"]) == {"image-gen"} and config["plugins"]["image-gen"]["provider"] == "openai"
    from shared.deploy.catalog import SKILLS

    pack = SKILLS["agency-sales-pack"]
    assert config["skills"] == {"agency-sales-pack": {
        "name": pack.name, "description": pack.description, "cron": None, "plugins": [], "bundledSkills": [
        "sales-outbound-strategist", "sales-discovery-coach", "sales-deal-strategist", "sales-engineer",
        "sales-proposal-strategist", "sales-pipeline-analyst", "sales-account-strategist", "sales-coach"]}}
    assert config["backend"]["costsUrl"].endswith("/costs")


def test_patch_and_put_keep_what_they_do_not_name(api, callers, denv):
    owner = callers["owner"]
    dep, _ = create(api, owner)
    d = dep["_id"]
    keys(d, owner.user_id, "postiz-api-key")
    base = f"/pluginConfigs/{d}/postiz"
    settings = {"apiUrl": "https://postiz.example.com/api", "channels": ["x", "linkedin"], "requireApproval": False}
    assert api("PUT", base, owner, json={"enabled": True, "config": settings}).status_code == 201
    r = api("PATCH", base, owner, json={"enabled": False})
    assert r.status_code == 200 and (r.json["enabled"], r.json["config"]) == (False, settings)
    r = api("PUT", base, owner, json={"enabled": True})  # no config: the stored one stays
    assert (r.json["enabled"], r.json["config"]) == (True, settings)
    r = api("PATCH", base, owner, json={"config": {"channels": ["bluesky"]}})
    assert r.json["config"] == {**settings, "channels": ["bluesky"]} and r.json["enabled"] is True
    r = api("PATCH", base, owner, json={"config": {"requireApproval": None}})  # null: back to the default
    assert r.json["config"]["requireApproval"] is True and r.json["config"]["channels"] == ["bluesky"]
    r = api("PUT", base, owner, json={"enabled": True, "config": {}})  # a PUT's config replaces
    assert r.json["config"]["apiUrl"] == "https://api.postiz.com/public/v1" and r.json["config"]["channels"] == []
    for body in ({}, {"enabled": 0}, {"enabled": "false"}, {"config": {"channels": "x"}}, {"config": {"nope": 1}}):
        assert api("PATCH", base, owner, json=body).status_code == 422, body
    assert api("PATCH", f"/pluginConfigs/{d}/postiz", callers["other"], json={"enabled": True}).status_code == 404
    # skills: cronOverride omitted is kept, null clears it
    sk = f"/skillConfigs/{d}/daily-briefing"
    assert api("PUT", sk, owner, json={"enabled": True, "cronOverride": "0 6 * * *"}).status_code == 201
    r = api("PATCH", sk, owner, json={"enabled": False})
    assert (r.json["enabled"], r.json["cronOverride"]) == (False, "0 6 * * *")
    r = api("PUT", sk, owner, json={"enabled": True})
    assert (r.json["enabled"], r.json["cronOverride"]) == (True, "0 6 * * *")
    r = api("PATCH", sk, owner, json={"cronOverride": None})
    assert (r.json["enabled"], r.json["cronOverride"]) == (True, None)
    for body in ({}, {"enabled": 1}, {"cronOverride": "61 * * * *"}):
        assert api("PATCH", sk, owner, json=body).status_code == 422, body


def test_skill_configs_with_cron_override(api, callers, denv):
    dep, _ = create(api, callers["owner"])
    base = f"/skillConfigs/{dep['_id']}"
    r = api("PUT", f"{base}/daily-briefing", callers["owner"], json={"enabled": True, "cronOverride": "30  8 * * 1-5"})
    assert r.status_code == 201 and r.json["cronOverride"] == "30 8 * * 1-5"
    r = api("PUT", f"{base}/job-hunter", callers["admin"], json={"enabled": True})
    assert r.status_code == 201 and r.json["cronOverride"] is None and r.json["userId"] == callers["owner"].user_id
    for cron in ("61 * * * *", "* * *", "every day", "* * * * * *"):
        r = api("PUT", f"{base}/workflow-audit", callers["owner"], json={"enabled": True, "cronOverride": cron})
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_cron", cron
    assert api("PUT", f"{base}/mystery", callers["owner"], json={"enabled": True}).status_code == 404
    items = api("GET", f"/skillConfigs?deploymentId={dep['_id']}", callers["owner"]).json["items"]
    assert sorted(i["skillId"] for i in items) == ["daily-briefing", "job-hunter"]


def bot_config(dep_id: str) -> dict:
    from shared import repos
    from shared.deploy import startup

    return json.loads(next(i["value"] for i in startup.metadata_items(repos.deployments.get(dep_id))
                           if i["key"] == "openclaw-config"))


def test_api_key_value_only_in_secret_manager(api, callers, denv, capsys):
    from shared import repos
    from shared.deploy import secrets, startup

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    path = f"/apiKeys/{dep['_id']}/anthropic-api-key"
    r = api("PUT", path, callers["owner"], json={"value": ANTHROPIC})
    assert r.status_code == 200 and r.json["maskedValue"] == "sk-a****wxyz"
    assert ANTHROPIC not in json.dumps(r.json)
    assert secrets.access(dep["_id"], "anthropic-api-key") == ANTHROPIC
    listed = api("GET", f"/apiKeys?deploymentId={dep['_id']}", callers["owner"]).json["items"]
    assert listed == [r.json]
    stored = repos.api_keys.get(f"{dep['_id']}_anthropic-api-key").model_dump()
    assert ANTHROPIC not in json.dumps(stored)
    config = json.loads(next(i["value"] for i in startup.metadata_items(repos.deployments.get(dep["_id"]))
                              if i["key"] == "openclaw-config"))
    assert config["secrets"] == {"anthropic-api-key": f"oc-{dep['_id']}-anthropic-api-key",
                                 startup.BOT_TOKEN_KEY: f"oc-{dep['_id']}-{startup.BOT_TOKEN_KEY}"}
    # a new value is a new version; bad values and unknown names are refused without echoing the value
    r = api("PUT", path, callers["owner"], json={"value": ANTHROPIC[:-4] + "abcd"})
    assert r.json["maskedValue"] == "sk-a****abcd"
    r = api("PUT", path, callers["owner"], json={"value": "sk-wrong-shape-secret-value"})
    assert r.status_code == 422 and "sk-wrong-shape-secret-value" not in r.text
    assert api("PUT", f"/apiKeys/{dep['_id']}/root-password", callers["owner"],
               json={"value": ANTHROPIC}).status_code == 404
    assert api("PUT", path, callers["other"], json={"value": ANTHROPIC}).status_code == 404
    assert ANTHROPIC not in capsys.readouterr().out  # never logged
    assert denv.secrets.state()["secrets"][f"projects/demo-openclaw/secrets/oc-{dep['_id']}-anthropic-api-key"] == 2
    # delete removes the secret too
    assert api("DELETE", path, callers["owner"]).status_code == 204
    assert f"projects/demo-openclaw/secrets/oc-{dep['_id']}-anthropic-api-key" not in denv.secrets.state()["secrets"]
    assert api("GET", f"/apiKeys?deploymentId={dep['_id']}", callers["owner"]).json["items"] == []
    assert api("DELETE", path, callers["owner"]).status_code == 404


def test_secret_manager_down_answers_503_and_writes_nothing(api, callers, denv):
    from shared import repos

    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])  # the deploy job stores the bot's token: let it finish before the fault
    denv.secrets.fault("secrets.addVersion", "error", status=503)
    r = api("PUT", f"/apiKeys/{dep['_id']}/openai-api-key", callers["owner"], json={"value": "sk-" + "a" * 40})
    assert r.status_code == 503 and r.json["error"]["code"] == "secrets_unavailable"
    assert repos.api_keys.get(f"{dep['_id']}_openai-api-key") is None
    denv.secrets.fault("secrets.create", "hang", delay=3.0)  # past the 2 s call timeout
    r = api("PUT", f"/apiKeys/{dep['_id']}/openai-api-key", callers["owner"], json={"value": "sk-" + "a" * 40})
    assert r.status_code == 503 and repos.api_keys.get(f"{dep['_id']}_openai-api-key") is None
    denv.secrets.fault("secrets.addVersion", "slow", delay=0.5)
    r = api("PUT", f"/apiKeys/{dep['_id']}/openai-api-key", callers["owner"], json={"value": "sk-" + "a" * 40})
    assert r.status_code == 200 and r.json["maskedValue"] == "sk-a****aaaa"


def test_delete_job_removes_keys_from_secret_manager(api, callers, denv):
    dep, job = create(api, callers["owner"])
    denv.wait_job(job["_id"])
    api("PUT", f"/apiKeys/{dep['_id']}/telegram-bot-token", callers["owner"],
        json={"value": "123456789:" + "A" * 35})
    api("PUT", f"/skillConfigs/{dep['_id']}/daily-briefing", callers["owner"], json={"enabled": True})
    r = api("POST", f"/deployments/{dep['_id']}/actions", callers["owner"], json={"action": "delete"})
    done = denv.wait_job(r.json["job"]["_id"])
    assert done.status == "completed" and "removed 1 API key(s) from Secret Manager" in done.log
    assert not [n for n in denv.secrets.state()["secrets"] if dep["_id"] in n]
    assert api("GET", f"/skillConfigs?deploymentId={dep['_id']}", callers["owner"]).status_code == 404


def test_enabled_is_a_json_boolean_only(api, callers, denv):
    dep, _ = create(api, callers["owner"])
    for path in (f"/pluginConfigs/{dep['_id']}/knowledge", f"/skillConfigs/{dep['_id']}/job-hunter"):
        for value in (0, 1, "false", "true"):
            r = api("PUT", path, callers["owner"], json={"enabled": value})
            assert r.status_code == 422 and r.json["error"]["code"] == "invalid_body", (path, value)
