"""Before functions-framework parses a request: a body nested too deeply is acked and quarantined.

Every event function (transitions, timed triggers, monitor, auto-retry) calls ``guard_body_depth``
at cold start. Its own module, so a function that needs only the guard loads nothing else of the
transition path (the bundle build follows imports).
"""

from __future__ import annotations

from collections.abc import Callable

from shared.contracts.decode import MAX_JSON_DEPTH, json_depth_exceeds
from shared.env import project_id
from shared.orchestration.entrypoint_log import log_outcome
from shared.orchestration.outcome import Outcome
from shared.pipeline.definition import load_definition
from shared.structured_log import get_logger, log_context

_guard_log = get_logger("functions.body_guard")


def guard_body_depth(function: str) -> None:
    """Ack and quarantine, before functions-framework parses it, a request body nested deeper than
    ``MAX_JSON_DEPTH`` levels (the function's quarantine documents are named ``function``).

    functions-framework parses the body itself before it calls the handler (``from_http`` →
    ``json.loads`` for a push body or a structured CloudEvent, the data unmarshaller for a binary
    one): a 200 000-deep body raised ``RecursionError`` there, answered 500, and Pub/Sub
    redelivered it without end. ``create_app`` executes ``main.py`` inside the app context of the
    app it builds, so called from there (the handler factories call it at cold start) this
    registers a ``before_request`` hook on that app: the one place that sees the raw body first.
    The check is ``json_depth_exceeds``, a linear scan that does not parse; a shallow body costs
    two byte counts. Called outside an app context (a test building a handler), it does nothing.
    A quarantine write that fails raises: 500, and the body is redelivered, not lost.
    """
    import flask

    if not flask.has_app_context():
        return
    flask.current_app.before_request(_deep_body_check(function))


def _deep_body_check(function: str) -> Callable[[], tuple[str, int] | None]:
    def check() -> tuple[str, int] | None:
        import flask

        body = flask.request.get_data(cache=True)  # the framework reads the same cached bytes
        if not json_depth_exceeds(body):
            return None
        from shared.clock import clock_from_env
        from shared.gcp import firestore_client
        from shared.orchestration.quarantine import Quarantine

        reason = f"request body is nested deeper than {MAX_JSON_DEPTH} levels; acked, not parsed"
        definition = load_definition()
        quarantine = Quarantine(
            firestore_client(project_id()),
            definition.pipeline.quarantine_collection,
            clock_from_env(),
            definition.retention,
        )
        with log_context(function=function, execution_id=flask.request.headers.get("ce-id")):
            quarantine.put(None, reason=reason, raw=body, transition=function)
            log_outcome(_guard_log, Outcome("quarantined", reason))
        return "OK", 200

    return check
