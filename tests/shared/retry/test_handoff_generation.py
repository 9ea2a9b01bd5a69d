"""What a hand-off carries for the retry budget, and the queue's scan window (no emulator)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared.contracts.messages import ProcessorCompletion
from shared.orchestration.engine import CompletionRecord
from shared.orchestration.handoffs import failure_handoff, missing_games_handoff
from shared.retry.policy import QUEUE_WINDOW_DAYS, queue_window_start

NOW = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)


def test_a_missing_games_hand_off_carries_its_generation_default_1() -> None:
    def handoff(**generation: int) -> dict[str, object]:
        return missing_games_handoff(
            "phase2_to_phase3",
            date(2026, 1, 24),
            ["20260124_GSW_MIN"],
            processor="bdl_player_boxscores",
            phase=2,
            correlation_id=None,
            now=NOW,
            **generation,
        )[1]

    assert (handoff()["generation"], handoff(generation=2)["generation"]) == (1, 2)


def test_a_failure_hand_off_carries_its_generation_default_1() -> None:
    completion = ProcessorCompletion.model_validate(
        {
            "processor_name": "bdl_player_boxscores",
            "phase": 2,
            "execution_id": "e1",
            "game_date": "2026-01-24",
            "status": "failed",
            "error_message": "HTTP 502",
            "timestamp": NOW.isoformat(),
        }
    )
    record = CompletionRecord(
        processor="bdl_player_boxscores",
        raw_name="bdl_player_boxscores",
        execution_id="e1",
        status="failed",
        completed_at=NOW,
    )
    assert failure_handoff("phase2_to_phase3", completion, "bdl_player_boxscores", record, NOW)[1]["generation"] == 1
    again = failure_handoff("phase2_to_phase3", completion, "bdl_player_boxscores", record, NOW, generation=3)
    assert again[1]["generation"] == 3


def test_the_queue_window_reaches_back_past_the_partition_expiry() -> None:
    """``game_date >= @since`` with ``since`` one day before the oldest partition BigQuery keeps."""
    since = queue_window_start(NOW)
    assert since == NOW.date() - timedelta(days=QUEUE_WINDOW_DAYS + 1)
    late = datetime(2026, 1, 25, 23, 30, tzinfo=UTC).astimezone()  # any zone: still the same bound or earlier
    assert queue_window_start(late) <= NOW.date() - timedelta(days=QUEUE_WINDOW_DAYS)
