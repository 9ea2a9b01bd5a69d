"""The messages the pipeline exchanges, as pydantic models (lesson L07: one model per message).

Inbound messages from processors we do not own (``ProcessorCompletion``) ignore unknown
keys; every message we produce or configure ourselves forbids them, so a typo fails loudly.
Publisher and consumer share these models: encode with ``to_json_bytes()``, decode with
``shared.contracts.decode``. The field types they share (explicit dates, timestamps with an
offset, phase numbers, bounded names) are in ``shared.contracts.fields``.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from enum import StrEnum
from typing import Annotated, Any, Literal, Self

from pydantic import AliasChoices, BaseModel, BeforeValidator, ConfigDict, Field, model_validator
from pydantic.config import JsonDict

from shared.contracts.fields import (
    AwareTimestamp,
    BoundedName,
    ExplicitDate,
    LenientPhaseNumber,
    NonEmptyStr,
    PhaseNumber,
    explicit_date,
    shown,
)


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

    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False, defer_build=True)

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


# Error classification (used by auto-retry): the replaced system's bases send `error_type` as
# free text, an exception class name (`type(error).__name__`, analytics_base.py:1659 and
# precompute_base.py:660 at najicham/nba-stats-scraper@18f6ecfe; since `error` is a str there,
# it is usually the word "str"). The rule, in order:
#   1. the words "transient" / "permanent" (any case) mean what they say;
#   2. a class name (or dotted path ending in one) listed in PERMANENT_ERROR_TYPES is permanent:
#      bad input, bad configuration or a client error that a re-run with the same input repeats;
#   3. anything else (TRANSIENT_ERROR_TYPES, "str", unknown text) is transient: auto-retry
#      re-runs it, and its retry count is bounded (max_retries), so an unknown class costs at
#      most a few retries, never a storm (lesson L10).
PERMANENT_ERROR_TYPES = frozenset(
    {
        "valueerror", "typeerror", "keyerror", "attributeerror", "indexerror", "lookuperror",
        "zerodivisionerror", "notimplementederror", "unicodedecodeerror", "unicodeerror",
        "jsondecodeerror", "validationerror", "datavalidationerror", "schemaerror", "assertionerror",
        "filenotfounderror", "permissionerror",
        # google.api_core.exceptions client errors (HTTP 4xx other than 408/409/429)
        "badrequest", "invalidargument", "unauthorized", "unauthenticated", "forbidden",
        "permissiondenied", "notfound", "methodnotallowed", "lengthrequired", "preconditionfailed",
        "requestrangenotsatisfiable", "failedprecondition", "outofrange", "alreadyexists",
        # requests / HTTP client errors named by status
        "httperror400", "httperror401", "httperror403", "httperror404", "clienterror", "client_error",
    }
)
TRANSIENT_ERROR_TYPES = frozenset(
    {
        "timeouterror", "timeout", "connectionerror", "connecttimeout", "readtimeout", "oserror",
        "serviceunavailable", "deadlineexceeded", "internalservererror", "badgateway", "gatewaytimeout",
        "toomanyrequests", "resourceexhausted", "aborted", "conflict", "retryerror", "servererror",
        "transporterror", "unavailable", "internal", "unknown",
    }
)
_MAX_ERROR_TYPE = 200  # longer error_type text is truncated when stored


def classify_error_type(error_type: str | None) -> ErrorType | None:
    """Transient or permanent, by the rule above; ``None`` when no error type was sent."""
    if error_type is None or not error_type.strip():
        return None
    word = error_type.strip().lower()
    if word in (ErrorType.TRANSIENT.value, ErrorType.PERMANENT.value):
        return ErrorType(word)
    name = word.rsplit(".", 1)[-1]
    return ErrorType.PERMANENT if name in PERMANENT_ERROR_TYPES else ErrorType.TRANSIENT


def _error_type_text(value: object) -> object:
    """Free text, kept raw (capped); a legacy enum value passes through as its string."""
    if isinstance(value, ErrorType):
        return value.value
    if isinstance(value, str) and len(value) > _MAX_ERROR_TYPE:
        return value[: _MAX_ERROR_TYPE - 3] + "..."
    return value


# Keys of the prediction coordinator's completion that may sit at the top level (this package's
# own publisher) or inside `metadata` (the replaced coordinator: coordinator.py:3954-3961 and
# 4320-4330 at najicham/nba-stats-scraper@18f6ecfe). The top level wins when both are present.
PREDICTION_KEYS = ("completion_pct", "completed_predictions", "expected_predictions")
_MAX_EXTRA_KEYS = 20
_MAX_EXTRA_VALUE = 500


def _bounded(value: object) -> object:
    """An unknown key's value, as stored: scalars kept, strings and containers capped."""
    if value is None or isinstance(value, bool | int | float):
        return value
    text = value if isinstance(value, str) else repr(value)
    return text if len(text) <= _MAX_EXTRA_VALUE else text[: _MAX_EXTRA_VALUE - 3] + "..."


class ProcessorCompletion(ContractModel):
    """Completion envelope a processor publishes when a run ends (inbound).

    The reference is the replaced system's ``UnifiedPubSubPublisher._build_message``
    (shared/publishers/unified_pubsub_publisher.py:178-210 at najicham/nba-stats-scraper@18f6ecfe):
    None-valued keys are dropped there, and keys this model does not name (``parent_processor``,
    ``trigger_source``, ``trigger_message_id``, ...) are kept (``unknown_fields()``) and never a reason
    to reject. Strict where it protects: explicit dates, timestamps with an offset.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, json_schema_extra=_document_target_date_alias)

    processor_name: BoundedName
    phase: LenientPhaseNumber
    execution_id: BoundedName
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
    error_type: Annotated[str | None, BeforeValidator(_error_type_text)] = Field(
        default=None,
        description="Free text (often an exception class name), kept raw; see classify_error_type.",
    )
    completion_pct: float | None = Field(
        default=None,
        ge=0,
        description="Phase-5 coordinator: share of expected predictions made; top level or metadata.completion_pct.",
    )
    completed_predictions: int | None = Field(
        default=None, ge=0, description="Phase-5 coordinator; top level or metadata.completed_predictions."
    )
    expected_predictions: int | None = Field(
        default=None, ge=0, description="Phase-5 coordinator; top level or metadata.expected_predictions."
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
                parsed[key] = explicit_date(value)
            except ValueError as exc:
                raise ValueError(f"{key}: {exc}") from None
        if parsed["game_date"] != parsed["target_date"]:
            raise ValueError(
                f"game_date ({parsed['game_date']}) and its alias target_date ({parsed['target_date']}) "
                "disagree; send one date"
            )
        return {k: v for k, v in data.items() if k != "target_date"}

    @model_validator(mode="before")
    @classmethod
    def _prediction_counts_from_metadata(cls, data: Any) -> Any:
        """The replaced coordinator sends completion_pct and its counts inside ``metadata``."""
        if not isinstance(data, Mapping):
            return data
        metadata = data.get("metadata")
        if not isinstance(metadata, Mapping):
            return data
        lifted = {k: metadata[k] for k in PREDICTION_KEYS if data.get(k) is None and metadata.get(k) is not None}
        return {**data, **lifted} if lifted else data

    @property
    def error_class(self) -> ErrorType | None:
        """Transient or permanent, by ``classify_error_type`` (``None`` without an error type)."""
        return classify_error_type(self.error_type)

    @property
    def predictions(self) -> int:
        """Predictions made (phase 5): ``completed_predictions`` when sent, else ``record_count``."""
        return self.completed_predictions if self.completed_predictions is not None else self.record_count

    @property
    def effective_completion_pct(self) -> float | None:
        """``completion_pct``, or completed/expected predictions when only the counts were sent."""
        if self.completion_pct is not None:
            return self.completion_pct
        if self.completed_predictions is not None and self.expected_predictions:
            return round(100.0 * self.completed_predictions / self.expected_predictions, 3)
        return None

    def unknown_fields(self) -> dict[str, Any]:
        """Top-level keys this contract does not name, as stored (at most 20, values capped)."""
        extra = self.model_extra or {}
        return {str(k)[:100]: _bounded(v) for k, v in list(extra.items())[:_MAX_EXTRA_KEYS]}


def make_trigger_id(transition: str, game_date: date, generation: int, mode: str | None = None) -> str:
    """The deterministic id of a phase trigger, so a re-published trigger deduplicates.

    Args:
        transition: transition name, e.g. ``"phase2_to_phase3"``.
        game_date: the game date the trigger is for.
        generation: 1 for the first trigger of that date, incremented on each re-trigger.
        mode: for a transition with modes, the mode: each mode triggers once per generation.

    Returns:
        ``"<transition>:<YYYY-MM-DD>:g<generation>"``, plus ``":<mode>"`` when there is one.
    """
    base = f"{transition}:{game_date.isoformat()}:g{generation}"
    return f"{base}:{mode}" if mode else base


class GateOutcome(ContractModel):
    """One data gate's result as the trigger carries it (``[gates.*]`` in the definition)."""

    gate: NonEmptyStr
    kind: NonEmptyStr
    verdict: Literal["pass", "alert", "blocked"]
    value: float | None = Field(default=None, description="Percent; null when there was nothing to measure.")
    thresholds: dict[str, float] = Field(default_factory=dict, description="block_below, alert_below, ...")
    advisory: bool = False
    reason: str
    details: dict[str, Any] = Field(default_factory=dict)


class PhaseTrigger(ContractModel):
    """Message that starts the next phase for one game date (outbound).

    Besides this package's fields it carries what the replaced system's consumers read
    (``tests/data/upstream/consumers/``): ``success`` (phase 3 and 4 skip a message without it:
    main_analytics_service.py:872-877, main_precompute_service.py:136), ``source_table`` /
    ``output_table`` (the one table a phase 3 or 4 run starts from: main_analytics_service.py:870,
    main_precompute_service.py:134), ``analysis_date`` (main_precompute_service.py:135),
    ``target_date`` and ``export_types`` (phase6_export/main.py:405-411), ``trigger_source`` and
    ``correlation_id``. A transition that delivers per source table publishes one message per
    table (``part`` of ``parts``), all with the same ``trigger_id``: a consumer dedupes on
    ``message_key`` (``trigger_id`` plus the table).
    """

    trigger_id: NonEmptyStr = Field(description="make_trigger_id(transition, game_date, generation, mode)")
    transition: NonEmptyStr
    source_phase: PhaseNumber
    target_phase: PhaseNumber
    game_date: ExplicitDate
    target_date: ExplicitDate | None = Field(default=None, description="Set for phase 6, which keys on it.")
    analysis_date: ExplicitDate | None = Field(default=None, description="= game_date; phase 4 precompute reads it.")
    mode: str | None = None
    status: TriggerStatus
    success: bool = Field(default=True, description="Phase 3/4 consumers skip a message whose success is false.")
    reason: str
    generation: int = Field(ge=1)
    correlation_id: str | None = None
    trigger_source: str = "orchestrator"
    triggered_by: str | None = None
    triggered_at: AwareTimestamp
    processors_completed: list[str]
    missing_games: list[str] = Field(default_factory=list)
    postponed_games: list[str] = Field(
        default_factory=list,
        description="Games of the date found postponed (not played): consumers drop them (predictions, grading).",
    )
    export_types: list[str] = Field(default_factory=list)
    gates: list[GateOutcome] = Field(default_factory=list, description="Every gate's value, thresholds, verdict.")
    source_table: str | None = Field(default=None, description="Per-source-table delivery: this message's table.")
    output_table: str | None = Field(default=None, description="= source_table (phase 3 analytics reads it first).")
    part: int = Field(default=1, ge=1)
    parts: int = Field(default=1, ge=1)
    metadata: dict[str, Any] = Field(default_factory=dict)

    @model_validator(mode="after")
    def _deterministic_id(self) -> Self:
        expected = make_trigger_id(self.transition, self.game_date, self.generation, self.mode)
        if self.trigger_id != expected:
            raise ValueError(
                f"trigger_id {shown(self.trigger_id)} does not match transition, game_date, "
                f"generation and mode; expected {expected!r}"
            )
        if self.part > self.parts:
            raise ValueError(f"part {self.part} of {self.parts}: part must not exceed parts")
        return self

    @property
    def message_key(self) -> str:
        """What a consumer dedupes on: the ``trigger_id``, plus the table when delivered per table."""
        return f"{self.trigger_id}#{self.source_table}" if self.source_table else self.trigger_id

    def attributes(self) -> dict[str, str]:
        """Pub/Sub attributes for this trigger (all strings), for filtering and dedup without decoding."""
        attributes = {
            "trigger_id": self.trigger_id,
            "transition": self.transition,
            "game_date": self.game_date.isoformat(),
            "generation": str(self.generation),
            "status": self.status.value,
        }
        if self.parts > 1 or self.source_table:
            attributes.update(part=str(self.part), parts=str(self.parts), message_key=self.message_key)
        return attributes


class TriggerTick(ContractModel):
    """Cloud Scheduler payload of a sensor's or scheduled trigger's slot (``[[sensors]]``,
    published by the schedule dispatcher once per slot); ``game_date`` overrides the slot's date rule
    (a manual run)."""

    trigger: str = Field(default="", description="The sensor or scheduled trigger's name.")
    slot: str = Field(default="", description="Its slot (one Cloud Scheduler job).")
    game_date: ExplicitDate | None = None

    @model_validator(mode="after")
    def _named(self) -> Self:
        if not self.trigger or not self.slot:
            raise ValueError("a trigger tick names its `trigger` and `slot`")
        return self


class TimedTriggerMessage(ContractModel):
    """What a sensor or scheduled trigger publishes (outbound).

    It carries what the replaced consumers read: grading reads ``target_date``,
    ``trigger_source``, ``run_aggregation`` and ``correlation_id`` (grading/main.py:1151-1154);
    phase 6 export reads ``target_date`` and ``export_types`` (phase6_export/main.py:405-411) and
    ``update_latest`` (deploy_phase6_scheduler.sh:165), as their scheduler jobs send them.
    """

    trigger_id: NonEmptyStr = Field(description="make_trigger_id(name, game_date, generation, mode)")
    name: NonEmptyStr = Field(description="The sensor or scheduled trigger.")
    slot: NonEmptyStr = Field(description="The slot (scheduler job) whose tick triggered it.")
    mode: str | None = Field(default=None, description="The slot, for a trigger that fires once per slot.")
    game_date: ExplicitDate
    target_date: ExplicitDate = Field(description="= game_date; what the consumers key on.")
    generation: int = Field(ge=1)
    trigger_source: str
    triggered_by: str | None = None
    triggered_at: AwareTimestamp
    reason: str
    correlation_id: str | None = None
    conditions: list[GateOutcome] = Field(default_factory=list)
    postponed_games: list[str] = Field(
        default_factory=list, description="Games of the date found postponed: grading drops them (no actuals)."
    )
    export_types: list[str] = Field(default_factory=list)
    run_aggregation: bool | None = None
    update_latest: bool | None = None

    @model_validator(mode="after")
    def _deterministic_id(self) -> Self:
        expected = make_trigger_id(self.name, self.game_date, self.generation, self.mode)
        if self.trigger_id != expected:
            raise ValueError(f"trigger_id {shown(self.trigger_id)} does not match; expected {expected!r}")
        return self

    def attributes(self) -> dict[str, str]:
        return {
            "trigger_id": self.trigger_id,
            "trigger": self.name,
            "slot": self.slot,
            "game_date": self.game_date.isoformat(),
            "generation": str(self.generation),
        }


class MonitorTick(ContractModel):
    """Payload of the transition monitor's topic; an empty body means the defaults: one monitor pass
    (Cloud Scheduler, every 10 minutes). ``check = "self_heal"`` / ``"gaps"``: a heal task instead
    (a scheduled job of ``[heal]``, run by the schedule dispatcher), for ``game_date`` (default: today
    in the pipeline's zone). A heal task writes what it did (audited, logged); the next monitor pass
    reports its findings."""

    check: Literal["transitions", "self_heal", "gaps"] = "transitions"
    lookback_days: int | None = Field(default=None, ge=1)
    dry_run: bool = False
    game_date: ExplicitDate | None = Field(default=None, description="A heal task's date (default today).")
    requested_by: str | None = Field(default=None, description="Who asked: a job name or `phasectl:<user>`.")
    season: bool = Field(
        default=False, description="`check = gaps`: the whole season's grid instead of [heal.gaps] lookback_days."
    )

    @model_validator(mode="after")
    def _heal_fields(self) -> Self:
        if self.check == "transitions" and self.game_date is not None:
            raise ValueError("`game_date` goes with a heal task (`check` = self_heal or gaps)")
        if self.season and self.check != "gaps":
            raise ValueError("`season` goes with the gap pass (`check` = gaps)")
        return self


class ScheduleTick(ContractModel):
    """Cloud Scheduler payload for the schedule dispatcher (every minute); an empty body means the
    defaults: run every job slot due now. ``job`` + ``game_date``: one slot by hand (``phasectl
    schedules run``), ``force`` a new generation of a slot that already ran."""

    job: str | None = Field(default=None, description="Run only this job (a manual run).")
    game_date: ExplicitDate | None = Field(default=None, description="With `job`: the day whose slot runs.")
    force: bool = False
    requested_by: str | None = None

    @model_validator(mode="after")
    def _manual(self) -> Self:
        if (self.game_date is not None or self.force) and not self.job:
            raise ValueError("`game_date` and `force` go with `job` (a manual run of one job)")
        return self


class RetryTick(ContractModel):
    """Cloud Scheduler payload for auto-retry; an empty body means the defaults."""

    max_rows: int = Field(default=50, ge=1, le=1000)
    dry_run: bool = False
    outbox_only: bool = Field(
        default=False,
        description=(
            "A transition's nudge: deliver the Firestore outbox (log rows, retry hand-offs) now, without a retry pass."
        ),
    )


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
