"""Cloud Function `pricingPlans` (HTTP). Routes and logic: shared/api/pricing_plans.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.pricing_plans import api
from shared.http import json_errors

json_errors(functions_framework)
startup.validate()  # production settings, at cold start


@functions_framework.http
def pricingPlans(request):
    return api(request)
