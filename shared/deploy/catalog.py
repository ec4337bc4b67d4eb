"""What a bot can be given: known plugins (each with its config schema), skills (with their
default schedule) and API key names (each with the shape its value must have)."""
from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from shared.api.inputs import Url
from shared.errors import ApiError
from shared.http import validation_error


class PluginSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


class Postiz(PluginSettings):
    apiUrl: Url = "https://api.postiz.com/public/v1"
    channels: list[Literal["x", "linkedin", "instagram", "facebook", "threads", "bluesky", "tiktok"]] = \
        Field(default_factory=list, max_length=7)
    requireApproval: bool = True


class ImageGen(PluginSettings):
    provider: Literal["openai", "openrouter", "replicate"] = "openai"
    model: str = Field("gpt-image-1", pattern=r"^[A-Za-z0-9._:/-]{1,100}$")
    size: Literal["1024x1024", "1024x1536", "1536x1024"] = "1024x1024"


class VideoGen(PluginSettings):
    provider: Literal["replicate", "openai"] = "replicate"
    model: str = Field("minimax/video-01", pattern=r"^[A-Za-z0-9._:/-]{1,100}$")
    maxDurationSeconds: int = Field(10, ge=1, le=60)


class Beehiiv(PluginSettings):
    publicationId: str = Field(..., pattern=r"^pub_[A-Za-z0-9-]{8,64}$")
    defaultStatus: Literal["draft", "confirmed"] = "draft"


class Knowledge(PluginSettings):
    maxResults: int = Field(5, ge=1, le=20)
    autoIngest: bool = False


@dataclass(frozen=True)
class Plugin:
    id: str
    description: str
    schema: type[PluginSettings]
    keys: tuple[str, ...] = ()  # API keys it needs


@dataclass(frozen=True)
class Skill:
    id: str
    description: str
    cron: str  # default schedule (UTC)
    plugins: tuple[str, ...] = ()


PLUGINS = {p.id: p for p in (
    Plugin("postiz", "Schedules social posts through Postiz", Postiz, ("postiz-api-key",)),
    Plugin("image-gen", "Generates images", ImageGen),
    Plugin("video-gen", "Generates short videos", VideoGen),
    Plugin("beehiiv", "Publishes newsletters to Beehiiv", Beehiiv, ("beehiiv-api-key",)),
    Plugin("knowledge", "Answers from the user's knowledge base", Knowledge),
)}

SKILLS = {s.id: s for s in (
    Skill("daily-briefing", "A morning briefing of news and calendar", "0 7 * * *"),
    Skill("daily-posts", "Drafts and schedules the day's social posts", "0 9 * * *", ("postiz",)),
    Skill("content-engine", "Turns ideas into posts, images and videos", "0 10 * * 1-5", ("image-gen",)),
    Skill("newsletter-writer", "Writes the weekly newsletter", "0 8 * * 1", ("beehiiv",)),
    Skill("engagement-monitor", "Watches replies and mentions", "*/30 * * * *", ("postiz",)),
    Skill("job-hunter", "Finds and summarises matching job posts", "0 6 * * *"),
)}

_GENERIC = r"^[\x21-\x7e]{16,512}$"  # printable, no spaces
KEY_NAMES: dict[str, str] = {
    "anthropic-api-key": r"^sk-ant-[A-Za-z0-9_-]{20,200}$",
    "openai-api-key": r"^sk-[A-Za-z0-9_-]{20,200}$",
    "openrouter-api-key": r"^sk-or-[A-Za-z0-9_-]{20,200}$",
    "telegram-bot-token": r"^\d{6,12}:[A-Za-z0-9_-]{30,50}$",
    "discord-bot-token": r"^[A-Za-z0-9._-]{50,100}$",
    "replicate-api-token": r"^r8_[A-Za-z0-9]{20,60}$",
    "postiz-api-key": _GENERIC,
    "beehiiv-api-key": _GENERIC,
    "elevenlabs-api-key": _GENERIC,
}


def plugin(plugin_id: str) -> Plugin:
    if plugin_id not in PLUGINS:
        raise ApiError(404, "unknown_plugin", f"no plugin {plugin_id!r}; known: {', '.join(PLUGINS)}")
    return PLUGINS[plugin_id]


def skill(skill_id: str) -> Skill:
    if skill_id not in SKILLS:
        raise ApiError(404, "unknown_skill", f"no skill {skill_id!r}; known: {', '.join(SKILLS)}")
    return SKILLS[skill_id]


def validate_plugin_config(plugin_id: str, config: dict) -> dict:
    try:
        return plugin(plugin_id).schema.model_validate(config).model_dump(mode="json")
    except ValidationError as exc:
        raise validation_error(exc, "config") from None


def validate_cron(expr: str) -> str:
    """Five fields, as the bot's scheduler reads them; cronsim checks ranges and syntax."""
    from cronsim import CronSim, CronSimError

    expr = " ".join(expr.split())
    if len(expr.split(" ")) != 5:
        raise ApiError(422, "invalid_cron", "cronOverride must have five fields: minute hour day month weekday")
    try:
        next(CronSim(expr, datetime.now(timezone.utc)))
    except (CronSimError, StopIteration) as exc:
        raise ApiError(422, "invalid_cron", f"cronOverride {expr!r} is not a valid cron expression: {exc}") from None
    return expr


def validate_key(key_name: str, value: str) -> str:
    if key_name not in KEY_NAMES:
        raise ApiError(404, "unknown_key_name", f"no key name {key_name!r}; known: {', '.join(KEY_NAMES)}")
    if not re.fullmatch(KEY_NAMES[key_name], value):
        raise ApiError(422, "invalid_key_value", f"that does not look like a valid {key_name}")
    return value


def describe() -> dict:
    return {
        "plugins": [{"id": p.id, "description": p.description, "keys": list(p.keys),
                     "configSchema": p.schema.model_json_schema()} for p in PLUGINS.values()],
        "skills": [{"id": s.id, "description": s.description, "defaultCron": s.cron, "plugins": list(s.plugins)}
                   for s in SKILLS.values()],
        "keyNames": list(KEY_NAMES),
    }
