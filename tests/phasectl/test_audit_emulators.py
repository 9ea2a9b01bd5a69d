"""``phasectl audit`` on the emulators: the records audited commands wrote, read back newest first."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud
from tests.support.phasectl_run import Run, phasectl_runner
from tests.support.rig import Rig

pytestmark = pytest.mark.integration


def _at(rig: Rig, tmp_path: Path, name: str, now: str) -> Run:
    (tmp_path / name).mkdir()
    return phasectl_runner(rig, tmp_path / name, now)


def test_audit_reads_back_the_records_of_audited_commands(cloud: LocalCloud, unique: str, tmp_path: Path) -> None:
    rig = Rig.create(cloud, unique)
    early = _at(rig, tmp_path, "early", "2026-01-25T14:00:00Z")
    later = _at(rig, tmp_path, "later", "2026-01-25T15:00:00Z")

    requeue = early(
        "retry", "requeue", "--date", "2026-01-24", "--processor", "BdlPlayerBoxScoresProcessor",
        "--note", "API back <up>",
    )  # fmt: skip
    assert requeue.returncode == 1 and "nothing requeued" in requeue.stdout, requeue.stderr  # audited all the same
    trigger = later("trigger", "--transition", "phase2_to_phase3", "--date", "2026-01-23")
    assert trigger.returncode == 1, trigger.stderr  # nothing recorded: waiting, audited

    every = later("audit", "--json")
    assert every.returncode == 0, every.stderr
    data = json.loads(every.stdout)
    assert [(r["command"], r["when"]) for r in data["records"]] == [
        ("trigger", "2026-01-25T15:00:00+00:00"),
        ("retry requeue", "2026-01-25T14:00:00+00:00"),
    ]
    newest, oldest = data["records"]
    assert {r["who"] for r in data["records"]} == {"ops-tester"}
    assert newest["args"] == {"transition": "phase2_to_phase3", "date": "2026-01-23", "force": False}
    assert oldest["args"]["processor"] == "bdl_player_boxscores" and oldest["result"] == "0 row(s)"
    assert data["truncated"] is False

    dated = later("audit", "--date", "2026-01-24")
    assert dated.returncode == 0, dated.stderr
    assert "1 record(s) since 2026-01-18 10:00 ET (7d), game date 2026-01-24" in dated.stdout
    (row,) = [line for line in dated.stdout.splitlines() if line.startswith("2026-01-25")]
    assert row.startswith("2026-01-25 09:00 ET  ops-tester  retry requeue  date=2026-01-24 note='API back <up>'")

    recent = json.loads(later("audit", "--since", "30m", "--json").stdout)
    assert [r["command"] for r in recent["records"]] == ["trigger"]
    one = json.loads(later("audit", "--limit", "1", "--json").stdout)
    assert [r["command"] for r in one["records"]] == ["trigger"] and one["truncated"] is True
    utc = later("audit", "--since", "30m", "--utc")
    assert "2026-01-25 15:00 UTC  ops-tester  trigger" in utc.stdout
