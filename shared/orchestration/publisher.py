"""Publishes phase triggers to Pub/Sub (thin adapter). Failures are transient: the caller
releases its claim and raises so the completion is redelivered (L01, L05)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc

from shared.contracts.messages import PhaseTrigger
from shared.errors import TransientError

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1


class TriggerPublisher:
    """Publish a ``PhaseTrigger`` to one topic and wait for the server's message id."""

    def __init__(self, client: pubsub_v1.PublisherClient, project: str, topic: str, timeout: float = 30.0) -> None:
        self.client = client
        self.topic_path = client.topic_path(project, topic)
        self.timeout = timeout

    def publish(self, trigger: PhaseTrigger) -> str:
        """Publish and return the Pub/Sub message id; raise ``TransientError`` on any failure."""
        try:
            future = self.client.publish(self.topic_path, trigger.to_json_bytes(), **trigger.attributes())
            return str(future.result(timeout=self.timeout))
        except (gexc.GoogleAPIError, TimeoutError, OSError) as exc:
            raise TransientError(
                f"publishing trigger {trigger.trigger_id} to {self.topic_path} failed: {type(exc).__name__}: {exc}",
                trigger_id=trigger.trigger_id,
            ) from exc
