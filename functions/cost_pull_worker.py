"""Cloud Function `costPullWorker` (HTTP, Cloud Tasks target: one batch of a cost pull)."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.cost_pulls import worker_api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def costPullWorker(request):
    return worker_api(request)
