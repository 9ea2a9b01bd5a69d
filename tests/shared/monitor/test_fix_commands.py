"""Every finding's fix command (issue 28) is a valid ``phasectl`` command line — unit tests, no emulator.

The kinds come from the code (``tests.test_docs.finding_kinds``: each ``Finding(...)`` call and the
definition's computed kinds), so a new kind without an entry in ``COMMANDS`` fails here. Each
produced command is split as a shell would and parsed by phasectl's own parser.
"""

from __future__ import annotations

import shlex
from datetime import UTC, date, datetime
from typing import Any

import pytest

from phasectl.core import UsageError
from phasectl.parser import build_parser
from shared.monitor.alerts import slack_text
from shared.monitor.findings import Finding, Severity
from shared.monitor.fix_commands import COMMANDS, fix_command
from shared.pipeline.definition import PipelineDefinition, load_definition
from tests.test_docs import finding_kinds

DAY = date(2026, 1, 24)
ENV: dict[str, str] = {}


@pytest.fixture(scope="module")
def definition() -> PipelineDefinition:
    return load_definition()


def _parse(command: str) -> Any:
    words = shlex.split(command)
    assert words[0] == "phasectl", command
    try:
        return build_parser(ENV).parse_args(words[1:])
    except (UsageError, SystemExit) as exc:  # phasectl's parser raises UsageError on bad input
        raise AssertionError(f"{command!r} is not a valid phasectl command: {exc}") from exc


# what the monitor puts in each kind's details (the shapes of shared/monitor/*.py and shared/heal)
DETAILS: dict[str, dict[str, Any]] = {
    "blocked": {"reason": "game_coverage: 3/7", "missing_games": ["20260124_GSW_MIN"]},
    "grading_gap": {"dates": ["2026-01-20", "2026-01-18"]},
    "grid_gap": {"dates": ["2026-01-10"]},
    "gap": {"dates": ["2026-01-20", "2026-01-21"], "exhausted": [], "not_backfillable": []},
    "retry_failed_permanent": {"rows": ["bdl_player_boxscores@2026-01-24"]},
    "retry_dispatch_failing": {"rows": ["bdl_player_boxscores@2026-01-24"]},
    "dead_letters": {"function": "phase3_to_phase4", "subscription": "phase3_to_phase4-dlq-sub"},
    "schedule_missed": {"job": "grading-daily-6am", "slot_at": "2026-01-25T11:00:00+00:00", "status": None},
    "schedule_failed": {"job": "same-day-phase3", "slot_at": "2026-01-24T15:30:00+00:00", "status": "failed"},
    "schedule_stale_target": {"job": "same-day-phase3", "slot_at": "2026-01-24T15:30:00+00:00"},
    "game_postponed": {"game_id": "20260124_GSW_MIN", "evidence": ["Postponed"], "new_date": None},
    "schedule_anomaly": {"game_id": "20260124_GSW_MIN", "rows": []},
    "self_heal_failed": {"status": "still_missing", "target": "predictions"},
    "quarantine_flood": {"function": "phase2_to_phase3"},
}


def _finding(kind: str, severity: Severity = "ERROR", **details: Any) -> Finding:
    return Finding(
        kind, severity, f"{kind} on {DAY}", "phase3_to_phase4", DAY, details or DETAILS.get(kind, {}), subject=None
    )


def test_every_kind_the_monitor_produces_has_a_command() -> None:
    kinds = finding_kinds()
    assert {"gate_alert", "game_postponed", "stuck", "retry_failed_permanent", "schedule_missed"} <= kinds
    missing = sorted(kinds - set(COMMANDS))
    assert not missing, f"finding kinds without a fix command in shared/monitor/fix_commands.py: {missing}"


@pytest.mark.parametrize("kind", sorted(finding_kinds() | set(COMMANDS) - {"slo_breach"}))
def test_each_kinds_command_parses_with_phasectls_parser(kind: str, definition: PipelineDefinition) -> None:
    for finding in (
        _finding(kind),  # with a date and transition
        Finding(kind, "ERROR", kind, details=DETAILS.get(kind, {})),  # without
    ):
        command = fix_command(finding, definition)
        args = _parse(command)
        assert args.command, command


def test_slo_breach_points_to_phasectl_slo() -> None:
    # the `slo` command arrives with its finding (another part of issue 28): parsed once it exists
    command = fix_command(Finding("slo_breach", "WARNING", "late", "phase5_to_phase6", DAY))
    assert command == "phasectl slo --date 2026-01-24"
    if "slo_breach" in finding_kinds():
        assert _parse(command).command == "slo"


@pytest.mark.parametrize(
    ("finding", "expected"),
    [
        (_finding("gate_alert", "WARNING"), "phasectl reconcile --date 2026-01-24"),
        (
            Finding("game_postponed", "WARNING", "m", "phase2_to_phase3", DAY, DETAILS["game_postponed"]),
            'phasectl games postpone 20260124_GSW_MIN --date 2026-01-24 --reason "…"',
        ),
        (_finding("handoff"), "phasectl trigger --transition phase3_to_phase4 --date 2026-01-24 --force"),
        (_finding("stuck", "WARNING"), "phasectl trigger --transition phase3_to_phase4 --date 2026-01-24"),
        (
            Finding("retry_failed_permanent", "ERROR", "m", details=DETAILS["retry_failed_permanent"]),
            'phasectl retry requeue --date 2026-01-24 --processor bdl_player_boxscores --note "…"',
        ),
        (
            Finding("retry_failed_permanent", "ERROR", "m", details={"rows": ["a@2026-01-24", "b@2026-01-23"]}),
            "phasectl retry list --status failed_permanent",
        ),
        (
            Finding("dead_letters", "ERROR", "m", details=DETAILS["dead_letters"], subject="phase3_to_phase4"),
            "phasectl dlq list --function phase3_to_phase4",
        ),
        (
            Finding("gap", "WARNING", "m", details={"dates": ["2026-01-20"]}),
            "phasectl gaps --date 2026-01-20 --enqueue",
        ),
        (Finding("gap", "WARNING", "m", details=DETAILS["gap"]), "phasectl gaps --enqueue"),
        (Finding("retry_heartbeat_stale", "ERROR", "m"), "phasectl health"),
        (_finding("blocked"), "phasectl reconcile --date 2026-01-24 --detailed"),
        (_finding("blocked", reason="ml_feature_store empty"), "phasectl status --date 2026-01-24"),
        (
            Finding("grading_gap", "ERROR", "m", "grading_readiness", None, DETAILS["grading_gap"]),
            "phasectl status --date 2026-01-18",
        ),
        (_finding("self_heal_failed", status="not_triggered"), "phasectl status --date 2026-01-24"),
        (Finding("silent", "ERROR", "m", "phase2_to_phase3", DAY), "phasectl dlq list --function phase2_to_phase3"),
        (Finding("some_new_kind", "ERROR", "m", None, DAY), "phasectl status --date 2026-01-24"),
        (Finding("some_new_kind", "ERROR", "m"), "phasectl health"),
    ],
)
def test_the_command_has_the_findings_date_transition_processor_game(finding: Finding, expected: str) -> None:
    assert fix_command(finding) == expected
    _parse(expected)


def test_a_schedule_slot_runs_on_its_day_in_the_jobs_zone(definition: PipelineDefinition) -> None:
    # 2026-01-25 03:30 UTC is 22:30 ET on the 24th: the slot's day in the job's (New York) zone
    job = next(j for j in definition.all_jobs() if (j.timezone or definition.pipeline.timezone) == "America/New_York")
    details = {"job": job.name, "slot_at": datetime(2026, 1, 25, 3, 30, tzinfo=UTC).isoformat()}
    missed = Finding("schedule_missed", "ERROR", "m", details=details, subject=job.name)
    assert fix_command(missed, definition) == f"phasectl schedules run {job.name} --date 2026-01-24"
    failed = Finding("schedule_failed", "ERROR", "m", details=details, subject=job.name)
    assert fix_command(failed, definition) == f"phasectl schedules run {job.name} --date 2026-01-24 --force"
    # without the definition (or an unknown job) the slot's day is not known: its latest slot
    assert fix_command(missed) == f"phasectl schedules run {job.name}"
    storm = Finding("schedule_missed", "ERROR", "m", details={"jobs": ["a", "b"], "missed": 2}, subject="tick")
    assert fix_command(storm, definition) == "phasectl schedules"


def test_odd_values_are_quoted_for_the_shell() -> None:
    finding = Finding("game_postponed", "WARNING", "m", "t", DAY, {"game_id": "x; rm -rf ~"})
    command = fix_command(finding)
    assert command == "phasectl games postpone 'x; rm -rf ~' --date 2026-01-24 --reason \"…\""
    assert shlex.split(command)[3] == "x; rm -rf ~"


def test_the_slack_text_has_the_fix_the_runbook_and_the_acknowledgement() -> None:
    finding = _finding("gate_alert", "WARNING")
    link = "docs/operations.md#gate_alert"
    command = "phasectl reconcile --date 2026-01-24"
    assert slack_text(finding, link, command) == (
        f"[WARNING] gate_alert on 2026-01-24\nFix: {command}\nRunbook: {link}"
    )
    acked = {"acked_by": "ana", "ack_note": "upstream re-run at 9"}
    assert slack_text(finding, link, command, acked).endswith("\nAcknowledged by ana: upstream re-run at 9")
    assert slack_text(finding, link, command, {"acked_by": "ana"}).endswith("\nAcknowledged by ana")


@pytest.mark.parametrize(
    "bad",
    ["phasectl trigger --transition phase3_to_phase4", "phasectl games postpone X", "phasectl nosuch", "phasectl slo"]
    if "slo_breach" not in finding_kinds()
    else ["phasectl trigger --transition phase3_to_phase4", "phasectl games postpone X", "phasectl nosuch"],
)
def test_the_parse_check_rejects_an_invalid_command(bad: str) -> None:
    with pytest.raises(AssertionError, match="not a valid phasectl command"):
        _parse(bad)
