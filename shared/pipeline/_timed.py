"""The ``[[sensors]]`` section: triggers evaluated on a schedule, with data conditions.

A part of ``shared.pipeline.definition`` (import from there).
"""

from __future__ import annotations

from typing import Annotated, Literal, Self

from pydantic import Field, model_validator

from shared.pipeline._gates import GateTable, Predicate
from shared.pipeline._models import DefinitionModel, Name, TopicName

DateRule = Literal["yesterday", "today", "game_night"]
Cron = Annotated[str, Field(pattern=r"^\S+( \S+){4}$")]
JobId = Annotated[str, Field(pattern=r"^[a-z][a-z0-9-]{0,62}$")]


class SensorCondition(DefinitionModel):
    """One data condition of a sensor, all of a sensor's in one parameterised query.

    ``all_final``: every scheduled game of the date is Final in the ``[games]`` schedule (games
    marked unavailable or postponed are not waited for); ``rows_present``: ``table`` has rows for
    the date (e.g. predictions exist); ``not_done``: ``table`` has none yet (e.g. not graded);
    ``actuals_coverage``: of the players ``table`` predicts (``where``), at least ``min_players_pct``
    have a row in ``actuals`` (``actuals_where``), and at least ``min_games_pct`` of the date's Final
    games (postponed and unavailable ones left out) have actuals (``shared.orchestration.timed_actuals``).
    A fallback slot checks only the conditions with ``fallback = true`` (an ``actuals_coverage``
    with its ``fallback_min_*`` floors).
    """

    kind: Literal["all_final", "rows_present", "not_done", "actuals_coverage"]
    table: GateTable | None = None
    label: str = ""  # how a reason names the rows ("predictions", "graded rows")
    fallback: bool = True
    where: tuple[Predicate, ...] = ()  # rows of `table` that count (actuals_coverage: the predicted players)
    # actuals_coverage only
    actuals: GateTable | None = None  # the played games' rows (player_game_summary)
    actuals_where: tuple[Predicate, ...] = ()
    player_column: Name = "player_lookup"  # in both tables: a player plays one game a date
    game_column: Name = "game_id"  # in both tables (any id format: canonicalised before any comparison)
    min_players_pct: float = Field(default=80.0, ge=0, le=100)
    min_games_pct: float = Field(default=90.0, ge=0, le=100)
    fallback_min_players_pct: float = Field(default=70.0, ge=0, le=100)
    fallback_min_games_pct: float = Field(default=80.0, ge=0, le=100)

    @model_validator(mode="after")
    def _table(self) -> Self:
        if (self.kind == "all_final") != (self.table is None):
            raise ValueError("`all_final` reads the [games] schedule (no `table`); the other kinds need a `table`")
        if (self.kind == "actuals_coverage") != (self.actuals is not None):
            raise ValueError("`actuals` (the actuals table) is for, and required by, `actuals_coverage`")
        if self.kind not in ("actuals_coverage", "rows_present", "not_done") and self.where:
            raise ValueError("`where` filters a condition's `table`")
        return self


class Regrade(DefinitionModel):
    """``[sensors.regrade]``: after a trigger, the monitor compares ``graded`` with ``gradable`` rows
    (``shared.monitor.grading_net``); below ``below_pct`` it re-triggers the date as a new generation
    (at most ``max_regrades`` times, then the ``finding``). Over ``gap_days`` it reports each date with
    Final games and gradable rows but no graded row (``gap_finding``)."""

    gradable: GateTable
    gradable_where: tuple[Predicate, ...] = ()
    graded: GateTable
    graded_where: tuple[Predicate, ...] = ()
    below_pct: float = Field(default=70.0, ge=0, le=100)
    max_regrades: int = Field(default=2, ge=0, le=5)
    settle_minutes: int = Field(default=60, ge=1, le=24 * 60)  # a trigger younger than this is still grading
    trigger_source: str = "coverage-monitor-regrade"
    finding: Name = "grading_coverage_low"
    gap_days: int = Field(default=14, ge=1, le=120)
    gap_finding: Name = "grading_gap"


class TriggerSlot(DefinitionModel):
    """One scheduled run of a sensor: a job the schedule dispatcher runs (``PipelineDefinition.all_jobs``)."""

    name: Name
    cron: Cron
    job: JobId
    source: str = ""  # where the replaced system schedules it: "<path>:<line>"
    wave: Literal["A", "B", "C"] | None = None
    window: Literal["season", "regular_season", "always"] = "season"

    @model_validator(mode="after")
    def _cron(self) -> Self:
        from shared.schedules.cron import CronExpression

        CronExpression.parse(self.cron)
        return self

    fallback: bool = False  # a sensor's fallback run: triggers unless the date is triggered already
    redo: bool = False  # a re-run of a date done already (the coverage regrade): `not_done` does not apply
    date: DateRule | None = None  # the game date this slot evaluates (default: the trigger's)
    export_types: tuple[str, ...] = ()
    update_latest: bool | None = None


class TimedTrigger(DefinitionModel):
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
    regrade: Regrade | None = None
