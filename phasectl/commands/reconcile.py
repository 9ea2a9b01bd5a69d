"""``phasectl reconcile``: Final games vs boxscore sources, phases, retry queue."""

from __future__ import annotations

import argparse
from datetime import date
from typing import Any

from phasectl.commands.retry import _row_dict
from phasectl.commands.status import _phase_lines
from phasectl.core import Context, _date


# -- reconcile ---------------------------------------------------------------------------------
def _sources(ctx: Context) -> Any:
    from shared.deferred import Deferred
    from shared.orchestration.gate_queries import BigQueryGateQueries

    games = ctx.definition.games
    return BigQueryGateQueries(Deferred(ctx.bq), ctx.project, games, deadline_seconds=ctx.timeout, clock=ctx.clock)


def _log_rows(ctx: Context, day: date) -> list[dict[str, Any]]:
    from google.cloud import bigquery as bq

    s = ctx.definition.pipeline
    sql = (
        "SELECT phase_name, status, execution_timestamp, start_time, duration_seconds, trigger_id, games_processed "
        f"FROM `{ctx.project}.{s.dataset}.{s.phase_execution_log_table}` WHERE game_date = @game_date "
        "ORDER BY execution_timestamp, phase_name"
    )
    config = bq.QueryJobConfig(query_parameters=[bq.ScalarQueryParameter("game_date", "DATE", day)])
    job = ctx.bq().query(sql, job_config=config, retry=ctx.bq_retry(), timeout=ctx.timeout)
    return [dict(r.items()) for r in job.result(retry=ctx.bq_retry(), timeout=ctx.timeout)]


def cmd_reconcile(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.report import build_reconcile

    day = _date(ctx, args.date)
    inputs = _sources(ctx).load(day)
    report = build_reconcile(
        ctx.definition,
        day,
        inputs,
        phases=_phase_lines(ctx, day),
        log_rows=_log_rows(ctx, day),
        retry_rows=[_row_dict(r) for r in ctx.queue().rows(game_date=day)],
    )
    if args.json:
        ctx.dump(report.as_dict(detailed=args.detailed))
    else:
        ctx.print(report.render(detailed=args.detailed, times=ctx.times))
    return report.exit_code
