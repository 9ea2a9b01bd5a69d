"""Deeply nested JSON through the functions framework's own request handling: acked and quarantined.

A 200 000-deep body (``{"a":{"a":…}}``) once answered 500: functions-framework parses the
request body as JSON (``cloudevents.conversion.from_http`` → ``json.loads``) before any code
of ours runs, and the parser's ``RecursionError`` escaped as a crash, so Pub/Sub redelivered
it without end. The entrypoints now look at the raw body's nesting before the framework parses
it (``shared.orchestration.body_guard.guard_body_depth``): deeper than
``shared.contracts.decode.MAX_JSON_DEPTH`` levels, it is acked and quarantined with the reason.
A deep JSON payload inside the message's base64 ``data`` (our own decode) is quarantined the
same way, under its message id.

Each app is the real ``functions/<name>/main.py`` built with ``functions_framework.create_app``
(what the CLI and Cloud Functions gen2 do), configured like a deployment (emulator env vars,
``PIPELINE_DEFINITION`` pointing at an isolated definition file).
"""

from __future__ import annotations

import base64
import hashlib
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient

from deploy.local.emulators import LocalCloud
from shared.contracts.decode import MAX_JSON_DEPTH
from shared.gcp import firestore_client
from shared.monitor import runtime as monitor_runtime
from shared.orchestration import runtime, timed_runtime
from shared.retry import runtime as retry_runtime
from shared.schedules import runtime as schedules_runtime
from tests.support.definition_files import write_isolated_definition
from tests.support.rig import GAME_DATE, Rig

pytestmark = pytest.mark.integration

FUNCTIONS_DIR = Path(__file__).resolve().parents[2] / "functions"
TRANSITION = "phase3_to_phase4"
# every function that takes Pub/Sub events, and the name its quarantine documents carry
FUNCTIONS = {
    "phase2_to_phase3": "phase2_to_phase3",
    "phase3_to_phase4": "phase3_to_phase4",
    "phase4_to_phase5": "phase4_to_phase5",
    "phase5_to_phase6": "phase5_to_phase6",
    "schedule_dispatcher": "schedule_dispatcher",
    "grading_readiness": "grading_readiness",
    "phase_transition_monitor": "phase_transition_monitor",
    "auto_retry_processor": "auto_retry_processor",
}
PUBSUB_CE_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
DEPTH = 200_000
DEEP_OBJECT = b'{"a":' * DEPTH + b"1" + b"}" * DEPTH  # valid JSON, 1.2 MB
DEEP_ARRAY = b"[" * DEPTH  # never closed
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
def make_app(rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[[str], FlaskClient]]:
    """Build a function's app configured like a deployment: env vars + a definition file."""
    definition_file = write_isolated_definition(rig.suffix, tmp_path / "pipeline.toml")
    for key, value in rig.cloud.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIPELINE_DEFINITION", str(definition_file))
    monkeypatch.delenv(rig.definition.monitor.slack_webhook_env, raising=False)
    # create_app writes these two into os.environ; setting them here lets monkeypatch restore them
    monkeypatch.setenv("FUNCTION_TARGET", "handle")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")
    # the process-wide services, built on first use
    monkeypatch.setattr(runtime, "_services", {})
    monkeypatch.setattr(timed_runtime, "_timed", {})
    monkeypatch.setattr(monitor_runtime, "_monitor", None)
    monkeypatch.setattr(retry_runtime, "_service", None)
    monkeypatch.setattr(schedules_runtime, "_dispatcher", None)
    monkeypatch.setattr(schedules_runtime, "_quarantine", None)
    monkeypatch.setattr(sys, "path", list(sys.path))  # the framework appends the source directory
    saved_main = sys.modules.get("main", _MISSING)

    def build(function: str = TRANSITION) -> FlaskClient:
        source = FUNCTIONS_DIR / function / "main.py"
        app = functions_framework.create_app(target="handle", source=str(source), signature_type="cloudevent")
        return app.test_client()

    try:
        yield build
    finally:
        if saved_main is _MISSING:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = saved_main  # type: ignore[assignment]


def quarantine_docs(rig: Rig) -> dict[str, dict[str, Any]]:
    fs = firestore_client(rig.cloud.project)
    return {d.id: d.to_dict() or {} for d in fs.collection(rig.definition.pipeline.quarantine_collection).stream()}


def state_docs(rig: Rig) -> list[str]:
    fs = firestore_client(rig.cloud.project)
    return sorted(d.id for d in fs.collection(rig.definition.pipeline.state_collection).list_documents())


def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def push_body(data: bytes, message_id: str) -> dict[str, Any]:
    return {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": message_id,
            "publishTime": rfc3339(datetime.now(UTC)),
        },
        "subscription": "projects/test-project/subscriptions/test",
    }


def post_raw(client: FlaskClient, shape: str, body: bytes, message_id: str) -> Any:
    """``body`` as the request body of one delivery shape."""
    if shape == "push":  # what a push subscription (and the emulator) sends
        return client.post("/", data=body, content_type="application/json")
    if shape == "structured":
        return client.post("/", data=body, content_type="application/cloudevents+json")
    if shape == "binary":  # the CloudEvent attributes in headers, the push body as the request body
        headers = {
            "ce-specversion": "1.0",
            "ce-type": PUBSUB_CE_TYPE,
            "ce-source": "//pubsub.googleapis.com/projects/test-project/topics/t",
            "ce-id": message_id,
            "ce-time": rfc3339(datetime.now(UTC)),
            "Content-Type": "application/json",
        }
        return client.post("/", data=body, headers=headers)
    raise AssertionError(shape)


def post_message(client: FlaskClient, shape: str, data: bytes, message_id: str) -> Any:
    """A well-formed delivery of one message whose (decoded) data is ``data``."""
    body = push_body(data, message_id)
    if shape == "structured":
        event = {
            "specversion": "1.0",
            "type": PUBSUB_CE_TYPE,
            "source": "//pubsub.googleapis.com/projects/test-project/topics/t",
            "id": message_id,
            "time": body["message"]["publishTime"],
            "datacontenttype": "application/json",
            "data": body,
        }
        return post_raw(client, shape, json.dumps(event).encode(), message_id)
    return post_raw(client, shape, json.dumps(body).encode(), message_id)


def nested(depth: int, leaf: Any = 1) -> Any:
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


SHAPES = ("push", "structured", "binary")
TOO_DEEP = f"nested deeper than {MAX_JSON_DEPTH} levels"


# ---------------------------------------------------------------------------------------
# a deep request body: the framework would parse it before our code
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("body", [DEEP_OBJECT, DEEP_ARRAY], ids=["object", "array"])
def test_a_200k_deep_body_is_acked_and_quarantined_with_the_reason(
    make_app: Callable[[str], FlaskClient], rig: Rig, shape: str, body: bytes
) -> None:
    client = make_app(TRANSITION)
    message_id = uuid.uuid4().hex
    for _ in range(2):  # redelivered: acked both times, kept once
        response = post_raw(client, shape, body, message_id)
        assert 200 <= response.status_code < 300, (response.status_code, response.get_data(as_text=True)[:500])
    (doc,) = quarantine_docs(rig).values()
    assert doc["kind"] == "malformed" and doc["transition"] == TRANSITION
    assert TOO_DEEP in doc["reason"], doc["reason"]
    assert doc["payload_size"] == len(body)
    assert doc["payload_sha256"] == hashlib.sha256(body).hexdigest()
    assert doc["payload_truncated"] is True  # capped like any raw payload (L25)
    assert rig.definition.retention.expiry_field in doc
    assert state_docs(rig) == [] and rig.pull_triggers(TRANSITION) == []


def test_every_function_is_listed() -> None:
    """``FUNCTIONS`` is every function directory, and every function the definition deploys."""
    from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, load_definition

    directories = {path.parent.name for path in FUNCTIONS_DIR.glob("*/main.py")}
    assert set(FUNCTIONS) == directories
    assert set(load_definition(DEFAULT_DEFINITION_PATH).function_names()) == directories


@pytest.mark.parametrize("function", sorted(FUNCTIONS))
def test_every_event_function_quarantines_a_deep_body(
    make_app: Callable[[str], FlaskClient], rig: Rig, function: str
) -> None:
    client = make_app(function)
    response = post_raw(client, "push", DEEP_OBJECT, uuid.uuid4().hex)
    assert 200 <= response.status_code < 300, (response.status_code, response.get_data(as_text=True)[:500])
    (doc,) = quarantine_docs(rig).values()
    assert doc["transition"] == FUNCTIONS[function] and doc["kind"] == "malformed"
    assert TOO_DEEP in doc["reason"], doc["reason"]
    assert doc["payload_sha256"] == hashlib.sha256(DEEP_OBJECT).hexdigest()


def test_a_body_at_the_limit_passes_the_guard_and_one_level_more_does_not(
    make_app: Callable[[str], FlaskClient], rig: Rig
) -> None:
    """The push body is one object (level 1); an extra field nests ``MAX_JSON_DEPTH - 1`` levels more."""
    client = make_app(TRANSITION)
    completion = json.dumps(rig.completion("player_game_summary", 3)).encode()
    at_limit = {**push_body(completion, uuid.uuid4().hex), "extra": nested(MAX_JSON_DEPTH - 1)}
    response = post_raw(client, "push", json.dumps(at_limit).encode(), "-")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    assert quarantine_docs(rig) == {}
    assert state_docs(rig) == [f"{TRANSITION}__{GAME_DATE}"]  # recorded: the guard let it through

    over = {**push_body(completion, uuid.uuid4().hex), "extra": nested(MAX_JSON_DEPTH)}
    response = post_raw(client, "push", json.dumps(over).encode(), "-")
    assert response.status_code == 200, response.get_data(as_text=True)[:500]
    (doc,) = quarantine_docs(rig).values()
    assert TOO_DEEP in doc["reason"] and doc["kind"] == "malformed"


# ---------------------------------------------------------------------------------------
# deep JSON inside the message's base64 data: our own decode
# ---------------------------------------------------------------------------------------
@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("data", [DEEP_OBJECT, DEEP_ARRAY], ids=["object", "array"])
def test_deep_json_in_the_message_data_is_quarantined_under_its_message_id(
    make_app: Callable[[str], FlaskClient], rig: Rig, shape: str, data: bytes
) -> None:
    client = make_app(TRANSITION)
    message_id = uuid.uuid4().hex
    response = post_message(client, shape, data, message_id)
    assert 200 <= response.status_code < 300, (response.status_code, response.get_data(as_text=True)[:500])
    (doc,) = quarantine_docs(rig).values()
    assert doc["message_id"] == message_id and doc["kind"] == "malformed"
    assert doc["reason"].startswith(f"data is {TOO_DEEP}"), doc["reason"]
    assert doc["payload_size"] == len(data)
    assert state_docs(rig) == [] and rig.pull_triggers(TRANSITION) == []
