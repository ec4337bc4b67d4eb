"""Cloud Function `pullOpenrouterActivity` (HTTP, Cloud Scheduler every 6 h or an admin). Logic: shared/costs/."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.cost_pulls import activity_api


@functions_framework.http
def pullOpenrouterActivity(request):
    return activity_api(request)
