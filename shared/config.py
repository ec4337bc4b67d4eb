"""Configuration from environment variables: read once, validated, clear errors.

Core settings are needed by every function. Settings of one domain (Stripe,
Compute, ...) live in that domain's section so a function never fails to start
for a variable it does not use.
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
    app_env: str  # "local" | "production"
    auth_provider: str  # "firebase" | "clerk"
    clerk_issuer: str | None
    clerk_jwks_url: str | None
    cors_origins: tuple[str, ...]
    max_body_bytes: int

    @property
    def local(self) -> bool:
        return self.app_env == "local"


def load() -> Config:
    project = env("GOOGLE_CLOUD_PROJECT", required=True)
    app_env = env_choice("APP_ENV", "production", ("local", "production"))
    auth_provider = env_choice("AUTH_PROVIDER", "firebase", ("firebase", "clerk"))
    if app_env != "local":
        # The auth emulator's unsigned tokens pass verify_id_token while this is set.
        for name in ("FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"):
            if env(name):
                raise ConfigError(f"{name} is set but APP_ENV is not 'local': refusing to start")
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
