"""Cloud Function `deployWorker` (HTTP, Cloud Tasks target). Routes and logic: shared/api/deploy_worker.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.deploy_worker import api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def deployWorker(request):
    return api(request)
