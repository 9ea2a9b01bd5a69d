"""The transition protocol on the real emulators, named after the lessons."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime
from pathlib import Path

import pytest
from google.api_core.client_options import ClientOptions
from google.auth.credentials import AnonymousCredentials
from google.cloud import bigquery

from deploy.local.emulators import LocalCloud, free_port
from deploy.local.topology import ensure_subscription
from shared.deferred import Deferred
from shared.errors import TransientError
from shared.gcp import publisher_client, subscriber_client
from shared.orchestration.outbox import ExecutionLogWriter
from tests.support.rig import GAME_DATE, GAMES, PHASE2, Rig, date_teams


def bigquery_client_for(endpoint: str, project: str) -> bigquery.Client:
    return bigquery.Client(project=project, credentials=AnonymousCredentials(),
                           client_options=ClientOptions(api_endpoint=endpoint))

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
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
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
    assert triggers[0].trigger_id == "phase3_to_phase4:2026-01-24:g1:overnight"
    # critical done and 4/5 ≥ 60 % fires before the fifth arrives: a partial overnight trigger
    assert triggers[0].mode == "overnight" and triggers[0].status == "partial"
    assert sum(o.duplicate for o in outcomes) == 10


def test_l19_log_row_appears_for_a_trigger(rig: Rig) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    svc = rig.services["phase3_to_phase4"]
    for p in PHASE3:
        svc.handle_event(rig.event(rig.completion(p, 3)))
    rows = rig.log_rows()
    assert [(r["phase_name"], r["status"], r["trigger_id"]) for r in rows] == [
        ("phase3_to_phase4", "partial", "phase3_to_phase4:2026-01-24:g1:overnight")
    ]


def test_gate_passes_with_fallback_source(rig: Rig) -> None:
    ids = [date_teams(g) for g in GAMES]
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES[:3]], "espn": ids[3:]})
    svc = rig.services["phase2_to_phase3"]
    for p in PHASE2:
        outcome = svc.handle_event(rig.event(rig.completion(p, 2)))
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.status == "complete" and trigger.missing_games == []


PHASE4 = ["team_defense_zone_analysis", "player_shot_zone_analysis", "player_composite_factors",
          "player_daily_cache", "ml_feature_store_v2"]
REPO = Path(__file__).resolve().parents[3]

_WORKER = """
import json, sys
from datetime import datetime
from shared.clock import FixedClock
from shared.orchestration.runtime import build_service
from tests.support.rig import isolated_definition
suffix, transition, start_at, now = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
body = json.loads(sys.stdin.read())
service = build_service(transition, definition=isolated_definition(suffix),
                        clock=FixedClock(datetime.fromisoformat(now)))
service.state.load(datetime.fromisoformat(now).date())  # warm the channel before the start line
import time
from shared.errors import TransientError
time.sleep(max(0.0, start_at - time.time()))
for delivery in range(1, 6):  # a transient error (e.g. transaction contention) raises: Pub/Sub redelivers
    try:
        kind = service.handle_event(body).kind
        break
    except TransientError:
        if delivery == 5:
            raise
        time.sleep(0.5 * delivery)
print(json.dumps({"kind": kind}))
"""


def test_l04_concurrent_completions_from_separate_processes_trigger_once(rig: Rig) -> None:
    """All five phase-4 processors complete at the same instant, each in its own process."""
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    start_at = time.time() + 4.0
    procs = []
    for name in PHASE4:
        body = json.dumps(rig.event(rig.completion(name, 4)))
        proc = subprocess.Popen(
            [sys.executable, "-c", _WORKER, rig.suffix, "phase4_to_phase5", str(start_at),
             rig.clock.now().isoformat()],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO,
            env={**os.environ, **rig.cloud.env(), "PYTHONPATH": str(REPO)},
        )
        assert proc.stdin is not None
        proc.stdin.write(body)
        proc.stdin.close()
        procs.append(proc)
    kinds = []
    for proc in procs:
        assert proc.wait(timeout=120) == 0, proc.stderr.read() if proc.stderr else ""
        assert proc.stdout is not None
        kinds.append(json.loads(proc.stdout.read().strip().splitlines()[-1])["kind"])
    assert kinds.count("triggered") == 1, kinds
    triggers = rig.pull_triggers("phase4_to_phase5")
    assert [t.trigger_id for t in triggers] == ["phase4_to_phase5:2026-01-24:g1"]
    assert triggers[0].status == "complete"


def test_l01_publish_failure_leaves_no_latch_and_redelivery_triggers_once(rig: Rig) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    svc = rig.services["phase3_to_phase4"]
    publisher = publisher_client()
    target = publisher.topic_path(rig.cloud.project, rig.definition.target_topic(svc.transition))
    subscriber = subscriber_client()
    sub = rig.trigger_subscriptions["phase3_to_phase4"]
    subscriber.delete_subscription(subscription=sub)
    publisher.delete_topic(topic=target)  # the trigger topic is gone: publish fails for real
    events = [rig.event(rig.completion(p, 3)) for p in PHASE3[:4]]
    for event in events[:3]:
        assert svc.handle_event(event).kind == "waiting"
    with pytest.raises(TransientError, match="publishing trigger phase3_to_phase4:2026-01-24:g1:overnight"):
        svc.handle_event(events[3])
    state = svc.state.load(GAME_DATE)
    assert state.triggered_current is None and state.claim is None  # no latch (L01)
    publisher.create_topic(name=target)
    ensure_subscription(subscriber, rig.cloud.project, rig.definition.target_topic(svc.transition),
                        sub.rsplit("/", 1)[1])
    outcome = svc.handle_event(events[3])  # Pub/Sub redelivers the same message
    assert outcome.kind == "triggered" and outcome.duplicate
    assert svc.handle_event(events[3]).kind == "already_triggered"
    assert len(rig.pull_triggers("phase3_to_phase4")) == 1


def test_l02_gate_block_leaves_no_latch_and_triggers_after_data_arrives(rig: Rig) -> None:
    """BDL has 2 of 5 games, nothing else: 60 % of games have issues → breaker blocks."""
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES[:2]]})
    svc = rig.services["phase2_to_phase3"]
    outcomes = [svc.handle_event(rig.event(rig.completion(p, 2))) for p in PHASE2]
    assert outcomes[-1].kind == "blocked"
    assert "circuit breaker" in outcomes[-1].detail
    state = svc.state.load(GAME_DATE)
    assert state.triggered_current is None and state.claim is None and state.status == "blocked"
    assert sorted(state.missing_games) == sorted(date_teams(g) for g in GAMES[2:])  # handed on for retry
    assert rig.pull_triggers("phase2_to_phase3") == []
    # a redelivery (or a monitor pass) re-checks the date: the same block is counted, not logged again
    rig.clock.advance(minutes=10)
    assert svc.handle_event(rig.event(rig.completion(PHASE2[-1], 2))).kind == "blocked"
    assert svc.state.load(GAME_DATE).raw.get("blocked_count") == 2
    # the fallback source arrives (ESPN, date-teams ids); its completion re-evaluates the date
    rig.seed_games(final=[], sources={"espn": [date_teams(g) for g in GAMES[2:]]})
    rig.clock.advance(minutes=30)
    outcome = svc.handle_event(rig.event(rig.completion("espn_boxscores", 2)))
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.status == "complete" and trigger.missing_games == []
    statuses = [r["status"] for r in rig.log_rows()]
    assert statuses == ["blocked", "complete"]  # one row for the block, however often it was re-checked


def test_minority_of_missing_games_triggers_partial_with_games_listed(rig: Rig) -> None:
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES[:4]]}, unavailable=[])
    svc = rig.services["phase2_to_phase3"]
    for p in PHASE2:
        outcome = svc.handle_event(rig.event(rig.completion(p, 2)))
    assert outcome.kind == "triggered"
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.status == "partial" and trigger.missing_games == [date_teams(GAMES[4])]


def test_l13_unavailable_games_do_not_block(rig: Rig) -> None:
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES[:2]]}, unavailable=[g[0] for g in GAMES[2:]])
    svc = rig.services["phase2_to_phase3"]
    for p in PHASE2:
        outcome = svc.handle_event(rig.event(rig.completion(p, 2)))
    assert outcome.kind == "triggered" and outcome.extra["status"] == "complete"


def test_l17_gate_query_error_is_transient_not_fail_open(rig: Rig) -> None:
    """BigQuery unreachable while the gate runs: raise (Pub/Sub redelivers), never trigger."""
    svc = rig.services["phase2_to_phase3"]
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES]})
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: BigQuery is down
    assert svc.gates.queries is not None
    svc.gates.queries.client = Deferred(lambda: bigquery_client_for(dead, rig.cloud.project))
    svc.gates.queries.deadline_seconds = 3.0
    for p in PHASE2[:-1]:
        svc.handle_event(rig.event(rig.completion(p, 2)))
    with pytest.raises(TransientError, match="gate 'game_coverage' could not be evaluated"):
        svc.handle_event(rig.event(rig.completion(PHASE2[-1], 2)))
    state = svc.state.load(GAME_DATE)
    assert state.triggered_current is None and state.claim is None
    assert rig.pull_triggers("phase2_to_phase3") == []


def test_l19_log_outage_never_blocks_the_trigger_and_the_row_arrives_later(rig: Rig) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    svc = rig.services["phase3_to_phase4"]
    retry = rig.retry_service()  # auto-retry delivers the outbox; here, while BigQuery is down
    assert retry.outbox is not None
    good_writer = retry.outbox.log_writer
    dead = f"http://127.0.0.1:{free_port()}"  # nothing listens: BigQuery is down
    retry.outbox.log_writer = ExecutionLogWriter(
        Deferred(lambda: bigquery_client_for(dead, rig.cloud.project)), good_writer.table, timeout=2.0)
    for p in PHASE3:
        outcome = svc.handle_event(rig.event(rig.completion(p, 3)))
        if outcome.kind == "triggered":
            break
    assert outcome.kind == "triggered"
    assert len(rig.pull_triggers("phase3_to_phase4")) == 1
    report = retry.outbox.deliver()  # the nudge arrives while BigQuery is down
    assert (report.log_rows, report.log_rows_pending) == (0, 1) and report.error
    assert rig.log_rows(deliver=False) == []
    assert len(svc.state.outbox.pending_log_rows()) == 1  # kept in the outbox, not lost
    result = good_writer.flush(svc.state.outbox)  # BigQuery is back: the next flush delivers it
    assert (result.delivered, result.pending) == (1, 0)
    assert [r["trigger_id"] for r in rig.log_rows()] == ["phase3_to_phase4:2026-01-24:g1:overnight"]
    assert svc.state.outbox.pending_log_rows() == []


def test_deadline_tier_fires_on_reevaluation_without_a_new_message(rig: Rig) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    svc = rig.services["phase4_to_phase5"]
    for p in PHASE4[:3]:
        assert svc.handle_event(rig.event(rig.completion(p, 4))).kind == "waiting"
    waiting = svc.evaluate(GAME_DATE)
    assert waiting.kind == "waiting" and "deadline tier 2 in 2 h 0 min" in waiting.detail
    rig.clock.advance(minutes=121)
    outcome = svc.evaluate(GAME_DATE)  # what the monitor's sweep calls; no message arrived
    assert outcome.kind == "triggered" and outcome.extra["status"] == "deadline_exceeded"
    (row,) = rig.log_rows()
    assert row["status"] == "deadline_exceeded" and row["duration_seconds"] == pytest.approx(121 * 60)


def test_phase6_trigger_carries_target_date_and_export_types(rig: Rig) -> None:
    svc = rig.services["phase5_to_phase6"]
    low = rig.completion("prediction_coordinator", 5, completion_pct=60.0, record_count=300)
    assert svc.handle_event(rig.event(low)).kind == "waiting"
    high = rig.completion("prediction_coordinator", 5, completion_pct=92.5, record_count=420)
    assert svc.handle_event(rig.event(high)).kind == "triggered"
    (trigger,) = rig.pull_triggers("phase5_to_phase6")
    assert trigger.target_date == GAME_DATE
    assert trigger.export_types == list(rig.definition.transition("phase5_to_phase6").completion.export_types)


def test_l08_unknown_processor_is_recorded_but_never_counts(rig: Rig) -> None:
    svc = rig.services["phase3_to_phase4"]
    outcome = svc.handle_event(rig.event(rig.completion("PlayerGameSummaryExperimental", 3)))
    assert outcome.kind == "waiting" and outcome.unknown_processor
    state = svc.state.load(GAME_DATE)
    assert [c.raw_name for c in state.completions] == ["PlayerGameSummaryExperimental"]
    assert state.completions[0].processor is None


@pytest.mark.parametrize(
    ("now", "mode"),
    [
        (datetime(2026, 1, 25, 4, 30, tzinfo=UTC), "same_day"),  # 23:30 ET on the 24th
        (datetime(2026, 1, 25, 5, 30, tzinfo=UTC), "overnight"),  # 00:30 ET on the 25th
        (datetime(2026, 1, 23, 18, 0, tzinfo=UTC), "tomorrow"),
    ],
)
def test_l14_mode_follows_new_york_date_edges(cloud: LocalCloud, unique: str, now: datetime, mode: str) -> None:
    rig = Rig.create(cloud, unique, now=now)
    rig.seed_outputs(tables=["upcoming_player_game_context"])  # what the pre-game gate reads
    svc = rig.services["phase3_to_phase4"]
    outcome = svc.handle_event(rig.event(rig.completion("upcoming_player_game_context", 3)))
    if mode == "overnight":
        assert outcome.kind == "waiting" and "[mode overnight]" in outcome.detail
    else:
        assert outcome.kind == "triggered"
        (trigger,) = rig.pull_triggers("phase3_to_phase4")
        assert trigger.mode == mode
