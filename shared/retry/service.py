"""Auto-retry: the tick (every 15 min) and the one enqueue path.

Retries are bounded (L10), ``failed_permanent`` is terminal until an operator requeues (L11), and a
processor that fails for good hands over to its fallback source (L13).

A tick reads the queue once (``RetryQueue.snapshot``) and works from that read
(``shared.retry.health``): returns stale ``retrying`` rows to ``pending`` (an UPDATE only when there
is one); marks rows ``succeeded`` whose
processor has reported success for that date since the row's latest failure (read from the
transition's Firestore completions); then picks due rows fairly and, for each, either goes terminal
(``failed_permanent``: unroutable processor, retry budget spent, client error) or claims the
row with a guarded UPDATE (a duplicate tick claims nothing) and dispatches a RetryRequest.
Going terminal enqueues the configured fallback (BDL → ESPN), recorded with ``fallback_for``.
The retry budget holds per processor, game_date and generation whoever enqueues (``queue``: one
row per key); a new generation of the date starts a fresh one.

A dispatch that fails for a transient reason (our Pub/Sub publish, or the processor's retry_url
answering 5xx or not at all) did not run the processor, so it spends none of its retry budget:
the claim is undone (pending, same retry count, due again on the next tick rather than after the
backoff) and the row's consecutive ``dispatch_failures`` grows; from ``DISPATCH_FAILING_AFTER``
on, each tick logs an ERROR with ``alert=retry_dispatch_failing`` (and the monitor reports it).
A 4xx from a retry_url is a client error: permanent at once, as before.

The heartbeat it writes at the end carries the queue's health (every ``pending`` and
``failed_permanent`` row as the tick left it): the monitor reports from it instead of querying.

Every tick first delivers the Firestore outbox (an ``OutboxDeliverer``: log rows, failed
completions, missing games), which hands its hand-offs back to ``enqueue_failure``. Neither module
imports the other: ``shared.retry.runtime`` composes the two.
"""

from __future__ import annotations

import logging
import random
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shared.clock import Clock
from shared.contracts.messages import ErrorType, RetryRequest, RetryTick, classify_error_type
from shared.errors import TransientError
from shared.pipeline.definition import PipelineDefinition
from shared.retry.dispatch import DispatchRejectedError, RetryDispatcher
from shared.retry.health import due_rows, health_doc, is_stale
from shared.retry.not_played import ExcludedGames, still_needed
from shared.retry.policy import backoff_delay, dispatch_failing
from shared.retry.queue import OPEN, SNAPSHOT_LIMIT, EnqueueResult, QueueRow, RetryQueue
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import firestore

_log = get_logger("shared.retry.service")
HEARTBEAT_ID = "auto_retry_processor"


@dataclass
class TickReport:
    dry_run: bool
    returned_stale: int = 0
    succeeded: list[str] = field(default_factory=list)
    dispatched: list[str] = field(default_factory=list)
    permanent: list[str] = field(default_factory=list)
    fallbacks: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    deferred: list[str] = field(default_factory=list)
    dispatch_failing: list[str] = field(default_factory=list)  # failed on DISPATCH_FAILING_AFTER+ ticks
    not_played: list[str] = field(default_factory=list)  # ended skipped: every game postponed or unavailable
    would: list[str] = field(default_factory=list)
    outbox: dict[str, Any] = field(default_factory=dict)  # what the outbox delivery did first
    # the queue as the tick leaves it (its snapshot, updated by what it did): the heartbeat's health
    rows: dict[str, QueueRow] = field(default_factory=dict, repr=False)
    excluded: dict[date, Mapping[str, str]] = field(default_factory=dict, repr=False)  # per date, read once

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if v and k not in ("rows", "excluded")}

    def track(self, row: QueueRow, **changes: Any) -> None:
        """``row`` is now as ``changes`` say (it went terminal, or back to pending)."""
        self.rows[row.id] = replace(row, **changes)

    def settle(self, row: QueueRow) -> None:
        """``row`` left the rows the monitor reports (dispatched: retrying; or succeeded)."""
        self.rows.pop(row.id, None)


class DeliverySummary(Protocol):
    def summary(self) -> dict[str, Any]: ...


class OutboxDeliverer(Protocol):
    """Delivers what the transitions left in the Firestore outbox (``shared.orchestration.outbox``)."""

    def deliver(self) -> DeliverySummary: ...


def _key(row: QueueRow) -> str:
    return f"{row.processor_name}@{row.game_date}#{row.id[:8]}"


class RetryService:
    def __init__(
        self,
        definition: PipelineDefinition,
        queue: RetryQueue,
        dispatcher: RetryDispatcher | None,
        clock: Clock,
        *,
        firestore_client: firestore.Client | None = None,
        rng: random.Random | None = None,
        outbox: OutboxDeliverer | None = None,
        excluded: ExcludedGames | None = None,
    ) -> None:
        self.definition = definition
        # the games of a date not to chase (postponed, unavailable): checked before each dispatch
        self.excluded = excluded
        self.queue = queue
        self.dispatcher = dispatcher
        self.clock = clock
        self.firestore = firestore_client
        self.rng = rng or random.Random()
        # the Firestore outbox (log rows, failed completions, missing games) is delivered first on
        # every tick: auto-retry is the retry queue's single owner, the transitions never write it
        self.outbox = outbox

    # -- the one enqueue path --------------------------------------------------------------
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
        fallback_for: str | None = None,
        failed_at: datetime | None = None,
        generation: int = 1,
    ) -> EnqueueResult:
        """Record a failure for auto-retry (failed completion, missing games, operator).

        ``error_type`` is stored as sent (free text). A permanent failure (``permanent``, or by
        default ``classify_error_type(error_type)`` is permanent: a client error or bad input
        upstream) goes straight to ``failed_permanent`` and enqueues the fallback, if any.
        ``failed_at`` (when the failure was recorded; an outbox hand-off's ``created_at``) starts the
        backoff, so a hand-off delivered later is not retried later than it would have been.
        ``generation`` is the date's (a hand-off's ``generation``; 1 when it carries none): the retry
        budget holds per processor, game_date and generation, however often the failure comes again.
        """
        if permanent is None:
            permanent = classify_error_type(error_type) is ErrorType.PERMANENT
        result = self.queue.enqueue(
            game_date=game_date,
            phase=phase,
            processor=processor,
            error_message=error_message,
            error_type=error_type,
            correlation_id=correlation_id,
            fallback_for=fallback_for,
            game_ids=game_ids,
            permanent_reason=f"permanent error reported by the processor: {error_message}" if permanent else None,
            next_retry_at=min(failed_at or self.clock.now(), self.clock.now())
            + backoff_delay(self.definition.retry, 0, self.rng),
            generation=generation,
            failed_at=failed_at,
        )
        if permanent:
            if result in ("exists", "requeued"):  # an open row for the key: it goes terminal now
                rows = self.queue.rows(game_date=game_date, processor=processor, phase=phase, generation=generation)
                for row in rows:
                    if row.status in ("pending", "retrying"):
                        self._go_permanent(row, "permanent error reported by the processor", TickReport(False))
            elif result == "inserted":
                fallback = (processor, phase, game_date, correlation_id, game_ids, generation)
                self._enqueue_fallback(*fallback, TickReport(False))
        return result

    # -- the tick ---------------------------------------------------------------------------
    def tick(self, tick: RetryTick) -> TickReport:
        report = TickReport(tick.dry_run)
        if self.outbox is not None and not tick.dry_run:
            report.outbox = self.outbox.deliver().summary()
        if tick.outbox_only:  # a transition's nudge: no retry pass, no heartbeat
            _log.info("outbox delivered: %s", report.outbox, extra={"fields": report.summary()})
            return report
        now = self.clock.now()
        # one read of the queue; a quiet queue costs this one statement (shared.retry.health)
        rows = self.queue.snapshot()
        if not tick.dry_run:
            stale_before = now - timedelta(minutes=self.definition.retry.stale_retrying_minutes)
            if any(is_stale(r, stale_before) for r in rows[:SNAPSHOT_LIMIT]):
                report.returned_stale = self.queue.return_stale(stale_before)
                rows = self.queue.snapshot()  # they are pending again: due now or at their backoff
        complete = len(rows) <= SNAPSHOT_LIMIT
        report.rows = {r.id: r for r in rows[:SNAPSHOT_LIMIT]}
        if not tick.dry_run:
            for row in [r for r in report.rows.values() if r.status in OPEN]:
                if self._succeeded_since(row) and self.queue.mark_succeeded(row, "success completion recorded"):
                    report.succeeded.append(_key(row))
                    report.settle(row)
        work = due_rows(report.rows.values(), now, tick.max_rows)
        while work:
            row = work.pop(0)
            fallback_rows = self._handle(row, report, tick.dry_run)
            work.extend(fallback_rows)
        self._heartbeat(report, health_doc(report.rows.values(), now, complete))
        _log.info("auto-retry tick: %s", report.summary(), extra={"fields": report.summary()})
        return report

    def _games_to_retry(self, row: QueueRow, report: TickReport, dry_run: bool) -> list[str] | None:
        """The row's games still worth a retry; ``None`` when it names games and none is (postponed or
        unavailable: a game that was not played is never retried, lesson L29): it ends ``skipped``."""
        if not row.game_ids or self.excluded is None:
            return list(row.game_ids)
        if row.game_date not in report.excluded:
            try:
                report.excluded[row.game_date] = self.excluded(row.game_date)
            except Exception as exc:  # noqa: BLE001 - logged as an alert; the retry goes out as before
                _log.error(
                    "could not read postponed/unavailable games of %s (%s: %s); retrying its rows unchanged",
                    row.game_date,
                    type(exc).__name__,
                    exc,
                    extra={"labels": {"alert": "retry_exclusions_unread", "game_date": str(row.game_date)}},
                )
                report.excluded[row.game_date] = {}
        keep, dropped = still_needed(row, report.excluded[row.game_date])
        if keep:
            return keep
        note = f"skipped: not retried, {'; '.join(dropped)}"
        if dry_run:
            report.would.append(f"skipped {_key(row)}: {note}")
        elif self.queue.skip(row, note):
            report.not_played.append(_key(row))
            report.track(row, status="skipped", resolution_notes=note)
            _log.warning(
                "retry of %s for %s skipped: %s",
                row.processor_name,
                row.game_date,
                note,
                extra={"labels": {"alert": "retry_skipped_not_played", "processor": row.processor_name}},
            )
        return None

    def _handle(self, row: QueueRow, report: TickReport, dry_run: bool) -> list[QueueRow]:
        games = self._games_to_retry(row, report, dry_run)
        if games is None:
            return []
        route = self.definition.retry_route(row.processor_name)
        if route is None:
            reason = f"unroutable: no retry_topic/retry_url for processor {row.processor_name!r} in the definition"
            return self._terminal(row, reason, report, dry_run)
        if row.retry_count >= row.max_retries:
            return self._terminal(row, f"max retries ({row.max_retries}) reached without success", report, dry_run)
        now = self.clock.now()
        next_at = now + backoff_delay(self.definition.retry, row.retry_count + 1, self.rng)
        if dry_run:
            report.would.append(f"dispatch {_key(row)} attempt {row.retry_count + 1} via {route[0]} {route[1]}")
            return []
        if not self.queue.claim(row, now, next_at):
            report.skipped.append(_key(row))  # another tick claimed it: no double dispatch
            return []
        request = RetryRequest(
            request_id=uuid.uuid4().hex,
            queue_id=row.id,
            processor_name=row.processor_name,
            phase=row.phase,
            game_date=row.game_date,
            correlation_id=row.correlation_id,
            attempt=row.retry_count + 1,
            fallback_for=row.fallback_for,
            game_ids=games,
            requested_at=now,
        )
        assert self.dispatcher is not None
        try:
            self.dispatcher.dispatch(route, request)
        except DispatchRejectedError as exc:
            if self.definition.retry.client_errors_permanent:
                return self._terminal(row, f"client error: {exc}", report, dry_run=False)
            self.queue.release(row, f"client error, retried (client_errors_permanent = false): {exc}")
            report.deferred.append(_key(row))
            report.track(row, retry_count=row.retry_count + 1, next_retry_at=next_at, last_retry_at=now)
            return []
        except TransientError as exc:
            self._dispatch_failed(row, route, exc, report, now)
            return []
        report.dispatched.append(f"{_key(row)} attempt {request.attempt}")
        report.settle(row)
        if row.dispatch_failures:
            try:
                self.queue.dispatch_succeeded(row)
            except TransientError as exc:  # the dispatch went out: the tick goes on, the stale count is logged
                _log.error(
                    "dispatch of %s for %s succeeded but its dispatch_failures (%d) could not be reset: %s",
                    row.processor_name,
                    row.game_date,
                    row.dispatch_failures,
                    exc,
                    extra={"labels": {"processor": row.processor_name, "queue_id": row.id}},
                )
        return []

    def _dispatch_failed(
        self, row: QueueRow, route: tuple[str, str], exc: TransientError, report: TickReport, now: datetime
    ) -> None:
        """The processor did not run: undo the claim (no retry spent), due again next tick; alert when
        the dispatch keeps failing."""
        failures = row.dispatch_failures + 1
        note = (
            f"dispatch failed on {failures} consecutive tick(s), tried again next tick "
            f"(no retry spent) via {route[0]} {route[1]}: {exc}"
        )
        if self.queue.dispatch_failed(row, note, now) is None:
            _log.warning(
                "dispatch of %s for %s failed and the row had moved on meanwhile (left as it is): %s",
                row.processor_name,
                row.game_date,
                exc,
                extra={"labels": {"processor": row.processor_name, "queue_id": row.id}},
            )
            report.skipped.append(_key(row))
            return
        report.deferred.append(_key(row))
        report.track(row, dispatch_failures=failures, next_retry_at=now, resolution_notes=note)
        failing = dispatch_failing(failures)
        if failing:
            report.dispatch_failing.append(f"{_key(row)} {failures} ticks")
        _log.log(
            logging.ERROR if failing else logging.WARNING,
            "retry dispatch of %s for %s failed (%d consecutive tick(s); retry budget untouched, %d/%d): %s",
            row.processor_name,
            row.game_date,
            failures,
            row.retry_count,
            row.max_retries,
            exc,
            extra={
                "labels": {
                    **({"alert": "retry_dispatch_failing"} if failing else {}),
                    "processor": row.processor_name,
                    "queue_id": row.id,
                    "route": route[0],
                },
                "fields": {"dispatch_failures": failures, "target": route[1]},
            },
        )

    def _terminal(self, row: QueueRow, reason: str, report: TickReport, dry_run: bool) -> list[QueueRow]:
        if dry_run:
            report.would.append(f"failed_permanent {_key(row)}: {reason}")
            return []
        return self._go_permanent(row, reason, report)

    def _go_permanent(self, row: QueueRow, reason: str, report: TickReport) -> list[QueueRow]:
        if not self.queue.mark_permanent(row, reason):
            return []  # someone else moved it first
        report.permanent.append(_key(row))
        report.track(row, status="failed_permanent", resolution_notes=reason)
        _log.error(
            "failed_permanent %s for %s: %s",
            row.processor_name,
            row.game_date,
            reason,
            extra={"labels": {"alert": "retry_failed_permanent", "processor": row.processor_name}},
        )
        return self._enqueue_fallback(
            row.processor_name, row.phase, row.game_date, row.correlation_id, row.game_ids, row.generation, report
        )

    def _enqueue_fallback(
        self,
        processor: str,
        phase: int,
        game_date: date,
        correlation_id: str | None,
        game_ids: tuple[str, ...],
        generation: int,
        report: TickReport,
    ) -> list[QueueRow]:
        """The next source of the chain for ``processor``'s key, once per generation (its own key)."""
        fallback = self.definition.retry.fallbacks.get(processor)
        if fallback is None:
            return []
        result = self.queue.enqueue(
            game_date=game_date,
            phase=self.definition.processor(fallback).phase,
            processor=fallback,
            error_message=f"fallback for {processor}",
            error_type="fallback",
            correlation_id=correlation_id,
            fallback_for=processor,
            game_ids=game_ids,
            next_retry_at=self.clock.now(),
            generation=generation,
        )
        if result != "inserted":
            return []
        report.fallbacks.append(f"{fallback}@{game_date} for {processor}")
        rows = self.queue.rows(game_date=game_date, processor=fallback, generation=generation)
        return [r for r in rows if r.status == "pending" and r.fallback_for == processor]

    # -- outcomes and heartbeat ---------------------------------------------------------------
    def _succeeded_since(self, row: QueueRow) -> bool:
        if self.firestore is None:
            return False
        from shared.orchestration.state import TransitionState

        try:
            transition = self.definition.transition_from(row.phase)
        except KeyError:
            return False
        state = TransitionState(self.firestore, self.definition.pipeline.state_collection, transition.name)
        # only a success since the row's latest failure: one from before it (the re-run that
        # "succeeded" while the gate still misses its games) does not close the row again
        return any(
            c.processor == row.processor_name
            and c.status in ("success", "partial")
            and c.completed_at >= row.failed_last_at
            for c in state.load(row.game_date).completions
        )

    def quarantine(self, raw: object, reason: str) -> None:
        """Keep a malformed scheduler tick with its reason (acked, never silently dropped)."""
        if self.firestore is None:
            _log.error("malformed auto-retry tick (no Firestore to quarantine it): %s", reason)
            return
        from shared.orchestration.quarantine import Quarantine

        Quarantine(
            self.firestore, self.definition.pipeline.quarantine_collection, self.clock, self.definition.retention
        ).put_event(raw, reason=reason, transition=HEARTBEAT_ID)

    def _heartbeat(self, report: TickReport, queue: dict[str, Any]) -> None:
        """The tick ran; ``queue``: the queue's health as the tick left it (the monitor reads it)."""
        if self.firestore is None:
            return
        doc = {"last_run_at": self.clock.now(), "dry_run": report.dry_run, "summary": report.summary(), "queue": queue}
        self.firestore.collection(self.definition.monitor.heartbeat_collection).document(HEARTBEAT_ID).set(doc)
