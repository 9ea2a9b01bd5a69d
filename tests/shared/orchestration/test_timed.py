"""Sensors and once-per-slot timed triggers, the pure parts: date rules, conditions, SQL, definition,
messages.

Pure unit tests: no emulator and no BigQuery. ``TimedTriggerService.check`` gets ``None`` or a
fake of our own query adapter; ``TimedRuntime`` gets fake services and a fake quarantine. The
claim → publish → latch protocol on the emulators is ``test_timed_emulators.py``'s.
"""

from __future__ import annotations

import base64
import copy
import json
import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from shared.clock import FixedClock
from shared.contracts.messages import ScheduleTick, TimedTriggerMessage, TriggerTick, make_trigger_id
from shared.errors import TransientError
from shared.game_ids import ScheduleEntry
from shared.orchestration.gates import GateConfigError, GateResult
from shared.orchestration.timed import (
    ConditionInputs,
    TimedRuntime,
    TimedTriggerService,
    conditions_sql,
    conditions_verdict,
    date_for,
    overdue_at,
)
from shared.orchestration.transition import Outcome
from shared.pipeline.definition import (
    DEFAULT_DEFINITION_PATH,
    GamesSources,
    Schedule,
    Sensor,
    SensorCondition,
    TimedTrigger,
    TriggerSlot,
    load_definition,
)
from tests.support.definition_checks import exports_trigger, packaged_toml, parse, rejected

D = load_definition(DEFAULT_DEFINITION_PATH)  # the packaged definition, whatever $PIPELINE_DEFINITION says
NY = ZoneInfo("America/New_York")
GAME_DATE = date(2026, 1, 24)
UPDATED = datetime(2026, 1, 25, 9, 0, tzinfo=UTC)

# the packaged sensor's schedule and row-count conditions; its actuals_coverage condition (the grading
# safety net, issue 27) is tested in test_timed_actuals.py
PACKAGED_SENSOR = D.timed_trigger("grading_readiness")
SENSOR = PACKAGED_SENSOR.model_copy(
    update={"conditions": tuple(c for c in PACKAGED_SENSOR.conditions if c.kind != "actuals_coverage")}
)
# A once-per-slot trigger without conditions: what the packaged phase 6 export runs were before they
# became [[jobs]] (same names, crons and dates). TimedTriggerService still supports the mechanism.
EXPORTS = exports_trigger()
READINESS = SENSOR.slot("readiness")
FALLBACK = SENSOR.slot("run_0230")
PREDICTIONS = "nba_predictions.player_prop_predictions"
GRADED = "nba_predictions.prediction_accuracy"

# (10-digit NBA id, away, home) for the 2026-01-24 slate
GAMES = (
    ("0022500644", "GSW", "MIN"),
    ("0022500645", "LAL", "BOS"),
    ("0022500646", "NYK", "MIA"),
    ("0022500647", "DEN", "PHX"),
    ("0022500648", "CHI", "DAL"),
)
CANON = tuple(f"20260124_{away}_{home}" for _, away, home in GAMES)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def local(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=NY)


# ============================================================================ date_for


@pytest.mark.parametrize(
    ("now", "yesterday", "today", "game_night"),
    [
        # the noon edge, in local time (EST: UTC-5)
        (local(2026, 1, 25, 11, 59), date(2026, 1, 24), date(2026, 1, 25), date(2026, 1, 24)),
        (local(2026, 1, 25, 12, 0), date(2026, 1, 24), date(2026, 1, 25), date(2026, 1, 25)),
        (utc(2026, 1, 25, 16, 59, 59), date(2026, 1, 24), date(2026, 1, 25), date(2026, 1, 24)),  # 11:59:59 ET
        (utc(2026, 1, 25, 17, 0), date(2026, 1, 24), date(2026, 1, 25), date(2026, 1, 25)),  # 12:00 ET
        # across UTC midnight: 03:30 UTC is 22:30 ET the previous day
        (utc(2026, 1, 25, 3, 30), date(2026, 1, 23), date(2026, 1, 24), date(2026, 1, 24)),
        # 05:30 UTC is 00:30 ET: the night of the 24th, still graded as the 24th
        (utc(2026, 1, 25, 5, 30), date(2026, 1, 24), date(2026, 1, 25), date(2026, 1, 24)),
        # local midnight exactly
        (local(2026, 1, 25, 0, 0), date(2026, 1, 24), date(2026, 1, 25), date(2026, 1, 24)),
        (local(2026, 1, 24, 23, 59), date(2026, 1, 23), date(2026, 1, 24), date(2026, 1, 24)),
        # spring forward 2026-03-08 (02:00 EST → 03:00 EDT): noon is 16:00 UTC that day
        (utc(2026, 3, 8, 15, 59), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 7)),  # 11:59 EDT
        (utc(2026, 3, 8, 16, 0), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 8)),  # 12:00 EDT
        (utc(2026, 3, 8, 16, 30), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 8)),  # 11:30 at EST's offset
        (utc(2026, 3, 8, 7, 30), date(2026, 3, 7), date(2026, 3, 8), date(2026, 3, 7)),  # 03:30 EDT, after the gap
        (utc(2026, 3, 8, 4, 59), date(2026, 3, 6), date(2026, 3, 7), date(2026, 3, 7)),  # 23:59 EST on the 7th
        # fall back 2026-11-01 (02:00 EDT → 01:00 EST): noon is 17:00 UTC that day
        (utc(2026, 11, 1, 16, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 10, 31)),  # 11:30 EST
        (utc(2026, 11, 1, 16, 59), date(2026, 10, 31), date(2026, 11, 1), date(2026, 10, 31)),  # 11:59 EST
        (utc(2026, 11, 1, 17, 0), date(2026, 10, 31), date(2026, 11, 1), date(2026, 11, 1)),  # 12:00 EST
        (utc(2026, 11, 1, 5, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 10, 31)),  # 01:30 EDT
        (utc(2026, 11, 1, 6, 30), date(2026, 10, 31), date(2026, 11, 1), date(2026, 10, 31)),  # 01:30 EST (again)
        (utc(2026, 11, 1, 3, 59), date(2026, 10, 30), date(2026, 10, 31), date(2026, 10, 31)),  # 23:59 EDT the 31st
    ],
)
def test_date_rules_in_new_york(now: datetime, yesterday: date, today: date, game_night: date) -> None:
    assert date_for("yesterday", now, NY) == yesterday
    assert date_for("today", now, NY) == today
    assert date_for("game_night", now, NY) == game_night


def test_date_rules_follow_the_given_timezone_not_utc() -> None:
    now = utc(2026, 1, 25, 3, 30)  # 03:30 UTC, 19:30 the 24th in Los Angeles, 12:30 the 25th in Tokyo
    assert date_for("today", now, ZoneInfo("UTC")) == date(2026, 1, 25)
    assert date_for("today", now, ZoneInfo("America/Los_Angeles")) == date(2026, 1, 24)
    assert date_for("game_night", now, ZoneInfo("Asia/Tokyo")) == date(2026, 1, 25)
    assert date_for("game_night", now, ZoneInfo("UTC")) == date(2026, 1, 24)


@settings(max_examples=300, deadline=None)
@given(st.datetimes(min_value=datetime(2020, 1, 2), max_value=datetime(2035, 12, 30), timezones=st.just(UTC)))
def test_date_rules_are_consistent(now: datetime) -> None:
    today = date_for("today", now, NY)
    assert today == now.astimezone(NY).date()
    assert date_for("yesterday", now, NY) == today - timedelta(days=1)
    night = date_for("game_night", now, NY)
    assert night == (today if now.astimezone(NY).hour >= 12 else today - timedelta(days=1))


# ============================================================================ the service's dates and modes


class _Unused:
    """An adapter ``check``/``game_date``/``mode`` must not touch."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"unexpected use of .{name}")


def service(trigger: TimedTrigger = SENSOR, *, now: datetime = UPDATED, queries: Any = None) -> TimedTriggerService:
    unused = cast(Any, _Unused())
    return TimedTriggerService(
        definition=D,
        trigger=trigger,
        clock=FixedClock(now),
        state=unused,
        publisher=unused,
        queries=queries,
        log_writer=unused,
        quarantine=unused,
    )


@pytest.mark.parametrize(
    ("trigger", "slot", "now", "expected"),
    [
        (SENSOR, "readiness", local(2026, 1, 24, 22, 15), date(2026, 1, 24)),  # game_night, evening
        (SENSOR, "readiness", local(2026, 1, 25, 0, 30), date(2026, 1, 24)),  # game_night, after midnight
        (SENSOR, "run_0230", local(2026, 1, 25, 2, 30), date(2026, 1, 24)),
        (SENSOR, "run_1100", local(2026, 1, 25, 11, 0), date(2026, 1, 24)),
        (EXPORTS, "daily_results", local(2026, 1, 25, 5, 0), date(2026, 1, 24)),  # slot date: yesterday
        (EXPORTS, "tonight_picks", local(2026, 1, 25, 13, 0), date(2026, 1, 25)),  # slot date: today
        (EXPORTS, "clv_reexport", local(2026, 1, 25, 16, 30), date(2026, 1, 25)),
        (EXPORTS, "tonight_picks", utc(2026, 1, 26, 3, 0), date(2026, 1, 25)),  # 22:00 ET, UTC already the 26th
    ],
)
def test_service_game_date_uses_the_slot_rule_then_the_trigger_rule(
    trigger: TimedTrigger, slot: str, now: datetime, expected: date
) -> None:
    svc = service(trigger, now=now)
    assert svc.game_date(trigger.slot(slot)) == expected  # from the clock
    assert svc.game_date(trigger.slot(slot), now) == expected  # or an explicit instant


def test_service_game_date_prefers_an_explicit_instant_over_the_clock() -> None:
    svc = service(EXPORTS, now=local(2026, 1, 25, 13, 0))
    assert svc.game_date(EXPORTS.slot("tonight_picks"), local(2026, 2, 1, 13, 0)) == date(2026, 2, 1)


def test_a_sensor_latches_per_date_a_scheduled_trigger_per_slot() -> None:
    assert SENSOR.once_per == "date" and EXPORTS.once_per == "slot"
    sensor, exports = service(SENSOR), service(EXPORTS)
    assert {sensor.mode(s) for s in SENSOR.slots} == {None}
    assert [exports.mode(s) for s in EXPORTS.slots] == ["daily_results", "tonight_picks", "clv_reexport"]
    assert sensor.tz == NY


# ============================================================================ conditions_verdict


def entry(
    i: int,
    status: str | None = "3",
    *,
    text: str | None = None,
    updated: datetime | None = UPDATED,
) -> ScheduleEntry:
    nba, away, home = GAMES[i]
    return ScheduleEntry(
        nba_game_id=nba,
        game_date=GAME_DATE,
        away=away,
        home=home,
        status=status,
        updated_at=updated,
        status_text=text,
    )


def final_schedule(n: int = len(GAMES)) -> tuple[ScheduleEntry, ...]:
    return tuple(entry(i) for i in range(n))


def inputs(
    schedule: Sequence[ScheduleEntry] = final_schedule(),
    unavailable: Sequence[str] = (),
    predictions: int = 50,
    graded: int = 0,
) -> ConditionInputs:
    return ConditionInputs(tuple(schedule), tuple(unavailable), {1: predictions, 2: graded})


def verdicts(data: ConditionInputs, slot: TriggerSlot = READINESS, trigger: TimedTrigger = SENSOR) -> list[GateResult]:
    return conditions_verdict(trigger, slot, D.games, data)


def by_gate(results: list[GateResult]) -> dict[str, GateResult]:
    return {r.gate: r for r in results}


def all_final(data: ConditionInputs) -> GateResult:
    return by_gate(verdicts(data))["all_final"]


def test_packaged_sensor_all_ready_passes_every_condition() -> None:
    results = verdicts(inputs())
    assert [(r.gate, r.kind, r.verdict, r.reason) for r in results] == [
        ("all_final", "all_final", "pass", "5/5 games Final"),
        ("rows_present:predictions", "rows_present", "pass", "50 predictions"),
        ("not_done:graded rows", "not_done", "pass", "not done yet (no graded rows)"),
    ]
    final = results[0]
    assert final.value == 100.0
    assert dict(final.details) == {"scheduled": 5, "considered": 5, "final": 5, "excluded": 0}
    assert dict(results[1].details) == {"table": PREDICTIONS, "rows": 50}
    assert dict(results[2].details) == {"table": GRADED, "rows": 0}
    assert not any(r.advisory for r in results)


@pytest.mark.parametrize(("not_final", "status"), [(1, "2"), (2, "1"), (3, "2"), (1, None)])
def test_some_games_not_final_block_with_the_count(not_final: int, status: str | None) -> None:
    sched = [entry(i, status if i < not_final else "3") for i in range(5)]
    result = all_final(inputs(sched))
    final = 5 - not_final
    assert (result.verdict, result.reason) == ("blocked", f"{final}/5 games Final")
    assert result.value == pytest.approx(100.0 * final / 5)
    assert dict(result.details) == {"scheduled": 5, "considered": 5, "final": final, "excluded": 0}


def test_final_status_is_compared_as_trimmed_text() -> None:
    sched = [entry(0, " 3 "), entry(1, "3")]
    assert all_final(inputs(sched)).reason == "2/2 games Final"


def test_duplicate_rows_of_one_game_collapse_to_the_latest() -> None:
    older, newer = UPDATED - timedelta(hours=2), UPDATED
    # the latest row says in progress: not Final, whatever an older row said
    stale_final = [entry(0, "3", updated=older), entry(0, "2", updated=newer), *(entry(i) for i in range(1, 5))]
    result = all_final(inputs(stale_final))
    assert (result.verdict, result.reason) == ("blocked", "4/5 games Final")
    assert result.details["scheduled"] == 5  # one game, not two
    # the latest row says Final, whatever its position in the result
    now_final = [entry(0, "3", updated=newer), entry(0, "2", updated=older), *(entry(i) for i in range(1, 5))]
    assert all_final(inputs(now_final)).reason == "5/5 games Final"


def test_duplicate_rows_without_updated_at_are_older_and_ties_take_the_later_row() -> None:
    undated_final = [entry(0, "2", updated=UPDATED), entry(0, "3", updated=None)]
    assert all_final(inputs(undated_final)).reason == "0/1 games Final"
    tie = [entry(0, "2"), entry(0, "3")]  # same updated_at: the later row wins
    assert all_final(inputs(tie)).reason == "1/1 games Final"


@pytest.mark.parametrize(
    "marked",
    [
        GAMES[2][0],  # the numeric NBA id
        GAMES[2][0][2:],  # the numeric id without its leading 00 (INT64/CSV)
        CANON[2],  # the date-teams id
        CANON[2].lower(),  # tricodes are case-insensitive
    ],
)
def test_a_game_marked_unavailable_leaves_the_count(marked: str) -> None:
    sched = [entry(i, "2" if i == 2 else "3") for i in range(5)]
    result = all_final(inputs(sched, unavailable=[marked]))
    assert (result.verdict, result.reason) == ("pass", "4/4 games Final, 1 marked unavailable or postponed")
    assert dict(result.details) == {"scheduled": 5, "considered": 4, "final": 4, "excluded": 1}


def test_a_game_marked_unavailable_by_espn_team_codes_leaves_the_count() -> None:
    sched = [entry(i, "2" if i == 0 else "3") for i in range(5)]  # game 0 is GSW at MIN
    result = all_final(inputs(sched, unavailable=["20260124_GS_MIN"]))
    assert result.reason == "4/4 games Final, 1 marked unavailable or postponed"


def test_a_game_marked_twice_by_both_ids_counts_once() -> None:
    result = all_final(inputs(final_schedule(), unavailable=[GAMES[1][0], CANON[1], CANON[1]]))
    assert result.reason == "4/4 games Final, 1 marked unavailable or postponed"


@pytest.mark.parametrize(
    "marked",
    [
        "0022500999",  # a numeric id not in the schedule
        "20260123_GSW_MIN",  # another date
        "20260124_BOS_LAL",  # the teams swapped: not a scheduled game
        "not-a-game-id",
        "",
    ],
)
def test_unavailable_ids_matching_no_scheduled_game_are_ignored(marked: str) -> None:
    result = all_final(inputs(final_schedule(), unavailable=[marked]))
    assert (result.verdict, result.reason) == ("pass", "5/5 games Final")
    assert result.details["excluded"] == 0


@pytest.mark.parametrize("text", ["Postponed", "Cancelled", "Rescheduled", "postponed", " Postponed "])
@pytest.mark.parametrize("status", ["3", "1"])  # operators leave a postponed game Final, or it never started
def test_status_text_postponed_or_cancelled_excludes_the_game(text: str, status: str) -> None:
    sched = [entry(0, status, text=text), *(entry(i) for i in range(1, 5))]
    result = all_final(inputs(sched))
    assert (result.verdict, result.reason) == ("pass", "4/4 games Final, 1 marked unavailable or postponed")


@pytest.mark.parametrize("text", ["Final", "Final/OT", "Q4 2:31", "", None, "Not postponed"])
def test_other_status_texts_do_not_exclude(text: str | None) -> None:
    sched = [entry(0, "2", text=text), *(entry(i) for i in range(1, 5))]
    assert all_final(inputs(sched)).reason == "4/5 games Final"


def test_a_postponed_game_also_marked_unavailable_counts_once() -> None:
    sched = [entry(0, "3", text="Postponed"), *(entry(i, "2" if i == 1 else "3") for i in range(1, 5))]
    result = all_final(inputs(sched, unavailable=[CANON[0], GAMES[1][0]]))
    assert (result.verdict, result.reason) == ("pass", "3/3 games Final, 2 marked unavailable or postponed")
    assert result.details["excluded"] == 2


def test_no_games_blocks_with_nothing_to_wait_for() -> None:
    result = all_final(inputs(()))
    assert (result.verdict, result.reason, result.value) == ("blocked", "no games to wait for", None)
    assert dict(result.details) == {"scheduled": 0, "considered": 0, "final": 0, "excluded": 0}


def test_every_game_excluded_blocks_and_says_why() -> None:
    sched = [entry(0, "3", text="Postponed"), entry(1, "2")]
    result = all_final(inputs(sched, unavailable=[CANON[1]]))
    assert (result.verdict, result.reason) == ("blocked", "no games to wait for, 2 marked unavailable or postponed")


def test_no_predictions_yet_blocks() -> None:
    result = by_gate(verdicts(inputs(predictions=0)))["rows_present:predictions"]
    assert (result.verdict, result.reason, result.kind) == ("blocked", "no predictions yet", "rows_present")
    assert dict(result.details) == {"table": PREDICTIONS, "rows": 0}


@pytest.mark.parametrize("graded", [1, 12, 5000])
def test_already_graded_blocks(graded: int) -> None:
    result = by_gate(verdicts(inputs(graded=graded)))["not_done:graded rows"]
    assert (result.verdict, result.reason) == ("blocked", f"already done: {graded} graded rows")
    assert result.details["rows"] == graded


def test_a_missing_count_reads_as_zero_rows() -> None:
    results = by_gate(verdicts(ConditionInputs(final_schedule(), (), {})))
    assert results["rows_present:predictions"].verdict == "blocked"
    assert results["not_done:graded rows"].verdict == "pass"


def test_several_blocking_conditions_each_give_their_reason() -> None:
    results = verdicts(inputs([entry(0, "2")], predictions=0, graded=3))
    assert [(r.verdict, r.reason) for r in results] == [
        ("blocked", "0/1 games Final"),
        ("blocked", "no predictions yet"),
        ("blocked", "already done: 3 graded rows"),
    ]


def test_a_fallback_slot_skips_all_final_but_keeps_the_other_conditions() -> None:
    assert FALLBACK.fallback and not READINESS.fallback
    not_final = inputs([entry(0, "2")], predictions=10)
    results = verdicts(not_final, FALLBACK)
    assert [(r.gate, r.verdict) for r in results] == [
        ("rows_present:predictions", "pass"),
        ("not_done:graded rows", "pass"),
    ]
    assert [r.reason for r in verdicts(inputs(predictions=0, graded=2), FALLBACK)] == [
        "no predictions yet",
        "already done: 2 graded rows",
    ]
    # every fallback slot of the packaged sensor behaves alike
    for slot in SENSOR.slots:
        gates = [r.gate for r in verdicts(not_final, slot)]
        assert ("all_final" in gates) is (not slot.fallback)


def sensor(*conditions: SensorCondition, slots: Sequence[TriggerSlot] = (READINESS, FALLBACK)) -> Sensor:
    return Sensor(
        name="test_sensor",
        topic="test-sensor-trigger",
        tick_topic="test-sensor-tick",
        function="test_sensor",
        conditions=tuple(conditions),
        slots=tuple(slots),
    )


def test_a_count_condition_without_a_label_names_its_table_in_the_reason() -> None:
    trig = sensor(
        SensorCondition(kind="rows_present", table={"table": "d.present"}),
        SensorCondition(kind="not_done", table={"table": "d.done"}),
    )
    results = conditions_verdict(trig, READINESS, D.games, ConditionInputs((), (), {0: 0, 1: 4}))
    assert [r.reason for r in results] == ["no rows in d.present yet", "already done: 4 rows in d.done"]
    results = conditions_verdict(trig, READINESS, D.games, ConditionInputs((), (), {0: 7, 1: 0}))
    assert [r.reason for r in results] == ["7 rows in d.present", "not done yet (no rows in d.done)"]


def test_a_count_condition_without_a_label_is_named_by_its_table_ref() -> None:
    trig = sensor(SensorCondition(kind="rows_present", table={"table": "d.present"}))
    (result,) = conditions_verdict(trig, READINESS, D.games, ConditionInputs((), (), {0: 1}))
    assert result.gate == "rows_present:d.present"


def test_counts_are_keyed_by_the_condition_index() -> None:
    trig = sensor(
        SensorCondition(kind="rows_present", label="a", table={"table": "d.a"}),
        SensorCondition(kind="all_final"),
        SensorCondition(kind="rows_present", label="b", table={"table": "d.b"}),
    )
    results = by_gate(
        conditions_verdict(trig, READINESS, D.games, ConditionInputs(final_schedule(2), (), {0: 0, 2: 9}))
    )
    assert (results["rows_present:a"].verdict, results["rows_present:b"].reason) == ("blocked", "9 b")
    assert results["all_final"].reason == "2/2 games Final"


def test_the_verdict_uses_the_definition_final_status_and_excluded_texts() -> None:
    games = D.games.model_copy(update={"final_status": "Final", "excluded_status_texts": ("Suspended",)})
    sched = [entry(0, "final"), entry(1, "3"), entry(2, "Final", text="Suspended at half")]
    result = by_gate(conditions_verdict(SENSOR, READINESS, games, inputs(sched)))["all_final"]
    assert result.reason == "1/2 games Final, 1 marked unavailable or postponed"


# ============================================================================ check (no BigQuery)


def test_a_slot_whose_conditions_are_all_skipped_returns_nothing_without_bigquery() -> None:
    trig = sensor(
        SensorCondition(kind="all_final", fallback=False),
        SensorCondition(kind="rows_present", label="p", table={"table": "d.p"}, fallback=False),
    )
    svc = service(trig)  # queries=None: a query would raise TransientError
    assert svc.check(GAME_DATE, FALLBACK) == []


def test_a_trigger_without_conditions_returns_nothing_without_bigquery() -> None:
    svc = service(EXPORTS)
    for slot in EXPORTS.slots:
        assert svc.check(GAME_DATE, slot) == []


def test_conditions_to_check_without_a_client_are_transient() -> None:
    with pytest.raises(TransientError, match="no BigQuery client"):
        service(SENSOR).check(GAME_DATE, READINESS)
    with pytest.raises(TransientError):  # a fallback slot still checks predictions and grading
        service(SENSOR).check(GAME_DATE, FALLBACK)


class FakeQueries:
    """Our query adapter, as ``read_conditions`` uses it: ``games``, ``_table`` and ``rows``."""

    def __init__(self, rows: Sequence[Mapping[str, Any]] = (), error: BaseException | None = None) -> None:
        self.games = D.games
        self._rows = list(rows)
        self.error = error
        self.calls: list[tuple[str, date]] = []

    def _table(self, ref: str) -> str:
        return f"`p.{ref}`"

    def rows(self, sql: str, game_date: date) -> list[Mapping[str, Any]]:
        self.calls.append((sql, game_date))
        if self.error is not None:
            raise self.error
        return self._rows


def aliases(branch: str) -> list[str]:
    """The output columns of one UNION ALL branch, in order."""
    return re.findall(r"AS (\w+)(?:,| FROM)", branch)


COLUMNS = aliases(conditions_sql(SENSOR, D.games, lambda ref: f"`p.{ref}`").split("\nUNION ALL\n")[0])


def row(*values: Any) -> dict[str, Any]:
    """A result row keyed by the query's own column names (kind, game_id, away, home, status, text, updated,
    scored, on_date, note, n)."""
    assert len(values) == len(COLUMNS) == 11
    return dict(zip(COLUMNS, values, strict=True))


def schedule_row(
    i: int,
    status: Any = 3,
    text: str | None = None,
    updated: Any = UPDATED,
    scored: bool | None = True,
    on_date: date | None = None,
) -> dict[str, Any]:
    """A 'schedule' row of game ``i`` (with ``on_date``: a 'later' row, the same id on that date)."""
    nba, away, home = GAMES[i]
    kind = "schedule" if on_date is None else "later"
    return row(kind, nba, away, home, status, text, updated, scored, on_date, None, None)


def mark_row(game_id: str, kind: str | None = None, reason: str | None = None) -> dict[str, Any]:
    """An 'unavailable' row: an operator's mark (kind NULL: unavailable, 'postponed', 'restored')."""
    return row("unavailable", game_id, None, None, None, kind, None, None, None, reason, None)


def count_row(index: int, n: int | None) -> dict[str, Any]:
    return row(f"count:{index}", None, None, None, None, None, None, None, None, None, n)


def test_check_reads_one_query_and_judges_its_rows() -> None:
    rows = [
        *(schedule_row(i) for i in range(4)),
        schedule_row(4, status=2, updated=datetime(2026, 1, 25, 4, 0)),  # a naive timestamp is UTC
        schedule_row(4, status=3, updated=datetime(2026, 1, 25, 3, 0, tzinfo=UTC)),  # older: loses
        mark_row(CANON[3]),
        count_row(1, 40),
        count_row(2, None),  # COUNT(*) never NULLs, but NULL reads as 0
    ]
    queries = FakeQueries(rows)
    results = service(SENSOR, queries=queries).check(GAME_DATE, READINESS)
    assert [(r.gate, r.verdict, r.reason) for r in results] == [
        ("all_final", "blocked", "3/4 games Final, 1 marked unavailable or postponed"),
        ("rows_present:predictions", "pass", "40 predictions"),
        ("not_done:graded rows", "pass", "not done yet (no graded rows)"),
    ]
    assert results[0].postponed == ()  # an unavailable mark is not a postponement
    ((sql, day),) = queries.calls
    assert day == GAME_DATE
    assert sql == conditions_sql(SENSOR, D.games, queries._table)


def test_check_reads_later_rows_and_operator_marks_into_postponements() -> None:
    """The 'later' branch (the same id on a later date) and the marks' kinds reach ``_all_final`` (L29)."""
    rows = [
        schedule_row(0, scored=False),  # GSW@MIN: Final, NULL scores ...
        schedule_row(0, status=1, text="Scheduled", scored=False, on_date=date(2026, 1, 25)),  # ... and moved
        schedule_row(1, text="Final"),
        schedule_row(2, status=2, text="In Progress", scored=None),  # NYK@MIA: an operator says postponed
        mark_row(CANON[2], "postponed", "arena closed"),
        schedule_row(3, scored=False),  # DEN@PHX: NULL scores, but an operator restored it
        mark_row(CANON[3], "restored"),
        schedule_row(4),
        count_row(1, 40),
        count_row(2, 0),
    ]
    results = service(SENSOR, queries=FakeQueries(rows)).check(GAME_DATE, READINESS)
    final = results[0]
    assert (final.gate, final.verdict, final.reason) == (
        "all_final",
        "pass",
        "3/3 games Final, 2 marked unavailable or postponed",
    )
    assert [p["game_id"] for p in final.postponed] == [CANON[0], CANON[2]]
    gsw, nyk = final.postponed
    assert gsw["new_date"] == "2026-01-25" and not gsw["by_operator"]
    assert any("2026-01-25" in e for e in gsw["evidence"]) and any("NULL scores" in e for e in gsw["evidence"])
    assert nyk["by_operator"] and nyk["evidence"] == ["marked postponed by an operator: arena closed"]


class ApiError(Exception):
    def __init__(self, code: int, text: str = "boom") -> None:
        super().__init__(text)
        self.code = code
        self.errors: list[dict[str, str]] = []


@pytest.mark.parametrize("code", [400, 403, 404])
def test_a_query_error_a_retry_cannot_fix_is_a_configuration_error(code: int) -> None:
    svc = service(SENSOR, queries=FakeQueries(error=ApiError(code, "Not found: Table p:x.y\n\nJob ID: abc-123")))
    with pytest.raises(GateConfigError) as info:
        svc.check(GAME_DATE, READINESS)
    assert info.value.gate == "conditions"
    assert "grading_readiness" in str(info.value) and "Job ID" not in str(info.value)


@pytest.mark.parametrize("error", [ApiError(500), ApiError(429), RuntimeError("socket closed"), TimeoutError()])
def test_other_query_errors_are_transient_never_not_ready(error: BaseException) -> None:
    with pytest.raises(TransientError, match="could not be evaluated"):
        service(SENSOR, queries=FakeQueries(error=error)).check(GAME_DATE, READINESS)


def test_a_transient_error_passes_through_unchanged() -> None:
    error = TransientError("deadline")
    with pytest.raises(TransientError) as info:
        service(SENSOR, queries=FakeQueries(error=error)).check(GAME_DATE, READINESS)
    assert info.value is error


# ============================================================================ conditions_sql


def table(ref: str) -> str:
    return f"`p.{ref}`"


def branches(sql: str) -> list[str]:
    return sql.split("\nUNION ALL\n")


def found(pattern: str, text: str) -> str:
    match = re.search(pattern, text)
    assert match is not None, f"{pattern!r} not in {text!r}"
    return match.group(1)


def kind_of(branch: str) -> str:
    """The ``kind`` literal a branch selects ('schedule', 'unavailable', 'count:<index>')."""
    return found(r"^\(SELECT (?:DISTINCT )?'([^']+)' AS kind", branch)


def trigger_from(data: Mapping[str, Any], name: str = "grading_readiness") -> tuple[TimedTrigger, GamesSources]:
    definition = parse(data)
    return definition.timed_trigger(name), definition.games


def test_packaged_sensor_is_one_query_with_a_branch_per_source() -> None:
    sql = conditions_sql(SENSOR, D.games, table)
    parts = branches(sql)
    assert [kind_of(p) for p in parts] == [
        "schedule",
        "later",
        "unavailable",
        "count:1",
        "count:2",
    ]
    assert all(p.startswith("(") and p.endswith(")") for p in parts)
    assert "FROM `p.nba_raw.nbac_schedule` WHERE game_date = @game_date)" in parts[0]
    days = D.games.reschedule_lookahead_days
    assert (
        "FROM `p.nba_raw.nbac_schedule` WHERE game_date > @game_date "
        f"AND game_date <= DATE_ADD(@game_date, INTERVAL {days} DAY) "
        "AND CAST(game_id AS STRING) IN (SELECT CAST(game_id AS STRING) FROM `p.nba_raw.nbac_schedule` "
        "WHERE game_date = @game_date))"
    ) in parts[1]
    assert "FROM `p.nba_orchestration.game_unavailable` WHERE game_date = @game_date)" in parts[2]
    assert "CAST(kind AS STRING) AS status_text" in parts[2] and "CAST(reason AS STRING) AS note" in parts[2]
    assert f"FROM `p.{PREDICTIONS}` WHERE game_date = @game_date)" in parts[3]
    assert f"FROM `p.{GRADED}` WHERE game_date = @game_date)" in parts[4]
    for part in parts[:2]:  # the date's rows and the same ids on later dates read the same columns
        for column in (
            "game_id",
            "away_team_tricode",
            "home_team_tricode",
            "game_status",
            "game_status_text",
            "processed_at",
            "home_team_score",
            "away_team_score",
        ):
            assert re.search(rf"\b{column}\b", part), column
    assert "CAST(game_date AS DATE) AS on_date" in parts[1]
    # every branch has the same columns, in the same order (UNION ALL matches by position)
    columns = aliases(parts[0])
    assert columns == [
        "kind",
        "game_id",
        "away",
        "home",
        "game_status",
        "status_text",
        "updated_at",
        "scored",
        "on_date",
        "note",
        "n",
    ]
    assert all(aliases(p) == columns for p in parts)


def test_no_value_reaches_the_sql_text() -> None:
    sql = conditions_sql(SENSOR, D.games, table)
    for value in ("Postponed", "Cancelled", "Rescheduled", "2026", "predictions'", "graded rows"):
        assert value not in sql, value
    assert not re.search(r"=\s*'?3'?\b", sql)  # the final status is judged in Python, not in SQL
    assert sql.count("@game_date") == 4 + 3  # + the 'later' branch: two bounds and the date's own ids
    assert set(re.findall(r"\b\d+\b", sql)) == {"1", "2", str(D.games.reschedule_lookahead_days)}  # count:i, window
    assert "@" not in sql.replace("@game_date", "")


def test_all_final_listed_twice_reads_the_schedule_once() -> None:
    data = packaged_toml()
    conds = data["sensors"][0]["conditions"]
    conds[:] = [c for c in conds if c["kind"] != "actuals_coverage"]  # its branches: test_timed_actuals.py
    conds.append({"kind": "all_final", "fallback": False})
    trig, games = trigger_from(data)
    parts = branches(conditions_sql(trig, games, table))
    kinds = [kind_of(p) for p in parts]
    assert kinds == ["schedule", "later", "unavailable", "count:1", "count:2"]
    # both all_final conditions are judged, on the one read
    results = conditions_verdict(trig, READINESS, games, inputs())
    assert [r.gate for r in results] == ["all_final", "rows_present:predictions", "not_done:graded rows", "all_final"]


def test_each_branch_filters_on_its_own_date_column() -> None:
    data = packaged_toml()
    data["games"]["schedule_date_column"] = "sched_day"
    data["sensors"][0]["conditions"][1]["table"]["date_column"] = "prediction_date"
    data["sensors"][0]["conditions"][2]["table"]["date_column"] = "graded_on"
    del data["sensors"][0]["conditions"][3:]  # actuals_coverage's date columns: test_timed_actuals.py
    trig, games = trigger_from(data)
    parts = branches(conditions_sql(trig, games, table))
    wheres = [found(r"WHERE (\w+) = @game_date\)+$", p) for p in parts]
    # the package's own table: game_date; 'later': the inner read of the date's own ids
    assert wheres == ["sched_day", "sched_day", "game_date", "prediction_date", "graded_on"]
    later = parts[1]
    assert later.startswith("(SELECT 'later'")
    assert "WHERE sched_day > @game_date AND sched_day <= DATE_ADD(@game_date, INTERVAL 14 DAY) AND" in later
    assert "CAST(sched_day AS DATE) AS on_date" in later


def test_renamed_games_columns_change_the_sql() -> None:
    data = packaged_toml()
    g = data["games"]
    g.update(
        schedule_table="raw2.schedule_v2",
        schedule_game_id_column="gid",
        schedule_status_column="state",
        schedule_away_team_column="visitor",
        schedule_home_team_column="host",
        schedule_updated_column="loaded_at",
        schedule_status_text_column="state_text",
        schedule_home_score_column="host_pts",
        schedule_away_score_column="visitor_pts",
        unavailable_table="ops.no_games",
    )
    trig, games = trigger_from(data)
    schedule, later, unavailable = branches(conditions_sql(trig, games, table))[:3]
    for branch in (schedule, later):
        for column in ("gid", "state", "visitor", "host", "loaded_at", "state_text"):
            assert re.search(rf"CAST\({column} AS", branch), column
        assert "(host_pts IS NOT NULL AND visitor_pts IS NOT NULL) AS scored" in branch
        assert "CAST(game_status AS" not in branch
    assert "FROM `p.raw2.schedule_v2` WHERE" in schedule
    assert later.count("FROM `p.raw2.schedule_v2` WHERE") == 2
    assert "FROM `p.ops.no_games` WHERE game_date = @game_date" in unavailable
    for old in (
        "nbac_schedule",
        "away_team_tricode",
        "home_team_tricode",
        "game_status_text",
        "processed_at",
        "home_team_score",
        "away_team_score",
        "game_unavailable",
    ):
        assert old not in schedule + later + unavailable, old


def test_without_updated_or_status_text_columns_the_sql_selects_nulls() -> None:
    games = D.games.model_copy(
        update={"schedule_updated_column": None, "schedule_status_text_column": None, "excluded_status_texts": ()}
    )
    schedule = branches(conditions_sql(SENSOR, games, table))[0]
    assert "NULL AS status_text" in schedule and "NULL AS updated_at" in schedule
    assert "processed_at" not in schedule and "game_status_text" not in schedule


def test_the_sql_quotes_tables_only_through_the_given_function() -> None:
    seen: list[str] = []

    def recording(ref: str) -> str:
        seen.append(ref)
        return f"<{ref}>"

    sql = conditions_sql(SENSOR, D.games, recording)
    assert seen == ["nba_raw.nbac_schedule", "nba_orchestration.game_unavailable", PREDICTIONS, GRADED]
    assert "`" not in sql


def test_a_sensor_without_all_final_reads_only_its_counts() -> None:
    trig = sensor(SensorCondition(kind="rows_present", label="p", table={"table": "d.p"}))
    (branch,) = branches(conditions_sql(trig, D.games, table))
    assert branch.startswith("(SELECT 'count:0' AS kind, ")
    assert branch.endswith("COUNT(*) AS n FROM `p.d.p` WHERE game_date = @game_date)")
    assert aliases(branch) == COLUMNS
    assert "nbac_schedule" not in branch and "game_unavailable" not in branch
    assert conditions_sql(sensor(), D.games, table) == ""


# ============================================================================ the definition


def test_packaged_timed_triggers_load() -> None:
    # the sensors only: the phase 6 export runs are [[jobs]] now (test_the_phase6_export_runs_are_jobs...)
    assert [t.name for t in D.timed_triggers()] == ["grading_readiness"]
    assert D.timed_triggers() == D.sensors and isinstance(SENSOR, Sensor)
    assert (SENSOR.topic, SENSOR.tick_topic, SENSOR.function) == (
        "nba-grading-trigger",
        "grading-readiness-tick",
        "grading_readiness",
    )
    assert (SENSOR.date, SENSOR.trigger_source, SENSOR.run_aggregation, SENSOR.overdue_after, SENSOR.once_per) == (
        "game_night",
        "readiness-monitor",
        True,
        "08:00",
        "date",
    )
    assert [(c.kind, c.fallback) for c in SENSOR.conditions] == [
        ("all_final", False),
        ("rows_present", True),
        ("not_done", True),
    ]
    assert [(s.name, s.fallback) for s in SENSOR.slots] == [
        ("readiness", False),
        ("run_0230", True),
        ("daily_0600", True),
        ("run_0630", True),
        ("run_1100", True),
    ]
    assert D.condition_tables() == ("nba_analytics.player_game_summary", PREDICTIONS, GRADED)
    for name in ("nope", "phase6_exports"):
        with pytest.raises(KeyError, match=f"no sensor or scheduled trigger '{name}'"):
            D.timed_trigger(name)
    with pytest.raises(KeyError, match="has no slot 'nope'"):
        SENSOR.slot("nope")


@pytest.mark.parametrize(
    ("job", "slot"),
    [
        ("phase6-daily-results", "daily_results"),
        ("phase6-tonight-picks", "tonight_picks"),
        ("phase6-clv-reexport", "clv_reexport"),
    ],
)
def test_the_phase6_export_runs_are_jobs_carrying_what_their_slots_carried(job: str, slot: str) -> None:
    """The former ``phase6_exports`` slots (``EXPORTS`` above) are Pub/Sub ``trigger`` jobs with the
    same cron, zone, topic, date rule, export types and ``update_latest``."""
    s, j = EXPORTS.slot(slot), D.job(job)
    assert j.http is None and j.pubsub is not None and j.dispatched
    assert (j.cron, j.timezone, j.pubsub.topic, j.pubsub.message, j.pubsub.body) == (
        s.cron,
        EXPORTS.timezone,
        EXPORTS.topic,
        "trigger",
        None,
    )
    assert (j.pubsub.date, j.pubsub.export_types, j.pubsub.update_latest) == (s.date, s.export_types, s.update_latest)


def test_schedule_entries_are_the_monitor_auto_retry_and_the_dispatcher_tick_only() -> None:
    entries = D.schedule_entries()
    assert set(entries) == {"phase_transition_monitor", "auto_retry", "schedule_dispatcher"}
    assert {k: v for k, v in entries.items() if k != "schedule_dispatcher"} == dict(D.schedules)
    assert [(e.job, e.payload) for e in D.schedules.values()] == [
        ("phase-transition-monitor", "MonitorTick"),
        ("auto-retry-processor-trigger", "RetryTick"),
    ]
    tick = entries["schedule_dispatcher"]
    assert tick == Schedule(
        cron="* * * * *",
        topic="schedule-dispatcher-tick",
        timezone="UTC",
        job="schedule-dispatcher-tick",
        function="schedule_dispatcher",
        payload="ScheduleTick",
    )
    assert ScheduleTick.model_validate(tick.body) == ScheduleTick()  # run whatever is due
    # no Cloud Scheduler job per sensor slot or [[jobs]] entry
    assert not {e.job for e in entries.values()} & {j.name for j in D.all_jobs()}
    assert all(e.payload != "TriggerTick" for e in entries.values())
    jobs = [e.job for e in entries.values()] + [j.name for j in D.all_jobs()]
    assert len(jobs) == len(set(jobs))


def test_every_sensor_slot_is_a_dispatched_job_sending_its_trigger_tick() -> None:
    jobs = {j.name: j for j in D.all_jobs()}
    slots = [(t, s) for t in D.sensors for s in t.slots]
    assert len(slots) == 5 and {s.job for _, s in slots} <= set(jobs)
    assert [j.name for j in D.all_jobs()] == [j.name for j in D.jobs] + [s.job for _, s in slots]
    for trig, slot in slots:
        job = jobs[slot.job]
        assert job.http is None and job.pubsub is not None and job.dispatched
        assert (job.cron, job.timezone, job.pubsub.topic, job.pubsub.message) == (
            slot.cron,
            trig.timezone,
            trig.tick_topic,
            "json",
        )
        assert (job.wave, job.window, job.source) == (slot.wave, slot.window, slot.source)
        tick = TriggerTick.model_validate(job.pubsub.body)  # what the dispatcher sends is a valid tick
        assert (tick.trigger, tick.slot, tick.game_date) == (trig.name, slot.name, None)
    readiness = jobs["grading-readiness-check"]  # the replaced grading-readiness-monitor
    assert (readiness.cron, readiness.wave) == ("*/15 22-23,0-2 * * *", "C")
    assert "grading-readiness-monitor" not in jobs


def test_function_names_list_each_timed_function_once() -> None:
    names = D.function_names()
    assert names.count("grading_readiness") == 1 and names.count("schedule_dispatcher") == 1
    assert "scheduled_triggers" not in names
    assert names[: len(D.transitions)] == tuple(t.name for t in D.transitions)
    assert len(names) == len(set(names))


def mutate(change: Callable[[dict[str, Any]], None]) -> dict[str, Any]:
    data = packaged_toml()
    change(data)
    return data


def add_sensor(d: dict[str, Any], **changes: Any) -> None:
    """A second sensor: a copy of the packaged one on its own name, function, tick topic and job ids,
    then ``changes``."""
    other = copy.deepcopy(d["sensors"][0])
    other.update(name="late_grading", function="late_grading", tick_topic="late-grading-tick")
    for slot in other["slots"]:
        slot["job"] = f"late-{slot['job']}"
    other.update(changes)
    d["sensors"].append(other)


def test_a_second_sensor_on_its_own_function_and_tick_topic_is_accepted() -> None:
    """The control of the rejections below: what they change is what is rejected."""
    definition = parse(mutate(add_sensor))
    assert [t.name for t in definition.timed_triggers()] == ["grading_readiness", "late_grading"]
    assert definition.function_names().count("late_grading") == 1
    job = definition.job("late-grading-readiness-check")
    assert job.pubsub is not None and job.pubsub.topic == "late-grading-tick"


def test_two_triggers_of_one_function_share_its_tick_topic() -> None:
    data = mutate(lambda d: add_sensor(d, function="grading_readiness", tick_topic="grading-readiness-tick"))
    definition = parse(data)
    assert definition.function_names().count("grading_readiness") == 1
    assert "late_grading" not in definition.function_names()
    assert [t.name for t in definition.timed_triggers() if t.function == "grading_readiness"] == [
        "grading_readiness",
        "late_grading",
    ]


def test_a_timed_trigger_with_another_timezone_schedules_in_it() -> None:
    data = packaged_toml()
    data["sensors"][0]["timezone"] = "Europe/Paris"
    definition = parse(data)
    for slot in SENSOR.slots:  # every slot's job fires on Paris's wall clock
        job = definition.job(slot.job)
        assert job.timezone == "Europe/Paris" and definition.job_zone(job) == ZoneInfo("Europe/Paris")
    assert D.job("grading-readiness-check").timezone == "America/New_York"
    assert overdue_at(definition.timed_trigger("grading_readiness"), GAME_DATE) == datetime(
        2026, 1, 25, 8, 0, tzinfo=ZoneInfo("Europe/Paris")
    )


def test_a_scheduled_triggers_section_is_rejected_not_ignored() -> None:
    """``[[scheduled_triggers]]`` is gone (its runs are ``[[jobs]]``): a definition still carrying one
    is rejected, so its runs cannot silently stop."""
    legacy = {
        "name": "phase6_exports",
        "topic": "nba-phase6-export-trigger",
        "tick_topic": "scheduled-trigger-tick",
        "function": "scheduled_triggers",
        "slots": [{"name": "daily_results", "cron": "0 5 * * *", "job": "phase6-daily-results-old"}],
    }
    rejected(mutate(lambda d: d.update(scheduled_triggers=[legacy])), "scheduled_triggers", "Extra inputs")


@pytest.mark.parametrize(
    "condition",
    [
        {"kind": "all_final", "table": {"table": "d.t"}},
        {"kind": "rows_present", "label": "x"},
        {"kind": "not_done", "label": "x"},
    ],
)
def test_a_condition_table_must_match_its_kind(condition: dict[str, Any]) -> None:
    data = mutate(lambda d: d["sensors"][0]["conditions"].append(condition))
    rejected(data, "sensors[0].conditions[4]", "`all_final` reads the [games] schedule")


@pytest.mark.parametrize(
    ("condition", "fragment"),
    [
        ({"kind": "always"}, "sensors[0].conditions[4].kind"),
        ({"kind": "rows_present", "table": {"table": "no_dataset"}}, "sensors[0].conditions[4].table.table"),
        ({"kind": "rows_present", "table": {"table": "d.t", "date_column": "bad column"}}, "date_column"),
        ({"kind": "rows_present", "table": {"table": "d.t"}, "extra": 1}, "sensors[0].conditions[4].extra"),
    ],
)
def test_a_malformed_condition_is_rejected(condition: dict[str, Any], fragment: str) -> None:
    rejected(mutate(lambda d: d["sensors"][0]["conditions"].append(condition)), fragment)


def test_duplicate_slot_names_are_rejected() -> None:
    def change(d: dict[str, Any]) -> None:
        d["sensors"][0]["slots"][1]["name"] = "readiness"

    rejected(mutate(change), "sensors[0]", "duplicate slot names")


@pytest.mark.parametrize(
    ("change", "job"),
    [
        # a slot's job is a [schedules] job
        (
            lambda d: d["sensors"][0]["slots"][1].update(job="auto-retry-processor-trigger"),
            "auto-retry-processor-trigger",
        ),
        # a slot's job is the dispatcher's own Cloud Scheduler job
        (lambda d: d["sensors"][0]["slots"][1].update(job="schedule-dispatcher-tick"), "schedule-dispatcher-tick"),
        # a slot's job is a [[jobs]] entry
        (lambda d: d["sensors"][0]["slots"][0].update(job="phase6-daily-results"), "phase6-daily-results"),
        # two slots of two sensors
        (
            lambda d: add_sensor(d, slots=[{"name": "late", "cron": "0 9 * * *", "job": "grading-readiness-check"}]),
            "grading-readiness-check",
        ),
        # two slots of one sensor
        (lambda d: d["sensors"][0]["slots"][2].update(job="grading-run-0230"), "grading-run-0230"),
    ],
    ids=["slot-vs-schedule", "slot-vs-dispatcher", "slot-vs-job", "across-sensors", "within-a-sensor"],
)
def test_duplicate_job_ids_are_rejected(change: Callable[[dict[str, Any]], None], job: str) -> None:
    rejected(mutate(change), "duplicate job names", job)


@pytest.mark.parametrize("name", ["phase2_to_phase3", "phase5_to_phase6"])
def test_a_timed_trigger_named_like_a_transition_is_rejected(name: str) -> None:
    rejected(mutate(lambda d: d["sensors"][0].update(name=name)), "names must differ", name)


def test_two_sensors_of_one_name_are_rejected() -> None:
    rejected(mutate(lambda d: add_sensor(d, name="grading_readiness")), "names must differ")


def test_two_triggers_of_one_function_with_different_tick_topics_are_rejected() -> None:
    data = mutate(lambda d: add_sensor(d, function="grading_readiness"))  # its own tick topic
    rejected(data, "needs the same tick_topic", "grading_readiness")


def test_two_functions_on_one_tick_topic_are_rejected() -> None:
    data = mutate(lambda d: add_sensor(d, tick_topic="grading-readiness-tick"))  # its own function
    rejected(data, "topics used twice", "grading-readiness-tick")


@pytest.mark.parametrize(
    "topic",
    [
        "phase-transition-monitor-trigger",  # [schedules] topics
        "auto-retry-trigger",
        "schedule-dispatcher-tick",  # the dispatcher's tick
    ],
)
def test_a_tick_topic_shared_with_a_schedule_is_rejected(topic: str) -> None:
    rejected(mutate(lambda d: d["sensors"][0].update(tick_topic=topic)), "topics used twice", topic)


def test_a_tick_topic_shared_with_a_phase_topic_is_rejected() -> None:
    topic = packaged_toml()["phases"][0]["completion_topic"]
    rejected(mutate(lambda d: d["sensors"][0].update(tick_topic=topic)), "topics used twice", topic)


@pytest.mark.parametrize("tz", ["Mars/Olympus", "EST5EDT/Nowhere", "America/New York"])
def test_an_unknown_timezone_is_rejected(tz: str) -> None:
    rejected(mutate(lambda d: d["sensors"][0].update(timezone=tz)), "unknown timezone", "grading_readiness")


@pytest.mark.parametrize("value", ["25:00", "24:00", "8:00", "08:60", "0800", "08:00:00", ""])
def test_a_bad_overdue_after_is_rejected(value: str) -> None:
    rejected(mutate(lambda d: d["sensors"][0].update(overdue_after=value)), "sensors[0].overdue_after")


@pytest.mark.parametrize("value", ["00:00", "23:59", "08:00"])
def test_a_good_overdue_after_is_accepted(value: str) -> None:
    definition = parse(mutate(lambda d: d["sensors"][0].update(overdue_after=value)))
    assert definition.timed_trigger("grading_readiness").overdue_after == value


@pytest.mark.parametrize("cron", ["0 6 * *", "0 6 * * * *", "", "0  6 * * *", "@daily"])
def test_a_bad_cron_is_rejected(cron: str) -> None:
    rejected(mutate(lambda d: d["sensors"][0]["slots"][0].update(cron=cron)), "sensors[0].slots[0].cron")


SLOT_CRONS_THAT_NEVER_PARSE = [
    ("61 * * * *", "61 is out of range 0-59"),
    ("0 6 30 2 *", "would never fire"),
    ("*/0 * * * *", "not a positive number"),
]


@pytest.mark.parametrize(("cron", "reason"), SLOT_CRONS_THAT_NEVER_PARSE)
def test_a_slot_cron_of_five_fields_that_does_not_parse_is_rejected(cron: str, reason: str) -> None:
    """Five fields pass the slot's pattern; the cron parser of the slot's job rejects the rest."""
    rejected(mutate(lambda d: d["sensors"][0]["slots"][0].update(cron=cron)), "invalid cron expression", cron, reason)


@pytest.mark.parametrize(("cron", "reason"), SLOT_CRONS_THAT_NEVER_PARSE)
def test_a_slot_cron_that_does_not_parse_is_rejected_naming_its_slot(cron: str, reason: str) -> None:
    text = rejected(mutate(lambda d: d["sensors"][0]["slots"][0].update(cron=cron)), cron, reason)
    assert "grading-readiness-check" in text or "sensors[0].slots[0]" in text, text


@pytest.mark.parametrize(
    ("field", "value"),
    [("job", "Grading_Job"), ("job", ""), ("name", "2nd"), ("date", "tomorrow"), ("fallback", "maybe")],
)
def test_a_bad_slot_field_is_rejected(field: str, value: str) -> None:
    rejected(mutate(lambda d: d["sensors"][0]["slots"][0].update({field: value})), f"sensors[0].slots[0].{field}")


def test_a_timed_trigger_needs_a_slot_and_forbids_unknown_keys() -> None:
    rejected(mutate(lambda d: d["sensors"][0].update(slots=[])), "sensors[0].slots")
    rejected(mutate(lambda d: d["sensors"][0].update(conditionz=[])), "sensors[0].conditionz")
    rejected(mutate(lambda d: d["sensors"][0]["slots"][0].update(timezone="UTC")), "sensors[0].slots[0].timezone")
    rejected(mutate(lambda d: d["sensors"][0].update(date="last_night")), "sensors[0].date")


# ============================================================================ messages


def timed_message(**overrides: Any) -> dict[str, Any]:
    data: dict[str, Any] = {
        "trigger_id": "grading_readiness:2026-01-24:g1",
        "name": "grading_readiness",
        "slot": "readiness",
        "mode": None,
        "game_date": "2026-01-24",
        "target_date": "2026-01-24",
        "generation": 1,
        "trigger_source": "readiness-monitor",
        "triggered_at": "2026-01-25T05:30:00Z",
        "reason": "5/5 games Final; 50 predictions",
    }
    data.update(overrides)
    return data


def test_a_timed_trigger_message_round_trips_with_its_attributes() -> None:
    message = TimedTriggerMessage.model_validate(timed_message(run_aggregation=True))
    assert TimedTriggerMessage.model_validate_json(message.to_json_bytes()) == message
    assert message.attributes() == {
        "trigger_id": "grading_readiness:2026-01-24:g1",
        "trigger": "grading_readiness",
        "slot": "readiness",
        "game_date": "2026-01-24",
        "generation": "1",
    }
    assert all(isinstance(v, str) for v in message.attributes().values())


def test_a_per_slot_message_carries_its_mode_in_the_trigger_id() -> None:
    trigger_id = make_trigger_id("phase6_exports", GAME_DATE, 2, "tonight_picks")
    assert trigger_id == "phase6_exports:2026-01-24:g2:tonight_picks"
    message = TimedTriggerMessage.model_validate(
        timed_message(
            trigger_id=trigger_id,
            name="phase6_exports",
            slot="tonight_picks",
            mode="tonight_picks",
            generation=2,
            export_types=["tonight"],
        )
    )
    assert message.attributes()["generation"] == "2"


@pytest.mark.parametrize(
    "overrides",
    [
        {"trigger_id": "grading_readiness:2026-01-24:g2"},  # wrong generation
        {"trigger_id": "grading_readiness:2026-01-23:g1"},  # wrong date
        {"trigger_id": "other:2026-01-24:g1"},  # wrong name
        {"trigger_id": "grading_readiness:2026-01-24:g1:readiness"},  # a mode the message has not
        {"mode": "readiness"},  # a mode the id has not
        {"generation": 2},
        {"game_date": "2026-01-25", "target_date": "2026-01-25"},
    ],
)
def test_the_trigger_id_must_match_name_date_generation_and_mode(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError, match="does not match"):
        TimedTriggerMessage.model_validate(timed_message(**overrides))


@pytest.mark.parametrize(
    "overrides",
    [
        {"game_date": "yesterday"},
        {"target_date": "today"},
        {"game_date": "2026-02-30"},
        {"generation": 0},
        {"triggered_at": "2026-01-25T05:30:00"},  # naive
        {"name": " "},
        {"slot": ""},
        {"surprise": 1},
    ],
)
def test_a_malformed_timed_trigger_message_is_rejected(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        TimedTriggerMessage.model_validate(timed_message(**overrides))


def test_a_timed_trigger_message_needs_its_target_date() -> None:
    data = timed_message()
    del data["target_date"]
    with pytest.raises(ValidationError, match="target_date"):
        TimedTriggerMessage.model_validate(data)


def test_a_trigger_tick_names_its_trigger_and_slot() -> None:
    tick = TriggerTick.model_validate({"trigger": "grading_readiness", "slot": "readiness", "game_date": "2026-01-24"})
    assert tick.game_date == GAME_DATE
    for body in ({}, {"trigger": "grading_readiness"}, {"slot": "readiness"}, {"trigger": "", "slot": "readiness"}):
        with pytest.raises(ValidationError, match="names its `trigger` and `slot`"):
            TriggerTick.model_validate(body)


@pytest.mark.parametrize("value", ["yesterday", "TODAY", "2026-02-30", "01/24/2026", "2026-01-24T00:00:00Z", 20260124])
def test_a_trigger_tick_game_date_must_be_explicit(value: Any) -> None:
    with pytest.raises(ValidationError, match="game_date"):
        TriggerTick.model_validate({"trigger": "grading_readiness", "slot": "readiness", "game_date": value})


def test_a_trigger_tick_forbids_unknown_keys() -> None:
    with pytest.raises(ValidationError, match="date"):
        TriggerTick.model_validate({"trigger": "grading_readiness", "slot": "readiness", "date": "2026-01-24"})


# ============================================================================ overdue_at


def test_overdue_at_is_overdue_after_on_the_next_day_in_the_trigger_timezone() -> None:
    at = overdue_at(SENSOR, GAME_DATE)
    assert at == datetime(2026, 1, 25, 8, 0, tzinfo=NY)
    assert at is not None and at.astimezone(UTC) == utc(2026, 1, 25, 13, 0)  # EST


@pytest.mark.parametrize(
    ("game_date", "utc_instant"),
    [
        (date(2026, 3, 7), utc(2026, 3, 8, 12, 0)),  # the next day is spring-forward day: 08:00 EDT
        (date(2026, 10, 31), utc(2026, 11, 1, 13, 0)),  # the next day is fall-back day: 08:00 EST
        (date(2026, 7, 4), utc(2026, 7, 5, 12, 0)),
        (date(2026, 12, 31), utc(2027, 1, 1, 13, 0)),  # across a year
    ],
)
def test_overdue_at_across_dst_and_year_ends(game_date: date, utc_instant: datetime) -> None:
    at = overdue_at(SENSOR, game_date)
    assert at is not None and at.astimezone(UTC) == utc_instant
    assert at.astimezone(NY).hour == 8


def test_overdue_at_is_none_without_overdue_after() -> None:
    assert EXPORTS.overdue_after is None
    assert overdue_at(EXPORTS, GAME_DATE) is None


def test_overdue_at_reads_minutes() -> None:
    trig = SENSOR.model_copy(update={"overdue_after": "23:45", "timezone": "America/Los_Angeles"})
    assert overdue_at(trig, GAME_DATE) == datetime(2026, 1, 25, 23, 45, tzinfo=ZoneInfo("America/Los_Angeles"))


# ============================================================================ TimedRuntime routing


class FakeQuarantine:
    def __init__(self) -> None:
        self.puts: list[dict[str, Any]] = []

    def put(self, message: Any, *, reason: str, transition: str, raw: object = None, kind: str = "malformed") -> str:
        self.puts.append({"message": message, "reason": reason, "transition": transition, "raw": raw, "kind": kind})
        return f"q{len(self.puts)}"


class FakeService:
    """What the runtime uses of a service: ``trigger``, ``game_date`` and ``evaluate``."""

    def __init__(self, trigger: TimedTrigger, day: date) -> None:
        self.trigger = trigger
        self.day = day
        self.dated: list[str] = []
        self.evaluated: list[tuple[date, str, str]] = []

    def game_date(self, slot: TriggerSlot, now: datetime | None = None) -> date:
        self.dated.append(slot.name)
        return self.day

    def evaluate(self, game_date: date, slot: TriggerSlot, *, owner: str = "tick") -> Outcome:
        self.evaluated.append((game_date, slot.name, owner))
        return Outcome("waiting", f"fake {slot.name}", game_date)


SLOT_DATE = date(2026, 1, 20)


def runtime(
    *triggers: TimedTrigger, function: str = "grading_readiness"
) -> tuple[TimedRuntime, dict[str, FakeService], FakeQuarantine]:
    fakes = {t.name: FakeService(t, SLOT_DATE) for t in (triggers or (SENSOR,))}
    quarantine = FakeQuarantine()
    services = cast(Mapping[str, TimedTriggerService], fakes)
    return TimedRuntime(services, cast(Any, quarantine), function), fakes, quarantine


def event(body: dict[str, Any] | bytes, message_id: str = "m-1") -> dict[str, Any]:
    data = body if isinstance(body, bytes) else json.dumps(body).encode()
    message = {"data": base64.b64encode(data).decode(), "messageId": message_id, "publishTime": "2026-01-25T05:30:00Z"}
    return {"message": message, "subscription": "projects/p/subscriptions/s"}


def test_a_tick_without_a_date_evaluates_the_slot_date() -> None:
    rt, fakes, quarantine = runtime()
    outcome = rt.handle_event(event({"trigger": "grading_readiness", "slot": "run_0630"}))
    assert (outcome.kind, outcome.game_date) == ("waiting", SLOT_DATE)
    assert fakes["grading_readiness"].dated == ["run_0630"]
    assert fakes["grading_readiness"].evaluated == [(SLOT_DATE, "run_0630", "run_0630")]
    assert quarantine.puts == []


def test_a_tick_with_an_explicit_date_evaluates_that_date() -> None:
    rt, fakes, quarantine = runtime()
    outcome = rt.handle_event(event({"trigger": "grading_readiness", "slot": "readiness", "game_date": "2026-01-02"}))
    assert outcome.game_date == date(2026, 1, 2)
    assert fakes["grading_readiness"].dated == []  # the slot's rule is not consulted
    assert fakes["grading_readiness"].evaluated == [(date(2026, 1, 2), "readiness", "readiness")]
    assert quarantine.puts == []


def test_ticks_route_to_the_named_trigger_of_a_shared_function() -> None:
    rt, fakes, _ = runtime(SENSOR, EXPORTS, function="shared_fn")
    rt.handle_event(event({"trigger": "phase6_exports", "slot": "tonight_picks"}))
    assert fakes["phase6_exports"].evaluated == [(SLOT_DATE, "tonight_picks", "tonight_picks")]
    assert fakes["grading_readiness"].evaluated == []


@pytest.mark.parametrize(
    ("body", "names"),
    [
        ({"trigger": "nope", "slot": "readiness"}, ("'nope'", "'readiness'")),
        ({"trigger": "grading_readiness", "slot": "run_9999"}, ("'grading_readiness'", "'run_9999'")),
        ({"trigger": "phase6_exports", "slot": "daily_results"}, ("'phase6_exports'", "'daily_results'")),  # not here
        ({"trigger": "grading_readiness", "slot": "daily_results"}, ("'daily_results'",)),  # another trigger's slot
    ],
)
def test_a_tick_for_an_unknown_trigger_or_slot_is_quarantined(body: dict[str, Any], names: tuple[str, ...]) -> None:
    rt, fakes, quarantine = runtime()
    outcome = rt.handle_event(event(body, message_id="m-42"))
    assert outcome.kind == "quarantined"
    (put,) = quarantine.puts
    assert put["transition"] == "grading_readiness" and put["raw"] is None
    assert put["message"].message_id == "m-42" and json.loads(put["message"].data) == body
    for name in (*names, "unknown trigger/slot", "on grading_readiness"):
        assert name in put["reason"] and name in outcome.detail
    assert all(f.evaluated == [] and f.dated == [] for f in fakes.values())


@pytest.mark.parametrize(
    "body",
    [
        {"trigger": "grading_readiness"},
        {},
        {"trigger": "grading_readiness", "slot": "readiness", "game_date": "yesterday"},
        {"trigger": "grading_readiness", "slot": "readiness", "extra": True},
        b"not json",
        b"",
    ],
)
def test_a_malformed_tick_is_quarantined_with_the_raw_event(body: dict[str, Any] | bytes) -> None:
    rt, fakes, quarantine = runtime()
    ev = event(body)
    outcome = rt.handle_event(ev)
    assert outcome.kind == "quarantined"
    (put,) = quarantine.puts
    assert (put["message"], put["raw"], put["transition"]) == (None, ev, "grading_readiness")
    assert put["reason"] == outcome.detail and put["reason"]
    assert fakes["grading_readiness"].evaluated == []


def test_an_event_that_is_not_a_pubsub_message_is_quarantined() -> None:
    rt, _, quarantine = runtime()
    outcome = rt.handle_event({"unexpected": "shape"})
    assert outcome.kind == "quarantined"
    assert quarantine.puts[0]["raw"] == {"unexpected": "shape"}
