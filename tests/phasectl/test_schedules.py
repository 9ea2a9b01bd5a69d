"""``phasectl schedules`` and ``phasectl season``: the pure parts (no backend).

The table (next fire time in ET with its offset and in the job's own zone, across a DST change;
sorting; last runs; pause reasons), the season report before, in and after a season, and the
override arithmetic, each with a fixed "now". Then, as the operator runs it: a job name that is
not in the definition is bad input (exit 2, close names listed) before any backend is touched.
"""

from __future__ import annotations

import io
import os
import socket
import subprocess
import sys
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from phasectl.commands.schedules import (
    JobLine,
    _check_slot,
    age_text,
    at_in_zone,
    at_text,
    find_job,
    job_lines,
    outcome_lines,
    render_table,
    retried_by_ticks,
    schedules_json,
)
from phasectl.commands.season import apply_override, change_lines, changes_today, season_report
from phasectl.core import Context, UsageError
from shared.clock import FixedClock
from shared.pipeline.definition import HttpTarget, Job, PipelineDefinition, PubsubTarget, Season, load_definition
from shared.schedules.plan import NO_OVERRIDES, Overrides, Slot

REPO = Path(__file__).resolve().parents[2]
PACKAGED = load_definition()
SEASONS = (
    Season(name="2025-26", opener="2025-10-21", regular_season_end="2026-04-12", playoffs_end="2026-06-21"),
    Season(name="2026-27", opener="2026-10-21", regular_season_end="2027-04-11", playoffs_end="2027-06-20"),
)
JOBS = (
    Job(
        name="ny-morning",
        cron="30 10 * * *",
        timezone="America/New_York",
        wave="B",
        http=HttpTarget(service="nba-phase3-analytics-processors", path="/process-date-range"),
    ),
    Job(
        name="la-late",
        cron="0 23 * * *",
        timezone="America/Los_Angeles",
        wave="C",
        pubsub=PubsubTarget(topic="la-topic", body={"day": "${today}"}),
    ),
    Job(
        name="utc-noon",
        cron="0 12 * * *",
        timezone="UTC",
        window="always",
        pubsub=PubsubTarget(topic="utc-topic", body={"day": "${today}"}),
    ),
    Job(
        name="regular-only",
        cron="0 9 * * *",
        wave="A",
        window="regular_season",
        http=HttpTarget(service="nba-phase3-analytics-processors", path="/x", method="GET"),
    ),
    Job(
        name="old-checker",
        cron="*/15 * * * *",
        replaced_by="the phase4_to_phase5 deadline tiers",
        http=HttpTarget(service="nba-phase3-analytics-processors", path="/check"),
    ),
)


def definition(jobs: tuple[Job, ...] = JOBS, seasons: tuple[Season, ...] = SEASONS) -> PipelineDefinition:
    return PACKAGED.model_copy(update={"jobs": jobs, "sensors": (), "seasons": seasons})


D = definition()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def lines_by_name(lines: list[JobLine]) -> dict[str, JobLine]:
    return {line.job.name: line for line in lines}


def row(table: str, name: str) -> str:
    return next(line for line in table.splitlines() if line.startswith(f"{name} "))


def cells(table: str, name: str) -> dict[str, str]:
    """A table row by header, the columns cut where the dash line under the headers puts them."""
    lines = table.splitlines()
    rule = next(i for i, line in enumerate(lines) if line.startswith("---"))
    starts = [i for i, ch in enumerate(lines[rule]) if ch == "-" and (i == 0 or lines[rule][i - 1] == " ")]
    bounds = list(zip(starts, [*starts[1:], None], strict=True))
    line = row(table, name)
    return {lines[rule - 1][a:b].strip(): line[a:b].strip() for a, b in bounds}


# -- the table ---------------------------------------------------------------------------------------
def test_next_fire_is_in_et_with_its_offset_and_in_the_jobs_own_zone() -> None:
    now = utc(2026, 1, 25, 15, 0)  # 10:00 EST
    lines = job_lines(D, now, {}, NO_OVERRIDES)
    by = lines_by_name(lines)
    assert by["la-late"].next_at == utc(2026, 1, 26, 7, 0)  # 23:00 PST
    assert by["utc-noon"].next_at == utc(2026, 1, 26, 12, 0)
    assert by["ny-morning"].next_at == utc(2026, 1, 25, 15, 30)
    table = render_table(lines, now, D, NO_OVERRIDES)
    next_columns = [(cells(table, n)["NEXT (ET)"], cells(table, n)["NEXT (JOB ZONE)"]) for n in ("la-late", "utc-noon")]
    assert next_columns == [
        ("2026-01-26 02:00 -05:00", "2026-01-25 23:00 PST"),
        ("2026-01-26 07:00 -05:00", "2026-01-26 12:00 UTC"),
    ]
    assert cells(table, "ny-morning")["NEXT (ET)"] == "2026-01-25 10:30 -05:00"
    assert cells(table, "ny-morning")["NEXT (JOB ZONE)"] == "same"
    assert (cells(table, "la-late")["ZONE"], cells(table, "la-late")["TARGET"]) == (
        "America/Los_Angeles",
        "pubsub la-topic",
    )
    assert cells(table, "ny-morning")["TARGET"] == "http nba-phase3-analytics-processors/process-date-range"


def test_the_et_offset_follows_daylight_saving_time() -> None:
    now = utc(2026, 3, 7, 15, 0)  # Saturday; New York springs forward at 2026-03-08 07:00Z
    by = lines_by_name(job_lines(D, now, {}, NO_OVERRIDES))
    la, noon = by["la-late"].next_at, by["utc-noon"].next_at
    assert la is not None and noon is not None
    assert (at_text(la, "America/New_York"), at_in_zone(la, "America/Los_Angeles")) == (
        "2026-03-08 03:00 -04:00",  # 07:00Z: the first instant of EDT
        "2026-03-07 23:00 PST",
    )
    assert at_text(noon, "America/New_York") == "2026-03-08 08:00 -04:00"  # 12:00Z: 07:00 the day before
    assert at_text(utc(2026, 3, 7, 12), "America/New_York") == "2026-03-07 07:00 -05:00"
    assert at_in_zone(utc(2026, 7, 1, 6), "America/Los_Angeles") == "2026-06-30 23:00 PDT"


def test_jobs_are_sorted_by_next_fire_and_those_that_will_not_fire_come_last() -> None:
    now = utc(2026, 1, 25, 15, 0)
    paused_b = Overrides(paused=frozenset({"B"}))
    names = [line.job.name for line in job_lines(D, now, {}, paused_b)]
    assert names == ["la-late", "utc-noon", "regular-only", "ny-morning", "old-checker"]
    by = lines_by_name(job_lines(D, now, {}, paused_b))
    assert by["ny-morning"].next_at is None and by["old-checker"].next_at is None
    assert by["regular-only"].next_at == utc(2026, 1, 26, 14, 0)


def test_why_a_job_does_not_run_today() -> None:
    in_season, playoffs, summer = utc(2026, 1, 25, 15), utc(2026, 5, 1, 15), utc(2026, 7, 1, 15)
    paused_b = Overrides(paused=frozenset({"B"}))
    by = lines_by_name(job_lines(D, in_season, {}, paused_b))
    assert by["ny-morning"].paused == "paused by an operator (phasectl season pause --wave B)"
    assert by["old-checker"].paused == "replaced by the phase4_to_phase5 deadline tiers"
    assert by["la-late"].paused is None and by["regular-only"].paused is None
    by = lines_by_name(job_lines(D, playoffs, {}, NO_OVERRIDES))
    assert by["regular-only"].paused == "off season: resumes 2026-10-07 (wave A, 2026-27 opener 2026-10-21)"
    assert by["ny-morning"].paused is None  # a season job runs through the playoffs
    by = lines_by_name(job_lines(D, summer, {}, NO_OVERRIDES))
    assert by["ny-morning"].paused == "off season: resumes 2026-10-14 (wave B, 2026-27 opener 2026-10-21)"
    assert by["ny-morning"].next_at == utc(2026, 10, 14, 14, 30)  # 10:30 EDT on its wave's first day
    assert by["utc-noon"].paused is None  # window "always"
    table = render_table(list(by.values()), summer, D, NO_OVERRIDES)
    old = cells(table, "old-checker")
    assert old["NOT RUNNING TODAY BECAUSE"] == "replaced by the phase4_to_phase5 deadline tiers"
    assert (old["NEXT (ET)"], old["LAST STATUS"], old["TARGET"]) == (
        "-",
        "never ran",
        "http nba-phase3-analytics-processors/check",
    )
    assert cells(table, "regular-only")["TARGET"] == "http nba-phase3-analytics-processors/x (GET)"
    resumed = Overrides(resumed=frozenset({"B"}))
    assert lines_by_name(job_lines(D, summer, {}, resumed))["ny-morning"].paused is None
    alone = definition(seasons=SEASONS[:1])
    by = lines_by_name(job_lines(alone, summer, {}, NO_OVERRIDES))
    assert by["la-late"].paused == "off season: no later season is defined ([[seasons]])"
    assert by["la-late"].next_at is None


def _summary(status: str, at: datetime, **extra: Any) -> dict[str, Any]:
    last = {"run_id": "r", "slot_at": utc(2026, 1, 25, 7, 0), "status": status, "attempts": 1, "at": at}
    return {"job": "la-late", "last": {**last, **extra}}


def test_the_last_run_columns_and_a_failed_run() -> None:
    now = utc(2026, 1, 25, 15, 0)
    ok = {"la-late": {**_summary("succeeded", now - timedelta(hours=3, minutes=5)), "last_success_at": now}}
    lines = job_lines(D, now, ok, NO_OVERRIDES)
    table = render_table(lines, now, D, NO_OVERRIDES)
    last = ("LAST SLOT (ET)", "LAST STATUS", "TRIES", "HTTP", "LAST RUN")
    assert [cells(table, "la-late")[k] for k in last] == [
        "2026-01-25 02:00 -05:00",
        "succeeded",
        "1",
        "-",
        "3 h 05 min ago",
    ]
    assert [cells(table, "utc-noon")[k] for k in last] == ["-", "never ran", "-", "-", "-"]
    assert not any(line.failed for line in lines) and "last run failed" not in table

    retry_at = utc(2026, 1, 25, 15, 2)
    waiting = {"la-late": _summary("retry_wait", now - timedelta(minutes=1), http_status=503, next_attempt_at=retry_at)}
    table = render_table(job_lines(D, now, waiting, NO_OVERRIDES), now, D, NO_OVERRIDES)
    assert [cells(table, "la-late")[k] for k in last[1:]] == ["retry_wait (next 10:02 ET)", "1", "503", "1 min ago"]

    failed = {"utc-noon": {**_summary("client_error", now - timedelta(days=2), http_status=403), "job": "utc-noon"}}
    lines = job_lines(D, now, failed, NO_OVERRIDES)
    assert [line.job.name for line in lines if line.failed] == ["utc-noon"]
    table = render_table(lines, now, D, NO_OVERRIDES)
    assert [cells(table, "utc-noon")[k] for k in last[1:]] == ["client_error", "1", "403", "2 d ago"]
    assert "last run failed: utc-noon" in table


def test_the_json_shape() -> None:
    now = utc(2026, 1, 25, 15, 0)
    summaries = {"la-late": _summary("succeeded", now - timedelta(minutes=30), http_status=None, duration_ms=12)}
    overrides = Overrides(paused=frozenset({"B"}))
    data = schedules_json(job_lines(D, now, summaries, overrides), now, D, overrides)
    assert (data["version"], data["command"], data["timezone"]) == (1, "schedules", "America/New_York")
    assert data["overrides"] == {"paused": ["B"], "resumed": []}
    la = next(j for j in data["jobs"] if j["name"] == "la-late")
    assert la["target"] == {"kind": "pubsub", "topic": "la-topic", "message": "json"}
    assert (la["zone"], la["wave"], la["cron"]) == ("America/Los_Angeles", "C", "0 23 * * *")
    assert (la["next_at"], la["next_local"], la["next_in_job_zone"]) == (
        "2026-01-26T07:00:00+00:00",
        "2026-01-26T02:00:00-05:00",
        "2026-01-25T23:00:00-08:00",
    )
    assert (la["last"]["status"], la["last"]["age_seconds"], la["last"]["duration_ms"]) == ("succeeded", 1800, 12)
    old = next(j for j in data["jobs"] if j["name"] == "old-checker")
    assert (old["replaced_by"], old["next_at"], old["last"]) == ("the phase4_to_phase5 deadline tiers", None, None)
    ny = next(j for j in data["jobs"] if j["name"] == "ny-morning")
    assert ny["target"] == {
        "kind": "http",
        "service": "nba-phase3-analytics-processors",
        "path": "/process-date-range",
        "method": "POST",
    }


def test_ages() -> None:
    assert [age_text(timedelta(seconds=s)) for s in (5, 60, 59 * 60, 3 * 3600 + 60, 47 * 3600, 3 * 86400)] == [
        "just now",
        "1 min ago",
        "59 min ago",
        "3 h 01 min ago",
        "47 h 00 min ago",
        "3 d ago",
    ]
    assert age_text(timedelta(minutes=-5)) == "in 5 min"


# -- schedules run: names and outcomes -------------------------------------------------------------
def test_an_unknown_job_names_the_close_ones() -> None:
    assert find_job(D, "la-late").timezone == "America/Los_Angeles"
    with pytest.raises(UsageError) as close:
        find_job(D, "la-lat")
    assert str(close.value) == "unknown job 'la-lat' (did you mean: la-late?); `phasectl schedules` lists every job"
    with pytest.raises(UsageError) as far:
        find_job(D, "zzz")
    assert "known: la-late, ny-morning, old-checker, regular-only, utc-noon" in str(far.value)


def test_a_day_without_a_slot_or_a_slot_not_fired_yet_is_bad_input() -> None:
    weekly = Job(name="weekly", cron="0 6 * * 0", pubsub=PubsubTarget(topic="weekly-topic", body={"d": "${today}"}))
    d = definition(jobs=(*JOBS, weekly))
    ctx = Context(d, FixedClock(utc(2026, 1, 25, 15, 0)), {}, io.StringIO(), io.StringIO())  # Sunday 10:00 ET
    _check_slot(ctx, d.job("weekly"), date(2026, 1, 25), force=False)  # fired at 06:00
    with pytest.raises(UsageError, match=r"job weekly \(0 6 \* \* 0, America/New_York\) has no slot on 2026-01-24"):
        _check_slot(ctx, d.job("weekly"), date(2026, 1, 24), force=False)
    with pytest.raises(UsageError) as later:
        _check_slot(ctx, d.job("ny-morning"), date(2026, 1, 25), force=False)  # 10:30 ET: not yet
    assert str(later.value).startswith(
        "the 2026-01-25 slot of ny-morning fires at 2026-01-25 10:30 -05:00, after now: run by hand now it would "
        "use up the scheduled run; add --force"
    )
    _check_slot(ctx, d.job("ny-morning"), date(2026, 1, 25), force=True)  # a generation of its own
    _check_slot(ctx, d.job("ny-morning"), None, force=False)  # the latest slot up to now: the dispatcher's choice


def test_what_a_run_by_hand_prints() -> None:
    job = D.job("ny-morning")
    hint = "phasectl schedules run ny-morning --date 2026-01-25 --force"
    done = {"status": "succeeded", "attempts": 1, "outcome": {"http_status": 200}}
    assert outcome_lines(
        job, "done", "succeeded after 1 attempt(s): HTTP 200, 9 ms", done, "America/New_York", hint
    ) == [
        "already ran: succeeded after 1 attempt(s): HTTP 200, 9 ms",
        f"  to run this slot again as a new generation: {hint}",
    ]
    waiting = {
        "status": "retry_wait",
        "attempts": 1,
        "next_attempt_at": utc(2026, 1, 25, 15, 32),
        "outcome": {"http_status": 503, "response": "upstream down", "error": "HTTP 503"},
    }
    assert outcome_lines(job, "retry_wait", "HTTP 503, 40 ms", waiting, "America/New_York", hint) == [
        "retry_wait (attempt 1/3): HTTP 503, 40 ms",
        "  response: upstream down",
        "  the dispatcher tries again at 2026-01-25 10:32 -05:00 (at most 3 attempts in all)",
    ]
    later = "its slot is not one the ticks run now: they look for such retries every 5 min"
    assert outcome_lines(job, "retry_wait", "HTTP 503, 40 ms", waiting, "America/New_York", hint, later)[-1] == (
        "  the dispatcher tries again a few minutes after 2026-01-25 10:32 -05:00 (its slot is not one the ticks "
        "run now: they look for such retries every 5 min; at most 3 attempts in all)"
    )
    config = {"status": "config_error", "attempts": 1, "outcome": {"error": "the URL of service 'x' is not known"}}
    assert outcome_lines(job, "config_error", "", config, "America/New_York", hint) == [
        "config_error (attempt 1/3): -",
        "  error: the URL of service 'x' is not known",
    ]


def test_which_retries_the_dispatchers_ticks_make() -> None:
    job = D.job("ny-morning")  # 10:30 ET, wave B
    slot = Slot("ny-morning", utc(2026, 1, 25, 15, 30), "America/New_York")
    later = "its slot is not one the ticks run now: they look for such retries every 5 min"
    assert retried_by_ticks(D, job, slot, slot.at + timedelta(minutes=1)) is None
    assert retried_by_ticks(D, job, slot, slot.at + timedelta(minutes=15)) == later
    forced = Slot("ny-morning", slot.at, slot.zone, manual=1)
    assert retried_by_ticks(D, job, forced, slot.at + timedelta(minutes=1)) == later
    summer = Slot("ny-morning", utc(2026, 7, 1, 14, 30), "America/New_York")
    assert retried_by_ticks(D, job, summer, summer.at + timedelta(minutes=1)) == later


def _wave(report: Any, key: str) -> Any:
    return next(w for w in report.waves if w.key == key)


def test_season_status_in_season() -> None:
    report = season_report(D, utc(2026, 1, 25, 15), {"paused": ["B"], "resumed": []})
    assert report.place == "in_season" and report.current == "2025-26"
    assert report.summary == (
        "in season 2025-26: regular season, day 97 (opened 2025-10-21; regular season ends 2026-04-12, "
        "playoffs end 2026-06-21)"
    )
    b = _wave(report, "B")
    assert (b.by_calendar, b.override, b.running, b.paused) == (True, "paused", (), ("ny-morning",))
    c = _wave(report, "C")
    assert (c.running, c.paused) == (("la-late",), ())
    assert _wave(report, "-").running == ("utc-noon",) and _wave(report, "A").running == ("regular-only",)
    text = report.render()
    assert "operator overrides: paused B; resumed none" in text
    assert "2025-26  2025-10-21  2026-04-12          2026-06-21    today is in it" in text
    assert "B     2025-10-14 (-7 d)    running          paused    1     0              1" in text
    assert "replaced, never dispatched: old-checker (by the phase4_to_phase5 deadline tiers)" in text
    playoffs = season_report(D, utc(2026, 5, 1, 15))
    assert playoffs.summary == (
        "in season 2025-26: playoffs (regular season ended 2026-04-12); playoffs end 2026-06-21, in 51 days"
    )
    assert _wave(playoffs, "A").paused == ("regular-only",)  # its window is the regular season


def test_season_status_pre_season_counts_the_days_and_names_the_waves_the_calendar_runs() -> None:
    report = season_report(D, utc(2026, 10, 16, 15))  # 5 days before the 2026-27 opener
    assert report.place == "pre_season" and report.current is None and report.reference == "2026-27"
    assert report.summary == (
        "pre-season: 2026-27 opens 2026-10-21, in 5 days; running by the calendar: wave A since 2026-10-07, "
        "B since 2026-10-14; C resumes 2026-10-18 (in 2 days)"
    )
    assert [(w.key, w.by_calendar, len(w.running)) for w in report.waves] == [
        ("A", True, 1),
        ("B", True, 1),
        ("C", False, 0),
        ("-", False, 1),  # utc-noon: window "always"
    ]
    assert "WAVE  RESUMES (2026-27)" in report.render()


def test_season_status_off_season() -> None:
    report = season_report(D, utc(2026, 7, 1, 15))
    assert report.place == "off_season"
    assert report.summary == (
        "off season since 2026-06-21: 2026-27 opens 2026-10-21, in 112 days; wave A resumes first, on 2026-10-07 "
        "(in 98 days)"
    )
    assert [w.running for w in report.waves] == [(), (), (), ("utc-noon",)]
    resumed = season_report(D, utc(2026, 7, 1, 15), {"paused": [], "resumed": ["C"]})
    assert _wave(resumed, "C").running == ("la-late",) and _wave(resumed, "C").override == "resumed"
    alone = season_report(definition(seasons=SEASONS[:1]), utc(2026, 8, 1, 15))
    assert alone.summary.startswith("off season since 2026-06-21: no later season is defined")
    assert all(w.resumes is None for w in alone.waves)
    data = alone.as_dict()
    assert (data["place"], data["current_season"], data["seasons"][0]["opener"]) == ("off_season", None, "2025-10-21")


# -- season pause / resume: the arithmetic ------------------------------------------------------------
def test_a_pause_removes_the_wave_from_resumed_and_a_resume_from_paused() -> None:
    assert apply_override(None, "pause", "B") == Overrides(frozenset({"B"}), frozenset())
    doc = {"paused": ["A"], "resumed": ["B", "C"]}
    assert apply_override(doc, "pause", "B") == Overrides(frozenset({"A", "B"}), frozenset({"C"}))
    assert apply_override(doc, "resume", "A") == Overrides(frozenset(), frozenset({"A", "B", "C"}))
    assert apply_override(doc, "pause", "all") == Overrides(frozenset({"A", "all"}), frozenset({"B", "C"}))
    assert apply_override({"paused": ["all"]}, "resume", "all") == Overrides(frozenset(), frozenset({"all"}))


def test_what_a_pause_or_resume_changes_today() -> None:
    now = utc(2026, 1, 25, 15)
    pause_b = apply_override(None, "pause", "B")
    assert changes_today(D, now, NO_OVERRIDES, pause_b) == (["ny-morning"], [])
    lines = change_lines(D, now, "pause", "B", NO_OVERRIDES, pause_b)
    assert lines[:3] == [
        "paused wave B: overrides now paused B; resumed none",
        "jobs it names (1): ny-morning",
        "today 1 job(s) stop: all of them",
    ]
    assert "`phasectl deploy verify` will show the overrides against the calendar (the jobs they pause or run)" in lines
    assert any(line.startswith("no redeploy needed") for line in lines)
    everything = apply_override(None, "pause", "all")
    assert changes_today(D, now, NO_OVERRIDES, everything) == (
        ["ny-morning", "la-late", "utc-noon", "regular-only"],
        [],
    )
    summer = utc(2026, 7, 1, 15)
    resume_c = apply_override(None, "resume", "C")
    assert changes_today(D, summer, NO_OVERRIDES, resume_c) == ([], ["la-late"])
    paused_c = Overrides(paused=frozenset({"C"}))
    lines = change_lines(D, now, "pause", "all", paused_c, everything)
    assert "today 3 job(s) stop: ny-morning, utc-noon, regular-only" in lines
    assert "today: no job changes" in " ".join(change_lines(D, summer, "pause", "B", NO_OVERRIDES, pause_b))
    stuck = change_lines(D, now, "resume", "B", everything, apply_override({"paused": ["all"]}, "resume", "B"))
    assert any("every job stays paused while `all` is paused" in line for line in stuck)
    partly = change_lines(D, now, "resume", "all", pause_b, apply_override({"paused": ["B"]}, "resume", "all"))
    assert any("wave(s) B stay paused" in line for line in partly)


# -- as the operator runs it -------------------------------------------------------------------------------
@pytest.fixture
def offline_env() -> dict[str, str]:
    """Every emulator variable points at a port nothing listens on."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    hosts = ("FIRESTORE_EMULATOR_HOST", "PUBSUB_EMULATOR_HOST", "BIGQUERY_EMULATOR_HOST")
    base = {k: v for k, v in os.environ.items() if k not in hosts and k not in ("PIPELINE_DEFINITION", "PHASECTL_NOW")}
    return {
        **base,
        "GOOGLE_CLOUD_PROJECT": "test",
        "FIRESTORE_EMULATOR_HOST": f"127.0.0.1:{port}",
        "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{port}",
        "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{port}",
    }


def _phasectl(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "phasectl", *args], cwd=REPO, env=env, capture_output=True, text=True, timeout=120
    )


def test_an_unknown_job_is_bad_input_before_any_backend_and_the_commands_check_theirs(
    offline_env: dict[str, str],
) -> None:
    unknown = _phasectl(offline_env, "schedules", "run", "same-day-phase")
    assert unknown.returncode == 2 and unknown.stdout == ""
    (line,) = unknown.stderr.splitlines()
    assert line.startswith("phasectl: error: unknown job 'same-day-phase' (did you mean: same-day-phase")
    assert "cannot reach" not in line
    bad_date = _phasectl(offline_env, "schedules", "run", "same-day-phase3", "--date", "25/01/2026")
    assert bad_date.returncode == 2 and "invalid game date '25/01/2026'" in bad_date.stderr
    for args in (("schedules",), ("schedules", "run", "same-day-phase3"), ("season", "status"), ("season", "pause")):
        proc = _phasectl(offline_env, *args)
        assert proc.returncode == 2, (args, proc.stdout, proc.stderr)
        (line,) = proc.stderr.splitlines()
        assert "cannot reach the Firestore emulator" in line, (args, line)
