"""Phase 5 → 6: records predictions completions and triggers exports exactly once.

Deployed on its source phase's completion topic, with retry on failure (``transition_handler``
says what is acked and what raises).
"""

from collections.abc import Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.entrypoint import transition_handler

TRANSITION = "phase5_to_phase6"

# cold start fails loudly on a bad project or definition
handle: Callable[[CloudEvent], None] = functions_framework.cloud_event(transition_handler(TRANSITION))
