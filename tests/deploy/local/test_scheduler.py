"""Tests for deploy.local.scheduler: cron parsing and evaluation, the scheduler emulator
on a ``shared.clock.SimulatedClock`` or a ``FixedClock`` (pure: no emulator, no network)."""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from deploy.local.scheduler import (
    MAX_CATCH_UP,
    CronExpression,
    ScheduledJob,
    SchedulerEmulator,
    SleepingClock,
    job_from_schedule,
)
from shared.clock import Clock, FixedClock, SimulatedClock
from shared.pipeline.definition import Schedule

NY = ZoneInfo("America/New_York")
ALL_MINUTES = set(range(60))
ALL_HOURS = set(range(24))
ALL_DAYS = set(range(1, 32))
ALL_MONTHS = set(range(1, 13))
ALL_WEEKDAYS = set(range(7))


def ny(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0, *, fold: int = 0) -> datetime:
    """A New York wall-clock time (``fold=1``: the second occurrence of a repeated hour)."""
    return datetime(year, month, day, hour, minute, second, tzinfo=NY, fold=fold)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def wait_for(condition: Callable[[], bool], timeout: float = 30.0) -> None:
    """Wait (generously) for ``condition``; fail with a clear message on timeout."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.01)


# ----------------------------------------------------------------------------- parsing


@pytest.mark.parametrize(
    ("text", "field", "expected"),
    [
        ("* * * * *", "minutes", ALL_MINUTES),
        ("5 * * * *", "minutes", {5}),
        ("0,15,30,45 * * * *", "minutes", {0, 15, 30, 45}),
        ("10-14 * * * *", "minutes", {10, 11, 12, 13, 14}),
        ("*/10 * * * *", "minutes", {0, 10, 20, 30, 40, 50}),
        ("*/15 * * * *", "minutes", {0, 15, 30, 45}),
        ("10-30/10 * * * *", "minutes", {10, 20, 30}),
        ("1-59/29 * * * *", "minutes", {1, 30, 59}),
        ("0-5,50-59/3,30 * * * *", "minutes", {0, 1, 2, 3, 4, 5, 30, 50, 53, 56, 59}),
        ("*/70 * * * *", "minutes", {0}),
        ("00 * * * *", "minutes", {0}),
        ("0 3 * * *", "hours", {3}),
        ("0 */6 * * *", "hours", {0, 6, 12, 18}),
        ("0 9-17 * * *", "hours", set(range(9, 18))),
        ("0 0 1,15 * *", "days", {1, 15}),
        ("0 0 */10 * *", "days", {1, 11, 21, 31}),
        ("0 0 * JAN *", "months", {1}),
        ("0 0 * jan,Jul,DEC *", "months", {1, 7, 12}),
        ("0 0 * mar-may *", "months", {3, 4, 5}),
        ("0 0 * */3 *", "months", {1, 4, 7, 10}),
        ("0 0 * 2 *", "months", {2}),
        ("0 0 * * 0", "weekdays", {0}),
        ("0 0 * * 7", "weekdays", {0}),
        ("0 0 * * 1-5", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * MON-FRI", "weekdays", {1, 2, 3, 4, 5}),
        ("0 0 * * sun,sat", "weekdays", {0, 6}),
        ("0 0 * * 5-7", "weekdays", {0, 5, 6}),
        ("0 0 * * FRI-7", "weekdays", {0, 5, 6}),
        ("0 0 * * 0-7", "weekdays", ALL_WEEKDAYS),
        ("0 0 * * */2", "weekdays", {0, 2, 4, 6}),
        ("0 0 * * Tue", "weekdays", {2}),
    ],
)
def test_parse_syntax_forms(text: str, field: str, expected: set[int]) -> None:
    cron = CronExpression.parse(text)
    values = getattr(cron, field)
    assert set(values) == expected
    assert list(values) == sorted(values)
    assert str(cron) == text


def test_parse_tolerates_extra_whitespace() -> None:
    cron = CronExpression.parse("  */10\t*  * * *  ")
    assert set(cron.minutes) == {0, 10, 20, 30, 40, 50}
    assert set(cron.hours) == ALL_HOURS


@pytest.mark.parametrize(
    ("text", "dom_restricted", "dow_restricted"),
    [
        ("* * * * *", False, False),
        ("0 0 13 * *", True, False),
        ("0 0 * * FRI", False, True),
        ("0 0 13 * FRI", True, True),
        ("0 0 */2 * FRI", False, True),  # vixie: a field starting with '*' is unrestricted
        ("0 0 1-31 * MON", True, True),
    ],
)
def test_day_fields_restriction_flags(text: str, dom_restricted: bool, dow_restricted: bool) -> None:
    cron = CronExpression.parse(text)
    assert (cron.dom_restricted, cron.dow_restricted) == (dom_restricted, dow_restricted)


@pytest.mark.parametrize(
    ("text", "field", "token"),
    [
        ("60 * * * *", "minute", "60"),
        ("* 24 * * *", "hour", "24"),
        ("* * 0 * *", "day-of-month", "0"),
        ("* * 32 * *", "day-of-month", "32"),
        ("* * * 0 *", "month", "0"),
        ("* * * 13 *", "month", "13"),
        ("* * * * 8", "day-of-week", "8"),
        ("*/0 * * * *", "minute", "*/0"),
        ("*/x * * * *", "minute", "*/x"),
        ("*/ * * * *", "minute", "*/"),
        ("*/-5 * * * *", "minute", "*/-5"),
        ("5/10 * * * *", "minute", "5/10"),
        ("30-10 * * * *", "minute", "30-10"),
        ("1-2-3 * * * *", "minute", "1-2-3"),
        ("-5 * * * *", "minute", "-5"),
        ("5- * * * *", "minute", "5-"),
        ("1,,2 * * * *", "minute", ""),
        ("1, * * * *", "minute", ""),
        ("? * * * *", "minute", "?"),
        ("a * * * *", "minute", "a"),
        ("* * L * *", "day-of-month", "L"),
        ("* * 15W * *", "day-of-month", "15W"),
        ("* * * * 5#3", "day-of-week", "5#3"),
        ("* * * * 5L", "day-of-week", "5L"),
        ("* * * FOO *", "month", "FOO"),
        ("* * * MON *", "month", "MON"),
        ("* * * * JAN", "day-of-week", "JAN"),
        ("* * * * MONDAY", "day-of-week", "MONDAY"),
        ("* * * * FRI-MON", "day-of-week", "FRI-MON"),
        ("* * * JANUARY *", "month", "JANUARY"),
        ("\u0661 * * * *", "minute", "\u0661"),  # Arabic-Indic digit one
        ("*-5 * * * *", "minute", "*-5"),
    ],
)
def test_parse_errors_name_field_and_token(text: str, field: str, token: str) -> None:
    with pytest.raises(ValueError, match="invalid cron expression") as info:
        CronExpression.parse(text)
    message = str(info.value)
    assert f"{field} field" in message
    assert f"bad token {token!r}" in message


@pytest.mark.parametrize("text", ["", "* * * *", "* * * * * *", "@hourly", "@daily", "0 0 * * * 2026", "*/10"])
def test_parse_errors_wrong_field_count(text: str) -> None:
    with pytest.raises(ValueError, match="expected 5 fields"):
        CronExpression.parse(text)


@pytest.mark.parametrize("text", ["0 0 30 2 *", "0 0 31 4,6,9,11 *", "0 0 30,31 FEB *", "0 0 31 2 *"])
def test_parse_rejects_a_day_no_listed_month_has(text: str) -> None:
    with pytest.raises(ValueError, match=r"day-of-month field: .*never fire"):
        CronExpression.parse(text)


def test_parse_accepts_impossible_day_when_weekday_also_restricted() -> None:
    # Vixie OR rule: "31 February OR any Monday" fires on Mondays in February.
    cron = CronExpression.parse("0 0 31 2 MON")
    assert cron.next_after(ny(2026, 1, 1), NY) == ny(2026, 2, 2).astimezone(UTC)


def test_parse_rejects_non_string() -> None:
    with pytest.raises(ValueError, match="expected a string"):
        CronExpression.parse(None)  # type: ignore[arg-type]


# ----------------------------------------------------------------------------- matches


@pytest.mark.parametrize(
    ("text", "moment", "expected"),
    [
        ("*/10 * * * *", datetime(2026, 1, 24, 12, 20), True),
        ("*/10 * * * *", datetime(2026, 1, 24, 12, 21), False),
        ("*/10 * * * *", datetime(2026, 1, 24, 12, 20, 59, 999999), True),  # seconds ignored
        ("0 3 * * *", datetime(2026, 1, 24, 3, 0), True),
        ("0 3 * * *", datetime(2026, 1, 24, 4, 0), False),
        ("0 0 * JAN SAT", datetime(2026, 1, 24), True),  # 2026-01-24 is a Saturday
        ("0 0 * FEB SAT", datetime(2026, 1, 24), False),
        ("0 0 * * 6", datetime(2026, 1, 24), True),
        ("0 0 * * 0", datetime(2026, 1, 25), True),  # Sunday
        ("0 0 * * 7", datetime(2026, 1, 25), True),
        # dom/dow OR rule: both restricted → either suffices.
        ("0 0 13 * FRI", datetime(2026, 2, 13), True),  # Friday the 13th: both
        ("0 0 13 * FRI", datetime(2026, 1, 13), True),  # Tuesday the 13th: dom only
        ("0 0 13 * FRI", datetime(2026, 1, 16), True),  # Friday the 16th: dow only
        ("0 0 13 * FRI", datetime(2026, 1, 14), False),  # neither
        # Only one restricted (the other starts with '*') → both must hold.
        ("0 0 13 * *", datetime(2026, 1, 16), False),
        ("0 0 * * FRI", datetime(2026, 1, 13), False),
        ("0 0 */2 * FRI", datetime(2026, 1, 16), False),  # Friday, but even day
        ("0 0 */2 * FRI", datetime(2026, 1, 9), True),  # Friday and odd day
        ("0 0 */2 * FRI", datetime(2026, 1, 11), False),  # odd day, but Sunday
    ],
)
def test_matches(text: str, moment: datetime, expected: bool) -> None:
    assert CronExpression.parse(text).matches(moment) is expected
    # An aware datetime is judged on its own wall-clock fields.
    assert CronExpression.parse(text).matches(moment.replace(tzinfo=NY)) is expected


# ----------------------------------------------------------------------------- next_after


def next_local(text: str, after: datetime, tz: ZoneInfo = NY) -> datetime:
    result = CronExpression.parse(text).next_after(after, tz)
    assert result.tzinfo is UTC
    return result.astimezone(tz)


def test_next_after_every_ten_minutes() -> None:
    assert next_local("*/10 * * * *", ny(2026, 1, 24, 12, 3)) == ny(2026, 1, 24, 12, 10)
    assert next_local("*/10 * * * *", ny(2026, 1, 24, 12, 9, 59)) == ny(2026, 1, 24, 12, 10)
    assert next_local("*/10 * * * *", ny(2026, 1, 24, 23, 55)) == ny(2026, 1, 25, 0, 0)


def test_next_after_is_strictly_after() -> None:
    assert next_local("*/10 * * * *", ny(2026, 1, 24, 12, 10)) == ny(2026, 1, 24, 12, 20)
    assert next_local("*/10 * * * *", ny(2026, 1, 24, 12, 10).replace(microsecond=1)) == ny(2026, 1, 24, 12, 20)
    assert next_local("*/15 * * * *", ny(2026, 1, 24, 12, 45)) == ny(2026, 1, 24, 13, 0)


def test_next_after_every_fifteen_minutes_sequence() -> None:
    cron = CronExpression.parse("*/15 * * * *")
    moment = ny(2026, 12, 31, 23, 20)
    seen = []
    for _ in range(4):
        moment = cron.next_after(moment, NY)
        seen.append(moment.astimezone(NY))
    assert seen == [ny(2026, 12, 31, 23, 30), ny(2026, 12, 31, 23, 45), ny(2027, 1, 1, 0, 0), ny(2027, 1, 1, 0, 15)]


def test_next_after_daily_at_three_is_in_the_given_time_zone() -> None:
    # 2026-01-24T09:00Z is 04:00 in New York: today's 03:00 has passed.
    assert next_local("0 3 * * *", utc(2026, 1, 24, 9)) == ny(2026, 1, 25, 3)
    assert CronExpression.parse("0 3 * * *").next_after(utc(2026, 1, 24, 9), NY) == utc(2026, 1, 25, 8)
    # Same instant, UTC schedule: 03:00Z tomorrow.
    assert CronExpression.parse("0 3 * * *").next_after(utc(2026, 1, 24, 9), ZoneInfo("UTC")) == utc(2026, 1, 25, 3)


def test_next_after_accepts_any_aware_input_zone() -> None:
    from datetime import timezone

    tokyo_time = datetime(2026, 1, 25, 2, 0, tzinfo=timezone(timedelta(hours=9)))  # = 2026-01-24 12:00 ET
    assert next_local("0 13 * * *", tokyo_time) == ny(2026, 1, 24, 13)


def test_next_after_rejects_naive() -> None:
    with pytest.raises(ValueError, match="naive"):
        CronExpression.parse("* * * * *").next_after(datetime(2026, 1, 1), NY)


def test_spring_forward_skips_the_missing_wall_time() -> None:
    # 2026-03-08: 02:00 EST jumps to 03:00 EDT in New York; 02:30 does not exist.
    assert next_local("30 2 * * *", ny(2026, 3, 7, 12)) == ny(2026, 3, 9, 2, 30)
    assert next_local("30 2 * * *", ny(2026, 3, 8, 1, 59)) == ny(2026, 3, 9, 2, 30)
    assert next_local("30 2 * * *", ny(2026, 3, 6, 12)) == ny(2026, 3, 7, 2, 30)  # the day before is fine


def test_spring_forward_every_ten_minutes_jumps_the_gap() -> None:
    assert next_local("*/10 * * * *", ny(2026, 3, 8, 1, 50)) == ny(2026, 3, 8, 3, 0)
    assert CronExpression.parse("*/10 * * * *").next_after(ny(2026, 3, 8, 1, 50), NY) == utc(2026, 3, 8, 7, 0)


def test_fall_back_fires_the_repeated_wall_time_once() -> None:
    # 2026-11-01: 02:00 EDT falls back to 01:00 EST; 01:30 happens twice (EDT, then EST).
    cron = CronExpression.parse("30 1 * * *")
    first = cron.next_after(ny(2026, 11, 1, 0, 0), NY)
    assert first == utc(2026, 11, 1, 5, 30)  # 01:30 EDT, the first occurrence (fold=0)
    assert first.astimezone(NY).fold == 0
    second = cron.next_after(first, NY)
    assert second == ny(2026, 11, 2, 1, 30).astimezone(UTC)  # not 01:30 EST the same night
    # Asked during the second 01:xx hour (EST), the first 01:30 has passed: next is tomorrow.
    assert cron.next_after(ny(2026, 11, 1, 1, 10, fold=1), NY) == second


def test_fall_back_every_ten_minutes_does_not_repeat_the_hour() -> None:
    cron = CronExpression.parse("*/10 * * * *")
    moment = ny(2026, 11, 1, 1, 45)
    seen = []
    for _ in range(3):
        moment = cron.next_after(moment, NY)
        seen.append(moment)
    assert seen == [utc(2026, 11, 1, 5, 50), utc(2026, 11, 1, 7, 0), utc(2026, 11, 1, 7, 10)]  # 01:50 EDT, 02:00 EST


def test_leap_day_only() -> None:
    start = time.perf_counter()
    assert next_local("0 0 29 2 *", ny(2026, 3, 1)) == ny(2028, 2, 29)
    assert next_local("0 0 29 2 *", ny(2028, 2, 29)) == ny(2032, 2, 29)
    assert next_local("0 0 29 2 *", ny(2097, 1, 1)) == ny(2104, 2, 29)  # 2100 is not a leap year
    assert time.perf_counter() - start < 5  # milliseconds in practice; generous for loaded CI


def test_dom_dow_or_rule() -> None:
    # "At midnight on the 13th, or on any Friday."
    cron = "0 0 13 * FRI"
    assert next_local(cron, ny(2026, 1, 10)) == ny(2026, 1, 13)  # a Tuesday, the 13th
    assert next_local(cron, ny(2026, 1, 13)) == ny(2026, 1, 16)  # the next Friday
    assert next_local(cron, ny(2026, 2, 12)) == ny(2026, 2, 13)  # Friday the 13th, once
    assert next_local(cron, ny(2026, 2, 13)) == ny(2026, 2, 20)
    # Day-of-month unrestricted ('*'): only Fridays.
    assert next_local("0 0 * * FRI", ny(2026, 1, 10)) == ny(2026, 1, 16)
    # Day-of-week unrestricted: only the 13th.
    assert next_local("0 0 13 * *", ny(2026, 1, 13)) == ny(2026, 2, 13)


def test_months_and_years_roll_over() -> None:
    assert next_local("15 10 1 JAN *", ny(2026, 1, 1, 10, 15)) == ny(2027, 1, 1, 10, 15)
    assert next_local("0 12 31 * *", ny(2026, 4, 1)) == ny(2026, 5, 31, 12)
    assert next_local("0 0 * * SUN", ny(2026, 12, 30)) == ny(2027, 1, 3)


# ----------------------------------------------------------------------------- properties

ZONES = [NY, ZoneInfo("UTC"), ZoneInfo("Europe/London"), ZoneInfo("Asia/Kolkata"), ZoneInfo("Australia/Lord_Howe")]
# Instants next to DST changes: New York 2026 spring forward / fall back, Lord Howe's 30-minute shifts.
DST_EDGES = [utc(2026, 3, 8, 7), utc(2026, 11, 1, 6), utc(2026, 4, 4, 15), utc(2026, 10, 3, 15), utc(2026, 3, 29, 1)]


@st.composite
def cron_field(draw: st.DrawFn, low: int, high: int, names: list[str] | None = None) -> tuple[str, set[int]]:
    """A valid field text and the set of values it denotes (day-of-week 7 not folded here)."""

    def value(v: int) -> str:
        if names is not None and draw(st.booleans()):
            name = names[v - low] if v - low < len(names) else str(v)
            return draw(st.sampled_from([name, name.lower(), name.title()]))
        return str(v)

    items: list[str] = []
    values: set[int] = set()
    for _ in range(draw(st.integers(1, 3))):
        kind = draw(st.sampled_from(["star", "star_step", "one", "range", "range_step"]))
        if kind == "star":
            items.append("*")
            values.update(range(low, high + 1))
        elif kind == "star_step":
            step = draw(st.integers(1, high - low + 1))
            items.append(f"*/{step}")
            values.update(range(low, high + 1, step))
        elif kind == "one":
            v = draw(st.integers(low, high))
            items.append(value(v))
            values.add(v)
        else:
            a = draw(st.integers(low, high))
            b = draw(st.integers(a, high))
            if kind == "range":
                items.append(f"{value(a)}-{value(b)}")
                values.update(range(a, b + 1))
            else:
                step = draw(st.integers(1, high - low + 1))
                items.append(f"{value(a)}-{value(b)}/{step}")
                values.update(range(a, b + 1, step))
    return ",".join(items), values


MONTH_NAMES = "JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split()
DAY_NAMES = "SUN MON TUE WED THU FRI SAT".split()


@given(
    minute=cron_field(0, 59),
    hour=cron_field(0, 23),
    dom=cron_field(1, 31),
    month=cron_field(1, 12, MONTH_NAMES),
    dow=cron_field(0, 7, DAY_NAMES),
)
@settings(max_examples=100, deadline=None)
def test_property_parse_denotes_the_generated_sets(
    minute: tuple[str, set[int]],
    hour: tuple[str, set[int]],
    dom: tuple[str, set[int]],
    month: tuple[str, set[int]],
    dow: tuple[str, set[int]],
) -> None:
    text = " ".join(part for part, _ in (minute, hour, dom, month, dow))
    try:
        cron = CronExpression.parse(text)
    except ValueError as exc:
        assert "never fire" in str(exc)
        return
    assert set(cron.minutes) == minute[1]
    assert set(cron.hours) == hour[1]
    assert set(cron.days) == dom[1]
    assert set(cron.months) == month[1]
    assert set(cron.weekdays) == {0 if v == 7 else v for v in dow[1]}


def dense_expressions() -> st.SearchStrategy[str]:
    """Valid expressions that usually fire within a day or two, so a brute-force check stays cheap."""
    minute = cron_field(0, 59).map(lambda f: f[0])
    hour = st.one_of(st.just("*"), cron_field(0, 23).map(lambda f: f[0]))
    dom = st.one_of(st.just("*"), st.just("*/2"), st.just("1-15"), st.just("13"))
    month = st.one_of(st.just("*"), st.just("*"), st.just("MAR,NOV"), st.just("2-4"))
    dow = st.one_of(st.just("*"), st.just("*"), st.just("MON-FRI"), st.just("0,6"), st.just("FRI"))
    return st.tuples(minute, hour, dom, month, dow).map(" ".join)


instants = st.one_of(
    st.datetimes(min_value=datetime(2001, 1, 1), max_value=datetime(2037, 12, 31), timezones=st.just(UTC)),
    st.builds(
        lambda edge, offset: edge + timedelta(seconds=offset),
        st.sampled_from(DST_EDGES),
        st.integers(-2 * 86400, 2 * 86400),
    ),
)

BRUTE_FORCE_WINDOW = timedelta(hours=36)


@given(text=dense_expressions(), after=instants, tz=st.sampled_from(ZONES))
@settings(max_examples=80, deadline=None)
def test_property_next_after_is_the_first_matching_minute(text: str, after: datetime, tz: ZoneInfo) -> None:
    cron = CronExpression.parse(text)
    result = cron.next_after(after, tz)
    assert result > after
    assert result.tzinfo is UTC
    local = result.astimezone(tz)
    assert cron.matches(local)
    assert local.fold == 0  # a repeated wall time fires at its first occurrence
    assert result.second == 0 and result.microsecond == 0

    # Brute force: no UTC minute strictly between `after` and the result (within a bounded
    # window) is a firing, i.e. a matching wall time at its first occurrence.
    minute = after.replace(second=0, microsecond=0) + timedelta(minutes=1)
    end = min(result, after + BRUTE_FORCE_WINDOW)
    while minute < end:
        wall = minute.astimezone(tz)  # fold=1 marks the second occurrence of a repeated wall time
        assert not (wall.fold == 0 and cron.matches(wall)), f"{wall} fires before {local}"
        minute += timedelta(minutes=1)


# ----------------------------------------------------------------------------- SimulatedClock as a SleepingClock


class FakeWall:
    """A wall clock (unix seconds) that only moves when told to."""

    def __init__(self) -> None:
        self.value = 1_769_000_000.0

    def __call__(self) -> float:
        return self.value


def test_simulated_clock_now_scales_elapsed_wall_time() -> None:
    wall = FakeWall()
    clock = SimulatedClock(ny(2026, 1, 24, 12), 600, wall=wall)
    assert clock.now() == utc(2026, 1, 24, 17)
    assert clock.now().tzinfo is UTC
    wall.value += 1.5
    assert clock.now() == utc(2026, 1, 24, 17, 15)
    wall.value += 0.25
    assert clock.now() == utc(2026, 1, 24, 17, 17, 30)
    assert clock.factor == 600
    assert clock.real_seconds_until(utc(2026, 1, 24, 17, 27, 30)) == pytest.approx(1.0)


def test_simulated_clock_factor_one_is_real_time() -> None:
    wall = FakeWall()
    clock = SimulatedClock(utc(2026, 1, 1), 1, wall=wall)
    wall.value += 42
    assert clock.now() == utc(2026, 1, 1, 0, 0, 42)


def test_simulated_clock_is_a_sleeping_clock() -> None:
    clock = SimulatedClock(utc(2026, 1, 1), 10, wall=FakeWall())
    assert isinstance(clock, Clock)
    assert isinstance(clock, SleepingClock)
    assert not isinstance(FixedClock(utc(2026, 1, 1)), SleepingClock)
    assert "factor=10" in repr(clock)


@pytest.mark.parametrize("factor", [0, 0.5, -1])
def test_simulated_clock_rejects_a_factor_below_one(factor: float) -> None:
    with pytest.raises(ValueError, match="factor"):
        SimulatedClock(utc(2026, 1, 1), factor, wall=FakeWall())


def test_simulated_clock_rejects_naive_start() -> None:
    with pytest.raises(ValueError, match="naive"):
        SimulatedClock(datetime(2026, 1, 1), 10, wall=FakeWall())


def test_sleep_until_past_target_returns_at_once() -> None:
    clock = SimulatedClock(utc(2026, 1, 1), 600, wall=FakeWall())
    assert clock.sleep_until(utc(2025, 12, 31), threading.Event()) is True
    assert clock.sleep_until(utc(2026, 1, 1), threading.Event()) is True


def test_sleep_until_waits_for_the_simulated_instant() -> None:
    wall = FakeWall()
    clock = SimulatedClock(utc(2026, 1, 1), 3600, wall=wall)  # one simulated hour per real second
    target = utc(2026, 1, 1, 0, 3)  # 0.05 wall seconds away (3 simulated minutes)
    done = threading.Event()
    result: list[bool] = []

    def sleeper() -> None:
        result.append(clock.sleep_until(target, threading.Event()))
        done.set()

    thread = threading.Thread(target=sleeper, daemon=True)
    thread.start()
    assert not done.wait(0.1)  # the fake wall has not moved: still waiting
    wall.value += 0.125  # past the target (0.125 is exact in binary: no rounding short of it)
    thread.join(timeout=30)  # wakes within one polling chunk (at most 0.5 s)
    assert not thread.is_alive()
    assert result == [True]
    assert clock.now() >= target


def test_sleep_until_on_the_real_wall_clock_waits_for_the_simulated_instant() -> None:
    clock = SimulatedClock(utc(2026, 1, 1), 3600)  # one simulated hour per real second
    target = clock.now() + timedelta(minutes=3)  # ~0.05 real seconds
    assert clock.sleep_until(target, threading.Event()) is True
    assert clock.now() >= target


def test_sleep_until_returns_false_when_stopped() -> None:
    clock = SimulatedClock(utc(2026, 1, 1), 1, wall=FakeWall())  # the fake wall never reaches the target
    stop = threading.Event()
    timer = threading.Timer(0.05, stop.set)
    timer.start()
    assert clock.sleep_until(utc(2027, 1, 1), stop) is False  # a year of real time, cut short
    timer.join()
    assert clock.sleep_until(utc(2027, 1, 1), stop) is False  # already stopped: returns at once


# ----------------------------------------------------------------------------- jobs


def make_job(name: str, cron: str, topic: str | None = None, payload: bytes = b"{}") -> ScheduledJob:
    return ScheduledJob(name, CronExpression.parse(cron), topic or f"{name}-topic", NY, payload)


def test_job_from_schedule() -> None:
    schedule = Schedule(cron="*/10 * * * *", topic="phase-transition-monitor-trigger")
    job = job_from_schedule("phase_transition_monitor", schedule, b"{}")
    assert job.name == "phase_transition_monitor"
    assert job.topic == "phase-transition-monitor-trigger"
    assert job.timezone == NY
    assert job.payload == b"{}"
    assert set(job.cron.minutes) == {0, 10, 20, 30, 40, 50}
    assert job.next_after(ny(2026, 1, 24, 12, 1)) == ny(2026, 1, 24, 12, 10).astimezone(UTC)


def test_jobs_from_the_pipeline_definition() -> None:
    from shared.pipeline.definition import load_definition

    definition = load_definition()
    jobs = [job_from_schedule(name, schedule, b"") for name, schedule in definition.schedules.items()]
    assert {job.topic for job in jobs} == {s.topic for s in definition.schedules.values()}
    assert all(job.cron.text == definition.schedules[job.name].cron for job in jobs)


@pytest.mark.parametrize(
    ("schedule", "message"),
    [
        (Schedule(cron="61 * * * *", topic="tick-topic"), "schedule 'bad': invalid cron expression .*minute field"),
        (Schedule(cron="* * * * *", topic="tick-topic", timezone="Mars/Olympus_Mons"), "unknown time zone"),
    ],
)
def test_job_from_schedule_errors_name_the_job(schedule: Schedule, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        job_from_schedule("bad", schedule, b"")


# ----------------------------------------------------------------------------- emulator


class Recorder:
    """A thread-safe recording publish callback that can be told to fail."""

    def __init__(self, fail_times: int = 0) -> None:
        self.calls: list[tuple[str, datetime]] = []
        self.fail_times = fail_times
        self.lock = threading.Lock()

    def __call__(self, job: ScheduledJob, scheduled: datetime) -> None:
        with self.lock:
            if self.fail_times > 0:
                self.fail_times -= 1
                raise RuntimeError(f"publish of {job.name} failed")
            self.calls.append((job.name, scheduled))

    def snapshot(self) -> list[tuple[str, datetime]]:
        with self.lock:
            return list(self.calls)


@pytest.fixture
def emulators() -> Iterator[list[SchedulerEmulator]]:
    """Emulators registered here are stopped after the test, whatever happens."""
    made: list[SchedulerEmulator] = []
    yield made
    for emulator in made:
        emulator.stop()


def test_emulator_fires_on_exact_boundaries_with_simulated_clock(emulators: list[SchedulerEmulator]) -> None:
    clock = SimulatedClock(ny(2026, 1, 24, 12, 9, 30), 600)  # 10 simulated minutes per real second
    recorder = Recorder()
    emulator = SchedulerEmulator([make_job("monitor", "*/10 * * * *")], recorder, clock)
    emulators.append(emulator)
    emulator.start()
    assert emulator.running
    wait_for(lambda: len(recorder.snapshot()) >= 2)

    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 5
    assert not emulator.running

    calls = recorder.snapshot()
    times = [moment for _, moment in calls]
    assert times[:2] == [ny(2026, 1, 24, 12, 10).astimezone(UTC), ny(2026, 1, 24, 12, 20).astimezone(UTC)]
    for name, moment in calls:
        assert name == "monitor"
        assert moment.tzinfo is UTC
        assert (moment.minute % 10, moment.second, moment.microsecond) == (0, 0, 0)
    assert all(b - a == timedelta(minutes=10) for a, b in itertools.pairwise(times))
    assert emulator.history == calls


def test_emulator_publish_errors_go_to_on_error_and_the_loop_continues(emulators: list[SchedulerEmulator]) -> None:
    clock = SimulatedClock(ny(2026, 1, 24, 12, 9, 30), 600)
    recorder = Recorder(fail_times=1)
    errors: list[tuple[str, BaseException]] = []
    emulator = SchedulerEmulator(
        [make_job("monitor", "*/10 * * * *")], recorder, clock, on_error=lambda job, exc: errors.append((job.name, exc))
    )
    emulators.append(emulator)
    emulator.start()
    wait_for(lambda: len(recorder.snapshot()) >= 1)
    emulator.stop()

    assert len(errors) == 1
    assert errors[0][0] == "monitor"
    assert isinstance(errors[0][1], RuntimeError)
    first_ok = recorder.snapshot()[0][1]
    assert first_ok == ny(2026, 1, 24, 12, 20).astimezone(UTC)  # 12:10 failed, 12:20 went through
    assert emulator.history[0][1] == first_ok  # failures are not in the history


def test_emulator_default_on_error_logs(emulators: list[SchedulerEmulator], capsys: pytest.CaptureFixture[str]) -> None:
    clock = FixedClock(utc(2026, 1, 24, 17, 5))
    recorder = Recorder(fail_times=1)
    emulator = SchedulerEmulator([make_job("monitor", "*/10 * * * *")], recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    emulator.start()
    clock.advance(minutes=20)  # 17:10 (fails) and 17:20
    wait_for(lambda: len(recorder.snapshot()) >= 1)
    emulator.stop()
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines() if line.startswith("{")]
    errors = [line for line in lines if line["severity"] == "ERROR"]
    assert len(errors) == 1
    assert "publish to monitor-topic failed" in errors[0]["message"]
    assert "RuntimeError: publish of monitor failed" in errors[0]["exception"]
    assert errors[0]["scheduler_job"] == "monitor"
    assert recorder.snapshot() == [("monitor", utc(2026, 1, 24, 17, 20))]


def test_emulator_survives_a_failing_on_error(emulators: list[SchedulerEmulator]) -> None:
    clock = FixedClock(utc(2026, 1, 24, 17, 5))
    recorder = Recorder(fail_times=1)

    def broken_handler(job: ScheduledJob, exc: BaseException) -> None:
        raise ValueError("handler is broken too")

    emulator = SchedulerEmulator(
        [make_job("monitor", "*/10 * * * *")], recorder, clock, on_error=broken_handler, poll_interval=0.01
    )
    emulators.append(emulator)
    emulator.start()
    clock.advance(minutes=20)
    wait_for(lambda: len(recorder.snapshot()) >= 1)
    assert emulator.running
    emulator.stop()


def test_emulator_catch_up_publishes_each_missed_firing_in_order(emulators: list[SchedulerEmulator]) -> None:
    clock = FixedClock(ny(2026, 1, 24, 0, 0, 30))
    recorder = Recorder()
    jobs = [make_job("monitor", "*/10 * * * *"), make_job("retry", "*/15 * * * *")]
    emulator = SchedulerEmulator(jobs, recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    emulator.start()
    clock.advance(hours=1)  # one jump over ten firings
    wait_for(lambda: len(recorder.snapshot()) >= 10)
    emulator.stop()

    def at(minute: int) -> datetime:
        return ny(2026, 1, 24, 0, minute).astimezone(UTC) if minute < 60 else ny(2026, 1, 24, 1).astimezone(UTC)

    expected = [
        ("monitor", at(10)),
        ("retry", at(15)),
        ("monitor", at(20)),
        ("monitor", at(30)),  # same minute: job order
        ("retry", at(30)),
        ("monitor", at(40)),
        ("retry", at(45)),
        ("monitor", at(50)),
        ("monitor", at(60)),
        ("retry", at(60)),
    ]
    assert recorder.snapshot() == expected
    assert emulator.history == expected


def test_emulator_caps_catch_up_and_warns(
    emulators: list[SchedulerEmulator], capsys: pytest.CaptureFixture[str]
) -> None:
    clock = FixedClock(utc(2026, 1, 24, 0, 0, 30))
    recorder = Recorder()
    emulator = SchedulerEmulator([make_job("monitor", "*/10 * * * *")], recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    emulator.start()
    clock.advance(days=30)  # 4320 missed firings
    wait_for(lambda: len(recorder.snapshot()) >= MAX_CATCH_UP)
    time.sleep(0.1)  # a chance to (wrongly) publish more
    calls = recorder.snapshot()
    assert len(calls) == MAX_CATCH_UP
    assert calls[0][1] == utc(2026, 1, 24, 0, 10)
    assert calls[-1][1] == utc(2026, 1, 24, 0, 10) + timedelta(minutes=10 * (MAX_CATCH_UP - 1))

    clock.advance(minutes=10)  # the schedule resumes from "now", not from the skipped backlog
    wait_for(lambda: len(recorder.snapshot()) > MAX_CATCH_UP)
    emulator.stop()
    assert recorder.snapshot()[MAX_CATCH_UP][1] == utc(2026, 2, 23, 0, 10)
    warnings = [
        json.loads(line)
        for line in capsys.readouterr().out.splitlines()
        if line.startswith("{") and '"WARNING"' in line
    ]
    assert len(warnings) == 1
    assert "monitor" in warnings[0]["message"]
    assert str(MAX_CATCH_UP) in warnings[0]["message"]


def test_emulator_stop_is_prompt_and_idempotent(emulators: list[SchedulerEmulator]) -> None:
    clock = SimulatedClock(utc(2026, 1, 24, 0, 0, 1), 1)  # next firing a real ~year away
    emulator = SchedulerEmulator([make_job("yearly", "0 0 1 1 *")], Recorder(), clock)
    emulators.append(emulator)
    emulator.start()
    time.sleep(0.05)
    started = time.monotonic()
    emulator.stop()
    assert time.monotonic() - started < 5
    assert not emulator.running
    emulator.stop()


def test_emulator_without_jobs_starts_and_stops(emulators: list[SchedulerEmulator]) -> None:
    emulator = SchedulerEmulator([], Recorder(), FixedClock(utc(2026, 1, 1)))
    emulators.append(emulator)
    with emulator:
        assert emulator.running
    assert not emulator.running


def test_emulator_can_restart(emulators: list[SchedulerEmulator]) -> None:
    clock = FixedClock(utc(2026, 1, 24, 0, 5))
    recorder = Recorder()
    emulator = SchedulerEmulator([make_job("monitor", "*/10 * * * *")], recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    emulator.start()
    emulator.stop()
    emulator.start()
    with pytest.raises(RuntimeError, match="already running"):
        emulator.start()
    clock.advance(minutes=10)
    wait_for(lambda: len(recorder.snapshot()) == 1)
    emulator.stop()


def test_fire_now_publishes_immediately(emulators: list[SchedulerEmulator]) -> None:
    clock = FixedClock(utc(2026, 1, 24, 17, 3, 21))
    recorder = Recorder()
    jobs = [make_job("monitor", "*/10 * * * *"), make_job("retry", "*/15 * * * *")]
    emulator = SchedulerEmulator(jobs, recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    # Works whether or not the loop runs.
    assert emulator.fire_now("retry") == utc(2026, 1, 24, 17, 3, 21)
    emulator.start()
    emulator.fire_now("monitor")
    assert recorder.snapshot() == [("retry", utc(2026, 1, 24, 17, 3, 21)), ("monitor", utc(2026, 1, 24, 17, 3, 21))]
    assert emulator.history == recorder.snapshot()
    # The schedule is unaffected: the next regular firing still happens.
    clock.advance(minutes=7)
    wait_for(lambda: len(recorder.snapshot()) == 3)
    emulator.stop()
    assert recorder.snapshot()[2] == ("monitor", utc(2026, 1, 24, 17, 10))


def test_fire_now_errors() -> None:
    emulator = SchedulerEmulator(
        [make_job("monitor", "* * * * *")], Recorder(fail_times=1), FixedClock(utc(2026, 1, 1))
    )
    with pytest.raises(KeyError, match="no scheduler job named 'nope'"):
        emulator.fire_now("nope")
    with pytest.raises(RuntimeError, match="publish of monitor failed"):  # raised to the caller
        emulator.fire_now("monitor")
    assert emulator.history == []


def test_emulator_rejects_duplicate_names_and_bad_poll_interval() -> None:
    with pytest.raises(ValueError, match="duplicate scheduler job names: \\['a'\\]"):
        SchedulerEmulator(
            [make_job("a", "* * * * *"), make_job("a", "*/5 * * * *")], Recorder(), FixedClock(utc(2026, 1, 1))
        )
    with pytest.raises(ValueError, match="poll_interval"):
        SchedulerEmulator([], Recorder(), FixedClock(utc(2026, 1, 1)), poll_interval=0)


def test_history_is_a_copy(emulators: list[SchedulerEmulator]) -> None:
    emulator = SchedulerEmulator([make_job("monitor", "* * * * *")], Recorder(), FixedClock(utc(2026, 1, 1)))
    emulator.fire_now("monitor")
    history = emulator.history
    history.clear()
    assert emulator.history == [("monitor", utc(2026, 1, 1))]
    assert date(2026, 1, 1) == emulator.history[0][1].date()


# ----------------------------------------------------------------------------- pause, resume, restart


def test_a_paused_job_skips_its_firings_and_resumes_without_making_them_up(
    emulators: list[SchedulerEmulator],
) -> None:
    clock = FixedClock(ny(2026, 1, 25, 11, 20, 30))
    recorder = Recorder()
    jobs = [make_job("tick", "* * * * *"), make_job("monitor", "*/10 * * * *")]
    emulator = SchedulerEmulator(jobs, recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    emulator.start()
    emulator.pause("tick")  # gcloud scheduler jobs pause tick
    assert emulator.paused == frozenset({"tick"})
    clock.advance(minutes=3)  # 11:21, 11:22, 11:23 skipped
    wait_for(lambda: len(emulator.skipped) >= 3)
    emulator.resume("tick")
    clock.advance(minutes=7)  # 11:24 ... 11:30, and the monitor's 11:30
    wait_for(lambda: len(recorder.snapshot()) >= 8)
    emulator.stop()
    ticks = [at for name, at in recorder.snapshot() if name == "tick"]
    assert ticks == [ny(2026, 1, 25, 11, m).astimezone(UTC) for m in range(24, 31)]
    assert emulator.skipped == [("tick", ny(2026, 1, 25, 11, m).astimezone(UTC)) for m in (21, 22, 23)]
    assert ("monitor", ny(2026, 1, 25, 11, 30).astimezone(UTC)) in recorder.snapshot()  # not paused: fired


def test_pause_and_resume_name_a_known_job() -> None:
    emulator = SchedulerEmulator([make_job("tick", "* * * * *")], Recorder(), FixedClock(utc(2026, 1, 1)))
    with pytest.raises(KeyError, match="no scheduler job named 'nope'"):
        emulator.pause("nope")
    with pytest.raises(KeyError, match="no scheduler job named 'nope'"):
        emulator.resume("nope")


def test_a_restart_after_a_gap_fires_each_job_latest_missed_firing_once(emulators: list[SchedulerEmulator]) -> None:
    """``start(after=...)``: what a restart on a new clock does with the firings it was down for."""
    stopped = ny(2026, 1, 25, 3, 40, 10)
    clock = FixedClock(ny(2026, 1, 25, 4, 5, 30))  # 25 minutes down
    recorder = Recorder()
    jobs = [make_job("tick", "* * * * *"), make_job("monitor", "*/10 * * * *"), make_job("hourly", "0 * * * *")]
    emulator = SchedulerEmulator(jobs, recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    emulator.start(after=stopped)
    wait_for(lambda: len(recorder.snapshot()) >= 3)
    time.sleep(0.2)  # nothing else is due
    emulator.stop()
    assert sorted(recorder.snapshot()) == sorted(
        [
            ("tick", ny(2026, 1, 25, 4, 5).astimezone(UTC)),
            ("monitor", ny(2026, 1, 25, 4, 0).astimezone(UTC)),
            ("hourly", ny(2026, 1, 25, 4, 0).astimezone(UTC)),
        ]
    )


def test_a_restart_without_a_gap_fires_nothing_at_once(emulators: list[SchedulerEmulator]) -> None:
    clock = FixedClock(ny(2026, 1, 25, 4, 5, 30))
    recorder = Recorder()
    emulator = SchedulerEmulator([make_job("monitor", "*/10 * * * *")], recorder, clock, poll_interval=0.01)
    emulators.append(emulator)
    emulator.start(after=ny(2026, 1, 25, 4, 5, 10))
    time.sleep(0.2)
    assert recorder.snapshot() == []
    clock.advance(minutes=5)
    wait_for(lambda: len(recorder.snapshot()) >= 1)
    emulator.stop()
    assert recorder.snapshot() == [("monitor", ny(2026, 1, 25, 4, 10).astimezone(UTC))]
