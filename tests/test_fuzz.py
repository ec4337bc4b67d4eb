"""Schemathesis against the locally served API (a real HTTP server on 127.0.0.1) with valid
tokens for two users and an admin: no 500, every response inside the documented schema,
and nothing of one user in the other user's responses."""
import json
import re

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


# What `st run --checks all --phases examples,coverage,fuzzing` does, in process, against the same server:
# schemathesis's own engine with every check, as a user with a trial. Any finding fails the test, except:
# - opaque cursors: a made-up `cursor` is refused (400 invalid_cursor); the document cannot say which
#   strings the server issued;
# - URLs refused for where they resolve (422 unsafe_url ... "refused address"): the resolver stub above
#   answers a documentation address for every host, so that nothing leaves the machine.
# A positive case's If-Match is a made-up entity tag: the answer to it is 412, as it must be.
RUN_EXAMPLES = 1  # per operation and phase (the coverage phase enumerates its boundary cases anyway)


def excepted(case, response) -> bool:
    try:
        code = response.json()["error"]["code"]
    except Exception:
        return False
    if code == "invalid_cursor" and "cursor" in (case.query or {}):
        return True
    return code == "unsafe_url" and "refused address" in response.json()["error"]["message"]


def findings(url: str, token: str) -> list[str]:
    import uuid

    import schemathesis
    from schemathesis.config import SchemathesisConfig
    from schemathesis.config._checks import (
        NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES,
        POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES,
    )
    from schemathesis.hooks import GLOBAL_HOOK_DISPATCHER

    from shared import idempotency

    config = SchemathesisConfig.from_dict({
        "generation": {"max-examples": RUN_EXAMPLES}, "seed": 19, "base-url": url, "workers": 1,
        # one worker: hypothesis reads lambdas' source with ast, which CPython 3.11 cannot do in two threads at once
        "request-timeout": 60,  # a key's Secret Manager stand-in takes seconds on a loaded machine
        "auth": {"openapi": {"bearer": {"bearer": token}}},
        "checks": {"positive_data_acceptance": {
                       "expected-statuses": [*POSITIVE_DATA_ACCEPTANCE_EXPECTED_STATUSES, 412]},
                   "negative_data_rejection": {"expected-statuses": [*NEGATIVE_DATA_REJECTION_EXPECTED_STATUSES, 412]}},
    })
    project = config.projects.override
    project.phases.update(phases=["examples", "coverage", "fuzzing"])
    project.checks.update(included_check_names=["all"])
    openapi.document.cache_clear()  # built again with the running services' settings (media size limits)
    schema = schemathesis.openapi.from_dict(openapi.document(), config=config)

    def before_call(ctx, case, **kwargs):
        """A valid Idempotency-Key is made unique per request: the generator repeats its values, and the
        same key with another request is 422 by design (tests/test_conventions.py)."""
        key = (case.headers or {}).get(idempotency.HEADER)
        if isinstance(key, str) and re.fullmatch(idempotency.KEY_PATTERN, key) and len(key) <= 200:
            case.headers[idempotency.HEADER] = f"{key}-{uuid.uuid4().hex}"

    schemathesis.hook(before_call)  # a global hook (before_call has no narrower scope): taken out below
    try:
        return list(_run(schema))
    finally:
        GLOBAL_HOOK_DISPATCHER.unregister(before_call)


def _run(schema):
    from schemathesis.engine import Status, events, from_schema

    for event in from_schema(schema).execute():
        if isinstance(event, events.ScenarioFinished) and event.status == Status.FAILURE:
            for case_id, nodes in event.recorder.checks.items():
                for node in nodes:
                    if node.failure_info is None:
                        continue
                    f, case = node.failure_info.failure, event.recorder.cases[case_id].value
                    r = event.recorder.find_response(case_id=case_id)
                    if r is not None and excepted(case, r):
                        continue
                    answer = f"{r.status_code} {r.content[:300]!r}" if r is not None else "no answer"
                    yield (f"{event.phase.value} {case.method} {case.formatted_path}: {f.title}: "
                               f"{f.message[:300]}\n    {node.failure_info.code_sample[:600]}\n    -> {answer}")
        elif isinstance(event, events.NonFatalError):
            yield f"error in {event.label}: {event.info.format()[:2000]}"
        elif isinstance(event, events.FatalError):
            yield f"fatal: {event.exception!r}"


@pytest.mark.timeout(900)  # the services of every function start first (minutes on a loaded machine)
def test_schemathesis_all_phases(callers, live_url, stripe_stack, costs_env, kb_stack, denv):
    """Every operation, every check, the examples, coverage and fuzzing phases, as the owner (trialing)."""
    import time

    started = time.perf_counter()
    found = findings(live_url, callers["owner"].token)
    print(f"schemathesis: {time.perf_counter() - started:.1f} s")
    assert not found, f"{len(found)} findings:\n" + "\n".join(sorted(set(found)))
