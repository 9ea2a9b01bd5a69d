"""The gap pass and its backfill queue on the real emulators (issue 27, item 3).

A night whose phase 2→3 trigger went out but whose phase 3 tables stayed empty is a gap; 4 separate
processes running the gap pass at once queue each gap exactly once and re-trigger no more than
``dates_per_hour`` dates in that hour, oldest first, each trigger once per generation with
``trigger_source = "backfill"`` and a log row; the next hour takes the next dates; the monitor's next
pass reports ``gap`` with the counts. No mock of a Google client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.clock import today_et
from shared.contracts.messages import MonitorTick
from shared.gcp import firestore_client
from shared.heal.backfill import PENDING, TRIGGERED, BackfillQueue
from shared.monitor.runtime import build_monitor
from tests.support.rig import GAMES, PHASE2, Rig, _rename_gate_tables

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
PER_HOUR = 2
PROCESSES = 4


def gap_mutate(suffix: str) -> Any:
    """The rig's isolation for [heal.gaps]: its tables in the rig's datasets, its own collections, N per hour."""

    def mutate(data: dict[str, Any]) -> None:
        gaps = data["heal"]["gaps"]
        gaps["outputs"] = _rename_gate_tables(gaps["outputs"], suffix)
        for out in gaps["outputs"]:
            if out["table"].startswith("nba_raw."):
                out["table"] = f"raw_{suffix}.{out['table'].split('.', 1)[1]}"
        gaps["queue_collection"] = f"backfill_queue_{suffix}"
        gaps["slot_collection"] = f"backfill_slots_{suffix}"
        gaps["dates_per_hour"] = PER_HOUR

    return mutate


# one gap pass in a process of its own (the function instances of production): prints what it did
CHILD = """
import json, sys
from datetime import datetime
from shared.clock import FixedClock
from shared.heal.gaps import GapPass, transition_retriggers
from shared.orchestration.runtime import build_service
from shared.gcp import firestore_client
from shared.gcp_bigquery import bigquery_client
from tests.shared.heal.test_gaps_emulators import gap_mutate
from tests.support.rig import isolated_definition
import os

suffix, at = sys.argv[1], sys.argv[2]
definition = isolated_definition(suffix, gap_mutate(suffix))
clock = FixedClock(datetime.fromisoformat(at))
project = os.environ["GOOGLE_CLOUD_PROJECT"]
services = {t.name: build_service(t.name, definition=definition, clock=clock, environ=dict(os.environ))
            for t in definition.transitions}
gap_pass = GapPass(definition, firestore_client(project), lambda: bigquery_client(project), project, clock)
result = gap_pass.enqueue(gap_pass.scan(), f"process-{os.getpid()}")
work = gap_pass.work(transition_retriggers(services))
print(json.dumps({"queued": result.queued, "triggered": work.triggered, "capped": work.capped,
                  "skipped": work.skipped, "errors": work.errors}))
"""


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique, mutate=gap_mutate(unique))
    rig.seed_outputs(tables=[])  # the phase 3-5 tables exist (empty), as in production
    return rig


def night_without_phase3_rows(rig: Rig, day: date) -> None:
    """Phase 2 reported and 2→3 triggered (generation 1), but no phase 3 processor wrote a row."""
    ids = [g[0] for g in GAMES]
    rig.seed_games(sources={"bdl": ids, "gamebook": ids}, game_date=day)
    svc = rig.services["phase2_to_phase3"]
    kinds = [svc.handle_event(rig.event(rig.completion(p, 2, game_date=day))).kind for p in PHASE2]
    assert kinds.count("triggered") == 1, kinds


def run_processes(rig: Rig, n: int) -> list[dict[str, Any]]:
    env = {**os.environ, **rig.cloud.env(), "PYTHONPATH": str(REPO)}
    at = rig.clock.now().isoformat()
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, rig.suffix, at],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(n)
    ]
    out = []
    for proc in procs:
        stdout, stderr = proc.communicate(timeout=240)
        assert proc.returncode == 0, stderr[-3000:]
        out.append(json.loads(stdout.strip().splitlines()[-1]))
    return out


def test_gaps_are_queued_once_across_processes_and_the_rate_cap_holds(rig: Rig) -> None:
    today = today_et(rig.clock)
    days = [today - timedelta(days=n) for n in (9, 7, 6, 5, 3)]  # all in the lookback, before yesterday
    for day in days:
        night_without_phase3_rows(rig, day)
    assert len(rig.pull_triggers("phase2_to_phase3", max_messages=100)) == len(days)  # generation 1, drained
    rig.deliver_outbox()

    results = run_processes(rig, PROCESSES)

    # enqueued exactly once: one entry per date, created by exactly one of the processes
    queued = [q for r in results for q in r["queued"]]
    assert sorted(queued) == sorted(f"{d}__phase2_to_phase3__g1" for d in days), results
    queue = BackfillQueue(firestore_client(rig.cloud.project), rig.definition)
    entries = queue.entries()
    assert [e.game_date for e in entries] == days
    # the rate cap held: PER_HOUR dates re-triggered this hour, the oldest ones; the rest stays queued
    triggered = [t for r in results for t in r["triggered"]]
    assert len(triggered) == PER_HOUR, results
    assert {e.game_date for e in entries if e.status == TRIGGERED} == set(days[:PER_HOUR])
    assert {e.game_date for e in entries if e.status == PENDING} == set(days[PER_HOUR:])
    assert queue.slots_used(rig.clock.now()) == PER_HOUR
    # each re-trigger went out once, as generation 2, with trigger_source "backfill"
    sent = rig.pull_triggers("phase2_to_phase3", max_messages=100)
    assert sorted((t.game_date, t.generation, t.trigger_source) for t in sent) == [
        (d, 2, "backfill") for d in days[:PER_HOUR]
    ]
    # each with a log row
    rows = [r for r in rig.log_rows() if str(r["status"]).startswith("backfill_")]
    assert sorted((r["game_date"], r["status"]) for r in rows) == [(d, "backfill_triggered") for d in days[:PER_HOUR]]

    # the same passes again in the same hour: nothing new queued, nothing re-triggered (cap and once)
    again = run_processes(rig, 2)
    assert [q for r in again for q in r["queued"]] == [] and [t for r in again for t in r["triggered"]] == []
    assert rig.pull_triggers("phase2_to_phase3", max_messages=100) == []

    # the next hour, through the monitor's heal task: the next PER_HOUR dates, oldest first; the
    # re-triggered dates (still without phase 3 rows) are not queued again while they settle
    rig.clock.advance(hours=1)
    monitor = build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())
    heal, alerts = monitor.run(MonitorTick(check="gaps", requested_by="test"))
    assert not [f for f in heal.findings if f.kind in ("check_error", "check_timeout")], heal.findings
    assert alerts is None  # a heal task: no alert step
    sent = rig.pull_triggers("phase2_to_phase3", max_messages=100)
    assert sorted((t.game_date, t.generation) for t in sent) == [(d, 2) for d in days[PER_HOUR : 2 * PER_HOUR]]
    entries = queue.entries()
    assert [(e.game_date, e.generation) for e in entries if e.status == PENDING] == [
        (d, 1) for d in days[2 * PER_HOUR :]
    ]
    assert len(entries) == len(days)

    # the monitor's next pass reports `gap` with the counts
    pass_report, _ = monitor.run(MonitorTick())
    (gap,) = [f for f in pass_report.findings if f.kind == "gap"]
    assert gap.details["dates"] == [d.isoformat() for d in days]
    assert f"{len(days)} date(s)" in gap.message and f"{PER_HOUR}/{PER_HOUR} slots used" in gap.message
    assert f"{2 * PER_HOUR} re-triggered" in gap.message


def test_a_filled_gap_is_resolved_and_a_healthy_window_reports_nothing(rig: Rig) -> None:
    today = today_et(rig.clock)
    day = today - timedelta(days=4)
    night_without_phase3_rows(rig, day)
    rig.pull_triggers("phase2_to_phase3", max_messages=100)
    from shared.gcp_bigquery import bigquery_client
    from shared.heal.gaps import GapPass

    fs = firestore_client(rig.cloud.project)
    gap_pass = GapPass(rig.definition, fs, lambda: bigquery_client(rig.cloud.project), rig.cloud.project, rig.clock)
    scan = gap_pass.scan()
    by_phase = {g.phase: g for g in scan.gaps if g.game_date == day}
    assert by_phase[3].kinds == ("no_rows",) and by_phase[3].target == "phase2_to_phase3"
    assert by_phase[4].kinds == ("no_trigger", "no_rows")  # phase 3 never reported: 3→4 not triggered
    result = gap_pass.enqueue(scan, "test")
    assert result.queued == [f"{day}__phase2_to_phase3__g1"]

    rig.seed_outputs(game_date=day, tables=[o.table for o in rig.definition.heal.gaps.outputs if o.phase == 3])
    result = gap_pass.enqueue(gap_pass.scan(), "test")  # phase 3 has rows now: the entry's gap is gone
    assert result.resolved == [f"{day}__phase2_to_phase3__g1"]
    assert result.queued == [f"{day}__phase3_to_phase4__g1"]  # the next phase's gap is the earliest now
    gap_pass.save_summary(result)
    monitor = build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())
    (gap,) = [f for f in monitor.checks.run(dry_run=True).findings if f.kind == "gap"]
    assert gap.details["dates"] == [day.isoformat()] and "1 open" in gap.message
