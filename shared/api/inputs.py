"""Building blocks of request models: strict (unknown fields rejected) and bounded.

`Strict` also refuses what no text field can mean and no number should be: control characters
other than tab, newline and carriage return (NUL and friends, DEL, the C1 range), lone surrogates,
and non-finite numbers; -0.0 is stored as 0.0. This holds for every string and float a request
model holds, nested ones included (query strings too: their models derive from it as well).
"""
from __future__ import annotations

import math
import re
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    SecretStr,
    StrictBool,
    StringConstraints,
    field_validator,
)

from shared.db import PAGE_MAX

SLUG_PATTERN = r"^[a-z0-9]+(?:-[a-z0-9]+)*$"
CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff]")


def clean(value: Any) -> Any:
    """Refuse control characters and non-finite floats anywhere in `value`; -0.0 becomes 0.0."""
    if isinstance(value, str):
        found = CONTROL.search(value)
        if found:
            raise ValueError(f"contains the control character U+{ord(found.group()):04X}")
        return value
    if isinstance(value, SecretStr):  # checked, never repeated in the error
        clean(value.get_secret_value())
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError("must be a finite number")
        return 0.0 if value == 0 else value
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, tuple):
        return tuple(clean(v) for v in value)
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    return value


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True, defer_build=True, allow_inf_nan=False)

    def changes(self) -> dict[str, Any]:
        """A PATCH body's fields to write: a top-level null means "unchanged"; a null inside a nested
        value (e.g. a plan's `limits`) is a value and is kept."""
        return {k: v for k, v in self.model_dump().items() if v is not None}

    @field_validator("*", mode="after")
    @classmethod
    def _no_control_characters(cls, value: Any) -> Any:
        return clean(value)


if TYPE_CHECKING:
    from typing import Optional as Omittable
else:
    class Omittable:
        """A body field that may be left out but is never null: `name: Omittable[T] = None`. pydantic
        validates and documents T alone, so an explicit null is refused (the document allows none); the
        value is None only when the field was left out, which is what type checkers see (T | None)."""

        def __class_getitem__(cls, item):
            return item


def _flag(value: Any) -> Any:
    if isinstance(value, str):  # a query string's boolean is spelt true or false, as the document says
        if value not in ("true", "false"):
            raise ValueError("must be true or false")
        return value == "true"
    return value


# A boolean in a query string: `true` or `false` only (not 1, 0, yes, off, ...). Bodies are validated strictly.
Flag = Annotated[StrictBool, BeforeValidator(_flag)]


class PageQuery(Strict):
    limit: int | None = Field(None, ge=1, le=PAGE_MAX)
    cursor: str | None = Field(None, max_length=2000)


Slug = Annotated[str, StringConstraints(pattern=SLUG_PATTERN, min_length=1, max_length=100)]
ShortText = Annotated[str, StringConstraints(min_length=1, max_length=200)]
Url = Annotated[str, StringConstraints(pattern=r"^https?://[^\s]+$", max_length=2048)]
# A URL we fetch or call. The document says what shared/outbound.py accepts in production: https and a host
# name (no IP address); outbound.py checks it, and where the name resolves (the local stack also lets http
# reach its loopback stand-ins, which the document does not offer).
_LABEL = r"[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?"
OUTBOUND_URL = rf"^https://({_LABEL}\.)+[A-Za-z]{{2,63}}(:[1-9][0-9]{{0,3}})?(/[^\s]*)?$"
OutboundUrl = Annotated[Url, Field(json_schema_extra={"pattern": OUTBOUND_URL})]
# A link is a site path ("/pricing", "#top") or an absolute http(s) URL.
Href = Annotated[str, StringConstraints(pattern=r"^(/[^\s]*|#[^\s]*|https?://[^\s]+|mailto:[^\s]+)$",
                                        max_length=2048)]
