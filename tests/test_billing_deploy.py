"""The billing functions are registered for the dev server and deployed by cloudbuild.yaml
(entry point, source file, Stripe secrets), and the reconcile job is scheduled with OIDC."""
from pathlib import Path

import yaml

from devtools.catalog import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
BILLING = {"billing": "functions/billing.py", "stripeWebhook": "functions/stripe_webhook.py",
           "billingReconcile": "functions/billing_reconcile.py"}


def test_billing_functions_are_catalogued_and_deployed():
    catalog = {name: src for name, src, _ in FUNCTIONS}
    steps = {s["id"]: s for s in yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())["steps"]}
    for name, src in BILLING.items():
        assert catalog[name] == src and (ROOT / src).exists()
        assert f"def {name}(request)" in (ROOT / src).read_text()
        args = " ".join(steps[name]["args"])
        assert f"--entry-point={name}" in args and f"GOOGLE_FUNCTION_SOURCE={src}" in args
        assert "STRIPE_SECRET_KEY=stripe-secret-key:latest" in args and "APP_ENV=production" in args
    assert "STRIPE_WEBHOOK_SECRET=stripe-webhook-secret" in " ".join(steps["stripeWebhook"]["args"])
    schedule = " ".join(steps["billingReconcile-schedule"]["args"])
    assert "--oidc-service-account-email=$_SCHEDULER_SA@" in schedule and "billingReconcile" in schedule
    assert "BILLING_SCHEDULER_SA=$_SCHEDULER_SA@" in " ".join(steps["billingReconcile"]["args"])
