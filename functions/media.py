"""Cloud Function `media` (HTTP). Routes and logic: shared/api/media.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.media import api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def media(request):
    return api(request)
