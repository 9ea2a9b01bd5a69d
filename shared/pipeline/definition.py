"""The pipeline definition: pydantic models over ``pipeline.toml`` and its loader.

This is the single source of truth (lesson L08). Everything that needs a phase, a
processor, a topic, a threshold or a schedule asks a ``PipelineDefinition``.
"""

from __future__ import annotations

import os
import threading
import tomllib
from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any, Literal, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from shared.errors import DefinitionError

DEFINITION_ENV = "PIPELINE_DEFINITION"
DEFAULT_DEFINITION_PATH = Path(__file__).with_name("pipeline.toml")
BUNDLE_DATA = ("pipeline.toml",)  # data files this module loads; read by deploy.bundle

Name = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_]*$", min_length=1, max_length=100)]
TopicName = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9._~%+-]{2,254}$")]
TableRef = Annotated[str, Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*$")]
PhaseNumber = Annotated[int, Field(ge=1, le=9)]


class _Model(BaseModel):
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


class PipelineSettings(_Model):
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


class Phase(_Model):
    number: PhaseNumber
    name: Name
    completion_topic: TopicName
    trigger_topic: TopicName | None = None
    retry_topic: TopicName | None = None


class Processor(_Model):
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


class Mode(_Model):
    name: Name
    when: ModeWhen
    expected: tuple[Name, ...] = Field(min_length=1)
    critical: tuple[Name, ...] = ()
    optional: tuple[Name, ...] = ()


class DeadlineTier(_Model):
    after_minutes: int = Field(ge=1)
    min_completed: int = Field(ge=1)


Slug = Annotated[str, Field(pattern=r"^[A-Za-z][A-Za-z0-9_-]*$", min_length=1, max_length=100)]


class CompletionThreshold(_Model):
    min_completion_pct: float = Field(ge=0, le=100)
    min_predictions: int = Field(ge=0)
    target_date_key: Literal["target_date", "game_date"] = "target_date"
    export_types: tuple[Slug, ...] = Field(min_length=1)


class HttpDelivery(_Model):
    """An authenticated POST to the consumer, once per ``trigger_id``, after the trigger is published."""

    url_env: Annotated[str, Field(pattern=r"^[A-Z][A-Z0-9_]*$")]  # the consumer's base URL (deploy sets it)
    url: Annotated[str, Field(pattern=r"^https?://\S+$")] | None = None  # used when the env var is unset
    path: Annotated[str, Field(pattern=r"^/\S*$")] = "/"
    auth: Literal["id_token", "none"] = "id_token"
    timeout_seconds: float = Field(default=30, gt=0, le=300)
    delivered_statuses: tuple[int, ...] = (200, 201, 202)


class Delivery(_Model):
    """How a trigger reaches its consumers, besides the target phase's trigger topic."""

    per_source_table: bool = False  # one message per completed processor's output_table
    http: HttpDelivery | None = None


class Transition(_Model):
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

    def mode_for(self, when: ModeWhen) -> Mode | None:
        for mode in self.modes:
            if mode.when is when:
                return mode
        return None


GateValue = int | float | str | bool


class GateTable(_Model):
    """A table a gate reads, with the column that holds the game date (the partition filter)."""

    table: TableRef
    date_column: Name = "game_date"


class Predicate(_Model):
    """One declared condition of a ``ratio`` gate: ``<column> <op> @value``, or over
    ``COALESCE(<coalesce...>, @default)``. Columns are identifiers from the definition; values
    are query parameters (never SQL text)."""

    column: Name | None = None
    coalesce: tuple[Name, ...] = ()
    default: GateValue | None = None
    op: Literal["eq", "ne", "gt", "ge", "lt", "le", "is_null", "not_null", "is_true", "is_false"]
    value: GateValue | None = None

    @model_validator(mode="after")
    def _shape(self) -> Self:
        if (self.column is None) == (not self.coalesce):
            raise ValueError("a predicate needs exactly one of `column` or `coalesce`")
        if self.default is not None and not self.coalesce:
            raise ValueError("`default` is the last COALESCE argument: give it with `coalesce` only")
        unary = self.op in ("is_null", "not_null", "is_true", "is_false")
        if unary and self.value is not None:
            raise ValueError(f"op {self.op!r} takes no `value`")
        if not unary and self.value is None:
            raise ValueError(f"op {self.op!r} needs a `value`")
        return self


class _GateBase(_Model):
    """What every gate kind has: thresholds in percent, advisory, the modes it applies to.

    A value below ``block_below`` (above ``block_above``) blocks; below ``alert_below`` (above
    ``alert_above``) triggers with a warning. An advisory gate never blocks: a block becomes an
    alert and an error becomes an alert with the error text (lesson L17).
    """

    advisory: bool = False
    modes: tuple[Name, ...] = ()  # empty: every mode (and transitions without modes)
    block_below: float | None = Field(default=None, ge=0, le=100)
    alert_below: float | None = Field(default=None, ge=0, le=100)
    block_above: float | None = Field(default=None, ge=0, le=100)
    alert_above: float | None = Field(default=None, ge=0, le=100)
    description: str = ""

    def applies_to(self, mode: str | None) -> bool:
        return not self.modes or (mode is not None and mode in self.modes)

    def thresholds(self) -> dict[str, float]:
        names = ("block_below", "alert_below", "block_above", "alert_above")
        return {n: v for n in names if (v := getattr(self, n)) is not None}

    def read_tables(self) -> tuple[GateTable, ...]:
        """The tables this gate's query reads (deploy grants read rights on them)."""
        return ()

    @model_validator(mode="after")
    def _threshold_order(self) -> Self:
        if self.block_below is not None and self.alert_below is not None and self.alert_below < self.block_below:
            raise ValueError("alert_below must be ≥ block_below (the alert line sits above the block line)")
        if self.block_above is not None and self.alert_above is not None and self.alert_above > self.block_above:
            raise ValueError("alert_above must be ≤ block_above (the alert line sits below the block line)")
        return self


class _LowerIsWorse(_GateBase):
    @model_validator(mode="after")
    def _direction(self) -> Self:
        if self.block_above is not None or self.alert_above is not None:
            raise ValueError("this gate kind takes block_below/alert_below (higher is better)")
        if self.block_below is None and self.alert_below is None:
            raise ValueError("give block_below and/or alert_below")
        return self


class RowsPresentGate(_LowerIsWorse):
    """Each listed table has rows for the date (R-008/R-006). The value is the share of tables
    with rows; a table in ``required`` without rows blocks whatever the share."""

    kind: Literal["rows_present"]
    tables: tuple[GateTable, ...] = Field(min_length=1)
    required: tuple[TableRef, ...] = ()

    def read_tables(self) -> tuple[GateTable, ...]:
        return self.tables

    @model_validator(mode="after")
    def _required_listed(self) -> Self:
        listed = {t.table for t in self.tables}
        unknown = [r for r in self.required if r not in listed]
        if unknown:
            raise ValueError(f"required {unknown} are not among the gate's tables")
        return self


class GameSource(_Model):
    """A table that holds game rows, keyed by a game id in any known format (normalised, L15)."""

    name: Name
    table: TableRef
    game_id_column: Name = "game_id"
    date_column: Name = "game_date"


class GameCoverageGate(_LowerIsWorse):
    """Distinct games in a table vs the schedule's Final games (ids normalised, L15).

    Without ``sources`` it reads the ``[games]`` fallback chain (a game is covered when any
    source has it, L13), and the games still missing are handed to auto-retry.
    """

    kind: Literal["game_coverage_pct"]
    sources: tuple[GameSource, ...] = ()

    @property
    def uses_boxscore_chain(self) -> bool:
        return not self.sources

    def read_tables(self) -> tuple[GateTable, ...]:
        return tuple(GateTable(table=s.table, date_column=s.date_column) for s in self.sources)


class RatioGate(_LowerIsWorse):
    """The share of rows (or of distinct ``key`` values) meeting every declared predicate.

    The denominator is the same table without the predicates, or ``denominator`` (for instance
    the expected roster of another table).
    """

    kind: Literal["ratio"]
    table: GateTable
    key: Name | None = None
    where: tuple[Predicate, ...] = Field(min_length=1)
    denominator: GateTable | None = None
    denominator_key: Name | None = None

    def read_tables(self) -> tuple[GateTable, ...]:
        return (self.table, *((self.denominator,) if self.denominator else ()))

    @model_validator(mode="after")
    def _denominator_key(self) -> Self:
        if self.denominator_key is not None and self.denominator is None:
            raise ValueError("denominator_key needs a `denominator` table")
        if self.denominator_key is not None and self.key is None:
            raise ValueError("denominator_key needs `key` (distinct keys over distinct keys, not over rows)")
        return self


class NullRateTable(GateTable):
    columns: tuple[Name, ...] = Field(min_length=1)


class NullRateGate(_GateBase):
    """The largest NULL share among the listed columns (lower is better: ``block_above``)."""

    kind: Literal["null_rate"]
    tables: tuple[NullRateTable, ...] = Field(min_length=1)

    def read_tables(self) -> tuple[GateTable, ...]:
        return self.tables

    @model_validator(mode="after")
    def _direction(self) -> Self:
        if self.block_below is not None or self.alert_below is not None:
            raise ValueError("gate kind 'null_rate' takes block_above/alert_above (a NULL share: lower is better)")
        if self.block_above is None and self.alert_above is None:
            raise ValueError("give block_above and/or alert_above")
        return self


class ServiceHealthGate(_GateBase):
    """An ID-token GET to ``$url_env`` + ``path``; healthy on 2xx with a JSON ``status`` in
    ``healthy_statuses``. Advisory by default (the replaced system triggers anyway)."""

    kind: Literal["service_health"]
    advisory: bool = True
    url_env: str = Field(pattern=r"^[A-Z][A-Z0-9_]*$")
    path: str = Field(default="/ready", pattern=r"^/[A-Za-z0-9/_.-]*$")
    auth: Literal["id_token", "none"] = "id_token"
    timeout_seconds: float = Field(default=5, gt=0, le=60)
    healthy_statuses: tuple[str, ...] = ("ready", "degraded")


Gate = Annotated[
    RowsPresentGate | GameCoverageGate | RatioGate | NullRateGate | ServiceHealthGate, Field(discriminator="kind")
]
QUERY_GATE_KINDS = ("rows_present", "game_coverage_pct", "ratio", "null_rate")


class BoxscoreSource(_Model):
    name: Name
    processor: Name
    table: TableRef
    game_id_column: Name = "game_id"
    date_column: Name = "game_date"


class GamesSources(_Model):
    """Where games and their boxscores live, and every column the coverage gate reads.

    Gate SQL names only these columns (and the package's own ``unavailable_table``). The
    defaults are the replaced system's real schemas (``schemas/bigquery/raw/`` at
    najicham/nba-stats-scraper@18f6ecfe; checked in under ``deploy/bigquery/upstream/``).
    """

    schedule_table: TableRef
    schedule_date_column: Name = "game_date"
    schedule_game_id_column: Name = "game_id"
    schedule_status_column: Name = "game_status"
    final_status: str = "3"
    schedule_away_team_column: Name = "away_team_tricode"
    schedule_home_team_column: Name = "home_team_tricode"
    schedule_updated_column: Name | None = "processed_at"
    schedule_status_text_column: Name | None = None
    excluded_status_texts: tuple[str, ...] = ()
    unavailable_table: TableRef
    boxscore_sources: tuple[BoxscoreSource, ...] = Field(min_length=1)

    @field_validator("final_status", mode="before")
    @classmethod
    def _status_as_text(cls, value: object) -> object:
        return str(value) if isinstance(value, int) and not isinstance(value, bool) else value

    @model_validator(mode="after")
    def _status_text_needs_column(self) -> Self:
        if self.excluded_status_texts and self.schedule_status_text_column is None:
            raise ValueError("excluded_status_texts needs schedule_status_text_column")
        return self

    def is_final(self, status: str | None) -> bool:
        """Whether a schedule status (as text) means Final."""
        return (status or "").strip().lower() == self.final_status.strip().lower()

    def excluded_by_text(self, status_text: str | None) -> str | None:
        """The configured prefix a schedule status text starts with (a postponed game), if any."""
        text = (status_text or "").strip().lower()
        return next((p for p in self.excluded_status_texts if text.startswith(p.lower())), None)


class RetryPolicy(_Model):
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


class MonitorSettings(_Model):
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


class Retention(_Model):
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


class Schedule(_Model):
    """A Cloud Scheduler job publishing ``payload`` (a contract model's defaults) to ``topic``."""

    cron: Annotated[str, Field(pattern=r"^\S+( \S+){4}$")]
    topic: TopicName
    timezone: str = "America/New_York"
    job: Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")] | None = None  # Cloud Scheduler job id
    function: Name | None = None  # the function under functions/ this topic triggers
    payload: Name | None = None  # contract model in shared.contracts.messages (its defaults, as JSON)
    body: dict[str, Any] = Field(default_factory=dict)  # fields set over the payload's defaults


DateRule = Literal["yesterday", "today", "game_night"]
Cron = Annotated[str, Field(pattern=r"^\S+( \S+){4}$")]
JobId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]


class SensorCondition(_Model):
    """One data condition of a sensor, all of a sensor's in one parameterised query.

    ``all_final``: every scheduled game of the date is Final in the ``[games]`` schedule (games
    marked unavailable or postponed are not waited for); ``rows_present``: ``table`` has rows for
    the date (e.g. predictions exist); ``not_done``: ``table`` has none yet (e.g. not graded). A
    fallback slot checks only the conditions with ``fallback = true``.
    """

    kind: Literal["all_final", "rows_present", "not_done"]
    table: GateTable | None = None
    label: str = ""  # how a reason names the rows ("predictions", "graded rows")
    fallback: bool = True

    @model_validator(mode="after")
    def _table(self) -> Self:
        if (self.kind == "all_final") != (self.table is None):
            raise ValueError("`all_final` reads the [games] schedule (no `table`); the other kinds need a `table`")
        return self


class TriggerSlot(_Model):
    """One Cloud Scheduler job of a sensor or scheduled trigger: when it fires and what it carries."""

    name: Name
    cron: Cron
    job: JobId
    fallback: bool = False  # a sensor's fallback run: triggers unless the date is triggered already
    date: DateRule | None = None  # the game date this slot evaluates (default: the trigger's)
    export_types: tuple[str, ...] = ()
    update_latest: bool | None = None


class TimedTrigger(_Model):
    """A trigger evaluated on a schedule instead of on completion messages.

    It goes through the same claim → conditions → publish → latch protocol as a transition,
    with a deterministic ``trigger_id``: a sensor triggers once per date whichever slot fires
    first (``once_per = "date"``), a scheduled trigger once per date and slot.
    """

    name: Name
    topic: TopicName  # what it publishes to
    tick_topic: TopicName  # what its scheduler jobs publish to (its function's trigger)
    function: Name
    timezone: str = "America/New_York"
    date: DateRule = "yesterday"
    trigger_source: str = "scheduler"
    run_aggregation: bool | None = None
    conditions: tuple[SensorCondition, ...] = ()
    slots: tuple[TriggerSlot, ...] = Field(min_length=1)
    overdue_after: Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")] | None = None
    overdue_finding: Name = "overdue"  # the monitor finding's kind when a ready date is not triggered in time
    description: str = ""

    once_per: Literal["date", "slot"] = "date"

    def slot(self, name: str) -> TriggerSlot:
        for slot in self.slots:
            if slot.name == name:
                return slot
        raise KeyError(f"{self.name} has no slot {name!r} (known: {[s.name for s in self.slots]})")

    @model_validator(mode="after")
    def _slots(self) -> Self:
        names = [s.name for s in self.slots]
        if len(set(names)) != len(names):
            raise ValueError(f"duplicate slot names: {names}")
        return self


class Sensor(TimedTrigger):
    once_per: Literal["date", "slot"] = "date"


class ScheduledTrigger(TimedTrigger):
    once_per: Literal["date", "slot"] = "slot"

    @model_validator(mode="after")
    def _no_conditions(self) -> Self:
        if self.conditions:
            raise ValueError("a scheduled trigger fires at its times; give conditions to a [[sensors]] entry")
        return self


FunctionName = Annotated[str, Field(pattern=r"^[a-z][a-z0-9_]{0,62}$")]


class FunctionDeploy(_Model):
    """Runtime settings of one 2nd-gen Cloud Function (defaults, or one function's overrides)."""

    memory: Annotated[str, Field(pattern=r"^[0-9]+(Mi|Gi)$")] | None = None
    timeout_seconds: int | None = Field(default=None, ge=1, le=540)
    min_instances: int | None = Field(default=None, ge=0, le=100)
    max_instances: int | None = Field(default=None, ge=1, le=1000)


class DeploySettings(_Model):
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


class PipelineDefinition(_Model):
    """The whole pipeline, validated across sections."""

    pipeline: PipelineSettings
    phases: tuple[Phase, ...] = Field(min_length=2)
    processors: tuple[Processor, ...] = Field(min_length=1)
    transitions: tuple[Transition, ...] = Field(min_length=1)
    gates: dict[Name, Gate] = Field(default_factory=dict)
    games: GamesSources
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    monitor: MonitorSettings = Field(default_factory=MonitorSettings)
    retention: Retention = Field(default_factory=Retention)
    schedules: dict[Name, Schedule] = Field(default_factory=dict)
    sensors: tuple[Sensor, ...] = ()
    scheduled_triggers: tuple[ScheduledTrigger, ...] = ()
    deploy: DeploySettings = Field(default_factory=DeploySettings)

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        phases = {p.number: p for p in self.phases}
        if len(phases) != len(self.phases):
            raise ValueError("phases: duplicate phase numbers")
        topics = [p.completion_topic for p in self.phases] + [p.trigger_topic for p in self.phases if p.trigger_topic]
        topics += [s.topic for s in self.schedules.values()]
        # a timed trigger's tick topic is its own; several of one function share it
        topics += [topic for _, topic in sorted({(t.function, t.tick_topic) for t in self.timed_triggers()})]
        dupes = sorted({t for t in topics if topics.count(t) > 1})
        if dupes:
            raise ValueError(f"topics used twice: {dupes}")

        seen: dict[str, str] = {}
        for proc in self.processors:
            if proc.phase not in phases:
                raise ValueError(f"processors: {proc.name!r} names unknown phase {proc.phase}")
            for label in (proc.name, *proc.aliases, *((proc.output_table,) if proc.output_table else ())):
                key = _alias_key(label)
                if key in seen and seen[key] != proc.name:
                    raise ValueError(
                        f"processors: name or alias {label!r} of {proc.name!r} already names {seen[key]!r}"
                    )
                seen[key] = proc.name

        names = [t.name for t in self.transitions]
        if len(set(names)) != len(names):
            raise ValueError(f"transitions: duplicate names {names}")
        for i, transition in enumerate(self.transitions):
            where = f"transitions[{i}] ({transition.name})"
            for number in (transition.source_phase, transition.target_phase):
                if number not in phases:
                    raise ValueError(f"{where}: unknown phase {number}")
            if phases[transition.target_phase].trigger_topic is None:
                raise ValueError(f"{where}: target phase {transition.target_phase} has no trigger_topic")
            source_procs = {p.name for p in self.processors if p.phase == transition.source_phase}
            for label, expected, critical, optional in transition.processor_sets():
                for field, group in (("expected", expected), ("critical", critical), ("optional", optional)):
                    unknown = [n for n in group if n not in source_procs]
                    if unknown:
                        raise ValueError(
                            f"{where}.{label + '.' if label else ''}{field}: {unknown} are not "
                            f"processors of phase {transition.source_phase} (known: {sorted(source_procs)})"
                        )
                overlap = set(critical) & set(optional)
                if overlap:
                    raise ValueError(f"{where}: {sorted(overlap)} are both critical and optional")
            for tier in transition.deadline_tiers:
                if tier.min_completed > len(transition.expected or ()) and transition.expected:
                    raise ValueError(
                        f"{where}: deadline tier after {tier.after_minutes} min asks for "
                        f"{tier.min_completed} processors but only {len(transition.expected)} are expected"
                    )
            mode_names = {m.name for m in transition.modes}
            for gate in transition.gates:
                if gate not in self.gates:
                    raise ValueError(f"{where}.gates: unknown gate {gate!r} (known: {sorted(self.gates)})")
                unknown_modes = sorted(set(self.gates[gate].modes) - mode_names)
                if unknown_modes:
                    raise ValueError(
                        f"gates.{gate}.modes: {unknown_modes} are not modes of {transition.name} "
                        f"(known: {sorted(mode_names) or 'none'})"
                    )
        procs = {p.name for p in self.processors}
        for source in self.games.boxscore_sources:
            if source.processor not in procs:
                raise ValueError(f"games.boxscore_sources ({source.name}): unknown processor {source.processor!r}")
        for failed, fallback in self.retry.fallbacks.items():
            for n in (failed, fallback):
                if n not in procs:
                    raise ValueError(f"retry.fallbacks: unknown processor {n!r}")
        timed = self.timed_triggers()
        names = [t.name for t in timed] + [t.name for t in self.transitions]
        if len(set(names)) != len(names):
            raise ValueError(f"sensors/scheduled_triggers: names must differ from each other and transitions: {names}")
        for t in timed:
            ticks = {o.tick_topic for o in timed if o.function == t.function}
            if len(ticks) != 1:
                raise ValueError(f"{t.name}: every timed trigger of function {t.function!r} needs the same tick_topic")
            try:
                ZoneInfo(t.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{t.name}: unknown timezone {t.timezone!r}") from exc
        entries = self.schedule_entries()
        jobs = [s.job for s in entries.values() if s.job]
        if len(set(jobs)) != len(jobs):
            raise ValueError(f"schedules: duplicate job names {sorted(j for j in jobs if jobs.count(j) > 1)}")
        deployed = {t.name for t in self.transitions} | {s.function for s in entries.values() if s.function}
        unknown_fn = sorted(set(self.deploy.functions) - deployed)
        if unknown_fn:
            raise ValueError(f"deploy.functions: {unknown_fn} are neither transitions nor scheduled functions")
        return self

    # ---- queries -------------------------------------------------------------------
    def phase(self, number: int) -> Phase:
        for p in self.phases:
            if p.number == number:
                return p
        raise KeyError(f"no phase {number} in the pipeline definition")

    def transition(self, name: str) -> Transition:
        for t in self.transitions:
            if t.name == name:
                return t
        raise KeyError(f"no transition {name!r} (known: {[t.name for t in self.transitions]})")

    def transition_from(self, source_phase: int) -> Transition:
        for t in self.transitions:
            if t.source_phase == source_phase:
                return t
        raise KeyError(f"no transition leaves phase {source_phase}")

    def transition_for_topic(self, topic: str) -> Transition:
        for t in self.transitions:
            if self.phase(t.source_phase).completion_topic == topic:
                return t
        raise KeyError(f"no transition listens on topic {topic!r}")

    def source_topic(self, transition: Transition) -> str:
        return self.phase(transition.source_phase).completion_topic

    def target_topic(self, transition: Transition) -> str:
        topic = self.phase(transition.target_phase).trigger_topic
        assert topic is not None  # checked at validation
        return topic

    def gate_tables(self) -> tuple[str, ...]:
        """Every table a gate names (besides the ``[games]`` schedule and chain), sorted."""
        return tuple(sorted({t.table for gate in self.gates.values() for t in gate.read_tables()}))

    def condition_tables(self) -> tuple[str, ...]:
        """Every table a sensor condition names (besides the ``[games]`` schedule), sorted."""
        refs = {c.table.table for t in self.timed_triggers() for c in t.conditions if c.table is not None}
        return tuple(sorted(refs))

    def function_names(self) -> tuple[str, ...]:
        """Every deployable function: one per transition, then one per scheduled function."""
        names = [t.name for t in self.transitions]
        for entry in self.schedule_entries().values():
            if entry.function and entry.function not in names:
                names.append(entry.function)
        return tuple(names)

    def timed_triggers(self) -> tuple[TimedTrigger, ...]:
        """Sensors, then scheduled triggers."""
        return (*self.sensors, *self.scheduled_triggers)

    def timed_trigger(self, name: str) -> TimedTrigger:
        for t in self.timed_triggers():
            if t.name == name:
                return t
        raise KeyError(f"no sensor or scheduled trigger {name!r} (known: {[t.name for t in self.timed_triggers()]})")

    def outbox_nudge_topic(self) -> str | None:
        """The topic of the ``RetryTick`` schedule (auto-retry): transitions nudge it to deliver the
        Firestore outbox (``RetryTick.outbox_only``); ``None`` when no schedule carries retry ticks."""
        return next((s.topic for s in self.schedules.values() if s.payload == "RetryTick"), None)

    def schedule_entries(self) -> dict[str, Schedule]:
        """``[schedules]`` plus one Cloud Scheduler job per timed-trigger slot (body: ``TriggerTick``)."""
        out = dict(self.schedules)
        for t in self.timed_triggers():
            for slot in t.slots:
                out[f"{t.name}__{slot.name}"] = Schedule(
                    cron=slot.cron,
                    topic=t.tick_topic,
                    timezone=t.timezone,
                    job=slot.job,
                    function=t.function,
                    payload="TriggerTick",
                    body={"trigger": t.name, "slot": slot.name},
                )
        return out

    def processors_of(self, phase: int) -> tuple[Processor, ...]:
        return tuple(p for p in self.processors if p.phase == phase)

    def normalise_processor(self, phase: int, raw_name: str, output_table: str | None = None) -> str | None:
        """The canonical name of a completion's processor in ``phase``, or ``None`` when unknown (L08).

        The replaced system's rule, in order: the name itself (or an alias), then the
        completion's ``output_table`` without its dataset (a processor's declared ``output_table``,
        name or alias),
        then the class name from CamelCase to snake_case without a trailing ``Processor`` or
        ``Async``. Matching ignores case and ``-``/``_``, so the last step needs no table:
        ``PlayerGameSummaryProcessor`` and ``PlayerGameSummaryAsync`` both name
        ``player_game_summary``.
        """
        index = self._alias_index()
        table = output_table.rsplit(".", 1)[-1] if output_table else None  # "nba_raw.x" → "x"
        for label in (raw_name, table):
            if label:
                found = index.get((phase, _alias_key(label)))
                if found is not None:
                    return found
        return None

    def retry_route(self, processor: str) -> tuple[str, str] | None:
        """Where auto-retry dispatches ``processor``: ("url", url) | ("topic", topic) | None (unroutable)."""
        try:
            proc = self.processor(processor)
        except KeyError:
            return None
        if proc.retry_url:
            return ("url", proc.retry_url)
        topic = proc.retry_topic or self.phase(proc.phase).retry_topic
        return ("topic", topic) if topic else None

    def processor(self, name: str) -> Processor:
        for p in self.processors:
            if p.name == name:
                return p
        raise KeyError(f"no processor {name!r}")

    def _alias_index(self) -> dict[tuple[int, str], str]:
        cached: dict[tuple[int, str], str] | None = self.__dict__.get("_alias_cache")
        if cached is None:
            cached = {}
            for proc in self.processors:
                for label in (proc.name, *proc.aliases, *((proc.output_table,) if proc.output_table else ())):
                    cached[(proc.phase, _alias_key(label))] = proc.name
            object.__setattr__(self, "_alias_cache", cached)  # frozen model: cache beside the fields
        return cached


_NAME_SUFFIXES = ("processor", "async")


def _alias_key(label: str) -> str:
    """Case, ``-``/``_``, a trailing ``Processor``/``Async`` (either order) and an ``Async`` prefix
    (the replaced 3→4 orchestrator strips it: phase3_to_phase4/main.py:1171) do not matter."""
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


def _format_loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += ("." if out else "") + part
    return out


def parse_definition(data: dict[str, Any], source: str = "<memory>") -> PipelineDefinition:
    """Validate a parsed TOML document; errors name the source, field path and reason."""
    try:
        return PipelineDefinition.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = _format_loc(tuple(err["loc"]))
            msg = err["msg"].removeprefix("Value error, ")
            problems.append(f"{source}: {loc}: {msg}" if loc else f"{source}: {msg}")
        raise DefinitionError(
            "invalid pipeline definition:\n  " + "\n  ".join(problems), file=source, problems=problems
        ) from None


def read_definition(path: str | os.PathLike[str]) -> PipelineDefinition:
    """Read and validate one definition file (no caching)."""
    file = Path(path)
    try:
        raw = file.read_bytes()
    except OSError as exc:
        raise DefinitionError(f"cannot read pipeline definition {file}: {exc.strerror}", file=str(file)) from exc
    try:
        data = tomllib.loads(raw.decode("utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise DefinitionError(f"{file}: not valid TOML: {exc}", file=str(file)) from exc
    return parse_definition(data, str(file))


# -- precompiled definition (issue 18) -------------------------------------------------------
# ``deploy build`` validates the TOML (same errors as here) and ships the validated object next
# to it, pickled with the sha256 of the TOML it came from and the versions that made it. A cold
# start then unpickles it (~0.3 ms; no validation, no pydantic schema build) instead of
# validating (~25 ms). The TOML stays the single source: a file whose hash does not match, or
# written by another Python/pydantic, is ignored and the TOML is validated as before. The file
# is a build artifact inside the same bundle as the code that loads it (same trust as main.py).
COMPILED_SUFFIX = ".compiled"
_COMPILED_FORMAT = 1


def compiled_path(toml_path: str | os.PathLike[str]) -> Path:
    """Where the precompiled form of ``toml_path`` lives (``pipeline.toml`` → ``pipeline.toml.compiled``)."""
    path = Path(toml_path)
    return path.with_name(path.name + COMPILED_SUFFIX)


def _stamp(raw: bytes) -> dict[str, Any]:
    import hashlib
    import sys

    import pydantic

    return {
        "format": _COMPILED_FORMAT,
        "toml_sha256": hashlib.sha256(raw).hexdigest(),
        "python": list(sys.version_info[:2]),
        "pydantic": pydantic.VERSION,
    }


def compile_definition(toml_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Validate ``toml_path`` (raises ``DefinitionError`` with the usual messages) and write its
    precompiled form; returns the written path (default: beside the TOML)."""
    target = Path(out) if out is not None else compiled_path(toml_path)
    target.write_bytes(compiled_bytes(toml_path))
    return target


def compiled_bytes(toml_path: str | os.PathLike[str]) -> bytes:
    """The precompiled form of ``toml_path`` (validated first; byte-reproducible, as the bundle zip is)."""
    import io
    import pickle

    source = Path(toml_path)
    raw = source.read_bytes()
    definition = read_definition(source)
    buffer = io.BytesIO()
    _deterministic_pickler()(buffer, protocol=pickle.HIGHEST_PROTOCOL).dump((_stamp(raw), definition))
    return buffer.getvalue()


def _rebuild_model(cls: type[BaseModel], fields: dict[str, Any], fields_set: tuple[str, ...]) -> BaseModel:
    """A validated model as ``BaseModel.__setstate__`` restores it (no validation; see compile_definition)."""
    model = cls.__new__(cls)
    object.__setattr__(model, "__dict__", fields)
    object.__setattr__(model, "__pydantic_fields_set__", set(fields_set))
    object.__setattr__(model, "__pydantic_extra__", None)
    object.__setattr__(model, "__pydantic_private__", None)
    return model


def _deterministic_pickler() -> type:
    import pickle

    class Pickler(pickle.Pickler):
        """Models reduce to (class, fields, sorted fields-set): pickling a model's own state would
        write its fields-set in hash order, which changes from run to run."""

        def reducer_override(self, obj: Any) -> Any:
            if isinstance(obj, BaseModel):
                fields = {k: v for k, v in obj.__dict__.items() if not k.startswith("_")}  # no caches
                return _rebuild_model, (type(obj), fields, tuple(sorted(obj.__pydantic_fields_set__)))
            return NotImplemented

    return Pickler


def load_compiled(toml_path: str | os.PathLike[str]) -> PipelineDefinition | None:
    """The precompiled definition of ``toml_path`` if one is beside it and was made from exactly
    these TOML bytes by this Python and pydantic; otherwise ``None`` (the caller validates)."""
    import pickle

    source = Path(toml_path)
    compiled = compiled_path(source)
    try:
        blob = compiled.read_bytes()
    except OSError:
        return None
    try:
        stamp, definition = pickle.loads(blob)  # our own build artifact, shipped with the code
    except Exception:  # noqa: BLE001 - unreadable (another pydantic, truncated): validate the TOML instead
        return None
    try:
        raw = source.read_bytes()
    except OSError:
        return None
    if stamp != _stamp(raw) or not isinstance(definition, PipelineDefinition):
        return None
    return definition


def _load(path: Path) -> PipelineDefinition:
    return load_compiled(path) or read_definition(path)


_cache: dict[Path, PipelineDefinition] = {}
_cache_lock = threading.Lock()


def load_definition(path: str | os.PathLike[str] | None = None) -> PipelineDefinition:
    """The pipeline definition, validated once per process and cached.

    Args:
        path: a definition file; defaults to ``$PIPELINE_DEFINITION`` or the packaged file.
    """
    chosen = Path(path or os.environ.get(DEFINITION_ENV) or DEFAULT_DEFINITION_PATH).resolve()
    with _cache_lock:
        if chosen not in _cache:
            _cache[chosen] = _load(chosen)
        return _cache[chosen]
