"""Composition root for the monitor function."""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from shared.clock import Clock, clock_from_env
from shared.contracts.messages import MonitorTick
from shared.env import project_id
from shared.gcp import bigquery_client, firestore_client
from shared.monitor.alerts import AlertManager, AlertResult, slack_from_env
from shared.monitor.checks import MonitorReport, TransitionMonitor
from shared.orchestration.runtime import build_service
from shared.pipeline.definition import PipelineDefinition, load_definition


@dataclass
class Monitor:
    checks: TransitionMonitor
    alerts: AlertManager

    def quarantine(self, raw: object, reason: str) -> None:
        """Keep a malformed scheduler tick with its reason (acked, never silently dropped)."""
        from shared.orchestration.quarantine import Quarantine

        quarantine = Quarantine(
            self.checks.firestore, self.checks.definition.pipeline.quarantine_collection, self.checks.clock
        )
        quarantine.put_event(raw, reason=reason, transition="phase_transition_monitor")

    def run(self, tick: MonitorTick) -> tuple[MonitorReport, AlertResult | None]:
        report = self.checks.run(tick.lookback_days, dry_run=tick.dry_run)
        if tick.dry_run:
            return report, None
        return report, self.alerts.process(report.findings)


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
    checks = TransitionMonitor(definition, clock, fs, lambda: bigquery_client(project), project, services)
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
