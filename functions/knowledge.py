"""Cloud Function `knowledge` (HTTP). Routes and logic: shared/api/knowledge.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import embeddings, startup
from shared.api.knowledge import api
from shared.http import json_errors
from shared.knowledge import settings

json_errors(functions_framework)
startup.validate(settings.get, settings.reembed, embeddings.settings)  # production settings, at cold start


@functions_framework.http
def knowledge(request):
    return api(request)
