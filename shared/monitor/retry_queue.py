"""The retry queue's health: ``failed_permanent`` rows, ``pending`` rows whose dispatch (our
publish, or the processor's ``retry_url``) failed on ``DISPATCH_FAILING_AFTER`` consecutive ticks or
more, and overdue ``pending`` rows.

Read from the auto-retry heartbeat while it is fresh (``shared.retry.health``: each tick stores the
queue's health as it left it, so a pass costs one Firestore read, not a BigQuery statement); from
the table when the heartbeat is stale or its health incomplete: one query that names its partitions,
the queue's window (``game_date >= @since``, ``shared.retry.policy.QUEUE_WINDOW_DAYS``: every
partition the table keeps), as every whole-queue scan of auto-retry does."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.monitor.findings import Finding
from shared.monitor.heartbeats import RETRY_HEARTBEAT_ID, retry_heartbeat_grace
from shared.pipeline.definition import PipelineDefinition
from shared.retry.health import reportable, stored_health
from shared.retry.policy import DISPATCH_FAILING_AFTER, queue_window_start

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore


def retry_queue_findings(
    bq: bigquery.Client,
    firestore_client: firestore.Client,
    project: str,
    definition: PipelineDefinition,
    now: datetime,
) -> list[Finding]:
    """``retry_failed_permanent`` and ``retry_dispatch_failing`` (ERROR), ``retry_overdue`` (WARNING);
    ``retry_queue_missing`` (ERROR) when the queue table does not exist."""
    overdue_before = now - timedelta(minutes=definition.monitor.overdue_pending_minutes)
    heartbeat = firestore_client.collection(definition.monitor.heartbeat_collection).document(RETRY_HEARTBEAT_ID).get()
    rows = stored_health(heartbeat.to_dict() if heartbeat.exists else None, now, retry_heartbeat_grace(definition))
    if rows is None:
        queried = _queried_rows(bq, project, definition, now)
        if queried is None:
            table = f"{project}.{definition.pipeline.dataset}.{definition.retry.queue_table}"
            return [Finding("retry_queue_missing", "ERROR", f"retry queue table `{table}` does not exist", details={})]
        rows = queried
    return queue_findings([r for r in rows if reportable(r, overdue_before)], overdue_before)


def _queried_rows(
    bq: bigquery.Client, project: str, definition: PipelineDefinition, now: datetime
) -> list[dict[str, Any]] | None:
    """The ``pending`` and ``failed_permanent`` rows of the window, as the heartbeat keeps them (which
    of them to report is ``reportable``'s rule, for both); ``None`` when the table does not exist."""
    from google.api_core import exceptions as gexc
    from google.cloud import bigquery

    table = f"`{project}.{definition.pipeline.dataset}.{definition.retry.queue_table}`"
    sql = (
        "SELECT processor_name, CAST(game_date AS STRING) AS game_date, status, resolution_notes, "
        "COALESCE(dispatch_failures, 0) AS dispatch_failures, next_retry_at "
        f"FROM {table} WHERE game_date >= @since AND status IN ('failed_permanent', 'pending') "
        "ORDER BY game_date, processor_name"
    )
    config = bigquery.QueryJobConfig(
        query_parameters=[bigquery.ScalarQueryParameter("since", "DATE", queue_window_start(now))]
    )
    try:
        return [dict(r.items()) for r in bq.query(sql, job_config=config).result(timeout=60)]
    except gexc.NotFound:
        return None


def queue_findings(rows: list[Mapping[str, Any]], overdue_before: datetime) -> list[Finding]:
    """The findings of the reportable rows (queried, or from the heartbeat's health), pure."""
    permanent = sorted(f"{r['processor_name']}@{r['game_date']}" for r in rows if r["status"] == "failed_permanent")
    pending = [r for r in rows if r["status"] == "pending"]
    failing = sorted(
        (f"{r['processor_name']}@{r['game_date']}", int(r["dispatch_failures"]), r["resolution_notes"] or "")
        for r in pending
        if int(r["dispatch_failures"]) >= DISPATCH_FAILING_AFTER
    )
    overdue = sorted(
        f"{r['processor_name']}@{r['game_date']}"
        for r in pending
        if r["next_retry_at"] is not None and r["next_retry_at"] < overdue_before
    )
    findings = []
    if permanent:
        findings.append(
            Finding(
                "retry_failed_permanent",
                "ERROR",
                f"{len(permanent)} failed_permanent retry row(s): {', '.join(permanent[:20])}",
                details={"rows": permanent},
            )
        )
    if failing:
        listed = ", ".join(f"{key} ({n} ticks)" for key, n, _ in failing[:20])
        findings.append(
            Finding(
                "retry_dispatch_failing",
                "ERROR",
                f"{len(failing)} retry row(s) could not be dispatched on {DISPATCH_FAILING_AFTER} or more "
                f"consecutive ticks (Pub/Sub or the processor's retry_url; the retry budget is untouched): "
                f"{listed}; last: {failing[0][2][:200]}",
                details={"rows": [key for key, _, _ in failing]},
            )
        )
    if overdue:
        findings.append(
            Finding(
                "retry_overdue",
                "WARNING",
                f"{len(overdue)} pending retry row(s) overdue: {', '.join(overdue[:20])}",
                details={"rows": overdue},
            )
        )
    return findings
