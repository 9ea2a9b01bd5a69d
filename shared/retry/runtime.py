"""Composition root for the auto-retry function (the retry queue's single owner) and its outbox delivery."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping

from shared.clock import Clock, clock_from_env
from shared.deferred import Deferred
from shared.env import project_id
from shared.gcp import firestore_client, publisher_client
from shared.gcp_bigquery import bigquery_client
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.retry.dispatch import RetryDispatcher
from shared.retry.queue import RetryQueue
from shared.retry.service import RetryService

_service: RetryService | None = None
_lock = threading.Lock()


def build_retry_service(
    *,
    definition: PipelineDefinition | None = None,
    clock: Clock | None = None,
    environ: Mapping[str, str] | None = None,
    with_dispatcher: bool = True,
    rng: random.Random | None = None,
    with_outbox: bool = True,
) -> RetryService:
    env = environ if environ is not None else os.environ
    definition = definition or load_definition()
    clock = clock or clock_from_env(env)
    project = project_id(env)
    bigquery = Deferred(lambda: bigquery_client(project))  # built on the first queue query
    queue = RetryQueue(bigquery, project, definition.pipeline.dataset, definition.retry, clock)
    dispatcher = (
        RetryDispatcher(publisher_client(), project, auth=definition.retry.dispatch_auth) if with_dispatcher else None
    )
    fs = firestore_client(project)
    from shared.retry.not_played import excluded_from_bigquery

    excluded = excluded_from_bigquery(definition, bigquery, project, clock)  # postponed / unavailable games
    service = RetryService(definition, queue, dispatcher, clock, firestore_client=fs, rng=rng, excluded=excluded)
    if with_outbox:
        from shared.orchestration.outbox import build_outbox_delivery

        service.outbox = build_outbox_delivery(definition, project, fs, service)  # hand-offs come back to it
    return service


def retry_service() -> RetryService:
    """The process-wide auto-retry service (built on first call)."""
    global _service
    with _lock:
        if _service is None:
            _service = build_retry_service()
        return _service
