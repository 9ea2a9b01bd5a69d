"""Act once per ``trigger_id``: the consumer side of the trigger protocol.

Triggers are at-least-once on the wire: Pub/Sub redelivers, and a transition that crashed
between publishing and latching publishes again with the same deterministic ``trigger_id``
(``"{transition}:{game_date}:g{generation}"``). A consumer that must run once per trigger keeps
an inbox: one Firestore document per ``trigger_id``, created with ``create()`` (which fails
when the document exists), so exactly one delivery is told it is the first.

    inbox = TriggerInbox(firestore.Client(), consumer="phase3-analytics")
    with inbox.once(trigger["trigger_id"]) as delivery:
        if delivery.first:
            run_phase_3(trigger)
    # the work raised: the entry is released, so the redelivery runs it again
    # the work finished: the entry is marked done, so every later delivery skips it

An entry whose worker died without releasing it (a crash, a timeout) blocks others only until
its lease expires; then the next delivery takes it over. Entries carry ``expires_at`` for a
Firestore TTL policy (``retention_days``, default 30).
"""

from __future__ import annotations

import random
import socket
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

if TYPE_CHECKING:
    from google.cloud import firestore

T = TypeVar("T")
# a first delivery's create, aborted by contention on the entry (concurrent take-overs hold it), is tried
# again this many times in all (nothing was written; the emulator says "Transaction lock timeout")
CREATE_ATTEMPTS = 5

DeliveryKind = Literal["first", "duplicate", "in_progress", "taken_over"]


@dataclass(frozen=True)
class Delivery:
    """What the inbox says about one delivery of a trigger.

    Attributes:
        trigger_id: the trigger.
        kind: ``first`` (act), ``taken_over`` (act: an earlier worker's lease expired),
            ``duplicate`` (already done: skip), ``in_progress`` (another worker holds a live
            lease: skip, or raise to have Pub/Sub redeliver later).
        owner: this delivery's lease owner (set when it may act).
    """

    trigger_id: str
    kind: DeliveryKind
    owner: str | None = None

    @property
    def first(self) -> bool:
        """Whether this delivery should do the work."""
        return self.kind in ("first", "taken_over")


def _doc_id(trigger_id: str) -> str:
    if not trigger_id or not trigger_id.strip():
        raise ValueError("trigger_id must not be empty")
    if len(trigger_id.encode()) > 1000:
        raise ValueError("trigger_id is longer than 1000 bytes")
    return trigger_id.replace("/", "%2F")  # a document id cannot contain '/'


class TriggerInbox:
    """One Firestore document per ``trigger_id`` under ``collection``, per ``consumer``."""

    def __init__(
        self,
        client: firestore.Client,
        *,
        consumer: str,
        collection: str = "trigger_inbox",
        lease: timedelta = timedelta(minutes=30),
        retention_days: int = 30,
    ) -> None:
        if not consumer or "/" in consumer:
            raise ValueError("consumer must be a non-empty name without '/'")
        self.client = client
        self.consumer = consumer
        self.collection = collection
        self.lease = lease
        self.retention = timedelta(days=retention_days)

    def _ref(self, trigger_id: str) -> Any:
        return self.client.collection(self.collection).document(f"{self.consumer}__{_doc_id(trigger_id)}")

    def _transact(self, body: Callable[[Any], T]) -> T:
        """Run a ``@firestore.transactional`` body; a lock timeout (``Aborted``: concurrent deliveries
        of one trigger contend for its entry) is retried a few times, then raised (the caller's
        message is redelivered)."""
        from google.api_core import exceptions as gexc

        for attempt in range(4):
            try:
                return body(self.client.transaction(max_attempts=12))
            except gexc.Aborted:
                if attempt == 3:
                    raise
                time.sleep(0.05 * (attempt + 1))
        raise AssertionError("unreachable")

    def accept(self, trigger_id: str, *, now: datetime | None = None) -> Delivery:
        """Register a delivery; its ``first`` says whether to act."""
        from google.api_core import exceptions as gexc
        from google.cloud import firestore

        now = now or datetime.now(UTC)
        owner = f"{socket.gethostname()}:{uuid.uuid4().hex[:12]}"
        ref = self._ref(trigger_id)
        entry = {
            "consumer": self.consumer,
            "trigger_id": trigger_id,
            "status": "processing",
            "owner": owner,
            "received_at": now,
            "lease_until": now + self.lease,
            "deliveries": 1,
            "expires_at": now + self.retention,
        }
        for attempt in range(CREATE_ATTEMPTS):
            try:
                ref.create(entry)
                return Delivery(trigger_id, "first", owner)
            except gexc.AlreadyExists:
                break
            except gexc.Aborted:  # contention: another delivery's transaction holds the entry; nothing written
                if attempt == CREATE_ATTEMPTS - 1:
                    raise  # still contended: the caller raises, Pub/Sub redelivers
                time.sleep(0.05 * 2**attempt * (1 + random.random()))  # jitter: the contenders spread out

        taken = False

        @firestore.transactional
        def take_over(tx: Any) -> DeliveryKind:
            nonlocal taken
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() or {}
            deliveries = int(doc.get("deliveries") or 1) + 1
            if doc.get("status") == "done":
                tx.update(ref, {"deliveries": deliveries})
                return "duplicate"
            lease_until = doc.get("lease_until")
            if doc.get("status") == "processing" and lease_until is not None and lease_until > now:
                tx.update(ref, {"deliveries": deliveries})
                return "in_progress"
            tx.set(ref, {**entry, "deliveries": deliveries, "taken_over_from": doc.get("owner")})
            taken = True
            return "taken_over"

        kind = self._transact(take_over)
        return Delivery(trigger_id, kind, owner if taken else None)

    def done(self, delivery: Delivery, *, now: datetime | None = None, result: str | None = None) -> None:
        """Mark the work of ``delivery`` finished: every later delivery is a duplicate."""
        self._finish(delivery, {"status": "done", "done_at": now or datetime.now(UTC), "result": result})

    def release(self, delivery: Delivery) -> None:
        """Give the entry up (the work failed): the next delivery acts again."""
        if not delivery.first:
            return
        from google.cloud import firestore

        ref = self._ref(delivery.trigger_id)

        @firestore.transactional
        def drop(tx: Any) -> None:
            snap = ref.get(transaction=tx)
            if snap.exists and (snap.to_dict() or {}).get("owner") == delivery.owner:
                tx.delete(ref)

        self._transact(drop)

    def _finish(self, delivery: Delivery, update: dict[str, Any]) -> None:
        if not delivery.first:
            raise ValueError(f"delivery of {delivery.trigger_id} is a {delivery.kind}; only the acting one finishes")
        from google.cloud import firestore

        ref = self._ref(delivery.trigger_id)

        @firestore.transactional
        def finish(tx: Any) -> None:
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() or {}
            if doc.get("owner") != delivery.owner:
                raise RuntimeError(
                    f"inbox entry of {delivery.trigger_id} was taken over by {doc.get('owner')!r} "
                    "(this worker's lease expired); not marking it done"
                )
            tx.update(ref, update)

        self._transact(finish)

    @contextmanager
    def once(self, trigger_id: str) -> Iterator[Delivery]:
        """``accept``; on a clean exit ``done``, on an exception ``release`` and re-raise."""
        delivery = self.accept(trigger_id)
        if not delivery.first:
            yield delivery
            return
        try:
            yield delivery
        except BaseException:
            self.release(delivery)
            raise
        self.done(delivery)

    def status(self, trigger_id: str) -> dict[str, Any] | None:
        """The stored entry of ``trigger_id`` (for operators and tests), or ``None``."""
        snap = self._ref(trigger_id).get()
        return snap.to_dict() if snap.exists else None
