"""A trigger's publish intent: its exact messages, fixed once before the first publish attempt.

Lesson L27, an id must name one content: a publish can reach the server while the client raises
(a deadline that ran out on the answer). If the next attempt decided the date again, a completion
that arrived in between would change the messages (another part, another ``processors_completed``)
under the same ``trigger_id``, and a consumer deduplicating on the id would act on a mix. So the
trigger path builds its messages once, stores them with the claim (``TransitionState.confirm``,
date status ``publishing``) and publishes the stored bytes; every later attempt under that
trigger_id (a redelivery, the monitor, ``phasectl trigger``, recovery after a crash between publish
and latch) finds the intent on the date document and publishes exactly those bytes again, without
deciding the date again. The latch and its ``phase_execution_log`` row are built from the intent:
they describe the bytes that went out. The latch removes the intent; a new generation (operator
re-trigger) starts without one.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any

from shared.orchestration.bounded import MAX_LIST, bounded, capped
from shared.orchestration.date_state import slot_key


@dataclass(frozen=True)
class StoredMessage:
    """One message exactly as first published (``Publishable``: the publisher sends these bytes)."""

    trigger_id: str
    data: bytes
    attrs: dict[str, str]

    def to_json_bytes(self) -> bytes:
        return self.data

    def attributes(self) -> dict[str, str]:
        return dict(self.attrs)


@dataclass(frozen=True)
class Intent:
    """What one trigger publishes and what its latch and log row say about it."""

    trigger_id: str
    generation: int
    mode: str | None
    status: str
    headline: str  # the decision's reason (the log line)
    reason: str  # with every gate's reason (the message's and the log row's)
    messages: tuple[StoredMessage, ...]
    gates: dict[str, Any] | None  # gate name -> its result, as stored on the date
    games_processed: int | None
    missing_games: tuple[str, ...]
    processors_completed: tuple[str, ...]
    missing_processors: tuple[str, ...]
    unknown_processors: tuple[str, ...]
    start_time: datetime | None
    correlation_id: str | None
    source_tables: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)  # the caller's own (a timed trigger's slot)

    @property
    def slot(self) -> str:
        return slot_key(self.generation, self.mode)

    def alert_gates(self) -> list[tuple[str, str]]:
        """(gate, reason) of every gate under its alert line: triggered with a warning."""
        return [(name, str(g.get("reason"))) for name, g in (self.gates or {}).items() if g.get("verdict") == "alert"]

    def to_doc(self) -> dict[str, Any]:
        """As stored on the date document (bounded: L22, cap what goes into a transaction)."""
        return {
            "trigger_id": self.trigger_id,
            "generation": self.generation,
            "mode": self.mode,
            "slot": self.slot,
            "status": self.status,
            "headline": capped(self.headline),
            "reason": capped(self.reason),
            "messages": [{"data": m.data, "attributes": m.attrs} for m in self.messages],
            "gates": self.gates,
            "games_processed": self.games_processed,
            "missing_games": list(self.missing_games[:MAX_LIST]),
            "processors_completed": bounded("p", self.processors_completed)["p"],
            "missing_processors": bounded("p", self.missing_processors)["p"],
            "unknown_processors": bounded("p", self.unknown_processors)["p"],
            "start_time": self.start_time,
            "correlation_id": self.correlation_id,
            "source_tables": list(self.source_tables[:MAX_LIST]),
            "details": self.details,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any]) -> Intent:
        trigger_id = str(doc["trigger_id"])
        return cls(
            trigger_id=trigger_id,
            generation=int(doc["generation"]),
            mode=doc.get("mode"),
            status=str(doc["status"]),
            headline=str(doc.get("headline") or ""),
            reason=str(doc.get("reason") or ""),
            messages=tuple(
                StoredMessage(trigger_id, bytes(m["data"]), _attributes(m)) for m in doc.get("messages") or []
            ),
            gates=doc.get("gates"),
            games_processed=doc.get("games_processed"),
            missing_games=tuple(doc.get("missing_games") or ()),
            processors_completed=tuple(doc.get("processors_completed") or ()),
            missing_processors=tuple(doc.get("missing_processors") or ()),
            unknown_processors=tuple(doc.get("unknown_processors") or ()),
            start_time=doc.get("start_time"),
            correlation_id=doc.get("correlation_id"),
            source_tables=tuple(doc.get("source_tables") or ()),
            details=dict(doc.get("details") or {}),
        )


def _attributes(message: dict[str, Any]) -> dict[str, str]:
    return {str(k): str(v) for k, v in (message.get("attributes") or {}).items()}


def log_row(
    intent: Intent, transition: str, game_date: date, now: datetime, message_ids: list[str], http: dict[str, Any] | None
) -> tuple[str, dict[str, Any]]:
    """The ``phase_execution_log`` row of the trigger: what the intent's bytes said."""
    from shared.orchestration.execution_log import build_row

    return build_row(
        transition=transition,
        game_date=game_date,
        status=intent.status,
        now=now,
        correlation_id=intent.correlation_id,
        trigger_id=intent.trigger_id,
        start_time=intent.start_time,
        games_processed=intent.games_processed,
        metadata={
            "mode": intent.mode,
            "reason": intent.reason,
            "gates": intent.gates,
            **bounded("processors_completed", intent.processors_completed),
            **bounded("missing_processors", intent.missing_processors),
            **bounded("unknown_processors", intent.unknown_processors),
            **bounded("missing_games", intent.missing_games),
            "message_id": message_ids[0],
            **bounded("message_ids", message_ids),
            **bounded("source_tables", intent.source_tables),
            "http": http,
            "parts": len(intent.messages),
        },
    )
