"""Cloud Function `billing` (HTTP). Routes and logic: shared/api/billing.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.billing import api


@functions_framework.http
def billing(request):
    return api(request)
