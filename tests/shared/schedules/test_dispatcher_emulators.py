"""[schedules] The schedule dispatcher on the emulators: each (job, slot) runs once, is recorded,
and fails the way the issue asks (5xx retried then failed, 4xx not retried, 404/missing topic a
configuration error, a hung target bounded) — with the real Firestore and Pub/Sub clients and a
real HTTP server standing in for the Cloud Run services.
"""

from __future__ import annotations

import json
import os
import pickle
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription, ensure_topic, pull_now
from shared.clock import FixedClock
from shared.contracts.messages import ScheduleTick, TimedTriggerMessage
from shared.gcp import firestore_client, publisher_client, subscriber_client
from shared.pipeline.definition import HttpTarget, Job, PipelineDefinition, PubsubTarget, Service, load_definition
from shared.schedules.dispatcher import ScheduleDispatcher
from shared.schedules.runtime import build_dispatcher

pytestmark = pytest.mark.integration

NY = ZoneInfo("America/New_York")
SLOT = datetime(2026, 1, 24, 11, 0, tzinfo=NY)  # a Saturday in the 2025-26 season
SVC_ENV = "SCHEDULE_TEST_SERVICE_URL"
REPO = Path(__file__).resolve().parents[3]


class Recorder:
    """A stand-in Cloud Run service: records each request, answers from a script (default 200)."""

    def __init__(self) -> None:
        self.requests: list[dict[str, Any]] = []
        self.script: dict[str, list[int]] = {}  # path → statuses to answer in turn (then 200)
        self.hang: set[str] = set()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode() if length else ""
                path = self.path.split("?", 1)[0]
                recorder.requests.append(
                    {"method": self.command, "path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                )
                if path in recorder.hang:
                    time.sleep(30)
                    return
                statuses = recorder.script.get(path) or []
                status = statuses.pop(0) if statuses else 200
                payload = json.dumps({"status": status, "path": path}).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = _any

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def to(self, path: str) -> list[dict[str, Any]]:
        return [r for r in self.requests if r["path"].split("?", 1)[0] == path]


@pytest.fixture
def recorder() -> Iterator[Recorder]:
    rec = Recorder()
    yield rec
    rec.server.shutdown()


def definition_for(topic: str, **http: Any) -> PipelineDefinition:
    base = load_definition()
    jobs = (
        Job(
            name="same-day-phase4",
            cron="0 11 * * *",
            timezone="America/New_York",
            http=HttpTarget(
                service="svc",
                path="/process-date",
                body={"analysis_date": "${today}", "processors": ["MLFeatureStoreProcessor"]},
                **http,
            ),
        ),
        Job(
            name="phase6-tonight-picks-morning",
            cron="0 11 * * *",
            timezone="America/New_York",
            pubsub=PubsubTarget(topic=topic, message="trigger", date="today", export_types=("tonight",)),
        ),
        Job(
            name="validation-utc",
            cron="0 16 * * *",
            timezone="UTC",
            http=HttpTarget(service="svc", path="/validate", method="GET", query={"day": "${yesterday}"}, auth="none"),
        ),
    )
    return base.model_copy(update={"jobs": jobs, "sensors": (), "services": {"svc": Service(url_env=SVC_ENV)}})


def dispatcher(
    definition: PipelineDefinition, now: datetime, env: dict[str, str], budget: float = 60
) -> ScheduleDispatcher:
    return build_dispatcher(definition=definition, clock=FixedClock(now), environ=env, budget_seconds=budget)


@pytest.fixture
def setup(cloud: LocalCloud, recorder: Recorder, unique: str) -> dict[str, Any]:
    topic = f"exports-{unique}"
    publisher = publisher_client()
    ensure_topic(publisher, cloud.project, topic)
    sub = ensure_subscription(subscriber_client(), cloud.project, topic, f"exports-sub-{unique}")
    env = {**os.environ, SVC_ENV: recorder.url, "PHASECHAIN_LOCAL_ID_TOKENS": "1"}
    return {"definition": definition_for(topic), "env": env, "sub": sub, "topic": topic, "project": cloud.project}


def runs(definition: PipelineDefinition) -> dict[str, dict[str, Any]]:
    fs = firestore_client()
    return {d.id: d.to_dict() or {} for d in fs.collection(definition.dispatcher.runs_collection).stream()}


def outbox_rows(definition: PipelineDefinition) -> list[dict[str, Any]]:
    fs = firestore_client()
    return [d.to_dict() or {} for d in fs.collection(definition.pipeline.outbox_collection).stream()]


_CHILD = """
import json, pickle, sys, time
from datetime import datetime
from shared.clock import FixedClock
from shared.contracts.messages import ScheduleTick
from shared.schedules.runtime import build_dispatcher
definition = pickle.loads(open(sys.argv[1], "rb").read())
now, start_at = datetime.fromisoformat(sys.argv[2]), float(sys.argv[3])
dispatcher = build_dispatcher(definition=definition, clock=FixedClock(now), budget_seconds=60)
time.sleep(max(0.0, start_at - time.time()))
report = dispatcher.tick(ScheduleTick())
print(json.dumps(sorted((r.slot.job, r.outcome) for r in report.results)))
"""
PROCESSES = 4


def test_duplicate_ticks_from_separate_processes_run_each_slot_once(
    setup: dict[str, Any], recorder: Recorder, tmp_path: Path
) -> None:
    definition, env = setup["definition"], setup["env"]
    now = SLOT.astimezone(UTC) + timedelta(seconds=20)
    pickled = tmp_path / "definition.pickle"
    pickled.write_bytes(pickle.dumps(definition))
    start_at = time.time() + 6.0  # every process built and waiting: the ticks land together
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", _CHILD, str(pickled), now.isoformat(), str(start_at)],
            cwd=REPO,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(PROCESSES)
    ]
    results = []
    for proc in procs:
        out, err = proc.communicate(timeout=180)
        assert proc.returncode == 0, err[-3000:]
        results.append(json.loads(out.strip().splitlines()[-1]))
    ran = [outcome for result in results for job, outcome in result if outcome == "succeeded"]
    assert len(ran) == 3, results  # two HTTP slots and one Pub/Sub slot (11:00 ET = 16:00 UTC), once each
    assert len(recorder.to("/process-date")) == 1 and len(recorder.to("/validate")) == 1
    request = recorder.to("/process-date")[0]
    assert json.loads(request["body"]) == {"analysis_date": "2026-01-24", "processors": ["MLFeatureStoreProcessor"]}
    token = request["auth"].split(" ", 1)[1].split(".")[1]
    claims = json.loads(__import__("base64").urlsafe_b64decode(token + "=" * (-len(token) % 4)))
    assert claims["aud"] == recorder.url  # the service's base URL is the audience
    messages = pull_now(subscriber_client(), setup["sub"])
    assert len(messages) == 1
    trigger = TimedTriggerMessage.model_validate_json(messages[0])
    assert (str(trigger.target_date), trigger.export_types, trigger.name) == (
        "2026-01-24",
        ["tonight"],
        "phase6-tonight-picks-morning",
    )
    stored = runs(definition)
    assert {r["status"] for r in stored.values()} == {"succeeded"} and len(stored) == 3
    rows = [
        r for r in outbox_rows(definition) if r.get("phase_name") in ("same-day-phase4", "phase6-tonight-picks-morning")
    ]
    assert sorted(r["status"] for r in rows) == ["succeeded", "succeeded"]
    meta = json.loads(next(r for r in rows if r["phase_name"] == "same-day-phase4")["metadata"])
    assert meta["http_status"] == 200 and meta["attempt"] == 1 and meta["kind"] == "schedule"
    # a later tick in the window runs nothing again
    again = dispatcher(definition, now + timedelta(minutes=5), env).tick()
    assert again.ran == [] and len(recorder.to("/process-date")) == 1


def test_a_5xx_is_retried_with_backoff_then_succeeds(setup: dict[str, Any], recorder: Recorder) -> None:
    definition, env = setup["definition"], setup["env"]
    recorder.script["/process-date"] = [500]
    t0 = SLOT.astimezone(UTC) + timedelta(seconds=5)
    first = dispatcher(definition, t0, env).tick()
    assert ("same-day-phase4", "retry_wait") in [(r.slot.job, r.outcome) for r in first.results]
    early = dispatcher(definition, t0 + timedelta(seconds=30), env).tick()  # before the backoff: nothing
    assert early.ran == []
    later = dispatcher(definition, t0 + timedelta(seconds=65), env).tick()
    assert [(r.slot.job, r.outcome) for r in later.ran] == [("same-day-phase4", "succeeded")]
    run = next(r for r in runs(definition).values() if r["job"] == "same-day-phase4")
    assert run["attempts"] == 2 and [h["http_status"] for h in run["history"]] == [500, 200]
    bodies = [r["body"] for r in recorder.to("/process-date")]
    assert len(bodies) == 2 and bodies[0] == bodies[1]  # the same bytes every attempt


def test_a_5xx_every_time_fails_after_max_attempts_and_alerts(
    setup: dict[str, Any], recorder: Recorder, captured_log: Any
) -> None:
    definition, env = setup["definition"], setup["env"]
    recorder.script["/process-date"] = [503, 502, 500, 500]
    t = SLOT.astimezone(UTC) + timedelta(seconds=5)
    outcomes = []
    for _ in range(6):
        report = dispatcher(definition, t, env).tick()
        outcomes += [r.outcome for r in report.ran if r.slot.job == "same-day-phase4"]
        t += timedelta(minutes=3)
    assert outcomes == ["retry_wait", "retry_wait", "failed"]
    assert len(recorder.to("/process-date")) == 3
    summary = firestore_client().collection("schedule_jobs").document("same-day-phase4").get().to_dict()
    assert summary["last"]["status"] == "failed" and summary["last"]["http_status"] == 500
    alerts = [json.loads(line) for line in captured_log.getvalue().splitlines() if '"schedule_failed"' in line]
    assert alerts and "same-day-phase4" in alerts[-1]["message"]


@pytest.mark.parametrize(("status", "expected"), [(400, "client_error"), (403, "client_error"), (404, "config_error")])
def test_a_4xx_is_recorded_not_retried(setup: dict[str, Any], recorder: Recorder, status: int, expected: str) -> None:
    definition, env = setup["definition"], setup["env"]
    recorder.script["/process-date"] = [status]
    t = SLOT.astimezone(UTC) + timedelta(seconds=5)
    first = dispatcher(definition, t, env).tick()
    assert ("same-day-phase4", expected) in [(r.slot.job, r.outcome) for r in first.results]
    dispatcher(definition, t + timedelta(minutes=5), env).tick()
    assert len(recorder.to("/process-date")) == 1
    run = next(r for r in runs(definition).values() if r["job"] == "same-day-phase4")
    assert run["status"] == expected and run["outcome"]["http_status"] == status


def test_a_missing_topic_and_an_unknown_service_url_are_configuration_errors(setup: dict[str, Any]) -> None:
    definition = definition_for("no-such-topic-anywhere")
    env = {k: v for k, v in setup["env"].items() if k != SVC_ENV}
    env.pop("GOOGLE_CLOUD_PROJECT_NUMBER", None)
    report = dispatcher(definition, SLOT.astimezone(UTC) + timedelta(seconds=5), env).tick()
    outcomes = {r.slot.job: (r.outcome, r.detail) for r in report.results}
    assert outcomes["phase6-tonight-picks-morning"][0] == "config_error"
    assert outcomes["same-day-phase4"][0] == "config_error"
    run = runs(definition)["same-day-phase4__20260124T1600Z"]
    assert "SCHEDULE_TEST_SERVICE_URL" in run["outcome"]["error"]


def test_a_hung_target_is_bounded_by_the_attempt_timeout(setup: dict[str, Any], recorder: Recorder) -> None:
    definition = definition_for(setup["topic"], timeout_seconds=2)
    recorder.hang.add("/process-date")
    started = time.monotonic()
    report = dispatcher(definition, SLOT.astimezone(UTC) + timedelta(seconds=5), setup["env"]).tick()
    elapsed = time.monotonic() - started
    outcome = next(r for r in report.results if r.slot.job == "same-day-phase4")
    assert outcome.outcome == "retry_wait" and "timed out" in outcome.detail
    assert elapsed < 25  # bounded by the 2 s attempt timeout, not the target's 30 s hang


def test_a_utc_get_job_fires_at_its_utc_time_with_its_query(setup: dict[str, Any], recorder: Recorder) -> None:
    definition, env = setup["definition"], setup["env"]
    at = datetime(2026, 1, 24, 16, 0, 30, tzinfo=UTC)  # 11:00 ET is also 16:00 UTC in January
    dispatcher(definition, at, env).tick()
    (request,) = recorder.to("/validate")
    assert request["method"] == "GET" and request["path"] == "/validate?day=2026-01-23" and request["auth"] is None


def test_a_manual_run_uses_the_same_protocol_and_force_makes_a_new_generation(
    setup: dict[str, Any], recorder: Recorder
) -> None:
    definition, env = setup["definition"], setup["env"]
    now = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)
    d = dispatcher(definition, now, env)
    tick = ScheduleTick(job="same-day-phase4", game_date="2026-01-24", requested_by="ops@example.com")
    first = d.tick(tick)
    assert [r.outcome for r in first.results] == ["succeeded"]
    again = d.tick(tick)
    assert [r.outcome for r in again.results] == ["done"]
    forced = d.tick(ScheduleTick(job="same-day-phase4", game_date="2026-01-24", force=True))
    assert [r.outcome for r in forced.results] == ["succeeded"]
    assert forced.results[0].slot.run_id == "same-day-phase4__20260124T1600Z-m1"
    assert len(recorder.to("/process-date")) == 2
    assert runs(definition)["same-day-phase4__20260124T1600Z"]["requested_by"] == "ops@example.com"


def test_off_season_slots_do_not_run(setup: dict[str, Any], recorder: Recorder) -> None:
    definition, env = setup["definition"], setup["env"]
    summer = datetime(2026, 8, 1, 11, 0, tzinfo=NY).astimezone(UTC) + timedelta(seconds=5)
    report = dispatcher(definition, summer, env).tick()
    assert report.results == [] and recorder.requests == []


def _expected_fires(cron: str, day: datetime, zone: ZoneInfo, before_hour: int) -> list[tuple[int, int]]:
    """The wall times (hour, minute) before ``before_hour`` that ``cron`` names on ``day`` and that
    exist in ``zone`` that day: a wall time in the spring-forward gap does not exist; a repeated one
    counts once."""
    from shared.schedules.cron import CronExpression

    expr = CronExpression.parse(cron)
    if not expr.matches_day(day.date()):
        return []
    out = []
    for hour in (h for h in expr.hours if h < before_hour):
        for minute in expr.minutes:
            wall = datetime(day.year, day.month, day.day, hour, minute)
            back = wall.replace(tzinfo=zone).astimezone(UTC).astimezone(zone).replace(tzinfo=None)
            if back == wall:
                out.append((hour, minute))
    return out


@pytest.mark.parametrize("day", [datetime(2026, 3, 8), datetime(2026, 11, 1)], ids=["spring-forward", "fall-back"])
def test_on_a_dst_day_every_et_job_fires_once_per_wall_time_at_its_local_time(
    cloud: LocalCloud, recorder: Recorder, day: datetime
) -> None:
    """Every distinct ET schedule of the packaged jobs, ticked every minute from midnight to 04:00 of
    a DST day in New York (the hours the change touches; the pure tests cover every job's whole day),
    runs each of its wall times that exist that day exactly once, at that local time."""
    base = load_definition()
    by_cron = {j.cron: j for j in base.all_jobs() if base.job_zone(j).key == "America/New_York"}
    et_jobs = tuple(
        j.model_copy(update={"window": "always", "replaced_by": "", "max_attempts": 1}) for j in by_cron.values()
    )
    services = {name: Service(url_env=SVC_ENV) for name in base.services}
    definition = base.model_copy(update={"jobs": et_jobs, "sensors": (), "services": services})
    publisher = publisher_client()
    for topic in {j.pubsub.topic for j in et_jobs if j.pubsub is not None}:
        ensure_topic(publisher, cloud.project, topic)
    env = {**os.environ, SVC_ENV: recorder.url, "PHASECHAIN_LOCAL_ID_TOKENS": "1"}
    start = day.replace(tzinfo=NY).astimezone(UTC)
    end = day.replace(hour=4, tzinfo=NY).astimezone(UTC)
    clock = FixedClock(start + timedelta(seconds=10))
    dispatch = build_dispatcher(definition=definition, clock=clock, environ=env, budget_seconds=60)
    while clock.now() < end:
        dispatch.tick()
        clock.advance(minutes=1)
    fired: dict[str, list[tuple[int, int]]] = {}
    for run in runs(definition).values():
        assert run["status"] == "succeeded", run
        local = run["slot_at"].astimezone(NY)
        if local.date() == day.date():
            fired.setdefault(run["job"], []).append((local.hour, local.minute))
    checked = 0
    for job in et_jobs:
        expected = _expected_fires(job.cron, day, NY, before_hour=4)
        assert sorted(fired.get(job.name, [])) == sorted(expected), f"{job.name} ({job.cron}) on {day.date()}"
        checked += 1
    assert checked == len(et_jobs) > 15
    assert any(fired.get(j.name) for j in et_jobs if "22-23,0-2" in j.cron)  # the grading slots around 02:00


def test_a_hand_run_waiting_for_a_retry_is_retried_by_the_scheduled_ticks(
    setup: dict[str, Any], recorder: Recorder
) -> None:
    """A forced re-run of an older day's slot got a 500: its slot is outside the catch-up window, so
    the ticks' every-fifth-minute look for stragglers retries it once its backoff has passed."""
    definition, env = setup["definition"], setup["env"]
    recorder.script["/process-date"] = [503]
    now = datetime(2026, 1, 26, 14, 2, tzinfo=UTC)  # two days later, 09:02 ET: nothing of the job due
    d = dispatcher(definition, now, env)
    forced = d.tick(ScheduleTick(job="same-day-phase4", game_date="2026-01-24", force=True))
    assert [r.outcome for r in forced.results] == ["retry_wait"]
    assert dispatcher(definition, now + timedelta(minutes=1, seconds=10), env).tick().ran == []  # 09:03: not a 5th
    later = dispatcher(definition, datetime(2026, 1, 26, 14, 5, 5, tzinfo=UTC), env).tick()  # 09:05 ET
    assert [(r.slot.run_id, r.outcome) for r in later.ran] == [("same-day-phase4__20260124T1600Z-m1", "succeeded")]
    bodies = [json.loads(r["body"]) for r in recorder.to("/process-date")]
    assert [b["analysis_date"] for b in bodies] == ["2026-01-24", "2026-01-24"]  # the stored request, again
