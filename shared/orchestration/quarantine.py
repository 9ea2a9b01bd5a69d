"""Quarantine: bad input is acked and kept with a reason, never silently dropped (L10).

Documents go to the definition's quarantine collection, keyed by the Pub/Sub message id
when known so a redelivered bad message is stored once. A failed quarantine write is
transient: the message is redelivered rather than lost.

What a document holds is bounded (L22, L25): the raw payload is capped at
``[retention] quarantine_max_payload_bytes`` (its first bytes as text when they are UTF-8,
else base64, with the original size, its sha256 and ``payload_truncated``), the reason is
capped, and ``expires_at`` (``[retention] expiry_field``) is now + ``quarantine_days`` for the
collection's Firestore TTL policy. ``stored_payload(doc)`` gives the stored bytes back.

So is its rate: a poison flood at one message a second stored ~1.9 GB a day. Each function
stores at most ``max_per_window`` documents per ``window`` (``QUARANTINE_MAX_PER_WINDOW`` per
``QUARANTINE_WINDOW``: 60 an hour, ~30 MB a day at the payload cap). Every bad message, stored or
not, increments its function's counter document for the window (Firestore ``Increment``: one
blind write, no transaction, whose result says where the count stands); beyond the cap the
message is still acked, counted and not stored, and the first one beyond it logs an ERROR
(label ``quarantine_flood``), once per function and window, whichever instance sees it. The
monitor reads the counters (``shared.monitor.quarantine_flood``) and reports a
``quarantine_flood`` finding with the counted number.

The counters live in ``{collection}/_rate/{collection}/{window}__{function}`` (``rate_counters``):
a subcollection named like the quarantine collection, so they belong to its collection group and
its TTL policy deletes them too (they carry the expiry field, set to the window's end plus
``quarantine_days``), while listing the collection (``collection(...).stream()``) shows only
quarantined messages. The document ids sort by time, so the monitor reads recent windows with one
range read over ids (no index needed).
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Final

from shared.clock import Clock
from shared.contracts.decode import PubSubMessage
from shared.errors import TransientError
from shared.orchestration.firestore_errors import TRANSIENT_ERRORS
from shared.pipeline.definition import Retention
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from collections.abc import Mapping

    from google.cloud import firestore

_log = get_logger("shared.orchestration.quarantine")
MAX_REASON_CHARS = 4_000  # an exception message can quote its whole input
QUARANTINE_WINDOW: Final = timedelta(hours=1)
"""The window the rate cap counts in (UTC-aligned: whole hours)."""
QUARANTINE_MAX_PER_WINDOW: Final = 60
"""Documents one function stores per window; beyond them bad messages are counted, not stored."""
RATE_PARENT: Final = "_rate"  # {collection}/_rate/{collection}/...: never written itself


def rate_window(now: datetime, window: timedelta = QUARANTINE_WINDOW) -> tuple[datetime, datetime]:
    """The window ``now`` falls in: ``[start, end)``, aligned to the epoch in UTC."""
    seconds = int(window.total_seconds())
    start = datetime.fromtimestamp(int(now.timestamp()) // seconds * seconds, UTC)
    return start, start + window


def window_id(start: datetime) -> str:
    """``20260125T1400Z``: a window's start, sortable as text (four year digits, always)."""
    s = start.astimezone(UTC)
    return f"{s.year:04d}{s.month:02d}{s.day:02d}T{s.hour:02d}{s.minute:02d}Z"


def rate_counters(client: firestore.Client, collection: str) -> firestore.CollectionReference:
    """The counter documents of ``collection``'s rate cap (in its collection group: its TTL applies)."""
    counters: firestore.CollectionReference = client.collection(collection).document(RATE_PARENT).collection(collection)
    return counters


def _raw_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "replace")
    try:
        return json.dumps(raw, default=str, sort_keys=True).encode()
    except (TypeError, ValueError):
        return repr(raw).encode("utf-8", "replace")


def _utf8_prefix(prefix: bytes, truncated: bool) -> str | None:
    """``prefix`` as text when it is UTF-8 (a character cut by the cap is dropped), else None."""
    try:
        return prefix.decode("utf-8")
    except UnicodeDecodeError as exc:
        # the cap may split the last character (at most 3 bytes): the rest must still be valid UTF-8
        if truncated and exc.reason == "unexpected end of data" and exc.start >= len(prefix) - 3:
            try:
                return prefix[: exc.start].decode("utf-8")
            except UnicodeDecodeError:
                return None
        return None


def payload_fields(payload: bytes, max_bytes: int) -> dict[str, Any]:
    """The stored form of ``payload``: at most ``max_bytes`` of it, its size and sha256."""
    truncated = len(payload) > max_bytes
    prefix = payload[:max_bytes]
    text = _utf8_prefix(prefix, truncated)
    stored: dict[str, Any] = (
        {"data_text": text, "payload_encoding": "utf-8"}
        if text is not None
        else {"data_base64": base64.b64encode(prefix).decode(), "payload_encoding": "base64"}
    )
    return {
        **stored,
        "payload_size": len(payload),
        "payload_sha256": hashlib.sha256(payload).hexdigest(),
        "payload_truncated": truncated,
    }


def stored_payload(doc: Mapping[str, Any]) -> bytes:
    """The payload bytes a quarantine document holds (the first ``quarantine_max_payload_bytes``)."""
    if isinstance(doc.get("data_text"), str):
        return str(doc["data_text"]).encode("utf-8")
    return base64.b64decode(doc.get("data_base64") or "")


class Quarantine:
    def __init__(
        self,
        client: firestore.Client,
        collection: str,
        clock: Clock,
        retention: Retention | None = None,
        *,
        max_per_window: int = QUARANTINE_MAX_PER_WINDOW,
        window: timedelta = QUARANTINE_WINDOW,
    ) -> None:
        """``retention``: the definition's ``[retention]`` (``definition.retention``); the packaged defaults
        when omitted. ``max_per_window``, ``window``: the rate cap (documents stored per function and
        window; see the module docstring)."""
        if max_per_window < 1 or window < timedelta(minutes=1) or window.total_seconds() % 60:
            raise ValueError(f"quarantine rate cap: {max_per_window} per {window} (at least 1 per whole minutes)")
        self.client = client
        self.collection = collection
        self.clock = clock
        self.retention = retention or Retention()
        self.max_per_window = max_per_window
        self.window = window

    def put(
        self,
        message: PubSubMessage | None,
        *,
        reason: str,
        transition: str,
        raw: object = None,
        kind: str = "malformed",
    ) -> str | None:
        """Store the message (or raw event) with the reason; returns the document id, or ``None`` when
        ``transition`` (the function) is past its cap for the window: then it was counted, not stored.

        Raises:
            TransientError: Firestore could not count or store it (redeliver: nothing is lost).
        """
        now: datetime = self.clock.now()
        if message is not None:
            payload = message.data
            doc_id = f"{transition}__{message.message_id}" if message.message_id else None
        else:
            payload = _raw_bytes(raw)
            doc_id = None
        doc_id = doc_id or f"{transition}__{hashlib.sha256(payload).hexdigest()[:32]}"
        if len(reason) > MAX_REASON_CHARS:
            reason = reason[: MAX_REASON_CHARS - 3] + "..."
        doc: dict[str, Any] = {
            "kind": kind,
            "reason": reason,
            "transition": transition,
            "received_at": now,
            **payload_fields(payload, self.retention.quarantine_max_payload_bytes),
            "attributes": dict(message.attributes) if message else {},
            "message_id": message.message_id if message else None,
            "publish_time": message.publish_time if message else None,
            "subscription": message.subscription if message else None,
            self.retention.expiry_field: now + timedelta(days=self.retention.quarantine_days),
        }
        if not self._count(transition, now, reason):
            return None
        try:
            self.client.collection(self.collection).document(doc_id).set(doc)
        except TRANSIENT_ERRORS as exc:
            raise TransientError(f"could not quarantine a bad message ({reason}): {exc}") from exc
        _log.warning(
            "quarantined message on %s: %s",
            transition,
            reason,
            extra={"labels": {"alert": f"quarantine_{kind}", "quarantine_id": doc_id}},
        )
        return doc_id

    def _count(self, function: str, now: datetime, reason: str) -> bool:
        """Count one bad message of ``function`` in the window of ``now``; ``True`` while within the cap
        (store it). The first one beyond the cap logs the ERROR of the window."""
        from google.cloud.firestore import Increment

        start, end = rate_window(now, self.window)
        counter = rate_counters(self.client, self.collection).document(f"{window_id(start)}__{function}")
        fields = {
            "function": function,
            "window_start": start,
            "window_end": end,
            "max_stored": self.max_per_window,
            "received": Increment(1),
            "last_received_at": now,
            self.retention.expiry_field: end + timedelta(days=self.retention.quarantine_days),
        }
        try:
            received = _increment_result(counter.set(fields, merge=True))
            if received is None:  # a backend that does not report it: read it back
                received = int((counter.get().to_dict() or {}).get("received") or 0)
        except TRANSIENT_ERRORS as exc:
            raise TransientError(f"could not count a bad message ({reason}): {exc}") from exc
        if received <= self.max_per_window:
            return True
        if received == self.max_per_window + 1:
            _log.error(
                "quarantine flood on %s: more than %d bad messages since %s UTC; until %s UTC they are acked "
                "and counted, not stored (this one: %s)",
                function,
                self.max_per_window,
                f"{start:%H:%M}",
                f"{end:%H:%M}",
                reason,
                extra={"labels": {"alert": "quarantine_flood", "quarantine_counter": counter.id}},
            )
        return False

    def put_event(self, event: object, *, reason: str, transition: str, kind: str = "malformed") -> str | None:
        """Quarantine a whole event: its Pub/Sub message when readable (keyed by message id, so a
        redelivery is stored once), else the raw event."""
        from shared.contracts.decode import extract_pubsub_message
        from shared.errors import MalformedMessageError

        message: PubSubMessage | None
        try:
            message = event if isinstance(event, PubSubMessage) else extract_pubsub_message(event)
        except MalformedMessageError:
            message = None
        return self.put(
            message, reason=reason, raw=None if message is not None else event, transition=transition, kind=kind
        )


def _increment_result(result: Any) -> int | None:
    """The value the ``Increment`` of a ``set`` left (the commit's transform result), if reported."""
    values = getattr(result, "transform_results", None)
    if not values:
        return None
    value = values[0]
    if "integer_value" in value:  # a protobuf Value: "in" asks which field is set
        return int(value.integer_value)
    return None
