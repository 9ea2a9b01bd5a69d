"""The demo's morning, pure: which slots it plays, which one answers 500 first, which one passes
unrun, and what ``check_morning`` calls a problem (no emulator)."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import pytest

from deploy.local.morning import (
    FAILING_PREFERENCE,
    MARGIN,
    MorningPlan,
    MorningResult,
    MorningSlot,
    check_morning,
    describe_slot,
    plan_morning,
    records_for,
    rendered_body,
)
from shared.clock import PIPELINE_TZ
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.schedules.plan import Slot

START = datetime(2026, 1, 25, 3, 40, tzinfo=PIPELINE_TZ)  # where the night ends
END = datetime(2026, 1, 25, 12, 5, tzinfo=PIPELINE_TZ)


@pytest.fixture(scope="module")
def definition() -> PipelineDefinition:
    return load_definition()


@pytest.fixture(scope="module")
def plan(definition: PipelineDefinition) -> MorningPlan:
    return plan_morning(definition, START, END)


def test_the_morning_plays_every_active_slot_in_order(definition: PipelineDefinition, plan: MorningPlan) -> None:
    assert plan.slots, "the definition has no job slot between 03:40 and 12:05 ET"
    assert list(plan.slots) == sorted(plan.slots, key=lambda s: (s.at, s.job))
    assert all(START < s.at <= END for s in plan.slots)
    assert {s.job for s in plan.slots} <= {j.name for j in definition.all_jobs()}


def test_one_same_day_http_job_answers_500_first(definition: PipelineDefinition, plan: MorningPlan) -> None:
    assert plan.failing is not None
    job = definition.job(plan.failing.job)
    assert job.http is not None
    present = [name for name in FAILING_PREFERENCE if any(s.job == name for s in plan.slots)]
    if present:
        assert plan.failing.job == present[0]
    assert plan.failing_body == rendered_body(definition, job, plan.failing)
    # its dates are the slot's, in the job's zone (no template variable left)
    assert "${" not in json.dumps(plan.failing_body)
    assert plan.failing.day.isoformat() in json.dumps(plan.failing_body)


def test_the_missed_slot_is_alone_in_the_paused_window(definition: PipelineDefinition, plan: MorningPlan) -> None:
    assert plan.missed is not None and plan.pause is not None
    catch_up = timedelta(minutes=definition.dispatcher.catch_up_minutes)
    begin, end = plan.pause
    assert begin < plan.missed.at and end > plan.missed.at + catch_up  # the slot leaves the catch-up window paused
    assert START < begin and end <= END
    # no other slot is lost with it: none due around the pause's start or too early in it to be caught
    # up; the ones due later in it (the half-hourly gap pass) run late, within their catch-up window
    assert not [s for s in plan.slots if s != plan.missed and begin - MARGIN <= s.at < end - catch_up + MARGIN]
    late = [s for s in plan.slots if s != plan.missed and begin <= s.at <= end]
    assert all(end - catch_up < s.at for s in late)
    assert plan.failing is not None and plan.failing.at + catch_up < begin  # its retries are over before
    assert not [s for s in plan.slots if s.job == plan.missed.job and s.at > plan.missed.at]  # nothing clears it
    assert plan.missed != plan.failing
    assert plan.missed.job in {j.name for j in definition.jobs}  # a [[jobs]] entry, not a sensor slot


def test_a_morning_without_http_jobs_or_room_says_so(definition: PipelineDefinition) -> None:
    empty = plan_morning(definition, END, END + timedelta(minutes=1))
    assert empty.slots == () and empty.failing is None and empty.missed is None
    problems = check_morning(MorningResult(plan=empty), definition)
    assert any("no HTTP job slot" in p for p in problems) and any("unrun" in p for p in problems)


def run_doc(definition: PipelineDefinition, slot: Slot, status: str, attempts: int, url: str) -> dict[str, object]:
    job = definition.job(slot.job)
    request: dict[str, object]
    if job.http is not None:
        body = rendered_body(definition, job, slot)
        request = {"kind": "http", "audience": url, "body": json.dumps(body), "url": url + job.http.path}
    else:
        request = {"kind": "pubsub", "topic": job.pubsub.topic if job.pubsub else "", "data": "{}"}
    return {"status": status, "attempts": attempts, "request": request, "outcome": {"http_status": 200}}


def record(definition: PipelineDefinition, slot: Slot, status: int, url: str, late: int = 0) -> dict[str, object]:
    job = definition.job(slot.job)
    assert job.http is not None
    return {
        "service": job.http.service,
        "method": job.http.method,
        "path": job.http.path,
        "query": {},
        "body": rendered_body(definition, job, slot),
        "aud": url,
        "status": status,
        "at": (slot.at + timedelta(minutes=late)).isoformat(),
    }


def good_result(definition: PipelineDefinition, plan: MorningPlan) -> MorningResult:
    url = "http://127.0.0.1:5000"
    slots = []
    for slot in plan.slots:
        job = definition.job(slot.job)
        if slot == plan.missed:
            slots.append(MorningSlot(slot, job, None))
            continue
        attempts = 2 if slot == plan.failing else 1
        records = []
        if job.http is not None:  # the failing slot: 500, then 200 a minute later
            records = [record(definition, slot, 500, url), record(definition, slot, 200, url, 1)][-attempts:]
        messages = 1 if job.pubsub is not None and job.pubsub.message == "trigger" else 0
        slots.append(MorningSlot(slot, job, run_doc(definition, slot, "succeeded", attempts, url), records, messages))
    assert plan.missed is not None
    findings = [{"key": f"schedule_missed__{plan.missed.job}", "kind": "schedule_missed"}]
    return MorningResult(plan=plan, slots=slots, findings=findings, monitor_checks_schedules=True)


def test_a_morning_as_promised_has_no_problem(definition: PipelineDefinition, plan: MorningPlan) -> None:
    assert check_morning(good_result(definition, plan), definition) == []


def test_a_duplicate_call_a_missing_retry_a_run_of_the_missed_slot_and_no_finding_are_problems(
    definition: PipelineDefinition, plan: MorningPlan
) -> None:
    result = good_result(definition, plan)
    assert plan.failing is not None and plan.missed is not None
    failing = next(i for i in result.slots if i.slot == plan.failing)
    failing.run = {**(failing.run or {}), "attempts": 1}
    other = next(i for i in result.slots if i.job.http is not None and i.slot != plan.failing)
    other.records = other.records * 2
    missed = next(i for i in result.slots if i.slot == plan.missed)
    missed.run = {"status": "succeeded", "attempts": 1}
    result.findings = []
    problems = check_morning(result, definition)
    assert any(plan.failing.job in p and "expected success on attempt 2" in p for p in problems)
    assert any(other.slot.job in p and "recorded answers [200, 200]" in p for p in problems)
    assert any(plan.missed.job in p and "should have passed unrun" in p for p in problems)
    assert any("did not report schedule_missed" in p for p in problems)
    result.monitor_checks_schedules = False  # a monitor without the check is not blamed for it
    assert not any("schedule_missed" in p for p in check_morning(result, definition))


def test_records_are_matched_to_their_slot_by_service_path_body_and_window(
    definition: PipelineDefinition, plan: MorningPlan
) -> None:
    assert plan.failing is not None
    url = "http://127.0.0.1:5000"
    job = definition.job(plan.failing.job)
    run = run_doc(definition, plan.failing, "succeeded", 2, url)
    mine = [record(definition, plan.failing, 500, url), record(definition, plan.failing, 200, url, 1)]
    later = record(definition, plan.failing, 200, url, 60)  # the same body an hour on: another slot's
    other_body = {**mine[0], "body": {"analysis_date": "1999-01-01"}}
    catch_up = timedelta(minutes=definition.dispatcher.catch_up_minutes)
    assert records_for(plan.failing, job, [*mine, later, other_body], run, catch_up) == mine
    lines = describe_slot(MorningSlot(plan.failing, job, run, mine))
    assert lines[0].startswith(f"{plan.failing.local:%H:%M} ET {job.name}: succeeded, attempt 2/{job.max_attempts}")
    assert len(lines) == 3 and "-> 500" in lines[1] and f"aud={url}" in lines[2]
