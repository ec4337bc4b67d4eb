import pytest

from shared import config


@pytest.fixture
def clean_env(monkeypatch):
    for name in ("APP_ENV", "AUTH_PROVIDER", "FIREBASE_AUTH_EMULATOR_HOST", "FIRESTORE_EMULATOR_HOST",
                 "CLERK_ISSUER", "CLERK_JWKS_URL", "CORS_ORIGINS", "MAX_BODY_BYTES", "STRIPE_API_BASE",
                 "GOOGLE_CERTS_URL", "DEPLOY_WORKER_URL"):
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
    from shared.billing import settings as billing_settings

    def billing() -> None:
        billing_settings.reset()
        billing_settings.get()

    read = {"STRIPE_API_BASE": billing, "GOOGLE_CERTS_URL": google_identity.certs_url}[name]
    clean_env.setenv(name, "http://127.0.0.1:9")
    with pytest.raises(config.ConfigError, match=name):
        read()
    for app_env in ("deploy-check", "local"):
        clean_env.setenv("APP_ENV", app_env)
        config.reset()
        read()
    config.reset()
    billing_settings.reset()


def test_production_settings_are_required_and_checked(clean_env):
    """Under production rules (production, deploy-check) `setting` requires the variable and
    checks its shape; locally it is read as it is."""
    for app_env in ("production", "deploy-check"):
        clean_env.setenv("APP_ENV", app_env)
        config.reset()
        with pytest.raises(config.ConfigError, match="missing environment variable DEPLOY_WORKER_URL"):
            config.setting("DEPLOY_WORKER_URL", config.https_url)
        clean_env.setenv("DEPLOY_WORKER_URL", "http://127.0.0.1:8080/deployWorker")
        with pytest.raises(config.ConfigError, match="DEPLOY_WORKER_URL must be an https URL"):
            config.setting("DEPLOY_WORKER_URL", config.https_url)
        clean_env.delenv("DEPLOY_WORKER_URL")
    clean_env.setenv("APP_ENV", "local")
    config.reset()
    assert config.setting("DEPLOY_WORKER_URL", config.https_url, "d") == "d"
    clean_env.setenv("DEPLOY_WORKER_URL", "http://127.0.0.1:8080/deployWorker")
    assert config.setting("DEPLOY_WORKER_URL", config.https_url) == "http://127.0.0.1:8080/deployWorker"


@pytest.mark.parametrize("rule,good,bad", [
    (config.https_url, ["https://us-central1-p.cloudfunctions.net/f", "https://x.run.app"],
     ["http://x.example.com", "https://", "ftp://x", "https://a b"]),
    (config.service_account, ["invoker@my-proj.iam.gserviceaccount.com"],
     ["invoker@example.com", "123-compute@developer.gserviceaccount.com", "invoker"]),
    (config.project_ids, ["acme-bots", "acme-bots, other-proj1"],
     ["Acme", "ab", "1abcdef", "acme-", "acme-bots,,x-proj", "a" * 31]),
    (config.pubsub_topic, ["projects/my-proj/topics/provisioning-events"],
     ["provisioning-events", "projects/my-proj/subscriptions/x", "projects/P/topics/t1"]),
    (config.region, ["us-central1", "europe-west1", "northamerica-northeast1"], ["us", "US-CENTRAL1", "central1"]),
    (config.prefixed("sk_", "rk_"), ["sk_live_abc", "rk_live_abc"], ["pk_live_abc", "whsec_x"]),
])
def test_rules(rule, good, bad):
    assert [v for v in good if rule(v)] == []
    assert [v for v in bad if rule(v) is None] == []


def test_secret_values_are_not_repeated(clean_env):
    assert "pk_live_secret" not in config.prefixed("sk_")("pk_live_secret")


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
