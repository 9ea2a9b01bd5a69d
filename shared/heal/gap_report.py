"""What the gap pass recorded, for the 10-minute monitor pass: the ``gap`` finding with its counts.

A heal tick gets no alert step (``shared.monitor.runtime``: the alert step resolves whatever a
report leaves out), so the gap pass (``shared.heal.gaps``) writes its result to one document,
``{heartbeat_collection}/gap_summary``, and every monitor pass reads it (one read) and reports it.

``gap`` complements ``grid_gap`` (``shared.monitor.transition_dates``): ``grid_gap`` looks at the
last ``grid_days`` (120) for a missing phase-6 trigger on every pass, whatever the queue does;
``gap`` is the finer grid of the gap pass (every phase, its trigger and its rows, over
``[heal.gaps] lookback_days`` or the season) and the state of the backfill queue that repairs it.
"""

from __future__ import annotations

from datetime import datetime
from typing import TYPE_CHECKING, Any

from shared.monitor.findings import Finding, Severity

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.pipeline.definition import PipelineDefinition

SUMMARY_DOC = "gap_summary"
MAX_LISTED = 20


def summary_ref(client: firestore.Client, definition: PipelineDefinition) -> Any:
    return client.collection(definition.monitor.heartbeat_collection).document(SUMMARY_DOC)


def gap_findings(client: firestore.Client, definition: PipelineDefinition, now: datetime) -> list[Finding]:
    """``gap``: the dates the last gap pass found with Final games and no trigger or no rows for a
    phase, with counts (found, queued, re-triggered, exhausted, not backfillable here). WARNING
    while the queue works them; ERROR when one is exhausted or cannot be backfilled here. None when
    the last pass found no gap and the queue holds no open or exhausted entry."""
    snap = summary_ref(client, definition).get()
    doc = snap.to_dict() if snap.exists else None
    if not doc:
        return []
    counts = dict(doc.get("counts") or {})
    dates = [str(d) for d in doc.get("dates") or []]
    exhausted = [str(e) for e in doc.get("exhausted") or []]
    manual = [str(e) for e in doc.get("not_backfillable") or []]
    queued = int(counts.get("queue_open") or 0)
    if not dates and not exhausted and not queued:
        return []
    as_of = doc.get("as_of")
    when = as_of.strftime("%Y-%m-%d %H:%M UTC") if isinstance(as_of, datetime) else "?"
    listed = ", ".join(dates[:MAX_LISTED]) + (" …" if len(dates) > MAX_LISTED else "")
    message = (
        f"{len(dates)} date(s) with Final games and no trigger or no rows for a phase "
        f"({doc.get('window_text') or 'the lookback'}, gap pass of {when}): {listed or '-'}; "
        f"backfill queue: {queued} open, {int(counts.get('queue_triggered') or 0)} re-triggered, "
        f"{len(exhausted)} exhausted, {int(counts.get('slots_used') or 0)}/{definition.heal.gaps.dates_per_hour} "
        f"slots used this hour; {len(manual)} not backfillable here"
    )
    severity: Severity = "ERROR" if exhausted or manual else "WARNING"
    details = {"dates": dates, "exhausted": exhausted, "not_backfillable": manual}
    return [Finding("gap", severity, message, None, None, details)]
