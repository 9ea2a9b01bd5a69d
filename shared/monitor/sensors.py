"""Overdue sensors: a sensor's date that is ready but has no trigger out past its ``overdue_after``."""

from __future__ import annotations

from datetime import date
from typing import TYPE_CHECKING

from shared.clock import Clock
from shared.monitor.findings import Finding

if TYPE_CHECKING:
    from shared.orchestration.timed import TimedTriggerService


def sensor_overdue(name: str, service: TimedTriggerService, day: date, clock: Clock) -> list[Finding]:
    """A sensor's date past its ``overdue_after`` with every condition met but no trigger out
    (e.g. ``grading_overdue``: games Final, predictions present, not graded, no grading trigger)."""
    from shared.orchestration.timed import overdue_at

    sensor = service.trigger
    due = overdue_at(sensor, day)
    if due is None or clock.now() < due:
        return []
    if service.state.load(day).triggered_slot(None) is not None:
        return []
    readiness = next((s for s in sensor.slots if not s.fallback), sensor.slots[0])
    results = service.check(day, readiness)  # read only: no claim
    if not results or any(r.verdict != "pass" for r in results):
        return []  # not ready (not Final, no predictions, already done): nothing is overdue
    reasons = "; ".join(r.reason for r in results)
    return [
        Finding(
            sensor.overdue_finding,
            "ERROR",
            f"{name} {day}: ready ({reasons}) but no trigger went out by {sensor.overdue_after} "
            f"{sensor.timezone}; the fallbacks did not fire either (check the scheduler jobs)",
            name,
            day,
            {"conditions": {r.gate: r.reason for r in results}, "due": due.isoformat()},
        )
    ]
