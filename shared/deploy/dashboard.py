"""Opening a bot's own OpenClaw dashboard, for its owner only and for a while (DASHBOARD_ACCESS_TTL_S).

Two locks, both short-lived, both needed (shared/deploy/gateway.py has the network side):
- IAP: the owner's Google identity gets roles/iap.tunnelResourceAccessor on that one instance's IAP
  tunnel resource (`projects/P/iap_tunnel/zones/Z/instances/VM`), with an IAM condition
  `request.time < timestamp(expiry)`. IAP checks the condition on every new tunnel, so after the expiry
  no tunnel opens, with nothing to revoke. Bindings of ours that have expired are pruned at the next
  grant (a policy holds at most 1,500 principals). Written read-modify-write with the policy's etag
  (version 3: conditions need it).
- Gateway: a fresh random token with the same expiry, in the deployment's secret
  `oc-<id>-openclaw-gateway-token` (only the bot's own account may read it); the VM applies it within
  30 s and replaces it with an unknown one when it expires. A new request replaces the previous token.

The answer carries what the owner runs: the `gcloud compute start-iap-tunnel` command and the local URL
with the token in its fragment (the Control UI reads `#token=` and never sends it in a request line).
"""
from __future__ import annotations

import json
import secrets as pysecrets
from datetime import datetime, timezone

from google.api_core import exceptions as gexc

from shared import clock, logs, repos
from shared.deploy import compute, gateway, projects, secrets, settings
from shared.deploy.compute import ComputeError
from shared.errors import Conflict, Forbidden, Invalid, Unavailable, UpstreamFailed

log = logs.get("deploy.dashboard")
IAP_API = "https://iap.googleapis.com"
TUNNEL_ROLE = "roles/iap.tunnelResourceAccessor"
TITLE = "openclaw-dashboard-"  # + expiry in ms: how our own bindings are recognised and pruned


def tunnel_resource(dep) -> str:
    return f"projects/{dep.gcpProject}/iap_tunnel/zones/{dep.zone}/instances/{dep.vmName}"


def _iap(what: str, verb: str, dep, body: dict) -> dict:
    from shared.deploy import identity

    base = (settings.get().iam_endpoint or IAP_API).rstrip("/")
    return identity.request(what, "IAP", base, "POST", f"v1/{tunnel_resource(dep)}:{verb}", body)


def _iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def _ours_expired(binding: dict, now: int) -> bool:
    title = (binding.get("condition") or {}).get("title", "")
    return binding.get("role") == TUNNEL_ROLE and title.startswith(TITLE) and \
        title[len(TITLE):].isdigit() and int(title[len(TITLE):]) <= now


def grant_tunnel(dep, member: str, now: int, expires: int) -> None:
    for _ in range(5):
        policy = _iap("read the IAP policy", "getIamPolicy", dep, {"options": {"requestedPolicyVersion": 3}})
        bindings = [b for b in policy.get("bindings", []) if not _ours_expired(b, now)]
        bindings.append({"role": TUNNEL_ROLE, "members": [member], "condition": {
            "title": f"{TITLE}{expires}", "description": f"dashboard of deployment {dep.id}, owner only",
            "expression": f'request.time < timestamp("{_iso(expires)}")'}})
        try:
            _iap("grant the IAP tunnel", "setIamPolicy", dep,
                 {"policy": {"version": 3, "etag": policy.get("etag"), "bindings": bindings}})
            return
        except ComputeError as exc:
            if exc.status not in (409, 412):  # the etag: someone else changed the policy since the read
                raise
    raise ComputeError("the IAP policy kept changing", True)


def _failed(what: str, exc: Exception) -> Unavailable | UpstreamFailed:
    transient = getattr(exc, "transient", False) or isinstance(exc, (gexc.ServerError, gexc.TooManyRequests))
    log.warning("dashboard access failed", extra={"step": what, "error": str(exc)})
    if transient:
        return Unavailable("unavailable", f"{what}: Google did not answer; try again")
    return UpstreamFailed("upstream_error", f"{what}: {exc}")


def open_access(dep, caller, google_account: str | None) -> dict:
    if caller.id != dep.userId:  # the dashboard is an admin surface of the owner's bot: not for admins
        raise Forbidden("owner_only", "only the deployment's owner may open its dashboard")
    if dep.status != "running":
        raise Conflict("not_running", f"the bot is {dep.status}; start it first")
    account = google_account or repos.users.require(caller.id).email
    if not account:
        raise Invalid("google_account_required", "send googleAccount: the Google account you run gcloud as")
    try:
        if projects.is_customer(dep.gcpProject):
            grant = projects.missing(dep.gcpProject, projects.DASHBOARD_PERMISSIONS)
            if grant.missing:
                raise grant.error()
        if compute.get_instance(dep.gcpProject, dep.zone, dep.vmName) is None:
            raise Conflict("vm_missing", f"VM {dep.vmName} does not exist; deploy it again")
        now = clock.now_ms()
        expires = now + settings.get().dashboard_ttl_s * 1000
        member = f"user:{account}"
        grant_tunnel(dep, member, now, expires)
    except ComputeError as exc:
        raise _failed("grant the IAP tunnel", exc) from None
    token = pysecrets.token_urlsafe(32)
    try:
        secrets.put(dep.id, gateway.GATEWAY_TOKEN_KEY, json.dumps({"token": token, "expiresAt": expires}))
    except Exception as exc:  # Secret Manager (API errors, timeouts)
        raise _failed("store the gateway token", exc) from None
    log.info("dashboard access granted", extra={"deploymentId": dep.id, "expiresAt": expires})
    port = gateway.GATEWAY_PORT
    return {
        "project": dep.gcpProject, "zone": dep.zone, "instance": dep.vmName, "port": port, "localPort": port,
        "member": member, "expiresAt": expires, "readyAt": now + 30_000,
        "command": (f"gcloud compute start-iap-tunnel {dep.vmName} {port} --local-host-port=localhost:{port} "
                    f"--zone={dep.zone} --project={dep.gcpProject}"),
        "url": f"http://localhost:{port}/#token={token}",
        "gatewayToken": token,
    }
