"""Self-heal checkpoints (issue 27, item 2). Being written: see ``run_self_heal``."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from shared.contracts.messages import MonitorTick
    from shared.monitor.checks import PassDeadlines, TransitionMonitor
    from shared.monitor.findings import MonitorReport


def run_self_heal(monitor: TransitionMonitor, tick: MonitorTick, deadlines: PassDeadlines) -> MonitorReport:
    """One self-heal checkpoint for ``tick.game_date`` (default: today in the pipeline's zone)."""
    raise NotImplementedError("self-heal checkpoints are being written (issue 27)")
