"""The real-backend harness: each backend works through its official client."""

from __future__ import annotations

import datetime as dt
import os
import subprocess
import sys
from pathlib import Path

import pytest

from deploy.local import emulators
from deploy.local.emulators import EmulatorUnavailableError, LocalCloud

pytestmark = pytest.mark.integration


def test_pubsub_publish_and_pull_through_official_client(cloud: LocalCloud, unique: str) -> None:
    from shared.gcp import publisher_client, subscriber_client

    publisher, subscriber = publisher_client(), subscriber_client()
    topic = publisher.topic_path(cloud.project, f"smoke-{unique}")
    sub = subscriber.subscription_path(cloud.project, f"smoke-sub-{unique}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=sub, topic=topic)
    publisher.publish(topic, b'{"hello": 1}', trigger_id="t-1").result(timeout=10)
    response = subscriber.pull(subscription=sub, max_messages=5, timeout=10)
    assert [m.message.data for m in response.received_messages] == [b'{"hello": 1}']
    assert response.received_messages[0].message.attributes["trigger_id"] == "t-1"
    subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])


def test_firestore_transaction_and_reset(cloud: LocalCloud) -> None:
    from google.cloud import firestore

    from shared.gcp import firestore_client

    client = firestore_client(cloud.project)
    ref = client.collection("smoke").document("counter")

    @firestore.transactional  # type: ignore[misc]
    def bump(tx: firestore.Transaction) -> int:
        snap = ref.get(transaction=tx)
        value = (snap.get("n") if snap.exists else 0) + 1
        tx.set(ref, {"n": value})
        return int(value)

    assert bump(client.transaction()) == 1
    assert bump(client.transaction()) == 2
    cloud.reset_firestore()
    assert not ref.get().exists


def test_bigquery_insert_and_parameterised_query(cloud: LocalCloud, bq_dataset: str) -> None:
    from google.cloud import bigquery

    from shared.gcp_bigquery import bigquery_client

    client = bigquery_client(cloud.project)
    table = bigquery.Table(
        f"{cloud.project}.{bq_dataset}.games",
        schema=[bigquery.SchemaField("game_id", "STRING"), bigquery.SchemaField("game_date", "DATE")],
    )
    table.time_partitioning = bigquery.TimePartitioning(field="game_date")
    client.create_table(table)
    errors = client.insert_rows_json(table, [{"game_id": "20260124_GSW_MIN", "game_date": "2026-01-24"}])
    assert errors == []
    job = client.query(
        f"SELECT game_id FROM `{cloud.project}.{bq_dataset}.games` WHERE game_date = @d",
        job_config=bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("d", "DATE", dt.date(2026, 1, 24))]
        ),
    )
    assert [row["game_id"] for row in job.result()] == ["20260124_GSW_MIN"]


def test_stop_kills_only_its_own_pids(tmp_path: Path) -> None:
    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        own = LocalCloud(project="own-pids", backends=("pubsub",), workdir=tmp_path).start()
        pid = own.pids["pubsub"]
        os.kill(pid, 0)  # alive
        own.stop()
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)
        assert bystander.poll() is None, "stop() must not touch processes it did not start"
    finally:
        bystander.kill()
        bystander.wait()


def test_missing_emulator_jars_name_the_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setattr(emulators, "sdk_root", lambda: tmp_path)
    with pytest.raises(EmulatorUnavailableError, match="google-cloud-cli-pubsub-emulator"):
        emulators.pubsub_jar()
    with pytest.raises(EmulatorUnavailableError, match="google-cloud-cli-firestore-emulator"):
        emulators.firestore_jar()


def test_missing_sdk_names_both_packages(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no gcloud
    monkeypatch.delenv("CLOUDSDK_ROOT_DIR", raising=False)
    monkeypatch.setattr(emulators, "DEFAULT_SDK_LOCATIONS", (str(tmp_path / "nowhere"),))
    with pytest.raises(EmulatorUnavailableError) as info:
        emulators.sdk_root()
    assert "google-cloud-cli-pubsub-emulator" in str(info.value)
    assert "google-cloud-cli-firestore-emulator" in str(info.value)


def test_backend_is_relaunched_when_its_port_is_taken(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """A port probed free can be grabbed by another process before the emulator binds it."""
    import socket

    squatter = socket.socket()
    squatter.bind(("127.0.0.1", 0))
    squatter.listen()
    taken = squatter.getsockname()[1]
    ports = iter([taken])
    real_free_port = emulators.free_port
    monkeypatch.setattr(emulators, "free_port", lambda: next(ports, None) or real_free_port())
    cloud = LocalCloud(project="relaunch", backends=("firestore",), workdir=tmp_path)
    try:
        cloud.start()
        assert cloud.backends["firestore"].port != taken
    finally:
        cloud.stop()
        squatter.close()


def test_port_was_taken_recognises_the_bind_errors() -> None:
    assert emulators.port_was_taken("java.net.BindException: Address already in use")
    assert emulators.port_was_taken("[ERROR] Connection in use: ('127.0.0.1', 8080)")
    assert not emulators.port_was_taken("java.lang.OutOfMemoryError")
