"""Dead letters: the one naming rule for function and dead-letter names, and the monitor's peek.

Each function's dead-letter pull subscription (named by ``dead_letter_routes``, the rule
``deploy.spec`` uses too: the monitor's bundle may not import ``deploy``) is peeked every pass:
messages are pulled and released at once (ack deadline 0), so they stay for ``phasectl dlq replay``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from shared.monitor.findings import Finding
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1

DEAD_LETTER_PEEK_MAX = 100  # messages pulled per subscription and pass (then released at once)
DEAD_LETTER_SAMPLE_IDS = 5


# -- deployment naming: the one rule for function and dead-letter names ------------------------
def function_cloud_name(function: str) -> str:
    """A function's Cloud Functions name: its folder name with hyphens."""
    return function.replace("_", "-")


def function_trigger_topics(definition: PipelineDefinition) -> dict[str, str]:
    """Every deployable function → the topic that triggers it (a transition: its source phase's
    completion topic; a scheduled function: its schedule's topic; a sensor's: its tick topic)."""
    topics = {t.name: definition.source_topic(t) for t in definition.transitions}
    for schedule in definition.schedule_entries().values():
        if schedule.function:
            topics[schedule.function] = schedule.topic
    for sensor in definition.sensors:
        topics[sensor.function] = sensor.tick_topic
    return {name: topics[name] for name in definition.function_names()}


@dataclass(frozen=True)
class DeadLetterRoute:
    """Where a function's undeliverable trigger messages go after ``max_delivery_attempts``."""

    function: str
    trigger_topic: str
    topic: str  # ``<trigger topic><dead_letter_suffix>``
    subscription: str  # ``<cloud name><dead_letter_suffix>-sub``, a pull subscription on ``topic``


def dead_letter_routes(definition: PipelineDefinition) -> tuple[DeadLetterRoute, ...]:
    """Each function's dead-letter topic and pull subscription, in ``function_names()`` order.

    The single naming rule: ``deploy.spec.build_spec`` and the monitor both read it from here
    (the monitor's bundle may not import ``deploy``).
    """
    suffix = definition.deploy.dead_letter_suffix
    return tuple(
        DeadLetterRoute(
            function=name,
            trigger_topic=trigger,
            topic=f"{trigger}{suffix}",
            subscription=f"{function_cloud_name(name)}{suffix}-sub",
        )
        for name, trigger in function_trigger_topics(definition).items()
    )


# -- the peek ---------------------------------------------------------------------------------
def peek_dead_letters(subscriber: pubsub_v1.SubscriberClient, project: str, route: DeadLetterRoute) -> list[Finding]:
    """Pull what waits (no waiting), then release it at once (ack deadline 0): nothing is consumed,
    the messages stay for ``phasectl dlq replay``. A dry run peeks too: it changes nothing.

    Raises:
        google.api_core.exceptions.NotFound: the subscription does not exist (see ``missing_subscriptions``).
    """
    path = subscriber.subscription_path(project, route.subscription)
    response = subscriber.pull(
        subscription=path, max_messages=DEAD_LETTER_PEEK_MAX, return_immediately=True, timeout=30
    )
    received = list(response.received_messages)
    if not received:
        return []
    subscriber.modify_ack_deadline(subscription=path, ack_ids=[m.ack_id for m in received], ack_deadline_seconds=0)
    count = len(received)
    samples = sorted(m.message.message_id for m in received)[:DEAD_LETTER_SAMPLE_IDS]
    seen = f"{count}" if count < DEAD_LETTER_PEEK_MAX else f"at least {count}"
    return [
        Finding(
            "dead_letters",
            "ERROR",
            f"{route.function}: {seen} message(s) dead-lettered on {route.subscription} (from "
            f"{route.trigger_topic} after the delivery attempts ran out); e.g. {', '.join(samples)}; "
            "inspect and replay with phasectl dlq replay",
            details={
                "function": route.function,
                "subscription": route.subscription,
                "topic": route.topic,
                "count": count,
                "sample_message_ids": samples,
            },
            subject=route.function,
        )
    ]


def missing_subscriptions(missing: list[str]) -> list[Finding]:
    """Every dead-letter subscription that does not exist, in one ``dead_letter_subscription_missing``
    WARNING (none when all exist)."""
    if not missing:
        return []
    return [
        Finding(
            "dead_letter_subscription_missing",
            "WARNING",
            f"{len(missing)} dead-letter subscription(s) do not exist, so their dead letters cannot be "
            f"seen (create them: phasectl deploy apply): {', '.join(missing)}",
            details={"subscriptions": missing},
        )
    ]
