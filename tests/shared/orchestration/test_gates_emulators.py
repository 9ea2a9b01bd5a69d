"""[gates] The 3→4 and 4→5 data gates on the real emulators, over tables with the real column sets.

The phase 3, 4 and 5 tables are created from ``deploy/bigquery/upstream/`` (the replaced
system's DDL) and filled by ``deploy.local.outputs`` as its processors fill them. Each gate
blocks, alerts and passes where the replaced orchestrators did (phase3_to_phase4/main.py,
phase4_to_phase5/main.py at najicham/nba-stats-scraper@18f6ecfe; the thresholds are cited in
``pipeline.toml``), a block releases the claim and a re-check triggers once the data arrives,
and a gate error follows the [compat] rule.
"""

from __future__ import annotations

import threading
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.raw_tables import upstream_table
from shared.errors import TransientError
from shared.gcp_bigquery import bigquery_client
from shared.orchestration.transition import Outcome, TransitionService
from tests.support.rig import GAME_DATE, GAMES, Rig

pytestmark = pytest.mark.integration

P34, P45 = "phase3_to_phase4", "phase4_to_phase5"
# optional ones first: the date is ready (all done: complete) only with the last, a critical one
PHASE3 = ["team_offense_game_summary", "team_defense_game_summary", "upcoming_team_game_context",
          "player_game_summary", "upcoming_player_game_context"]
PHASE4 = ["team_defense_zone_analysis", "player_shot_zone_analysis", "player_composite_factors",
          "player_daily_cache", "ml_feature_store"]
OVERNIGHT_GATES = ["phase3_rows_present", "analytics_game_coverage", "minutes_coverage", "phase3_null_rates",
                   "analytics_service_health", "precompute_service_health"]


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique)
    rig.seed_games()  # five Final games on 2026-01-24 (the morning after: overnight mode)
    return rig


def report(rig: Rig, transition: str, phase: int, processors: list[str]) -> Outcome:
    svc = rig.services[transition]
    outcome = None
    for p in processors:
        outcome = svc.handle_event(rig.event(rig.completion(p, phase)))
    assert outcome is not None
    return outcome


def gates_of(outcome_or_trigger: Any) -> dict[str, Any]:
    return {g.gate: g for g in outcome_or_trigger.gates}


def log_rows(rig: Rig, transition: str) -> list[dict[str, Any]]:
    return [r for r in rig.log_rows() if r["phase_name"] == transition]


# ----------------------------------------------------------------------------- 3→4 passes


def test_phase3_complete_data_passes_every_gate_and_the_trigger_carries_them(rig: Rig) -> None:
    rig.seed_outputs()
    outcome = report(rig, P34, 3, PHASE3)
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers(P34)
    assert trigger.status == "complete"
    gates = gates_of(trigger)
    assert list(gates) == OVERNIGHT_GATES  # definition order; same_day's context gate does not apply
    assert gates["phase3_rows_present"].value == 100.0
    assert gates["analytics_game_coverage"].value == 100.0 and "5/5 Final games covered" in gates[
        "analytics_game_coverage"].reason
    assert gates["minutes_coverage"].value == 100.0
    assert gates["minutes_coverage"].thresholds == {"block_below": 80.0, "alert_below": 90.0}
    assert gates["phase3_null_rates"].value == 0.0
    assert gates["analytics_service_health"].reason == "ANALYTICS_PROCESSOR_URL not set; not checked"
    assert all(g.verdict == "pass" for g in gates.values())
    (row,) = [r for r in log_rows(rig, P34) if r["status"] == "complete"]
    import json

    logged = json.loads(row["metadata"]) if isinstance(row["metadata"], str) else row["metadata"]
    assert logged["gates"]["minutes_coverage"]["value"] == 100.0
    assert logged["gates"]["phase3_rows_present"]["details"]["row_counts"][rig.gate_table("player_game_summary")] == 50


# ----------------------------------------------------------------------------- 3→4 alerts and blocks


def test_minutes_coverage_85_percent_triggers_partial_with_an_alert(rig: Rig, captured_log: Any) -> None:
    rig.seed_outputs(players_per_game=20, dnp_share=0.15)  # 15 of 100 players with 0 minutes
    outcome = report(rig, P34, 3, PHASE3)
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers(P34)
    minutes = gates_of(trigger)["minutes_coverage"]
    assert (minutes.verdict, minutes.value) == ("alert", 85.0)
    assert "85/100 rows meet the condition: 85.0%, below the alert line 90%" in minutes.reason
    assert trigger.status == "partial"
    assert "gate minutes_coverage" in trigger.reason
    assert "GATE ALERT phase3_to_phase4" in captured_log.getvalue()


def test_minutes_coverage_below_80_percent_blocks_until_the_minutes_arrive(rig: Rig) -> None:
    rig.seed_outputs(players_per_game=20, dnp_share=0.25)
    outcome = report(rig, P34, 3, PHASE3)
    assert outcome.kind == "blocked" and "75.0%, below the block line 80%" in outcome.detail
    assert rig.pull_triggers(P34) == []
    svc = rig.services[P34]
    state = svc.state.load(GAME_DATE)
    assert state.status == "blocked" and state.claim is None and state.triggered_current is None
    assert state.last_gate is not None and state.last_gate["minutes_coverage"]["verdict"] == "blocked"
    assert [r["status"] for r in log_rows(rig, P34)] == ["blocked"]
    # the processor re-runs and writes the minutes: the next re-check (the monitor's) triggers, once
    for table in ("player_game_summary",):
        _delete(rig, table)
    rig.seed_outputs(tables=["player_game_summary"], players_per_game=20)
    assert svc.evaluate(GAME_DATE, owner="monitor").kind == "triggered"
    assert svc.evaluate(GAME_DATE, owner="monitor").kind == "already_triggered"
    (trigger,) = rig.pull_triggers(P34)
    assert gates_of(trigger)["minutes_coverage"].verdict == "pass"


def test_an_empty_phase3_table_blocks_and_names_it(rig: Rig) -> None:
    rig.seed_outputs(tables=[t for t in PHASE3 if t != "team_defense_game_summary"])  # processor names = tables
    outcome = report(rig, P34, 3, PHASE3)
    assert outcome.kind == "blocked"
    assert f"none in {rig.gate_table('team_defense_game_summary')}" in outcome.detail
    assert "4/5 tables have rows" in outcome.detail
    assert rig.pull_triggers(P34) == []


def test_analytics_for_3_of_5_games_blocks_below_80_percent(rig: Rig) -> None:
    rig.seed_outputs(games=GAMES[:3])
    outcome = report(rig, P34, 3, PHASE3)
    assert outcome.kind == "blocked"
    assert "3/5 Final games covered (60.0%, below the block line 80%)" in outcome.detail
    assert "20260124_MIA_CHI" in outcome.detail and "20260124_PHX_DAL" in outcome.detail


def test_null_points_in_most_rows_block(rig: Rig) -> None:
    """Of the quality checker's critical fields only minutes_played and points are NULLABLE in the
    real DDL; the others are REQUIRED (BigQuery itself refuses a NULL there)."""
    rig.seed_outputs(tables=[t for t in PHASE3 if t != "player_game_summary"])
    table = upstream_table("player_game_summary")
    rows = [
        table.row(nba, GAME_DATE, away, home, player_lookup=f"p{n}", minutes_played=30, points=None if n < 3 else 12)
        for nba, away, home in GAMES
        for n in range(5)
    ]  # 15 of 25 rows without points: 60 %
    assert bigquery_client(rig.cloud.project).insert_rows_json(
        f"{rig.cloud.project}.{rig.gate_table('player_game_summary')}", rows) == []
    outcome = report(rig, P34, 3, PHASE3)
    assert outcome.kind == "blocked"
    assert "player_game_summary.points (15/25 rows): 60.0%, above the block line 50%" in outcome.detail


def test_same_day_mode_checks_only_the_context_table(cloud: LocalCloud, unique: str) -> None:
    from datetime import UTC, datetime

    rig = Rig.create(cloud, unique, now=datetime(2026, 1, 24, 17, 0, tzinfo=UTC))  # noon ET on game day
    rig.seed_outputs(tables=["upcoming_player_game_context"])
    outcome = report(rig, P34, 3, ["upcoming_player_game_context"])
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers(P34)
    assert trigger.mode == "same_day"
    assert list(gates_of(trigger)) == ["analytics_service_health", "precompute_service_health",
                                       "phase3_context_rows_present"]


# ----------------------------------------------------------------------------- 4→5


def test_phase4_one_non_critical_table_empty_alerts_and_triggers(rig: Rig) -> None:
    rig.seed_outputs(tables=[t for t in rig.definition.gate_tables() if not t.endswith("team_defense_zone_analysis")])
    outcome = report(rig, P45, 4, PHASE4)
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers(P45)
    rows = gates_of(trigger)["phase4_rows_present"]
    assert (rows.verdict, rows.value) == ("alert", 80.0)
    assert trigger.status == "partial"
    assert gates_of(trigger)["feature_store_coverage"].verdict == "pass"


def test_phase4_empty_feature_store_blocks_even_at_4_of_5(rig: Rig) -> None:
    rig.seed_outputs(tables=[t for t in rig.definition.gate_tables() if not t.endswith("ml_feature_store_v2")])
    outcome = report(rig, P45, 4, PHASE4)
    assert outcome.kind == "blocked"
    assert f"required {rig.gate_table('ml_feature_store_v2')} empty" in outcome.detail


def test_feature_store_with_half_the_roster_clean_blocks_below_60_percent(rig: Rig) -> None:
    rig.seed_outputs(tables=[t for t in rig.definition.gate_tables() if not t.endswith("ml_feature_store_v2")])
    table = upstream_table("ml_feature_store_v2")
    rows = []
    for nba, away, home in GAMES:
        for i, team in enumerate((home, away)):
            for n in range(5):  # the roster: 5 players per team, as outputs.py writes the context table
                defaults = 0 if n < 2 or (n == 2 and i == 0) else 3  # 5 of 10 clean per game
                rows.append(table.row(nba, GAME_DATE, away, home, player_lookup=f"{team.lower()}player{n:02d}",
                                      required_default_count=defaults, default_feature_count=defaults))
    assert bigquery_client(rig.cloud.project).insert_rows_json(
        f"{rig.cloud.project}.{rig.gate_table('ml_feature_store_v2')}", rows) == []
    outcome = report(rig, P45, 4, PHASE4)
    assert outcome.kind == "blocked"
    assert "25/50 distinct player_lookup meet the condition: 50.0%, below the block line 60%" in outcome.detail


# ----------------------------------------------------------------------------- errors and races


def test_a_gate_naming_a_missing_column_is_a_gate_error_acked_and_alerted(cloud: LocalCloud, unique: str) -> None:
    def wrong_column(data: dict[str, Any]) -> None:
        data["gates"]["minutes_coverage"]["where"][0]["column"] = "minutes_playd"

    rig = Rig.create(cloud, unique, mutate=wrong_column)
    rig.seed_games()
    rig.seed_outputs()
    outcome = report(rig, P34, 3, PHASE3)
    assert outcome.kind == "gate_error" and outcome.extra["gate"] == "minutes_coverage"
    assert "minutes_playd" in outcome.detail
    assert rig.pull_triggers(P34) == []
    assert rig.services[P34].state.load(GAME_DATE).status == "gate_error"


def test_an_unreachable_bigquery_redelivers_and_a_later_delivery_triggers_once(rig: Rig) -> None:
    rig.seed_outputs()
    svc = rig.services[P34]
    for p in PHASE3[:-1]:
        svc.handle_event(rig.event(rig.completion(p, 3)))
    assert svc.gates.queries is not None
    working = svc.gates.queries.client
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    dead = bigquery.Client(project=rig.cloud.project, credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                           client_options=ClientOptions(api_endpoint="http://127.0.0.1:9"))
    svc.gates.queries.client = dead
    deadline = svc.gates.queries.deadline_seconds
    svc.gates.queries.deadline_seconds = 3  # the dead endpoint only: the redelivery gets the real deadline back
    last = rig.event(rig.completion(PHASE3[-1], 3))
    with pytest.raises(TransientError):
        svc.handle_event(last)
    state = svc.state.load(GAME_DATE)
    assert state.claim is None and state.triggered_current is None  # released: retriggerable
    svc.gates.queries.client, svc.gates.queries.deadline_seconds = working, deadline
    assert svc.handle_event(last).kind == "triggered"  # Pub/Sub redelivers
    assert len(rig.pull_triggers(P34)) == 1


def test_concurrent_evaluations_with_gates_give_one_trigger(rig: Rig) -> None:
    rig.seed_outputs()
    svc = rig.services[P34]
    report(rig, P34, 3, PHASE3[:-1])
    from shared.orchestration.runtime import build_service

    others: list[TransitionService] = [
        build_service(P34, definition=rig.definition, clock=rig.clock, environ=rig.cloud.env()) for _ in range(3)
    ]
    final = rig.event(rig.completion(PHASE3[-1], 3))
    kinds: list[str] = []
    barrier = threading.Barrier(4)

    def go(service: TransitionService) -> None:
        barrier.wait(timeout=30)
        kinds.append(service.handle_event(final).kind)

    threads = [threading.Thread(target=go, args=(s,)) for s in [svc, *others]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert kinds.count("triggered") == 1, kinds
    assert len(rig.pull_triggers(P34)) == 1


def _delete(rig: Rig, table: str) -> None:
    ref = rig.gate_table(table)
    bigquery_client(rig.cloud.project).query(
        f"DELETE FROM `{rig.cloud.project}.{ref}` WHERE game_date = '2026-01-24'"
    ).result()
