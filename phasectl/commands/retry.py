"""``phasectl retry list|requeue|resolve``: the auto-retry queue."""

from __future__ import annotations

import argparse
import dataclasses
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from phasectl.timefmt import TimeView

if TYPE_CHECKING:
    from shared.retry.queue import QueueRow
from phasectl.core import Context, UsageError, _date, _processor, _user


def _row_dict(row: QueueRow) -> dict[str, Any]:
    return dataclasses.asdict(row)


def _minutes(delta: timedelta) -> str:
    minutes = int(delta.total_seconds() // 60)
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60:02d} min"


def next_retry_text(row: QueueRow, now: datetime, times: TimeView, fallback: str | None = None) -> str:
    """What happens next to a row, said against ``now``: ``01:31 ET``, ``due now``, ``overdue by 5 min
    (due 01:31 ET)``; a pending row whose budget is spent is not retried again (``shared.retry.service``
    ``_handle``: at its due pass it becomes ``failed_permanent`` and its fallback, if any, is queued)."""
    if row.status not in ("pending", "retrying"):
        return "-"
    at = row.next_retry_at
    day = row.game_date
    if row.status == "retrying":
        return f"in flight since {times.clock(row.last_retry_at or row.updated_at, day=day)}"
    if row.retry_count >= row.max_retries:
        then = f"; {fallback} queued as fallback" if fallback else ""
        when = "at the next auto-retry pass" if at is None or at <= now else f"at {times.clock(at, day=day)}"
        return (
            f"retries spent ({row.retry_count}/{row.max_retries}): no further try; "
            f"failed_permanent {when}{then} (phasectl retry requeue gives a fresh budget)"
        )
    if at is None or (at <= now and now - at < timedelta(minutes=1)):
        return "due now"
    if at > now:
        return times.clock(at, day=day)
    return f"overdue by {_minutes(now - at)} (due {times.clock(at, day=day)})"


# -- retry ---------------------------------------------------------------------------------------
def cmd_retry_list(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.report import format_table

    day = _date(ctx, args.date) if args.date else None
    rows = [r for r in ctx.queue().rows(game_date=day) if args.status is None or r.status == args.status]
    if args.json:
        ctx.dump({"version": 1, "command": "retry list", "rows": [_row_dict(r) for r in rows]})
        return 0
    now, fallbacks = ctx.now(), ctx.definition.retry.fallbacks
    ctx.print(f"retry queue ({ctx.times.header_now(now)})")
    ctx.print(
        format_table(
            ("ID", "DATE", "PHASE", "PROCESSOR", "STATUS", "RETRIES", "NEXT RETRY", "FALLBACK FOR", "NOTES"),
            [
                (
                    r.id,
                    r.game_date,
                    r.phase,
                    r.processor_name,
                    r.status,
                    f"{r.retry_count}/{r.max_retries}",
                    next_retry_text(r, now, ctx.times, fallbacks.get(r.processor_name)),
                    r.fallback_for or "-",
                    (r.resolution_notes or r.error_message or "-")[:60],
                )
                for r in rows
            ],
        )
    )
    ctx.print(f"{len(rows)} row(s)")
    return 0


def cmd_retry_requeue(ctx: Context, args: argparse.Namespace) -> int:
    day = _date(ctx, args.date)
    processor, phase = _processor(ctx, args.processor)
    note = f"requeued by {ctx.env.get('USER') or _user()}: {args.note}"
    count = ctx.queue().requeue_permanent(game_date=day, phase=phase, processor=processor, note=note)
    ctx.audit("retry requeue", {"date": day, "processor": processor, "note": args.note}, f"{count} row(s)")
    if not count:
        ctx.print(f"nothing requeued: no failed_permanent row for {processor} on {day}")
        return 1
    ctx.print(f"requeued {count} row(s) of {processor} on {day}: pending, fresh retry budget")
    return 0


def cmd_retry_resolve(ctx: Context, args: argparse.Namespace) -> int:
    queue = ctx.queue()
    wanted = args.row_id.strip()
    if len(wanted) < 6:
        raise UsageError(f"row id {wanted!r} is too short (give at least 6 characters)")
    matches = [r for r in queue.rows() if r.id == wanted or r.id.startswith(wanted)]
    if not matches:
        raise UsageError(f"unknown retry row id {wanted!r}")
    if len(matches) > 1:
        raise UsageError(f"retry row id {wanted!r} is ambiguous ({len(matches)} rows)")
    row = matches[0]
    if row.status not in ("pending", "retrying", "failed_permanent"):
        ctx.print(f"row {row.id} is already {row.status}: nothing to resolve")
        return 1
    note = f"resolved by {ctx.env.get('USER') or _user()}: {args.note}"
    # the queue's own guarded status change (also from failed_permanent, which mark_succeeded excludes)
    changed = queue.resolve(row, note)
    ctx.audit("retry resolve", {"row_id": row.id, "note": args.note}, "resolved" if changed else "unchanged")
    ctx.print(
        f"row {row.id} ({row.processor_name} {row.game_date}) {'resolved' if changed else 'changed concurrently'}"
    )
    return 0 if changed else 1
