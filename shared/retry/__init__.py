"""Auto-retry of failed processors: policy (pure), queue (BigQuery), dispatch, service. Lazy."""

from __future__ import annotations

from shared._lazy import attach

_LAZY = {
    "backoff_delay": ".policy",
    "classify_conflict": ".policy",
    "is_client_error": ".policy",
    "RetryQueue": ".queue",
    "QueueRow": ".queue",
    "RetryDispatcher": ".dispatch",
    "DispatchRejectedError": ".dispatch",
    "RetryService": ".service",
    "TickReport": ".service",
    "build_retry_service": ".runtime",
}

__getattr__, __dir__, __all__ = attach(__name__, _LAZY)
