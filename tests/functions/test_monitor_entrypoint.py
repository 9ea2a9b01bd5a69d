"""The monitor entrypoint through the functions framework's own request handling.

``functions/phase_transition_monitor/main.py`` is loaded with ``functions_framework.create_app``
(what the CLI and Cloud Functions gen2 do) and receives what Cloud Scheduler → Pub/Sub →
Eventarc delivers: a ``messagePublished`` CloudEvent whose message carries a ``MonitorTick``.
It is configured like a deployment (emulator env vars, ``PIPELINE_DEFINITION`` pointing at an
isolated definition file) and runs on the system clock, so the dates are built around today's
New York date.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from deploy.local.emulators import LocalCloud
from shared.clock import SystemClock, today_et
from shared.gcp import firestore_client
from shared.monitor import runtime as monitor_runtime
from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID
from shared.orchestration import runtime
from tests.support.definition_files import write_isolated_definition
from tests.support.rig import Rig

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "phase_transition_monitor" / "main.py"
PUBSUB_CE_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
PHASE4 = ["team_defense_zone_analysis", "player_shot_zone_analysis", "player_composite_factors"]
_MISSING = object()


@pytest.fixture(scope="module")
def shared_rig(local_cloud: LocalCloud) -> Rig:
    """Topics and tables of one isolated definition (Firestore is emptied per test by ``cloud``)."""
    return Rig.create(local_cloud, uuid.uuid4().hex[:10])


@pytest.fixture
def rig(cloud: LocalCloud, shared_rig: Rig) -> Rig:
    for transition in shared_rig.trigger_subscriptions:
        shared_rig.pull_triggers(transition)
    return shared_rig


@pytest.fixture
def client(rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[FlaskClient]:
    definition_file = write_isolated_definition(rig.suffix, tmp_path / "pipeline.toml")
    for key, value in rig.cloud.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIPELINE_DEFINITION", str(definition_file))
    monkeypatch.delenv(rig.definition.monitor.slack_webhook_env, raising=False)
    monkeypatch.setenv("FUNCTION_TARGET", "handle")  # create_app writes these; monkeypatch restores them
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")
    monkeypatch.setattr(monitor_runtime, "_monitor", None)  # a process-wide monitor, built on first tick
    monkeypatch.setattr(runtime, "_services", {})
    monkeypatch.setattr(sys, "path", list(sys.path))  # the framework appends the source directory
    saved_main = sys.modules.get("main", _MISSING)
    try:
        app = functions_framework.create_app(  # type: ignore[no-untyped-call]
            target="handle", source=str(SOURCE), signature_type="cloudevent"
        )
        yield app.test_client()
    finally:
        if saved_main is _MISSING:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = saved_main  # type: ignore[assignment]


def tick_event(data: bytes) -> dict[str, Any]:
    """A structured-mode ``messagePublished`` CloudEvent from the scheduler's topic."""
    message_id = uuid.uuid4().hex
    published = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "specversion": "1.0",
        "type": PUBSUB_CE_TYPE,
        "source": "//pubsub.googleapis.com/projects/test-project/topics/phase-transition-monitor-trigger",
        "id": message_id,
        "time": published,
        "datacontenttype": "application/json",
        "data": {
            "message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "publishTime": published},
            "subscription": "projects/test-project/subscriptions/phase-transition-monitor",
        },
    }


def post(client: FlaskClient, data: bytes) -> Any:
    return client.post("/", data=json.dumps(tick_event(data)), content_type="application/cloudevents+json")


def heartbeat(rig: Rig) -> dict[str, Any] | None:
    fs = firestore_client(rig.cloud.project)
    doc = fs.collection(rig.definition.monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID).get()
    return doc.to_dict() if doc.exists else None


def quarantined(rig: Rig) -> list[dict[str, Any]]:
    fs = firestore_client(rig.cloud.project)
    return [d.to_dict() or {} for d in fs.collection(rig.definition.pipeline.quarantine_collection).stream()]


def test_empty_tick_runs_the_monitor_and_writes_its_heartbeat(client: FlaskClient, rig: Rig) -> None:
    started = datetime.now(UTC)
    yesterday = today_et(SystemClock()) - timedelta(days=1)
    # Final games two days back, phase 2 silent (past the overnight grace at any time of day)
    silent_day = yesterday - timedelta(days=1)
    rig.seed_games(game_date=silent_day)
    rig.seed_outputs(game_date=yesterday)  # the phase 4 rows the 4→5 gates read
    # three phase-4 processors finished 130 min ago (as the transition function recorded them):
    # deadline tier 2 (3 of 5 after 120 min) is due and only the monitor can fire it
    rig.clock.set(started - timedelta(minutes=130))
    svc = rig.services["phase4_to_phase5"]
    for processor in PHASE4:
        outcome = svc.handle_event(rig.event(rig.completion(processor, 4, game_date=yesterday)))
        assert outcome.kind == "waiting", outcome.detail

    response = post(client, b"")  # Cloud Scheduler's empty body: the MonitorTick defaults

    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    beat = heartbeat(rig)
    assert beat is not None, "the monitor wrote no heartbeat"
    assert started <= beat["last_run_at"] <= datetime.now(UTC)
    assert beat["errors"] == 0 and "check_error" not in beat["kinds"]
    trigger_id = f"phase4_to_phase5:{yesterday}:g1"
    assert beat["triggered"] == [trigger_id]
    assert {"silent", "deadline_trigger"} <= set(beat["kinds"])
    (trigger,) = rig.pull_triggers("phase4_to_phase5")
    assert trigger.trigger_id == trigger_id and trigger.status == "deadline_exceeded"
    fs = firestore_client(rig.cloud.project)
    recorded = {d.id for d in fs.collection(rig.definition.monitor.alert_collection).stream()}
    assert f"silent__phase2_to_phase3__{silent_day}" in recorded
    assert quarantined(rig) == []

    again = post(client, b"{}")  # the next tick: same process, same monitor, nothing to trigger
    assert 200 <= again.status_code < 300
    assert rig.pull_triggers("phase4_to_phase5") == []
    assert monitor_runtime._monitor is not None


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        (b'{"lookback_days": "x"}', "lookback_days"),
        (b'{"lookback_days": 0}', "lookback_days"),
        (b'{"check": "everything"}', "check"),
        (b"not json", "json"),
    ],
)
def test_malformed_tick_is_acked_and_quarantined(client: FlaskClient, rig: Rig, data: bytes, expected: str) -> None:
    response = post(client, data)

    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    (doc,) = quarantined(rig)
    assert doc["kind"] == "malformed" and doc["transition"] == "phase_transition_monitor"
    assert expected in doc["reason"].lower(), doc["reason"]
    assert heartbeat(rig) is None  # the monitor did not run on a tick it could not read


def test_fault_a_bad_date_is_acked_and_counted_in_the_heartbeat(client: FlaskClient, rig: Rig) -> None:
    """A date whose recorded completion is malformed (no ``completed_at``) used to make the whole pass
    raise: HTTP 500, the tick redelivered into the same failure, no heartbeat, no other finding. Now the
    function acks, the date is a ``check_error`` finding and the heartbeat counts it (L23)."""
    from google.cloud import firestore

    started = datetime.now(UTC)
    yesterday = today_et(SystemClock()) - timedelta(days=1)
    bad_day = yesterday - timedelta(days=1)
    rig.clock.set(started - timedelta(minutes=130))
    svc = rig.services["phase4_to_phase5"]
    for day in (yesterday, bad_day):
        outcome = svc.handle_event(rig.event(rig.completion(PHASE4[0], 4, game_date=day)))
        assert outcome.kind == "waiting", outcome.detail
    fs = firestore_client(rig.cloud.project)
    date_ref = fs.collection(rig.definition.pipeline.state_collection).document(f"phase4_to_phase5__{bad_day}")
    (doc,) = list(date_ref.collection("completions").stream())
    doc.reference.update({"completed_at": firestore.DELETE_FIELD})

    response = post(client, b"")

    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    beat = heartbeat(rig)
    assert beat is not None and started <= beat["last_run_at"]
    assert beat["errors"] == 1 and "check_error" in beat["kinds"]
    alerts = {d.id: d.to_dict() or {} for d in fs.collection(rig.definition.monitor.alert_collection).stream()}
    record = alerts[f"check_error__phase4_to_phase5__{bad_day}"]
    assert "KeyError" in record["message"] and "completed_at" in record["message"]
    assert f"stuck__phase4_to_phase5__{yesterday}" in alerts  # the other date's finding still landed
