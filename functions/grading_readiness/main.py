"""Grading readiness: the ``grading_readiness`` sensor and its fallback runs, exactly once per date.

Cloud Scheduler publishes a ``TriggerTick`` per slot (every 15 minutes 22:00-02:59 ET, and the
02:30 / 06:00 / 06:30 / 11:00 fallbacks) to ``grading-readiness-tick``. The sensor triggers
``nba-grading-trigger`` once the night's games are all Final, predictions exist and the date is
not graded yet; a fallback triggers unless the date was triggered already. Same claim → conditions
→ publish → latch protocol as the transitions. A query error raises (Pub/Sub redelivers), never
"not graded"; a malformed tick is acked and quarantined.
"""

from collections.abc import Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.timed_entrypoint import timed_handler

FUNCTION = "grading_readiness"

# cold start fails loudly on a bad project or definition
handle: Callable[[CloudEvent], None] = functions_framework.cloud_event(timed_handler(FUNCTION))
