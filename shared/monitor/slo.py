"""Nights against their SLOs, from ``phase_execution_log`` rows (pure: no I/O).

Per transition with an ``[slo]`` target and per game date (a *night*):

- the triggers of the night, in order: each generation's trigger row (``g1`` partial, then ``g2``
  complete, ...), all kept visible; the *first* one is judged against the SLO;
- its verdict: ``on_time`` (first trigger at or before the due time), ``late``, ``missing`` (a night
  with games, due time passed, no trigger), ``pending`` (not due yet, no trigger) or ``no_games``
  (the schedule has no game that night and nothing triggered: not judged);
- its duration: the trigger row's ``duration_seconds``, which the transitions write as *the date's
  first completion of the source phase → the trigger* (``shared.orchestration.execution_log``), so
  it measures the source phase (phase 2 for ``phase2_to_phase3``), first generation only;
- per transition: p50/p95 of those durations (nearest rank) and "on time N of the last M nights"
  (M: the nights judged, i.e. on time, late or missing).

A trigger row is a row whose ``status`` is a trigger status (complete, partial, deadline_exceeded);
blocked, gate errors, self-heal and backfill bookkeeping rows are not triggers. Its generation and
mode come from its ``trigger_id`` (``<transition>:<date>:g<N>[:<mode>]``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.pipeline._slo import SloTarget
from shared.pipeline.definition import PipelineDefinition

TRIGGER_STATUSES = frozenset({"complete", "partial", "deadline_exceeded"})
Verdict = Literal["on_time", "late", "missing", "pending", "no_games"]
JUDGED: frozenset[str] = frozenset({"on_time", "late", "missing"})
_TRIGGER_ID = re.compile(r":g(\d+)(?::([A-Za-z0-9_]+))?$")


@dataclass(frozen=True)
class Trigger:
    """One trigger row of a night."""

    at: datetime
    generation: int
    status: str
    trigger_id: str
    mode: str | None = None
    duration_seconds: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "at": self.at.isoformat(),
            "generation": self.generation,
            "status": self.status,
            "trigger_id": self.trigger_id,
            "mode": self.mode,
            "duration_seconds": self.duration_seconds,
        }


@dataclass(frozen=True)
class Night:
    """One transition's game date against its SLO."""

    game_date: date
    due: datetime
    verdict: Verdict
    triggers: tuple[Trigger, ...] = ()
    games: int | None = None  # scheduled games that night (None: the schedule was not read)

    @property
    def first(self) -> Trigger | None:
        return self.triggers[0] if self.triggers else None

    @property
    def breached(self) -> bool:
        return self.verdict in ("late", "missing")

    @property
    def late_by(self) -> timedelta | None:
        first = self.first
        return first.at - self.due if first is not None and self.verdict == "late" else None

    def as_dict(self) -> dict[str, Any]:
        return {
            "game_date": self.game_date.isoformat(),
            "due": self.due.isoformat(),
            "verdict": self.verdict,
            "games": self.games,
            "triggers": [t.as_dict() for t in self.triggers],
        }


@dataclass(frozen=True)
class TransitionHistory:
    """One transition's nights (oldest first) and their summary."""

    transition: str
    slo: SloTarget
    source_phase: int
    nights: tuple[Night, ...]

    @property
    def judged(self) -> int:
        return sum(1 for n in self.nights if n.verdict in JUDGED)

    @property
    def on_time(self) -> int:
        return sum(1 for n in self.nights if n.verdict == "on_time")

    @property
    def durations(self) -> list[float]:
        """The first trigger's duration of each night that has one (seconds)."""
        return [n.first.duration_seconds for n in self.nights if n.first and n.first.duration_seconds is not None]

    @property
    def p50(self) -> float | None:
        return percentile(self.durations, 50)

    @property
    def p95(self) -> float | None:
        return percentile(self.durations, 95)

    @property
    def last(self) -> Night | None:
        return self.nights[-1] if self.nights else None

    def on_time_text(self) -> str:
        """``on time 28 of the last 30 nights`` (the nights judged: with games, due or triggered)."""
        return f"on time {self.on_time} of the last {self.judged} nights"

    def as_dict(self) -> dict[str, Any]:
        return {
            "transition": self.transition,
            "slo": self.slo.model_dump(),
            "duration_measures": f"phase {self.source_phase}: first completion to the trigger (generation 1)",
            "on_time": self.on_time,
            "judged": self.judged,
            "p50_seconds": self.p50,
            "p95_seconds": self.p95,
            "nights": [n.as_dict() for n in self.nights],
        }


def percentile(values: Sequence[float], q: float) -> float | None:
    """The nearest-rank percentile (``None`` without values): p50 of 1..10 is 5, p95 is 10."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(q / 100 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def parse_trigger_id(trigger_id: str) -> tuple[int, str | None]:
    """``phase3_to_phase4:2026-01-24:g2:overnight`` → ``(2, "overnight")``; no ``g<N>``: ``(1, None)``."""
    match = _TRIGGER_ID.search(trigger_id or "")
    if match is None:
        return 1, None
    return int(match.group(1)), match.group(2)


def _instant(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value.replace("Z", "+00:00"))
    if not isinstance(value, datetime):
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _day(value: Any) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value))


def triggers_by_night(rows: Iterable[Mapping[str, Any]]) -> dict[tuple[str, date], list[Trigger]]:
    """The trigger rows by (transition, game date), each list by time (one per trigger id: the first row)."""
    out: dict[tuple[str, date], dict[str, Trigger]] = {}
    for row in rows:
        status = str(row.get("status") or "")
        at = _instant(row.get("execution_timestamp"))
        if status not in TRIGGER_STATUSES or at is None:
            continue
        trigger_id = str(row.get("trigger_id") or "")
        generation, mode = parse_trigger_id(trigger_id)
        duration = row.get("duration_seconds")
        trigger = Trigger(at, generation, status, trigger_id, mode, float(duration) if duration is not None else None)
        night = out.setdefault((str(row["phase_name"]), _day(row["game_date"])), {})
        key = trigger_id or f"{at.isoformat()}"
        if key not in night or trigger.at < night[key].at:
            night[key] = trigger
    return {k: sorted(v.values(), key=lambda t: (t.generation, t.at)) for k, v in out.items()}


def judge(
    slo: SloTarget,
    game_date: date,
    triggers: Sequence[Trigger],
    *,
    due: datetime,
    now: datetime,
    games: int | None,
) -> Night:
    """One night's verdict. ``games``: scheduled games that night (``None``: unknown, judged as a
    night with games when it triggered or is due)."""
    mine = tuple(t for t in triggers if slo.mode is None or t.mode in (slo.mode, None))
    first = mine[0] if mine else None
    verdict: Verdict
    if first is not None:
        verdict = "on_time" if first.at <= due else "late"
    elif games == 0:
        verdict = "no_games"
    else:
        verdict = "missing" if now > due else "pending"
    return Night(game_date, due, verdict, mine, games)


def build_history(
    definition: PipelineDefinition,
    rows: Iterable[Mapping[str, Any]],
    start: date,
    end: date,
    now: datetime,
    *,
    games: Mapping[date, int] | None = None,
    tipoffs: Mapping[date, datetime] | None = None,
) -> list[TransitionHistory]:
    """Each transition with an SLO (definition order): its nights ``start..end`` (inclusive).

    ``games``: scheduled games per date (a date absent with ``games`` given has none); ``tipoffs``:
    the first tip-off per date (a tip-off SLO's day without one uses ``first_tipoff_fallback``).
    """
    zone = ZoneInfo(definition.pipeline.timezone)
    by_night = triggers_by_night(rows)
    days = [start + timedelta(days=n) for n in range((end - start).days + 1)]
    out = []
    for transition in definition.transitions:
        slo = definition.slo.for_transition(transition.name)
        if slo is None:
            continue
        nights = []
        for day in days:
            tipoff = (tipoffs or {}).get(slo.target_day(day)) if slo.uses_tipoff else None
            due = slo.due_at(day, zone, tipoff, definition.slo.first_tipoff_fallback)
            count = None if games is None else int(games.get(day, 0))
            nights.append(judge(slo, day, by_night.get((transition.name, day), []), due=due, now=now, games=count))
        out.append(TransitionHistory(transition.name, slo, transition.source_phase, tuple(nights)))
    return out


def duration_text(seconds: float | None) -> str:
    """``3h12m`` / ``45m`` / ``-``."""
    if seconds is None:
        return "-"
    minutes = round(seconds / 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}h{minutes:02d}m" if hours else f"{minutes}m"
