"""Cloud Function `knowledge` (HTTP). Routes and logic: shared/api/knowledge.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.knowledge import api
from shared.http import json_errors

json_errors(functions_framework)


@functions_framework.http
def knowledge(request):
    return api(request)
