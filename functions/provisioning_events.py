"""Cloud Function `provisioningEvents` (Pub/Sub CloudEvent). Logic: shared/deploy/events.py."""
import _bootstrap  # noqa: F401  (puts the repo root on sys.path)
import functions_framework

from shared import faults, logs, startup
from shared.deploy import events, settings

startup.validate(settings.get)  # production settings, at cold start
log = logs.get("deploy.events")


@functions_framework.cloud_event
def provisioningEvents(cloud_event):
    with faults.budget():  # Firestore calls end inside the function's deadline (a timeout -> redelivery)
        try:
            events.handle(cloud_event.data)
        except RecursionError:  # JSON nested past the parser's limit: malformed; redelivering cannot help
            log.warning("provisioning message dropped", extra={"reason": "JSON nested too deeply"})
