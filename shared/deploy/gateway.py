"""The bot's OpenClaw gateway (its dashboard, the Control UI) and how it is reached: never from the
internet. The VM has no external IP; the gateway listens on GATEWAY_PORT on its internal interface,
and the only ingress to that port is Google's IAP TCP-forwarding range, to VMs with the bots'
network tag (firewall rule FIREWALL_RULE). IAP admits only identities holding
roles/iap.tunnelResourceAccessor on the instance (shared/deploy/dashboard.py grants it for a while).

The gateway itself authenticates every WebSocket connect with a shared token (`gateway.auth.token`,
or OPENCLAW_GATEWAY_TOKEN). That token lives in the deployment's secret GATEWAY_TOKEN_KEY as JSON
`{"token", "expiresAt"}`; the VM re-reads it every 30 s and runs the gateway with it only until
`expiresAt`, after which it replaces it with a random token nobody knows (startup script).

The rule is made by `make deploy` (deploy/steps.sh, step vm-network) in the operator's deploy
projects and by the deploy job in a customer's project (`ensure_firewall`).
"""
from __future__ import annotations

import uuid

GATEWAY_PORT = 18789  # OpenClaw's default gateway port
NETWORK_TAG = "openclaw-bot"
FIREWALL_RULE = "oc-allow-iap-gateway"
IAP_RANGE = "35.235.240.0/20"  # the addresses IAP TCP forwarding connects from
GATEWAY_TOKEN_KEY = "openclaw-gateway-token"


def firewall_rule():
    from google.cloud import compute_v1

    return compute_v1.Firewall(
        name=FIREWALL_RULE, network="global/networks/default", direction="INGRESS", priority=1000,
        description="IAP TCP forwarding to the OpenClaw gateway of the bots (no other ingress)",
        source_ranges=[IAP_RANGE], target_tags=[NETWORK_TAG],
        allowed=[compute_v1.Allowed(I_p_protocol="tcp", ports=[str(GATEWAY_PORT)])])


def ensure_firewall(project: str) -> bool:
    """The IAP rule in `project` (idempotent: a second insert answers 409, kept). True when made now."""
    from functools import partial

    from google.cloud import compute_v1

    from shared.deploy import compute
    from shared.deploy.compute import ComputeError

    kwargs = compute._client_kwargs()
    firewalls = compute_v1.FirewallsClient(**kwargs)
    if compute.call("read the IAP firewall rule", partial(_get_or_none, firewalls), project=project,
                    firewall=FIREWALL_RULE) is not None:
        return False
    request_id = str(uuid.uuid5(uuid.NAMESPACE_URL, f"openclaw/firewall/{project}/{FIREWALL_RULE}"))
    try:
        op = compute.call("create the IAP firewall rule", firewalls.insert_unary,
                          request=compute_v1.InsertFirewallRequest(project=project, firewall_resource=firewall_rule(),
                                                                   request_id=request_id))
    except ComputeError as exc:
        if exc.status == 409:
            return False
        raise
    ops = compute_v1.GlobalOperationsClient(**kwargs)
    while op.status.name != "DONE":
        op = compute.call("create the IAP firewall rule (waiting)", ops.wait, project=project, operation=op.name)
    if op.error and op.error.errors:
        raise ComputeError("create the IAP firewall rule failed: " +
                           "; ".join(f"{e.code}: {e.message}" for e in op.error.errors), False)
    return True


def _get_or_none(client, **kwargs):
    from google.api_core import exceptions as gexc

    try:
        return client.get(**kwargs)
    except gexc.NotFound:
        return None


def ensure_tag(run) -> bool:
    """A VM made before the dashboard existed has no network tag, so the IAP rule misses it: the
    `update` action adds it (guarded by the tags' fingerprint, like metadata). True when added now."""
    from google.cloud import compute_v1

    inst = run.vm()
    if inst is None or NETWORK_TAG in list(inst.tags.items):
        return False
    run.op("tag the VM for IAP", "set_tags", "set-tags", instance=run.dep.vmName,
           tags_resource=compute_v1.Tags(items=[*inst.tags.items, NETWORK_TAG], fingerprint=inst.tags.fingerprint))
    return True
