"""Split text into chunks of at most `size` characters, each overlapping the
previous one by about `overlap` characters, cut at the strongest nearby break
(paragraph, then line, sentence, word) so chunks read as whole passages."""
from __future__ import annotations

import re

_SPACES = re.compile(r"[ \t\f\v]+")
_BLANK_LINES = re.compile(r"\n\s*\n+")
_BREAKS = ("\n\n", "\n", ". ", "? ", "! ", "; ", ", ", " ")


def normalise(text: str) -> str:
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    text = _SPACES.sub(" ", text)
    return _BLANK_LINES.sub("\n\n", text).strip()


def _cut(text: str, start: int, end: int) -> int:
    """Best cut position in (start + half window, end]: just after the strongest break."""
    floor = start + (end - start) // 2
    for brk in _BREAKS:
        at = text.rfind(brk, floor, end)
        if at != -1:
            return at + len(brk)
    return end


def chunk(text: str, size: int, overlap: int) -> list[str]:
    text = normalise(text)
    if len(text) <= size:
        return [text] if text else []
    chunks: list[str] = []
    start = 0
    while True:
        end = min(start + size, len(text))
        if end < len(text):
            end = _cut(text, start, end)
        piece = text[start:end].strip()
        if piece:
            chunks.append(piece)
        if end >= len(text):
            return chunks
        nxt = max(end - overlap, start + 1)
        space = text.find(" ", nxt, end)  # start the overlap on a word
        start = space + 1 if space != -1 and overlap else nxt
