"""Faults of issue [hardening] in the trigger protocol, reproduced on the emulators (each failed first).

- One trigger_id, two bodies (lesson L27: an id must name one content): a publish that reaches the
  server while the client raises used to release the claim as ``publish_failed``; the next
  completion re-evaluated the date and published different messages under the same id.
- Claims livelock under simultaneous readiness (lesson L28: a hot document is not a lock service):
  N deliveries that each see the date ready used to open N read-modify-write transactions on the
  date document; on the emulator they failed after ~72 s ("Failed to commit transaction in 12
  attempts") and were redelivered.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.contracts.messages import PhaseTrigger
from shared.errors import TransientError
from shared.gcp import subscriber_client
from shared.orchestration.engine import CompletionRecord
from shared.orchestration.publisher import TriggerPublisher
from tests.support.rig import GAME_DATE, GAMES, PHASE2, Rig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
P23 = "phase2_to_phase3"


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


def raw_messages(rig: Rig, transition: str) -> list[tuple[str, bytes]]:
    """Every message on the transition's trigger topic right now: (trigger_id attribute, exact bytes)."""
    subscriber = subscriber_client()
    sub = rig.trigger_subscriptions[transition]
    out: list[tuple[str, bytes]] = []
    while True:
        response = subscriber.pull(subscription=sub, max_messages=50, timeout=10, return_immediately=True)
        if not response.received_messages:
            return out
        out += [(m.message.attributes["trigger_id"], bytes(m.message.data)) for m in response.received_messages]
        subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])


class ReachesServerThenRaises(TriggerPublisher):
    """The ambiguous publish: every message reaches the server, then the client raises (a deadline
    that ran out while the server was answering). Only the first call is ambiguous."""

    ambiguous = True

    def publish_all(self, triggers: Any) -> list[str]:
        ids = super().publish_all(triggers)
        if self.ambiguous:
            self.ambiguous = False
            raise TransientError("publish deadline exceeded (the server took the messages)")
        return ids


def test_fault_an_ambiguous_publish_keeps_one_body_per_trigger_id(rig: Rig) -> None:
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES]})
    svc = rig.services[P23]
    topic = rig.definition.target_topic(svc.transition)
    svc.publisher = ReachesServerThenRaises(svc.publisher.client, rig.cloud.project, topic)
    critical, optional = [p for p in PHASE2 if p in svc.transition.critical], [
        p for p in PHASE2 if p not in svc.transition.critical
    ]
    for p in critical[:-1]:
        assert svc.handle_event(rig.event(rig.completion(p, 2))).kind == "waiting"
    last_critical = rig.event(rig.completion(critical[-1], 2))
    with pytest.raises(TransientError):
        svc.handle_event(last_critical)  # ready on the three critical ones: published, then the client raised
    after_ambiguity = svc.state.load(GAME_DATE)
    assert after_ambiguity.status == "publishing", after_ambiguity.status  # not publish_failed: it may be out
    # an optional completion arrives before the redelivery; then the redelivery itself
    assert svc.handle_event(rig.event(rig.completion(optional[0], 2))).kind == "triggered"
    assert svc.handle_event(last_critical).kind == "already_triggered"

    messages = raw_messages(rig, P23)
    bodies: dict[str, set[bytes]] = defaultdict(set)
    for trigger_id, data in messages:
        part = PhaseTrigger.model_validate_json(data)
        bodies[f"{trigger_id}#{part.part}"].add(data)
    assert {key.split("#")[0] for key in bodies} == {f"{P23}:{GAME_DATE}:g1"}
    assert all(len(distinct) == 1 for distinct in bodies.values()), {k: len(v) for k, v in bodies.items()}
    first = PhaseTrigger.model_validate_json(next(iter(bodies[f"{P23}:{GAME_DATE}:g1#1"])))
    assert sorted(first.processors_completed) == sorted(critical) and first.parts == len(bodies)
    # the latch and the log row describe the bytes that went out, not a re-evaluation
    latched = svc.state.load(GAME_DATE).triggered_current or {}
    assert latched["parts"] == first.parts and latched["status"] == str(first.status)
    rows = [r for r in rig.log_rows() if r["status"] in ("complete", "partial") or r.get("trigger_id")]
    assert len(rows) == 1, rows
    metadata = json.loads(rows[0]["metadata"]) if isinstance(rows[0]["metadata"], str) else rows[0]["metadata"]
    assert sorted(metadata["processors_completed"]) == sorted(critical)


_CONTENDER = """
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
began = time.time()
try:
    kind = service.handle_event(body).kind
except Exception as exc:
    kind = f"error: {type(exc).__name__}: {str(exc)[:200]}"
print(json.dumps({"kind": kind, "seconds": time.time() - began}))
"""

CONTENDERS = 20


def test_fault_simultaneous_ready_deliveries_take_one_claim_without_a_storm(rig: Rig) -> None:
    """Every phase-2 completion is recorded (without evaluating), so each of N deliveries of a
    distinct extra completion decides the date is ready at the same instant: one triggers, the others
    are ``claimed_elsewhere`` (or ``already_triggered``), and none fails into a redelivery."""
    rig.seed_games(sources={"gamebook": [g[0] for g in GAMES]})
    svc = rig.services[P23]
    for n, p in enumerate(PHASE2):
        record = CompletionRecord(p, p, "success", f"pre-{n}", rig.clock.now(), record_count=100)
        assert svc.state.completions.record(GAME_DATE, record, {})
    bodies = [
        json.dumps(rig.event(rig.completion(f"late_extra_processor_{n}", 2, execution_id=f"x{n}")))
        for n in range(CONTENDERS)
    ]
    start_at = time.time() + 8.0
    env = rig.cloud.env() | {"PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CONTENDER, rig.suffix, str(start_at), rig.clock.now().isoformat()],
            cwd=REPO, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
        )
        for _ in bodies
    ]
    for proc, body in zip(procs, bodies, strict=True):
        assert proc.stdin is not None
        proc.stdin.write(body)
        proc.stdin.close()
    kinds = []
    for proc in procs:
        out = proc.stdout.read() if proc.stdout else ""
        err = proc.stderr.read() if proc.stderr else ""
        assert proc.wait(timeout=300) == 0, err[-3000:]
        result = json.loads(out.strip().splitlines()[-1])
        kinds.append(result["kind"])
    assert kinds.count("triggered") == 1, kinds
    assert set(kinds) <= {"triggered", "claimed_elsewhere", "already_triggered"}, kinds
    assert len(rig.pull_triggers(P23)) == 1
    assert len(rig.completion_docs(P23)) == len(PHASE2) + CONTENDERS
