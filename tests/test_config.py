import pytest

from shared import config


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("APP_ENV", "AUTH_PROVIDER", "FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST",
                 "CLERK_ISSUER", "CLERK_JWKS_URL", "CORS_ORIGINS", "MAX_BODY_BYTES", "STRIPE_API_BASE",
                 "GOOGLE_CERTS_URL"):
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
def test_emulator_variables_refused_in_production(clean_env, name):
    clean_env.setenv(name, "127.0.0.1:9099")
    with pytest.raises(config.ConfigError, match=name):
        config.load()
    clean_env.setenv("APP_ENV", "local")
    assert config.load().local and config.load().emulators_allowed


@pytest.mark.parametrize("name", ["FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST"])
def test_deploy_check_is_production_rules_with_emulators(clean_env, name):
    clean_env.setenv(name, "127.0.0.1:9099")
    clean_env.setenv("APP_ENV", "deploy-check")
    cfg = config.load()
    assert cfg.app_env == "deploy-check" and cfg.emulators_allowed and not cfg.local


@pytest.mark.parametrize("name", ["STRIPE_API_BASE", "GOOGLE_CERTS_URL"])
def test_stand_in_endpoints_only_where_emulators_are_allowed(clean_env, name):
    from shared import google_identity
    from shared.billing import config as billing_config

    read = {"STRIPE_API_BASE": billing_config.load, "GOOGLE_CERTS_URL": google_identity.certs_url}[name]
    clean_env.setenv(name, "http://127.0.0.1:9")
    with pytest.raises(config.ConfigError, match=name):
        read()
    for app_env in ("deploy-check", "local"):
        clean_env.setenv("APP_ENV", app_env)
        config.reset()
        read()
    config.reset()


def test_bad_values_are_explained(clean_env):
    clean_env.setenv("APP_ENV", "staging")
    with pytest.raises(config.ConfigError, match="APP_ENV must be one of local, deploy-check, production"):
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
