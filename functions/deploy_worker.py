"""Cloud Function `deployWorker` (HTTP, Cloud Tasks target). Routes and logic: shared/api/deploy_worker.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.deploy_worker import api
from shared.deploy import settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(settings.worker)  # production settings, at cold start


@functions_framework.http
def deployWorker(request):
    return api(request)
