"""The monitor's pass: every 10 minutes, run every check, each on its own, and write the heartbeat.

The checks, by kind:

- per transition and date of the recent window (``shared.monitor.transition_dates``): re-evaluated
  through the *same* ``TransitionService.evaluate`` the transition functions use (a deadline tier
  fires through the same claim protocol) → stuck, blocked, gate_error, handoff, silent, gate_alert,
  deadline_trigger; and the grid over ``grid_days`` (one schedule query, one Firestore query);
- sensors past their ``overdue_after`` (``shared.monitor.sensors``);
- the retry queue's health (``shared.monitor.retry_queue``): ``failed_permanent``, dispatch failing,
  overdue ``pending`` rows;
- the auto-retry heartbeat's age (``shared.monitor.heartbeats``);
- dead letters (``shared.monitor.dead_letters``): each function's dead-letter subscription, peeked.

Isolation (lesson L23: a sweep isolates its items, so one bad item never loses the others' findings
or the heartbeat): every (transition, date) evaluation and every other check runs on its own. One
that raises becomes a ``check_error`` finding (ERROR, naming the item and the exception, at most 500
characters) and the pass goes on; the heartbeat is always written, with the number of errors and
findings. Then the outbox left by the transitions is delivered.

Findings are deduplicated by ``shared.monitor.alerts``.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, TypeVar
from zoneinfo import ZoneInfo

from shared.clock import Clock, today_et
from shared.deferred import Deferred, deferred_attribute
from shared.gcp import subscriber_client
from shared.monitor.dead_letters import DeadLetterRoute, dead_letter_routes, missing_subscriptions, peek_dead_letters
from shared.monitor.findings import Finding, MonitorReport, check_error
from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID, retry_heartbeat_findings
from shared.monitor.retry_queue import retry_queue_findings
from shared.monitor.sensors import sensor_overdue
from shared.monitor.transition_dates import TransitionDateChecks, grid_gaps, schedule_final_games
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
    ) -> None:
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
        self, lookback_days: int | None = None, *, dry_run: bool = False, write_heartbeat: bool = True
    ) -> MonitorReport:
        """One pass. Never raises for a failing check (each is isolated, L23); writes the heartbeat
        unless ``dry_run`` or ``write_heartbeat=False`` (the caller writes it after alerting)."""
        now = self.clock.now()
        report = MonitorReport(ran_at=now)
        settings = self.definition.monitor
        today = today_et(self.clock, self.tz)
        window = [today - timedelta(days=n) for n in range(lookback_days or settings.lookback_days, -1, -1)]
        grid_start = today - timedelta(days=settings.grid_days)
        # the schedule read feeds the grid and the silent check; when it fails, both go without
        # (silent finds nothing this pass) and the grid reports the error
        final_games = self._isolated(
            report,
            "grid",
            lambda: schedule_final_games(self.bq, self.project, self.definition, grid_start, today),
            check="grid",
        )
        dates = TransitionDateChecks(self.definition, self.clock, self.firestore, self.services, self.tz)
        for transition in self.definition.transitions:
            for day in window:
                report.dates_checked += 1
                games = (final_games or {}).get(day, 0)
                check = functools.partial(dates.check, transition.name, day, games, report, dry_run)
                what = f"{transition.name} {day}"
                report.findings += self._isolated(report, what, check, transition=transition.name, game_date=day) or []
        for name, sensor in self.sensors.items():
            for day in window:
                if not (final_games or {}).get(day):
                    continue  # no Final games that night (or the schedule read failed): nothing to be overdue
                overdue = functools.partial(sensor_overdue, name, sensor, day, self.clock)
                report.dates_checked += 1
                found = self._isolated(report, f"{name} {day}", overdue, transition=name, game_date=day)
                report.findings += found or []
        if final_games is not None:
            report.findings += (
                self._isolated(
                    report,
                    "grid",
                    lambda: grid_gaps(self.firestore, self.definition, grid_start, today, final_games),
                    check="grid",
                )
                or []
            )
        report.findings += (
            self._isolated(
                report,
                "retry_queue",
                lambda: retry_queue_findings(self.bq, self.project, self.definition, self.clock.now()),
                check="retry_queue",
            )
            or []
        )
        report.findings += (
            self._isolated(
                report,
                "retry_heartbeat",
                lambda: retry_heartbeat_findings(self.firestore, self.definition, now, report),
                check="retry_heartbeat",
            )
            or []
        )
        report.findings += self._dead_letters(report)
        if not dry_run:
            self._isolated(report, "outbox", self._deliver_outbox, check="outbox")
        if not dry_run and write_heartbeat:
            self.write_heartbeat(report)
        return report

    def _dead_letters(self, report: MonitorReport) -> list[Finding]:
        """Per function: its dead-letter backlog (``dead_letters``, ERROR); every subscription that does
        not exist, in one ``dead_letter_subscription_missing`` WARNING. Each function is isolated."""
        from google.api_core import exceptions as gexc

        findings: list[Finding] = []
        missing: list[str] = []
        for route in dead_letter_routes(self.definition):

            def peek(route: DeadLetterRoute = route) -> list[Finding]:
                try:
                    return peek_dead_letters(self.subscriber, self.project, route)
                except gexc.NotFound:
                    missing.append(route.subscription)
                    return []

            findings += (
                self._isolated(report, f"dead_letters {route.function}", peek, check=f"dead_letters:{route.function}")
                or []
            )
        return findings + missing_subscriptions(missing)

    def _deliver_outbox(self) -> None:
        """Log rows and hand-offs still in the outbox (auto-retry down, a lost nudge, a BigQuery
        outage) go out on every pass: the transitions leave them there and never talk to BigQuery
        themselves (a transition's cold start loads no BigQuery client). L19: logging never breaks a
        transition and its rows do appear; L24: every hand-off is durable."""
        if self.outbox is not None:
            report = self.outbox.deliver()
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

    def write_heartbeat(self, report: MonitorReport) -> None:
        """``monitor_heartbeats/phase_transition_monitor``: when it ran, findings and errors (L12: the
        monitor writes a heartbeat; L23: it always lands), and ``first_run_at`` (its first pass: kept
        across passes, merged, never moved later)."""
        doc: dict[str, Any] = {
            "last_run_at": report.ran_at,
            "findings": len(report.findings),
            "errors": report.errors,
            "triggered": report.triggered,
            "dates_checked": report.dates_checked,
            "kinds": sorted({f.kind for f in report.findings}),
        }
        if report.up_since is not None:
            doc["first_run_at"] = report.up_since
        heartbeats = self.firestore.collection(self.definition.monitor.heartbeat_collection)
        heartbeats.document(MONITOR_HEARTBEAT_ID).set(doc, merge=True)
