"""The unit tier: pure logic, no emulator, no stand-in, no server (`make unit`, under 20 s).

A test here that asks for the stack (directly or through a fixture that needs it) fails at once
instead of starting the emulators: it belongs in tests/, beside the other emulator tests."""
from __future__ import annotations

import pytest

from shared import config


@pytest.fixture(scope="session")
def stack():
    pytest.fail("tests/unit runs without emulators: a test that needs them belongs in tests/")


@pytest.fixture(autouse=True)
def local_config(monkeypatch):
    """A local project whatever the shell has (the settings read the environment once per test)."""
    for name in ("FIRESTORE_EMULATOR_HOST", "FIREBASE_AUTH_EMULATOR_HOST"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "demo-unit")
    monkeypatch.setenv("APP_ENV", "local")
    config.reset()
    yield
    monkeypatch.undo()
    config.reset()
