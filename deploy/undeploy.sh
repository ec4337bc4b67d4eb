#!/usr/bin/env bash
# Tears down what cloudbuild.yaml created: `make undeploy PROJECT=<id> REGION=<region> CONFIRM=<id>`.
# Removes the scheduler jobs first (nothing new starts), then the functions, queues, topic, the bots'
# VMs (label openclaw-deployment) and NAT, the media bucket with its objects, the secrets (operator's
# and per-deployment oc-*), and the service accounts (the system's and every bot's ocb-*). Keeps the Firestore database unless
# DELETE_FIRESTORE=yes (its data is the customers'; a deleted database id is blocked for a while).
# Each removal tolerates "already gone", so it can be run again after a partial failure.
set -uo pipefail
: "${PROJECT_ID:?}" "${REGION:?}"
if [ "${CONFIRM:-}" != "$PROJECT_ID" ]; then
  echo "undeploy deletes every resource of this backend in $PROJECT_ID; run again with CONFIRM=$PROJECT_ID" >&2
  exit 2
fi
DEPLOY_PROJECTS=${DEPLOY_PROJECTS:-$PROJECT_ID}
MEDIA_BUCKET=${MEDIA_BUCKET:-$PROJECT_ID-media}
ARTIFACTS_BUCKET=${ARTIFACTS_BUCKET:-$PROJECT_ID-artifacts}
FAILED=0
g() {  # run; "already gone" is fine, any other failure is reported and makes the exit status 1
  local out
  out=$(gcloud --quiet "$@" 2>&1) && { [ -z "$out" ] || echo "$out"; return 0; }
  grep -q "NOT_FOUND\|not found\|does not exist" <<<"$out" && return 0
  echo "$out" >&2; FAILED=1
}

for job in $(python3 -c 'from deploy.manifest import SCHEDULES; print(" ".join(j for j, *_ in SCHEDULES))'); do
  g scheduler jobs delete "$job" --location="$REGION" --project="$PROJECT_ID"
done
for fn in $(python3 -c 'from deploy.manifest import FUNCTIONS; print(" ".join(f.name for f in FUNCTIONS))'); do
  g functions delete "$fn" --region="$REGION" --project="$PROJECT_ID"
done
for q in $(python3 -c 'from deploy.manifest import QUEUES; print(" ".join(QUEUES))'); do g tasks queues delete "$q" --location="$REGION" --project="$PROJECT_ID"; done
g pubsub topics delete provisioning-events --project="$PROJECT_ID"
for p in $(tr ',' ' ' <<<"$DEPLOY_PROJECTS"); do
  while read -r name zone; do
    [ -n "$name" ] && g compute instances delete "$name" --zone="$zone" --project="$p"
  done < <(gcloud compute instances list --project="$p" --filter="labels.openclaw-deployment:*" \
             --format='value(name,zone.basename())' 2>/dev/null)
  g compute routers delete oc-nat-router --region="$REGION" --project="$p"  # its NAT goes with it
  g compute firewall-rules delete oc-allow-iap-gateway --project="$p"
  # the bots' snapshot schedules (their disks went with the VMs); the snapshots are customers' backups
  while read -r name region; do
    [ -n "$name" ] && g compute resource-policies delete "$name" --region="$region" --project="$p"
  done < <(gcloud compute resource-policies list --project="$p" --filter="name~^oc-backup-" \
             --format='value(name,region.basename())' 2>/dev/null)
  if [ "${DELETE_BACKUPS:-}" = yes ]; then
    for snap in $(gcloud compute snapshots list --project="$p" --filter="name~^oc- OR labels.openclaw-backup:*" \
                    --format='value(name)' 2>/dev/null); do
      g compute snapshots delete "$snap" --project="$p"
    done
  else
    echo "kept: the bots' snapshots in $p (DELETE_BACKUPS=yes deletes them)"
  fi
done
for b in "$MEDIA_BUCKET" "$ARTIFACTS_BUCKET"; do  # the media, and the bot plugin the VMs installed
  g storage rm --recursive "gs://$b/**" --project="$PROJECT_ID"
  g storage buckets delete "gs://$b" --project="$PROJECT_ID"
done
for s in $(gcloud secrets list --project="$PROJECT_ID" --format='value(name.basename())' 2>/dev/null); do
  case $s in oc-*|stripe-secret-key|stripe-webhook-secret|openai-api-key|openrouter-management-key|openai-admin-key)
    g secrets delete "$s" --project="$PROJECT_ID";;
  esac
done
for p in $(tr ',' ' ' <<<"$DEPLOY_PROJECTS"); do  # each bot's own account (ocb-<hash>), made by deployWorker
  for sa in $(gcloud iam service-accounts list --project="$p" --format='value(email)' 2>/dev/null); do
    case $sa in ocb-*) g iam service-accounts delete "$sa" --project="$p";; esac
  done
done
# oc-bot-vm: the shared VM account of earlier versions (already gone is fine)
for sa in oc-functions oc-scheduler oc-tasks oc-events oc-bot-vm; do
  g iam service-accounts delete "$sa@$PROJECT_ID.iam.gserviceaccount.com" --project="$PROJECT_ID"
done
if [ "${DELETE_FIRESTORE:-}" = yes ]; then
  g firestore databases delete --database='(default)' --project="$PROJECT_ID"
else
  echo "kept: the Firestore database (DELETE_FIRESTORE=yes deletes it and every customer's data)"
fi
[ "$FAILED" = 0 ] || { echo "undeploy: some deletions failed (above); run it again once fixed" >&2; exit 1; }
echo "undeployed from $PROJECT_ID (APIs stay enabled; they cost nothing unused)"
