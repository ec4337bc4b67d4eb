"""The function table and the files in functions/ agree (the manifest: tests/test_manifest.py)."""
import ast
from pathlib import Path

from devtools.catalog import FUNCTIONS

ROOT = Path(__file__).resolve().parent.parent


def test_catalog_matches_function_modules():
    files = {p.relative_to(ROOT).as_posix() for p in (ROOT / "functions").glob("*.py") if not p.name.startswith("_")}
    assert files == {src for _, src, _ in FUNCTIONS}
    for name, src, trigger in FUNCTIONS:
        tree = ast.parse((ROOT / src).read_text())
        assert name in {n.name for n in tree.body if isinstance(n, ast.FunctionDef)}, f"{src} lacks {name}()"
        if trigger == "http":  # JSON errors also for what Flask rejects before our routing
            assert "json_errors(functions_framework)" in (ROOT / src).read_text(), src
