"""Typed errors. Every error says what failed and carries the context to act on it.

``PermanentError``: retrying cannot help → ack and quarantine (lesson L10).
``TransientError``: a retry may succeed → raise so Pub/Sub redelivers.
"""

from __future__ import annotations

from typing import Any


class PipelineError(Exception):
    """Base of every error this package raises on purpose."""

    def __init__(self, message: str, **context: Any) -> None:
        super().__init__(message)
        self.message = message
        self.context: dict[str, Any] = context

    def __str__(self) -> str:
        if not self.context:
            return self.message
        details = ", ".join(f"{k}={v!r}" for k, v in sorted(self.context.items()))
        return f"{self.message} ({details})"


class PermanentError(PipelineError):
    """Retrying the same input cannot succeed: acknowledge and quarantine it."""


class TransientError(PipelineError):
    """A backend hiccup: raise so the event is redelivered."""


class MalformedMessageError(PermanentError):
    """A message that cannot be decoded or does not satisfy its contract."""


class InvalidDateError(PermanentError, ValueError):
    """A date that is not an explicit ``YYYY-MM-DD`` (or a known relative word)."""


class InvalidGameIdError(PermanentError, ValueError):
    """A game id in neither the NBA numeric nor the ``YYYYMMDD_AWAY_HOME`` form."""


class DefinitionError(PipelineError):
    """The pipeline definition file is invalid; names the file, field path and reason."""

    def __init__(self, message: str, *, file: str, problems: list[str] | None = None) -> None:
        super().__init__(message)
        self.file = file
        self.problems = problems or [message]


class ConfigError(PipelineError):
    """The runtime environment is missing or has invalid settings."""
