"""The monitor's schedule read on the real emulators (issue 25, cost): re-used for an hour while no
game is scheduled near today (out of season), queried on every pass as soon as one is.

Proof that a pass did not query: a Final game inserted into the schedule behind the monitor's back
reaches the grid (a ``grid_gap``) only when the pass queries again.
"""

from __future__ import annotations

import itertools
import uuid
from datetime import date, timedelta
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.raw_tables import upstream_table
from shared.clock import today_et
from shared.contracts.messages import MonitorTick
from shared.gcp import firestore_client
from shared.gcp_bigquery import bigquery_client
from shared.monitor.findings import MonitorReport
from shared.monitor.runtime import Monitor, build_monitor
from shared.monitor.schedule_read import QUIET_REUSE, READ_DOC_ID
from tests.support.rig import MORNING_AFTER, Rig

pytestmark = pytest.mark.integration

ERA_DAYS = 150  # > grid_days (120) + 2: each test's schedule rows are outside every other test's grid
_eras = itertools.count(1)


@pytest.fixture(scope="module")
def shared_rig(local_cloud: LocalCloud) -> Rig:
    rig = Rig.create(local_cloud, uuid.uuid4().hex[:10])
    rig.seed_outputs(tables=[])
    return rig


@pytest.fixture
def rig(cloud: LocalCloud, shared_rig: Rig) -> Rig:
    """The module's rig in an era of its own (no schedule rows of other tests near); Firestore is empty."""
    shared_rig.clock.set(MORNING_AFTER + timedelta(days=ERA_DAYS * next(_eras)))
    return shared_rig


@pytest.fixture
def monitor(rig: Rig) -> Monitor:
    return build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())


def today(rig: Rig) -> date:
    return today_et(rig.clock)


def run(monitor: Monitor, **tick: Any) -> MonitorReport:
    result, _ = monitor.run(MonitorTick(**tick))
    return result


def gaps(result: MonitorReport) -> list[str]:
    return [d for f in result.findings if f.kind == "grid_gap" for d in f.details["dates"]]


def schedule(rig: Rig, day: date, game_id: str, status: int) -> None:
    """One schedule row (3: Final, 1: Scheduled), inserted now."""
    g = rig.definition.games
    row = upstream_table(g.schedule_table).row(game_id, day, "BOS", "NYK", game_status=status)
    assert bigquery_client(rig.cloud.project).insert_rows_json(f"{rig.cloud.project}.{g.schedule_table}", [row]) == []


def stored_read(rig: Rig) -> dict[str, Any] | None:
    fs = firestore_client(rig.cloud.project)
    return fs.collection(rig.definition.monitor.heartbeat_collection).document(READ_DOC_ID).get().to_dict()


def test_a_quiet_schedule_is_read_once_an_hour(rig: Rig, monitor: Monitor) -> None:
    old = today(rig) - timedelta(days=10)
    assert gaps(run(monitor)) == []  # no game anywhere near: quiet, the answer is stored
    stored = stored_read(rig)
    assert stored is not None and stored["quiet"] is True and stored["final_games"] == {}

    schedule(rig, old, "0022500001", status=3)  # a backfilled schedule row, behind the monitor's back
    rig.clock.advance(minutes=10)
    assert gaps(run(monitor)) == []  # the quiet answer of 10 minutes ago: no query
    rig.clock.advance(QUIET_REUSE - timedelta(minutes=10))
    assert gaps(run(monitor)) == [old.isoformat()]  # an hour later the pass queries and sees it


def test_a_game_scheduled_near_today_makes_every_pass_query(rig: Rig, monitor: Monitor) -> None:
    old = today(rig) - timedelta(days=10)
    schedule(rig, today(rig), "0022500002", status=1)  # tonight's game, not played yet
    assert gaps(run(monitor)) == []
    stored = stored_read(rig)
    assert stored is None or stored["quiet"] is False or stored["window"][2] != today(rig).isoformat()

    schedule(rig, old, "0022500003", status=3)
    rig.clock.advance(minutes=10)
    assert gaps(run(monitor)) == [old.isoformat()]  # the next pass: queried again


def test_a_dry_run_pass_stores_nothing(rig: Rig, monitor: Monitor) -> None:
    assert gaps(run(monitor, dry_run=True)) == []
    read = stored_read(rig)
    assert read is None or read["window"][2] != today(rig).isoformat()
