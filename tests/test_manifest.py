"""The deploy manifest (cloudbuild.yaml), run against the local control plane (no emulator, no network):
it is what deploy/manifest.py writes, it deploys from an empty project without failing, a second run
changes nothing, every resource a function refers to is created by a step that function's step waits
for, every function names its project, private functions admit exactly the callers their code expects,
and each function's timeout ends before its caller gives up."""
from __future__ import annotations

import copy
import io
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from deploy import manifest, run

ROOT = Path(__file__).resolve().parent.parent
BIN = ROOT / "devtools" / "deploycheck" / "bin"
PROJECT, REGION = "acme-bots-prod", "europe-west1"
OPERATOR_SECRETS = ["stripe-secret-key", "stripe-webhook-secret", "openai-api-key", "openrouter-management-key",
                    "openai-admin-key"]
TASKS_DISPATCH_DEADLINE_S = 600  # Cloud Tasks' default for HTTP targets (our tasks do not set another)


def apply(doc: dict, state: Path, only: set[str] | None = None, **subs) -> tuple[int, str]:
    out = io.StringIO()
    env = {"FAKE_GCLOUD_STATE": str(state), "PATH": f"{BIN}:{os.environ['PATH']}", "DEPLOYCHECK_PYTHON": sys.executable}
    given = {"_REGION": REGION, "_SOURCE_HASH": "test-source", **subs}
    return run.run(doc, PROJECT, given, jobs=8, only=only, env=env, out=out), out.getvalue()


def gcloud(state: Path, *args: str, data: str = "") -> None:
    subprocess.run([str(BIN / "gcloud"), *args], input=data, text=True, check=True,
                   env={**os.environ, "FAKE_GCLOUD_STATE": str(state), "DEPLOYCHECK_PYTHON": sys.executable})


@pytest.fixture(scope="module")
def doc():
    return yaml.safe_load((ROOT / "cloudbuild.yaml").read_text())


@pytest.fixture(scope="module")
def deployed(doc, tmp_path_factory):
    """An empty project deployed twice (before and after the operator adds the secrets), then again."""
    state = tmp_path_factory.mktemp("plane") / "state.json"
    code, first = apply(doc, state)
    assert code == 0, first
    for secret in OPERATOR_SECRETS:
        gcloud(state, "secrets", "versions", "add", secret, f"--project={PROJECT}", "--data-file=-", data="v")
    code, second = apply(doc, state)
    assert code == 0, second
    changes = len(json.loads(state.read_text())["changes"])
    code, third = apply(doc, state)
    assert code == 0, third
    final = json.loads(state.read_text())
    return {"first": first, "second": second, "third": third, "state": final, "changes_before_third": changes}


def functions(state: dict) -> dict[str, dict]:
    return {v["name"]: v for k, v in state["resources"].items() if k.startswith("function:")}


def test_cloudbuild_yaml_is_what_the_manifest_writes():
    assert (ROOT / "cloudbuild.yaml").read_text() == manifest.render(), \
        "cloudbuild.yaml is stale: run `.venv/bin/python -m deploy.manifest > cloudbuild.yaml`"


def test_manifest_deploys_every_function_of_the_table_from_its_own_module(doc):
    steps = {s["id"]: s["args"] for s in doc["steps"]}
    for f in manifest.FUNCTIONS:
        args = steps[f"fn-{f.name}"]
        assert f"--entry-point={f.name}" in args and f"--set-build-env-vars=GOOGLE_FUNCTION_SOURCE={f.source}" in args
        assert ("--trigger-http" in args) == (f.trigger == "http"), f.name


def test_first_run_deploys_what_needs_no_secret_and_says_which_secrets_to_fill(deployed):
    out = deployed["first"]
    assert "function billing: NOT deployed, secret(s) stripe-secret-key have no version yet" in out
    for secret in OPERATOR_SECRETS:
        assert f"gcloud secrets versions add {secret} --project={PROJECT} --data-file=-" in out
    assert "then run make deploy again" in out


def test_after_the_secrets_every_function_is_deployed_and_a_rerun_changes_nothing(deployed):
    assert set(functions(deployed["state"])) == {f.name for f in manifest.FUNCTIONS}
    assert "every secret has a version" in deployed["second"]
    assert len(deployed["state"]["changes"]) == deployed["changes_before_third"], "the third run changed something"
    assert deployed["third"].count(": unchanged") == len(manifest.FUNCTIONS)


def test_every_function_names_its_project_and_runs_with_production_rules(deployed):
    for name, fn in functions(deployed["state"]).items():
        assert fn["env"]["GOOGLE_CLOUD_PROJECT"] == PROJECT, name
        assert fn["env"]["APP_ENV"] == "production", name
        assert fn["serviceAccount"] == f"oc-functions@{PROJECT}.iam.gserviceaccount.com", name
        assert fn["gen2"] and fn["runtime"] == "python312", name


def steps_before(doc: dict) -> dict[str, set[str]]:
    """Each step's transitive prerequisites (what has surely finished when it starts)."""
    deps = run.order(doc["steps"])
    closure: dict[str, set[str]] = {}
    for step in doc["steps"]:  # steps only wait for earlier ones, so one pass in order is enough
        closure[step["id"]] = set().union(*({d} | closure[d] for d in deps[step["id"]])) if deps[step["id"]] else set()
    return closure


def references(fn: dict) -> set[str]:
    """Control-plane keys of what a function's configuration points at."""
    env, refs = fn["env"], set()
    for value in env.values():
        for sa in re.findall(r"[a-z0-9-]+@[a-z0-9-]+\.iam\.gserviceaccount\.com", value):
            refs.add(f"sa:{sa}")
        m = re.fullmatch(r"projects/([^/]+)/topics/([^/]+)", value)
        if m:
            refs.add(f"topic:{m.group(1)}/{m.group(2)}")
    for key, value in env.items():
        if key.endswith("_QUEUE"):
            refs.add(f"queue:{PROJECT}/{env['TASKS_LOCATION']}/{value}")
        if key == "MEDIA_BUCKET":
            refs.add(f"bucket:{value}")
    refs |= {f"secret:{PROJECT}/{s['secret']}" for s in fn["secrets"].values()}
    refs.add(f"sa:{fn['serviceAccount']}")
    if "topic" in fn["trigger"]:
        refs |= {f"topic:{PROJECT}/{fn['trigger']['topic']}", f"sa:{fn['trigger']['serviceAccount']}"}
    return refs


def test_every_resource_a_function_refers_to_is_created_by_a_step_it_waits_for(doc, deployed):
    state = deployed["state"]
    created_by = {}
    for change in state["changes"]:
        created_by.setdefault(change["key"], change["step"])
    before = steps_before(doc)
    urls = {fn["url"] for fn in functions(state).values()}
    for name, fn in functions(state).items():
        refs = references(fn)
        assert refs, name
        for ref in refs:
            assert ref in state["resources"], f"{name} refers to {ref}, which the manifest never creates"
            assert created_by[ref] in before[f"fn-{name}"], \
                f"{name} refers to {ref}, created by step {created_by[ref]!r} which fn-{name} does not wait for"
        for value in fn["env"].values():  # URLs of other functions name functions the manifest deploys
            for url in re.findall(r"https://[a-z0-9-]+\.cloudfunctions\.net/\w+", value):
                assert url in urls, f"{name} points at {url}, which the manifest does not deploy"
    assert {"DEPLOY_ALLOWED_PROJECTS"} <= set(functions(state)["deployWorker"]["env"])
    assert functions(state)["deployWorker"]["env"]["DEPLOY_ALLOWED_PROJECTS"] == PROJECT


def invokers(state: dict, name: str) -> set[str]:
    prefix = f"binding:function:{PROJECT}/{REGION}/{name}|serviceAccount:"
    return {k[len(prefix):].split("|")[0] for k in state["resources"]
            if k.startswith(prefix) and "|roles/run.invoker|" in k}


def test_private_functions_admit_exactly_the_callers_their_code_expects(deployed):
    state, fns = deployed["state"], functions(deployed["state"])
    private = {n for n, f in fns.items() if not f["public"]}
    assert private == {"deployWorker", "costPullWorker", "knowledgeReembedWorker", "stripeEventWorker",
                       "provisioningEvents", "webhookWorker"}
    for name in ("deployWorker", "costPullWorker", "knowledgeReembedWorker", "stripeEventWorker", "webhookWorker"):
        assert invokers(state, name) == {fns[name]["env"]["TASKS_INVOKER_SA"]}, name
    assert invokers(state, "provisioningEvents") == {fns["provisioningEvents"]["trigger"]["serviceAccount"]}
    assert fns["deployWorker"]["env"]["DEPLOY_WORKER_URL"] == fns["deployWorker"]["url"]
    assert fns["costPullWorker"]["env"]["COSTS_WORKER_URL"] == fns["costPullWorker"]["url"]
    for name, fn in fns.items():  # whoever notifies queues its deliveries for the worker that is deployed
        if "WEBHOOKS_WORKER_URL" in fn["env"]:
            assert fn["env"]["WEBHOOKS_WORKER_URL"] == fns["webhookWorker"]["url"], name
    assert fns["stripeWebhook"]["env"]["STRIPE_EVENT_WORKER_URL"] == fns["stripeEventWorker"]["url"] \
        == fns["stripeEventWorker"]["env"]["STRIPE_EVENT_WORKER_URL"]
    for name in ("knowledge", "knowledgeReembedWorker"):  # the admin's start and the worker enqueue its tasks
        assert fns[name]["env"]["KNOWLEDGE_REEMBED_WORKER_URL"] == fns["knowledgeReembedWorker"]["url"]
    for name in private:  # invoker bindings only on private functions; public ones check tokens themselves
        assert fns[name]["public"] is False


def test_scheduler_jobs_call_public_functions_with_the_identity_and_audience_they_check(deployed):
    state, fns = deployed["state"], functions(deployed["state"])
    jobs = {k.rsplit("/", 1)[1]: v for k, v in state["resources"].items() if k.startswith("job:")}
    assert set(jobs) == {j for j, *_ in manifest.SCHEDULES}
    for job in jobs.values():
        target = fns[job["uri"].rsplit("/", 1)[1]]
        assert target["public"] and job["oidc-token-audience"] == target["url"] == job["uri"]
        sa, aud = job["oidc-service-account-email"], job["oidc-token-audience"]
        assert (target["env"].get("COSTS_SCHEDULER_SA"), target["env"].get("COSTS_SCHEDULER_AUDIENCE")) == (sa, aud) \
            or (target["env"].get("BILLING_SCHEDULER_SA"), target["env"].get("BILLING_RECONCILE_URL")) == (sa, aud) \
            or (target["env"].get("BACKUP_SCHEDULER_SA"), target["env"].get("BACKUP_CLEANUP_URL")) == (sa, aud) \
            or (target["env"].get("HEALTH_SCHEDULER_SA"), target["env"].get("HEALTH_CHECK_URL")) == (sa, aud)
        # the scheduler waits longer than the function may run, so it never retries a live run
        assert int(job["attempt-deadline"].rstrip("s")) > int(target["sizing"]["timeout"].rstrip("s"))


def test_sizing_fits_the_callers_deadlines_and_the_platform(deployed):
    fns = functions(deployed["state"])
    for name in ("deployWorker", "costPullWorker", "knowledgeReembedWorker", "webhookWorker"):
        assert int(fns[name]["sizing"]["timeout"].rstrip("s")) < TASKS_DISPATCH_DEADLINE_S, name
    env = fns["deployWorker"]["env"]  # two Compute operations and their calls end inside the timeout
    assert 2 * (int(env["DEPLOY_OPERATION_TIMEOUT_S"]) + 2 * 30) <= int(fns["deployWorker"]["sizing"]["timeout"][:-1])
    for name, fn in fns.items():
        size = fn["sizing"]
        assert int(size["concurrency"]) == 1 or float(size["cpu"]) >= 1, f"{name}: concurrency > 1 needs a whole CPU"
        assert int(size["max-instances"]) >= 1 and size["min-instances"] == "0", name
        # the code knows its own deadline, so a request answers (503 at worst) inside it (shared/faults.py)
        assert fn["env"]["FUNCTION_TIMEOUT_S"] == size["timeout"].rstrip("s"), name


def test_cost_pull_worker_knows_how_many_deliveries_its_queue_makes(deployed):
    state = deployed["state"]
    queue = state["resources"][f"queue:{PROJECT}/{REGION}/cost-pulls"]
    assert functions(state)["costPullWorker"]["env"]["COSTS_BATCH_ATTEMPTS"] == queue["max-attempts"] == "5"


def test_billing_secrets_and_the_media_bucket(deployed):
    fns, state = functions(deployed["state"]), deployed["state"]
    assert set(fns["stripeWebhook"]["secrets"]) == {"STRIPE_WEBHOOK_SECRET"}  # it calls no Stripe API
    assert set(fns["billing"]["secrets"]) == set(fns["billingReconcile"]["secrets"]) == {"STRIPE_SECRET_KEY"}
    assert set(fns["stripeEventWorker"]["secrets"]) == {"STRIPE_SECRET_KEY"}
    bucket = state["resources"][f"bucket:{PROJECT}-media"]
    assert bucket["uniform"] and bucket["pap"] and bucket["lifecycle"]["rule"]
    assert bucket["cors"][0]["origin"] == ["https://app.example.com"] and "PUT" in bucket["cors"][0]["method"]
    assert f"firebase:{PROJECT}/firestore:indexes" in state["resources"]
    nat = [k for k in state["resources"] if k.startswith(f"nat:{PROJECT}/{REGION}/")]
    assert nat, "the bots' VMs (no external IP) need Cloud NAT"


# The control plane is no kinder than Google: a broken manifest fails, and says where.
def mutated(doc: dict, step_id: str, edit) -> dict:
    doc = copy.deepcopy(doc)
    step = next(s for s in doc["steps"] if s["id"] == step_id)
    step["args"] = edit(step["args"])
    return doc


@pytest.mark.parametrize("case", ["unknown flag", "wrong entry point", "secret never created"])
def test_a_broken_function_step_fails_naming_it(doc, deployed, tmp_path, case):
    step, edit, expect = {
        "unknown flag": ("fn-users", lambda a: [*a, "--max-instance=3"], "unrecognized arguments: --max-instance"),
        "wrong entry point": ("fn-users", lambda a: [x.replace("--entry-point=users", "--entry-point=user") for x in a],
                              "function user is not defined in functions/users.py"),
        "secret never created": ("fn-knowledge", lambda a: [x.replace("openai-api-key", "openai-key") for x in a],
                                 "function knowledge: secret openai-key does not exist"),
    }[case]
    state = tmp_path / "state.json"
    state.write_text(json.dumps(deployed["state"]))  # everything else deployed: only this step runs
    code, out = apply(mutated(doc, step, edit), state, only={step}, _SOURCE_HASH="changed")
    assert code == 1 and f"deploy FAILED at step(s) {step}" in out and expect in out, out


def test_a_function_deployed_before_its_topic_exists_fails(doc, tmp_path):
    bad = copy.deepcopy(doc)
    for s in bad["steps"]:
        if s["id"] == "fn-provisioningEvents":
            s["waitFor"] = ["identities"]
    bad["steps"] = [s for s in bad["steps"] if s["id"] in ("apis", "identities", "fn-provisioningEvents")]
    code, out = apply(bad, tmp_path / "s.json")
    assert code == 1 and "topic provisioning-events does not exist" in out, out


# The secrets' values are the operator's; these have the shapes the functions check.
SECRET_VALUES = {"STRIPE_SECRET_KEY": "sk_live_x", "STRIPE_WEBHOOK_SECRET": "whsec_x"}
LOAD_EVERY_FUNCTION = """
import contextlib, io, json, os, sys
import functions_framework

results = {}
for name, source, env in json.loads(sys.argv[1]):
    os.environ.clear()
    os.environ.update(env)
    err, code = io.StringIO(), 0
    with contextlib.redirect_stderr(err):
        try:
            functions_framework.create_app(target=name, source=source)
        except SystemExit as exc:
            code = exc.code
    results[name] = [code, err.getvalue()]
print(json.dumps(results))
"""


def test_every_function_starts_with_exactly_what_the_manifest_gives_it(deployed):
    """Production settings are validated at cold start (shared/startup.py): with only the manifest's
    env vars and secrets, no function refuses to start."""
    base = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    specs = [(name, str(ROOT / fn["source"]),
              {**base, **fn["env"], **{var: SECRET_VALUES.get(var, "key-value") for var in fn["secrets"]}})
             for name, fn in functions(deployed["state"]).items()]
    out = subprocess.run([sys.executable, "-c", LOAD_EVERY_FUNCTION, json.dumps(specs)], capture_output=True,
                         text=True, cwd=ROOT, timeout=300, env=base)
    assert out.returncode == 0, out.stderr[-2000:]
    results = json.loads(out.stdout.strip().splitlines()[-1])
    refused = {name: err.strip() for name, (code, err) in results.items() if code != 0}
    assert not refused, f"functions refusing to start with the manifest's settings: {refused}"
    assert set(results) == {f.name for f in manifest.FUNCTIONS}


def test_undeploy_removes_everything_it_created_but_the_data(deployed, tmp_path):
    state = tmp_path / "state.json"
    state.write_text(json.dumps(deployed["state"]))
    # only what an operator's shell has: the test session's own MEDIA_BUCKET etc. must not leak in
    env = {"HOME": os.environ.get("HOME", "/tmp"), "FAKE_GCLOUD_STATE": str(state),
           "PATH": f"{BIN}:{os.environ['PATH']}", "DEPLOYCHECK_PYTHON": sys.executable, "PROJECT_ID": PROJECT,
           "REGION": REGION}
    refused = subprocess.run(["bash", "deploy/undeploy.sh"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert refused.returncode == 2 and "CONFIRM" in refused.stderr
    for attempt in ("first", "again"):  # a second run finds everything gone and still succeeds
        out = subprocess.run(["bash", "deploy/undeploy.sh"], cwd=ROOT, env={**env, "CONFIRM": PROJECT},
                             capture_output=True, text=True)
        assert out.returncode == 0, (attempt, out.stdout, out.stderr)
    left = {k.split(":")[0] for k in json.loads(state.read_text())["resources"]}
    # kept: enabled APIs, project-level IAM of the deleted accounts (Google marks them deleted),
    # the Firestore database (customers' data) and its indexes
    assert left <= {"service", "binding", "firestore", "firebase"}, left
    assert not any(k.startswith("binding:") and not k.startswith("binding:project:")
                   for k in json.loads(state.read_text())["resources"])
