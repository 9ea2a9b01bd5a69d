"""Decode Pub/Sub events, in every shape a function may receive, into contract models.

Shapes accepted by ``extract_pubsub_message``:

* a ``cloudevents.http.CloudEvent`` (what functions-framework passes to a
  ``@functions_framework.cloud_event`` function), or any object with ``.data`` and
  ``get``/``__getitem__`` for its CloudEvent attributes; ``.data`` is the push-style
  body ``{"message": {...}, "subscription": ...}`` as a dict or as JSON bytes/str;
* a structured-mode CloudEvent dict (``specversion`` + ``data`` or ``data_base64``);
* a raw Pub/Sub push body ``{"message": {"data": <base64>, "attributes": {...},
  "messageId"|"message_id": ..., "publishTime"|"publish_time": ...}, "subscription": ...}``;
* bytes or str holding any of those as JSON.

Every failure raises ``MalformedMessageError`` (permanent: ack and quarantine) with a
one-line reason; no other exception escapes for bad input. JSON nested deeper than
``MAX_JSON_DEPTH`` is one: ``json_depth_exceeds`` decides it before any parser descends.
"""

from __future__ import annotations

import base64
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from itertools import accumulate, cycle
from operator import mul
from typing import Any, Final, NoReturn, TypeVar

from pydantic import BaseModel, ValidationError

from shared.contracts.messages import MonitorTick, ProcessorCompletion, RetryTick
from shared.errors import MalformedMessageError

ModelT = TypeVar("ModelT", bound=BaseModel)

_URLSAFE_TO_STANDARD = str.maketrans("-_", "+/")
_JSON_KINDS: dict[type, str] = {
    dict: "object",
    list: "array",
    str: "string",
    int: "number",
    float: "number",
    bool: "boolean",
    type(None): "null",
}

MAX_JSON_DEPTH: Final = 64
"""The deepest nesting of JSON arrays and objects any function takes, in a request body or in a
message's data (the top-level value is level 1). A Pub/Sub push body is 3 levels deep, a
structured CloudEvent carrying one 4, a completion 2 or 3 (its ``metadata``): anything deeper is
malformed (acked and quarantined), and far below the depth at which ``json.loads`` raises
``RecursionError``. The one place the limit is set: the entrypoints' guard on the request body
(``shared.orchestration.entrypoint.guard_body_depth``) and ``_load_json`` both read it."""

_NOT_BRACKET_OR_QUOTE = bytes(c for c in range(256) if c not in b'[]{}"')
_OBJECT_TO_ARRAY = bytes.maketrans(b"{}", b"[]")
_BRACKET_RUNS = re.compile(rb"\[+|\]+")


def _utf8(raw: str | bytes | bytearray | memoryview) -> bytes:
    """``raw`` as UTF-8 bytes, decoded first as ``json.loads`` decodes bytes (UTF-8, -16 or -32)."""
    if isinstance(raw, str):
        return raw.encode("utf-8", "surrogatepass")
    data = bytes(raw)
    encoding = json.detect_encoding(data)
    if encoding in ("utf-8", "utf-8-sig"):
        return data  # a multi-byte UTF-8 sequence holds no ASCII byte: no bracket or quote is hidden
    try:
        return data.decode(encoding, "surrogatepass").encode("utf-8", "surrogatepass")
    except (UnicodeDecodeError, LookupError):
        return data  # json.loads fails on it before reading any value


def json_depth_exceeds(raw: str | bytes | bytearray | memoryview, limit: int = MAX_JSON_DEPTH) -> bool:
    """True when ``raw``, read as JSON text, nests arrays and objects deeper than ``limit`` levels.

    Decided without parsing (a parser is what a deep text breaks), in passes at C speed: text
    with at most ``limit`` opening brackets in all is shallow. Else the escapes ``\\\\`` and ``\\"``
    are dropped, then all but brackets and quotes, then strings (what lies between quotes: a
    bracket in a string does not count). Then innermost pairs ``[]`` are removed, one level a
    round, while a round shortens the brackets by a sixteenth or more (what is left then has few,
    long runs), and the depth is the rounds plus the peak of the running count of what is left,
    taken run by run; openers in a row deeper than the limit decide it at once. Exact
    for valid JSON; for other text it errs towards "too deep" (a parser stops at its first error,
    so it never descends deeper than this counts). Bytes are read as ``json.loads`` reads them.
    """
    data = _utf8(raw)
    if data.count(b"[") + data.count(b"{") <= limit:
        return False
    if b"\\" in data:  # a backslash outside a string is an error, where a parser stops
        data = data.replace(b"\\\\", b"").replace(b'\\"', b"")
    kept = data.translate(None, _NOT_BRACKET_OR_QUOTE).replace(b'""', b"")  # "": no bracket inside or between
    if b'"' in kept:
        kept = b"".join(kept.split(b'"')[::2])  # every other run between quotes is a string
    brackets = kept.translate(_OBJECT_TO_ARRAY)
    rounds = 0
    while rounds <= limit:
        if b"[" * (limit - rounds + 1) in brackets:  # that many openers in a row, `rounds` levels removed
            return True
        inner = brackets.replace(b"[]", b"")  # every innermost pair: one level less
        if len(inner) == len(brackets) or len(inner) > len(brackets) * 15 // 16:
            break
        brackets, rounds = inner, rounds + 1
    # runs alternate between openers and closers: +len, -len, ... (or -len, +len, ...)
    runs: list[bytes] = _BRACKET_RUNS.findall(brackets)
    signs = cycle((1, -1) if brackets[:1] == b"[" else (-1, 1))
    peak: int = max(accumulate(map(mul, map(len, runs), signs), initial=0))
    return rounds + peak > limit


@dataclass(frozen=True)
class PubSubMessage:
    """One Pub/Sub message, independent of how it was delivered.

    Attributes:
        data: the decoded payload bytes (empty when the message had no data).
        attributes: the message attributes.
        message_id: the Pub/Sub message id, when known.
        publish_time: when Pub/Sub accepted the message (timezone-aware), when known.
        subscription: the push subscription, when the delivery named it.
    """

    data: bytes
    attributes: dict[str, str] = field(default_factory=dict)
    message_id: str | None = None
    publish_time: datetime | None = None
    subscription: str | None = None


def _fail(reason: str, message_id: str | None = None, **context: Any) -> NoReturn:
    if message_id is not None:
        context["message_id"] = message_id
    raise MalformedMessageError(reason, **context)


def _load_json(
    raw: str | bytes | bytearray | memoryview, what: str, message_id: str | None = None, **context: Any
) -> Any:
    if isinstance(raw, memoryview):
        raw = raw.tobytes()
    if json_depth_exceeds(raw):
        _fail(f"{what} is nested deeper than {MAX_JSON_DEPTH} levels", message_id, **context)

    def _reject_constant(name: str) -> Any:
        raise ValueError(f"non-standard JSON constant {name}")

    try:
        return json.loads(raw, parse_constant=_reject_constant)
    except RecursionError:  # not reached below MAX_JSON_DEPTH, unless the caller's stack is already deep
        _fail(f"{what} is nested too deeply to decode", message_id, **context)
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, int digit limit, NaN
        detail = exc.msg if isinstance(exc, json.JSONDecodeError) else (str(exc).splitlines() or ["?"])[0]
        _fail(f"{what} is not valid JSON: {detail}", message_id, **context)


def _json_kind(value: object) -> str:
    return _JSON_KINDS.get(type(value), type(value).__name__)


def _b64decode(text: str, message_id: str | None) -> bytes:
    """Strict base64 (standard or URL-safe alphabet, padded); garbage is an error."""
    if any(c in text for c in "-_"):
        if any(c in text for c in "+/"):
            _fail("data is not valid base64 (mixes the standard and URL-safe alphabets)", message_id)
        text = text.translate(_URLSAFE_TO_STANDARD)
    try:
        return base64.b64decode(text, validate=True)
    except ValueError:  # binascii.Error, or non-ASCII characters
        _fail("data is not valid base64", message_id)


def _parse_time(value: object, what: str, message_id: str | None) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        parsed = value
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            _fail(f"{what} is not an RFC 3339 timestamp", message_id)
    else:
        _fail(f"{what} must be a string, got {_json_kind(value)}", message_id)
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        _fail(f"{what} has no timezone", message_id)
    try:
        parsed.astimezone(UTC)
    except OverflowError:
        _fail(f"{what} is out of range when converted to UTC", message_id)
    return parsed


def _optional_str(value: object, what: str, message_id: str | None = None) -> str | None:
    if value is None or isinstance(value, str):
        return value
    _fail(f"{what} must be a string, got {_json_kind(value)}", message_id)


def _from_push_body(body: object, ce_id: str | None = None, ce_time: object = None) -> PubSubMessage:
    """Build the message from a push-style body; CloudEvent id/time fill a missing id/time."""
    if not isinstance(body, Mapping):
        _fail(f"event body is not a JSON object (got {_json_kind(body)})")
    message = body.get("message")
    if message is None:
        _fail("event has no 'message' (expected a Pub/Sub push body or a CloudEvent carrying one)")
    if not isinstance(message, Mapping):
        _fail(f"'message' is not a JSON object (got {_json_kind(message)})")

    raw_id = message.get("messageId", message.get("message_id"))
    if isinstance(raw_id, int) and not isinstance(raw_id, bool):  # numeric ids in hand-made bodies
        raw_id = str(raw_id)
    message_id = _optional_str(raw_id, "messageId") or ce_id

    raw_data = message.get("data")
    if raw_data is None:
        data = b""
    elif isinstance(raw_data, str):
        data = _b64decode(raw_data, message_id)
    else:
        _fail(f"data must be a base64 string, got {_json_kind(raw_data)}", message_id)

    raw_attributes = message.get("attributes")
    if raw_attributes is None:
        attributes: dict[str, str] = {}
    elif isinstance(raw_attributes, Mapping) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in raw_attributes.items()
    ):
        attributes = dict(raw_attributes)
    else:
        _fail("attributes must be a JSON object of string values", message_id)

    raw_time = message.get("publishTime", message.get("publish_time"))
    publish_time = _parse_time(raw_time if raw_time is not None else ce_time, "publishTime", message_id)
    subscription = _optional_str(body.get("subscription"), "subscription", message_id)
    return PubSubMessage(data, attributes, message_id, publish_time, subscription)


def _cloud_event_body(data: object, data_base64: object = None) -> object:
    """The push-style body a CloudEvent carries, parsed from JSON when needed."""
    if data is None and isinstance(data_base64, str):
        try:
            data = base64.b64decode(data_base64, validate=True)
        except ValueError:
            _fail("CloudEvent data_base64 is not valid base64")
    if data is None:
        _fail("CloudEvent has no data")
    if isinstance(data, str | bytes | bytearray | memoryview):
        return _load_json(data, "CloudEvent data")
    return data


def _cloud_event_attribute(event: object, name: str) -> Any:
    getter = getattr(event, "get", None)
    if callable(getter):
        return getter(name)
    try:
        return event[name]  # type: ignore[index]
    except (KeyError, TypeError, IndexError):
        return None


def extract_pubsub_message(event: object) -> PubSubMessage:
    """Pull the Pub/Sub message out of whatever the function was given.

    Args:
        event: a CloudEvent (object or structured-mode dict), a raw Pub/Sub push body,
            or bytes/str holding either as JSON. See the module docstring.

    Returns:
        The message with its base64 data decoded.

    Raises:
        MalformedMessageError: the event has none of the accepted shapes, or its data
            is not valid base64, or its metadata has the wrong types.
    """
    if isinstance(event, str | bytes | bytearray | memoryview):
        event = _load_json(event, "event")
        if not isinstance(event, dict):
            _fail(f"event is not a JSON object (got {_json_kind(event)})")
    if isinstance(event, Mapping):
        if "specversion" in event:
            body = _cloud_event_body(event.get("data"), event.get("data_base64"))
            ce_id = event.get("id")
            return _from_push_body(body, ce_id if isinstance(ce_id, str) else None, event.get("time"))
        return _from_push_body(event)
    if hasattr(event, "data"):
        body = _cloud_event_body(event.data)
        ce_id = _cloud_event_attribute(event, "id")
        ce_time = _cloud_event_attribute(event, "time")
        return _from_push_body(body, ce_id if isinstance(ce_id, str) else None, ce_time)
    _fail(f"unsupported event type {type(event).__name__} (expected a CloudEvent or a Pub/Sub push body)")


def _describe_validation_error(exc: ValidationError) -> str:
    problems = []
    for err in exc.errors(include_url=False, include_input=False):
        loc = ""
        for part in err["loc"]:
            loc += f"[{part}]" if isinstance(part, int) else ("." if loc else "") + str(part)
        msg = err["msg"].removeprefix("Value error, ").replace("\n", " ")
        problems.append(f"field {loc}: {msg}" if loc else msg)
    return "; ".join(problems)


def _all_fields_have_defaults(model_type: type[BaseModel]) -> bool:
    return all(not info.is_required() for info in model_type.model_fields.values())


def decode_payload(msg: PubSubMessage, model_type: type[ModelT]) -> ModelT:
    """Parse a message's data as one contract model.

    Args:
        msg: the message (see ``extract_pubsub_message``).
        model_type: the contract to validate against.

    Returns:
        The validated model. Empty data gives the defaults, for models whose fields all
        have defaults (the scheduler ticks: Cloud Scheduler may send an empty body).

    Raises:
        MalformedMessageError: the data is not a UTF-8 JSON object or fails validation.
    """
    contract = model_type.__name__
    if not msg.data.strip():
        if not _all_fields_have_defaults(model_type):
            _fail(f"message has no data; {contract} needs a JSON object", msg.message_id, contract=contract)
        payload: object = {}
    else:
        try:
            text = msg.data.decode("utf-8")
        except UnicodeDecodeError:
            _fail("data is not valid UTF-8", msg.message_id, contract=contract)
        payload = _load_json(text, "data", msg.message_id, contract=contract)
    if not isinstance(payload, dict):
        _fail(f"payload is not a JSON object (got {_json_kind(payload)})", msg.message_id, contract=contract)
    try:
        return model_type.model_validate(payload)
    except ValidationError as exc:
        _fail(f"invalid {contract}: {_describe_validation_error(exc)}", msg.message_id, contract=contract)


def decode_event(event: object, model_type: type[ModelT]) -> tuple[PubSubMessage, ModelT]:
    """Decode an event into its Pub/Sub message and the validated contract model.

    Args:
        event: anything ``extract_pubsub_message`` accepts.
        model_type: the contract (scheduler ticks accept an empty body → defaults).

    Raises:
        MalformedMessageError: the event or its payload is malformed.
    """
    msg = extract_pubsub_message(event)
    return msg, decode_payload(msg, model_type)


def decode_completion(event: object) -> tuple[PubSubMessage, ProcessorCompletion]:
    """A processor completion event (see ``decode_event``)."""
    return decode_event(event, ProcessorCompletion)


def decode_monitor_tick(event: object) -> tuple[PubSubMessage, MonitorTick]:
    """A Cloud Scheduler tick for the transition monitor (see ``decode_event``)."""
    return decode_event(event, MonitorTick)


def decode_retry_tick(event: object) -> tuple[PubSubMessage, RetryTick]:
    """A Cloud Scheduler tick for auto-retry (see ``decode_event``)."""
    return decode_event(event, RetryTick)
