import pytest

from shared import config


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("APP_ENV", "AUTH_PROVIDER", "FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST",
                 "CLERK_ISSUER", "CLERK_JWKS_URL", "CORS_ORIGINS", "MAX_BODY_BYTES"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", "p1")
    yield monkeypatch
    config.reset()


def test_missing_variable_is_named(clean_env):
    clean_env.delenv("GOOGLE_CLOUD_PROJECT")
    with pytest.raises(config.ConfigError, match="GOOGLE_CLOUD_PROJECT"):
        config.load()


def test_defaults_and_lists(clean_env):
    clean_env.setenv("CORS_ORIGINS", "https://a.example.com/, https://b.example.com")
    cfg = config.load()
    assert cfg.app_env == "production" and cfg.auth_provider == "firebase" and not cfg.local
    assert cfg.cors_origins == ("https://a.example.com", "https://b.example.com")


@pytest.mark.parametrize("name", ["FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"])
def test_emulator_variables_refused_outside_local(clean_env, name):
    clean_env.setenv(name, "127.0.0.1:9099")
    with pytest.raises(config.ConfigError, match=name):
        config.load()
    clean_env.setenv("APP_ENV", "local")
    assert config.load().local


def test_bad_values_are_explained(clean_env):
    clean_env.setenv("APP_ENV", "staging")
    with pytest.raises(config.ConfigError, match="APP_ENV must be one of local, production"):
        config.load()
    clean_env.setenv("APP_ENV", "local")
    clean_env.setenv("MAX_BODY_BYTES", "lots")
    with pytest.raises(config.ConfigError, match="MAX_BODY_BYTES must be an integer"):
        config.load()


def test_clerk_needs_its_issuer(clean_env):
    clean_env.setenv("AUTH_PROVIDER", "clerk")
    with pytest.raises(config.ConfigError, match="CLERK_ISSUER"):
        config.load()
    clean_env.setenv("CLERK_ISSUER", "https://clerk.example.com/")
    cfg = config.load()
    assert cfg.clerk_jwks_url == "https://clerk.example.com/.well-known/jwks.json"
