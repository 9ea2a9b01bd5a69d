"""The monitor's sensor checks: a sensor's date that is ready but has no trigger out past its
``overdue_after``; for a sensor with ``[sensors.regrade]``, the grading safety net
(``shared.monitor.grading_net``: regrade low coverage, grading gaps)."""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterator, Mapping
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


def sensor_checks(
    name: str, service: TimedTriggerService, window: list[date], final_games: Mapping[date, int], clock: Clock
) -> Iterator[tuple[date | None, str, Callable[[], list[Finding]]]]:
    """The monitor's items for one sensor, each run isolated: (its date or None, what, the check).
    Dates without Final games (or when the schedule read failed) have nothing to be overdue or to
    regrade; a sensor with ``[sensors.regrade]`` ends with its grading-gap check."""
    from shared.monitor.grading_net import net_checks

    net = net_checks(name, service, window, final_games, clock)

    def one_date(day: date) -> list[Finding]:
        return sensor_overdue(name, service, day, clock) + (net.date(day) if net else [])

    for day in window:
        if final_games.get(day):
            yield day, f"{name} {day}", functools.partial(one_date, day)
    if net is not None:
        yield None, f"{name} grading gaps", net.gaps
