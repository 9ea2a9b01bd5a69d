"""``failed_processor_queue`` in BigQuery (thin adapter; all SQL parameterised, lesson L18).

Statuses: pending → retrying → succeeded | pending (failed again) | failed_permanent; an open row
whose games were not played (postponed) or are marked unavailable ends ``skipped`` (terminal). A
failed dispatch (our publish, or the retry_url answering 5xx or not at all) is undone: retrying →
pending, same retry count, due at once, ``dispatch_failures`` + 1 (a successful one resets it).

One row per phase + processor + game_date + generation, whatever its status and whoever enqueues
(a failed completion, a gate's or a trigger's missing games, the monitor's re-check): the retry
budget holds per key. A failure merged into an existing row never resets its retry count: a
``retrying`` row returns to ``pending``, a ``succeeded`` row reopens when the failure is newer than
its last one (the processor "succeeded" and the gate still misses its games), ``pending`` absorbs
it, ``failed_permanent`` stays terminal until an operator requeues it (L11). A new generation of the
date (``phasectl trigger --force``) is a new key: a fresh budget.

Every statement names its partition (``game_date``): the key's date, or the window ``game_date >=
@since`` (``policy.QUEUE_WINDOW_DAYS``). Every DML statement runs through ``_dml``: a conflict
(streaming buffer, concurrent DML, quota) is retried, bounded, and written to ``streaming_conflict_log``.
"""

from __future__ import annotations

import json
import time
import uuid
from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from google.api_core import exceptions as gexc

from shared.clock import Clock
from shared.deferred import Deferred, deferred_attribute
from shared.errors import TransientError
from shared.pipeline.definition import RetryPolicy
from shared.retry.policy import classify_conflict, queue_window_start
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import bigquery

_log = get_logger("shared.retry.queue")
OPEN = ("pending", "retrying")
EnqueueResult = Literal["inserted", "requeued", "exists", "terminal"]
SNAPSHOT_LIMIT = 1000  # rows a tick's snapshot holds; beyond it the tick still works the first ones
_COLUMNS = (
    "id, game_date, phase, processor_name, correlation_id, error_message, error_type, retry_count, max_retries, "
    "first_failure_at, last_retry_at, next_retry_at, status, resolution_notes, fallback_for, game_ids, "
    "created_at, updated_at, dispatch_failures, generation, last_failure_at"
)


@dataclass(frozen=True)
class QueueRow:
    id: str
    game_date: date
    phase: int
    processor_name: str
    correlation_id: str | None
    error_message: str | None
    error_type: str | None
    retry_count: int
    max_retries: int
    first_failure_at: datetime
    last_retry_at: datetime | None
    next_retry_at: datetime | None
    status: str
    resolution_notes: str | None
    fallback_for: str | None
    game_ids: tuple[str, ...]
    created_at: datetime
    updated_at: datetime
    dispatch_failures: int = 0  # consecutive ticks whose dispatch failed (NULL in older rows: 0)
    generation: int = 1  # the date's generation the row belongs to (NULL in older rows: 1)
    last_failure_at: datetime | None = None  # the latest failure merged into the row (NULL: first_failure_at)

    @property
    def failed_last_at(self) -> datetime:
        """When the latest failure of the row was recorded: a success resolves it only from then on."""
        return self.last_failure_at or self.first_failure_at

    @classmethod
    def from_row(cls, row: Any) -> QueueRow:
        """A row of ``_COLUMNS``; NULL in a column added later reads as its default."""
        values = {f.name: row[f.name] for f in fields(cls)}
        counts = {n: int(values[n] or 0) for n in ("phase", "retry_count", "max_retries", "dispatch_failures")}
        game_ids = tuple(i for i in (values["game_ids"] or "").split(",") if i)
        return cls(**{**values, **counts, "generation": int(values["generation"] or 1), "game_ids": game_ids})


def _param(name: str, kind: str, value: Any) -> Any:
    from google.cloud import bigquery

    return bigquery.ScalarQueryParameter(name, kind, value)


class RetryQueue:
    """The queue table plus the conflict log. ``client`` may be a ``Deferred`` (BigQuery loads on first use)."""

    client: deferred_attribute[bigquery.Client] = deferred_attribute()

    def __init__(
        self,
        client: bigquery.Client | Deferred[bigquery.Client],
        project: str,
        dataset: str,
        policy: RetryPolicy,
        clock: Clock,
        *,
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.client = client
        self.table = f"`{project}.{dataset}.{policy.queue_table}`"
        self.conflict_table = f"{project}.{dataset}.{policy.conflict_log_table}"
        self.policy = policy
        self.clock = clock
        self.sleep = sleep

    # -- SQL plumbing -------------------------------------------------------------------------
    def _query(self, sql: str, params: Sequence[Any]) -> Any:
        from google.cloud import bigquery

        job = self.client.query(sql, job_config=bigquery.QueryJobConfig(query_parameters=list(params)))
        job.result(timeout=60)
        return job

    def _select(self, sql: str, params: Sequence[Any]) -> list[QueueRow]:
        try:
            return [QueueRow.from_row(r) for r in self._query(sql, params).result()]
        except gexc.GoogleAPIError as exc:
            raise TransientError(f"failed_processor_queue read failed: {exc}") from exc

    def _dml(
        self,
        op: str,
        sql: str,
        params: Sequence[Any],
        *,
        processor: str | None = None,
        game_date: date | None = None,
        game_id: str | None = None,
    ) -> int:
        """Run one DML statement; conflicts are retried (bounded) and logged. Returns affected rows."""
        attempts = self.policy.dml_max_attempts
        conflict: str | None = None  # the conflict class the statement last met
        where = (op, processor, game_date, game_id)
        for attempt in range(1, attempts + 1):
            try:
                job = self._query(sql, params)
            except gexc.GoogleAPIError as exc:
                kind = classify_conflict(exc)
                if kind is None:
                    raise TransientError(f"failed_processor_queue {op} failed: {exc}") from exc
                conflict = kind
                last = attempt == attempts
                delay = 0.0 if last else self.policy.dml_base_delay_seconds * 2 ** (attempt - 1)
                self._log_conflict(kind, attempt, delay, exc, where, resolved=False, method="gave_up" if last else None)
                if last:
                    raise TransientError(
                        f"failed_processor_queue {op}: {kind} conflict persisted after {attempts} attempts: {exc}"
                    ) from exc
                self.sleep(delay)
                continue
            affected = int(job.num_dml_affected_rows or 0)
            if attempt > 1:  # the resolution row names the conflict it resolved
                self._log_conflict(conflict, attempt, 0.0, None, where, resolved=True, method="retried", rows=affected)
            return affected
        raise AssertionError("unreachable")

    def _log_conflict(
        self,
        kind: str | None,
        attempt: int,
        delay: float,
        exc: BaseException | None,
        where: tuple[str, str | None, date | None, str | None],  # operation, processor, game_date, game_id
        *,
        resolved: bool,
        method: str | None,
        rows: int | None = None,
    ) -> None:
        op, processor, game_date, game_id = where
        now = self.clock.now()
        row = {
            "conflict_id": uuid.uuid4().hex,
            "timestamp": now.isoformat(),
            "processor_name": processor,
            "game_id": game_id,
            "game_date": game_date.isoformat() if game_date else None,
            "conflict_type": kind or "resolved",
            "retry_attempt": attempt,
            "max_retries": self.policy.dml_max_attempts,
            "delay_seconds": delay,
            "resolved": resolved,
            "resolution_time": now.isoformat() if resolved else None,
            "resolution_method": method,
            "rows_affected": rows,
            "error_message": None if exc is None else str(exc)[:2000],
            "details": json.dumps({"operation": op}),
        }
        _log.warning(
            "DML %s conflict on failed_processor_queue: %s (attempt %d%s)",
            kind or "unknown",
            op,
            attempt,
            f", {method}" if method else "",
            extra={"labels": {"conflict_type": kind or "resolved", "resolved": str(resolved).lower()}},
        )
        try:
            errors = self.client.insert_rows_json(self.conflict_table, [row])
        except gexc.GoogleAPIError as log_exc:
            _log.error("streaming_conflict_log write failed: %s; row: %s", log_exc, row)
            return
        if errors:
            _log.error("streaming_conflict_log rejected a row: %s; row: %s", errors, row)

    # -- operations -----------------------------------------------------------------------------
    def enqueue(
        self,
        *,
        game_date: date,
        phase: int,
        processor: str,
        error_message: str | None,
        error_type: str | None,
        correlation_id: str | None = None,
        fallback_for: str | None = None,
        game_ids: Sequence[str] = (),
        permanent_reason: str | None = None,
        next_retry_at: datetime | None = None,
        generation: int = 1,
        failed_at: datetime | None = None,
    ) -> EnqueueResult:
        """The one idempotent path for failed completions, missing games and operators.

        The key (phase, processor, game_date, generation) has one row: a ``retrying`` row failed
        since its dispatch returns to ``pending``, and a ``succeeded`` one failed since its last
        failure reopens (both ``requeued``, retry count kept: the budget holds; due at the backoff
        its last dispatch set, and not before ``next_retry_at``); an open row absorbs the failure
        (``exists``); a ``failed_permanent`` key stays terminal (``terminal``); otherwise a row is
        inserted (as ``failed_permanent`` at once with ``permanent_reason``). ``failed_at`` (default
        now) is when the failure was recorded. The key is read first: a repeated failure (the
        monitor's re-check of a blocked date, every 10 minutes) costs one query and no DML.
        """
        now = self.clock.now()
        failed_at = failed_at or now
        rows = self.rows(game_date=game_date, processor=processor, phase=phase, generation=generation)
        if not rows and self._dml(
            "enqueue",
            f"MERGE {self.table} T USING (SELECT @phase AS phase, @processor AS processor_name, "
            "@generation AS generation) S "
            "ON T.game_date = @game_date AND T.phase = S.phase AND T.processor_name = S.processor_name "
            "AND COALESCE(T.generation, 1) = S.generation "
            f"WHEN NOT MATCHED THEN INSERT ({_COLUMNS}) VALUES (@id, @game_date, @phase, @processor, "
            "@correlation_id, @msg, @error_type, 0, @max_retries, @failed_at, NULL, @next, @status, @notes, "
            "@fallback_for, @game_ids, @now, @now, 0, @generation, @failed_at)",
            [
                _param("game_date", "DATE", game_date),
                _param("phase", "INT64", phase),
                _param("processor", "STRING", processor),
                _param("generation", "INT64", generation),
                _param("id", "STRING", uuid.uuid4().hex),
                _param("correlation_id", "STRING", correlation_id),
                _param("msg", "STRING", error_message),
                _param("error_type", "STRING", error_type),
                _param("max_retries", "INT64", self.policy.max_retries),
                _param("now", "TIMESTAMP", now),
                _param("failed_at", "TIMESTAMP", failed_at),
                _param("next", "TIMESTAMP", next_retry_at or now),
                _param("status", "STRING", "failed_permanent" if permanent_reason else "pending"),
                _param("notes", "STRING", permanent_reason),
                _param("fallback_for", "STRING", fallback_for),
                _param("game_ids", "STRING", ",".join(game_ids) or None),
            ],
            processor=processor,
            game_date=game_date,
        ):
            return "inserted"
        if not rows:  # inserted meanwhile by a concurrent enqueue of the same key
            rows = self.rows(game_date=game_date, processor=processor, phase=phase, generation=generation)
            if not rows:
                raise TransientError(f"failed_processor_queue: no row for {processor} {game_date} and none inserted")
        if any(r.status == "failed_permanent" for r in rows):
            return "terminal"
        latest = rows[-1]  # the key's row (rows written before one row per key held: the latest)
        failed_since = (latest.status == "retrying" and failed_at >= (latest.last_retry_at or failed_at)) or (
            latest.status == "succeeded" and failed_at > latest.failed_last_at
        )
        if failed_since and self._requeue(latest, error_message, failed_at, next_retry_at or now):
            return "requeued"
        return "exists"

    def _requeue(self, row: QueueRow, error_message: str | None, failed_at: datetime, next_at: datetime) -> bool:
        """``row`` (retrying, or succeeded) failed again: pending with its retry count; guarded by the
        status and count read (a tick that moved it meanwhile wins)."""
        return bool(
            self._dml(
                "requeue-after-failure",
                f"UPDATE {self.table} SET status = 'pending', error_message = @msg, updated_at = @now, "
                "last_failure_at = GREATEST(COALESCE(last_failure_at, first_failure_at), @failed_at), "
                "next_retry_at = GREATEST(COALESCE(next_retry_at, @next), @next), "
                "resolution_notes = IF(status = 'succeeded', @reopened, resolution_notes) "
                "WHERE game_date = @game_date AND id = @id AND status = @status AND retry_count = @count",
                [
                    _param("msg", "STRING", error_message),
                    _param("now", "TIMESTAMP", self.clock.now()),
                    _param("failed_at", "TIMESTAMP", failed_at),
                    _param("next", "TIMESTAMP", next_at),
                    _param("reopened", "STRING", "failed again after a success; reopened with its retry count"),
                    *_row_key(row),
                    _param("status", "STRING", row.status),
                    _param("count", "INT64", row.retry_count),
                ],
                processor=row.processor_name,
                game_date=row.game_date,
            )
        )

    def requeue_permanent(self, *, game_date: date, phase: int, processor: str, note: str) -> int:
        """Operator: the terminal row of the key's latest generation becomes pending again with a
        fresh retry budget (an earlier generation's stays: its date has moved on)."""
        return self._dml(
            "operator-requeue",
            f"UPDATE {self.table} SET status = 'pending', retry_count = 0, dispatch_failures = 0, "
            "next_retry_at = @now, updated_at = @now, resolution_notes = @note "
            "WHERE game_date = @game_date AND phase = @phase AND processor_name = @processor "
            "AND status = 'failed_permanent' AND COALESCE(generation, 1) = (SELECT MAX(COALESCE(generation, 1)) "
            f"FROM {self.table} WHERE game_date = @game_date AND phase = @phase AND processor_name = @processor)",
            [
                _param("game_date", "DATE", game_date),
                _param("phase", "INT64", phase),
                _param("processor", "STRING", processor),
                _param("now", "TIMESTAMP", self.clock.now()),
                _param("note", "STRING", note),
            ],
            processor=processor,
            game_date=game_date,
        )

    def _since(self) -> Any:
        """The whole-queue scans' partition filter parameter: ``game_date >= @since``."""
        return _param("since", "DATE", queue_window_start(self.clock.now()))

    def return_stale(self, stale_before: datetime) -> int:
        """``retrying`` rows with no outcome since ``stale_before`` return to ``pending``."""
        return self._dml(
            "return-stale",
            f"UPDATE {self.table} SET status = 'pending', updated_at = @now, "
            "resolution_notes = 'no outcome after retry; returned to pending' "
            "WHERE game_date >= @since AND status = 'retrying' AND last_retry_at < @stale_before",
            [
                _param("now", "TIMESTAMP", self.clock.now()),
                _param("stale_before", "TIMESTAMP", stale_before),
                self._since(),
            ],
        )

    def due(self, now: datetime, limit: int) -> list[QueueRow]:
        """Pending rows whose time has come, longest-waiting first (fair: no starvation)."""
        return self._select(
            f"SELECT {_COLUMNS} FROM {self.table} WHERE game_date >= @since AND status = 'pending' "
            "AND (next_retry_at IS NULL OR next_retry_at <= @now) "
            "ORDER BY next_retry_at ASC, created_at ASC, id ASC LIMIT @limit",
            [_param("now", "TIMESTAMP", now), _param("limit", "INT64", limit), self._since()],
        )

    def snapshot(self, limit: int = SNAPSHOT_LIMIT) -> list[QueueRow]:
        """Every open and ``failed_permanent`` row of the window, open rows first, in one statement (a
        tick's only read, ``shared.retry.health``); ``limit`` + 1 rows: more than ``limit``, the window holds more."""
        return self._select(
            f"SELECT {_COLUMNS} FROM {self.table} WHERE game_date >= @since "
            "AND status IN ('pending', 'retrying', 'failed_permanent') "
            "ORDER BY IF(status = 'failed_permanent', 1, 0), next_retry_at, created_at, id LIMIT @limit",
            [_param("limit", "INT64", limit + 1), self._since()],
        )

    def rows(
        self,
        *,
        game_date: date | None = None,
        processor: str | None = None,
        phase: int | None = None,
        generation: int | None = None,
    ) -> list[QueueRow]:
        """The rows of ``game_date`` (default: every date of the queue's window), optionally one
        processor's, phase's or generation's."""
        first = game_date or queue_window_start(self.clock.now())
        return self._select(
            f"SELECT {_COLUMNS} FROM {self.table} WHERE game_date BETWEEN @first AND @last "
            "AND (@processor IS NULL OR processor_name = @processor) AND (@phase IS NULL OR phase = @phase) "
            "AND (@generation IS NULL OR COALESCE(generation, 1) = @generation) "
            "ORDER BY created_at ASC, id ASC",
            [
                _param("first", "DATE", first),
                _param("last", "DATE", game_date or date.max),
                _param("processor", "STRING", processor),
                _param("phase", "INT64", phase),
                _param("generation", "INT64", generation),
            ],
        )

    def claim(self, row: QueueRow, now: datetime, next_retry_at: datetime) -> bool:
        """pending → retrying, guarded by the retry count we read: a second tick gets 0 rows."""
        return bool(
            self._dml(
                "claim",
                f"UPDATE {self.table} SET status = 'retrying', retry_count = retry_count + 1, last_retry_at = @now, "
                "next_retry_at = @next, updated_at = @now "
                "WHERE game_date = @game_date AND id = @id AND status = 'pending' AND retry_count = @count",
                [
                    _param("now", "TIMESTAMP", now),
                    _param("next", "TIMESTAMP", next_retry_at),
                    *_row_key(row),
                    _param("count", "INT64", row.retry_count),
                ],
                processor=row.processor_name,
                game_date=row.game_date,
            )
        )

    def release(self, row: QueueRow, note: str) -> bool:
        """retrying → pending, the attempt counted (the processor's endpoint answered: a 4xx retried
        because ``client_errors_permanent`` is off); the backoff set by the claim applies."""
        return self._set_status(row, "pending", note, ("retrying",))

    def dispatch_failed(self, row: QueueRow, note: str, now: datetime) -> int | None:
        """Undo the claim of ``row`` after a failed dispatch (the processor did not run: no retry spent):
        retrying → pending with ``row``'s retry count, due at ``now`` (behind rows due earlier: no
        starvation), ``dispatch_failures`` + 1; guarded by the claim's count. The new count, or ``None``."""
        failures = row.dispatch_failures + 1
        changed = self._dml(
            "dispatch-failed",
            f"UPDATE {self.table} SET status = 'pending', retry_count = @count, last_retry_at = @last, "
            "next_retry_at = @now, dispatch_failures = @failures, resolution_notes = @note, updated_at = @now "
            "WHERE game_date = @game_date AND id = @id AND status = 'retrying' AND retry_count = @claimed",
            [
                _param("count", "INT64", row.retry_count),
                _param("last", "TIMESTAMP", row.last_retry_at),
                _param("now", "TIMESTAMP", now),
                _param("failures", "INT64", failures),
                _param("note", "STRING", note[:2000]),
                *_row_key(row),
                _param("claimed", "INT64", row.retry_count + 1),
            ],
            processor=row.processor_name,
            game_date=row.game_date,
        )
        return failures if changed else None

    def dispatch_succeeded(self, row: QueueRow) -> bool:
        """A dispatch went through: the row's consecutive dispatch failures start again from 0."""
        return bool(
            self._dml(
                "dispatch-succeeded",
                f"UPDATE {self.table} SET dispatch_failures = 0, updated_at = @now "
                "WHERE game_date = @game_date AND id = @id AND dispatch_failures > 0",
                [_param("now", "TIMESTAMP", self.clock.now()), *_row_key(row)],
                processor=row.processor_name,
                game_date=row.game_date,
            )
        )

    def mark_permanent(self, row: QueueRow, reason: str) -> bool:
        return self._set_status(row, "failed_permanent", reason, OPEN)

    def skip(self, row: QueueRow, reason: str) -> bool:
        """open → ``skipped`` (terminal): its games were not played (postponed) or are unavailable."""
        return self._set_status(row, "skipped", reason, OPEN)

    def resolve(self, row: QueueRow, note: str) -> bool:
        """Operator: close a row (open or terminal) as succeeded, e.g. after fixing the data by hand."""
        return self._set_status(row, "succeeded", note, ("pending", "retrying", "failed_permanent"))

    def mark_succeeded(self, row: QueueRow, note: str) -> bool:
        return self._set_status(row, "succeeded", note, OPEN)

    def _set_status(self, row: QueueRow, status: str, note: str, from_statuses: Sequence[str]) -> bool:
        placeholders = ", ".join(f"@from{i}" for i in range(len(from_statuses)))
        return bool(
            self._dml(
                f"set-{status}",
                f"UPDATE {self.table} SET status = @status, resolution_notes = @note, updated_at = @now "
                f"WHERE game_date = @game_date AND id = @id AND status IN ({placeholders})",
                [
                    _param("status", "STRING", status),
                    _param("note", "STRING", note[:2000]),
                    _param("now", "TIMESTAMP", self.clock.now()),
                    *_row_key(row),
                    *(_param(f"from{i}", "STRING", s) for i, s in enumerate(from_statuses)),
                ],
                processor=row.processor_name,
                game_date=row.game_date,
            )
        )


def _row_key(row: QueueRow) -> list[Any]:
    """One row's parameters: its id and its partition (``WHERE game_date = @game_date AND id = @id``)."""
    return [_param("game_date", "DATE", row.game_date), _param("id", "STRING", row.id)]
