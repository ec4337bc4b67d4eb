"""Cloud Function `auditLog` (HTTP). Routes: shared/api/audit_log.py; recording: shared/audit.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import audit, startup
from shared.api.audit_log import api
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(audit.retention_days)  # production settings, at cold start


@functions_framework.http
def auditLog(request):
    return api(request)
