"""Grading readiness: the ``grading_readiness`` sensor and its fallback runs, exactly once per date.

Cloud Scheduler publishes a ``TriggerTick`` per slot (every 15 minutes 22:00-02:59 ET, and the
02:30 / 06:00 / 06:30 / 11:00 fallbacks) to ``grading-readiness-tick``. The sensor triggers
``nba-grading-trigger`` once the night's games are all Final, predictions exist and the date is
not graded yet; a fallback triggers unless the date was triggered already. Same claim → conditions
→ publish → latch protocol as the transitions. A query error raises (Pub/Sub redelivers), never
"not graded"; a malformed tick is acked and quarantined.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.timed_entrypoint import run_timed_event, validate_environment

FUNCTION = "grading_readiness"

validate_environment(FUNCTION)  # cold start fails loudly on a bad project or definition


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """Handle one scheduler tick of the grading readiness sensor.

    Args:
        cloud_event: the google.cloud.pubsub.topic.v1.messagePublished event of the scheduler.
    """
    run_timed_event(FUNCTION, cloud_event)
