"""Cloud Function `billingReconcile` (HTTP: Cloud Scheduler or an admin). Logic: shared/api/billing_reconcile.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.billing_reconcile import api
from shared.billing import settings as billing_settings
from shared.deploy import settings as deploy_settings
from shared.http import json_errors

json_errors(functions_framework)
# production settings, at cold start (deploy's: plan limits queue stop jobs)
startup.validate(billing_settings.reconcile, deploy_settings.get)


@functions_framework.http
def billingReconcile(request):
    return api(request)
