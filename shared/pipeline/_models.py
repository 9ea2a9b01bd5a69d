"""The sections of the pipeline definition; a part of ``shared.pipeline.definition`` (import from there).

Settings, phases, processors (and how their names compare), transitions with their completion
rules, retry, monitor, retention, schedules and deploy settings. The gate and ``[games]``
sections are in ``_gates``, the timed triggers in ``_timed``.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", min_length=1, max_length=100)]
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")]
TableRef = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")]
PhaseNumber = Annotated[int, Field(ge=1, le=9)]


class DefinitionModel(BaseModel):
    """Base of every section: frozen, unknown keys forbidden. ``defer_build=True`` keeps the cold
    start cheap: a definition loaded precompiled never builds a validator (built on first use)."""

    model_config = ConfigDict(extra="forbid", frozen=True, defer_build=True)


class CountsPolicy(StrEnum):
    """Whether a ``no_data``/``skipped`` completion counts toward the phase (lesson L09)."""

    DONE = "done"
    NOT_DONE = "not_done"


class Rule(StrEnum):
    ALL_OR_CRITICAL_MAJORITY = "all_or_critical_majority"
    DEADLINE_TIERS = "deadline_tiers"
    COMPLETION_THRESHOLD = "completion_threshold"


class ModeWhen(StrEnum):
    """Which game dates a mode applies to, relative to "today" in the pipeline timezone."""

    BEFORE_TODAY = "before_today"
    TODAY = "today"
    AFTER_TODAY = "after_today"


class PipelineSettings(DefinitionModel):
    name: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]
    timezone: str = "America/New_York"
    max_event_age_minutes: int = Field(default=720, ge=1)
    quarantine_collection: Name = "quarantine"
    state_collection: Name = "phase_transitions"
    # log rows and hand-offs the transitions wrote, until auto-retry or the monitor delivers them
    outbox_collection: Name = "phase_execution_log_outbox"
    # phasectl's record of every mutating operator command (who, when, what)
    audit_collection: Name = "operator_audit"
    dataset: Name = "nba_orchestration"
    phase_execution_log_table: Name = "phase_execution_log"

    @field_validator("timezone")
    @classmethod
    def _known_timezone(cls, value: str) -> str:
        try:
            ZoneInfo(value)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise ValueError(f"unknown IANA timezone {value!r}") from exc
        return value


class Phase(DefinitionModel):
    number: PhaseNumber
    name: Name
    completion_topic: TopicName
    trigger_topic: TopicName | None = None
    retry_topic: TopicName | None = None


class Processor(DefinitionModel):
    name: Name
    phase: PhaseNumber
    aliases: tuple[str, ...] = ()
    # the BigQuery table the real processor writes (its completion's `output_table`); matched
    # when the processor_name is not (lesson L08)
    output_table: Name | None = None
    no_data: CountsPolicy = CountsPolicy.DONE
    skipped: CountsPolicy = CountsPolicy.DONE
    retry_topic: TopicName | None = None
    retry_url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None


_NAME_SUFFIXES = ("processor", "async")


def processor_key(label: str) -> str:
    """What processor names and aliases are compared by. Case, ``-``/``_``, a trailing
    ``Processor``/``Async`` (either order) and an ``Async`` prefix (the replaced 3→4 orchestrator
    strips it: phase3_to_phase4/main.py:1171) do not matter."""
    key = label.strip().lower().replace("-", "").replace("_", "")
    if key.startswith("async") and len(key) > len("async"):
        key = key[len("async") :]
    stripped = True
    while stripped:
        stripped = False
        for suffix in _NAME_SUFFIXES:
            if key.endswith(suffix) and key != suffix:
                key, stripped = key[: -len(suffix)], True
    return key


class Mode(DefinitionModel):
    name: Name
    when: ModeWhen
    expected: tuple[Name, ...] = Field(min_length=1)
    critical: tuple[Name, ...] = ()
    optional: tuple[Name, ...] = ()


class DeadlineTier(DefinitionModel):
    after_minutes: int = Field(ge=1)
    min_completed: int = Field(ge=1)


Slug = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", min_length=1, max_length=100)]


class CompletionThreshold(DefinitionModel):
    min_completion_pct: float = Field(ge=0, le=100)
    min_predictions: int = Field(ge=0)
    target_date_key: Literal["target_date", "game_date"] = "target_date"
    export_types: tuple[Slug, ...] = Field(min_length=1)


class HttpDelivery(DefinitionModel):
    """An authenticated POST to the consumer, once per ``trigger_id``, after the trigger is published."""

    url_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]  # the consumer's base URL (deploy sets it)
    url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None  # used when the env var is unset
    path: Annotated[str, Field(pattern=r"^/\S*$")] = "/"
    auth: Literal["id_token", "none"] = "id_token"
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    delivered_statuses: tuple[int, ...] = (200, 201, 202)


class Delivery(DefinitionModel):
    """How a trigger reaches its consumers, besides the target phase's trigger topic."""

    per_source_table: bool = False  # one message per completed processor's output_table
    http: HttpDelivery | None = None


class Transition(DefinitionModel):
    name: Name
    source_phase: PhaseNumber
    target_phase: PhaseNumber
    rule: Rule
    expected: tuple[Name, ...] = ()
    critical: tuple[Name, ...] = ()
    optional: tuple[Name, ...] = ()
    majority_threshold: float = Field(default=0.6, gt=0, le=1)
    modes: tuple[Mode, ...] = ()
    deadline_tiers: tuple[DeadlineTier, ...] = ()
    completion: CompletionThreshold | None = None
    gates: tuple[Name, ...] = ()
    stuck_after_minutes: int = Field(default=60, ge=1)
    delivery: Delivery = Field(default_factory=Delivery)

    @model_validator(mode="after")
    def _consistent(self) -> Self:
        if self.target_phase != self.source_phase + 1:
            raise ValueError(f"target_phase must be source_phase + 1 (got {self.source_phase} → {self.target_phase})")
        if not self.modes and not self.expected:
            raise ValueError("a transition needs `expected` processors or `modes`")
        if self.modes and self.expected:
            raise ValueError("give `expected` either per mode or for the transition, not both")
        mode_names = [m.name for m in self.modes]
        if len(set(mode_names)) != len(mode_names):
            raise ValueError(f"duplicate mode names: {mode_names}")
        whens = [m.when for m in self.modes]
        if len(set(whens)) != len(whens):
            raise ValueError("two modes cover the same `when`")
        if self.modes and set(whens) != set(ModeWhen):
            missing = sorted(str(w) for w in set(ModeWhen) - set(whens))
            raise ValueError(f"modes must cover every date relation; missing: {missing}")
        if self.rule is Rule.DEADLINE_TIERS and not self.deadline_tiers:
            raise ValueError("rule 'deadline_tiers' needs at least one [[transitions.deadline_tiers]]")
        if self.rule is not Rule.DEADLINE_TIERS and self.deadline_tiers:
            raise ValueError("deadline_tiers given but rule is not 'deadline_tiers'")
        tiers = [t.after_minutes for t in self.deadline_tiers]
        if tiers != sorted(tiers) or len(set(tiers)) != len(tiers):
            raise ValueError("deadline_tiers must have strictly increasing after_minutes")
        if self.rule is Rule.COMPLETION_THRESHOLD and self.completion is None:
            raise ValueError("rule 'completion_threshold' needs [transitions.completion]")
        return self

    def processor_sets(self) -> list[tuple[str, tuple[str, ...], tuple[str, ...], tuple[str, ...]]]:
        """(label, expected, critical, optional) for the transition and each mode."""
        if self.modes:
            return [(f"modes.{m.name}", m.expected, m.critical, m.optional) for m in self.modes]
        return [("", self.expected, self.critical, self.optional)]

    @property
    def has_gates(self) -> bool:
        """Whether this transition lists gates: its function then loads the gate backend (BigQuery
        queries, service probes) and its bundle ships it (``deploy.bundle.definition_modules``)."""
        return bool(self.gates)

    def mode_for(self, when: ModeWhen) -> Mode | None:
        for mode in self.modes:
            if mode.when is when:
                return mode
        return None


class RetryPolicy(DefinitionModel):
    max_retries: int = Field(default=3, ge=0, le=20)
    base_delay_minutes: float = Field(default=15, gt=0)
    multiplier: float = Field(default=2.0, ge=1)
    jitter_fraction: float = Field(default=0.1, ge=0, lt=1)
    stale_retrying_minutes: int = Field(default=120, ge=1)
    client_errors_permanent: bool = True
    queue_table: Name = "failed_processor_queue"
    conflict_log_table: Name = "streaming_conflict_log"
    dml_max_attempts: int = Field(default=4, ge=1, le=10)
    dml_base_delay_seconds: float = Field(default=2.0, ge=0)
    dispatch_auth: Literal["id_token", "none"] = "id_token"
    fallbacks: dict[Name, Name] = Field(default_factory=dict)


class MonitorSettings(DefinitionModel):
    lookback_days: int = Field(default=3, ge=1)
    grid_days: int = Field(default=120, ge=1)
    handoff_timeout_minutes: int = Field(default=60, ge=1)
    alert_dedup_minutes: int = Field(default=360, ge=1)
    heartbeat_collection: Name = "monitor_heartbeats"
    alert_collection: Name = "monitor_alerts"
    retry_heartbeat_stale_minutes: int = Field(default=45, ge=1)
    overdue_pending_minutes: int = Field(default=30, ge=1)
    max_alerts_per_run: int = Field(default=20, ge=1)
    slack_webhook_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")] = "MONITOR_SLACK_WEBHOOK_URL"


class Retention(DefinitionModel):
    """How long each Firestore collection the package writes keeps a document (lesson L25).

    Every document carries ``expiry_field`` (a timestamp: written at + the retention); the
    deploy plan creates a Firestore TTL policy on that field for each collection group, so
    Firestore deletes expired documents itself. Heartbeats are one overwritten document each.
    """

    expiry_field: Name = "expires_at"
    state_days: int = Field(default=400, ge=1)  # date documents and their completions (the grid reads 120)
    outbox_days: int = Field(default=30, ge=1)  # log rows and hand-offs not yet delivered
    quarantine_days: int = Field(default=30, ge=1)
    alerts_days: int = Field(default=30, ge=1)  # the monitor's dedup records
    audit_days: int = Field(default=400, ge=1)  # operator_audit
    inbox_days: int = Field(default=30, ge=1)  # TriggerInbox entries
    quarantine_max_payload_bytes: int = Field(default=16_384, ge=256, le=900_000)


class Schedule(DefinitionModel):
    """A Cloud Scheduler job publishing ``payload`` (a contract model's defaults) to ``topic``."""

    cron: Annotated[str, Field(pattern=r"^\S+( \S+){4}$")]
    topic: TopicName
    timezone: str = "America/New_York"
    job: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")] | None = None  # Cloud Scheduler job id
    function: Name | None = None  # the function under functions/ this topic triggers
    payload: Name | None = None  # contract model in shared.contracts.messages (its defaults, as JSON)
    body: dict[str, Any] = Field(default_factory=dict)  # fields set over the payload's defaults


FunctionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class FunctionDeploy(DefinitionModel):
    """Runtime settings of one 2nd-gen Cloud Function (defaults, or one function's overrides)."""

    memory: Annotated[str, Field(pattern=r"^[0-9]+(Mi|Gi)$")] | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=540)
    min_instances: int | None = Field(default=None, ge=0, le=100)
    max_instances: int | None = Field(default=None, ge=1, le=1000)


class DeploySettings(DefinitionModel):
    """Where and how the functions run on Google Cloud (read by ``deploy`` and ``phasectl deploy``)."""

    region: Annotated[str, Field(pattern=r"^[a-z]+-[a-z]+[0-9]$")] = "us-west2"
    runtime: Annotated[str, Field(pattern=r"^python3[0-9]{2}$")] = "python312"
    entry_point: Name = "handle"
    dataset_location: str = "US"
    firestore_location: str = "nam5"
    max_delivery_attempts: int = Field(default=10, ge=5, le=100)  # then the dead-letter topic
    dead_letter_suffix: Annotated[str, Field(pattern=r"^-[a-z0-9-]{1,20}$")] = "-dlq"
    dead_letter_retention: Annotated[str, Field(pattern=r"^[0-9]+[dhms]$")] = "7d"
    apis: tuple[str, ...] = ()
    defaults: FunctionDeploy = Field(
        default_factory=lambda: FunctionDeploy(memory="512Mi", timeout_seconds=120, min_instances=0, max_instances=10)
    )
    functions: dict[FunctionName, FunctionDeploy] = Field(default_factory=dict)

    def settings_for(self, function: str) -> FunctionDeploy:
        """The defaults with ``function``'s overrides applied."""
        override = self.functions.get(function)
        if override is None:
            return self.defaults
        merged = {**self.defaults.model_dump(), **override.model_dump(exclude_none=True)}
        return FunctionDeploy(**merged)


def format_loc(loc: tuple[int | str, ...], data: Any = None) -> tuple[str, str]:
    """The path (``jobs[3].cron``) and the names of the list items it passes (``same-day-phase4``)."""
    out, names = "", []
    node = data
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
            node = node[part] if isinstance(node, list) and 0 <= part < len(node) else None
            name = node.get("name") if isinstance(node, dict) else None
            if isinstance(name, str):
                names.append(name)
        else:
            out += ("." if out else "") + part
            node = node.get(part) if isinstance(node, dict) else None
    return out, " > ".join(names)
