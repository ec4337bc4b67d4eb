"""deployWorker's logic: claim a job, run its action on Compute Engine, finish it.

Safe to deliver twice: a finished job is never run again; a job another delivery holds (its
lease is live) is left to it (the queue delivers it again later, so if that delivery died the job is taken over
once its lease runs out); a retry after a crash takes the job over and repeats each
Compute call with the same requestId, which Compute answers with the first call's operation,
so no second VM is made. Every way out ends the job `completed` or `failed`, or hands it
back to the queue (transient error, attempts left) with the reason in the log.
"""
from __future__ import annotations

import secrets as _random  # the standard library's (shared.deploy.secrets is Secret Manager)
import uuid
from dataclasses import dataclass, field

from google.api_core import exceptions as gexc

from shared import bot_credentials, db, faults, logs, repos
from shared.backups import service as backups
from shared.deploy import compute, customer, events, identity, jobstate, secrets, settings, startup
from shared.deploy.compute import ComputeError
from shared.errors import DomainError, NotFound
from shared.models import DeployJob, Deployment

log = logs.get("deploy.worker")
STOPPED_STATES = ("TERMINATED", "STOPPED", "SUSPENDED", "STOPPING", "SUSPENDING")


class DeploymentGone(Exception):
    pass


@dataclass
class Result:
    status: str | None = None  # the deployment's new status
    remove: bool = False  # delete the deployment and its configs
    notes: list[str] = field(default_factory=list)


class Run:
    """One attempt at one job."""

    def __init__(self, job: DeployJob, dep: Deployment, attempt: int):
        self.job, self.dep, self.attempt = job, dep, attempt
        self.created_vm = False

    def note(self, text: str) -> None:
        jobstate.append(self.job.id, text)

    def rid(self, step: str) -> str:
        """Compute requestId: the same for every attempt of this step of this job."""
        return str(uuid.uuid5(uuid.NAMESPACE_URL, f"openclaw/deployJobs/{self.job.id}/{step}"))

    def op(self, what: str, method: str, step: str, **kwargs):
        from google.cloud import compute_v1

        request = getattr(compute_v1, f"{method.title().replace('_', '')}InstanceRequest")(
            project=self.dep.gcpProject, zone=self.dep.zone, request_id=self.rid(step), **kwargs)
        op = compute.call(what, getattr(compute.instances(), f"{method}_unary"), request=request)
        return compute.wait(what, op, self.dep.gcpProject, self.dep.zone)

    def vm(self):
        return compute.get_instance(self.dep.gcpProject, self.dep.zone, self.dep.vmName)

    def ensure_deployment(self) -> None:
        """Stop if the deployment was deleted meanwhile, removing the VM this job made."""
        if repos.deployments.get(self.dep.id) is not None:
            return
        if self.created_vm:
            self.op("delete the orphaned VM", "delete", "cleanup-delete", instance=self.dep.vmName)
            raise DeploymentGone("the deployment was deleted while the job ran; the VM it created was deleted again")
        raise DeploymentGone("the deployment was deleted while the job ran; stopped here")

    # actions
    def deploy(self) -> Result:
        if self.dep.status != "provisioning":
            try:
                repos.deployments.update(self.dep.id, {"status": "provisioning"})
            except NotFound:  # deleted since the claim
                raise DeploymentGone("the deployment was deleted before the VM was created; nothing done") from None
        account = self.ensure_identity()
        self.ensure_bot_credential()
        self.note(f"creating VM {self.dep.vmName} ({settings.get().machine_type}, Debian 12, no external IP) "
                  f"in {self.dep.gcpProject}/{self.dep.zone}, running as {account}")
        try:
            self.op("create VM", "insert", "insert", instance_resource=backups.boot_from_snapshot(
                self.dep, startup.instance(self.dep, self.job, account)))
            self.created_vm = True
        except ComputeError as exc:
            if exc.status != 409:
                raise
            return self._adopt(account)
        self.ensure_deployment()
        self.protect_disk()
        inst = self.vm()
        ip = inst.network_interfaces[0].network_i_p if inst and inst.network_interfaces else "?"
        return Result("provisioning", notes=[f"VM created (internal IP {ip}); waiting for the bot to report ready"])

    def ensure_identity(self) -> str:
        """The VM's own service account (created once, in a project with room), its report key,
        and access to exactly this deployment's secrets, the reports topic and the bot plugin."""
        try:
            ident, created = identity.ensure(self.dep)
            if created:
                self.note(f"created the bot's own service account {ident.email}")
            try:
                secrets.access(self.dep.id, events.REPORT_KEY)
            except gexc.NotFound:  # a random 256-bit key only this VM may read: it signs the VM's reports
                secrets.put(self.dep.id, events.REPORT_KEY, _random.token_hex(32))
                self.note("made the VM's report-signing key (kept in Secret Manager)")
            keys = [k.keyName for k in repos.api_keys.all({"deploymentId": self.dep.id}, cap=200)]
            for key_name in [*keys, events.REPORT_KEY]:
                secrets.grant(self.dep.id, key_name, ident.email)
            identity.grant_publisher(ident.email)
            identity.grant_plugin_reader(ident.email)  # the bot plugin the startup script downloads
        except gexc.GoogleAPICallError as exc:
            raise ComputeError(f"set up the bot's identity: {exc.code} {exc.message}",
                               (exc.code or 500) >= 500 or exc.code == 409) from None
        return ident.email

    def ensure_bot_credential(self) -> None:
        """The bot's credential for knowledge and media calls (shared/bot_credentials.py): kept when
        it is active and the VM's secret holds it (never replaced under a running bot or over one
        the owner issued), issued otherwise; Secret Manager and Firestore written together."""
        try:
            issued = bot_credentials.ensure(self.dep.id, self.dep.userId)
        except bot_credentials.Busy:
            raise ComputeError("the bot credential is being rotated by another request; retrying", True) from None
        except gexc.GoogleAPICallError as exc:
            raise ComputeError(f"store the bot credential: Secret Manager said {exc.code} {exc.message}",
                               (exc.code or 500) >= 500) from None
        if issued:
            self.note("issued the bot's knowledge/media credential (kept in Secret Manager)")

    def move_to_own_identity(self, inst, account: str):
        """A VM made before each bot had its own account runs as the shared one: stop it, give it its
        own (Compute changes it only on a stopped VM), and leave it stopped. Returns the VM as it is now."""
        from google.cloud import compute_v1

        current = inst.service_accounts[0].email if inst.service_accounts else None
        if current == account:
            return inst
        self.note(f"VM runs as {current or 'the default account'}: moving it to its own account {account}")
        if inst.status != "TERMINATED":
            self.op("stop VM to change its identity", "stop", "identity-stop", instance=self.dep.vmName)
        self.op("set the VM's service account", "set_service_account", "identity-set", instance=self.dep.vmName,
                instances_set_service_account_request_resource=compute_v1.InstancesSetServiceAccountRequest(
                    email=account, scopes=["https://www.googleapis.com/auth/cloud-platform"]))
        self.ensure_deployment()
        return self.vm()

    def _adopt(self, account: str) -> Result:
        """The VM name is taken: a VM made for this deployment earlier. Never create a second one."""
        inst = self.vm()
        if inst is None:
            raise ComputeError("create VM: the name is taken but the VM is not found yet", True)
        inst = self.move_to_own_identity(inst, account)
        self.protect_disk()
        self.note(f"VM {self.dep.vmName} already exists ({inst.status}); not creating another "
                  "(the `update` action applies changed settings to it)")
        if inst.status in STOPPED_STATES:
            self.op("start VM", "start", "start", instance=self.dep.vmName)
            return Result("provisioning", notes=["VM started; waiting for the bot to report ready"])
        return Result("running" if inst.status == "RUNNING" else "provisioning", notes=["VM is up"])

    def start(self) -> Result:
        self.note(f"starting VM {self.dep.vmName}")
        self.op("start VM", "start", "start", instance=self.dep.vmName)
        self.ensure_deployment()
        return Result("running", notes=["VM running"])

    def stop(self) -> Result:
        self.note(f"stopping VM {self.dep.vmName}")
        self.op("stop VM", "stop", "stop", instance=self.dep.vmName)
        self.ensure_deployment()
        return Result("stopped", notes=["VM stopped"])

    def reset(self) -> Result:
        self.note(f"resetting VM {self.dep.vmName}")
        self.op("reset VM", "reset", "reset", instance=self.dep.vmName)
        self.ensure_deployment()
        return Result("running", notes=["VM reset"])

    def update(self) -> Result:
        """Re-render the bot's configuration into the instance metadata, guarded by the metadata
        fingerprint (a concurrent change makes Compute refuse: 412), then restart to apply it."""
        from google.cloud import compute_v1

        inst = self.vm()
        if inst is None:
            raise ComputeError("update: the VM does not exist; deploy it first", False, 404)
        inst = self.move_to_own_identity(inst, self.ensure_identity())
        self.protect_disk()
        ours = startup.metadata_items(self.dep)
        keys = {i["key"] for i in ours}
        items = [{"key": i.key, "value": i.value} for i in inst.metadata.items if i.key not in keys] + ours
        self.note(f"writing the new configuration to the VM's metadata (fingerprint {inst.metadata.fingerprint})")
        try:
            self.op("write metadata", "set_metadata", "set-metadata", instance=self.dep.vmName,
                    metadata_resource=compute_v1.Metadata(fingerprint=inst.metadata.fingerprint,
                                                          items=[compute_v1.Items(**i) for i in items]))
        except ComputeError as exc:
            if exc.status == 412:
                raise ComputeError("update: the VM's metadata changed since it was read (fingerprint mismatch); "
                                   "nothing was overwritten. Request the update again.", False, 412) from None
            raise
        self.ensure_deployment()
        self.note("configuration written; restarting the VM to apply it")
        self.op("restart VM", "reset" if inst.status == "RUNNING" else "start", "restart", instance=self.dep.vmName)
        self.ensure_deployment()
        return Result("running", notes=["VM restarted with the new configuration"])

    def protect_disk(self) -> None:
        """The plan's snapshot schedule on the bot's disk (shared/backups). Transient failures retry the
        job; a permanent one is written in the log and does not undo a working bot."""
        try:
            self.note(backups.protect(self.dep, self.job.id))
        except ComputeError as exc:
            if exc.transient:
                raise
            self.note(f"WARNING: backups not scheduled: {exc}")

    def delete(self) -> Result:
        for line in backups.before_delete(self.dep, self.job.id, self.attempt >= settings.get().max_attempts):
            self.note(line)
        self.note(f"deleting VM {self.dep.vmName}")
        try:
            self.op("delete VM", "delete", "delete", instance=self.dep.vmName)
            notes = ["VM deleted"]
        except ComputeError as exc:
            if exc.status != 404:
                raise
            notes = ["VM was already gone"]
        keys = repos.api_keys.all({"deploymentId": self.dep.id}, cap=200)
        try:
            bot_credentials.revoke(self.dep.id)
            for key_name in [k.keyName for k in keys] + [startup.BOT_TOKEN_KEY, events.REPORT_KEY]:
                secrets.delete(self.dep.id, key_name)
            db.client().collection(events.REPORTERS).document(self.dep.id).delete()  # its report sequence
            db.client().collection("deploymentHealth").document(self.dep.id).delete()  # its heartbeats (shared/health)
            ident = identity.get(self.dep.id)
            if ident is not None:
                identity.revoke_publisher(ident.email)
                identity.revoke_plugin_reader(ident.email)
                identity.delete(self.dep.id)
                notes.append(f"deleted the bot's service account {ident.email}")
        except bot_credentials.Busy:
            raise ComputeError("the bot credential is being rotated by another request; retrying", True) from None
        except gexc.GoogleAPICallError as exc:
            raise ComputeError(f"delete the bot's secrets: Secret Manager said {exc.code} {exc.message}",
                               (exc.code or 500) >= 500) from None
        except Exception as exc:
            if faults.is_transient(exc):
                raise ComputeError(f"delete API keys: Secret Manager did not answer ({faults.describe(exc)})",
                                   True) from None
            raise
        notes.append(f"removed {len(keys)} API key(s) from Secret Manager; deployment and its configs removed")
        return Result(remove=True, notes=notes)

    def failure_status(self) -> str | None:
        """The deployment's status after a failed job: deploy -> error; else what the VM really is."""
        if self.job.action == "deploy":
            return "error"
        try:
            inst = self.vm()
        except ComputeError:
            return "error"
        if inst is None:
            return "error"
        return "running" if inst.status == "RUNNING" else "stopped" if inst.status in STOPPED_STATES else None


def run(job_id: str) -> tuple[bool, str]:
    """Returns (again, outcome): `again` asks the queue to deliver the task again (shared/api/deploy_worker.py)."""
    claim = jobstate.claim(job_id)
    if claim.skip:
        log.info("deploy task skipped", extra={"jobId": job_id, "reason": claim.skip})
        return claim.busy, claim.skip
    job, s = claim.job, settings.get()
    dep = repos.deployments.get(job.deploymentId)
    if dep is None:
        jobstate.finish(job.id, "failed", ["the deployment was deleted before the job ran; nothing done"],
                        None, False)
        return False, "failed"
    r = Run(job, dep, claim.attempt)
    try:
        customer.before(r)  # customer project: grant re-tested, IAP rule; update: the VM's IAP tag
        result = getattr(r, job.action)()
    except customer.GrantWithdrawn as exc:
        return _withdrawn(r, exc.grant)
    except ComputeError as exc:
        grant = _confirm_withdrawn(r, exc)
        if grant is not None:
            return _withdrawn(r, grant)
        if exc.transient and claim.attempt < s.max_attempts:
            jobstate.release(job.id, f"attempt {claim.attempt} failed: {exc}; will retry")
            log.warning("deploy job will retry", extra={"jobId": job.id, "error": str(exc)})
            return True, "retry"
        jobstate.finish(job.id, "failed", [f"failed: {exc}"], r.failure_status(), False)
        log.warning("deploy job failed", extra={"jobId": job.id, "error": str(exc)})
        return False, "failed"
    except DeploymentGone as exc:
        jobstate.finish(job.id, "failed", [str(exc)], None, False)
        return False, "failed"
    except Exception as exc:
        if faults.is_transient(exc):  # Firestore, Secret Manager, ...: same rule as Compute's transient errors
            reason = faults.describe(exc)
            if claim.attempt < s.max_attempts:
                jobstate.release(job.id, f"attempt {claim.attempt} failed: {reason}; will retry")
                log.warning("deploy job will retry", extra={"jobId": job.id, "error": reason})
                return True, "retry"
            jobstate.finish(job.id, "failed", [f"failed: {reason} (attempts spent)"], r.failure_status(), False)
            log.warning("deploy job failed", extra={"jobId": job.id, "error": reason})
            return False, "failed"
        # a bug must still end the job, not leave it running
        log.exception("deploy job crashed", extra={"jobId": job.id})
        jobstate.finish(job.id, "failed", [f"failed: internal error ({_crash_reason(exc)})"],
                        r.failure_status(), False)
        return False, "failed"
    jobstate.finish(job.id, "completed", [*result.notes, f"{job.action} completed"], result.status,
                    result.remove)
    log.info("deploy job completed", extra={"jobId": job.id, "action": job.action})
    return False, "completed"


def _crash_reason(exc: Exception) -> str:
    """What the owner reads in the job log: our own errors are written for them; others only by type."""
    return f"{exc.code}: {exc.message}" if isinstance(exc, DomainError) else type(exc).__name__


def _confirm_withdrawn(r: Run, exc: ComputeError):
    try:
        return customer.confirm(r.dep, exc)
    except ComputeError:
        return None  # the re-test itself failed: the original error decides


def _withdrawn(r: Run, grant) -> tuple[bool, str]:
    """The customer took the grant back: stop cleanly (shared/deploy/customer.py)."""
    try:
        status, notes, dep_status, remove = customer.stop(r, grant)
    except Exception as exc:
        if faults.is_transient(exc) and r.attempt < settings.get().max_attempts:
            jobstate.release(r.job.id, f"attempt {r.attempt}: grant withdrawn, cleanup interrupted "
                                       f"({faults.describe(exc)}); will retry")
            return True, "retry"
        log.exception("cleanup after a withdrawn grant failed", extra={"jobId": r.job.id})
        jobstate.finish(r.job.id, "failed", [f"stopped: {grant.describe()}",
                                             f"cleanup failed ({faults.describe(exc)}): {customer.leftovers(r.dep)}"],
                        "error", False)
        return False, "failed"
    jobstate.finish(r.job.id, status, notes, dep_status, remove)
    log.warning("deploy job stopped: grant withdrawn", extra={"jobId": r.job.id, "project": grant.project})
    return False, status
