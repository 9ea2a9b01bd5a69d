"""What every transition entrypoint does with one event: ack (return) or redeliver (raise)."""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

from shared._lazy import eager_requested
from shared.env import project_id
from shared.orchestration.body_guard import guard_body_depth
from shared.orchestration.entrypoint_log import event_attr, log_outcome
from shared.orchestration.runtime import GATE_BACKEND_MODULES, service_for
from shared.orchestration.transition import Outcome
from shared.pipeline.definition import load_definition
from shared.structured_log import format_trace, get_logger, log_context

_log = get_logger("functions.transition")


def validate_environment(transition: str) -> None:
    """Fail at cold start, loudly, on a missing project, an invalid definition or a bundle without
    the gate backend its definition needs. With ``SHARED_EAGER=1`` the service (every adapter) is
    built here, at import, as an eager core would."""
    project_id()
    definition = load_definition()
    spec = definition.transition(transition)
    if spec.has_gates:
        missing = [m for m in GATE_BACKEND_MODULES if importlib.util.find_spec(m) is None]
        if missing:
            raise ImportError(
                f"{transition} has gates but its bundle lacks {missing}: rebuild it (python -m deploy build)"
            )
    if eager_requested():
        service_for(transition)


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


def transition_handler(transition: str) -> Callable[[Any], None]:
    """The CloudEvent handler of ``transition``'s function, after checking its environment (cold start).

    ``functions/<transition>/main.py`` registers it with functions-framework as ``handle``; the
    function is a 2nd-gen Cloud Function on the source phase's completion topic, with retry on
    failure. Every outcome returns (Pub/Sub acks); a transient error raises (Pub/Sub redelivers,
    bounded by the definition's max event age); malformed input is acked and quarantined with a
    reason, a body nested too deeply before the framework parses it (``guard_body_depth``).
    """
    validate_environment(transition)
    guard_body_depth(transition)

    def handle(cloud_event: Any) -> None:
        """Handle one completion message (a google.cloud.pubsub.topic.v1.messagePublished event)."""
        run_transition_event(transition, cloud_event)

    return handle
