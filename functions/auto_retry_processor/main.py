"""Auto-retry processor: re-dispatches failed processors from failed_processor_queue.

Triggered by Cloud Scheduler every 15 minutes through ``auto-retry-trigger`` (payload:
``RetryTick``; an empty body means the defaults). Deployed with retry on failure: a
BigQuery or Pub/Sub outage raises so the tick is redelivered; a malformed tick is acked
and quarantined with the reason (the next scheduled tick comes in 15 minutes anyway).
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.contracts.decode import decode_payload, extract_pubsub_message
from shared.contracts.messages import RetryTick
from shared.env import project_id
from shared.errors import MalformedMessageError
from shared.orchestration.body_guard import guard_body_depth
from shared.retry.runtime import retry_service
from shared.structured_log import get_logger, log_context

_log = get_logger("functions.auto_retry_processor")
project_id()  # cold start fails loudly without a project
guard_body_depth("auto_retry_processor")  # too deep a body: acked and quarantined, unparsed


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """Run one auto-retry tick.

    Args:
        cloud_event: the ``google.cloud.pubsub.topic.v1.messagePublished`` event of the scheduler.
    """
    with log_context(function="auto_retry_processor", execution_id=cloud_event["id"]):
        try:
            tick = decode_payload(extract_pubsub_message(cloud_event), RetryTick)
        except MalformedMessageError as exc:  # acked and quarantined; the next tick comes in 15 min
            retry_service().quarantine(cloud_event, str(exc))
            return
        report = retry_service().tick(tick)
        _log.info("auto-retry tick done", extra={"fields": report.summary()})
