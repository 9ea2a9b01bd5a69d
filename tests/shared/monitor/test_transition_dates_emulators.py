"""The monitor's per-date checks on the real emulators (issue 25).

- the 120-day grid reads a bounded number of date documents per pass, whatever the stored
  history (a summary document says which dates were seen triggered), and still follows a date
  re-opened by an operator and a gap filled by a backfill;
- a date whose claim is live is being triggered by another attempt right now: never ``stuck``;
  a claim that expired (a crashed attempt) is;
- the ``silent`` grace is elapsed time after midnight, also on the DST fall-back night;
- the schedule read is re-used for an hour while no game is scheduled near today (out of season)
  and queried on every pass as soon as one is: a Final game inserted behind the monitor's back
  reaches the grid only when a pass queries again.

Firestore reads are counted at the test level: the real client's two read RPCs (``BatchGetDocuments``
for document gets and transactions, ``RunQuery`` for queries) are wrapped to count the documents
they return, as Firestore bills them (a query that returns nothing costs one read). The emulator
answers every call.
"""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.raw_tables import upstream_table
from shared.clock import today_et
from shared.contracts.messages import MonitorTick, make_trigger_id
from shared.gcp import firestore_client
from shared.gcp_bigquery import bigquery_client
from shared.monitor.findings import Finding, MonitorReport
from shared.monitor.grid_summary import RECHECK_PASSES
from shared.monitor.heartbeats import RETRY_HEARTBEAT_ID
from shared.monitor.runtime import Monitor, build_monitor
from shared.monitor.schedule_read import QUIET_REUSE, READ_DOC_ID
from shared.monitor.transition_dates import TransitionDateChecks
from shared.orchestration.state import TransitionState
from shared.orchestration.transition import Outcome
from tests.support.rig import MORNING_AFTER, Rig

pytestmark = pytest.mark.integration

LAST = "phase5_to_phase6"
ERA_DAYS = 150  # > grid_days (120) + 2: each test's schedule rows are outside every other test's grid
_eras = itertools.count(1)


# ---------------------------------------------------------------------------------------
# fixtures and helpers
# ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def shared_rig(local_cloud: LocalCloud) -> Rig:
    rig = Rig.create(local_cloud, uuid.uuid4().hex[:10])
    rig.seed_outputs(tables=[])  # the tables the gates and the grading sensor read exist, as in production
    return rig


@pytest.fixture
def rig(cloud: LocalCloud, shared_rig: Rig) -> Rig:
    """The module's rig at the morning after a night of its own era; Firestore is empty."""
    shared_rig.clock.set(MORNING_AFTER + timedelta(days=ERA_DAYS * next(_eras)))
    return shared_rig


@pytest.fixture
def monitor(rig: Rig) -> Monitor:
    return build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())


def today(rig: Rig) -> date:
    return today_et(rig.clock)


def run(monitor: Monitor, **tick: Any) -> MonitorReport:
    result, _ = monitor.run(MonitorTick(**tick))
    return result


def of_kind(result: MonitorReport, kind: str) -> list[Finding]:
    return [f for f in result.findings if f.kind == kind]


def gaps(result: MonitorReport) -> list[str]:
    return [d for f in of_kind(result, "grid_gap") for d in f.details["dates"]]


def report(rig: Rig, transition: str, processors: list[str], day: date) -> list[Outcome]:
    """Processors of the transition's source phase report completion for ``day``."""
    svc = rig.services[transition]
    if svc.transition.gates and svc.transition.source_phase > 2:
        rig.ensure_outputs(day)
    phase = svc.transition.source_phase
    return [svc.handle_event(rig.event(rig.completion(p, phase, game_date=day))) for p in processors]


def write_retry_heartbeat(rig: Rig) -> None:
    fs = firestore_client(rig.cloud.project)
    fs.collection(rig.definition.monitor.heartbeat_collection).document(RETRY_HEARTBEAT_ID).set(
        {"last_run_at": rig.clock.now(), "dry_run": False, "summary": {}}
    )


def seed_schedule(rig: Rig, days: list[date]) -> None:
    """One Final game on each of ``days`` (mid-season: every date of the grid had games), one insert."""
    g = rig.definition.games
    schedule = upstream_table(g.schedule_table)
    rows = [schedule.row(f"00225{n + 1:05d}", day, "BOS", "NYK", game_status=3) for n, day in enumerate(days)]
    assert bigquery_client(rig.cloud.project).insert_rows_json(f"{rig.cloud.project}.{g.schedule_table}", rows) == []


def store_triggered(rig: Rig, days: list[date]) -> None:
    """Phase-6 date documents as the latch leaves them (triggered, generation 1): stored history."""
    fs = firestore_client(rig.cloud.project)
    collection = fs.collection(rig.definition.pipeline.state_collection)
    now = rig.clock.now()
    for first in range(0, len(days), 200):  # a batch takes at most 500 writes
        batch = fs.batch()
        for day in days[first : first + 200]:
            batch.set(
                collection.document(f"{LAST}__{day.isoformat()}"),
                {
                    "transition": LAST,
                    "game_date": day.isoformat(),
                    "generation": 1,
                    "status": "triggered",
                    "claim": None,
                    "triggered": {"1": {"trigger_id": make_trigger_id(LAST, day, 1), "at": now, "status": "complete"}},
                    "updated_at": now,
                    rig.definition.retention.expiry_field: now + timedelta(days=400),
                },
            )
        batch.commit()


class ReadCounter:
    """Documents returned by the real client's read RPCs (one read each; an empty query costs one)."""

    def __init__(self) -> None:
        self.reads = 0

    def batch_get(self, real: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
        def call(*args: Any, **kwargs: Any) -> Iterator[Any]:
            for response in real(*args, **kwargs):
                if type(response).pb(response).WhichOneof("result") is not None:  # found or missing
                    self.reads += 1
                yield response

        return call

    def run_query(self, real: Callable[..., Any]) -> Callable[..., Iterator[Any]]:
        def call(*args: Any, **kwargs: Any) -> Iterator[Any]:
            returned = 0
            try:
                for response in real(*args, **kwargs):
                    if type(response).pb(response).HasField("document"):
                        returned += 1
                    yield response
            finally:
                self.reads += max(1, returned)

        return call


@pytest.fixture
def read_counter(rig: Rig, monkeypatch: pytest.MonkeyPatch) -> ReadCounter:
    """Counts every Firestore read of the process (the monitor, its services and alerts share one client)."""
    counter = ReadCounter()
    api = firestore_client(rig.cloud.project)._firestore_api
    monkeypatch.setattr(api, "batch_get_documents", counter.batch_get(api.batch_get_documents))
    monkeypatch.setattr(api, "run_query", counter.run_query(api.run_query))
    return counter


# ---------------------------------------------------------------------------------------
# the grid: a pass's reads do not grow with the stored history
# ---------------------------------------------------------------------------------------
def test_fault_monitor_reads_do_not_grow_with_history(
    cloud: LocalCloud, rig: Rig, monitor: Monitor, read_counter: ReadCounter
) -> None:
    """A monitor pass after the first reads as many Firestore documents with 10 stored days as with
    120. Before: the grid re-read every stored phase-6 date document of its 120-day window on every
    pass (one query, but one read per document)."""
    now = today(rig)
    grid_days = rig.definition.monitor.grid_days
    asked = [now - timedelta(days=n) for n in range(2, grid_days + 1)]  # every date the grid asks about
    seed_schedule(rig, asked)

    def steady_pass(stored_days: int) -> tuple[int, MonitorReport]:
        cloud.reset_firestore()
        store_triggered(rig, [now - timedelta(days=n) for n in range(1, stored_days + 1)])
        write_retry_heartbeat(rig)
        run(monitor)  # the first pass after a deploy: it reads the window once
        rig.clock.advance(minutes=10)  # the next scheduled pass
        read_counter.reads = 0
        result = run(monitor)
        return read_counter.reads, result

    few, few_report = steady_pass(10)
    many, many_report = steady_pass(grid_days)

    # the grid still answers: with 10 stored days the 110 older dates of the season are gaps
    (gap,) = of_kind(few_report, "grid_gap")
    assert gap.details["dates"] == [d.isoformat() for d in sorted(asked) if d < now - timedelta(days=10)]
    assert of_kind(many_report, "grid_gap") == []
    assert abs(many - few) <= 0.1 * few, f"a pass read {few} documents with 10 stored days, {many} with {grid_days}"


def test_grid_follows_a_reopened_date_and_a_filled_gap(rig: Rig, monitor: Monitor) -> None:
    """The summary is not trusted for ever: every date of the window is re-read at least once every
    ``RECHECK_PASSES`` passes, so an operator's re-open (a new generation, not triggered) becomes a
    gap and a backfilled gap resolves within that many passes; a date of the lookback window is
    re-read on every pass."""
    now = today(rig)
    grid_days = rig.definition.monitor.grid_days
    asked = [now - timedelta(days=n) for n in range(2, grid_days + 1)]
    seed_schedule(rig, asked)
    store_triggered(rig, asked)
    write_retry_heartbeat(rig)
    assert of_kind(run(monitor), "grid_gap") == []

    state = TransitionState.for_definition(firestore_client(rig.cloud.project), rig.definition, LAST, rig.clock)
    old, recent = now - timedelta(days=100), now - timedelta(days=2)
    state.reopen(old, rig.clock.now(), "operator re-trigger")
    state.reopen(recent, rig.clock.now(), "operator re-trigger")

    def passes_until(seen: Callable[[MonitorReport], bool]) -> int:
        for n in range(1, RECHECK_PASSES + 1):
            rig.clock.advance(minutes=10)
            if seen(run(monitor)):
                return n
        raise AssertionError(f"not seen within {RECHECK_PASSES} passes")

    rig.clock.advance(minutes=10)
    assert gaps(run(monitor)) in ([recent.isoformat()], [old.isoformat(), recent.isoformat()])  # recent: at once
    passes_until(lambda r: gaps(r) == [old.isoformat(), recent.isoformat()])

    store_triggered(rig, [old, recent])  # both re-triggered (a backfill)
    passes_until(lambda r: gaps(r) == [])


# ---------------------------------------------------------------------------------------
# stuck: not while another attempt holds a live claim
# ---------------------------------------------------------------------------------------
def claim_as_another_attempt(rig: Rig, transition: str, day: date) -> Any:
    """A late completion's attempt claims the date (the real claim transaction) and is still working."""
    state = rig.services[transition].state
    claim = state.claim(
        day, f"msg:late:{uuid.uuid4().hex[:12]}", rig.clock.now(), lambda gen: make_trigger_id(transition, day, gen)
    )
    assert claim.result == "claimed"
    return claim


@pytest.mark.parametrize("dry_run", [False, True])
def test_fault_no_stuck_while_the_claim_is_live(rig: Rig, monitor: Monitor, dry_run: bool) -> None:
    """Completions recorded long ago, not triggered, and an attempt holds a live claim on the date:
    it is being triggered right now, not stuck. Once the claim has expired (the attempt crashed) the
    date is stuck. Before: ``stuck`` fired while the claim was live."""
    name = "phase3_to_phase4"
    day = today(rig) - timedelta(days=1)  # overnight mode: five phase-3 processors expected
    assert [o.kind for o in report(rig, name, ["player_game_summary"], day)] == ["waiting"]
    rig.clock.advance(minutes=rig.definition.transition(name).stuck_after_minutes + 5)
    claim_as_another_attempt(rig, name, day)

    live = run(monitor, dry_run=dry_run)
    assert of_kind(live, "stuck") == [], [f.message for f in live.findings]

    rig.clock.advance(rig.services[name].state.claim_ttl + timedelta(minutes=1))
    expired = run(monitor, dry_run=dry_run)
    (stuck,) = of_kind(expired, "stuck")
    assert (stuck.transition, stuck.game_date) == (name, day)


def test_no_stuck_when_the_claim_is_taken_while_the_monitor_evaluates(
    rig: Rig, monitor: Monitor, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The race itself: the monitor loaded the date without a claim, then a late completion's attempt
    claimed it before the monitor's evaluation decided (still waiting on the monitor's side): no stuck."""
    name = "phase3_to_phase4"
    day = today(rig) - timedelta(days=1)
    report(rig, name, ["player_game_summary"], day)
    rig.clock.advance(minutes=rig.definition.transition(name).stuck_after_minutes + 5)
    service = monitor.checks.services[name]
    evaluate = service.evaluate

    def racing(game_date: date, **kwargs: Any) -> Outcome:
        if game_date == day:
            claim_as_another_attempt(rig, name, day)
        return evaluate(game_date, **kwargs)

    monkeypatch.setattr(service, "evaluate", racing)
    result = run(monitor)
    assert of_kind(result, "stuck") == [], [f.message for f in result.findings]


# ---------------------------------------------------------------------------------------
# silent: the grace is elapsed time, on the DST night too
# ---------------------------------------------------------------------------------------
def test_fault_silent_grace_is_elapsed_time_on_the_dst_night(rig: Rig) -> None:
    """2026-10-31's games, nothing reported. The grace ends ``stuck_after_minutes`` (120) of elapsed
    time after midnight New York: 2026-11-01 04:00 UTC + 2 h = 06:00 UTC, which is 01:00 EST (the
    clocks fell back at 02:00 EDT). Before: midnight + 120 min was added in wall time (02:00 EST =
    07:00 UTC), an hour late, so the date was not silent at 06:30 UTC."""
    day = date(2026, 10, 31)
    tz = ZoneInfo(rig.definition.pipeline.timezone)
    first = rig.definition.transitions[0]
    assert first.stuck_after_minutes == 120 and tz.key == "America/New_York"
    checks = TransitionDateChecks(rig.definition, rig.clock, firestore_client(rig.cloud.project), rig.services, tz)

    def silent_at(moment: datetime) -> list[Finding]:
        rig.clock.set(moment)
        found = checks.check(first.name, day, 5, MonitorReport(ran_at=moment), dry_run=False)
        return [f for f in found if f.kind == "silent"]

    assert silent_at(datetime(2026, 11, 1, 5, 59, tzinfo=UTC)) == []  # 01:59 EDT: within the grace
    (silent,) = silent_at(datetime(2026, 11, 1, 6, 30, tzinfo=UTC))  # 01:30 EST, the second one
    assert (silent.transition, silent.game_date, silent.details) == (first.name, day, {"final_games": 5})


# ---------------------------------------------------------------------------------------
# the schedule read: re-used for an hour while no game is scheduled near today (cost)
# ---------------------------------------------------------------------------------------
def schedule(rig: Rig, day: date, game_id: str, status: int) -> None:
    """One schedule row (3: Final, 1: Scheduled), inserted now."""
    g = rig.definition.games
    row = upstream_table(g.schedule_table).row(game_id, day, "BOS", "NYK", game_status=status)
    assert bigquery_client(rig.cloud.project).insert_rows_json(f"{rig.cloud.project}.{g.schedule_table}", [row]) == []


def stored_read(rig: Rig) -> dict[str, Any] | None:
    fs = firestore_client(rig.cloud.project)
    return fs.collection(rig.definition.monitor.heartbeat_collection).document(READ_DOC_ID).get().to_dict()


def test_a_quiet_schedule_is_read_once_an_hour(rig: Rig, monitor: Monitor) -> None:
    old = today(rig) - timedelta(days=10)
    assert gaps(run(monitor)) == []  # no game anywhere near: quiet, the answer is stored
    stored = stored_read(rig)
    assert stored is not None and stored["quiet"] is True and stored["final_games"] == {}

    schedule(rig, old, "0022500001", status=3)  # a backfilled schedule row, behind the monitor's back
    rig.clock.advance(minutes=10)
    assert gaps(run(monitor)) == []  # the quiet answer of 10 minutes ago: no query
    rig.clock.advance(QUIET_REUSE - timedelta(minutes=10))
    assert gaps(run(monitor)) == [old.isoformat()]  # an hour later the pass queries and sees it


def test_a_game_scheduled_near_today_makes_every_pass_query(rig: Rig, monitor: Monitor) -> None:
    old = today(rig) - timedelta(days=10)
    schedule(rig, today(rig), "0022500002", status=1)  # tonight's game, not played yet
    assert gaps(run(monitor)) == []
    stored = stored_read(rig)
    assert stored is None or stored["quiet"] is False or stored["window"][2] != today(rig).isoformat()

    schedule(rig, old, "0022500003", status=3)
    rig.clock.advance(minutes=10)
    assert gaps(run(monitor)) == [old.isoformat()]  # the next pass: queried again


def test_a_dry_run_pass_stores_nothing(rig: Rig, monitor: Monitor) -> None:
    assert gaps(run(monitor, dry_run=True)) == []
    read = stored_read(rig)
    assert read is None or read["window"][2] != today(rig).isoformat()
