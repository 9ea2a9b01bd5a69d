"""Cloud Logging-compatible structured logs: one JSON object per line on stdout.

Cloud Functions (gen2) / Cloud Run turn each JSON line on stdout into a log entry:
``severity``, ``message``, ``time``, ``logging.googleapis.com/labels``,
``logging.googleapis.com/trace``, ``logging.googleapis.com/spanId`` and
``logging.googleapis.com/sourceLocation`` become entry fields; every other key stays
in ``jsonPayload``.

Usage::

    log = get_logger(__name__)
    trace = format_trace(project, request.headers.get("X-Cloud-Trace-Context"))
    with log_context(function="phase3_to_phase4", game_date="2026-01-24",
                     execution_id=execution_id, trace=trace):
        log.info("transition started", extra={"fields": {"processors": 5}})

Context set with ``log_context`` lives in a ``contextvars.ContextVar``: each thread
(gen2 serves concurrent requests on threads) and each asyncio task sees only its own
labels, execution id and trace.
"""

from __future__ import annotations

import contextlib
import contextvars
import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from types import MappingProxyType
from typing import Any, Final, NamedTuple, TextIO

from shared.clock import Clock, rfc3339

__all__ = [
    "LABELS_KEY",
    "SOURCE_LOCATION_KEY",
    "SPAN_KEY",
    "TRACE_KEY",
    "CloudJsonFormatter",
    "TraceContext",
    "configure",
    "current_context",
    "format_trace",
    "get_logger",
    "log_context",
    "parse_trace_header",
    "reset_configuration",
]

LABELS_KEY: Final = "logging.googleapis.com/labels"
# Every log line with an ``alert`` label also carries ``runbook``: the link to its section of the
# runbook (docs/operations.md has one per alert label and finding kind; issue 16).
RUNBOOK_URL_ENV: Final = "MONITOR_RUNBOOK_URL"  # the runbook page's URL; each alert links to ``#<kind>`` on it
RUNBOOK_PATH: Final = "docs/operations.md"  # the runbook in the repository


def runbook_base(environ: Mapping[str, str] | None = None) -> str:
    """The runbook page: ``$MONITOR_RUNBOOK_URL`` (any fragment dropped), else ``docs/operations.md``."""
    url = (environ if environ is not None else os.environ).get(RUNBOOK_URL_ENV, "").strip()
    return url.split("#", 1)[0] or RUNBOOK_PATH


def runbook_link(kind: str, base: str | None = None) -> str:
    """The link to the runbook section of an alert label or finding kind (its heading's anchor is the kind)."""
    return f"{base or runbook_base()}#{kind}"
TRACE_KEY: Final = "logging.googleapis.com/trace"
SPAN_KEY: Final = "logging.googleapis.com/spanId"
SOURCE_LOCATION_KEY: Final = "logging.googleapis.com/sourceLocation"

DEFAULT_LEVEL: Final = logging.INFO

_RESERVED: Final = frozenset(
    {"severity", "message", "time", "logger", "execution_id", "exception", "stack",
     LABELS_KEY, TRACE_KEY, SPAN_KEY, SOURCE_LOCATION_KEY}
)  # fmt: skip


# --------------------------------------------------------------------------- context


@dataclass(frozen=True, slots=True)
class _Context:
    labels: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    execution_id: str | None = None
    trace: str | None = None
    span_id: str | None = None


_EMPTY: Final = _Context()
_CONTEXT: contextvars.ContextVar[_Context] = contextvars.ContextVar("structured_log_context", default=_EMPTY)


@contextlib.contextmanager
def log_context(
    *,
    execution_id: str | None = None,
    trace: str | None = None,
    span_id: str | None = None,
    **labels: object,
) -> Iterator[None]:
    """Bind labels (and optionally the execution id and trace) to every log line in the block.

    Nested blocks add to the outer labels (inner values win) and inherit the outer
    execution id / trace unless they set their own. Label values are converted to ``str``.

    Args:
        execution_id: the function execution id (``execution_id`` in the payload).
        trace: the full trace resource name, e.g. from ``format_trace``.
        span_id: the span id (16 hex digits), e.g. from ``parse_trace_header``.
        **labels: fixed labels such as ``function``, ``transition``, ``game_date``.
    """
    outer = _CONTEXT.get()
    merged = dict(outer.labels)
    merged.update({str(key): str(value) for key, value in labels.items()})
    token = _CONTEXT.set(
        _Context(
            labels=MappingProxyType(merged),
            execution_id=execution_id if execution_id is not None else outer.execution_id,
            trace=trace if trace is not None else outer.trace,
            span_id=span_id if span_id is not None else outer.span_id,
        )
    )
    try:
        yield
    finally:
        _CONTEXT.reset(token)


def current_context() -> dict[str, Any]:
    """The context bound here: ``{"labels": {...}, "execution_id", "trace", "span_id"}``."""
    ctx = _CONTEXT.get()
    return {
        "labels": dict(ctx.labels),
        "execution_id": ctx.execution_id,
        "trace": ctx.trace,
        "span_id": ctx.span_id,
    }


# --------------------------------------------------------------------------- trace


class TraceContext(NamedTuple):
    """A parsed trace header: 32-hex trace id, 16-hex span id, sampled flag (None = unknown)."""

    trace_id: str
    span_id: str | None
    sampled: bool | None


_CLOUD_TRACE_RE: Final = re.compile(r"([0-9a-fA-F]{32})(?:/([0-9]{1,20}))?(?:;o=([0-9]+))?")
_TRACEPARENT_RE: Final = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(?:-.*)?", re.IGNORECASE)
_HEADER_NAME_RE: Final = re.compile(r"(?:x-cloud-trace-context|traceparent)\s*:\s*", re.IGNORECASE)


def parse_trace_header(value: str | None) -> TraceContext | None:
    """Parse an ``X-Cloud-Trace-Context`` or W3C ``traceparent`` header value.

    ``X-Cloud-Trace-Context: TRACE_ID/SPAN_ID;o=1`` has a decimal span id, converted to
    the 16-hex form Cloud Logging expects; ``traceparent: 00-TRACE_ID-SPAN_ID-FLAGS``.
    A leading ``Header-Name:`` is tolerated. Invalid or all-zero ids give ``None``.
    """
    if not value:
        return None
    text = _HEADER_NAME_RE.sub("", value.strip(), count=1).strip()
    match = _TRACEPARENT_RE.fullmatch(text)
    if match is not None:
        version, trace_id, span_id, flags = (part.lower() for part in match.groups())
        if version == "ff" or set(trace_id) == {"0"} or set(span_id) == {"0"}:
            return None
        return TraceContext(trace_id, span_id, bool(int(flags, 16) & 0x01))
    match = _CLOUD_TRACE_RE.fullmatch(text)
    if match is not None:
        trace_id, span, option = match.groups()
        if set(trace_id) == {"0"}:
            return None
        span_hex: str | None = None
        if span is not None:
            span_int = int(span)
            if 0 < span_int < 2**64:
                span_hex = f"{span_int:016x}"
        sampled = None if option is None else bool(int(option) & 0x01)
        return TraceContext(trace_id.lower(), span_hex, sampled)
    return None


def format_trace(project: str | None, header_value: str | None) -> str | None:
    """Return ``projects/<project>/traces/<trace_id>`` from a trace header, or None.

    Args:
        project: the Google Cloud project id.
        header_value: an ``X-Cloud-Trace-Context`` (``TRACE_ID/SPAN;o=1``) or
            ``traceparent`` (``00-TRACE_ID-SPAN_ID-01``) value.

    Returns:
        The trace resource name, or None when the project or a valid trace id is missing.
    """
    if not project:
        return None
    parsed = parse_trace_header(header_value)
    if parsed is None:
        return None
    return f"projects/{project}/traces/{parsed.trace_id}"


# --------------------------------------------------------------------------- formatting


def _severity(levelno: int) -> str:
    if levelno >= logging.CRITICAL:
        return "CRITICAL"
    if levelno >= logging.ERROR:
        return "ERROR"
    if levelno >= logging.WARNING:
        return "WARNING"
    if levelno >= logging.INFO:
        return "INFO"
    return "DEBUG"


def _rfc3339(moment: datetime) -> str:
    return rfc3339(moment, "microseconds")


def _json_default(value: object) -> object:
    if isinstance(value, datetime):
        return _rfc3339(value) if value.utcoffset() is not None else value.isoformat()
    if isinstance(value, set | frozenset | tuple):
        return list(value)
    return str(value)


def _simulated_clock() -> Clock | None:
    """The local cloud's simulated clock when this process runs on one, else ``None`` (record time)."""
    from shared.clock import SIMULATED_CLOCK_ENV, clock_from_env

    return clock_from_env() if os.environ.get(SIMULATED_CLOCK_ENV, "").strip() else None


class CloudJsonFormatter(logging.Formatter):
    """Formats a record as one Cloud Logging JSON line.

    Record extras understood: ``labels`` (dict, merged over the bound context labels),
    ``fields`` (dict, merged into the payload; a key colliding with a reserved key is
    kept as ``fields.<key>``), ``execution_id`` and ``trace`` (override the context).

    Args:
        clock: when given, ``time`` is read from it instead of the record's creation
            time (deterministic output for tests and the demo). Unset, a process on the local
            cloud's simulated clock (``$PHASECHAIN_SIMULATED_CLOCK``) stamps its lines with that
            clock, so its logs read on the same time axis as its state, ``status`` and ``health``.
    """

    def __init__(self, clock: Clock | None = None) -> None:
        super().__init__()
        self.clock = clock if clock is not None else _simulated_clock()

    def _message(self, record: logging.LogRecord) -> str:
        try:
            return record.getMessage()
        except (TypeError, ValueError):  # bad %-args must not lose the line
            return f"{record.msg!s} (unformattable args: {record.args!r})"

    def build_payload(self, record: logging.LogRecord) -> dict[str, Any]:
        """Return the JSON payload of ``record`` (before serialisation)."""
        ctx = _CONTEXT.get()
        moment = self.clock.now() if self.clock is not None else datetime.fromtimestamp(record.created, UTC)
        payload: dict[str, Any] = {}
        fields = getattr(record, "fields", None)
        if isinstance(fields, Mapping):
            for key, value in fields.items():
                name = str(key)
                payload[f"fields.{name}" if name in _RESERVED else name] = value
        payload["severity"] = _severity(record.levelno)
        payload["message"] = self._message(record)
        payload["time"] = _rfc3339(moment)
        payload["logger"] = record.name

        labels = dict(ctx.labels)
        extra_labels = getattr(record, "labels", None)
        if isinstance(extra_labels, Mapping):
            labels.update({str(k): str(v) for k, v in extra_labels.items()})
        if "alert" in labels and "runbook" not in labels:
            labels["runbook"] = runbook_link(labels["alert"])
        if labels:
            payload[LABELS_KEY] = labels

        trace = getattr(record, "trace", None) or ctx.trace
        if trace:
            payload[TRACE_KEY] = str(trace)
            if ctx.span_id:
                payload[SPAN_KEY] = ctx.span_id
        execution_id = getattr(record, "execution_id", None) or ctx.execution_id
        if execution_id:
            payload["execution_id"] = str(execution_id)

        if record.exc_info and record.exc_info[0] is not None:
            payload["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            payload["exception"] = record.exc_text
        if record.stack_info:
            payload["stack"] = self.formatStack(record.stack_info)
        payload[SOURCE_LOCATION_KEY] = {
            "file": record.pathname,
            "line": str(record.lineno),
            "function": record.funcName,
        }
        return payload

    def format(self, record: logging.LogRecord) -> str:
        """Return ``record`` as a single JSON line (no trailing newline)."""
        payload = self.build_payload(record)
        try:
            return json.dumps(payload, default=_json_default, ensure_ascii=False)
        except (TypeError, ValueError, RecursionError) as exc:
            # Non-string dict keys, circular references, ...: keep the line, stringify extras.
            safe = {key: (value if key in _RESERVED else repr(value)) for key, value in payload.items()}
            safe["logging_error"] = f"payload not JSON-serialisable: {exc}"
            return json.dumps(safe, default=repr, ensure_ascii=False)


# --------------------------------------------------------------------------- handler


class _JsonLineHandler(logging.StreamHandler[TextIO]):
    """A ``StreamHandler`` whose default stream is ``sys.stdout`` looked up at each write.

    Looking ``sys.stdout`` up late means a replaced ``sys.stdout`` (pytest capture, the
    functions framework) is honoured. Errors while emitting go to ``handleError`` as in
    the standard handler: logging never crashes the caller.
    """

    def __init__(self) -> None:
        logging.Handler.__init__(self, level=logging.NOTSET)
        self._configured_stream: TextIO | None = None

    @property
    def stream(self) -> TextIO:
        return self._configured_stream if self._configured_stream is not None else sys.stdout

    @stream.setter
    def stream(self, value: TextIO | None) -> None:
        self._configured_stream = value


_HANDLER_MARK: Final = "_shared_structured_log"
_LOCK: Final = threading.RLock()
_HANDLER: Final = _JsonLineHandler()
setattr(_HANDLER, _HANDLER_MARK, True)
_HANDLER.setFormatter(CloudJsonFormatter())
_MANAGED: dict[str, logging.Logger] = {}
_level: int = DEFAULT_LEVEL


def configure(
    *,
    stream: TextIO | None = None,
    level: int | str | None = None,
    clock: Clock | None = None,
) -> None:
    """Change the shared output settings of every logger from ``get_logger``.

    Arguments left ``None`` are unchanged; ``reset_configuration`` restores defaults.

    Args:
        stream: where lines go (default: the current ``sys.stdout``).
        level: minimum level of the managed loggers (default INFO), e.g. ``"DEBUG"``.
        clock: read ``time`` from this clock instead of the record creation time.
    """
    global _level
    with _LOCK:
        if stream is not None:
            _HANDLER.stream = stream
        if clock is not None:
            _HANDLER.setFormatter(CloudJsonFormatter(clock))
        if level is not None:
            resolved = logging.getLevelName(level.upper()) if isinstance(level, str) else level
            if not isinstance(resolved, int):
                raise ValueError(f"unknown log level {level!r}")
            _level = resolved
            for logger in _MANAGED.values():
                logger.setLevel(_level)


def reset_configuration() -> None:
    """Restore the defaults: ``sys.stdout``, INFO, record creation time."""
    global _level
    with _LOCK:
        _HANDLER.stream = None
        _HANDLER.setFormatter(CloudJsonFormatter())
        _level = DEFAULT_LEVEL
        for logger in _MANAGED.values():
            logger.setLevel(_level)


def get_logger(name: str) -> logging.Logger:
    """Return the named logger, writing Cloud Logging JSON lines.

    Idempotent: the shared handler is attached once, however often this is called.
    The logger does not propagate to the root logger (no duplicate lines).
    """
    with _LOCK:
        logger = logging.getLogger(name)
        if not any(getattr(handler, _HANDLER_MARK, False) for handler in logger.handlers):
            logger.addHandler(_HANDLER)
        if name not in _MANAGED:
            logger.setLevel(_level)
            _MANAGED[name] = logger
        logger.propagate = False
        return logger
