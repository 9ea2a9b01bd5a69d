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

from pydantic import Field

from shared.pipeline._models import DefinitionModel


class SelfHeal(DefinitionModel):
    """``[heal.self_heal]``."""

    enabled: bool = True


class Gaps(DefinitionModel):
    """``[heal.gaps]``."""

    enabled: bool = True


class Heal(DefinitionModel):
    """``[heal]``: self-heal checkpoints and the gap pass with its backfill queue."""

    self_heal: SelfHeal = Field(default_factory=SelfHeal)
    gaps: Gaps = Field(default_factory=Gaps)
