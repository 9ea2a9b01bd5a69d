"""The pipeline definition: ``pipeline.toml`` validated into one object, and how a process loads it.

This is the single source of truth (lesson L08: one definition, so no two places can disagree
about the expected processors). Everything that needs a phase, a processor, a topic, a threshold
or a schedule asks a ``PipelineDefinition``.

This module defines ``PipelineDefinition`` (the checks across sections and the queries), the
loader (``parse_definition``, ``read_definition``, ``load_definition``) and the precompiled form
``deploy build`` ships. The section models live in private parts and are re-exported here
(``__all__``): import them from this module. ``_models`` holds settings, phases, processors,
transitions, retry, monitor, retention, schedules and deploy settings; ``_gates`` the gates and
``[games]``; ``_timed`` the sensors; ``_compiled`` the precompiled file's
format. Their building blocks (the base model, the field types) stay in the parts. The loader
stays here, beside the ``BUNDLE_DATA`` that makes ``deploy build`` ship ``pipeline.toml`` in
every bundle that loads the definition.
"""

from __future__ import annotations

import os
import threading
import tomllib
from pathlib import Path
from typing import Any, Self
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import Field, ValidationError, model_validator

from shared.errors import DefinitionError
from shared.pipeline._compiled import COMPILED_SUFFIX, compiled_path, dump_compiled, read_compiled
from shared.pipeline._gates import (
    BoxscoreSource,
    GameCoverageGate,
    GameSource,
    GamesSources,
    Gate,
    GateTable,
    GateValue,
    NullRateGate,
    NullRateTable,
    Predicate,
    RatioGate,
    RowsPresentGate,
    ServiceHealthGate,
)
from shared.pipeline._heal import Gaps, Heal, SelfHeal
from shared.pipeline._jobs import (
    TEMPLATE_VARIABLES,
    Dispatcher,
    HttpTarget,
    Job,
    LadderMode,
    PubsubTarget,
    Season,
    Service,
    Waves,
    check_jobs,
    sensor_jobs,
    template_variables,
)
from shared.pipeline._models import (
    CompletionThreshold,
    CountsPolicy,
    DeadlineTier,
    DefinitionModel,
    Delivery,
    DeploySettings,
    FunctionDeploy,
    HttpDelivery,
    Mode,
    ModeWhen,
    MonitorSettings,
    Name,
    Phase,
    PipelineSettings,
    Processor,
    Retention,
    RetryPolicy,
    Rule,
    Schedule,
    Transition,
    format_loc,
    processor_key,
)
from shared.pipeline._slo import Slos, check_slos
from shared.pipeline._timed import (
    DateRule,
    Sensor,
    SensorCondition,
    TimedTrigger,
    TriggerSlot,
)

__all__ = [
    "BUNDLE_DATA",
    "COMPILED_SUFFIX",
    "DEFAULT_DEFINITION_PATH",
    "DEFINITION_ENV",
    "TEMPLATE_VARIABLES",
    "BoxscoreSource",
    "CompletionThreshold",
    "CountsPolicy",
    "DateRule",
    "DeadlineTier",
    "Delivery",
    "DeploySettings",
    "Dispatcher",
    "FunctionDeploy",
    "GameCoverageGate",
    "GameSource",
    "GamesSources",
    "Gaps",
    "Gate",
    "GateTable",
    "GateValue",
    "Heal",
    "HttpDelivery",
    "HttpTarget",
    "Job",
    "LadderMode",
    "Mode",
    "ModeWhen",
    "MonitorSettings",
    "NullRateGate",
    "NullRateTable",
    "Phase",
    "PipelineDefinition",
    "PipelineSettings",
    "Predicate",
    "Processor",
    "PubsubTarget",
    "RatioGate",
    "Retention",
    "RetryPolicy",
    "RowsPresentGate",
    "Rule",
    "Schedule",
    "Season",
    "SelfHeal",
    "Sensor",
    "SensorCondition",
    "Service",
    "ServiceHealthGate",
    "TimedTrigger",
    "Transition",
    "TriggerSlot",
    "Waves",
    "compile_definition",
    "compiled_bytes",
    "compiled_path",
    "load_compiled",
    "load_definition",
    "parse_definition",
    "read_definition",
    "template_variables",
]

DEFINITION_ENV = "PIPELINE_DEFINITION"
DEFAULT_DEFINITION_PATH = Path(__file__).with_name("pipeline.toml")
BUNDLE_DATA = ("pipeline.toml",)  # data files this module loads; read by deploy.bundle


class PipelineDefinition(DefinitionModel):
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
    services: dict[str, Service] = Field(default_factory=dict)
    jobs: tuple[Job, ...] = ()
    seasons: tuple[Season, ...] = ()
    waves: Waves = Field(default_factory=Waves)
    prediction_ladder: dict[str, LadderMode] = Field(default_factory=dict)
    dispatcher: Dispatcher = Field(default_factory=Dispatcher)
    deploy: DeploySettings = Field(default_factory=DeploySettings)
    heal: Heal = Field(default_factory=Heal)
    slo: Slos = Field(default_factory=Slos)  # [slo]: when each trigger is due (shared.pipeline._slo)

    @model_validator(mode="after")
    def _cross_references(self) -> Self:
        phases = {p.number: p for p in self.phases}
        if len(phases) != len(self.phases):
            raise ValueError("phases: duplicate phase numbers")
        topics = [p.completion_topic for p in self.phases] + [p.trigger_topic for p in self.phases if p.trigger_topic]
        topics += [s.topic for s in self.schedules.values()]
        topics += [self.dispatcher.tick_topic] if self.jobs or self.sensors else []  # its tick, once
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
                key = processor_key(label)
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
            raise ValueError(f"sensors: names must differ from each other and transitions: {names}")
        for t in timed:
            ticks = {o.tick_topic for o in timed if o.function == t.function}
            if len(ticks) != 1:
                raise ValueError(f"{t.name}: every timed trigger of function {t.function!r} needs the same tick_topic")
            try:
                ZoneInfo(t.timezone)
            except (ZoneInfoNotFoundError, ValueError) as exc:
                raise ValueError(f"{t.name}: unknown timezone {t.timezone!r}") from exc
        self._check_jobs()
        check_slos(self.slo, self.transitions)
        entries = self.schedule_entries()
        jobs = [s.job for s in entries.values() if s.job] + [j.name for j in self.all_jobs()]
        if len(set(jobs)) != len(jobs):
            raise ValueError(f"jobs: duplicate job names {sorted({j for j in jobs if jobs.count(j) > 1})}")
        deployed = set(self.function_names())
        unknown_fn = sorted(set(self.deploy.functions) - deployed)
        if unknown_fn:
            raise ValueError(f"deploy.functions: {unknown_fn} are neither transitions nor scheduled functions")
        return self

    def _check_jobs(self) -> None:
        check_jobs(self.jobs, self.all_jobs(), self.services, self.prediction_ladder, self.dispatcher, self.seasons)

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
        """Every table a sensor condition (or its regrade) names (besides the ``[games]`` schedule), sorted."""
        refs = {x.table for t in self.timed_triggers() for c in t.conditions for x in (c.table, c.actuals) if x}
        refs |= {x.table for s in self.sensors if s.regrade for x in (s.regrade.gradable, s.regrade.graded)}
        return tuple(sorted(refs))

    def function_names(self) -> tuple[str, ...]:
        """Every deployable function: one per transition, then the scheduled ones and the sensors'."""
        names = [t.name for t in self.transitions]
        functions = [e.function for e in self.schedule_entries().values()] + [t.function for t in self.sensors]
        for function in functions:
            if function and function not in names:
                names.append(function)
        return tuple(names)

    def timed_triggers(self) -> tuple[TimedTrigger, ...]:
        """The sensors (triggers evaluated on a schedule, with conditions)."""
        return tuple(self.sensors)

    def all_jobs(self) -> tuple[Job, ...]:
        """Every scheduled job: ``[[jobs]]``, then one per sensor slot (a ``TriggerTick`` to the
        sensor's tick topic). The schedule dispatcher runs them; none is a Cloud Scheduler job."""
        return (*self.jobs, *sensor_jobs(self.sensors))

    def job(self, name: str) -> Job:
        for job in self.all_jobs():
            if job.name == name:
                return job
        raise KeyError(f"no job {name!r} in the definition")

    def job_zone(self, job: Job) -> ZoneInfo:
        return ZoneInfo(job.timezone or self.pipeline.timezone)

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
        """The Cloud Scheduler jobs: ``[schedules]`` plus the dispatcher's tick when any job is
        defined. Every ``[[jobs]]`` entry and sensor slot runs through the dispatcher, so the project
        holds no Cloud Scheduler job per defined job (nothing to drift or be deleted one by one)."""
        out = dict(self.schedules)
        if self.all_jobs():
            d = self.dispatcher
            out["schedule_dispatcher"] = Schedule(
                cron=d.cron, topic=d.tick_topic, timezone="UTC", job=d.job, function=d.function, payload="ScheduleTick"
            )
        return out

    def processors_of(self, phase: int) -> tuple[Processor, ...]:
        return tuple(p for p in self.processors if p.phase == phase)

    def normalise_processor(self, phase: int, raw_name: str, output_table: str | None = None) -> str | None:
        """The canonical name of a completion's processor in ``phase``, or ``None`` when unknown (an
        unknown name is recorded but never counts toward completion, L08).

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
                found = index.get((phase, processor_key(label)))
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
                    cached[(proc.phase, processor_key(label))] = proc.name
            object.__setattr__(self, "_alias_cache", cached)  # frozen model: cache beside the fields
        return cached


def parse_definition(data: dict[str, Any], source: str = "<memory>") -> PipelineDefinition:
    """Validate a parsed TOML document; errors name the source, field path and reason."""
    try:
        return PipelineDefinition.model_validate(data)
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc, names = format_loc(tuple(err["loc"]), data)
            msg = err["msg"].removeprefix("Value error, ") + (f" (in {names})" if names else "")
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


# -- precompiled definition (cold start: unpickled, not validated; the format is in _compiled) --
def compile_definition(toml_path: str | os.PathLike[str], out: str | os.PathLike[str] | None = None) -> Path:
    """Validate ``toml_path`` (raises ``DefinitionError`` with the usual messages) and write its
    precompiled form; returns the written path (default: beside the TOML)."""
    target = Path(out) if out is not None else compiled_path(toml_path)
    target.write_bytes(compiled_bytes(toml_path))
    return target


def compiled_bytes(toml_path: str | os.PathLike[str]) -> bytes:
    """The precompiled form of ``toml_path`` (validated first; byte-reproducible, as the bundle zip is)."""
    source = Path(toml_path)
    return dump_compiled(source.read_bytes(), read_definition(source))


def load_compiled(toml_path: str | os.PathLike[str]) -> PipelineDefinition | None:
    """The precompiled definition of ``toml_path`` if one is beside it and was made from exactly
    these TOML bytes by this Python and pydantic; otherwise ``None`` (the caller validates)."""
    loaded = read_compiled(Path(toml_path))
    return loaded if isinstance(loaded, PipelineDefinition) else None


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
