"""The dispatcher's pure decisions: slots in each job's zone (DST, ET/UTC/PT), season windows and
waves, operator overrides, templates resolved at the slot's instant, outcomes and backoff."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.pipeline.definition import HttpTarget, Job, PipelineDefinition, PubsubTarget, load_definition
from shared.schedules.plan import (
    Overrides,
    Slot,
    active_on,
    classify_status,
    due_slots,
    last_slot,
    next_slot,
    pause_reason,
    render,
    retry_delay,
    slot_on,
    slots_between,
    template_values,
)

NY = ZoneInfo("America/New_York")
D = load_definition()


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def ny(*args: int) -> datetime:
    return datetime(*args, tzinfo=NY).astimezone(UTC)  # type: ignore[misc]


def job(name: str, cron: str, zone: str | None = "America/New_York", **extra: Any) -> Job:
    target = extra.pop("pubsub", None) or PubsubTarget(topic="t-topic", body={"d": "${today}"})
    return Job(name=name, cron=cron, timezone=zone, pubsub=target, **extra)


def with_jobs(*jobs: Job) -> PipelineDefinition:
    return D.model_copy(update={"jobs": jobs, "sensors": ()})


def test_a_slot_id_names_the_job_and_the_utc_minute() -> None:
    slot = Slot("same-day-phase4", ny(2026, 1, 24, 11, 0), "America/New_York")
    assert slot.run_id == "same-day-phase4__20260124T1600Z"
    assert slot.day == date(2026, 1, 24)
    assert Slot("x", slot.at, slot.zone, manual=2).run_id == "x__20260124T1600Z-m2"


@pytest.mark.parametrize(
    ("zone", "local_hour", "utc_hour"),
    [("America/New_York", 11, 16), ("UTC", 11, 11), ("America/Los_Angeles", 11, 19)],
)
def test_each_job_fires_in_its_own_zone(zone: str, local_hour: int, utc_hour: int) -> None:
    d = with_jobs(job("j", f"0 {local_hour} * * *", zone))
    slots = slots_between(d, d.jobs[0], utc(2026, 1, 24, 0), utc(2026, 1, 25, 0))
    assert [s.at for s in slots] == [utc(2026, 1, 24, utc_hour)]
    assert slots[0].local.hour == local_hour


@pytest.mark.parametrize("day", [date(2026, 3, 8), date(2026, 11, 1)])
def test_every_et_job_of_the_definition_fires_once_on_a_dst_day_at_its_local_time(day: date) -> None:
    start = datetime.combine(day, datetime.min.time(), tzinfo=NY).astimezone(UTC)
    end = datetime.combine(day + timedelta(days=1), datetime.min.time(), tzinfo=NY).astimezone(UTC)
    for j in D.all_jobs():
        zone = D.job_zone(j)
        minute_field, hour_field, *_, weekday_field = j.cron.split()
        if zone.key != "America/New_York" or not (minute_field.isdigit() and hour_field.isdigit()):
            continue  # daily single-hour jobs (one minute, one hour): exactly one slot per day
        if weekday_field != "*":
            continue
        fires = [
            s
            for s in slots_between(
                D.model_copy(update={"seasons": ()}),
                j.model_copy(update={"window": "always"}),
                start - timedelta(seconds=1),
                end - timedelta(seconds=1),
            )
        ]
        minute, hour = int(j.cron.split()[0]), int(j.cron.split()[1])
        if day == date(2026, 3, 8) and hour == 2:
            assert fires == [], f"{j.name}: 02:xx does not exist on {day}"
            continue
        assert len(fires) == 1, f"{j.name} ({j.cron}) fired {len(fires)} times on {day}"
        local = fires[0].at.astimezone(NY)
        assert (local.date(), local.hour, local.minute) == (day, hour, minute), j.name


def test_fall_back_fires_a_repeated_wall_time_once_at_its_first_occurrence() -> None:
    d = with_jobs(job("late", "30 1 * * *"))
    slots = slots_between(d, d.jobs[0], ny(2026, 10, 31, 12), ny(2026, 11, 1, 12))
    assert [s.at for s in slots] == [utc(2026, 11, 1, 5, 30)]  # 01:30 EDT, not also 01:30 EST


def test_spring_forward_every_fifteen_minutes_has_no_2am_slots() -> None:
    d = with_jobs(job("q", "*/15 0-3 * * *"))
    slots = slots_between(d, d.jobs[0], ny(2026, 3, 7, 12), ny(2026, 3, 8, 12))
    hours = sorted({s.local.hour for s in slots})
    assert hours == [0, 1, 3] and len(slots) == 12


def test_due_slots_are_those_within_the_catch_up_window_oldest_first() -> None:
    d = with_jobs(job("a", "0 11 * * *"), job("b", "*/5 * * * *"))
    now = ny(2026, 1, 24, 11, 7)
    due = due_slots(d, now)
    window = timedelta(minutes=d.dispatcher.catch_up_minutes)
    assert all(now - window < s.at <= now for s in due)
    assert [s.job for s in due if s.job == "a"] == ["a"]
    assert due == sorted(due, key=lambda s: (s.at, s.job))
    assert not [s for s in due_slots(d, now + timedelta(hours=1)) if s.job == "a"]  # past the window: missed


def test_season_window_and_waves() -> None:
    d = with_jobs(
        job("b", "0 11 * * *", wave="B"), job("c", "0 11 * * *", wave="C"), job("always", "0 11 * * *", window="always")
    )
    opener = next(s for s in d.seasons if s.name == "2026-27").opener
    b, c, always = d.jobs
    assert active_on(d, b, opener - timedelta(days=7)) and not active_on(d, b, opener - timedelta(days=8))
    assert active_on(d, c, opener - timedelta(days=3)) and not active_on(d, c, opener - timedelta(days=4))
    assert active_on(d, always, date(2026, 8, 1)) and not active_on(d, b, date(2026, 8, 1))
    reason = pause_reason(d, b, date(2026, 8, 1))
    assert reason is not None and "resumes 2026-10-14" in reason and "wave B" in reason
    assert pause_reason(d, b, opener) is None


def test_operator_overrides_pause_and_resume_waves() -> None:
    d = with_jobs(job("b", "0 11 * * *", wave="B"), job("c", "0 11 * * *", wave="C"))
    b, c = d.jobs
    in_season = date(2026, 1, 24)
    paused = Overrides(paused=frozenset({"B"}))
    assert not active_on(d, b, in_season, paused) and active_on(d, c, in_season, paused)
    assert "paused by an operator" in (pause_reason(d, b, in_season, paused) or "")
    early = Overrides(resumed=frozenset({"C"}))
    assert active_on(d, c, date(2026, 8, 1), early) and not active_on(d, b, date(2026, 8, 1), early)
    assert not active_on(d, c, in_season, Overrides(paused=frozenset({"all"})))
    assert Overrides.from_doc({"paused": ["B"], "resumed": []}) == paused


def test_a_replaced_job_never_runs() -> None:
    d = with_jobs(job("r", "0 11 * * *", replaced_by="the phase 4->5 deadline tiers"))
    assert not active_on(d, d.jobs[0], date(2026, 1, 24))
    assert pause_reason(d, d.jobs[0], date(2026, 1, 24)) == "replaced by the phase 4->5 deadline tiers"


def test_next_and_last_slot_skip_paused_days() -> None:
    d = with_jobs(job("b", "0 11 * * *", wave="B"))
    nxt = next_slot(d, d.jobs[0], ny(2026, 8, 1, 0))
    assert nxt is not None and nxt.local.date() == date(2026, 10, 14) and nxt.local.hour == 11
    last = last_slot(d, d.jobs[0], ny(2026, 1, 24, 12), timedelta(hours=26))
    assert last is not None and last.at == ny(2026, 1, 24, 11)
    assert last_slot(d, d.jobs[0], ny(2026, 8, 1, 12), timedelta(hours=26)) is None


def test_slot_on_a_day_and_none_when_the_cron_skips_it() -> None:
    d = with_jobs(job("mon", "0 5 * * 1"))
    assert slot_on(d, d.jobs[0], date(2026, 1, 26)) == Slot("mon", ny(2026, 1, 26, 5), "America/New_York")
    assert slot_on(d, d.jobs[0], date(2026, 1, 24)) is None


@pytest.mark.parametrize(
    ("zone", "instant", "today", "night"),
    [
        ("America/New_York", ny(2026, 1, 24, 11, 0), "2026-01-24", "2026-01-23"),  # before noon: last night
        ("America/New_York", ny(2026, 1, 24, 22, 0), "2026-01-24", "2026-01-24"),
        ("America/Los_Angeles", utc(2026, 1, 25, 7, 30), "2026-01-24", "2026-01-24"),  # 23:30 PT, already 25th UTC
        ("UTC", utc(2026, 1, 25, 3, 0), "2026-01-25", "2026-01-24"),
    ],
)
def test_template_dates_are_resolved_in_the_job_zone_at_the_slot(
    zone: str, instant: datetime, today: str, night: str
) -> None:
    j = job("j", "* * * * *", zone, mode=None)
    values = template_values(Slot("j", instant, zone), j, None)
    assert values["today"] == today and values["game_night"] == night
    assert values["yesterday"] == (date.fromisoformat(today) - timedelta(days=1)).isoformat()
    assert values["tomorrow"] == (date.fromisoformat(today) + timedelta(days=1)).isoformat()


def test_render_fills_nested_templates_and_leaves_other_values() -> None:
    body = {"start_date": "${today}", "list": ["${yesterday}", 3, True], "n": {"k": "run ${mode}"}, "x": None}
    out = render(body, {"today": "2026-01-24", "yesterday": "2026-01-23", "mode": "RETRY"})
    assert out == {"start_date": "2026-01-24", "list": ["2026-01-23", 3, True], "n": {"k": "run RETRY"}, "x": None}


def test_no_job_body_in_the_definition_carries_a_literal_year_or_today() -> None:
    import json
    import re

    for j in D.all_jobs():
        body = json.dumps((j.http.body if j.http else j.pubsub.body if j.pubsub else None) or {})
        assert not re.search(r"\b20[0-9]{2}\b", body), j.name
        assert not re.search(r'"(TODAY|YESTERDAY|TOMORROW)"', body), j.name


@pytest.mark.parametrize(
    ("status", "verdict"),
    [
        (200, "succeeded"),
        (204, "succeeded"),
        (404, "config_error"),
        (400, "client_error"),
        (403, "client_error"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (503, "retry"),
    ],
)
def test_a_target_status_maps_to_a_verdict(status: int, verdict: str) -> None:
    assert classify_status(status) == verdict


def test_retry_delay_doubles_from_the_base() -> None:
    j = job("j", "* * * * *", retry_base_seconds=60)
    assert [retry_delay(j, n).total_seconds() for n in (1, 2, 3)] == [60, 120, 240]


def test_an_http_get_target_takes_a_query_not_a_body() -> None:
    with pytest.raises(ValueError, match="GET target sends no body"):
        HttpTarget(service="s", method="GET", body={"a": 1})
