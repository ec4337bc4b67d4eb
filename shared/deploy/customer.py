"""Deploy jobs in a customer's own project (shared/deploy/projects.py): checked again before every
job, and a clean stop when the customer withdrew the grant.

`before(run)`: an `update` tags a VM older than the dashboard (any project). In a customer project the grant
is re-tested (testIamPermissions) at the start of every job; a job that will create or restart the VM also
makes sure the IAP firewall rule exists there (shared/deploy/gateway.py).
A missing permission raises GrantWithdrawn; so does a 403 from Compute or IAM in the middle of a job
once a re-test confirms it (`confirm`).

`withdrawn(run, grant)`: nothing of ours keeps working for what is left in a project we no longer
control: the bot's account loses access to every secret of the deployment (secret-level bindings
removed, the secrets stay: they hold the owner's API keys) and to the reports topic, and the bot's
knowledge/media credential is revoked. The VM and the bot's service account in the customer's project
cannot be touched any more: the job log names them with the commands that delete them. A delete job
then removes the deployment and its secrets as usual; any other job fails with the reason.
"""
from __future__ import annotations

from google.api_core import exceptions as gexc

from shared import bot_credentials, repos
from shared.deploy import events, gateway, identity, projects, secrets, startup
from shared.deploy.compute import ComputeError


class GrantWithdrawn(Exception):
    def __init__(self, grant: projects.Grant):
        super().__init__(grant.describe())
        self.grant = grant


def before(run) -> None:
    dep = run.dep
    own = projects.is_customer(dep.gcpProject)
    if own:
        grant = projects.missing(dep.gcpProject, projects.DEPLOY_PERMISSIONS)
        if grant.missing:
            raise GrantWithdrawn(grant)
    if run.job.action == "update" and gateway.ensure_tag(run):  # any project: VMs older than the dashboard
        run.note(f"tagged the VM {gateway.NETWORK_TAG} (dashboard through IAP)")
    if own and run.job.action in ("deploy", "update", "start", "reset") and gateway.ensure_firewall(dep.gcpProject):
        run.note(f"created firewall rule {gateway.FIREWALL_RULE} in {dep.gcpProject} "
                 f"(IAP {gateway.IAP_RANGE} -> tcp:{gateway.GATEWAY_PORT}, tag {gateway.NETWORK_TAG})")


def confirm(dep, exc: ComputeError) -> projects.Grant | None:
    """A 403 in a customer's project: the grant, when a re-test shows something missing."""
    if exc.status != 403 or not projects.is_customer(dep.gcpProject):
        return None
    grant = projects.missing(dep.gcpProject, projects.DEPLOY_PERMISSIONS)
    return grant if grant.missing else None


def _revoke_secret(deployment_id: str, key_name: str, account: str) -> bool:
    member, name = f"serviceAccount:{account}", secrets.secret_name(deployment_id, key_name)
    client, timeout = secrets.client(), secrets._timeout()
    for _ in range(5):
        try:
            policy = client.get_iam_policy(request={"resource": name}, timeout=timeout)
        except gexc.NotFound:
            return False
        binding = next((b for b in policy.bindings if b.role == secrets.ACCESSOR and member in b.members), None)
        if binding is None:
            return False
        binding.members.remove(member)
        try:
            client.set_iam_policy(request={"resource": name, "policy": policy}, timeout=timeout)
            return True
        except (gexc.Conflict, gexc.Aborted):
            continue
    raise gexc.Aborted(f"the IAM policy of {name} kept changing")


def cut_off(dep) -> list[str]:
    """Our side of a deployment whose project we lost: no secret, topic or credential works for it."""
    notes = []
    ident = identity.get(dep.id)
    if ident is not None:
        keys = [k.keyName for k in repos.api_keys.all({"deploymentId": dep.id}, cap=200)]
        names = [*keys, startup.BOT_TOKEN_KEY, events.REPORT_KEY, gateway.GATEWAY_TOKEN_KEY]
        revoked = sum(_revoke_secret(dep.id, k, ident.email) for k in names)
        identity.revoke_publisher(ident.email)
        notes.append(f"the bot's account {ident.email} lost access to {revoked} secret(s) and to the reports topic")
    if bot_credentials.revoke(dep.id):
        notes.append("the bot's knowledge/media credential was revoked")
    return notes


def leftovers(dep) -> str:
    """What stays in the customer's project, and how they delete it."""
    parts = [f"gcloud compute instances delete {dep.vmName} --zone={dep.zone} --project={dep.gcpProject}"]
    ident = identity.get(dep.id)
    if ident is not None and ident.project == dep.gcpProject:
        parts.append(f"gcloud iam service-accounts delete {ident.email} --project={dep.gcpProject}")
    return ("left in your project (we may no longer touch it; delete it yourself if it exists): "
            + " ; ".join(parts))


def forget(dep) -> list[str]:
    """A delete job without the grant: our records and secrets go; the project's resources are the customer's."""
    from shared import db

    keys = [k.keyName for k in repos.api_keys.all({"deploymentId": dep.id}, cap=200)]
    for key_name in [*keys, startup.BOT_TOKEN_KEY, events.REPORT_KEY, gateway.GATEWAY_TOKEN_KEY]:
        secrets.delete(dep.id, key_name)
    db.client().collection(events.REPORTERS).document(dep.id).delete()
    identity.identities.delete(dep.id)
    return [f"removed {len(keys)} API key(s) from Secret Manager; deployment and its configs removed"]


def stop(run, grant: projects.Grant):
    """End a job whose grant is gone: (job status, notes, deployment status, remove)."""
    dep = run.dep
    notes = [f"stopped: {grant.describe()}", *cut_off(dep), leftovers(dep)]
    if run.job.action == "delete":
        return "completed", [*notes, *forget(dep)], None, True
    return "failed", notes, "error", False
