"""The `config` of each plugin (shared/deploy/catalog.py): strict (a wrong type is refused, never
coerced), unknown fields refused, every field with a default except what only the user can know.

What the old system kept as "secrets" but is not secret (a URL, a publication id, a folder id, a
data centre, a workspace slug) is a config field here; API keys and OAuth credentials stay
secrets (apiKeys: Secret Manager). `needed_keys()` names the keys a config needs besides the
plugin's fixed ones (the provider chosen, a Drive folder set)."""
from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.api.inputs import Url

Model = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9._:/-]{1,100}$")]
DriveFolderId = Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9_-]{10,100}$")]
Word = Annotated[str, StringConstraints(min_length=1, max_length=100)]
DRIVE_KEYS = ("drive-oauth-client-id", "drive-oauth-client-secret", "drive-oauth-refresh-token")
GMAIL_KEYS = ("drive-oauth-client-id", "drive-oauth-client-secret", "gmail-oauth-refresh-token")
PROVIDER_KEYS = {"google": "google-ai-api-key", "openai": "openai-api-key", "openrouter": "openrouter-api-key",
                 "replicate": "replicate-api-token"}


class PluginSettings(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, strict=True)

    def needed_keys(self) -> tuple[str, ...]:
        return ()


class Postiz(PluginSettings):
    apiUrl: Url = Field("https://api.postiz.com/public/v1", description="your Postiz instance's public API")
    channels: list[Literal["x", "linkedin", "instagram", "facebook", "threads", "bluesky", "tiktok"]] = \
        Field(default_factory=list, max_length=7)
    requireApproval: bool = True


class Knowledge(PluginSettings):
    maxResults: int = Field(5, ge=1, le=20)
    autoIngest: bool = False


class Beehiiv(PluginSettings):
    publicationId: str = Field(..., pattern=r"^pub_[A-Za-z0-9-]{8,64}$")
    defaultStatus: Literal["draft", "confirmed"] = "draft"


class _Generator(PluginSettings):
    model: Model | None = Field(None, description="the provider's model; empty: its default")
    driveFolderId: DriveFolderId | None = Field(None, description="also back results up to this Google Drive folder")

    def needed_keys(self) -> tuple[str, ...]:
        provider = self.provider  # type: ignore[attr-defined]  # each generator declares its providers
        return (PROVIDER_KEYS[provider],) + (DRIVE_KEYS if self.driveFolderId else ())


class ImageGen(_Generator):
    provider: Literal["google", "openai", "openrouter", "replicate"] = "google"
    size: Literal["1024x1024", "1024x1536", "1536x1024"] = "1024x1024"


class VideoGen(_Generator):
    provider: Literal["google", "openai", "replicate"] = "google"
    maxDurationSeconds: int = Field(8, ge=1, le=60)


class CarouselGen(PluginSettings):
    slides: int = Field(7, ge=2, le=20)
    aspectRatio: Literal["1:1", "4:5", "9:16"] = "4:5"
    driveFolderId: DriveFolderId | None = None

    def needed_keys(self) -> tuple[str, ...]:
        return DRIVE_KEYS if self.driveFolderId else ()


class TwitterResearch(PluginSettings):
    maxResults: int = Field(25, ge=10, le=100)
    language: Annotated[str, StringConstraints(pattern=r"^[a-z]{2}$")] | None = None


class GitHub(PluginSettings):
    defaultOwner: Annotated[str, StringConstraints(pattern=r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")] | None = None
    allowWrites: bool = Field(False, description="let the bot open issues and pull requests")


class Approval(PluginSettings):
    requireApproval: bool = Field(True, description="ask in chat before sending anything")


class WebTools(PluginSettings):
    maxResults: int = Field(5, ge=1, le=20)

    def needed_keys(self) -> tuple[str, ...]:
        return ()  # without brave-search-api-key it reads pages but does not search


class NoSettings(PluginSettings):
    pass


class Zoho(PluginSettings):
    dataCenter: Literal["com", "eu", "in", "com.au", "jp", "ca", "com.cn", "sa"] = "com"


class AgentMail(PluginSettings):
    inboxUsername: Annotated[str, StringConstraints(pattern=r"^[a-z0-9][a-z0-9._-]{0,63}$")] | None = None


class YouTubeTranscriber(PluginSettings):
    languages: list[Annotated[str, StringConstraints(pattern=r"^[a-z]{2}(-[A-Z]{2})?$")]] = \
        Field(default_factory=lambda: ["en"], min_length=1, max_length=5)


class JobSearch(PluginSettings):
    keywords: list[Word] = Field(default_factory=list, max_length=20)
    locations: list[Word] = Field(default_factory=list, max_length=10)
    remoteOnly: bool = False


class ClarifyAi(PluginSettings):
    workspaceSlug: str = Field(..., pattern=r"^[a-z0-9][a-z0-9-]{0,62}$")
