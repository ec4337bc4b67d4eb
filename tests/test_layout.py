"""The function table, the files in functions/ and cloudbuild.yaml agree."""
import ast
import re
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


def test_cloudbuild_deploys_every_function_from_its_own_module():
    text = (ROOT / "cloudbuild.yaml").read_text()
    for name, src, _ in FUNCTIONS:
        assert re.search(rf"functions, deploy, {name},", text), name
        assert f"--entry-point={name}," in text
        assert f"GOOGLE_FUNCTION_SOURCE={src}" in text
    assert "firestore:indexes,firestore:rules" in text


def test_cloudbuild_is_yaml_without_duplicate_keys():
    import yaml

    class Strict(yaml.SafeLoader):
        def construct_mapping(self, node, deep=False):
            keys = [self.construct_object(k, deep=deep) for k, _ in node.value]
            dupes = {k for k in keys if keys.count(k) > 1}
            assert not dupes, f"duplicate keys {dupes} at line {node.start_mark.line + 1}"
            return super().construct_mapping(node, deep)

    doc = yaml.load((ROOT / "cloudbuild.yaml").read_text(), Loader=Strict)
    ids = [step["id"] for step in doc["steps"]]
    assert len(ids) == len(set(ids))
