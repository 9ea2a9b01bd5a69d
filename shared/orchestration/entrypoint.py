"""What every transition entrypoint does with one event: ack (return) or redeliver (raise)."""

from __future__ import annotations

from typing import Any

from shared.env import project_id
from shared.orchestration.event_log import event_attr, log_outcome
from shared.orchestration.runtime import service_for
from shared.orchestration.transition import Outcome
from shared.pipeline.definition import load_definition
from shared.structured_log import format_trace, get_logger, log_context

_log = get_logger("functions.transition")


def validate_environment(transition: str) -> None:
    """Fail at cold start, loudly, on a missing project or an invalid definition."""
    project_id()
    load_definition().transition(transition)


def run_transition_event(transition: str, event: Any) -> Outcome:
    """Handle one completion event for ``transition``.

    Returns the outcome (the entrypoint returns → Pub/Sub acks). A ``TransientError``
    (or any unexpected error) propagates → non-2xx → Pub/Sub redelivers, bounded by
    the definition's max event age.
    """
    trace = format_trace(project_id(), event_attr(event, "traceparent"))
    with log_context(function=transition, execution_id=event_attr(event, "id"), trace=trace):
        outcome = service_for(transition).handle_event(event)
        log_outcome(_log, outcome, duplicate=str(outcome.duplicate).lower())
        return outcome
