"""Phase 4 → 5: records precompute completions and triggers predictions exactly once.

Deployed as a 2nd-gen Cloud Function on the phase-4 completion topic with retry on
failure. Ack/raise contract: every outcome returns (Pub/Sub acks); a transient error
raises (Pub/Sub redelivers, bounded by the definition's max event age). Malformed
input is acked and quarantined with a reason.
"""

from collections.abc import Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.entrypoint import transition_handler

TRANSITION = "phase4_to_phase5"

# cold start fails loudly on a bad project or definition
handle: Callable[[CloudEvent], None] = functions_framework.cloud_event(transition_handler(TRANSITION))
