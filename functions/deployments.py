"""Cloud Function `deployments` (HTTP). Routes and logic: shared/api/deployments.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.deployments import api
from shared.deploy import settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(settings.get)  # production settings, at cold start


@functions_framework.http
def deployments(request):
    return api(request)
