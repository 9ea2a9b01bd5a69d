"""Publishes phase triggers to Pub/Sub (thin adapter). Failures are transient: the caller
releases its claim and raises so the completion is redelivered (L01, L05)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Protocol

from google.api_core import exceptions as gexc

from shared.errors import TransientError
from shared.structured_log import get_logger

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1

_log = get_logger("shared.orchestration.publisher")


class Publishable(Protocol):
    """A trigger message: ``PhaseTrigger`` or ``TimedTriggerMessage``."""

    @property
    def trigger_id(self) -> str: ...

    def to_json_bytes(self) -> bytes: ...

    def attributes(self) -> dict[str, str]: ...


class TriggerPublisher:
    """Publish a ``PhaseTrigger`` to one topic and wait for the server's message id."""

    def __init__(self, client: pubsub_v1.PublisherClient, project: str, topic: str, timeout: float = 30.0) -> None:
        self.client = client
        self.topic_path = client.topic_path(project, topic)
        self.timeout = timeout

    def publish(self, trigger: Publishable) -> str:
        """Publish and return the Pub/Sub message id; raise ``TransientError`` on any failure."""
        return self.publish_all([trigger])[0]

    def publish_all(self, triggers: Sequence[Publishable]) -> list[str]:
        """Publish every message of one trigger at once (the parts of a per-source-table trigger)
        and wait for all; their message ids in order, or ``TransientError`` if any failed."""
        first = triggers[0]
        try:
            futures = [self.client.publish(self.topic_path, t.to_json_bytes(), **t.attributes()) for t in triggers]
            return [str(f.result(timeout=self.timeout)) for f in futures]
        except (gexc.GoogleAPIError, TimeoutError, OSError) as exc:
            raise TransientError(
                f"publishing trigger {first.trigger_id} to {self.topic_path} failed: {type(exc).__name__}: {exc}",
                trigger_id=first.trigger_id,
            ) from exc


class OutboxNudge:
    """Asks auto-retry to deliver the Firestore outbox now: one ``RetryTick`` with ``outbox_only``
    on its topic. Best effort by design: a lost nudge delays a log row until the next auto-retry
    tick or monitor pass, never loses it (the outbox is durable), so this never raises."""

    def __init__(self, client: pubsub_v1.PublisherClient, project: str, topic: str, timeout: float = 5.0) -> None:
        self.client = client
        self.topic_path = client.topic_path(project, topic)
        self.timeout = timeout

    def send(self, why: str) -> str | None:
        from shared.contracts.messages import RetryTick

        try:
            data = RetryTick(outbox_only=True).to_json_bytes()
            return str(self.client.publish(self.topic_path, data, reason=why[:200]).result(timeout=self.timeout))
        except Exception as exc:  # noqa: BLE001 - best effort: the monitor delivers the outbox anyway
            _log.warning(
                "outbox nudge to %s failed (%s); the next auto-retry tick or monitor pass delivers it: %s",
                self.topic_path,
                why,
                exc,
                extra={"labels": {"alert": "outbox_nudge_failed"}},
            )
            return None
