"""What a bot can be given: the plugins and skills of the system this replaces
(/work/shared/SEED_CATALOG.json: each plugin with its config schema, shared/deploy/plugin_schemas.py,
and the API keys it needs; each skill with its default schedule and the plugins it needs; packs
install several agents), and the API key names (each with the shape its value must have).
What must be in place before one can be enabled is checked by shared/deploy/requirements.py."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone

from pydantic import ValidationError

from shared.deploy import plugin_schemas as ps
from shared.deploy.plugin_schemas import PluginSettings
from shared.errors import Invalid, NotFound, validation_error


@dataclass(frozen=True)
class Plugin:
    id: str
    name: str
    description: str
    schema: type[PluginSettings]
    keys: tuple[str, ...] = ()  # API keys it always needs (its config may need more: needed_keys)
    optional_keys: tuple[str, ...] = ()  # used when set


@dataclass(frozen=True)
class Skill:
    id: str
    name: str
    description: str
    cron: str | None  # default schedule (UTC); None: runs when asked in chat (a cronOverride schedules it)
    plugins: tuple[str, ...] = ()  # must be enabled first
    bundled: tuple[str, ...] = ()  # a pack: the agents it installs


_DRIVE = ps.DRIVE_KEYS
PLUGINS = {p.id: p for p in (
    Plugin("postiz", "Postiz Social Media", "Drafts, schedules and publishes social posts through Postiz",
           ps.Postiz, ("postiz-api-key",)),
    Plugin("knowledge", "Knowledge Base", "Searches and adds to your own knowledge base (this service's "
           "embeddings store; replaces the old system's convex-knowledge)", ps.Knowledge),
    Plugin("beehiiv", "Beehiiv Newsletter", "Writes newsletter posts into your Beehiiv publication",
           ps.Beehiiv, ("beehiiv-api-key",)),
    Plugin("image-gen", "Image Generation", "Creates images from a prompt and saves them to your media library",
           ps.ImageGen, (), _DRIVE),
    Plugin("twitter-research", "Twitter/X Research", "Searches recent posts on X to research topics and accounts",
           ps.TwitterResearch, ("twitter-bearer-token",)),
    Plugin("github", "GitHub", "Reads repositories, issues and pull requests (and opens them if you allow it)",
           ps.GitHub, ("github-token",)),
    Plugin("dynoclux", "DynoClux Privacy Enforcement", "Finds companies holding your data in your mailbox and "
           "sends them deletion and opt-out requests", ps.Approval, ps.GMAIL_KEYS),
    Plugin("dynosist", "DynoSist Email Assistant", "Triages your Gmail inbox, drafts replies and follows up",
           ps.Approval, ps.GMAIL_KEYS),
    Plugin("web-tools", "Web Tools", "Reads web pages and, with a Brave Search key, searches the web",
           ps.WebTools, (), ("brave-search-api-key",)),
    Plugin("hubspot", "HubSpot CRM", "Looks up and updates contacts, companies and deals in HubSpot",
           ps.NoSettings, ("hubspot-api-key",)),
    Plugin("zoho", "Zoho CRM", "Looks up and updates leads, contacts and deals in Zoho CRM", ps.Zoho,
           ("zoho-client-id", "zoho-client-secret", "zoho-refresh-token")),
    Plugin("video-gen", "Video Generation", "Creates short videos from a prompt and saves them to your media "
           "library", ps.VideoGen, (), _DRIVE),
    Plugin("agentmail", "AgentMail", "Gives the bot an e-mail inbox of its own to send and receive mail",
           ps.AgentMail, ("agentmail-api-key",)),
    Plugin("carousel-gen", "Carousel Generation", "Turns a post into a slide carousel for Instagram or LinkedIn",
           ps.CarouselGen, (), _DRIVE),
    Plugin("youtube-transcriber", "YouTube Transcriber", "Fetches and summarises the transcript of a YouTube video",
           ps.YouTubeTranscriber),
    Plugin("job-search", "Job Search Pipeline", "Collects job posts matching your keywords and places, and tracks "
           "applications", ps.JobSearch),
    Plugin("clarify-ai", "Clarify.ai CRM", "Reads and updates people, companies and deals in Clarify",
           ps.ClarifyAi, ("clarify-api-key",)),
)}

_SALES = ("outbound-strategist", "discovery-coach", "deal-strategist", "engineer", "proposal-strategist",
          "pipeline-analyst", "account-strategist", "coach")
_MARKETING = ("content-creator", "linkedin-content-creator", "social-media-strategist", "growth-hacker",
              "seo-specialist", "podcast-strategist", "book-co-author", "carousel-growth-engine")
_ENGINEERING = ("frontend-developer", "backend-architect", "mobile-app-builder", "ai-engineer", "devops-automator",
                "rapid-prototyper", "senior-developer", "security-engineer", "autonomous-optimization-architect",
                "embedded-firmware-engineer", "incident-response-commander", "solidity-smart-contract-engineer",
                "technical-writer", "threat-detection-engineer", "wechat-mini-program-developer", "code-reviewer",
                "database-optimizer", "git-workflow-master", "software-architect", "sre",
                "ai-data-remediation-engineer", "data-engineer", "feishu-integration-developer")
SKILLS = {s.id: s for s in (
    Skill("daily-briefing", "Daily Briefing", "A morning summary of news, weather and your day", "0 13 * * *"),
    Skill("content-engine", "Content Engine", "Plans the week's content from your knowledge base", "0 1 * * 1",
          ("knowledge",)),
    Skill("daily-posts", "Daily Posts", "Drafts the day's social posts in your voice and schedules them",
          "0 13 * * *", ("postiz", "knowledge")),
    Skill("newsletter-writer", "Newsletter Writer", "Writes the weekly newsletter draft in Beehiiv", "0 14 * * 2",
          ("beehiiv", "knowledge")),
    Skill("engagement-monitor", "Engagement Monitor", "Weekly report of how your posts did and what to reply to",
          "0 18 * * 5", ("postiz", "knowledge")),
    Skill("job-hunter", "Job Hunter", "Finds job posts that fit you and drafts applications", None),
    Skill("dynoclux", "DynoClux Privacy Enforcement", "Runs a privacy sweep of your inbox when you ask", None,
          ("dynoclux",)),
    Skill("dynosist", "DynoSist Email Assistant", "Works through your inbox with you in chat", None, ("dynosist",)),
    Skill("growth-hacker", "Growth Hacker", "Suggests and runs growth experiments on your social channels", None,
          ("postiz", "knowledge")),
    Skill("product-update", "Product Update", "Writes a product update from your notes and changelog", None,
          ("knowledge",)),
    Skill("agentmail", "AgentMail", "Sends and answers e-mail from the bot's own inbox", None, ("agentmail",)),
    Skill("agent-browser", "Agent Browser", "Browses websites step by step to get a task done", None),
    Skill("comic-brief", "Comic Brief", "Turns a topic into a short comic-strip script", None),
    Skill("crm-pipeline", "CRM Pipeline", "Reviews your sales pipeline and suggests next steps", None),
    Skill("meeting-debrief", "Meeting Debrief", "Turns meeting notes into decisions, tasks and follow-ups", None),
    Skill("workflow-audit", "Workflow Audit", "Maps a recurring workflow and finds what to automate", None),
    Skill("metric-health-echo", "MetricHealth Echo", "Checks your social metrics every 4 hours and flags changes",
          "0 */4 * * *", ("postiz",)),
    Skill("agency-sales-pack", "Sales Division (8 agents)", "Eight sales specialists, from prospecting to "
          "coaching", None, bundled=tuple(f"sales-{a}" for a in _SALES)),
    Skill("agency-marketing-pack", "Marketing Division (8 agents)", "Eight marketing specialists, from content "
          "to SEO", None, bundled=tuple(f"marketing-{a}" for a in _MARKETING)),
    Skill("agency-engineering-pack", "Engineering Division (23 agents)", "Twenty-three engineering specialists, "
          "from frontend to SRE", None, bundled=tuple(f"engineering-{a}" for a in _ENGINEERING)),
    Skill("job-scout", "Job Scout", "Weekly scan for new job posts matching your search", "0 14 * * 1",
          ("job-search",)),
    Skill("company-intel", "Company Intel", "Researches a company before you apply or meet", None, ("job-search",)),
    Skill("network-scan", "Network Scan", "Finds people in your network at the companies you target", None,
          ("job-search",)),
)}

GENERIC_KEY = _GENERIC = r"^[\x21-\x7e]{16,512}$"  # printable, no spaces
KEY_NAMES: dict[str, str] = {
    "anthropic-api-key": r"^sk-ant-[A-Za-z0-9_-]{20,200}$",
    "openai-api-key": r"^sk-[A-Za-z0-9_-]{20,200}$",
    "openrouter-api-key": r"^sk-or-[A-Za-z0-9_-]{20,200}$",
    "telegram-bot-token": r"^\d{6,12}:[A-Za-z0-9_-]{30,50}$",
    "discord-bot-token": r"^[A-Za-z0-9._-]{50,100}$",
    "replicate-api-token": r"^r8_[A-Za-z0-9]{20,60}$",
    "google-ai-api-key": r"^AIza[0-9A-Za-z_-]{35}$",
    "brave-search-api-key": _GENERIC,
    "postiz-api-key": _GENERIC,
    "beehiiv-api-key": _GENERIC,
    "elevenlabs-api-key": _GENERIC,
    "twitter-bearer-token": _GENERIC,
    "github-token": r"^(ghp_[A-Za-z0-9]{36}|gh[ousr]_[A-Za-z0-9]{36,251}|github_pat_[A-Za-z0-9_]{22,251})$",
    "drive-oauth-client-id": r"^[0-9]{5,30}-[a-z0-9]{8,64}\.apps\.googleusercontent\.com$",
    "drive-oauth-client-secret": _GENERIC,
    "drive-oauth-refresh-token": _GENERIC,
    "gmail-oauth-refresh-token": _GENERIC,
    "hubspot-api-key": _GENERIC,
    "zoho-client-id": _GENERIC,
    "zoho-client-secret": _GENERIC,
    "zoho-refresh-token": _GENERIC,
    "agentmail-api-key": _GENERIC,
    "clarify-api-key": _GENERIC,
}


def plugin(plugin_id: str) -> Plugin:
    if plugin_id not in PLUGINS:
        raise NotFound("unknown_plugin", f"no plugin {plugin_id!r}; known: {', '.join(PLUGINS)}")
    return PLUGINS[plugin_id]


def skill(skill_id: str) -> Skill:
    if skill_id not in SKILLS:
        raise NotFound("unknown_skill", f"no skill {skill_id!r}; known: {', '.join(SKILLS)}")
    return SKILLS[skill_id]


def validate_plugin_config(plugin_id: str, config: dict) -> dict:
    try:
        return plugin(plugin_id).schema.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        raise validation_error(exc, "config") from None


# What both cronsim (here) and the bot's scheduler (OpenClaw's cron: croner 10) read the same way: per field,
# a list of *, */step, a value, a range or a range/step; values are numbers or names (MON, JAN). Not taken:
# a step after one value (5/10), L, W, # and ?, a step longer than the field (*/13 in months), which croner
# refuses (the VM could not schedule the skill), and * in a day of month or weekday when the other is set too
# (cronsim then needs both to match, croner either).
_VALUE = r"(\d{1,2}|[A-Za-z]{3})"
_CRON_ITEM = re.compile(rf"(\*|(?P<lo>{_VALUE})-(?P<hi>{_VALUE}))(/(?P<step>\d{{1,2}}))?|{_VALUE}")
_FIELD_SIZE = (60, 24, 31, 12, 7)  # minute, hour, day, month, weekday: the longest step each takes


def _portable(field: str, size: int) -> bool:
    for item in field.split(","):
        m = _CRON_ITEM.fullmatch(item)
        if m is None or (m["step"] is not None and not 0 < int(m["step"]) <= size):
            return False
        if m["lo"] is not None and m["lo"].lower() == m["hi"].lower():
            return False  # 16-16/3: cronsim reads 16/3 (16, 19, 22), croner 16; SUN-SUN: croner all week
    return True


def validate_cron(expr: str) -> str:
    """Five fields, as the bot's scheduler reads them: the common form above, then cronsim checks
    ranges and values."""
    from cronsim import CronSim, CronSimError

    expr = " ".join(expr.split())
    fields = expr.split(" ")
    if len(fields) != 5:
        raise Invalid("invalid_cron", "cronOverride must have five fields: minute hour day month weekday")
    if not all(_portable(f, size) for f, size in zip(fields, _FIELD_SIZE)):
        raise Invalid("invalid_cron", f"cronOverride {expr!r}: each field is a list of *, */step, a value, "
                                      "a range or range/step (values: numbers, or names such as MON or JAN; "
                                      "a step no longer than the field)")
    if "*" in fields[2] + fields[4] and "*" not in (fields[2], fields[4]):  # cron implementations differ here
        raise Invalid("invalid_cron", f"cronOverride {expr!r}: with both a day of month and a weekday, neither "
                                      "may use * (either runs on a day matching one or the other)")
    try:
        next(CronSim(expr, datetime.now(timezone.utc)))
    except (CronSimError, StopIteration) as exc:
        raise Invalid("invalid_cron", f"cronOverride {expr!r} is not a valid cron expression: {exc}") from None
    return expr


def validate_key(key_name: str, value: str) -> str:
    if key_name not in KEY_NAMES:
        raise NotFound("unknown_key_name", f"no key name {key_name!r}; known: {', '.join(KEY_NAMES)}")
    if not re.fullmatch(KEY_NAMES[key_name], value):
        raise Invalid("invalid_key_value", f"that does not look like a valid {key_name}")
    return value


def provider_keys(plugin_id: str) -> dict[str, str]:
    """The key each `provider` choice of a plugin's config needs (image-gen, video-gen)."""
    field = PLUGINS[plugin_id].schema.model_fields.get("provider")
    choices = getattr(field.annotation, "__args__", ()) if field else ()
    return {c: ps.PROVIDER_KEYS[c] for c in choices}


def describe() -> dict:
    return {
        "plugins": [{"id": p.id, "name": p.name, "description": p.description, "keys": list(p.keys),
                     "optionalKeys": list(p.optional_keys), "providerKeys": provider_keys(p.id),
                     "configSchema": p.schema.model_json_schema()} for p in PLUGINS.values()],
        "skills": [{"id": s.id, "name": s.name, "description": s.description, "defaultCron": s.cron,
                    "plugins": list(s.plugins), "bundledSkills": list(s.bundled)} for s in SKILLS.values()],
        "keyNames": list(KEY_NAMES),
    }
