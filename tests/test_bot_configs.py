"""pluginConfigs, skillConfigs and apiKeys: upserts validated against the catalog, ownership, and
API key values only in (local) Secret Manager; the startup config carries them as secret names."""
from __future__ import annotations

import json

from test_deployments_api import create

ANTHROPIC = "sk-ant-api03-" + "Q" * 40 + "wxyz"


def test_plugin_configs_upsert_validated_by_schema(api, callers, denv):
    dep, _ = create(api, callers["owner"])
    base = f"/pluginConfigs/{dep['_id']}"
    pub = {"publicationId": "pub_1234abcd"}
    r = api("PUT", f"{base}/beehiiv", callers["owner"], json={"enabled": True, "config": pub})
    assert r.status_code == 201 and r.json["config"] == {"publicationId": "pub_1234abcd", "defaultStatus": "draft"}
    r = api("PUT", f"{base}/beehiiv", callers["owner"], json={"enabled": False, "config": pub})
    assert r.status_code == 200 and r.json["enabled"] is False
    for plugin, config in (("beehiiv", {}), ("beehiiv", {"publicationId": "nope"}),
                           ("video-gen", {"maxDurationSeconds": 600}), ("postiz", {"channels": ["myspace"]}),
                           ("image-gen", {"extra": 1})):
        r = api("PUT", f"{base}/{plugin}", callers["owner"], json={"enabled": True, "config": config})
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_config", (plugin, r.json)
    assert api("PUT", f"{base}/unknown", callers["owner"], json={"enabled": True}).status_code == 404
    assert api("PUT", f"{base}/postiz", callers["other"], json={"enabled": True}).status_code == 404
    items = api("GET", f"/pluginConfigs?deploymentId={dep['_id']}", callers["owner"]).json["items"]
    assert [(i["pluginId"], i["enabled"]) for i in items] == [("beehiiv", False)]
    assert api("GET", f"/pluginConfigs?deploymentId={dep['_id']}", callers["other"]).status_code == 404
    catalog = api("GET", "/pluginConfigs/catalog").json
    assert {p["id"] for p in catalog["plugins"]} >= {"postiz", "image-gen", "video-gen", "beehiiv", "knowledge"}
    assert api("DELETE", f"{base}/beehiiv", callers["owner"]).status_code == 204


def test_skill_configs_with_cron_override(api, callers, denv):
    dep, _ = create(api, callers["owner"])
    base = f"/skillConfigs/{dep['_id']}"
    r = api("PUT", f"{base}/daily-posts", callers["owner"], json={"enabled": True, "cronOverride": "30  8 * * 1-5"})
    assert r.status_code == 201 and r.json["cronOverride"] == "30 8 * * 1-5"
    r = api("PUT", f"{base}/job-hunter", callers["admin"], json={"enabled": True})
    assert r.status_code == 201 and r.json["cronOverride"] is None and r.json["userId"] == callers["owner"].user_id
    for cron in ("61 * * * *", "* * *", "every day", "* * * * * *"):
        r = api("PUT", f"{base}/daily-briefing", callers["owner"], json={"enabled": True, "cronOverride": cron})
        assert r.status_code == 422 and r.json["error"]["code"] == "invalid_cron", cron
    assert api("PUT", f"{base}/mystery", callers["owner"], json={"enabled": True}).status_code == 404
    items = api("GET", f"/skillConfigs?deploymentId={dep['_id']}", callers["owner"]).json["items"]
    assert sorted(i["skillId"] for i in items) == ["daily-posts", "job-hunter"]


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
