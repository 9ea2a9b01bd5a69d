"""The retry queue's health, pure: what a tick works from and what the monitor reports.

Cost (issue 25, "what a night costs"): a tick reads the queue once (``RetryQueue.snapshot``: every
open and ``failed_permanent`` row of the window) and works from that read: stale ``retrying`` rows
(an UPDATE only when there is one), successes, due rows. It then stores the queue's health — every
``pending`` and ``failed_permanent`` row as the tick left it — in its heartbeat document. A monitor
pass reads the health from there while the heartbeat is fresh (within one auto-retry interval and
its run) instead of querying BigQuery itself, so a quiet queue costs one BigQuery statement per
tick and none per monitor pass. When the heartbeat is stale (auto-retry is not running: the monitor
reports that too) or the health is incomplete (more rows than a document keeps), the monitor
queries the table. Findings are as of the last tick: at most one auto-retry interval old.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.retry.policy import DISPATCH_FAILING_AFTER

if TYPE_CHECKING:
    from shared.retry.queue import QueueRow

HEALTH_ROWS_MAX = 500  # rows the heartbeat keeps (~300 bytes each); more: the monitor queries instead
_NOTES_MAX = 300


def is_stale(row: QueueRow, stale_before: datetime) -> bool:
    """A ``retrying`` row with no outcome since ``stale_before`` (``RetryQueue.return_stale``'s rule:
    a row without ``last_retry_at`` is never stale)."""
    return row.status == "retrying" and row.last_retry_at is not None and row.last_retry_at < stale_before


def due_rows(rows: Iterable[QueueRow], now: datetime, limit: int) -> list[QueueRow]:
    """``pending`` rows whose time has come, longest-waiting first (no due time first, as BigQuery
    orders NULLs), then by creation and id: fair, no starvation."""
    due = [r for r in rows if r.status == "pending" and (r.next_retry_at is None or r.next_retry_at <= now)]
    due.sort(key=lambda r: (r.next_retry_at is not None, r.next_retry_at or now, r.created_at, r.id))
    return due[:limit]


def health_doc(rows: Iterable[QueueRow], as_of: datetime, complete: bool) -> dict[str, Any]:
    """The heartbeat's ``queue`` field: the ``pending`` and ``failed_permanent`` rows, as of ``as_of``.

    ``complete`` is false when the snapshot did not hold the whole window, or the rows exceed
    ``HEALTH_ROWS_MAX``: the monitor then queries the table.
    """
    kept = [_row(r) for r in rows if r.status in ("pending", "failed_permanent")]
    kept.sort(key=lambda r: (r["game_date"], r["processor_name"], r["status"]))
    whole = complete and len(kept) <= HEALTH_ROWS_MAX
    return {"as_of": as_of, "complete": whole, "rows": kept if whole else []}


def _row(row: QueueRow) -> dict[str, Any]:
    return {
        "processor_name": row.processor_name,
        "game_date": row.game_date.isoformat(),
        "status": row.status,
        "resolution_notes": (row.resolution_notes or "")[:_NOTES_MAX],
        "dispatch_failures": int(row.dispatch_failures or 0),
        "next_retry_at": row.next_retry_at,
    }


def stored_health(
    heartbeat: Mapping[str, Any] | None, now: datetime, fresh_for: timedelta
) -> list[dict[str, Any]] | None:
    """The rows of a heartbeat's health when the heartbeat is fresh (its tick ran within
    ``fresh_for`` of ``now``) and its health complete; else ``None`` (query the table)."""
    if not heartbeat:
        return None
    last = heartbeat.get("last_run_at")
    health = heartbeat.get("queue")
    if not isinstance(last, datetime) or not isinstance(health, Mapping) or health.get("complete") is not True:
        return None
    if not now - fresh_for <= last <= now + timedelta(minutes=1):  # a clock ahead of ours: not trusted
        return None
    rows = health.get("rows")
    return [dict(r) for r in rows if isinstance(r, Mapping)] if isinstance(rows, Sequence) else None


def reportable(row: Mapping[str, Any], overdue_before: datetime) -> bool:
    """The rows the monitor reports, from the heartbeat or the table: ``failed_permanent``, or ``pending`` and
    overdue (due before ``overdue_before``) or failing to dispatch (``DISPATCH_FAILING_AFTER`` ticks)."""
    if row.get("status") == "failed_permanent":
        return True
    if row.get("status") != "pending":
        return False
    due = row.get("next_retry_at")
    overdue = isinstance(due, datetime) and due < overdue_before
    return overdue or int(row.get("dispatch_failures") or 0) >= DISPATCH_FAILING_AFTER
