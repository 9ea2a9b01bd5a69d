"""Scheduled triggers: fixed-time triggers (the phase 6 export runs), exactly once per date and slot.

Cloud Scheduler publishes a ``TriggerTick`` per slot (05:00, 13:00 and 16:30 ET) to
``scheduled-trigger-tick``; each publishes its trigger (``export_types``, ``target_date``) to
``nba-phase6-export-trigger`` once per (date, slot) through the same claim → publish → latch
protocol as the transitions, with a ``phase_execution_log`` row.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.timed_entrypoint import run_timed_event, validate_environment

FUNCTION = "scheduled_triggers"

validate_environment(FUNCTION)  # cold start fails loudly on a bad project or definition


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """Handle one scheduler tick of a scheduled trigger.

    Args:
        cloud_event: the google.cloud.pubsub.topic.v1.messagePublished event of the scheduler.
    """
    run_timed_event(FUNCTION, cloud_event)
