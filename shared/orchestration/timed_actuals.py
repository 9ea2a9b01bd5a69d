"""A sensor's ``actuals_coverage`` condition: grading waits for the played games' rows (issue 27, item 4).

The replaced system graded nights it had no actuals for: "Last Automated Grading: NEVER", 2,608
predictions of 2026-01-17..19 ungraded
(docs/08-projects/current/week-0-deployment/INCIDENT-REPORT-JAN-13-19-2026.md:29-41), and its
grading function learned to refuse a date whose predictions have no matching actuals
(orchestration/cloud_functions/grading/main.py:282-303). Its ``phase3_to_grading`` gate
(orchestration/cloud_functions/phase3_to_grading/main.py, najicham/nba-stats-scraper@18f6ecfe)
triggers grading only when actuals cover ≥ 80 % of the predictions and ≥ 90 % of the games
(:64-65, :369-411). It measured players by record counts (:372-373: ``COUNT(*)`` of active
predictions, :199-206, against ``COUNT(*)`` of ``player_game_summary`` rows with points, :230-237),
which the grading function itself calls wrong (grading/main.py:129-138: 350 actuals for other
players read as 87.5 %). Here, as the grading function measures it (:175-217):

* predicted players: distinct ``player_lookup`` of the condition's ``table`` rows for the date
  (``where``: ``is_active = TRUE``, phase3_to_grading/main.py:205);
* with actuals: those with a row in ``actuals`` for the date (``actuals_where``: ``points IS NOT
  NULL``, :236), matched on ``player_lookup`` alone (a player plays one game a date, so a game-id
  format difference between the tables, lesson L15, cannot make every player look missing);
* games: the date's Final games (the schedule, postponed and unavailable games left out: the
  ``all_final`` condition's considered games) with an actuals row, canonicalised by
  ``GameIdConverter``; predicted players of a postponed or unavailable game leave the players'
  denominator too (they will never have actuals).

All in the sensor's one query (``timed.conditions_sql``): three ``UNION ALL`` branches per
condition, per game id, each filtered on its table's date column; predicate values are parameters.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from shared.game_ids import GameIdConverter, ScheduleEntry
from shared.orchestration.postponement import OperatorMarks
from shared.pipeline.definition import GamesSources, GateValue, SensorCondition, TimedTrigger, TriggerSlot

if TYPE_CHECKING:
    from shared.orchestration.gates import GateResult

PREFIX = "actuals:"
Param = tuple[str, str, GateValue]


@dataclass
class ActualsRows:
    """What one ``actuals_coverage`` condition read, by raw game id."""

    predicted: dict[str, int] = field(default_factory=dict)  # prediction game id → predicted players
    matched: dict[str, int] = field(default_factory=dict)  # ... of them with an actuals row
    games: dict[str, int] = field(default_factory=dict)  # actuals game id → players with actuals


@dataclass(frozen=True)
class ConditionInputs:
    """What a sensor's conditions read for one date (``timed.read_conditions``; here, below
    ``timed``, because the considered games below are computed from it)."""

    schedule: tuple[ScheduleEntry, ...] = ()
    unavailable_game_ids: tuple[str, ...] = ()
    counts: Mapping[int, int] = field(default_factory=dict)  # condition index → rows for the date
    later: tuple[ScheduleEntry, ...] = ()  # the date's game ids on later dates (postponement)
    marks: OperatorMarks = field(default_factory=OperatorMarks)
    actuals: Mapping[int, ActualsRows] = field(default_factory=dict)  # condition index → actuals_coverage rows


def _where(predicates: Sequence[Any], tag: str) -> tuple[str, list[Param]]:
    """``(a) AND (b)`` of the predicates (none: ``TRUE``) with parameters renamed ``@<tag>_<name>``."""
    from shared.orchestration.gate_queries import predicate_sql

    if not predicates:
        return "TRUE", []
    sql, params = predicate_sql(predicates)
    renamed = re.sub(r"@(\w+)", lambda m: f"@{tag}_{m.group(1)}", sql)
    return renamed, [(f"{tag}_{n}", t, v) for n, t, v in params]


def actuals_branches(i: int, cond: SensorCondition, table: Callable[[str], str]) -> tuple[list[str], list[Param]]:
    """The condition's ``UNION ALL`` branches (``kind, game_id, ..., n``) and their parameters."""
    from shared.orchestration.schedule_sql import null_columns

    assert cond.table is not None and cond.actuals is not None
    pc, gc = cond.player_column, cond.game_column
    wp, pp = _where(cond.where, f"c{i}p")
    wa, pa = _where(cond.actuals_where, f"c{i}a")
    head = f"CAST({gc} AS STRING) AS game_id, {null_columns(f'COUNT(DISTINCT {pc}) AS n')}"
    branches = [
        f"(SELECT '{PREFIX}{i}:predicted' AS kind, {head} FROM {table(cond.table.table)} "
        f"WHERE {cond.table.date_column} = @game_date AND {wp} GROUP BY {gc})",
        f"(SELECT '{PREFIX}{i}:matched' AS kind, {head} FROM {table(cond.table.table)} "
        f"WHERE {cond.table.date_column} = @game_date AND {wp} AND {pc} IN "
        f"(SELECT {pc} FROM {table(cond.actuals.table)} WHERE {cond.actuals.date_column} = @game_date AND {wa}) "
        f"GROUP BY {gc})",
        f"(SELECT '{PREFIX}{i}:games' AS kind, {head} FROM {table(cond.actuals.table)} "
        f"WHERE {cond.actuals.date_column} = @game_date AND {wa} GROUP BY {gc})",
    ]
    return branches, [*pp, *pa]


def conditions_params(trigger: TimedTrigger) -> list[Param]:
    """The parameters of every ``actuals_coverage`` condition's predicates (none: no parameters)."""
    out: list[Param] = []
    for i, cond in enumerate(trigger.conditions):
        if cond.kind == "actuals_coverage":
            out += actuals_branches(i, cond, str)[1]
    return out


def take(row: Any, actuals: dict[int, ActualsRows]) -> bool:
    """Keep ``row`` if an ``actuals_coverage`` branch gave it (``True``)."""
    kind = str(row["kind"])
    if not kind.startswith(PREFIX):
        return False
    index, what = kind.removeprefix(PREFIX).split(":")
    rows = actuals.setdefault(int(index), ActualsRows())
    getattr(rows, what)[str(row["game_id"])] = int(row["n"] or 0)
    return True


# -- the games a date waits for (shared with ``all_final``) ---------------------------------------
def canonical_ids(converter: GameIdConverter, raw_ids: Sequence[str]) -> set[str]:
    """The canonical ids of ``raw_ids`` the schedule knows (an id it cannot read is left out)."""
    from shared.errors import InvalidGameIdError

    out = set()
    for raw in raw_ids:
        try:
            out.add(converter.canonical(raw))
        except InvalidGameIdError:
            continue
    return out


@dataclass(frozen=True)
class Considered:
    """The date's games: every scheduled one, those left out (unavailable or postponed), the rest,
    and the Final ones of the rest."""

    converter: GameIdConverter
    entries: tuple[ScheduleEntry, ...]
    excluded: frozenset[str]
    considered: tuple[ScheduleEntry, ...]
    final: tuple[ScheduleEntry, ...]
    postponed: tuple[Mapping[str, Any], ...]


def considered_games(games: GamesSources, inputs: ConditionInputs) -> Considered:
    from shared.orchestration.postponement import detect_postponed

    converter = GameIdConverter.from_schedule(inputs.schedule)
    entries = tuple(converter.games())
    check = detect_postponed(games, inputs.schedule, inputs.later, marks=inputs.marks)
    excluded = frozenset(canonical_ids(converter, inputs.unavailable_game_ids) | check.game_ids)
    considered = tuple(e for e in entries if e.date_teams_game_id not in excluded)
    final = tuple(e for e in considered if games.is_final(e.status))
    postponed = tuple(p.as_doc() for p in check.postponed)
    return Considered(converter, entries, excluded, considered, final, postponed)


# -- the verdict ---------------------------------------------------------------------------------------
def pct(value: float) -> str:
    """``88.3``, ``100``, ``0``: one decimal, without a trailing ``.0``."""
    return f"{value:.1f}".removesuffix(".0")


@dataclass(frozen=True)
class ActualsCoverage:
    predicted: int
    with_actuals: int
    final_games: int
    games_with_actuals: int
    left_out_players: int  # predicted players of postponed or unavailable games

    @property
    def players_pct(self) -> float | None:
        return 100.0 * self.with_actuals / self.predicted if self.predicted else None

    @property
    def games_pct(self) -> float | None:
        return 100.0 * self.games_with_actuals / self.final_games if self.final_games else None


def measure(rows: ActualsRows, considered: Considered) -> ActualsCoverage:
    """The arithmetic, pure: predicted players (of games not left out) with actuals; Final games with actuals."""
    converter = considered.converter
    final = {e.date_teams_game_id for e in considered.final}
    played = canonical_ids(converter, [g for g, n in rows.games.items() if n > 0])
    predicted = with_actuals = left_out = 0
    for raw, n in rows.predicted.items():
        ids = canonical_ids(converter, [raw])
        if ids and ids <= considered.excluded:
            left_out += n
            continue
        predicted += n
        with_actuals += min(n, rows.matched.get(raw, 0))
    return ActualsCoverage(predicted, with_actuals, len(final), len(final & played), left_out)


def actuals_verdict(
    name: str, cond: SensorCondition, rows: ActualsRows | None, slot: TriggerSlot, considered: Considered
) -> GateResult:
    """``pass`` when both shares reach the slot's thresholds (a fallback slot: the ``fallback_min_*`` floors)."""
    from shared.orchestration.gates import GateResult

    cov = measure(rows or ActualsRows(), considered)
    players_min, games_min = (
        (cond.fallback_min_players_pct, cond.fallback_min_games_pct)
        if slot.fallback
        else (cond.min_players_pct, cond.min_games_pct)
    )
    thresholds = {"min_players_pct": players_min, "min_games_pct": games_min}
    details = {
        "predicted_players": cov.predicted,
        "players_with_actuals": cov.with_actuals,
        "final_games": cov.final_games,
        "games_with_actuals": cov.games_with_actuals,
        "left_out_players": cov.left_out_players,
        "players_pct": cov.players_pct,
        "games_pct": cov.games_pct,
    }
    what = cond.label or "actuals"
    left_out = cov.left_out_players
    note = f"; {left_out} predicted players of postponed/unavailable games left out" if left_out else ""
    players_pct, games_pct = cov.players_pct, cov.games_pct
    if players_pct is None or games_pct is None:
        missing = "no predicted players" if players_pct is None else "no Final games"
        reason = f"{what}: {missing} to measure yet{note}"
        return GateResult(name, "blocked", reason, "actuals_coverage", None, thresholds, False, details)
    reason = (
        f"{what} for {cov.with_actuals}/{cov.predicted} predicted players ({pct(players_pct)} %), "
        f"{cov.games_with_actuals}/{cov.final_games} Final games ({pct(games_pct)} %){note}"
    )
    ok = players_pct >= players_min and games_pct >= games_min
    if not ok:
        reason += f"; grading waits for ≥ {pct(players_min)} % of players and ≥ {pct(games_min)} % of games"
    verdict: Literal["pass", "blocked"] = "pass" if ok else "blocked"
    return GateResult(name, verdict, reason, "actuals_coverage", round(players_pct, 1), thresholds, False, details)
