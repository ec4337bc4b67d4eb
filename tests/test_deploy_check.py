"""`make deploy-check` (devtools/deploycheck/check.py): the whole check passes on the committed
cloudbuild.yaml, and it fails, saying what is wrong, when the manifest is wrong: a variable missing
for a function, an entry point that does not exist, a wrong trigger, a private function whose invoker
is not its caller or that verifies the signature Google's front removed. The negative cases change the manifest
in memory and run only the part of the check they need; the front (Google's, for private functions) is also shown
on its own."""
from __future__ import annotations

import copy
import io
import json
import re
import time

import httpx
import pytest
from werkzeug.wrappers import Request, Response

from devtools.deploycheck import check
from devtools.deploycheck.check import CheckFailed, ControlPlane, Deployed
from devtools.deploycheck.front import Front, Target
from devtools.server import serving
from devtools.standins.google_tokens import GoogleKey
from functions import FUNCTIONS


@pytest.fixture
def doc():
    return copy.deepcopy(check.load_manifest())


def step_args(doc: dict, step_id: str) -> list:
    return next(s for s in doc["steps"] if s["id"] == step_id)["args"]


def start_fails(doc: dict, tmp_path, function: str, match: str) -> dict:
    """Deploy only `function` from the (broken) manifest and start it as deployed: the check refuses with
    `match`. Returns the function as the control plane recorded it."""
    plane = ControlPlane(tmp_path)
    plane.deploy(doc, only=check.with_prerequisites(doc, {f"fn-{function}"}))
    d = Deployed(tmp_path)
    try:
        d.load(plane.resources())
        with pytest.raises(CheckFailed, match=match):
            d.start_functions({function})
        return d.functions[function].record
    finally:
        d.close()


def deployment_failure(doc: dict, tmp_path) -> str:
    """What the check says when a user's first deployment fails on this (broken) manifest."""
    out = io.StringIO()
    d = check.bring_up(doc, tmp_path, out, functions={"users", "billing", "deployments", "deployWorker"})
    try:
        with pytest.raises(CheckFailed) as err:
            check.Journey(d, out).run(["sign-up", "trial", "deployment"])
    finally:
        d.close()
    return str(err.value)


def test_the_manifest_deploys_and_serves_a_users_whole_journey():
    out = io.StringIO()
    summary = check.run_check(out=out)
    text = out.getvalue()
    assert summary["functions"] == sorted(f.name for f in FUNCTIONS), text
    assert summary["steps"] == [name for name, _ in check.JOURNEY], text
    assert "deploy-check PASSED" in text
    # a bound against a hang, not a benchmark: ~2.5 min on a quiet 2-core machine, 4+ when it is shared
    assert summary["seconds"] < 600, text


def test_a_variable_missing_from_the_manifest_stops_the_function_at_cold_start(doc, tmp_path):
    args = step_args(doc, "fn-deployWorker")
    i = next(n for n, a in enumerate(args) if str(a).startswith("--set-env-vars="))
    head, _, pairs = args[i].partition("^|^")
    args[i] = head + "^|^" + "|".join(p for p in pairs.split("|") if not p.startswith("DEPLOY_WORKER_URL="))
    record = start_fails(doc, tmp_path, "deployWorker", r"function deployWorker exited at start with status 1: "
                                                         r"startup refused: .*DEPLOY_WORKER_URL")
    assert "DEPLOY_WORKER_URL" not in record["env"]


def test_an_entry_point_that_does_not_exist_is_refused_by_the_control_plane(doc, tmp_path):
    args = step_args(doc, "fn-users")
    args[args.index("--entry-point=users")] = "--entry-point=user"
    with pytest.raises(CheckFailed, match=r"(?s)failed at step\(s\) fn-users:.*function user is not defined in "
                                          r"functions/users\.py"):
        ControlPlane(tmp_path).deploy(doc, only=check.with_prerequisites(doc, {"fn-users"}))


def test_a_wrong_trigger_is_named(doc, tmp_path):
    args = step_args(doc, "fn-provisioningEvents")
    args[:] = [a for a in args if not str(a).startswith(("--trigger-topic=", "--trigger-service-account=", "--retry"))]
    args.append("--trigger-http")
    start_fails(doc, tmp_path, "provisioningEvents", r"function provisioningEvents: its code is a CloudEvent "
                                                      r"function, but the manifest deploys it with an HTTP trigger")


def test_the_front_refuses_cloud_tasks_when_the_invoker_binding_names_another_account(doc, tmp_path):
    args = step_args(doc, "invoker-deployWorker")
    args[-1] = args[-1].replace("oc-tasks@", "oc-scheduler@")
    message = deployment_failure(doc, tmp_path)
    assert message.startswith("step 'deployment'"), message
    assert re.search(r"the front refused \d+ call\(s\) to deployWorker, last: 403 "
                     r"oc-tasks@demo-openclaw\.iam\.gserviceaccount\.com does not have roles/run\.invoker", message)


def test_the_front_admits_only_google_signed_invokers_and_strips_the_signature():
    """The front alone, before a function that echoes what reaches it."""
    def echo(environ, start_response):
        req = Request(environ)
        body = {"path": req.full_path, "authorization": req.headers.get("Authorization"), "host": req.host}
        return Response(json.dumps(body), mimetype="application/json")(environ, start_response)

    url = "https://us-central1-demo-openclaw.cloudfunctions.net/worker"
    key, other = GoogleKey.generate("k1"), GoogleKey.generate("k1")
    tasks = "oc-tasks@demo-openclaw.iam.gserviceaccount.com"
    with serving(echo) as upstream:
        port = int(upstream.rsplit(":", 1)[1])
        front = Front({"worker": Target("worker", url, port, public=False, invokers={f"serviceAccount:{tasks}"}),
                       "site": Target("site", url.replace("worker", "site"), port, public=True)},
                      key.jwks(), "us-central1-demo-openclaw.cloudfunctions.net")
        with serving(front) as base:
            def post(path, token=None):
                return httpx.post(base + path, headers={"Authorization": f"Bearer {token}"} if token else {})

            good = key.token(audience=url, email=tasks)
            r = post("/worker/run?x=1", good)
            assert r.status_code == 200 and r.json()["path"] == "/run?x=1"
            assert r.json()["authorization"] == "Bearer " + good.rsplit(".", 1)[0] + ".SIGNATURE_REMOVED_BY_GOOGLE"
            assert r.json()["host"] == "us-central1-demo-openclaw.cloudfunctions.net"
            for token, status in ((None, 401), ("not-a-jwt", 401),
                                  (other.token(audience=url, email=tasks), 401),  # not Google's key
                                  (key.token(audience=url + "x", email=tasks), 401),
                                  (key.token(audience=url, email=tasks, exp=int(time.time()) - 3600), 401),
                                  (key.token(audience=url, email=tasks, email_verified=False), 401),
                                  (key.token(audience=url, email="oc-events@demo-openclaw.iam.gserviceaccount.com"),
                                   403)):
                r = post("/worker/run", token)
                assert r.status_code == status and r.headers["content-type"].startswith("text/plain"), (token, r.text)
            assert [c.status for c in front.refusals("worker")] == [401] * 6 + [403]
            assert post("/site/", "anything").json()["authorization"] == "Bearer anything"  # public: unchanged
            assert post("/nowhere/").status_code == 404
        front.close()


def test_a_private_function_that_checks_the_stripped_signature_fails_the_check(doc, tmp_path):
    """Behind Google's front a private function gets its caller's token without a signature: one that
    verifies the signature anyway refuses every task, and the check says which function."""
    args = step_args(doc, "fn-deployWorker")
    i = args.index("--set-build-env-vars=GOOGLE_FUNCTION_SOURCE=functions/deploy_worker.py")
    args[i] = "--set-build-env-vars=GOOGLE_FUNCTION_SOURCE=tests/fixtures/deploy_worker_verifying_signature.py"
    message = deployment_failure(doc, tmp_path)
    assert message.startswith("step 'deployment'"), message
    assert re.search(r"deployWorker itself answered \d+ call\(s\) of oc-tasks@demo-openclaw\.iam\.gserviceaccount\.com "
                     r"with an error, last: 401 .*invalid OIDC token for the task: InvalidSignatureError",
                     message), message
