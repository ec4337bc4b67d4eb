"""Cloud Function `knowledgeReembedWorker` (HTTP, private: Cloud Tasks).
Logic: shared/api/knowledge_reembed_worker.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import embeddings, startup
from shared.api.knowledge_reembed_worker import api
from shared.http import json_errors
from shared.knowledge import settings

json_errors(functions_framework)
startup.validate(settings.get, settings.reembed, embeddings.settings)  # production settings, at cold start


@functions_framework.http
def knowledgeReembedWorker(request):
    return api(request)
