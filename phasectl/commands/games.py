"""``phasectl mark-unavailable`` and ``phasectl games postpone|restore``: the operator's word on a game.

A game marked unavailable or postponed leaves the coverage denominators and is never retried (a
postponed game is not a missing game, lesson L29); ``restore`` overrides a detected postponement
(the game counts again). Each is audited, ends the date's open retry rows that only chase such
games (``skipped``, with the reason) and re-evaluates the date: a blocked date is evaluated again
now; a date already triggered says what a forced re-trigger would change.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from datetime import date, timedelta
from typing import Any

from phasectl.commands.reconcile import _sources
from phasectl.core import Context, UsageError, _date, _user
from shared.errors import InvalidGameIdError
from shared.orchestration.date_state import DateState, state_doc_id


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


MATCHUP_LOOKBACK_DAYS = 7  # a matchup without --date is looked for on the schedule of the last week's nights


def _matchup_dates(ctx: Context, away: str, home: str) -> tuple[list[date], date, date]:
    """The dates ``away`` visits ``home`` on the schedule from a week ago to tomorrow (in the pipeline's zone)."""
    from google.cloud import bigquery as bq

    g = ctx.definition.games
    today = ctx.now().astimezone(ctx.times.zone).date()  # the pipeline's night, whatever --utc shows
    start, end = today - timedelta(days=MATCHUP_LOOKBACK_DAYS), today + timedelta(days=1)
    sql = (
        f"SELECT DISTINCT {g.schedule_date_column} AS game_date FROM `{ctx.project}.{g.schedule_table}` "
        f"WHERE {g.schedule_date_column} BETWEEN @start AND @end "
        f"AND UPPER({g.schedule_away_team_column}) = @away AND UPPER({g.schedule_home_team_column}) = @home "
        "ORDER BY game_date"
    )
    config = bq.QueryJobConfig(
        query_parameters=[
            bq.ScalarQueryParameter("away", "STRING", away),
            bq.ScalarQueryParameter("home", "STRING", home),
            bq.ScalarQueryParameter("start", "DATE", start),
            bq.ScalarQueryParameter("end", "DATE", end),
        ]
    )
    job = ctx.bq().query(sql, job_config=config, retry=ctx.bq_retry(), timeout=ctx.timeout)
    return [r["game_date"] for r in job.result(retry=ctx.bq_retry(), timeout=ctx.timeout)], start, end


def _find_game(ctx: Context, raw_id: str, date_arg: str | None) -> tuple[date, Any, Any, Any]:
    """The game's date, schedule entry, the date's coverage inputs and converter (or a usage error).

    ``raw_id`` is any form phasectl prints a game in (``phasectl.game_ref``)."""
    from phasectl.game_ref import ACCEPTED_FORMS, parse_game_ref
    from shared.game_ids import DateTeamsGameId, GameIdConverter

    day = _date(ctx, date_arg) if date_arg else None
    try:
        ref = parse_game_ref(raw_id)
        if ref.teams is not None and day is None:
            away, home = ref.teams
            dates, start, end = _matchup_dates(ctx, away, home)
            if not dates:
                raise UsageError(
                    f"no {away}@{home} game on the schedule from {start} to {end}: pass --date "
                    f"(accepted: {ACCEPTED_FORMS})"
                )
            if len(dates) > 1:
                raise UsageError(f"{away}@{home} is scheduled on {', '.join(map(str, dates))}: pass --date")
            day = dates[0]
        parsed = ref.on(day) if ref.teams is not None and day is not None else ref.game_id
    except InvalidGameIdError as exc:
        raise UsageError(exc.message) from None
    assert parsed is not None
    if isinstance(parsed, DateTeamsGameId):
        if day is not None and day != parsed.game_date:
            raise UsageError(f"game {parsed.format()} is on {parsed.game_date}, not {day}")
        day = parsed.game_date
    elif day is None:
        dates = _schedule_dates(ctx, parsed.format())
        if not dates:
            raise UsageError(f"unknown game id {raw_id.strip()!r}: not in the schedule")
        if len(dates) > 1:
            raise UsageError(f"game {parsed.format()} is scheduled on {', '.join(map(str, dates))}: pass --date")
        day = dates[0]
    inputs = _sources(ctx).load(day)
    converter = GameIdConverter.from_schedule(inputs.schedule)
    try:
        entry = converter.entry(parsed)
    except InvalidGameIdError:
        raise UsageError(f"unknown game id {raw_id!r}: not in the schedule of {day}") from None
    return day, entry, inputs, converter


def _marked(converter: Any, raw_ids: Any, canonical: str) -> bool:
    for raw in raw_ids:
        try:
            if converter.canonical(raw) == canonical:
                return True
        except InvalidGameIdError:
            continue
    return False


def _label(entry: Any, day: date) -> str:
    return f"{entry.date_teams_game_id} ({entry.away}@{entry.home}, {entry.nba_game_id}) on {day}"


def _delete_marks(ctx: Context, day: date, entry: Any, kinds: str) -> int:
    table = f"`{ctx.project}.{ctx.definition.games.unavailable_table}`"
    kind_sql = {
        "unavailable": "(kind IS NULL OR kind = 'unavailable')",
        "postponed": "kind = 'postponed'",
        "restored": "kind = 'restored'",
    }[kinds]
    return _dml(
        ctx,
        f"DELETE FROM {table} WHERE game_date = @game_date AND game_id IN (@canonical, @nba10, @nba8) AND {kind_sql}",
        [
            ("game_date", "DATE", day),
            ("canonical", "STRING", entry.date_teams_game_id),
            ("nba10", "STRING", entry.nba_game_id),
            ("nba8", "STRING", entry.nba_game_id[2:]),
        ],
    )


def _insert_mark(ctx: Context, day: date, entry: Any, kind: str | None, reason: str) -> None:
    table = f"`{ctx.project}.{ctx.definition.games.unavailable_table}`"
    _dml(
        ctx,
        f"INSERT INTO {table} (game_id, game_date, reason, marked_at, kind, marked_by) "
        "VALUES (@game_id, @game_date, @reason, @marked_at, @kind, @marked_by)",
        [
            ("game_id", "STRING", entry.date_teams_game_id),
            ("game_date", "DATE", day),
            ("reason", "STRING", reason),
            ("marked_at", "TIMESTAMP", ctx.now()),
            ("kind", "STRING", kind),
            ("marked_by", "STRING", ctx.env.get("USER") or _user()),
        ],
    )


def _note_marks(ctx: Context, state: DateState, game: str, command: str, rerun: bool, verdict: str) -> None:
    """Leave on a triggered date's document that a game was marked after its trigger (``MARKS_FIELD``):
    ``phasectl status`` then says the recorded gate is the trigger's and whether to re-run. Per
    generation: a forced re-trigger starts a new one and the note no longer applies."""
    from phasectl.report import MARKS_FIELD, marks_after_trigger

    earlier = marks_after_trigger(state) or {}
    games = [g for g in earlier.get("games") or () if g != game] + [game]
    note = {
        "generation": state.generation,
        "at": ctx.now(),
        "by": ctx.env.get("USER") or _user(),
        "command": command,
        "games": games,
        "rerun": rerun,
        "verdict": verdict[:500],
    }
    collection = ctx.firestore().collection(ctx.definition.pipeline.state_collection)
    collection.document(state_doc_id(state.transition, state.game_date)).set(
        {MARKS_FIELD: note}, merge=True, timeout=ctx.timeout
    )


def _settle(ctx: Context, day: date, game: str = "", command: str = "") -> list[str]:
    """After a mark: end the date's retry rows that only chase excluded games, and re-evaluate the
    date's coverage. Returns what changed, one line each (printed and audited)."""
    from phasectl.commands.trigger import _run_one, _service
    from shared.orchestration.gates import coverage_verdict
    from shared.pipeline.definition import GameCoverageGate
    from shared.retry.not_played import end_rows_for, excluded_from_bigquery

    lines: list[str] = []
    read = excluded_from_bigquery(ctx.definition, ctx.bq(), ctx.project, ctx.clock, deadline_seconds=ctx.timeout)
    excluded = read(day)
    for row, note in end_rows_for(ctx.queue(), day, excluded):
        lines.append(f"retry row {row.id[:8]} ({row.processor_name}, {row.status}) ended: {note}")
    inputs = _sources(ctx).load(day)
    tz = ctx.definition.pipeline.timezone
    for transition in ctx.definition.transitions:
        gates = [(n, ctx.definition.gates[n]) for n in transition.gates]
        coverage = [(n, g) for n, g in gates if isinstance(g, GameCoverageGate) and not g.sources]
        if not coverage:
            continue
        name, gate = coverage[0]
        now_verdict = coverage_verdict(name, gate, ctx.definition.games, inputs, timezone=tz)
        service = _service(ctx, transition.name)
        state = service.state.load(day)
        stored = (state.last_gate or {}).get(name) if isinstance(state.last_gate, dict) else None  # gate → result
        before = stored.get("reason") if isinstance(stored, dict) else None
        head = f"{transition.name}: gate {name} now {now_verdict.verdict}: {now_verdict.reason}"
        if state.triggered_current is not None:
            was = state.triggered_current.get("status") or "triggered"
            stored = (state.last_gate or {}).get(name) if isinstance(state.last_gate, dict) else None
            same = isinstance(stored, dict) and (
                sorted(stored.get("missing_games") or ()),
                sorted(stored.get("unavailable") or ()),
            ) == (sorted(now_verdict.missing_games), sorted(now_verdict.unavailable))
            force = f"phasectl trigger --transition {transition.name} --date {day} --force"
            hint = "it triggered with the same games counted: nothing to re-run" if same else f"{force} re-runs it"
            hint += "" if same else " with this verdict"
            lines.append(f"{head}; generation {state.generation} already triggered ({was}): {hint}")
            if game:  # `phasectl status` shows the gate recorded at the trigger: it says a mark came after
                _note_marks(ctx, state, game, command, not same, now_verdict.reason)
        elif state.status in ("blocked", "waiting", "gate_error"):
            outcome = _run_one(ctx, service, day, False, "re-evaluated after a game mark")
            was = f" (was {state.status}{f': {before}' if before else ''})"
            lines.append(f"{head}; re-evaluated{was}: {outcome.kind} {outcome.trigger_id or ''}".rstrip())
        else:
            lines.append(f"{head}; date {state.status}: nothing to re-evaluate")
    return lines


def _report(ctx: Context, command: str, call: dict[str, Any], headline: str, day: date) -> int:
    lines = _settle(ctx, day, str(call.get("game_id") or ""), command)
    ctx.audit(command, call, "; ".join([headline, *lines])[:1500])
    ctx.print(headline)
    for line in lines:
        ctx.print(f"  {line}")
    return 0


def cmd_mark_unavailable(ctx: Context, args: argparse.Namespace) -> int:
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    day, entry, inputs, converter = _find_game(ctx, args.game_id, args.date)
    canonical, nba = entry.date_teams_game_id, entry.nba_game_id
    marked = _marked(converter, inputs.unavailable_game_ids, canonical)
    label = _label(entry, day)
    call = {"game_id": canonical, "nba_game_id": nba, "date": day, "reason": args.reason, "undo": args.undo}
    if args.undo:
        if not marked:
            ctx.print(f"{label} is not marked unavailable: nothing to undo")
            return 1
        count = _delete_marks(ctx, day, entry, "unavailable")
        # re-evaluated like a mark: a triggered date's note then says whether a re-trigger still changes anything
        headline = f"{label} counts again toward coverage and completeness ({count} row(s) removed)"
        return _report(ctx, "mark-unavailable --undo", call, headline, day)
    if marked:
        ctx.print(f"{label} is already marked unavailable")
        return 0
    _insert_mark(ctx, day, entry, None, args.reason)
    headline = f"{label} marked unavailable ({args.reason}): excluded from coverage and completeness from now on"
    return _report(ctx, "mark-unavailable", call, headline, day)


def _game_call(ctx: Context, args: argparse.Namespace) -> tuple[date, Any, Any, Any, str, dict[str, Any], Any]:
    """``games postpone|restore``: the game (date, entry, inputs, converter), its label, the audited
    call and what the schedule alone says about it (its detected postponement, or ``None``)."""
    from shared.orchestration.postponement import detect_postponed

    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    day, entry, inputs, converter = _find_game(ctx, args.game_id, args.date)
    call = {"game_id": entry.date_teams_game_id, "nba_game_id": entry.nba_game_id, "date": day, "reason": args.reason}
    detected = {p.game_id: p for p in detect_postponed(ctx.definition.games, inputs.schedule, inputs.later).postponed}
    return day, entry, inputs, converter, _label(entry, day), call, detected.get(entry.date_teams_game_id)


def cmd_games_postpone(ctx: Context, args: argparse.Namespace) -> int:
    """Confirm a postponement (or record one the data cannot show yet)."""
    day, entry, inputs, converter, label, call, seen = _game_call(ctx, args)
    if _marked(converter, inputs.marks.postponed, entry.date_teams_game_id):
        ctx.print(f"{label} is already marked postponed")
        return 0
    restored = _delete_marks(ctx, day, entry, "restored")  # a postponement replaces an earlier restore
    _insert_mark(ctx, day, entry, "postponed", args.reason)
    also = f"; the schedule agrees: {'; '.join(seen.evidence)}" if seen else "; the schedule does not show it (yet)"
    undone = f"; {restored} restore mark(s) removed" if restored else ""
    headline = f"{label} marked postponed ({args.reason}): not expected, never retried{also}{undone}"
    return _report(ctx, "games postpone", call, headline, day)


def cmd_games_restore(ctx: Context, args: argparse.Namespace) -> int:
    """Undo a postponement: the operator's mark is removed; a detected one is overridden."""
    day, entry, inputs, converter, label, call, seen = _game_call(ctx, args)
    removed = _delete_marks(ctx, day, entry, "postponed")
    if seen is None and not removed:
        ctx.print(f"{label} is not postponed (no mark, no evidence in the schedule): nothing to restore")
        return 1
    parts = [f"{removed} postponed mark(s) removed"] if removed else []
    already = _marked(converter, inputs.marks.restored, entry.date_teams_game_id)
    if seen is not None and already and not removed:
        ctx.print(f"{label} is already restored (it counts; the schedule's evidence stays overridden)")
        return 0
    if seen is not None and not already:
        _insert_mark(ctx, day, entry, "restored", args.reason)
        parts.append(f"the schedule's evidence overridden ({'; '.join(seen.evidence)})")
    headline = f"{label} restored ({args.reason}): counts again toward coverage; {', '.join(parts)}"
    return _report(ctx, "games restore", call, headline, day)
