"""The transition core: decision engine (pure), Firestore state, gates, log, service. Lazy."""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "decide": ".engine",
    "CompletionRecord": ".engine",
    "Progress": ".engine",
    "Wait": ".engine",
    "Ready": ".engine",
    "Blocked": ".engine",
    "TransitionState": ".state",
    "GateRunner": ".gates",
    "GateResult": ".gates",
    "CoverageInputs": ".gate_queries",
    "coverage_verdict": ".gates",
    "BigQueryGateQueries": ".gate_queries",
    "ExecutionLogWriter": ".outbox",
    "OutboxDelivery": ".outbox",
    "TriggerPublisher": ".publisher",
    "Quarantine": ".quarantine",
    "TransitionService": ".transition",
    "Outcome": ".outcome",
    "build_service": ".runtime",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
