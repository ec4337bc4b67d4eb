"""The baseline of the cold-start benchmark: a bare functions-framework function."""
import functions_framework


@functions_framework.http
def bare(request):
    return {"ok": True}
