"""``game_postponed`` and ``schedule_anomaly`` from the coverage gates' stored results (pure).

``findings_from_gates`` reads what ``GateResult.as_dict`` stored in a date document's ``last_gate``
(gate name → result). The monitor pass on the emulators: test_postponed_emulators.py.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.monitor.postponed import coverage_transitions, findings_from_gates
from shared.orchestration.postponement import Postponed, ScheduleAnomaly
from shared.pipeline.definition import load_definition

DAY = date(2026, 1, 24)
GSW = Postponed(
    "20260124_GSW_MIN",
    "0022500644",
    "GSW@MIN",
    (
        "schedule says Final with NULL scores",
        "the same game id is on the schedule again on 2026-01-25 (Scheduled)",
    ),
    date(2026, 1, 25),
)
MIA = Postponed("20260124_MIA_UTA", "0022500643", "MIA@UTA", ("marked postponed by an operator: flu",), None, True)
TWICE = ScheduleAnomaly(
    "20260124_BOS_CHI",
    "0022500647",
    "game 0022500647 is Final with scores on 2026-01-24 and on 2026-01-26: a schedule error, not a postponement "
    "(the game still counts)",
    (
        {"game_date": "2026-01-24", "game_status": "3", "game_status_text": "Final", "scored": True},
        {"game_date": "2026-01-26", "game_status": "3", "game_status_text": "Final", "scored": True},
    ),
)


def gate(*postponed: Postponed, anomalies: tuple[ScheduleAnomaly, ...] = (), verdict: str = "pass") -> dict[str, Any]:
    """A stored coverage result, as ``GateResult.as_dict`` writes it (the fields the check reads)."""
    return {
        "gate": "game_coverage",
        "kind": "game_coverage_pct",
        "verdict": verdict,
        "reason": "6/6 Final games covered, 1 postponed",
        "postponed": [p.as_doc() for p in postponed],
        "anomalies": [a.as_doc() for a in anomalies],
    }


def test_a_postponed_game_is_a_warning_naming_the_game_its_evidence_the_new_date_and_both_commands() -> None:
    (finding,) = findings_from_gates("phase2_to_phase3", DAY, {"game_coverage": gate(GSW)})

    assert (finding.kind, finding.severity, finding.transition, finding.game_date) == (
        "game_postponed",
        "WARNING",
        "phase2_to_phase3",
        DAY,
    )
    assert finding.subject == "20260124_GSW_MIN"
    assert finding.key == "game_postponed__phase2_to_phase3__2026-01-24__20260124_GSW_MIN"
    message = finding.message
    assert message.startswith("GSW@MIN (0022500644) on 2026-01-24 is postponed, rescheduled to 2026-01-25")
    assert "found in the schedule" in message
    assert "schedule says Final with NULL scores" in message
    assert "the same game id is on the schedule again on 2026-01-25 (Scheduled)" in message
    assert "never retried" in message
    assert "phasectl games postpone 20260124_GSW_MIN --reason" in message
    assert "phasectl games restore 20260124_GSW_MIN --reason" in message
    assert finding.details == {
        "game_id": "20260124_GSW_MIN",
        "evidence": list(GSW.evidence),
        "new_date": "2026-01-25",
    }


def test_an_operators_postponement_without_a_new_date_says_so() -> None:
    (finding,) = findings_from_gates("phase2_to_phase3", DAY, {"game_coverage": gate(MIA)})
    assert finding.message.startswith("MIA@UTA (0022500643) on 2026-01-24 is postponed (an operator marked it): ")
    assert "rescheduled" not in finding.message
    assert "marked postponed by an operator: flu" in finding.message
    assert finding.details["new_date"] is None


def test_one_finding_per_game_whatever_the_number_of_gates_reporting_it() -> None:
    gates = {
        "game_coverage": gate(GSW, MIA),
        "analytics_game_coverage": gate(GSW),
        "rows_present": {"verdict": "pass", "reason": "rows"},  # a gate without postponements
        "broken": "not a mapping",  # an unreadable entry is ignored, not a crash
    }
    findings = findings_from_gates("phase3_to_phase4", DAY, gates)
    assert sorted(f.subject or "" for f in findings) == ["20260124_GSW_MIN", "20260124_MIA_UTA"]
    assert len({f.key for f in findings}) == 2


def test_a_schedule_anomaly_is_an_error_with_its_rows_and_no_postponement() -> None:
    (finding,) = findings_from_gates("phase2_to_phase3", DAY, {"game_coverage": gate(anomalies=(TWICE,))})
    assert (finding.kind, finding.severity, finding.subject) == ("schedule_anomaly", "ERROR", "20260124_BOS_CHI")
    assert finding.message == f"schedule anomaly on 2026-01-24: {TWICE.problem}"
    assert finding.details == {"game_id": "20260124_BOS_CHI", "rows": list(TWICE.rows)}
    assert [r["game_date"] for r in finding.details["rows"]] == ["2026-01-24", "2026-01-26"]


def test_no_postponement_no_anomaly_no_finding() -> None:
    assert findings_from_gates("phase2_to_phase3", DAY, {"game_coverage": gate(verdict="alert")}) == []
    assert findings_from_gates("phase2_to_phase3", DAY, {}) == []


def test_the_transitions_read_are_those_with_a_game_coverage_gate() -> None:
    assert coverage_transitions(load_definition(None)) == ["phase2_to_phase3", "phase3_to_phase4"]
