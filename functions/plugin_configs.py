"""Cloud Function `pluginConfigs` (HTTP). Routes and logic: shared/api/plugin_configs.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared.api.plugin_configs import api


@functions_framework.http
def pluginConfigs(request):
    return api(request)
