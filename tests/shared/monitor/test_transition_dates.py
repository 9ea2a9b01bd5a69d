"""The monitor's per-date checks, the pure parts (issue 25): no emulator.

- ``silent_after``: the ``silent`` grace is elapsed time after midnight New York, DST nights included;
- ``claim_is_live``: a date whose claim has not expired is being triggered, not stuck;
- the grid summary: which dates a pass reads (bounded, whatever the stored history), that every
  date of the window is re-read within ``RECHECK_PASSES`` passes, and that the document stays
  bounded and round-trips.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.monitor.grid_summary import RECHECK_PASSES, GridSummary, Seen, dates_to_read, recheck_budget
from shared.monitor.transition_dates import claim_is_live, silent_after
from shared.orchestration.state import DateState
from shared.pipeline.definition import load_definition

NEW_YORK = ZoneInfo("America/New_York")


# -- silent: elapsed time after midnight -------------------------------------------------------------
@pytest.mark.parametrize(
    ("day", "grace", "expected"),
    [
        (date(2026, 1, 24), 120, datetime(2026, 1, 25, 7, 0, tzinfo=UTC)),  # EST all night: 02:00 EST
        (date(2026, 7, 4), 120, datetime(2026, 7, 5, 6, 0, tzinfo=UTC)),  # EDT all night: 02:00 EDT
        # fall back (2026-11-01 02:00 EDT → 01:00 EST): midnight EDT 04:00 UTC + 2 h = 01:00 EST, not 02:00 EST
        (date(2026, 10, 31), 120, datetime(2026, 11, 1, 6, 0, tzinfo=UTC)),
        (date(2026, 10, 31), 60, datetime(2026, 11, 1, 5, 0, tzinfo=UTC)),
        (date(2026, 10, 31), 180, datetime(2026, 11, 1, 7, 0, tzinfo=UTC)),
        # spring forward (2026-03-08 02:00 EST → 03:00 EDT): midnight EST 05:00 UTC + 2 h = 03:00 EDT
        (date(2026, 3, 7), 120, datetime(2026, 3, 8, 7, 0, tzinfo=UTC)),
        (date(2026, 3, 7), 180, datetime(2026, 3, 8, 8, 0, tzinfo=UTC)),
    ],
)
def test_silent_after_is_elapsed_time_after_midnight(day: date, grace: int, expected: datetime) -> None:
    due = silent_after(day, NEW_YORK, grace)
    assert due == expected
    midnight = datetime(day.year, day.month, day.day, tzinfo=NEW_YORK) + timedelta(days=1)
    assert (due - midnight).total_seconds() == grace * 60  # aware subtraction across zones is elapsed time


# -- a live claim ------------------------------------------------------------------------------------
NOW = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)


def state_with(claim: dict[str, Any] | None, status: str = "claimed") -> DateState:
    return DateState("phase3_to_phase4", date(2026, 1, 24), 1, status, {}, claim, (), None)


@pytest.mark.parametrize(
    ("claim", "live"),
    [
        ({"owner": "msg:1:a", "token": 3, "expires_at": NOW + timedelta(seconds=1)}, True),
        ({"owner": "msg:1:a", "token": 3, "expires_at": NOW}, False),  # expired at this instant
        ({"owner": "msg:1:a", "token": 3, "expires_at": NOW - timedelta(minutes=1)}, False),  # a crashed attempt
        ({"owner": "msg:1:a", "token": 3}, False),  # no expiry: not a claim this check can rely on
        ({"owner": "msg:1:a", "token": 3, "expires_at": "2099-01-01T00:00:00Z"}, False),  # not a timestamp
        (None, False),
    ],
)
def test_claim_is_live_only_until_it_expires(claim: dict[str, Any] | None, live: bool) -> None:
    assert claim_is_live(state_with(claim), NOW) is live


def test_a_publishing_claim_is_live_too() -> None:
    """The claim map keeps ``owner``, ``token``, ``expires_at`` whatever the attempt's step."""
    claim = {"owner": "msg:1:a", "token": 3, "expires_at": NOW + timedelta(minutes=5), "status": "publishing"}
    assert claim_is_live(state_with(claim, status="publishing"), NOW)


# -- the grid summary --------------------------------------------------------------------------------
TODAY = date(2026, 3, 1)
GRID_DAYS = 120
START = TODAY - timedelta(days=GRID_DAYS)
ASKED = [TODAY - timedelta(days=n) for n in range(2, GRID_DAYS + 1)]  # Final games, before the horizon
RECENT_FROM = TODAY - timedelta(days=3)


def seeded(stored: list[date]) -> GridSummary:
    """A summary as the first pass leaves it: every date of the window read in pass 1 (a date without
    a stored document is not triggered)."""
    window = [START + timedelta(days=n) for n in range(GRID_DAYS + 1)]
    return GridSummary(0, {}).updated({d: d in stored for d in window}, START, TODAY)


def test_a_pass_reads_the_recent_dates_and_a_fixed_budget_whatever_the_history() -> None:
    budget = recheck_budget(GRID_DAYS)
    assert budget == 21  # the 121 dates of the window, once per RECHECK_PASSES (6) passes
    for stored in (ASKED[:10], ASKED):
        read = dates_to_read(seeded(stored), ASKED, RECENT_FROM, budget)
        assert len(read) == 2 + budget  # the lookback window's asked dates (today-3, today-2) and the budget
        assert {TODAY - timedelta(days=2), TODAY - timedelta(days=3)} <= set(read)


def test_dates_never_read_come_first_and_all_of_them() -> None:
    summary = GridSummary(0, {}).updated({d: True for d in ASKED if d != ASKED[50]}, START, TODAY)
    read = dates_to_read(summary, ASKED, RECENT_FROM, 3)
    assert ASKED[50] in read
    assert [d for d in read if d < RECENT_FROM and d != ASKED[50]] == sorted(ASKED)[:3]  # oldest date first


def test_every_date_is_reread_within_recheck_passes() -> None:
    summary = seeded(ASKED)
    budget = recheck_budget(GRID_DAYS)
    last_read = dict.fromkeys(ASKED, 0)
    for number in range(1, 3 * RECHECK_PASSES + 1):
        read = dates_to_read(summary, ASKED, RECENT_FROM, budget)
        assert len(read) <= 2 + budget
        summary = summary.updated(dict.fromkeys(read, True), START, TODAY)
        for d in read:
            assert number - last_read[d] <= RECHECK_PASSES, (d, last_read[d], number)
            last_read[d] = number
    assert all(3 * RECHECK_PASSES - n < RECHECK_PASSES for n in last_read.values())


def test_what_a_pass_read_replaces_what_was_known() -> None:
    """A re-opened date (read as not triggered) is a gap from then on; a filled gap is settled."""
    reopened, filled = ASKED[30], ASKED[40]
    summary = seeded(ASKED).updated({filled: False}, START, TODAY)
    summary = summary.updated({reopened: False, filled: True}, START, TODAY)
    assert summary.dates[reopened] == Seen(False, 3) and summary.dates[filled] == Seen(True, 3)
    assert summary.passes == 3


def test_the_summary_stays_bounded_to_the_window() -> None:
    """Dates leave the summary when they leave the window: never more than grid_days + 1 entries."""
    summary = seeded(ASKED)
    for days in range(1, 200):
        today = TODAY + timedelta(days=days)
        summary = summary.updated({today - timedelta(days=2): True}, today - timedelta(days=GRID_DAYS), today)
        assert len(summary.dates) <= GRID_DAYS + 1
        assert min(summary.dates) >= today - timedelta(days=GRID_DAYS)


def test_the_summary_document_round_trips_and_expires() -> None:
    definition = load_definition()
    summary = (
        GridSummary(0, {}).updated({d: True for d in ASKED[:5]}, START, TODAY).updated({ASKED[0]: False}, START, TODAY)
    )
    doc = summary.to_doc("phase_transitions", TODAY, definition)
    assert GridSummary.from_doc(doc, "phase_transitions") == summary
    assert doc[definition.retention.expiry_field] == datetime(2026, 6, 29, tzinfo=UTC)  # today + grid_days


@pytest.mark.parametrize(
    "doc",
    [
        None,
        {},
        {"state_collection": "another_collection", "passes": 1, "dates": {}},  # the definition renamed it
        {"state_collection": "phase_transitions", "passes": 1, "dates": {"2026-13-01": {"triggered": True, "pass": 1}}},
        {"state_collection": "phase_transitions", "passes": 1, "dates": {"2026-01-01": {"pass": 1}}},
        {"state_collection": "phase_transitions", "dates": {}},
    ],
)
def test_an_unusable_summary_means_read_the_window_again(doc: dict[str, Any] | None) -> None:
    assert GridSummary.from_doc(doc, "phase_transitions") is None
