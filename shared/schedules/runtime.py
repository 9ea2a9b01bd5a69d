"""Composition root of the schedule dispatcher function: the dispatcher wired to the official clients.

Only Firestore is built up front (a tick with nothing due reads nothing else); the Pub/Sub
publisher, the BigQuery log writer and the quarantine are built on first use. On the local cloud
(an emulator host set and ``PHASECHAIN_LOCAL_ID_TOKENS=1``) ID tokens are unsigned tokens naming
their audience, which the stand-in services record.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Mapping
from typing import TYPE_CHECKING

from shared.clock import Clock, clock_from_env
from shared.deferred import Deferred
from shared.env import project_id
from shared.gcp import LOCAL_TOKENS_ENV as LOCAL_TOKENS_ENV  # re-exported (the local cloud sets it)
from shared.gcp import firestore_client, local_id_tokens
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.schedules.dispatcher import ScheduleDispatcher
from shared.schedules.runs import ScheduleRuns
from shared.schedules.targets import Targets, local_id_token

if TYPE_CHECKING:
    from google.cloud import pubsub_v1

    from shared.orchestration.outbox import ExecutionLogWriter
    from shared.orchestration.quarantine import Quarantine

_lock = threading.Lock()
_dispatcher: ScheduleDispatcher | None = None
_quarantine: Quarantine | None = None


def build_dispatcher(
    *,
    definition: PipelineDefinition | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    budget_seconds: float | None = None,
) -> ScheduleDispatcher:
    env = environ if environ is not None else os.environ
    definition = definition or load_definition()
    clock = clock or clock_from_env(env)
    project = project_id(env)
    fs = firestore_client(project)

    from shared.orchestration.outbox_store import Outbox

    def publisher() -> pubsub_v1.PublisherClient:
        from shared.gcp import publisher_client

        return publisher_client()

    def new_log_writer() -> ExecutionLogWriter:
        from shared.gcp_bigquery import bigquery_client
        from shared.orchestration.outbox import ExecutionLogWriter

        settings = definition.pipeline
        bq = Deferred(lambda: bigquery_client(project))
        return ExecutionLogWriter(bq, f"{project}.{settings.dataset}.{settings.phase_execution_log_table}")

    timeout = definition.deploy.settings_for(definition.dispatcher.function).timeout_seconds or 120
    return ScheduleDispatcher(
        definition=definition,
        clock=clock,
        runs=ScheduleRuns(fs, definition, Outbox.for_definition(fs, definition)),
        targets=Targets(
            definition,
            project,
            publisher=publisher,
            environ=env,
            token=local_id_token if local_id_tokens(env) else None,
        ),
        log_writer=Deferred(new_log_writer),
        budget_seconds=budget_seconds if budget_seconds is not None else 0.8 * timeout,
    )


def dispatcher() -> ScheduleDispatcher:
    """The process-wide dispatcher (built on first call, thread-safe)."""
    global _dispatcher
    with _lock:
        if _dispatcher is None:
            _dispatcher = build_dispatcher()
        return _dispatcher


def quarantine() -> Quarantine:
    """The dispatcher function's quarantine (a malformed tick is acked and kept with its reason)."""
    global _quarantine
    with _lock:
        if _quarantine is None:
            from shared.orchestration.quarantine import Quarantine

            definition = load_definition()
            fs = firestore_client(project_id())
            _quarantine = Quarantine(
                fs, definition.pipeline.quarantine_collection, clock_from_env(os.environ), definition.retention
            )
        return _quarantine
