"""Runs the steps of cloudbuild.yaml on this machine, as Cloud Build would: `make deploy` (with your
gcloud credentials) and `make deploy-check` (with the local control plane first on PATH).

    python -m deploy.run --project P [--sub _REGION=europe-west1 ...] [--jobs 6] [--only STEP ...]

Cloud Build's rules are kept: `$VAR`/`${VAR}` substitutions (built-ins and the file's `_` ones;
an unknown one is an error), `$$` for a literal `$`, steps start when their `waitFor` steps are done
(`-`: at once; none: after every earlier step), a failed step fails the build. The step's image is
not used: its entrypoint runs here, in the repository. Empty defaults that `make deploy` fills:
_DEPLOY_PROJECTS (the project), _FIRESTORE_LOCATION (the region), _MEDIA_BUCKET (<project>-media),
_ARTIFACTS_BUCKET (<project>-artifacts), _SOURCE_HASH (a hash of what `gcloud functions deploy --source .`
uploads), _BOT_PLUGIN_SHA256 (the sha256 of `npm pack` of bot/, which the bot-plugin step publishes).
"""
from __future__ import annotations

import argparse
import hashlib
import os
import re
import subprocess
import sys
import threading
from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parent.parent
_SUB = re.compile(r"\$\$|\$\{(\w+)\}|\$(\w+)")


def substitute(value: str, subs: dict[str, str]) -> str:
    def one(m: re.Match) -> str:
        if m.group(0) == "$$":
            return "$"
        name = m.group(1) or m.group(2)
        if name not in subs:
            raise SystemExit(f"deploy: unknown substitution ${name} in {value!r}")
        return subs[name]
    return _SUB.sub(one, value)


def source_hash(root: Path = ROOT) -> str:
    """What `gcloud functions deploy --source .` uploads: files git knows (tracked or not ignored),
    less the folders .gcloudignore leaves out."""
    ignored = [line.strip().rstrip("/") for line in (root / ".gcloudignore").read_text().splitlines()
               if line.strip() and not line.startswith("#")]
    names = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    h = hashlib.sha256()
    for name in sorted(set(names)):
        if any(name == i or name.startswith(i + "/") or f"/{i}/" in f"/{name}" for i in ignored):
            continue
        path = root / name
        if path.is_file():
            h.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return h.hexdigest()[:16]


def pack_bot_plugin(dest: Path) -> tuple[Path, str]:
    """`npm pack` of bot/ into dest: (the tarball, its sha256). npm packs deterministically (fixed
    mtimes, sorted entries), so the checksum computed here is the one the bot-plugin step uploads."""
    dest.mkdir(parents=True, exist_ok=True)
    for old in dest.glob("*.tgz"):
        old.unlink()
    subprocess.run(["npm", "pack", "--silent", "--pack-destination", str(dest.resolve())], cwd=ROOT / "bot",
                   check=True, capture_output=True, text=True)
    (tgz,) = dest.glob("*.tgz")
    return tgz, hashlib.sha256(tgz.read_bytes()).hexdigest()


def substitutions(doc: dict, project: str, given: dict[str, str]) -> dict[str, str]:
    subs = {k: str(v) for k, v in (doc.get("substitutions") or {}).items()}
    unknown = set(given) - set(subs)
    if unknown:
        raise SystemExit(f"deploy: {', '.join(sorted(unknown))} not declared in cloudbuild.yaml's substitutions")
    subs.update(given)
    subs["PROJECT_ID"] = project
    defaults = {"_DEPLOY_PROJECTS": project, "_FIRESTORE_LOCATION": subs.get("_REGION", ""),
                "_MEDIA_BUCKET": f"{project}-media", "_ARTIFACTS_BUCKET": f"{project}-artifacts"}
    for key, value in defaults.items():
        if key in subs and not subs[key]:
            subs[key] = value
    if "_SOURCE_HASH" in subs and not subs["_SOURCE_HASH"]:
        subs["_SOURCE_HASH"] = source_hash()
    if "_BOT_PLUGIN_SHA256" in subs and not subs["_BOT_PLUGIN_SHA256"]:
        subs["_BOT_PLUGIN_SHA256"] = pack_bot_plugin(ROOT / ".deploy")[1]
    return subs


def order(steps: list[dict]) -> dict[str, set[str]]:
    """Each step's prerequisites, Cloud Build's way."""
    deps: dict[str, set[str]] = {}
    for i, s in enumerate(steps):
        wait_for = s.get("waitFor")
        if wait_for is None:
            deps[s["id"]] = {t["id"] for t in steps[:i]}
        elif wait_for == ["-"]:
            deps[s["id"]] = set()
        else:
            missing = set(wait_for) - {t["id"] for t in steps[:i]}
            if missing:
                raise SystemExit(f"deploy: step {s['id']} waits for unknown or later steps {sorted(missing)}")
            deps[s["id"]] = set(wait_for)
    return deps


def command(step: dict, subs: dict[str, str]) -> tuple[list[str], dict[str, str]]:
    args = [substitute(str(a), subs) for a in step.get("args", [])]
    entry = step.get("entrypoint")
    argv = [entry, *args] if entry else args
    env = dict(kv.split("=", 1) for kv in (substitute(e, subs) for e in step.get("env", [])))
    return argv, env


def run(doc: dict, project: str, given: dict[str, str], jobs: int = 6, only: set[str] | None = None,
        env: dict[str, str] | None = None, out=sys.stdout) -> int:
    steps = doc["steps"]
    subs = substitutions(doc, project, given)
    deps = order(steps)
    by_id = {s["id"]: s for s in steps}
    wanted = [s["id"] for s in steps if not only or s["id"] in only]
    done: set[str] = set()
    failed: list[str] = []
    lock = threading.Lock()

    def execute(step_id: str) -> int:
        argv, step_env = command(by_id[step_id], subs)
        full_env = {**os.environ, **(env or {}), **step_env, "DEPLOY_STEP": step_id,
                    "CLOUDSDK_CORE_DISABLE_PROMPTS": "1"}
        proc = subprocess.run(argv, cwd=ROOT, env=full_env, stdin=subprocess.DEVNULL,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        with lock:
            for line in proc.stdout.splitlines():
                print(f"[{step_id}] {line}", file=out)
            print(f"[{step_id}] {'done' if proc.returncode == 0 else f'FAILED (exit {proc.returncode})'}",
                  file=out, flush=True)
        return proc.returncode

    pending = list(wanted)
    with ThreadPoolExecutor(max_workers=max(1, jobs)) as pool:
        running: dict = {}
        while (pending and not failed) or running:
            if not failed:
                for step_id in [s for s in pending if (deps[s] & set(wanted)) <= done]:
                    pending.remove(step_id)
                    running[pool.submit(execute, step_id)] = step_id
            if not running:
                break
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for fut in finished:
                step_id = running.pop(fut)
                (done.add if fut.result() == 0 else failed.append)(step_id)
    if failed:
        print(f"deploy FAILED at step(s) {', '.join(failed)}; not run: {', '.join(pending) or '-'}", file=out)
        return 1
    return 0


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--project", required=True)
    ap.add_argument("--sub", action="append", default=[], help="_NAME=value (repeatable)")
    ap.add_argument("--jobs", type=int, default=6, help="steps run at once")
    ap.add_argument("--only", action="append", help="run only these step ids")
    ap.add_argument("--config", default=str(ROOT / "cloudbuild.yaml"))
    a = ap.parse_args(argv)
    given = dict(s.split("=", 1) for s in a.sub if s.split("=", 1)[1:] != [""])
    doc = yaml.safe_load(Path(a.config).read_text())
    return run(doc, a.project, given, a.jobs, set(a.only) if a.only else None)


if __name__ == "__main__":
    sys.exit(main())
