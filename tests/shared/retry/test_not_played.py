"""A game that was not played is never retried (lesson L29), without an emulator.

``still_needed`` and ``end_rows_for`` (shared/retry/not_played.py), and ``RetryService``'s check
before each dispatch (``_games_to_retry``) driven through a real ``tick`` over an in-memory queue
and dispatcher: the retry tests elsewhere run on the emulators and have no in-memory queue, so the
one here is minimal (the queue methods a tick calls). The emulator proof of the same rules is
tests/shared/retry/test_not_played_emulators.py.
"""

from __future__ import annotations

import io
import json
import random
from dataclasses import dataclass, field, replace
from datetime import UTC, date, datetime, timedelta
from typing import Any, cast

import pytest

from shared import structured_log
from shared.clock import FixedClock
from shared.contracts.messages import RetryRequest, RetryTick
from shared.pipeline.definition import load_definition
from shared.retry.dispatch import RetryDispatcher
from shared.retry.not_played import end_rows_for, still_needed
from shared.retry.queue import QueueRow, RetryQueue
from shared.retry.service import RetryService

DAY = date(2026, 1, 24)
NOW = datetime(2026, 1, 25, 6, 15, tzinfo=UTC)  # 01:15 ET: the tick that re-ran the excluded game
GSW_MIN, BOS_CHI = "20260124_GSW_MIN", "20260124_BOS_CHI"
POSTPONED = (
    "postponed: schedule says Final with NULL scores; the same game id is on the schedule again on "
    "2026-01-25 (Scheduled)"
)
BDL, ESPN = "bdl_player_boxscores", "espn_boxscores"


def queue_row(processor: str, *games: str, status: str = "pending", day: date = DAY, **kw: Any) -> QueueRow:
    return QueueRow(
        id=kw.pop("id", f"{processor}-{day}-{'-'.join(games) or 'none'}"),
        game_date=day,
        phase=2,
        processor_name=processor,
        correlation_id="night-2026-01-24",
        error_message="missing games" if games else "HTTP 502",
        error_type="missing_games" if games else "transient",
        retry_count=0,
        max_retries=3,
        first_failure_at=NOW - timedelta(hours=1),
        last_retry_at=None,
        next_retry_at=NOW - timedelta(minutes=1),
        status=status,
        resolution_notes=None,
        fallback_for=None,
        game_ids=games,
        created_at=NOW - timedelta(hours=1),
        updated_at=NOW - timedelta(hours=1),
        **kw,
    )


@dataclass
class MemoryQueue:
    """The ``RetryQueue`` calls a tick and ``end_rows_for`` make, over a list (guards as the SQL's)."""

    stored: list[QueueRow]
    skip_refused: set[str] = field(default_factory=set)  # ids another tick moved first
    skipped: dict[str, str] = field(default_factory=dict)
    claimed: list[str] = field(default_factory=list)

    def snapshot(self, limit: int = 1000) -> list[QueueRow]:
        return list(self.stored[:limit])

    def rows(self, *, game_date: date | None = None, **_: Any) -> list[QueueRow]:
        return [r for r in self.stored if game_date is None or r.game_date == game_date]

    def _move(self, row: QueueRow, **changes: Any) -> None:
        self.stored = [replace(r, **changes) if r.id == row.id else r for r in self.stored]

    def skip(self, row: QueueRow, reason: str) -> bool:
        current = next(r for r in self.stored if r.id == row.id)
        if row.id in self.skip_refused or current.status not in ("pending", "retrying"):
            return False
        self.skipped[row.id] = reason
        self._move(row, status="skipped", resolution_notes=reason)
        return True

    def claim(self, row: QueueRow, now: datetime, next_retry_at: datetime) -> bool:
        self.claimed.append(row.id)
        self._move(row, status="retrying", retry_count=row.retry_count + 1, last_retry_at=now)
        return True


@dataclass
class MemoryDispatcher:
    sent: list[tuple[tuple[str, str], RetryRequest]] = field(default_factory=list)

    def dispatch(self, route: tuple[str, str], request: RetryRequest) -> str:
        self.sent.append((route, request))
        return "1"


@dataclass
class Exclusions:
    """``excluded(game_date)`` as ``excluded_from_bigquery`` answers it; counts its reads."""

    by_date: dict[date, dict[str, str]]
    fail: Exception | None = None
    reads: list[date] = field(default_factory=list)

    def __call__(self, game_date: date) -> dict[str, str]:
        self.reads.append(game_date)
        if self.fail is not None:
            raise self.fail
        return self.by_date.get(game_date, {})


def service(queue: MemoryQueue, dispatcher: MemoryDispatcher, excluded: Exclusions | None) -> RetryService:
    return RetryService(
        load_definition(None),
        cast(RetryQueue, queue),
        cast(RetryDispatcher, dispatcher),
        FixedClock(NOW),
        rng=random.Random(3),
        excluded=excluded,
    )


@pytest.fixture
def log(captured_log: io.StringIO) -> io.StringIO:
    return captured_log


def alerts(log: io.StringIO, alert: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.getvalue().splitlines() if line.strip()]
    return [e for e in entries if e.get(structured_log.LABELS_KEY, {}).get("alert") == alert]


# ---------------------------------------------------------------------------------------
# still_needed
# ---------------------------------------------------------------------------------------
def test_still_needed_keeps_the_games_not_excluded_in_order_and_names_the_dropped_with_the_reason() -> None:
    row = queue_row(ESPN, GSW_MIN, BOS_CHI, "20260124_CLE_ORL")
    keep, dropped = still_needed(row, {GSW_MIN: POSTPONED, "20260124_MIA_UTA": "marked unavailable"})
    assert keep == [BOS_CHI, "20260124_CLE_ORL"]
    assert dropped == [f"{GSW_MIN} {POSTPONED}"]


def test_still_needed_of_a_row_whose_every_game_is_excluded_keeps_none() -> None:
    row = queue_row(BDL, GSW_MIN, BOS_CHI)
    keep, dropped = still_needed(row, {GSW_MIN: POSTPONED, BOS_CHI: "marked unavailable"})
    assert keep == []
    assert dropped == [f"{GSW_MIN} {POSTPONED}", f"{BOS_CHI} marked unavailable"]


def test_still_needed_with_nothing_excluded_keeps_every_game() -> None:
    row = queue_row(BDL, GSW_MIN, BOS_CHI)
    assert still_needed(row, {}) == ([GSW_MIN, BOS_CHI], [])


# ---------------------------------------------------------------------------------------
# the tick: checked before each dispatch
# ---------------------------------------------------------------------------------------
def test_l29_a_row_chasing_only_a_postponed_game_ends_skipped_and_is_never_dispatched(log: io.StringIO) -> None:
    only_gsw = queue_row(BDL, GSW_MIN)
    queue, dispatcher = MemoryQueue([only_gsw]), MemoryDispatcher()
    svc = service(queue, dispatcher, Exclusions({DAY: {GSW_MIN: POSTPONED}}))

    report = svc.tick(RetryTick())

    assert dispatcher.sent == [] and queue.claimed == []
    assert report.dispatched == [] and report.permanent == []
    assert report.not_played == [f"{BDL}@{DAY}#{only_gsw.id[:8]}"]
    assert queue.skipped == {only_gsw.id: f"skipped: not retried, {GSW_MIN} {POSTPONED}"}
    assert report.rows[only_gsw.id].status == "skipped"  # the heartbeat's health: no longer pending
    assert "not_played" in report.summary() and "excluded" not in report.summary()
    (line,) = alerts(log, "retry_skipped_not_played")
    assert line["severity"] == "WARNING"
    assert line[structured_log.LABELS_KEY]["processor"] == BDL
    assert GSW_MIN in line["message"] and "NULL scores" in line["message"]


def test_l29_a_row_with_a_played_game_left_is_dispatched_with_only_that_game() -> None:
    both = queue_row(ESPN, GSW_MIN, BOS_CHI)
    queue, dispatcher = MemoryQueue([both]), MemoryDispatcher()
    svc = service(queue, dispatcher, Exclusions({DAY: {GSW_MIN: POSTPONED}}))

    report = svc.tick(RetryTick())

    ((route, request),) = dispatcher.sent
    assert request.game_ids == [BOS_CHI]
    assert (request.processor_name, request.queue_id, request.attempt) == (ESPN, both.id, 1)
    assert route == svc.definition.retry_route(ESPN)
    assert report.not_played == [] and queue.skipped == {}
    assert len(report.dispatched) == 1


def test_a_marked_unavailable_game_is_dropped_like_a_postponed_one() -> None:
    rows = [queue_row(BDL, GSW_MIN), queue_row(ESPN, GSW_MIN, BOS_CHI)]
    queue, dispatcher = MemoryQueue(rows), MemoryDispatcher()
    excluded = Exclusions({DAY: {GSW_MIN: "marked unavailable"}})

    report = service(queue, dispatcher, excluded).tick(RetryTick())

    assert queue.skipped == {rows[0].id: f"skipped: not retried, {GSW_MIN} marked unavailable"}
    assert [r.game_ids for _, r in dispatcher.sent] == [[BOS_CHI]]
    assert excluded.reads == [DAY]  # one read per date and tick, whatever the number of rows
    assert len(report.not_played) == 1


def test_a_row_naming_no_games_is_retried_without_reading_the_exclusions() -> None:
    """A failed completion names no games: nothing to drop, and no query for it."""
    failed = queue_row("nbac_schedule")
    queue, dispatcher = MemoryQueue([failed]), MemoryDispatcher()
    excluded = Exclusions({DAY: {GSW_MIN: POSTPONED}})

    service(queue, dispatcher, excluded).tick(RetryTick())

    assert [(r.processor_name, r.game_ids) for _, r in dispatcher.sent] == [("nbac_schedule", [])]
    assert excluded.reads == []


def test_other_dates_are_read_for_their_own_exclusions() -> None:
    later = DAY + timedelta(days=1)
    rows = [queue_row(BDL, GSW_MIN), queue_row(ESPN, "20260125_GSW_MIN", day=later)]
    queue, dispatcher = MemoryQueue(rows), MemoryDispatcher()
    excluded = Exclusions({DAY: {GSW_MIN: POSTPONED}})  # the game is played on 2026-01-25

    service(queue, dispatcher, excluded).tick(RetryTick())

    assert sorted(excluded.reads) == [DAY, later]
    assert list(queue.skipped) == [rows[0].id]
    assert [(r.game_date, r.game_ids) for _, r in dispatcher.sent] == [(later, ["20260125_GSW_MIN"])]


def test_an_unread_exclusion_list_is_an_alert_and_the_retry_goes_out_unchanged(log: io.StringIO) -> None:
    row = queue_row(BDL, GSW_MIN, BOS_CHI)
    queue, dispatcher = MemoryQueue([row, queue_row(ESPN, GSW_MIN)]), MemoryDispatcher()
    excluded = Exclusions({}, fail=RuntimeError("BigQuery said no"))

    report = service(queue, dispatcher, excluded).tick(RetryTick())

    assert sorted(r.game_ids for _, r in dispatcher.sent) == [[GSW_MIN], [GSW_MIN, BOS_CHI]]
    assert report.not_played == [] and queue.skipped == {}
    assert excluded.reads == [DAY]  # failed once: not asked again for the same date in the tick
    (line,) = alerts(log, "retry_exclusions_unread")
    assert line["severity"] == "ERROR"
    assert line[structured_log.LABELS_KEY]["game_date"] == str(DAY)
    assert "BigQuery said no" in line["message"]


def test_a_dry_run_says_it_would_skip_and_changes_nothing() -> None:
    row = queue_row(BDL, GSW_MIN)
    queue, dispatcher = MemoryQueue([row]), MemoryDispatcher()

    report = service(queue, dispatcher, Exclusions({DAY: {GSW_MIN: POSTPONED}})).tick(RetryTick(dry_run=True))

    assert report.would == [f"skipped {BDL}@{DAY}#{row.id[:8]}: skipped: not retried, {GSW_MIN} {POSTPONED}"]
    assert queue.skipped == {} and dispatcher.sent == [] and report.not_played == []


def test_a_row_another_tick_moved_first_is_neither_counted_nor_dispatched() -> None:
    row = queue_row(BDL, GSW_MIN)
    queue, dispatcher = MemoryQueue([row], skip_refused={row.id}), MemoryDispatcher()

    report = service(queue, dispatcher, Exclusions({DAY: {GSW_MIN: POSTPONED}})).tick(RetryTick())

    assert report.not_played == [] and dispatcher.sent == [] and queue.claimed == []


def test_without_an_exclusion_reader_every_game_is_retried() -> None:
    queue, dispatcher = MemoryQueue([queue_row(BDL, GSW_MIN)]), MemoryDispatcher()
    service(queue, dispatcher, None).tick(RetryTick())
    assert [r.game_ids for _, r in dispatcher.sent] == [[GSW_MIN]]


# ---------------------------------------------------------------------------------------
# end_rows_for (phasectl mark-unavailable and games postpone)
# ---------------------------------------------------------------------------------------
def test_end_rows_for_ends_only_the_dates_open_rows_whose_every_game_is_excluded() -> None:
    only_gsw = queue_row(BDL, GSW_MIN)
    retrying = queue_row(ESPN, GSW_MIN, status="retrying")
    mixed = queue_row("nbac_gamebook_player_stats", GSW_MIN, BOS_CHI)
    no_games = queue_row("nbac_schedule")
    terminal = queue_row("bdl_box_scores", GSW_MIN, status="failed_permanent")
    other_day = queue_row(BDL, "20260123_GSW_MIN", day=DAY - timedelta(days=1))
    queue = MemoryQueue([only_gsw, retrying, mixed, no_games, terminal, other_day])

    ended = end_rows_for(cast(RetryQueue, queue), DAY, {GSW_MIN: POSTPONED, "20260123_GSW_MIN": POSTPONED})

    note = f"skipped: not retried, {GSW_MIN} {POSTPONED}"
    assert [(row.id, text) for row, text in ended] == [(only_gsw.id, note), (retrying.id, note)]
    assert queue.skipped == {only_gsw.id: note, retrying.id: note}
    statuses = {r.id: r.status for r in queue.stored}
    assert statuses[mixed.id] == "pending" and statuses[no_games.id] == "pending"  # the tick trims `mixed`
    assert statuses[terminal.id] == "failed_permanent" and statuses[other_day.id] == "pending"


def test_end_rows_for_with_nothing_excluded_ends_nothing() -> None:
    queue = MemoryQueue([queue_row(BDL, GSW_MIN)])
    assert end_rows_for(cast(RetryQueue, queue), DAY, {}) == []
    assert queue.skipped == {}
