"""What one event or evaluation came to: the entrypoints map an ``Outcome`` to ack (every kind);
a transient failure raises instead (the event is redelivered)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

OutcomeKind = Literal[
    "triggered",
    "waiting",
    "already_triggered",
    "claimed_elsewhere",
    "blocked",
    "quarantined",
    "stale",
    "gate_error",
]


@dataclass(frozen=True)
class Outcome:
    """What happened to one event. Every kind is acked; transient failures raise instead."""

    kind: OutcomeKind
    detail: str
    game_date: date | None = None
    trigger_id: str | None = None
    duplicate: bool = False
    unknown_processor: bool = False
    extra: dict[str, Any] = field(default_factory=dict)
