"""Cloud Function `apiKeys` (HTTP). Routes and logic: shared/api/api_keys.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.api_keys import api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def apiKeys(request):
    return api(request)
