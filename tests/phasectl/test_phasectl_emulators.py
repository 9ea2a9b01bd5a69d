"""``phasectl`` driven as a user would: ``python -m phasectl ...`` in a subprocess.

Each test builds an isolated rig on the real emulators (unique dataset, collections and
topics), writes the equivalent definition file for the CLI process (``PIPELINE_DEFINITION``),
and fixes the CLI's "now" with ``PHASECTL_NOW`` so the rule explanations are deterministic.
"""

from __future__ import annotations

import json
import os
import subprocess
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud
from shared.gcp import firestore_client
from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID
from tests.support.phasectl_run import Run, phasectl_runner, runner
from tests.support.rig import GAME_DATE, PHASE2, SEVEN, Rig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
NOW = "2026-01-25T15:00:00Z"  # 10:00 ET the morning after; the rig's clock is 14:00Z
BDL = ["0022500645", "22500646", "0022500647", "0022500649"]  # one id lost its leading 00
ESPN = ["20260124_PHX_DAL", "20260124_TOR_ATL"]  # the fallback source, date-teams ids


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


@pytest.fixture
def phasectl(rig: Rig, tmp_path: Path) -> Run:
    return phasectl_runner(rig, tmp_path, NOW)


@pytest.fixture
def offline_phasectl() -> Run:
    """No backends: bad input must be rejected before any client is created."""
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST") and k != "PIPELINE_DEFINITION"},
        "GOOGLE_CLOUD_PROJECT": "no-such-project",
        "PHASECTL_NOW": NOW,
    }
    return runner(env, timeout=60)


def _night(rig: Rig, *, phase4: tuple[str, ...] = ()) -> None:
    """2026-01-24: 7 Final games, GSW@MIN in no source; phase 2 complete; some phase-4 completions."""
    rig.seed_games(final=SEVEN, sources={"bdl": BDL, "espn": ESPN})
    p2 = rig.services["phase2_to_phase3"]
    for name in PHASE2:
        p2.handle_event(rig.event(rig.completion(name, 2)))
    for name in phase4:
        rig.services["phase4_to_phase5"].handle_event(rig.event(rig.completion(name, 4)))
    rig.deliver_outbox()  # what auto-retry does on the transitions' nudge: log rows, missing games → queue


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, object]:
    data: dict[str, object] = json.loads(proc.stdout)
    return data


def test_reconcile_names_the_missing_game_and_mark_unavailable_excludes_it(rig: Rig, phasectl: Run) -> None:
    _night(rig)

    before = phasectl("reconcile", "--date", "2026-01-24", "--detailed")
    assert before.returncode == 1, before.stderr  # 6/7 = 85.7 %: warning
    assert "WARNING" in before.stdout
    assert "6/7 Final games covered" in before.stdout
    assert "20260124_GSW_MIN (GSW@MIN, 0022500644)" in before.stdout
    data = _json(phasectl("reconcile", "--date", "2026-01-24", "--json", "--detailed"))
    coverage = data["coverage"]
    assert isinstance(coverage, dict)
    assert (coverage["considered"], coverage["covered"]) == (7, 6)
    assert [g["nba_game_id"] for g in coverage["missing"]] == ["0022500644"]
    assert {s["name"]: s["games"] for s in data["sources"]} == {"bdl": 4, "espn": 2, "gamebook": 0}  # type: ignore[index,union-attr]
    games = {g["game_id"]: g for g in data["games"]}  # type: ignore[union-attr]
    assert games["20260124_LAL_DEN"]["covered_by"] == "bdl"  # the 8-digit id was normalised
    assert games["20260124_PHX_DAL"]["covered_by"] == "espn"  # fallback chain
    phases = {p["transition"]: p for p in data["phases"]}  # type: ignore[union-attr]
    assert phases["phase2_to_phase3"]["trigger_id"] == "phase2_to_phase3:2026-01-24:g1"
    assert [r["phase_name"] for r in data["execution_log"]] == ["phase2_to_phase3"]  # type: ignore[index,union-attr]
    retry = data["retry_queue"]
    assert [(r["processor_name"], r["game_ids"]) for r in retry] == [  # type: ignore[index,union-attr]
        ("bdl_player_boxscores", ["20260124_GSW_MIN"])
    ]

    marked = phasectl("mark-unavailable", "0022500644", "--reason", "arena power outage, replayed later")
    assert marked.returncode == 0, marked.stderr
    assert "20260124_GSW_MIN" in marked.stdout
    after = phasectl("reconcile", "--date", "2026-01-24")
    assert after.returncode == 0, after.stdout + after.stderr
    assert "6/6 Final games covered" in after.stdout
    assert "1 game(s) excluded as unavailable: 20260124_GSW_MIN (GSW@MIN)" in after.stdout
    again = phasectl("mark-unavailable", "20260124_GSW_MIN", "--reason", "twice")
    assert again.returncode == 0 and "already marked" in again.stdout

    audit = [d.to_dict() for d in firestore_client(rig.cloud.project).collection("operator_audit").stream()]
    assert len(audit) == 1
    assert audit[0]["who"] == "ops-tester"
    assert audit[0]["command"] == "mark-unavailable"
    assert audit[0]["args"]["game_id"] == "20260124_GSW_MIN"
    assert audit[0]["args"]["reason"] == "arena power outage, replayed later"

    undo = phasectl("mark-unavailable", "0022500644", "--undo", "--reason", "it was played after all")
    assert undo.returncode == 0, undo.stderr
    assert "6/7 Final games covered" in phasectl("reconcile", "--date", "2026-01-24").stdout
    assert phasectl("mark-unavailable", "0022500644", "--undo", "--reason", "x").returncode == 1

    unknown = phasectl("mark-unavailable", "0022500999", "--reason", "x")
    assert unknown.returncode == 2
    assert unknown.stderr.strip().splitlines() == ["phasectl: error: unknown game id '0022500999': not in the schedule"]
    wrong_day = phasectl("mark-unavailable", "20260124_LAL_BOS", "--reason", "x")
    assert wrong_day.returncode == 2 and "not in the schedule of 2026-01-24" in wrong_day.stderr


def test_status_explains_each_transition_and_the_heartbeats(rig: Rig, phasectl: Run, tmp_path: Path) -> None:
    _night(rig, phase4=("ml_feature_store", "player_daily_cache", "player_composite_factors"))

    text = phasectl("status", "--date", "2026-01-24")
    assert text.returncode == 1, text.stderr  # heartbeats have never run
    assert "deadline tier 2 in 60 min" in text.stdout
    assert "monitor has never run" in text.stdout
    data = _json(phasectl("status", "--date", "2026-01-24", "--json"))
    assert data["version"] == 1
    t = {p["transition"]: p for p in data["transitions"]}  # type: ignore[union-attr]
    p2 = t["phase2_to_phase3"]
    assert (p2["decision"], p2["trigger_id"], p2["trigger_status"]) == (
        "triggered",
        "phase2_to_phase3:2026-01-24:g1",
        "partial",
    )
    assert p2["gates"]["game_coverage"]["verdict"] == "alert"
    assert p2["missing_games"] == ["20260124_GSW_MIN"]
    p4 = t["phase4_to_phase5"]
    assert p4["decision"] == "wait"
    assert p4["missing"] == ["team_defense_zone_analysis", "player_shot_zone_analysis"]
    assert t["phase3_to_phase4"]["mode"] == "overnight"
    assert t["phase3_to_phase4"]["reason"].startswith("waiting for critical player_game_summary")

    beats = firestore_client(rig.cloud.project).collection(rig.definition.monitor.heartbeat_collection)
    beats.document(MONITOR_HEARTBEAT_ID).set({"last_run_at": datetime(2026, 1, 25, 14, 57, tzinfo=UTC)})
    beats.document("auto_retry_processor").set({"last_run_at": datetime(2026, 1, 25, 14, 50, tzinfo=UTC)})
    healthy = phasectl("status", "--date", "2026-01-24")
    assert healthy.returncode == 0, healthy.stdout
    assert "monitor last ran 3 min ago" in healthy.stdout
    assert "auto-retry last ran 10 min ago" in healthy.stdout

    logs = tmp_path / "logs"
    logs.mkdir()
    (logs / "function-phase2_to_phase3.log").write_text(
        "\n".join(
            [
                json.dumps({"severity": "ERROR", "message": "old failure", "time": "2026-01-25T10:00:00Z"}),
                json.dumps({"severity": "INFO", "message": "fine", "time": "2026-01-25T14:55:00Z"}),
                "Serving Flask app",
                json.dumps(
                    {"severity": "ERROR", "message": "BLOCKED phase2_to_phase3", "time": "2026-01-25T14:50:00Z"}
                ),
            ]
        )
    )
    health = phasectl("health", "--since", "1h", "--log-dir", str(logs), "--json")
    assert health.returncode == 1, health.stderr
    report = _json(health)
    errors = {f["function"]: f for f in report["functions"]}  # type: ignore[union-attr]
    assert errors["phase2_to_phase3"]["errors"] == 1
    assert errors["phase2_to_phase3"]["last_message"] == "BLOCKED phase2_to_phase3"
    assert errors["phase_transition_monitor"]["errors"] == 0
    quiet = phasectl("health", "--since", "5m", "--log-dir", str(logs))
    assert quiet.returncode == 0, quiet.stdout
    assert "healthy" in quiet.stdout


def test_trigger_force_backfill_and_retry_commands(rig: Rig, phasectl: Run) -> None:
    _night(rig)
    assert [t.trigger_id for t in rig.pull_triggers("phase2_to_phase3")] == ["phase2_to_phase3:2026-01-24:g1"]

    same = phasectl("trigger", "--transition", "phase2_to_phase3", "--date", "2026-01-24")
    assert same.returncode == 0 and "already_triggered" in same.stdout
    assert rig.pull_triggers("phase2_to_phase3") == []
    forced = phasectl("trigger", "--transition", "phase2_to_phase3", "--date", "2026-01-24", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert "phase2_to_phase3:2026-01-24:g2" in forced.stdout
    assert [t.trigger_id for t in rig.pull_triggers("phase2_to_phase3")] == ["phase2_to_phase3:2026-01-24:g2"]
    waiting = phasectl("trigger", "--transition", "phase3_to_phase4", "--date", "2026-01-24")
    assert waiting.returncode == 1 and "waiting for critical" in waiting.stdout

    plan = phasectl(
        "backfill", "--from", "2026-01-22", "--to", "2026-01-24", "--transition", "phase2_to_phase3",
        "--mode", "none", "--dry-run",
    )  # fmt: skip
    assert plan.returncode == 0, plan.stderr
    lines = {line.split()[0]: line.split()[1:] for line in plan.stdout.splitlines() if line.startswith("2026-")}
    assert lines["2026-01-24"] == ["completed", "skip"]
    assert lines["2026-01-22"] == ["none", "evaluate"]
    assert "2 of 3 date(s) would be re-triggered" in plan.stdout
    everything = phasectl(
        "backfill", "--from", "2026-01-22", "--to", "2026-01-24", "--transition", "phase2_to_phase3",
        "--mode", "completed",
    )  # fmt: skip
    assert everything.returncode == 1, everything.stderr  # the 22nd and 23rd have no completions: waiting
    assert "3 of 3 date(s); triggered 1, waiting 2" in everything.stdout
    assert "[" in everything.stderr and "3/3" in everything.stderr  # the progress bar
    assert [t.trigger_id for t in rig.pull_triggers("phase2_to_phase3")] == ["phase2_to_phase3:2026-01-24:g3"]

    listed = _json(phasectl("retry", "list", "--date", "2026-01-24", "--json"))
    rows = listed["rows"]
    assert [(r["processor_name"], r["status"]) for r in rows] == [("bdl_player_boxscores", "pending")]  # type: ignore[index,union-attr]
    row_id = rows[0]["id"]  # type: ignore[index]
    nothing = phasectl(
        "retry", "requeue", "--date", "2026-01-24", "--processor", "BdlBoxscoresProcessor", "--note", "x"
    )
    assert nothing.returncode == 1 and "nothing requeued" in nothing.stdout
    resolved = phasectl("retry", "resolve", row_id[:10], "--note", "boxscores loaded by hand")
    assert resolved.returncode == 0, resolved.stdout + resolved.stderr
    after = _json(phasectl("retry", "list", "--date", "2026-01-24", "--json"))["rows"]
    assert [(r["status"], r["resolution_notes"]) for r in after] == [  # type: ignore[index,union-attr]
        ("succeeded", "resolved by ops-tester: boxscores loaded by hand")
    ]
    assert phasectl("retry", "resolve", "feedbeefcafe", "--note", "x").returncode == 2
    commands = sorted(
        d.to_dict()["command"] for d in firestore_client(rig.cloud.project).collection("operator_audit").stream()
    )
    assert commands == ["backfill", "retry requeue", "retry resolve", "trigger", "trigger", "trigger"]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (
            ["trigger", "--transition", "phase9_to_phase10", "--date", "2026-01-24"],
            "unknown transition 'phase9_to_phase10'",
        ),
        (["reconcile", "--date", "2026-02-30"], "invalid game date '2026-02-30'"),
        (["status", "--date", "24/01/2026"], "invalid game date '24/01/2026'"),
        (
            ["backfill", "--from", "2026-01-24", "--to", "2026-01-20", "--transition", "phase2_to_phase3"],
            "range reversed",
        ),
        (
            ["mark-unavailable", "GSW~MIN", "--reason", "x"],
            "invalid game 'GSW~MIN': not a game id or a matchup; accepted: ",
        ),
        (
            ["retry", "requeue", "--date", "2026-01-24", "--processor", "nope", "--note", "x"],
            "unknown processor 'nope'",
        ),
        (["health", "--since", "soon"], "invalid --since 'soon'"),
        (
            [
                "backfill",
                "--from",
                "2026-01-20",
                "--to",
                "2026-01-24",
                "--transition",
                "phase2_to_phase3",
                "--mode",
                "all",
            ],
            "invalid choice: 'all'",
        ),
    ],
)
def test_bad_input_is_one_line_and_exit_2(offline_phasectl: Run, args: list[str], message: str) -> None:
    proc = offline_phasectl(*args)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("phasectl: error: ") and message in lines[0]
    assert proc.stdout == ""


def test_publish_completion_sends_an_upstream_shaped_message_the_transition_counts(rig: Rig, phasectl: Run) -> None:
    from deploy.local.topology import ensure_subscription, pull_now
    from shared.gcp import subscriber_client

    topic = rig.definition.phase(3).completion_topic
    sub = ensure_subscription(subscriber_client(), rig.cloud.project, topic, f"cap-{rig.suffix}")
    done = phasectl(
        "publish",
        "completion",
        "--processor",
        "PlayerGameSummaryProcessor",
        "--date",
        "2026-01-24",
        "--status",
        "success",
        "--records",
        "212",
    )
    assert done.returncode == 0, done.stderr
    assert f"(player_game_summary, phase 3) for 2026-01-24 to {topic}" in done.stdout
    (data,) = pull_now(subscriber_client(), sub)
    message = json.loads(data)
    assert message["phase"] == "phase_3_analytics" and message["processor_name"] == "PlayerGameSummaryProcessor"
    assert message["output_table"] == "player_game_summary" and message["record_count"] == 212
    assert message["trigger_source"] == "manual" and "published_by" in message["metadata"]
    outcome = rig.services["phase3_to_phase4"].handle_event(rig.event(data))
    assert outcome.kind == "waiting" and not outcome.unknown_processor
    state = rig.services["phase3_to_phase4"].state.load(GAME_DATE)
    assert [c.processor for c in state.completions] == ["player_game_summary"]
    bad = phasectl("publish", "completion", "--processor", "nobody", "--date", "2026-01-24", "--status", "success")
    assert bad.returncode == 2 and "unknown processor 'nobody'" in bad.stderr
