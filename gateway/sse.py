"""Server-sent events (`stream: true`) of an answer that is already verified (pure).

The gateway streams only once the chain has the final, scored answer, so a
stream never shows text that TIQE later rejects; what it streams is that text
cut into pieces (a word and the whitespace after it), whose concatenation is
exactly the answer. Framing is OpenAI's: one `data: <json>` line and a blank
line per event, then `data: [DONE]`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from typing import Any

DONE = b"data: [DONE]\n\n"
_PIECE = re.compile(r"\S+\s*|\s+")


def event(data: Mapping[str, Any]) -> bytes:
    """One SSE event holding `data` as compact JSON (never a raw newline inside: JSON escapes them)."""
    return b"data: " + json.dumps(data, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n"


def pieces(text: str) -> list[str]:
    """`text` as the deltas of a stream: "".join(pieces(t)) == t, no piece empty."""
    return _PIECE.findall(text)
