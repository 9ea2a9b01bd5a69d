"""The auto_retry_processor entrypoint through the functions framework's own request handling.

The app is the real ``functions/auto_retry_processor/main.py`` built with
``functions_framework.create_app`` (what the CLI and Cloud Functions gen2 do), configured
like a deployment: the emulator env vars and ``PIPELINE_DEFINITION`` pointing at an
isolated definition file that names the same topics, dataset and collections as the
test's ``Rig``. The function builds its own service with the system clock. HTTP 2xx means
Pub/Sub acks the scheduler's tick; anything else means redelivery.
"""

from __future__ import annotations

import base64
import json
import random
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription
from shared.contracts.messages import RetryRequest
from shared.errors import TransientError
from shared.gcp import firestore_client, subscriber_client
from shared.orchestration.quarantine import stored_payload
from shared.pipeline.definition import read_definition
from shared.retry import runtime
from shared.retry.service import HEARTBEAT_ID
from tests.support.definition_files import write_isolated_definition
from tests.support.rig import GAME_DATE, Rig, isolated_definition

pytestmark = pytest.mark.integration

SOURCE = Path(__file__).resolve().parents[2] / "functions" / "auto_retry_processor" / "main.py"
_MISSING = object()


@pytest.fixture
def make_app(
    local_cloud: LocalCloud, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Callable[[str], FlaskClient]]:
    """Build the function app for the isolated definition of a suffix (env + definition file)."""
    for key, value in local_cloud.env().items():
        monkeypatch.setenv(key, value)
    # create_app writes these two into os.environ; setting them here lets monkeypatch restore them
    monkeypatch.setenv("FUNCTION_TARGET", "handle")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")
    monkeypatch.setattr(runtime, "_service", None)  # retry_service() caches one service per process
    monkeypatch.setattr(sys, "path", list(sys.path))  # the framework appends the source directory
    saved_main = sys.modules.get("main", _MISSING)

    def build(suffix: str) -> FlaskClient:
        definition_file = write_isolated_definition(suffix, tmp_path / f"pipeline-{suffix}.toml")
        monkeypatch.setenv("PIPELINE_DEFINITION", str(definition_file))
        app = functions_framework.create_app(target="handle", source=str(SOURCE), signature_type="cloudevent")
        return app.test_client()

    try:
        yield build
    finally:
        if saved_main is _MISSING:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = saved_main  # type: ignore[assignment]


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique)
    # the function runs on the system clock: the rig's rows are written an hour ago
    rig.clock.set(datetime.now(UTC) - timedelta(hours=1))
    return rig


def tick_event(data: bytes, message_id: str | None = None) -> dict[str, Any]:
    """A structured-mode CloudEvent as Eventarc delivers a Cloud Scheduler → Pub/Sub tick."""
    message_id = message_id or str(uuid.uuid4().int)[:17]
    now = datetime.now(UTC).isoformat().replace("+00:00", "Z")
    return {
        "specversion": "1.0",
        "type": "google.cloud.pubsub.topic.v1.messagePublished",
        "source": "//pubsub.googleapis.com/projects/test-project/topics/auto-retry-trigger",
        "id": message_id,
        "time": now,
        "datacontenttype": "application/json",
        "data": {
            "message": {"data": base64.b64encode(data).decode(), "messageId": message_id, "publishTime": now},
            "subscription": "projects/test-project/subscriptions/auto-retry-trigger-sub",
        },
    }


def post(client: FlaskClient, event: dict[str, Any]) -> Any:
    return client.post("/", data=json.dumps(event), content_type="application/cloudevents+json")


def enqueue_due_row(rig: Rig) -> str:
    svc = runtime.build_retry_service(
        definition=rig.definition, clock=rig.clock, environ=rig.cloud.env(), rng=random.Random(7)
    )
    assert (
        svc.enqueue_failure(
            game_date=GAME_DATE,
            phase=2,
            processor="nbac_schedule",
            error_message="HTTP 503 from stats.nba.com",
            error_type="transient",
            correlation_id="night-retry",
        )
        == "inserted"
    )
    (row,) = svc.queue.rows()
    assert row.next_retry_at is not None and row.next_retry_at < datetime.now(UTC)
    return row.id


def pull_requests(rig: Rig, subscription: str) -> list[RetryRequest]:
    subscriber = subscriber_client()
    response = subscriber.pull(subscription=subscription, max_messages=20, timeout=10, return_immediately=True)
    if response.received_messages:
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
    return [RetryRequest.model_validate_json(m.message.data) for m in response.received_messages]


def retry_subscription(rig: Rig) -> str:
    topic = rig.definition.phase(2).retry_topic
    assert topic is not None
    return ensure_subscription(
        subscriber_client(), rig.cloud.project, topic, f"capture-{topic}", ack_deadline_seconds=10
    )


def queue_rows(rig: Rig) -> list[Any]:
    return list(runtime.build_retry_service(definition=rig.definition, environ=rig.cloud.env()).queue.rows())


def test_definition_file_matches_the_rig(unique: str, tmp_path: Path) -> None:
    assert read_definition(write_isolated_definition(unique, tmp_path / "p.toml")) == isolated_definition(unique)


def test_empty_tick_dispatches_a_due_row(rig: Rig, make_app: Callable[[str], FlaskClient]) -> None:
    queue_id = enqueue_due_row(rig)
    sub = retry_subscription(rig)
    client = make_app(rig.suffix)

    response = post(client, tick_event(b""))
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    (request,) = pull_requests(rig, sub)
    assert (request.queue_id, request.processor_name, request.phase, request.attempt) == (
        queue_id,
        "nbac_schedule",
        2,
        1,
    )
    assert request.game_date == GAME_DATE and request.correlation_id == "night-retry"
    (row,) = queue_rows(rig)
    assert (row.status, row.retry_count) == ("retrying", 1)
    assert row.last_retry_at is not None and abs(datetime.now(UTC) - row.last_retry_at) < timedelta(minutes=5)
    heartbeat = (
        firestore_client(rig.cloud.project)
        .collection(rig.definition.monitor.heartbeat_collection)
        .document(HEARTBEAT_ID)
        .get()
        .to_dict()
    )
    assert heartbeat is not None and heartbeat["dry_run"] is False
    assert len(heartbeat["summary"]["dispatched"]) == 1

    # the scheduler redelivers the tick: the row is claimed, nothing goes out twice
    assert 200 <= post(client, tick_event(b"")).status_code < 300
    assert pull_requests(rig, sub) == []


def quarantine_docs(rig: Rig) -> list[dict[str, Any]]:
    collection = firestore_client(rig.cloud.project).collection(rig.definition.pipeline.quarantine_collection)
    return [d.to_dict() or {} for d in collection.stream()]


def test_malformed_tick_is_acked_and_quarantined(rig: Rig, make_app: Callable[[str], FlaskClient]) -> None:
    enqueue_due_row(rig)
    sub = retry_subscription(rig)
    client = make_app(rig.suffix)
    tick = json.dumps({"max_rows": "lots"}).encode()

    for _ in range(2):  # delivered twice: acked both times, kept once
        response = post(client, tick_event(tick, message_id="4242"))
        assert 200 <= response.status_code < 300, response.get_data(as_text=True)
    (doc,) = quarantine_docs(rig)
    assert doc["transition"] == HEARTBEAT_ID and doc["kind"] == "malformed"
    assert "invalid RetryTick" in doc["reason"] and "max_rows" in doc["reason"]
    assert doc["message_id"] == "4242"
    assert stored_payload(doc) == tick  # the tick itself, not a repr of the event
    # nothing was dispatched or changed
    assert pull_requests(rig, sub) == []
    (row,) = queue_rows(rig)
    assert (row.status, row.retry_count) == ("pending", 0)

    # an event without a readable Pub/Sub message is kept raw, with the reason
    broken = tick_event(b"", message_id="4343")
    broken["data"]["message"]["data"] = "%%% not base64 %%%"
    assert 200 <= post(client, broken).status_code < 300
    raw_docs = [d for d in quarantine_docs(rig) if d["message_id"] is None]
    assert len(raw_docs) == 1 and "base64" in raw_docs[0]["reason"]
    assert b"not base64" in stored_payload(raw_docs[0])


def test_queue_outage_is_not_acked(
    local_cloud: LocalCloud, unique: str, make_app: Callable[[str], FlaskClient], caplog: pytest.LogCaptureFixture
) -> None:
    """No queue table (BigQuery down for this function): the tick raises, Pub/Sub redelivers it."""
    client = make_app(unique)  # a definition whose dataset was never created
    response = post(client, tick_event(b""))
    assert response.status_code >= 500
    errors = [r.exc_info[1] for r in caplog.records if r.exc_info and r.exc_info[1] is not None]
    assert any(isinstance(e, TransientError) and "failed_processor_queue" in str(e) for e in errors), errors
