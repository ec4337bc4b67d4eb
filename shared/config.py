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

`setting()` reads a variable production must set: under production rules it is required and
checked against its rule (an https URL, a service account, ...); locally it is read as it is.
`shared/startup.py` reads the sections a function needs when its module is imported, so a
production function with a missing or malformed variable refuses to start.

The settings pattern (one for every domain, docs/ARCHITECTURE.md "Settings"): a domain's variables
are read in `shared/<domain>/settings.py` only, which has a frozen dataclass `Settings`, `get()`
(cached: read and validated once per instance), `reset()` (tests change the environment) and, when
a function of the domain needs more in production, a section (`worker()`, `scheduled()`, ...) that
`require`s those variables and returns `get()`. Variables are read only through the helpers below:
`env`, `env_int`, `env_float`, `env_choice`, `env_list` (a value with a local default, checked) and
`setting` / `require` (a value production must set). pydantic-settings would do the reading, but
its import adds ~60-100 ms to every cold start (measured on top of pydantic), for about 40 lines.
"""
from __future__ import annotations

import os
import re
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal, overload


class ConfigError(RuntimeError):
    pass


# With a default, or required, a variable is a str; otherwise it may be None (unset or blank).
@overload
def env(name: str, default: str, *, required: bool = False) -> str: ...
@overload
def env(name: str, default: None = None, *, required: Literal[True]) -> str: ...
@overload
def env(name: str, default: None = None, *, required: bool = False) -> str | None: ...


def env(name: str, default: str | None = None, *, required: bool = False) -> str | None:
    value = os.environ.get(name, "").strip()
    if value:
        return value
    if required and default is None:
        raise ConfigError(f"missing environment variable {name}")
    return default


def env_int(name: str, default: int, *, lo: int = 1, hi: int = 2**31) -> int:
    return _env_number(name, default, int, "an integer", lo, hi)


def env_float(name: str, default: float, *, lo: float, hi: float) -> float:
    return _env_number(name, default, float, "a number", lo, hi)


def _env_number(name, default, parse, kind: str, lo, hi):
    raw = env(name, str(default))
    try:
        value = parse(raw)
    except ValueError:
        raise ConfigError(f"environment variable {name} must be {kind}, got {raw!r}") from None
    if not lo <= value <= hi:
        raise ConfigError(f"environment variable {name} must be in [{lo}, {hi}], got {value}")
    return value


def items(raw: str | None) -> tuple[str, ...]:
    """The items of a comma-separated value, stripped, blanks dropped."""
    return tuple(part.strip() for part in (raw or "").split(",") if part.strip())


def env_list(name: str, default: str = "") -> tuple[str, ...]:
    """A comma-separated variable (CORS_ORIGINS, DEPLOY_ALLOWED_PROJECTS, ...)."""
    return items(env(name, default))


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
    function_timeout_s: int  # the function's deadline (its --timeout); requests end inside it (shared/faults.py)
    rate_limits: dict[str, int]  # requests per caller per minute, by the routes' rate class (shared/ratelimit.py)
    admin_emails: tuple[str, ...] = ()  # ADMIN_EMAILS: verified e-mails that are always admins (lower case)

    @property
    def local(self) -> bool:
        """The local shortcuts apply (APP_ENV=local only); otherwise production rules."""
        return self.app_env == "local"

    @property
    def emulators_allowed(self) -> bool:
        """Emulator and stand-in endpoints may be configured (local and deploy-check)."""
        return self.app_env in ("local", "deploy-check")


APP_ENVS = ("local", "deploy-check", "production")
_EMAIL = re.compile(r"[^@\s,]+@[^@\s,]+\.[^@\s,]+")


def admin_emails() -> tuple[str, ...]:
    """ADMIN_EMAILS: comma-separated e-mails whose verified owners are admins (the first admins)."""
    emails = tuple(e.lower() for e in env_list("ADMIN_EMAILS"))
    bad = [e for e in emails if not _EMAIL.fullmatch(e)]
    if bad:
        raise ConfigError(f"environment variable ADMIN_EMAILS must be a comma-separated list of e-mails, "
                          f"got {', '.join(map(repr, bad))}")
    return emails


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
    origins = tuple(o.rstrip("/") for o in env_list("CORS_ORIGINS"))
    return Config(
        project=project,
        app_env=app_env,
        auth_provider=auth_provider,
        clerk_issuer=clerk_issuer,
        clerk_jwks_url=clerk_jwks,
        cors_origins=origins,
        max_body_bytes=env_int("MAX_BODY_BYTES", 256 * 1024, lo=1024, hi=10 * 1024 * 1024),
        function_timeout_s=env_int("FUNCTION_TIMEOUT_S", 60, lo=1, hi=3600),
        rate_limits=rate_limits(env("RATE_LIMITS", "")),
        admin_emails=admin_emails(),
    )


# Requests per caller (a user, or a bot credential) per minute. `default` counts every authenticated
# route without a class of its own; the others are the routes that spend money per call.
RATE_LIMITS = {"default": 300, "embeddings": 30, "deploy": 10, "billing": 10}


def rate_limits(raw: str) -> dict[str, int]:
    """RATE_LIMITS="default=300,embeddings=30": overrides per class (0: no limit for that class)."""
    limits = dict(RATE_LIMITS)
    for part in filter(None, (p.strip() for p in raw.split(","))):
        name, _, value = part.partition("=")
        if name.strip() not in limits or not value.strip().isdigit():
            raise ConfigError(f"environment variable RATE_LIMITS: {part!r} is not <class>=<requests per minute> "
                              f"with a class among {', '.join(RATE_LIMITS)}")
        limits[name.strip()] = int(value)
    return limits


@lru_cache(maxsize=1)
def get() -> Config:
    return load()


def reset() -> None:
    """Forget the cached config (tests change the environment)."""
    get.cache_clear()


def emulator_host(service: str) -> str | None:
    """<SERVICE>_EMULATOR_HOST, which Google's client libraries follow by themselves: set, the service
    is an emulator (and has no IAM to configure)."""
    return env(f"{service}_EMULATOR_HOST")


def refuse_local_endpoint(name: str) -> None:
    """For variables that point the app at a local stand-in: refused unless emulators are allowed."""
    if env(name) and not get().emulators_allowed:
        raise ConfigError(f"{name} points at a local stand-in: only with APP_ENV=local or deploy-check")


# Rules of the variables production must set: each returns what is wrong with a value, or None.
Rule = Callable[[str], "str | None"]
_PROJECT_ID = r"[a-z][a-z0-9-]{4,28}[a-z0-9]"  # 6-30 characters, a letter first, no hyphen last


def matching(pattern: str, what: str) -> Rule:
    """A value that is `what` when it matches `pattern` whole."""
    def rule(value: str) -> str | None:
        return None if re.fullmatch(pattern, value) else f"must be {what}, got {value!r}"
    return rule


def list_of(pattern: str, what: str) -> Rule:
    """A comma-separated list of `what`, each matching `pattern` whole."""
    def rule(value: str) -> str | None:
        bad = [p for p in (v.strip() for v in value.split(",")) if not re.fullmatch(pattern, p)]
        return f"must be a comma-separated list of {what}, got {', '.join(map(repr, bad))}" if bad else None
    return rule


_REGION = r"[a-z]+(-[a-z]+)+[0-9]+"
https_url = matching(r"https://[A-Za-z0-9.-]+(:[0-9]+)?(/[^\s]*)?", "an https URL")
service_account = matching(r"[a-z0-9][a-z0-9._-]*@[a-z0-9][a-z0-9.-]*\.iam\.gserviceaccount\.com",
                           "a service account e-mail (...@....iam.gserviceaccount.com)")
project_ids = list_of(_PROJECT_ID, "project ids")
pubsub_topic = matching(rf"projects/{_PROJECT_ID}/topics/[A-Za-z][A-Za-z0-9._~+%-]{{2,254}}",
                        "a topic name (projects/<project>/topics/<topic>)")
region = matching(_REGION, "a region (e.g. us-central1)")
regions = list_of(_REGION, "regions (e.g. us-central1)")


def non_empty(value: str) -> str | None:
    return None  # env() treats a blank value as missing


def prefixed(*prefixes: str) -> Rule:
    """A secret of a known shape (the value is never repeated in the message)."""
    def rule(value: str) -> str | None:
        return None if value.startswith(prefixes) else f"must start with {' or '.join(prefixes)}"
    return rule


@overload
def setting(name: str, rule: Rule, default: str, *, required_locally: bool = False) -> str: ...
@overload
def setting(name: str, rule: Rule, default: None = None, *, required_locally: Literal[True]) -> str: ...
@overload
def setting(name: str, rule: Rule, default: None = None, *, required_locally: bool = False) -> str | None: ...


def setting(name: str, rule: Rule, default: str | None = None, *, required_locally: bool = False) -> str | None:
    """A variable production must set. Under production rules (APP_ENV production or deploy-check)
    it is required and must pass `rule`; locally it is read as it is (`default` when absent)."""
    if get().local:
        return env(name, default, required=required_locally)
    value = env(name, required=True)
    problem = rule(value)
    if problem:
        raise ConfigError(f"environment variable {name} {problem}")
    return value


def require(rules: dict[str, Rule]) -> None:
    """`setting` for each variable of a section: under production rules each must be set and pass its rule."""
    for name, rule in rules.items():
        setting(name, rule)
