"""Composition root of a timed-trigger function (sensors, scheduled triggers): services from env.

Kept apart from ``runtime`` so a transition function's closure never ships the timed core. As in
``runtime``, only the Firestore state is built up front: the publisher, the conditions' queries,
the log writer and the quarantine are ``Deferred``, built on first use, and their modules (and
the Pub/Sub and BigQuery clients) are imported there, so a tick whose date is already triggered
loads none of them.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from functools import partial
from typing import TYPE_CHECKING

from shared.clock import Clock, clock_from_env
from shared.deferred import Deferred
from shared.env import project_id
from shared.gcp import firestore_client
from shared.orchestration.state import TransitionState
from shared.orchestration.timed import TimedRuntime, TimedTriggerService
from shared.pipeline.definition import PipelineDefinition, TimedTrigger, load_definition

if TYPE_CHECKING:
    from google.cloud import bigquery

    from shared.orchestration.gate_queries import BigQueryGateQueries
    from shared.orchestration.outbox import ExecutionLogWriter
    from shared.orchestration.publisher import TriggerPublisher
    from shared.orchestration.quarantine import Quarantine

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

    def new_client() -> bigquery.Client:
        from shared.gcp_bigquery import bigquery_client

        return bigquery_client(project)

    bq = Deferred(new_client)  # one client for every trigger's queries and log writer

    def new_publisher(trigger: TimedTrigger) -> TriggerPublisher:
        from shared.gcp import publisher_client
        from shared.orchestration.publisher import TriggerPublisher

        return TriggerPublisher(publisher_client(), project, trigger.topic)

    def new_queries() -> BigQueryGateQueries:
        from shared.orchestration.gate_queries import BigQueryGateQueries

        return BigQueryGateQueries(bq, project, definition.games, clock=clock)

    def new_log_writer() -> ExecutionLogWriter:
        from shared.orchestration.outbox import ExecutionLogWriter

        return ExecutionLogWriter(bq, f"{project}.{settings.dataset}.{settings.phase_execution_log_table}")

    def new_quarantine() -> Quarantine:
        from shared.orchestration.quarantine import Quarantine

        return Quarantine(fs, settings.quarantine_collection, clock, definition.retention)

    quarantine = Deferred(new_quarantine)  # the runtime's and every trigger's: one collection, one writer
    services = {
        t.name: TimedTriggerService(
            definition=definition,
            trigger=t,
            clock=clock,
            state=TransitionState.for_definition(fs, definition, t.name, clock),
            publisher=Deferred(partial(new_publisher, t)),
            queries=Deferred(new_queries) if t.conditions else None,
            log_writer=Deferred(new_log_writer),
            quarantine=quarantine,
        )
        for t in definition.timed_triggers()
        if t.function == function
    }
    if not services:
        raise KeyError(f"no sensor or scheduled trigger runs on function {function!r}")
    return TimedRuntime(services, quarantine, function)


_timed: dict[str, TimedRuntime] = {}


def timed_runtime_for(function: str) -> TimedRuntime:
    """The process-wide runtime of one timed-trigger function (built on first call, thread-safe)."""
    with _lock:
        if function not in _timed:
            _timed[function] = build_timed_runtime(function)
        return _timed[function]
