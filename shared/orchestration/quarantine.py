"""Quarantine: bad input is acked and kept with a reason, never silently dropped (L10).

Documents go to the definition's quarantine collection, keyed by the Pub/Sub message id
when known so a redelivered bad message is stored once. A failed quarantine write is
transient: the message is redelivered rather than lost.
"""

from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.clock import Clock
from shared.contracts.decode import PubSubMessage
from shared.errors import TransientError
from shared.orchestration.state import TRANSIENT_ERRORS
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import firestore

_log = get_logger("shared.orchestration.quarantine")
MAX_RAW_BYTES = 100_000


def _raw_bytes(raw: object) -> bytes:
    if isinstance(raw, bytes | bytearray):
        return bytes(raw)
    if isinstance(raw, str):
        return raw.encode("utf-8", "replace")
    try:
        return json.dumps(raw, default=str, sort_keys=True).encode()
    except (TypeError, ValueError):
        return repr(raw).encode("utf-8", "replace")


class Quarantine:
    def __init__(self, client: firestore.Client, collection: str, clock: Clock) -> None:
        self.client = client
        self.collection = collection
        self.clock = clock

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
        doc: dict[str, Any] = {
            "kind": kind,
            "reason": reason,
            "transition": transition,
            "received_at": now,
            "data_base64": base64.b64encode(payload[:MAX_RAW_BYTES]).decode(),
            "truncated": len(payload) > MAX_RAW_BYTES,
            "attributes": dict(message.attributes) if message else {},
            "message_id": message.message_id if message else None,
            "publish_time": message.publish_time if message else None,
            "subscription": message.subscription if message else None,
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
