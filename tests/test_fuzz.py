"""Schemathesis against the locally served API (a real HTTP server on 127.0.0.1) with valid
tokens for two users and an admin: no 500, every response inside the documented schema,
and nothing of one user in the other user's responses."""
import json

import pytest
from hypothesis import HealthCheck, given, settings
from schemathesis import checks

from devtools import openapi

EXAMPLES = 12
WHO = ("owner", "other", "admin")


@pytest.fixture(scope="module")
def schema():
    import schemathesis

    return schemathesis.openapi.from_dict(openapi.document())


@pytest.fixture(autouse=True)
def no_outside_requests(monkeypatch):
    """URLs the fuzzer makes up (POST /media/from-url) resolve to a documentation address, which
    shared/outbound.py refuses: nothing is looked up or fetched outside this machine."""
    from shared import outbound

    monkeypatch.setattr(outbound, "resolve", lambda host, port: ["192.0.2.1"])


def operations():
    return [(path, method) for path, ops in openapi.document()["paths"].items() for method in ops]


def private_marks(caller) -> set[str]:
    """Strings that identify a user's own data."""
    return {caller.user_id, caller.uid, f"{caller.name}@example.com"}


@pytest.mark.parametrize("who", WHO)
@pytest.mark.parametrize("path,method", operations())
def test_fuzz(api, callers, schema, live_url, path, method, who):
    for c in ("owner", "other"):  # both users exist and have data of their own
        api("PATCH", "/users/me", callers[c], json={"name": f"{c} name"})
    caller = callers[who]
    foreign = set()
    if who != "admin":
        foreign = private_marks(callers["other" if who == "owner" else "owner"])
    op = schema[path][method.upper()]
    headers = {"Authorization": f"Bearer {caller.token}"}

    @settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=list(HealthCheck))
    @given(case=op.as_strategy())
    def run(case):
        response = case.call(base_url=live_url, headers=headers)
        case.validate_response(response, checks=[
            checks.not_a_server_error, checks.status_code_conformance,
            checks.content_type_conformance, checks.response_schema_conformance,
        ])
        if response.content:
            ctype = response.headers.get("content-type") or ""
            is_json = "json" in (ctype[0] if isinstance(ctype, list) else ctype)
            text = json.dumps(response.json()) if is_json else response.text  # ?format=text: plain text
            leaked = [m for m in foreign if m in text]
            assert not leaked, f"{who} saw another user's data {leaked} in {method} {case.formatted_path}"

    run()
