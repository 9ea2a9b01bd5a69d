"""Self-heal checkpoints on the real emulators (Pub/Sub, Firestore, local-bigquery): a night whose
phase 3 never ran is re-triggered once through the latch as a new generation, two runs of one
checkpoint heal once, the cap holds, and the next monitor pass reports ``self_heal_failed`` when
healing did not fix it. No Google client is mocked."""

from __future__ import annotations

import itertools
import threading
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deploy.local.emulators import LocalCloud
from shared.clock import today_et
from shared.contracts.messages import MonitorTick
from shared.gcp import firestore_client
from shared.monitor.findings import MonitorReport
from shared.monitor.runtime import Monitor, build_monitor
from tests.support.rig import GAMES, MORNING_AFTER, PHASE2, Rig, _rename_gate_tables

pytestmark = pytest.mark.integration

ET = ZoneInfo("America/New_York")
JOB = "self-heal-predictions"
ERA_DAYS = 30  # > verify_days + the dates a test touches: eras never see each other's rows
_eras = itertools.count(1)


def heal_tables(suffix: str) -> Any:
    """The rig's renamed tables (as its gates') and a collection of its own for [heal.self_heal]."""

    def mutate(data: dict[str, Any]) -> None:
        data["heal"] = _rename_gate_tables(data["heal"], suffix)
        data["heal"]["self_heal"]["collection"] = f"self_heal_{suffix}"

    return mutate


@pytest.fixture(scope="module")
def shared_rig(local_cloud: LocalCloud) -> Rig:
    import uuid

    suffix = uuid.uuid4().hex[:10]
    rig = Rig.create(local_cloud, suffix, mutate=heal_tables(suffix))
    rig.seed_outputs(tables=[])  # the phase 3-5 tables exist (empty), as in production
    return rig


@pytest.fixture
def rig(cloud: LocalCloud, shared_rig: Rig) -> Rig:
    """The rig in an era of its own; Firestore is empty; trigger topics drained."""
    shared_rig.clock.set(MORNING_AFTER + timedelta(days=ERA_DAYS * next(_eras)))
    for t in shared_rig.definition.transitions:
        shared_rig.pull_triggers(t.name)
    return shared_rig


def at_checkpoint(rig: Rig, day: date) -> None:
    """The rig's clock at ``day`` 12:45 in New York (the checkpoint's slot)."""
    rig.clock.set(datetime.combine(day, time(12, 45), tzinfo=ET))


def monitor_of(rig: Rig) -> Monitor:
    return build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())


def checkpoint(rig: Rig, monitor: Monitor | None = None, *, by: str = JOB) -> MonitorReport:
    tick = MonitorTick(check="self_heal", game_date=today_et(rig.clock), requested_by=by)
    report, alerts = (monitor or monitor_of(rig)).run(tick)
    assert alerts is None  # a heal task has no alert step
    return report


def night_without_phase3(rig: Rig) -> date:
    """Yesterday: five Final games, every boxscore, phase 2 reported and 2→3 triggered (generation 1),
    and no phase 3 row: the phase 3 run never happened."""
    day = today_et(rig.clock) - timedelta(days=1)
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES]}, game_date=day)
    svc = rig.services["phase2_to_phase3"]
    kinds = [svc.handle_event(rig.event(rig.completion(p, 2, game_date=day))).kind for p in PHASE2]
    assert kinds.count("triggered") == 1, kinds
    assert [t.trigger_id for t in rig.pull_triggers("phase2_to_phase3")] == [f"phase2_to_phase3:{day}:g1"]
    return day


def heal_docs(rig: Rig) -> dict[str, dict[str, Any]]:
    fs = firestore_client(rig.cloud.project)
    col = fs.collection(rig.definition.heal.self_heal.collection)
    return {d.id: d.to_dict() or {} for d in col.stream()}


def findings(rig: Rig) -> list[Any]:
    report = monitor_of(rig).checks.run(dry_run=True)
    assert not [f for f in report.findings if f.kind in ("check_error", "check_timeout")], report.findings
    return [f for f in report.findings if f.kind == "self_heal_failed"]


def test_a_night_whose_phase3_never_ran_is_healed_once_as_a_new_generation(rig: Rig) -> None:
    at_checkpoint(rig, today_et(rig.clock))
    day = night_without_phase3(rig)

    report = checkpoint(rig)

    trigger_id = f"phase2_to_phase3:{day}:g2"
    assert report.triggered == [trigger_id]
    triggers = rig.pull_triggers("phase2_to_phase3")
    assert [(t.trigger_id, t.trigger_source, t.game_date) for t in triggers] == [(trigger_id, "self_heal", day)]
    docs = heal_docs(rig)
    attempt = docs[f"attempt__phase2_to_phase3__{day}__1"]
    assert (attempt["status"], attempt["checkpoint"], attempt["outcome"]["generation"]) == (
        "triggered",
        f"{JOB}@{day + timedelta(days=1)}",
        2,
    )
    verdict = docs[f"{day}__yesterday_analytics"]
    assert verdict["status"] == "healing" and verdict["transition"] == "phase2_to_phase3"
    assert f"{day + timedelta(days=1)}__today_predictions" not in docs  # no games today: nothing expected
    rows = [r for r in rig.log_rows() if r["status"] == "self_heal"]
    assert [(r["phase_name"], r["game_date"], r["trigger_id"]) for r in rows] == [("phase2_to_phase3", day, trigger_id)]
    assert findings(rig) == []  # healing, not failed (yet)


def test_l28_two_runs_of_one_checkpoint_at_once_heal_once(rig: Rig) -> None:
    """Lesson L28 (claims by create-if-absent, not a read-modify-write on a hot document): two
    instances run the same checkpoint at once; one claims attempt 1 and re-triggers, the other
    leaves it. A redelivery afterwards (lesson L03: same message N times, same effect) heals nothing."""
    at_checkpoint(rig, today_et(rig.clock))
    day = night_without_phase3(rig)
    monitors = [monitor_of(rig), monitor_of(rig)]
    start = threading.Barrier(2)
    reports: list[MonitorReport] = []

    def run(m: Monitor) -> None:
        start.wait()
        reports.append(checkpoint(rig, m))

    threads = [threading.Thread(target=run, args=(m,)) for m in monitors]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert len(reports) == 2
    assert sorted(len(r.triggered) for r in reports) == [0, 1]
    assert checkpoint(rig).triggered == []  # the redelivered tick
    assert [t.trigger_id for t in rig.pull_triggers("phase2_to_phase3")] == [f"phase2_to_phase3:{day}:g2"]
    attempts = [k for k in heal_docs(rig) if k.startswith("attempt__")]
    assert attempts == [f"attempt__phase2_to_phase3__{day}__1"]


def test_still_missing_at_the_next_checkpoint_is_a_finding_and_the_cap_holds(rig: Rig) -> None:
    at_checkpoint(rig, today_et(rig.clock))
    day = night_without_phase3(rig)
    assert checkpoint(rig).triggered  # the 12:45 heal
    rig.pull_triggers("phase2_to_phase3")
    # phase 3 ran again and still wrote nothing; the next day's checkpoint looks again
    at_checkpoint(rig, day + timedelta(days=2))

    assert checkpoint(rig).triggered == []  # the cap (max_heals = 1): a finding, not another loop
    assert checkpoint(rig, by="phasectl:ops").triggered == []  # another checkpoint: the cap still holds
    assert rig.pull_triggers("phase2_to_phase3") == []
    verdict = heal_docs(rig)[f"{day}__yesterday_analytics"]
    assert verdict["status"] == "still_missing"

    [finding] = findings(rig)
    assert (finding.transition, finding.game_date, finding.subject) == ("phase2_to_phase3", day, "yesterday_analytics")
    assert finding.severity == "ERROR" and "still missing at the next checkpoint" in finding.message
    assert finding.details["healed_at"] == [f"{JOB}@{day + timedelta(days=1)}"]
    assert [r["status"] for r in rig.log_rows() if r["phase_name"] == "phase2_to_phase3"].count(
        "self_heal_still_missing"
    ) == 1

    # the rows arrive; the next checkpoint finds them and the finding ends
    rig.seed_outputs(game_date=day, tables=["player_game_summary"])
    at_checkpoint(rig, day + timedelta(days=3))
    checkpoint(rig)
    assert heal_docs(rig)[f"{day}__yesterday_analytics"]["status"] == "fixed"
    assert findings(rig) == []


def test_a_re_trigger_that_cannot_fire_is_recorded_as_not_triggered(rig: Rig) -> None:
    """Final games and no phase 2 completion at all: reopening 2→3 cannot trigger (waiting); the
    attempt says so, the verdict is not_triggered and the next pass reports it."""
    at_checkpoint(rig, today_et(rig.clock))
    day = today_et(rig.clock) - timedelta(days=1)
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES]}, game_date=day)

    assert checkpoint(rig).triggered == []

    assert rig.pull_triggers("phase2_to_phase3") == []
    docs = heal_docs(rig)
    assert docs[f"attempt__phase2_to_phase3__{day}__1"]["status"] == "waiting"
    assert docs[f"{day}__yesterday_analytics"]["status"] == "not_triggered"
    [finding] = findings(rig)
    assert "could not fire" in finding.message and "waiting" in finding.message
