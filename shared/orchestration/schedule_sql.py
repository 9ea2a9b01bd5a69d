"""The schedule part of a gate's or sensor's one query: the date's games, the same game ids on later
dates, and the operators' marks (unavailable, postponed, restored), as ``UNION ALL`` branches.

Every branch has the columns ``SCHEDULE_COLUMNS``; a query that adds branches of its own (the
boxscore sources, a sensor's row counts) pads them with ``null_columns`` so one query answers all.
Every identifier comes from the validated ``[games]`` section; the date is the ``@game_date``
parameter and every branch filters the schedule's date column (the replaced table requires a
partition filter). ``ScheduleRows`` turns the answer back into schedule entries and marks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import Any

from shared.game_ids import ScheduleEntry
from shared.orchestration.postponement import POSTPONED, RESTORED, OperatorMarks
from shared.pipeline.definition import GamesSources

# (name, SQL type) after `kind` and `game_id`, in order
_TYPED = (
    ("away", "STRING"),
    ("home", "STRING"),
    ("game_status", "STRING"),
    ("status_text", "STRING"),
    ("updated_at", "TIMESTAMP"),
    ("scored", "BOOL"),
    ("on_date", "DATE"),
    ("note", "STRING"),
)
SCHEDULE_COLUMNS = ("kind", "game_id", *(name for name, _ in _TYPED))


def null_columns(extra: str = "", **values: str) -> str:
    """The columns after ``kind, game_id`` as typed NULLs, except those given as SQL expressions;
    ``extra``: the caller's own trailing columns (e.g. ``CAST(NULL AS INT64) AS n``)."""
    cols = [f"{values.get(name, f'CAST(NULL AS {kind})')} AS {name}" for name, kind in _TYPED]
    return ", ".join([*cols, extra] if extra else cols)


def schedule_branches(games: GamesSources, table: Callable[[str], str], extra: str = "") -> list[str]:
    """The schedule, later-dates and marks branches (``table(ref)`` quotes a validated table ref;
    ``extra``: trailing columns of the caller's other branches, as NULLs here)."""
    g = games
    sched = table(g.schedule_table)
    scored = (
        f"({g.schedule_home_score_column} IS NOT NULL AND {g.schedule_away_score_column} IS NOT NULL)"
        if g.schedule_home_score_column and g.schedule_away_score_column
        else "CAST(NULL AS BOOL)"
    )
    row = dict(
        away=f"CAST({g.schedule_away_team_column} AS STRING)",
        home=f"CAST({g.schedule_home_team_column} AS STRING)",
        game_status=f"CAST({g.schedule_status_column} AS STRING)",
        status_text=f"CAST({g.schedule_status_text_column} AS STRING)" if g.schedule_status_text_column else "NULL",
        updated_at=f"CAST({g.schedule_updated_column} AS TIMESTAMP)" if g.schedule_updated_column else "NULL",
        scored=scored,
    )
    game_id = f"CAST({g.schedule_game_id_column} AS STRING)"
    branches = [
        f"(SELECT 'schedule' AS kind, {game_id} AS game_id, {null_columns(extra, **row)} "
        f"FROM {sched} WHERE {g.schedule_date_column} = @game_date)"
    ]
    if g.reschedule_lookahead_days:
        # the same ids on the next days: the window is a validated int of the definition (SQL structure)
        days = int(g.reschedule_lookahead_days)
        branches.append(
            f"(SELECT 'later' AS kind, {game_id} AS game_id, "
            f"{null_columns(extra, **row, on_date=f'CAST({g.schedule_date_column} AS DATE)')} FROM {sched} "
            f"WHERE {g.schedule_date_column} > @game_date "
            f"AND {g.schedule_date_column} <= DATE_ADD(@game_date, INTERVAL {days} DAY) "
            f"AND {game_id} IN (SELECT {game_id} FROM {sched} WHERE {g.schedule_date_column} = @game_date))"
        )
    branches.append(
        f"(SELECT DISTINCT 'unavailable' AS kind, CAST(game_id AS STRING) AS game_id, "
        f"{null_columns(extra, status_text='CAST(kind AS STRING)', note='CAST(reason AS STRING)')} "
        f"FROM {table(g.unavailable_table)} WHERE game_date = @game_date)"
    )
    return branches


def _get(row: Any, key: str) -> Any:
    try:
        return row[key]
    except (KeyError, IndexError):
        return None


def schedule_entry(row: Any, game_date: date) -> ScheduleEntry:
    """A row of a ``'schedule'`` (or ``'later'``: its ``on_date``) branch as a schedule entry."""
    on_date = _get(row, "on_date")
    updated = _get(row, "updated_at")
    if isinstance(updated, datetime) and updated.tzinfo is None:
        updated = updated.replace(tzinfo=UTC)
    scored = _get(row, "scored")
    status_text = _get(row, "status_text")
    return ScheduleEntry(
        nba_game_id=str(row["game_id"]),
        game_date=on_date if isinstance(on_date, date) else game_date,
        away=str(row["away"]),
        home=str(row["home"]),
        status=None if row["game_status"] is None else str(row["game_status"]),
        updated_at=updated,
        status_text=None if status_text is None else str(status_text),
        scored=None if scored is None else bool(scored),
    )


@dataclass
class ScheduleRows:
    """What the schedule branches answered for one date."""

    schedule: list[ScheduleEntry] = field(default_factory=list)
    later: list[ScheduleEntry] = field(default_factory=list)
    unavailable: list[str] = field(default_factory=list)
    postponed: dict[str, str] = field(default_factory=dict)
    restored: set[str] = field(default_factory=set)

    def take(self, row: Any, game_date: date) -> bool:
        """Keep ``row`` if it is a schedule branch's (``True``); other branches' rows are the caller's."""
        kind = str(row["kind"])
        if kind == "schedule":
            self.schedule.append(schedule_entry(row, game_date))
        elif kind == "later":
            self.later.append(schedule_entry(row, game_date))
        elif kind == "unavailable":
            mark = str(_get(row, "status_text") or "").strip().lower()
            game_id = str(row["game_id"])
            if mark == POSTPONED:
                self.postponed[game_id] = str(_get(row, "note") or "")
            elif mark == RESTORED:
                self.restored.add(game_id)
            else:
                self.unavailable.append(game_id)
        else:
            return False
        return True

    @property
    def marks(self) -> OperatorMarks:
        return OperatorMarks(dict(self.postponed), frozenset(self.restored))
