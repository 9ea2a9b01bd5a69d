"""The dispatcher's tick logic with in-memory fakes of its run store and targets (no emulator): what a
warm instance reads, which outcome an attempt's verdict becomes, and the manual slot choice."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from shared.clock import FixedClock
from shared.contracts.messages import ScheduleTick
from shared.errors import ConfigError
from shared.pipeline.definition import Job, PipelineDefinition, PubsubTarget, load_definition
from shared.schedules.dispatcher import ScheduleDispatcher
from shared.schedules.plan import Slot
from shared.schedules.runs import Claim
from shared.schedules.targets import Attempt

NY = ZoneInfo("America/New_York")


class FakeRuns:
    def __init__(self) -> None:
        self.docs: dict[str, dict[str, Any]] = {}
        self.read: list[str] = []
        self.outbox = object()

    def get_many(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        self.read += run_ids
        return {r: self.docs[r] for r in run_ids if r in self.docs}

    def overrides(self) -> None:
        return None

    def waiting_for_retry(self, limit: int) -> list[dict[str, Any]]:
        return [d for d in self.docs.values() if d["status"] == "retry_wait"][:limit]

    def claim(self, slot: Slot, owner: str, now: datetime, request: dict[str, Any], by: str | None) -> Claim:
        doc = self.docs.get(slot.run_id)
        if doc is None:
            doc = self.docs[slot.run_id] = {"status": "running", "attempts": 1, "request": request}
            return Claim("claimed", doc, owner, 1)
        if doc["status"] == "retry_wait" and doc["next_attempt_at"] <= now:
            doc.update(status="running", attempts=doc["attempts"] + 1)
            return Claim("claimed", doc, owner, doc["attempts"])
        return Claim("done", doc)

    def finish(self, slot: Slot, claim: Claim, now: datetime, **kw: Any) -> bool:
        self.docs[slot.run_id].update(status=kw["status"], next_attempt_at=kw["next_attempt_at"])
        return True


class FakeTargets:
    def __init__(self, verdicts: list[str]) -> None:
        self.verdicts = verdicts
        self.sent: list[dict[str, Any]] = []

    def request(self, job: Job, slot: Slot, season: Any) -> dict[str, Any]:
        return {"kind": "pubsub", "topic": "t", "data": slot.run_id}

    def send(self, request: dict[str, Any], timeout: float) -> Attempt:
        self.sent.append(request)
        return Attempt(self.verdicts.pop(0) if self.verdicts else "succeeded")  # type: ignore[arg-type]


class FakeLog:
    def flush(self, outbox: Any) -> None:
        return None


def definition(*crons: str) -> PipelineDefinition:
    jobs = tuple(
        Job(name=f"job-{n}", cron=c, timezone="America/New_York", pubsub=PubsubTarget(topic="t-topic", body={}))
        for n, c in enumerate(crons)
    )
    return load_definition().model_copy(update={"jobs": jobs, "sensors": ()})


def dispatcher(d: PipelineDefinition, clock: FixedClock, verdicts: list[str] | None = None) -> tuple[Any, ...]:
    runs, targets = FakeRuns(), FakeTargets(list(verdicts or []))
    svc = ScheduleDispatcher(
        definition=d,
        clock=clock,
        runs=runs,
        targets=targets,
        log_writer=FakeLog(),  # type: ignore[arg-type]
    )
    return svc, runs, targets


def test_a_warm_instance_does_not_reread_finished_runs_in_the_catch_up_window() -> None:
    clock = FixedClock(datetime(2026, 1, 24, 11, 0, 5, tzinfo=NY))
    svc, runs, targets = dispatcher(definition("0 11 * * *"), clock)
    assert [r.outcome for r in svc.tick().results] == ["succeeded"]
    for _ in range(14):  # the rest of the 15-minute catch-up window
        clock.advance(minutes=1)
        assert svc.tick().results == []
    assert runs.read == ["job-0__20260124T1600Z"] and len(targets.sent) == 1
    cold, cold_runs, _ = dispatcher(definition("0 11 * * *"), clock)  # a new instance reads it once
    cold_runs.docs = runs.docs
    assert cold.tick().results == [] and cold_runs.read == ["job-0__20260124T1600Z"]


def test_verdicts_become_outcomes_and_retries_wait_their_backoff() -> None:
    clock = FixedClock(datetime(2026, 1, 24, 11, 0, 5, tzinfo=NY))
    svc, _, targets = dispatcher(definition("0 11 * * *"), clock, ["retry", "retry", "retry"])
    outcomes = []
    for _ in range(10):
        outcomes += [r.outcome for r in svc.tick().results]
        clock.advance(minutes=1)
    assert outcomes == ["retry_wait", "retry_wait", "failed"]  # 11:00, 11:01 (+60 s), 11:03 (+120 s)
    assert len(targets.sent) == 3


@pytest.mark.parametrize("verdict", ["client_error", "config_error", "succeeded"])
def test_a_terminal_verdict_is_not_retried(verdict: str) -> None:
    clock = FixedClock(datetime(2026, 1, 24, 11, 0, 5, tzinfo=NY))
    svc, _, targets = dispatcher(definition("0 11 * * *"), clock, [verdict])
    assert [r.outcome for r in svc.tick().results] == [verdict]
    clock.advance(minutes=3)
    svc.tick()
    assert len(targets.sent) == 1


def test_a_manual_run_without_a_date_takes_the_latest_slot_even_off_season() -> None:
    clock = FixedClock(datetime(2026, 8, 1, 17, 40, tzinfo=NY))  # off season, between two 3-minute slots
    svc, _, _ = dispatcher(definition("*/3 16-23 * * *"), clock)
    (result,) = svc.tick(ScheduleTick(job="job-0")).results
    assert result.outcome == "succeeded" and result.slot.at == datetime(2026, 8, 1, 17, 39, tzinfo=NY).astimezone(UTC)


def test_a_manual_run_of_an_unknown_job_or_a_day_without_a_slot_is_a_config_error() -> None:
    clock = FixedClock(datetime(2026, 1, 24, 12, 0, tzinfo=NY))
    svc, _, _ = dispatcher(definition("0 5 * * 1"), clock)
    with pytest.raises(ConfigError, match="no job 'nope'"):
        svc.tick(ScheduleTick(job="nope"))
    with pytest.raises(ConfigError, match="has no slot on 2026-01-24"):
        svc.tick(ScheduleTick(job="job-0", game_date="2026-01-24"))  # a Saturday; the job runs Mondays
    assert svc.tick(ScheduleTick(job="job-0")).results[0].slot.at == datetime(2026, 1, 19, 5, 0, tzinfo=NY).astimezone(
        UTC
    ) - timedelta(0)
