"""The monitor's scheduled-job findings on the Firestore emulator, through the monitor's own pass.

Run documents are written with the real run store (``ScheduleRuns``: the create-if-absent claim,
the take-over of a run waiting for its retry, the fenced finish that also writes the job's summary),
as the dispatcher writes them; one job is left without a run, one is paused by the operator's
season overrides, one's slot is still within its grace. A monitor pass (``build_monitor(...).run``:
every check, the alerts, the heartbeat) reports exactly the expected ``schedule_missed``,
``schedule_failed`` and ``schedule_stale_target`` findings; they are alerted once, and they clear
when the slot is run by hand (the scheduled run, or a forced new generation that succeeds).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.clock import FixedClock
from shared.contracts.messages import MonitorTick
from shared.gcp import firestore_client
from shared.monitor.findings import Finding, MonitorReport
from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID
from shared.monitor.runtime import Monitor, build_monitor
from shared.monitor.schedules import schedule_run_findings
from shared.orchestration.outbox_store import Outbox
from shared.pipeline.definition import PipelineDefinition
from shared.schedules.plan import SEASON_DOC, Slot, slot_on
from shared.schedules.runs import ScheduleRuns
from shared.schedules.targets import Attempt
from tests.support.rig import isolated_definition

pytestmark = pytest.mark.integration

ET = "America/New_York"
NOW = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)  # 09:00 EST, in the 2025-26 season
KINDS = ("schedule_missed", "schedule_failed", "schedule_stale_target")


def _job(name: str, cron: str, zone: str = ET, **extra: Any) -> dict[str, Any]:
    return {
        "name": name,
        "cron": cron,
        "timezone": zone,
        "pubsub": {"topic": "t-topic", "body": {"d": "${today}"}},
        **extra,
    }


JOBS = [
    _job("ok-job", "0 8 * * *"),  # 08:00 ET: succeeded
    _job("missed-job", "0 6 * * *"),  # 06:00 ET: no run at all
    _job("failed-job", "30 7 * * *"),  # 07:30 ET: 503 three times, retries used up
    _job("refused-job", "0 12 * * *", "UTC"),  # 12:00 UTC = 07:00 ET: a 400
    _job("stale-job", "15 8 * * *"),  # 08:15 ET: no such topic
    _job("paused-job", "0 7 * * *", wave="A"),  # 07:00 ET: no run, but its wave is paused
    _job("early-job", "50 8 * * *", missed_after_minutes=60),  # 08:50 ET: no run yet: within its hour of grace
    _job("old-job", "0 5 * * *", replaced_by="something else"),  # never dispatched
]


def _isolated(data: dict[str, Any]) -> None:
    data["sensors"] = []  # the sensors' slots are jobs too: only the jobs above here
    data["jobs"] = JOBS


RESERVED_ID = re.compile(r"__.*__")  # Firestore refuses such document ids, on the emulator as in production


@pytest.fixture
def definition(cloud: LocalCloud) -> PipelineDefinition:
    return isolated_definition(uuid.uuid4().hex[:10], mutate=_isolated)


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(NOW)


@pytest.fixture
def store(definition: PipelineDefinition) -> ScheduleRuns:
    fs = firestore_client()
    return ScheduleRuns(fs, definition, Outbox.for_definition(fs, definition))


@pytest.fixture
def monitor(cloud: LocalCloud, definition: PipelineDefinition, clock: FixedClock) -> Iterator[Monitor]:
    yield build_monitor(definition=definition, clock=clock, environ=cloud.env())


def slot(definition: PipelineDefinition, name: str, manual: int = 0, days_ago: int = 0) -> Slot:
    """The job's slot today (2026-01-25, or ``days_ago`` before) in its zone."""
    found = slot_on(definition, definition.job(name), NOW.date() - timedelta(days=days_ago), manual)
    assert found is not None
    return found


def dispatch(store: ScheduleRuns, s: Slot, attempts: list[Attempt], *, final: str | None = None) -> dict[str, Any]:
    """Run ``s`` as the dispatcher records it: one claim and one fenced finish per attempt, a retry
    waiting between them; the last attempt ends ``final`` (default: its verdict)."""
    at = s.at + timedelta(seconds=5)
    for n, attempt in enumerate(attempts, start=1):
        claim = store.claim(s, f"dispatch:test{n}", at, {"topic": "t-topic", "timeout_seconds": 60}, None)
        assert claim.result == "claimed" and claim.attempt == n
        last = n == len(attempts)
        status = (final or attempt.verdict) if last else "retry_wait"
        wait = None if last else at + timedelta(minutes=1)
        assert store.finish(
            s,
            claim,
            at + timedelta(seconds=2),
            status=status,
            outcome=attempt.as_dict(),
            next_attempt_at=wait,
            log_row=None,
        )
        at += timedelta(minutes=1, seconds=10)
    run = store.get(s.run_id)
    assert run is not None
    return run


def monitor_up_since(definition: PipelineDefinition, at: datetime) -> None:
    """The monitor has been running since ``at`` (its heartbeat's first pass)."""
    fs = firestore_client()
    fs.collection(definition.monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID).set(
        {"first_run_at": at, "last_run_at": NOW - timedelta(minutes=10)}
    )


def pause_wave(definition: PipelineDefinition, wave: str) -> None:
    """What ``phasectl season pause --wave W`` stores."""
    fs = firestore_client()
    fs.collection(definition.dispatcher.jobs_collection).document(SEASON_DOC).set({"paused": [wave], "resumed": []})


def seed_the_morning(definition: PipelineDefinition, store: ScheduleRuns) -> None:
    dispatch(store, slot(definition, "ok-job"), [Attempt("succeeded", duration_ms=40)])
    dispatch(store, slot(definition, "early-job", days_ago=1), [Attempt("succeeded", duration_ms=40)])
    busy = Attempt("retry", http_status=503, duration_ms=900, response="upstream busy", error="HTTP 503")
    failed = dispatch(store, slot(definition, "failed-job"), [busy, busy, busy], final="failed")
    assert (failed["status"], failed["attempts"]) == ("failed", 3)
    bad = Attempt("client_error", http_status=400, duration_ms=30, response='{"error": "bad date"}', error="HTTP 400")
    dispatch(store, slot(definition, "refused-job"), [bad])
    gone = Attempt("config_error", error="topic 'projects/test-project/topics/t-topic' does not exist: NotFound")
    dispatch(store, slot(definition, "stale-job"), [gone])
    pause_wave(definition, "A")


def ours(report: MonitorReport) -> list[tuple[str, str]]:
    return sorted((f.kind, f.subject or "") for f in report.findings if f.kind in KINDS)


def of(report: MonitorReport, kind: str, job: str) -> Finding:
    (found,) = [f for f in report.findings if f.kind == kind and f.subject == job]
    return found


def check_problems(report: MonitorReport) -> list[str]:
    """The schedule check's own failures in the pass (a check_error or check_timeout naming it)."""
    return [
        f.message
        for f in report.findings
        if f.kind in ("check_error", "check_timeout") and f.subject == "schedule_runs"
    ]


# ----------------------------------------------------------------------------- the pass


def test_the_monitor_pass_reports_exactly_the_missed_failed_and_stale_jobs(
    definition: PipelineDefinition, store: ScheduleRuns, monitor: Monitor
) -> None:
    seed_the_morning(definition, store)
    monitor_up_since(definition, NOW - timedelta(days=3))

    report, alerts = monitor.run(MonitorTick())

    assert check_problems(report) == []
    assert ours(report) == [
        ("schedule_failed", "failed-job"),
        ("schedule_failed", "refused-job"),
        ("schedule_missed", "missed-job"),
        ("schedule_stale_target", "stale-job"),
    ]
    missed = of(report, "schedule_missed", "missed-job")
    assert missed.details["run_id"] == "missed-job__20260125T1100Z"
    assert "no run of its slot 2026-01-25 06:00 EST (the job's zone, America/New_York), 3 h ago" in missed.message
    assert "`phasectl schedules run missed-job --date 2026-01-25`" in missed.message
    failed = of(report, "schedule_failed", "failed-job")
    assert (failed.details["attempts"], failed.details["http_status"]) == (3, 503)
    assert "failed after 3/3 attempt(s) (retries used up): HTTP 503, response: upstream busy;" in failed.message
    refused = of(report, "schedule_failed", "refused-job")
    assert "2026-01-25 07:00 EST = 2026-01-25 12:00 UTC in the job's zone UTC" in refused.message
    assert 'not retried) after 1 attempt(s): HTTP 400, response: {"error": "bad date"}' in refused.message
    stale = of(report, "schedule_stale_target", "stale-job")
    assert (
        "has a stale target (Pub/Sub topic t-topic): topic 'projects/test-project/topics/t-topic' does not exist"
        in (stale.message)
    )
    # alerted, each under its own key, and counted in the heartbeat
    assert alerts is not None
    assert {k for k in alerts.alerted if k.startswith("schedule_")} == {
        "schedule_failed__failed-job",
        "schedule_failed__refused-job",
        "schedule_missed__missed-job",
        "schedule_stale_target__stale-job",
    }
    beat = firestore_client().collection(definition.monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID).get()
    assert set(KINDS) <= set((beat.to_dict() or {})["kinds"])


def test_the_next_pass_does_not_alert_again_and_a_hand_run_clears_each_finding(
    definition: PipelineDefinition, store: ScheduleRuns, monitor: Monitor, clock: FixedClock
) -> None:
    seed_the_morning(definition, store)
    monitor_up_since(definition, NOW - timedelta(days=3))
    monitor.run(MonitorTick())

    clock.advance(minutes=10)
    again, alerts = monitor.run(MonitorTick())
    assert alerts is not None
    assert len(ours(again)) == 4
    assert not [k for k in alerts.alerted if k.startswith("schedule_")]  # same slots, same outcomes: deduplicated

    # the operator runs the missed slot (`phasectl schedules run missed-job --date 2026-01-25`: the
    # scheduled run itself) and a new generation of the failed one (`... --force`): both succeed
    done = Attempt("succeeded", duration_ms=50)
    dispatch(store, slot(definition, "missed-job"), [done])
    dispatch(store, slot(definition, "failed-job", manual=1), [done])
    clock.advance(minutes=10)
    after, alerts = monitor.run(MonitorTick())
    assert alerts is not None
    assert ours(after) == [("schedule_failed", "refused-job"), ("schedule_stale_target", "stale-job")]
    assert sorted(k for k in alerts.resolved if k.startswith("schedule_")) == [
        "schedule_failed__failed-job",
        "schedule_missed__missed-job",
    ]


def test_a_fresh_deployment_reports_no_slot_from_before_its_first_pass(
    definition: PipelineDefinition, store: ScheduleRuns, monitor: Monitor, clock: FixedClock
) -> None:
    """No monitor heartbeat yet: the system has just come up; what ran is still judged."""
    seed_the_morning(definition, store)

    first, _ = monitor.run(MonitorTick())
    assert ours(first) == [
        ("schedule_failed", "failed-job"),
        ("schedule_failed", "refused-job"),
        ("schedule_stale_target", "stale-job"),
    ]
    # the next slot after the first pass (and its grace) with no run is missed
    clock.set(datetime(2026, 1, 26, 11, 16, tzinfo=UTC))  # 06:16 EST the next day
    later, _ = monitor.run(MonitorTick())
    assert ("schedule_missed", "missed-job") in ours(later)
    assert of(later, "schedule_missed", "missed-job").details["run_id"] == "missed-job__20260126T1100Z"


# ----------------------------------------------------------------------------- the reads


class _CountingClient:
    """The real client; ``get_all`` (a batched document read) counted."""

    def __init__(self, client: Any) -> None:
        self._client = client
        self.batches: list[int] = []

    def __getattr__(self, name: str) -> Any:
        return getattr(self._client, name)

    def get_all(self, refs: Any, *args: Any, **kwargs: Any) -> Any:
        refs = list(refs)
        self.batches.append(len(refs))
        return self._client.get_all(refs, *args, **kwargs)


def test_one_batched_read_for_every_jobs_slots(definition: PipelineDefinition, store: ScheduleRuns) -> None:
    done = [Attempt("succeeded", duration_ms=40)]
    for name in ("ok-job", "failed-job", "refused-job", "stale-job"):
        dispatch(store, slot(definition, name), done)
    dispatch(store, slot(definition, "early-job", days_ago=1), done)
    pause_wave(definition, "A")
    monitor_up_since(definition, NOW - timedelta(days=3))

    busy = _CountingClient(firestore_client())
    found = schedule_run_findings(busy, definition, NOW)  # type: ignore[arg-type]
    assert [(f.kind, f.subject) for f in found] == [("schedule_missed", "missed-job")]
    # one batch for the slots of ok, missed, failed, refused, stale and early (yesterday's, and today's
    # in its grace; paused-job is paused, old-job replaced: not read), then the summary of the one job
    # with a finding (a hand-run may have cleared it)
    assert busy.batches == [7, 1]

    dispatch(store, slot(definition, "missed-job"), done)
    quiet = _CountingClient(firestore_client())
    assert schedule_run_findings(quiet, definition, NOW) == []  # type: ignore[arg-type]
    assert quiet.batches == [7]


def test_the_season_overrides_document_id_is_one_firestore_accepts(
    definition: PipelineDefinition, store: ScheduleRuns
) -> None:
    """The monitor reads the operator's overrides every pass (so does the dispatcher on every tick with a
    slot due): a document id Firestore refuses would make every pass's schedule check a check_error."""
    assert not RESERVED_ID.fullmatch(SEASON_DOC), f"{SEASON_DOC!r} is a reserved Firestore document id"
    pause_wave(definition, "A")
    assert store.overrides() == {"paused": ["A"], "resumed": []}
