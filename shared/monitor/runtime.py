"""Composition root for the monitor function."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from shared.clock import Clock, clock_from_env
from shared.contracts.messages import MonitorTick
from shared.deferred import Deferred
from shared.env import project_id
from shared.gcp import firestore_client, subscriber_client
from shared.gcp_bigquery import bigquery_client
from shared.monitor.alerts import AlertManager, AlertResult, slack_from_env
from shared.monitor.checks import TransitionMonitor
from shared.monitor.findings import MonitorReport, check_error
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
        """One pass: checks (each isolated), alerts, then the heartbeat, which is always written (L23).

        A failing alert step (dedup records, Slack) becomes a ``check_error`` finding counted in the
        heartbeat; the heartbeat write itself failing raises (the tick is redelivered).
        """
        report = self.checks.run(tick.lookback_days, dry_run=tick.dry_run, write_heartbeat=False)
        if tick.dry_run:
            return report, None
        try:
            alerts = self.alerts.process(report.findings)
        except Exception as exc:  # noqa: BLE001 - isolated (L23): a check_error finding and an ERROR log
            finding = check_error("alerts", exc, check="alerts")
            report.findings.append(finding)
            _log.error(
                "monitor %s",
                finding.message,
                exc_info=exc,
                extra={"labels": {"alert": "check_error", "check": "alerts"}},
            )
            alerts = AlertResult(error=finding.message)
        self.checks.write_heartbeat(report)
        return report, alerts


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
