"""Tests for shared.clock: the injected clock and the one definition of "today" (lesson L14)."""

from __future__ import annotations

import threading
from datetime import UTC, date, datetime, timedelta, timezone
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.clock import (
    PIPELINE_TZ,
    SIMULATED_CLOCK_ENV,
    Clock,
    FixedClock,
    SimulatedClock,
    SystemClock,
    clock_from_env,
    parse_explicit_date,
    real_time_scale,
    relation_to_today,
    resolve_game_date,
    today_et,
)
from shared.errors import InvalidDateError, PermanentError


def utc(text: str) -> datetime:
    """``"2026-01-25T02:00"`` → aware UTC datetime."""
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def clock_at(text: str) -> FixedClock:
    return FixedClock(utc(text))


# ----------------------------------------------------------------------------- clocks


def test_system_clock_is_aware_utc_and_current() -> None:
    before = datetime.now(UTC)
    now = SystemClock().now()
    after = datetime.now(UTC)
    assert now.utcoffset() == timedelta(0)
    assert before <= now <= after


def test_both_clocks_satisfy_the_protocol() -> None:
    assert isinstance(SystemClock(), Clock)
    assert isinstance(clock_at("2026-01-24T12:00"), Clock)


def test_fixed_clock_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        FixedClock(datetime(2026, 1, 24, 12, 0))


def test_fixed_clock_rejects_naive_set() -> None:
    clock = clock_at("2026-01-24T12:00")
    with pytest.raises(ValueError, match="timezone-aware"):
        clock.set(datetime(2026, 1, 25))
    assert clock.now() == utc("2026-01-24T12:00")


def test_fixed_clock_normalises_to_utc() -> None:
    start = datetime(2026, 1, 24, 21, 0, tzinfo=PIPELINE_TZ)
    clock = FixedClock(start)
    assert clock.now() == utc("2026-01-25T02:00")
    assert clock.now().tzinfo is UTC


def test_fixed_clock_does_not_move_by_itself() -> None:
    clock = clock_at("2026-01-24T12:00")
    assert clock.now() == clock.now() == utc("2026-01-24T12:00")


def test_fixed_clock_advance_and_set() -> None:
    clock = clock_at("2026-01-24T12:00")
    assert clock.advance(hours=2, minutes=30) == utc("2026-01-24T14:30")
    assert clock.advance(timedelta(days=1), seconds=-30) == utc("2026-01-25T14:29:30")
    assert clock.now() == utc("2026-01-25T14:29:30")
    clock.set(datetime(2026, 3, 1, tzinfo=timezone(timedelta(hours=-5))))
    assert clock.now() == utc("2026-03-01T05:00")


def test_fixed_clock_advance_is_thread_safe() -> None:
    clock = clock_at("2026-01-24T00:00")
    threads = [threading.Thread(target=lambda: [clock.advance(seconds=1) for _ in range(500)]) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert clock.now() == utc("2026-01-24T00:00") + timedelta(seconds=4000)


class _NaiveClock:
    def now(self) -> datetime:
        return datetime(2026, 1, 25, 2, 0)


def test_today_et_refuses_a_clock_returning_naive_time() -> None:
    with pytest.raises(ValueError, match="_NaiveClock"):
        today_et(_NaiveClock())


# ----------------------------------------------------------------------------- SimulatedClock


class FakeWall:
    """A wall clock (unix seconds) that only moves when told to."""

    def __init__(self, value: float = 1_769_300_000.0) -> None:
        self.value = value

    def __call__(self) -> float:
        return self.value


def test_simulated_clock_now_follows_the_wall_times_the_factor() -> None:
    wall = FakeWall()
    clock = SimulatedClock(datetime(2026, 1, 25, 0, 30, tzinfo=PIPELINE_TZ), 120, wall=wall)
    assert clock.anchor == wall.value  # anchored at construction
    assert clock.now() == utc("2026-01-25T05:30")
    assert clock.now().tzinfo is UTC
    wall.value += 5  # 5 real seconds = 10 simulated minutes
    assert clock.now() == utc("2026-01-25T05:40")
    wall.value += 0.25
    assert clock.now() == utc("2026-01-25T05:40:30")
    assert clock.factor == 120.0
    assert isinstance(clock, Clock)


def test_simulated_clock_with_an_explicit_anchor() -> None:
    wall = FakeWall(1000.0)
    clock = SimulatedClock(utc("2026-01-24T12:00"), 2, anchor=990.0, wall=wall)
    assert clock.now() == utc("2026-01-24T12:00:20")  # 10 real seconds since the anchor


def test_simulated_clock_factor_defaults_to_real_time() -> None:
    wall = FakeWall()
    clock = SimulatedClock(utc("2026-01-24T12:00"), wall=wall)
    wall.value += 42
    assert clock.factor == 1.0
    assert clock.now() == utc("2026-01-24T12:00:42")


@pytest.mark.parametrize("factor", [0, 0.5, 0.999, -1, float("nan"), float("inf"), True])
def test_simulated_clock_rejects_a_factor_below_one(factor: float) -> None:
    with pytest.raises(ValueError, match="factor must be a finite number >= 1"):
        SimulatedClock(utc("2026-01-24T12:00"), factor, wall=FakeWall())


def test_simulated_clock_rejects_a_naive_start() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        SimulatedClock(datetime(2026, 1, 24, 12, 0), 10, wall=FakeWall())


def test_simulated_clock_env_round_trip() -> None:
    wall = FakeWall(1_769_318_000.123456)
    clock = SimulatedClock(datetime(2026, 1, 25, 0, 30, tzinfo=PIPELINE_TZ), 120, wall=wall)
    text = clock.to_env()
    assert text.count("|") == 2
    restored = SimulatedClock.from_env(text)
    assert restored.start == clock.start
    assert restored.anchor == pytest.approx(clock.anchor, abs=1e-6)
    assert restored.factor == clock.factor
    assert restored.to_env() == text


def test_two_clocks_from_the_same_env_string_agree_on_now() -> None:
    # Two processes reading the same $PHASECHAIN_SIMULATED_CLOCK share one timeline.
    wall = FakeWall()
    text = SimulatedClock(utc("2026-01-25T05:30"), 120, wall=wall).to_env()
    wall.value += 30  # the env string was handed to other processes a while ago
    first, second = SimulatedClock.from_env(text), SimulatedClock.from_env(text)
    first._wall = second._wall = wall  # both read the same (fake) wall clock
    assert first.now() == second.now() == utc("2026-01-25T06:30")
    wall.value += 1
    assert first.now() == second.now() == utc("2026-01-25T06:32")


def test_clocks_from_the_same_env_string_agree_on_the_real_wall_clock() -> None:
    text = SimulatedClock(utc("2026-01-25T05:30"), 120).to_env()
    first = SimulatedClock.from_env(text)
    second = SimulatedClock.from_env(text)
    # Read in between each other: however slow the machine, the instants are ordered, and
    # both clocks compute from the same start and anchor, not from their own creation time.
    a1 = first.now()
    b = second.now()
    a2 = first.now()
    assert a1 <= b <= a2
    assert first.start == second.start and first.anchor == second.anchor


@pytest.mark.parametrize(
    "value",
    [
        "",
        "garbage",
        "2026-01-25T05:30:00+00:00|1769318000.0",  # a field missing
        "2026-01-25T05:30:00+00:00|1769318000.0|120|extra",
        "not-a-date|1769318000.0|120",
        "2026-01-25T05:30:00+00:00|soon|120",
        "2026-01-25T05:30:00+00:00|1769318000.0|fast",
        "2026-01-25T05:30:00|1769318000.0|120",  # naive start
        "2026-01-25T05:30:00+00:00|1769318000.0|0.5",  # factor below 1
    ],
)
def test_malformed_env_string_names_the_variable(value: str) -> None:
    with pytest.raises(ValueError, match=SIMULATED_CLOCK_ENV) as info:
        SimulatedClock.from_env(value)
    assert "PHASECHAIN_SIMULATED_CLOCK" in str(info.value)
    assert repr(value) in str(info.value)


def test_real_seconds_until() -> None:
    wall = FakeWall()
    clock = SimulatedClock(utc("2026-01-25T05:30"), 120, wall=wall)
    assert clock.real_seconds_until(utc("2026-01-25T05:40")) == pytest.approx(5.0)
    assert clock.real_seconds_until(utc("2026-01-25T05:30")) == 0.0
    assert clock.real_seconds_until(utc("2026-01-25T05:00")) == 0.0  # already passed: never negative
    wall.value += 2.5
    assert clock.real_seconds_until(utc("2026-01-25T05:40")) == pytest.approx(2.5)


def test_sleep_until_a_passed_instant_returns_true_at_once() -> None:
    clock = SimulatedClock(utc("2026-01-25T05:30"), 120, wall=FakeWall())
    assert clock.sleep_until(utc("2026-01-25T05:00"), threading.Event()) is True
    assert clock.sleep_until(utc("2026-01-25T05:30"), threading.Event()) is True


def test_sleep_until_returns_false_when_the_stop_event_is_set() -> None:
    clock = SimulatedClock(utc("2026-01-25T05:30"), 1, wall=FakeWall())  # the fake wall never gets there
    stop = threading.Event()
    stop.set()
    assert clock.sleep_until(utc("2026-01-26T05:30"), stop) is False
    later = threading.Event()
    timer = threading.Timer(0.05, later.set)
    timer.start()
    assert clock.sleep_until(utc("2026-01-26T05:30"), later) is False  # set while waiting
    timer.join()


def test_sleep_until_returns_true_once_the_wall_reaches_the_instant() -> None:
    wall = FakeWall()
    clock = SimulatedClock(utc("2026-01-25T05:30"), 120, wall=wall)
    result: list[bool] = []
    thread = threading.Thread(
        target=lambda: result.append(clock.sleep_until(utc("2026-01-25T05:40"), threading.Event())), daemon=True
    )
    thread.start()
    wall.value += 5
    thread.join(timeout=30)  # wakes within one polling chunk
    assert not thread.is_alive()
    assert result == [True]


def test_simulated_clock_repr() -> None:
    clock = SimulatedClock(utc("2026-01-25T05:30"), 120, wall=FakeWall())
    assert repr(clock) == "SimulatedClock(2026-01-25T05:30:00+00:00, factor=120)"


# ----------------------------------------------------------------------------- clock_from_env, real_time_scale


@pytest.mark.parametrize("environ", [{}, {SIMULATED_CLOCK_ENV: ""}, {SIMULATED_CLOCK_ENV: "   "}, {"OTHER": "x"}])
def test_clock_from_env_unset_is_the_system_clock(environ: dict[str, str]) -> None:
    assert isinstance(clock_from_env(environ), SystemClock)


def test_clock_from_env_reads_the_process_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(SIMULATED_CLOCK_ENV, raising=False)
    assert isinstance(clock_from_env(), SystemClock)
    text = SimulatedClock(utc("2026-01-25T05:30"), 120).to_env()
    monkeypatch.setenv(SIMULATED_CLOCK_ENV, text)
    clock = clock_from_env()
    assert isinstance(clock, SimulatedClock)
    assert clock.to_env() == text


def test_clock_from_env_set_is_a_simulated_clock() -> None:
    text = SimulatedClock(utc("2026-01-25T05:30"), 120, anchor=1_769_318_000.0, wall=FakeWall()).to_env()
    clock = clock_from_env({SIMULATED_CLOCK_ENV: f" {text}\n"})
    assert isinstance(clock, SimulatedClock)
    assert clock.start == utc("2026-01-25T05:30")
    assert clock.anchor == 1_769_318_000.0
    assert clock.factor == 120.0


def test_clock_from_env_malformed_raises() -> None:
    with pytest.raises(ValueError, match=SIMULATED_CLOCK_ENV):
        clock_from_env({SIMULATED_CLOCK_ENV: "tomorrow|now|fast"})


def test_real_time_scale() -> None:
    assert real_time_scale(SystemClock()) == 1.0
    assert real_time_scale(clock_at("2026-01-24T12:00")) == 1.0
    assert real_time_scale(SimulatedClock(utc("2026-01-25T05:30"), 120, wall=FakeWall())) == 120.0
    assert real_time_scale(SimulatedClock(utc("2026-01-25T05:30"), wall=FakeWall())) == 1.0


# ----------------------------------------------------------------------------- today_et


def test_pipeline_tz_is_new_york() -> None:
    assert PIPELINE_TZ == ZoneInfo("America/New_York")


def test_l14_today_is_computed_in_new_york_not_utc() -> None:
    # 02:00 UTC on the 25th is 21:00 EST on the 24th: "today" is the 24th.
    clock = clock_at("2026-01-25T02:00")
    assert clock.now().date() == date(2026, 1, 25)  # what the buggy code used
    assert today_et(clock) == date(2026, 1, 24)
    assert resolve_game_date("TODAY", clock) == date(2026, 1, 24)


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Winter (EST, UTC-5): midnight ET is 05:00Z, so both are still the previous day.
        ("2026-01-15T03:30", date(2026, 1, 14)),
        ("2026-01-15T04:30", date(2026, 1, 14)),
        ("2026-01-15T04:59", date(2026, 1, 14)),
        ("2026-01-15T05:00", date(2026, 1, 15)),
        # Summer (EDT, UTC-4): midnight ET is 04:00Z, so 04:30Z is already the same day.
        ("2026-07-15T03:30", date(2026, 7, 14)),
        ("2026-07-15T03:59", date(2026, 7, 14)),
        ("2026-07-15T04:00", date(2026, 7, 15)),
        ("2026-07-15T04:30", date(2026, 7, 15)),
    ],
)
def test_midnight_et_is_05z_in_winter_and_04z_in_summer(instant: str, expected: date) -> None:
    assert today_et(clock_at(instant)) == expected


@pytest.mark.parametrize(
    ("instant", "expected"),
    [
        # Spring forward 2026-03-08: 02:00 EST (07:00Z) → 03:00 EDT.
        ("2026-03-08T04:59", date(2026, 3, 7)),  # 23:59 EST on the 7th
        ("2026-03-08T05:00", date(2026, 3, 8)),  # 00:00 EST
        ("2026-03-08T06:59", date(2026, 3, 8)),  # 01:59 EST, just before the jump
        ("2026-03-08T07:00", date(2026, 3, 8)),  # 03:00 EDT, just after
        ("2026-03-09T03:59", date(2026, 3, 8)),  # 23:59 EDT: the 8th was 23 hours long
        ("2026-03-09T04:00", date(2026, 3, 9)),  # 00:00 EDT
        # Fall back 2026-11-01: 02:00 EDT (06:00Z) → 01:00 EST.
        ("2026-11-01T03:59", date(2026, 10, 31)),  # 23:59 EDT on the 31st
        ("2026-11-01T04:00", date(2026, 11, 1)),  # 00:00 EDT
        ("2026-11-01T05:30", date(2026, 11, 1)),  # first 01:30 (EDT)
        ("2026-11-01T06:30", date(2026, 11, 1)),  # second 01:30 (EST)
        ("2026-11-02T04:59", date(2026, 11, 1)),  # 23:59 EST: the 1st was 25 hours long
        ("2026-11-02T05:00", date(2026, 11, 2)),  # 00:00 EST
    ],
)
def test_today_et_across_dst_transitions(instant: str, expected: date) -> None:
    assert today_et(clock_at(instant)) == expected


def test_today_et_accepts_another_timezone() -> None:
    clock = clock_at("2026-01-25T02:00")
    assert today_et(clock, ZoneInfo("America/Los_Angeles")) == date(2026, 1, 24)
    assert today_et(clock, ZoneInfo("Europe/Paris")) == date(2026, 1, 25)


def test_today_et_follows_the_clock() -> None:
    clock = clock_at("2026-01-25T04:59")
    assert today_et(clock) == date(2026, 1, 24)
    clock.advance(minutes=1)
    assert today_et(clock) == date(2026, 1, 25)


# ----------------------------------------------------------------------------- resolve_game_date


@pytest.mark.parametrize(
    ("word", "expected"),
    [
        ("TODAY", date(2026, 1, 24)),
        ("today", date(2026, 1, 24)),
        ("Today", date(2026, 1, 24)),
        ("YESTERDAY", date(2026, 1, 23)),
        ("yesterday", date(2026, 1, 23)),
        ("TOMORROW", date(2026, 1, 25)),
        ("tomorrow", date(2026, 1, 25)),
        # Decision: surrounding whitespace is ignored by resolve_game_date.
        ("today ", date(2026, 1, 24)),
        ("  TOMORROW\n", date(2026, 1, 25)),
    ],
)
def test_relative_words_resolve_in_et(word: str, expected: date) -> None:
    # 02:00Z on the 25th: UTC would say today=25th, yesterday=24th.
    assert resolve_game_date(word, clock_at("2026-01-25T02:00")) == expected


def test_relative_words_across_month_and_year_ends() -> None:
    clock = clock_at("2027-01-01T04:00")  # 23:00 EST on 2026-12-31
    assert resolve_game_date("TODAY", clock) == date(2026, 12, 31)
    assert resolve_game_date("TOMORROW", clock) == date(2027, 1, 1)
    assert resolve_game_date("YESTERDAY", clock) == date(2026, 12, 30)


def test_explicit_date_ignores_the_clock() -> None:
    class ExplodingClock:
        def now(self) -> datetime:
            raise AssertionError("explicit dates must not read the clock")

    assert resolve_game_date("2026-01-24", ExplodingClock()) == date(2026, 1, 24)
    assert resolve_game_date(" 2026-01-24 ", ExplodingClock()) == date(2026, 1, 24)


def test_date_object_is_returned_as_is() -> None:
    assert resolve_game_date(date(2026, 2, 28), clock_at("2026-01-25T02:00")) == date(2026, 2, 28)


def test_datetime_object_is_rejected() -> None:
    with pytest.raises(InvalidDateError, match="datetime"):
        resolve_game_date(utc("2026-01-25T02:00"), clock_at("2026-01-25T02:00"))


@pytest.mark.parametrize(
    "value",
    [
        "2026-02-30",  # not a calendar date
        "2026-13-01",
        "2025-02-29",  # 2025 is not a leap year
        "0000-01-01",
        "20260124",  # YYYYMMDD
        "2026-1-5",  # no zero padding
        "2026/01/24",
        "24-01-2026",
        "2026-01-24T00:00",
        "",
        "   ",
        "NOW",
        "TODAYS",
        "to day",
        "2026-01-2\u0664",  # Arabic-Indic digit four
    ],
)
def test_invalid_inputs_raise_invalid_date_error(value: str) -> None:
    with pytest.raises(InvalidDateError) as info:
        resolve_game_date(value, clock_at("2026-01-25T02:00"))
    message = str(info.value)
    assert repr(value) in message
    assert "YYYY-MM-DD" in message
    assert "TODAY" in message


def test_invalid_date_error_is_permanent_and_a_value_error() -> None:
    with pytest.raises(InvalidDateError) as info:
        resolve_game_date("2026-02-30", clock_at("2026-01-25T02:00"))
    assert isinstance(info.value, PermanentError)
    assert isinstance(info.value, ValueError)
    assert info.value.context["value"] == "2026-02-30"


def test_non_string_input_is_rejected() -> None:
    with pytest.raises(InvalidDateError, match="int"):
        resolve_game_date(20260124, clock_at("2026-01-25T02:00"))  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- parse_explicit_date


def test_parse_explicit_date_accepts_only_yyyy_mm_dd() -> None:
    assert parse_explicit_date("2026-01-24") == date(2026, 1, 24)
    assert parse_explicit_date("2024-02-29") == date(2024, 2, 29)


@pytest.mark.parametrize(
    "value", ["TODAY", "today", " 2026-01-24", "2026-01-24\n", "20260124", "2026-02-30", "2026-1-5"]
)
def test_parse_explicit_date_rejects_everything_else(value: str) -> None:
    with pytest.raises(InvalidDateError, match="YYYY-MM-DD") as info:
        parse_explicit_date(value)
    assert repr(value) in str(info.value)


def test_parse_explicit_date_rejects_non_strings() -> None:
    with pytest.raises(InvalidDateError):
        parse_explicit_date(date(2026, 1, 24))  # type: ignore[arg-type]


@given(st.dates(min_value=date(1, 1, 1), max_value=date(9999, 12, 31)))
def test_explicit_dates_round_trip(day: date) -> None:
    assert parse_explicit_date(day.isoformat()) == day
    assert resolve_game_date(day.isoformat(), SystemClock()) == day


_INSTANTS = st.datetimes(min_value=datetime(2000, 1, 2), max_value=datetime(2099, 12, 30), timezones=st.just(UTC))


@given(_INSTANTS)
def test_relative_words_are_today_plus_minus_one_at_any_instant(instant: datetime) -> None:
    clock = FixedClock(instant)
    today = resolve_game_date("TODAY", clock)
    assert today == instant.astimezone(PIPELINE_TZ).date()
    assert resolve_game_date("YESTERDAY", clock) == today - timedelta(days=1)
    assert resolve_game_date("TOMORROW", clock) == today + timedelta(days=1)


# ----------------------------------------------------------------------------- relation_to_today


def test_relation_to_today_uses_et() -> None:
    clock = clock_at("2026-01-25T02:00")  # 2026-01-24 in ET
    assert relation_to_today(date(2026, 1, 23), clock) == "before_today"
    assert relation_to_today(date(2026, 1, 24), clock) == "today"
    assert relation_to_today(date(2026, 1, 25), clock) == "after_today"


def test_relation_to_today_rejects_datetimes() -> None:
    with pytest.raises(InvalidDateError):
        relation_to_today(utc("2026-01-24T12:00"), clock_at("2026-01-25T02:00"))


@given(_INSTANTS, st.integers(min_value=-1000, max_value=1000))
def test_relation_to_today_matches_day_offset(instant: datetime, offset: int) -> None:
    clock = FixedClock(instant)
    game_date = today_et(clock) + timedelta(days=offset)
    expected = "before_today" if offset < 0 else "after_today" if offset > 0 else "today"
    assert relation_to_today(game_date, clock) == expected
