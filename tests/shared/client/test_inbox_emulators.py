"""TriggerInbox on the real Firestore emulator: one delivery acts per trigger_id."""

from __future__ import annotations

import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud
from shared.client.inbox import TriggerInbox
from shared.gcp import firestore_client

pytestmark = pytest.mark.integration

TRIGGER = "phase2_to_phase3:2026-01-24:g1"
ROOT = Path(__file__).resolve().parents[3]


def test_first_delivery_acts_and_every_later_one_is_a_duplicate(cloud: LocalCloud) -> None:
    inbox = TriggerInbox(firestore_client(cloud.project), consumer="phase3")
    runs = []
    for _ in range(3):
        with inbox.once(TRIGGER) as delivery:
            if delivery.first:
                runs.append(delivery.kind)
    assert runs == ["first"]
    entry = inbox.status(TRIGGER)
    assert entry is not None and entry["status"] == "done" and entry["deliveries"] == 3
    assert entry["expires_at"] > datetime.now(UTC) + timedelta(days=29)  # for the TTL policy


def test_consumers_have_separate_inboxes(cloud: LocalCloud) -> None:
    client = firestore_client(cloud.project)
    assert TriggerInbox(client, consumer="phase3").accept(TRIGGER).first
    assert TriggerInbox(client, consumer="grading").accept(TRIGGER).first


def test_failed_work_is_released_so_the_redelivery_runs_it(cloud: LocalCloud) -> None:
    inbox = TriggerInbox(firestore_client(cloud.project), consumer="phase4")
    with pytest.raises(RuntimeError, match="BigQuery down"), inbox.once(TRIGGER) as delivery:
        assert delivery.first
        raise RuntimeError("BigQuery down")
    assert inbox.status(TRIGGER) is None
    with inbox.once(TRIGGER) as again:
        assert again.kind == "first"


def test_a_live_lease_is_in_progress_and_an_expired_one_is_taken_over(cloud: LocalCloud) -> None:
    inbox = TriggerInbox(firestore_client(cloud.project), consumer="exports", lease=timedelta(minutes=5))
    now = datetime.now(UTC)
    crashed = inbox.accept(TRIGGER, now=now)  # this worker dies without release or done
    assert crashed.first
    assert inbox.accept(TRIGGER, now=now + timedelta(minutes=1)).kind == "in_progress"
    late = inbox.accept(TRIGGER, now=now + timedelta(minutes=6))
    assert late.kind == "taken_over" and late.first
    with pytest.raises(RuntimeError, match="taken over"):
        inbox.done(crashed)  # the crashed worker woke up: it must not mark the new owner's work done
    inbox.done(late)
    assert inbox.accept(TRIGGER).kind == "duplicate"


def test_concurrent_deliveries_in_separate_processes_act_once(cloud: LocalCloud) -> None:
    script = (
        "import sys\n"
        "from shared.client.inbox import TriggerInbox\n"
        "from shared.gcp import firestore_client\n"
        "d = TriggerInbox(firestore_client(sys.argv[1]), consumer='race').accept(sys.argv[2])\n"
        "print(d.kind)\n"
    )
    env = {**cloud.env(), "PATH": "/usr/bin:/bin"}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", script, cloud.project, TRIGGER],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(4)
    ]
    kinds = []
    for proc in procs:
        out, err = proc.communicate(timeout=120)
        assert proc.returncode == 0, err
        kinds.append(out.strip())
    assert sorted(kinds) == ["first", "in_progress", "in_progress", "in_progress"]
