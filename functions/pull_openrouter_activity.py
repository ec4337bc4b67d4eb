"""Cloud Function `pullOpenrouterActivity` (HTTP, Cloud Scheduler every 6 h or an admin). Logic: shared/costs/."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.pull_openrouter_activity import api
from shared.costs import settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(settings.scheduled)  # production settings, at cold start


@functions_framework.http
def pullOpenrouterActivity(request):
    return api(request)
