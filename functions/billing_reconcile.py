"""Cloud Function `billingReconcile` (HTTP: Cloud Scheduler or an admin). Logic: shared/api/billing_reconcile.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.billing_reconcile import api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def billingReconcile(request):
    return api(request)
