"""The contract a typed web client compiles against: openapi-typescript (pinned in devtools/package.json)
generates TypeScript types from the OpenAPI document, and tsc --strict type-checks tests/client/client.ts
(create a deployment, list with a cursor, PATCH the profile with If-Match, errors) against them. A field the
server always sends but the document calls optional, or a request field made required, fails here."""
import json
import shutil
import subprocess

from devtools import openapi
from devtools.stack import ROOT

NODE_MODULES = ROOT / "devtools" / "node_modules"


def run(*args: str, cwd) -> None:
    done = subprocess.run(["node", *args], cwd=cwd, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout + done.stderr


def test_client_type_checks_against_the_generated_types(tmp_path):
    (tmp_path / "openapi.json").write_text(json.dumps(openapi.document()))
    shutil.copy(ROOT / "tests" / "client" / "client.ts", tmp_path / "client.ts")
    run(str(NODE_MODULES / "openapi-typescript" / "bin" / "cli.js"), "openapi.json", "-o", "api.ts", cwd=tmp_path)
    types = (tmp_path / "api.ts").read_text()
    assert "email: string;" in types and "email?: string" not in types  # sent always: required
    run(str(NODE_MODULES / "typescript" / "bin" / "tsc"), "--noEmit", "--strict", "--target", "es2022",
        "--module", "esnext", "--moduleResolution", "bundler", "--lib", "es2022,dom", "client.ts", cwd=tmp_path)
