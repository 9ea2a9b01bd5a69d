"""``quarantine_flood``: a function whose bad messages went past the quarantine's rate cap recently.

The quarantine stores at most ``max_per_window`` documents per function and window and counts
every bad message, stored or not, in a counter document of that function and window
(``shared.orchestration.quarantine``). A window whose count passed its cap had messages acked and
counted but not stored: a poison flood (a publisher gone wrong, a replay of garbage), and the
evidence of all but its first messages is only a number. This check reads the counters of the
windows that ended within ``lookback`` (or are under way) with one range read over their document
ids, and gives one finding per function that overflowed: ERROR while its current window is
overflowing, WARNING for a flood in a window that has ended. The message gives the counted
numbers; the details (the fingerprint the alerts deduplicate on) name the windows, so an alert
repeats when another window overflows, not at every message counted.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.monitor.findings import Finding
from shared.orchestration.quarantine import QUARANTINE_WINDOW, rate_counters, rate_window, window_id
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    from google.cloud import firestore

FLOOD_LOOKBACK = timedelta(hours=2)
"""How long after its window ends an overflow is still reported (the monitor runs every 10 minutes)."""


@dataclass(frozen=True)
class _Window:
    start: datetime
    end: datetime
    received: int
    cap: int

    @property
    def overflow(self) -> int:
        return max(0, self.received - self.cap)


def quarantine_flood_findings(
    firestore_client: firestore.Client,
    definition: PipelineDefinition,
    now: datetime,
    *,
    lookback: timedelta = FLOOD_LOOKBACK,
) -> list[Finding]:
    """One ``quarantine_flood`` finding per function whose quarantine counter passed its cap in a window
    under way or ended within ``lookback`` of ``now`` (ERROR while the current window overflows, else
    WARNING), with the numbers counted: bad messages received, and how many were counted, not stored."""
    from google.cloud.firestore_v1.base_query import FieldFilter
    from google.cloud.firestore_v1.field_path import FieldPath

    col = rate_counters(firestore_client, definition.pipeline.quarantine_collection)
    since = now - lookback
    first, _ = rate_window(since - QUARANTINE_WINDOW)  # a window that ends after `since` starts after this
    # one range read over document ids ("{window}__{function}", sorted by time): the built-in index on
    # __name__ serves it, so production needs no composite index
    docs = col.where(filter=FieldFilter(FieldPath.document_id(), ">=", col.document(window_id(first)))).stream()
    by_function: dict[str, list[_Window]] = {}
    for doc in docs:
        data = doc.to_dict() or {}
        window = _window(data)
        if window is None or window.overflow == 0 or window.end <= since:
            continue
        function = str(data.get("function") or doc.id.partition("__")[2] or "?")
        by_function.setdefault(function, []).append(window)
    return [_finding(f, sorted(windows, key=lambda w: w.start), now) for f, windows in sorted(by_function.items())]


def _window(data: dict[str, Any]) -> _Window | None:
    start, end = data.get("window_start"), data.get("window_end")
    if not isinstance(start, datetime) or not isinstance(end, datetime):
        return None
    try:
        received, cap = int(data.get("received") or 0), int(data.get("max_stored") or 0)
    except (TypeError, ValueError):
        return None
    return _Window(start.astimezone(UTC), end.astimezone(UTC), received, cap)


def _span(window: _Window) -> str:
    return f"{window.start.date().isoformat()} {window.start:%H:%M} to {window.end:%H:%M} UTC"


def _finding(function: str, windows: list[_Window], now: datetime) -> Finding:
    received = sum(w.received for w in windows)
    overflow = sum(w.overflow for w in windows)
    ongoing = any(w.start <= now < w.end for w in windows)
    caps = sorted({w.cap for w in windows})
    cap = "/".join(str(c) for c in caps)
    spans = ", ".join(_span(w) for w in windows)
    state = "still flooding" if ongoing else "over"
    message = (
        f"quarantine flood on {function} ({state}): {received} bad messages in {spans}; {overflow} beyond the "
        f"cap of {cap} a window were acked and counted, not stored"
    )
    return Finding(
        "quarantine_flood",
        "ERROR" if ongoing else "WARNING",
        message,
        details={
            "function": function,
            "windows": [window_id(w.start) for w in windows],
            "max_stored": caps,
        },
        subject=function,
    )
