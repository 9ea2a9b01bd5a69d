"""Phase 3 → 4: records analytics completions and triggers precompute exactly once.

Deployed on its source phase's completion topic, with retry on failure (``transition_handler``
says what is acked and what raises).
"""

from collections.abc import Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.entrypoint import transition_handler

TRANSITION = "phase3_to_phase4"

# cold start fails loudly on a bad project or definition
handle: Callable[[CloudEvent], None] = functions_framework.cloud_event(transition_handler(TRANSITION))
