"""What a sensor or scheduled-trigger entrypoint does with one tick: ack (return) or redeliver (raise)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from shared.env import project_id
from shared.orchestration.body_guard import guard_body_depth
from shared.orchestration.entrypoint_log import event_attr, log_outcome
from shared.orchestration.timed_runtime import timed_runtime_for
from shared.orchestration.transition import Outcome
from shared.pipeline.definition import load_definition
from shared.structured_log import format_trace, get_logger, log_context

_log = get_logger("functions.timed")


def validate_environment(function: str) -> None:
    """Fail at cold start, loudly, on a missing project, an invalid definition or no trigger to serve."""
    project_id()
    if not any(t.function == function for t in load_definition().timed_triggers()):
        raise KeyError(f"the pipeline definition has no sensor or scheduled trigger on function {function!r}")


def run_timed_event(function: str, event: Any) -> Outcome:
    """Handle one ``TriggerTick``: every outcome returns (acked); a transient error raises."""
    trace = format_trace(project_id(), event_attr(event, "traceparent"))
    with log_context(function=function, execution_id=event_attr(event, "id"), trace=trace):
        outcome = timed_runtime_for(function).handle_event(event)
        log_outcome(_log, outcome)
        return outcome


def timed_handler(function: str) -> Callable[[Any], None]:
    """The CloudEvent handler of a sensor or scheduled-trigger function, after checking its environment.

    ``functions/<function>/main.py`` registers it with functions-framework as ``handle``; a body
    nested too deeply is acked and quarantined before the framework parses it (``guard_body_depth``).
    """
    validate_environment(function)
    guard_body_depth(function)

    def handle(cloud_event: Any) -> None:
        """Handle one scheduler tick (a google.cloud.pubsub.topic.v1.messagePublished event)."""
        run_timed_event(function, cloud_event)

    return handle
