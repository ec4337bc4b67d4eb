"""The one settings pattern (shared/config.py): every domain's `settings.py` has the same shape,
reads the environment once, and only through shared/config.py's helpers."""
from __future__ import annotations

import importlib
import re
from dataclasses import fields, is_dataclass
from pathlib import Path

import pytest

from shared import config

SHARED = Path(__file__).resolve().parents[2] / "shared"
DOMAINS = sorted(p.parent.name for p in SHARED.glob("*/settings.py"))


def test_every_domain_with_variables_has_its_settings_module():
    assert DOMAINS == ["backups", "billing", "costs", "deploy", "health", "knowledge", "media", "notifications"]
    for domain in (p.name for p in SHARED.iterdir() if (p / "__init__.py").exists() and p.name != "api"):
        reads = [f.name for f in (SHARED / domain).glob("*.py") if f.name != "settings.py"
                 and re.search(r"config\.(env|env_int|env_float|env_choice|env_list|setting)\(", f.read_text())]
        # deploy/secrets.py: Secret Manager is also used outside the deployments' functions (costs, bot
        # credentials), which must not need the deploy section's production variables
        assert reads in ([], ["secrets.py"] if domain == "deploy" else []), f"{domain} reads variables in {reads}"


@pytest.mark.parametrize("domain", DOMAINS)
def test_each_settings_module_has_the_same_shape(domain, monkeypatch):
    monkeypatch.setenv("DEPLOY_WORKER_URL", "http://127.0.0.1:1/deployWorker")
    monkeypatch.setenv("MEDIA_BUCKET", "media-bucket")
    mod = importlib.import_module(f"shared.{domain}.settings")
    assert is_dataclass(mod.Settings) and mod.Settings.__dataclass_params__.frozen
    mod.reset()
    try:
        first = mod.get()
        assert isinstance(first, mod.Settings) and mod.get() is first  # read once
        mod.reset()
        assert mod.get() is not first and mod.get() == first  # read again after reset()
        assert {f.name for f in fields(first)}
    finally:
        mod.reset()


def test_nothing_reads_the_environment_but_shared_config():
    roots = [SHARED, SHARED.parent / "functions"]
    # setdefault is functions/_bootstrap.py switching a library off before it loads: a write, no setting read
    offenders = [str(p.relative_to(SHARED.parent)) for root in roots for p in root.rglob("*.py")
                 if p.name != "config.py" and re.search(r"os\.environ(?!\.setdefault\()|getenv\(", p.read_text())]
    assert offenders == []


def test_a_changed_variable_is_seen_after_reset(monkeypatch):
    from shared.knowledge import settings

    settings.reset()
    assert settings.get().chunk_chars == 1200
    monkeypatch.setenv("KNOWLEDGE_CHUNK_CHARS", "800")
    assert settings.get().chunk_chars == 1200  # cached: one read per instance
    settings.reset()
    assert settings.get().chunk_chars == 800
    monkeypatch.setenv("KNOWLEDGE_DEDUPE_SIMILARITY", "1.5")
    settings.reset()
    with pytest.raises(config.ConfigError, match=r"KNOWLEDGE_DEDUPE_SIMILARITY must be in \[0.5, 1.0\], got 1.5"):
        settings.get()
    monkeypatch.setenv("KNOWLEDGE_DEDUPE_SIMILARITY", "high")
    with pytest.raises(config.ConfigError, match="KNOWLEDGE_DEDUPE_SIMILARITY must be a number"):
        settings.get()
    monkeypatch.undo()
    settings.reset()


def test_numbers_choices_and_lists(monkeypatch):
    assert config.env_int("UNIT_N", 5, lo=1, hi=9) == 5 and config.env_float("UNIT_F", 0.5, lo=0, hi=1) == 0.5
    monkeypatch.setenv("UNIT_N", "12")
    with pytest.raises(config.ConfigError, match=r"UNIT_N must be in \[1, 9\], got 12"):
        config.env_int("UNIT_N", 5, lo=1, hi=9)
    monkeypatch.setenv("UNIT_N", "five")
    with pytest.raises(config.ConfigError, match="UNIT_N must be an integer"):
        config.env_int("UNIT_N", 5)
    monkeypatch.setenv("UNIT_C", "maybe")
    with pytest.raises(config.ConfigError, match="UNIT_C must be one of on, off"):
        config.env_choice("UNIT_C", "on", ("on", "off"))
    monkeypatch.setenv("UNIT_L", " a, ,b ,")
    assert config.env_list("UNIT_L") == ("a", "b") and config.env_list("UNIT_NONE") == ()
    assert config.env_list("UNIT_NONE", "x,y") == ("x", "y")
    monkeypatch.setenv("UNIT_BLANK", "   ")
    assert config.env("UNIT_BLANK", "d") == "d"  # a blank value counts as unset


def test_sections_require_what_production_needs(monkeypatch):
    """A function's section (here: the notification worker's) is checked under production rules only."""
    from shared.notifications import settings

    monkeypatch.delenv("WEBHOOKS_WORKER_URL", raising=False)
    monkeypatch.delenv("TASKS_INVOKER_SA", raising=False)
    settings.reset()
    assert settings.worker().queue == "webhook-deliveries"  # locally: the defaults
    monkeypatch.setenv("APP_ENV", "production")
    config.reset()
    with pytest.raises(config.ConfigError, match="missing environment variable WEBHOOKS_WORKER_URL"):
        settings.worker()
    monkeypatch.setenv("WEBHOOKS_WORKER_URL", "https://example.com/webhookWorker")
    monkeypatch.setenv("TASKS_INVOKER_SA", "tasks@p-123456.iam.gserviceaccount.com")
    assert settings.worker().worker_url.endswith("/webhookWorker")
    monkeypatch.setenv("WEBHOOKS_BACKOFF_S", "30,soon")
    settings.reset()
    with pytest.raises(config.ConfigError, match="WEBHOOKS_BACKOFF_S must be comma-separated seconds"):
        settings.get()
    settings.reset()
