"""``phasectl slo``: each transition's SLO and how the last nights went against it.

Two BigQuery queries for any number of nights (``shared.monitor.slo_log``): the trigger rows of
``phase_execution_log`` over the date range, and the schedule's games and first tip-offs. Exit 1
when the last night (``--date``, default yesterday) breached an SLO (late, or due and no trigger).
"""

from __future__ import annotations

import argparse
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from phasectl.argtypes import bounded_int
from phasectl.core import Context, UsageError, _date

if TYPE_CHECKING:
    from shared.monitor.slo import Night, TransitionHistory

NIGHTS_DEFAULT = 30
NIGHTS_MAX = 400
VERDICT_TEXT = {
    "on_time": "on time",
    "late": "LATE",
    "missing": "MISSING (due, no trigger)",
    "pending": "not due yet",
    "no_games": "no games",
}

EPILOG = "\n".join(
    [
        "EXAMPLES:",
        "    To see last night against each SLO, and the last 30 nights, run:",
        "",
        "        $ phasectl slo",
        "",
        "    To look at one night and the 7 before it, as JSON, run:",
        "",
        "        $ phasectl slo --date 2026-01-24 --nights 8 --json",
    ]
)


_nights = bounded_int("night count", NIGHTS_MAX)


def add_parser(sub: Any, parser_class: Any) -> None:
    """``phasectl slo [--date D] [--nights 30] [--json]``."""
    p = sub.add_parser(
        "slo",
        help="each transition's SLO: last night's trigger time against it, on time N of the last 30 nights, p50/p95",
        epilog=EPILOG,
    )
    p.add_argument(
        "--date", default="yesterday", help="the last night (YYYY-MM-DD or TODAY/YESTERDAY; default yesterday)"
    )
    p.add_argument(
        "--nights", type=_nights, default=NIGHTS_DEFAULT, help="how many nights, ending at --date (default 30)"
    )
    p.add_argument("--json", action="store_true", help="print every night of every transition as JSON")
    p.set_defaults(func=cmd_slo)


def read(ctx: Context, end: date, nights: int) -> list[TransitionHistory]:
    """The SLO history of ``nights`` nights ending at ``end`` (two queries, bounded by ``--timeout``)."""
    from shared.monitor.slo_log import read_history

    start = end - timedelta(days=nights - 1)
    return read_history(
        ctx.bq(), ctx.project, ctx.definition, start, end, ctx.now(), timeout=ctx.timeout, retry=ctx.bq_retry()
    )


def night_text(ctx: Context, night: Night) -> str:
    """``g1 partial 05:12 ET, g2 complete 07:40 ET`` against ``due 06:00 ET``: on time / LATE."""
    times = ctx.times
    shown = ", ".join(f"g{t.generation} {t.status} {times.clock(t.at, day=night.game_date)}" for t in night.triggers)
    late = f" by {_span(night.late_by.total_seconds())}" if night.late_by is not None else ""
    return (
        f"{night.game_date}: {shown or 'no trigger'} (due {times.clock(night.due, day=night.game_date)}): "
        f"{VERDICT_TEXT[night.verdict]}{late}"
    )


def _span(seconds: float) -> str:
    from shared.monitor.slo import duration_text

    return duration_text(seconds)


def cmd_slo(ctx: Context, args: argparse.Namespace) -> int:
    from shared.monitor.slo import duration_text

    end = _date(ctx, args.date)
    if not ctx.definition.slo.targets:
        raise UsageError("the pipeline definition has no [slo] targets")
    history = read(ctx, end, args.nights)
    breached = [h.transition for h in history if h.last is not None and h.last.breached]
    if args.json:
        ctx.dump(
            {
                "end": end,
                "nights": args.nights,
                "breached": breached,
                "transitions": [h.as_dict() for h in history],
            }
        )
        return 1 if breached else 0
    from phasectl.timefmt import zone_label

    ctx.print(ctx.times.header_now(ctx.now()))
    ctx.print(f"SLOs, last night {end}, {args.nights} nights from {end - timedelta(days=args.nights - 1)}")
    for h in history:
        ctx.print("")
        ctx.print(f"{h.transition}  SLO: first trigger by {h.slo.describe(zone_label(ctx.times.zone))}")
        if h.last is not None:
            ctx.print(f"  last night {night_text(ctx, h.last)}")
        ctx.print(
            f"  {h.on_time_text()}; phase {h.source_phase} duration (first completion to trigger, g1): "
            f"p50 {duration_text(h.p50)}, p95 {duration_text(h.p95)}"
        )
        for night in h.nights[:-1][::-1]:
            if night.breached or any(t.generation > 1 for t in night.triggers):
                ctx.print(f"    {night_text(ctx, night)}")
    if breached:
        ctx.print("")
        ctx.print(f"last night {end} breached: {', '.join(breached)} (runbook: docs/operations.md#slo_breach)")
    return 1 if breached else 0
