"""Pure report building for ``phasectl status`` and ``phasectl reconcile`` (no I/O).

Everything here takes what the adapters read (``CoverageInputs``, ``DateState``, log rows,
retry rows) and returns plain data with a stable JSON form and a readable table. The rules
are not re-implemented: coverage comes from ``coverage_verdict`` (the gate's own decision)
and each transition's explanation from ``engine.decide``.

Coverage status (``reconcile``): ``error`` below 80 % of the considered Final games covered,
``warning`` below 95 % (there are missing games), ``ok`` otherwise. Games marked unavailable
are excluded from the denominator and named. Exit codes: ok 0, warning 1, error 2.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal

from phasectl.core import iso
from phasectl.timefmt import TimeView
from shared.clock import Clock
from shared.errors import InvalidGameIdError
from shared.game_ids import GameIdConverter
from shared.orchestration.engine import decide
from shared.orchestration.gate_queries import CoverageInputs
from shared.orchestration.gates import coverage_verdict
from shared.orchestration.state import DateState
from shared.pipeline.definition import GameCoverageGate, PipelineDefinition, TimedTrigger, Transition
from shared.printable import printable_line

__all__ = [
    "ERROR_BELOW_PCT",
    "WARNING_BELOW_PCT",
    "GameLine",
    "Heartbeat",
    "PhaseLine",
    "ReconcileReport",
    "SourceLine",
    "StatusReport",
    "build_reconcile",
    "coverage_status",
    "format_table",
    "phase_line",
    "state_label",
]

ERROR_BELOW_PCT = 80.0
WARNING_BELOW_PCT = 95.0
JSON_VERSION = 1

Status = Literal["ok", "warning", "error"]
UTC_VIEW = TimeView.of("UTC")  # a report built without a view (a library caller) shows UTC, labelled

# a trigger record's status -> the kind ``status`` shows (as phasectl/status_html.py TRIGGER_KINDS)
TRIGGER_STATE: Mapping[str, str] = {
    "complete": "complete",
    "scheduled": "complete",
    "partial": "partial",
    "deadline_exceeded": "deadline",
    "fallback": "deadline",
}
MARKS_FIELD = "marks_after_trigger"  # on the date document: written by mark-unavailable / games postpone|restore
EXIT_CODES: Mapping[str, int] = {"ok": 0, "warning": 1, "error": 2}


def format_table(headers: Sequence[str], rows: Iterable[Sequence[Any]]) -> str:
    """A plain left-aligned text table (no dependency); cells are one line, control characters escaped."""
    cells = [
        [printable_line(h) for h in headers],
        *[["" if c is None else printable_line(c) for c in row] for row in rows],
    ]
    widths = [max(len(r[i]) for r in cells) for i in range(len(headers))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)).rstrip() for r in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def coverage_status(covered: int, considered: int) -> tuple[Status, float]:
    """(status, coverage %) — error < 80 %, warning < 95 %, else ok; no games to cover is ok."""
    if considered == 0:
        return "ok", 100.0
    pct = 100.0 * covered / considered
    if pct < ERROR_BELOW_PCT:
        return "error", pct
    if pct < WARNING_BELOW_PCT:
        return "warning", pct
    return "ok", pct


# -- per transition ------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseLine:
    """One transition for one date: what the engine counted and why it has (not) fired."""

    transition: str
    status: str  # the date document's status (waiting, claimed, publishing, triggered, blocked, gate_error)
    generation: int
    mode: str | None
    expected: tuple[str, ...]
    completed: tuple[str, ...]
    missing: tuple[str, ...]
    not_counted: tuple[str, ...]
    unknown: tuple[str, ...]
    decision: str  # wait | ready | blocked | triggered
    reason: str
    trigger_id: str | None = None
    triggered_at: datetime | None = None
    trigger_status: str | None = None
    first_completion_at: datetime | None = None
    gates: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    missing_games: tuple[str, ...] = ()
    # games marked unavailable / postponed / restored after this generation's trigger (``MARKS_FIELD``)
    marks_after_trigger: Mapping[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "transition": self.transition,
            "status": self.status,
            "generation": self.generation,
            "mode": self.mode,
            "expected": list(self.expected),
            "completed": list(self.completed),
            "missing": list(self.missing),
            "not_counted": list(self.not_counted),
            "unknown": list(self.unknown),
            "decision": self.decision,
            "reason": self.reason,
            "trigger_id": self.trigger_id,
            "triggered_at": iso(self.triggered_at),
            "trigger_status": self.trigger_status,
            "first_completion_at": iso(self.first_completion_at),
            "gates": {
                name: {k: g.get(k) for k in ("kind", "verdict", "value", "thresholds", "advisory", "reason")}
                for name, g in sorted(self.gates.items())
            },
            "missing_games": list(self.missing_games),
            "marks_after_trigger": None
            if self.marks_after_trigger is None
            else {k: iso(v) for k, v in self.marks_after_trigger.items()},
        }


def phase_line(definition: PipelineDefinition, transition: Transition, state: DateState, clock: Clock) -> PhaseLine:
    """Explain one date of one transition with the engine's own words (read-only: no claim)."""
    decision = decide(definition, transition, state.game_date, state.completions, clock)
    progress = decision.progress
    current = state.triggered_current
    gates = {k: v for k, v in (state.last_gate or {}).items() if isinstance(v, Mapping)}
    if current is not None:
        kind, reason = "triggered", str(current.get("reason") or decision.reason)
    else:
        kind, reason = decision.kind, decision.reason
        blocking = [g for g in gates.values() if g.get("verdict") == "blocked"]
        # ready but last blocked by a gate: still blocked while a re-check (monitor, redelivery) holds the claim
        errored = [g for g in gates.values() if g.get("verdict") == "error"]
        if blocking and (state.status == "blocked" or (kind == "ready" and state.status == "claimed")):
            kind, reason = "blocked", f"gate blocked: {blocking[0].get('reason')}; engine: {decision.reason}"
        elif errored and state.status == "gate_error":  # a gate that cannot run as configured blocks too
            kind, reason = "blocked", f"gate error: {errored[0].get('reason')}; engine: {decision.reason}"
    return PhaseLine(
        transition=transition.name,
        status=state.status,
        generation=state.generation,
        mode=progress.mode,
        expected=progress.expected,
        completed=tuple(p for p in progress.done),
        missing=progress.missing,
        not_counted=progress.not_counted,
        unknown=progress.unknown,
        decision=kind,
        reason=reason,
        trigger_id=None if current is None else current.get("trigger_id"),
        triggered_at=None if current is None else current.get("at"),
        trigger_status=None if current is None else current.get("status"),
        first_completion_at=progress.first_completion_at,
        gates=gates,
        missing_games=state.missing_games,
        marks_after_trigger=None if current is None else marks_after_trigger(state),
    )


def marks_after_trigger(state: DateState) -> Mapping[str, Any] | None:
    """The note a game mark left on a triggered date of this generation (``phasectl.commands.games``)."""
    note = state.raw.get(MARKS_FIELD)
    if not isinstance(note, Mapping) or note.get("generation") != state.generation:
        return None
    return note


def state_label(line: PhaseLine) -> str:
    """The STATE column: a trigger by its kind (``complete``, ``partial``, ``deadline``), else the decision."""
    if line.decision != "triggered":
        return line.decision
    return TRIGGER_STATE.get(line.trigger_status or "", "triggered")


def timed_line(trigger: TimedTrigger, state: DateState) -> PhaseLine:
    """A sensor's or scheduled trigger's date, shown like a transition: its conditions (a sensor) or
    its slots (a scheduled trigger) as what is done, the latch as the trigger, the last reasons."""
    gates = {k: v for k, v in (state.last_gate or {}).items() if isinstance(v, Mapping)}
    per_slot = trigger.once_per == "slot"
    if per_slot:
        expected = tuple(s.name for s in trigger.slots)
        fired = {s.name: state.triggered_slot(s.name) for s in trigger.slots}
        completed = tuple(n for n, doc in fired.items() if doc is not None)
        latest = max((doc for doc in fired.values() if doc is not None), key=lambda d: str(d.get("at")), default=None)
    else:
        expected = tuple(g for g in gates) or tuple(c.kind for c in trigger.conditions)
        completed = tuple(n for n, g in gates.items() if g.get("verdict") == "pass")
        latest = state.triggered_slot(None)
    waiting = [str(g.get("reason")) for g in gates.values() if g.get("verdict") not in ("pass", None)]
    if latest is not None and not per_slot:
        decision, reason = "triggered", f"triggered by slot {latest.get('slot')}: {latest.get('reason')}"
    elif per_slot and completed:
        decision, reason = "triggered", f"slots fired: {', '.join(completed)}"
    elif state.status == "gate_error":
        decision, reason = "blocked", f"conditions cannot run as configured: {'; '.join(waiting)}"
    elif waiting:
        decision, reason = "wait", "; ".join(waiting)
    else:
        decision, reason = "wait", "not evaluated yet" if not gates else "ready at the next tick"
    return PhaseLine(
        transition=trigger.name,
        status=state.status,
        generation=state.generation,
        mode=None,
        expected=expected,
        completed=completed,
        missing=tuple(x for x in expected if x not in completed),
        not_counted=(),
        unknown=(),
        decision=decision,
        reason=reason,
        trigger_id=None if latest is None else latest.get("trigger_id"),
        triggered_at=None if latest is None else latest.get("at"),
        trigger_status=None if latest is None else latest.get("status"),
        first_completion_at=None,
        gates=gates,
    )


_LINES = (
    ("block_below", "block <"),
    ("alert_below", "alert <"),
    ("block_above", "block >"),
    ("alert_above", "alert >"),
)


def gate_thresholds(thresholds: Mapping[str, Any] | None) -> str:
    """``block <80%, alert <90%`` (the lines a gate compares its value with)."""
    lines = thresholds or {}
    return ", ".join(f"{label}{float(lines[key]):g}%" for key, label in _LINES if lines.get(key) is not None)


def describe_gate(name: str, gate: Mapping[str, Any]) -> str:
    """One line per gate, as ``status``, ``reconcile --detailed`` and the status page show it:
    ``minutes_coverage: ALERT 85.0% (block <80%, alert <90%) — 51/60 rows meet ...``."""
    verdict = str(gate.get("verdict") or "?").upper()
    value = gate.get("value")
    shown = "" if value is None else f" {float(value):.1f}%"
    notes = [n for n in (gate_thresholds(gate.get("thresholds")), "advisory" if gate.get("advisory") else "") if n]
    extra = f" ({', '.join(notes)})" if notes else ""
    return f"{name}: {verdict}{shown}{extra} — {gate.get('reason')}"


@dataclass(frozen=True)
class Heartbeat:
    name: str
    last_run_at: datetime | None
    stale_after_minutes: int
    expected_by: datetime | None = None  # never ran, but not due yet (a fresh deploy or `local up`)

    def age_minutes(self, now: datetime) -> int | None:
        return None if self.last_run_at is None else int((now - self.last_run_at).total_seconds() // 60)

    def healthy(self, now: datetime) -> bool:
        age = self.age_minutes(now)
        if age is None:
            return self.expected_by is not None and now <= self.expected_by
        return age <= self.stale_after_minutes

    def describe(self, now: datetime, times: TimeView | None = None) -> str:
        age = self.age_minutes(now)
        if age is None and self.expected_by is not None and now <= self.expected_by:
            return f"{self.name} has not run yet (expected by {(times or UTC_VIEW).stamp(self.expected_by)})"
        if age is None:
            return f"{self.name} has never run"
        stale = "" if age <= self.stale_after_minutes else f" (STALE: > {self.stale_after_minutes} min)"
        return f"{self.name} last ran {age} min ago{stale}"

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "name": self.name,
            "last_run_at": iso(self.last_run_at),
            "age_minutes": self.age_minutes(now),
            "healthy": self.healthy(now),
            "summary": self.describe(now),
        }


@dataclass(frozen=True)
class StatusReport:
    game_date: date
    now: datetime
    phases: tuple[PhaseLine, ...]
    heartbeats: tuple[Heartbeat, ...]
    times: TimeView = UTC_VIEW  # how the text shows instants (``ctx.times``: ET, or UTC with --utc)
    findings: Mapping[str, int] | None = None  # active monitor findings by severity, when read

    @property
    def exit_code(self) -> int:
        """1 when a transition is blocked or a heartbeat is missing/stale, else 0."""
        problem = any(p.decision == "blocked" for p in self.phases) or not all(
            h.healthy(self.now) for h in self.heartbeats
        )
        return 1 if problem else 0

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "command": "status",
            "game_date": self.game_date.isoformat(),
            "now": self.now.isoformat(),
            "transitions": [p.as_dict() for p in self.phases],
            "heartbeats": [h.as_dict(self.now) for h in self.heartbeats],
        }

    def render(self) -> str:
        t = self.times
        rows = []
        for p in self.phases:
            rows.append(
                (
                    p.transition,
                    p.mode or "-",
                    f"{len([x for x in p.expected if x in p.completed])}/{len(p.expected)}",
                    state_label(p),
                    p.trigger_id or "-",
                    t.stamp(p.triggered_at) if isinstance(p.triggered_at, datetime) else "-",
                )
            )
        day = self.game_date.isoformat()
        out = [f"phasectl status — game date {day} ({t.header_now(self.now)})", ""]
        out.append(format_table(("TRANSITION", "MODE", "DONE", "STATE", "TRIGGER ID", "TRIGGERED AT"), rows))
        out.append("")
        for p in self.phases:
            out.append(f"{p.transition} (generation {p.generation}, status {p.status}):")
            out += _explain(p, t, self.game_date)
        out.append("")
        out += [f"heartbeat: {h.describe(self.now, t)}" for h in self.heartbeats]
        return "\n".join(out)


def _explain(p: PhaseLine, t: TimeView, day: date) -> list[str]:
    """A transition's lines: the snapshot at its trigger labelled as such, then what is recorded now."""
    triggered = p.decision == "triggered" and isinstance(p.triggered_at, datetime)
    out: list[str] = []
    completed, missing = ", ".join(p.completed) or "-", ", ".join(p.missing) or "-"
    if triggered:
        out.append(f"  at trigger ({t.clock(p.triggered_at, day=day)}, {state_label(p)}): {p.reason}")
        out.append(f"  now:       completed {completed}")
        out.append(f"             missing {missing}")
    else:
        out.append(f"  why:       {p.reason}")
        out.append(f"  completed: {completed}")
        out.append(f"  missing:   {missing}")
    if p.not_counted:
        out.append(f"  recorded, not counted: {', '.join(p.not_counted)}")
    if p.unknown:
        out.append(f"  unknown:   {', '.join(p.unknown)}")
    label = "gate (recorded at trigger)" if triggered else "gate"
    for name, gate in sorted(p.gates.items()):
        out.append(f"  {label} {describe_gate(name, gate)}")
    if p.missing_games:
        out.append(f"  missing games{' (at trigger)' if triggered else ''}: {', '.join(p.missing_games)}")
    if triggered and p.gates:
        out.append(f"  {_marks_line(p, t, day)}")
    return out


def _marks_line(p: PhaseLine, t: TimeView, day: date) -> str:
    """What a game mark after the trigger means for this generation (or that none was recorded)."""
    note = p.marks_after_trigger
    if not note:
        return "games marked since the trigger: none recorded by phasectl (the gate above is the trigger's)"
    when = t.clock(note.get("at"), day=day) if isinstance(note.get("at"), datetime) else "?"
    games = note.get("games")
    named = ", ".join(map(str, games)) if isinstance(games, list | tuple) and games else "?"
    head = f"games marked since the trigger ({when}: {named}): "
    if note.get("rerun"):
        return head + f"the verdict changed; run `phasectl trigger --transition {p.transition} --date {day} --force`"
    return head + "the same games count; nothing needs re-running"


# -- reconcile ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class GameLine:
    game_id: str  # canonical YYYYMMDD_AWAY_HOME
    nba_game_id: str
    matchup: str  # AWAY@HOME
    state: Literal["covered", "missing", "unavailable"]
    covered_by: str | None
    sources: tuple[str, ...]  # every source that has it, chain order

    def as_dict(self) -> dict[str, Any]:
        return {
            "game_id": self.game_id,
            "nba_game_id": self.nba_game_id,
            "matchup": self.matchup,
            "state": self.state,
            "covered_by": self.covered_by,
            "sources": list(self.sources),
        }


@dataclass(frozen=True)
class SourceLine:
    name: str
    processor: str
    games: int  # considered Final games this source has
    unmatched_ids: tuple[str, ...]  # raw ids that match no scheduled game of the date

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "processor": self.processor,
            "games": self.games,
            "unmatched_ids": list(self.unmatched_ids),
        }


@dataclass(frozen=True)
class ReconcileReport:
    game_date: date
    final_games: int
    considered: int
    covered: int
    coverage_pct: float
    status: Status
    summary: str
    missing: tuple[GameLine, ...]
    excluded: tuple[GameLine, ...]
    games: tuple[GameLine, ...]
    sources: tuple[SourceLine, ...]
    phases: tuple[PhaseLine, ...] = ()
    log_rows: tuple[Mapping[str, Any], ...] = ()
    retry_rows: tuple[Mapping[str, Any], ...] = ()

    @property
    def exit_code(self) -> int:
        return EXIT_CODES[self.status]

    def as_dict(self, detailed: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {
            "version": JSON_VERSION,
            "command": "reconcile",
            "game_date": self.game_date.isoformat(),
            "status": self.status,
            "summary": self.summary,
            "coverage": {
                "final_games": self.final_games,
                "considered": self.considered,
                "covered": self.covered,
                "pct": round(self.coverage_pct, 1),
                "missing": [g.as_dict() for g in self.missing],
                "excluded": [g.as_dict() for g in self.excluded],
            },
            "sources": [s.as_dict() for s in self.sources],
            "phases": [p.as_dict() for p in self.phases],
            "execution_log": [{k: iso(v) for k, v in r.items()} for r in self.log_rows],
            "retry_queue": [{k: iso(v) for k, v in r.items()} for r in self.retry_rows],
        }
        if detailed:
            out["games"] = [g.as_dict() for g in self.games]
        return out

    def render(self, detailed: bool = False, times: TimeView | None = None) -> str:
        t = times or UTC_VIEW
        out = [f"phasectl reconcile — game date {self.game_date.isoformat()}: {self.status.upper()}", self.summary, ""]
        chain = " → ".join(s.name for s in self.sources)
        out.append(f"boxscore sources (fallback chain {chain}):")
        out.append(
            format_table(
                ("SOURCE", "PROCESSOR", "GAMES", "UNMATCHED IDS"),
                [
                    (s.name, s.processor, f"{s.games}/{self.considered}", ", ".join(s.unmatched_ids) or "-")
                    for s in self.sources
                ],
            )
        )
        if detailed:
            out += ["", "games:"]
            out.append(
                format_table(
                    ("GAME", "NBA ID", "MATCHUP", "STATE", "COVERED BY", "SOURCES"),
                    [
                        (g.game_id, g.nba_game_id, g.matchup, g.state, g.covered_by or "-", ", ".join(g.sources) or "-")
                        for g in self.games
                    ],
                )
            )
        out += ["", "phases:"]
        logs_by_phase: dict[str, list[Mapping[str, Any]]] = {}
        for row in self.log_rows:
            logs_by_phase.setdefault(str(row.get("phase_name")), []).append(row)
        rows = []
        for p in self.phases:
            last = logs_by_phase.get(p.transition, [])
            log = last[-1] if last else None
            duration = log.get("duration_seconds") if log else None
            rows.append(
                (
                    p.transition,
                    f"{len([x for x in p.expected if x in p.completed])}/{len(p.expected)}",
                    p.decision,
                    p.trigger_status or "-",
                    "-" if log is None else f"{log.get('status')} at {_short(log.get('execution_timestamp'), t)}",
                    "-" if duration is None else f"{float(duration) / 60:.1f} min",
                )
            )
        out.append(format_table(("TRANSITION", "DONE", "STATE", "TRIGGER", "LAST LOG ROW", "DURATION"), rows))
        gated = [p for p in self.phases if p.gates]
        if detailed and gated:
            out += ["", "gates (last evaluation):"]
            out += [f"  {p.transition} {describe_gate(n, g)}" for p in gated for n, g in sorted(p.gates.items())]
        out += ["", f"retry queue ({len(self.retry_rows)} row(s)):"]
        if self.retry_rows:
            out.append(
                format_table(
                    ("ID", "PROCESSOR", "STATUS", "RETRIES", "FALLBACK FOR", "GAMES"),
                    [
                        (
                            str(r.get("id"))[:12],
                            r.get("processor_name"),
                            r.get("status"),
                            f"{r.get('retry_count')}/{r.get('max_retries')}",
                            r.get("fallback_for") or "-",
                            ", ".join(r.get("game_ids") or ()) or "-",
                        )
                        for r in self.retry_rows
                    ],
                )
            )
        return "\n".join(out)


def _short(value: Any, times: TimeView) -> str:
    if isinstance(value, datetime):
        return times.stamp(value, seconds=True)
    return str(value)


def build_reconcile(
    definition: PipelineDefinition,
    game_date: date,
    inputs: CoverageInputs,
    *,
    phases: Sequence[PhaseLine] = (),
    log_rows: Sequence[Mapping[str, Any]] = (),
    retry_rows: Sequence[Mapping[str, Any]] = (),
) -> ReconcileReport:
    """Scheduled Final games vs boxscores per source (ids normalised), with the gate's own verdict."""
    games_def = definition.games
    chain = [
        (name, g) for name, g in definition.gates.items() if isinstance(g, GameCoverageGate) and g.uses_boxscore_chain
    ]
    fallback = ("game_coverage", GameCoverageGate(kind="game_coverage_pct", block_below=50))
    gate_name, gate = chain[0] if chain else fallback
    verdict = coverage_verdict(gate_name, gate, games_def, inputs)
    converter = GameIdConverter.from_schedule(inputs.schedule)
    finals = [e for e in converter.games() if games_def.is_final(e.status)]
    final_ids = {e.date_teams_game_id for e in finals}
    unavailable = set(verdict.unavailable)
    missing_ids = set(verdict.missing_games)

    per_source: dict[str, set[str]] = {}
    unmatched: dict[str, list[str]] = {}
    for source, raw_ids in inputs.source_game_ids.items():
        have: set[str] = set()
        for raw in raw_ids:
            try:
                have.add(converter.canonical(raw))
            except InvalidGameIdError:
                unmatched.setdefault(source, []).append(raw)
        per_source[source] = have

    lines: list[GameLine] = []
    for entry in finals:
        gid = entry.date_teams_game_id
        sources = tuple(s for s in inputs.source_game_ids if gid in per_source.get(s, set()))
        state: Literal["covered", "missing", "unavailable"] = (
            "unavailable" if gid in unavailable else "missing" if gid in missing_ids else "covered"
        )
        lines.append(
            GameLine(
                gid,
                entry.nba_game_id,
                f"{entry.away}@{entry.home}",
                state,
                verdict.covered_by.get(gid),
                sources,
            )
        )
    considered = len(final_ids - unavailable)
    covered = considered - len(missing_ids)
    status, pct = coverage_status(covered, considered)
    missing = tuple(g for g in lines if g.state == "missing")
    excluded = tuple(g for g in lines if g.state == "unavailable")
    summary = f"{covered}/{considered} Final games covered ({pct:.1f} %)"
    if missing:
        summary += "; missing " + ", ".join(f"{g.game_id} ({g.matchup}, {g.nba_game_id})" for g in missing)
    postponed = {str(p["game_id"]): p for p in verdict.postponed}
    marked = [g for g in excluded if g.game_id not in postponed]
    if marked:
        summary += f"; {len(marked)} game(s) excluded as unavailable: " + ", ".join(
            f"{g.game_id} ({g.matchup})" for g in marked
        )
    for g in (g for g in excluded if g.game_id in postponed):
        p = postponed[g.game_id]
        moved = f", rescheduled to {p['new_date']}" if p.get("new_date") else ""
        summary += f"; {g.game_id} ({g.matchup}) postponed{moved}: {'; '.join(p.get('evidence') or ())}"
    if not finals:
        summary = "no Final games scheduled"
    source_lines = []
    for s in games_def.boxscore_sources:
        have = per_source.get(s.name, set())
        source_lines.append(
            SourceLine(s.name, s.processor, len(have & (final_ids - unavailable)), tuple(unmatched.get(s.name, ())))
        )
    return ReconcileReport(
        game_date=game_date,
        final_games=len(finals),
        considered=considered,
        covered=covered,
        coverage_pct=pct,
        status=status,
        summary=summary,
        missing=missing,
        excluded=excluded,
        games=tuple(lines),
        sources=tuple(source_lines),
        phases=tuple(phases),
        log_rows=tuple(log_rows),
        retry_rows=tuple(retry_rows),
    )
