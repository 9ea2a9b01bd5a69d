"""``phasectl slo`` and the status page's history section on a seeded month of ``phase_execution_log``.

30 nights x the four transitions of trigger rows (as the transitions write them) in local-bigquery,
and the schedule's games with their tip-offs; ``python -m phasectl`` in a subprocess against the
rig's isolated definition. Every night is on time but the 10th (5→6 at 11:00 ET, late), the 20th
(5→6 g1 partial on time, then g2 complete: both shown, g1 judged) and the last night, the 30th
(5→6 at 10:45 ET: late, so exit 1).
"""

from __future__ import annotations

import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.raw_tables import upstream_table
from shared.gcp_bigquery import bigquery_client
from tests.support.phasectl_run import Run, phasectl_runner
from tests.support.rig import GAMES, Rig

pytestmark = pytest.mark.integration

ET = ZoneInfo("America/New_York")
FIRST, LAST = date(2026, 1, 1), date(2026, 1, 30)
NIGHTS = [FIRST + timedelta(days=n) for n in range(30)]
NOW = "2026-01-31T17:00:00Z"  # 12:00 ET on the 31st: every night of the month is due
# (transition, ET hour, minute) the morning after: all before their SLO (06:00, 08:00, tip-off - 1 h, 10:00)
ON_TIME = [
    ("phase2_to_phase3", 5, 0),
    ("phase3_to_phase4", 7, 0),
    ("phase4_to_phase5", 9, 0),
    ("phase5_to_phase6", 9, 30),
]


def _at(day: date, hour: int, minute: int) -> datetime:
    return datetime.combine(day + timedelta(days=1), datetime.min.time(), ET).replace(hour=hour, minute=minute)


def _row(transition: str, day: date, at: datetime, gen: int = 1, status: str = "complete") -> dict[str, object]:
    mode = ":overnight" if transition == "phase3_to_phase4" else ""
    return {
        "row_id": f"{transition}__{day}__{status}__g{gen}",
        "execution_timestamp": at.isoformat(),
        "phase_name": transition,
        "game_date": day.isoformat(),
        "trigger_id": f"{transition}:{day}:g{gen}{mode}",
        "start_time": (at - timedelta(hours=2, minutes=day.day)).isoformat(),
        "duration_seconds": float(7200 + 60 * day.day),  # 2h01m .. 2h30m
        "games_processed": 1,
        "status": status,
        "metadata": "{}",
    }


def seed_month(rig: Rig) -> None:
    bq = bigquery_client(rig.cloud.project)
    s = rig.definition.pipeline
    rows = []
    for day in NIGHTS:
        for transition, hour, minute in ON_TIME:
            if transition == "phase5_to_phase6" and day in (date(2026, 1, 10), LAST, date(2026, 1, 20)):
                continue
            rows.append(_row(transition, day, _at(day, hour, minute)))
    rows.append(_row("phase5_to_phase6", date(2026, 1, 10), _at(date(2026, 1, 10), 11, 0)))
    rows.append(_row("phase5_to_phase6", LAST, _at(LAST, 10, 45)))
    rows.append(_row("phase5_to_phase6", date(2026, 1, 20), _at(date(2026, 1, 20), 9, 40), status="partial"))
    rows.append(_row("phase5_to_phase6", date(2026, 1, 20), _at(date(2026, 1, 20), 12, 0), gen=2))
    rows.append(_row("phase2_to_phase3", date(2026, 1, 5), _at(date(2026, 1, 5), 4, 0), status="blocked"))
    assert bq.insert_rows_json(f"{rig.cloud.project}.{s.dataset}.{s.phase_execution_log_table}", rows) == []
    schedule = upstream_table(rig.definition.games.schedule_table)
    nba, away, home = GAMES[0]
    games = []
    for day in [*NIGHTS, LAST + timedelta(days=1)]:
        tipoff = datetime.combine(day, datetime.min.time(), ET).replace(hour=19)
        games.append(schedule.row(nba, day, away, home, game_status=3, game_date_est=tipoff.isoformat()))
    assert bq.insert_rows_json(f"{rig.cloud.project}.{rig.definition.games.schedule_table}", games) == []


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique)
    seed_month(rig)
    return rig


@pytest.fixture
def phasectl(rig: Rig, tmp_path: Path) -> Run:
    return phasectl_runner(rig, tmp_path, NOW)


def test_slo_prints_each_transition_against_its_slo_and_exits_1_on_last_nights_breach(
    phasectl: Run, tmp_path: Path
) -> None:
    shown = phasectl("slo", "--date", str(LAST))
    out = shown.stdout
    assert shown.returncode == 1, out + shown.stderr
    assert "phase2_to_phase3  SLO: first trigger by 06:00 ET the morning after" in out, out
    assert "phase4_to_phase5  SLO: first trigger by 1 h before the first tip-off the day after" in out
    blocks = dict(re.findall(r"^(phase\d_to_phase\d)  SLO.*?\n((?:  .*\n?)*)", out, flags=re.M))
    for transition in ("phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5"):
        assert "on time 30 of the last 30 nights" in blocks[transition], blocks[transition]
    p56 = blocks["phase5_to_phase6"]
    assert "on time 28 of the last 30 nights" in p56, p56
    assert "last night 2026-01-30: g1 complete 10:45 ET (due 10:00 ET): LATE by 45m" in p56, p56
    assert "2026-01-20: g1 partial 09:40 ET, g2 complete 12:00 ET (due 10:00 ET): on time" in p56, p56
    assert "2026-01-10: g1 complete 11:00 ET (due 10:00 ET): LATE by 1h00m" in p56, p56
    # durations 2h01m..2h30m over the nights (g1 only): nearest-rank p50 = 15th, p95 = 29th value
    assert "phase 2 duration (first completion to trigger, g1): p50 2h15m, p95 2h29m" in blocks["phase2_to_phase3"]
    assert "breached: phase5_to_phase6" in out

    earlier = phasectl("slo", "--date", "2026-01-29", "--nights", "5", "--json")
    assert earlier.returncode == 0, earlier.stdout + earlier.stderr
    report = json.loads(earlier.stdout)
    assert report["breached"] == []
    assert [len(t["nights"]) for t in report["transitions"]] == [5, 5, 5, 5]
    p45 = next(t for t in report["transitions"] if t["transition"] == "phase4_to_phase5")
    assert p45["nights"][-1]["due"] == "2026-01-30T18:00:00-05:00"  # the 30th's 19:00 ET tip-off - 1 h

    bad = phasectl("slo", "--nights", "0")
    assert bad.returncode == 2 and "--nights" in bad.stderr


def test_the_history_section_has_30_points_per_transition(phasectl: Run, tmp_path: Path) -> None:
    page_path = tmp_path / "status.html"
    done = phasectl("status", "--date", str(LAST), "--html", str(page_path), "--days", "3")
    assert page_path.exists(), done.stdout + done.stderr
    page = page_path.read_text()
    history = page[page.index('<section id="history">') :]
    history = history[: history.index("</section>")]
    assert "not read" not in history, history[:500]
    charts = re.findall(r'<div class="history-transition" id="history-(\w+)">(.*?)</div>', history, flags=re.S)
    assert [name for name, _ in charts] == [
        "phase2_to_phase3",
        "phase3_to_phase4",
        "phase4_to_phase5",
        "phase5_to_phase6",
    ]
    for name, body in charts:
        points = re.findall(r'<circle class="(on-time|late)"', body)
        assert len(points) == 30, (name, len(points))
        assert body.count('<polyline class="slo"') == 1
    p56 = dict(charts)["phase5_to_phase6"]
    assert re.findall(r'<circle class="(on-time|late)"', p56).count("late") == 2
    assert "<title>2026-01-30: g1 complete 2026-01-31 10:45 ET, LATE (due 10:00 ET)</title>" in p56
    assert "g2 complete 2026-01-21 12:00 ET (a later generation, not judged)" in p56
    assert "on time 28 of the last 30 nights" in p56
    assert "<script" not in page
