"""Pure report building for ``phasectl status`` / ``reconcile`` and the CLI's pure helpers (no emulator)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pytest

from phasectl import (
    BACKFILL_MODES,
    UsageError,
    classify,
    cli_clock,
    main,
    parse_since,
    read_local_errors,
)
from phasectl.report import (
    Heartbeat,
    StatusReport,
    build_reconcile,
    coverage_status,
    format_table,
    phase_line,
)
from phasectl.timefmt import TimeView
from shared.clock import FixedClock, SystemClock
from shared.game_ids import ScheduleEntry
from shared.orchestration.engine import CompletionRecord
from shared.orchestration.gate_queries import CoverageInputs
from shared.orchestration.state import DateState
from shared.pipeline.definition import load_definition

DAY = date(2026, 1, 24)
NOW = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)
SEVEN = [
    ("0022500644", "GSW", "MIN"),
    ("0022500645", "BOS", "NYK"),
    ("0022500646", "LAL", "DEN"),
    ("0022500647", "MIA", "CHI"),
    ("0022500648", "PHX", "DAL"),
    ("0022500649", "SAC", "LAC"),
    ("0022500650", "TOR", "ATL"),
]
BDL = ("0022500645", "22500646", "0022500647", "0022500649", "0022500999")  # 8-digit id; one unknown id
ESPN = ("20260124_PHX_DAL", "20260124_TOR_ATL", "20260124_BOS_NYK")


def _inputs(
    unavailable: tuple[str, ...] = (), bdl: tuple[str, ...] = BDL, espn: tuple[str, ...] = ESPN
) -> CoverageInputs:
    schedule = tuple(ScheduleEntry(nba, DAY, away, home, "3") for nba, away, home in SEVEN)
    return CoverageInputs(schedule, {"bdl": bdl, "espn": espn, "gamebook": ()}, unavailable)


@pytest.fixture(scope="module")
def definition():  # type: ignore[no-untyped-def]
    return load_definition()


@pytest.mark.parametrize(
    ("covered", "considered", "status"),
    [(0, 0, "ok"), (7, 7, "ok"), (19, 20, "ok"), (18, 20, "warning"), (6, 7, "warning"), (4, 5, "warning"),
     (3, 4, "error"), (0, 7, "error")],
)  # fmt: skip
def test_coverage_status_thresholds(covered: int, considered: int, status: str) -> None:
    assert coverage_status(covered, considered)[0] == status


def test_the_2026_01_24_night_is_6_of_7_with_gsw_at_min_named(definition) -> None:  # type: ignore[no-untyped-def]
    report = build_reconcile(definition, DAY, _inputs())
    assert (report.considered, report.covered, report.status, report.exit_code) == (7, 6, "warning", 1)
    assert [g.game_id for g in report.missing] == ["20260124_GSW_MIN"]
    assert "missing 20260124_GSW_MIN (GSW@MIN, 0022500644)" in report.summary
    assert report.summary.startswith("6/7 Final games covered (85.7 %)")
    games = {g.game_id: g for g in report.games}
    assert games["20260124_LAL_DEN"].covered_by == "bdl"  # "22500646" normalised
    assert games["20260124_BOS_NYK"].sources == ("bdl", "espn")
    assert games["20260124_BOS_NYK"].covered_by == "bdl"  # first source of the chain wins
    assert games["20260124_PHX_DAL"].covered_by == "espn"  # the fallback
    sources = {s.name: s for s in report.sources}
    assert (sources["bdl"].games, sources["espn"].games, sources["gamebook"].games) == (4, 3, 0)
    assert sources["bdl"].unmatched_ids == ("0022500999",)


def test_a_game_marked_unavailable_is_excluded_and_named(definition) -> None:  # type: ignore[no-untyped-def]
    report = build_reconcile(definition, DAY, _inputs(unavailable=("0022500644",)))
    assert (report.considered, report.covered, report.status, report.exit_code) == (6, 6, "ok", 0)
    assert report.missing == ()
    assert [g.game_id for g in report.excluded] == ["20260124_GSW_MIN"]
    assert "6/6 Final games covered" in report.summary
    assert "1 game(s) excluded as unavailable: 20260124_GSW_MIN (GSW@MIN)" in report.summary
    # either id format marks it
    same = build_reconcile(definition, DAY, _inputs(unavailable=("20260124_GSW_MIN",)))
    assert same.summary == report.summary


def test_coverage_below_80_percent_is_an_error(definition) -> None:  # type: ignore[no-untyped-def]
    report = build_reconcile(definition, DAY, _inputs(bdl=("0022500645",), espn=("20260124_TOR_ATL",)))
    assert (report.covered, report.status, report.exit_code) == (2, "error", 2)
    assert len(report.missing) == 5


def test_detail_and_json_are_stable(definition) -> None:  # type: ignore[no-untyped-def]
    report = build_reconcile(definition, DAY, _inputs())
    short, detailed = report.render(), report.render(detailed=True)
    assert "20260124_SAC_LAC" not in short and "20260124_SAC_LAC" in detailed
    assert "fallback chain bdl → espn → gamebook" in short
    plain = report.as_dict()
    assert "games" not in plain and len(report.as_dict(detailed=True)["games"]) == 7
    keys = "command coverage execution_log game_date phases retry_queue sources status summary version"
    assert sorted(plain) == keys.split()
    assert plain["coverage"]["pct"] == 85.7
    json.dumps(report.as_dict(detailed=True))  # serialisable as is


def _record(name: str, at: datetime, status: str = "success") -> CompletionRecord:
    return CompletionRecord(name, name, status, f"exec-{name}", at)


def _state(transition: str, completions: tuple[CompletionRecord, ...] = (), **doc: object) -> DateState:
    return DateState(
        transition=transition,
        game_date=DAY,
        generation=int(doc.get("generation", 1)),  # type: ignore[call-overload]
        status=str(doc.get("status", "waiting")),
        triggered=dict(doc.get("triggered", {})),  # type: ignore[call-overload]
        claim=None,
        missing_games=tuple(doc.get("missing_games", ())),  # type: ignore[call-overload]
        last_gate=doc.get("last_gate"),  # type: ignore[arg-type]
        completions=completions,
    )


def test_phase_line_uses_the_engine_explanation(definition) -> None:  # type: ignore[no-untyped-def]
    t = definition.transition("phase4_to_phase5")
    first = NOW - timedelta(minutes=60)
    done = tuple(_record(n, first) for n in ("ml_feature_store", "player_daily_cache", "player_composite_factors"))
    line = phase_line(definition, t, _state(t.name, done), FixedClock(NOW))
    assert line.decision == "wait"
    assert "deadline tier 2 in 60 min" in line.reason
    assert line.missing == ("team_defense_zone_analysis", "player_shot_zone_analysis")
    assert line.first_completion_at == first
    later = phase_line(definition, t, _state(t.name, done), FixedClock(NOW + timedelta(minutes=61)))
    assert later.decision == "ready" and "deadline tier 2" in later.reason


def test_phase_line_of_triggered_and_blocked_dates(definition) -> None:  # type: ignore[no-untyped-def]
    t = definition.transition("phase2_to_phase3")
    trig = {"1": {"trigger_id": "phase2_to_phase3:2026-01-24:g1", "at": NOW, "status": "partial", "reason": "r"}}
    line = phase_line(definition, t, _state(t.name, status="triggered", triggered=trig), FixedClock(NOW))
    assert (line.decision, line.trigger_id, line.trigger_status, line.reason) == (
        "triggered",
        "phase2_to_phase3:2026-01-24:g1",
        "partial",
        "r",
    )
    gate = {"game_coverage": {"verdict": "blocked", "reason": "circuit breaker: 4/7 games"}}
    blocked = phase_line(definition, t, _state(t.name, status="blocked", last_gate=gate), FixedClock(NOW))
    assert blocked.decision == "blocked" and "circuit breaker: 4/7 games" in blocked.reason
    # the monitor re-checking the blocked date holds a claim meanwhile: the date is still blocked, not "ready"
    done = tuple(_record(n, NOW) for n in t.expected)
    rechecking = phase_line(definition, t, _state(t.name, done, status="claimed", last_gate=gate), FixedClock(NOW))
    assert rechecking.decision == "blocked"
    passed = {"game_coverage": {"verdict": "pass", "reason": "7/7"}}
    claimed = phase_line(definition, t, _state(t.name, done, status="claimed", last_gate=passed), FixedClock(NOW))
    assert claimed.decision == "ready"
    # a new generation after a trigger is not triggered any more
    reopened = phase_line(definition, t, _state(t.name, generation=2, triggered=trig), FixedClock(NOW))
    assert reopened.decision == "wait" and reopened.trigger_id is None


def test_status_report_exit_code_and_heartbeats(definition) -> None:  # type: ignore[no-untyped-def]
    t = definition.transition("phase3_to_phase4")
    line = phase_line(definition, t, _state(t.name), FixedClock(NOW))
    fresh = (Heartbeat("monitor", NOW - timedelta(minutes=3), 30), Heartbeat("auto-retry", NOW, 45))
    ok = StatusReport(DAY, NOW, (line,), fresh)
    assert ok.exit_code == 0
    assert "monitor last ran 3 min ago" in ok.render()
    assert "[mode overnight]" in ok.render()
    stale = StatusReport(DAY, NOW, (line,), (Heartbeat("monitor", NOW - timedelta(minutes=31), 30),))
    assert stale.exit_code == 1 and "STALE" in stale.render()
    never = StatusReport(DAY, NOW, (line,), (Heartbeat("auto-retry", None, 45),))
    assert never.exit_code == 1 and "auto-retry has never run" in never.render()
    assert ok.as_dict()["transitions"][0]["mode"] == "overnight"


def test_format_table_aligns_columns() -> None:
    assert format_table(("A", "LONGER"), [("xyz", 1), ("q", None)]).splitlines() == [
        "A    LONGER",
        "---  ------",
        "xyz  1",
        "q",
    ]


# -- pure helpers of the CLI ---------------------------------------------------------------------
def test_parse_since() -> None:
    assert parse_since("90m") == timedelta(minutes=90)
    assert parse_since("1h") == timedelta(hours=1)
    assert parse_since("2d") == timedelta(days=2)
    for bad in ("", "0h", "1w", "h1", "-1h"):
        with pytest.raises(UsageError):
            parse_since(bad)


def test_phasectl_now_override() -> None:
    clock = cli_clock({"PHASECTL_NOW": "2026-01-25T15:00:00Z"})
    assert clock.now() == NOW
    assert isinstance(cli_clock({}), SystemClock)
    for bad in ("tomorrow", "2026-01-25T15:00:00"):
        with pytest.raises(UsageError):
            cli_clock({"PHASECTL_NOW": bad})


def test_backfill_modes_are_cumulative_like_airflow() -> None:
    assert BACKFILL_MODES["none"] == ("none",)
    assert BACKFILL_MODES["failed"] == ("none", "failed")
    assert BACKFILL_MODES["completed"] == ("none", "failed", "completed")
    trig = {"1": {"trigger_id": "x"}}
    assert classify(_state("t", status="triggered", triggered=trig)) == "completed"
    assert classify(_state("t", status="blocked")) == "failed"
    assert classify(_state("t", status="publish_failed")) == "failed"
    assert classify(_state("t", generation=2, triggered=trig)) == "none"  # reopened, not yet re-triggered


def test_read_local_errors(tmp_path: Path) -> None:
    lines = [
        {"severity": "ERROR", "message": "old", "time": "2026-01-25T13:00:00Z"},
        {"severity": "CRITICAL", "message": "new", "time": "2026-01-25T14:40:00Z"},
        {"severity": "WARNING", "message": "meh", "time": "2026-01-25T14:45:00Z"},
        {"severity": "ERROR", "message": "newest", "time": "2026-01-25T14:50:00+00:00"},
    ]
    (tmp_path / "function-f1.log").write_text("\n".join([*map(json.dumps, lines), "not json {", "{broken"]))
    out = {e.function: e for e in read_local_errors(tmp_path, ["f1", "f2"], NOW - timedelta(hours=1))}
    assert (out["f1"].count, out["f1"].last_message) == (2, "newest")
    assert out["f2"].count == 0


def test_main_rejects_bad_input_before_touching_a_backend() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(["trigger", "--transition", "nope", "--date", "2026-01-24"], environ={}, out=out, err=err)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().startswith("phasectl: error: unknown transition 'nope'")
    assert err.getvalue().count("\n") == 1


# -- sensors and scheduled triggers in status ------------------------------------------------------


def test_a_sensor_date_shows_its_not_ready_reasons_then_its_trigger(definition) -> None:  # type: ignore[no-untyped-def]
    from phasectl.report import timed_line

    sensor = definition.timed_trigger("grading_readiness")
    fresh = timed_line(sensor, _state(sensor.name))
    assert (fresh.decision, fresh.reason) == ("wait", "not evaluated yet")
    gates = {
        "all_final": {"verdict": "blocked", "reason": "5/7 games Final"},
        "rows_present:predictions": {"verdict": "pass", "reason": "412 predictions"},
        "not_done:graded rows": {"verdict": "pass", "reason": "not done yet (no graded rows)"},
    }
    waiting = timed_line(sensor, _state(sensor.name, last_gate=gates))
    assert (waiting.decision, waiting.reason) == ("wait", "5/7 games Final")
    assert waiting.completed == ("rows_present:predictions", "not_done:graded rows")
    assert waiting.missing == ("all_final",)
    done = {**gates, "all_final": {"verdict": "pass", "reason": "7/7 games Final"}}
    trig = {
        "1": {
            "trigger_id": "grading_readiness:2026-01-24:g1",
            "at": NOW,
            "status": "complete",
            "slot": "readiness",
            "reason": "7/7 games Final; 412 predictions",
        }
    }
    line = timed_line(sensor, _state(sensor.name, status="triggered", triggered=trig, last_gate=done))
    assert line.decision == "triggered" and line.trigger_id == "grading_readiness:2026-01-24:g1"
    assert line.reason == "triggered by slot readiness: 7/7 games Final; 412 predictions"
    assert line.trigger_status == "complete"


def test_a_scheduled_trigger_date_shows_the_slots_fired(definition) -> None:  # type: ignore[no-untyped-def]
    from phasectl.report import timed_line
    from tests.support.definition_checks import exports_trigger

    exports = exports_trigger()
    trig = {
        "1-daily_results": {
            "trigger_id": "phase6_exports:2026-01-24:g1:daily_results",
            "at": NOW,
            "status": "scheduled",
            "slot": "daily_results",
            "reason": "scheduled run",
        }
    }
    line = timed_line(exports, _state(exports.name, status="triggered", triggered=trig))
    assert line.expected == ("daily_results", "tonight_picks", "clv_reexport")
    assert line.completed == ("daily_results",)
    assert (line.decision, line.reason) == ("triggered", "slots fired: daily_results")
    assert line.trigger_id == "phase6_exports:2026-01-24:g1:daily_results"


def test_a_heartbeat_that_never_ran_is_healthy_only_until_it_is_expected() -> None:
    """A fresh deploy or `local up`: auto-retry has not run yet; UNHEALTHY only once it is due."""
    from datetime import UTC, datetime, timedelta

    from phasectl.report import Heartbeat

    now = datetime(2026, 1, 25, 6, 0, tzinfo=UTC)
    pending = Heartbeat("auto-retry", None, 60, expected_by=now + timedelta(minutes=20))
    assert pending.healthy(now) and "has not run yet (expected by 2026-01-25 06:20 UTC)" in pending.describe(now)
    et = TimeView.of("America/New_York")
    assert "has not run yet (expected by 2026-01-25 01:20 ET)" in pending.describe(now, et)
    assert not pending.healthy(now + timedelta(minutes=21))
    assert pending.describe(now + timedelta(minutes=21)) == "auto-retry has never run"
    assert not Heartbeat("auto-retry", None, 60).healthy(now)  # no evidence the system is up: unhealthy
