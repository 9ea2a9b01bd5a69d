"""[grading] The grading safety net, pure: actuals coverage (arithmetic, thresholds, reason, postponed
games), its SQL, the regrade measure and the grading gap dates (issue 27, item 4)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime

import pytest

from shared.game_ids import ScheduleEntry
from shared.monitor.grading_net import REDO, DayCounts, counts_sql, grading_gaps
from shared.orchestration.timed import ConditionInputs, conditions_sql, conditions_verdict
from shared.orchestration.timed_actuals import ActualsRows, actuals_branches, conditions_params, pct
from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, SensorCondition, load_definition

D = load_definition(DEFAULT_DEFINITION_PATH)
SENSOR = D.timed_trigger("grading_readiness")
READINESS = SENSOR.slot("readiness")
FALLBACK = SENSOR.slot("run_0230")
INDEX = next(i for i, c in enumerate(SENSOR.conditions) if c.kind == "actuals_coverage")
COND = SENSOR.conditions[INDEX]
GAME_DATE = date(2026, 1, 24)
GAMES = (
    ("0022500644", "GSW", "MIN"),
    ("0022500645", "LAL", "BOS"),
    ("0022500646", "NYK", "MIA"),
    ("0022500647", "DEN", "PHX"),
    ("0022500648", "CHI", "DAL"),
)
CANON = tuple(f"20260124_{a}_{h}" for _, a, h in GAMES)


def schedule(n: int = 5, **by_index: dict[str, object]) -> tuple[ScheduleEntry, ...]:
    out = []
    for i, (nba, away, home) in enumerate(GAMES[:n]):
        fields: dict[str, object] = {"status": "3", "scored": True, "updated_at": datetime(2026, 1, 25, 9, tzinfo=UTC)}
        fields.update(by_index.get(f"g{i}", {}))
        out.append(ScheduleEntry(nba_game_id=nba, game_date=GAME_DATE, away=away, home=home, **fields))  # type: ignore[arg-type]
    return tuple(out)


def rows(predicted: dict[int, int], matched: dict[int, int], played: dict[int, int]) -> ActualsRows:
    """Per game index: predicted players, of them with actuals, players in the actuals table."""
    return ActualsRows(
        {CANON[i]: n for i, n in predicted.items()},
        {CANON[i]: n for i, n in matched.items()},
        {CANON[i]: n for i, n in played.items()},
    )


def verdict(actuals: ActualsRows, sched: tuple[ScheduleEntry, ...] = schedule(), slot=READINESS, unavailable=()):  # type: ignore[no-untyped-def]
    data = ConditionInputs(sched, tuple(unavailable), {1: 50, 2: 0}, actuals={INDEX: actuals})
    results = {r.kind: r for r in conditions_verdict(SENSOR, slot, D.games, data)}
    return results["actuals_coverage"]


def full() -> ActualsRows:
    return rows({i: 10 for i in range(5)}, {i: 10 for i in range(5)}, {i: 10 for i in range(5)})


# ------------------------------------------------------------------------------ the definition
def test_the_packaged_sensor_requires_actuals_with_the_replaced_thresholds() -> None:
    assert (COND.min_players_pct, COND.min_games_pct) == (80.0, 90.0)  # phase3_to_grading/main.py:64-65
    assert (COND.fallback_min_players_pct, COND.fallback_min_games_pct) == (70.0, 80.0)  # grading/main.py:262-263
    assert COND.fallback  # fallback slots check it too, at the grading function's own floors
    assert COND.actuals is not None and COND.actuals.table == "nba_analytics.player_game_summary"
    assert SENSOR.regrade is not None
    assert (SENSOR.regrade.below_pct, SENSOR.regrade.max_regrades, SENSOR.regrade.gap_days) == (70.0, 2, 14)


@pytest.mark.parametrize(
    "condition",
    [
        {"kind": "actuals_coverage", "table": {"table": "d.p"}},  # no actuals table
        {"kind": "rows_present", "table": {"table": "d.p"}, "actuals": {"table": "d.a"}},
    ],
)
def test_actuals_is_for_and_required_by_actuals_coverage(condition: dict[str, object]) -> None:
    with pytest.raises(ValueError, match="`actuals`"):
        SensorCondition.model_validate(condition)


# ------------------------------------------------------------------------------ the arithmetic
def test_all_actuals_pass_with_the_coverage_in_the_reason() -> None:
    result = verdict(full())
    assert result.verdict == "pass"
    assert result.reason == "actuals for 50/50 predicted players (100 %), 5/5 Final games (100 %)"


def test_no_actuals_blocks_grading() -> None:
    result = verdict(rows({i: 10 for i in range(5)}, {}, {}))
    assert result.verdict == "blocked"
    assert result.reason.startswith("actuals for 0/50 predicted players (0 %), 0/5 Final games (0 %)")
    assert "grading waits for ≥ 80 % of players and ≥ 90 % of games" in result.reason


def test_player_threshold_blocks_below_80_and_passes_at_80() -> None:
    # 39/50 = 78 %: blocked even with every game covered
    low = verdict(rows({i: 10 for i in range(5)}, {0: 10, 1: 10, 2: 10, 3: 9, 4: 0}, {i: 9 for i in range(5)}))
    assert low.verdict == "blocked" and "39/50 predicted players (78 %)" in low.reason
    at = verdict(rows({i: 10 for i in range(5)}, {0: 10, 1: 10, 2: 10, 3: 10, 4: 0}, {i: 9 for i in range(5)}))
    assert at.verdict == "pass" and "40/50 predicted players (80 %)" in at.reason


def test_game_threshold_blocks_below_90() -> None:
    # 4/5 games = 80 % < 90 %, although 44/50 players = 88 % >= 80 %
    result = verdict(rows({i: 10 for i in range(5)}, {0: 10, 1: 10, 2: 10, 3: 10, 4: 4}, {0: 9, 1: 9, 2: 9, 3: 9}))
    assert result.verdict == "blocked"
    assert "44/50 predicted players (88 %), 4/5 Final games (80 %)" in result.reason
    assert result.details["games_with_actuals"] == 4
    assert result.thresholds == {"min_players_pct": 80.0, "min_games_pct": 90.0}


def test_a_fallback_slot_checks_the_grading_functions_floors() -> None:
    """4/5 games (80 %) and 44/50 players: blocked at 80/90, passes a fallback's 70/80; none still blocks."""
    part = rows({i: 10 for i in range(5)}, {0: 10, 1: 10, 2: 10, 3: 10, 4: 4}, {0: 9, 1: 9, 2: 9, 3: 9})
    assert verdict(part, slot=READINESS).verdict == "blocked"
    assert verdict(part, slot=FALLBACK).verdict == "pass"
    assert verdict(rows({i: 10 for i in range(5)}, {}, {}), slot=FALLBACK).verdict == "blocked"


def test_a_postponed_game_leaves_both_denominators() -> None:
    """GSW@MIN Final with NULL scores (2026-01-24): its 10 predicted players and the game leave out."""
    sched = schedule(g0={"scored": False})
    actuals = rows({i: 10 for i in range(5)}, {i: 10 for i in range(1, 5)}, {i: 10 for i in range(1, 5)})
    result = verdict(actuals, sched)
    assert result.verdict == "pass", result.reason
    assert result.reason == (
        "actuals for 40/40 predicted players (100 %), 4/4 Final games (100 %); "
        "10 predicted players of postponed/unavailable games left out"
    )
    # counted as missing, the same night would wait: 4/5 games is 80 %
    assert verdict(actuals).verdict == "blocked"


def test_a_game_marked_unavailable_leaves_the_denominators_too() -> None:
    actuals = rows({i: 10 for i in range(5)}, {i: 10 for i in range(4)}, {i: 10 for i in range(4)})
    assert verdict(actuals, unavailable=[GAMES[4][0]]).verdict == "pass"


def test_games_not_final_are_not_in_the_games_denominator_and_nothing_final_blocks() -> None:
    sched = schedule(g4={"status": "2"})
    actuals = rows({i: 10 for i in range(5)}, {i: 10 for i in range(4)}, {i: 10 for i in range(4)})
    assert "4/4 Final games" in verdict(actuals, sched).reason
    none = verdict(full(), schedule(0))
    assert none.verdict == "blocked" and none.reason == "actuals: no Final games to measure yet"


def test_actuals_ids_in_another_format_are_canonicalised() -> None:
    """L15: player_game_summary with NBA ids, predictions with date-teams ids, still one game."""
    actuals = ActualsRows({c: 10 for c in CANON}, {c: 10 for c in CANON}, {nba: 10 for nba, _, _ in GAMES})
    assert verdict(actuals).verdict == "pass"


def test_pct_text() -> None:
    assert [pct(100.0), pct(88.333), pct(0.0), pct(80.04)] == ["100", "88.3", "0", "80"]


def test_the_redo_slot_skips_not_done_and_all_final() -> None:
    data = ConditionInputs(schedule(), (), {1: 50, 2: 20}, actuals={INDEX: full()})
    kinds = [r.kind for r in conditions_verdict(SENSOR, REDO, D.games, data)]
    assert kinds == ["rows_present", "actuals_coverage"]


# ------------------------------------------------------------------------------ the SQL
def table(ref: str) -> str:
    return f"`p.{ref}`"


def test_actuals_are_three_branches_of_the_sensors_one_query() -> None:
    parts = conditions_sql(SENSOR, D.games, table).split("\nUNION ALL\n")
    kinds = [re.match(r"\(SELECT (?:DISTINCT )?'([^']+)'", p).group(1) for p in parts]  # type: ignore[union-attr]
    assert kinds == ["schedule", "later", "unavailable", "count:1", "count:2",
                     f"actuals:{INDEX}:predicted", f"actuals:{INDEX}:matched", f"actuals:{INDEX}:games"]
    predicted, matched, games = parts[-3:]
    where = "WHERE game_date = @game_date AND (is_active IS TRUE)"
    assert f"FROM `p.nba_predictions.player_prop_predictions` {where}" in predicted
    assert "COUNT(DISTINCT player_lookup) AS n" in predicted and predicted.endswith("GROUP BY game_id)")
    assert ("player_lookup IN (SELECT player_lookup FROM `p.nba_analytics.player_game_summary` "
            "WHERE game_date = @game_date AND (points IS NOT NULL))") in matched
    assert "FROM `p.nba_analytics.player_game_summary` WHERE game_date = @game_date AND (points IS NOT NULL)" in games
    assert conditions_params(SENSOR) == []  # unary predicates: no values


def test_predicate_values_are_renamed_parameters() -> None:
    cond = SensorCondition.model_validate(
        {"kind": "actuals_coverage", "table": {"table": "d.p", "date_column": "pd"},
         "actuals": {"table": "d.a", "date_column": "ad"},
         "where": [{"column": "system_id", "op": "eq", "value": "catboost"}],
         "actuals_where": [{"column": "minutes", "op": "gt", "value": 0}]}
    )
    branches, params = actuals_branches(7, cond, table)
    assert params == [("c7p_v0", "STRING", "catboost"), ("c7a_v0", "INT64", 0)]
    assert "WHERE pd = @game_date AND (system_id = @c7p_v0)" in branches[0]
    assert "WHERE ad = @game_date AND (minutes > @c7a_v0)" in branches[2]
    assert "catboost" not in " ".join(branches)


def test_the_coverage_counts_are_one_query_over_a_window() -> None:
    assert SENSOR.regrade is not None
    sql, params = counts_sql(SENSOR.regrade, table)
    assert sql.count("UNION ALL") == 1 and sql.count("BETWEEN @start AND @game_date") == 2
    assert [p[0] for p in params] == ["ga_v2", "ga_d4", "ga_v4", "gd_d0", "gd_v0"]
    assert "NO_PROP_LINE" not in sql and "20.0" not in sql


# ------------------------------------------------------------------------------ regrade measure and gaps
def test_the_regrade_measure_is_graded_over_gradable() -> None:
    assert DayCounts(50, 20).pct == 40.0
    assert DayCounts(0, 0).pct == 100.0  # nothing to grade (grading_coverage_monitor/main.py:168-172)
    assert DayCounts(0, 3).pct == 0.0


def test_grading_gaps_are_dates_with_final_games_and_gradable_rows_but_nothing_graded() -> None:
    d = [date(2026, 1, n) for n in range(10, 20)]
    counts = {d[0]: DayCounts(50, 0), d[1]: DayCounts(50, 10), d[2]: DayCounts(0, 0), d[3]: DayCounts(40, 0),
              d[5]: DayCounts(30, 0)}
    final = {d[0]: 5, d[1]: 5, d[2]: 3, d[3]: 4, d[4]: 2, d[5]: 0}
    assert grading_gaps(counts, final, d[0], d[9]) == [d[0], d[3]]
    assert grading_gaps(counts, final, d[1], d[9]) == [d[3]]  # the window
