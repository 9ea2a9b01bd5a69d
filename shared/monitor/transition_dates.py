"""Per transition and date: stuck, blocked, gate error, silent, hand-off, gate alert; and the grid.

Per transition and per date of the recent window the date's state is loaded and re-evaluated
through the *same* ``TransitionService.evaluate`` the transition functions use, so a deadline tier
fires with no new message through the same claim protocol (a monitor and a late completion can
never both trigger). Then:

- stuck: completions recorded, not triggered, first completion older than the transition's
  ``stuck_after_minutes`` → the engine's reason (missing processors, next tier);
- blocked: the engine or a gate blocked the date → the reason;
- gate_error: a gate cannot run as configured (unknown column or table, no permission);
- handoff: triggered, but the next transition has no completion within the handoff timeout;
- silent: the schedule has Final games for the date and the transition has no activity at all;
- gate_alert: triggered with a gate under its alert line.

A live claim on the date (another attempt holds it: a late completion, ``phasectl trigger``) means
the date is being triggered right now: no ``stuck`` while it lasts; an expired claim (the attempt
crashed) is stuck. Every grace and threshold is elapsed time: instants are added to in UTC, never
in New York wall time (on the DST fall-back night wall time runs an hour longer).

The grid over ``grid_days``: the schedule read (``shared.monitor.schedule_read``) → dates with Final
games and no phase-6 trigger;
what the phase-6 date documents say comes from the grid summary (``shared.monitor.grid_summary``),
so a pass reads a bounded number of them, not the whole stored window.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.clock import Clock
from shared.monitor.findings import Finding, MonitorReport
from shared.orchestration.engine import select_mode
from shared.orchestration.state import DateState, TransitionState, state_doc_id
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    from google.cloud import firestore


class TransitionDateChecks:
    """The findings of one (transition, date); the monitor isolates each call."""

    def __init__(
        self,
        definition: PipelineDefinition,
        clock: Clock,
        firestore_client: firestore.Client,
        services: dict[str, TransitionService],
        tz: ZoneInfo,
    ) -> None:
        self.definition = definition
        self.clock = clock
        self.firestore = firestore_client
        self.services = services
        self.tz = tz

    def _state(self, transition: str) -> TransitionState:
        return TransitionState(self.firestore, self.definition.pipeline.state_collection, transition)

    def check(self, name: str, day: date, games: int, report: MonitorReport, dry_run: bool) -> list[Finding]:
        """Re-evaluate the date (not in a dry run: there the engine only decides) and say what is wrong.

        ``games``: the date's Final games in the schedule (0 when the schedule read failed). A date the
        monitor triggers is added to ``report.triggered``.
        """
        transition = self.definition.transition(name)
        state = self._state(name).load(day)
        now = self.clock.now()
        # a transition with modes triggers once per mode: a pre-game (same_day) trigger does not
        # settle the post-game (overnight) one, so look at the current mode's slot
        mode = select_mode(transition, day, self.clock, self.tz)[0]
        latched = state.triggered_slot(mode)
        if latched is not None:
            return self._handoff(name, day, latched) + _gate_alerts(name, day, state.last_gate, latched)
        earlier = state.triggered_current  # another mode's trigger of this generation, if any
        if not state.completions:
            # only the first transition can be silent on its own: further down, an untriggered
            # upstream explains the silence, and a triggered one is the upstream's handoff finding
            is_first = name == self.definition.transitions[0].name
            overdue = now > silent_after(day, self.tz, transition.stuck_after_minutes)
            if games and is_first and overdue and state.status == "waiting":
                return [
                    Finding(
                        "silent",
                        "ERROR",
                        f"{name} {day}: {games} Final game(s) in the schedule but no completion at all",
                        name,
                        day,
                        {"final_games": games},
                    )
                ]
            return []
        service = self.services[name]
        if dry_run:
            from shared.orchestration.engine import decide

            decision = decide(self.definition, transition, day, state.completions, self.clock)
            kind: str = decision.kind
            detail = decision.reason
        else:
            outcome = service.evaluate(day, owner=f"monitor:{now.isoformat()}")
            kind, detail = outcome.kind, outcome.detail
            if outcome.kind in ("claimed_elsewhere", "already_triggered"):
                # a late completion won the claim (or latched) since the state was loaded: the date
                # is being triggered right now, not stuck; the next pass sees the latch and its handoff
                return []
            if outcome.kind == "triggered":
                report.triggered.append(outcome.trigger_id or name)
                return [
                    Finding(
                        "deadline_trigger",
                        "INFO",
                        f"{name} {day}: triggered by the monitor: {detail}",
                        name,
                        day,
                        {"trigger_id": outcome.trigger_id},
                    )
                ]
        if kind == "gate_error" or (kind != "blocked" and state.status == "gate_error"):
            gate_reason = detail if kind == "gate_error" else _gate_error_reason(state.last_gate)
            return [
                Finding(
                    "gate_error",
                    "ERROR",
                    f"{name} {day}: a gate cannot run as configured (fix it; the next pass re-evaluates): "
                    f"{gate_reason}",
                    name,
                    day,
                    {"reason": gate_reason},
                )
            ]
        if kind == "blocked" or state.status == "blocked":
            reason = detail if kind == "blocked" else _gate_reason(state.last_gate, "blocked") or "blocked"
            return [
                Finding(
                    "blocked",
                    "ERROR",
                    f"{name} {day}: blocked: {reason}",
                    name,
                    day,
                    {"reason": reason, "missing_games": list(state.missing_games)},
                )
            ]
        known = [c.completed_at for c in state.completions if c.processor is not None]
        if earlier is not None and earlier.get("at") is not None:  # measure from after that trigger
            known = [at for at in known if at > earlier["at"]]
        # only unknown names so far: nothing is stuck yet (L08: an unknown processor's completion is
        # recorded but never counts)
        if not known:
            return []
        age = now - min(known)
        if age > timedelta(minutes=transition.stuck_after_minutes):
            if self._being_triggered(name, day, mode):
                return []
            missing = self._missing(transition.name, day, state)
            return [
                Finding(
                    "stuck",
                    "WARNING",
                    f"{name} {day}: not triggered {int(age.total_seconds() // 60)} min after the first "
                    f"completion: {detail}",
                    name,
                    day,
                    {"missing": missing},
                )
            ]
        return []

    def _being_triggered(self, name: str, day: date, mode: str | None) -> bool:
        """Whether another attempt is triggering the date right now (or just did): read again, since
        the claim may be younger than this check's first read (a late completion claims while the
        monitor evaluates). Only on the way to a ``stuck`` finding, which is rare."""
        current = self._state(name).load(day)
        return current.triggered_slot(mode) is not None or claim_is_live(current, self.clock.now())

    def _missing(self, name: str, day: date, state: Any) -> list[str]:
        from shared.orchestration.engine import progress_of

        transition = self.definition.transition(name)
        return list(progress_of(self.definition, transition, day, state.completions, self.clock).missing)

    def _handoff(self, name: str, day: date, triggered: dict[str, Any]) -> list[Finding]:
        transition = self.definition.transition(name)
        nxt = next((t for t in self.definition.transitions if t.source_phase == transition.target_phase), None)
        at = triggered.get("at")
        if nxt is None or not isinstance(at, datetime):
            return []
        timeout = timedelta(minutes=self.definition.monitor.handoff_timeout_minutes)
        if self.clock.now() - at < timeout:
            return []
        following = self._state(nxt.name).load(day)
        if following.completions:
            return []
        return [
            Finding(
                "handoff",
                "ERROR",
                f"{name} {day}: triggered {triggered.get('trigger_id')} but phase {transition.target_phase} "
                f"reported nothing within {timeout.total_seconds() / 60:.0f} min",
                name,
                day,
                {"trigger_id": triggered.get("trigger_id")},
            )
        ]


def silent_after(day: date, tz: ZoneInfo, grace_minutes: int) -> datetime:
    """When a date with Final games and no activity becomes ``silent``: ``grace_minutes`` of elapsed
    time after the midnight (in ``tz``) that follows it; games are processed overnight.

    The minutes are added in UTC: Python adds a timedelta to an aware datetime in wall time, which
    on the DST fall-back night (2026-11-01 in New York) lands an hour late.
    """
    midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=tz)
    return midnight.astimezone(UTC) + timedelta(minutes=grace_minutes)


def claim_is_live(state: DateState, now: datetime) -> bool:
    """Whether an attempt holds the date's claim at ``now``: it is working on the date right now.
    An expired claim is a crashed attempt's (the next evaluation takes the date over)."""
    expires_at = (state.claim or {}).get("expires_at")
    return isinstance(expires_at, datetime) and expires_at > now


def _gate_reason(last_gate: dict[str, Any] | None, verdict: str) -> str:
    """The reasons of the last evaluation's gates with ``verdict``, each prefixed by its gate."""
    items = sorted((last_gate or {}).items())
    gates = [(n, g) for n, g in items if isinstance(g, dict) and g.get("verdict") == verdict]
    return "; ".join(f"{n}: {g.get('reason')}" for n, g in gates)


def _gate_error_reason(last_gate: dict[str, Any] | None) -> str:
    return _gate_reason(last_gate, "error") or "gate error"


def _gate_alerts(name: str, day: date, last_gate: dict[str, Any] | None, latched: dict[str, Any]) -> list[Finding]:
    """A triggered date whose gates were under an alert line: a warning while the date is checked."""
    reason = _gate_reason(last_gate, "alert")
    if not reason:
        return []
    return [
        Finding(
            "gate_alert",
            "WARNING",
            f"{name} {day}: triggered with a gate under its alert line: {reason}",
            name,
            day,
            {"reason": reason, "trigger_id": latched.get("trigger_id")},
        )
    ]


# -- the grid: a bounded number of reads, whatever the number of stored dates -----------------------
def grid_gaps(
    firestore_client: firestore.Client,
    definition: PipelineDefinition,
    start: date,
    today: date,
    final_games: dict[date, int],
) -> list[Finding]:
    """``grid_gap`` (CRITICAL): dates before yesterday with Final games and no phase-6 trigger.

    What each date's document says comes from the grid summary: the summary and a bounded number of
    date documents per pass (``shared.monitor.grid_summary``); without a summary (the first pass)
    the whole window in one range read.
    """
    from shared.monitor import grid_summary

    last = definition.transitions[-1].name
    horizon = today - timedelta(days=1)  # tonight's games are not expected through phase 6 yet
    asked = sorted(d for d, n in final_games.items() if n and start <= d < horizon)
    summary = grid_summary.load_summary(firestore_client, definition, last)
    if summary is None:
        read = _read_window(firestore_client, definition, last, start, today)
        summary = grid_summary.GridSummary(0, {})
    else:
        recent_from = today - timedelta(days=definition.monitor.lookback_days)
        budget = grid_summary.recheck_budget(definition.monitor.grid_days)
        todo = grid_summary.dates_to_read(summary, asked, recent_from, budget)
        read = grid_summary.read_dates(firestore_client, definition, last, todo)
    summary = summary.updated(read, start, today)
    grid_summary.save_summary(firestore_client, definition, last, summary, today)
    gaps = [d.isoformat() for d in asked if d not in summary.dates or not summary.dates[d].triggered]
    if not gaps:
        return []
    return [
        Finding(
            "grid_gap",
            "CRITICAL",
            f"{len(gaps)} date(s) in the last {definition.monitor.grid_days} days had Final games "
            f"and no phase-6 trigger: {', '.join(gaps[:20])}{' …' if len(gaps) > 20 else ''}",
            None,
            None,
            {"dates": gaps},
        )
    ]


def _read_window(
    firestore_client: firestore.Client, definition: PipelineDefinition, transition: str, start: date, today: date
) -> dict[date, bool]:
    """Every date of ``[start, today]``: whether its document says ``triggered`` (absent: no).

    One range read over document ids ("{transition}__{date}"): served by the built-in index on
    __name__, so production needs no composite index for it.
    """
    from google.cloud.firestore_v1.base_query import FieldFilter
    from google.cloud.firestore_v1.field_path import FieldPath

    col = firestore_client.collection(definition.pipeline.state_collection)
    docs = (
        col.where(filter=FieldFilter(FieldPath.document_id(), ">=", col.document(state_doc_id(transition, start))))
        .where(filter=FieldFilter(FieldPath.document_id(), "<=", col.document(state_doc_id(transition, today))))
        .stream()
    )
    read = {start + timedelta(days=n): False for n in range((today - start).days + 1)}
    prefix = f"{transition}__"
    for doc in docs:
        try:
            day = date.fromisoformat(doc.id.removeprefix(prefix))
        except ValueError:
            continue  # not a date document (an id that only sorts inside the range)
        if day in read:
            read[day] = (doc.to_dict() or {}).get("status") == "triggered"
    return read
