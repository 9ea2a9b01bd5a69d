"""The schedule read's re-use rule, pure (no emulator)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from shared.monitor.schedule_read import QUIET_REUSE, ScheduleRead

NOW = datetime(2026, 7, 20, 14, 0, tzinfo=UTC)
WINDOW = (date(2026, 3, 22), date(2026, 7, 17), date(2026, 7, 20))


def read(quiet: bool = True, as_of: datetime = NOW) -> ScheduleRead:
    return ScheduleRead({date(2026, 4, 12): 15}, WINDOW, quiet, as_of)


def test_a_quiet_answer_is_reused_for_an_hour_on_the_same_question() -> None:
    assert read().reusable(WINDOW, NOW)
    assert read().reusable(WINDOW, NOW + QUIET_REUSE - timedelta(seconds=1))
    assert not read().reusable(WINDOW, NOW + QUIET_REUSE)
    assert not read().reusable(WINDOW, NOW - timedelta(seconds=1))  # stored ahead of our clock
    assert not read().reusable((WINDOW[0], WINDOW[1], date(2026, 7, 21)), NOW)  # a new day
    assert not read().reusable((WINDOW[0], date(2026, 7, 13), WINDOW[2]), NOW)  # another lookback
    assert not read(quiet=False).reusable(WINDOW, NOW)  # games near today: every pass queries


def test_the_stored_document_round_trips_and_a_broken_one_is_ignored() -> None:
    assert ScheduleRead.from_doc(read().to_doc()) == read()
    assert ScheduleRead.from_doc(None) is None
    assert ScheduleRead.from_doc({**read().to_doc(), "window": ["2026-03-22"]}) is None
    assert ScheduleRead.from_doc({**read().to_doc(), "as_of": "yesterday"}) is None
    assert ScheduleRead.from_doc({"quiet": True}) is None
