"""``phasectl``: the operator CLI (a composition root like the functions; nothing imports it). Lazy.

The console script is ``phasectl = "shared.cli.phasectl:main"``. Only the pure report
builders are listed here: ``shared.cli.phasectl`` is a ``python -m`` entry point and is
deliberately not a lazy entry (eager loading would import it twice under ``-m``).
"""

from __future__ import annotations

from shared._lazy import attach, eager_requested, load_all

_LAZY = {
    "ReconcileReport": ".reconcile",
    "StatusReport": ".reconcile",
    "build_reconcile": ".reconcile",
    "coverage_status": ".reconcile",
    "phase_line": ".reconcile",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)

if eager_requested():
    load_all(__name__, _LAZY)
