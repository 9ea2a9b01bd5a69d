"""Composition root for the auto-retry function and for the transitions' enqueue path."""

from __future__ import annotations

import os
import random
import threading
from collections.abc import Mapping

from shared.clock import Clock, clock_from_env
from shared.env import project_id
from shared.gcp import bigquery_client, firestore_client, publisher_client
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
) -> RetryService:
    env = environ if environ is not None else os.environ
    definition = definition or load_definition()
    clock = clock or clock_from_env(env)
    project = project_id(env)

    def bq() -> object:
        return bigquery_client(project)

    queue = RetryQueue(bq, project, definition.pipeline.dataset, definition.retry, clock)  # type: ignore[arg-type]
    dispatcher = (
        RetryDispatcher(publisher_client(), project, auth=definition.retry.dispatch_auth) if with_dispatcher else None
    )
    return RetryService(definition, queue, dispatcher, clock, firestore_client=firestore_client(project), rng=rng)


def retry_service() -> RetryService:
    """The process-wide auto-retry service (built on first call)."""
    global _service
    with _lock:
        if _service is None:
            _service = build_retry_service()
        return _service
