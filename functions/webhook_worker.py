"""Cloud Function `webhookWorker` (HTTP, Cloud Tasks target: one attempt of a webhook delivery)."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import outbound, startup
from shared.api.webhook_worker import api
from shared.http import json_errors
from shared.notifications import settings

json_errors(functions_framework)
startup.validate(settings.worker, outbound.settings)  # production settings, at cold start


@functions_framework.http
def webhookWorker(request):
    return api(request)
