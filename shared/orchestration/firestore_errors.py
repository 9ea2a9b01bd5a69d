"""Firestore errors a retry may fix, and the ``TransientError`` that carries one up (raise: redeliver)."""

from __future__ import annotations

from typing import Any

from google.api_core import exceptions as gexc

from shared.errors import TransientError

TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.TooManyRequests,
    gexc.Aborted,
    gexc.RetryError,
    gexc.Unknown,
    gexc.GatewayTimeout,
    gexc.BadGateway,
    gexc.Conflict,
)


def firestore_transient(action: str, exc: Exception, **context: Any) -> TransientError:
    """``Firestore <action> failed: <error>``, with the context to act on it."""
    return TransientError(f"Firestore {action} failed: {type(exc).__name__}: {exc}", **context)
