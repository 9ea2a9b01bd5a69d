"""Scheduled jobs (``[[jobs]]`` in the definition): cron, plan (pure), runs (Firestore), dispatcher. Lazy."""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "CronExpression": ".cron",
    "fires_between": ".cron",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
