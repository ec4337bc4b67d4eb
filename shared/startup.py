"""Production settings checked at cold start, not on a user's first request.

Each module in functions/ calls `validate(*sections)` right after its imports, naming the settings
sections its function needs (each a settings getter, e.g. `shared.deploy.settings.worker`); the core
configuration (`shared.config.get`) is always checked first. Under production rules (APP_ENV
production or deploy-check) a missing or malformed variable prints one line to stderr,
`startup refused: <what is wrong, naming the variable>`, and exits the process with status 1, so a
bad deploy fails at start-up. With APP_ENV=local nothing is read here: settings stay lazy.

Only environment variables are read: no network calls and no heavy client library.
"""
from __future__ import annotations

import sys
from collections.abc import Callable

from shared import config


def check(*sections: Callable[[], object]) -> str | None:
    """What is wrong with the core configuration and `sections` (None if nothing). Caches are
    reset first, so the current environment is what is read."""
    getters: tuple[Callable[[], object], ...] = (config.get, *sections)
    for getter in getters:
        _forget(getter)
    try:
        for getter in getters:
            getter()
    except config.ConfigError as exc:
        return str(exc)
    return None


def validate(*sections: Callable[[], object]) -> None:
    """Refuse to start (stderr line, exit status 1) if production settings are missing or malformed."""
    if (config.env("APP_ENV", "production") or "").strip() == "local":
        return
    problem = check(*sections)
    if problem is not None:
        print(f"startup refused: {problem}", file=sys.stderr, flush=True)
        raise SystemExit(1)


def _forget(getter: Callable[[], object]) -> None:
    """Drop a cached section (lru_cache getters; a role getter's module keeps `get` and `reset`)."""
    clear = getattr(getter, "cache_clear", None)
    if clear is not None:
        clear()
        return
    reset = getattr(sys.modules.get(getattr(getter, "__module__", ""), None), "reset", None)
    if callable(reset):
        reset()
