"""Cloud Function `healthCheck` (HTTP, Cloud Scheduler every minute or an admin). Logic: shared/health/."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.health_check import api
from shared.deploy import settings as deploy_settings
from shared.health import settings
from shared.http import json_errors
from shared.notifications import settings as notification_settings

json_errors(functions_framework)
# restarts are deploy jobs (their queue and worker); stalled webhook deliveries are queued here
startup.validate(settings.scheduled, deploy_settings.get, notification_settings.worker)


@functions_framework.http
def healthCheck(request):
    return api(request)
