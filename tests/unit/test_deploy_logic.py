"""The deployments domain's pure logic: a job's claim decision (the state machine the worker's
deliveries go through), secret redaction and the job log, and the catalog's validation."""
from __future__ import annotations

import pytest

from shared.deploy import catalog, joblog, redact
from shared.deploy.jobstate import Decision, decide


def code_of(exc: BaseException) -> str | None:
    return getattr(exc, "code", None)


NOW = 1_000_000


@pytest.mark.parametrize("status,lock,expected", [
    ("pending", {"jobId": "j1"}, Decision(attempt=1)),
    # released (shared/deploy/jobstate.py release): still running, lease dropped, the retry takes it
    ("running", {"jobId": "j1", "attempt": 2, "leaseUntil": 0}, Decision(attempt=3)),
    # a running job whose lease expired: its delivery died, this one takes it over
    ("running", {"jobId": "j1", "attempt": 1, "leaseUntil": NOW - 1}, Decision(attempt=2)),
    ("running", {"jobId": "j1", "attempt": 1, "leaseUntil": NOW + 1},
     Decision(skip="another delivery is running this job", busy=True)),
    ("completed", {"jobId": "j1"}, Decision(skip="job already completed")),
    ("failed", {}, Decision(skip="job already failed")),
    ("pending", {"jobId": "j2"}, Decision(skip="not the active job",
                                          fail="this job is no longer the deployment's active job; nothing done")),
    ("pending", {}, Decision(skip="not the active job",
                             fail="this job is no longer the deployment's active job; nothing done")),
    ("running", {"jobId": "j1", "attempt": 5, "leaseUntil": 0},
     Decision(skip="attempts exhausted", fail="gave up after 5 interrupted attempts", free_lock=True)),
])
def test_claim_decision(status, lock, expected):
    assert decide("j1", status, lock, NOW, max_attempts=5) == expected


def test_a_terminal_job_is_never_failed_again_even_without_the_lock():
    assert decide("j1", "completed", {"jobId": "other"}, NOW, 5).fail is None


@pytest.mark.parametrize("secret", [
    "sk-or-v1-0123456789abcdef0123", "sk-ant-api03-abcdefghijklmnopqrstuv", "sk-proj-ABCDEFGHIJKLMNOPQRST",
    "123456789:AAHabcdefghijklmnopqrstuvwxyz012345", "AIzaSyA1234567890abcdefghijklmnopqrstu",
    "ghp_abcdefghijklmnopqrstuvwxyz0123456789", "xoxb-1234567890-abcdef", "r8_abcdefghijklmnopqrstuvwx",
    "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
])
def test_known_secret_shapes_are_masked(secret):
    out = redact.redact(f"installing with {secret} now")
    assert secret not in out and "****" in out and out.startswith("installing with ") and out.endswith(" now")


def test_assigned_secrets_are_masked_whatever_they_look_like():
    out = redact.redact('password=hunter2hunter2 api_key: "abcdef123456" Authorization: Bearer tok_abcdefgh')
    assert "hunter2hunter2" not in out and "abcdef123456" not in out and "tok_abcdefgh" not in out
    assert out.startswith("password=hunt****ter2")
    assert redact.redact("plain text, token=short") == "plain text, token=short"  # under 6 chars: not a secret
    assert redact.mask("0123456789ab") == "0123****89ab" and redact.mask("short") == "****"


def test_job_log_lines_are_stamped_redacted_and_bounded(monkeypatch):
    monkeypatch.setenv("DEPLOY_WORKER_URL", "http://127.0.0.1:1/deployWorker")
    monkeypatch.setenv("DEPLOY_LOG_MAX_CHARS", "1000")
    from shared.deploy import settings

    settings.reset()
    try:
        assert joblog.line("hello sk-or-v1-0123456789abcdef0123", 1000) == "1970-01-01 00:00:01Z hello sk-o****0123\n"
        log = ""
        for i in range(100):
            log = joblog.append(log, f"step {i}")
        assert len(log) <= 1000 and log.startswith(joblog.TRIMMED) and log.endswith("step 99\n")
        assert "step 0\n" not in log and all(line.endswith("Z step " + line.rsplit(" ", 1)[1])
                                             for line in log.splitlines()[1:])
    finally:
        settings.reset()


@pytest.mark.parametrize("expr,normal", [("0 9 * * *", "0 9 * * *"), ("  */15  *   * * 1-5 ", "*/15 * * * 1-5"),
                                        ("0-30/5 9-17/2 * JAN-JUN mon-fri", "0-30/5 9-17/2 * JAN-JUN mon-fri"),
                                        ("0 0 1,15 * MON", "0 0 1,15 * MON")])
def test_valid_cron_is_normalised(expr, normal):
    assert catalog.validate_cron(expr) == normal


@pytest.mark.parametrize("expr", ["0 9 * *", "0 9 * * * *", "61 * * * *", "0 25 * * *", "* * 32 * *", "x y z a b",
                                  # cronsim takes these; OpenClaw's scheduler (croner) refuses or reads them otherwise
                                  "5/10 * * * *", "0 1,3/2 * * *", "0 0 * */13 *", "0 0 * * */8", "0 0 L * *",
                                  "0 0 15W * *", "0 0 * * 5L", "0 0 * * 1#2", "0 0 ? * MON", "0 0 */2 * MON",
                                  "0 0 1,15 * */2", "0 16-16/3 * * *", "0 0 * * SUN-SUN"])
def test_invalid_cron_is_refused(expr):
    with pytest.raises(Exception) as info:
        catalog.validate_cron(expr)
    assert code_of(info.value) == "invalid_cron"


def test_key_values_must_have_their_shape():
    assert catalog.validate_key("openrouter-api-key", "sk-or-" + "a" * 30)
    with pytest.raises(Exception) as info:
        catalog.validate_key("openrouter-api-key", "sk-" + "a" * 30)
    assert code_of(info.value) == "invalid_key_value"
    with pytest.raises(Exception) as info:
        catalog.validate_key("no-such-key", "x")
    assert code_of(info.value) == "unknown_key_name"


def test_plugin_configs_are_validated_and_completed_with_defaults():
    assert catalog.validate_plugin_config("image-gen", {"provider": "openai"}) == \
        {**catalog.validate_plugin_config("image-gen", {}), "provider": "openai"}
    assert catalog.validate_plugin_config("knowledge", {})["maxResults"] == 5
    for bad in ({"maxResults": 0}, {"maxResults": 21}, {"unknown": 1}):
        with pytest.raises(Exception) as info:
            catalog.validate_plugin_config("knowledge", bad)
        assert getattr(info.value, "status", 422) == 422, bad
    with pytest.raises(Exception) as info:
        catalog.plugin("no-such-plugin")
    assert code_of(info.value) == "unknown_plugin"


def test_the_catalog_is_consistent():
    """Every skill's plugins exist; every plugin's keys are known key names; the provider keys too."""
    for s in catalog.SKILLS.values():
        assert set(s.plugins) <= set(catalog.PLUGINS), s.id
        if s.cron:
            catalog.validate_cron(s.cron)
    for p in catalog.PLUGINS.values():
        assert set(p.keys) | set(p.optional_keys) <= set(catalog.KEY_NAMES), p.id
        assert set(catalog.provider_keys(p.id).values()) <= set(catalog.KEY_NAMES), p.id
    described = catalog.describe()
    assert [p["id"] for p in described["plugins"]] == list(catalog.PLUGINS)
