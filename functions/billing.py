"""Cloud Function `billing` (HTTP). Routes and logic: shared/api/billing.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.billing import api
from shared.billing import settings as billing_settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(billing_settings.checkout)  # production settings, at cold start


@functions_framework.http
def billing(request):
    return api(request)
