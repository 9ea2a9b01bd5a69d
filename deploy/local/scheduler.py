"""Local emulation of Cloud Scheduler: cron jobs that publish to Pub/Sub topics.

In the cloud, Cloud Scheduler jobs (``[schedules.*]`` in ``pipeline.toml``) publish a
message to a Pub/Sub topic on a unix-cron schedule evaluated in a time zone. Locally
(``phasectl local up``) the ``SchedulerEmulator`` does the same against the Pub/Sub
emulator, optionally on a ``shared.clock.SimulatedClock`` so that a day of ticks passes in
minutes.

Pieces:

* ``CronExpression``: the 5-field unix-cron syntax Cloud Scheduler accepts, with the
  vixie-cron day rule and explicit DST handling (a skipped wall time does not fire; a
  repeated wall time fires once, at its first occurrence).
* ``SleepingClock``: a ``shared.clock.Clock`` that can also sleep until one of its own
  instants (``shared.clock.SimulatedClock`` is one).
* ``ScheduledJob`` / ``job_from_schedule``: a job built from a ``Schedule``.
* ``SchedulerEmulator``: a daemon thread that publishes each firing once, in order.
* ``pubsub_publisher``: the publish callback for the official Pub/Sub client.
"""

from __future__ import annotations

import calendar
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.clock import Clock, _require_aware, rfc3339
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from shared.pipeline.definition import Schedule

__all__ = [
    "MAX_CATCH_UP",
    "PUBLISH_TIMEOUT_SECONDS",
    "CronExpression",
    "PublisherLike",
    "ScheduledJob",
    "SchedulerEmulator",
    "SleepingClock",
    "job_from_schedule",
    "pubsub_publisher",
]

_log = get_logger(__name__)

MAX_CATCH_UP: Final = 100
"""Most missed firings of one job published after a single wakeup (the rest are skipped)."""

PUBLISH_TIMEOUT_SECONDS: Final = 30.0
"""How long ``pubsub_publisher`` waits for the publish future."""

_SEARCH_YEARS: Final = 50
"""``next_after`` gives up after this many years (only a DST oddity could get there)."""


# ----------------------------------------------------------------------------- cron


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


# ----------------------------------------------------------------------------- clocks


@runtime_checkable
class SleepingClock(Clock, Protocol):
    """A ``Clock`` that can also wait (interruptibly) until one of its own instants."""

    def sleep_until(self, instant: datetime, stop: threading.Event) -> bool:
        """Wait until ``now() >= instant``; return False if ``stop`` was set first."""
        ...


# ----------------------------------------------------------------------------- jobs


@dataclass(frozen=True, slots=True)
class ScheduledJob:
    """One Cloud Scheduler job with a Pub/Sub target."""

    name: str
    cron: CronExpression
    topic: str
    timezone: ZoneInfo
    payload: bytes = b""

    def next_after(self, after: datetime) -> datetime:
        """The job's next firing strictly after ``after`` (aware UTC)."""
        return self.cron.next_after(after, self.timezone)


def job_from_schedule(name: str, schedule: Schedule, payload: bytes = b"") -> ScheduledJob:
    """Build the job for ``[schedules.<name>]`` of the pipeline definition.

    Raises:
        ValueError: the cron expression or the time zone is invalid (the message names the job).
    """
    try:
        cron = CronExpression.parse(schedule.cron)
    except ValueError as exc:
        raise ValueError(f"schedule {name!r}: {exc}") from exc
    try:
        tz = ZoneInfo(schedule.timezone)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"schedule {name!r}: unknown time zone {schedule.timezone!r}") from exc
    return ScheduledJob(name=name, cron=cron, topic=schedule.topic, timezone=tz, payload=payload)


# ----------------------------------------------------------------------------- emulator

Publish = Callable[[ScheduledJob, datetime], None]
OnError = Callable[[ScheduledJob, BaseException], None]


def _log_error(job: ScheduledJob, error: BaseException) -> None:
    _log.error(
        "scheduler job %s: publish to %s failed: %s",
        job.name,
        job.topic,
        error,
        exc_info=(type(error), error, error.__traceback__),
        extra={"fields": {"scheduler_job": job.name, "topic": job.topic}},
    )


class SchedulerEmulator:
    """Runs ``jobs`` on ``clock`` in a daemon thread, calling ``publish(job, scheduled_time)``.

    Each firing is published exactly once, in scheduled-time order (jobs due at the same
    instant in ``jobs`` order). When the clock has jumped past several firings between
    wakeups, each missed firing is still published, up to ``MAX_CATCH_UP`` per job per
    wakeup (the rest are skipped with a warning). A publish error goes to ``on_error``
    (default: logged) and the loop carries on.

    If ``clock`` is a ``SleepingClock`` (``SimulatedClock``) the thread sleeps until the
    next firing; any other ``Clock`` (e.g. ``FixedClock``) is polled every
    ``poll_interval`` real seconds.

    Args:
        jobs: the jobs; names must be unique.
        publish: called once per firing, from the emulator thread (or from ``fire_now``'s caller).
        clock: the time source.
        on_error: called with the job and the exception when ``publish`` raises in the thread.
        poll_interval: real seconds between polls of a clock that cannot sleep.

    Raises:
        ValueError: duplicate job names, or a non-positive ``poll_interval``.
    """

    def __init__(
        self,
        jobs: Iterable[ScheduledJob],
        publish: Publish,
        clock: Clock,
        on_error: OnError | None = None,
        *,
        poll_interval: float = 0.05,
    ) -> None:
        self._jobs: tuple[ScheduledJob, ...] = tuple(jobs)
        names = [job.name for job in self._jobs]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise ValueError(f"duplicate scheduler job names: {dupes}")
        if not poll_interval > 0:
            raise ValueError(f"poll_interval must be > 0, got {poll_interval!r}")
        self._publish = publish
        self._clock = clock
        self._on_error: OnError = on_error if on_error is not None else _log_error
        self._poll_interval = poll_interval
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()  # guards _history and _thread
        self._publish_lock = threading.Lock()  # one publish at a time (thread vs fire_now)
        self._history: list[tuple[str, datetime]] = []

    @property
    def jobs(self) -> tuple[ScheduledJob, ...]:
        """The jobs, in order."""
        return self._jobs

    @property
    def history(self) -> list[tuple[str, datetime]]:
        """A copy of the (job name, scheduled time) pairs published successfully so far."""
        with self._lock:
            return list(self._history)

    @property
    def running(self) -> bool:
        """Whether the emulator thread is alive."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self) -> SchedulerEmulator:
        """Start the daemon thread; returns ``self``.

        Each job's first firing is the first one strictly after ``clock.now()`` at this call.

        Raises:
            RuntimeError: already running.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("scheduler emulator already running")
            now = _require_aware(self._clock.now(), f"{type(self._clock).__name__}.now()")
            due_at = [job.next_after(now) for job in self._jobs]  # fixed here: no race with the caller
            self._stop.clear()
            self._thread = threading.Thread(target=self._run, args=(due_at,), name="scheduler-emulator", daemon=True)
            self._thread.start()
        return self

    def stop(self) -> None:
        """Stop the thread and join it (a publish in flight is let finish). Idempotent."""
        self._stop.set()
        with self._lock:
            thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread():
            thread.join()

    def __enter__(self) -> SchedulerEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def fire_now(self, name: str) -> datetime:
        """Publish job ``name`` now, like ``gcloud scheduler jobs run``; its schedule is unchanged.

        Runs in the caller's thread; a publish error is raised to the caller.

        Returns:
            The scheduled time used (``clock.now()``).

        Raises:
            KeyError: no job has that name.
        """
        for job in self._jobs:
            if job.name == name:
                moment = _require_aware(self._clock.now(), f"{type(self._clock).__name__}.now()")
                self._publish_one(job, moment)
                return moment
        raise KeyError(f"no scheduler job named {name!r} (jobs: {[j.name for j in self._jobs]})")

    # ------------------------------------------------------------------ internals

    def _publish_one(self, job: ScheduledJob, moment: datetime) -> None:
        with self._publish_lock:
            self._publish(job, moment)
            with self._lock:
                self._history.append((job.name, moment))

    def _wait_until(self, target: datetime) -> bool:
        clock = self._clock
        if isinstance(clock, SleepingClock):
            return clock.sleep_until(target, self._stop)
        while not self._stop.is_set():
            if clock.now() >= target:
                return True
            self._stop.wait(self._poll_interval)
        return False

    def _run(self, due_at: list[datetime]) -> None:
        while not self._stop.is_set():
            if not due_at:
                self._stop.wait()
                break
            if not self._wait_until(min(due_at)):
                break
            now = self._clock.now()
            for moment, _index, job in self._collect_due(due_at, now):
                if self._stop.is_set():
                    return
                try:
                    self._publish_one(job, moment)
                except Exception as exc:  # noqa: BLE001 - reported to on_error, never swallowed
                    self._report(job, exc)

    def _collect_due(self, due_at: list[datetime], now: datetime) -> list[tuple[datetime, int, ScheduledJob]]:
        """The firings due by ``now`` in (time, job order); advances ``due_at`` past ``now``."""
        due: list[tuple[datetime, int, ScheduledJob]] = []
        for index, job in enumerate(self._jobs):
            moment = due_at[index]
            count = 0
            while moment <= now and count < MAX_CATCH_UP:
                due.append((moment, index, job))
                count += 1
                moment = job.next_after(moment)
            if moment <= now:
                resume = job.next_after(now)
                _log.warning(
                    "scheduler job %s: more than %d missed firings in one wakeup; "
                    "published the first %d, skipping from %s to %s",
                    job.name,
                    MAX_CATCH_UP,
                    MAX_CATCH_UP,
                    moment.isoformat(),
                    resume.isoformat(),
                    extra={"fields": {"scheduler_job": job.name, "skipped_from": moment, "resume_at": resume}},
                )
                moment = resume
            due_at[index] = moment
        due.sort(key=lambda item: (item[0], item[1]))
        return due

    def _report(self, job: ScheduledJob, error: Exception) -> None:
        try:
            self._on_error(job, error)
        except Exception as handler_error:  # noqa: BLE001 - a broken handler must not kill the loop
            _log.error(
                "scheduler job %s: on_error handler failed: %s (while handling: %s)",
                job.name,
                handler_error,
                error,
                exc_info=(type(handler_error), handler_error, handler_error.__traceback__),
            )

    def __repr__(self) -> str:
        return f"SchedulerEmulator(jobs={[j.name for j in self._jobs]}, clock={self._clock!r}, running={self.running})"


# ----------------------------------------------------------------------------- Pub/Sub


class _Future(Protocol):
    def result(self, timeout: float | None = ...) -> Any: ...


class PublisherLike(Protocol):
    """The part of ``google.cloud.pubsub_v1.PublisherClient`` the publisher uses."""

    def topic_path(self, project: str, topic: str) -> str: ...

    def publish(self, topic: str, data: bytes, **attrs: str) -> _Future: ...


def pubsub_publisher(publisher_client: PublisherLike, project: str) -> Publish:
    """A ``publish`` callback sending ``job.payload`` to ``projects/<project>/topics/<job.topic>``.

    Attributes: ``scheduler_job=<job name>`` and ``scheduled_time=<RFC 3339 UTC>`` (Cloud
    Scheduler itself sets none). Waits for the publish future (``PUBLISH_TIMEOUT_SECONDS``)
    so a failure (e.g. a missing topic) raises in the caller.
    """

    def publish(job: ScheduledJob, scheduled_time: datetime) -> None:
        topic = publisher_client.topic_path(project, job.topic)
        future = publisher_client.publish(
            topic, job.payload, scheduler_job=job.name, scheduled_time=rfc3339(scheduled_time)
        )
        future.result(timeout=PUBLISH_TIMEOUT_SECONDS)

    return publish
