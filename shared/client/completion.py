"""Build and publish a processor completion exactly as the replaced system's processors do.

The envelope is ``UnifiedPubSubPublisher._build_message``
(shared/publishers/unified_pubsub_publisher.py:178-210 at najicham/nba-stats-scraper@18f6ecfe):
the same keys in the same order, ``timestamp`` as ``datetime.now(timezone.utc).isoformat()``,
``correlation_id`` defaulting to ``execution_id``, top-level ``None`` values dropped, no message
attributes. Its ``_validate_message`` (same file, 226-260) is applied too, so a message built
here is accepted by this package's transitions and by the replaced system's consumers alike.

Standard library only, apart from google-cloud-pubsub, imported when publishing.
"""

from __future__ import annotations

import json
import re
import uuid
from collections.abc import Mapping
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1

# What the replaced system accepts (unified_pubsub_publisher.py:253).
COMPLETION_STATUSES = ("success", "partial", "no_data", "failed")
# The phase strings its processor bases send (processor_base.py:1805, analytics_base.py:1641,
# precompute_base.py:642, coordinator.py:3944).
_UPSTREAM_PHASES = {2: "phase_2_raw", 3: "phase_3_analytics", 4: "phase_4_precompute", 5: "phase_5_predictions"}
_PHASE_RE = re.compile(r"^phase_[1-9](_[a-z][a-z0-9_]*)?$")
_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")


def phase_string(phase: int | str) -> str:
    """``3`` → ``"phase_3_analytics"`` (the replaced system's spelling); a phase string passes through."""
    if isinstance(phase, str):
        if not _PHASE_RE.fullmatch(phase):
            raise ValueError(f"phase must look like 'phase_3_analytics' or be a number, got {phase!r}")
        return phase
    if isinstance(phase, bool) or not 1 <= phase <= 9:
        raise ValueError(f"phase must be 1..9, got {phase!r}")
    return _UPSTREAM_PHASES.get(phase, f"phase_{phase}")


def build_completion(
    *,
    processor_name: str,
    phase: int | str,
    game_date: date | str,
    status: str,
    execution_id: str | None = None,
    correlation_id: str | None = None,
    output_table: str | None = None,
    output_dataset: str | None = None,
    record_count: int = 0,
    records_failed: int = 0,
    parent_processor: str | None = None,
    trigger_source: str = "pubsub",
    trigger_message_id: str | None = None,
    duration_seconds: float | None = None,
    error_message: str | None = None,
    error_type: str | None = None,
    metadata: Mapping[str, Any] | None = None,
    now: datetime | None = None,
) -> dict[str, Any]:
    """The completion message as a dict, key for key what the replaced publisher builds.

    Args:
        processor_name: the processor's name; the replaced system sends its class name.
        phase: the phase number or its string (``"phase_3_analytics"``).
        game_date: an explicit date (``YYYY-MM-DD``); never "today".
        status: one of ``success``, ``partial``, ``no_data``, ``failed``.
        execution_id: this run's id (a fresh one when omitted).
        correlation_id: defaults to ``execution_id``, as upstream.
        output_table, output_dataset: the BigQuery table the run wrote.
        record_count, records_failed: row counts.
        parent_processor, trigger_source, trigger_message_id: tracing, as upstream.
        duration_seconds: how long the run took.
        error_message, error_type: for ``failed`` runs (``error_type`` is free text, e.g. a class name).
        metadata: phase-specific data; the prediction coordinator puts ``completion_pct``,
            ``completed_predictions`` and ``expected_predictions`` here.
        now: the timestamp to send (default: now, UTC).

    Raises:
        ValueError: a field the replaced system's ``_validate_message`` or this package would reject.
    """
    if status not in COMPLETION_STATUSES:
        raise ValueError(f"status must be one of {', '.join(COMPLETION_STATUSES)}; got {status!r}")
    day = game_date.isoformat() if isinstance(game_date, date) else str(game_date)
    if isinstance(game_date, datetime) or not _DATE_RE.fullmatch(day):
        raise ValueError(f"game_date must be an explicit YYYY-MM-DD date, got {game_date!r}")
    date.fromisoformat(day)  # a real calendar date
    if not processor_name or not processor_name.strip():
        raise ValueError("processor_name must not be empty")
    if record_count < 0 or records_failed < 0:
        raise ValueError("record counts must not be negative")
    stamp = now or datetime.now(UTC)
    if stamp.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    execution_id = execution_id or uuid.uuid4().hex[:8]
    message: dict[str, Any] = {
        "processor_name": processor_name,
        "phase": phase_string(phase),
        "execution_id": execution_id,
        "correlation_id": correlation_id or execution_id,
        "game_date": day,
        "output_table": output_table,
        "output_dataset": output_dataset,
        "status": status,
        "record_count": record_count,
        "records_failed": records_failed,
        "timestamp": stamp.astimezone(UTC).isoformat(),
        "duration_seconds": duration_seconds,
        "parent_processor": parent_processor,
        "trigger_source": trigger_source,
        "trigger_message_id": trigger_message_id,
        "error_message": error_message,
        "error_type": error_type,
        "metadata": dict(metadata or {}),
    }
    return {k: v for k, v in message.items() if v is not None}


def publish_completion(
    topic: str,
    *,
    project: str,
    publisher: pubsub_v1.PublisherClient | None = None,
    timeout: float = 30.0,
    **fields: Any,
) -> str:
    """Build a completion (``build_completion(**fields)``) and publish it; returns the message id.

    Unlike the replaced publisher, a failed publish raises: the caller decides whether its run
    failed (a completion that silently never arrives is how a phase waits forever).

    Args:
        topic: the completion topic id (e.g. ``nba-phase3-analytics-complete``) or its full path.
        project: the Google Cloud project.
        publisher: a Pub/Sub publisher client (one is created when omitted; honours
            ``PUBSUB_EMULATOR_HOST``).
        timeout: seconds to wait for Pub/Sub to accept the message.
        **fields: the arguments of ``build_completion``.
    """
    message = build_completion(**fields)
    if publisher is None:
        from google.cloud import pubsub_v1

        publisher = pubsub_v1.PublisherClient()
    path = topic if topic.startswith("projects/") else publisher.topic_path(project, topic)
    data = json.dumps(message, default=str).encode("utf-8")
    return str(publisher.publish(path, data).result(timeout=timeout))
