"""The retry queue's health, pure: due rows from a snapshot, the heartbeat's health and its freshness."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared.retry.health import HEALTH_ROWS_MAX, due_rows, health_doc, is_stale, reportable, stored_health
from shared.retry.queue import QueueRow

NOW = datetime(2026, 1, 25, 9, 0, tzinfo=UTC)


def row(n: int, status: str = "pending", **changes: object) -> QueueRow:
    base = QueueRow(
        id=f"id{n:03d}",
        game_date=date(2026, 1, 24),
        phase=2,
        processor_name=f"proc{n}",
        correlation_id=None,
        error_message="boom",
        error_type="transient",
        retry_count=0,
        max_retries=3,
        first_failure_at=NOW - timedelta(hours=2),
        last_retry_at=None,
        next_retry_at=NOW - timedelta(minutes=n),
        status=status,
        resolution_notes=None,
        fallback_for=None,
        game_ids=(),
        created_at=NOW - timedelta(hours=2, minutes=n),
        updated_at=NOW - timedelta(hours=1),
    )
    return QueueRow(**{**base.__dict__, **changes})


def test_due_rows_are_pending_and_due_longest_waiting_first_with_no_due_time_first() -> None:
    rows = [
        row(1),
        row(5),
        row(3, next_retry_at=None),
        row(2, next_retry_at=NOW + timedelta(seconds=1)),  # not a second early
        row(9, status="retrying"),
        row(8, status="failed_permanent"),
    ]
    assert [r.id for r in due_rows(rows, NOW, 10)] == ["id003", "id005", "id001"]
    assert [r.id for r in due_rows(rows, NOW, 2)] == ["id003", "id005"]


def test_a_retrying_row_is_stale_only_with_a_last_retry_before_the_line() -> None:
    line = NOW - timedelta(hours=2)
    assert is_stale(row(1, status="retrying", last_retry_at=line - timedelta(seconds=1)), line)
    assert not is_stale(row(1, status="retrying", last_retry_at=line), line)
    assert not is_stale(row(1, status="retrying", last_retry_at=None), line)  # as return_stale's SQL
    assert not is_stale(row(1, status="pending", last_retry_at=line - timedelta(hours=1)), line)


def test_the_health_keeps_pending_and_permanent_rows_and_says_when_it_is_incomplete() -> None:
    rows = [row(1), row(2, status="retrying"), row(3, status="failed_permanent", resolution_notes="x" * 1000)]
    doc = health_doc(rows, NOW, complete=True)
    assert doc["complete"] is True and doc["as_of"] == NOW
    assert [(r["processor_name"], r["status"]) for r in doc["rows"]] == [
        ("proc1", "pending"),
        ("proc3", "failed_permanent"),
    ]
    assert len(doc["rows"][1]["resolution_notes"]) == 300
    assert health_doc(rows, NOW, complete=False) == {"as_of": NOW, "complete": False, "rows": []}
    many = [row(n) for n in range(HEALTH_ROWS_MAX + 1)]
    assert health_doc(many, NOW, complete=True)["complete"] is False


def test_stored_health_is_used_only_while_the_heartbeat_is_fresh_and_complete() -> None:
    health = health_doc([row(1)], NOW, complete=True)
    fresh = timedelta(minutes=24)
    beat = {"last_run_at": NOW, "queue": health}
    assert stored_health(beat, NOW + fresh, fresh) == health["rows"]
    assert stored_health(beat, NOW + fresh + timedelta(seconds=1), fresh) is None  # stale: query
    assert stored_health({"last_run_at": NOW, "queue": {**health, "complete": False}}, NOW, fresh) is None
    assert stored_health({"last_run_at": NOW}, NOW, fresh) is None  # a heartbeat from before the health
    assert stored_health(None, NOW, fresh) is None
    assert stored_health(beat, NOW - timedelta(minutes=5), fresh) is None  # written ahead of our clock


def test_reportable_rows_follow_the_monitor_query() -> None:
    line = NOW - timedelta(minutes=30)
    as_doc = health_doc(
        [
            row(1, next_retry_at=line - timedelta(seconds=1)),  # overdue
            row(2, next_retry_at=line),  # due, not overdue
            row(3, next_retry_at=NOW, dispatch_failures=3),  # failing to dispatch
            row(4, next_retry_at=NOW, dispatch_failures=2),
            row(5, status="failed_permanent"),
        ],
        NOW,
        complete=True,
    )["rows"]
    assert [r["processor_name"] for r in as_doc if reportable(r, line)] == ["proc1", "proc3", "proc5"]
