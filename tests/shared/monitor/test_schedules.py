"""The monitor's judgement of each scheduled job's latest slot, pure (``shared.monitor.schedules``):
``schedule_missed`` (no run past the job's grace), ``schedule_failed`` (``failed``,
``client_error``), ``schedule_stale_target`` (``config_error``); quiet off season, when the job's
wave is paused, within the grace, once a later slot or a hand-run succeeded; slots at the right
instant across the 2026 DST changes (New York: 2026-03-08 and 2026-11-01)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.monitor.findings import Finding
from shared.monitor.schedules import lookback_for, schedule_findings
from shared.pipeline.definition import HttpTarget, Job, PipelineDefinition, PubsubTarget, Season, load_definition
from shared.schedules.plan import Slot

NY = ZoneInfo("America/New_York")
ET = "America/New_York"
SEASONS = (
    Season(
        name="2025-26", opener=date(2025, 10, 21), regular_season_end=date(2026, 4, 12), playoffs_end=date(2026, 6, 21)
    ),
    Season(
        name="2026-27", opener=date(2026, 10, 21), regular_season_end=date(2027, 4, 11), playoffs_end=date(2027, 6, 20)
    ),
)


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)  # type: ignore[misc]


def job(name: str, cron: str, zone: str | None = ET, **extra: Any) -> Job:
    if "http" not in extra and "pubsub" not in extra:
        extra["pubsub"] = PubsubTarget(topic="t-topic", body={"d": "${today}"})
    return Job(name=name, cron=cron, timezone=zone, **extra)


RESULTS = job("results-5am", "0 5 * * *", wave="C")  # 05:00 ET every day of the season (wave C: opener - 3 d)
RUN_0230 = job("run-0230", "30 2 * * *")  # 02:30 ET: no such time on 2026-03-08
READINESS = job("readiness", "*/15 22-23,0-2 * * *")  # 01:00-01:45 ET twice on 2026-11-01
DECAY = job(
    "decay-16utc",
    "0 16 * * *",
    "UTC",
    http=HttpTarget(service="nba-phase4-precompute-processors", path="/decay"),
)


def with_jobs(*jobs: Job) -> PipelineDefinition:
    return load_definition().model_copy(update={"jobs": jobs, "sensors": (), "seasons": SEASONS})


def slot(j: Job, at: datetime) -> Slot:
    return Slot(j.name, at, j.timezone or ET)


def run_doc(s: Slot, status: str, **outcome: Any) -> dict[str, Any]:
    return {
        "job": s.job,
        "slot_at": s.at,
        "day": s.day.isoformat(),
        "status": status,
        "attempts": outcome.pop("attempts", 1),
        "lease_until": outcome.pop("lease_until", None),
        "next_attempt_at": outcome.pop("next_attempt_at", None),
        "outcome": {"verdict": status, "http_status": None, "duration_ms": 12, "response": "", "error": "", **outcome},
    }


def runs(*docs: tuple[Slot, dict[str, Any]]) -> dict[str, dict[str, Any]]:
    return {s.run_id: doc for s, doc in docs}


def ok(j: Job, at: datetime) -> tuple[Slot, dict[str, Any]]:
    s = slot(j, at)
    return s, run_doc(s, "succeeded", http_status=200)


def find(
    definition: PipelineDefinition, now: datetime, stored: dict[str, dict[str, Any]] | None = None, **kw: Any
) -> list[Finding]:
    overrides = kw.pop("overrides", None)
    return schedule_findings(definition, now, overrides, stored or {}, **kw)


def summary(found: list[Finding]) -> list[tuple[str, str, str]]:
    return [(f.kind, f.subject or "", f.details["run_id"]) for f in found]


# ----------------------------------------------------------------------------- missed


def test_a_slot_without_a_run_past_the_grace_is_missed_with_the_way_to_check_and_run_it() -> None:
    d = with_jobs(RESULTS)
    at = ny(2026, 1, 25, 5, 0)

    (f,) = find(d, at + timedelta(minutes=16), runs(ok(RESULTS, ny(2026, 1, 24, 5, 0))))

    assert (f.kind, f.severity, f.subject, f.key) == (
        "schedule_missed",
        "ERROR",
        "results-5am",
        "schedule_missed__results-5am",
    )
    assert f.details == {
        "job": "results-5am",
        "run_id": "results-5am__20260125T1000Z",
        "slot_at": at.isoformat(),
        "status": None,
    }
    assert f.message == (
        "results-5am (cron `0 5 * * *` in America/New_York): no run of its slot 2026-01-25 05:00 EST (the job's zone, "
        "America/New_York), 16 min ago: the schedule dispatcher did not run it: is its Cloud Scheduler tick job "
        "(`schedule-dispatcher-tick`) present and enabled? `phasectl deploy verify`; run it by hand: "
        "`phasectl schedules run results-5am --date 2026-01-25`"
    )


def test_every_job_is_judged_and_only_the_ones_without_a_run_are_missed() -> None:
    d = with_jobs(RESULTS, RUN_0230, DECAY)
    now = ny(2026, 1, 25, 12, 0)
    stored = runs(ok(RESULTS, ny(2026, 1, 25, 5, 0)))  # run-0230 (02:30 ET) and decay (16:00 UTC = 11:00 ET) not
    assert summary(find(d, now, stored)) == [
        ("schedule_missed", "run-0230", "run-0230__20260125T0730Z"),
        ("schedule_missed", "decay-16utc", "decay-16utc__20260125T1600Z"),
    ]


def test_a_job_in_another_zone_is_named_in_et_and_in_its_zone() -> None:
    (f,) = find(with_jobs(DECAY), utc(2026, 1, 25, 17, 0))
    assert "no run of its slot 2026-01-25 11:00 EST = 2026-01-25 16:00 UTC in the job's zone UTC, 1 h ago" in f.message
    assert f.message.startswith("decay-16utc (cron `0 16 * * *` in UTC): ")


def test_not_missed_within_the_jobs_grace() -> None:
    slow = job("slow", "0 5 * * *", missed_after_minutes=40)
    d = with_jobs(slow)
    at = ny(2026, 1, 25, 5, 0)
    yesterday = runs(ok(slow, ny(2026, 1, 24, 5, 0)))
    assert find(d, at + timedelta(minutes=39, seconds=59), yesterday) == []  # judged: yesterday's slot, succeeded
    assert summary(find(d, at + timedelta(minutes=40, seconds=1), yesterday)) == [
        ("schedule_missed", "slow", "slow__20260125T1000Z")
    ]


def test_a_daily_job_is_judged_by_its_latest_slot_past_the_grace() -> None:
    daily = job("daily", "0 5 * * *")
    d = with_jobs(daily)
    assert lookback_for(daily) == timedelta(hours=26)
    # 05:10 on the 25th: the 25th's slot is within its grace, so the 24th's is the one judged
    assert summary(find(d, ny(2026, 1, 25, 5, 10))) == [("schedule_missed", "daily", "daily__20260124T1000Z")]
    assert summary(find(d, ny(2026, 1, 25, 5, 16))) == [("schedule_missed", "daily", "daily__20260125T1000Z")]


def test_a_missed_weekly_job_stays_reported_until_its_next_slot() -> None:
    """weekly-retrain was dead for months: a weekly job's miss must not resolve itself after a day."""
    weekly = job("weekly", "0 5 * * 1")  # Mondays: 2026-01-26, 2026-02-02
    d = with_jobs(weekly)
    assert lookback_for(weekly) == timedelta(days=8)
    for now in (ny(2026, 1, 27, 7, 16), ny(2026, 1, 31, 12, 0), ny(2026, 2, 2, 5, 14)):
        assert summary(find(d, now)) == [("schedule_missed", "weekly", "weekly__20260126T1000Z")], now
    assert summary(find(d, ny(2026, 2, 2, 5, 16))) == [("schedule_missed", "weekly", "weekly__20260202T1000Z")]
    assert lookback_for(job("monthly", "0 5 1 * *")) == timedelta(days=32)
    assert lookback_for(job("daily", "*/3 16-23 * * *")) == timedelta(hours=26)


def test_a_dead_dispatcher_is_one_finding_naming_the_jobs_not_one_per_job() -> None:
    jobs = [job(f"job-{n}", f"{n} 5 * * *") for n in range(8)]
    d = with_jobs(*jobs)
    found = find(d, ny(2026, 1, 25, 6, 0), runs(ok(jobs[0], ny(2026, 1, 25, 5, 0))))
    assert [(f.kind, f.subject) for f in found] == [("schedule_missed", d.dispatcher.job)]
    assert found[0].details["jobs"] == [f"job-{n}" for n in range(1, 8)]
    assert "7 of 8 scheduled jobs missed" in found[0].message and d.dispatcher.job in found[0].message
    few = find(d, ny(2026, 1, 25, 6, 0), runs(*(ok(j, ny(2026, 1, 25, 5, n)) for n, j in enumerate(jobs[:4]))))
    assert sorted(f.subject for f in few) == [f"job-{n}" for n in range(4, 8)]  # half or fewer: one each


def test_not_missed_off_season_nor_before_the_waves_resume() -> None:
    d = with_jobs(RESULTS)
    assert find(d, ny(2026, 7, 15, 6, 0)) == []  # between the playoffs and the next opener
    assert find(d, ny(2026, 10, 17, 6, 0)) == []  # wave C resumes 3 days before the 2026-10-21 opener
    assert summary(find(d, ny(2026, 10, 18, 6, 0))) == [
        ("schedule_missed", "results-5am", "results-5am__20261018T0900Z")
    ]
    last_day = runs(ok(RESULTS, ny(2026, 6, 21, 5, 0)))  # the playoffs end 2026-06-21
    assert find(d, ny(2026, 6, 22, 5, 30), last_day) == []  # no slot the day after


@pytest.mark.parametrize(
    ("overrides", "missed"),
    [
        ({"paused": ["C"]}, False),
        ({"paused": ["all"]}, False),
        ({"paused": ["A", "B"]}, True),
        ({"paused": []}, True),
        (None, True),
    ],
)
def test_not_missed_when_the_jobs_wave_is_paused(overrides: dict[str, Any] | None, missed: bool) -> None:
    found = find(with_jobs(RESULTS), ny(2026, 1, 25, 6, 0), overrides=overrides)
    assert [f.kind for f in found] == (["schedule_missed"] if missed else [])


def test_a_wave_resumed_off_season_is_judged() -> None:
    d = with_jobs(RESULTS)
    now = ny(2026, 8, 1, 6, 0)
    assert find(d, now) == []
    assert summary(find(d, now, overrides={"resumed": ["C"]})) == [
        ("schedule_missed", "results-5am", "results-5am__20260801T0900Z")
    ]


def test_a_replaced_job_is_never_missed() -> None:
    old = job("old-cron", "0 5 * * *", replaced_by="the grading sensor")
    assert find(with_jobs(old), ny(2026, 1, 25, 6, 0)) == []


def test_a_slot_before_the_monitors_first_pass_is_not_missed() -> None:
    d = with_jobs(RESULTS)
    now = ny(2026, 1, 25, 6, 0)
    assert find(d, now, up_since=ny(2026, 1, 25, 5, 1)) == []  # deployed after the slot: nothing could run it
    assert len(find(d, now, up_since=ny(2026, 1, 25, 4, 59))) == 1


def test_a_run_the_dispatcher_left_between_attempts_is_missed_once_past_the_grace() -> None:
    d = with_jobs(RESULTS)
    s = slot(RESULTS, ny(2026, 1, 25, 5, 0))
    waiting = runs(
        (s, run_doc(s, "retry_wait", attempts=2, http_status=503, next_attempt_at=s.at + timedelta(minutes=3)))
    )
    assert find(d, s.at + timedelta(minutes=18), waiting) == []  # its retry is due within the grace
    (f,) = find(d, s.at + timedelta(minutes=19), waiting)
    assert (f.kind, f.details["status"], f.details["attempts"]) == ("schedule_missed", "retry_wait", 2)
    assert "is stuck `retry_wait` after 2/3 attempt(s): the schedule dispatcher did not finish it" in f.message
    lease = runs((s, run_doc(s, "running", lease_until=s.at + timedelta(minutes=5))))
    assert find(d, s.at + timedelta(minutes=20), lease) == []
    assert [f.kind for f in find(d, s.at + timedelta(minutes=21), lease)] == ["schedule_missed"]


# ----------------------------------------------------------------------------- ended runs


@pytest.mark.parametrize(
    ("status", "kind"),
    [
        ("failed", "schedule_failed"),
        ("client_error", "schedule_failed"),
        ("config_error", "schedule_stale_target"),
        ("succeeded", None),
        ("skipped", None),
    ],
)
def test_a_finished_run_maps_to_its_kind(status: str, kind: str | None) -> None:
    s = slot(RESULTS, ny(2026, 1, 25, 5, 0))
    stored = runs((s, run_doc(s, status, attempts=3, http_status=503, error="HTTP 503", response="upstream busy")))
    found = find(with_jobs(RESULTS), s.at + timedelta(hours=1), stored)
    assert [f.kind for f in found] == ([kind] if kind else [])
    assert all(f.severity == "ERROR" and f.subject == "results-5am" for f in found)


def test_failed_names_the_status_attempts_error_and_response() -> None:
    s = slot(RESULTS, ny(2026, 1, 25, 5, 0))
    answer = "<html>" + "busy " * 100 + "</html>"
    stored = runs((s, run_doc(s, "failed", attempts=3, http_status=503, error="HTTP 503", response=answer)))
    (f,) = find(with_jobs(RESULTS), s.at + timedelta(hours=2, minutes=5), stored)
    assert f.kind == "schedule_failed"
    assert f.message.startswith(
        "results-5am (cron `0 5 * * *` in America/New_York): its slot 2026-01-25 05:00 EST (the job's zone, "
        "America/New_York) (2 h 5 min ago) failed after 3/3 attempt(s) (retries used up): HTTP 503, response: "
        "<html>busy busy"
    )
    assert f.message.endswith(
        "…; fix the cause, then run it again: `phasectl schedules run results-5am --date 2026-01-25 --force`"
    )
    assert len(f.details["response"]) == 200 and f.details["response"].endswith("…")
    assert (f.details["status"], f.details["attempts"], f.details["http_status"]) == ("failed", 3, 503)


def test_a_failure_without_an_http_answer_names_its_error() -> None:
    s = slot(RESULTS, ny(2026, 1, 25, 5, 0))
    stored = runs((s, run_doc(s, "failed", attempts=3, error="timed out after 180 s")))
    (f,) = find(with_jobs(RESULTS), s.at + timedelta(hours=1), stored)
    assert "failed after 3/3 attempt(s) (retries used up): timed out after 180 s; fix the cause" in f.message


def test_client_error_says_it_was_not_retried() -> None:
    s = slot(DECAY, utc(2026, 1, 25, 16, 0))
    stored = runs((s, run_doc(s, "client_error", http_status=400, response='{"error": "bad date"}')))
    (f,) = find(with_jobs(DECAY), s.at + timedelta(minutes=30), stored)
    assert f.kind == "schedule_failed" and f.details["http_status"] == 400
    assert (
        'was refused (a client error, not retried) after 1 attempt(s): HTTP 400, response: {"error": "bad date"}'
        in (f.message)
    )


def test_stale_target_names_the_target_and_the_error() -> None:
    s = slot(DECAY, utc(2026, 1, 25, 16, 0))
    error = (
        "service nba-phase4-precompute-processors: no URL (set PRECOMPUTE_PROCESSOR_URL or GOOGLE_CLOUD_PROJECT_NUMBER)"
    )
    stored = runs((s, run_doc(s, "config_error", error=error)))
    (f,) = find(with_jobs(DECAY), s.at + timedelta(minutes=30), stored)
    assert f.kind == "schedule_stale_target" and f.key == "schedule_stale_target__decay-16utc"
    assert (
        f"has a stale target (POST nba-phase4-precompute-processors/decay): {error}; fix the job's target" in f.message
    )
    assert f.message.endswith("`phasectl schedules run decay-16utc --date 2026-01-25 --force`")
    pubsub = job("export", "0 5 * * *")
    p = slot(pubsub, ny(2026, 1, 25, 5, 0))
    (g,) = find(with_jobs(pubsub), p.at + timedelta(hours=1), runs((p, run_doc(p, "config_error", error="no topic"))))
    assert "has a stale target (Pub/Sub topic t-topic): no topic;" in g.message


# ----------------------------------------------------------------------------- only the latest slot counts


def test_a_later_success_clears_a_failure() -> None:
    d = with_jobs(RESULTS)
    day1 = slot(RESULTS, ny(2026, 1, 24, 5, 0))
    day2 = slot(RESULTS, ny(2026, 1, 25, 5, 0))
    failed = (day1, run_doc(day1, "failed", attempts=3, http_status=500))
    assert [f.details["run_id"] for f in find(d, ny(2026, 1, 24, 23, 0), runs(failed))] == [day1.run_id]
    assert [f.kind for f in find(d, day2.at + timedelta(minutes=5), runs(failed))] == [
        "schedule_failed"
    ]  # day 2 in its grace
    assert find(d, day2.at + timedelta(minutes=5), runs(failed, ok(RESULTS, day2.at))) == []  # day 2 done: it counts
    assert find(d, day2.at + timedelta(hours=3), runs(failed, ok(RESULTS, day2.at))) == []
    # a newer slot still under way does not hide the failure
    running = (day2, run_doc(day2, "running", lease_until=day2.at + timedelta(minutes=5)))
    assert [f.kind for f in find(d, day2.at + timedelta(minutes=5), runs(failed, running))] == ["schedule_failed"]


def test_a_later_failure_after_a_success_is_reported() -> None:
    d = with_jobs(RESULTS)
    day2 = slot(RESULTS, ny(2026, 1, 25, 5, 0))
    stored = runs(
        ok(RESULTS, ny(2026, 1, 24, 5, 0)), (day2, run_doc(day2, "config_error", error="HTTP 404", http_status=404))
    )
    assert summary(find(d, day2.at + timedelta(minutes=2), stored)) == [
        ("schedule_stale_target", "results-5am", day2.run_id)
    ]


def test_a_successful_hand_run_of_the_slot_or_a_later_one_clears_it() -> None:
    d = with_jobs(RESULTS)
    s = slot(RESULTS, ny(2026, 1, 25, 5, 0))
    stored = runs((s, run_doc(s, "failed", attempts=3, http_status=502)))
    now = s.at + timedelta(hours=4)

    def last(status: str, at: datetime) -> dict[str, dict[str, Any]]:
        return {
            "results-5am": {"last": {"run_id": f"results-5am__{at:%Y%m%dT%H%MZ}-m1", "slot_at": at, "status": status}}
        }

    assert find(d, now, stored, summaries=last("succeeded", s.at)) == []
    assert len(find(d, now, stored, summaries=last("failed", s.at))) == 1
    assert len(find(d, now, stored, summaries=last("succeeded", s.at - timedelta(days=1)))) == 1  # an older slot
    assert find(d, now, {}, summaries=last("succeeded", s.at)) == []  # missed, then run by hand with --force


def test_the_fingerprint_stays_for_a_slot_and_changes_with_the_next() -> None:
    """The alerts deduplicate on the fingerprint: one alert per slot, not one per pass."""
    d = with_jobs(RESULTS)
    (first,) = find(d, ny(2026, 1, 25, 5, 20))
    (later,) = find(d, ny(2026, 1, 25, 9, 0))
    (next_day,) = find(d, ny(2026, 1, 26, 5, 20))
    assert first.message != later.message and first.fingerprint == later.fingerprint
    assert next_day.key == first.key and next_day.fingerprint != first.fingerprint


# ----------------------------------------------------------------------------- DST


def test_spring_forward_2026_03_08_the_5am_slot_is_0900_utc() -> None:
    d = with_jobs(RESULTS)
    before = runs(ok(RESULTS, utc(2026, 3, 7, 10, 0)))  # 2026-03-07 05:00 EST
    assert find(d, utc(2026, 3, 8, 9, 14), before) == []  # 05:14 EDT: within the grace
    (f,) = find(d, utc(2026, 3, 8, 9, 16), before)  # a fixed EST offset would expect it at 10:00 UTC
    assert f.details["run_id"] == "results-5am__20260308T0900Z"
    assert "its slot 2026-03-08 05:00 EDT (the job's zone, America/New_York), 16 min ago" in f.message
    assert find(d, utc(2026, 3, 8, 9, 16), runs(ok(RESULTS, utc(2026, 3, 8, 9, 0)))) == []


def test_spring_forward_2026_03_08_a_0230_job_has_no_slot_that_day() -> None:
    d = with_jobs(RUN_0230)
    saturday = runs(ok(RUN_0230, utc(2026, 3, 7, 7, 30)))  # 2026-03-07 02:30 EST
    assert find(d, utc(2026, 3, 8, 12, 0), saturday) == []  # 02:30 did not exist on 2026-03-08: nothing missed
    (f,) = find(d, utc(2026, 3, 9, 6, 46), saturday)  # 2026-03-09 02:30 EDT = 06:30 UTC, 16 min later
    assert f.details["run_id"] == "run-0230__20260309T0630Z"


def test_fall_back_2026_11_01_the_5am_slot_is_1000_utc() -> None:
    d = with_jobs(RESULTS)
    before = runs(ok(RESULTS, utc(2026, 10, 31, 9, 0)))  # 2026-10-31 05:00 EDT
    assert find(d, utc(2026, 11, 1, 9, 16), before) == []  # 04:16 EST: the slot has not fired
    assert find(d, utc(2026, 11, 1, 10, 14), before) == []
    (f,) = find(d, utc(2026, 11, 1, 10, 16), before)
    assert f.details["run_id"] == "results-5am__20261101T1000Z"
    assert "its slot 2026-11-01 05:00 EST (the job's zone, America/New_York), 16 min ago" in f.message


def test_fall_back_2026_11_01_a_repeated_hour_fires_once() -> None:
    d = with_jobs(READINESS)
    first_145 = runs(ok(READINESS, utc(2026, 11, 1, 5, 45)))  # 01:45 EDT; 01:00-01:45 EST do not fire again
    assert find(d, utc(2026, 11, 1, 6, 50), first_145) == []  # 01:50 EST: no 01:00/01:15/01:30 EST slot missed
    (f,) = find(d, utc(2026, 11, 1, 7, 16), first_145)  # 02:00 EST = 07:00 UTC is the next slot
    assert f.details["run_id"] == "readiness__20261101T0700Z"
