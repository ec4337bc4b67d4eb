"""Masks values that look like secrets (API keys, tokens) in text that leaves the system:
job logs fed by VM messages, serial console output."""
from __future__ import annotations

import re

_PATTERNS = [
    re.compile(r"sk-(?:ant-|or-|proj-)?[A-Za-z0-9_-]{16,}"),  # Anthropic, OpenRouter, OpenAI
    re.compile(r"\b\d{6,12}:[A-Za-z0-9_-]{30,}"),  # Telegram bot token
    re.compile(r"\bAIza[0-9A-Za-z_-]{30,}"),  # Google API key
    re.compile(r"\bgh[pousr]_[A-Za-z0-9]{30,}"),  # GitHub
    re.compile(r"\bxox[abprs]-[A-Za-z0-9-]{10,}"),  # Slack
    re.compile(r"\br8_[A-Za-z0-9]{20,}"),  # Replicate
    re.compile(r"\bey[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}"),  # JWTs
]
# key=value / key: value where the key names a secret: mask the value whatever it looks like
_ASSIGNED = re.compile(
    r"(?i)((?:api[_-]?key|token|secret|password|passwd|authorization|bearer)[\"']?\s*[:=]\s*[\"']?(?:bearer\s+)?)"
    r"([^\s\"',;]{6,})")


def mask(value: str) -> str:
    """first4****last4 (short values are masked whole)."""
    return value[:4] + "****" + value[-4:] if len(value) >= 12 else "****"


def redact(text: str) -> str:
    text = _ASSIGNED.sub(lambda m: m.group(1) + mask(m.group(2)), text)
    for pattern in _PATTERNS:
        text = pattern.sub(lambda m: mask(m.group(0)) if "****" not in m.group(0) else m.group(0), text)
    return text
