"""The scheduler emulator publishing through the official Pub/Sub client to the real emulator."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.scheduler import (
    CronExpression,
    ScheduledJob,
    SchedulerEmulator,
    pubsub_publisher,
)
from shared.clock import SimulatedClock

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")


def wait_for(condition: Callable[[], bool], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"condition not met within {timeout} s")
        time.sleep(0.02)


def pull_at_least(subscriber: Any, subscription: str, count: int, timeout: float = 60.0) -> list[Any]:
    """Pull (and ack) until ``count`` messages arrived; returns the PubsubMessages."""
    messages: list[Any] = []
    deadline = time.monotonic() + timeout
    while len(messages) < count:
        if time.monotonic() > deadline:
            pytest.fail(f"only {len(messages)} of {count} messages arrived within {timeout} s")
        response = subscriber.pull(subscription=subscription, max_messages=50, timeout=10)
        if response.received_messages:
            subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
            messages.extend(m.message for m in response.received_messages)
    return messages


def test_scheduled_ticks_arrive_on_the_topic_with_payload_and_attributes(local_cloud: LocalCloud, unique: str) -> None:
    from shared.gcp import publisher_client, subscriber_client

    publisher, subscriber = publisher_client(), subscriber_client()
    topic_id = f"phase-transition-monitor-trigger-{unique}"
    topic = publisher.topic_path(local_cloud.project, topic_id)
    subscription = subscriber.subscription_path(local_cloud.project, f"monitor-tick-{unique}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)

    payload = b'{"source": "cloud-scheduler"}'
    job = ScheduledJob("phase_transition_monitor", CronExpression.parse("*/10 * * * *"), topic_id, NY, payload)
    clock = SimulatedClock(datetime(2026, 1, 24, 12, 9, 50, tzinfo=NY), 600)  # 10 simulated min per second
    errors: list[BaseException] = []
    emulator = SchedulerEmulator(
        [job], pubsub_publisher(publisher, local_cloud.project), clock, on_error=lambda _job, exc: errors.append(exc)
    )
    emulator.start()
    try:
        wait_for(lambda: len(emulator.history) >= 2 or bool(errors))
    finally:
        emulator.stop()
    assert errors == []

    history = emulator.history
    messages = pull_at_least(subscriber, subscription, len(history))
    assert len(messages) == len(history)
    assert all(message.data == payload for message in messages)
    assert {message.attributes["scheduler_job"] for message in messages} == {"phase_transition_monitor"}
    received = sorted(datetime.fromisoformat(message.attributes["scheduled_time"]) for message in messages)
    assert received == [moment for _, moment in history]
    assert received[:2] == [datetime(2026, 1, 24, 17, 10, tzinfo=UTC), datetime(2026, 1, 24, 17, 20, tzinfo=UTC)]
    assert all(message.attributes["scheduled_time"].endswith("Z") for message in messages)
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic)


def test_fire_now_publishes_through_pubsub(local_cloud: LocalCloud, unique: str) -> None:
    from shared.gcp import publisher_client, subscriber_client

    publisher, subscriber = publisher_client(), subscriber_client()
    topic_id = f"auto-retry-trigger-{unique}"
    topic = publisher.topic_path(local_cloud.project, topic_id)
    subscription = subscriber.subscription_path(local_cloud.project, f"retry-tick-{unique}")
    publisher.create_topic(name=topic)
    subscriber.create_subscription(name=subscription, topic=topic)

    job = ScheduledJob("auto_retry", CronExpression.parse("*/15 * * * *"), topic_id, NY, b"")
    clock = SimulatedClock(datetime(2026, 1, 24, 12, 1, tzinfo=NY), 1)  # real time: no scheduled firing here
    emulator = SchedulerEmulator([job], pubsub_publisher(publisher, local_cloud.project), clock)
    moment = emulator.fire_now("auto_retry")

    [message] = pull_at_least(subscriber, subscription, 1)
    assert message.data == b""
    assert message.attributes["scheduler_job"] == "auto_retry"
    assert datetime.fromisoformat(message.attributes["scheduled_time"]) == moment
    subscriber.delete_subscription(subscription=subscription)
    publisher.delete_topic(topic=topic)


def test_publish_to_a_missing_topic_reaches_on_error(local_cloud: LocalCloud, unique: str) -> None:
    from google.api_core import exceptions

    from shared.gcp import publisher_client

    job = ScheduledJob("ghost", CronExpression.parse("* * * * *"), f"missing-topic-{unique}", NY, b"{}")
    clock = SimulatedClock(datetime(2026, 1, 24, 12, 0, 55, tzinfo=NY), 60)  # fires ~0.1 real s in
    errors: list[tuple[str, BaseException]] = []
    emulator = SchedulerEmulator(
        [job],
        pubsub_publisher(publisher_client(), local_cloud.project),
        clock,
        on_error=lambda failed, exc: errors.append((failed.name, exc)),
    )
    emulator.start()
    try:
        wait_for(lambda: bool(errors))
        assert emulator.running  # the loop survives the failure
    finally:
        emulator.stop()
    name, error = errors[0]
    assert name == "ghost"
    assert isinstance(error, exceptions.NotFound)
    assert emulator.history == []
