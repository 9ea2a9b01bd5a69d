"""Pure retry policy: backoff, error classes, DML conflict classes (lessons L10, L11)."""

from __future__ import annotations

import random
from datetime import date, datetime, timedelta
from typing import Literal

from shared.pipeline.definition import RetryPolicy

ConflictType = Literal["streaming_buffer", "concurrent_dml", "quota_exceeded"]

# A row whose dispatch (our Pub/Sub publish, or the processor's retry_url answering 5xx or not at
# all) failed on this many consecutive ticks is reported: the tick logs alert=retry_dispatch_failing
# and the monitor's retry-queue check has a ``retry_dispatch_failing`` finding. A failed dispatch never
# spends the processor's retry budget: the processor did not run.
DISPATCH_FAILING_AFTER = 3

# How far back a whole-queue scan reads ``failed_processor_queue``: the table's partition expiry
# (``expiration_days`` in deploy/bigquery/failed_processor_queue.json; tests/test_partition_filters.py
# checks they agree). BigQuery drops older partitions itself, so ``game_date >= @since`` leaves out
# no row that exists and still names the partitions a scan reads: a filter BigQuery can prune on
# (``@game_date IS NULL OR game_date = @game_date`` is not one). Rows for a date the operator
# re-triggers months later (``phasectl trigger --force`` on any date the state keeps, 400 days) stay
# in the window.
QUEUE_WINDOW_DAYS = 400

_CONFLICT_MARKERS: tuple[tuple[ConflictType, tuple[str, ...]], ...] = (
    ("streaming_buffer", ("streaming buffer",)),
    ("concurrent_dml", ("could not serialize access", "concurrent update", "concurrent dml", "transaction is aborted")),
    ("quota_exceeded", ("quota exceeded", "ratelimitexceeded", "rate limit", "too many dml statements")),
)


def backoff_delay(policy: RetryPolicy, retry_count: int, rng: random.Random) -> timedelta:
    """Delay before attempt ``retry_count + 1``: base·multiplierⁿ minutes, ± jitter_fraction.

    Args:
        policy: the definition's retry policy.
        retry_count: retries already dispatched (0 for the first retry).
        rng: injected randomness (tests pass a seeded ``random.Random``).
    """
    minutes = policy.base_delay_minutes * policy.multiplier**retry_count
    jitter = minutes * policy.jitter_fraction * (2.0 * rng.random() - 1.0)
    return timedelta(minutes=minutes + jitter)


def queue_window_start(now: datetime) -> date:
    """The first ``game_date`` a whole-queue scan reads (``game_date >= @since``): ``QUEUE_WINDOW_DAYS``
    before ``now``'s UTC date, and one day more so that no time zone's "today" leaves a live
    partition out (a bound of the retention, not a business date)."""
    return now.date() - timedelta(days=QUEUE_WINDOW_DAYS + 1)


def is_client_error(status: int) -> bool:
    """4xx means the request itself is wrong: retrying cannot help (408/429 are transient)."""
    return 400 <= status < 500 and status not in (408, 425, 429)


def dispatch_failing(consecutive_failures: int) -> bool:
    """Whether a row's dispatch has failed long enough to alert (``DISPATCH_FAILING_AFTER`` ticks)."""
    return consecutive_failures >= DISPATCH_FAILING_AFTER


def classify_conflict(exc: BaseException) -> ConflictType | None:
    """The DML conflict class of a BigQuery error, or ``None`` when it is not a conflict."""
    text = f"{type(exc).__name__}: {exc}".lower()
    for kind, markers in _CONFLICT_MARKERS:
        if any(marker in text for marker in markers):
            return kind
    return None
