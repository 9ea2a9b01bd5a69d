"""The gap pass's grid and the backfill queue's rate cap arithmetic (pure: no emulator)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared.clock import FixedClock, today_et
from shared.heal.backfill import entry_id, hour_key, slot_ids
from shared.heal.gaps import GapScan, find_gaps, gap_window, triggered_now
from shared.pipeline.definition import load_definition

DEFINITION = load_definition()
DAY = date(2026, 1, 20)
TRANSITIONS = [t.name for t in DEFINITION.transitions]
ALL_TABLES = [o.table for o in DEFINITION.heal.gaps.outputs]


def triggered(generation: int = 1) -> dict[str, object]:
    return {"generation": generation, "status": "triggered", "triggered": {str(generation): {"trigger_id": "x"}}}


def full_rows(day: date = DAY) -> dict[tuple[str, date], int]:
    return {(t, day): 10 for t in ALL_TABLES}


def test_defaults_are_the_replaced_systems() -> None:
    gaps = DEFINITION.heal.gaps
    assert gaps.lookback_days == 14  # scraper_gap_backfiller/main.py:64
    assert gaps.max_attempts == 3  # gap_detector/main.py:41
    assert {o.phase for o in gaps.outputs} == {2, 3, 4, 5}


def test_a_date_fully_triggered_with_rows_has_no_gap() -> None:
    docs = {(t, DAY): triggered() for t in TRANSITIONS}
    assert find_gaps(DEFINITION, [DAY], docs, full_rows()) == []


def test_no_trigger_and_no_rows_are_gaps_per_phase() -> None:
    docs = {(t, DAY): triggered() for t in TRANSITIONS}
    docs[("phase3_to_phase4", DAY)] = {"generation": 2, "status": "waiting", "triggered": {"1": {"trigger_id": "old"}}}
    rows = full_rows()
    rows[("nba_analytics.player_game_summary", DAY)] = 0
    rows.pop(("nba_raw.nbac_gamebook_player_stats", DAY))
    gaps = {g.phase: g for g in find_gaps(DEFINITION, [DAY], docs, rows)}
    assert set(gaps) == {2, 3, 4}
    assert gaps[2].target is None and gaps[2].kinds == ("no_rows",)  # no transition starts phase 2
    assert gaps[3].target == "phase2_to_phase3" and gaps[3].kinds == ("no_rows",)
    assert "player_game_summary" in gaps[3].detail
    assert gaps[4].target == "phase3_to_phase4" and gaps[4].kinds == ("no_trigger",) and gaps[4].generation == 2
    # the queue takes the earliest backfillable gap of the date: phase 3's
    scan = GapScan(DAY, DAY, False, {DAY: 7}, list(gaps.values()))
    assert scan.to_queue() == {DAY: gaps[3]}


def test_rows_unknown_gives_trigger_gaps_only() -> None:
    docs = {(t, DAY): triggered() for t in TRANSITIONS}
    assert find_gaps(DEFINITION, [DAY], docs, None) == []
    docs.pop(("phase5_to_phase6", DAY))
    (gap,) = find_gaps(DEFINITION, [DAY], docs, None)
    assert (gap.phase, gap.target, gap.kinds, gap.generation) == (6, "phase5_to_phase6", ("no_trigger",), 1)


def test_a_transition_with_modes_is_triggered_by_its_generations_mode_slot() -> None:
    assert triggered_now({"generation": 3, "triggered": {"3-overnight": {"at": "x"}}}) == (True, 3)
    assert triggered_now({"generation": 3, "triggered": {"2-overnight": {"at": "x"}}}) == (False, 3)
    assert triggered_now(None) == (False, 1)


def test_window_lookback_and_season() -> None:
    clock = FixedClock(datetime(2026, 1, 25, 14, 0, tzinfo=UTC))
    today = today_et(clock)
    assert gap_window(DEFINITION, today, False) == (today - timedelta(days=14), today - timedelta(days=2))
    start, end = gap_window(DEFINITION, today, True)
    assert start == date(2025, 10, 21) and end == today - timedelta(days=2)  # the 2025-26 opener


def test_rate_cap_slots_are_per_utc_hour_and_n_of_them() -> None:
    at = datetime(2026, 1, 25, 9, 59, 59, tzinfo=UTC)
    assert hour_key(at) == "20260125T09"
    assert slot_ids(at, 4) == [f"20260125T09__{n}" for n in range(4)]
    assert slot_ids(at + timedelta(seconds=1), 2) == ["20260125T10__0", "20260125T10__1"]
    # the hour is UTC whatever the zone of the instant (DST nights have no hour twice)
    from zoneinfo import ZoneInfo

    assert hour_key(at.astimezone(ZoneInfo("America/New_York"))) == "20260125T09"


def test_entry_ids_sort_oldest_date_first() -> None:
    ids = [entry_id("phase5_to_phase6", date(2026, 1, 3), 1), entry_id("phase2_to_phase3", date(2025, 12, 30), 2)]
    assert sorted(ids)[0].startswith("2025-12-30__phase2_to_phase3__g2")
