"""``phasectl gaps``: the expected-outputs grid's gaps (Final games, no trigger or no rows for a phase)
and the backfill queue; ``--enqueue`` queues them (audited). The queue is worked, within its rate cap,
by the gap pass the scheduled jobs run (``shared.heal.gaps``)."""

from __future__ import annotations

import argparse
from typing import Any

from phasectl.connect import BIGQUERY, FIRESTORE
from phasectl.core import Context, _date, _user

EPILOG = "\n".join(
    [
        "EXAMPLES:",
        "    To see the gaps of the last 14 days (Final games, no trigger or no rows for a phase), run:",
        "",
        "        $ phasectl gaps",
        "",
        "    To look at the whole season and queue what is missing for backfill (audited), run:",
        "",
        "        $ phasectl gaps --season --enqueue",
        "",
        "    To look at one date, run:",
        "",
        "        $ phasectl gaps --date 2026-01-24",
    ]
)


def add_parser(sub: Any, parser_class: Any) -> None:
    """``phasectl gaps [--season] [--enqueue] [--date D] [--json]``."""
    p = sub.add_parser(
        "gaps",
        help="dates with Final games and no trigger or no rows for a phase; --enqueue queues them for backfill",
        epilog=EPILOG,
    )
    scope = p.add_mutually_exclusive_group()
    scope.add_argument("--season", action="store_true", help="the whole season instead of [heal.gaps] lookback_days")
    scope.add_argument("--date", help="only this game date (YYYY-MM-DD or TODAY/YESTERDAY)")
    p.add_argument("--enqueue", action="store_true", help="queue each date's earliest gap for backfill (audited)")
    p.add_argument("--json", action="store_true", help="print the gaps and the queue as JSON instead of tables")
    p.set_defaults(func=cmd_gaps)


def cmd_gaps(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.report import format_table
    from shared.heal.gaps import GapPass, PassResult

    ctx.prepare(FIRESTORE, BIGQUERY)
    day = _date(ctx, args.date) if args.date else None
    gap_pass = GapPass(ctx.definition, ctx.firestore(), ctx.bq, ctx.project, ctx.clock)
    scan = gap_pass.scan(season=args.season, start=day, end=day)
    result = PassResult(scan)
    if args.enqueue:
        result = gap_pass.enqueue(scan, f"phasectl:{ctx.env.get('USER') or _user()}")
        gap_pass.save_summary(result)  # what the monitor's next pass reports
        ctx.audit(
            "gaps",
            {"season": args.season, "date": day, "enqueue": True, "window": scan.window_text},
            f"{len(scan.gaps)} gap(s) on {len(scan.dates)} date(s); queued {len(result.queued)}, "
            f"resolved {len(result.resolved)}",
        )
    entries = {(e.target, e.game_date): e for e in gap_pass.queue.entries(scan.start, scan.end)}
    if args.json:
        ctx.dump(
            {
                "window": [scan.start, scan.end],
                "season": scan.season,
                "final_games": {d.isoformat(): n for d, n in sorted(scan.final_games.items())},
                "gaps": [
                    {
                        "game_date": g.game_date,
                        "phase": g.phase,
                        "kinds": list(g.kinds),
                        "target": g.target,
                        "generation": g.generation,
                        "detail": g.detail,
                        "queue": _queue_state(entries, g.target, g.game_date),
                    }
                    for g in scan.gaps
                ],
                "rows_error": scan.rows_error,
                "queued": result.queued,
                "resolved": result.resolved,
            }
        )
        return 1 if scan.gaps else 0
    ctx.print(
        f"gaps {scan.window_text}: {len(scan.final_games)} date(s) with Final games, "
        f"{len(scan.gaps)} gap(s) on {len(scan.dates)} date(s)"
    )
    if scan.rows_error:
        ctx.print(f"  rows not checked (the query failed): {scan.rows_error}")
    if scan.gaps:
        rows = [
            (
                g.game_date,
                scan.final_games.get(g.game_date, 0),
                g.phase,
                "+".join(g.kinds),
                g.target or "- (re-run its processors)",
                _queue_state(entries, g.target, g.game_date) or "-",
                g.detail,
            )
            for g in scan.gaps
        ]
        ctx.print(format_table(("DATE", "FINAL", "PHASE", "GAP", "BACKFILL BY", "QUEUE", "DETAIL"), rows))
    if args.enqueue:
        ctx.print(f"queued {len(result.queued)} new entr(y/ies); resolved {len(result.resolved)} whose gap is gone")
        for entry_id in result.queued:
            ctx.print(f"  + {entry_id}")
        ctx.print(
            f"the gap pass re-triggers at most {ctx.definition.heal.gaps.dates_per_hour} date(s) an hour, oldest first"
        )
    elif scan.gaps:
        ctx.print("queue them for backfill: phasectl gaps --enqueue" + (" --season" if args.season else ""))
    return 1 if scan.gaps else 0


def _queue_state(entries: dict[Any, Any], target: str | None, day: Any) -> str | None:
    entry = entries.get((target, day)) if target else None
    if entry is None:
        return None
    outcome = entry.doc.get("outcome") or {}
    kind = f" ({outcome.get('kind')})" if outcome.get("kind") else ""
    return f"{entry.status}{kind} g{entry.generation}"
