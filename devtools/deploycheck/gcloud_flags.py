"""Writes gcloud_flags.json: the flags real gcloud accepts for each command the manifest (and
`make undeploy`) uses, read from this machine's Google Cloud CLI help (offline). The local control
plane (fake_gcloud.py) refuses any other flag, so a typo in the manifest fails here as it would
there. Run `python -m devtools.deploycheck.gcloud_flags` after adding a command to deploy/*.sh."""
from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

OUT = Path(__file__).with_name("gcloud_flags.json")
COMMANDS = """
services enable | projects describe | projects add-iam-policy-binding
iam service-accounts describe | iam service-accounts create | iam service-accounts delete
iam service-accounts add-iam-policy-binding | iam service-accounts list
firestore databases describe | firestore databases create | firestore databases delete
secrets describe | secrets create | secrets delete | secrets list | secrets versions list | secrets versions add
storage buckets describe | storage buckets create | storage buckets update | storage buckets delete
storage buckets add-iam-policy-binding | storage rm | storage cp | storage objects describe
compute routers describe | compute routers create | compute routers delete | compute routers nats describe
compute routers nats create | compute instances list | compute instances delete
compute resource-policies list | compute resource-policies delete | compute snapshots list | compute snapshots delete
compute firewall-rules describe | compute firewall-rules create | compute firewall-rules delete
tasks queues describe | tasks queues create | tasks queues update | tasks queues delete
pubsub topics describe | pubsub topics create | pubsub topics delete | pubsub topics add-iam-policy-binding
functions describe | functions deploy | functions delete | functions add-invoker-policy-binding
scheduler jobs describe | scheduler jobs create http | scheduler jobs update http | scheduler jobs delete
"""


def flags(command: str) -> list[str]:
    text = subprocess.run(["gcloud", *command.split(), "--help"], capture_output=True, text=True, check=True,
                          env={"PATH": "/usr/bin:/bin", "PAGER": "cat", "HOME": "/tmp"}).stdout
    text = re.sub(r"\x1b\[[0-9;]*m", "", text)
    found = set(re.findall(r"--([a-z][a-z0-9-]+)", text))
    found |= {f"no-{n}" for n in re.findall(r"--\[no-\]([a-z][a-z0-9-]+)", text)}
    return sorted(found)


def main() -> None:
    commands = [c.strip() for line in COMMANDS.strip().splitlines() for c in line.split("|")]
    version = subprocess.run(["gcloud", "--version"], capture_output=True, text=True).stdout.splitlines()[0]
    OUT.write_text(json.dumps({"gcloud": version, "commands": {c: flags(c) for c in commands}}, indent=1) + "\n")


if __name__ == "__main__":
    main()
