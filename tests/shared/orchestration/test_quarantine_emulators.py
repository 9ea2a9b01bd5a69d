"""The quarantine's rate cap on the Firestore emulator (issue 25).

Quarantine was bounded per document (payload cap) and in time (TTL) but not in rate: a poison
flood at one message a second stored ~1.9 GB a day. Now each function stores at most
``max_per_window`` documents per window; beyond that every bad message is still acked and counted
(one ``Increment`` on a counter document per function and window), never stored, and the first
one beyond the cap logs one ERROR per window. The counters expire like every quarantine document
(L25): they carry the expiry field and sit in the quarantine collection's collection group.
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.clock import FixedClock
from shared.contracts.decode import PubSubMessage
from shared.gcp import firestore_client
from shared.orchestration.quarantine import (
    QUARANTINE_MAX_PER_WINDOW,
    QUARANTINE_WINDOW,
    Quarantine,
    rate_counters,
    rate_window,
    window_id,
)
from shared.pipeline.definition import Retention

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 25, 14, 7, tzinfo=UTC)  # 09:07 ET the morning after the night
RETENTION = Retention()
CAP = 3


@pytest.fixture
def collection(cloud: LocalCloud) -> str:
    return f"quarantine_{uuid.uuid4().hex[:8]}"


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def quarantine(collection: str, clock: FixedClock, cap: int = CAP) -> Quarantine:
    return Quarantine(firestore_client(), collection, clock, RETENTION, max_per_window=cap)


def message(n: int) -> PubSubMessage:
    return PubSubMessage(b"not json %d" % n, {"a": "b"}, f"m-{n}-{uuid.uuid4().hex[:6]}", START)


def stored(collection: str) -> list[dict[str, Any]]:
    return [d.to_dict() or {} for d in firestore_client().collection(collection).stream()]


def counters(collection: str) -> dict[str, dict[str, Any]]:
    return {d.id: d.to_dict() or {} for d in rate_counters(firestore_client(), collection).stream()}


def flood_errors(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [
        r
        for r in caplog.records
        if r.levelno == logging.ERROR and getattr(r, "labels", {}).get("alert") == "quarantine_flood"
    ]


def test_the_default_cap_is_60_an_hour() -> None:
    assert (QUARANTINE_MAX_PER_WINDOW, QUARANTINE_WINDOW) == (60, timedelta(hours=1))
    assert rate_window(START) == (datetime(2026, 1, 25, 14, tzinfo=UTC), datetime(2026, 1, 25, 15, tzinfo=UTC))
    assert window_id(datetime(999, 1, 2, 3, 4, tzinfo=UTC)) == "09990102T0304Z"


def test_beyond_the_cap_bad_messages_are_counted_not_stored_and_one_error_is_logged(
    collection: str, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    q = quarantine(collection, clock)
    caplog.set_level(logging.WARNING)
    ids = [q.put(message(n), reason=f"bad {n}", transition="phase3_to_phase4") for n in range(7)]

    assert [i is not None for i in ids] == [True] * CAP + [False] * 4  # acked every time, stored 3
    assert sorted(d["reason"] for d in stored(collection)) == ["bad 0", "bad 1", "bad 2"]
    (counter,) = counters(collection).values()
    assert counter["received"] == 7 and counter["max_stored"] == CAP  # the overflow is counted: 7 - 3
    assert counter["function"] == "phase3_to_phase4"
    assert counter["window_start"] == datetime(2026, 1, 25, 14, tzinfo=UTC)
    assert counter["window_end"] == datetime(2026, 1, 25, 15, tzinfo=UTC)
    assert counter["last_received_at"] == START
    # L25: the counter expires like a quarantine document
    assert counter[RETENTION.expiry_field] == counter["window_end"] + timedelta(days=RETENTION.quarantine_days)

    (error,) = flood_errors(caplog)  # once per window, not once per message
    assert "phase3_to_phase4" in error.getMessage() and "more than 3" in error.getMessage()
    assert "bad 3" in error.getMessage()


def test_the_next_window_stores_again_and_the_cap_is_per_function(
    collection: str, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    q = quarantine(collection, clock)
    caplog.set_level(logging.WARNING)
    for n in range(CAP + 2):
        q.put(message(n), reason="bad", transition="phase3_to_phase4")
    assert q.put(message(99), reason="bad", transition="phase4_to_phase5") is not None  # another function
    assert q.put_event({"not": "an event"}, reason="bad tick", transition="auto_retry_processor") is not None

    clock.advance(hours=1)  # 15:07: a new window
    assert q.put(message(100), reason="bad", transition="phase3_to_phase4") is not None
    for n in range(101, 101 + CAP + 1):
        q.put(message(n), reason="bad", transition="phase3_to_phase4")

    got = {k: v["received"] for k, v in counters(collection).items()}
    assert got == {
        "20260125T1400Z__phase3_to_phase4": CAP + 2,
        "20260125T1400Z__phase4_to_phase5": 1,
        "20260125T1400Z__auto_retry_processor": 1,
        "20260125T1500Z__phase3_to_phase4": CAP + 2,
    }
    assert len(stored(collection)) == CAP + 1 + 1 + CAP
    assert len(flood_errors(caplog)) == 2  # one per window that overflowed


def test_a_redelivered_message_is_stored_once_and_counted_each_time(collection: str, clock: FixedClock) -> None:
    q = quarantine(collection, clock)
    once = message(1)
    assert (
        q.put(once, reason="bad", transition="t")
        == q.put(once, reason="bad", transition="t")
        == f"t__{once.message_id}"
    )
    assert len(stored(collection)) == 1
    assert [c["received"] for c in counters(collection).values()] == [2]


def test_concurrent_instances_store_no_more_than_the_cap(
    collection: str, clock: FixedClock, caplog: pytest.LogCaptureFixture
) -> None:
    """Twelve instances at once (each its own Quarantine): the count is atomic, so exactly ``cap`` are
    stored, every one is counted, and exactly one instance logs the ERROR."""
    caplog.set_level(logging.WARNING)
    results: list[str | None] = []
    barrier = threading.Barrier(12)

    def instance(n: int) -> None:
        q = quarantine(collection, clock, cap=5)
        barrier.wait()
        results.append(q.put(message(n), reason="bad", transition="phase2_to_phase3"))

    threads = [threading.Thread(target=instance, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r is not None for r in results) == [False] * 7 + [True] * 5
    assert len(stored(collection)) == 5
    assert [c["received"] for c in counters(collection).values()] == [12]
    assert len(flood_errors(caplog)) == 1


def test_the_counters_are_in_the_quarantine_collection_group_not_in_its_listing(
    collection: str, clock: FixedClock
) -> None:
    """The TTL policy is set on the quarantine collection group (deploy.spec.firestore_ttls): a counter
    in a subcollection of the same name is covered by it; readers of the collection see messages only."""
    q = quarantine(collection, clock)
    q.put(message(1), reason="bad", transition="phase3_to_phase4")
    fs = firestore_client()
    group = {d.reference.path for d in fs.collection_group(collection).stream()}
    assert group == {f"{collection}/phase3_to_phase4__{d['message_id']}" for d in stored(collection)} | {
        f"{collection}/_rate/{collection}/20260125T1400Z__phase3_to_phase4"
    }
    assert [d["kind"] for d in stored(collection)] == ["malformed"]
    assert all(RETENTION.expiry_field in (d.to_dict() or {}) for d in fs.collection_group(collection).stream())


def test_the_cap_must_be_positive() -> None:
    with pytest.raises(ValueError, match="rate cap"):
        Quarantine(None, "q", FixedClock(START), max_per_window=0)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="rate cap"):
        Quarantine(None, "q", FixedClock(START), window=timedelta(seconds=30))  # type: ignore[arg-type]
