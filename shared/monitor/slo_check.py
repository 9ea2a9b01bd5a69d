"""The monitor's ``slo_breach`` finding: a transition's SLO (``[slo]``) passed for a night with games.

Per SLO transition and date of the pass's window with Final games (the pass's schedule read: every
SLO is due after the night's games, so a Final game is what makes the night count):

- due passed and no trigger yet → ``slo_breach`` ERROR (the night's product is not out; act now);
- the first trigger came after the due time → ``slo_breach`` WARNING (it is out, late: the record).

The trigger times come from the transition's Firestore date document (``triggered``: every
generation's trigger), the source of truth the log rows are copied from (a row may still wait in
the outbox). One finding per (transition, date): key ``slo_breach__<transition>__<date>``; its
fingerprint changes when the verdict does (missing → late), not with the pass nor as the night's later
SLOs pass (they are named in the message only).

A tip-off SLO needs the first tip-off of its day: one schedule query per pass, only when such a
night is due in the window (``shared.monitor.slo_read.read_schedule``).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.monitor.findings import Finding
from shared.monitor.slo import Trigger, parse_trigger_id
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from shared.orchestration.date_state import DateState

_log = get_logger("shared.monitor.slo_check")

# the monitor's pass and one check's run (``shared.monitor.checks``), as this module uses them (typed
# loosely: that module imports this one)
TransitionMonitor = Any
CheckRun = Any

KIND = "slo_breach"


def slo_check(
    monitor: TransitionMonitor, window: Sequence[date], final_games: Mapping[date, int]
) -> Callable[[CheckRun], None]:
    """The pass's ``slo`` check (``shared.monitor.checks``): its findings join the run's, isolated."""

    def work(run: CheckRun) -> None:
        monitor._extend(run, "slo", lambda: slo_findings(monitor, window, final_games, run), check="slo")

    return work


def _local(instant: datetime, zone: ZoneInfo) -> str:
    label = "ET" if zone.key == "America/New_York" else zone.key
    return f"{instant.astimezone(zone):%Y-%m-%d %H:%M} {label}"


def state_triggers(state: DateState, mode: str | None) -> list[Trigger]:
    """Every generation's trigger in the date document (of ``mode`` when given), first generation first."""
    out = []
    for key, entry in state.triggered.items():
        if not isinstance(entry, dict) or not isinstance(entry.get("at"), datetime):
            continue
        generation, id_mode = parse_trigger_id(str(entry.get("trigger_id") or ""))
        slot_mode = key.partition("-")[2] or id_mode
        if mode is not None and slot_mode not in (mode, None):
            continue
        gen = int(key.partition("-")[0]) if key.partition("-")[0].isdigit() else generation
        out.append(
            Trigger(entry["at"], gen, str(entry.get("status") or ""), str(entry.get("trigger_id") or ""), slot_mode)
        )
    return sorted(out, key=lambda t: (t.generation, t.at))


def breach(
    transition: str,
    day: date,
    due: datetime,
    now: datetime,
    triggers: Sequence[Trigger],
    describe: str,
    zone: ZoneInfo,
) -> Finding | None:
    """The finding for one night, or ``None`` (not due yet, or on time)."""
    first = triggers[0] if triggers else None
    if first is None and now <= due:
        return None
    if first is not None and first.at <= due:
        return None
    details: dict[str, Any] = {"due": due.isoformat(), "slo": describe}
    if first is None:
        details["verdict"] = "missing"
        message = (
            f"{transition} {day}: no trigger yet, due {_local(due, zone)} ({describe}); "
            f"see `phasectl slo --date {day}` and `phasectl status --date {day}`"
        )
        return Finding("slo_breach", "ERROR", message, transition, day, details)
    late = first.at - due
    details.update(verdict="late", trigger_at=first.at.isoformat(), generation=first.generation)
    minutes = int(late / timedelta(minutes=1))
    message = (
        f"{transition} {day}: first trigger (g{first.generation} {first.status}) at {_local(first.at, zone)}, "
        f"{minutes} min after its SLO ({describe}); see `phasectl slo --date {day}`"
    )
    return Finding("slo_breach", "WARNING", message, transition, day, details)


def slo_findings(
    monitor: TransitionMonitor, window: Sequence[date], final_games: Mapping[date, int], run: CheckRun | None = None
) -> list[Finding]:
    """Every SLO breach of the window's nights with Final games. A night missing several triggers is
    one finding, on the earliest transition of the chain (the later ones wait for it: they are listed
    in its ``also_due``); a late trigger is a finding of its own transition."""
    definition = monitor.definition
    slo = definition.slo
    now, zone = monitor.clock.now(), ZoneInfo(definition.pipeline.timezone)
    nights = [d for d in window if final_games.get(d)]
    if not slo.targets or not nights:
        return []
    tipoffs: dict[date, datetime] | None = None  # read once, only when a verdict depends on a tip-off
    label = "ET" if zone.key == "America/New_York" else zone.key
    targets = [t for t in (slo.for_transition(x.name) for x in definition.transitions) if t is not None]
    out: list[Finding] = []
    also_due: dict[str, list[str]] = {}  # root finding key → the later transitions waiting for it (message only)
    for day in nights:
        root: Finding | None = None
        for target in targets:
            service = monitor.services.get(target.transition)
            if service is None:
                continue
            if run is not None:
                if run.stopped:
                    return out
                run.at = f"{target.transition} {day}"
            due = target.due_at(day, zone, None, slo.first_tipoff_fallback)
            if now <= due - timedelta(hours=12 if target.uses_tipoff else 0):
                continue  # not due yet (a tip-off SLO: whatever the tip-off, at most 12 h before the fallback's)
            try:
                state = service.state.load(day)
            except (KeyError, TypeError, ValueError) as exc:  # one malformed date must not blind the others:
                # the transition-dates check reports it as that date's own check_error
                _log.warning("slo: %s %s skipped, its state is malformed: %r", target.transition, day, exc)
                continue
            triggers = state_triggers(state, target.mode)
            if target.uses_tipoff and (not triggers or triggers[0].at > due - timedelta(hours=12)):
                if tipoffs is None:
                    from shared.monitor.slo_read import read_schedule

                    days = sorted({t.target_day(d) for t in targets if t.uses_tipoff for d in nights})
                    _, tipoffs = read_schedule(monitor.bq, monitor.project, definition, days[0], days[-1])
                due = target.due_at(day, zone, tipoffs.get(target.target_day(day)), slo.first_tipoff_fallback)
            found = breach(target.transition, day, due, now, triggers, target.describe(label), zone)
            if found is None:
                continue
            if found.details["verdict"] == "missing" and root is not None:
                also_due.setdefault(root.key, []).append(f"{target.transition} {_local(due, zone)}")
                continue
            if found.details["verdict"] == "missing":
                root = found
            out.append(found)
    # the root finding's message names the later transitions of the night that wait for it; not its
    # details: the fingerprint stays as the night's next SLOs pass (one alert per night and transition)
    return [
        dataclasses.replace(f, message=f"{f.message}; also due and waiting for it: {', '.join(also_due[f.key])}")
        if f.key in also_due
        else f
        for f in out
    ]
