"""``phase_execution_log``: one BigQuery row per transition outcome, never lost (L19).

Rows are written to a Firestore outbox in the same transaction that latches (or
releases) the date, then streamed to BigQuery with the outbox id as ``insertId``
and deleted from the outbox. A BigQuery outage leaves rows in the outbox; the next
flush (any later transition event, or the monitor) delivers them. Logging never
raises into the transition: the trigger is already out when it runs.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from shared.gcp import LazyClient
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import bigquery

    from shared.orchestration.state import TransitionState

_log = get_logger("shared.orchestration.execution_log")


def build_row(
    *,
    transition: str,
    game_date: date,
    status: str,
    now: datetime,
    correlation_id: str | None,
    trigger_id: str | None,
    start_time: datetime | None,
    games_processed: int | None,
    metadata: dict[str, Any],
) -> tuple[str, dict[str, Any]]:
    """A log row (JSON-ready) and its id."""
    row_id = f"{transition}__{game_date.isoformat()}__{status}__{uuid.uuid4().hex[:12]}"
    duration = (now - start_time).total_seconds() if start_time else None
    row = {
        "row_id": row_id,
        "execution_timestamp": now.isoformat(),
        "phase_name": transition,
        "game_date": game_date.isoformat(),
        "correlation_id": correlation_id,
        "trigger_id": trigger_id,
        "start_time": start_time.isoformat() if start_time else None,
        "duration_seconds": duration,
        "games_processed": games_processed,
        "status": status,
        "metadata": json.dumps(metadata, sort_keys=True, default=str),
    }
    return row_id, row


@dataclass(frozen=True)
class FlushResult:
    delivered: int
    pending: int
    error: str | None = None


class ExecutionLogWriter:
    """Delivers outbox rows to BigQuery. Errors are reported, never raised."""

    def __init__(
        self, client: bigquery.Client | Callable[[], bigquery.Client] | None, table: str, timeout: float = 10.0
    ) -> None:
        self._client = None if client is None else LazyClient(client)  # factory: BigQuery loads on first flush
        self.table = table  # project.dataset.table
        self.timeout = timeout  # bounded: the trigger is already out and the outbox keeps the row

    @property
    def client(self) -> bigquery.Client | None:
        return None if self._client is None else self._client.get()

    def flush(self, state: TransitionState, limit: int = 50) -> FlushResult:
        try:
            rows = state.pending_log_rows(limit)
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
                state.quarantine_log_rows([(row[0], row[1], json.dumps(err, default=str)) for row, err in rejected])
            if delivered:
                state.delete_log_rows(delivered)
        except Exception as exc:  # noqa: BLE001 - a redelivery is deduplicated by insertId
            _log.warning("delivered log rows not removed from the outbox: %s", exc)
        return FlushResult(
            len(delivered), len(rows) - len(delivered), None if not failed else f"{len(rejected)} row(s) rejected"
        )


def _only_stopped(error: dict[str, Any]) -> bool:
    reasons = {str(e.get("reason", "")).lower() for e in error.get("errors") or [] if isinstance(e, dict)}
    return bool(reasons) and reasons <= {"stopped"}
