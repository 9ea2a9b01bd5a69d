"""``phasectl findings`` and ``status``'s findings on the Firestore emulator (issue 28: findings you can act on).

The alert documents are written by the monitor's own ``AlertManager`` (real Firestore emulator, an
isolated alert collection); ``python -m phasectl`` runs as a subprocess with the same isolated
definition (``tests.support.phasectl_run``). An acknowledgement must be written on the document,
audited, shown, kept by the monitor's next re-alert, and the finding still listed.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.clock import FixedClock
from shared.gcp import firestore_client
from shared.monitor.alerts import AlertManager
from shared.monitor.findings import Finding
from shared.pipeline.definition import PipelineDefinition
from shared.structured_log import RUNBOOK_URL_ENV
from tests.support.definition_files import write_isolated_definition
from tests.support.phasectl_run import Run, runner
from tests.support.rig import isolated_definition

pytestmark = pytest.mark.integration

SEEN = datetime(2026, 1, 25, 6, 12, tzinfo=UTC)  # 01:12 ET: when the monitor alerted
NOW = "2026-01-25T15:00:00Z"  # 10:00 ET: when the operator looks
DAY = date(2026, 1, 24)
P23 = "phase2_to_phase3"

GATE = Finding(
    "gate_alert",
    "WARNING",
    f"{P23} 2026-01-24: triggered with a gate under its alert line: game_coverage: 6/7 Final games covered",
    P23,
    DAY,
    {"reason": "game_coverage: 6/7", "trigger_id": f"{P23}:2026-01-24:g1"},
)
RETRY = Finding(
    "retry_failed_permanent",
    "ERROR",
    "1 failed_permanent retry row(s): bdl_player_boxscores@2026-01-24",
    details={"rows": ["bdl_player_boxscores@2026-01-24"]},
)
OLD = Finding("stuck", "WARNING", f"{P23} 2026-01-22: not triggered", P23, date(2026, 1, 22), {"missing": ["x"]})
RETRY_FIX = 'phasectl retry requeue --date 2026-01-24 --processor bdl_player_boxscores --note "…"'


@pytest.fixture
def definition(unique: str, monkeypatch: pytest.MonkeyPatch) -> PipelineDefinition:
    monkeypatch.delenv(RUNBOOK_URL_ENV, raising=False)  # links to the repository's runbook
    return isolated_definition(unique)


@pytest.fixture
def manager(cloud: LocalCloud, definition: PipelineDefinition) -> AlertManager:
    return AlertManager(definition, firestore_client(cloud.project), FixedClock(SEEN))


@pytest.fixture
def phasectl(cloud: LocalCloud, unique: str, tmp_path: Path) -> Run:
    path = write_isolated_definition(unique, tmp_path / "pipeline.toml")
    env = {
        **{k: v for k, v in os.environ.items() if k not in ("PHASECTL_LOG_DIR", RUNBOOK_URL_ENV)},
        **cloud.env(),
        "PIPELINE_DEFINITION": str(path),
        "PHASECTL_NOW": NOW,
        "USER": "ops-tester",
    }
    return runner(env)


def records(cloud: LocalCloud, definition: PipelineDefinition) -> dict[str, dict[str, Any]]:
    col = firestore_client(cloud.project).collection(definition.monitor.alert_collection)
    return {d.id: d.to_dict() or {} for d in col.stream()}


def audit(cloud: LocalCloud, definition: PipelineDefinition) -> list[dict[str, Any]]:
    col = firestore_client(cloud.project).collection(definition.pipeline.audit_collection)
    return [d.to_dict() or {} for d in col.stream() if (d.to_dict() or {}).get("command", "").startswith("findings")]


def test_findings_lists_each_with_its_runbook_and_fix_and_exits_1_on_an_unacknowledged_error(
    manager: AlertManager, phasectl: Run
) -> None:
    manager.process([GATE, RETRY])

    proc = phasectl("findings")

    assert proc.returncode == 1, proc.stdout + proc.stderr  # an ERROR nobody has acknowledged
    lines = proc.stdout.splitlines()
    assert lines[0] == "phasectl findings — now 2026-01-25 10:00 ET, UTC\N{MINUS SIGN}05:00"
    assert lines[1] == "2 active finding(s), 0 acknowledged"
    first = lines.index("ERROR retry_failed_permanent (first seen 2026-01-25 01:12 ET)")
    assert lines[first + 2 : first + 5] == [
        f"  fix:     {RETRY_FIX}",
        "  runbook: docs/operations.md#retry_failed_permanent",
        "  key:     retry_failed_permanent",
    ]
    gate = lines.index(f"WARNING gate_alert 2026-01-24 {P23} (first seen 2026-01-25 01:12 ET)")
    assert gate > first
    assert lines[gate + 2 : gate + 4] == [
        "  fix:     phasectl reconcile --date 2026-01-24",
        "  runbook: docs/operations.md#gate_alert",
    ]
    assert lines[-1] == "1 ERROR/CRITICAL finding(s) not acknowledged: phasectl findings --ack KEY --note TEXT"

    data = json.loads(phasectl("findings", "--json").stdout)
    by_key = {f["key"]: f for f in data["findings"]}
    assert by_key[GATE.key]["command"] == "phasectl reconcile --date 2026-01-24"
    assert by_key[GATE.key]["first_seen_at"] == "2026-01-25T06:12:00+00:00"
    assert by_key["retry_failed_permanent"]["acknowledged"] is False


def test_ack_by_a_key_prefix_is_audited_shown_still_listed_and_kept_by_a_realert(
    cloud: LocalCloud, definition: PipelineDefinition, manager: AlertManager, phasectl: Run
) -> None:
    manager.process([GATE, RETRY])

    proc = phasectl("findings", "--ack", "retry_failed", "--note", "source fixed, requeue at 9")

    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.splitlines()[0] == (
        "retry_failed_permanent: acknowledged by ops-tester at 2026-01-25 10:00 ET: source fixed, requeue at 9"
    )
    doc = records(cloud, definition)["retry_failed_permanent"]
    assert (doc["acked_by"], doc["ack_note"]) == ("ops-tester", "source fixed, requeue at 9")
    assert doc["acked_at"] == datetime(2026, 1, 25, 15, 0, tzinfo=UTC)
    (entry,) = audit(cloud, definition)
    assert (entry["command"], entry["who"]) == ("findings ack", "ops-tester")
    assert entry["args"] == {"key": "retry_failed_permanent", "kind": "retry_failed_permanent", "note": doc["ack_note"]}

    listed = phasectl("findings")
    assert listed.returncode == 0, listed.stdout + listed.stderr  # the only ERROR is acknowledged now
    assert "2 active finding(s), 1 acknowledged" in listed.stdout
    assert "  acknowledged by ops-tester at 2026-01-25 10:00 ET: source fixed, requeue at 9" in listed.stdout

    # the monitor alerts it again after its dedup window: the acknowledgement stays
    manager.clock = FixedClock(SEEN + timedelta(minutes=definition.monitor.alert_dedup_minutes))
    assert manager.process([GATE, RETRY]).alerted == [RETRY.key, GATE.key]  # most severe first
    assert records(cloud, definition)["retry_failed_permanent"]["acked_by"] == "ops-tester"
    assert "1 acknowledged" in phasectl("findings").stdout

    undo = phasectl("findings", "--unack", "retry_failed_permanent")
    assert undo.returncode == 0, undo.stdout + undo.stderr
    assert "acked_by" not in records(cloud, definition)["retry_failed_permanent"]
    assert [e["command"] for e in audit(cloud, definition)].count("findings unack") == 1
    assert phasectl("findings", "--unack", "retry_failed_permanent").returncode == 1  # nothing to change


@pytest.mark.parametrize(
    ("args", "error"),
    [
        (("--ack", "nosuch_finding", "--note", "x"), "no active finding 'nosuch_finding'"),
        (("--ack", "gate", "--note", "x"), "finding key 'gate' is too short (give at least 6 characters)"),
        (("--ack", "gate_alert__phase2"), "--ack needs --note TEXT"),
        (("--note", "x"), "--note applies to --ack only"),
    ],
)
def test_bad_acks_are_one_line_and_exit_2(
    manager: AlertManager, phasectl: Run, args: tuple[str, ...], error: str
) -> None:
    manager.process([GATE, OLD])
    proc = phasectl("findings", *args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert error in proc.stderr and len(proc.stderr.strip().splitlines()) == 1


def test_an_ambiguous_prefix_names_the_candidates(manager: AlertManager, phasectl: Run) -> None:
    twin = Finding("gate_alert", "WARNING", "m", "phase3_to_phase4", DAY, {"reason": "r"})
    manager.process([GATE, twin])
    proc = phasectl("findings", "--ack", "gate_alert", "--note", "x")
    assert proc.returncode == 2 and "is ambiguous (2 findings" in proc.stderr


def test_status_text_shows_the_dates_findings_with_fix_and_runbook(
    cloud: LocalCloud, definition: PipelineDefinition, manager: AlertManager, phasectl: Run
) -> None:
    manager.process([GATE, RETRY, OLD])
    phasectl("findings", "--ack", GATE.key, "--note", "partial is fine tonight")

    proc = phasectl("status", "--date", "2026-01-24")

    assert proc.returncode in (0, 1), proc.stdout + proc.stderr  # 1: the heartbeats never ran here
    lines = proc.stdout.splitlines()
    start = lines.index("active findings for 2026-01-24 (1):")
    assert lines[start + 1 :] == [
        f"  WARNING gate_alert 2026-01-24 {P23} (first seen 2026-01-25 01:12 ET)",
        f"    {GATE.message.removeprefix(f'{P23} 2026-01-24: ')}",  # the header line already says where
        "    fix:     phasectl reconcile --date 2026-01-24",
        "    runbook: docs/operations.md#gate_alert",
        "    acknowledged by ops-tester at 2026-01-25 10:00 ET: partial is fine tonight",
        f"    key:     {GATE.key}",
        "2 other active finding(s) (other dates, or none): phasectl findings",
    ]
    assert "first seen 2026-01-25 06:12 UTC" in phasectl("status", "--date", "2026-01-24", "--utc").stdout
    as_json = json.loads(phasectl("status", "--date", "2026-01-24", "--json").stdout)["findings"]
    (mine,) = as_json["date"]
    assert (mine["key"], mine["command"], mine["acknowledged"]) == (
        GATE.key,
        "phasectl reconcile --date 2026-01-24",
        True,
    )
    assert as_json["other_dates"] == 2
