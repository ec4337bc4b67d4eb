"""The job `log` field: readable timestamped lines, bounded in size (oldest lines go first)."""
from __future__ import annotations

from datetime import datetime, timezone

from shared import clock
from shared.deploy import settings
from shared.deploy.redact import redact

TRIMMED = "[... earlier lines trimmed ...]\n"


def line(text: str, at_ms: int | None = None) -> str:
    at = datetime.fromtimestamp((at_ms or clock.now_ms()) / 1000, timezone.utc)
    return f"{at.strftime('%Y-%m-%d %H:%M:%S')}Z {redact(text.strip())}\n"


def append(log: str, *texts: str) -> str:
    out = log + "".join(line(t) for t in texts)
    limit = settings.get().log_max_chars
    if len(out) <= limit:
        return out
    tail = out[len(out) - (limit - len(TRIMMED)):]
    cut = tail.find("\n")
    return TRIMMED + (tail[cut + 1:] if 0 <= cut < len(tail) - 1 else tail)
