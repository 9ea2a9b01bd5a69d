"""What a transaction may hold: free text capped, lists cut with a count.

A state document, an outbox row or a hand-off is written in one transaction; a write too large
for Firestore would fail forever and strand the claim (L22: cap what goes into a transaction).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

MAX_LIST = 100  # longest list stored in a state document or log row; the rest is counted
MAX_ITEM = 200  # longest item of such a list
MAX_TEXT = 2000  # longest free text (error messages can be whole tracebacks)


def capped(text: str | None) -> str | None:
    """Free text as stored in a document or queue row."""
    if text is None or len(text) <= MAX_TEXT:
        return text
    return text[: MAX_TEXT - 3] + "..."


def bounded(key: str, items: Sequence[str]) -> dict[str, Any]:
    """``{key: the first MAX_LIST items (each capped)}``, plus ``{key}_more`` when some were cut."""
    kept = [item if len(item) <= MAX_ITEM else item[: MAX_ITEM - 3] + "..." for item in list(items)[:MAX_LIST]]
    out: dict[str, Any] = {key: kept}
    if len(items) > MAX_LIST:
        out[f"{key}_more"] = len(items) - MAX_LIST
    return out
