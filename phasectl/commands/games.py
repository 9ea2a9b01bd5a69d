"""``phasectl mark-unavailable``: exclude a game from coverage and completeness (reversible)."""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from phasectl.commands.reconcile import _sources
from phasectl.core import Context, UsageError, _date
from shared.errors import InvalidGameIdError


# -- mark-unavailable ----------------------------------------------------------------------------
def _schedule_dates(ctx: Context, nba_id: str) -> list[date]:
    from google.cloud import bigquery as bq

    g = ctx.definition.games
    # the replaced system's schedule requires a partition filter: search a season either side of today
    today = ctx.now().date()
    sql = (
        f"SELECT DISTINCT {g.schedule_date_column} AS game_date FROM `{ctx.project}.{g.schedule_table}` "
        f"WHERE {g.schedule_date_column} BETWEEN @start AND @end "
        f"AND CAST({g.schedule_game_id_column} AS STRING) IN (@id10, @id8) ORDER BY game_date"
    )
    config = bq.QueryJobConfig(
        query_parameters=[
            bq.ScalarQueryParameter("id10", "STRING", nba_id),
            bq.ScalarQueryParameter("id8", "STRING", nba_id[2:]),
            bq.ScalarQueryParameter("start", "DATE", today - timedelta(days=400)),
            bq.ScalarQueryParameter("end", "DATE", today + timedelta(days=400)),
        ]
    )
    job = ctx.bq().query(sql, job_config=config, retry=ctx.bq_retry(), timeout=ctx.timeout)
    return [r["game_date"] for r in job.result(retry=ctx.bq_retry(), timeout=ctx.timeout)]


def _dml(ctx: Context, sql: str, params: Sequence[tuple[str, str, Any]]) -> int:
    from google.cloud import bigquery as bq

    config = bq.QueryJobConfig(query_parameters=[bq.ScalarQueryParameter(n, t, v) for n, t, v in params])
    job = ctx.bq().query(sql, job_config=config, retry=ctx.bq_retry(), timeout=ctx.timeout)
    job.result(retry=ctx.bq_retry(), timeout=ctx.timeout)
    return int(job.num_dml_affected_rows or 0)


def cmd_mark_unavailable(ctx: Context, args: argparse.Namespace) -> int:
    from shared.game_ids import DateTeamsGameId, GameIdConverter, parse_game_id

    try:
        parsed = parse_game_id(args.game_id)
    except InvalidGameIdError as exc:
        raise UsageError(exc.message) from None
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    day = _date(ctx, args.date) if args.date else None
    if isinstance(parsed, DateTeamsGameId):
        if day is not None and day != parsed.game_date:
            raise UsageError(f"game {parsed.format()} is on {parsed.game_date}, not {day}")
        day = parsed.game_date
    elif day is None:
        dates = _schedule_dates(ctx, parsed.format())
        if not dates:
            raise UsageError(f"unknown game id {args.game_id!r}: not in the schedule")
        if len(dates) > 1:
            raise UsageError(f"game {parsed.format()} is scheduled on {', '.join(map(str, dates))}: pass --date")
        day = dates[0]
    inputs = _sources(ctx).load(day)
    converter = GameIdConverter.from_schedule(inputs.schedule)
    try:
        entry = converter.entry(parsed)
    except InvalidGameIdError:
        raise UsageError(f"unknown game id {args.game_id!r}: not in the schedule of {day}") from None
    canonical, nba = entry.date_teams_game_id, entry.nba_game_id
    marked = False
    for raw in inputs.unavailable_game_ids:
        try:
            marked = marked or converter.canonical(raw) == canonical
        except InvalidGameIdError:
            continue
    table = f"`{ctx.project}.{ctx.definition.games.unavailable_table}`"
    label = f"{canonical} ({entry.away}@{entry.home}, {nba}) on {day}"
    call = {"game_id": canonical, "nba_game_id": nba, "date": day, "reason": args.reason, "undo": args.undo}
    if args.undo:
        if not marked:
            ctx.print(f"{label} is not marked unavailable: nothing to undo")
            return 1
        count = _dml(
            ctx,
            f"DELETE FROM {table} WHERE game_date = @game_date AND game_id IN (@canonical, @nba10, @nba8)",
            [
                ("game_date", "DATE", day),
                ("canonical", "STRING", canonical),
                ("nba10", "STRING", nba),
                ("nba8", "STRING", nba[2:]),
            ],
        )
        ctx.audit("mark-unavailable --undo", call, f"deleted {count} row(s)")
        ctx.print(f"{label} counts again toward coverage and completeness ({count} row(s) removed)")
        return 0
    if marked:
        ctx.print(f"{label} is already marked unavailable")
        return 0
    _dml(
        ctx,
        f"INSERT INTO {table} (game_id, game_date, reason, marked_at) "
        "VALUES (@game_id, @game_date, @reason, @marked_at)",
        [
            ("game_id", "STRING", canonical),
            ("game_date", "DATE", day),
            ("reason", "STRING", args.reason),
            ("marked_at", "TIMESTAMP", ctx.now()),
        ],
    )
    ctx.audit("mark-unavailable", call, "marked")
    ctx.print(f"{label} marked unavailable ({args.reason}): excluded from coverage and completeness from now on")
    return 0
