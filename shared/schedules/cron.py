"""Cloud Scheduler's unix-cron format, evaluated in a job's own time zone.

``CronExpression`` parses the 5-field syntax Cloud Scheduler accepts (vixie-cron day rule) and
finds firings on a zone's wall clock with explicit DST handling: a wall time that does not exist
(the spring-forward gap, e.g. 02:30 on 2026-03-08 in New York) does not fire; a repeated wall time
(fall-back, 01:30 on 2026-11-01) fires once, at its first occurrence. The schedule dispatcher
(``shared.schedules``) and the local scheduler emulation (``deploy.local.scheduler``) both use it.
"""

from __future__ import annotations

import calendar
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Final
from zoneinfo import ZoneInfo

__all__ = ["CronExpression", "fires_between"]

_SEARCH_YEARS: Final = 50
"""``next_after`` gives up after this many years (only a DST oddity could get there)."""


@dataclass(frozen=True, slots=True)
class _Field:
    name: str
    low: int
    high: int
    names: dict[str, int]


# Spelled out (calendar.month_abbr follows the locale).
_MONTH_NAMES: Final = {
    name: i for i, name in enumerate("JAN FEB MAR APR MAY JUN JUL AUG SEP OCT NOV DEC".split(), start=1)
}
_DAY_NAMES: Final = {"SUN": 0, "MON": 1, "TUE": 2, "WED": 3, "THU": 4, "FRI": 5, "SAT": 6}

_FIELDS: Final = (
    _Field("minute", 0, 59, {}),
    _Field("hour", 0, 23, {}),
    _Field("day-of-month", 1, 31, {}),
    _Field("month", 1, 12, _MONTH_NAMES),
    _Field("day-of-week", 0, 7, _DAY_NAMES),
)

# Longest length of each month in any year (February: 29).
_MAX_MONTH_DAYS: Final = {m: calendar.monthrange(2000, m)[1] for m in range(1, 13)}


def _cron_weekday(day: date) -> int:
    """Cron's day of week: Sunday = 0 ... Saturday = 6."""
    return day.isoweekday() % 7


def _parse_value(text: str, spec: _Field, token: str, fail: Callable[[str, str], ValueError]) -> int:
    upper = text.upper()
    if upper in spec.names:
        return spec.names[upper]
    if not text.isascii() or not text.isdigit():
        allowed = f"a number {spec.low}-{spec.high}"
        if spec.names:
            allowed += " or a name (" + ", ".join(spec.names) + ")"
        raise fail(token, f"{text!r} is not {allowed}")
    value = int(text)
    if not spec.low <= value <= spec.high:
        raise fail(token, f"{value} is out of range {spec.low}-{spec.high}")
    return value


def _parse_field(text: str, spec: _Field, expression: str) -> frozenset[int]:
    def fail(token: str, reason: str) -> ValueError:
        return ValueError(f"invalid cron expression {expression!r}: {spec.name} field: bad token {token!r} ({reason})")

    values: set[int] = set()
    for token in text.split(","):
        if not token:
            raise fail(token, "empty list item")
        body, slash, step_text = token.partition("/")
        step = 1
        if slash:
            if not step_text.isascii() or not step_text.isdigit() or int(step_text) == 0:
                raise fail(token, f"step {step_text!r} is not a positive number")
            step = int(step_text)
        if body == "*":
            low, high = spec.low, spec.high
        elif "-" in body:
            first, _, last = body.partition("-")
            low = _parse_value(first, spec, token, fail)
            high = _parse_value(last, spec, token, fail)
            if low > high:
                raise fail(token, f"range start {low} is after its end {high}")
        else:
            if slash:
                raise fail(token, "a step needs '*' or a range before it, e.g. '*/5' or '0-30/5'")
            low = high = _parse_value(body, spec, token, fail)
        values.update(range(low, high + 1, step))
    if spec.name == "day-of-week" and 7 in values:  # 7 is Sunday too
        values.discard(7)
        values.add(0)
    return frozenset(values)


@dataclass(frozen=True, slots=True)
class CronExpression:
    """A parsed 5-field unix-cron expression (``minute hour day-of-month month day-of-week``).

    Build it with ``CronExpression.parse``. The value sets are sorted tuples. When both
    day fields are restricted (neither starts with ``*``), a day matches if EITHER
    matches (vixie-cron); otherwise both must match.
    """

    text: str
    minutes: tuple[int, ...]
    hours: tuple[int, ...]
    days: tuple[int, ...]
    months: tuple[int, ...]
    weekdays: tuple[int, ...]
    dom_restricted: bool
    dow_restricted: bool

    @classmethod
    def parse(cls, text: str) -> CronExpression:
        """Parse ``text`` as Cloud Scheduler's unix-cron format.

        Accepted per field: ``*``, numbers, ranges ``a-b``, steps ``*/n`` and ``a-b/n``,
        lists ``a,b,c``; month names ``JAN``-``DEC`` and weekday names ``SUN``-``SAT``
        (case-insensitive, also in ranges); day-of-week ``0``-``7`` (0 and 7 = Sunday).

        Raises:
            ValueError: wrong number of fields, a bad token (the message names the field
                and the token), or a day-of-month that no listed month has (e.g. ``30 2``).
        """
        if not isinstance(text, str):
            raise ValueError(f"invalid cron expression {text!r}: expected a string")
        parts = text.split()
        if len(parts) != len(_FIELDS):
            raise ValueError(
                f"invalid cron expression {text!r}: expected 5 fields "
                f"(minute hour day-of-month month day-of-week), got {len(parts)}"
            )
        minutes, hours, days, months, weekdays = (
            _parse_field(part, spec, text) for part, spec in zip(parts, _FIELDS, strict=True)
        )
        dom_restricted = not parts[2].startswith("*")
        dow_restricted = not parts[4].startswith("*")
        if not (dom_restricted and dow_restricted) and not any(
            day <= _MAX_MONTH_DAYS[month] for month in months for day in days
        ):
            raise ValueError(
                f"invalid cron expression {text!r}: day-of-month field: no day in {sorted(days)} "
                f"exists in month(s) {sorted(months)}, so it would never fire"
            )
        return cls(
            text=text,
            minutes=tuple(sorted(minutes)),
            hours=tuple(sorted(hours)),
            days=tuple(sorted(days)),
            months=tuple(sorted(months)),
            weekdays=tuple(sorted(weekdays)),
            dom_restricted=dom_restricted,
            dow_restricted=dow_restricted,
        )

    def __str__(self) -> str:
        return self.text

    def matches_day(self, day: date) -> bool:
        """Whether the calendar ``day`` matches the month and day fields."""
        if day.month not in self.months:
            return False
        dom = day.day in self.days
        dow = _cron_weekday(day) in self.weekdays
        if self.dom_restricted and self.dow_restricted:
            return dom or dow
        return dom and dow

    def matches(self, dt: datetime) -> bool:
        """Whether the wall-clock fields of ``dt`` (naive, or aware in its own zone) match.

        Seconds are ignored: any instant within a matching minute matches.
        """
        return dt.minute in self.minutes and dt.hour in self.hours and self.matches_day(dt.date())

    def next_after(self, after: datetime, tz: ZoneInfo) -> datetime:
        """The next firing strictly after ``after``, as an aware UTC datetime.

        The schedule is evaluated on ``tz``'s wall clock. A wall time that does not exist
        (spring-forward gap) is skipped; an ambiguous wall time (fall-back) fires once, at
        its first occurrence (``fold=0``).

        Raises:
            ValueError: ``after`` is naive, or no firing exists within 50 years.
        """
        if after.tzinfo is None or after.utcoffset() is None:
            raise ValueError(f"next_after needs an aware datetime, got naive {after.isoformat()}")
        local = after.astimezone(tz).replace(tzinfo=None, fold=0)
        start = local.replace(second=0, microsecond=0) + timedelta(minutes=1)
        day = start.date()
        limit = date(min(day.year + _SEARCH_YEARS, 9999), 1, 1)
        while day < limit:
            if day.month not in self.months:
                day = (day.replace(day=1) + timedelta(days=32)).replace(day=1)
                continue
            if self.matches_day(day):
                found = self._first_on(day, start, after, tz)
                if found is not None:
                    return found
            day += timedelta(days=1)
        raise ValueError(f"cron expression {self.text!r}: no firing within {_SEARCH_YEARS} years after {after}")

    def _first_on(self, day: date, start: datetime, after: datetime, tz: ZoneInfo) -> datetime | None:
        first_day = day == start.date()
        for hour in self.hours:
            if first_day and hour < start.hour:
                continue
            for minute in self.minutes:
                if first_day and hour == start.hour and minute < start.minute:
                    continue
                wall = datetime(day.year, day.month, day.day, hour, minute)
                instant = wall.replace(tzinfo=tz, fold=0).astimezone(UTC)
                if instant.astimezone(tz).replace(tzinfo=None) != wall:
                    continue  # in the spring-forward gap: this wall time never happens
                if instant > after:
                    return instant
        return None


def fires_between(cron: CronExpression, tz: ZoneInfo, start: datetime, end: datetime) -> Iterator[datetime]:
    """Every firing in ``(start, end]`` (aware UTC instants, in order)."""
    moment = cron.next_after(start, tz)
    while moment <= end:
        yield moment
        moment = cron.next_after(moment, tz)
