"""Cloud Function `notifications` (HTTP). Routes and logic: shared/api/notifications.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import outbound, startup
from shared.api.notifications import api
from shared.http import json_errors
from shared.notifications import settings

json_errors(functions_framework)
startup.validate(settings.get, outbound.settings)  # production settings, at cold start


@functions_framework.http
def notifications(request):
    return api(request)
