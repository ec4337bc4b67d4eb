"""Cloud Function `stripeWebhook` (HTTP, called by Stripe). Logic: shared/api/stripe_webhook.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.stripe_webhook import api


@functions_framework.http
def stripeWebhook(request):
    return api(request)
