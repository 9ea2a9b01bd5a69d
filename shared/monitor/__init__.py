"""The phase transition monitor: checks (same engine as the transitions), alerts, heartbeats. Lazy."""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "Finding": ".findings",
    "MonitorReport": ".findings",
    "TransitionMonitor": ".checks",
    "monitor_heartbeat": ".heartbeats",
    "AlertManager": ".alerts",
    "AlertResult": ".alerts",
    "SlackWebhook": ".alerts",
    "slack_from_env": ".alerts",
    "build_monitor": ".runtime",
    "run_monitor": ".runtime",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
