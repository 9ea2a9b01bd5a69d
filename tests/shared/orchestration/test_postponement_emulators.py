"""Postponed is not missing (lesson L29), on the real emulators: local-bigquery, Firestore, Pub/Sub
through the official clients, the replaced system's real table schemas (``deploy/bigquery/upstream``).

The 2026-01-24 night (``tests/support/slate.py``): seven games scheduled, GSW@MIN ``0022500644``
postponed ~2 h before tip-off, left Final with NULL scores and listed again on 2026-01-25. The
coverage gate's one query (with its 'later' branch) finds it on the real engine; the 2→3
transition triggers complete (6/6) with the game on ``postponed_games`` and hands nothing to
auto-retry; the grading sensor does not wait for it; a game Final with scores on two dates is an
anomaly, not a postponement.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription, pull_now
from shared.contracts.messages import TimedTriggerMessage
from shared.gcp import subscriber_client
from shared.gcp_bigquery import bigquery_client
from shared.orchestration.gate_queries import BigQueryGateQueries, CoverageInputs
from shared.orchestration.gates import GateResult, coverage_verdict
from shared.orchestration.timed_runtime import build_timed_runtime
from shared.pipeline.definition import GameCoverageGate
from tests.support.rig import PHASE2, Rig
from tests.support.slate import GSW_MIN, GSW_MIN_ID, NEXT_DAY, NIGHT, PLAYED, SLATE

pytestmark = pytest.mark.integration

NBA = GSW_MIN[0]  # 0022500644
NULL_SCORES = {"home_team_score": None, "away_team_score": None, "winning_team_tricode": None}
# the row the NBA published for the new date: the same id, Scheduled, no scores yet
MOVED = {"game_status": 1, "game_status_text": "Scheduled", **NULL_SCORES}
MOVED_EVIDENCE = "the same game id is on the schedule again on 2026-01-25 (Scheduled)"
SENSOR = "grading_readiness"
NIGHT_OF = datetime(2026, 1, 25, 5, 30, tzinfo=UTC)  # 00:30 ET: the grading sensor's night of the 24th


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


def seed_night(
    rig: Rig, *, gsw_min: dict[str, Any] | None = None, covered: list[tuple[str, str, str]] = PLAYED
) -> None:
    """The slate on 2026-01-24, Final with scores except as ``gsw_min`` says; BDL holds ``covered``."""
    rig.seed_games(
        final=SLATE,
        sources={"bdl": [g[0] for g in covered]},
        schedule_columns={NBA: gsw_min} if gsw_min else None,
    )


def seed_gsw_min_on(rig: Rig, day: date, **columns: Any) -> None:
    """GSW@MIN's row on another date (the same NBA id)."""
    rig.seed_games(final=[GSW_MIN], game_date=day, schedule_columns={NBA: columns})


def the_gate(rig: Rig) -> tuple[CoverageInputs, GateResult]:
    """The 2→3 coverage gate's one query on local-bigquery, and its verdict."""
    gate = rig.definition.gates["game_coverage"]
    assert isinstance(gate, GameCoverageGate)
    games = rig.definition.games
    q = BigQueryGateQueries(bigquery_client(rig.cloud.project), rig.cloud.project, games)
    inputs = q.coverage(gate, NIGHT)
    return inputs, coverage_verdict("game_coverage", gate, games, inputs)


def assert_gsw_min_postponed(result: GateResult, evidence: list[str], new_date: str | None) -> None:
    assert result.verdict == "pass", result.reason
    assert (result.games_total, result.games_covered) == (6, 6)
    assert result.reason == "6/6 Final games covered, 1 postponed"
    assert result.missing_games == ()
    (doc,) = result.postponed
    assert (doc["game_id"], doc["nba_game_id"], doc["matchup"]) == (GSW_MIN_ID, NBA, "GSW@MIN")
    assert doc["evidence"] == evidence and doc["new_date"] == new_date
    assert result.anomalies == ()


def report_phase2(rig: Rig) -> Any:
    svc = rig.services["phase2_to_phase3"]
    outcome = None
    for p in PHASE2:
        outcome = svc.handle_event(rig.event(rig.completion(p, 2)))
    return outcome


# ----------------------------------------------------------------------------- (a) the gate's SQL


def test_the_gate_finds_gsw_at_min_postponed_by_null_scores(rig: Rig) -> None:
    seed_night(rig, gsw_min=NULL_SCORES)
    inputs, result = the_gate(rig)
    scored = {e.date_teams_game_id: e.scored for e in inputs.schedule}
    assert scored == {**{f"20260124_{a}_{h}": True for _, a, h in PLAYED}, GSW_MIN_ID: False}
    assert inputs.later == ()
    assert_gsw_min_postponed(result, ["schedule says Final with NULL scores"], None)


def test_the_gate_finds_gsw_at_min_on_the_next_date_within_the_window(rig: Rig) -> None:
    """Scores set on the 24th (only the 25th's row says it moved); rows outside the 14-day window and
    before the date are not read: the 'later' branch's bounded range on the real engine."""
    window = rig.definition.games.reschedule_lookahead_days
    assert window == 14
    seed_night(rig)
    seed_gsw_min_on(rig, NEXT_DAY, **MOVED)
    seed_gsw_min_on(rig, NIGHT - timedelta(days=1), **MOVED)  # before the date: not 'later'
    seed_gsw_min_on(rig, NIGHT + timedelta(days=window + 1), **MOVED)  # past the window
    inputs, result = the_gate(rig)
    assert [e.scored for e in inputs.schedule if e.nba_game_id == NBA] == [True]
    assert [(e.nba_game_id, e.game_date, e.status, e.status_text) for e in inputs.later] == [
        (NBA, NEXT_DAY, "1", "Scheduled")
    ]
    # scores on the 24th say it was played there: the 25th's row is a schedule anomaly, never an exclusion
    assert_listed_again(result, NEXT_DAY)


def assert_listed_again(result: Any, day: date) -> None:
    """GSW@MIN played (scores) and listed again on ``day``: an anomaly with the rows, the game still counted."""
    assert result.postponed == ()
    (anomaly,) = result.anomalies
    assert anomaly["game_id"] == GSW_MIN_ID and f"on the schedule again on {day} (Scheduled)" in anomaly["problem"]
    assert GSW_MIN_ID in result.missing_games


def test_the_last_day_of_the_window_is_read(rig: Rig) -> None:
    last = NIGHT + timedelta(days=rig.definition.games.reschedule_lookahead_days)
    seed_night(rig)
    seed_gsw_min_on(rig, last, **MOVED)
    inputs, result = the_gate(rig)
    assert [e.game_date for e in inputs.later] == [last]
    assert_listed_again(result, last)


def test_operator_marks_with_kind_reach_the_gate(rig: Rig) -> None:
    """``game_unavailable.kind``: 'postponed' postpones a game with no other signal, 'restored' makes
    a detected postponement count again (and go missing, so retried)."""
    seed_night(rig)
    rig.seed_games(final=[], marks={GSW_MIN_ID: "postponed"})
    inputs, result = the_gate(rig)
    assert dict(inputs.marks.postponed) == {GSW_MIN_ID: "test: postponed"} and inputs.unavailable_game_ids == ()
    assert_gsw_min_postponed(result, ["marked postponed by an operator: test: postponed"], None)

    other = Rig.create(rig.cloud, f"{rig.suffix}r")
    seed_night(other, gsw_min=NULL_SCORES)
    other.seed_games(final=[], marks={NBA: "restored"})  # a numeric id normalises
    _, restored = the_gate(other)
    assert restored.postponed == () and restored.missing_games == (GSW_MIN_ID,)


# ----------------------------------------------------------------------------- (b) the 2→3 transition


def test_l29_postponed_game_is_not_retried(rig: Rig) -> None:
    """The real night: GSW@MIN Final with NULL scores on the 24th, Scheduled on the 25th, in no
    boxscore source. The trigger is complete (6/6) and names it; nothing goes to auto-retry."""
    seed_night(rig, gsw_min=NULL_SCORES)
    seed_gsw_min_on(rig, NEXT_DAY, **MOVED)
    outcome = report_phase2(rig)
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.postponed_games == [GSW_MIN_ID]
    assert trigger.status == "complete" and trigger.missing_games == []
    assert "6/6 Final games covered, 1 postponed" in trigger.reason
    svc = rig.services["phase2_to_phase3"]
    state = svc.state.load(NIGHT)
    assert list(state.missing_games) == []
    assert svc.state.outbox.pending_handoffs() == []  # no missing-games hand-off in the outbox
    rows = rig.retry_rows()  # failed_processor_queue once auto-retry delivered the outbox
    assert [r for r in rows if GSW_MIN_ID in r.game_ids or NBA in r.game_ids] == []
    assert rows == []


# ----------------------------------------------------------------------------- (c) the grading sensor


@pytest.mark.parametrize(
    "gsw_min",
    [NULL_SCORES, MOVED],  # the real row (Final, NULL scores); a row left Scheduled (would block forever)
    ids=["final-null-scores", "left-scheduled"],
)
def test_grading_sensor_does_not_wait_for_the_postponed_game(cloud: LocalCloud, unique: str, gsw_min: Any) -> None:
    rig = Rig.create(cloud, unique, now=NIGHT_OF)
    rig.seed_outputs(tables=[])  # the phase 3-5 tables the sensor reads
    seed_night(rig, gsw_min=gsw_min)
    seed_gsw_min_on(rig, NEXT_DAY, **MOVED)
    # predictions (and actuals, for a definition that checks them) for the six games played
    rig.seed_outputs(tables=["player_prop_predictions", "player_game_summary"], games=PLAYED)
    trigger = rig.definition.timed_trigger(SENSOR)
    sub = ensure_subscription(
        subscriber_client(), cloud.project, trigger.topic, f"timed-{unique}", ack_deadline_seconds=10
    )
    runtime = build_timed_runtime(trigger.function, definition=rig.definition, clock=rig.clock, environ=cloud.env())
    outcome = runtime.handle_event(rig.event({"trigger": SENSOR, "slot": "readiness"}))
    assert outcome.kind == "triggered", outcome.detail
    messages = [TimedTriggerMessage.model_validate(json.loads(m)) for m in pull_now(subscriber_client(), sub)]
    (message,) = [m for m in messages if m.name == SENSOR]
    assert message.target_date == NIGHT
    assert message.postponed_games == [GSW_MIN_ID]
    (final,) = [c for c in message.conditions if c.gate == "all_final"]
    assert final.verdict == "pass" and final.reason == "6/6 games Final, 1 marked unavailable or postponed"


# ----------------------------------------------------------------------------- (d) a bad row


def test_a_game_final_with_scores_on_two_dates_is_an_anomaly_and_still_counts(rig: Rig) -> None:
    """One game cannot be played twice: the gate reports the rows, postpones nothing, counts the game."""
    seed_night(rig, covered=SLATE)
    seed_gsw_min_on(rig, NEXT_DAY)  # Final, with scores, on the 25th too
    _, result = the_gate(rig)
    assert result.postponed == ()
    assert (result.games_total, result.games_covered, result.verdict) == (7, 7, "pass")
    (anomaly,) = result.anomalies
    assert anomaly["game_id"] == GSW_MIN_ID and anomaly["nba_game_id"] == NBA
    assert [r["game_date"] for r in anomaly["rows"]] == ["2026-01-24", "2026-01-25"]
    assert "not a postponement" in anomaly["problem"]
    # through the transition: triggered complete, nothing postponed, the anomaly kept with the gate's result
    outcome = report_phase2(rig)
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.status == "complete" and trigger.postponed_games == [] and trigger.missing_games == []
    assert "7/7 Final games covered" in trigger.reason
    raw = json.dumps(rig.services["phase2_to_phase3"].state.load(NIGHT).raw, default=str)
    assert "not a postponement" in raw  # the gate's result as stored with the date (for the monitor)


def test_a_game_not_postponed_still_goes_to_auto_retry(rig: Rig) -> None:
    """The control: GSW@MIN Final with scores on the 24th only, no boxscore: missing, handed to auto-retry."""
    seed_night(rig)
    outcome = report_phase2(rig)
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.status == "partial" and trigger.missing_games == [GSW_MIN_ID] and trigger.postponed_games == []
    (row,) = rig.retry_rows()
    assert list(row.game_ids) == [GSW_MIN_ID]
