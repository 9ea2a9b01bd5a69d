"""Local emulation of Cloud Scheduler: cron jobs that publish to Pub/Sub topics.

In the cloud, Cloud Scheduler jobs (``[schedules.*]`` in ``pipeline.toml``, and the schedule
dispatcher's one-minute tick that runs every ``[[jobs]]`` entry and sensor slot) publish a
message to a Pub/Sub topic on a unix-cron schedule evaluated in a time zone. Locally
(``phasectl local up``) the ``SchedulerEmulator`` does the same against the Pub/Sub
emulator, optionally on a ``shared.clock.SimulatedClock`` so that a day of ticks passes in
minutes. A job can be paused and resumed (``gcloud scheduler jobs pause|resume``): a paused
job's firings are not published (``skipped`` lists them), and resuming does not make them up.

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

import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any, Final, Protocol, runtime_checkable
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from shared.clock import Clock, _require_aware, rfc3339
from shared.schedules.cron import CronExpression
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
        self._paused: set[str] = set()
        self._skipped: list[tuple[str, datetime]] = []

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
    def skipped(self) -> list[tuple[str, datetime]]:
        """A copy of the (job name, scheduled time) firings not published because the job was paused."""
        with self._lock:
            return list(self._skipped)

    @property
    def paused(self) -> frozenset[str]:
        with self._lock:
            return frozenset(self._paused)

    def pause(self, name: str) -> None:
        """``gcloud scheduler jobs pause``: the job's firings are skipped until ``resume``.

        Raises:
            KeyError: no job has that name.
        """
        self._job(name)
        with self._lock:
            self._paused.add(name)

    def resume(self, name: str) -> None:
        """``gcloud scheduler jobs resume``: the job fires again from its next firing (no catch-up).

        Raises:
            KeyError: no job has that name.
        """
        self._job(name)
        with self._lock:
            self._paused.discard(name)

    def _job(self, name: str) -> ScheduledJob:
        for job in self._jobs:
            if job.name == name:
                return job
        raise KeyError(f"no scheduler job named {name!r} (jobs: {[j.name for j in self._jobs]})")

    @property
    def running(self) -> bool:
        """Whether the emulator thread is alive."""
        with self._lock:
            return self._thread is not None and self._thread.is_alive()

    def start(self, after: datetime | None = None) -> SchedulerEmulator:
        """Start the daemon thread; returns ``self``.

        Each job's first firing is the first one strictly after ``clock.now()`` at this call. With
        ``after`` (a restart: the instant the previous emulator stopped), each job whose firings
        fell in ``(after, now]`` fires its latest one at once (a job missed while the emulator was
        down runs once, not once per missed firing).

        Raises:
            RuntimeError: already running.
        """
        with self._lock:
            if self._thread is not None and self._thread.is_alive():
                raise RuntimeError("scheduler emulator already running")
            now = _require_aware(self._clock.now(), f"{type(self._clock).__name__}.now()")
            due_at = [self._first_due(job, now, after) for job in self._jobs]  # fixed here: no race
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

    @staticmethod
    def _first_due(job: ScheduledJob, now: datetime, after: datetime | None) -> datetime:
        if after is None:
            return job.next_after(now)
        missed = job.next_after(_require_aware(after, "after"))
        if missed > now:
            return missed
        for _ in range(100_000):  # the latest firing in (after, now]
            following = job.next_after(missed)
            if following > now:
                break
            missed = following
        return missed

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
                with self._lock:
                    paused = job.name in self._paused
                    if paused:
                        self._skipped.append((job.name, moment))
                if paused:
                    continue
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
