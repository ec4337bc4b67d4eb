"""Cloud Function `billing` (HTTP). Routes and logic: shared/api/billing.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.billing import api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def billing(request):
    return api(request)
