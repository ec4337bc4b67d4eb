"""Cloud Function `costPullWorker` (HTTP, Cloud Tasks target: one batch of a cost pull)."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.cost_pull_worker import api
from shared.costs import settings
from shared.deploy import settings as deploy_settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(settings.worker, deploy_settings.get)  # production settings, at cold start (budgets stop bots)


@functions_framework.http
def costPullWorker(request):
    return api(request)
