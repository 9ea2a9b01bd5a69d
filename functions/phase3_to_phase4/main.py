"""Phase 3 → 4: records analytics completions and triggers precompute exactly once.

Deployed as a 2nd-gen Cloud Function on the phase-3 completion topic with retry on
failure. Ack/raise contract: every outcome returns (Pub/Sub acks); a transient error
raises (Pub/Sub redelivers, bounded by the definition's max event age). Malformed
input is acked and quarantined with a reason.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.orchestration.entrypoint import run_transition_event, validate_environment

TRANSITION = "phase3_to_phase4"

validate_environment(TRANSITION)  # cold start fails loudly on a bad project or definition


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """Handle one phase-3 completion message.

    Args:
        cloud_event: the google.cloud.pubsub.topic.v1.messagePublished event.
    """
    run_transition_event(TRANSITION, cloud_event)
