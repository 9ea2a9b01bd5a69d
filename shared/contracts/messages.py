"""The messages the pipeline exchanges, as pydantic models (lesson L07: one model per message).

Inbound messages from processors we do not own (``ProcessorCompletion``) ignore unknown
keys; every message we produce or configure ourselves forbids them, so a typo fails loudly.
Publisher and consumer share these models: encode with ``to_json_bytes()``, decode with
``shared.contracts.decode``.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import date, datetime
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import (
    AfterValidator,
    AliasChoices,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    WithJsonSchema,
    model_validator,
)
from pydantic.config import JsonDict

_MAX_SHOWN = 60  # longest input echoed back in an error message

# "2", "phase2", "phase_2" (any case). Spelled with character classes so that the same
# pattern is valid in the exported JSON Schema (ECMA-262 has no inline flags).
_PHASE_TEXT = r"^(?:[Pp][Hh][Aa][Ss][Ee]_?)?([1-9])$"
_PHASE_TEXT_RE = re.compile(_PHASE_TEXT)
_ISO_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RELATIVE_DATE_WORDS = frozenset({"today", "yesterday", "tomorrow", "now"})


def _shown(value: object) -> str:
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _coerce_phase(value: object) -> object:
    """Accept 2, "2", "phase2", "phase_2"; leave other ints to the range check."""
    if isinstance(value, bool):
        raise ValueError("phase must be a number 1..9, not a boolean")
    if isinstance(value, str):
        match = _PHASE_TEXT_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"phase must be 1..9 or a string like '2', 'phase2', 'phase_2'; got {_shown(value)}")
        return int(match.group(1))
    return value


def _explicit_date(value: object) -> date:
    """Accept only a ``date`` or an explicit ``YYYY-MM-DD`` string (never "TODAY")."""
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD), got a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        if _ISO_DATE_RE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{_shown(value)} is not a real calendar date") from None
        if value.strip().lower() in _RELATIVE_DATE_WORDS:
            raise ValueError(
                f"relative date {_shown(value)} is not allowed in a message; "
                "the publisher must resolve it to an explicit YYYY-MM-DD date"
            )
        raise ValueError(f"expected an explicit YYYY-MM-DD date, got {_shown(value)}")
    kind = "null" if value is None else type(value).__name__
    raise ValueError(f"expected an explicit YYYY-MM-DD date string, got {kind}")


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime has no timezone (naive); send ISO 8601 with an offset, e.g. 2026-01-25T08:12:45Z")
    return value


NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
PhaseNumber = Annotated[int, Field(ge=1, le=9)]
LenientPhaseNumber = Annotated[
    int,
    BeforeValidator(_coerce_phase),
    Field(ge=1, le=9),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 9},
                {"type": "string", "pattern": _PHASE_TEXT},
            ],
            "description": "Phase number 1..9; also accepted as '2', 'phase2' or 'phase_2'.",
        }
    ),
]
ExplicitDate = Annotated[date, BeforeValidator(_explicit_date)]
AwareTimestamp = Annotated[datetime, AfterValidator(_require_timezone)]


class CompletionStatus(StrEnum):
    """Outcome a processor reports for one run."""

    SUCCESS = "success"
    PARTIAL = "partial"
    NO_DATA = "no_data"
    FAILED = "failed"
    SKIPPED = "skipped"


class ErrorType(StrEnum):
    """Whether a failed run may succeed when retried."""

    TRANSIENT = "transient"
    PERMANENT = "permanent"


class TriggerStatus(StrEnum):
    """Why a phase was triggered: all done, enough done, or a deadline tier reached."""

    COMPLETE = "complete"
    PARTIAL = "partial"
    DEADLINE_EXCEEDED = "deadline_exceeded"


class ContractModel(BaseModel):
    """Base of every message: frozen, unknown keys forbidden, no NaN/Infinity."""

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)

    def to_json_bytes(self) -> bytes:
        """The message as compact UTF-8 JSON (dates and datetimes in ISO 8601), ready to publish."""
        return self.model_dump_json().encode("utf-8")


def _document_target_date_alias(schema: JsonDict) -> None:
    """Show the ``target_date`` alias in the exported schema: one of the two keys is required."""
    properties = schema["properties"]
    required = schema["required"]
    assert isinstance(properties, dict) and isinstance(required, list)
    game_date = properties["game_date"]
    assert isinstance(game_date, dict)
    properties["target_date"] = {
        **game_date,
        "title": "Target Date",
        "description": "Alias of game_date (L07); when both are sent they must agree.",
    }
    schema["required"] = [key for key in required if key != "game_date"]
    schema["anyOf"] = [{"required": ["game_date"]}, {"required": ["target_date"]}]


class ProcessorCompletion(ContractModel):
    """Completion envelope a processor publishes when a run ends (inbound; unknown keys ignored)."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True, json_schema_extra=_document_target_date_alias)

    processor_name: NonEmptyStr
    phase: LenientPhaseNumber
    execution_id: NonEmptyStr
    correlation_id: str | None = None
    game_date: ExplicitDate = Field(
        validation_alias=AliasChoices("game_date", "target_date"),
        description="Explicit YYYY-MM-DD; the key `target_date` is accepted as an alias (L07).",
    )
    output_table: str | None = None
    output_dataset: str | None = None
    status: CompletionStatus
    record_count: int = Field(default=0, ge=0)
    records_failed: int = Field(default=0, ge=0)
    timestamp: AwareTimestamp = Field(description="When the run ended; must carry a timezone offset.")
    duration_seconds: float | None = Field(default=None, ge=0)
    error_message: str | None = None
    error_type: ErrorType | None = None
    completion_pct: float | None = Field(
        default=None, ge=0, le=100, description="Sent by the phase-5 prediction coordinator."
    )
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _one_game_date(cls, data: Any) -> Any:
        """``game_date`` and its alias ``target_date`` may both appear only when they agree."""
        if not isinstance(data, Mapping):
            return data
        game, target = data.get("game_date"), data.get("target_date")
        if game is None and target is not None and "game_date" in data:
            # {"game_date": null, "target_date": "..."}: the alias carries the date.
            return {k: v for k, v in data.items() if k != "game_date"}
        if game is None or target is None:
            return data
        parsed: dict[str, date] = {}
        for key, value in (("game_date", game), ("target_date", target)):
            try:
                parsed[key] = _explicit_date(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        if parsed["game_date"] != parsed["target_date"]:
            raise ValueError(
                f"game_date ({parsed['game_date']}) and its alias target_date ({parsed['target_date']}) "
                "disagree; send one date"
            )
        return data


def make_trigger_id(transition: str, game_date: date, generation: int) -> str:
    """The deterministic id of a phase trigger, so a re-published trigger deduplicates.

    Args:
        transition: transition name, e.g. ``"phase2_to_phase3"``.
        game_date: the game date the trigger is for.
        generation: 1 for the first trigger of that date, incremented on each re-trigger.

    Returns:
        ``"<transition>:<YYYY-MM-DD>:g<generation>"``.
    """
    return f"{transition}:{game_date.isoformat()}:g{generation}"


class PhaseTrigger(ContractModel):
    """Message that starts the next phase for one game date (outbound)."""

    trigger_id: NonEmptyStr = Field(description="make_trigger_id(transition, game_date, generation)")
    transition: NonEmptyStr
    source_phase: PhaseNumber
    target_phase: PhaseNumber
    game_date: ExplicitDate
    target_date: ExplicitDate | None = Field(default=None, description="Set for phase 6, which keys on it.")
    mode: str | None = None
    status: TriggerStatus
    reason: str
    generation: int = Field(ge=1)
    correlation_id: str | None = None
    triggered_at: AwareTimestamp
    processors_completed: list[str]
    missing_games: list[str] = Field(default_factory=list)
    export_types: list[str] = Field(default_factory=list)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _deterministic_id(self) -> Self:
        expected = make_trigger_id(self.transition, self.game_date, self.generation)
        if self.trigger_id != expected:
            raise ValueError(
                f"trigger_id {_shown(self.trigger_id)} does not match transition, game_date and "
                f"generation; expected {expected!r}"
            )
        return self

    def attributes(self) -> dict[str, str]:
        """Pub/Sub attributes for this trigger (all strings), for filtering and dedup without decoding."""
        return {
            "trigger_id": self.trigger_id,
            "transition": self.transition,
            "game_date": self.game_date.isoformat(),
            "generation": str(self.generation),
            "status": self.status.value,
        }


class MonitorTick(ContractModel):
    """Cloud Scheduler payload for the transition monitor; an empty body means the defaults."""

    check: Literal["transitions"] = "transitions"
    lookback_days: int | None = Field(default=None, ge=1)
    dry_run: bool = False


class RetryTick(ContractModel):
    """Cloud Scheduler payload for auto-retry; an empty body means the defaults."""

    max_rows: int = Field(default=50, ge=1, le=1000)
    dry_run: bool = False


class RetryRequest(ContractModel):
    """Message auto-retry sends to re-run a processor for one game date (outbound)."""

    request_id: NonEmptyStr
    queue_id: NonEmptyStr
    processor_name: NonEmptyStr
    phase: PhaseNumber
    game_date: ExplicitDate
    correlation_id: str | None = None
    attempt: int = Field(ge=1)
    fallback_for: str | None = Field(
        default=None, description="The failed processor this fallback source run stands in for."
    )
    game_ids: list[str] = Field(default_factory=list)
    requested_at: AwareTimestamp
