"""Cloud Function `backups` (HTTP; its cleanup route: Cloud Scheduler). Routes: shared/api/backups.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.backups import api
from shared.backups import settings as backup_settings
from shared.deploy import settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(settings.get, backup_settings.scheduler)  # production settings, at cold start


@functions_framework.http
def backups(request):
    return api(request)
