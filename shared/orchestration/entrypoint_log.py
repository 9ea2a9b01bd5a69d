"""What every entrypoint logs about one event: its attributes and the outcome it got."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import logging

    from shared.orchestration.outcome import Outcome


def event_attr(event: Any, name: str) -> Any:
    """A CloudEvent attribute (``id``, ``traceparent``), or ``None`` for any other kind of event."""
    try:
        return event[name]
    except (KeyError, TypeError):
        return None


def log_outcome(log: logging.Logger, outcome: Outcome, **labels: str) -> None:
    """One INFO line per event: the outcome's kind and detail, its trigger id and game date."""
    log.info(
        "%s: %s",
        outcome.kind,
        outcome.detail,
        extra={
            "labels": {"outcome": outcome.kind, **labels},
            "fields": {
                "trigger_id": outcome.trigger_id,
                "game_date": outcome.game_date.isoformat() if outcome.game_date else None,
            },
        },
    )
