"""A local Google Cloud control plane that answers the `gcloud` commands of the deploy manifest.

`make deploy-check` and tests/test_manifest.py put bin/gcloud (this module) first on PATH and run
cloudbuild.yaml's steps. It keeps the project's resources in one JSON file (FAKE_GCLOUD_STATE) and is
no kinder than Google on what the manifest depends on:
- a flag real gcloud does not know for that command is refused (gcloud_flags.json, read from the CLI);
- a command of a service whose API is not enabled fails; `describe` of a missing resource exits 1;
- creating what exists fails (ALREADY_EXISTS), so the manifest must check first;
- IAM members, service accounts, topics, secrets and their versions, routers, buckets and functions
  must exist before anything refers to them (a function with a secret without a version fails to deploy).
Every change is recorded with the step that made it (DEPLOY_STEP), so a second run of the manifest
can be shown to change nothing, and each function's references to have been created before it.
"""
from __future__ import annotations

import fcntl
import hashlib
import json
import os
import re
import sys
from contextlib import contextmanager
from pathlib import Path

FLAGS = json.loads(Path(__file__).with_name("gcloud_flags.json").read_text())["commands"]
API_OF = {"functions": "cloudfunctions", "tasks": "cloudtasks", "scheduler": "cloudscheduler",
          "secrets": "secretmanager", "pubsub": "pubsub", "compute": "compute", "firestore": "firestore",
          "storage": "storage", "iam": "iam"}
GLOBAL_VALUE_FLAGS = {"project", "format", "filter", "limit", "region", "location"}


class Fail(Exception):
    def __init__(self, message: str, code: int = 1):
        super().__init__(message)
        self.code = code


@contextmanager
def state_file():
    path = Path(os.environ["FAKE_GCLOUD_STATE"])
    with open(path.with_suffix(".lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        state = json.loads(path.read_text()) if path.exists() else {"resources": {}, "changes": []}
        before = json.dumps(state, sort_keys=True)
        yield state
        if json.dumps(state, sort_keys=True) != before:
            path.write_text(json.dumps(state, indent=1, sort_keys=True))


def parse(argv: list[str]) -> tuple[str, list[str], dict[str, str | bool]]:
    words = [a for a in argv if not a.startswith("-")]
    command = next((" ".join(words[:n]) for n in (4, 3, 2) if " ".join(words[:n]) in FLAGS), None)
    if command is None:
        raise Fail(f"ERROR: (gcloud) command not supported by the local control plane: {' '.join(argv)}", 2)
    depth = len(command.split())
    positional, flags = [], {}
    seen = 0
    for arg in argv:
        if arg.startswith("--"):
            name, eq, value = arg[2:].partition("=")
            if name not in FLAGS[command]:
                raise Fail(f"ERROR: (gcloud.{command.replace(' ', '.')}) unrecognized arguments: --{name}", 2)
            flags[name] = value if eq else True
        elif seen < depth:
            seen += 1
        else:
            positional.append(arg)
    return command, positional, flags


class Plane:
    def __init__(self, state: dict, command: str, pos: list[str], flags: dict):
        self.s, self.r, self.command, self.pos, self.flags = state, state["resources"], command, pos, flags
        # every command names its project: an operator's own gcloud default must never be used
        self.project = pos[0] if command.startswith("projects ") and pos else str(flags.get("project", ""))
        if not self.project:
            raise Fail(f"ERROR: (gcloud.{command.replace(' ', '.')}) no --project: the manifest must name it")

    # bookkeeping
    def record(self, key: str) -> None:
        self.s["changes"].append({"step": os.environ.get("DEPLOY_STEP", ""), "command": self.command, "key": key})

    def put(self, key: str, value) -> None:
        if self.r.get(key) != value:
            self.r[key] = value
            self.record(key)

    def delete(self, key: str, what: str) -> None:
        self.need(key, what)
        del self.r[key]
        for other in [k for k in self.r if k.startswith("binding:") and k[8:].split("|")[0] == key]:
            del self.r[other]  # a resource's own IAM policy goes with it
        self.record(key)

    def need(self, key: str, what: str) -> dict:
        if key not in self.r:
            raise Fail(f"ERROR: (gcloud.{self.command.replace(' ', '.')}) NOT_FOUND: {what} was not found")
        return self.r[key]

    def create(self, key: str, value, what: str) -> None:
        if key in self.r:
            raise Fail(f"ERROR: (gcloud.{self.command.replace(' ', '.')}) ALREADY_EXISTS: {what} already exists")
        self.put(key, value)

    def flag(self, name: str, default=None):
        value = self.flags.get(name, default)
        if value is None:
            raise Fail(f"ERROR: (gcloud.{self.command.replace(' ', '.')}) argument --{name}: must be specified.")
        return value

    def api_enabled(self) -> None:
        group = self.command.split()[0]
        api = API_OF.get(group)
        if api and f"service:{self.project}/{api}.googleapis.com" not in self.r:
            raise Fail(f"ERROR: (gcloud) PERMISSION_DENIED: {api}.googleapis.com has not been used in project "
                       f"{self.project} before or it is disabled.")

    def member_exists(self, member: str) -> None:
        kind, _, who = member.partition(":")
        if kind not in ("serviceAccount", "user", "group", "domain"):
            raise Fail(f"ERROR: (gcloud) INVALID_ARGUMENT: invalid member {member}")
        google_managed = who.startswith("service-")  # service agents exist once their API is enabled
        if kind == "serviceAccount" and not google_managed and f"sa:{who}" not in self.r:
            raise Fail(f"ERROR: (gcloud) INVALID_ARGUMENT: Service account {who} does not exist.")

    def binding(self, resource: str) -> None:
        member, role = str(self.flag("member")), str(self.flag("role", "roles/run.invoker"))
        self.member_exists(member)
        condition = str(self.flags.get("condition", "None"))
        self.put(f"binding:{resource}|{member}|{role}|{condition}", True)

    def out(self, value: object) -> None:
        fmt = str(self.flags.get("format", ""))
        m = re.fullmatch(r"value\((.+)\)", fmt)
        if m and isinstance(value, dict):
            for part in m.group(1).split("."):
                value = value.get(part, "") if isinstance(value, dict) else ""
            print(value)
        elif fmt.startswith("value("):
            print(value if not isinstance(value, dict) else "")
        else:
            print(json.dumps(value, indent=1))

    # commands
    def key(self, group: str, name: str | None = None) -> str:
        """The control-plane key of the resource a command of `group` names."""
        p, f, name = self.project, self.flags, (name or (self.pos[0] if self.pos else ""))
        where = f.get("region") or f.get("location")
        return {
            "iam service-accounts": f"sa:{name}", "secrets": f"secret:{p}/{name}",
            "storage buckets": f"bucket:{name.removeprefix('gs://')}", "pubsub topics": f"topic:{p}/{name}",
            "storage objects": f"object:{name.removeprefix('gs://')}",
            "firestore databases": f"firestore:{p}/{f.get('database', '(default)')}",
            "compute routers": f"router:{p}/{where}/{name}", "compute firewall-rules": f"firewall:{p}/{name}",
            "compute routers nats": f"nat:{p}/{where}/{f.get('router')}/{name}",
            "tasks queues": f"queue:{p}/{where}/{name}", "functions": f"function:{p}/{where}/{name}",
            "scheduler jobs": f"job:{p}/{where}/{name}",
        }[group]

    def run(self) -> None:
        c, pos, f, p = self.command, self.pos, self.flags, self.project
        if c != "services enable":
            self.api_enabled()
        group, _, verb = c.rpartition(" ")
        if verb == "http":  # scheduler jobs create|update http
            group, _, verb = group.rpartition(" ")
        if c == "services enable":
            for api in pos:
                self.put(f"service:{p}/{api}", True)
        elif c == "projects describe":
            number = int(hashlib.sha256(pos[0].encode()).hexdigest(), 16) % 10**12
            self.out({"projectId": pos[0], "projectNumber": str(number)})
        elif c == "projects add-iam-policy-binding":
            self.binding(f"project:{pos[0]}")
        elif c == "functions deploy":
            self.deploy_function(pos[0])
        elif c == "secrets list":
            print("\n".join(k.rsplit("/", 1)[1] for k in self.r if k.startswith(f"secret:{p}/")))
        elif c == "storage cp":  # an upload: the bucket must exist; the object records the bytes' checksum
            if len(pos) != 2 or not pos[1].startswith("gs://"):
                raise Fail("ERROR: (gcloud.storage.cp) only local file -> gs://bucket/object is supported here: "
                           f"{pos}", 2)
            bucket = pos[1].removeprefix("gs://").split("/", 1)[0]
            self.need(f"bucket:{bucket}", f"bucket {bucket}")
            data = Path(pos[0]).read_bytes()
            self.put(self.key("storage objects", pos[1]),
                     {"size": len(data), "sha256": hashlib.sha256(data).hexdigest()})
        elif c == "storage rm":  # gs://bucket/** (undeploy): what `storage cp` recorded goes; media objects
            bucket = pos[0].removeprefix("gs://").split("/", 1)[0]  # live in the Storage stand-in
            for key in [k for k in self.r if k.startswith(f"object:{bucket}/")]:
                del self.r[key]
                self.record(key)
        elif c in ("compute instances list", "compute resource-policies list", "compute snapshots list"):
            pass  # the bots' VMs, snapshot schedules and snapshots live in the Compute stand-in
        elif c == "iam service-accounts list":  # emails (the callers ask for --format='value(email)')
            print("\n".join(k.removeprefix("sa:") for k in self.r
                             if k.startswith("sa:") and k.endswith(f"@{p}.iam.gserviceaccount.com")))
        elif c.startswith("secrets versions"):
            secret = self.need(f"secret:{p}/{pos[0]}", f"secret {pos[0]}")
            if verb == "list":
                for n, _ in enumerate(secret["versions"][: int(f.get("limit", 1000))]):
                    print(f"projects/{p}/secrets/{pos[0]}/versions/{n + 1}")
            else:
                data = sys.stdin.read() if f.get("data-file") == "-" else Path(str(self.flag("data-file"))).read_text()
                self.put(f"secret:{p}/{pos[0]}", {**secret, "versions": [*secret["versions"], data]})
        elif verb == "describe":
            self.out(self.need(self.key(group), f"{group} {pos[0] if pos else ''}"))
        elif verb == "add-iam-policy-binding" or c == "functions add-invoker-policy-binding":
            self.need(self.key(group), f"{group} {pos[0]}")
            self.binding(self.key(group))
        elif c in ("compute resource-policies delete", "compute snapshots delete"):
            raise Fail(f"ERROR: (gcloud.{c.replace(' ', '.')}) NOT_FOUND: {pos[0]} (bots' resources live in the "
                       "Compute stand-in)", 1)
        elif verb == "delete":
            key = self.key(group)
            if group == "compute routers":  # its NATs go with it
                for nat in [k for k in self.r if k.startswith(f"nat:{key[7:]}/")]:
                    del self.r[nat]
            self.delete(key, f"{group} {pos[0] if pos else ''}")
        elif verb == "create":
            value = self.created(group)  # first: a service account's key is the e-mail it makes
            self.create(self.key(group), value, f"{group} {self.pos[0] if self.pos else ''}")
        elif verb == "update":
            key = self.key(group)
            self.put(key, {**self.need(key, f"{group} {pos[0]}"), **self.created(group)})
        else:
            raise Fail(f"ERROR: (gcloud) {c}: not supported by the local control plane", 2)

    def created(self, group: str) -> dict:
        """What a create (or update) of `group` records, after the checks Google makes."""
        f, pos = self.flags, self.pos
        if group == "iam service-accounts":
            if not re.fullmatch(r"[a-z][a-z0-9-]{4,28}[a-z0-9]", pos[0]):
                raise Fail(f"ERROR: invalid service account id {pos[0]}")
            self.pos = [f"{pos[0]}@{self.project}.iam.gserviceaccount.com"]  # the key is the e-mail
            return {"email": self.pos[0], "displayName": f.get("display-name", "")}
        if group == "firestore databases":
            return {"locationId": self.flag("location"), "type": f.get("type", "firestore-native")}
        if group == "secrets":
            return {"replication": self.flag("replication-policy", "automatic"), "versions": []}
        if group == "storage buckets":
            if self.command.endswith("create"):
                return {"location": self.flag("location"), "uniform": "uniform-bucket-level-access" in f,
                        "pap": "public-access-prevention" in f}
            return {name.removesuffix("-file"): json.loads(Path(str(f[name])).read_text())
                    for name in ("cors-file", "lifecycle-file") if name in f}
        if group == "compute routers":
            self.flag("region")
            return {"network": self.flag("network")}
        if group == "compute routers nats":
            self.need(f"router:{self.project}/{self.flag('region')}/{self.flag('router')}", f"router {f['router']}")
            return {k: v for k, v in f.items() if k not in ("project", "region", "router")}
        if group == "compute firewall-rules":
            if not re.fullmatch(r"[a-z]([-a-z0-9]{0,61}[a-z0-9])?", self.pos[0]):
                raise Fail(f"ERROR: (gcloud.compute.firewall-rules.create) invalid name {self.pos[0]}")
            for name in ("rules", "source-ranges", "target-tags"):
                self.flag(name)
            return {k: v for k, v in f.items() if k not in ("project", "format")}
        if group == "tasks queues":
            self.flag("location")
            return {k: v for k, v in f.items() if k not in ("project", "location", "format")}
        if group == "pubsub topics":
            return {}
        if group == "scheduler jobs":
            self.flag("location")
            job = {k: v for k, v in f.items() if k not in ("project", "location", "headers", "update-headers")}
            job["headers"] = str(f.get("headers") or f.get("update-headers") or "")
            sa = job.get("oidc-service-account-email")
            if sa and f"sa:{sa}" not in self.r:
                raise Fail(f"ERROR: (gcloud.scheduler) INVALID_ARGUMENT: service account {sa} does not exist")
            return job
        raise Fail(f"ERROR: (gcloud) {self.command}: not supported by the local control plane", 2)

    def deploy_function(self, name: str) -> None:
        f, p = self.flags, self.project
        region = self.flag("region")
        apis = ("cloudfunctions", "run", "cloudbuild", "artifactregistry")
        apis += ("eventarc",) if "trigger-topic" in f else ()
        for api in apis:
            if f"service:{p}/{api}.googleapis.com" not in self.r:
                raise Fail(f"ERROR: (gcloud.functions.deploy) {api}.googleapis.com is not enabled in {p}")
        build_env = dict(kv.split("=", 1) for kv in str(f.get("set-build-env-vars", "")).split(",") if kv)
        source = Path(str(self.flag("source"))) / build_env.get("GOOGLE_FUNCTION_SOURCE", "main.py")
        entry = str(self.flag("entry-point"))
        if not source.is_file():
            raise Fail(f"ERROR: (gcloud.functions.deploy) OperationError: build failed: {source} not found")
        import ast

        if entry not in {n.name for n in ast.parse(source.read_text()).body if isinstance(n, ast.FunctionDef)}:
            raise Fail(f"ERROR: (gcloud.functions.deploy) OperationError: function {entry} is not defined in {source}")
        for flag in ("service-account", "trigger-service-account"):
            if flag in f and f"sa:{f[flag]}" not in self.r:
                raise Fail(f"ERROR: (gcloud.functions.deploy) service account {f[flag]} does not exist")
        if "trigger-topic" in f and f"topic:{p}/{f['trigger-topic']}" not in self.r:
            raise Fail(f"ERROR: (gcloud.functions.deploy) topic {f['trigger-topic']} does not exist")
        env_arg = str(f.get("set-env-vars", ""))
        sep = ","
        if env_arg.startswith("^"):
            sep, _, env_arg = env_arg[1:].partition("^")
        env = dict(kv.split("=", 1) for kv in env_arg.split(sep) if kv)
        secrets = {}
        for kv in str(f.get("set-secrets", "")).split(","):
            if not kv:
                continue
            var, _, ref = kv.partition("=")
            secret, _, version = ref.partition(":")
            stored = self.r.get(f"secret:{p}/{secret}")
            if stored is None or not stored["versions"]:
                raise Fail(f"ERROR: (gcloud.functions.deploy) Secret projects/{p}/secrets/{secret}/versions/"
                           f"{version} was not found")
            secrets[var] = {"secret": secret, "version": version}
        labels = dict(kv.split("=", 1) for kv in str(f.get("update-labels", "")).split(",") if kv)
        self.put(f"function:{p}/{region}/{name}", {
            "name": name, "source": str(source), "entryPoint": entry, "runtime": self.flag("runtime"),
            "gen2": "gen2" in f,
            "trigger": {"topic": f["trigger-topic"], "serviceAccount": f.get("trigger-service-account"),
                        "retry": "retry" in f} if "trigger-topic" in f else {"http": True},
            "public": "allow-unauthenticated" in f, "serviceAccount": f.get("service-account"),
            "env": env, "secrets": secrets, "labels": labels,
            "sizing": {k: f.get(k)
                       for k in ("memory", "cpu", "timeout", "concurrency", "max-instances", "min-instances")},
            "url": f"https://{region}-{p}.cloudfunctions.net/{name}",
        })


def firebase_deploy(argv: list[str]) -> int:
    """`npx --yes firebase-tools@V deploy --only firestore:indexes,firestore:rules --project=P ...`:
    the files firebase.json names must parse, and the project's database must exist."""
    args = [a for a in argv if a != "--yes"]
    if not (args and args[0].startswith("firebase-tools@") and args[1:2] == ["deploy"]):
        print(f"npx: only firebase-tools deploy is supported here: {argv}", file=sys.stderr)
        return 2
    project = next((a.split("=", 1)[1] for a in args if a.startswith("--project=")), "")
    only = args[args.index("--only") + 1].split(",") if "--only" in args else []
    conf = json.loads(Path("firebase.json").read_text())["firestore"]
    indexes = json.loads(Path(conf["indexes"]).read_text())
    rules = Path(conf["rules"]).read_text()
    with state_file() as state:
        if f"firestore:{project}/(default)" not in state["resources"]:
            print(f"Error: Project {project} has no Firestore database", file=sys.stderr)
            return 1
        plane = Plane(state, "firebase deploy", [], {"project": project})
        for part in only:
            body = indexes if part == "firestore:indexes" else rules
            plane.put(f"firebase:{project}/{part}", hashlib.sha256(json.dumps(body).encode()).hexdigest())
    return 0


def main(argv: list[str]) -> int:
    argv = [a for a in argv if a not in ("--quiet", "-q")]
    try:
        command, pos, flags = parse(argv)
        with state_file() as state:
            Plane(state, command, pos, flags).run()
    except Fail as exc:
        print(exc, file=sys.stderr)
        return exc.code
    return 0


if __name__ == "__main__":
    if sys.argv[1:2] == ["--npx"]:
        sys.exit(firebase_deploy(sys.argv[2:]))
    sys.exit(main(sys.argv[1:]))
