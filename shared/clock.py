"""One clock, injected everywhere, and the one place "today" is computed.

Nothing in the pipeline reads the time ad hoc: code takes a ``Clock`` (``SystemClock``
in production, ``FixedClock`` in tests, benchmarks and the demo) and asks it.

"Today" is a calendar date in the pipeline timezone (``America/New_York``), never in
UTC and never in the host's local zone (lesson L14: a ``TODAY`` literal resolved in
the wrong timezone lost 84% of predictions, because between 00:00 and 04:00/05:00 UTC
the UTC date is already tomorrow in New York). ``today_et`` is the only function that
turns an instant into "today"; everything else calls it.
"""

from __future__ import annotations

import math
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from datetime import UTC, date, datetime, timedelta
from typing import Final, Literal, Protocol, runtime_checkable
from zoneinfo import ZoneInfo

from shared.errors import InvalidDateError

__all__ = [
    "EXPLICIT_DATE_FORMAT",
    "PIPELINE_TZ",
    "RELATIVE_DATE_WORDS",
    "SIMULATED_CLOCK_ENV",
    "Clock",
    "FixedClock",
    "Relation",
    "SimulatedClock",
    "SystemClock",
    "clock_from_env",
    "parse_explicit_date",
    "real_time_scale",
    "relation_to_today",
    "resolve_game_date",
    "today_et",
]

PIPELINE_TZ: Final[ZoneInfo] = ZoneInfo("America/New_York")
"""The timezone in which the pipeline's calendar ("today", game dates) is defined."""

EXPLICIT_DATE_FORMAT: Final = "YYYY-MM-DD"

RELATIVE_DATE_WORDS: Final[dict[str, int]] = {"YESTERDAY": -1, "TODAY": 0, "TOMORROW": 1}
"""Relative words accepted by ``resolve_game_date`` → day offset from today (ET)."""

Relation = Literal["before_today", "today", "after_today"]

# ASCII digits only: ``\d`` would also match e.g. Arabic-Indic digits.
_EXPLICIT_DATE_RE: Final = re.compile(r"([0-9]{4})-([0-9]{2})-([0-9]{2})")

_EXPECTED: Final = f"expected an explicit date {EXPLICIT_DATE_FORMAT} (e.g. 2026-01-24) or one of " + ", ".join(
    RELATIVE_DATE_WORDS
)


@runtime_checkable
class Clock(Protocol):
    """Source of the current instant."""

    def now(self) -> datetime:
        """Return the current instant as an aware datetime in UTC."""
        ...


class SystemClock:
    """The real clock: ``datetime.now(UTC)``."""

    def now(self) -> datetime:
        """Return the current instant as an aware datetime in UTC."""
        return datetime.now(UTC)

    def __repr__(self) -> str:
        return "SystemClock()"


SIMULATED_CLOCK_ENV: Final = "PHASECHAIN_SIMULATED_CLOCK"
"""``<start ISO instant>|<anchor unix seconds>|<factor>``: every process of a local cloud shares one timeline."""


class SimulatedClock:
    """An accelerated clock anchored to the wall clock, so separate processes agree on "now".

    ``now() = start + (wall() - anchor) * factor``. ``phasectl local up --accelerate N`` puts
    one in ``$PHASECHAIN_SIMULATED_CLOCK`` for every function it starts, the scheduler and the
    demo's stand-in processors: a night's backoffs, deadline tiers and 10-minute monitor ticks
    then pass N times faster, and every decision sees the same instant.
    """

    def __init__(
        self,
        start: datetime,
        factor: float = 1.0,
        anchor: float | None = None,
        wall: Callable[[], float] = time.time,
    ) -> None:
        if isinstance(factor, bool) or not math.isfinite(factor) or factor < 1:
            raise ValueError(f"factor must be a finite number >= 1 (got {factor!r})")
        self.start = _require_aware(start, "start").astimezone(UTC)
        self.factor = float(factor)
        self._wall = wall
        self.anchor = wall() if anchor is None else anchor

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._wall() - self.anchor) * self.factor)

    def real_seconds_until(self, instant: datetime) -> float:
        """Wall-clock seconds until the simulated ``instant`` (0 when it has passed)."""
        return max(0.0, (instant - self.now()).total_seconds() / self.factor)

    def sleep_until(self, instant: datetime, stop: threading.Event) -> bool:
        """Wait for the simulated ``instant``; ``False`` when ``stop`` was set first."""
        while True:
            wait = self.real_seconds_until(instant)
            if wait <= 0:
                return True
            if stop.wait(min(wait, 0.5)):
                return False

    def to_env(self) -> str:
        return f"{self.start.isoformat()}|{self.anchor:.6f}|{self.factor:g}"

    @classmethod
    def from_env(cls, value: str) -> SimulatedClock:
        try:
            start_text, anchor_text, factor_text = value.split("|")
            start = datetime.fromisoformat(start_text)
            return cls(start, float(factor_text), anchor=float(anchor_text))
        except ValueError as exc:
            raise ValueError(
                f"{SIMULATED_CLOCK_ENV}={value!r} is not '<ISO instant>|<anchor unix seconds>|<factor>' ({exc})"
            ) from None

    def __repr__(self) -> str:
        return f"SimulatedClock({self.start.isoformat()}, factor={self.factor:g})"


def real_time_scale(clock: Clock) -> float:
    """Simulated seconds per real second: timeouts that bound real work (a claim's TTL) scale by it."""
    return clock.factor if isinstance(clock, SimulatedClock) else 1.0


def rfc3339(moment: datetime, timespec: str = "auto") -> str:
    """``moment`` in UTC as RFC 3339 text with a ``Z`` (as Cloud Logging and Pub/Sub write times);
    ``timespec`` as for ``datetime.isoformat`` (``"auto"`` leaves out zero microseconds)."""
    return moment.astimezone(UTC).isoformat(timespec=timespec).replace("+00:00", "Z")


def clock_from_env(environ: Mapping[str, str] | None = None) -> Clock:
    """The process clock: a ``SimulatedClock`` when ``$PHASECHAIN_SIMULATED_CLOCK`` is set, else the system clock."""
    raw = (os.environ if environ is None else environ).get(SIMULATED_CLOCK_ENV, "").strip()
    return SimulatedClock.from_env(raw) if raw else SystemClock()


def _require_aware(value: datetime, what: str) -> datetime:
    if not isinstance(value, datetime):
        raise TypeError(f"{what} must be a datetime, got {type(value).__name__}")
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{what} must be timezone-aware, got naive {value.isoformat()}")
    return value.astimezone(UTC)


class FixedClock:
    """A clock that only moves when told to (tests, benchmarks, the demo).

    Thread-safe: ``now``, ``advance`` and ``set`` may be called from several threads.

    Args:
        start: the initial instant; must be timezone-aware (any zone, stored as UTC).

    Raises:
        ValueError: ``start`` is naive.
    """

    def __init__(self, start: datetime) -> None:
        self._now = _require_aware(start, "FixedClock start")
        self._lock = threading.Lock()

    def now(self) -> datetime:
        """Return the current fixed instant (aware, UTC)."""
        with self._lock:
            return self._now

    def advance(self, delta: timedelta | None = None, /, **kwargs: float) -> datetime:
        """Move the clock by ``delta`` and/or ``timedelta(**kwargs)``; return the new instant.

        Example: ``clock.advance(hours=2, minutes=30)``. Negative amounts move it back.
        """
        step = timedelta(**kwargs)
        if delta is not None:
            step += delta
        with self._lock:
            self._now = self._now + step
            return self._now

    def set(self, dt: datetime) -> None:
        """Jump to ``dt`` (timezone-aware; stored as UTC).

        Raises:
            ValueError: ``dt`` is naive.
        """
        value = _require_aware(dt, "FixedClock.set value")
        with self._lock:
            self._now = value

    def __repr__(self) -> str:
        return f"FixedClock({self.now().isoformat()})"


def today_et(clock: Clock, tz: ZoneInfo = PIPELINE_TZ) -> date:
    """Return today's calendar date in the pipeline timezone. THE one place "today" is computed.

    Args:
        clock: the injected clock.
        tz: the pipeline timezone (``America/New_York`` unless the definition says otherwise).

    Raises:
        ValueError: the clock returned a naive datetime (a broken ``Clock``).
    """
    now = _require_aware(clock.now(), f"{type(clock).__name__}.now()")
    return now.astimezone(tz).date()


def parse_explicit_date(value: str) -> date:
    """Parse a strict ``YYYY-MM-DD`` date (message contracts accept nothing else).

    No surrounding whitespace, no relative words, no ``YYYYMMDD``, no single-digit
    month/day, and the date must exist in the calendar.

    Raises:
        InvalidDateError: anything else; the message quotes the value.
    """
    if not isinstance(value, str):
        raise InvalidDateError(
            f"invalid date {value!r} (type {type(value).__name__}): expected a string {EXPLICIT_DATE_FORMAT}",
            value=value,
        )
    match = _EXPLICIT_DATE_RE.fullmatch(value)
    if match is None:
        raise InvalidDateError(
            f"invalid date {value!r}: expected exactly {EXPLICIT_DATE_FORMAT} (e.g. 2026-01-24)",
            value=value,
        )
    year, month, day = (int(part) for part in match.groups())
    try:
        return date(year, month, day)
    except ValueError as exc:
        raise InvalidDateError(
            f"invalid date {value!r}: not a real calendar date ({exc}); expected {EXPLICIT_DATE_FORMAT}",
            value=value,
        ) from exc


def resolve_game_date(value: str | date, clock: Clock, tz: ZoneInfo = PIPELINE_TZ) -> date:
    """Resolve a game date given explicitly or as TODAY / YESTERDAY / TOMORROW.

    Surrounding whitespace is ignored and the words are case-insensitive (``" today "``
    is TODAY); explicit dates must be exactly ``YYYY-MM-DD``. Relative words are
    resolved in ``tz`` via ``today_et`` (lesson L14). A ``date`` is returned as is; a
    ``datetime`` is rejected because its calendar date depends on a timezone.

    Args:
        value: the date or word to resolve.
        clock: the injected clock (only read for relative words).
        tz: the pipeline timezone.

    Raises:
        InvalidDateError: the value is neither; the message quotes it and the expected format.
    """
    if isinstance(value, datetime):
        raise InvalidDateError(
            f"invalid game date {value!r}: a datetime is ambiguous across timezones; "
            "pass a date, or compute it with today_et()",
            value=value,
        )
    if isinstance(value, date):
        return value
    if not isinstance(value, str):
        raise InvalidDateError(f"invalid game date {value!r} (type {type(value).__name__}): {_EXPECTED}", value=value)
    text = value.strip()
    offset = RELATIVE_DATE_WORDS.get(text.upper())
    if offset is not None:
        return today_et(clock, tz) + timedelta(days=offset)
    try:
        return parse_explicit_date(text)
    except InvalidDateError as exc:
        raise InvalidDateError(f"invalid game date {value!r}: {_EXPECTED}", value=value) from exc


def relation_to_today(game_date: date, clock: Clock, tz: ZoneInfo = PIPELINE_TZ) -> Relation:
    """Say whether ``game_date`` is before, on or after today in ``tz``.

    The phase 3→4 transition uses this to pick its mode.
    """
    if isinstance(game_date, datetime) or not isinstance(game_date, date):
        raise InvalidDateError(f"invalid game date {game_date!r}: expected a date (not a datetime)", value=game_date)
    today = today_et(clock, tz)
    if game_date < today:
        return "before_today"
    if game_date > today:
        return "after_today"
    return "today"
