"""``self_heal_failed``: what the self-heal checkpoints recorded that healing did not fix.

A checkpoint (``shared.heal.self_heal``) has no alert step of its own; it leaves a verdict per
(date, target) in ``[heal.self_heal] collection``. Every monitor pass reads the verdicts of the
last ``verify_days`` (one range read over document ids) and reports, per (date, target), one
ERROR finding when the verdict is

- ``still_missing``: healed at one checkpoint and still missing at a later one;
- ``cap_reached``: missing, and the (date, transition) has used its ``max_heals``;
- ``not_triggered``: the re-trigger could not fire (the date's upstream completions are absent,
  a gate blocked): healing cannot work until the earlier phase reports.

The finding ends (the alert step resolves it) when a later checkpoint finds the output there
(``fixed``) or the date leaves the window. A finding, not another loop: no checkpoint re-triggers
a (date, transition) past its cap.
"""

from __future__ import annotations

from datetime import date, timedelta
from typing import TYPE_CHECKING

from shared.monitor.findings import Finding

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.pipeline.definition import PipelineDefinition

_FAILED = ("still_missing", "cap_reached", "not_triggered")


def self_heal_findings(
    firestore_client: firestore.Client, definition: PipelineDefinition, today: date
) -> list[Finding]:
    """One ``self_heal_failed`` finding per failed (date, target) of the last ``verify_days`` before
    ``today`` (the pass's, in the pipeline's zone)."""
    from shared.heal.self_heal_store import SelfHealStore

    settings = definition.heal.self_heal
    if not settings.targets:
        return []
    start = today - timedelta(days=settings.verify_days + 1)
    records = SelfHealStore(firestore_client, definition).records(start, today + timedelta(days=1))
    return [
        _finding(day, target, doc) for (day, target), doc in sorted(records.items()) if doc.get("status") in _FAILED
    ]


def _finding(day: date, target: str, doc: dict[str, object]) -> Finding:
    status = str(doc.get("status"))
    transition = str(doc.get("transition") or "") or None
    checkpoints = doc.get("checkpoints")
    healed_at = (
        sorted(k for k, v in (checkpoints or {}).items() if isinstance(v, dict) and v.get("attempt"))
        if isinstance(checkpoints, dict)
        else []
    )
    what = {
        "still_missing": "still missing at the next checkpoint after self-heal",
        "cap_reached": "missing and the self-heal cap is reached",
        "not_triggered": "missing and the self-heal re-trigger could not fire",
    }[status]
    return Finding(
        "self_heal_failed",
        "ERROR",
        f"{target} {day}: {what}: {doc.get('reason') or ''}"[:900],
        transition,
        day,
        {"status": status, "target": target, "healed_at": healed_at, "last_checkpoint": doc.get("checkpoint")},
        subject=target,
    )
