"""Cloud Function `users` (HTTP). Routes and logic: shared/api/users.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import startup
from shared.api.users import api
from shared.http import json_errors

json_errors(functions_framework)
startup.validate()  # production settings, at cold start


@functions_framework.http
def users(request):
    return api(request)
