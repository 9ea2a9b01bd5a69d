"""Games auto-retry must not chase: postponed (never played) or marked unavailable (lesson L29).

The replaced system re-ran a postponed game down the BDL → ESPN → gamebook chain up to 9 times,
and a pending retry row kept running after an operator had excluded the game. Here an open retry
row that names games (a gate's missing games) is checked before each dispatch: games that are
postponed (``shared.orchestration.postponement``: the schedule's evidence or an operator's mark)
or marked unavailable are dropped from the request; a row left with none ends ``skipped`` with the
reason. ``phasectl mark-unavailable`` and ``phasectl games postpone`` end such rows at once
(``end_rows_for``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING

from shared.clock import Clock
from shared.deferred import Deferred
from shared.errors import InvalidGameIdError
from shared.game_ids import GameIdConverter, ScheduleEntry
from shared.pipeline.definition import PipelineDefinition
from shared.retry.queue import OPEN, QueueRow, RetryQueue

if TYPE_CHECKING:
    from google.cloud import bigquery

ExcludedGames = Callable[[date], Mapping[str, str]]  # game date → {canonical game id: why it is not retried}


def excluded_from_bigquery(
    definition: PipelineDefinition,
    client: bigquery.Client | Deferred[bigquery.Client],
    project: str,
    clock: Clock,
    *,
    deadline_seconds: float = 30.0,
) -> ExcludedGames:
    """What the coverage gate would exclude for a date, read as the gate reads it (one query)."""
    from shared.orchestration.gate_queries import BigQueryGateQueries
    from shared.orchestration.postponement import detect_postponed

    queries = BigQueryGateQueries(client, project, definition.games, deadline_seconds=deadline_seconds, clock=clock)

    def excluded(game_date: date) -> Mapping[str, str]:
        inputs = queries.load(game_date)
        covered = {g for ids in inputs.source_game_ids.values() for g in ids}
        check = detect_postponed(
            definition.games,
            inputs.schedule,
            inputs.later,
            covered=_canonical(inputs.schedule, covered),
            marks=inputs.marks,
            now=inputs.read_at,
            timezone=definition.pipeline.timezone,
        )
        out = {p.game_id: f"postponed: {'; '.join(p.evidence)}" for p in check.postponed}
        converter = GameIdConverter.from_schedule(inputs.schedule)
        for raw in inputs.unavailable_game_ids:
            game = _canon(converter, raw)
            out.setdefault(game, "marked unavailable")
        return out

    return excluded


def _canon(converter: GameIdConverter, raw: str) -> str:
    try:
        return converter.canonical(raw)
    except InvalidGameIdError:
        return raw.strip()


def _canonical(schedule: Iterable[ScheduleEntry], raw_ids: set[str]) -> set[str]:
    converter = GameIdConverter.from_schedule(schedule)
    return {_canon(converter, raw) for raw in raw_ids}


def still_needed(row: QueueRow, excluded: Mapping[str, str]) -> tuple[list[str], list[str]]:
    """The row's games still to retry, and the reasons of those dropped."""
    keep = [g for g in row.game_ids if g not in excluded]
    dropped = [f"{g} {excluded[g]}" for g in row.game_ids if g in excluded]
    return keep, dropped


def end_rows_for(queue: RetryQueue, game_date: date, excluded: Mapping[str, str]) -> list[tuple[QueueRow, str]]:
    """End the date's open rows whose every game is excluded (``skipped``, with the reason); returns
    each row ended with its note. Rows with other games left stay open: the tick drops the excluded
    ones from the request."""
    ended: list[tuple[QueueRow, str]] = []
    for row in queue.rows(game_date=game_date):
        if row.status not in OPEN or not row.game_ids:
            continue
        keep, dropped = still_needed(row, excluded)
        if keep:
            continue
        note = f"skipped: not retried, {'; '.join(dropped)}"
        if queue.skip(row, note):
            ended.append((row, note))
    return ended
