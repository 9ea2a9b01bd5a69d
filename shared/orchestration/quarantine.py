"""Quarantine: bad input is acked and kept with a reason, never silently dropped (L10).

Documents go to the definition's quarantine collection, keyed by the Pub/Sub message id
when known so a redelivered bad message is stored once. A failed quarantine write is
transient: the message is redelivered rather than lost.

What a document holds is bounded (L22, L25): the raw payload is capped at
``[retention] quarantine_max_payload_bytes`` (its first bytes as text when they are UTF-8,
else base64, with the original size, its sha256 and ``payload_truncated``), the reason is
capped, and ``expires_at`` (``[retention] expiry_field``) is now + ``quarantine_days`` for the
collection's Firestore TTL policy. ``stored_payload(doc)`` gives the stored bytes back.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

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
        self, client: firestore.Client, collection: str, clock: Clock, retention: Retention | None = None
    ) -> None:
        """``retention``: the definition's ``[retention]`` (``definition.retention``); the packaged defaults
        when omitted."""
        self.client = client
        self.collection = collection
        self.clock = clock
        self.retention = retention or Retention()

    def put(
        self,
        message: PubSubMessage | None,
        *,
        reason: str,
        transition: str,
        raw: object = None,
        kind: str = "malformed",
    ) -> str:
        """Store the message (or raw event) with the reason; returns the document id."""
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

    def put_event(self, event: object, *, reason: str, transition: str, kind: str = "malformed") -> str:
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
