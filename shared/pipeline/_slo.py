"""``[slo]``: when each transition's trigger is due for a game date (issue 28, history and SLOs).

An SLO names a transition and its target, in the pipeline's timezone: either a local time ``at``
on the ``day``-th day after the game date (``at = "10:00", day = 1``: 10:00 ET the morning after),
or ``before_first_tipoff_minutes`` before the first tip-off of that day (from the schedule's
``tipoff_column``; ``first_tipoff_fallback`` when the schedule gives no start time). For a
transition with modes, ``mode`` says which mode's trigger the SLO is about. The first trigger of
the night (its first generation) is what is judged; later generations are shown, not judged.

Read by ``shared.monitor.slo`` (the history: on time or late, p50/p95), the monitor's
``slo_breach`` finding, ``phasectl slo`` and the status page's history section.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Annotated, Self
from zoneinfo import ZoneInfo

from pydantic import Field, model_validator

from shared.pipeline._models import DefinitionModel, Name

if TYPE_CHECKING:
    from shared.pipeline._models import Transition

LocalTime = Annotated[str, Field(pattern=r"^([01][0-9]|2[0-3]):[0-5][0-9]$")]


def _hhmm(value: str) -> time:
    hour, minute = (int(x) for x in value.split(":"))
    return time(hour, minute)


class SloTarget(DefinitionModel):
    """One transition's SLO: its first trigger of a game date is due by ``due_at``."""

    transition: Name
    at: LocalTime | None = None  # a local time on the game date + ``day``
    before_first_tipoff_minutes: int | None = Field(default=None, ge=0, le=720)  # or before that day's first tip-off
    day: int = Field(default=1, ge=0, le=3)  # days after the game date (1: the morning after)
    mode: Name | None = None  # a transition with modes: only this mode's trigger counts
    source: str = ""  # the replaced system's expectation, "<path>:<lines>"

    @model_validator(mode="after")
    def _one_target(self) -> Self:
        if (self.at is None) == (self.before_first_tipoff_minutes is None):
            raise ValueError(f"slo {self.transition}: give exactly one of at or before_first_tipoff_minutes")
        return self

    @property
    def uses_tipoff(self) -> bool:
        return self.before_first_tipoff_minutes is not None

    def target_day(self, game_date: date) -> date:
        return game_date + timedelta(days=self.day)

    def due_at(self, game_date: date, zone: ZoneInfo, first_tipoff: datetime | None, fallback: str) -> datetime:
        """When the trigger for ``game_date`` is due (aware, in ``zone``; DST-correct wall time).
        ``first_tipoff``: the first tip-off of ``target_day`` (``None``: ``fallback`` local time)."""
        day = self.target_day(game_date)
        if self.at is not None:
            return datetime.combine(day, _hhmm(self.at), zone)
        tipoff = first_tipoff.astimezone(zone) if first_tipoff else datetime.combine(day, _hhmm(fallback), zone)
        return tipoff - timedelta(minutes=self.before_first_tipoff_minutes or 0)

    def describe(self, label: str = "ET") -> str:
        """``10:00 ET the morning after`` / ``1 h before the first tip-off the day after``."""
        when = {0: "the game date", 1: "the morning after"}.get(self.day, f"{self.day} days after")
        if self.at is not None:
            return f"{self.at} {label} {when}"
        minutes = self.before_first_tipoff_minutes or 0
        span = f"{minutes // 60} h" if minutes % 60 == 0 else f"{minutes} min"
        tipoff_day = {0: "on the game date", 1: "the day after"}.get(self.day, f"{self.day} days after")
        return f"{span} before the first tip-off {tipoff_day}"


class Slos(DefinitionModel):
    """``[slo]``: the targets, and where the first tip-off of a day is read."""

    tipoff_column: Name = "game_date_est"  # the schedule's start-time column (TIMESTAMP), [games] schedule_table
    first_tipoff_fallback: LocalTime = "19:00"  # a day whose schedule gives no start time
    targets: tuple[SloTarget, ...] = ()

    def for_transition(self, name: str) -> SloTarget | None:
        return next((t for t in self.targets if t.transition == name), None)


def check_slos(slo: Slos, transitions: Sequence[Transition]) -> None:
    """Every SLO names a known transition (once) and, with ``mode``, one of its modes."""
    known = {t.name: t for t in transitions}
    names = [t.transition for t in slo.targets]
    for target in slo.targets:
        transition = known.get(target.transition)
        if transition is None:
            raise ValueError(f"slo: unknown transition {target.transition!r} (known: {sorted(known)})")
        if names.count(target.transition) > 1:
            raise ValueError(f"slo: transition {target.transition!r} has more than one target")
        modes = {m.name for m in transition.modes}
        if target.mode is not None and target.mode not in modes:
            raise ValueError(f"slo {target.transition}: unknown mode {target.mode!r} (known: {sorted(modes)})")
