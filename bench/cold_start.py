"""Cold start: for each function, in a fresh process, the time to import it (functions-framework
create_app, as Cloud Functions does) and to serve its first request, next to a bare
functions-framework function measured in the same run (bench/bare_function.py: reads one Firestore
document), each function's run right after a bare run so the pair shares the machine's load.

Two ratios: wall clock, and the CPU time of the process, which the load of a shared machine moves
far less. Packages requirements.txt does not bring in (the dev tools') are hidden from the probes:
a deployed function does not have them (httpx, for one, imports rich when it is there).

    .venv/bin/python -m bench.cold_start [--runs N] [--only name,name...]
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
from importlib import metadata

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
BARE = "bench/bare_function.py"
HEAVY = ("google.cloud.compute_v1", "stripe", "google.cloud.storage", "google.cloud.tasks_v2",
         "google.cloud.pubsub_v1", "google.cloud.secretmanager", "numpy", "firebase_admin")

PROBE = r"""
import json, sys, time

class NotDeployed:  # packages requirements.txt does not bring in are absent from a deployed function
    hidden = set(sys.argv[5].split(","))

    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in self.hidden:
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)

sys.meta_path.insert(0, NotDeployed())
t0, c0 = time.perf_counter(), time.process_time()
import functions_framework
app = functions_framework.create_app(target=sys.argv[1], source=sys.argv[2])
t1 = time.perf_counter()
method, path, token, headers, body = json.loads(sys.argv[3])
if token:
    headers["Authorization"] = "Bearer " + token
status = app.test_client().open(path, method=method, headers=headers, json=body).status_code
t2, c2 = time.perf_counter(), time.process_time()
print(json.dumps({"import": t1 - t0, "first": t2 - t1, "cpu": c2 - c0, "status": status,
                  "heavy": [m for m in sys.argv[4].split(",") if m in sys.modules]}))
"""


def _requirement(line: str) -> tuple[str, set[str]]:
    m = re.match(r"\s*([A-Za-z0-9_.\-]+)(?:\[([^\]]*)\])?", line)
    return re.sub(r"[-_.]+", "-", m.group(1)).lower(), {e.strip() for e in (m.group(2) or "").split(",") if e.strip()}


def not_deployed() -> list[str]:
    """Top-level modules of the installed packages that requirements.txt does not pull in (the dev
    tools': e.g. schemathesis's rich, which httpx imports when present): a deployed function has none."""
    lines = [line.split("#")[0].strip() for line in (ROOT / "requirements.txt").read_text().splitlines()]
    todo, deployed = [_requirement(line) for line in lines if line], set()
    while todo:
        name, extras = todo.pop()
        if name in deployed:
            continue
        deployed.add(name)
        try:
            requires = metadata.requires(name) or []
        except metadata.PackageNotFoundError:
            continue
        for req in requires:  # other markers (python_version, ...) are kept: hiding less is the safe side
            extra = re.search(r"extra\s*==\s*['\"]([^'\"]+)", req)
            if extra is None or extra.group(1) in extras:
                todo.append(_requirement(req))
    return sorted(mod for mod, dists in metadata.packages_distributions().items()
                  if not mod.startswith("_") and not any(_requirement(d)[0] in deployed for d in dists))


def probe(name: str, src: str, token: str, hidden: list[str]) -> dict:
    method, path, needs_token, headers, body = FIRST_REQUEST[name]
    request = json.dumps([method, path, token if needs_token else "", headers, body])
    out = subprocess.run([sys.executable, "-c", PROBE, name, str(ROOT / src), request, ",".join(HEAVY),
                          ",".join(hidden)],
                         capture_output=True, text=True, env=os.environ, cwd=ROOT)
    if out.returncode != 0:
        raise RuntimeError(f"{name}: {(out.stderr.strip().splitlines() or ['no output'])[-1]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--only", default="", help="comma-separated function names (default: every function)")
    args = parser.parse_args()
    only = {n.strip() for n in args.only.split(",") if n.strip()}
    unknown = only - set(FIRST_REQUEST)
    if unknown:
        parser.error(f"no first-request scenario for {sorted(unknown)}")
    with local_stack() as stack:
        os.environ.setdefault("STRIPE_WEBHOOK_SECRET", "whsec_cold_start")  # the webhook checks its signature
        token, _ = token_for(stack, "cold@example.com")
        from shared import clock, repos
        from shared.models import CmsPage

        repos.cms_pages.set(CmsPage(_id="about", slug="about", title="t", body="b", published=True,
                                    createdAt=clock.now_ms(), updatedAt=clock.now_ms()))
        targets = [(f.name, f.source, f.trigger) for f in FUNCTIONS
                   if f.name in FIRST_REQUEST and (not only or f.name in only)]
        results, ratios, paired, hidden = {}, {}, {}, not_deployed()
        for _ in range(args.runs):  # each function right after a bare run: the pair sees the same machine load
            for name, src, _ in targets:
                bare, fn = probe("bare", BARE, token, hidden), probe(name, src, token, hidden)
                results.setdefault("bare", []).append(bare)
                results.setdefault(name, []).append(fn)
                paired.setdefault(name, []).append(bare["cpu"])
                ratios.setdefault(name, []).append(((fn["import"] + fn["first"]) / (bare["import"] + bare["first"]),
                                                    fn["cpu"] / bare["cpu"]))
        ratios["bare"] = [(1.0, 1.0)]
        paired["bare"] = [r["cpu"] for r in results["bare"]]
        print(f"median of {args.runs} fresh processes each, each paired with a bare run just before it; ratio ="
              f" (import + first request) / the paired bare run's, wall clock and CPU time of the process"
              f" (the CPU ratio is the one machine load hardly moves); min cpu ratio = the function's least CPU"
              f" time over its runs / the least of the bare runs paired with them (load only ever adds time: the"
              f" steadiest figure when the pairs swing); not deployed, so hidden: {', '.join(hidden)}")
        print(f"{'function':<24}{'import s':>9}{'first req s':>12}{'total s':>9}{'cpu s':>7}{'ratio':>7}"
              f"{'cpu ratio':>10}{'min cpu ratio':>14}"
              f"  status  heavy modules loaded")
        for name, runs in results.items():
            imp = statistics.median(r["import"] for r in runs)
            first = statistics.median(r["first"] for r in runs)
            total = statistics.median(r["import"] + r["first"] for r in runs)
            cpu = statistics.median(r["cpu"] for r in runs)
            wall_ratio = statistics.median(r[0] for r in ratios[name])
            cpu_ratio = statistics.median(r[1] for r in ratios[name])
            min_ratio = min(r["cpu"] for r in runs) / min(paired[name])
            heavy = ",".join(runs[-1]["heavy"]) or "-"
            print(f"{name:<24}{imp:>9.3f}{first:>12.3f}{total:>9.3f}{cpu:>7.3f}{wall_ratio:>7.2f}{cpu_ratio:>10.2f}"
                  f"{min_ratio:>14.2f}  {runs[-1]['status']:>6}  {heavy}")
        missing = [f.name for f in FUNCTIONS if f.name not in FIRST_REQUEST and not only]
        if missing:
            print(f"functions without a first-request scenario: {missing}")


if __name__ == "__main__":
    main()
