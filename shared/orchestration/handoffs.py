"""Hand-offs to auto-retry: the outbox documents a transition writes for work it cannot redo itself.

A hand-off is written in the same Firestore write as what causes it (a failed completion with
its completion document, missing games with the latch or release), so a BigQuery blip cannot
lose it (L24: every hand-off is durable). ``shared.orchestration.outbox`` delivers it to
``RetryService.enqueue_failure``, which finds the row of a repeated one.

A hand-off carries the ``generation`` of the date it comes from (the transition's date state,
read in the same write): auto-retry keeps one retry budget per processor, game_date and
generation, so the monitor's re-checks of a blocked date never start a new one, and an operator's
re-trigger (``phasectl trigger --force``, a new generation) does. A hand-off written without one
(before the field existed) counts as generation 1.
"""

from __future__ import annotations

import hashlib
import json
from datetime import date, datetime
from typing import Any

from shared.contracts.messages import ErrorType, ProcessorCompletion
from shared.orchestration.bounded import MAX_LIST, capped
from shared.orchestration.completions import completion_doc_id
from shared.orchestration.engine import CompletionRecord
from shared.orchestration.outbox_store import HANDOFF_PREFIX

Handoff = tuple[str, dict[str, Any]]  # (outbox document id, document)


def failure_handoff(
    transition: str,
    completion: ProcessorCompletion,
    processor: str,
    record: CompletionRecord,
    now: datetime,
    *,
    generation: int = 1,
) -> Handoff:
    """A failed completion of ``processor`` (its canonical name), for auto-retry to re-run; one per
    recorded completion (its id is the completion's). ``generation``: the date's current one."""
    doc = {
        "kind": "retry_enqueue",
        "transition": transition,
        "game_date": completion.game_date.isoformat(),
        "phase": completion.phase,
        "processor": processor,
        "error_message": capped(completion.error_message),
        "error_type": completion.error_type,
        "permanent": completion.error_class is ErrorType.PERMANENT,
        "correlation_id": completion.correlation_id,
        "game_ids": [],
        "generation": generation,
        "created_at": now,
    }
    key = completion_doc_id(record.raw_name, record.execution_id)
    return f"{HANDOFF_PREFIX}failed__{transition}__{completion.game_date.isoformat()}__{key}", doc


def missing_games_handoff(
    transition: str,
    game_date: date,
    missing: list[str],
    *,
    processor: str,
    phase: int,
    correlation_id: str | None,
    now: datetime,
    generation: int = 1,
) -> Handoff:
    """Games missing from every boxscore source, for auto-retry to re-run ``processor`` (the first
    source) on; one per distinct set of games (its id is their digest). ``generation``: the one the
    gate ran for."""
    doc = {
        "kind": "retry_enqueue",
        "transition": transition,
        "game_date": game_date.isoformat(),
        "phase": phase,
        "processor": processor,
        "error_message": f"{len(missing)} game(s) missing from every boxscore source",
        "error_type": "missing_games",
        "correlation_id": correlation_id,
        "game_ids": missing[:MAX_LIST],
        "generation": generation,
        "created_at": now,
    }
    digest = hashlib.sha256(json.dumps(doc["game_ids"]).encode()).hexdigest()[:12]
    return f"{HANDOFF_PREFIX}{transition}__{game_date.isoformat()}__{digest}", doc
