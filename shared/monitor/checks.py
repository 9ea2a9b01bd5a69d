"""The monitor's pass: every 10 minutes, run every check, each on its own, and write the heartbeat.

The checks, by kind:

- per transition and date of the recent window (``shared.monitor.transition_dates``): re-evaluated
  through the *same* ``TransitionService.evaluate`` the transition functions use (a deadline tier
  fires through the same claim protocol) → stuck, blocked, gate_error, handoff, silent, gate_alert,
  deadline_trigger; and the grid over ``grid_days`` (the schedule read, ``shared.monitor.schedule_read``:
  one query, re-used for an hour while no game is scheduled; the grid summary);
- sensors past their ``overdue_after`` (``shared.monitor.sensors``); SLO breaches (``shared.monitor.slo_check``);
- the retry queue's health (``shared.monitor.retry_queue``, from the auto-retry heartbeat while it is
  fresh): ``failed_permanent``, dispatch failing, overdue ``pending`` rows;
- the auto-retry heartbeat's age (``shared.monitor.heartbeats``);
- dead letters (``shared.monitor.dead_letters``): each function's dead-letter subscription, peeked.
- quarantine floods (``shared.monitor.quarantine_flood``): a function past its quarantine rate cap;
- each scheduled job's latest slot (``shared.monitor.schedules``): missed, failed, stale target;
- the self-heal checkpoints' verdicts (``shared.monitor.heal_findings``): healing that did not fix it;
- what the last gap pass recorded (``shared.heal.gap_report``): ``gap``, with counts;

Isolation (lesson L23: a sweep isolates its items, so one bad item never loses the others' findings
or the heartbeat): every (transition, date) evaluation and every other check runs on its own. One
that raises becomes a ``check_error`` finding (ERROR, naming the item and the exception, at most 500
characters) and the pass goes on; the heartbeat is always written, with the number of errors and
findings. Then the outbox left by the transitions is delivered.

Bounded (lesson L26: a hang is not an error): a check stuck on a backend that accepts the connection
and never answers raises nothing, so isolation alone would wait for it until the function's timeout
killed the pass, heartbeat and all. The pass has a budget below the monitor function's timeout
(``PassBudget``: the ``[deploy]`` timeout of ``phase_transition_monitor``, less a margin); the checks
get ``CHECKS_SHARE`` of it, split by ``CHECK_WEIGHTS`` (each check gets its weight's share of what
is left when it starts: time a fast check does not use goes to the later ones). Each check runs on
a daemon thread, waited for until its share ends (``shared.deadline.run_within``); one that is still
running then becomes a ``check_timeout`` finding (ERROR) naming the check, the item it was on and
the backend it was waiting on; what it had found until then is kept, it is asked to stop at its
next item, and the pass goes on. The thread is never joined: its call ends at the client's own
deadline (``shared.deadline``). The alerts and the heartbeat have the rest of the budget
(``shared.monitor.runtime``); the heartbeat write is bounded too.

Findings are deduplicated by ``shared.monitor.alerts``.
"""

from __future__ import annotations

import functools
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from shared.clock import Clock, today_et
from shared.deadline import run_within
from shared.deferred import Deferred, deferred_attribute
from shared.errors import ConfigError, TransientError
from shared.gcp import subscriber_client
from shared.heal.gap_report import gap_findings
from shared.monitor.dead_letters import DeadLetterRoute, dead_letter_routes, missing_subscriptions, peek_dead_letters
from shared.monitor.findings import Finding, MonitorReport, check_error, check_timeout
from shared.monitor.heal_findings import self_heal_findings
from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID, retry_heartbeat_findings
from shared.monitor.postponed import postponed_findings
from shared.monitor.quarantine_flood import quarantine_flood_findings
from shared.monitor.retry_queue import retry_queue_findings
from shared.monitor.schedule_read import read_final_games
from shared.monitor.schedules import schedule_run_findings
from shared.monitor.sensors import sensor_checks
from shared.monitor.slo_check import slo_check
from shared.monitor.transition_dates import TransitionDateChecks, grid_gaps
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import PipelineDefinition
from shared.structured_log import get_logger

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import bigquery, firestore

    from shared.orchestration.outbox import OutboxDelivery
    from shared.orchestration.timed import TimedTriggerService

_log = get_logger("shared.monitor.checks")
T = TypeVar("T")

MONITOR_FUNCTION = "phase_transition_monitor"
MONITOR_TIMEOUT_ENV = "PHASECHAIN_MONITOR_TIMEOUT"  # seconds standing in for the [deploy] timeout (tests)
# Cloud Functions' own default timeout: what a monitor deployed with no timeout in [deploy] gets
PLATFORM_DEFAULT_TIMEOUT = 60
# Of the function's timeout, never planned: the cold start before the pass (imports, clients,
# services), the log line after it, and the platform's clock starting before ours.
MARGIN_SHARE = 0.10
# Of the pass: the checks, then the alerts (the dedup records, up to max_alerts_per_run Slack posts
# of at most 10 s each). The heartbeat write has the rest: at least 10 %, and what the checks and
# the alerts did not use.
CHECKS_SHARE = 0.75
ALERTS_SHARE = 0.15
# Each check's weight in the split of the checks' share: the per-date re-evaluations (every
# transition and date of the window, a gate query or a publish among them) and the outbox (up to
# 20 batches of log rows, then the hand-offs) do the most calls; the others one to a few each.
CHECK_WEIGHTS: dict[str, float] = {
    "schedule": 1,
    "transition_dates": 4,
    "sensors": 1,
    "slo": 1,
    "grid": 1,
    "retry_queue": 1,
    "retry_heartbeat": 1,
    "dead_letters": 1,
    "quarantine_flood": 1,
    "schedule_runs": 1,
    "self_heal": 1,
    "gaps": 1,
    "postponed": 1,
    "outbox": 2,
}
# What each check calls: named in its check_timeout when no call of it is in flight
CHECK_BACKENDS: dict[str, tuple[str, ...]] = {
    "schedule": ("Firestore", "BigQuery"),
    "transition_dates": ("Firestore", "BigQuery", "Pub/Sub"),
    "sensors": ("Firestore", "BigQuery"),
    "slo": ("Firestore", "BigQuery"),
    "grid": ("Firestore",),
    "retry_queue": ("Firestore", "BigQuery"),
    "retry_heartbeat": ("Firestore",),
    "dead_letters": ("Pub/Sub",),
    "quarantine_flood": ("Firestore",),
    "schedule_runs": ("Firestore",),
    "self_heal": ("Firestore",),
    "gaps": ("Firestore",),
    "postponed": ("Firestore",),
    "outbox": ("Firestore", "BigQuery"),
}


@dataclass(frozen=True)
class PassDeadlines:
    """One pass's deadlines (``time.monotonic()`` instants): the checks end by ``checks``, the alerts
    by ``alerts``, the heartbeat write by ``end``."""

    checks: float
    alerts: float
    end: float

    @staticmethod
    def left(until: float) -> float:
        """Seconds from now until ``until`` (never negative)."""
        return max(0.0, until - time.monotonic())


@dataclass(frozen=True)
class PassBudget:
    """The seconds of one monitor pass (checks, alerts, heartbeat), below the function's timeout."""

    seconds: float

    @classmethod
    def for_definition(cls, definition: PipelineDefinition, environ: Mapping[str, str] | None = None) -> PassBudget:
        """``MARGIN_SHARE`` below the monitor function's timeout: its ``[deploy]`` setting (else
        Cloud Functions' default), or ``$PHASECHAIN_MONITOR_TIMEOUT`` seconds in its place.

        Raises:
            ConfigError: ``$PHASECHAIN_MONITOR_TIMEOUT`` is set but not a positive number of seconds.
        """
        raw = ((os.environ if environ is None else environ).get(MONITOR_TIMEOUT_ENV) or "").strip()
        if raw:
            try:
                timeout = float(raw)
            except ValueError:
                timeout = float("nan")
            if not 0 < timeout <= 3600:  # also false for nan
                raise ConfigError(f"{MONITOR_TIMEOUT_ENV}={raw!r} is not a number of seconds in (0, 3600]")
        else:
            timeout = definition.deploy.settings_for(MONITOR_FUNCTION).timeout_seconds or PLATFORM_DEFAULT_TIMEOUT
        return cls(timeout * (1 - MARGIN_SHARE))

    def start(self) -> PassDeadlines:
        """The deadlines of a pass starting now."""
        now = time.monotonic()
        checks = now + self.seconds * CHECKS_SHARE
        return PassDeadlines(checks=checks, alerts=checks + self.seconds * ALERTS_SHARE, end=now + self.seconds)

    @property
    def heartbeat_seconds(self) -> float:
        """How long a heartbeat write is waited for when the pass gives it no deadline."""
        return self.seconds * (1 - CHECKS_SHARE - ALERTS_SHARE)


@dataclass
class CheckRun:
    """One check of a pass, on its worker thread: what it found so far (``report``, merged into the
    pass's), the item it is on (``at``), and whether the pass stopped waiting for it (``stopped``:
    it ends at its next item)."""

    report: MonitorReport
    ends: float  # time.monotonic() when its share ends: work that can stop between steps stops there
    at: str | None = None
    _stop: threading.Event = field(default_factory=threading.Event)

    @property
    def stopped(self) -> bool:
        return self._stop.is_set()

    def stop(self) -> None:
        self._stop.set()


class TransitionMonitor:
    """One monitor pass over the definition's transitions and sensors.

    ``bigquery_client`` and ``subscriber`` may be given as clients or as ``Deferred`` factories (the
    composition root does the latter: a pass builds a client only when a check first uses it; a
    pass without dead letters to peek loads no gRPC channel). No ``subscriber``: one is built from
    the environment on first use.
    """

    bq: deferred_attribute[bigquery.Client] = deferred_attribute()
    subscriber: deferred_attribute[pubsub_v1.SubscriberClient] = deferred_attribute()  # reads the dead letters

    def __init__(
        self,
        definition: PipelineDefinition,
        clock: Clock,
        firestore_client: firestore.Client,
        bigquery_client: bigquery.Client | Deferred[bigquery.Client],
        project: str,
        services: dict[str, TransitionService],
        subscriber: pubsub_v1.SubscriberClient | Deferred[pubsub_v1.SubscriberClient] | None = None,
        sensors: Mapping[str, TimedTriggerService] | None = None,
        outbox: OutboxDelivery | None = None,
        budget: PassBudget | None = None,
    ) -> None:
        self.budget = budget or PassBudget.for_definition(definition)  # the pass's seconds (checks, alerts, heartbeat)
        self.outbox = outbox  # log rows and retry hand-offs left by the transitions (delivered every pass)
        self.definition = definition
        self.clock = clock
        self.firestore = firestore_client
        self.bq = bigquery_client
        self.project = project
        self.services = services
        self.subscriber = subscriber if subscriber is not None else Deferred(subscriber_client)
        self.sensors = dict(sensors or {})  # the sensors with an `overdue_after`, by name
        self.tz = ZoneInfo(definition.pipeline.timezone)

    # -- the run ----------------------------------------------------------------------------
    def run(
        self,
        lookback_days: int | None = None,
        *,
        dry_run: bool = False,
        write_heartbeat: bool = True,
        deadlines: PassDeadlines | None = None,
    ) -> MonitorReport:
        """One pass. Never raises for a failing check (each is isolated, L23) nor waits past a check's
        share of ``deadlines.checks`` (a ``check_timeout`` finding, L26); writes the heartbeat unless
        ``dry_run`` or ``write_heartbeat=False`` (the caller writes it after alerting)."""
        deadlines = deadlines or self.budget.start()
        now = self.clock.now()
        report = MonitorReport(ran_at=now)
        settings = self.definition.monitor
        today = today_et(self.clock, self.tz)
        window = [today - timedelta(days=n) for n in range(lookback_days or settings.lookback_days, -1, -1)]
        grid_start = today - timedelta(days=settings.grid_days)
        plan = [name for name in CHECK_WEIGHTS if not (dry_run and name == "outbox")]

        def bounded(name: str, work: Callable[[CheckRun], T]) -> T | None:
            share = PassDeadlines.left(deadlines.checks) * CHECK_WEIGHTS[name] / sum(CHECK_WEIGHTS[n] for n in plan)
            plan.remove(name)
            return self._bounded(report, name, share, work)

        # the schedule read feeds the grid and the silent check; when it fails, both go without
        # (silent finds nothing this pass) and the grid reports the error
        schedule = (self.bq, self.firestore, self.project, self.definition, (grid_start, window[0], today), now)
        final_games = bounded(
            "schedule",
            lambda run: self._isolated(
                run.report, "grid", lambda: read_final_games(*schedule, save=not dry_run), check="grid"
            ),
        )
        bounded("transition_dates", lambda run: self._transition_dates(run, window, final_games or {}, dry_run))
        bounded("sensors", lambda run: self._sensors(run, window, final_games or {}))
        bounded("slo", slo_check(self, window, final_games or {}))  # [slo]: slo_breach
        if final_games is not None:
            grid = functools.partial(grid_gaps, self.firestore, self.definition, grid_start, today, final_games)
            bounded("grid", lambda run: self._extend(run, "grid", grid, check="grid"))
        else:
            plan.remove("grid")
        bounded("retry_queue", lambda run: self._extend(run, "retry_queue", self._retry_queue, check="retry_queue"))
        bounded(
            "retry_heartbeat",
            lambda run: self._extend(
                run,
                "retry_heartbeat",
                lambda: retry_heartbeat_findings(self.firestore, self.definition, now, run.report),
                check="retry_heartbeat",
            ),
        )
        bounded("dead_letters", self._dead_letters)
        flood = functools.partial(quarantine_flood_findings, self.firestore, self.definition, self.clock.now())
        bounded("quarantine_flood", lambda run: self._extend(run, "quarantine_flood", flood, check="quarantine_flood"))
        runs = functools.partial(schedule_run_findings, self.firestore, self.definition, now)
        bounded("schedule_runs", lambda run: self._extend(run, "schedule_runs", runs, check="schedule_runs"))
        heal = functools.partial(self_heal_findings, self.firestore, self.definition, today)
        bounded("self_heal", lambda run: self._extend(run, "self_heal", heal, check="self_heal"))
        gaps = functools.partial(gap_findings, self.firestore, self.definition, now)  # what the gap pass recorded
        bounded("gaps", lambda run: self._extend(run, "gaps", gaps, check="gaps"))
        postponed = functools.partial(postponed_findings, self.firestore, self.definition, window)
        bounded("postponed", lambda run: self._extend(run, "postponed", postponed, check="postponed"))
        if not dry_run:
            bounded(
                "outbox",
                lambda run: self._isolated(
                    run.report, "outbox", lambda: self._deliver_outbox(run.ends), check="outbox"
                ),
            )
        if not dry_run and write_heartbeat:
            self.write_heartbeat(report, seconds=PassDeadlines.left(deadlines.end))
        return report

    def _bounded(self, report: MonitorReport, name: str, seconds: float, work: Callable[[CheckRun], T]) -> T | None:
        """``work`` on a worker thread for at most ``seconds``: its result and findings, or what it found
        until then and a ``check_timeout`` finding (the thread is asked to stop, never joined)."""
        run = CheckRun(MonitorReport(ran_at=report.ran_at), ends=time.monotonic() + seconds)
        within = run_within(seconds, lambda: work(run), name=f"monitor-{name}")
        if not within.done:
            run.stop()
        at = run.at
        report.merge(run.report)
        if within.done:
            if within.error is not None:
                if not isinstance(within.error, Exception):
                    raise within.error
                finding = check_error(name, within.error, check=name)  # a bug of the check itself (it isolates)
                report.findings.append(finding)
                _log.error(
                    "monitor %s",
                    finding.message,
                    exc_info=within.error,
                    extra={"labels": {"alert": "check_error", "check": name}},
                )
                return None
            return within.value
        waiting_on = within.waiting_on or [f"{b} (no call in flight)" for b in CHECK_BACKENDS.get(name, ())]
        finding = check_timeout(name, seconds, waiting_on, at=at)
        report.findings.append(finding)
        _log.error(
            "monitor %s",
            finding.message,
            extra={"labels": {"alert": "check_timeout", "check": name}, "fields": {"waiting_on": waiting_on}},
        )
        return None

    def _extend(self, run: CheckRun, what: str, find: Callable[[], list[Finding]], *, check: str) -> None:
        """One isolated check whose findings join the run's."""
        run.report.findings += self._isolated(run.report, what, find, check=check) or []

    def _retry_queue(self) -> list[Finding]:
        return retry_queue_findings(self.bq, self.firestore, self.project, self.definition, self.clock.now())

    def _transition_dates(
        self, run: CheckRun, window: list[date], final_games: Mapping[date, int], dry_run: bool
    ) -> None:
        """Every transition's dates of the window, re-evaluated (stops at the next date once stopped)."""
        dates = TransitionDateChecks(self.definition, self.clock, self.firestore, self.services, self.tz)
        for transition in self.definition.transitions:
            for day in window:
                if run.stopped:
                    return
                what = run.at = f"{transition.name} {day}"
                games = final_games.get(day, 0)
                check = functools.partial(dates.check, transition.name, day, games, run.report, dry_run)
                found = self._isolated(run.report, what, check, transition=transition.name, game_date=day)
                run.report.findings += found or []
                run.report.dates_checked += 1

    def _sensors(self, run: CheckRun, window: list[date], final_games: Mapping[date, int]) -> None:
        """Each sensor's items (``shared.monitor.sensors.sensor_checks``), each isolated: past its
        ``overdue_after`` on a date with Final games; the grading safety net (regrade, grading gaps)."""
        for name, sensor in self.sensors.items():
            for day, what, check in sensor_checks(name, sensor, window, final_games, self.clock):
                if run.stopped:
                    return
                run.at = what
                found = self._isolated(run.report, what, check, transition=name, game_date=day)
                run.report.findings += found or []
                run.report.dates_checked += day is not None

    def _dead_letters(self, run: CheckRun) -> None:
        """Per function: its dead-letter backlog (``dead_letters``, ERROR); every subscription that does
        not exist, in one ``dead_letter_subscription_missing`` WARNING. Each function is isolated."""
        from google.api_core import exceptions as gexc

        report = run.report
        missing: list[str] = []
        for route in dead_letter_routes(self.definition):
            if run.stopped:
                return  # what was found so far is kept; the missing subscriptions are reported whole, next pass

            def peek(route: DeadLetterRoute = route) -> list[Finding]:
                try:
                    return peek_dead_letters(self.subscriber, self.project, route)
                except gexc.NotFound:
                    missing.append(route.subscription)
                    return []

            run.at = route.subscription
            report.findings += (
                self._isolated(report, f"dead_letters {route.function}", peek, check=f"dead_letters:{route.function}")
                or []
            )
        report.findings += missing_subscriptions(missing)

    def _deliver_outbox(self, deadline: float | None = None) -> None:
        """Log rows and hand-offs still in the outbox (auto-retry down, a lost nudge, a BigQuery
        outage) go out on every pass: the transitions leave them there and never talk to BigQuery
        themselves (a transition's cold start loads no BigQuery client). L19: logging never breaks a
        transition and its rows do appear; L24: every hand-off is durable. ``deadline`` (monotonic):
        no new batch or hand-off is started after it."""
        if self.outbox is not None:
            report = self.outbox.deliver(deadline=deadline)
            if report.error or report.handoffs_pending:
                _log.warning("outbox not fully delivered: %s", report.summary())

    def _isolated(
        self,
        report: MonitorReport,
        what: str,
        run: Callable[[], T],
        *,
        transition: str | None = None,
        game_date: date | None = None,
        check: str | None = None,
    ) -> T | None:
        """``run()``, or ``None`` with a ``check_error`` finding in ``report`` (and an ERROR log with the
        traceback) when it raises: one bad item never aborts the pass (L23)."""
        try:
            return run()
        except Exception as exc:  # noqa: BLE001 - isolated (L23): a check_error finding and an ERROR log
            finding = check_error(what, exc, transition=transition, game_date=game_date, check=check)
            report.findings.append(finding)
            _log.error(
                "monitor %s",
                finding.message,
                exc_info=exc,
                extra={"labels": {"alert": "check_error", "check": check or "transition_date"}},
            )
            return None

    def write_heartbeat(self, report: MonitorReport, *, seconds: float | None = None) -> None:
        """``monitor_heartbeats/phase_transition_monitor``: when it ran, findings, errors and timeouts
        (L12: the monitor writes a heartbeat; L23: it always lands), and ``first_run_at`` (its first
        pass: kept across passes, merged, never moved later).

        Bounded (L26): the write is waited for at most ``seconds`` (default: the heartbeat's share of
        the pass), on a worker thread that is never joined. The outcome is logged: INFO when written;
        ERROR with ``alert=monitor_heartbeat_failed`` when the write raised or gave no answer in time,
        and then it raises (the tick is redelivered: a pass without a heartbeat is not a done pass).

        Raises:
            TransientError: the write gave no answer within ``seconds``.
            Exception: what the write raised.
        """
        doc: dict[str, Any] = {
            "last_run_at": report.ran_at,
            "findings": len(report.findings),
            "errors": report.errors,
            "timeouts": report.timeouts,
            "triggered": report.triggered,
            "dates_checked": report.dates_checked,
            "kinds": sorted({f.kind for f in report.findings}),
        }
        if report.up_since is not None:
            doc["first_run_at"] = report.up_since
        heartbeats = self.firestore.collection(self.definition.monitor.heartbeat_collection)
        wait = self.budget.heartbeat_seconds if seconds is None else seconds
        within = run_within(
            wait, lambda: heartbeats.document(MONITOR_HEARTBEAT_ID).set(doc, merge=True), name="monitor-heartbeat"
        )
        fields = {k: doc[k] for k in ("findings", "errors", "timeouts", "dates_checked")}
        if within.done and within.error is None:
            _log.info("monitor heartbeat written", extra={"fields": {**fields, "kinds": doc["kinds"]}})
            return
        labels = {"alert": "monitor_heartbeat_failed"}
        if within.done:
            assert within.error is not None
            _log.error(
                "monitor heartbeat not written: %s: %s",
                type(within.error).__name__,
                within.error,
                exc_info=within.error,
                extra={"labels": labels, "fields": fields},
            )
            raise within.error
        waiting = ", ".join(within.waiting_on) or "Firestore"
        message = f"monitor heartbeat not written: no answer within {wait:.1f} s (waiting on {waiting})"
        _log.error(message, extra={"labels": labels, "fields": fields})
        raise TransientError(message)
