"""Phase transition monitor: every 10 minutes finds stuck, blocked, silent and failed transitions.

Triggered by Cloud Scheduler ``*/10 * * * *`` through ``phase-transition-monitor-trigger``
(payload: ``MonitorTick``; an empty body means the defaults). It re-evaluates recent dates
through the transitions' own engine and claim protocol (deadline tiers fire with no new
message), writes its heartbeat, and alerts once per change. Transient errors raise (the tick
is redelivered); a malformed tick is acked and quarantined with the reason.
"""

from __future__ import annotations

import functions_framework
from cloudevents.http import CloudEvent

from shared.contracts.decode import decode_payload, extract_pubsub_message
from shared.contracts.messages import MonitorTick
from shared.env import project_id
from shared.errors import MalformedMessageError
from shared.monitor.runtime import monitor, run_monitor
from shared.orchestration.body_guard import guard_body_depth
from shared.structured_log import get_logger, log_context

_log = get_logger("functions.phase_transition_monitor")
project_id()  # cold start fails loudly without a project
guard_body_depth("phase_transition_monitor")  # too deep a body: acked and quarantined, unparsed


@functions_framework.cloud_event
def handle(cloud_event: CloudEvent) -> None:
    """Run one monitor pass.

    Args:
        cloud_event: the ``google.cloud.pubsub.topic.v1.messagePublished`` event of the scheduler.
    """
    with log_context(function="phase_transition_monitor", execution_id=cloud_event["id"]):
        try:
            tick = decode_payload(extract_pubsub_message(cloud_event), MonitorTick)
        except MalformedMessageError as exc:  # acked; the next tick comes in 10 min
            monitor().quarantine(cloud_event, str(exc))
            return
        report, alerts = run_monitor(tick)
        _log.info(
            "monitor pass: %d finding(s), %d triggered",
            len(report.findings),
            len(report.triggered),
            extra={
                "fields": {
                    "kinds": sorted({f.kind for f in report.findings}),
                    "alerted": alerts.alerted if alerts else None,
                }
            },
        )
