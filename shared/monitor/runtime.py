"""Composition root for the monitor function."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from shared.clock import Clock, clock_from_env
from shared.contracts.messages import MonitorTick
from shared.deadline import run_within
from shared.deferred import Deferred
from shared.env import project_id
from shared.gcp import firestore_client, subscriber_client
from shared.gcp_bigquery import bigquery_client
from shared.monitor.alerts import AlertManager, AlertResult, slack_from_env
from shared.monitor.checks import PassBudget, PassDeadlines, TransitionMonitor
from shared.monitor.findings import MonitorReport, check_error, check_timeout
from shared.orchestration.outbox import build_outbox_delivery
from shared.orchestration.runtime import build_service
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.retry.runtime import build_retry_service
from shared.structured_log import get_logger

_log = get_logger("shared.monitor.runtime")


@dataclass
class Monitor:
    checks: TransitionMonitor
    alerts: AlertManager

    def quarantine(self, raw: object, reason: str) -> None:
        """Keep a malformed scheduler tick with its reason (acked, never silently dropped)."""
        from shared.orchestration.quarantine import Quarantine

        definition = self.checks.definition
        quarantine = Quarantine(
            self.checks.firestore, definition.pipeline.quarantine_collection, self.checks.clock, definition.retention
        )
        quarantine.put_event(raw, reason=reason, transition="phase_transition_monitor")

    def run(self, tick: MonitorTick) -> tuple[MonitorReport, AlertResult | None]:
        """One pass: checks (each isolated and bounded), alerts, then the heartbeat, which is always
        written (L23) within the pass's budget (L26: ``shared.monitor.checks.PassBudget``).

        A failing alert step (dedup records, Slack) becomes a ``check_error`` finding, one that runs
        out of its share a ``check_timeout`` finding, counted in the heartbeat; the heartbeat write
        itself failing or giving no answer in time raises (the tick is redelivered).
        """
        deadlines = self.checks.budget.start()
        if tick.check != "transitions":  # a heal task: what it did is recorded; the next pass reports it
            return self.heal(tick, deadlines), None
        report = self.checks.run(tick.lookback_days, dry_run=tick.dry_run, write_heartbeat=False, deadlines=deadlines)
        if tick.dry_run:
            return report, None
        alerts = self._alert(report, deadlines)
        self.checks.write_heartbeat(report, seconds=PassDeadlines.left(deadlines.end))
        return report, alerts

    def heal(self, tick: MonitorTick, deadlines: PassDeadlines) -> MonitorReport:
        """A heal task (``shared.heal``): self-heal checkpoint or gap pass. No alert step and no
        heartbeat here: the alert step resolves what a report leaves out, so only the 10-minute pass
        (which reads what the heal tasks recorded) alerts."""
        if tick.check == "self_heal":
            from shared.heal.self_heal import run_self_heal

            return run_self_heal(self.checks, tick, deadlines)
        from shared.heal.gaps import run_gap_pass

        return run_gap_pass(self.checks, tick, deadlines)

    def _alert(self, report: MonitorReport, deadlines: PassDeadlines) -> AlertResult:
        """The alert step on a worker thread, waited for until ``deadlines.alerts`` (it starts no new
        alert after that itself); isolated (L23) and bounded (L26)."""
        seconds = PassDeadlines.left(deadlines.alerts)
        findings = list(report.findings)
        within = run_within(
            seconds, lambda: self.alerts.process(findings, deadline=deadlines.alerts), name="monitor-alerts"
        )
        if within.done and within.error is None:
            assert within.value is not None
            return within.value
        if within.done:
            assert within.error is not None
            if not isinstance(within.error, Exception):
                raise within.error
            finding = check_error("alerts", within.error, check="alerts")
            exc_info: BaseException | None = within.error
        else:
            waiting_on = within.waiting_on or ["Firestore (no call in flight)", "Slack (its webhook)"]
            finding = check_timeout("alerts", seconds, waiting_on)
            exc_info = None
        report.findings.append(finding)
        _log.error(
            "monitor %s",
            finding.message,
            exc_info=exc_info,
            extra={"labels": {"alert": finding.kind, "check": "alerts"}},
        )
        return AlertResult(error=finding.message)


def build_monitor(
    *,
    definition: PipelineDefinition | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
) -> Monitor:
    env = environ if environ is not None else os.environ
    definition = definition or load_definition()
    clock = clock or clock_from_env(env)
    project = project_id(env)
    fs = firestore_client(project)
    services = {
        t.name: build_service(t.name, definition=definition, clock=clock, environ=env) for t in definition.transitions
    }
    from shared.orchestration.timed_runtime import build_timed_runtime

    sensors = {}
    for function in sorted({t.function for t in definition.sensors if t.overdue_after}):
        runtime = build_timed_runtime(function, definition=definition, clock=clock, environ=env)
        sensors.update({n: s for n, s in runtime.services.items() if s.trigger.overdue_after})
    checks = TransitionMonitor(
        definition,
        clock,
        fs,
        Deferred(lambda: bigquery_client(project)),
        project,
        services,
        subscriber=Deferred(subscriber_client),
        sensors=sensors,
        outbox=build_outbox_delivery(
            definition,
            project,
            fs,
            Deferred(  # the monitor's own retry service, built when a hand-off is pending
                lambda: build_retry_service(
                    definition=definition, clock=clock, environ=env, with_dispatcher=False, with_outbox=False
                )
            ),
        ),
        budget=PassBudget.for_definition(definition, env),  # below the function's timeout ([deploy])
    )
    return Monitor(checks, AlertManager(definition, fs, clock, slack_from_env(definition, env)))


_monitor: Monitor | None = None
_lock = threading.Lock()


def monitor() -> Monitor:
    """The process-wide monitor (built on first call, thread-safe)."""
    global _monitor
    with _lock:
        if _monitor is None:
            _monitor = build_monitor()
        return _monitor


def run_monitor(tick: MonitorTick) -> tuple[MonitorReport, AlertResult | None]:
    return monitor().run(tick)
