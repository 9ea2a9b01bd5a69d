"""The schedule dispatcher: every due (job, fire slot) run once, recorded, retried within bounds.

One Cloud Scheduler job ticks every minute (``ScheduleTick``). Each tick finds the slots that fired
within the catch-up window (``plan.due_slots``: each job's cron in its own zone, on days in its
season window), reads their run documents in one batch, and for each slot not finished runs the
claim → act → record protocol (``runs.ScheduleRuns``): a create-if-absent claim (a duplicate tick,
from any process, finds the run and does nothing), one attempt at the target, then a fenced
finish that writes the run, the job's summary and the ``phase_execution_log`` row together.

Outcomes: 2xx → ``succeeded``; 5xx, 408, 429, a timeout or a refused connection → ``retry_wait``
(the next tick after ``retry_delay`` tries again, the same stored request) and, after
``max_attempts``, ``failed``; another 4xx → ``client_error`` (recorded and alerted, not retried);
404, a missing topic or an unresolvable service URL → ``config_error``. Terminal failures are
logged with an ``alert`` label; the monitor turns them into ``schedule_failed`` /
``schedule_stale_target`` findings and reports slots with no run as ``schedule_missed``.

A tick is bounded: slots run concurrently (a few threads), each attempt's timeout is cut to what is
left of the tick's budget, and no slot starts once the budget is spent (it runs on a later tick,
still inside the catch-up window).
"""

from __future__ import annotations

import threading
import uuid
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import Clock
from shared.contracts.messages import ScheduleTick
from shared.deferred import Deferred, deferred_attribute
from shared.pipeline.definition import Job, PipelineDefinition
from shared.schedules.cron import fires_between
from shared.schedules.plan import (
    NO_OVERRIDES,
    TERMINAL,
    Overrides,
    Slot,
    cron_of,
    due_slots,
    lookback_for,
    retry_delay,
    season_on,
    slot_on,
)
from shared.schedules.runs import ScheduleRuns
from shared.schedules.targets import Targets
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from shared.orchestration.outbox import ExecutionLogWriter

_log = get_logger("shared.schedules.dispatcher")
WORKERS = 4
MIN_ATTEMPT_SECONDS = 5.0  # no attempt starts with less budget than this
STRAGGLER_EVERY_MINUTES = 5  # how often a tick also looks for retries outside the catch-up window
STRAGGLER_LIMIT = 20


@dataclass
class SlotResult:
    slot: Slot
    # succeeded | retry_wait | failed | client_error | config_error (this tick's attempt), or why it did
    # not run: done | running_elsewhere | waiting | deferred | lost
    outcome: str
    detail: str = ""

    def as_dict(self) -> dict[str, Any]:
        return {
            "job": self.slot.job,
            "slot": self.slot.key,
            "run_id": self.slot.run_id,
            "outcome": self.outcome,
            "detail": self.detail,
        }


@dataclass
class DispatchReport:
    now: datetime
    results: list[SlotResult] = field(default_factory=list)

    def count(self, outcome: str) -> int:
        return sum(1 for r in self.results if r.outcome == outcome)

    @property
    def ran(self) -> list[SlotResult]:
        return [r for r in self.results if r.outcome in ("succeeded", "retry_wait", *TERMINAL)]

    def summary(self) -> str:
        if not self.results:
            return "no job due"
        parts: dict[str, int] = {}
        for r in self.results:
            parts[r.outcome] = parts.get(r.outcome, 0) + 1
        return ", ".join(f"{n} {k}" for k, n in sorted(parts.items()))


class ScheduleDispatcher:
    """Runs due job slots; its clock, run store, targets and log writer are injected."""

    log_writer: deferred_attribute[ExecutionLogWriter] = deferred_attribute()

    def __init__(
        self,
        *,
        definition: PipelineDefinition,
        clock: Clock,
        runs: ScheduleRuns,
        targets: Targets,
        log_writer: ExecutionLogWriter | Deferred[ExecutionLogWriter],
        budget_seconds: float = 100.0,
        monotonic: Callable[[], float] | None = None,
    ) -> None:
        import time

        self.definition = definition
        self.clock = clock
        self.runs = runs
        self.targets = targets
        self.log_writer = log_writer
        self.budget_seconds = budget_seconds
        self._monotonic = monotonic or time.monotonic
        # Runs this instance knows are finished (terminal runs never change): a warm instance does not
        # re-read them on every tick of the catch-up window (measured: 20 reads per slot without it).
        self._finished: dict[str, datetime] = {}
        self._finished_lock = threading.Lock()

    # -- a tick --------------------------------------------------------------------------
    def tick(self, tick: ScheduleTick | None = None) -> DispatchReport:
        tick = tick or ScheduleTick()
        now = self.clock.now()
        report = DispatchReport(now)
        if tick.job:
            slots = [self.manual_slot(tick, now)]
        else:
            slots = due_slots(self.definition, now)
            if slots:  # the operator's pauses only matter (and are only read) when something is due
                overrides = Overrides.from_doc(self.runs.overrides())
                if overrides != NO_OVERRIDES:
                    slots = due_slots(self.definition, now, overrides=overrides)
        if not tick.job:
            slots = self._unfinished(slots, now)
            if now.minute % STRAGGLER_EVERY_MINUTES == 0:  # retries the window no longer covers
                known = {s.run_id for s in slots}
                slots += [s for s in self._stragglers(now) if s.run_id not in known]
        if not slots:
            return report
        existing = self.runs.get_many([s.run_id for s in slots])  # one read for the whole tick
        self._remember(s for s in slots if (existing.get(s.run_id) or {}).get("status") in TERMINAL)
        todo: list[Slot] = []
        for slot in slots:
            run = existing.get(slot.run_id)
            state = _skip(run, now)
            if state is not None:
                if tick.job:
                    report.results.append(SlotResult(slot, state, _describe(run)))
                continue
            todo.append(slot)
        deadline = self._monotonic() + self.budget_seconds
        if todo:
            with ThreadPoolExecutor(max_workers=min(WORKERS, len(todo)), thread_name_prefix="schedule") as pool:
                futures = [pool.submit(self.run_slot, s, now, deadline, tick.requested_by) for s in todo]
                report.results.extend(f.result() for f in futures)
        self._remember(r.slot for r in report.results if r.outcome in TERMINAL)
        if report.ran:
            self.log_writer.flush(self.runs.outbox)
        return report

    def _stragglers(self, now: datetime) -> list[Slot]:
        """Runs waiting for a retry whose time has come but whose slot is older than the catch-up window
        (a hand-run of an older day, a ``--force`` generation): one small query, not every tick."""
        from zoneinfo import ZoneInfo

        out = []
        for doc in self.runs.waiting_for_retry(limit=STRAGGLER_LIMIT):
            at, job = doc.get("slot_at"), doc.get("job")
            nxt = doc.get("next_attempt_at")
            if not isinstance(at, datetime) or not isinstance(job, str) or not isinstance(nxt, datetime) or nxt > now:
                continue
            try:
                self.definition.job(job)
                ZoneInfo(str(doc.get("zone")))
            except (KeyError, ValueError):
                continue  # a job no longer defined: its run stays as it is (the monitor does not judge it)
            out.append(Slot(job, at, str(doc.get("zone")), int(doc.get("manual") or 0)))
        return out

    def _unfinished(self, slots: list[Slot], now: datetime) -> list[Slot]:
        horizon = now - timedelta(minutes=self.definition.dispatcher.catch_up_minutes + 5)
        with self._finished_lock:
            for run_id in [r for r, at in self._finished.items() if at < horizon]:
                del self._finished[run_id]
            return [s for s in slots if s.run_id not in self._finished]

    def _remember(self, slots: Iterable[Slot]) -> None:
        with self._finished_lock:
            for slot in slots:
                if not slot.manual:
                    self._finished[slot.run_id] = slot.at

    def manual_slot(self, tick: ScheduleTick, now: datetime) -> Slot:
        """A hand-run slot: the job's slot on ``game_date`` (default: its latest up to now); with
        ``force``, a new generation of it (a run of its own, beside the scheduled one)."""
        from shared.errors import ConfigError

        try:
            job = self.definition.job(str(tick.job))
        except KeyError as exc:
            raise ConfigError(str(exc)) from exc
        zone = self.definition.job_zone(job)
        if tick.game_date is None:  # its latest slot up to now, in season or not (a person asked for it)
            fires = list(fires_between(cron_of(job), zone, now - lookback_for(job), now))
            if not fires:
                raise ConfigError(
                    f"job {job.name} ({job.cron}, {zone.key}) has no slot in the last {lookback_for(job)}"
                )
            slot = Slot(job.name, fires[-1], zone.key)
        else:
            found = slot_on(self.definition, job, tick.game_date)
            if found is None:
                raise ConfigError(
                    f"job {job.name} ({job.cron}, {zone.key}) has no slot on {tick.game_date.isoformat()}"
                )
            slot = found
        if not tick.force:
            return slot
        taken = self.runs.get_many([Slot(slot.job, slot.at, slot.zone, n).run_id for n in range(1, 21)])
        manual = next(n for n in range(1, 22) if Slot(slot.job, slot.at, slot.zone, n).run_id not in taken)
        return Slot(slot.job, slot.at, slot.zone, manual)

    # -- one slot ------------------------------------------------------------------------
    def run_slot(self, slot: Slot, now: datetime, deadline: float, requested_by: str | None = None) -> SlotResult:
        job = self.definition.job(slot.job)
        left = deadline - self._monotonic()
        if left < MIN_ATTEMPT_SECONDS:
            return SlotResult(slot, "deferred", "the tick's budget is spent; a later tick runs it")
        season = season_on(self.definition.seasons, slot.day, self.definition.waves, job)
        request = self.targets.request(job, slot, season)
        owner = f"dispatch:{uuid.uuid4().hex[:12]}"
        claim = self.runs.claim(slot, owner, now, request, requested_by)
        if claim.result != "claimed":
            return SlotResult(slot, claim.result, _describe(claim.run))
        stored = claim.run.get("request") or request  # the first attempt's bytes, every time
        limit = float(stored.get("timeout_seconds") or 60)
        attempt = self.targets.send(stored, timeout=max(1.0, min(limit, deadline - self._monotonic())))
        status, next_at = self._status(job, attempt.verdict, claim.attempt, now)
        outcome = attempt.as_dict()
        row = self._log_row(job, slot, status, now, claim.attempt, outcome, stored)
        if not self.runs.finish(
            slot, claim, self.clock.now(), status=status, outcome=outcome, next_attempt_at=next_at, log_row=row
        ):
            return SlotResult(slot, "lost", "the claim was taken over before the outcome was recorded")
        self._report(job, slot, status, claim.attempt, outcome)
        return SlotResult(slot, status, _attempt_text(outcome))

    def _status(self, job: Job, verdict: str, attempt: int, now: datetime) -> tuple[str, datetime | None]:
        if verdict == "retry":
            if attempt < job.max_attempts:
                return "retry_wait", now + retry_delay(job, attempt)
            return "failed", None
        return verdict, None

    def _log_row(
        self, job: Job, slot: Slot, status: str, now: datetime, attempt: int, outcome: dict[str, Any], request: Any
    ) -> tuple[str, dict[str, Any]]:
        from shared.orchestration.execution_log import build_row

        target = request.get("url") or request.get("topic") or ""
        if isinstance(target, str) and "?" in target:
            target = target.split("?", 1)[0]
        return build_row(
            transition=job.name,
            game_date=slot.day,
            status=status,
            now=now,
            correlation_id=slot.run_id,
            trigger_id=slot.run_id,
            start_time=slot.at,
            games_processed=None,
            metadata={
                "kind": "schedule",
                "slot": slot.key,
                "slot_at": slot.at.isoformat(),
                "attempt": attempt,
                "max_attempts": job.max_attempts,
                "target": target,
                "mode": job.mode,
                "manual": slot.manual,
                **outcome,
            },
        )

    def _report(self, job: Job, slot: Slot, status: str, attempt: int, outcome: dict[str, Any]) -> None:
        when = slot.local.strftime("%Y-%m-%d %H:%M %Z")
        text = f"{job.name} {when}: {status} (attempt {attempt}/{job.max_attempts}): {_attempt_text(outcome)}"
        labels = {"job": job.name, "run_id": slot.run_id, "status": status}
        if status == "config_error":
            _log.error(text, extra={"labels": {**labels, "alert": "schedule_stale_target"}})
        elif status in ("failed", "client_error"):
            _log.error(text, extra={"labels": {**labels, "alert": "schedule_failed"}})
        elif status == "retry_wait":
            _log.warning(text, extra={"labels": labels})
        else:
            _log.info(text, extra={"labels": labels})


def _skip(run: dict[str, Any] | None, now: datetime) -> str | None:
    """Why a slot's run needs nothing this tick (None: claim it)."""
    if run is None:
        return None
    status = run.get("status")
    if status in TERMINAL:
        return "done"
    if status == "running" and isinstance(run.get("lease_until"), datetime) and run["lease_until"] > now:
        return "running_elsewhere"
    if status == "retry_wait" and isinstance(run.get("next_attempt_at"), datetime) and run["next_attempt_at"] > now:
        return "waiting"
    return None


def _describe(run: dict[str, Any] | None) -> str:
    if not run:
        return ""
    outcome = run.get("outcome") or {}
    return f"{run.get('status')} after {run.get('attempts')} attempt(s)" + (
        f": {_attempt_text(outcome)}" if outcome else ""
    )


def _attempt_text(outcome: dict[str, Any]) -> str:
    bits = []
    if outcome.get("http_status") is not None:
        bits.append(f"HTTP {outcome['http_status']}")
    if outcome.get("error") and not str(outcome.get("error")).startswith("HTTP "):
        bits.append(str(outcome["error"]))
    if outcome.get("message_id"):
        bits.append(f"message {outcome['message_id']}")
    if outcome.get("duration_ms") is not None:
        bits.append(f"{outcome['duration_ms']} ms")
    return ", ".join(bits)
