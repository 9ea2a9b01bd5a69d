"""Schedule dispatcher: runs every scheduled job of the definition once per fire slot.

One Cloud Scheduler job publishes a ``ScheduleTick`` every minute to ``schedule-dispatcher-tick``.
Each tick runs the ``[[jobs]]`` (and sensor slots) whose cron fired within the catch-up window, in
their own time zones and season windows, exactly once per (job, slot): HTTP calls to Cloud Run
services with an OIDC token, or Pub/Sub messages; 5xx and timeouts retried with backoff, then
failed; 4xx recorded and alerted. A Firestore outage raises (Pub/Sub redelivers the tick); a
malformed tick is acked and quarantined with the reason.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.contracts.decode import decode_payload, extract_pubsub_message
from shared.contracts.messages import ScheduleTick
from shared.env import project_id
from shared.errors import ConfigError, MalformedMessageError
from shared.orchestration.body_guard import guard_body_depth
from shared.schedules.runtime import dispatcher, quarantine
from shared.structured_log import get_logger, log_context

FUNCTION = "schedule_dispatcher"
_log = get_logger("functions.schedule_dispatcher")
project_id()  # cold start fails loudly without a project
guard_body_depth(FUNCTION)  # too deep a body: acked and quarantined, unparsed


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """Run the job slots due now (or the one a manual tick names)."""
    with log_context(function=FUNCTION, execution_id=cloud_event["id"]):
        try:
            tick = decode_payload(extract_pubsub_message(cloud_event), ScheduleTick)
        except MalformedMessageError as exc:  # acked and kept; the next tick comes in a minute
            quarantine().put_event(cloud_event, reason=str(exc), transition=FUNCTION)
            return
        try:
            report = dispatcher().tick(tick)
        except ConfigError as exc:  # a manual tick naming an unknown job or day: acked, kept, alerted
            quarantine().put_event(cloud_event, reason=str(exc), transition=FUNCTION, kind="config_error")
            _log.error(str(exc), extra={"labels": {"alert": "schedule_config_error"}})
            return
        _log.info("schedule tick: %s", report.summary(), extra={"fields": [r.as_dict() for r in report.results]})
