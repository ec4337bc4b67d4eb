"""Cloud Function `stripeEventWorker` (HTTP, Cloud Tasks target: one recorded Stripe event).
Logic: shared/api/stripe_webhook.py and shared/billing/sync.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.stripe_event_worker import api
from shared.billing import settings as billing_settings
from shared.deploy import settings as deploy_settings
from shared.http import json_errors

json_errors(functions_framework)
# production settings, at cold start (deploy's: plan limits queue stop jobs)
startup.validate(billing_settings.event_worker, deploy_settings.get)


@functions_framework.http
def stripeEventWorker(request):
    return api(request)
