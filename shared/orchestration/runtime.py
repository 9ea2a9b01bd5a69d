"""Composition root for a transition function: builds the service from env and definition.

Clients are created once per process (gen2 reuses instances) and BigQuery only on
first use. Tests and the demo build services with their own clock and clients.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping

from shared.clock import Clock, clock_from_env
from shared.env import project_id
from shared.gcp import bigquery_client, firestore_client, publisher_client
from shared.orchestration.execution_log import ExecutionLogWriter
from shared.orchestration.gate_queries import BigQueryGateQueries, HealthProbe
from shared.orchestration.gates import GateRunner
from shared.orchestration.http_delivery import HttpDeliverer
from shared.orchestration.publisher import TriggerPublisher
from shared.orchestration.quarantine import Quarantine
from shared.orchestration.state import TransitionState
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.retry.runtime import build_retry_service

_services: dict[str, TransitionService] = {}
_lock = threading.Lock()


def build_service(
    transition_name: str,
    *,
    definition: PipelineDefinition | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
) -> TransitionService:
    """A fresh ``TransitionService`` wired to the official clients (emulators when env says so)."""
    env = environ if environ is not None else os.environ
    definition = definition or load_definition()
    clock = clock or clock_from_env(env)
    project = project_id(env)
    transition = definition.transition(transition_name)
    settings = definition.pipeline
    fs = firestore_client(project)
    state = TransitionState.for_definition(fs, definition, transition.name, clock)

    def bq() -> object:
        return bigquery_client(project)

    kinds = {definition.gates[g].kind for g in transition.gates}
    queries = BigQueryGateQueries(bq, project, definition.games) if kinds - {"service_health"} else None  # type: ignore[arg-type]
    return TransitionService(
        definition=definition,
        transition=transition,
        clock=clock,
        state=state,
        publisher=TriggerPublisher(publisher_client(), project, definition.target_topic(transition)),
        gates=GateRunner(definition, queries, HealthProbe(env)),
        log_writer=ExecutionLogWriter(
            bq,  # type: ignore[arg-type]
            f"{project}.{settings.dataset}.{settings.phase_execution_log_table}",
        ),
        quarantine=Quarantine(fs, settings.quarantine_collection, clock, definition.retention),
        retry=build_retry_service(definition=definition, clock=clock, environ=env, with_dispatcher=False),
        http=HttpDeliverer(transition.delivery.http, env) if transition.delivery.http else None,
    )


def service_for(transition_name: str) -> TransitionService:
    """The process-wide service of one transition (built on first call, thread-safe)."""
    with _lock:
        if transition_name not in _services:
            _services[transition_name] = build_service(transition_name)
        return _services[transition_name]

