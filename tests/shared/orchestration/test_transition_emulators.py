"""The transition protocol on the real emulators, named after the lessons."""

from __future__ import annotations

import pytest

from shared.localcloud.emulators import LocalCloud
from tests.support.rig import GAMES, Rig, date_teams

pytestmark = pytest.mark.integration

PHASE3 = [
    "player_game_summary",
    "team_offense_game_summary",
    "team_defense_game_summary",
    "upcoming_player_game_context",
    "upcoming_team_game_context",
]


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


def test_l03_duplicate_delivery_triggers_once(rig: Rig) -> None:
    svc = rig.services["phase3_to_phase4"]
    events = [rig.event(rig.completion(p, 3)) for p in PHASE3]
    outcomes = []
    for event in events:
        for _ in range(3):  # every message delivered three times
            outcomes.append(svc.handle_event(event))
    kinds = [o.kind for o in outcomes]
    assert kinds.count("triggered") == 1
    triggers = rig.pull_triggers("phase3_to_phase4")
    assert len(triggers) == 1
    assert triggers[0].trigger_id == "phase3_to_phase4:2026-01-24:g1"
    # critical done and 4/5 ≥ 60 % fires before the fifth arrives: a partial overnight trigger
    assert triggers[0].mode == "overnight" and triggers[0].status == "partial"
    assert sum(o.duplicate for o in outcomes) == 10


def test_l19_log_row_appears_for_a_trigger(rig: Rig) -> None:
    svc = rig.services["phase3_to_phase4"]
    for p in PHASE3:
        svc.handle_event(rig.event(rig.completion(p, 3)))
    rows = rig.log_rows()
    assert [(r["phase_name"], r["status"], r["trigger_id"]) for r in rows] == [
        ("phase3_to_phase4", "partial", "phase3_to_phase4:2026-01-24:g1")
    ]


def test_gate_passes_with_fallback_source(rig: Rig) -> None:
    ids = [date_teams(g) for g in GAMES]
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES[:3]], "espn": ids[3:]})
    svc = rig.services["phase2_to_phase3"]
    for p in ["nbac_schedule", "bdl_player_boxscores", "nbac_gamebook_player_stats"]:
        outcome = svc.handle_event(rig.event(rig.completion(p, 2)))
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.status == "complete" and trigger.missing_games == []
