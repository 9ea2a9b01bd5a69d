"""Composition root of a timed-trigger function (sensors, scheduled triggers): services from env.

Kept apart from ``runtime`` so a transition function's closure never ships the timed core.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from shared.clock import Clock, clock_from_env
from shared.deferred import Deferred
from shared.env import project_id
from shared.gcp import firestore_client, publisher_client
from shared.gcp_bigquery import bigquery_client
from shared.orchestration.gate_queries import BigQueryGateQueries
from shared.orchestration.outbox import ExecutionLogWriter
from shared.orchestration.publisher import TriggerPublisher
from shared.orchestration.quarantine import Quarantine
from shared.orchestration.state import TransitionState
from shared.orchestration.timed import TimedRuntime, TimedTriggerService
from shared.pipeline.definition import PipelineDefinition, load_definition

_lock = threading.Lock()


def build_timed_runtime(
    function: str,
    *,
    definition: PipelineDefinition | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
) -> TimedRuntime:
    """The sensors and scheduled triggers ``function`` serves, wired to the official clients."""
    env = environ if environ is not None else os.environ
    definition = definition or load_definition()
    clock = clock or clock_from_env(env)
    project = project_id(env)
    settings = definition.pipeline
    fs = firestore_client(project)
    bq = Deferred(lambda: bigquery_client(project))  # built on the first query or flush

    services = {}
    for t in definition.timed_triggers():
        if t.function != function:
            continue
        state = TransitionState.for_definition(fs, definition, t.name, clock)
        services[t.name] = TimedTriggerService(
            definition=definition,
            trigger=t,
            clock=clock,
            state=state,
            publisher=TriggerPublisher(publisher_client(), project, t.topic),
            queries=BigQueryGateQueries(bq, project, definition.games) if t.conditions else None,
            log_writer=ExecutionLogWriter(bq, f"{project}.{settings.dataset}.{settings.phase_execution_log_table}"),
            quarantine=Quarantine(fs, settings.quarantine_collection, clock, definition.retention),
        )
    if not services:
        raise KeyError(f"no sensor or scheduled trigger runs on function {function!r}")
    quarantine = next(iter(services.values())).quarantine
    return TimedRuntime(services, quarantine, function)


_timed: dict[str, TimedRuntime] = {}


def timed_runtime_for(function: str) -> TimedRuntime:
    """The process-wide runtime of one timed-trigger function (built on first call, thread-safe)."""
    with _lock:
        if function not in _timed:
            _timed[function] = build_timed_runtime(function)
        return _timed[function]
