"""Each function imports only what its own path needs (cold start): loaded the way Cloud
Functions loads it, in a fresh process, no heavy client library outside its own list."""
import json
import os
import subprocess
import sys

import pytest

from devtools.stack import ROOT
from functions import FUNCTIONS

HEAVY = ("google.cloud.compute_v1", "stripe", "google.cloud.storage", "google.cloud.tasks_v2",
         "google.cloud.pubsub_v1", "google.cloud.secretmanager", "numpy", "firebase_admin", "schemathesis")
# the heavy modules a function may load when imported
ALLOWED: dict[str, set[str]] = {
    "billing": {"stripe"}, "stripeWebhook": {"stripe"}, "stripeEventWorker": {"stripe"}, "billingReconcile": {"stripe"},
    # knowledge: numpy (vector math) loads on the first ingest or search, the OpenAI client on the first embedding
    "knowledgeReembedWorker": {"numpy"},
    "media": {"google.cloud.storage"},
}

PROBE = """
import json, sys, functions_framework
functions_framework.create_app(target=sys.argv[1], source=sys.argv[2])
print(json.dumps(sorted(m for m in sys.argv[3].split(",") if m in sys.modules)))
"""


@pytest.mark.parametrize("name,src", [(f.name, f.source) for f in FUNCTIONS])
def test_function_imports_only_its_own_needs(name, src):
    env = {**os.environ, "GOOGLE_CLOUD_PROJECT": "demo-openclaw", "APP_ENV": "local"}
    out = subprocess.run([sys.executable, "-c", PROBE, name, str(ROOT / src), ",".join(HEAVY)],
                         capture_output=True, text=True, env=env, cwd=ROOT, check=True)
    loaded = set(json.loads(out.stdout.strip().splitlines()[-1]))
    assert loaded <= ALLOWED.get(name, set()), f"{name} imports {sorted(loaded - ALLOWED.get(name, set()))}"
