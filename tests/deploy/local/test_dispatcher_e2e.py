"""The schedule dispatcher end to end on the local cloud: its bundle behind its push subscription, fed
by the scheduler emulation's one-minute tick, on a simulated clock (10:05 to 11:06 New York time on
2026-01-25, x120), calling the services' HTTP stand-ins with unsigned local ID tokens.

Each job slot runs once: a same-day HTTP job with its body's dates resolved in New York at the slot's
time and its token naming the service; a phase 6 Pub/Sub job (one message on
nba-phase6-export-trigger); a sensor slot (one TriggerTick on the sensor's tick topic); and a job
whose target answers 500 first is retried by the dispatcher and succeeds on attempt 2, with the same
body. Everything is read back from the stand-ins, the topics, Firestore and BigQuery.
"""

from __future__ import annotations

import itertools
import json
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy.local.morning import rendered_body
from deploy.local.stack import LocalStack
from deploy.local.standins import ServiceStandin
from shared.clock import PIPELINE_TZ
from shared.contracts.messages import TimedTriggerMessage, TriggerTick
from shared.pipeline.definition import Job, PipelineDefinition, load_definition
from shared.schedules.plan import TERMINAL, Slot, slots_between

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 25, 10, 5, tzinfo=PIPELINE_TZ)
END = datetime(2026, 1, 25, 11, 6, tzinfo=PIPELINE_TZ)
ACCELERATE = 120.0
SETTLE = 40.0  # real seconds for the functions to start: the clock reads 10:05 then, the scheduler starts
HTTP_JOB, FAILING_JOB = "same-day-phase3", "same-day-phase4"  # 10:30 and 11:00 ET


def only_slot(definition: PipelineDefinition, job: Job) -> Slot:
    (slot,) = slots_between(definition, job, START.astimezone(UTC), END.astimezone(UTC))
    return slot


@dataclass
class Morning:
    stack: LocalStack
    definition: PipelineDefinition
    slots: dict[str, Slot]
    runs: dict[str, dict[str, Any]]
    exports: list[TimedTriggerMessage] = field(default_factory=list)
    ticks: list[TriggerTick] = field(default_factory=list)
    log_rows: list[dict[str, Any]] = field(default_factory=list)


@pytest.fixture(scope="module")
def morning() -> Iterator[Morning]:
    from deploy.local.topology import ensure_subscription, pull_now
    from shared.gcp import firestore_client, subscriber_client
    from shared.gcp_bigquery import bigquery_client

    definition = load_definition()
    export = next(
        j
        for j in definition.jobs
        if j.pubsub
        and j.pubsub.message == "trigger"
        and j.name.startswith("phase6-")
        and slots_between(definition, j, START.astimezone(UTC), END.astimezone(UTC))
    )
    sensor = definition.sensors[0]
    sensor_job = next(
        definition.job(s.job)
        for s in sensor.slots
        if slots_between(definition, definition.job(s.job), START.astimezone(UTC), END.astimezone(UTC))
    )
    jobs = {j.name: j for j in (definition.job(HTTP_JOB), definition.job(FAILING_JOB), export, sensor_job)}
    slots = {name: only_slot(definition, job) for name, job in jobs.items()}
    failing = jobs[FAILING_JOB]
    assert failing.http is not None
    # the services' stand-ins, made here so the 500 is scripted before the clock starts
    standins = {name: ServiceStandin(name) for name in definition.services}
    standins[failing.http.service].script(
        failing.http.path, [500], match=rendered_body(definition, failing, slots[FAILING_JOB])
    )
    stack = LocalStack(
        definition, project="dispatcher-e2e", accelerate=ACCELERATE, start=START, standins=standins, settle=SETTLE
    )
    try:
        stack.up()
        subscriber = subscriber_client()
        assert export.pubsub is not None
        exports = ensure_subscription(subscriber, stack.project, export.pubsub.topic, "e2e-exports")
        ticks = ensure_subscription(subscriber, stack.project, sensor.tick_topic, "e2e-sensor-ticks")
        assert stack.clock.now() < slots[HTTP_JOB].at, "the stack took too long to start for the 10:30 slot"
        result = Morning(stack, definition, slots, {})
        fs = firestore_client(stack.project).collection(definition.dispatcher.runs_collection)
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            result.exports += [TimedTriggerMessage.model_validate_json(d) for d in pull_now(subscriber, exports, 100)]
            result.ticks += [TriggerTick.model_validate_json(d) for d in pull_now(subscriber, ticks, 100)]
            docs = {s.run_id: fs.document(s.run_id).get() for s in slots.values()}
            result.runs = {rid: snap.to_dict() or {} for rid, snap in docs.items() if snap.exists}
            done = len(result.runs) == len(slots) and all(r.get("status") in TERMINAL for r in result.runs.values())
            if done and stack.clock.now() >= END:
                break
            time.sleep(1.0)
        time.sleep(3.0)  # a duplicate attempt or message would have arrived by now
        result.exports += [TimedTriggerMessage.model_validate_json(d) for d in pull_now(subscriber, exports, 100)]
        result.ticks += [TriggerTick.model_validate_json(d) for d in pull_now(subscriber, ticks, 100)]
        settings = definition.pipeline
        names = ", ".join(f"'{n}'" for n in slots)
        result.log_rows = [
            dict(row.items())
            for row in bigquery_client(stack.project)
            .query(
                "SELECT phase_name, game_date, status, trigger_id, metadata "
                f"FROM `{stack.project}.{settings.dataset}.{settings.phase_execution_log_table}` "
                f"WHERE phase_name IN ({names})"
            )
            .result(timeout=60)
        ]
        yield result
    finally:
        stack.down()
        for standin in standins.values():
            standin.close()


def records(morning: Morning, job_name: str) -> list[dict[str, Any]]:
    job = morning.definition.job(job_name)
    assert job.http is not None
    return morning.stack.standins[job.http.service].recorded(job.http.path, job.http.method)


def test_the_dispatcher_is_fed_by_the_scheduler_emulation_every_minute(morning: Morning) -> None:
    assert morning.stack.scheduler is not None
    tick = morning.definition.dispatcher.job
    fired = [at for name, at in morning.stack.scheduler.history if name == tick]
    assert len(fired) >= 50  # 10:1x to 11:06, one a simulated minute
    assert all((b - a).total_seconds() == 60 for a, b in itertools.pairwise(fired))
    assert sorted(morning.stack.functions) == sorted(morning.definition.function_names())
    assert morning.definition.dispatcher.function in morning.stack.functions


def test_a_same_day_http_job_runs_once_with_its_dates_in_new_york_and_the_service_audience(morning: Morning) -> None:
    slot = morning.slots[HTTP_JOB]
    assert slot.local.strftime("%H:%M") == "10:30"
    (call,) = records(morning, HTTP_JOB)
    day = slot.at.astimezone(PIPELINE_TZ).date().isoformat()
    assert day == "2026-01-25"
    assert call["body"]["start_date"] == call["body"]["end_date"] == day
    assert call["body"] == rendered_body(morning.definition, morning.definition.job(HTTP_JOB), slot)
    standin = morning.stack.standins["nba-phase3-analytics-processors"]
    assert call["aud"] == standin.url  # the unsigned local ID token names the service's base URL
    assert call["status"] == 200
    assert datetime.fromisoformat(call["at"]) >= slot.at
    run = morning.runs[slot.run_id]
    assert (run["status"], run["attempts"]) == ("succeeded", 1)
    assert json.loads(run["request"]["body"]) == call["body"]


def test_a_500_then_200_target_is_retried_and_succeeds_on_attempt_2(morning: Morning) -> None:
    slot = morning.slots[FAILING_JOB]
    calls = records(morning, FAILING_JOB)
    body = rendered_body(morning.definition, morning.definition.job(FAILING_JOB), slot)
    mine = [c for c in calls if c["body"] == body]
    assert [c["status"] for c in mine] == [500, 200]
    assert mine[0]["body"] == mine[1]["body"] and mine[0]["aud"] == mine[1]["aud"]  # the same request, twice
    assert mine[0]["body"]["analysis_date"] == "2026-01-25"
    run = morning.runs[slot.run_id]
    assert (run["status"], run["attempts"]) == ("succeeded", 2)
    assert [h.get("http_status") for h in run["history"]] == [500, 200]


def test_a_phase6_pubsub_job_publishes_once(morning: Morning) -> None:
    name = next(n for n in morning.slots if n.startswith("phase6-"))
    job, slot = morning.definition.job(name), morning.slots[name]
    assert job.pubsub is not None and job.pubsub.topic == "nba-phase6-export-trigger"
    mine = [m for m in morning.exports if m.name == name and m.slot == slot.key]
    assert len(mine) == 1, [(m.name, m.slot) for m in morning.exports]
    assert str(mine[0].target_date) == "2026-01-25"
    assert list(mine[0].export_types) == list(job.pubsub.export_types)
    run = morning.runs[slot.run_id]
    assert (run["status"], run["attempts"]) == ("succeeded", 1)


def test_a_sensor_slot_runs_once(morning: Morning) -> None:
    sensor = morning.definition.sensors[0]
    name = next(n for n in morning.slots if any(s.job == n for s in sensor.slots))
    slot_name = next(s.name for s in sensor.slots if s.job == name)
    mine = [t for t in morning.ticks if (t.trigger, t.slot) == (sensor.name, slot_name)]
    assert len(mine) == 1, morning.ticks
    run = morning.runs[morning.slots[name].run_id]
    assert (run["status"], run["attempts"]) == ("succeeded", 1)


def test_each_slot_has_one_execution_log_row(morning: Morning) -> None:
    final = [r for r in morning.log_rows if r["status"] == "succeeded"]
    assert sorted(r["phase_name"] for r in final) == sorted(morning.slots)
    assert all(str(r["game_date"]) == "2026-01-25" for r in final)


def test_change_clock_goes_on_faster_with_no_slot_skipped_or_run_twice(morning: Morning) -> None:
    """Last (it changes the module's stack): the demo's morning switch. New function processes start
    on the new clock, which takes over where the old one is at the switch: every HTTP slot before,
    across and after the switch is called once, and no process dies."""
    stack, definition = morning.stack, morning.definition
    old = {name: p.process.pid for name, p in stack.functions.items()}
    before = stack.clock.now()
    stack.change_clock(300.0, settle=20.0)  # x300 as the demo: at x600 a 300 s lease is 0.5 s of real time
    switched = stack.clock.start  # the new clock's reading at the switch: the old one's then
    assert stack.clock.factor == 300.0
    assert abs((switched - before) - timedelta(seconds=20 * ACCELERATE)) < timedelta(minutes=2)
    assert all(stack.functions[name].process.pid != pid for name, pid in old.items())
    assert not stack.dead_functions() and not stack.deaths
    # The window is fixed by the slots, not by how long the fixture took (at x120 a real second is two
    # simulated minutes, so `before` drifts under load): from the fixture's END (every HTTP slot since
    # ran on the old clock or across the switch) to 10 minutes past the first HTTP slot after the switch.
    http_jobs = [j for j in definition.all_jobs() if j.http is not None and j.name not in morning.slots]
    after = min(
        (s.at for j in http_jobs for s in slots_between(definition, j, switched, switched + timedelta(hours=6))),
        default=switched,
    )
    assert after > switched, "no HTTP slot in the 6 hours after the switch: the test cannot see one"
    end = max(switched + timedelta(minutes=40), after + timedelta(minutes=10))
    stack.clock.sleep_until(end, threading.Event())
    time.sleep(3.0)  # the last slots' calls and anything duplicated
    slots = [s for job in http_jobs for s in slots_between(definition, job, END, end - timedelta(minutes=5))]
    assert any(s.at > switched for s in slots) and any(s.at <= switched for s in slots), (switched, slots)
    for slot in slots:
        job = definition.job(slot.job)
        assert job.http is not None
        body = rendered_body(definition, job, slot)
        calls = [
            c
            for c in stack.standins[job.http.service].recorded(job.http.path)
            if c["body"] == body and slot.at <= datetime.fromisoformat(c["at"]) <= slot.at + timedelta(minutes=15)
        ]
        assert len(calls) == 1, (slot, calls)
        assert calls[0]["aud"] == stack.standins[job.http.service].url
