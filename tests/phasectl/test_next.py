"""``phasectl next``'s pure core: one list by time, countdowns against a fixed clock, overdue retries."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

from phasectl.commands.next_up import (
    NextItem,
    TierDate,
    build_items,
    countdown,
    next_json,
    render_text,
    retry_items,
    tier_items,
)
from phasectl.page_next import render_section
from phasectl.timefmt import TimeView
from shared.pipeline.definition import load_definition
from shared.retry.queue import QueueRow
from shared.schedules.plan import Overrides

DEFINITION = load_definition()
TIMES = TimeView.of("America/New_York")
NOW = datetime(2026, 1, 25, 6, 30, tzinfo=UTC)  # 01:30 ET, the night of the 24th
FIRST = datetime(2026, 1, 25, 6, 0, tzinfo=UTC)  # first phase-4 completion at 01:00 ET
P45 = DEFINITION.transition("phase4_to_phase5")
ALL_PAUSED = Overrides(paused=frozenset({"all"}))


def _tiers(done: int, **kw: object) -> TierDate:
    return TierDate("phase4_to_phase5", date(2026, 1, 24), FIRST, done, 5, P45.deadline_tiers, **kw)  # type: ignore[arg-type]


def _row(status: str, next_at: datetime | None, *, last: datetime | None = None, processor: str = "bdl") -> QueueRow:
    return QueueRow(
        id=f"row-{processor}",
        game_date=date(2026, 1, 24),
        phase=2,
        processor_name=processor,
        correlation_id=None,
        error_message=None,
        error_type=None,
        retry_count=1,
        max_retries=3,
        first_failure_at=FIRST,
        last_retry_at=last,
        next_retry_at=next_at,
        status=status,
        resolution_notes=None,
        fallback_for=None,
        game_ids=(),
        created_at=FIRST,
        updated_at=FIRST,
    )


def test_countdown() -> None:
    assert countdown(timedelta(hours=2, minutes=14, seconds=59)) == "in 2 h 14 min"
    assert countdown(timedelta(minutes=5)) == "in 5 min"
    assert countdown(timedelta(seconds=30)) == "in <1 min"
    assert countdown(timedelta(minutes=-12)) == "12 min ago"
    assert countdown(timedelta(days=3, hours=5)) == "in 3 d 5 h"


def test_tiers_still_ahead_from_the_first_completion_with_what_the_count_meets() -> None:
    items = tier_items([_tiers(3)], NOW, None)
    # tiers after 60, 120, 240 min from 01:00 ET: 02:00, 03:00, 05:00 ET
    assert [i.at for i in items] == [FIRST + timedelta(minutes=m) for m in (60, 120, 240)]
    assert "deadline tier 1 (≥4 of 5 after 60 min" in items[0].what and "needs 1 more" in items[0].what
    assert "fires then unless all arrive first" in items[1].what
    assert all(i.command == "phasectl status --date 2026-01-24" and i.kind == "tier" for i in items)
    later = tier_items([_tiers(3)], FIRST + timedelta(minutes=150), None)  # 03:30 ET: only tier 3 is ahead
    assert [i.what.split(":")[1].split("(")[0].strip() for i in later] == ["deadline tier 3"]


def test_a_date_ready_now_is_fired_by_the_monitors_next_pass() -> None:
    at = NOW + timedelta(minutes=10)
    (item,) = tier_items([_tiers(4, ready=True)], NOW, at)
    assert item.at == at and "the monitor's next pass fires it" in item.what


def test_retries_next_due_overdue_and_retrying() -> None:
    pass_at = NOW + timedelta(minutes=15)
    rows = [
        _row("pending", NOW + timedelta(minutes=40), processor="later"),
        _row("pending", NOW - timedelta(minutes=5), processor="due"),
        _row("pending", NOW - timedelta(minutes=45), processor="late"),
        _row("retrying", None, last=NOW - timedelta(minutes=20), processor="busy"),
        _row("failed_permanent", None, processor="gone"),
    ]
    items = {
        i.what.split(":")[0]: i
        for i in retry_items(
            rows,
            NOW,
            overdue_after=timedelta(minutes=30),
            stale_after=timedelta(minutes=120),
            next_pass=pass_at,
            times=TIMES,
        )
    }
    assert set(items) == {f"retry {p} 2026-01-24" for p in ("later", "due", "late", "busy")}
    assert items["retry later 2026-01-24"].at == NOW + timedelta(minutes=40)
    due = items["retry due 2026-01-24"]
    assert not due.overdue and "auto-retry's next pass 01:45 ET" in due.what
    late = items["retry late 2026-01-24"]
    assert late.overdue and "OVERDUE by 45 min" in late.what
    busy = items["retry busy 2026-01-24"]
    assert busy.at == NOW + timedelta(minutes=100) and "outcome awaited" in busy.what
    assert late.command == "phasectl retry list --date 2026-01-24"


def test_one_list_ordered_by_time_within_the_window() -> None:
    rows = [_row("pending", NOW - timedelta(minutes=45), processor="late")]
    items, quiet = build_items(
        DEFINITION, NOW, NOW + timedelta(hours=3), tiers=[_tiers(3)], rows=rows, overrides=ALL_PAUSED, times=TIMES
    )
    assert [i.at for i in items] == sorted(i.at for i in items)
    assert items[0].overdue  # past: first
    assert [i.kind for i in items if i.kind == "tier"] == ["tier", "tier"]  # 02:00 and 03:00 ET; 05:00 is past 04:30
    passes = [i for i in items if i.kind == "pass"]
    assert {i.command for i in passes} == {"phasectl health", "phasectl retry list"}
    monitor = next(i for i in passes if i.command == "phasectl health")
    assert monitor.at == datetime(2026, 1, 25, 6, 40, tzinfo=UTC)  # */10 in New York
    assert not [i for i in items if i.kind == "job"]  # every wave paused by an operator
    assert quiet == len([j for j in DEFINITION.all_jobs() if j.dispatched])


def test_scheduled_firings_in_season_with_how_many_follow() -> None:
    now = datetime(2026, 1, 25, 21, 50, tzinfo=UTC)  # 16:50 ET
    items, _ = build_items(
        DEFINITION, now, now + timedelta(hours=24), tiers=[], rows=[], overrides=Overrides(), times=TIMES
    )
    jobs = {i.what.split()[1]: i for i in items if i.kind == "job"}
    assert jobs["same-day-phase3-tomorrow"].at == datetime(2026, 1, 25, 22, 0, tzinfo=UTC)  # 17:00 ET
    readiness = jobs["grading-readiness-check"]  # */15 22-23,0-2: 20 slots a night
    assert (
        readiness.at == datetime(2026, 1, 26, 3, 0, tzinfo=UTC) and "then 19 more, the last 02:45 ET" in readiness.what
    )
    assert "phase4-timeout-check-job" not in jobs  # replaced: never dispatched


def test_text_json_and_page_with_a_fixed_clock() -> None:
    items = [
        NextItem(NOW + timedelta(hours=2, minutes=14), "job", "job <b>x</b>", "phasectl schedules"),
        NextItem(NOW - timedelta(minutes=45), "retry", "retry late: OVERDUE", "phasectl retry list", overdue=True),
    ]
    text = render_text(items, NOW, 24, 3, TIMES)
    assert (
        text.splitlines()[0] == "phasectl next — now 2026-01-25 01:30 ET, UTC\N{MINUS SIGN}05:00; the next 24 h"
    )
    rows = [line.split() for line in text.splitlines()[4:6]]  # in the order given (build_items sorts)
    assert rows[0][:7] == ["03:44", "ET", "in", "2", "h", "14", "min"] and rows[0][7:9] == ["job", "<b>x</b>"]
    assert rows[1][:5] == ["00:45", "ET", "45", "min", "ago"] and rows[1][5:7] == ["retry", "late:"]
    assert "3 scheduled job(s) do not fire" in text and "1 retry row(s) OVERDUE" in text
    data = next_json(items, NOW, NOW + timedelta(hours=24), 3)
    assert data["items"][0]["in_seconds"] == 2 * 3600 + 14 * 60 and data["items"][1]["overdue"] is True
    page = render_section(items, NOW, 24, 3, TIMES)
    assert page.startswith('<section id="next">') and "<b>" not in page and "job &lt;b&gt;x&lt;/b&gt;" in page
    assert page.count('class="overdue"') == 1 and "in 2 h 14 min" in page
    empty = render_section([], NOW, 24, 0, TIMES)
    assert "Nothing in this window." in empty
