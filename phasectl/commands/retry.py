"""``phasectl retry list|requeue|resolve``: the auto-retry queue."""

from __future__ import annotations

import argparse
import dataclasses
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from shared.retry.queue import QueueRow
from phasectl.core import Context, UsageError, _date, _processor, _user


def _row_dict(row: QueueRow) -> dict[str, Any]:
    return dataclasses.asdict(row)


# -- retry ---------------------------------------------------------------------------------------
def cmd_retry_list(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.report import format_table

    day = _date(ctx, args.date) if args.date else None
    rows = [r for r in ctx.queue().rows(game_date=day) if args.status is None or r.status == args.status]
    if args.json:
        ctx.dump({"version": 1, "command": "retry list", "rows": [_row_dict(r) for r in rows]})
        return 0
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
                    r.next_retry_at.strftime("%Y-%m-%d %H:%M") if r.next_retry_at else "-",
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
