"""Issue 28, the CLI frictions, as an operator meets them: ``python -m phasectl`` against the emulators.

A night where GSW@MIN is in no source: phase 2→3 triggers partial (6/7) at 09:00 ET, the game goes
to auto-retry. The operator looks at 10:00 ET with ``--date yesterday``, marks the game unavailable
by its matchup (no date: found on the schedule), and sees ``status`` say the gate shown is the
trigger's and what to run; ``trigger`` without ``--force`` names the command; ``health`` is
degraded, not healthy, while the monitor has an active ERROR finding.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud
from shared.clock import FixedClock
from shared.gcp import firestore_client
from shared.monitor.alerts import AlertManager
from shared.monitor.findings import Finding
from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID, RETRY_HEARTBEAT_ID
from tests.support.phasectl_run import Run, phasectl_runner
from tests.support.postponed_night import seed_night
from tests.support.rig import PHASE2, Rig
from tests.support.slate import GSW_MIN_ID, NIGHT

pytestmark = pytest.mark.integration

NOW = "2026-01-25T15:00:00Z"  # 10:00 ET the morning after; the rig's clock (the trigger) is 14:00Z = 09:00 ET
P23 = "phase2_to_phase3"
FORCE = f"phasectl trigger --transition {P23} --date 2026-01-24 --force"


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


@pytest.fixture
def phasectl(rig: Rig, tmp_path: Path) -> Run:
    return phasectl_runner(rig, tmp_path, NOW)


def _partial_night(rig: Rig) -> None:
    seed_night(rig, postponed=False)  # GSW@MIN looks played; no source has it
    service = rig.services[P23]
    for name in PHASE2:
        service.handle_event(rig.event(rig.completion(name, 2, game_date=NIGHT)))
    assert service.state.load(NIGHT).status == "triggered"
    rig.deliver_outbox()  # the partial trigger's missing game goes to the retry queue


def _ok(proc: object) -> str:
    code, out, err = proc.returncode, proc.stdout, proc.stderr  # type: ignore[attr-defined]
    assert code in (0, 1), out + err
    return str(out)


def test_status_after_a_mark_says_the_gate_is_the_triggers_and_what_to_run(rig: Rig, phasectl: Run) -> None:
    _partial_night(rig)

    before = _ok(phasectl("status", "--date", "yesterday"))
    lines = before.splitlines()
    # YESTERDAY in New York at 10:00 ET is the 24th; the header is in ET with its offset, no "Z"
    assert lines[0] == "phasectl status — game date 2026-01-24 (now 2026-01-25 10:00 ET, UTC\N{MINUS SIGN}05:00)"
    (row,) = [line for line in lines if line.startswith(f"{P23} ") and "(generation" not in line]
    assert row.split()[3] == "partial" and row.endswith("2026-01-25 09:00 ET"), row
    assert "  at trigger (09:00 ET, partial): " in before
    assert "  now:       completed " in before
    assert "gate (recorded at trigger) game_coverage: ALERT" in before
    assert "games marked since the trigger: none recorded by phasectl" in before
    assert "Z)" not in before

    marked = phasectl("mark-unavailable", "gsw @ min", "--reason", "no vendor will ever have it")
    assert marked.returncode == 0, marked.stdout + marked.stderr
    assert marked.stdout.startswith(f"{GSW_MIN_ID} (GSW@MIN, 0022500644) on 2026-01-24 marked unavailable")

    after = _ok(phasectl("status", "--date", "2026-01-24"))
    assert f"games marked since the trigger (10:00 ET: {GSW_MIN_ID}): the verdict changed; run `{FORCE}`" in after, (
        after
    )
    assert "gate (recorded at trigger) game_coverage: ALERT" in after  # still the trigger's, said so
    note = json.loads(phasectl("status", "--date", "2026-01-24", "--json").stdout)
    (p23,) = [t for t in note["transitions"] if t["transition"] == P23]
    assert p23["marks_after_trigger"]["games"] == [GSW_MIN_ID] and p23["marks_after_trigger"]["rerun"] is True
    assert p23["triggered_at"] == "2026-01-25T14:00:00+00:00"  # --json stays ISO 8601

    undone = phasectl("mark-unavailable", GSW_MIN_ID, "--undo", "--reason", "a vendor has it after all")
    assert undone.returncode == 0, undone.stdout + undone.stderr
    assert "it triggered with the same games counted: nothing to re-run" in undone.stdout
    same = _ok(phasectl("status", "--date", "2026-01-24"))
    assert (
        f"games marked since the trigger (10:00 ET: {GSW_MIN_ID}): the same games count; nothing needs re-running"
        in same
    )
    assert _ok(phasectl("mark-unavailable", "0022500644", "--reason", "no vendor after all")).startswith(GSW_MIN_ID)

    again = phasectl("trigger", "--transition", P23, "--date", "2026-01-24")
    assert again.returncode == 0, again.stdout + again.stderr
    assert f"generation 1 already triggered at 09:00 ET (partial); `{FORCE}` starts generation 2" in again.stdout

    forced = phasectl("trigger", "--transition", P23, "--date", "2026-01-24", "--force")
    assert forced.returncode == 0 and f"{P23}:2026-01-24:g2" in forced.stdout, forced.stdout + forced.stderr
    fresh = _ok(phasectl("status", "--date", "2026-01-24", "--utc"))
    assert "(now 2026-01-25 15:00 UTC)" in fresh.splitlines()[0]
    assert "games marked since the trigger: none recorded by phasectl" in fresh  # generation 2: the note is gone
    assert "1 marked unavailable" in fresh


def test_a_matchup_without_a_date_is_found_on_the_schedule_or_the_error_says_what_to_give(
    rig: Rig, phasectl: Run
) -> None:
    _partial_night(rig)
    unknown = phasectl("games", "postpone", "LAL@GSW", "--reason", "x")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == [
        "phasectl: error: no LAL@GSW game on the schedule from 2026-01-18 to 2026-01-26: pass --date "
        "(accepted: 0022500644 (or 22500644), 20260124_GSW_MIN, or a matchup GSW@MIN (also 'gsw @ min', "
        "GSW\N{EN DASH}MIN, GSW-MIN, 'GSW at MIN'; away team first) with --date, or found on the schedule of the "
        "recent nights)"
    ]
    dash = phasectl("games", "postpone", "GSW\N{EN DASH}MIN", "--date", "2026-01-24", "--reason", "postponed")
    assert dash.returncode == 0, dash.stdout + dash.stderr
    assert dash.stdout.startswith(f"{GSW_MIN_ID} (GSW@MIN, 0022500644) on 2026-01-24 marked postponed")


def test_retry_list_says_a_past_next_try_is_overdue(rig: Rig, phasectl: Run) -> None:
    _partial_night(rig)
    out = _ok(phasectl("retry", "list", "--date", "2026-01-24"))
    assert out.splitlines()[0] == "retry queue (now 2026-01-25 10:00 ET, UTC\N{MINUS SIGN}05:00)"
    (row,) = [line for line in out.splitlines() if "bdl_player_boxscores" in line]
    assert "overdue by " in row and "(due 09:" in row, row  # 15 min ± 10 % after the 09:00 ET trigger


def test_health_is_degraded_while_the_monitor_has_an_active_error(rig: Rig, phasectl: Run, tmp_path: Path) -> None:
    fs = firestore_client(rig.cloud.project)
    beats = fs.collection(rig.definition.monitor.heartbeat_collection)
    beats.document(MONITOR_HEARTBEAT_ID).set({"last_run_at": datetime(2026, 1, 25, 14, 57, tzinfo=UTC)})
    beats.document(RETRY_HEARTBEAT_ID).set({"last_run_at": datetime(2026, 1, 25, 14, 50, tzinfo=UTC)})
    logs = tmp_path / "logs"
    logs.mkdir()

    healthy = phasectl("health", "--log-dir", str(logs))
    assert healthy.returncode == 0, healthy.stdout + healthy.stderr
    assert healthy.stdout.splitlines()[-1] == "healthy"
    assert "errors since 2026-01-25 09:00 ET (1h)" in healthy.stdout

    manager = AlertManager(rig.definition, fs, FixedClock(datetime(2026, 1, 25, 6, 12, tzinfo=UTC)))
    manager.process(
        [
            Finding("retry_failed_permanent", "ERROR", "1 failed_permanent retry row(s)"),
            Finding("gate_alert", "WARNING", f"{P23} 2026-01-24: triggered under the alert line", P23, NIGHT),
        ]
    )
    degraded = phasectl("health", "--log-dir", str(logs))
    assert degraded.returncode == 3, degraded.stdout + degraded.stderr
    assert "active findings: 1 ERROR, 1 WARNING (phasectl findings)" in degraded.stdout
    assert degraded.stdout.splitlines()[-1] == "DEGRADED"
    data = json.loads(phasectl("health", "--log-dir", str(logs), "--json").stdout)
    assert (data["state"], data["healthy"], data["findings"]) == ("degraded", False, {"ERROR": 1, "WARNING": 1})
    utc = phasectl("health", "--log-dir", str(logs), "--utc")
    assert utc.returncode == 3 and "errors since 2026-01-25 14:00 UTC (1h)" in utc.stdout


def test_trigger_takes_a_sensor_as_the_grading_runbook_says(rig: Rig, phasectl: Run) -> None:
    """The runbook's re-grade (`phasectl trigger --transition grading_readiness --date D --force`)
    failed with "unknown transition": a sensor is evaluated by hand through its own claim protocol,
    here waiting (no predictions yet, so no actuals to measure), audited, with exit 1."""
    seed_night(rig)
    rig.seed_outputs(game_date=NIGHT, tables=["player_game_summary"])  # the sensor's tables; actuals, no predictions
    for force in ((), ("--force",)):
        done = phasectl("trigger", "--transition", "grading_readiness", "--date", "2026-01-24", *force)
        assert done.returncode == 1, done.stdout + done.stderr
        assert done.stdout.startswith("grading_readiness 2026-01-24: waiting"), done.stdout
        assert "no predictions yet" in done.stdout
    audit = rig.definition.pipeline.audit_collection
    records = [d.to_dict() or {} for d in firestore_client(rig.cloud.project).collection(audit).stream()]
    mine = [r for r in records if r.get("command") == "trigger" and r["args"].get("transition") == "grading_readiness"]
    assert sorted(r["args"]["force"] for r in mine) == [False, True]
