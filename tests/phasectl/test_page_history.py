"""The status page's history section (pure rendering, and failing soft when BigQuery cannot be read)."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime, timedelta
from types import SimpleNamespace
from typing import Any
from zoneinfo import ZoneInfo

from phasectl.page_history import render
from phasectl.page_sections import render_sections
from phasectl.timefmt import TimeView
from shared.clock import FixedClock
from shared.monitor.slo import build_history
from shared.pipeline.definition import load_definition

ET = ZoneInfo("America/New_York")
END = date(2026, 1, 30)
NOW = datetime(2026, 1, 31, 17, tzinfo=UTC)


def _ctx(**extra: Any) -> Any:
    definition = load_definition()
    return SimpleNamespace(
        definition=definition,
        clock=FixedClock(NOW),
        times=TimeView.of(definition.pipeline.timezone),
        now=lambda: NOW,
        timeout=1.0,
        project="p",
        **extra,
    )


def _rows() -> list[dict[str, Any]]:
    rows = []
    for n in range(30):
        day = END - timedelta(days=n)
        if day == date(2026, 1, 15):
            continue  # a night without a trigger: a cross, not a point
        at = datetime.combine(day + timedelta(days=1), datetime.min.time(), ET).replace(hour=9, minute=n)
        rows.append(
            {
                "phase_name": "phase5_to_phase6",
                "game_date": day,
                "status": "partial" if day == date(2026, 1, 20) else "complete",
                "trigger_id": f"phase5_to_phase6:{day}:g1",
                "execution_timestamp": at + (timedelta(hours=2) if day == date(2026, 1, 10) else timedelta(0)),
                "duration_seconds": 3600.0,
            }
        )
    rows.append({**rows[10], "trigger_id": f"phase5_to_phase6:{END - timedelta(days=10)}:g2", "status": "complete"})
    return rows


def test_thirty_nights_are_thirty_points_less_the_night_without_a_trigger_with_titles() -> None:
    ctx = _ctx()
    games = {END - timedelta(days=n): 3 for n in range(31)}
    history = build_history(ctx.definition, _rows(), END - timedelta(days=29), END, NOW, games=games)
    page = render(ctx, history, END)
    p56 = page[page.index('id="history-phase5_to_phase6"') :]
    points = re.findall(r'<circle class="(on-time|late)"', p56)
    assert len(points) == 29 and points.count("late") == 1  # the 10th at 11:xx ET
    assert p56.count('<path class="missing"') == 1 and "2026-01-15: no trigger, due 10:00 ET" in p56
    assert p56.count('<path class="later"') == 1 and "(a later generation, not judged)" in p56
    assert "<title>2026-01-10: g1 complete 2026-01-11 11:20 ET, LATE (due 10:00 ET)</title>" in p56
    assert "on time 28 of the last 30 nights" in p56
    assert "<script" not in page
    # the other transitions had no trigger at all: every night a cross, no point
    p23 = page[page.index('id="history-phase2_to_phase3"') : page.index('id="history-phase3_to_phase4"')]
    assert "<circle" not in p23 and p23.count('<path class="missing"') == 30


def test_the_section_raises_when_bigquery_cannot_be_read_and_the_page_says_not_read() -> None:
    def unreadable() -> Any:
        raise ConnectionError("BigQuery emulator at http://127.0.0.1:1: connection refused")

    ctx = _ctx(bq=unreadable, bq_retry=lambda: None)
    sections = render_sections(ctx, END, [END])  # type: ignore[arg-type]
    (history,) = [s for s in sections if s.startswith('<section id="history">')]
    assert '<p class="unread">not read: ConnectionError: BigQuery emulator at http://127.0.0.1:1' in history
