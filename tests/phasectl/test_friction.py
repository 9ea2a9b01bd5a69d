"""Issue 28, the CLI frictions an operator met at night: each test would have caught one (no emulator).

Times in ET with the offset (``--utc`` switches), the trigger's kind in STATE, the snapshot at the
trigger labelled apart from "now", a gate recorded at the trigger said to be so (and what a game
mark after it asks for), retry times against "now", health degraded by active findings, a typo'd
command answered with a suggestion, ``already_triggered`` naming ``--force``, the breaker's line
said the right way round, and a game accepted in every form phasectl prints it in.
"""

from __future__ import annotations

import io
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from phasectl.app import main
from phasectl.commands.health import EXIT_DEGRADED, finding_counts, verdict
from phasectl.commands.retry import next_retry_text
from phasectl.commands.trigger import already_triggered_text
from phasectl.core import Context, _date
from phasectl.game_ref import ACCEPTED_FORMS, parse_game_ref
from phasectl.parser import build_parser
from phasectl.report import MARKS_FIELD, Heartbeat, PhaseLine, StatusReport, phase_line, state_label
from phasectl.status_html import ActiveFinding
from phasectl.timefmt import TimeView
from shared.clock import FixedClock
from shared.game_ids import DateTeamsGameId, NbaGameId, ScheduleEntry
from shared.orchestration.gate_queries import CoverageInputs
from shared.orchestration.gates import coverage_verdict
from shared.orchestration.state import DateState
from shared.pipeline.definition import GameCoverageGate, load_definition
from shared.retry.queue import QueueRow

ET = TimeView.of("America/New_York")
UTC_VIEW = TimeView.of("America/New_York", utc=True)
NIGHT = date(2026, 1, 24)
AT_TRIGGER = datetime(2026, 1, 25, 6, 12, tzinfo=UTC)  # 01:12 ET
P23 = "phase2_to_phase3"


@pytest.fixture(scope="module")
def definition() -> Any:
    return load_definition()


def _ctx(definition: Any, now: datetime, *, utc: bool = False) -> Context:
    return Context(definition, FixedClock(now), {}, io.StringIO(), io.StringIO(), utc=utc)


def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    code = main(list(argv), environ={"GOOGLE_CLOUD_PROJECT": "friction-test"}, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def _line(**overrides: Any) -> PhaseLine:
    base: dict[str, Any] = {
        "transition": P23,
        "status": "triggered",
        "generation": 1,
        "mode": None,
        "expected": ("bdl_player_boxscores", "odds_api_player_points_props"),
        "completed": ("bdl_player_boxscores", "odds_api_player_points_props"),
        "missing": (),
        "not_counted": (),
        "unknown": (),
        "decision": "triggered",
        "reason": "deadline: missing odds_api_player_points_props",
        "trigger_id": f"{P23}:2026-01-24:g1",
        "triggered_at": AT_TRIGGER,
        "trigger_status": "partial",
        "gates": {"game_coverage": {"verdict": "alert", "reason": "6/7 Final games covered; missing 20260124_GSW_MIN"}},
    }
    base.update(overrides)
    return PhaseLine(**base)


def _state(**doc: Any) -> DateState:
    trig = {"1": {"trigger_id": f"{P23}:2026-01-24:g1", "at": AT_TRIGGER, "status": "partial", "reason": "r"}}
    return DateState(
        transition=P23,
        game_date=NIGHT,
        generation=int(doc.get("generation", 1)),
        status="triggered",
        triggered=trig,
        claim=None,
        missing_games=(),
        last_gate={"game_coverage": {"verdict": "alert", "reason": "6/7"}},
        raw=dict(doc.get("raw", {})),
    )


# -- 1. one time zone -------------------------------------------------------------------------------
def test_yesterday_resolves_in_new_york_and_the_status_header_shows_that_night_in_et(definition: Any) -> None:
    """22:00 ET on the 24th is 03:00Z on the 25th: YESTERDAY is the 23rd (New York), and the header says
    22:00 ET on the 24th, not "now 2026-01-25 03:00Z" two days after the date shown."""
    now = datetime(2026, 1, 25, 3, 0, tzinfo=UTC)
    ctx = _ctx(definition, now)
    day = _date(ctx, "yesterday")
    assert day == date(2026, 1, 23)
    header = StatusReport(day, now, (), (), ctx.times).render().splitlines()[0]
    assert header == "phasectl status — game date 2026-01-23 (now 2026-01-24 22:00 ET, UTC\N{MINUS SIGN}05:00)"
    utc = StatusReport(day, now, (), (), _ctx(definition, now, utc=True).times).render().splitlines()[0]
    assert utc == "phasectl status — game date 2026-01-23 (now 2026-01-25 03:00 UTC)"


def test_status_triggered_at_and_heartbeat_times_are_in_et_without_a_z() -> None:
    expected_by = AT_TRIGGER + timedelta(minutes=20)
    report = StatusReport(NIGHT, AT_TRIGGER, (_line(),), (Heartbeat("auto-retry", None, 60, expected_by),), ET)
    text = report.render()
    assert "2026-01-25 01:12 ET" in text  # TRIGGERED AT
    assert "auto-retry has not run yet (expected by 2026-01-25 01:32 ET)" in text
    assert "Z)" not in text and ":00Z" not in text
    assert "2026-01-25 06:12 UTC" in StatusReport(NIGHT, AT_TRIGGER, (_line(),), (), UTC_VIEW).render()


def test_reconcile_last_log_row_time_is_in_et(definition: Any) -> None:
    from phasectl.report import build_reconcile

    report = build_reconcile(
        definition,
        NIGHT,
        CoverageInputs((), {"bdl": (), "espn": (), "gamebook": ()}, ()),
        phases=[_line()],
        log_rows=[{"phase_name": P23, "status": "complete", "execution_timestamp": AT_TRIGGER}],
    )
    assert "complete at 2026-01-25 01:12:00 ET" in report.render(times=ET)
    assert "complete at 2026-01-25 06:12:00 UTC" in report.render(times=UTC_VIEW)


# -- 2. the trigger's kind ---------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("trigger_status", "shown"),
    [("partial", "partial"), ("complete", "complete"), ("deadline_exceeded", "deadline"), ("fallback", "deadline")],
)
def test_status_state_column_shows_the_kind_of_trigger(trigger_status: str, shown: str) -> None:
    line = _line(trigger_status=trigger_status)
    assert state_label(line) == shown
    table = StatusReport(NIGHT, AT_TRIGGER, (line,), (), ET).render().splitlines()[4]
    assert table.split()[3] == shown, table
    assert state_label(_line(decision="wait", trigger_status=None)) == "wait"


# -- 3. the snapshot at the trigger, labelled --------------------------------------------------------
def test_the_reason_recorded_at_the_trigger_is_labelled_apart_from_what_is_recorded_now() -> None:
    text = StatusReport(NIGHT, AT_TRIGGER, (_line(),), (), ET).render()
    assert "  at trigger (01:12 ET, partial): deadline: missing odds_api_player_points_props" in text
    assert "  now:       completed bdl_player_boxscores, odds_api_player_points_props" in text
    assert "             missing -" in text
    assert "why:" not in text  # a waiting date keeps "why:"
    waiting = _line(decision="wait", triggered_at=None, trigger_id=None, reason="waiting for bdl")
    assert "  why:       waiting for bdl" in StatusReport(NIGHT, AT_TRIGGER, (waiting,), (), ET).render()


# -- 4. the gate recorded at the trigger, and a mark after it ------------------------------------------
def test_a_triggered_dates_gate_is_said_to_be_the_triggers_and_a_later_mark_says_what_to_run(definition: Any) -> None:
    transition = definition.transition(P23)
    plain = phase_line(definition, transition, _state(), FixedClock(AT_TRIGGER))
    text = StatusReport(NIGHT, AT_TRIGGER, (plain,), (), ET).render()
    assert "gate (recorded at trigger) game_coverage: ALERT" in text
    assert "games marked since the trigger: none recorded by phasectl" in text

    later = AT_TRIGGER + timedelta(minutes=30)
    note = {"generation": 1, "at": later, "games": ["20260124_GSW_MIN"], "rerun": True, "verdict": "6/6"}
    marked = phase_line(definition, transition, _state(raw={MARKS_FIELD: note}), FixedClock(later))
    text = StatusReport(NIGHT, later, (marked,), (), ET).render()
    assert (
        "games marked since the trigger (01:42 ET: 20260124_GSW_MIN): the verdict changed; "
        f"run `phasectl trigger --transition {P23} --date 2026-01-24 --force`" in text
    )
    same = phase_line(definition, transition, _state(raw={MARKS_FIELD: {**note, "rerun": False}}), FixedClock(later))
    assert "the same games count; nothing needs re-running" in StatusReport(NIGHT, later, (same,), (), ET).render()
    # a forced re-trigger started generation 2: the note of generation 1 no longer applies
    stale = phase_line(definition, transition, _state(generation=2, raw={MARKS_FIELD: note}), FixedClock(later))
    assert stale.marks_after_trigger is None
    assert marked.as_dict()["marks_after_trigger"]["at"] == later.isoformat()


# -- 5. retry times against now ----------------------------------------------------------------------
def _row(**overrides: Any) -> QueueRow:
    base: dict[str, Any] = {
        "id": "3f2a9c1d0000",
        "game_date": NIGHT,
        "phase": 2,
        "processor_name": "bdl_player_boxscores",
        "correlation_id": None,
        "error_message": "missing games",
        "error_type": "missing_games",
        "retry_count": 1,
        "max_retries": 3,
        "first_failure_at": AT_TRIGGER,
        "last_retry_at": None,
        "next_retry_at": datetime(2026, 1, 25, 6, 31, tzinfo=UTC),  # 01:31 ET
        "status": "pending",
        "resolution_notes": None,
        "fallback_for": None,
        "game_ids": ("20260124_GSW_MIN",),
        "created_at": AT_TRIGGER,
        "updated_at": AT_TRIGGER,
    }
    base.update(overrides)
    return QueueRow(**base)


def test_a_retry_time_in_the_past_is_overdue_not_a_next_try() -> None:
    at_0136 = datetime(2026, 1, 25, 6, 36, tzinfo=UTC)
    assert next_retry_text(_row(), at_0136, ET) == "overdue by 5 min (due 01:31 ET)"
    assert next_retry_text(_row(), datetime(2026, 1, 25, 6, 31, 30, tzinfo=UTC), ET) == "due now"
    assert next_retry_text(_row(), datetime(2026, 1, 25, 6, 20, tzinfo=UTC), ET) == "01:31 ET"
    assert next_retry_text(_row(), datetime(2026, 1, 25, 6, 20, tzinfo=UTC), UTC_VIEW) == "06:31 UTC"
    assert next_retry_text(_row(status="succeeded"), at_0136, ET) == "-"


def test_a_pending_row_whose_budget_is_spent_says_it_will_not_be_tried_again() -> None:
    spent = _row(retry_count=3)
    text = next_retry_text(spent, datetime(2026, 1, 25, 6, 20, tzinfo=UTC), ET, "espn_boxscores")
    assert text.startswith("retries spent (3/3): no further try; failed_permanent at 01:31 ET")
    assert "espn_boxscores queued as fallback" in text and "phasectl retry requeue" in text
    assert "next" not in text


# -- 7. health degraded -------------------------------------------------------------------------------
def test_health_with_active_error_or_warning_findings_is_degraded_with_its_own_exit_code() -> None:
    findings = [
        ActiveFinding("a", "stuck_transition", "ERROR", "stuck"),
        ActiveFinding("b", "retry_backlog", "WARNING", "backlog"),
        ActiveFinding("c", "retry_backlog", "WARNING", "backlog 2"),
        ActiveFinding("d", "info", "INFO", "fyi"),
    ]
    counts = finding_counts(findings)
    assert counts == {"ERROR": 1, "WARNING": 2}
    assert verdict(False, counts) == ("degraded", EXIT_DEGRADED) == ("degraded", 3)
    assert verdict(True, counts) == ("unhealthy", 1)  # errors or stale heartbeats stay unhealthy
    assert verdict(False, finding_counts(findings[3:])) == ("healthy", 0)


def test_the_exit_codes_in_the_top_level_help_include_degraded() -> None:
    text = " ".join(build_parser({}).format_help().split())
    assert "2 bad input or an error" in text and "3 degraded" in text


# -- 8. a typo'd command ---------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("argv", "meant"),
    [(("stauts",), "status"), (("retry", "lsit"), "list"), (("games", "postpne"), "postpone"), (("hleath",), "health")],
)
def test_a_mistyped_command_or_subcommand_gets_a_did_you_mean(argv: tuple[str, ...], meant: str) -> None:
    code, out, err = _run(*argv)
    assert code == 2 and out == ""
    assert f"invalid choice: '{argv[-1]}' — did you mean '{meant}'?" in err
    assert len(err.strip().splitlines()) == 1


def test_an_unrelated_word_gets_no_suggestion() -> None:
    code, _, err = _run("zzzz")
    assert code == 2 and "invalid choice: 'zzzz'" in err and "did you mean" not in err


# -- 9. already triggered names --force --------------------------------------------------------------------
def test_already_triggered_says_when_and_how_to_start_the_next_generation(definition: Any) -> None:
    text = already_triggered_text(_ctx(definition, AT_TRIGGER), P23, NIGHT, _state())
    assert text == (
        "generation 1 already triggered at 01:12 ET (partial); "
        f"`phasectl trigger --transition {P23} --date 2026-01-24 --force` starts generation 2"
    )


# -- 10. the breaker's line ---------------------------------------------------------------------------------
def test_the_circuit_breaker_says_the_share_with_data_issues_is_above_its_line(definition: Any) -> None:
    teams = [("GSW", "MIN"), ("BOS", "NYK"), ("LAL", "DEN"), ("MIA", "CHI"), ("PHX", "DAL"), ("SAC", "LAC")]
    teams.append(("TOR", "ATL"))
    schedule = tuple(ScheduleEntry(f"00225006{40 + i}", NIGHT, a, h, "3") for i, (a, h) in enumerate(teams))
    covered = tuple(e.nba_game_id for e in schedule[:3])
    inputs = CoverageInputs(schedule, {"bdl": covered, "espn": (), "gamebook": ()}, ())
    gate = GameCoverageGate(kind="game_coverage_pct", block_below=50)
    result = coverage_verdict("game_coverage", gate, definition.games, inputs)
    assert result.verdict == "blocked"
    assert "4/7 games (57%) have data issues (above the block line 50%: coverage 42.9% < 50%)" in result.reason
    assert "below the block line" not in result.reason


# -- 6. game ids in every printed form ------------------------------------------------------------------------
@pytest.mark.parametrize(
    "raw",
    [
        "0022500644",
        "22500644",
        " 0022500644 ",
        "20260124_GSW_MIN",
        "20260124_gsw_min",
        "20260124_GSW_MIN (GSW@MIN, 0022500644) on 2026-01-24",  # mark-unavailable's label, pasted
    ],
)
def test_a_game_id_is_accepted_in_every_printed_form(raw: str) -> None:
    ref = parse_game_ref(raw)
    assert ref.game_id in (NbaGameId.parse("0022500644"), DateTeamsGameId(NIGHT, "GSW", "MIN"))


@pytest.mark.parametrize(
    "raw", ["GSW@MIN", "gsw@min", "GSW @ MIN", " gsw  @min ", "GSW\N{EN DASH}MIN", "GSW-MIN", "GSW at MIN"]
)
def test_a_matchup_is_accepted_in_every_printed_form(raw: str) -> None:
    ref = parse_game_ref(raw)
    assert ref.teams == ("GSW", "MIN") and ref.on(NIGHT) == DateTeamsGameId(NIGHT, "GSW", "MIN")


@pytest.mark.parametrize("raw", ["GSW", "GSW@GSW", "XXX@MIN", "2026124_GSW_MIN", "0012"])
def test_a_wrong_game_is_one_line_listing_the_accepted_forms(raw: str) -> None:
    code, out, err = _run("mark-unavailable", raw, "--date", "2026-01-24", "--reason", "r")
    assert code == 2 and out == ""
    assert err.startswith(f"phasectl: error: invalid game {raw!r}") and ACCEPTED_FORMS in err
    assert len(err.strip().splitlines()) == 1
    code, _, err = _run("games", "postpone", raw, "--date", "2026-01-24", "--reason", "r")
    assert code == 2 and ACCEPTED_FORMS in err


def test_schedules_keep_their_columns_and_follow_utc() -> None:
    from phasectl.commands.schedules import job_lines, render_table
    from shared.schedules.plan import NO_OVERRIDES
    from tests.phasectl.test_schedules import D, cells

    now = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)  # 10:00 ET
    lines = job_lines(D, now, {}, NO_OVERRIDES)
    table = render_table(lines, now, D, NO_OVERRIDES, TimeView.of(D.pipeline.timezone, utc=True))
    assert cells(table, "ny-morning")["NEXT (UTC)"] == "2026-01-25 15:30 +00:00"
    assert cells(table, "ny-morning")["NEXT (JOB ZONE)"] == "2026-01-25 10:30 EST"
    assert cells(table, "utc-noon")["NEXT (JOB ZONE)"] == "same"
    assert "job(s), now 2026-01-25 15:00 +00:00 (UTC);" in table.splitlines()[0]
    et = render_table(lines, now, D, NO_OVERRIDES, TimeView.of(D.pipeline.timezone))
    assert cells(et, "ny-morning")["NEXT (ET)"] == "2026-01-25 10:30 -05:00"


def test_season_status_says_when_the_last_change_was_made_in_the_shown_zone(definition: Any) -> None:
    from phasectl.commands.season import season_report

    doc = {"last_change": "pause A", "updated_by": "ops", "updated_at": AT_TRIGGER, "paused": ["A"]}
    report = season_report(definition, AT_TRIGGER, doc)
    assert "by ops at 2026-01-25 01:12 ET" in report.render(ET)
    assert "by ops at 2026-01-25 06:12 UTC" in report.render(UTC_VIEW)


def test_a_closed_pipe_is_not_an_error() -> None:
    """`phasectl next | head -2` printed "phasectl: error: BrokenPipeError: [Errno 32] Broken pipe"."""
    import subprocess
    import sys

    proc = subprocess.Popen(
        [sys.executable, "-m", "phasectl", "lineage"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stderr is not None
    proc.stdout.close()  # the reader is gone before phasectl writes a line
    err = proc.stderr.read()
    assert proc.wait(timeout=60) == 0, err
    assert err == ""


def test_health_counts_a_function_failure_not_the_monitors_alert(tmp_path: Path) -> None:
    """The monitor logs each finding's alert at ERROR with an `alert` label: `health` said UNHEALTHY
    for a night whose only "error" was the monitor reporting a finding (that is `degraded`)."""
    import json as _json

    from phasectl.commands.health import read_local_errors

    since = datetime(2026, 1, 25, 7, 0, tzinfo=UTC)
    lines = [
        {
            "severity": "ERROR",
            "time": "2026-01-25T07:30:03Z",
            "message": "7 Final game(s) but no completion",
            "logging.googleapis.com/labels": {"alert": "silent", "alert_key": "k"},
        },
        {"severity": "ERROR", "time": "2026-01-25T07:31:00Z", "message": "publish failed"},
    ]
    (tmp_path / "function-phase_transition_monitor.log").write_text("\n".join(_json.dumps(x) for x in lines) + "\n")
    (entry,) = read_local_errors(tmp_path, ["phase_transition_monitor"], since)
    assert (entry.count, entry.last_message) == (1, "publish failed")
