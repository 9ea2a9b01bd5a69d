"""The transition entrypoints through the functions framework's own request handling.

Each test builds the real ``functions/phaseN_to_phaseM/main.py`` app with
``functions_framework.create_app`` (exactly what the ``functions-framework`` CLI and Cloud
Functions gen2 do) and POSTs what Pub/Sub / Eventarc would deliver: a raw push body, a
structured-mode CloudEvent and a binary-mode CloudEvent. The function reads its config
like in production: the emulator env vars and ``PIPELINE_DEFINITION`` pointing at an
isolated definition file. HTTP 2xx = Pub/Sub acks; anything else = redelivery.

Loading several ``main.py`` files in one process: functions-framework imports the source
as a module named after the file (``main``), replaces ``sys.modules["main"]`` and appends
the source directory to ``sys.path``. Each app keeps a reference to its own ``handle``,
so apps of different transitions coexist; the ``make_app`` fixture restores
``sys.modules["main"]``, ``sys.path`` and the env vars the framework sets.
"""

from __future__ import annotations

import base64
import json
import sys
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from flask.testing import FlaskClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from deploy.local.emulators import LocalCloud, free_port
from shared.gcp import firestore_client
from shared.orchestration import runtime
from shared.orchestration.publisher import TriggerPublisher
from shared.orchestration.quarantine import stored_payload
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import read_definition
from tests.support.definition_files import write_isolated_definition
from tests.support.rig import GAME_DATE, Rig, isolated_definition, push_body, short_retry_publisher

integration = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO / "functions"
EVENTS_DIR = REPO / "tests" / "data" / "events"
TRANSITION = "phase3_to_phase4"
TRANSITIONS = ("phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5", "phase5_to_phase6")
PHASE3 = [
    "player_game_summary",
    "team_offense_game_summary",
    "team_defense_game_summary",
    "upcoming_player_game_context",
    "upcoming_team_game_context",
]
PUBSUB_CE_TYPE = "google.cloud.pubsub.topic.v1.messagePublished"
_MISSING = object()


def source_of(transition: str) -> Path:
    return FUNCTIONS_DIR / transition / "main.py"


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


@pytest.fixture
def make_app(rig: Rig, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Callable[..., FlaskClient]]:
    """Build a function app configured like a deployment: env vars + a definition file."""
    definition_file = write_isolated_definition(rig.suffix, tmp_path / "pipeline.toml")
    for key, value in rig.cloud.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("PIPELINE_DEFINITION", str(definition_file))
    # create_app writes these two into os.environ; setting them here lets monkeypatch restore them
    monkeypatch.setenv("FUNCTION_TARGET", "handle")
    monkeypatch.setenv("FUNCTION_SIGNATURE_TYPE", "cloudevent")
    monkeypatch.setattr(runtime, "_services", {})  # service_for caches one service per transition
    monkeypatch.setattr(sys, "path", list(sys.path))  # the framework appends the source directory
    saved_main = sys.modules.get("main", _MISSING)

    def build(transition: str = TRANSITION) -> FlaskClient:
        app = functions_framework.create_app(
            target="handle", source=str(source_of(transition)), signature_type="cloudevent"
        )
        return app.test_client()

    try:
        yield build
    finally:
        if saved_main is _MISSING:
            sys.modules.pop("main", None)
        else:
            sys.modules["main"] = saved_main  # type: ignore[assignment]


def current_service(transition: str = TRANSITION) -> TransitionService:
    """The service the function process built (or was given) for ``transition``."""
    return runtime._services[transition]


# ---------------------------------------------------------------------------------------
# envelopes
# ---------------------------------------------------------------------------------------
def rfc3339(when: datetime) -> str:
    return when.astimezone(UTC).isoformat().replace("+00:00", "Z")


def b64(data: bytes) -> str:
    return base64.b64encode(data).decode()


def golden(name: str) -> dict[str, Any]:
    return json.loads((EVENTS_DIR / name).read_text())


def _fill_message(message: dict[str, Any], data: str, message_id: str, publish_time: datetime) -> None:
    message["data"] = data
    for key in ("messageId", "message_id"):
        if key in message:
            message[key] = message_id
    for key in ("publishTime", "publish_time"):
        if key in message:
            message[key] = rfc3339(publish_time)


def push_from_golden(name: str, data: str, message_id: str, publish_time: datetime) -> dict[str, Any]:
    body = golden(name)
    _fill_message(body["message"], data, message_id, publish_time)
    return body


def structured_event(data: str, message_id: str, publish_time: datetime) -> dict[str, Any]:
    event = golden("cloudevent_structured_completion.json")
    _fill_message(event["data"]["message"], data, message_id, publish_time)
    event["id"], event["time"] = message_id, rfc3339(publish_time)
    return event


def binary_event(data: str, message_id: str, publish_time: datetime) -> dict[str, Any]:
    event = golden("cloudevent_binary_completion.json")
    _fill_message(event["body"]["message"], data, message_id, publish_time)
    event["headers"]["ce-id"], event["headers"]["ce-time"] = message_id, rfc3339(publish_time)
    return event


def post_push(client: FlaskClient, body: dict[str, Any]) -> Any:
    return client.post("/", data=json.dumps(body), content_type="application/json")


def post_structured(client: FlaskClient, event: dict[str, Any]) -> Any:
    return client.post("/", data=json.dumps(event), content_type="application/cloudevents+json")


def post_binary(client: FlaskClient, event: dict[str, Any]) -> Any:
    return client.post("/", data=json.dumps(event["body"]), headers=event["headers"])


def post_shape(client: FlaskClient, shape: str, data: str, message_id: str, publish_time: datetime) -> Any:
    if shape == "push":
        return post_push(client, push_from_golden("push_body_completion.json", data, message_id, publish_time))
    if shape == "push_no_attributes":
        body = push_from_golden("push_body_no_attributes.json", data, message_id, publish_time)
        assert "attributes" not in body["message"]
        return post_push(client, body)
    if shape == "structured":
        return post_structured(client, structured_event(data, message_id, publish_time))
    if shape == "binary":
        return post_binary(client, binary_event(data, message_id, publish_time))
    raise AssertionError(shape)


SHAPES = ("push", "push_no_attributes", "structured", "binary")


def quarantine_docs(rig: Rig) -> dict[str, dict[str, Any]]:
    fs = firestore_client(rig.cloud.project)
    return {d.id: d.to_dict() or {} for d in fs.collection(rig.definition.pipeline.quarantine_collection).stream()}


def quarantined_for(rig: Rig, message_id: str) -> list[dict[str, Any]]:
    """Quarantine documents of one delivery: by message id, or (undecodable envelope) by its raw copy."""
    found = []
    for doc in quarantine_docs(rig).values():
        raw = stored_payload(doc)  # the first bytes, as text or base64
        if doc.get("message_id") == message_id or (doc.get("message_id") is None and message_id.encode() in raw):
            found.append(doc)
    return found


def state_docs(rig: Rig) -> list[str]:
    fs = firestore_client(rig.cloud.project)
    # list_documents: a date whose completions exist has a (possibly missing) parent document
    return sorted(d.id for d in fs.collection(rig.definition.pipeline.state_collection).list_documents())


# ---------------------------------------------------------------------------------------
# the definition file the processes read
# ---------------------------------------------------------------------------------------
def test_definition_file_equals_isolated_definition(tmp_path: Path) -> None:
    suffix = uuid.uuid4().hex[:10]
    path = write_isolated_definition(suffix, tmp_path / "nested" / "pipeline.toml")
    assert read_definition(path) == isolated_definition(suffix)
    assert read_definition(path) != isolated_definition(suffix + "x")


# ---------------------------------------------------------------------------------------
# 1. every envelope shape
# ---------------------------------------------------------------------------------------
@integration
def test_every_envelope_shape_is_acked_recorded_and_triggers_once(
    make_app: Callable[..., FlaskClient], rig: Rig
) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    client = make_app()  # production wiring: service built from env + definition file, system clock
    now = datetime.now(UTC)
    plan = [
        ("structured", "player_game_summary"),
        ("push", "upcoming_player_game_context"),
        ("binary", "team_offense_game_summary"),
        ("push_no_attributes", "team_defense_game_summary"),
        ("binary", "upcoming_team_game_context"),
    ]
    for shape, processor in plan:
        data = b64(json.dumps(rig.completion(processor, 3)).encode())
        response = post_shape(client, shape, data, uuid.uuid4().hex, now)
        assert 200 <= response.status_code < 300, (shape, response.status_code, response.get_data(as_text=True))

    state = current_service().state.load(GAME_DATE)
    assert sorted(c.processor for c in state.completions) == sorted(PHASE3)
    assert state.triggered_current is not None
    triggers = rig.pull_triggers(TRANSITION)
    assert [t.trigger_id for t in triggers] == [f"{TRANSITION}:{GAME_DATE}:g1:overnight"]
    assert triggers[0].game_date == GAME_DATE and triggers[0].mode == "overnight"
    assert quarantine_docs(rig) == {}


@integration
def test_golden_envelopes_verbatim_are_recorded_once(make_app: Callable[..., FlaskClient], rig: Rig) -> None:
    client = make_app()
    # the golden files were published on 2026-01-25 08:12Z: the rig's clock (14:00Z) keeps them fresh
    runtime._services[TRANSITION] = rig.services[TRANSITION]
    responses = [
        post_push(client, golden("push_body_completion.json")),
        post_push(client, golden("push_body_no_attributes.json")),
        post_structured(client, golden("cloudevent_structured_completion.json")),
        post_binary(client, golden("cloudevent_binary_completion.json")),
    ]
    assert [r.status_code for r in responses] == [200] * 4
    state = current_service().state.load(GAME_DATE)
    # four deliveries of one player_game_summary run (same execution id): recorded once
    assert [(c.processor, c.execution_id) for c in state.completions] == [
        ("player_game_summary", "pgs-20260125T081245-7f3a")
    ]
    assert state.triggered_current is None
    assert rig.pull_triggers(TRANSITION) == []
    assert quarantine_docs(rig) == {}


# ---------------------------------------------------------------------------------------
# 2. malformed and fuzzed input: acked (2xx), quarantined with a reason, never a trigger
# ---------------------------------------------------------------------------------------
_json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=10), inner, max_size=4),
    max_leaves=12,
)
_SPECIAL_PAYLOADS = [
    b"",
    b"   \n",
    b"null",
    b"NaN",
    b"[1e999]",
    b"[" * 5000,
    b'{"a":' * 3000,
    b"\xff\xfe\x00",
    b'{"phase": 3}',
    b'{"processor_name": "player_game_summary", "phase": 3}',
]
_REQUIRED = ["processor_name", "phase", "execution_id", "game_date", "status", "timestamp"]


@st.composite
def _completion_missing_a_field(draw: st.DrawFn) -> bytes:
    payload: dict[str, Any] = {
        "processor_name": draw(st.sampled_from(PHASE3)),
        "phase": 3,
        "execution_id": uuid.uuid4().hex,
        "game_date": GAME_DATE.isoformat(),
        "status": "success",
        "timestamp": datetime.now(UTC).isoformat(),
    }
    del payload[draw(st.sampled_from(_REQUIRED))]
    payload.update(draw(st.dictionaries(st.text(max_size=8), _json_values, max_size=3)))
    return json.dumps(payload).encode()


@st.composite
def _completion_with_a_bad_value(draw: st.DrawFn) -> bytes:
    bad = {
        "phase": st.sampled_from([0, 10, -3, "three", True, None, 3.5, "phase", [3]]),
        "game_date": st.sampled_from(["TODAY", "2026-02-30", "20260124", "", None, 20260124, "2026-1-24"]),
        "status": st.sampled_from(["done", "", None, 1, "SUCCESS!"]),
        "timestamp": st.sampled_from(["2026-01-25T08:00:00", "yesterday", "", None, 5]),
        "processor_name": st.sampled_from(["", "   ", None, 7, []]),
        "record_count": st.sampled_from([-1, "many", 1.5]),
    }
    key = draw(st.sampled_from(sorted(bad)))
    payload: dict[str, Any] = {
        "processor_name": "player_game_summary",
        "phase": 3,
        "execution_id": uuid.uuid4().hex,
        "game_date": GAME_DATE.isoformat(),
        "status": "success",
        "timestamp": datetime.now(UTC).isoformat(),
        key: draw(bad[key]),
    }
    return json.dumps(payload).encode()


@pytest.fixture
def fuzz_client(make_app: Callable[..., FlaskClient]) -> FlaskClient:
    """One app for all examples of a hypothesis test (function-scoped fixtures are not reset)."""
    return make_app()


# the `data` field of the Pub/Sub message: base64 of garbage, or a garbage string itself
_garbage_data = st.one_of(
    st.binary(max_size=200).map(b64),
    _json_values.map(lambda v: b64(json.dumps(v).encode())),
    st.sampled_from(_SPECIAL_PAYLOADS).map(b64),
    _completion_missing_a_field().map(b64),
    _completion_with_a_bad_value().map(b64),
    st.text(max_size=60),  # not base64 at all (or accidentally base64 of garbage)
)


@integration
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=_garbage_data, shape=st.sampled_from(SHAPES))
def test_fuzzed_payloads_are_acked_and_quarantined_never_triggered(
    fuzz_client: FlaskClient, rig: Rig, data: str, shape: str
) -> None:
    client = fuzz_client
    message_id = uuid.uuid4().hex
    response = post_shape(client, shape, data, message_id, datetime.now(UTC))
    assert 200 <= response.status_code < 300, (shape, data, response.status_code, response.get_data(as_text=True))
    docs = quarantined_for(rig, message_id)
    assert docs, f"no quarantine document for {shape} delivery {message_id} with data {data!r}"
    assert all(d["kind"] == "malformed" and d["reason"] and d["transition"] == TRANSITION for d in docs)
    assert state_docs(rig) == []  # nothing recorded, so nothing can ever trigger
    assert rig.pull_triggers(TRANSITION) == []


MALFORMED_REASONS = {
    "malformed_bad_base64.json": "base64",
    "malformed_missing_game_date.json": "game_date",
    "malformed_not_json.json": "json",
    "malformed_today_literal.json": "relative date",
}


@integration
def test_golden_malformed_events_are_acked_and_quarantined(make_app: Callable[..., FlaskClient], rig: Rig) -> None:
    client = make_app()
    runtime._services[TRANSITION] = rig.services[TRANSITION]  # the goldens' publish times are fresh for it
    assert sorted(p.name for p in EVENTS_DIR.glob("malformed_*.json")) == sorted(MALFORMED_REASONS)
    for name, expected in MALFORMED_REASONS.items():
        body = golden(name)
        message_id = body["message"]["messageId"]
        for post in (
            lambda b=body: post_push(client, b),
            lambda b=body, m=message_id: post_structured(
                client, {"specversion": "1.0", "type": PUBSUB_CE_TYPE, "source": "//pubsub", "id": m, "data": b}
            ),
        ):
            response = post()
            assert response.status_code == 200, (name, response.get_data(as_text=True))
        docs = quarantined_for(rig, message_id)
        assert docs, name
        assert all(expected in d["reason"].lower() for d in docs), (name, [d["reason"] for d in docs])
        assert all(d["kind"] == "malformed" for d in docs)
    assert state_docs(rig) == []
    assert rig.pull_triggers(TRANSITION) == []


@integration
def test_completion_of_the_wrong_phase_is_quarantined(make_app: Callable[..., FlaskClient], rig: Rig) -> None:
    # all four entrypoints loaded in one process: each app keeps its own `handle`
    clients = {t: make_app(t) for t in TRANSITIONS}
    now = datetime.now(UTC)
    phase4 = b64(json.dumps(rig.completion("ml_feature_store", 4)).encode())
    wrong_id, right_id = uuid.uuid4().hex, uuid.uuid4().hex
    assert post_shape(clients[TRANSITION], "push", phase4, wrong_id, now).status_code == 200
    assert post_shape(clients["phase4_to_phase5"], "push", phase4, right_id, now).status_code == 200

    (doc,) = quarantined_for(rig, wrong_id)
    assert doc["kind"] == "malformed" and doc["transition"] == TRANSITION
    assert "phase 4" in doc["reason"] and "listens to phase 3" in doc["reason"]
    assert quarantined_for(rig, right_id) == []
    # the 4→5 function recorded it; the 3→4 function recorded nothing
    assert [c.processor for c in current_service("phase4_to_phase5").state.load(GAME_DATE).completions] == [
        "ml_feature_store"
    ]
    assert state_docs(rig) == [f"phase4_to_phase5__{GAME_DATE}"]
    for transition in TRANSITIONS:
        assert rig.pull_triggers(transition) == []


@integration
@pytest.mark.parametrize("encoding", ["utf-8", "base64"])
def test_l25_a_1mb_bad_message_is_quarantined_capped_with_its_size_hash_and_expiry(
    make_app: Callable[..., FlaskClient], rig: Rig, encoding: str
) -> None:
    """Lessons L22/L25: 300 bad messages once left 40 MB in quarantine. The payload is capped at
    ``[retention] quarantine_max_payload_bytes`` and the document expires (its TTL policy deletes it)."""
    import hashlib

    retention = rig.definition.retention
    cap = retention.quarantine_max_payload_bytes
    if encoding == "utf-8":  # not JSON; a 2-byte character straddles the cap
        data = ("x" * (cap - 1) + "é" + "not json " * 120_000).encode()
    else:  # not UTF-8 at all
        data = bytes(range(256)) * 4_096
    assert len(data) >= 1_000_000
    client = make_app()
    message_id = uuid.uuid4().hex
    response = post_shape(client, "push", b64(data), message_id, datetime.now(UTC))
    assert 200 <= response.status_code < 300, response.get_data(as_text=True)

    (doc,) = quarantined_for(rig, message_id)
    assert doc["kind"] == "malformed" and doc["reason"] and len(doc["reason"]) <= 4_000
    assert doc["payload_size"] == len(data) and doc["payload_truncated"] is True
    assert doc["payload_sha256"] == hashlib.sha256(data).hexdigest()
    assert doc["payload_encoding"] == encoding
    stored = stored_payload(doc)
    if encoding == "utf-8":  # the character cut by the cap is dropped, the text stays valid
        assert doc["data_text"] == "x" * (cap - 1) and "data_base64" not in doc
    else:
        assert stored == data[:cap] and "data_text" not in doc
    assert len(stored) <= cap
    expires = doc[retention.expiry_field]
    assert expires - doc["received_at"] == timedelta(days=retention.quarantine_days)
    # the document is a few kB whatever the message's size
    assert len(json.dumps(doc, default=str)) < 2 * cap + 8_000
    assert state_docs(rig) == [] and rig.pull_triggers(TRANSITION) == []


# ---------------------------------------------------------------------------------------
# 3. stale events
# ---------------------------------------------------------------------------------------
@integration
def test_stale_event_is_acked_quarantined_and_alerted(
    make_app: Callable[..., FlaskClient], rig: Rig, capsys: pytest.CaptureFixture[str]
) -> None:
    client = make_app()
    max_age = rig.definition.pipeline.max_event_age_minutes
    old = datetime.now(UTC) - timedelta(minutes=max_age + 5)
    for shape, processor in zip(SHAPES, PHASE3, strict=False):
        data = b64(json.dumps(rig.completion(processor, 3)).encode())
        message_id = uuid.uuid4().hex
        response = post_shape(client, shape, data, message_id, old)
        assert response.status_code == 200, (shape, response.get_data(as_text=True))
        (doc,) = quarantined_for(rig, message_id)
        assert doc["kind"] == "stale" and "stale event" in doc["reason"], doc
    assert state_docs(rig) == []
    assert rig.pull_triggers(TRANSITION) == []
    alerts = []
    for line in capsys.readouterr().out.splitlines():
        try:
            entry = json.loads(line)
        except ValueError:
            continue
        labels = entry.get("logging.googleapis.com/labels", {}) if isinstance(entry, dict) else {}
        if labels.get("alert") == "stale_event":
            alerts.append(entry)
    assert len(alerts) == len(SHAPES) and all(a["severity"] == "ERROR" for a in alerts)


# ---------------------------------------------------------------------------------------
# 4. transient failure → non-2xx → redelivery finishes the job (L01)
# ---------------------------------------------------------------------------------------
@integration
def test_l01_publish_failure_leaves_date_retriggerable_via_http(
    make_app: Callable[..., FlaskClient], rig: Rig, monkeypatch: pytest.MonkeyPatch
) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    good_pubsub = rig.cloud.env()["PUBSUB_EMULATOR_HOST"]
    client = make_app()
    # the function instance starts with Pub/Sub pointing at a port nobody listens on
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    broken = runtime.build_service(TRANSITION)
    # bounded retries so the failure surfaces in seconds (the default publish retry runs 60 s)
    dead_client = short_retry_publisher()
    target_topic = rig.definition.target_topic(rig.definition.transition(TRANSITION))
    broken.publisher = TriggerPublisher(dead_client, rig.cloud.project, target_topic, timeout=10.0)
    runtime._services[TRANSITION] = broken

    now = datetime.now(UTC)
    bodies = [
        push_body(rig.completion(p, 3), {}, uuid.uuid4().hex, now)
        for p in ["player_game_summary", "upcoming_player_game_context", "team_offense_game_summary"]
    ]
    assert [post_push(client, b).status_code for b in bodies[:2]] == [200, 200]  # waiting: nothing to publish
    failed = post_push(client, bodies[2])  # ready → publish fails → raise → 500 → Pub/Sub redelivers
    assert failed.status_code == 500, failed.get_data(as_text=True)

    state = broken.state.load(GAME_DATE)
    # `publishing`: the publish may have reached the server; the stored intent is sent again (L27)
    assert state.triggered_current is None and state.claim is None and state.status == "publishing"
    assert state.intent is not None
    assert len(state.completions) == 3

    # a fresh instance with a working publisher gets the redelivery of the same message
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", good_pubsub)
    del runtime._services[TRANSITION]
    redelivered = post_push(client, bodies[2])
    assert redelivered.status_code == 200, redelivered.get_data(as_text=True)
    assert current_service() is not broken
    later = [
        push_body(rig.completion(p, 3), {}, uuid.uuid4().hex, now)
        for p in ["team_defense_game_summary", "upcoming_team_game_context"]
    ]
    assert [post_push(client, b).status_code for b in [bodies[2], *later]] == [200] * 3

    triggers = rig.pull_triggers(TRANSITION)
    assert [t.trigger_id for t in triggers] == [f"{TRANSITION}:{GAME_DATE}:g1:overnight"]
    latched = current_service().state.load(GAME_DATE)
    assert latched.triggered_current is not None and latched.generation == 1
    dead_client.stop()


# ---------------------------------------------------------------------------------------
# valid-looking completions the state store cannot hold: must be acked and quarantined
# ---------------------------------------------------------------------------------------
def _unstorable(case: str, completion: dict[str, Any]) -> bytes:
    if case == "record_count_over_int64":
        completion["record_count"] = 2**63  # ProcessorCompletion has no upper bound; Firestore is int64
        return json.dumps(completion).encode()
    if case == "error_message_over_1mib":
        completion["status"], completion["error_type"] = "failed", "permanent"
        completion["error_message"] = "Traceback (most recent call last):\n" + "  frame\n" * 160_000  # 1.28 MB
        return json.dumps(completion).encode()
    if case == "lone_surrogate_in_error_message":
        # what json.dumps writes for a str decoded with surrogateescape (e.g. a non-UTF-8 file name)
        completion["status"], completion["error_message"] = "failed", "cannot open /data/caf\udce9.csv"
        return json.dumps(completion).encode()
    raise AssertionError(case)


@integration
def test_an_error_message_over_1mib_is_recorded_capped_not_quarantined(
    make_app: Callable[..., FlaskClient], rig: Rig
) -> None:
    """L22: what goes into a document is capped; the completion itself counts as received."""
    client = make_app()
    message_id = uuid.uuid4().hex
    data = b64(_unstorable("error_message_over_1mib", rig.completion("player_game_summary", 3)))
    response = post_shape(client, "push", data, message_id, datetime.now(UTC))
    assert 200 <= response.status_code < 300, response.status_code
    assert quarantined_for(rig, message_id) == []
    (doc,) = [d for d in rig.completion_docs("phase3_to_phase4") if d.get("message_id") == message_id]
    assert doc["status"] == "failed" and len(doc["error_message"]) == 2000 and doc["error_message"].endswith("...")


@integration
@pytest.mark.parametrize("case", ["record_count_over_int64", "lone_surrogate_in_error_message"])
def test_completion_the_state_store_rejects_is_acked_and_quarantined(
    make_app: Callable[..., FlaskClient], rig: Rig, case: str
) -> None:
    client = make_app()
    message_id = uuid.uuid4().hex
    data = b64(_unstorable(case, rig.completion("player_game_summary", 3)))
    response = post_shape(client, "push", data, message_id, datetime.now(UTC))
    assert 200 <= response.status_code < 300, (case, response.status_code)
    docs = quarantined_for(rig, message_id)
    assert docs and all(d["kind"] == "malformed" and d["reason"] for d in docs)
    assert rig.pull_triggers(TRANSITION) == []
