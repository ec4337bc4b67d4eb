"""`make dev` part of the deployments domain: the Cloud Tasks stand-in (deploy queue), the local
Compute Engine (its VMs report progress over Pub/Sub like a real guest) and Secret Manager, and
the Pub/Sub push subscription that feeds provisioningEvents."""
from __future__ import annotations

from devtools.stack import PROJECT_ID, Stack

QUEUE, TOPIC = "deploy-jobs", "provisioning-events"


def start(stack: Stack, port: int) -> None:
    """Needs stack.pubsub() running; call before stack.apply_env()."""
    stack.tasks([QUEUE])
    stack.secrets()
    stack.iam()
    stack.compute(op_latency=1.0, guest_events=True)  # a second per operation: slow enough to watch
    base = f"http://127.0.0.1:{port}"
    stack.env.update({"DEPLOY_WORKER_URL": f"{base}/deployWorker", "DEPLOY_QUEUE": QUEUE, "FUNCTIONS_URL": base,
                      "PROVISIONING_TOPIC": f"projects/{PROJECT_ID}/topics/{TOPIC}"})


def subscribe(port: int) -> None:
    """After apply_env: the topic the VMs publish to, pushed to the local provisioningEvents."""
    from google.api_core import exceptions as gexc
    from google.cloud import pubsub_v1

    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    topic = publisher.topic_path(PROJECT_ID, TOPIC)
    try:
        publisher.create_topic(name=topic)
        subscriber.create_subscription(
            name=subscriber.subscription_path(PROJECT_ID, "provisioning-events-push"), topic=topic,
            push_config={"push_endpoint": f"http://127.0.0.1:{port}/provisioningEvents"})
    except gexc.AlreadyExists:
        pass


def usage(port: int, auth_host: str, email: str, password: str) -> str:
    return f"""
deployments, by hand:
  TOKEN=$(curl -s 'http://{auth_host}/identitytoolkit.googleapis.com/v1/accounts:signInWithPassword?key=local' \\
      -H 'Content-Type: application/json' -d '{{"email":"{email}","password":"{password}","returnSecureToken":true}}' \\
      | python3 -c 'import json,sys; print(json.load(sys.stdin)["idToken"])')
  curl -s -X POST http://127.0.0.1:{port}/deployments -H "Authorization: Bearer $TOKEN" \\
      -H 'Content-Type: application/json' \\
      -d '{{"gcpProject":"demo-bots","zone":"us-central1-a","botName":"Demo",
           "primaryModel":"anthropic/claude-sonnet-4"}}'
  # its job: pending -> running -> completed
  curl -s http://127.0.0.1:{port}/deployments/DEPLOYMENT_ID/jobs -H "Authorization: Bearer $TOKEN"
"""


