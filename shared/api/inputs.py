"""Building blocks of request models: strict (unknown fields rejected) and bounded."""
from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from shared.db import PAGE_MAX

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True)


class PageQuery(Strict):
    limit: int | None = Field(None, ge=1, le=PAGE_MAX)
    cursor: str | None = Field(None, max_length=2000)


Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
# A link is a site path ("/pricing", "#top") or an absolute http(s) URL.
Href = Annotated[str, StringConstraints(pattern=r"^(/[^\s]*|#[^\s]*|https?://[^\s]+|mailto:[^\s]+)$",
                                        max_length=2048)]
