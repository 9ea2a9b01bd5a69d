"""The auto-retry heartbeat's grace after a fresh start (issue 16): no emulator, an injected clock.

A missing auto-retry heartbeat is ``retry_heartbeat_pending`` (INFO) until one auto-retry interval
(from the definition's ``[schedules.auto_retry]`` cron) plus the auto-retry function's timeout after
the monitor's first recorded pass (``first_run_at`` of its heartbeat); after that it is
``retry_heartbeat_stale`` as before. A heartbeat that exists but is old is stale at once, as before.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.deferred import Deferred
from shared.monitor.checks import TransitionMonitor
from shared.monitor.findings import MonitorReport
from shared.monitor.heartbeats import (
    MONITOR_HEARTBEAT_ID,
    RETRY_HEARTBEAT_ID,
    cron_interval,
    monitor_up_since,
    retry_heartbeat_findings,
    retry_heartbeat_grace,
    retry_schedule_cron,
)
from shared.pipeline.definition import FunctionDeploy, PipelineDefinition, load_definition

START = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


# -- a Firestore with just what the heartbeat check and write use ------------------------------
class Snapshot:
    def __init__(self, data: dict[str, Any] | None) -> None:
        self._data = data

    @property
    def exists(self) -> bool:
        return self._data is not None

    def to_dict(self) -> dict[str, Any] | None:
        return None if self._data is None else dict(self._data)


class Document:
    def __init__(self, store: dict[str, dict[str, Any]], doc_id: str) -> None:
        self.store, self.id = store, doc_id

    def get(self) -> Snapshot:
        return Snapshot(self.store.get(self.id))

    def set(self, data: dict[str, Any], merge: bool = False) -> None:
        self.store[self.id] = {**self.store.get(self.id, {}), **data} if merge else dict(data)


class Collection:
    def __init__(self, store: dict[str, dict[str, Any]]) -> None:
        self.store = store

    def document(self, doc_id: str) -> Document:
        return Document(self.store, doc_id)


class Firestore:
    def __init__(self) -> None:
        self.collections: dict[str, dict[str, dict[str, Any]]] = {}

    def collection(self, name: str) -> Collection:
        return Collection(self.collections.setdefault(name, {}))


class Rig:
    def __init__(self, definition: PipelineDefinition) -> None:
        self.definition = definition
        self.clock = FixedClock(START)
        self.fs = Firestore()
        no_bigquery: Any = None  # the heartbeat check reads Firestore only
        self.monitor = TransitionMonitor(definition, self.clock, self.fs, Deferred(lambda: no_bigquery), "p", {})  # type: ignore[arg-type]

    @property
    def heartbeats(self) -> dict[str, dict[str, Any]]:
        return self.fs.collections.setdefault(self.definition.monitor.heartbeat_collection, {})

    def advance(self, **delta: float) -> None:
        self.clock = FixedClock(self.clock.now() + timedelta(**delta))
        self.monitor.clock = self.clock

    def pass_(self, *, write: bool = True) -> MonitorReport:
        """The heartbeat part of one monitor pass: the check, then the monitor's own heartbeat."""
        now = self.clock.now()
        report = MonitorReport(ran_at=now)
        report.findings += retry_heartbeat_findings(self.fs, self.definition, now, report)  # type: ignore[arg-type]
        if write:
            self.monitor.write_heartbeat(report)
        return report

    def retry_ran(self, at: datetime | None = None) -> None:
        self.heartbeats[RETRY_HEARTBEAT_ID] = {"last_run_at": at or self.clock.now(), "dry_run": False}


@pytest.fixture
def definition() -> PipelineDefinition:
    return load_definition()


@pytest.fixture
def rig(definition: PipelineDefinition) -> Rig:
    return Rig(definition)


def kinds(report: MonitorReport) -> list[tuple[str, str]]:
    return [(f.kind, f.severity) for f in report.findings]


# -- the grace comes from the definition -----------------------------------------------------------
def test_the_grace_is_one_auto_retry_interval_plus_its_timeout(definition: PipelineDefinition) -> None:
    cron = retry_schedule_cron(definition)
    assert cron == definition.schedules["auto_retry"].cron == "*/15 * * * *"
    timeout = definition.deploy.settings_for(RETRY_HEARTBEAT_ID).timeout_seconds
    assert timeout is not None
    assert retry_heartbeat_grace(definition) == timedelta(minutes=15) + timedelta(seconds=timeout)


def test_the_grace_follows_the_schedule_and_the_timeout(definition: PipelineDefinition) -> None:
    schedules = dict(definition.schedules)
    schedules["auto_retry"] = schedules["auto_retry"].model_copy(update={"cron": "7,37 * * * *"})
    functions = {**definition.deploy.functions, RETRY_HEARTBEAT_ID: FunctionDeploy(timeout_seconds=60)}
    changed = definition.model_copy(
        update={"schedules": schedules, "deploy": definition.deploy.model_copy(update={"functions": functions})}
    )
    assert retry_heartbeat_grace(changed) == timedelta(minutes=31)


def test_an_unreadable_interval_falls_back_to_the_stale_threshold(definition: PipelineDefinition) -> None:
    schedules = dict(definition.schedules)
    schedules["auto_retry"] = schedules["auto_retry"].model_copy(update={"cron": "0 3 1 * *"})  # monthly
    changed = definition.model_copy(update={"schedules": schedules})
    timeout = definition.deploy.settings_for(RETRY_HEARTBEAT_ID).timeout_seconds or 0
    stale = definition.monitor.retry_heartbeat_stale_minutes
    assert retry_heartbeat_grace(changed) == timedelta(minutes=stale, seconds=timeout)


@pytest.mark.parametrize(
    ("cron", "interval"),
    [
        ("*/15 * * * *", timedelta(minutes=15)),
        ("*/10 * * * *", timedelta(minutes=10)),
        ("7,37 * * * *", timedelta(minutes=30)),
        ("*/15 22-23,0-2 * * *", timedelta(hours=19, minutes=15)),
        ("30 2 * * *", timedelta(days=1)),
        ("5,50 */6 * * *", timedelta(hours=5, minutes=15)),
        ("0 6 * * 1-5", timedelta(days=3)),
        ("0 6 * * 0,7", timedelta(days=7)),
        ("0 0 1 * *", None),  # day-of-month: no fixed interval
        ("0 0 * 1 *", None),
        ("0 6 * * MON", None),  # names: left to the scheduler's parser
        ("*/0 * * * *", None),
        ("61 * * * *", None),
    ],
)
def test_cron_interval(cron: str, interval: timedelta | None) -> None:
    assert cron_interval(cron) == interval


@pytest.mark.parametrize(
    "cron", ["*/15 * * * *", "7,37 * * * *", "*/15 22-23,0-2 * * *", "5,50 */6 * * *", "0 6 * * 1-5", "0 6 * * 0,7"]
)
def test_cron_interval_is_the_longest_gap_the_scheduler_fires(cron: str) -> None:
    """The monitor's reader (its bundle may not import deploy.local) agrees with the scheduler's parser."""
    from zoneinfo import ZoneInfo

    from deploy.local.scheduler import CronExpression

    expression, utc = CronExpression.parse(cron), ZoneInfo("UTC")
    moment = datetime(2026, 1, 5, tzinfo=UTC)
    firings = [moment := expression.next_after(moment, utc) for _ in range(600)]
    while firings[-1] - firings[0] < timedelta(days=15):
        firings.append(expression.next_after(firings[-1], utc))
    assert cron_interval(cron) == max(b - a for a, b in itertools.pairwise(firings))


# -- pending, then stale ---------------------------------------------------------------------------
def test_seconds_after_a_fresh_start_a_missing_heartbeat_is_pending_not_stale(rig: Rig) -> None:
    report = rig.pass_()
    (pending,) = report.findings
    assert (pending.kind, pending.severity) == ("retry_heartbeat_pending", "INFO")
    expected_by = START + retry_heartbeat_grace(rig.definition)
    assert pending.details == {"up_since": START.isoformat(), "expected_by": expected_by.isoformat()}
    assert "has not run yet" in pending.message and "2026-11-30 12:20 UTC" in pending.message
    # the monitor's first pass is recorded: the start of the grace, kept by the following passes
    assert rig.heartbeats[MONITOR_HEARTBEAT_ID]["first_run_at"] == START
    assert monitor_up_since(rig.fs, rig.definition) == START  # type: ignore[arg-type]


def test_pending_until_one_interval_after_the_first_pass_then_stale(rig: Rig) -> None:
    grace = retry_heartbeat_grace(rig.definition)
    first = rig.pass_().findings[0]
    rig.advance(minutes=10)
    second = rig.pass_().findings[0]
    assert second.kind == "retry_heartbeat_pending"
    assert second.fingerprint == first.fingerprint  # the same finding: alerted once, not on every pass
    rig.clock = FixedClock(START + grace)
    rig.monitor.clock = rig.clock
    assert kinds(rig.pass_()) == [("retry_heartbeat_pending", "INFO")]  # the last moment of the grace
    rig.advance(seconds=1)
    (stale,) = rig.pass_().findings
    assert (stale.kind, stale.severity) == ("retry_heartbeat_stale", "ERROR")
    assert stale.message == "auto-retry last ran never"
    assert rig.heartbeats[MONITOR_HEARTBEAT_ID]["first_run_at"] == START  # never moved later


def test_auto_retry_running_within_the_grace_ends_the_pending_finding(rig: Rig) -> None:
    assert kinds(rig.pass_()) == [("retry_heartbeat_pending", "INFO")]
    rig.advance(minutes=15)
    rig.retry_ran()
    rig.advance(minutes=2)
    assert rig.pass_().findings == []


def test_an_old_heartbeat_is_stale_at_once_even_on_a_fresh_monitor(rig: Rig) -> None:
    """The grace is for a heartbeat that does not exist yet; an old one keeps today's behaviour."""
    stale_after = rig.definition.monitor.retry_heartbeat_stale_minutes
    rig.retry_ran(at=START - timedelta(minutes=stale_after + 1))
    (stale,) = rig.pass_().findings
    assert (stale.kind, stale.severity) == ("retry_heartbeat_stale", "ERROR")
    assert stale.message == f"auto-retry last ran {stale_after + 1} min ago"


def test_a_fresh_heartbeat_is_quiet(rig: Rig) -> None:
    stale_after = rig.definition.monitor.retry_heartbeat_stale_minutes
    rig.retry_ran(at=START - timedelta(minutes=stale_after))
    assert rig.pass_().findings == []


def test_a_monitor_that_ran_long_ago_gives_no_grace(rig: Rig) -> None:
    """The first pass was long ago and auto-retry never ran: stale (a deployment without auto-retry)."""
    rig.heartbeats[MONITOR_HEARTBEAT_ID] = {"last_run_at": START, "first_run_at": START - timedelta(days=3)}
    assert kinds(rig.pass_()) == [("retry_heartbeat_stale", "ERROR")]


def test_a_heartbeat_written_before_first_run_at_existed_counts_from_its_last_run(rig: Rig) -> None:
    """An upgraded deployment: the monitor's heartbeat has no ``first_run_at``; its ``last_run_at`` is the
    earliest evidence, recorded as ``first_run_at`` by the next write and kept from then on."""
    earlier = START - timedelta(minutes=10)
    rig.heartbeats[MONITOR_HEARTBEAT_ID] = {"last_run_at": earlier, "findings": 0}
    (pending,) = rig.pass_().findings
    assert pending.details["up_since"] == earlier.isoformat()
    assert rig.heartbeats[MONITOR_HEARTBEAT_ID]["first_run_at"] == earlier
    rig.advance(minutes=30)
    assert kinds(rig.pass_()) == [("retry_heartbeat_stale", "ERROR")]
    assert rig.heartbeats[MONITOR_HEARTBEAT_ID]["first_run_at"] == earlier


def test_a_dry_run_pass_does_not_start_the_grace(rig: Rig) -> None:
    rig.pass_(write=False)  # a dry run writes no heartbeat
    assert MONITOR_HEARTBEAT_ID not in rig.heartbeats
    rig.advance(hours=2)
    assert kinds(rig.pass_()) == [("retry_heartbeat_pending", "INFO")]  # the first real pass starts it


def test_a_pass_whose_check_failed_keeps_the_recorded_first_run(rig: Rig) -> None:
    rig.pass_()
    rig.advance(minutes=10)
    failed = MonitorReport(ran_at=rig.clock.now())  # the heartbeat check raised: up_since was not read
    rig.monitor.write_heartbeat(failed)
    beat = rig.heartbeats[MONITOR_HEARTBEAT_ID]
    assert beat["first_run_at"] == START and beat["last_run_at"] == rig.clock.now()


def test_monitor_up_since_is_none_before_the_first_pass(rig: Rig) -> None:
    assert monitor_up_since(rig.fs, rig.definition) is None  # type: ignore[arg-type]
