"""Cloud Function `pluginConfigs` (HTTP). Routes and logic: shared/api/plugin_configs.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.plugin_configs import api
from shared.deploy import settings
from shared.http import json_errors

json_errors(functions_framework)
startup.validate(settings.get)  # production settings, at cold start


@functions_framework.http
def pluginConfigs(request):
    return api(request)
