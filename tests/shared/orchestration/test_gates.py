"""The pure game-coverage gate and its circuit breaker: ``coverage_verdict``.

Schedules are built from ``ScheduleEntry`` rows; boxscore sources report game ids in
the formats seen upstream (10-digit NBA ids, 8-digit ids that lost their leading zeros,
``YYYYMMDD_AWAY_HOME``). No BigQuery: the loader is not exercised here.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.game_ids import ScheduleEntry
from shared.orchestration.gate_queries import CoverageInputs
from shared.orchestration.gates import GateResult, coverage_verdict
from shared.pipeline.definition import GameCoverageGate, load_definition

D = load_definition()
GATE = D.gates["game_coverage"]
FINAL = D.games.final_status
NAME = "game_coverage"
SOURCES = tuple(s.name for s in D.games.boxscore_sources)  # chain order: bdl → espn → gamebook

GAME_DATE = date(2026, 1, 24)
UPDATED = datetime(2026, 1, 25, 9, 0, tzinfo=UTC)

# (10-digit NBA id, away, home) for the 2026-01-24 slate
GAMES = (
    ("0022500644", "GSW", "MIN"),
    ("0022500645", "LAL", "BOS"),
    ("0022500646", "NYK", "MIA"),
    ("0022500647", "DEN", "PHX"),
    ("0022500648", "CHI", "DAL"),
    ("0022500649", "SAC", "POR"),
)
CANON = tuple(f"20260124_{away}_{home}" for _, away, home in GAMES)


def nba10(i: int) -> str:
    return GAMES[i][0]


def nba8(i: int) -> str:
    return GAMES[i][0][2:]  # what a CSV / INT64 column leaves


def date_teams(i: int) -> str:
    return CANON[i]


FORMATS: dict[str, Callable[[int], str]] = {"nba10": nba10, "nba8": nba8, "date_teams": date_teams}


def entry(
    i: int, status: str | None = "3", *, day: date = GAME_DATE, updated: datetime | None = UPDATED
) -> ScheduleEntry:
    nba, away, home = GAMES[i]
    return ScheduleEntry(nba_game_id=nba, game_date=day, away=away, home=home, status=status, updated_at=updated)


def schedule(n: int, status: str = "3") -> tuple[ScheduleEntry, ...]:
    return tuple(entry(i, status) for i in range(n))


def verdict(
    sched: Sequence[ScheduleEntry],
    sources: dict[str, Sequence[str]],
    unavailable: Sequence[str] = (),
    gate: GameCoverageGate = GATE,
) -> GateResult:
    inputs = CoverageInputs(tuple(sched), {k: tuple(v) for k, v in sources.items()}, tuple(unavailable))
    return coverage_verdict(NAME, gate, D.games, inputs)


def bdl_only(ids: Sequence[str]) -> dict[str, Sequence[str]]:
    return {"bdl": ids, "espn": (), "gamebook": ()}


# ----------------------------------------------------------------------------- pass


def test_default_gate_and_sources() -> None:
    assert SOURCES == ("bdl", "espn", "gamebook")
    # the breaker as thresholds: more than 50 % missing blocks, any game missing is an alert
    assert GATE.kind == "game_coverage_pct" and GATE.uses_boxscore_chain
    assert GATE.thresholds() == {"block_below": 50.0, "alert_below": 100.0}
    assert FINAL == "3"  # nbac_schedule.game_status INT64, 3 = Final (nbac_schedule_tables.sql:16)


@pytest.mark.parametrize("fmt", sorted(FORMATS))
def test_all_games_covered_in_any_id_format_passes(fmt: str) -> None:
    ids = [FORMATS[fmt](i) for i in range(5)]
    result = verdict(schedule(5), bdl_only(ids))
    assert result.verdict == "pass"
    assert result.gate == NAME
    assert (result.games_total, result.games_covered, result.missing_games) == (5, 5, ())
    assert dict(result.covered_by) == {CANON[i]: "bdl" for i in range(5)}
    assert "5/5 Final games covered" in result.reason
    assert "fallback" not in result.reason


def test_l15_gate_joins_sources_across_id_formats() -> None:
    # every game twice in the schedule (L15), the sources each in another id format
    sched = [*schedule(5), *(entry(i, updated=UPDATED - timedelta(hours=1)) for i in range(5))]
    sources = {
        "bdl": [nba10(0), nba8(1)],  # 10-digit and 8-digit numeric ids
        "espn": [date_teams(2), " 0022500647 "],  # date-teams id, padded numeric id
        "gamebook": ["20260124_chi_dal"],  # lower-case tricodes
    }
    result = verdict(sched, sources)
    assert result.verdict == "pass", result.reason
    assert (result.games_total, result.games_covered) == (5, 5)
    assert dict(result.covered_by) == {
        CANON[0]: "bdl",
        CANON[1]: "bdl",
        CANON[2]: "espn",
        CANON[3]: "espn",
        CANON[4]: "gamebook",
    }


def test_l13_fallback_source_covers_a_game() -> None:
    sources = {"bdl": [nba10(i) for i in range(1, 5)], "espn": [nba8(0)], "gamebook": []}
    result = verdict(schedule(5), sources)
    assert result.verdict == "pass"
    assert result.covered_by[CANON[0]] == "espn"
    assert all(result.covered_by[CANON[i]] == "bdl" for i in range(1, 5))
    assert "fallback used: espn" in result.reason
    # without the fallback the game is missing
    without = verdict(schedule(5), {"bdl": [nba10(i) for i in range(1, 5)], "espn": [], "gamebook": []})
    assert without.verdict == "alert"
    assert without.missing_games == (CANON[0],)


@pytest.mark.parametrize(
    ("holders", "winner"),
    [
        (("bdl", "espn", "gamebook"), "bdl"),
        (("bdl", "gamebook"), "bdl"),
        (("espn", "gamebook"), "espn"),
        (("gamebook",), "gamebook"),
        (("espn",), "espn"),
    ],
)
def test_first_source_of_the_chain_that_has_the_game_covers_it(holders: tuple[str, ...], winner: str) -> None:
    formats = {"bdl": nba8, "espn": date_teams, "gamebook": nba10}
    sources: dict[str, list[str]] = {s: [] for s in SOURCES}
    for source in holders:
        sources[source].append(formats[source](0))
    result = verdict(schedule(1), sources)
    assert result.verdict == "pass"
    assert dict(result.covered_by) == {CANON[0]: winner}
    if winner != "bdl":
        assert f"fallback used: {winner}" in result.reason


# ----------------------------------------------------------------------------- breaker


def _oracle(total: int, missing: int) -> str:
    if missing == 0:
        return "pass"
    return "blocked" if missing / total > 0.5 else "alert"


@pytest.mark.parametrize(
    ("total", "missing"), [(t, m) for t in range(1, 7) for m in range(t + 1)], ids=lambda v: str(v)
)
def test_breaker_by_share_of_missing_games(total: int, missing: int) -> None:
    covered = [nba10(i) for i in range(missing, total)]
    result = verdict(schedule(total), bdl_only(covered))
    assert result.verdict == _oracle(total, missing)
    assert result.games_total == total
    assert result.games_covered == total - missing
    assert result.missing_games == tuple(sorted(CANON[:missing]))


@pytest.mark.parametrize(("total", "missing"), [(2, 1), (4, 2), (6, 3)])
def test_exactly_half_missing_is_partial_not_blocked(total: int, missing: int) -> None:
    result = verdict(schedule(total), bdl_only([nba10(i) for i in range(missing, total)]))
    assert result.verdict == "alert"
    assert "circuit breaker" not in result.reason
    assert f"{total - missing}/{total} Final games covered" in result.reason
    assert all(CANON[i] in result.reason for i in range(missing))  # names the missing games


def test_three_of_five_missing_trips_the_circuit_breaker() -> None:
    result = verdict(schedule(5), bdl_only([nba10(3), nba8(4)]))
    assert result.verdict == "blocked"
    assert "circuit breaker" in result.reason
    assert "3/5" in result.reason and "60%" in result.reason and "50%" in result.reason
    # the share with data issues is ABOVE the breaker's line (the coverage it compares is below it)
    assert "3/5 games (60%) have data issues (above the block line 50%: coverage 40.0% < 50%)" in result.reason
    assert "below the block line" not in result.reason
    assert result.missing_games == CANON[:3]
    assert all(g in result.reason for g in CANON[:3])
    assert dict(result.covered_by) == {CANON[3]: "bdl", CANON[4]: "bdl"}


def test_breaker_threshold_comes_from_the_gate_definition() -> None:
    strict = GameCoverageGate(kind="game_coverage_pct", block_below=75.0, alert_below=100.0)
    two_missing = bdl_only([nba10(i) for i in range(2, 5)])  # 2/5 = 40 %
    assert verdict(schedule(5), two_missing).verdict == "alert"
    assert verdict(schedule(5), two_missing, gate=strict).verdict == "blocked"


def test_nothing_reported_blocks() -> None:
    result = verdict(schedule(3), {s: [] for s in SOURCES})
    assert result.verdict == "blocked"
    assert result.games_covered == 0


# ----------------------------------------------------------------------------- unavailable games


def test_unavailable_games_are_excluded_from_the_denominator() -> None:
    covered = bdl_only([nba10(3), nba10(4)])  # 3 of 5 missing: blocked ...
    assert verdict(schedule(5), covered).verdict == "blocked"
    # ... one of the missing games permanently unavailable: 2 of 4 missing, exactly half → partial
    result = verdict(schedule(5), covered, unavailable=[nba8(0)])
    assert result.verdict == "alert"
    assert result.games_total == 4
    assert result.unavailable == (CANON[0],)
    assert result.missing_games == (CANON[1], CANON[2])
    assert "1 marked unavailable" in result.reason
    # every missing game unavailable: pass
    all_gone = verdict(schedule(5), covered, unavailable=[nba10(0), nba8(1), date_teams(2)])
    assert all_gone.verdict == "pass"
    assert all_gone.games_total == 2
    assert all_gone.unavailable == CANON[:3]


def test_unavailable_ids_that_are_not_final_games_are_ignored() -> None:
    sched = [*schedule(2), entry(2, "1")]
    unavailable = [nba10(2), "20260123_GSW_MIN", "0022500999", "not-an-id"]
    result = verdict(sched, bdl_only([nba10(0)]), unavailable=unavailable)
    assert result.unavailable == ()
    assert result.games_total == 2
    assert result.verdict == "alert"  # 1 of 2 missing


def test_all_final_games_unavailable_passes() -> None:
    result = verdict(schedule(2), bdl_only([]), unavailable=[nba10(0), nba8(1)])
    assert result.verdict == "pass"
    assert result.games_total == 0
    assert "no Final games" in result.reason and "2 marked unavailable" in result.reason


# ----------------------------------------------------------------------------- schedule handling


@pytest.mark.parametrize("status", ["1", "2", "Final", "Halftime", None])
def test_non_final_games_are_ignored(status: str | None) -> None:
    sched = [*schedule(3), entry(3, status), entry(4, status)]
    result = verdict(sched, bdl_only([nba10(i) for i in range(3)]))
    assert result.verdict == "pass"
    assert result.games_total == 3
    assert CANON[3] not in result.covered_by and CANON[4] not in result.covered_by


@pytest.mark.parametrize("text", ["Postponed", "postponed ", "Rescheduled to Jan 25", "Cancelled"])
def test_final_games_marked_postponed_by_status_text_are_not_expected(text: str) -> None:
    """The replaced system's operators mark a postponed game in game_status_text and leave it
    Final (bin/fixes/fix_postponed_game.py:183-200 at najicham/nba-stats-scraper@18f6ecfe)."""
    moved = ScheduleEntry(
        nba_game_id=GAMES[3][0], game_date=GAME_DATE, away=GAMES[3][1], home=GAMES[3][2], status="3", status_text=text
    )
    result = verdict([*schedule(3), moved], bdl_only([nba10(i) for i in range(3)]))
    assert result.verdict == "pass" and result.games_total == 3
    assert result.unavailable == (CANON[3],)
    kept = verdict([*schedule(3), entry(3)], bdl_only([nba10(i) for i in range(3)]))
    assert kept.verdict == "alert" and kept.missing_games == (CANON[3],)


def test_no_final_games_passes() -> None:
    assert verdict((), bdl_only([])).verdict == "pass"
    result = verdict(schedule(4, status="1"), bdl_only([]))
    assert result.verdict == "pass"
    assert result.games_total == 0
    assert "no Final games" in result.reason


def test_l15_duplicate_schedule_rows_are_collapsed() -> None:
    sched = [*schedule(3), *schedule(3), *schedule(3)]
    result = verdict(sched, bdl_only([nba10(0), nba10(1)]))
    assert result.games_total == 3  # not 9
    assert result.missing_games == (CANON[2],)
    assert result.verdict == "alert"


def test_l15_duplicate_rows_collapse_to_the_latest_status() -> None:
    older, newer = UPDATED - timedelta(hours=3), UPDATED
    # the latest row says Final: counted (and only once)
    became_final = [entry(0, "2", updated=older), entry(0, "3", updated=newer), entry(1)]
    result = verdict(became_final, bdl_only([nba10(1)]))
    assert result.games_total == 2 and result.missing_games == (CANON[0],)
    # the latest row is not Final (listed first): ignored
    postponed = [entry(0, "1", updated=newer), entry(0, "3", updated=older), entry(1)]
    result = verdict(postponed, bdl_only([nba10(1)]))
    assert result.games_total == 1 and result.verdict == "pass"


def test_ids_of_other_dates_or_malformed_ids_are_ignored() -> None:
    junk = [
        "20260123_GSW_MIN",  # the same teams on another date
        "20260125_LAL_BOS",
        "0022500999",  # a numeric id not in this schedule
        "22500998",
        "0012500644",  # preseason id, not the scheduled game
        "abc",
        "",
        "12345",
        "20260124_XXX_MIN",  # unknown team
        "20260124_GSW_GSW",
        "20260231_GSW_MIN",  # impossible date
    ]
    result = verdict(schedule(5), {"bdl": [*junk, nba10(3)], "espn": junk, "gamebook": [*junk, nba8(4)]})
    assert result.verdict == "blocked"
    assert result.missing_games == CANON[:3]
    assert dict(result.covered_by) == {CANON[3]: "bdl", CANON[4]: "gamebook"}
    assert verdict(schedule(5), {"bdl": junk}).games_covered == 0


def test_result_serialises_for_logs() -> None:
    result = verdict(schedule(3), {"bdl": [nba10(0)], "espn": [nba8(1)]}, unavailable=[nba10(2)])
    payload = json.loads(json.dumps(result.as_dict()))
    assert payload["verdict"] == "pass"
    assert payload["covered_by"] == {CANON[0]: "bdl", CANON[1]: "espn"}
    assert payload["unavailable"] == [CANON[2]]


# ----------------------------------------------------------------------------- property


@settings(max_examples=150, deadline=None)
@given(data=st.data(), n=st.integers(1, len(GAMES)))
def test_verdict_matches_the_breaker_oracle(data: st.DataObject, n: int) -> None:
    sources: dict[str, list[str]] = {s: [] for s in SOURCES}
    holders: dict[int, list[str]] = {}
    for i in range(n):
        holders[i] = data.draw(st.lists(st.sampled_from(SOURCES), unique=True), label=f"holders {i}")
        for source in holders[i]:
            fmt = data.draw(st.sampled_from(sorted(FORMATS)), label=f"format {i} {source}")
            sources[source].append(FORMATS[fmt](i))
    unavailable = data.draw(st.sets(st.integers(0, n - 1)), label="unavailable")
    for ids in sources.values():
        ids[:] = data.draw(st.permutations(ids), label="order")
    dup_rows = data.draw(st.lists(st.integers(0, n - 1)), label="duplicate rows")
    sched = [*schedule(n), *(entry(i) for i in dup_rows)]
    result = verdict(sched, sources, unavailable=[nba8(i) for i in unavailable])

    considered = [i for i in range(n) if i not in unavailable]
    missing = [i for i in considered if not holders[i]]
    expected = "pass" if not missing else _oracle(len(considered), len(missing))
    assert result.verdict == expected
    assert result.games_total == len(considered)
    assert result.missing_games == tuple(sorted(CANON[i] for i in missing))
    assert dict(result.covered_by) == {
        CANON[i]: next(s for s in SOURCES if s in holders[i]) for i in considered if holders[i]
    }
    assert ("circuit breaker" in result.reason) == (expected == "blocked")


def test_gate_sql_names_only_the_columns_the_definition_names() -> None:
    """[compat] Every schedule and boxscore column in the gate's query comes from [games]."""
    import tomllib

    from shared.orchestration.gate_queries import BigQueryGateQueries
    from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, parse_definition

    data = tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())
    data["games"].update(
        schedule_date_column="d_col",
        schedule_game_id_column="id_col",
        schedule_status_column="st_col",
        schedule_away_team_column="aw_col",
        schedule_home_team_column="hm_col",
        schedule_updated_column="up_col",
        schedule_status_text_column="tx_col",
        schedule_home_score_column="hs_col",
        schedule_away_score_column="as_col",
    )
    for i, source in enumerate(data["games"]["boxscore_sources"]):
        source.update(game_id_column=f"src{i}_id", date_column=f"src{i}_d")
    games = parse_definition(data).games
    sql = BigQueryGateQueries(lambda: None, "p", games).coverage_sql()  # type: ignore[arg-type,return-value]
    reads = sql.split("\nUNION ALL\n")
    schedule, later, unavailable, chain = reads  # the fallback chain: one branch, a read per source
    sources = chain.split(" UNION ALL ")
    assert schedule.startswith("(SELECT 'schedule'") and later.startswith("(SELECT 'later'")
    assert unavailable.startswith("(SELECT DISTINCT 'unavailable'")
    for branch in (schedule, later):  # the date's rows and the same ids on later dates
        for column in ("d_col", "id_col", "st_col", "aw_col", "hm_col", "up_col", "tx_col", "hs_col", "as_col"):
            assert column in branch, (column, branch)
        for default in (
            "game_date",
            "game_id",
            "game_status",
            "away_team_tricode",
            "processed_at",
            "home_team_score",
            "away_team_score",
        ):
            bare = branch.replace(" AS game_id", "").replace(" AS game_status", "").replace("@game_date", "@")
            assert f"{default} " not in bare, (default, branch)
    assert "d_col > @game_date AND d_col <= DATE_ADD(@game_date, INTERVAL" in later
    assert "IN (SELECT CAST(id_col AS STRING) FROM `p.nba_raw.nbac_schedule` WHERE d_col = @game_date)" in later
    assert len(sources) == len(games.boxscore_sources)
    for i, branch in enumerate(sources):
        assert f"src{i}_id" in branch and f"src{i}_d = @game_date" in branch
