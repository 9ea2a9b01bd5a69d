"""``game_postponed`` and ``schedule_anomaly``: what the coverage gates found in the schedule.

A postponed game (``shared.orchestration.postponement``) is not a missing game (lesson L29): the
gate leaves it out and auto-retry never chases it. The operator still has to know: the alert names
the game, the evidence and the new date, and the commands that confirm or undo it. A schedule
anomaly (one game Final with scores on two dates) is a data error, never a silent exclusion: it is
reported with its rows and the game still counts.

Read from the date documents of the transitions with a coverage gate over the monitor's window:
the gate results each attempt stored (``last_gate``); one batched read, no query.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import date
from typing import TYPE_CHECKING, Any

from shared.monitor.findings import Finding
from shared.orchestration.date_state import state_doc_id
from shared.pipeline.definition import GameCoverageGate, PipelineDefinition

if TYPE_CHECKING:
    from google.cloud import firestore


def coverage_transitions(definition: PipelineDefinition) -> list[str]:
    """The transitions with a game coverage gate (their date documents hold the schedule verdicts)."""
    gates = definition.gates
    return [t.name for t in definition.transitions if any(isinstance(gates[g], GameCoverageGate) for g in t.gates)]


def findings_from_gates(transition: str, game_date: date, gates: Mapping[str, Any]) -> list[Finding]:
    """The postponed games and schedule anomalies one date's stored gate results carry (pure)."""
    out: list[Finding] = []
    seen: set[str] = set()
    for result in gates.values():
        if not isinstance(result, Mapping):
            continue
        for p in result.get("postponed") or ():
            game = str(p.get("game_id"))
            if game in seen:
                continue
            seen.add(game)
            moved = f", rescheduled to {p['new_date']}" if p.get("new_date") else ""
            who = "an operator marked it" if p.get("by_operator") else "found in the schedule"
            out.append(
                Finding(
                    "game_postponed",
                    "WARNING",
                    f"{p.get('matchup')} ({p.get('nba_game_id')}) on {game_date} is postponed{moved} ({who}): "
                    f"{'; '.join(p.get('evidence') or ())}. It is not expected and never retried. Confirm: "
                    f"phasectl games postpone {game} --reason ...; undo if it was played: "
                    f"phasectl games restore {game} --reason ...",
                    transition,
                    game_date,
                    {"game_id": game, "evidence": list(p.get("evidence") or ()), "new_date": p.get("new_date")},
                    subject=game,
                )
            )
        for a in result.get("anomalies") or ():
            game = str(a.get("game_id"))
            out.append(
                Finding(
                    "schedule_anomaly",
                    "ERROR",
                    f"schedule anomaly on {game_date}: {a.get('problem')}",
                    transition,
                    game_date,
                    {"game_id": game, "rows": list(a.get("rows") or ())},
                    subject=game,
                )
            )
    return out


def postponed_findings(
    firestore_client: firestore.Client, definition: PipelineDefinition, window: Iterable[date]
) -> list[Finding]:
    """``game_postponed`` / ``schedule_anomaly`` for the window's dates (one batched read)."""
    col = firestore_client.collection(definition.pipeline.state_collection)
    keys = [(t, d) for t in coverage_transitions(definition) for d in window]
    if not keys:
        return []
    refs = {col.document(state_doc_id(t, d)).path: (t, d) for t, d in keys}
    out: list[Finding] = []
    seen: set[tuple[str, date]] = set()  # one transition's verdict per game and date is enough
    for snap in firestore_client.get_all([col.document(state_doc_id(t, d)) for t, d in keys]):
        if not snap.exists:
            continue
        transition, day = refs[snap.reference.path]
        gates = (snap.to_dict() or {}).get("last_gate") or {}
        for finding in findings_from_gates(transition, day, gates):
            key = (finding.subject or "", day)
            if finding.kind == "game_postponed" and key in seen:
                continue
            seen.add(key)
            out.append(finding)
    return out
