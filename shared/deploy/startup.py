"""What a bot VM is made of: the instance resource (e2-small class, Debian 12, no external IP)
and its metadata: a fixed startup script plus the bot's configuration as JSON. Settings travel
as data read from the metadata server, never pasted into the script, so no user text can
become shell code; API keys travel as secret names the VM reads with its own identity."""
from __future__ import annotations

import json

from shared import repos
from shared.deploy import catalog, gateway, secrets, settings
from shared.models import DeployJob, Deployment

# The OpenClaw every VM installs: the version tests/test_bot_openclaw.py runs the bot plugin in
# (devtools/openclaw/package.json pins the same; a test checks they match).
OPENCLAW_VERSION = "2026.9.6"

STARTUP_SCRIPT = r"""#!/bin/bash
# OpenClaw bot bootstrap (runs on every boot). Reads its configuration from instance metadata.
set -euo pipefail
MD=http://metadata.google.internal/computeMetadata/v1/instance/attributes
md() { curl -fsS -H 'Metadata-Flavor: Google' "$MD/$1"; }
TOPIC=$(md openclaw-events-topic)
DEPLOYMENT=$(md openclaw-deployment-id)
SECRETS_PROJECT=$(md openclaw-secrets-project)
# the deployment's report key: only this VM's own service account may read it (secret-level IAM)
REPORT_KEY=$(gcloud secrets versions access latest --secret="$(md openclaw-report-key)" \
             --project="$SECRETS_PROJECT" 2>/dev/null || true)
LAST=0
report() {  # progress for the provisioningEvents function, signed (HMAC-SHA256); never fatal
  local msg sig t
  t=$(date +%s%3N); [ "$t" -gt "$LAST" ] || t=$((LAST + 1)); LAST=$t  # strictly increasing: the sequence
  msg=$(printf '{"deploymentId":"%s","stage":"%s","message":"%s","time":%s}' \
        "$DEPLOYMENT" "$1" "${2//\"/\'}" "$t")
  sig=$(printf '%s' "$msg" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$REPORT_KEY" -r | cut -d' ' -f1) || return 0
  gcloud pubsub topics publish "$TOPIC" --message="$msg" --attribute="signature=$sig" >/dev/null 2>&1 || true
}
STATE=/var/lib/openclaw  # the openclaw user's home: OpenClaw's own config and installed plugins
oc() { runuser -u openclaw -- env HOME="$STATE" openclaw "$@"; }  # OpenClaw's CLI as the bot's user
install_plugin() {  # URL SHA256: the bot plugin (knowledge, media, costs tools), verified, installed, enabled
  local url=$1 want=$2 tgz="$STATE/openclaw-hosting-bot.tgz" got
  [ "$(cat "$STATE/.bot-plugin.sha256" 2>/dev/null)" != "$want" ] || return 0  # this exact plugin is in
  rm -f "$tgz.part"
  gcloud storage cp "$url" "$tgz.part" --quiet >/dev/null 2>&1 ||
    { report failed "could not download the bot plugin $url"; return 1; }
  got=$(sha256sum "$tgz.part" | cut -d' ' -f1)
  if [ "$got" != "$want" ]; then
    rm -f "$tgz.part"
    report failed "bot plugin checksum mismatch: $url has sha256 $got, expected $want; not installed"
    return 1
  fi
  mv -f "$tgz.part" "$tgz" && chown openclaw:openclaw "$tgz"
  # its config names the files this script keeps (URLs in config.json, the token refreshed in secrets/);
  # the token itself never enters OpenClaw's config
  # (called in an `||` list, where set -e does not act: every step checks its own status)
  { oc config set plugins.entries.openclaw-hosting.config \
      '{"configFile":"/etc/openclaw/config.json","tokenFile":"/etc/openclaw/secrets/openclaw-bot-token"}' --strict-json &&
    oc plugins install "npm-pack:$tgz" --force --accept-capabilities &&
    oc plugins enable openclaw-hosting --accept-capabilities; } >/dev/null ||
    { report failed "openclaw could not install or enable the bot plugin (sha256 ${want:0:12})"; return 1; }
  printf '%s' "$want" > "$STATE/.bot-plugin.sha256"
}
model_ref() {  # our model ids are OpenRouter's: with an OpenRouter key they go through OpenClaw's openrouter provider
  jq '(.secrets | has("openrouter-api-key")) as $openrouter
      | def ref: if $openrouter and (startswith("openrouter/") | not) then "openrouter/" + . else . end;
      {primary: (.primaryModel | ref), fallbacks: [(.fallbackModels // [])[] | ref]}' /etc/openclaw/config.json
}
configure_openclaw() {  # OpenClaw's own settings (its openclaw.json) from config.json, and the keys it reads from env
  local cfg=/etc/openclaw/config.json out=/etc/openclaw/providers.env key var
  install -m 0600 /dev/null "$out.new" && chown openclaw:openclaw "$out.new" || return 1
  # the env vars OpenClaw reads (model providers, the default Telegram/Discord bot accounts, Brave web search);
  # only keys config.json still names: a key removed by the owner leaves OpenClaw. The gateway's unit loads the file.
  for key in $(jq -r '.secrets | keys[]' "$cfg"); do
    case $key in
      openrouter-api-key) var=OPENROUTER_API_KEY;; openai-api-key) var=OPENAI_API_KEY;;
      anthropic-api-key) var=ANTHROPIC_API_KEY;; google-ai-api-key) var=GEMINI_API_KEY;;
      telegram-bot-token) var=TELEGRAM_BOT_TOKEN;; discord-bot-token) var=DISCORD_BOT_TOKEN;;
      brave-search-api-key) var=BRAVE_API_KEY;; *) continue;;
    esac
    printf '%s=%s\n' "$var" "$(cat "/etc/openclaw/secrets/$key")" >> "$out.new" || return 1
  done
  mv -f "$out.new" "$out" || return 1
  # gateway: port and bind from config.json, the shared token from OPENCLAW_GATEWAY_TOKEN (gateway.env, never
  # in openclaw.json); mode=local lets `gateway run` start. Channels: on exactly when their token is configured,
  # the token coming from the env fallback above (no token in openclaw.json). The main agent's identity: the
  # bot's name and emoji. Objects merge, arrays (fallbacks) are replaced.
  jq --argjson model "$(model_ref)" '(.secrets | has("telegram-bot-token")) as $telegram
      | (.secrets | has("discord-bot-token")) as $discord
      | ({name: .botName, emoji: .brandEmoji} | with_entries(select((.value // "") != ""))) as $identity
      | {gateway: {mode: "local", port: .gateway.port, bind: .gateway.bind, auth: {mode: .gateway.auth.mode}},
         agents: ({defaults: {model: $model}} + if $identity == {} then {} else {entries: {main: {identity: $identity}}} end),
         channels: {telegram: {enabled: $telegram}, discord: {enabled: $discord}}}' "$cfg" |
    oc config patch --stdin >/dev/null
}
install_channel_plugins() {  # OpenClaw's official packages outside its core that a configured key needs, pinned
  local key spec
  for key in $(jq -r '.secrets | keys[]' /etc/openclaw/config.json); do
    case $key in
      discord-bot-token) spec=npm:@openclaw/discord@OPENCLAW_VERSION;;  # the Discord channel
      brave-search-api-key) spec=npm:@openclaw/brave-plugin@2026.9.5;;  # web_search via Brave (its newest release)
      *) continue;;
    esac
    [ "$(cat "$STATE/.plugin-$key" 2>/dev/null)" != "$spec" ] || continue  # installed on an earlier boot
    oc plugins install "$spec" --force --accept-capabilities >/dev/null ||
      { report failed "openclaw could not install $spec (needed by $key)"; return 1; }
    printf '%s' "$spec" > "$STATE/.plugin-$key"
  done
}
gateway_token() { sed -n 's/^OPENCLAW_GATEWAY_TOKEN=//p' /etc/openclaw/gateway.env; }  # what OpenClaw's CLI sends
SKILL_JOB=openclaw-hosting:skill:  # the declaration key of the cron jobs this script owns: + the skill's id
sync_skill_jobs() {  # each scheduled skill of config.json as one OpenClaw cron job; needs the running gateway
  local cfg=/etc/openclaw/config.json jobs id skill
  export OPENCLAW_GATEWAY_TOKEN
  OPENCLAW_GATEWAY_TOKEN=$(gateway_token)
  jobs=$(oc cron list --all --json) || return 1
  # ours whose skill is off or no longer scheduled: removed; jobs with another (or no) declaration key stay
  for id in $(jq -r --arg p "$SKILL_JOB" --slurpfile cfg "$cfg" '.jobs[]
      | select((.declarationKey // "") | startswith($p))
      | select($cfg[0].skills[.declarationKey | ltrimstr($p)].cron == null) | .id' <<<"$jobs"); do
    oc cron remove "$id" >/dev/null || return 1
  done
  # created, or converged in place (schedule, prompt) when its declaration key exists: idempotent on every boot
  for skill in $(jq -r '.skills | to_entries[] | select(.value.cron != null) | .key' "$cfg"); do
    oc cron add --declaration-key "$SKILL_JOB$skill" --name "$skill" \
      --cron "$(jq -r --arg s "$skill" '.skills[$s].cron' "$cfg")" --tz UTC --exact --session isolated \
      --message "$(jq -r --arg s "$skill" '.skills[$s] | "Run your scheduled skill \"\(.name)\": \(.description)."' "$cfg")" \
      --announce --best-effort-deliver >/dev/null || return 1
  done
}
gateway_up() {  # the gateway answers its health check (with the token from gateway.env), within ~2 minutes
  local tok i
  tok=$(gateway_token)
  for i in $(seq 40); do
    OPENCLAW_GATEWAY_TOKEN=$tok oc health --json --timeout 5000 >/dev/null 2>&1 && return 0
    systemctl is-active --quiet openclaw.service || [ "$i" -lt 10 ] || return 1
    sleep 3
  done
  return 1
}
trap 'report failed "startup script failed at line $LINENO"' ERR
report booting "startup script started"
if ! command -v openclaw >/dev/null; then
  report installing "installing Node.js and OpenClaw"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq
  apt-get install -y -qq ca-certificates curl jq
  # OpenClaw needs Node 24 (Debian 12 ships 18): NodeSource's signed apt repository
  curl -fsSL https://deb.nodesource.com/setup_24.x | bash - >/dev/null
  apt-get install -y -qq nodejs
  npm install -g --no-fund --no-audit openclaw@OPENCLAW_VERSION
  useradd --system --create-home --home-dir /var/lib/openclaw openclaw || true
fi
report configuring "writing configuration and fetching API keys"
install -d -m 0750 -o openclaw -g openclaw /etc/openclaw /etc/openclaw/secrets
md openclaw-config > /etc/openclaw/config.json
jq -r '.secrets | to_entries[] | "\(.key) \(.value)"' /etc/openclaw/config.json |
while read -r key secret; do
  gcloud secrets versions access latest --secret="$secret" --project="$(jq -r .secretsProject /etc/openclaw/config.json)" \
    > "/etc/openclaw/secrets/$key"
  chmod 0600 "/etc/openclaw/secrets/$key"
done
for f in /etc/openclaw/secrets/*; do  # a key the owner removed leaves the VM too
  jq -e --arg k "${f##*/}" '.secrets | has($k)' /etc/openclaw/config.json >/dev/null || rm -f "$f"
done
chown -R openclaw:openclaw /etc/openclaw
configure_openclaw || { report failed "openclaw rejected its settings (gateway, models, channels)"; trap - ERR; exit 1; }
install_channel_plugins || { trap - ERR; exit 1; }
PLUGIN_URL=$(md openclaw-plugin-url 2>/dev/null || true)
if [ -n "$PLUGIN_URL" ]; then
  report configuring "installing the bot plugin"
  install_plugin "$PLUGIN_URL" "$(md openclaw-plugin-sha256)" || { trap - ERR; exit 1; }
fi
cat > /etc/systemd/system/openclaw.service <<'UNIT'
[Unit]
Description=OpenClaw bot
After=network-online.target
[Service]
User=openclaw
EnvironmentFile=-/etc/openclaw/providers.env
EnvironmentFile=-/etc/openclaw/gateway.env
ExecStart=/usr/bin/env openclaw gateway run
Restart=always
RestartSec=5
[Install]
WantedBy=multi-user.target
UNIT
# a rotated bot credential reaches the bot without a redeploy: re-read every 2 minutes (the previous
# token keeps working for 10 minutes after a rotation), replaced atomically, only when it changed
cat > /usr/local/sbin/openclaw-refresh-token <<'SH'
#!/bin/bash
set -euo pipefail
CFG=/etc/openclaw/config.json DIR=/etc/openclaw/secrets
new=$(gcloud secrets versions access latest --secret="$(jq -r '.secrets["openclaw-bot-token"]' $CFG)" \
      --project="$(jq -r .secretsProject $CFG)")
if [ -n "$new" ] && ! printf '%s' "$new" | cmp -s - "$DIR/openclaw-bot-token"; then
  install -m 0600 -o openclaw -g openclaw /dev/null "$DIR/.openclaw-bot-token.new"
  printf '%s' "$new" > "$DIR/.openclaw-bot-token.new"
  mv -f "$DIR/.openclaw-bot-token.new" "$DIR/openclaw-bot-token"
fi
SH
chmod 0755 /usr/local/sbin/openclaw-refresh-token
cat > /etc/systemd/system/openclaw-token.service <<'UNIT'
[Unit]
Description=Re-read the OpenClaw bot credential from Secret Manager
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/openclaw-refresh-token
UNIT
cat > /etc/systemd/system/openclaw-token.timer <<'UNIT'
[Unit]
Description=Re-read the OpenClaw bot credential every 2 minutes
[Timer]
OnBootSec=2min
OnUnitActiveSec=2min
[Install]
WantedBy=timers.target
UNIT
# the dashboard's gateway token (shared/deploy/gateway.py): {"token","expiresAt"} in Secret Manager, set
# by the owner's dashboard-access request; used only until it expires, then replaced by a random one
cat > /usr/local/sbin/openclaw-gateway-token <<'SH'
#!/bin/bash
set -uo pipefail
CFG=/etc/openclaw/config.json ENV=/etc/openclaw/gateway.env
raw=$(gcloud secrets versions access latest --secret="$(jq -r '.gateway.tokenSecret' $CFG)" \
      --project="$(jq -r .secretsProject $CFG)" 2>/dev/null || true)
tok=$(jq -r --argjson now "$(date +%s%3N)" 'select(.expiresAt > $now) | .token // empty' <<<"$raw" 2>/dev/null || true)
[ -n "$tok" ] || tok=$(grep -s '^OPENCLAW_GATEWAY_TOKEN=locked-' $ENV | cut -d= -f2-)
[ -n "$tok" ] || tok="locked-$(openssl rand -hex 32)"  # expired or never issued: nobody knows it
if [ "OPENCLAW_GATEWAY_TOKEN=$tok" != "$(cat $ENV 2>/dev/null)" ]; then
  install -m 0600 -o openclaw -g openclaw /dev/null $ENV.new
  printf 'OPENCLAW_GATEWAY_TOKEN=%s' "$tok" > $ENV.new && mv -f $ENV.new $ENV
  systemctl try-restart openclaw.service  # the gateway reads its token at start
fi
SH
chmod 0755 /usr/local/sbin/openclaw-gateway-token
/usr/local/sbin/openclaw-gateway-token || true
cat > /etc/systemd/system/openclaw-gateway-token.service <<'UNIT'
[Unit]
Description=Apply the OpenClaw dashboard's gateway token (or lock it when expired)
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/openclaw-gateway-token
UNIT
cat > /etc/systemd/system/openclaw-gateway-token.timer <<'UNIT'
[Unit]
Description=Check the OpenClaw gateway token every 30 seconds
[Timer]
OnBootSec=30s
OnUnitActiveSec=30s
AccuracySec=1s
[Install]
WantedBy=timers.target
UNIT
# heartbeats (shared/health): every $HEARTBEAT_S the gateway's health, signed like the reports above, with
# its own strictly increasing sequence; the key stays in a root-only file (no Secret Manager call per beat)
install -m 0600 /dev/null /etc/openclaw/report-key && printf '%s' "$REPORT_KEY" > /etc/openclaw/report-key
HEARTBEAT_S=$(md openclaw-heartbeat-interval || echo 60)
cat > /usr/local/sbin/openclaw-heartbeat <<SH
#!/bin/bash
TOPIC='$TOPIC' DEPLOYMENT='$DEPLOYMENT'
$(declare -f gateway_token)
SH
cat >> /usr/local/sbin/openclaw-heartbeat <<'SH'
KEY=$(cat /etc/openclaw/report-key) STATE=/run/openclaw-heartbeat.seq
gateway=down detail=$(systemctl show -p ActiveState --value openclaw.service)
if [ "$detail" = active ]; then
  tok=$(gateway_token 2>/dev/null)  # health connects like any client
  if out=$(OPENCLAW_GATEWAY_TOKEN=$tok timeout 20 runuser -u openclaw -- openclaw health --json --timeout 10000 2>&1)
  then gateway=ok detail=""
  else detail="openclaw health: $(printf '%s' "$out" | tail -c 200 | tr -d '"\\\n')"; fi
fi
t=$(date +%s%3N); last=$(cat "$STATE" 2>/dev/null || echo 0); [ "$t" -gt "$last" ] || t=$((last + 1))
echo "$t" > "$STATE"
msg=$(printf '{"deploymentId":"%s","stage":"heartbeat","gateway":"%s","message":"%s","time":%s}' \
      "$DEPLOYMENT" "$gateway" "$detail" "$t")
sig=$(printf '%s' "$msg" | openssl dgst -sha256 -mac HMAC -macopt "hexkey:$KEY" -r | cut -d' ' -f1)
gcloud pubsub topics publish "$TOPIC" --message="$msg" --attribute="signature=$sig" >/dev/null 2>&1 || true
SH
chmod 0700 /usr/local/sbin/openclaw-heartbeat
cat > /etc/systemd/system/openclaw-heartbeat.service <<'UNIT'
[Unit]
Description=Report the OpenClaw gateway's health to the hosting service
[Service]
Type=oneshot
ExecStart=/usr/local/sbin/openclaw-heartbeat
UNIT
cat > /etc/systemd/system/openclaw-heartbeat.timer <<UNIT
[Unit]
Description=OpenClaw heartbeat every ${HEARTBEAT_S}s
[Timer]
OnBootSec=${HEARTBEAT_S}s
OnUnitActiveSec=${HEARTBEAT_S}s
AccuracySec=1s
[Install]
WantedBy=timers.target
UNIT
systemctl daemon-reload
systemctl enable --now openclaw-token.timer openclaw-gateway-token.timer
systemctl enable --now openclaw-heartbeat.timer
systemctl enable openclaw.service
systemctl restart openclaw.service
if ! gateway_up; then
  report failed "openclaw.service did not start: $(systemctl show -p Result --value openclaw.service)"
elif ! sync_skill_jobs; then
  report failed "openclaw did not accept the scheduled skills' cron jobs"
else
  report ready "bot is up"
fi
""".replace("@OPENCLAW_VERSION", f"@{OPENCLAW_VERSION}")


BOT_TOKEN_KEY = "openclaw-bot-token"  # the bot's knowledge/media credential, a secret like the API keys
REPORT_KEY = "openclaw-report-key"  # signs the VM's progress reports (shared/deploy/events.py); not in the bot's config


def _skill(skill, cron_override: str | None) -> dict:
    """A skill as the bot runs it: its schedule (the override, else the catalog's default; None: on
    demand; the VM makes it an OpenClaw cron job whose prompt is the name and description), the plugins
    it uses and, for a pack, the agents it installs."""
    out = {"name": skill.name, "description": skill.description, "cron": cron_override or skill.cron,
           "plugins": list(skill.plugins)}
    if skill.bundled:
        out["bundledSkills"] = list(skill.bundled)
    return out


def bot_config(dep: Deployment) -> dict:
    """The bot's configuration from the deployment's settings, plugin and skill configs and key names.
    Only catalog entries, and a skill only with its plugins on (the API keeps it so; this holds for
    configs written before those checks too)."""
    plugins = {p.pluginId: p.config for p in repos.plugin_configs.all({"deploymentId": dep.id}, cap=100)
               if p.enabled and p.pluginId in catalog.PLUGINS}
    skills = {s.skillId: _skill(catalog.SKILLS[s.skillId], s.cronOverride)
              for s in repos.skill_configs.all({"deploymentId": dep.id}, cap=100)
              if s.enabled and s.skillId in catalog.SKILLS and set(catalog.SKILLS[s.skillId].plugins) <= plugins.keys()}
    keys = sorted(k.keyName for k in repos.api_keys.all({"deploymentId": dep.id}, cap=100)) + [BOT_TOKEN_KEY]
    return {
        "botName": dep.botName, "brandEmoji": dep.brandEmoji, "primaryModel": dep.primaryModel,
        "fallbackModels": dep.fallbackModels, "plugins": plugins, "skills": skills,
        "secrets": {k: secrets.secret_id(dep.id, k) for k in keys},
        "secretsProject": settings.get().secrets_project,
        # knowledge, media and the cost summary: the bot plugin calls them with
        # `Authorization: Bot <secrets/openclaw-bot-token>`
        "backend": backend_urls(settings.get().functions_url),
        # the dashboard: on the VM's own interface, for IAP tunnels only (firewall), token-authenticated
        "gateway": {"port": gateway.GATEWAY_PORT, "bind": "lan", "auth": {"mode": "token"},
                    "tokenSecret": secrets.secret_id(dep.id, gateway.GATEWAY_TOKEN_KEY)},
    }


def backend_urls(functions_url: str) -> dict:
    """Where the bot plugin (bot/, reading this section of /etc/openclaw/config.json) reaches the backend."""
    return {f"{name}Url": f"{functions_url}/{name}" for name in ("knowledge", "media", "costs")}


def metadata_items(dep: Deployment) -> list[dict]:
    return [
        {"key": "startup-script", "value": STARTUP_SCRIPT},
        {"key": "openclaw-config", "value": json.dumps(bot_config(dep), separators=(",", ":"), sort_keys=True)},
        {"key": "openclaw-events-topic", "value": settings.get().events_topic},
        {"key": "openclaw-deployment-id", "value": dep.id},
        {"key": "openclaw-secrets-project", "value": settings.get().secrets_project},
        {"key": "openclaw-report-key", "value": secrets.secret_id(dep.id, REPORT_KEY)},
        {"key": "openclaw-heartbeat-interval", "value": str(_heartbeat_s())},
        *plugin_items(),
    ]


def _heartbeat_s() -> int:
    from shared.health import settings as health_settings

    return health_settings.get().heartbeat_s


def plugin_items() -> list[dict]:
    """The bot plugin the VM installs (gs:// URL, readable by the bot's own account) and its checksum:
    the startup script refuses, and reports failed, any other bytes. None configured (local): none."""
    s = settings.get()
    if not (s.bot_plugin_url and s.bot_plugin_sha256):
        return []
    return [{"key": "openclaw-plugin-url", "value": s.bot_plugin_url},
            {"key": "openclaw-plugin-sha256", "value": s.bot_plugin_sha256}]


def instance(dep: Deployment, job: DeployJob, account: str):
    """The VM, running as the deployment's own service account `account` (shared/deploy/identity.py)."""
    from google.cloud import compute_v1

    s = settings.get()
    sa = [compute_v1.ServiceAccount(email=account, scopes=["https://www.googleapis.com/auth/cloud-platform"])]
    return compute_v1.Instance(
        name=dep.vmName,
        machine_type=f"zones/{dep.zone}/machineTypes/{s.machine_type}",
        disks=[compute_v1.AttachedDisk(
            boot=True, auto_delete=True, initialize_params=compute_v1.AttachedDiskInitializeParams(
                source_image=s.image, disk_size_gb=20, disk_type=f"zones/{dep.zone}/diskTypes/pd-balanced"))],
        # no access_configs: no external IP (outbound traffic goes through Cloud NAT)
        network_interfaces=[compute_v1.NetworkInterface(network="global/networks/default")],
        metadata=compute_v1.Metadata(items=[compute_v1.Items(**i) for i in metadata_items(dep)]),
        labels={"openclaw-deployment": dep.id.lower()[:63], "openclaw-job": job.id.lower()[:63]},
        tags=compute_v1.Tags(items=[gateway.NETWORK_TAG]),  # the IAP firewall rule's target
        service_accounts=sa,
        shielded_instance_config=compute_v1.ShieldedInstanceConfig(enable_secure_boot=True, enable_vtpm=True),
    )
