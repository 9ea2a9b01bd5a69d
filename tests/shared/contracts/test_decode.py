"""Decoding Pub/Sub events in every delivery shape, including through functions-framework."""

from __future__ import annotations

import base64
import json
import re
import sys
import textwrap
from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import functions_framework
import pytest
from cloudevents.http import CloudEvent
from flask import Flask
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from shared.contracts.decode import (
    MAX_JSON_DEPTH,
    PubSubMessage,
    decode_completion,
    decode_monitor_tick,
    decode_payload,
    decode_retry_tick,
    extract_pubsub_message,
    json_depth_exceeds,
)
from shared.contracts.messages import (
    CompletionStatus,
    ContractModel,
    ErrorType,
    MonitorTick,
    PhaseTrigger,
    ProcessorCompletion,
    RetryRequest,
    RetryTick,
    TriggerStatus,
    make_trigger_id,
)
from shared.errors import MalformedMessageError, PermanentError

EVENTS = Path(__file__).resolve().parents[2] / "data" / "events"
GAME_DATE = date(2026, 1, 24)
PUBSUB_CE = {
    "type": "google.cloud.pubsub.topic.v1.messagePublished",
    "source": "//pubsub.googleapis.com/projects/test-project/topics/nba-phase3-analytics-complete",
}


def load_event(name: str) -> Any:
    return json.loads((EVENTS / name).read_text(encoding="utf-8"))


def b64(raw: bytes) -> str:
    return base64.b64encode(raw).decode("ascii")


def push_body(data: bytes | str | None, **message: Any) -> dict[str, Any]:
    body: dict[str, Any] = {"message": dict(message), "subscription": "projects/p/subscriptions/s"}
    if data is not None:
        body["message"]["data"] = b64(data) if isinstance(data, bytes) else data
    return body


def completion_payload(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "processor_name": "player_game_summary",
        "phase": 3,
        "execution_id": "exec-1",
        "game_date": "2026-01-24",
        "status": "success",
        "timestamp": "2026-01-25T08:12:45Z",
    }
    payload.update(overrides)
    return payload


def completion_body(**overrides: Any) -> dict[str, Any]:
    return push_body(json.dumps(completion_payload(**overrides)).encode(), messageId="42")


def assert_golden_pgs(completion: ProcessorCompletion) -> None:
    assert completion.processor_name == "player_game_summary"
    assert completion.phase == 3
    assert completion.game_date == GAME_DATE
    assert completion.status is CompletionStatus.SUCCESS
    assert completion.record_count == 312
    assert completion.output_dataset == "nba_analytics"
    assert completion.timestamp == datetime(2026, 1, 25, 8, 12, 45, 123456, tzinfo=UTC)


# ---- golden events -----------------------------------------------------------------------


def test_push_body_golden_event_decodes_message_and_completion() -> None:
    msg, completion = decode_completion(load_event("push_body_completion.json"))
    assert msg.message_id == "13817418196451001"
    assert msg.publish_time == datetime(2026, 1, 25, 8, 12, 46, 512000, tzinfo=UTC)
    assert msg.subscription == "projects/test-project/subscriptions/nba-phase3-analytics-complete-sub"
    assert msg.attributes == {
        "processor_name": "player_game_summary",
        "game_date": "2026-01-24",
        "status": "success",
    }
    assert_golden_pgs(completion)


def test_push_body_without_attributes_gives_empty_attributes() -> None:
    msg, completion = decode_completion(load_event("push_body_no_attributes.json"))
    assert msg.attributes == {}
    assert_golden_pgs(completion)


def test_structured_cloudevent_dict_decodes_its_push_body() -> None:
    msg, completion = decode_completion(load_event("cloudevent_structured_completion.json"))
    assert msg.message_id == "13817418196451003"
    assert msg.subscription == "projects/test-project/subscriptions/nba-phase3-analytics-complete-sub"
    assert_golden_pgs(completion)


def test_binary_cloudevent_fixture_body_decodes_as_cloudevent_object() -> None:
    fixture = load_event("cloudevent_binary_completion.json")
    headers = fixture["headers"]
    event = CloudEvent(
        {"type": headers["ce-type"], "source": headers["ce-source"], "id": headers["ce-id"]}, fixture["body"]
    )
    msg, completion = decode_completion(event)
    assert msg.message_id == "13817418196451004"
    assert_golden_pgs(completion)


def test_prediction_coordinator_golden_event_carries_pct_and_count() -> None:
    _, completion = decode_completion(load_event("push_body_prediction_completion.json"))
    assert completion.processor_name == "prediction_coordinator"
    assert completion.phase == 5
    assert completion.completion_pct == 92.5
    assert completion.record_count == 420
    assert completion.game_date == GAME_DATE


def test_target_date_alias_golden_event_sets_game_date() -> None:
    _, completion = decode_completion(load_event("push_body_target_date_alias.json"))
    assert completion.game_date == GAME_DATE
    assert completion.phase == 5
    assert completion.status is CompletionStatus.PARTIAL


@pytest.mark.parametrize(
    ("name", "reason"),
    [
        ("malformed_bad_base64.json", "data is not valid base64"),
        ("malformed_not_json.json", "data is not valid JSON"),
        ("malformed_missing_game_date.json", "field game_date: Field required"),
        ("malformed_today_literal.json", "field game_date: relative date 'TODAY' is not allowed"),
    ],
)
def test_malformed_golden_events_raise_a_permanent_error_naming_the_problem(name: str, reason: str) -> None:
    event = load_event(name)
    with pytest.raises(MalformedMessageError) as exc_info:
        decode_completion(event)
    assert reason in exc_info.value.message
    assert exc_info.value.context["message_id"] == event["message"]["messageId"]
    assert isinstance(exc_info.value, PermanentError)
    assert "\n" not in str(exc_info.value)


# ---- the shapes extract_pubsub_message accepts --------------------------------------------


def test_cloudevent_object_from_functions_framework_is_accepted() -> None:
    event = CloudEvent(PUBSUB_CE, load_event("push_body_completion.json"))
    msg = extract_pubsub_message(event)
    assert msg.message_id == "13817418196451001"
    assert msg.subscription is not None


@pytest.mark.parametrize("encode", [lambda s: s, lambda s: s.encode("utf-8")], ids=["str", "bytes"])
def test_cloudevent_data_given_as_json_text_is_accepted(encode: Any) -> None:
    event = CloudEvent(PUBSUB_CE, encode(json.dumps(load_event("push_body_completion.json"))))
    _, completion = decode_completion(event)
    assert_golden_pgs(completion)


def test_lookalike_with_data_and_getitem_is_accepted_and_fills_missing_message_id() -> None:
    class Lookalike:
        def __init__(self, data: object, attributes: dict[str, str]) -> None:
            self.data = data
            self._attributes = attributes

        def __getitem__(self, key: str) -> str:
            return self._attributes[key]

    body = push_body(b"{}")
    msg = extract_pubsub_message(Lookalike(body, {"id": "ce-7", "time": "2026-01-25T08:00:00Z"}))
    assert msg.message_id == "ce-7"
    assert msg.publish_time == datetime(2026, 1, 25, 8, tzinfo=UTC)
    assert msg.data == b"{}"


@pytest.mark.parametrize(
    "name", ["push_body_completion.json", "cloudevent_structured_completion.json"], ids=["push", "structured"]
)
@pytest.mark.parametrize("encode", [lambda s: s, lambda s: s.encode("utf-8")], ids=["str", "bytes"])
def test_events_given_as_json_text_are_accepted(name: str, encode: Any) -> None:
    _, completion = decode_completion(encode(json.dumps(load_event(name))))
    assert_golden_pgs(completion)


def test_structured_cloudevent_with_data_base64_is_accepted() -> None:
    body = json.dumps(load_event("push_body_completion.json")).encode()
    event = {"specversion": "1.0", **PUBSUB_CE, "id": "1", "data_base64": b64(body)}
    _, completion = decode_completion(event)
    assert_golden_pgs(completion)


def test_snake_case_message_id_and_publish_time_are_accepted() -> None:
    body = push_body(b"{}", message_id="77", publish_time="2026-01-25T08:00:00.123456789Z")
    msg = extract_pubsub_message(body)
    assert msg.message_id == "77"
    assert msg.publish_time == datetime(2026, 1, 25, 8, 0, 0, 123456, tzinfo=UTC)


def test_numeric_message_id_becomes_a_string() -> None:
    assert extract_pubsub_message(push_body(b"{}", messageId=123)).message_id == "123"


def test_message_without_data_has_empty_bytes() -> None:
    msg = extract_pubsub_message(push_body(None, messageId="1"))
    assert msg == PubSubMessage(b"", {}, "1", None, "projects/p/subscriptions/s")


def test_urlsafe_base64_is_accepted() -> None:
    payload = json.dumps(completion_payload(metadata={"note": "???>>>~~~"})).encode()
    urlsafe = base64.urlsafe_b64encode(payload).decode()
    assert "-" in urlsafe or "_" in urlsafe
    _, completion = decode_completion(push_body(urlsafe))
    assert completion.metadata == {"note": "???>>>~~~"}


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        ("e30", "data is not valid base64"),  # missing padding
        ("e3 0=", "data is not valid base64"),
        ("é30=", "data is not valid base64"),
        ("ab+_", "mixes the standard and URL-safe alphabets"),
    ],
)
def test_base64_is_decoded_strictly(data: str, reason: str) -> None:
    with pytest.raises(MalformedMessageError, match=re.escape(reason)):
        extract_pubsub_message(push_body(data))


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (None, "unsupported event type NoneType"),
        (42, "unsupported event type int"),
        ([], "unsupported event type list"),
        ("[1, 2]", "event is not a JSON object (got array)"),
        (b"\xff\xfe", "event is not valid JSON"),
        ("{", "event is not valid JSON"),
        ({}, "event has no 'message'"),
        ({"data": "e30="}, "event has no 'message'"),
        ({"message": "e30="}, "'message' is not a JSON object (got string)"),
        ({"message": {"data": 5}}, "data must be a base64 string, got number"),
        ({"message": {"attributes": {"a": 1}}}, "attributes must be a JSON object of string values"),
        ({"message": {"attributes": ["a"]}}, "attributes must be a JSON object of string values"),
        ({"message": {"publishTime": "yesterday"}}, "publishTime is not an RFC 3339 timestamp"),
        ({"message": {"publishTime": "2026-01-25T08:00:00"}}, "publishTime has no timezone"),
        ({"message": {"publishTime": 5}}, "publishTime must be a string, got number"),
        ({"message": {"messageId": [1]}}, "messageId must be a string, got array"),
        ({"message": {}, "subscription": 1}, "subscription must be a string, got number"),
        ({"specversion": "1.0", "id": "1"}, "CloudEvent has no data"),
        ({"specversion": "1.0", "data_base64": "!!"}, "CloudEvent data_base64 is not valid base64"),
        ({"specversion": "1.0", "data": "not json"}, "CloudEvent data is not valid JSON"),
        ({"specversion": "1.0", "data": [1]}, "event body is not a JSON object (got array)"),
    ],
)
def test_unrecognised_events_raise_malformed_with_a_reason(event: object, reason: str) -> None:
    with pytest.raises(MalformedMessageError, match=re.escape(reason)):
        extract_pubsub_message(event)


def test_cloudevent_object_without_data_is_malformed() -> None:
    with pytest.raises(MalformedMessageError, match="CloudEvent has no data"):
        extract_pubsub_message(CloudEvent(PUBSUB_CE, None))


# ---- payloads ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("data", "reason"),
    [
        (b"", "message has no data; ProcessorCompletion needs a JSON object"),
        (b"\xff\xfe{}", "data is not valid UTF-8"),
        (b"[1, 2]", "payload is not a JSON object (got array)"),
        (b'"text"', "payload is not a JSON object (got string)"),
        (b"null", "payload is not a JSON object (got null)"),
        (b'{"completion_pct": NaN}', "non-standard JSON constant NaN"),
        (b"[" * 100_000, f"data is nested deeper than {MAX_JSON_DEPTH} levels"),
        (b'{"a":' * 200_000 + b"1" + b"}" * 200_000, f"data is nested deeper than {MAX_JSON_DEPTH} levels"),
        (b"1" * 5000, "data is not valid JSON"),  # beyond Python's int digit limit
    ],
)
def test_payload_problems_are_named(data: bytes, reason: str) -> None:
    with pytest.raises(MalformedMessageError, match=re.escape(reason)) as exc_info:
        decode_payload(PubSubMessage(data, message_id="m-1"), ProcessorCompletion)
    assert exc_info.value.context == {"message_id": "m-1", "contract": "ProcessorCompletion"}


# ---- nesting depth: decided before any parser descends ------------------------------------------


def _depth(value: Any) -> int:
    """The reference: levels of arrays and objects in a parsed value (a scalar is 0, ``[]`` is 1)."""
    if isinstance(value, list):
        return 1 + max(map(_depth, value), default=0)
    if isinstance(value, dict):
        return 1 + max(map(_depth, value.values()), default=0)
    return 0


def _nested(depth: int, leaf: Any = 1, kind: str = "array") -> Any:
    value = leaf
    for _ in range(depth):
        value = [value] if kind == "array" else {"k": value}
    return value


@pytest.mark.parametrize("kind", ["array", "object"])
def test_a_payload_at_the_depth_limit_decodes_and_one_level_more_is_malformed(kind: str) -> None:
    # the payload is level 1, its metadata level 2
    at_limit = completion_payload(metadata={"k": _nested(MAX_JSON_DEPTH - 2, kind=kind)})
    _, completion = decode_completion(push_body(json.dumps(at_limit).encode()))
    assert _depth(completion.metadata) == MAX_JSON_DEPTH - 1
    over = completion_payload(metadata={"k": _nested(MAX_JSON_DEPTH - 1, kind=kind)})
    with pytest.raises(MalformedMessageError) as exc_info:
        decode_completion(push_body(json.dumps(over).encode()))
    assert exc_info.value.message == f"data is nested deeper than {MAX_JSON_DEPTH} levels"


@pytest.mark.parametrize(
    ("event", "reason"),
    [
        (b'{"a":' * 200_000 + b"1" + b"}" * 200_000, "event is nested deeper"),
        ("[" * 200_000, "event is nested deeper"),
        ({"specversion": "1.0", "id": "1", "data": "[" * 200_000}, "CloudEvent data is nested deeper"),
    ],
)
def test_a_deep_event_is_malformed_with_the_limit_in_its_reason(event: object, reason: str) -> None:
    with pytest.raises(MalformedMessageError) as exc_info:
        extract_pubsub_message(event)
    assert exc_info.value.message == f"{reason} than {MAX_JSON_DEPTH} levels"


@pytest.mark.parametrize(
    ("text", "limit", "exceeds"),
    [
        ("[" * 65, 64, True),  # never closed: 65 levels were opened
        ("[" * 64, 64, False),
        ("[" * 64 + "]" * 64, 64, False),
        ("[[]" * 64 + "]" * 64, 64, True),  # no long run of openers, 65 levels all the same
        ("[[]" * 63 + "]" * 63, 64, False),
        ('["' + "[" * 100 + '"]', 3, False),  # brackets in a string do not count
        (r'["\\", ' + "[" * 4 + "]" * 4 + "]", 4, True),  # an escaped backslash does not open a string
        (r'["\"' + "[" * 4 + '"]', 4, False),  # an escaped quote does not close one
        ('{"[": {"]": {"{": {"}": 1}}}}', 3, True),
        ('{"[": {"]": {"{": {"}": 1}}}}', 4, False),
        ("", 0, False),
        ("1", 0, False),
        ("[]", 0, True),
        ("]" * 10 + "[" * 3, 2, True),  # invalid: a parser stops at the first "]"; the count errs towards deep
    ],
)
def test_json_depth_exceeds_counts_levels_outside_strings(text: str, limit: int, exceeds: bool) -> None:
    assert json_depth_exceeds(text, limit) is exceeds
    assert json_depth_exceeds(text.encode(), limit) is exceeds
    assert json_depth_exceeds(memoryview(text.encode("utf-16")), limit) is exceeds  # read as json.loads reads it


_SCALARS = st.none() | st.booleans() | st.integers() | st.text(alphabet='[]{}"\\ab,:\u00e9\u2028\U0001f3c0', max_size=6)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(alphabet='[]{}"\\a', max_size=3), inner, max_size=3)
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(value=_VALUES, limit=st.integers(min_value=0, max_value=8), ascii_only=st.booleans(), pretty=st.booleans())
def test_json_depth_exceeds_is_exact_for_valid_json(value: Any, limit: int, ascii_only: bool, pretty: bool) -> None:
    text = json.dumps(value, ensure_ascii=ascii_only, indent=1 if pretty else None)
    for raw in (text, text.encode("utf-8"), text.encode("utf-16-le"), text.encode("utf-32")):
        assert json_depth_exceeds(raw, limit) is (_depth(value) > limit), (text, limit)


@settings(max_examples=200, deadline=None)
@given(
    depth=st.integers(min_value=0, max_value=300),
    extra=st.integers(min_value=0, max_value=5),
    kind=st.sampled_from(["array", "object"]),
)
def test_json_depth_exceeds_on_deep_chains_and_flat_lists(depth: int, extra: int, kind: str) -> None:
    chain = json.dumps([_nested(depth, kind=kind), [[]] * extra, []])  # one level for the outer list
    assert json_depth_exceeds(chain) is (max(depth, 2 if extra else 1) + 1 > MAX_JSON_DEPTH)


def test_json_depth_exceeds_is_linear_on_large_hostile_texts() -> None:
    """A few MB of brackets: decided in well under a second (one pass per level at most, at C speed)."""
    import time

    hostile = [
        b'{"a":' * 200_000 + b"1" + b"}" * 200_000,
        b"[" + b"[]," * 1_000_000 + b"[]]",
        b"[" + (b"[" * 32 + b"]" * 32 + b",") * 50_000 + b"1]",
        b'["' + b"[" * 3_000_000 + b'"]',
    ]
    started = time.perf_counter()
    assert [json_depth_exceeds(raw) for raw in hostile] == [True, False, False, False]
    assert time.perf_counter() - started < 5.0


def test_validation_errors_list_every_field_with_its_message() -> None:
    body = completion_body(phase="phase_x", status="ok", record_count=-1)
    with pytest.raises(MalformedMessageError) as exc_info:
        decode_completion(body)
    message = exc_info.value.message
    assert message.startswith("invalid ProcessorCompletion: field phase: phase must be 1..9")
    assert "; field status: Input should be 'success'" in message
    assert "; field record_count: Input should be greater than or equal to 0" in message


def test_nested_field_errors_show_their_path() -> None:
    trigger = {"processors_completed": ["a", 5]}
    with pytest.raises(MalformedMessageError, match=r"field processors_completed\[1\]: Input should be a valid string"):
        decode_payload(PubSubMessage(json.dumps(trigger).encode()), PhaseTrigger)


def test_unknown_keys_in_completion_are_kept_not_rejected() -> None:
    _, completion = decode_completion(completion_body(processor_version="3.2.1"))
    assert completion.unknown_fields() == {"processor_version": "3.2.1"}


@pytest.mark.parametrize(
    "event",
    [
        push_body(None),
        push_body(""),
        push_body(b"{}"),
        push_body(b"  \n"),
        {"specversion": "1.0", **PUBSUB_CE, "id": "1", "data": {"message": {}}},
        CloudEvent(PUBSUB_CE, {"message": {"data": ""}}),
    ],
    ids=["no-data", "empty-string", "empty-object", "whitespace", "structured-ce", "cloudevent"],
)
def test_empty_scheduler_payloads_give_the_defaults(event: object) -> None:
    assert decode_monitor_tick(event)[1] == MonitorTick()
    assert decode_retry_tick(event)[1] == RetryTick()


def test_scheduler_payload_values_are_decoded() -> None:
    _, tick = decode_monitor_tick(push_body(b'{"check": "transitions", "lookback_days": 7, "dry_run": true}'))
    assert tick == MonitorTick(lookback_days=7, dry_run=True)
    _, retry = decode_retry_tick(push_body(b'{"max_rows": 200}'))
    assert retry == RetryTick(max_rows=200)


def test_scheduler_payload_typo_is_malformed_not_silently_default() -> None:
    with pytest.raises(MalformedMessageError, match="field dryrun: Extra inputs are not permitted"):
        decode_retry_tick(push_body(b'{"dryrun": true}'))


# ---- lesson L07: one model for publisher and consumer ---------------------------------------


def sample_models() -> list[ContractModel]:
    when = datetime(2026, 1, 25, 3, 0, tzinfo=timezone(-timedelta(hours=5)))
    return [
        PhaseTrigger(
            trigger_id=make_trigger_id("phase5_to_phase6", GAME_DATE, 2),
            transition="phase5_to_phase6",
            source_phase=5,
            target_phase=6,
            game_date=GAME_DATE,
            target_date=GAME_DATE,
            mode=None,
            status=TriggerStatus.PARTIAL,
            reason="completion 92.5% >= 80%",
            generation=2,
            correlation_id="corr-1",
            triggered_at=when,
            processors_completed=["prediction_coordinator"],
            missing_games=["0022500612"],
            export_types=["predictions", "best_bets"],
            metadata={"completion_pct": 92.5, "nested": {"a": [1, 2]}},
        ),
        ProcessorCompletion(
            processor_name="prediction_coordinator",
            phase=5,
            execution_id="exec-9",
            correlation_id="corr-1",
            game_date=GAME_DATE,
            status=CompletionStatus.FAILED,
            record_count=420,
            records_failed=3,
            timestamp=when,
            duration_seconds=12.5,
            error_message="quota exceeded",
            error_type=ErrorType.TRANSIENT,
            completion_pct=92.5,
            metadata={"k": "v"},
        ),
        RetryRequest(
            request_id="r-1",
            queue_id="q-1",
            processor_name="espn_boxscores",
            phase=2,
            game_date=GAME_DATE,
            attempt=2,
            fallback_for="bdl_player_boxscores",
            game_ids=["0022500612"],
            requested_at=when,
        ),
        MonitorTick(lookback_days=3, dry_run=True),
        RetryTick(max_rows=10),
    ]


def test_l07_publisher_and_consumer_share_one_model() -> None:
    for model in sample_models():
        raw = model.to_json_bytes()
        for event in (push_body(raw, messageId="1"), CloudEvent(PUBSUB_CE, push_body(raw))):
            assert decode_payload(extract_pubsub_message(event), type(model)) == model
    completion = sample_models()[1]
    assert decode_completion(push_body(completion.to_json_bytes()))[1] == completion


_offsets = st.integers(min_value=-14 * 60, max_value=14 * 60).map(lambda m: timezone(timedelta(minutes=m)))
_aware = st.datetimes(min_value=datetime(1970, 1, 1), max_value=datetime(2100, 1, 1), timezones=_offsets)
_names = st.text(min_size=1, max_size=20).filter(lambda s: s.strip() == s and s != "")
_json_scalars = st.none() | st.booleans() | st.integers() | st.text(max_size=10)
_metadata = st.dictionaries(st.text(max_size=8), _json_scalars, max_size=4)


@settings(max_examples=150, deadline=None)
@given(
    completion=st.builds(
        ProcessorCompletion,
        processor_name=_names,
        phase=st.integers(1, 9),
        execution_id=_names,
        correlation_id=st.none() | st.text(max_size=10),
        game_date=st.dates(),
        status=st.sampled_from(CompletionStatus),
        record_count=st.integers(min_value=0),
        timestamp=_aware,
        duration_seconds=st.none() | st.floats(min_value=0, allow_infinity=False),
        error_type=st.none() | st.sampled_from(ErrorType),
        completion_pct=st.none() | st.floats(min_value=0, max_value=100),
        metadata=_metadata,
    )
)
def test_l07_any_completion_round_trips_through_the_decode_path(completion: ProcessorCompletion) -> None:
    assert decode_completion(push_body(completion.to_json_bytes()))[1] == completion


# ---- fuzzing: bad input only ever raises MalformedMessageError -----------------------------

_json = st.recursive(
    _json_scalars | st.floats(allow_nan=True, allow_infinity=True),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
    max_leaves=16,
)
_dates = st.dates().map(date.isoformat) | st.sampled_from(["TODAY", "2026-02-30", "2026-01-24T00:00:00", ""])
_field_values: dict[str, st.SearchStrategy[Any]] = {
    "processor_name": st.just("") | st.just("  ") | _json_scalars,
    "phase": st.integers(-1, 11) | st.sampled_from(["2", "phase_3", "Phase9", "phase_0", "x", "3.0"]) | _json,
    "execution_id": _json_scalars,
    "game_date": _dates | _json_scalars,
    "target_date": _dates | _json_scalars,
    "status": st.sampled_from([*CompletionStatus, "ok", "SUCCESS"]) | _json_scalars,
    "timestamp": st.datetimes().map(datetime.isoformat) | _aware.map(datetime.isoformat) | _json_scalars,
    "record_count": st.integers() | _json,
    "completion_pct": st.floats() | _json,
    "duration_seconds": st.floats() | _json_scalars,
    "error_type": st.sampled_from([*ErrorType, "fatal"]) | _json_scalars,
    "metadata": _json,
    "surprise": _json,
}
# A valid completion with up to three fields replaced or removed, so that most fuzz
# cases reach field validation (and some still decode).
_payloads = st.builds(
    lambda base, changes, dropped: {k: v for k, v in {**base, **changes}.items() if k not in dropped},
    st.just(completion_payload()),
    st.dictionaries(st.sampled_from(sorted(_field_values)), st.none(), max_size=3).flatmap(
        lambda keys: st.fixed_dictionaries({key: _field_values[key] for key in keys})
    ),
    st.sets(st.sampled_from(sorted(completion_payload())), max_size=1),
)
_b64_text = st.text(alphabet="ABCDEFabcdef0123456789+/-_=! \n", max_size=24)
_data = (
    _payloads.map(lambda p: b64(json.dumps(p).encode()))
    | _json.map(lambda v: b64(json.dumps(v).encode()))
    | st.binary(max_size=64).map(b64)
    | st.text(max_size=32).map(lambda t: b64(t.encode("utf-8", "surrogatepass")))
    | _b64_text
    | _json_scalars
)
_messages = st.fixed_dictionaries(
    {},
    optional={
        "data": _data,
        "attributes": st.dictionaries(st.text(max_size=5), st.text(max_size=5)) | _json,
        "messageId": st.text(max_size=8) | _json_scalars,
        "publishTime": _aware.map(datetime.isoformat) | st.text(max_size=12) | _json_scalars,
    },
)
_bodies = st.fixed_dictionaries({"message": _messages | _json}, optional={"subscription": _json_scalars})
_wrappers: list[Any] = [
    lambda body: body,
    lambda body: {"specversion": "1.0", **PUBSUB_CE, "id": "1", "data": body},
    lambda body: CloudEvent(PUBSUB_CE, body),
    lambda body: json.dumps(body).encode(),
]
_events = (
    st.tuples(st.sampled_from(_wrappers), _bodies).map(lambda wb: wb[0](wb[1]))
    # well-formed envelopes around a fuzzed payload
    | st.tuples(st.sampled_from(_wrappers), _payloads).map(
        lambda wp: wp[0](push_body(json.dumps(wp[1]).encode(), messageId="1"))
    )
    | _json.map(lambda v: CloudEvent(PUBSUB_CE, v))
    | _json
    | st.binary(max_size=64)
    | st.text(max_size=64)
)


@settings(max_examples=600, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(event=_events)
def test_decode_completion_fuzz_returns_a_completion_or_raises_malformed(event: object) -> None:
    try:
        msg, completion = decode_completion(event)
    except MalformedMessageError as exc:
        assert exc.message and "\n" not in exc.message
    else:
        assert isinstance(msg, PubSubMessage)
        assert isinstance(completion, ProcessorCompletion)


@settings(max_examples=200, deadline=None)
@given(event=_events)
def test_scheduler_decoders_fuzz_return_a_tick_or_raise_malformed(event: object) -> None:
    for decode in (decode_monitor_tick, decode_retry_tick):
        try:
            decode(event)
        except MalformedMessageError as exc:
            assert exc.message


# ---- through functions-framework 3.x (what a deployed function really receives) ------------

_PROBE = """
    import json
    import pathlib

    import functions_framework

    from shared.contracts.decode import decode_completion

    OUT = pathlib.Path(__file__).with_name("decoded.json")


    @functions_framework.cloud_event
    def contracts_probe(cloud_event):
        msg, completion = decode_completion(cloud_event)
        OUT.write_text(json.dumps({
            "event_type": type(cloud_event).__name__,
            "message_id": msg.message_id,
            "publish_time": msg.publish_time.isoformat() if msg.publish_time else None,
            "subscription": msg.subscription,
            "attributes": msg.attributes,
            "completion": completion.model_dump(mode="json"),
        }))
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Flask, Path]]:
    directory = tmp_path_factory.mktemp("ff_probe")
    source = directory / "contracts_probe_main.py"
    source.write_text(textwrap.dedent(_PROBE), encoding="utf-8")
    path_before = list(sys.path)
    app = functions_framework.create_app(target="contracts_probe", source=str(source))
    yield app, directory / "decoded.json"
    sys.modules.pop("contracts_probe_main", None)
    sys.path[:] = path_before


def _post(probe: tuple[Flask, Path], **request: Any) -> dict[str, Any]:
    app, out = probe
    out.unlink(missing_ok=True)
    response = app.test_client().post("/", **request)
    assert response.status_code == 200, response.get_data(as_text=True)
    result: dict[str, Any] = json.loads(out.read_text(encoding="utf-8"))
    assert result["event_type"] == "CloudEvent"
    assert result["completion"]["processor_name"] == "player_game_summary"
    assert result["completion"]["game_date"] == "2026-01-24"
    assert result["completion"]["phase"] == 3
    assert result["completion"]["record_count"] == 312
    return result


def test_functions_framework_converts_a_raw_push_body_into_a_cloudevent(probe: tuple[Flask, Path]) -> None:
    result = _post(probe, json=load_event("push_body_completion.json"))
    assert result["message_id"] == "13817418196451001"
    assert result["publish_time"] == "2026-01-25T08:12:46.512000+00:00"
    assert result["attributes"]["status"] == "success"
    # functions-framework keeps only the message when it converts a raw push body.
    assert result["subscription"] is None


def test_functions_framework_raw_push_body_without_attributes(probe: tuple[Flask, Path]) -> None:
    result = _post(probe, json=load_event("push_body_no_attributes.json"))
    assert result["attributes"] == {}


def test_functions_framework_structured_cloudevent(probe: tuple[Flask, Path]) -> None:
    result = _post(
        probe,
        data=json.dumps(load_event("cloudevent_structured_completion.json")),
        content_type="application/cloudevents+json",
    )
    assert result["message_id"] == "13817418196451003"
    assert result["subscription"] == "projects/test-project/subscriptions/nba-phase3-analytics-complete-sub"


def test_functions_framework_binary_cloudevent(probe: tuple[Flask, Path]) -> None:
    fixture = load_event("cloudevent_binary_completion.json")
    result = _post(probe, headers=fixture["headers"], data=json.dumps(fixture["body"]))
    assert result["message_id"] == "13817418196451004"
    assert result["publish_time"] == "2026-01-25T08:12:49.777000+00:00"
    assert result["subscription"] == "projects/test-project/subscriptions/nba-phase3-analytics-complete-sub"
