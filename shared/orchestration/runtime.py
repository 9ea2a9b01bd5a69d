"""Composition root for a transition function: builds the service from env and definition.

Clients are created once per process (gen2 reuses instances). Only the Firestore state is
built up front: everything else is a ``Deferred`` built on first use, so a completion that
records and waits imports neither Pub/Sub nor the gates, quarantine or HTTP modules (cold start:
what an event does not call is neither imported nor built).
No transition writes BigQuery: log rows and retry hand-offs stay in the Firestore outbox and
auto-retry delivers them (``shared.orchestration.outbox``). BigQuery is loaded only by the gate
backend, and only a transition whose definition lists query gates ships it (the bundle build
adds the backend module from the definition: ``deploy.bundle.definition_modules``).
"""

from __future__ import annotations

import importlib
import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.clock import Clock, clock_from_env
from shared.deferred import Deferred
from shared.env import project_id
from shared.gcp import firestore_client
from shared.orchestration.state import TransitionState
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import PipelineDefinition, load_definition

if TYPE_CHECKING:
    from shared.orchestration.gates import GateRunner
    from shared.orchestration.http_delivery import HttpDeliverer
    from shared.orchestration.publisher import OutboxNudge, TriggerPublisher
    from shared.orchestration.quarantine import Quarantine

# Imported by name, on the first gated evaluation: the bundle build decides from the definition
# (``Transition.has_gates``) which functions ship them (a gateless transition ships neither, nor
# google-cloud-bigquery). A literal: the build reads it from this file without importing it.
GATE_BACKEND_MODULES = ("shared.orchestration.gate_queries", "shared.gcp_bigquery")
GATE_BACKEND_MODULE, BIGQUERY_CLIENT_MODULE = GATE_BACKEND_MODULES

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

    def publisher() -> TriggerPublisher:
        from shared.gcp import publisher_client
        from shared.orchestration.publisher import TriggerPublisher

        return TriggerPublisher(publisher_client(), project, definition.target_topic(transition))

    def gates() -> GateRunner:
        from shared.orchestration.gates import GateRunner

        if not transition.has_gates:
            return GateRunner(definition, None, None)
        backend = importlib.import_module(GATE_BACKEND_MODULE)
        kinds = {definition.gates[g].kind for g in transition.gates}

        client = Deferred(lambda: importlib.import_module(BIGQUERY_CLIENT_MODULE).bigquery_client(project))
        queries = (  # the clock stamps what is read (postponement's optional no-rows rule)
            backend.BigQueryGateQueries(client, project, definition.games, clock=clock)
            if kinds - {"service_health"}
            else None
        )
        return GateRunner(definition, queries, backend.HealthProbe(env))

    def quarantine() -> Quarantine:
        from shared.orchestration.quarantine import Quarantine

        return Quarantine(fs, settings.quarantine_collection, clock, definition.retention)

    def http() -> HttpDeliverer | None:
        if transition.delivery.http is None:
            return None
        from shared.orchestration.http_delivery import HttpDeliverer

        return HttpDeliverer(transition.delivery.http, env)

    def nudge() -> OutboxNudge | None:
        topic = definition.outbox_nudge_topic()
        if topic is None:
            return None
        from shared.gcp import publisher_client
        from shared.orchestration.publisher import OutboxNudge

        return OutboxNudge(publisher_client(), project, topic)

    return TransitionService(
        definition=definition,
        transition=transition,
        clock=clock,
        state=state,
        publisher=Deferred(publisher),
        gates=Deferred(gates),
        quarantine=Deferred(quarantine),
        http=Deferred(http),
        nudge=Deferred(nudge),
    )


def service_for(transition_name: str) -> TransitionService:
    """The process-wide service of one transition (built on first call, thread-safe)."""
    with _lock:
        if transition_name not in _services:
            _services[transition_name] = build_service(transition_name)
        return _services[transition_name]
