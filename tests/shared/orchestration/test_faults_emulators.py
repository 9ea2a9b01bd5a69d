"""Faults that used to publish a trigger more than once or lose work, reproduced on the emulators.

Each test is named ``test_fault_<what>`` and failed on the code before the fix (issue
[exactly-once]); concurrency uses separate processes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.contracts.messages import make_trigger_id
from shared.errors import TransientError
from shared.gcp import firestore_client
from shared.gcp_bigquery import bigquery_client
from shared.orchestration import execution_log as execution_log_module
from shared.orchestration.outbox_store import HANDOFF_PREFIX
from tests.support.rig import GAME_DATE, GAMES, PHASE2, Rig, date_teams, push_body

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
P23 = "phase2_to_phase3"


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


def all_but_last(rig: Rig, transition: str = P23) -> dict[str, Any]:
    """Record every phase-2 completion but the last; return the last one's event."""
    svc = rig.services[transition]
    for p in PHASE2[:-1]:
        assert svc.handle_event(rig.event(rig.completion(p, 2))).kind == "waiting"
    return rig.event(rig.completion(PHASE2[-1], 2), message_id="the-same-message")


_WORKER = """
import json, sys, time
from datetime import datetime
from shared.clock import FixedClock
from shared.orchestration.runtime import build_service
from tests.support.rig import isolated_definition
suffix, start_at, now = sys.argv[1], float(sys.argv[2]), sys.argv[3]
body = json.loads(sys.stdin.read())
service = build_service("phase2_to_phase3", definition=isolated_definition(suffix),
                        clock=FixedClock(datetime.fromisoformat(now)))
service.state.load(datetime.fromisoformat(now).date())  # warm the channel before the start line
time.sleep(max(0.0, start_at - time.time()))
print(json.dumps({"kind": service.handle_event(body).kind}))
"""


def test_fault_concurrent_redelivery_of_one_message_publishes_once(rig: Rig) -> None:
    """The same message delivered three times at once: the claim owner used to be the message id,
    so each delivery walked into the first one's live claim and published too."""
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES]})
    body = json.dumps(all_but_last(rig))
    start_at = time.time() + 4.0
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _WORKER, rig.suffix, str(start_at), rig.clock.now().isoformat()],
            cwd=REPO, env=rig.cloud.env() | {"PATH": "/usr/bin:/bin"}, stdin=subprocess.PIPE,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in range(3)
    ]
    kinds = []
    for proc in procs:
        out, err = proc.communicate(body, timeout=180)
        assert proc.returncode == 0, err[-3000:]
        kinds.append(json.loads(out.strip().splitlines()[-1])["kind"])
    assert kinds.count("triggered") == 1, kinds
    assert len(rig.pull_triggers(P23)) == 1


def test_fault_slow_gate_past_the_claim_ttl_publishes_once(rig: Rig) -> None:
    """A gate slower than the claim's TTL: another claimant (the monitor) takes the date over and
    triggers; the slow attempt must then neither publish nor overwrite the latched date."""
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES]})
    slow = rig.services[P23]
    assert slow.gates.queries is not None
    real_load = slow.gates.queries.coverage
    entered, release = threading.Event(), threading.Event()

    def stalled_load(gate: Any, day: Any, deadline: Any = None) -> Any:
        entered.set()
        assert release.wait(60)
        return real_load(gate, day, deadline)

    slow.gates.queries.coverage = stalled_load  # type: ignore[method-assign]
    event = all_but_last(rig)
    result: dict[str, Any] = {}
    worker = threading.Thread(target=lambda: result.update(outcome=slow.handle_event(event)))
    worker.start()
    assert entered.wait(60)
    rig.clock.advance(minutes=11)  # the slow attempt's claim (10 min) has expired
    from shared.orchestration.runtime import build_service

    monitor = build_service(P23, definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())
    assert monitor.evaluate(GAME_DATE, owner="monitor").kind == "triggered"
    release.set()
    worker.join(60)
    assert result["outcome"].kind == "claimed_elsewhere", result["outcome"]
    assert len(rig.pull_triggers(P23)) == 1
    state = slow.state.load(GAME_DATE)
    assert state.status == "triggered" and state.triggered_current is not None


def test_fault_a_late_release_never_overwrites_a_latched_date(rig: Rig) -> None:
    state = rig.services[P23].state
    now = rig.clock.now()
    ids = lambda gen: make_trigger_id(P23, GAME_DATE, gen)  # noqa: E731
    first = state.claim(GAME_DATE, "attempt-1", now, ids)
    later = now + timedelta(minutes=11)
    second = state.claim(GAME_DATE, "attempt-2", later, ids)
    assert (first.result, second.result) == ("claimed", "claimed") and second.token == (first.token or 0) + 1
    row = ("r1", {"row_id": "r1"})
    assert state.mark_triggered(GAME_DATE, "attempt-2", 1, later, {"trigger_id": ids(1)}, token=second.token,
                                gate=None, missing_games=[], log_row=row)
    # the first attempt's publish failed: its release must change nothing (L21)
    assert not state.release(GAME_DATE, "attempt-1", later, status="publish_failed", token=first.token)
    assert not state.mark_triggered(GAME_DATE, "attempt-1", 1, later, {"trigger_id": ids(1)}, token=first.token,
                                    gate=None, missing_games=[], log_row=("r2", {"row_id": "r2"}))
    after = state.load(GAME_DATE)
    assert after.status == "triggered" and after.triggered_current == {"trigger_id": ids(1)}


def test_fault_oversized_processor_names_are_quarantined_and_never_strand_a_claim(rig: Rig) -> None:
    """Two completions with ~600 KB unknown names used to overflow the latch's log row: the claim
    stayed, every redelivery and monitor pass published again."""
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES]})
    svc = rig.services[P23]
    for n in range(2):
        outcome = svc.handle_event(rig.event(rig.completion(f"x{n}" * 300_000, 2)))
        assert outcome.kind == "quarantined" and "at most 200 characters" in outcome.detail
    last = all_but_last(rig)
    assert svc.handle_event(last).kind == "triggered"
    assert svc.evaluate(GAME_DATE).kind == "already_triggered"
    assert len(rig.pull_triggers(P23)) == 1


def test_fault_a_latch_too_large_to_store_latches_minimally_and_frees_the_claim(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES]})
    real_build_row = execution_log_module.build_row

    def huge_row(**kwargs: Any) -> Any:
        kwargs["metadata"] = {**kwargs["metadata"], "ballast": "x" * 1_200_000}  # over Firestore's 1 MiB
        return real_build_row(**kwargs)

    monkeypatch.setattr(execution_log_module, "build_row", huge_row)  # imported where the latch needs it
    svc = rig.services[P23]
    last = all_but_last(rig)
    assert svc.handle_event(last).kind == "triggered"
    state = svc.state.load(GAME_DATE)
    assert state.claim is None and state.status == "triggered"
    assert "latch_error" in (state.triggered_current or {})
    assert svc.handle_event(last).kind == "already_triggered"
    assert len(rig.pull_triggers(P23)) == 1


def test_fault_a_crash_between_publish_and_latch_republishes_the_same_trigger_id(
    rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Documented at-least-once: the redelivery after the claim's TTL publishes again, with the same id."""
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES]})
    svc = rig.services[P23]
    event = all_but_last(rig)
    latch = svc.state.mark_triggered

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise TransientError("instance killed after publishing")

    monkeypatch.setattr(svc.state, "mark_triggered", crash)
    with pytest.raises(TransientError):
        svc.handle_event(event)
    monkeypatch.setattr(svc.state, "mark_triggered", latch)
    assert svc.handle_event(event).kind == "claimed_elsewhere"  # the crashed claim is still live
    rig.clock.advance(minutes=11)
    assert svc.handle_event(event).kind == "triggered"
    triggers = rig.pull_triggers(P23)
    assert [t.trigger_id for t in triggers] == [f"{P23}:{GAME_DATE}:g1"] * 2
    assert triggers[0] == triggers[1]  # the same content, triggered_at included (L27: an id names one content)


def test_fault_missing_games_survive_a_bigquery_blip(rig: Rig) -> None:
    """A partial trigger hands its missing games to auto-retry; BigQuery failing at that moment
    used to lose them for good (logged and swallowed)."""
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES[:4]]})
    svc = rig.services[P23]
    retry = rig.retry_service()
    bq = bigquery_client(rig.cloud.project)
    queue_table = retry.queue.table.strip("`")
    saved = bq.get_table(queue_table)
    bq.delete_table(queue_table)  # the queue is unreachable when the trigger goes out
    assert svc.handle_event(all_but_last(rig)).kind == "triggered"
    handoffs = svc.state.outbox.pending_handoffs()
    assert len(handoffs) == 1 and handoffs[0][0].startswith(HANDOFF_PREFIX)
    assert handoffs[0][1]["game_ids"] == [date_teams(GAMES[4])]
    assert retry.outbox is not None
    assert retry.outbox.deliver().handoffs_pending == 1  # the queue is still gone: it stays in the outbox
    from google.cloud import bigquery

    bq.create_table(bigquery.Table(queue_table, schema=saved.schema))  # BigQuery is back
    assert retry.outbox.deliver().handoffs == 1
    (row,) = retry.queue.rows()
    assert list(row.game_ids) == [date_teams(GAMES[4])] and row.status == "pending"
    assert svc.state.outbox.pending_handoffs() == []


def test_fault_rows_stopped_by_another_rows_rejection_stay_in_the_outbox(rig: Rig) -> None:
    """BigQuery rejects a whole batch for one bad row: the bad row is `invalid`, the rest `stopped`.
    Only the invalid one is quarantined; the stopped ones are delivered by the next flush."""
    svc = rig.services["phase3_to_phase4"]
    fs = firestore_client(rig.cloud.project)
    good = {"row_id": "good-1", "execution_timestamp": rig.clock.now().isoformat(), "phase_name": "phase3_to_phase4",
            "game_date": "2026-01-24", "status": "partial", "metadata": "{}"}
    bad = {**good, "row_id": "bad-1", "games_processed": "not a number"}
    outbox = rig.definition.pipeline.outbox_collection
    fs.collection(outbox).document("a-bad").set(bad)
    fs.collection(outbox).document("b-good").set({**good})
    retry = rig.retry_service()
    assert retry.outbox is not None
    writer = retry.outbox.log_writer
    writer.flush(svc.state.outbox)
    remaining = [i for i, _ in svc.state.outbox.pending_log_rows()]
    assert "a-bad" not in remaining  # quarantined
    assert [d["kind"] for d in rig.quarantined()] == ["phase_execution_log_row"]
    writer.flush(svc.state.outbox)
    assert [r["row_id"] for r in rig.log_rows(deliver=False)] == ["good-1"]
    assert svc.state.outbox.pending_log_rows() == []


@pytest.mark.parametrize("where", ["timestamp", "publishTime"])
def test_fault_a_timestamp_that_overflows_in_utc_is_quarantined_not_a_500(rig: Rig, where: str) -> None:
    svc = rig.services["phase3_to_phase4"]
    completion = rig.completion("player_game_summary", 3)
    body = push_body(completion, {}, "overflow-1", datetime(2026, 1, 25, 14, 0).astimezone())
    if where == "timestamp":
        completion["timestamp"] = "9999-12-31T23:30:00-01:00"
        body = push_body(completion, {}, "overflow-1")
        body["message"].pop("publishTime")
    else:
        body["message"]["publishTime"] = "9999-12-31T23:30:00-01:00"
    outcome = svc.handle_event(body)
    assert outcome.kind == "quarantined" and "out of range when converted to UTC" in outcome.detail
    assert len(rig.quarantined()) == 1


def test_fault_a_same_day_trigger_does_not_swallow_the_overnight_trigger(rig: Rig) -> None:
    """Phase 3→4 used to latch the date on its pre-game (same_day) trigger, so the post-game
    (overnight) completions answered already_triggered and phase 4 never ran on post-game data."""
    from datetime import UTC

    rig.seed_outputs()  # the rows the 3→4 gates read (pre-game: the context; post-game: all five)
    svc = rig.services["phase3_to_phase4"]
    rig.clock.set(datetime(2026, 1, 24, 15, 0, tzinfo=UTC))  # 10:00 ET on game day: same_day
    pre = rig.event(rig.completion("upcoming_player_game_context", 3))
    assert svc.handle_event(pre).kind == "triggered"
    assert svc.handle_event(pre).kind == "already_triggered"
    rig.clock.set(datetime(2026, 1, 25, 9, 0, tzinfo=UTC))  # 04:00 ET the morning after: overnight
    kinds = [
        svc.handle_event(rig.event(rig.completion(p, 3))).kind
        for p in ("player_game_summary", "team_offense_game_summary", "team_defense_game_summary",
                  "upcoming_team_game_context")
    ]
    assert kinds.count("triggered") == 1, kinds
    assert svc.evaluate(GAME_DATE).kind == "already_triggered"
    triggers = rig.pull_triggers("phase3_to_phase4")
    assert [(t.trigger_id, t.mode) for t in triggers] == [
        (f"phase3_to_phase4:{GAME_DATE}:g1:same_day", "same_day"),
        (f"phase3_to_phase4:{GAME_DATE}:g1:overnight", "overnight"),
    ]
    state = svc.state.load(GAME_DATE)
    assert state.triggered_slot("same_day") and state.triggered_slot("overnight")
    assert [r["status"] for r in rig.log_rows()] and len(rig.log_rows()) == 2
