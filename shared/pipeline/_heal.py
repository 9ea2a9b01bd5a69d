"""``[heal]``: how nights heal themselves (issue 27).

* ``[heal.self_heal]``: checkpoints (scheduled jobs that send a ``MonitorTick`` with
  ``check = "self_heal"``) compare what should exist with what does and re-trigger the earliest
  missing phase through the latch as a new generation (``trigger_source = "self_heal"``), capped
  per date and phase (the replaced system's ``self_heal`` function, daily 12:45 ET).
* ``[heal.gaps]``: the expected-outputs grid (games from the schedule x phases x processors)
  over a lookback, and the backfill queue its gaps go to (exactly once per date, phase and
  generation; rate-capped; oldest first).

Each part is a section model here; ``PipelineDefinition.heal`` holds them.
"""

from __future__ import annotations

from typing import Literal, Self

from pydantic import Field, model_validator

from shared.pipeline._gates import GateTable, Predicate
from shared.pipeline._models import DefinitionModel, Name, PhaseNumber, TableRef


class HealStep(DefinitionModel):
    """One phase of a self-heal target: the table whose rows for the date show the phase ran, and
    the transition whose trigger starts the phase (re-triggered when it is the earliest missing)."""

    phase: PhaseNumber
    transition: Name
    table: GateTable  # with its date column: every query filters on it (the partition filter)
    where: tuple[Predicate, ...] = ()  # e.g. predictions' is_active = TRUE


class HealTarget(DefinitionModel):
    """What should exist at a checkpoint: the last step's rows for the date the checkpoint looks at
    (``date``, from the checkpoint's own date), when the schedule has games of that kind then."""

    name: Name
    date: Literal["yesterday", "today", "tomorrow"]
    games: Literal["final", "scheduled"] = "final"  # Final games (played), or any scheduled game
    steps: tuple[HealStep, ...] = Field(min_length=1)  # in phase order: the last is what should exist
    source: str = ""  # where the replaced self_heal checks it: "<path>:<lines>"

    @model_validator(mode="after")
    def _phase_order(self) -> Self:
        phases = [step.phase for step in self.steps]
        if phases != sorted(set(phases)):
            raise ValueError(f"heal.self_heal target {self.name}: steps must be in phase order, one per phase")
        return self


class SelfHeal(DefinitionModel):
    """``[heal.self_heal]``: each checkpoint (a ``[[jobs]]`` entry sending a ``self_heal`` tick)
    checks every target; a (date, transition) is re-triggered at most ``max_heals`` times, once
    per checkpoint; a date healed and still missing at a later checkpoint is a finding."""

    enabled: bool = True
    collection: Name = "self_heal"  # attempts (claims) and per-(date, target) verdicts
    max_heals: int = Field(default=1, ge=1, le=5)  # re-triggers per date and transition
    verify_days: int = Field(default=3, ge=1, le=30)  # unresolved dates re-checked this long
    retention_days: int = Field(default=60, ge=1)  # the records' expiry (TTL policy, L25)
    targets: tuple[HealTarget, ...] = ()


class GapOutput(DefinitionModel):
    """One table of the expected-outputs grid: a phase's processor writes rows for the date there."""

    phase: PhaseNumber
    table: TableRef
    date_column: Name = "game_date"  # the partition column: the query filters on it (the tables require it)


class Gaps(DefinitionModel):
    """``[heal.gaps]``: the gap pass (``shared.heal.gaps``) and its backfill queue (``shared.heal.backfill``).

    A date of the lookback with Final games is a gap for a transition when the transition has no
    trigger for it (current generation), or when the phase it starts has no rows in any of its
    ``outputs`` tables. Gaps are queued once per (target, date, generation) and re-triggered oldest
    date first, at most ``dates_per_hour`` dates per hour across every process, at most
    ``max_attempts`` times per (target, date).
    """

    enabled: bool = True
    lookback_days: int = Field(default=14, ge=1, le=400)  # scraper_gap_backfiller/main.py:64 (LOOKBACK_DAYS = 14)
    min_age_days: int = Field(default=2, ge=1, le=30)  # younger dates are the night's work (self-heal, the monitor)
    dates_per_hour: int = Field(default=4, ge=1, le=200)  # re-triggered dates per hour, every process together
    max_attempts: int = Field(default=3, ge=1, le=10)  # gap_detector/main.py:41 (MAX_BACKFILL_ATTEMPTS = 3)
    settle_hours: int = Field(default=16, ge=0, le=168)  # a re-triggered date is no gap again before this
    lease_minutes: int = Field(default=30, ge=1, le=1440)  # a claimed entry whose worker died is taken over after
    queue_collection: str = Field(default="backfill_queue", pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    slot_collection: str = Field(default="backfill_slots", pattern=r"^[A-Za-z][A-Za-z0-9_-]*$")
    outputs: tuple[GapOutput, ...] = ()


class Heal(DefinitionModel):
    """``[heal]``: self-heal checkpoints and the gap pass with its backfill queue."""

    self_heal: SelfHeal = Field(default_factory=SelfHeal)
    gaps: Gaps = Field(default_factory=Gaps)
