"""Scheduled triggers: fixed-time triggers (the phase 6 export runs), exactly once per date and slot.

Cloud Scheduler publishes a ``TriggerTick`` per slot (05:00, 13:00 and 16:30 ET) to
``scheduled-trigger-tick``; each publishes its trigger (``export_types``, ``target_date``) to
``nba-phase6-export-trigger`` once per (date, slot) through the same claim → publish → latch
protocol as the transitions, with a ``phase_execution_log`` row.
"""

from collections.abc import Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.timed_entrypoint import timed_handler

FUNCTION = "scheduled_triggers"

# cold start fails loudly on a bad project or definition
handle: Callable[[CloudEvent], None] = functions_framework.cloud_event(timed_handler(FUNCTION))
