"""The grid's memory (issue 25): which dates of the grid window were seen triggered, so a monitor
pass reads a bounded number of date documents instead of every stored one.

One document per summarised transition, ``{heartbeat_collection}/grid_summary__{transition}``,
overwritten by each pass (like the heartbeats): for each date of the window, whether its state
document said ``triggered`` and the pass that read it. A pass reads the summary and then, by
document id, only:

- every date the grid asks about (Final games, before the horizon) that no pass has read yet;
- those of the lookback window, on every pass (where the night's work still lands: a date that
  crosses the horizon is always fresh, so a late trigger is never reported as a gap);
- ``recheck_budget`` more, the ones read longest ago: every date of the window is re-read at least
  once every ``RECHECK_PASSES`` passes (one hour at the 10-minute schedule). A date that changes
  behind the monitor's back (an operator's re-open starts a generation that is not triggered, a
  backfill fills a gap, a document is deleted) is seen within that bound.

So a pass reads at most 1 + lookback + budget date documents whatever the stored history; the
first pass (no summary yet) reads the window once. Not a query on ``updated_at`` since the last
pass: the package's Firestore queries filter on document ids only (no index is deployed for a
field, see ``deploy.spec.FIRESTORE_INDEXES``), and a document written without ``updated_at``
would never be seen again.

Bounded: every write drops the dates outside the window (at most ``grid_days + 1`` entries) and
carries the retention's expiry field, ``grid_days`` after the pass that wrote it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any

from shared.orchestration.firestore_errors import TRANSIENT_ERRORS
from shared.orchestration.state import state_doc_id
from shared.pipeline.definition import PipelineDefinition
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import firestore

__all__ = [
    "RECHECK_PASSES",
    "GridSummary",
    "Seen",
    "dates_to_read",
    "load_summary",
    "read_dates",
    "recheck_budget",
    "save_summary",
]

_log = get_logger("shared.monitor.grid_summary")

SUMMARY_PREFIX = "grid_summary__"
RECHECK_PASSES = 6  # every date of the window is re-read at least once in this many passes


@dataclass(frozen=True)
class Seen:
    """What the date's state document said when pass ``read_in_pass`` read it."""

    triggered: bool
    read_in_pass: int


@dataclass(frozen=True)
class GridSummary:
    """The dates of the window as last read, and how many passes have updated the summary."""

    passes: int
    dates: Mapping[date, Seen]

    def updated(self, read: Mapping[date, bool], start: date, today: date) -> GridSummary:
        """This pass's reads merged in (``read``: date → triggered), the dates outside the window dropped."""
        number = self.passes + 1
        dates = {d: s for d, s in self.dates.items() if start <= d <= today}
        dates.update({d: Seen(t, number) for d, t in read.items() if start <= d <= today})
        return GridSummary(number, dates)

    def to_doc(self, state_collection: str, today: date, definition: PipelineDefinition) -> dict[str, Any]:
        expires = datetime.combine(today + timedelta(days=definition.monitor.grid_days), time(0), tzinfo=UTC)
        return {
            "state_collection": state_collection,
            "passes": self.passes,
            "dates": {d.isoformat(): {"triggered": s.triggered, "pass": s.read_in_pass} for d, s in self.dates.items()},
            definition.retention.expiry_field: expires,
        }

    @classmethod
    def from_doc(cls, doc: Mapping[str, Any] | None, state_collection: str) -> GridSummary | None:
        """The summary of ``doc``; ``None`` when there is none usable (absent, another state collection,
        not in this shape): the caller then reads the whole window once."""
        if not doc or doc.get("state_collection") != state_collection:
            return None
        try:
            dates = {
                date.fromisoformat(key): Seen(bool(value["triggered"]), int(value["pass"]))
                for key, value in dict(doc["dates"]).items()
            }
            return cls(int(doc["passes"]), dates)
        except (KeyError, TypeError, ValueError):
            _log.warning("grid summary of %s is not readable; the window is read again", state_collection)
            return None


def recheck_budget(grid_days: int) -> int:
    """Dates re-read per pass beyond the new and the recent ones: the window once per ``RECHECK_PASSES``."""
    return max(1, math.ceil((grid_days + 1) / RECHECK_PASSES))


def dates_to_read(summary: GridSummary, asked: Iterable[date], recent_from: date, budget: int) -> list[date]:
    """The dates of ``asked`` this pass reads: the never read, those from ``recent_from`` on, and the
    ``budget`` read longest ago (oldest date first among equals)."""
    asked = sorted(set(asked))
    new = [d for d in asked if d not in summary.dates]
    recent = [d for d in asked if d in summary.dates and d >= recent_from]
    older = sorted(
        (d for d in asked if d in summary.dates and d < recent_from), key=lambda d: (summary.dates[d].read_in_pass, d)
    )
    return sorted({*new, *recent, *older[:budget]})


# -- Firestore --------------------------------------------------------------------------------------
def _summary_ref(client: firestore.Client, definition: PipelineDefinition, transition: str) -> Any:
    return client.collection(definition.monitor.heartbeat_collection).document(f"{SUMMARY_PREFIX}{transition}")


def load_summary(client: firestore.Client, definition: PipelineDefinition, transition: str) -> GridSummary | None:
    snap = _summary_ref(client, definition, transition).get()
    return GridSummary.from_doc(snap.to_dict() if snap.exists else None, definition.pipeline.state_collection)


def read_dates(
    client: firestore.Client, definition: PipelineDefinition, transition: str, days: Iterable[date]
) -> dict[date, bool]:
    """Whether each date's state document says ``triggered`` (absent: no), in one batched get."""
    collection = client.collection(definition.pipeline.state_collection)
    by_id = {state_doc_id(transition, d): d for d in days}
    if not by_id:
        return {}
    read = {d: False for d in by_id.values()}
    for snap in client.get_all([collection.document(doc_id) for doc_id in by_id]):
        if snap.exists:
            read[by_id[snap.id]] = (snap.to_dict() or {}).get("status") == "triggered"
    return read


def save_summary(
    client: firestore.Client, definition: PipelineDefinition, transition: str, summary: GridSummary, today: date
) -> None:
    """Overwrite the summary. A transient failure is logged, not raised: the summary only saves reads
    (the next pass reads again what this one learnt), and the grid's findings of this pass stand."""
    doc = summary.to_doc(definition.pipeline.state_collection, today, definition)
    try:
        _summary_ref(client, definition, transition).set(doc)
    except TRANSIENT_ERRORS as exc:
        _log.warning("grid summary of %s not saved (%s); the next pass reads again", transition, type(exc).__name__)
