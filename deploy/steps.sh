#!/usr/bin/env bash
# The steps of cloudbuild.yaml: `deploy/steps.sh <step> [args]`. Every step creates what is missing
# and sets what exists to the declared state, so running the whole manifest again changes nothing.
# Environment (from the manifest): PROJECT_ID REGION DEPLOY_PROJECTS FIRESTORE_LOCATION MEDIA_BUCKET
# CORS_ORIGINS SOURCE_HASH ARTIFACTS_BUCKET BOT_PLUGIN_SHA256.
set -euo pipefail

: "${PROJECT_ID:?}" "${REGION:?}"
need() { [ -n "${!1:-}" ] || { echo "deploy: substitution _$1 is empty (make deploy fills it; see docs/DEPLOYING.md)" >&2; exit 2; }; }
SA_DOMAIN="$PROJECT_ID.iam.gserviceaccount.com"
RUNTIME="oc-functions@$SA_DOMAIN" SCHEDULER="oc-scheduler@$SA_DOMAIN" TASKS="oc-tasks@$SA_DOMAIN"
EVENTS="oc-events@$SA_DOMAIN"
# What the operator supplies (created empty here): secret -> what it is
OPERATOR_SECRETS="stripe-secret-key stripe-webhook-secret openai-api-key openrouter-management-key openai-admin-key"
g() { gcloud --quiet "$@"; }
exists() { gcloud --quiet "$@" >/dev/null 2>&1; }
project_binding() { g projects add-iam-policy-binding "$1" --member="$2" --role="$3" --condition=None >/dev/null; }
sa_binding() { g iam service-accounts add-iam-policy-binding "$1" --project="$PROJECT_ID" --member="$2" --role="$3" >/dev/null; }
deploy_projects() { need DEPLOY_PROJECTS; tr ',' '\n' <<<"$DEPLOY_PROJECTS" | sed '/^$/d'; }
project_number() { g projects describe "$1" --format='value(projectNumber)'; }

apis() {
  # Firebase Auth (identitytoolkit) signs users in; firebaserules serves the Firestore rules.
  g services enable --project="$PROJECT_ID" cloudfunctions.googleapis.com run.googleapis.com \
    cloudbuild.googleapis.com artifactregistry.googleapis.com eventarc.googleapis.com pubsub.googleapis.com \
    cloudtasks.googleapis.com cloudscheduler.googleapis.com firestore.googleapis.com firebaserules.googleapis.com \
    identitytoolkit.googleapis.com secretmanager.googleapis.com compute.googleapis.com iam.googleapis.com \
    iamcredentials.googleapis.com storage.googleapis.com logging.googleapis.com cloudresourcemanager.googleapis.com
  for p in $(deploy_projects); do
    [ "$p" = "$PROJECT_ID" ] || g services enable --project="$p" compute.googleapis.com
    g services enable --project="$p" iap.googleapis.com  # owners reach their bot's dashboard through IAP
  done
}

identities() {
  local id
  for id in oc-functions:"Cloud Functions runtime" oc-scheduler:"Cloud Scheduler caller" \
            oc-tasks:"Cloud Tasks caller" oc-events:"Eventarc caller"; do
    exists iam service-accounts describe "${id%%:*}@$SA_DOMAIN" --project="$PROJECT_ID" ||
      g iam service-accounts create "${id%%:*}" --project="$PROJECT_ID" --display-name="${id#*:}"
  done
  # runtime: Firestore, queueing tasks, the secrets it manages (per-deployment API keys, bot tokens)
  project_binding "$PROJECT_ID" "serviceAccount:$RUNTIME" roles/datastore.user
  project_binding "$PROJECT_ID" "serviceAccount:$RUNTIME" roles/cloudtasks.enqueuer
  project_binding "$PROJECT_ID" "serviceAccount:$RUNTIME" roles/secretmanager.admin
  # tasks carry OIDC tokens of oc-tasks: the runtime acts as it
  sa_binding "$TASKS" "serviceAccount:$RUNTIME" roles/iam.serviceAccountUser
  # media: V4 signed URLs are signed by IAM signBlob as the runtime account itself
  sa_binding "$RUNTIME" "serviceAccount:$RUNTIME" roles/iam.serviceAccountTokenCreator
  # Eventarc delivers the VMs' reports as oc-events (run.invoker on provisioningEvents: step invoker)
  project_binding "$PROJECT_ID" "serviceAccount:$EVENTS" roles/eventarc.eventReceiver
  local number; number=$(project_number "$PROJECT_ID")
  # Pub/Sub's agent mints the push tokens of Eventarc's subscription
  project_binding "$PROJECT_ID" "serviceAccount:service-$number@gcp-sa-pubsub.iam.gserviceaccount.com" \
    roles/iam.serviceAccountTokenCreator
  # Each bot's VM runs as its own service account (ocb-<hash>, made and deleted by deployWorker), which
  # is granted its own secrets one by one (secret-level IAM) and publishing to the topic: no
  # project-level role names a bot. In each deploy project the runtime creates/deletes those accounts
  # and attaches them to the VMs it creates there.
  local p q
  for p in $(deploy_projects); do
    project_binding "$p" "serviceAccount:$RUNTIME" roles/compute.instanceAdmin.v1
    # backups: snapshot schedules (resource policies) on the bots' disks, snapshots, disks from snapshots
    project_binding "$p" "serviceAccount:$RUNTIME" roles/compute.storageAdmin
    project_binding "$p" "serviceAccount:$RUNTIME" roles/iam.serviceAccountAdmin
    project_binding "$p" "serviceAccount:$RUNTIME" roles/iam.serviceAccountUser
    # dashboard access: a short-lived, conditional IAP tunnel grant on one instance for its owner
    project_binding "$p" "serviceAccount:$RUNTIME" roles/iap.admin
    # a bot's account is made in another deploy project when its own is full (100 accounts):
    # the Compute agents of the other deploy projects may then attach this project's accounts
    for q in $(deploy_projects); do
      [ "$q" = "$p" ] || project_binding "$p" \
        "serviceAccount:service-$(project_number "$q")@compute-system.iam.gserviceaccount.com" \
        roles/iam.serviceAccountTokenCreator
    done
  done
}

firestore() {
  need FIRESTORE_LOCATION
  exists firestore databases describe --database='(default)' --project="$PROJECT_ID" ||
    g firestore databases create --database='(default)' --location="$FIRESTORE_LOCATION" \
      --type=firestore-native --project="$PROJECT_ID"
}

secrets() {
  local s
  for s in $OPERATOR_SECRETS; do
    exists secrets describe "$s" --project="$PROJECT_ID" ||
      g secrets create "$s" --project="$PROJECT_ID" --replication-policy=automatic
  done
}

media_bucket() {
  need MEDIA_BUCKET
  local dir; dir=$(mktemp -d)
  # Browsers PUT to V4 signed URLs (the size bound travels in x-goog-content-length-range) and GET them
  python3 - "$CORS_ORIGINS" >"$dir/cors.json" <<'EOF'
import json, sys
origins = [o.strip() for o in sys.argv[1].split(",") if o.strip()]
print(json.dumps([{"origin": origins, "method": ["PUT", "GET", "HEAD"], "maxAgeSeconds": 3600,
                   "responseHeader": ["Content-Type", "x-goog-content-length-range"]}]))
EOF
  # uploads abandoned half-way are dropped after a day
  echo '{"rule": [{"action": {"type": "AbortIncompleteMultipartUpload"}, "condition": {"age": 1}}]}' >"$dir/lifecycle.json"
  exists storage buckets describe "gs://$MEDIA_BUCKET" --project="$PROJECT_ID" ||
    g storage buckets create "gs://$MEDIA_BUCKET" --project="$PROJECT_ID" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  g storage buckets update "gs://$MEDIA_BUCKET" --project="$PROJECT_ID" --cors-file="$dir/cors.json" \
    --lifecycle-file="$dir/lifecycle.json"
  g storage buckets add-iam-policy-binding "gs://$MEDIA_BUCKET" --project="$PROJECT_ID" \
    --member="serviceAccount:$RUNTIME" --role=roles/storage.objectAdmin >/dev/null
  rm -r "$dir"
}

bot_plugin_pack() {  # npm pack of bot/ -> .deploy/bot-plugin.tgz (npm packs deterministically)
  rm -rf .deploy/pack && mkdir -p .deploy/pack
  (cd bot && npm pack --silent --pack-destination ../.deploy/pack >/dev/null)
  mv .deploy/pack/*.tgz .deploy/bot-plugin.tgz
}

bot_plugin() {  # the packed plugin, checked against _BOT_PLUGIN_SHA256, stored once under that checksum
  need ARTIFACTS_BUCKET; need BOT_PLUGIN_SHA256
  local got obj="gs://$ARTIFACTS_BUCKET/bot-plugin/$BOT_PLUGIN_SHA256.tgz"
  got=$(sha256sum .deploy/bot-plugin.tgz | cut -d' ' -f1)
  [ "$got" = "$BOT_PLUGIN_SHA256" ] || { echo "bot plugin: bot/ packs to sha256 $got but _BOT_PLUGIN_SHA256 is" \
    "$BOT_PLUGIN_SHA256 (make deploy computes it; in Cloud Build pass the checksum of \`npm pack\` of bot/)" >&2; exit 1; }
  exists storage buckets describe "gs://$ARTIFACTS_BUCKET" --project="$PROJECT_ID" ||
    g storage buckets create "gs://$ARTIFACTS_BUCKET" --project="$PROJECT_ID" --location="$REGION" \
      --uniform-bucket-level-access --public-access-prevention
  # the runtime adds (and removes) each bot's own account as objectViewer of this bucket (deployWorker);
  # an object replaced here would still be refused by the VMs, which check the checksum deployWorker gives them
  g storage buckets add-iam-policy-binding "gs://$ARTIFACTS_BUCKET" --project="$PROJECT_ID" \
    --member="serviceAccount:$RUNTIME" --role=roles/storage.admin >/dev/null
  exists storage objects describe "$obj" --project="$PROJECT_ID" ||
    g storage cp .deploy/bot-plugin.tgz "$obj" --project="$PROJECT_ID"
}

vm_network() {
  # the bots' VMs have no external IP: Cloud NAT gives them outbound access (packages, model APIs)
  local p
  for p in $(deploy_projects); do
    exists compute routers describe oc-nat-router --region="$REGION" --project="$p" ||
      g compute routers create oc-nat-router --network=default --region="$REGION" --project="$p"
    exists compute routers nats describe oc-nat --router=oc-nat-router --region="$REGION" --project="$p" ||
      g compute routers nats create oc-nat --router=oc-nat-router --region="$REGION" --project="$p" \
        --auto-allocate-nat-external-ips --nat-all-subnet-ip-ranges
    # the only ingress to a bot: IAP TCP forwarding to its OpenClaw gateway (shared/deploy/gateway.py)
    exists compute firewall-rules describe oc-allow-iap-gateway --project="$p" ||
      g compute firewall-rules create oc-allow-iap-gateway --project="$p" --network=default --direction=INGRESS \
        --action=ALLOW --rules=tcp:18789 --source-ranges=35.235.240.0/20 --target-tags=openclaw-bot \
        --description="IAP TCP forwarding to the OpenClaw gateway of the bots (no other ingress)"
  done
}

queue() {  # queue NAME FLAGS... (the queue's settings, from deploy/manifest.py's QUEUES)
  local name=$1; shift
  exists tasks queues describe "$name" --location="$REGION" --project="$PROJECT_ID" ||
    g tasks queues create "$name" --location="$REGION" --project="$PROJECT_ID"
  g tasks queues update "$name" --location="$REGION" --project="$PROJECT_ID" "$@" >/dev/null
}

topic() {
  exists pubsub topics describe provisioning-events --project="$PROJECT_ID" ||
    g pubsub topics create provisioning-events --project="$PROJECT_ID"
  # the runtime adds (and removes) each bot's own account as publisher of this topic, no one else's
  g pubsub topics add-iam-policy-binding provisioning-events --project="$PROJECT_ID" \
    --member="serviceAccount:$RUNTIME" --role=roles/pubsub.admin >/dev/null
}

function_() {  # function NAME DEPLOY-FLAGS...
  local name=$1; shift
  local arg s missing=""
  for arg in "$@"; do  # a secret without a version would fail the deploy: wait for the operator
    case $arg in --set-secrets=*)
      for s in $(tr ',' '\n' <<<"${arg#--set-secrets=}" | sed 's/^[^=]*=//; s/:.*//'); do
        exists secrets describe "$s" --project="$PROJECT_ID" ||
          { echo "function $name: secret $s does not exist (the secrets step creates the operator's secrets)" >&2; exit 1; }
        [ -n "$(g secrets versions list "$s" --project="$PROJECT_ID" --filter=state:enabled --limit=1 --format='value(name)')" ] ||
          missing="$missing $s"
      done;;
    esac
  done
  if [ -n "$missing" ]; then
    echo "function $name: NOT deployed, secret(s)$missing have no version yet (see the summary)"
    return 0
  fi
  local hash=""
  if [ -n "${SOURCE_HASH:-}" ]; then  # the source and this command line: unchanged means nothing to do
    hash=$(printf '%s\n' "$SOURCE_HASH" "$@" | sha256sum | cut -c1-40)
    if [ "$(gcloud --quiet functions describe "$name" --region="$REGION" --project="$PROJECT_ID" \
            --format='value(labels.deploy-hash)' 2>/dev/null || true)" = "$hash" ]; then
      echo "function $name: unchanged"
      return 0
    fi
  fi
  g functions deploy "$name" --project="$PROJECT_ID" "$@" ${hash:+--update-labels=deploy-hash=$hash}
}

deployed() {  # a function skipped for a missing secret has nothing to bind or schedule yet
  exists functions describe "$1" --region="$REGION" --project="$PROJECT_ID" && return 0
  echo "function $1 is not deployed yet: skipped"; return 1
}

invoker() {  # invoker FUNCTION SERVICE_ACCOUNT
  deployed "$1" || return 0
  g functions add-invoker-policy-binding "$1" --region="$REGION" --project="$PROJECT_ID" \
    --member="serviceAccount:$2" >/dev/null
}

schedule() {  # schedule JOB URL CRON ATTEMPT_DEADLINE SERVICE_ACCOUNT
  local job=$1 url=$2 cron=$3 deadline=$4 sa=$5
  deployed "${url##*/}" || return 0
  local common=(--location="$REGION" --project="$PROJECT_ID" --schedule="$cron" --time-zone=Etc/UTC --uri="$url"
                --http-method=POST --message-body='{}' --attempt-deadline="$deadline" --max-retry-attempts=5
                --min-backoff=60s --max-backoff=600s --oidc-service-account-email="$sa" --oidc-token-audience="$url")
  if exists scheduler jobs describe "$job" --location="$REGION" --project="$PROJECT_ID"; then
    g scheduler jobs update http "$job" "${common[@]}" --update-headers=Content-Type=application/json >/dev/null
  else
    g scheduler jobs create http "$job" "${common[@]}" --headers=Content-Type=application/json
  fi
}

summary() {
  local s todo=""
  for s in $OPERATOR_SECRETS; do
    [ -n "$(g secrets versions list "$s" --project="$PROJECT_ID" --filter=state:enabled --limit=1 --format='value(name)')" ] ||
      todo="$todo $s"
  done
  echo "deployed: https://$REGION-$PROJECT_ID.cloudfunctions.net/<function>"
  if [ -n "$todo" ]; then
    echo "secrets that still need a version (the functions using them are not deployed yet):"
    for s in $todo; do
      echo "  printf '%s' \"\$VALUE\" | gcloud secrets versions add $s --project=$PROJECT_ID --data-file=-"
    done
    echo "then run make deploy again."
  else
    echo "every secret has a version."
  fi
}

step=$1; shift
case $step in
  function) function_ "$@";;
  apis|identities|firestore|secrets|media_bucket|bot_plugin_pack|bot_plugin|vm_network|queue|topic|invoker|schedule|summary)
    "$step" "$@";;
  *) echo "unknown step $step" >&2; exit 2;;
esac
