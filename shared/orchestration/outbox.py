"""Delivers the Firestore outbox: log rows to ``phase_execution_log``, hand-offs to the retry queue.

The transitions write both kinds of document (``shared.orchestration.outbox_store``) in their
own Firestore transactions (the latch, the release, the completion's batch) and never talk to
BigQuery for them (cold start: a transition ships no BigQuery client for its log). The
functions that own BigQuery deliver them:

- ``auto_retry_processor``: at the start of every tick, and on every transition's nudge (a
  ``RetryTick`` with ``outbox_only``), so a row normally lands within seconds of its trigger;
- ``phase_transition_monitor``: on every pass (every 10 minutes), whatever is left.

Worst case, with auto-retry down, a row waits for the next monitor pass (10 minutes); with
both down, it stays in the outbox (30 days, ``[retention] outbox_days``) until one is back.
Delivery is idempotent: rows carry their outbox id as ``insertId``; the retry queue finds an
open row for a repeated hand-off.

Hand-offs go to a ``HandoffSink`` (auto-retry's one enqueue path, ``RetryService.enqueue_failure``):
this module does not name the retry package; the composition roots (``shared.retry.runtime``,
``shared.monitor.runtime``) hand it the retry service.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.deferred import Deferred, deferred_attribute
from shared.errors import TransientError
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore

    from shared.orchestration.outbox_store import Outbox
    from shared.pipeline.definition import PipelineDefinition

_log = get_logger("shared.orchestration.outbox")


@dataclass(frozen=True)
class FlushResult:
    delivered: int
    pending: int
    error: str | None = None


class ExecutionLogWriter:
    """Writes the outbox's ``phase_execution_log`` rows to BigQuery. Errors are reported, never raised."""

    client: deferred_attribute[bigquery.Client | None] = deferred_attribute()  # a Deferred: built on first flush

    def __init__(
        self, client: bigquery.Client | Deferred[bigquery.Client] | None, table: str, timeout: float = 10.0
    ) -> None:
        self.client = client
        self.table = table  # project.dataset.table
        self.timeout = timeout  # bounded: the trigger is already out and the outbox keeps the row

    def flush(self, outbox: Outbox, limit: int = 50) -> FlushResult:
        try:
            rows = outbox.pending_log_rows(limit)
        except Exception as exc:  # noqa: BLE001 - logging must never break a transition (L19)
            _log.warning("phase_execution_log outbox unreadable: %s", exc)
            return FlushResult(0, -1, f"{type(exc).__name__}: {exc}")
        if not rows:
            return FlushResult(0, 0)
        try:
            client = self.client
            if client is None:
                return FlushResult(0, len(rows), "no BigQuery client")
            from google.cloud.bigquery import DEFAULT_RETRY

            errors = client.insert_rows_json(
                self.table,
                [r for _, r in rows],
                row_ids=[i for i, _ in rows],
                timeout=self.timeout,
                retry=DEFAULT_RETRY.with_deadline(self.timeout),
            )
        except Exception as exc:  # noqa: BLE001 - rows stay in the outbox; retried on the next flush
            _log.warning(
                "phase_execution_log insert failed; %d row(s) stay in the outbox: %s",
                len(rows),
                exc,
                extra={"labels": {"alert": "execution_log_delayed"}},
            )
            return FlushResult(0, len(rows), f"{type(exc).__name__}: {exc}")
        failed = {int(e.get("index", -1)): e for e in errors or []}
        delivered = [row_id for n, (row_id, _) in enumerate(rows) if n not in failed]
        # BigQuery refuses a whole batch for one bad row: that row's errors say `invalid`, the
        # others' only `stopped`. Only a row that is itself invalid goes to quarantine; the
        # stopped ones stay in the outbox for the next flush.
        rejected = [
            (rows[n], err) for n, err in sorted(failed.items()) if 0 <= n < len(rows) and not _only_stopped(err)
        ]
        try:
            if rejected:
                # a row BigQuery refuses would be refused forever: quarantine it with the reason
                _log.error(
                    "phase_execution_log rejected %d row(s): %s",
                    len(rejected),
                    errors,
                    extra={"labels": {"alert": "execution_log_rejected"}},
                )
                outbox.quarantine_log_rows([(row[0], row[1], json.dumps(err, default=str)) for row, err in rejected])
            if delivered:
                outbox.delete_log_rows(delivered)
        except Exception as exc:  # noqa: BLE001 - a redelivery is deduplicated by insertId
            _log.warning("delivered log rows not removed from the outbox: %s", exc)
        return FlushResult(
            len(delivered), len(rows) - len(delivered), None if not failed else f"{len(rejected)} row(s) rejected"
        )


def _only_stopped(error: dict[str, Any]) -> bool:
    reasons = {str(e.get("reason", "")).lower() for e in error.get("errors") or [] if isinstance(e, dict)}
    return bool(reasons) and reasons <= {"stopped"}


@dataclass(frozen=True)
class DeliveryReport:
    log_rows: int = 0
    log_rows_pending: int = 0
    handoffs: int = 0
    handoffs_pending: int = 0
    error: str | None = None

    def summary(self) -> dict[str, Any]:
        return {
            "log_rows": self.log_rows,
            "log_rows_pending": self.log_rows_pending,
            "handoffs": self.handoffs,
            "handoffs_pending": self.handoffs_pending,
            **({"error": self.error} if self.error else {}),
        }


class HandoffSink(Protocol):
    """Where a ``retry_enqueue`` hand-off goes: auto-retry's one enqueue path (idempotent: a repeated
    hand-off finds its open row). ``shared.retry.service.RetryService`` is one."""

    def enqueue_failure(
        self,
        *,
        game_date: date,
        phase: int,
        processor: str,
        error_message: str | None,
        error_type: str | None,
        permanent: bool | None = None,
        correlation_id: str | None = None,
        game_ids: tuple[str, ...] = (),
        failed_at: datetime | None = None,
        generation: int = 1,
    ) -> object: ...


class OutboxDelivery:
    """Delivers every pending outbox document (all transitions, sensors and scheduled triggers)."""

    retry: deferred_attribute[HandoffSink | None] = deferred_attribute()  # built when a hand-off is pending

    def __init__(
        self,
        outbox: Outbox,
        log_writer: ExecutionLogWriter,
        retry: HandoffSink | Deferred[HandoffSink | None] | None,
        *,
        max_batches: int = 20,
    ) -> None:
        self.outbox = outbox
        self.log_writer = log_writer
        self.retry = retry
        self.max_batches = max_batches  # bounded: 20 x 50 rows per call; the rest on the next one

    def deliver(self, *, deadline: float | None = None) -> DeliveryReport:
        """Deliver what is pending now. Never raises for BigQuery: what fails stays for the next call.

        Bounded (L26): every call has the client's deadline (``shared.deadline``); a failed batch ends
        the log rows and a hand-off the queue gave no answer for ends the hand-offs (the rest would
        wait on it one by one); past ``deadline`` (``time.monotonic()``) no new batch or hand-off starts.
        """
        rows = pending_rows = 0
        error: str | None = None
        for _ in range(self.max_batches):
            if _past(deadline):
                error = error or "out of time: the rest stays for the next delivery"
                break
            result = self.log_writer.flush(self.outbox)
            rows += result.delivered
            pending_rows = result.pending
            if result.error or result.pending <= 0 or result.delivered == 0:
                error = result.error
                break
        handoffs, pending_handoffs = self.deliver_handoffs(deadline=deadline)
        return DeliveryReport(rows, max(pending_rows, 0), handoffs, pending_handoffs, error)

    def deliver_handoffs(self, *, deadline: float | None = None) -> tuple[int, int]:
        """Hand-offs to the retry queue (idempotent enqueue); (delivered, left in the outbox). Stops at
        the first one the queue gave no answer for (its backend hangs: the others stay for the next
        call) and, past ``deadline`` (``time.monotonic()``), before the next one."""
        try:
            pending = self.outbox.pending_handoffs()
        except TransientError as exc:
            _log.warning("hand-offs unreadable; they stay for the next pass: %s", exc)
            return 0, -1
        delivered = 0
        retry = self.retry if pending else None
        for handoff_id, doc in pending:
            if doc.get("kind") != "retry_enqueue" or retry is None:
                continue
            if _past(deadline):
                break
            try:
                retry.enqueue_failure(
                    game_date=date.fromisoformat(str(doc["game_date"])),
                    phase=int(doc["phase"]),
                    processor=str(doc["processor"]),
                    error_message=doc.get("error_message"),
                    error_type=doc.get("error_type"),
                    permanent=doc.get("permanent"),
                    correlation_id=doc.get("correlation_id"),
                    game_ids=tuple(doc.get("game_ids") or ()),
                    failed_at=doc.get("created_at"),
                    generation=int(doc.get("generation") or 1),  # one retry budget per generation
                )
                self.outbox.delete_handoff(handoff_id)
                delivered += 1
            except TransientError as exc:
                unanswered = _no_answer(exc)
                _log.warning(
                    "hand-off %s not delivered yet (it stays in the outbox%s): %s",
                    handoff_id,
                    ", with the ones after it: the queue gave no answer" if unanswered else "",
                    exc,
                    extra={"labels": {"alert": "handoff_delayed"}},
                )
                if unanswered:  # the next ones would each wait for the same deadline
                    break
        return delivered, len(pending) - delivered


def _past(deadline: float | None) -> bool:
    return deadline is not None and time.monotonic() >= deadline


def _no_answer(exc: BaseException) -> bool:
    """``exc`` (or what it wraps) is a call that ran out of its deadline: the backend does not answer.
    Any other failure may be this hand-off's own: the next ones are still tried."""
    from google.api_core import exceptions as gexc

    seen: BaseException | None = exc
    for _ in range(10):
        if seen is None:
            return False
        if isinstance(seen, gexc.DeadlineExceeded | gexc.RetryError | TimeoutError):
            return True
        seen = seen.__cause__ or seen.__context__
    return False


def build_outbox_delivery(
    definition: PipelineDefinition,
    project: str,
    fs: firestore.Client,
    retry: HandoffSink | Deferred[HandoffSink | None] | None,
) -> OutboxDelivery:
    """The outbox delivery of a function that owns BigQuery (auto-retry, the monitor); hand-offs go
    to ``retry``."""
    from shared.gcp_bigquery import bigquery_client
    from shared.orchestration.outbox_store import Outbox

    settings = definition.pipeline
    log = f"{project}.{settings.dataset}.{settings.phase_execution_log_table}"
    outbox = Outbox.for_definition(fs, definition)
    return OutboxDelivery(outbox, ExecutionLogWriter(Deferred(lambda: bigquery_client(project)), log), retry)
