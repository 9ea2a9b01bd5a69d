"""A seeded, real-looking night for the status page: date documents, retry rows and a finding, built
in memory and rendered by the real page code (``collect_status_lines`` → ``render_status_html``).

The night of 2026-01-24 (ET): phase 2 triggers *partial* at 01:12 with 4 of 5 processors and a gate
ALERT (6 of 7 games), one boxscore retry pending; phase 3 triggers complete, phase 4 by its first
deadline tier, phase 5 complete. The 23rd was blocked by the coverage gate (3 of 7 games); the
five dates before recorded nothing. ``now`` is the morning after, 09:00 ET.

``python -m tests.support.seeded_night OUT.html [--png OUT.png]`` writes the page (and its
screenshot by headless Chromium): ``make screenshot`` runs it for docs/operations.md.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from phasectl.report import Heartbeat
from phasectl.status_html import ActiveFinding, RetryLine, collect_status_lines, render_status_html
from shared.clock import FixedClock
from shared.orchestration.engine import CompletionRecord
from shared.orchestration.state import DateState
from shared.pipeline.definition import PipelineDefinition, load_definition

ET = ZoneInfo("America/New_York")
DAY = date(2026, 1, 24)
NOW = datetime(2026, 1, 25, 9, 0, tzinfo=ET).astimezone(UTC)
DAYS = 7


def et(day: int, hour: int, minute: int) -> datetime:
    """An instant given in ET (January: UTC-05:00), as UTC."""
    return datetime(2026, 1, day, hour, minute, tzinfo=ET).astimezone(UTC)


def _completions(names: list[str], start: datetime, step_minutes: int) -> tuple[CompletionRecord, ...]:
    return tuple(
        CompletionRecord(n, n, "success", f"exec-{n}", start + timedelta(minutes=i * step_minutes), 120)
        for i, n in enumerate(names)
    )


def _trigger(name: str, day: date, at: datetime, status: str, reason: str, mode: str | None = None) -> dict[str, Any]:
    key = "1" if mode is None else f"1-{mode}"
    tid = f"{name}:{day.isoformat()}:g1" + (f":{mode}" if mode else "")
    return {key: {"trigger_id": tid, "at": at, "message_id": "1", "parts": 1, "status": status, "reason": reason}}


def _gate(verdict: str, value: float, reason: str) -> dict[str, Any]:
    return {"gate": "game_coverage", "kind": "game_coverage_pct", "verdict": verdict, "value": value, "reason": reason}


@dataclass(frozen=True)
class Seeded:
    definition: PipelineDefinition
    states: Mapping[tuple[str, date], DateState]
    retry_rows: tuple[RetryLine, ...]
    findings: tuple[ActiveFinding, ...]

    def load(self, name: str, day: date) -> DateState:
        return self.states.get((name, day)) or DateState(name, day, 1, "waiting", {}, None, (), None, ())


def seed(definition: PipelineDefinition | None = None) -> Seeded:
    d = definition or load_definition()
    sets = {t.name: list(t.processor_sets()[0][1]) for t in d.transitions}
    p2, p3, p4, p5 = (t.name for t in d.transitions)
    states: dict[tuple[str, date], DateState] = {}

    def put(name: str, day: date, status: str, triggered: dict[str, Any], comps: Any, gate: Any = None) -> None:
        raw = {"updated_at": max((c.completed_at for c in comps), default=NOW)}
        states[(name, day)] = DateState(name, day, 1, status, triggered, None, (), gate, tuple(comps), raw)

    alert = {"game_coverage": _gate("alert", 85.7, "6/7 Final games covered: below the alert line 95%")}
    put(
        p2,
        DAY,
        "triggered",
        _trigger(p2, DAY, et(25, 1, 12), "partial", "all critical done and 4/5 (≥60%) of critical+optional"),
        _completions(sets[p2][:4], et(24, 23, 5), 41),
        alert,
    )
    put(
        p3,
        DAY,
        "triggered",
        _trigger(p3, DAY, et(25, 2, 6), "complete", "all 5 expected processors done", "overnight"),
        _completions(sets[p3], et(25, 1, 30), 8),
    )
    put(
        p4,
        DAY,
        "triggered",
        _trigger(p4, DAY, et(25, 3, 21), "deadline_exceeded", "deadline tier 1 (60 min): 4 done after 61 min"),
        _completions(sets[p4][:4], et(25, 2, 20), 10),
    )
    put(
        p5,
        DAY,
        "triggered",
        _trigger(p5, DAY, et(25, 3, 51), "complete", "completion threshold met"),
        _completions(sets[p5], et(25, 3, 50), 1),
    )
    blocked = {"game_coverage": _gate("blocked", 42.9, "3/7 Final games covered: below the block line 50%")}
    put(p2, DAY - timedelta(days=1), "blocked", {}, _completions(sets[p2], et(23, 23, 0), 20), blocked)
    rows = (
        RetryLine(
            "bdl_player_boxscores",
            DAY.isoformat(),
            "pending",
            1,
            3,
            next_retry_at=et(25, 10, 15),
            phase=2,
            note="missing 20260124_GSW_MIN",
            first_failure_at=et(25, 1, 12),
            last_retry_at=et(25, 8, 45),
        ),
    )
    finding = ActiveFinding(
        key=f"gate_alert__{p2}__{DAY.isoformat()}",
        kind="gate_alert",
        severity="WARNING",
        message=f"{p2} {DAY.isoformat()} triggered with a gate ALERT: game_coverage 85.7% (6/7 Final games)",
        transition=p2,
        game_date=DAY.isoformat(),
        first_seen_at=et(25, 1, 20),
        runbook="docs/operations.md#gate_alert",
        command=f"phasectl reconcile --date {DAY.isoformat()} --detailed",
    )
    return Seeded(d, states, rows, (finding,))


def render(seeded: Seeded | None = None, now: datetime = NOW, days: int = DAYS) -> str:
    """The page of the seeded night, through the real renderer (with the nights' timelines)."""
    from phasectl.status_html import nights_of

    s = seeded or seed()
    dates = [DAY - timedelta(days=n) for n in range(days)]
    got = collect_status_lines(s.definition, s.load, FixedClock(now), dates)
    tz = ZoneInfo(s.definition.pipeline.timezone)
    heartbeats = (
        Heartbeat("monitor", now - timedelta(minutes=4), 30),
        Heartbeat("auto-retry", now - timedelta(minutes=9), 45),
    )
    return render_status_html(
        now,
        dates,
        got.lines_by_date,
        heartbeats,
        s.findings,
        counts=got.counts,
        retry_rows=s.retry_rows,
        dead_letters=[],
        timezone=tz,
        nights=nights_of(s.definition, got.states, got.lines_by_date, now, tz, s.retry_rows, firings_on=DAY),
    )


def screenshot(
    page: Path, png: Path, size: tuple[int, int] = (1280, 1400), chromium: str = "/usr/bin/chromium"
) -> None:
    with tempfile.TemporaryDirectory() as profile:
        subprocess.run(
            [
                chromium,
                "--headless",
                "--no-sandbox",
                "--disable-gpu",
                "--disable-dev-shm-usage",
                "--hide-scrollbars",
                "--force-color-profile=srgb",
                f"--user-data-dir={profile}",
                f"--window-size={size[0]},{size[1]}",
                f"--screenshot={png.resolve()}",
                page.resolve().as_uri(),
            ],
            check=True,
            capture_output=True,
            timeout=120,
        )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("html", type=Path)
    parser.add_argument("--png", type=Path)
    args = parser.parse_args(argv)
    args.html.parent.mkdir(parents=True, exist_ok=True)
    args.html.write_text(render(), encoding="utf-8")
    if args.png is not None:
        args.png.parent.mkdir(parents=True, exist_ok=True)
        screenshot(args.html, args.png)
        print(f"wrote {args.html} and {args.png}")
    else:
        print(f"wrote {args.html}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
