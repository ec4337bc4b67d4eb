"""The function table (functions/__init__.py), the files in functions/ and the modules of shared/api/
agree: one thin entry module and one routes module per function (the manifest: tests/test_manifest.py)."""
import ast
import importlib
from pathlib import Path

from functions import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
API_HELPERS = {"__init__", "inputs"}  # shared/api/ modules that serve no function of their own


def test_function_table_matches_function_modules():
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "functions").glob("*.py") if not p.name.startswith("_")}
    assert files == {f.source for f in FUNCTIONS}
    assert len({f.name for f in FUNCTIONS}) == len(FUNCTIONS)
    for f in FUNCTIONS:
        text = (ROOT / f.source).read_text()
        tree = ast.parse(text)
        assert f.name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, f"{f.source} lacks {f.name}()"
        if f.trigger == "http":  # JSON errors also for what Flask rejects before our routing
            assert "json_errors(functions_framework)" in text, f.source
            assert f"from {f.module} import api\n" in text and "return api(request)" in text, \
                f"{f.source}: serve the `api` of {f.module}"


def test_one_shared_api_module_per_http_function():
    modules = {p.stem for p in (ROOT / "shared" / "api").glob("*.py")} - API_HELPERS
    assert {f"shared.api.{m}" for m in modules} == {f.module for f in FUNCTIONS if f.trigger == "http"}
    for f in FUNCTIONS:
        if f.trigger == "http":
            assert importlib.import_module(f.module).api.name == f.name, f.module
