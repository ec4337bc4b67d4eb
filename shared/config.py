"""Configuration from environment variables: read once, validated, clear errors.

Core settings are needed by every function. Settings of one domain (Stripe,
Compute, ...) live in that domain's section so a function never fails to start
for a variable it does not use.

APP_ENV chooses the rules:
- `production` (the default): production rules; no emulator or stand-in endpoint is accepted.
- `deploy-check`: the same production rules (everything production requires is required, no local
  shortcut), but emulator and stand-in endpoints are accepted: a local run of the deploy manifest
  against the emulators.
- `local` (`make dev`, tests): emulators, and the local shortcuts (no Google tokens, defaults for
  what production must set).
"""
from __future__ import annotations

import os
from dataclasses import dataclass
from functools import lru_cache


class ConfigError(RuntimeError):
    pass


def env(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if required and default is None:
        raise ConfigError(f"missing environment variable {name}")
    return default


def env_int(name: str, default: int, *, lo: int = 1, hi: int = 2**31) -> int:
    raw = env(name, str(default))
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be an integer, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"environment variable {name} must be in [{lo}, {hi}], got {value}")
    return value


def env_choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    value = env(name, default)
    if value not in choices:
        raise ConfigError(f"environment variable {name} must be one of {', '.join(choices)}, got {value!r}")
    return value


@dataclass(frozen=True)
class Config:
    project: str
    app_env: str  # "local" | "deploy-check" | "production"
    auth_provider: str  # "firebase" | "clerk"
    clerk_issuer: str | None
    clerk_jwks_url: str | None
    cors_origins: tuple[str, ...]
    max_body_bytes: int

    @property
    def local(self) -> bool:
        """The local shortcuts apply (APP_ENV=local only); otherwise production rules."""
        return self.app_env == "local"

    @property
    def emulators_allowed(self) -> bool:
        """Emulator and stand-in endpoints may be configured (local and deploy-check)."""
        return self.app_env in ("local", "deploy-check")


APP_ENVS = ("local", "deploy-check", "production")


def load() -> Config:
    project = env("GOOGLE_CLOUD_PROJECT", required=True)
    app_env = env_choice("APP_ENV", "production", APP_ENVS)
    auth_provider = env_choice("AUTH_PROVIDER", "firebase", ("firebase", "clerk"))
    if app_env not in ("local", "deploy-check"):
        # The auth emulator's unsigned tokens pass verify_id_token while this is set.
        for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):
            if env(name):
                raise ConfigError(f"{name} is set but APP_ENV is {app_env!r} (emulators only with "
                                  "'local' or 'deploy-check'): refusing to start")
    clerk_issuer = clerk_jwks = None
    if auth_provider == "clerk":
        clerk_issuer = env("CLERK_ISSUER", required=True).rstrip("/")
        clerk_jwks = env("CLERK_JWKS_URL", f"{clerk_issuer}/.well-known/jwks.json")
    origins = tuple(o.strip().rstrip("/") for o in (env("CORS_ORIGINS", "") or "").split(",") if o.strip())
    return Config(
        project=project,
        app_env=app_env,
        auth_provider=auth_provider,
        clerk_issuer=clerk_issuer,
        clerk_jwks_url=clerk_jwks,
        cors_origins=origins,
        max_body_bytes=env_int("MAX_BODY_BYTES", 256 * 1024, lo=1024, hi=10 * 1024 * 1024),
    )


@lru_cache(maxsize=1)
def get() -> Config:
    return load()


def reset() -> None:
    """Forget the cached config (tests change the environment)."""
    get.cache_clear()


def refuse_local_endpoint(name: str) -> None:
    """For variables that point the app at a local stand-in: refused unless emulators are allowed."""
    if env(name) and not get().emulators_allowed:
        raise ConfigError(f"{name} points at a local stand-in: only with APP_ENV=local or deploy-check")
