"""``phasectl gaps [--date D] [--enqueue] [--json]`` as an operator runs it, on the emulators.

``python -m phasectl`` in a subprocess against an isolated rig (the definition file from
``tests.support.phasectl_run``): a night whose 2→3 trigger went out but whose phase 3 never wrote a
row is a gap of the expected-outputs grid (``shared.heal.gaps``); the command shows it, ``--enqueue``
queues it for backfill once (audited), and a second ``--enqueue`` queues nothing new.
"""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud
from shared.gcp import firestore_client
from shared.heal.backfill import PENDING, BackfillQueue
from tests.support.phasectl_run import Run, phasectl_runner
from tests.support.rig import GAMES, PHASE2, Rig

pytestmark = pytest.mark.integration

NOW = "2026-01-25T15:00:00Z"  # 10:00 ET; the gap window ends two days before (2026-01-23)
NIGHT = date(2026, 1, 20)  # in the 14-day lookback, outside the monitor's 3-day window


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique)
    rig.seed_outputs(tables=[])  # the phase 3-5 tables exist, empty, as in production
    return rig


@pytest.fixture
def phasectl(rig: Rig, tmp_path: Path) -> Run:
    return phasectl_runner(rig, tmp_path, NOW)


def night_without_phase3_rows(rig: Rig) -> None:
    """Phase 2 reported and 2→3 triggered (generation 1); no phase 3 processor wrote a row."""
    ids = [g[0] for g in GAMES]
    rig.seed_games(sources={"bdl": ids, "gamebook": ids}, game_date=NIGHT)
    service = rig.services["phase2_to_phase3"]
    kinds = [service.handle_event(rig.event(rig.completion(p, 2, game_date=NIGHT))).kind for p in PHASE2]
    assert kinds.count("triggered") == 1, kinds


def test_gaps_shows_a_night_whose_phase_3_never_ran_and_enqueue_queues_it_once(rig: Rig, phasectl: Run) -> None:
    night_without_phase3_rows(rig)

    shown = phasectl("gaps")
    assert shown.returncode == 1, shown.stdout + shown.stderr  # gaps found: a warning exit
    assert str(NIGHT) in shown.stdout and "phase2_to_phase3" in shown.stdout, shown.stdout
    assert "phasectl gaps --enqueue" in shown.stdout
    queue = BackfillQueue(firestore_client(rig.cloud.project), rig.definition)
    assert queue.entries() == []  # showing queues nothing

    queued = phasectl("gaps", "--enqueue")
    assert queued.returncode == 1, queued.stdout + queued.stderr
    assert f"+ {NIGHT}__phase2_to_phase3__g1" in queued.stdout, queued.stdout
    entries = queue.entries()
    assert [(e.game_date, e.target, e.status) for e in entries] == [(NIGHT, "phase2_to_phase3", PENDING)]
    col = firestore_client(rig.cloud.project).collection(rig.definition.pipeline.audit_collection)
    audits = [d.to_dict() or {} for d in col.stream()]
    assert [a["command"] for a in audits] == ["gaps"] and "queued 1" in audits[0]["result"]

    again = phasectl("gaps", "--enqueue", "--json")
    report = json.loads(again.stdout)
    assert report["queued"] == [], report  # exactly once per (target, date, generation)
    # every phase after 2 is a gap of the date (no rows, no trigger); its earliest is the one queued
    gaps = sorted((g for g in report["gaps"] if g["game_date"] == str(NIGHT)), key=lambda g: g["phase"])
    assert gaps[0]["phase"] == 3 and gaps[0]["target"] == "phase2_to_phase3"
    assert gaps[0]["queue"].startswith(PENDING)
    assert len(queue.entries()) == 1


def test_a_date_without_gaps_exits_0(rig: Rig, phasectl: Run) -> None:
    done = phasectl("gaps", "--date", str(NIGHT))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "0 gap(s)" in done.stdout
