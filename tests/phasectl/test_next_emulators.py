"""``phasectl next`` on the emulators: a date with a first completion recorded shows its next deadline tier."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud
from tests.support.phasectl_run import phasectl_runner
from tests.support.rig import Rig

pytestmark = pytest.mark.integration

NOW = "2026-01-25T14:30:00Z"  # 09:30 ET; the rig records completions at 14:00Z


def test_next_lists_the_next_tiers_of_a_waiting_date(cloud: LocalCloud, unique: str, tmp_path: Path) -> None:
    rig = Rig.create(cloud, unique)
    p45 = rig.services["phase4_to_phase5"]
    for name in ("ml_feature_store", "player_daily_cache", "player_composite_factors"):
        p45.handle_event(rig.event(rig.completion(name, 4)))  # 3 of 5: below the 60-min tier's 4
    phasectl = phasectl_runner(rig, tmp_path, NOW)

    text = phasectl("next", "--date", "2026-01-24", "--hours", "6")
    assert text.returncode == 0, text.stderr
    lines = text.stdout.splitlines()
    assert lines[0] == "phasectl next — now 2026-01-25 09:30 ET, UTC\N{MINUS SIGN}05:00; the next 6 h"
    tiers = [line for line in lines if "phase4_to_phase5 2026-01-24: deadline tier" in line]
    assert [line.split()[:5] for line in tiers] == [
        ["10:00", "ET", "in", "30", "min"],
        ["11:00", "ET", "in", "1", "h"],
        ["13:00", "ET", "in", "3", "h"],
    ]
    assert "needs 1 more" in tiers[0] and "fires then unless all arrive first" in tiers[1]
    assert tiers[0].endswith("phasectl status --date 2026-01-24")
    monitor = next(line for line in lines if "the monitor's next pass" in line)
    assert monitor.split()[:5] == ["09:40", "ET", "in", "10", "min"]

    data = json.loads(phasectl("next", "--json").stdout)  # default dates: the lookback up to tomorrow
    tier = [i for i in data["items"] if i["kind"] == "tier"]
    assert [(i["at"], i["in_seconds"], i["game_date"]) for i in tier] == [
        ("2026-01-25T15:00:00+00:00", 1800, "2026-01-24"),
        ("2026-01-25T16:00:00+00:00", 5400, "2026-01-24"),
        ("2026-01-25T18:00:00+00:00", 12600, "2026-01-24"),
    ]
    assert [i["at"] for i in data["items"]] == sorted(i["at"] for i in data["items"])
    assert any(i["kind"] == "job" and "same-day-phase3" in i["what"] for i in data["items"])  # 10:30 ET, in season

    page = tmp_path / "status.html"
    html = phasectl("status", "--date", "2026-01-24", "--html", str(page), "--days", "2")
    assert html.returncode in (0, 1), html.stderr
    body = page.read_text()
    nxt = body.split('<section id="next">', 1)[1].split("</section>", 1)[0]
    assert "phase4_to_phase5 2026-01-24: deadline tier 1" in nxt and "in 30 min" in nxt and "not read" not in nxt
    assert '<section id="lineage">' in body and "prediction-coordinator" in body
