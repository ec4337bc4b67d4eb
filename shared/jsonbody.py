"""JSON from outside, parsed strictly: a 400 for what Python's json module would accept but the
code cannot mean (or would crash on), never a 500.

Refused: bytes that are not UTF-8 (or carry a BOM), duplicate keys (which value would count?),
NaN/Infinity and numbers too large for a float (1e999), integers longer than 4300 digits,
nesting deeper than MAX_DEPTH (Firestore stores maps 20 deep; a body nested 10,000 levels
would make the parser raise RecursionError), and lone surrogates (\\ud800: not text, and
Firestore refuses it). Text control characters are the models' business (shared/api/inputs.py).
"""
from __future__ import annotations

import json
import math
import re
from typing import Any

MAX_DEPTH = 16
_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.S)
_SURROGATE = re.compile(r"[\ud800-\udfff]")


class BadJson(ValueError):
    pass


def _pairs(pairs: list[tuple[str, Any]]) -> dict:
    out: dict = {}
    for key, value in pairs:
        if key in out:
            raise BadJson(f"duplicate key {key[:50]!r}")
        out[key] = value
    return out


def _float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise BadJson(f"number {text[:30]} is out of range")
    return value


def _constant(name: str):
    raise BadJson(f"{name} is not a JSON number")


def depth(raw: bytes) -> int:
    """Deepest nesting of arrays and objects, counted without parsing (strings left out)."""
    brackets = _STRING.sub(b"", raw).translate(None, delete=bytes(c for c in range(256) if c not in b"[]{}"))
    deepest = level = 0
    for c in brackets:
        level += 1 if c in b"[{" else -1
        if level > deepest:
            deepest = level
    return deepest


def _check_text(value: Any) -> None:
    stack = [value]
    while stack:
        v = stack.pop()
        if isinstance(v, str):
            if _SURROGATE.search(v):
                raise BadJson("text with a lone surrogate (\\ud800-\\udfff) is not valid Unicode")
        elif isinstance(v, dict):
            stack.extend(v.keys())
            stack.extend(v.values())
        elif isinstance(v, list):
            stack.extend(v)


def loads(raw: bytes, max_depth: int = MAX_DEPTH) -> Any:
    """Parse a request body; BadJson (a ValueError) says what is wrong."""
    if raw.startswith(b"\xef\xbb\xbf"):
        raise BadJson("body starts with a byte order mark")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise BadJson("body is not UTF-8") from None
    if depth(raw) > max_depth:
        raise BadJson(f"JSON nested deeper than {max_depth} levels")
    try:
        value = json.loads(text, object_pairs_hook=_pairs, parse_float=_float, parse_constant=_constant)
    except BadJson:
        raise
    except RecursionError:
        raise BadJson(f"JSON nested deeper than {max_depth} levels") from None
    except ValueError as exc:  # JSONDecodeError, or an integer of more than 4300 digits
        raise BadJson(f"not valid JSON: {str(exc)[:120]}") from None
    _check_text(value)
    return value
