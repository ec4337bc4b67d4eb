"""Cold start: for each function, in a fresh process, the time to import it (functions-framework
create_app, as Cloud Functions does) and to serve its first request, next to a bare
functions-framework function measured in the same run.

    .venv/bin/python -m bench.cold_start [--runs N]
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys

from bench.common import ROOT, local_stack, token_for
from functions import FUNCTIONS

# the first request each function serves: (method, path inside the function, needs a user token, headers, body)
CE = {"ce-id": "cold-1", "ce-source": "//pubsub.googleapis.com/projects/demo-openclaw/topics/provisioning-events",
      "ce-type": "google.cloud.pubsub.topic.v1.messagePublished", "ce-specversion": "1.0"}
FIRST_REQUEST = {
    "bare": ("GET", "/", False, {}, None),
    "users": ("GET", "/me", True, {}, None),
    "cmsPages": ("GET", "/about", False, {}, None),
    "navLinks": ("GET", "/?section=header", False, {}, None),
    "pricingPlans": ("GET", "/", False, {}, None),
    "billing": ("GET", "/subscription", True, {}, None),
    "stripeWebhook": ("POST", "/", False, {"Stripe-Signature": "t=1,v1=00"}, {"id": "evt_cold"}),
    "billingReconcile": ("POST", "/", False, {}, None),
    "costs": ("GET", "/summary", True, {}, None),
    "pullCosts": ("GET", "/runs/none", True, {}, None),
    "pullOpenrouterActivity": ("GET", "/runs/none", True, {}, None),
    "costPullWorker": ("POST", "/", False, {}, {}),
    "knowledge": ("GET", "/", True, {}, None),
    "media": ("GET", "/", True, {}, None),
    "deployments": ("GET", "/", True, {}, None),
    "deployWorker": ("POST", "/", False, {}, {}),
    "provisioningEvents": ("POST", "/", False, CE, {"message": {"data": "e30=", "messageId": "cold-1"}}),
    "pluginConfigs": ("GET", "/catalog", False, {}, None),
    "skillConfigs": ("GET", "/?deploymentId=none", True, {}, None),
    "apiKeys": ("GET", "/names", False, {}, None),
}
HEAVY = ("google.cloud.compute_v1", "stripe", "google.cloud.storage", "google.cloud.tasks_v2",
         "google.cloud.pubsub_v1", "google.cloud.secretmanager", "numpy", "firebase_admin")

PROBE = r"""
import json, sys, time
t0 = time.perf_counter()
import functions_framework
app = functions_framework.create_app(target=sys.argv[1], source=sys.argv[2])
t1 = time.perf_counter()
method, path, token, headers, body = json.loads(sys.argv[3])
if token:
    headers["Authorization"] = "Bearer " + token
status = app.test_client().open(path, method=method, headers=headers, json=body).status_code
t2 = time.perf_counter()
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "status": status,
                  "heavy": [m for m in sys.argv[4].split(",") if m in sys.modules]}))
"""


def probe(name: str, src: str, token: str) -> dict:
    method, path, needs_token, headers, body = FIRST_REQUEST[name]
    request = json.dumps([method, path, token if needs_token else "", headers, body])
    out = subprocess.run([sys.executable, "-c", PROBE, name, str(ROOT / src), request, ",".join(HEAVY)],
                         capture_output=True, text=True, env=os.environ, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{name}: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with local_stack() as stack:
        os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_cold_start")  # the webhook checks its signature
        token, _ = token_for(stack, "cold@example.com")
        from shared import clock, repos
        from shared.models import CmsPage

        repos.cms_pages.set(CmsPage(_id="about", slug="about", title="t", body="b", published=True,
                                    createdAt=clock.now_ms(), updatedAt=clock.now_ms()))
        targets = [("bare", "bench/bare_function.py", "http")] + [(f.name, f.source, f.trigger) for f in FUNCTIONS if f.name in FIRST_REQUEST]
        results = {}
        for _ in range(args.runs):  # interleaved, so machine load hits every function alike
            for name, src, _ in targets:
                results.setdefault(name, []).append(probe(name, src, token))
        base = statistics.median(r["import"] + r["first"] for r in results["bare"])
        print(f"median of {args.runs} fresh processes each; ratio = (import + first request) / bare function's")
        print(f"{'function':<24}{'import s':>9}{'first req s':>12}{'total s':>9}{'ratio':>7}  status  heavy modules loaded")
        for name, runs in results.items():
            imp = statistics.median(r["import"] for r in runs)
            first = statistics.median(r["first"] for r in runs)
            total = statistics.median(r["import"] + r["first"] for r in runs)
            heavy = ",".join(runs[-1]["heavy"]) or "-"
            print(f"{name:<24}{imp:>9.3f}{first:>12.3f}{total:>9.3f}{total / base:>7.1f}  {runs[-1]['status']:>6}  {heavy}")
        missing = [f.name for f in FUNCTIONS if f.name not in FIRST_REQUEST]
        if missing:
            print(f"functions without a first-request scenario: {missing}")


if __name__ == "__main__":
    main()
