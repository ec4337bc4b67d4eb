"""The function table (functions/__init__.py), the files in functions/ and the modules of shared/api/
agree: one thin entry module and one routes module per function (the manifest: tests/test_manifest.py)."""
import ast
import importlib
from pathlib import Path

from functions import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent
API_HELPERS = {"__init__", "inputs", "cost_pulls"}  # shared/api/ modules that serve no function of their own


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


def _imports_http(tree: ast.AST) -> bool:
    for node in ast.walk(tree):
        if isinstance(node, ast.Import) and any(a.name == "shared.http" or a.name.startswith("shared.http.")
                                                for a in node.names):
            return True
        if isinstance(node, ast.ImportFrom) and (node.module == "shared.http" or (
                node.module == "shared" and any(a.name == "http" for a in node.names))):
            return True
    return False


def test_only_the_edge_imports_shared_http():
    """The domain raises shared/errors.py's kinds; the router (shared/http.py) and the routes (shared/api/)
    are the only HTTP-aware code, so no other module of shared/ imports shared.http."""
    domain = [p for p in (ROOT / "shared").rglob("*.py")
              if p.relative_to(ROOT).as_posix() != "shared/http.py" and "api" not in p.relative_to(ROOT).parts[1:2]]
    assert len(domain) > 50  # the walk found the domain
    offenders = [p.relative_to(ROOT).as_posix() for p in domain if _imports_http(ast.parse(p.read_text()))]
    assert offenders == [], f"domain modules importing shared.http: {offenders}"


def test_every_domain_error_kind_has_one_status_at_the_edge():
    from shared import errors, http

    kinds = [k for k in vars(errors).values()
             if isinstance(k, type) and issubclass(k, errors.DomainError) and k is not errors.DomainError]
    assert len(kinds) >= 10
    for kind in kinds:
        assert http.status_of(kind("code", "message")) != 500, f"{kind.__name__} has no status in http.STATUS"
    assert http.status_of(errors.Contention("contention", "m")) == http.status_of(errors.Conflict("c", "m")) == 409
