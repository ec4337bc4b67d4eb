"""Cloud Function `stripeWebhook` (HTTP, called by Stripe). Logic: shared/api/stripe_webhook.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.stripe_webhook import api
from shared.billing import settings as billing_settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(billing_settings.webhook)  # production settings, at cold start


@functions_framework.http
def stripeWebhook(request):
    return api(request)
