"""What a date document says, as read: ``DateState``, a ``Claim`` and the document's keys.

Pure (no I/O): ``shared.orchestration.state`` reads and writes the documents.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date
from typing import Any, Literal

from shared.orchestration.engine import CompletionRecord


def state_doc_id(transition: str, game_date: date) -> str:
    return f"{transition}__{game_date.isoformat()}"


def slot_key(generation: int, mode: str | None) -> str:
    """Where a generation's trigger is latched: once per mode for a transition with modes (pre-game
    ``same_day``/``tomorrow`` and post-game ``overnight`` are distinct triggers), else once."""
    return str(generation) if mode is None else f"{generation}-{mode}"


@dataclass(frozen=True)
class DateState:
    """The date document as read (plus its completions)."""

    transition: str
    game_date: date
    generation: int
    status: str
    triggered: dict[str, Any]
    claim: dict[str, Any] | None
    missing_games: tuple[str, ...]
    last_gate: dict[str, Any] | None
    completions: tuple[CompletionRecord, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def triggered_current(self) -> dict[str, Any] | None:
        """The current generation's trigger (of a transition with modes: its latest mode's)."""
        value = self.triggered.get(str(self.generation))
        if isinstance(value, dict):
            return value
        prefix = f"{self.generation}-"
        slots = [v for k, v in self.triggered.items() if k.startswith(prefix) and isinstance(v, dict)]
        return max(slots, key=lambda v: str(v.get("at") or "")) if slots else None

    def triggered_slot(self, mode: str | None) -> dict[str, Any] | None:
        """The current generation's trigger for ``mode`` (``None``: a transition without modes)."""
        value = self.triggered.get(slot_key(self.generation, mode))
        return value if isinstance(value, dict) else None

    @property
    def trigger_source(self) -> str | None:
        """Who started the current generation when it was not the orchestrator itself (``self_heal``,
        ``backfill``, ``phasectl``): set by ``reopen``, carried by the generation's trigger messages."""
        reopened = self.raw.get("reopened")
        if not isinstance(reopened, dict) or int(reopened.get("generation") or self.generation) != self.generation:
            return None
        source = reopened.get("trigger_source")
        return str(source) if source else None

    @property
    def intent(self) -> dict[str, Any] | None:
        """The publish intent of the current generation not latched yet: the exact messages an
        attempt fixed before its first publish (``shared.orchestration.intent``), or ``None``."""
        intent = self.raw.get("intent")
        if not isinstance(intent, dict) or int(intent.get("generation") or 0) != self.generation:
            return None
        return None if isinstance(self.triggered.get(str(intent.get("slot"))), dict) else intent


ClaimResult = Literal["claimed", "already_triggered", "claimed_elsewhere"]


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim; ``token`` fences every later write of this attempt (one owner per
    attempt: a concurrent redelivery cannot latch or release this attempt's claim, L21)."""

    result: ClaimResult
    generation: int
    trigger_id: str | None = None
    owner: str | None = None
    token: int | None = None


@dataclass(frozen=True)
class Confirmed:
    """``confirm`` succeeded: the claim is ours and extended; ``intent`` is the publish intent stored
    on the date now (the caller's, or one an earlier attempt stored first: that one wins)."""

    intent: dict[str, Any] | None


def _holds(doc: dict[str, Any] | None, owner: str, token: int | None) -> bool:
    """Whether the date document's claim is exactly this attempt's (owner and fencing token)."""
    claim = (doc or {}).get("claim") or {}
    return bool(claim) and claim.get("owner") == owner and claim.get("token") == token
