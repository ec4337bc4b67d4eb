"""Cloud Function `costs` (HTTP). Routes and logic: shared/api/costs.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.costs import api
from shared.deploy import settings as deploy_settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(deploy_settings.get)  # production settings, at cold start (a raised budget restarts bots)


@functions_framework.http
def costs(request):
    return api(request)
