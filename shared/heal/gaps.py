"""The gap pass and its backfill queue (issue 27, item 3). Being written: see ``run_gap_pass``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.contracts.messages import MonitorTick
    from shared.monitor.checks import PassDeadlines, TransitionMonitor
    from shared.monitor.findings import MonitorReport


def run_gap_pass(monitor: TransitionMonitor, tick: MonitorTick, deadlines: PassDeadlines) -> MonitorReport:
    """One gap pass: find the gaps of the lookback and work the backfill queue within its rate cap."""
    raise NotImplementedError("the gap pass is being written (issue 27)")
