"""Cloud Function `pullCosts` (HTTP, Cloud Scheduler every 6 h or an admin). Logic: shared/costs/."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.cost_pulls import costs_api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def pullCosts(request):
    return costs_api(request)
