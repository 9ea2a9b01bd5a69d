"""Phase 5 → 6: records predictions completions and triggers exports exactly once.

Deployed as a 2nd-gen Cloud Function on the phase-5 completion topic with retry on
failure. Ack/raise contract: every outcome returns (Pub/Sub acks); a transient error
raises (Pub/Sub redelivers, bounded by the definition's max event age). Malformed
input is acked and quarantined with a reason.
"""

from collections.abc import Callable

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.entrypoint import transition_handler

TRANSITION = "phase5_to_phase6"

# cold start fails loudly on a bad project or definition
handle: Callable[[CloudEvent], None] = functions_framework.cloud_event(transition_handler(TRANSITION))
