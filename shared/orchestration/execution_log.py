"""``phase_execution_log`` rows: one per transition outcome (L19: the log never breaks a transition; rows arrive).

A row is written to the Firestore outbox in the same transaction that latches (or releases)
the date. It reaches BigQuery from ``shared.orchestration.outbox`` (``ExecutionLogWriter``), in
the functions that own BigQuery (auto-retry, nudged by the transition, and the monitor): this
module is pure, so a transition ships no BigQuery client for its log (cold start).
"""

from __future__ import annotations

import json
import uuid
from datetime import date, datetime
from typing import Any


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
