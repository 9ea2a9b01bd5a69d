"""Auto-retry on the real emulators (Pub/Sub, Firestore, local-bigquery), named after the lessons.

Every test builds one isolated ``Rig`` and a ``RetryService`` on it with the rig's
``FixedClock``; dispatches are observed on a real pull subscription of the phase-2 retry
topic. DML conflicts (which the emulator never produces) are simulated by a thin proxy
around the real BigQuery client that raises the real ``google.api_core`` exception for the
first N matching statements and otherwise delegates.
"""

from __future__ import annotations

import ast
import http.server
import io
import json
import math
import random
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import google.cloud.pubsub_v1 as pubsub_v1
import pytest
from google.api_core import exceptions as gexc

from deploy.local.emulators import LocalCloud, free_port
from deploy.local.topology import ensure_subscription
from shared import structured_log
from shared.contracts.messages import MonitorTick, RetryRequest, RetryTick
from shared.errors import TransientError
from shared.gcp import subscriber_client
from shared.gcp_bigquery import bigquery_client
from shared.monitor.runtime import build_monitor
from shared.orchestration.transition import TransitionService
from shared.retry.dispatch import RetryDispatcher
from shared.retry.queue import QueueRow, RetryQueue
from shared.retry.runtime import build_retry_service
from shared.retry.service import RetryService, TickReport
from tests.support.rig import GAME_DATE, Rig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
QUEUE_SOURCE = REPO / "shared" / "retry" / "queue.py"
BDL, ESPN = "bdl_player_boxscores", "espn_boxscores"


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def retry_service(rig: Rig, seed: int = 7) -> RetryService:
    return build_retry_service(
        definition=rig.definition, clock=rig.clock, environ=rig.cloud.env(), rng=random.Random(seed)
    )


def handle_and_deliver(svc: RetryService, transition: TransitionService, event: Any) -> None:
    """A completion event, then what auto-retry does on the transition's nudge: deliver the outbox
    (the transition writes a failed completion's hand-off there, never the queue itself)."""
    transition.handle_event(event)
    assert svc.outbox is not None
    svc.outbox.deliver()


def retry_subscription(rig: Rig, phase: int = 2) -> str:
    topic = rig.definition.phase(phase).retry_topic
    assert topic is not None
    return ensure_subscription(
        subscriber_client(), rig.cloud.project, topic, f"capture-{topic}", ack_deadline_seconds=10
    )


def pull_requests(subscription: str) -> list[RetryRequest]:
    """Everything waiting on ``subscription`` (acked), checking the attributes match the body."""
    subscriber = subscriber_client()
    out: list[RetryRequest] = []
    while True:
        response = subscriber.pull(subscription=subscription, max_messages=50, timeout=10, return_immediately=True)
        if not response.received_messages:
            return out
        for received in response.received_messages:
            request = RetryRequest.model_validate_json(received.message.data)
            attributes = received.message.attributes
            assert attributes["queue_id"] == request.queue_id
            assert attributes["processor_name"] == request.processor_name
            assert attributes["attempt"] == str(request.attempt)
            assert attributes.get("fallback_for") == request.fallback_for
            out.append(request)
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])


def only(rows: list[QueueRow]) -> QueueRow:
    assert len(rows) == 1, rows
    return rows[0]


def minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def enqueue(svc: RetryService, processor: str, *, error_type: str = "transient", **kw: Any) -> str:
    return svc.enqueue_failure(
        game_date=kw.pop("game_date", GAME_DATE),
        phase=kw.pop("phase", 2),
        processor=processor,
        error_message=kw.pop("error_message", f"{processor} failed"),
        error_type=error_type,
        **kw,
    )


def run_sql(rig: Rig, sql: str) -> list[dict[str, Any]]:
    job = bigquery_client(rig.cloud.project).query(sql)
    return [dict(r) for r in job.result()]


def table(rig: Rig, name: str) -> str:
    return f"`{rig.cloud.project}.{rig.definition.pipeline.dataset}.{name}`"


def tick_concurrently(services: list[RetryService]) -> list[TickReport]:
    """Tick every service at once, each reading its due rows before any of them claims one."""
    barrier = threading.Barrier(len(services), timeout=60)

    def tick(svc: RetryService) -> TickReport:
        real_due = svc.queue.due

        def due(now: datetime, limit: int) -> list[QueueRow]:
            rows = real_due(now, limit)
            barrier.wait()  # every instance has read the same due rows
            return rows

        svc.queue.due = due  # type: ignore[method-assign]
        try:
            return svc.tick(RetryTick())
        finally:
            del svc.queue.due  # the real method again

    with ThreadPoolExecutor(len(services)) as pool:
        return list(pool.map(tick, services))


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


# ---------------------------------------------------------------------------------------
# L10: backoff, bounded retries
# ---------------------------------------------------------------------------------------
def test_l10_backoff_schedule_is_bounded(rig: Rig) -> None:
    """15 / 30 / 60 min (± 10 %) between attempts, never early; after max_retries → failed_permanent."""
    svc, sub = retry_service(rig), retry_subscription(rig)
    t0 = rig.clock.now()
    assert enqueue(svc, "nbac_schedule") == "inserted"
    row = only(svc.queue.rows())
    assert row.status == "pending" and row.retry_count == 0 and row.max_retries == 3
    waits = [minutes(row.next_retry_at - t0)] if row.next_retry_at else []
    for attempt in (1, 2, 3):
        due_at = row.next_retry_at
        assert due_at is not None
        assert svc.queue.due(due_at - timedelta(seconds=1), 50) == []  # not a second early
        rig.clock.set(due_at)
        report = svc.tick(RetryTick())
        assert len(report.dispatched) == 1 and report.dispatched[0].endswith(f"attempt {attempt}"), report.summary()
        (request,) = pull_requests(sub)
        assert (request.queue_id, request.processor_name, request.attempt) == (row.id, "nbac_schedule", attempt)
        row = only(svc.queue.rows())
        assert (row.status, row.retry_count, row.last_retry_at) == ("retrying", attempt, due_at)
        assert row.next_retry_at is not None
        waits.append(minutes(row.next_retry_at - due_at))
        assert enqueue(svc, "nbac_schedule", error_message=f"attempt {attempt} failed") == "requeued"
    for wait, nominal in zip(waits, (15, 30, 60, 120), strict=True):
        assert nominal * 0.9 <= wait <= nominal * 1.1, waits
    assert len(set(waits)) == 4  # jitter is applied per attempt

    assert row.next_retry_at is not None
    rig.clock.set(row.next_retry_at)
    final = svc.tick(RetryTick())
    assert final.dispatched == [] and len(final.permanent) == 1, final.summary()
    row = only(svc.queue.rows())
    assert (row.status, row.retry_count) == ("failed_permanent", 3)
    assert row.resolution_notes is not None and "max retries (3)" in row.resolution_notes
    assert pull_requests(sub) == []
    # no recycling: a new failure of the terminal key neither resets it nor opens a row (L11)
    assert enqueue(svc, "nbac_schedule", error_message="failed again") == "terminal"
    rig.clock.advance(hours=6)
    assert svc.tick(RetryTick()).dispatched == []
    row = only(svc.queue.rows())
    assert (row.status, row.retry_count) == ("failed_permanent", 3)
    assert pull_requests(sub) == []


def test_l10_duplicate_ticks_do_not_double_dispatch(rig: Rig) -> None:
    """Two auto-retry instances tick at the same instant over the same due rows."""
    processors = ["nbac_schedule", "nbac_injury_report", "odds_api_player_points_props"]
    a, b = retry_service(rig, seed=1), retry_service(rig, seed=2)
    sub = retry_subscription(rig)
    for p in processors:
        assert enqueue(a, p) == "inserted"
    rig.clock.advance(minutes=20)
    reports = tick_concurrently([a, b])
    dispatched = [k for r in reports for k in r.dispatched]
    skipped = [k for r in reports for k in r.skipped]
    assert len(dispatched) == 3, [r.summary() for r in reports]
    assert len(skipped) == 3  # each row was seen by both and claimed by one
    requests = pull_requests(sub)
    assert sorted(r.processor_name for r in requests) == sorted(processors)
    assert all(r.attempt == 1 for r in requests)
    assert len({r.queue_id for r in requests}) == 3
    assert all((r.status, r.retry_count) == ("retrying", 1) for r in a.queue.rows())
    # the scheduler redelivers the same tick: nothing is pending any more
    again = b.tick(RetryTick())
    assert again.dispatched == [] and again.skipped == []
    assert pull_requests(sub) == []


# ---------------------------------------------------------------------------------------
# L11: terminal means terminal, unroutable is terminal at once, no starvation
# ---------------------------------------------------------------------------------------
def test_l11_failed_permanent_is_terminal_until_requeued(rig: Rig) -> None:
    transition = rig.services["phase2_to_phase3"]
    svc, sub = retry_service(rig), retry_subscription(rig)
    failed = rig.completion(BDL, 2, status="failed", error_message="HTTP 502", error_type="transient")
    handle_and_deliver(svc, transition, rig.event(failed))
    rig.clock.advance(minutes=20)
    assert len(svc.tick(RetryTick()).dispatched) == 1
    assert [r.processor_name for r in pull_requests(sub)] == [BDL]

    # the retried run reports a permanent error: terminal at once, fallback enqueued
    permanent = rig.completion(BDL, 2, status="failed", error_message="HTTP 404: no such date", error_type="permanent")
    handle_and_deliver(svc, transition, rig.event(permanent))
    bdl, espn = svc.queue.rows()
    assert (bdl.processor_name, bdl.status, bdl.retry_count) == (BDL, "failed_permanent", 1)
    assert bdl.resolution_notes is not None and "permanent error reported by the processor" in bdl.resolution_notes
    assert (espn.processor_name, espn.status, espn.fallback_for, espn.retry_count) == (ESPN, "pending", BDL, 0)

    # more failures of the terminal key: no new row, no reset, no dispatch
    handle_and_deliver(svc, transition, rig.event(rig.completion(BDL, 2, status="failed", error_message="again")))
    rig.clock.advance(minutes=15)
    svc.tick(RetryTick())
    assert [r.processor_name for r in pull_requests(sub)] == [ESPN]  # the fallback only, once
    rows = svc.queue.rows()
    assert [(r.processor_name, r.status, r.retry_count) for r in rows] == [
        (BDL, "failed_permanent", 1),
        (ESPN, "retrying", 1),
    ]

    # an operator requeue: pending at once with a fresh budget
    assert svc.queue.requeue_permanent(game_date=GAME_DATE, phase=2, processor=BDL, note="ops: BDL fixed") == 1
    bdl = only(svc.queue.rows(processor=BDL))
    assert (bdl.status, bdl.retry_count, bdl.next_retry_at) == ("pending", 0, rig.clock.now())
    assert bdl.resolution_notes == "ops: BDL fixed"
    report = svc.tick(RetryTick())
    assert any(k.startswith(BDL) and k.endswith("attempt 1") for k in report.dispatched), report.summary()
    (request,) = pull_requests(sub)
    assert (request.processor_name, request.attempt, request.queue_id) == (BDL, 1, bdl.id)

    # a permanent failure with no row yet goes straight to failed_permanent, with its fallback
    day = GAME_DATE - timedelta(days=1)
    first = rig.completion(BDL, 2, game_date=day, status="failed", error_message="HTTP 400", error_type="permanent")
    handle_and_deliver(svc, transition, rig.event(first))
    assert sorted((r.processor_name, r.status, r.fallback_for or "") for r in svc.queue.rows(game_date=day)) == [
        (BDL, "failed_permanent", ""),
        (ESPN, "pending", BDL),
    ]


def test_l11_unroutable_goes_permanent_at_once(cloud: LocalCloud, unique: str) -> None:
    """A processor with no retry route goes failed_permanent with a reason; a dry run changes nothing."""

    def no_phase3_route(data: dict[str, Any]) -> None:
        phase3 = next(p for p in data["phases"] if p["number"] == 3)
        del phase3["retry_topic"]

    rig = Rig.create(cloud, unique, mutate=no_phase3_route)
    assert rig.definition.retry_route("player_game_summary") is None
    svc, sub = retry_service(rig), retry_subscription(rig)
    assert enqueue(svc, "player_game_summary", phase=3) == "inserted"
    assert enqueue(svc, "nbac_schedule") == "inserted"
    rig.clock.advance(minutes=20)
    before = svc.queue.rows()

    dry = svc.tick(RetryTick(dry_run=True))
    assert dry.dry_run and dry.dispatched == [] and dry.permanent == []
    assert any(w.startswith("dispatch nbac_schedule") for w in dry.would), dry.would
    assert any(w.startswith("failed_permanent player_game_summary") and "unroutable" in w for w in dry.would)
    assert svc.queue.rows() == before  # nothing changed
    assert pull_requests(sub) == []

    report = svc.tick(RetryTick())
    assert [k.split("@")[0] for k in report.permanent] == ["player_game_summary"]
    assert [k.split("@")[0] for k in report.dispatched] == ["nbac_schedule"]
    p3 = only(svc.queue.rows(processor="player_game_summary"))
    assert (p3.status, p3.retry_count) == ("failed_permanent", 0)
    assert p3.resolution_notes is not None and "unroutable" in p3.resolution_notes
    assert "player_game_summary" in p3.resolution_notes
    assert [r.processor_name for r in pull_requests(sub)] == ["nbac_schedule"]
    # it never comes back as due work
    rig.clock.advance(minutes=15)
    assert svc.tick(RetryTick()).permanent == []
    assert svc.queue.due(rig.clock.now(), 50) == []


def test_l11_no_starvation_by_old_rows(rig: Rig) -> None:
    """12 long-due rows that keep failing, max_rows 4: a new row is dispatched within a bounded number of ticks.

    Ordered by creation instead of due time, the old rows (due again 30 min after each attempt)
    would fill every tick until they exhausted their retries.
    """
    svc = retry_service(rig)
    t0 = rig.clock.now()
    old, max_rows = 12, 4

    def ts(when: datetime) -> str:
        return f"TIMESTAMP '{when.isoformat()}'"

    values = ",\n".join(
        f"('old-{i:02d}', DATE '{date(2025, 11, 1) + timedelta(days=i)}', 2, 'nbac_schedule', 'kept failing', "
        f"'transient', 0, 3, {ts(t0 - timedelta(days=3))}, {ts(t0 - timedelta(days=1))}, 'pending', "
        f"{ts(t0 - timedelta(days=3, seconds=-i))}, {ts(t0 - timedelta(days=3, seconds=-i))})"
        for i in range(old)
    )
    run_sql(
        rig,
        f"INSERT INTO {table(rig, rig.definition.retry.queue_table)} (id, game_date, phase, processor_name, "
        "error_message, error_type, retry_count, max_retries, first_failure_at, next_retry_at, status, created_at, "
        f"updated_at) VALUES {values}",
    )
    assert len(svc.queue.due(t0, 100)) == old
    assert enqueue(svc, "nbac_schedule", game_date=GAME_DATE) == "inserted"
    new = only(svc.queue.rows(game_date=GAME_DATE))

    bound = math.ceil(old / max_rows) + 1  # each old row once, then the new one
    rig.clock.set(t0 + timedelta(minutes=20))
    for _ in range(bound):
        report = svc.tick(RetryTick(max_rows=max_rows))
        assert len(report.dispatched) == max_rows, report.summary()
        if any(k.split("#")[1].split()[0] == new.id[:8] for k in report.dispatched):
            break
        # every dispatched old row fails again at once (what enqueue does to a retrying row)
        run_sql(
            rig,
            f"UPDATE {table(rig, rig.definition.retry.queue_table)} SET status = 'pending' WHERE status = 'retrying'",
        )
        rig.clock.advance(minutes=15)
    else:
        pytest.fail(f"the new row was not dispatched within {bound} ticks")
    assert only(svc.queue.rows(game_date=GAME_DATE)).status == "retrying"


# ---------------------------------------------------------------------------------------
# L18: parameterised SQL
# ---------------------------------------------------------------------------------------
ALLOWED_INTERPOLATIONS = {"self.table", "self.conflict_table", "_COLUMNS", "placeholders"}
SQL_CALLS = {"self._dml": 1, "self._select": 0, "self._query": 0, "self.client.query": 0}


def sql_violations(source: str) -> tuple[list[str], int]:
    """(violations, number of SQL f-strings checked) for every SQL argument in ``source``."""
    tree = ast.parse(source)
    violations: list[str] = []
    checked = 0
    for func in (n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef)):
        params = {a.arg for a in func.args.args + func.args.kwonlyargs}
        for call in (n for n in ast.walk(func) if isinstance(n, ast.Call)):
            index = SQL_CALLS.get(ast.unparse(call.func))
            if index is None or len(call.args) <= index:
                continue
            sql = call.args[index]
            where = f"{func.name}:{sql.lineno}"
            if isinstance(sql, ast.Name) and sql.id == "sql" and "sql" in params:
                continue  # the statement passed through from a checked caller
            parts = [sql]
            while parts:
                part = parts.pop()
                if isinstance(part, ast.BinOp) and isinstance(part.op, ast.Add):
                    parts += [part.left, part.right]
                elif isinstance(part, ast.Constant) and isinstance(part.value, str):
                    continue
                elif isinstance(part, ast.JoinedStr):
                    checked += 1
                    for value in part.values:
                        if isinstance(value, ast.FormattedValue):
                            text = ast.unparse(value.value)
                            if text not in ALLOWED_INTERPOLATIONS or value.format_spec is not None:
                                violations.append(f"{where}: interpolates {text!r} into SQL")
                else:
                    violations.append(f"{where}: SQL built by {ast.unparse(part)!r}, not a literal or f-string")
    for node in ast.walk(tree):  # the allowed names hold no values
        if isinstance(node, ast.Assign) and any(ast.unparse(t) == "placeholders" for t in node.targets):
            for inner in (n for n in ast.walk(node.value) if isinstance(n, ast.JoinedStr)):
                head = inner.values[0]
                if not (isinstance(head, ast.Constant) and str(head.value).startswith("@")):
                    violations.append(f"placeholders builds more than @parameter names: {ast.unparse(inner)}")
        if isinstance(node, ast.Assign) and any(ast.unparse(t) == "_COLUMNS" for t in node.targets):
            if not (isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)):
                violations.append("_COLUMNS is not a literal")
    return violations, checked


def test_l18_queue_sql_is_parameterised() -> None:
    source = QUEUE_SOURCE.read_text()
    violations, checked = sql_violations(source)
    assert violations == []
    assert checked >= 9  # enqueue, _requeue, requeue_permanent, return_stale, due, snapshot, rows, claim, ...
    assert ".format(" not in source and "% (" not in source
    # the checker itself catches a value interpolated into a statement
    bad = (
        "class Q:\n    def claim(self, row):\n        return self._dml('claim', "
        "f\"UPDATE {self.table} SET status = 'retrying' WHERE id = '{row.id}'\", [])\n"
    )
    assert sql_violations(bad)[0] == ["claim:3: interpolates 'row.id' into SQL"]
    concatenated = "class Q:\n    def rows(self, p):\n        return self._select('SELECT 1 WHERE x = ' + p, [])\n"
    assert sql_violations(concatenated)[0] == ["rows:3: SQL built by 'p', not a literal or f-string"]


# ---------------------------------------------------------------------------------------
# fallbacks, outcomes, client errors
# ---------------------------------------------------------------------------------------
def test_fallback_fires_once(rig: Rig) -> None:
    """BDL out of retries → failed_permanent → ESPN queued and dispatched once (even with two ticking instances)."""
    a, b = retry_service(rig, seed=1), retry_service(rig, seed=2)
    sub = retry_subscription(rig)
    ids = ("0022500644", "0022500645")
    assert enqueue(a, BDL, error_type="missing_games", game_ids=ids, correlation_id="night-1") == "inserted"
    # the row has spent its budget: three attempts dispatched, each failed (the real cycle: test_l10_backoff_...)
    rig.clock.advance(hours=3)
    run_sql(rig, f"UPDATE {table(rig, rig.definition.retry.queue_table)} SET retry_count = 3 WHERE TRUE")

    reports = tick_concurrently([a, b])
    assert sorted(len(r.permanent) for r in reports) == [0, 1], [r.summary() for r in reports]
    assert [f for r in reports for f in r.fallbacks] == [f"{ESPN}@{GAME_DATE} for {BDL}"]
    (request,) = pull_requests(sub)  # dispatched in the same tick
    assert (request.processor_name, request.fallback_for, request.attempt) == (ESPN, BDL, 1)
    assert request.game_ids == list(ids) and request.correlation_id == "night-1"
    bdl, espn = a.queue.rows()
    assert (bdl.processor_name, bdl.status, bdl.retry_count) == (BDL, "failed_permanent", 3)
    assert bdl.resolution_notes is not None and "max retries (3)" in bdl.resolution_notes
    assert (espn.processor_name, espn.status, espn.fallback_for, espn.retry_count, espn.phase) == (
        ESPN,
        "retrying",
        BDL,
        1,
        2,
    )

    # more failures of BDL and another tick: no second fallback
    assert enqueue(a, BDL, error_type="permanent") == "terminal"
    rig.clock.advance(minutes=15)
    assert a.tick(RetryTick()).fallbacks == []
    assert [r.id for r in a.queue.rows(processor=ESPN)] == [espn.id]
    assert pull_requests(sub) == []


def test_failed_completion_enqueues_once_and_later_success_resolves_it(rig: Rig) -> None:
    transition = rig.services["phase2_to_phase3"]
    svc, sub = retry_service(rig), retry_subscription(rig)
    failed = rig.event(
        rig.completion(BDL, 2, status="failed", error_message="HTTP 502 from upstream", error_type="transient")
    )
    for _ in range(3):  # the same message delivered three times
        handle_and_deliver(svc, transition, failed)
    alias = rig.completion("BdlPlayerBoxscoresProcessor", 2, status="failed")
    handle_and_deliver(svc, transition, rig.event(alias))
    row = only(svc.queue.rows())
    assert (row.processor_name, row.phase, row.status, row.retry_count) == (BDL, 2, "pending", 0)
    assert (row.error_message, row.error_type, row.correlation_id) == (
        "HTTP 502 from upstream",
        "transient",
        f"night-{GAME_DATE}",
    )

    rig.clock.advance(minutes=20)
    assert len(svc.tick(RetryTick()).dispatched) == 1
    assert len(pull_requests(sub)) == 1
    rig.clock.advance(minutes=5)
    # a success of another processor resolves nothing
    handle_and_deliver(svc, transition, rig.event(rig.completion(ESPN, 2)))
    assert svc.tick(RetryTick()).succeeded == []
    assert only(svc.queue.rows()).status == "retrying"
    handle_and_deliver(svc, transition, rig.event(rig.completion(BDL, 2, status="success")))
    report = svc.tick(RetryTick())
    assert len(report.succeeded) == 1 and report.dispatched == [], report.summary()
    row = only(svc.queue.rows())
    assert row.status == "succeeded" and row.resolution_notes == "success completion recorded"
    assert pull_requests(sub) == []


def test_stale_retrying_rows_return_to_pending(rig: Rig) -> None:
    """A dispatched retry with no outcome for 2 h goes back to pending (and is dispatched again)."""
    svc, sub = retry_service(rig), retry_subscription(rig)
    enqueue(svc, "nbac_schedule")
    rig.clock.advance(minutes=20)
    svc.tick(RetryTick())
    dispatched_at = rig.clock.now()
    assert len(pull_requests(sub)) == 1

    rig.clock.set(dispatched_at + timedelta(minutes=119))
    quiet = svc.tick(RetryTick())
    assert quiet.returned_stale == 0 and quiet.dispatched == []
    row = only(svc.queue.rows())
    assert (row.status, row.retry_count) == ("retrying", 1)

    rig.clock.set(dispatched_at + timedelta(minutes=121))
    dry = svc.tick(RetryTick(dry_run=True))
    assert dry.returned_stale == 0 and only(svc.queue.rows()).status == "retrying"
    report = svc.tick(RetryTick())
    assert report.returned_stale == 1
    assert [d.rsplit(" ", 1)[1] for d in report.dispatched] == ["2"]  # due since its backoff: redispatched
    (request,) = pull_requests(sub)
    assert (request.attempt, request.queue_id) == (2, row.id)
    row = only(svc.queue.rows())
    assert (row.status, row.retry_count, row.last_retry_at) == ("retrying", 2, rig.clock.now())


class _Endpoint(http.server.BaseHTTPRequestHandler):
    statuses: list[int]
    received: list[tuple[dict[str, str], bytes]]

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        type(self).received.append((dict(self.headers), body))
        status = type(self).statuses.pop(0)
        payload = b"bad request: unknown game_date for this scraper" if status < 500 else b"upstream down"
        self.send_response(status)
        self.send_header("Content-Length", str(len(payload)))
        self.end_headers()
        self.wfile.write(payload)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


@pytest.fixture
def endpoint() -> Iterator[tuple[str, type[_Endpoint]]]:
    handler = type("Endpoint", (_Endpoint,), {"statuses": [], "received": []})
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/retry", handler
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=10)


def test_client_error_from_retry_url_is_permanent_at_once(
    cloud: LocalCloud, unique: str, endpoint: tuple[str, type[_Endpoint]]
) -> None:
    """A 5xx from the processor's retry_url is a failed *dispatch*, a 4xx a client error.

    Changed (the 5xx half): a 5xx used to count as a spent retry (retry_count 1, the exponential
    backoff before the next try), so an endpoint down for a while burnt the processor's whole budget
    without the processor ever running. Now the dispatch is undone: pending with retry_count 0, due
    again on the next tick, ``dispatch_failures`` 1 (see
    ``test_fault_dispatch_failure_does_not_spend_retry_budget``). The next request is therefore
    attempt 1 again. A 4xx stays permanent at once.
    """
    url, handler = endpoint

    def route_by_url(data: dict[str, Any]) -> None:
        data["retry"]["dispatch_auth"] = "none"
        proc = next(p for p in data["processors"] if p["name"] == "nbac_injury_report")
        proc["retry_url"] = url

    rig = Rig.create(cloud, unique, mutate=route_by_url)
    assert rig.definition.retry_route("nbac_injury_report") == ("url", url)
    svc = retry_service(rig)
    enqueue(svc, "nbac_injury_report")

    # a 5xx is transient: the dispatch failed, the row is pending with its budget intact, due next tick
    handler.statuses[:] = [503, 400]
    row = only(svc.queue.rows())
    assert row.next_retry_at is not None
    rig.clock.set(row.next_retry_at)
    report = svc.tick(RetryTick())
    assert len(report.deferred) == 1 and report.permanent == [] and report.dispatched == [], report.summary()
    row = only(svc.queue.rows())
    assert (row.status, row.retry_count, row.dispatch_failures) == ("pending", 0, 1)
    assert row.next_retry_at == rig.clock.now()  # not after the backoff
    assert row.resolution_notes is not None and "503" in row.resolution_notes

    # a 4xx is a client error: failed_permanent at once, budget left or not
    rig.clock.advance(minutes=15)  # the next tick
    report = svc.tick(RetryTick())
    assert len(report.permanent) == 1 and report.dispatched == [], report.summary()
    row = only(svc.queue.rows())
    assert (row.status, row.retry_count) == ("failed_permanent", 1)
    assert row.resolution_notes is not None
    assert row.resolution_notes.startswith("client error:") and "400" in row.resolution_notes
    assert "unknown game_date" in row.resolution_notes
    bodies = [RetryRequest.model_validate_json(body) for _, body in handler.received]
    assert [(b.processor_name, b.attempt, b.queue_id) for b in bodies] == [
        ("nbac_injury_report", 1, row.id),
        ("nbac_injury_report", 1, row.id),  # the 503 did not count: the same attempt, sent again
    ]
    assert all("Authorization" not in headers for headers, _ in handler.received)  # dispatch_auth = "none"
    assert handler.statuses == []

    # client_errors_permanent = false: a 4xx is retried like any other failure
    lenient_definition = rig.definition.model_copy(
        update={"retry": rig.definition.retry.model_copy(update={"client_errors_permanent": False})}
    )
    lenient = build_retry_service(
        definition=lenient_definition, clock=rig.clock, environ=rig.cloud.env(), rng=random.Random(3)
    )
    day = GAME_DATE - timedelta(days=1)
    enqueue(lenient, "nbac_injury_report", game_date=day)
    handler.statuses[:] = [400]
    rig.clock.advance(minutes=20)
    report = lenient.tick(RetryTick())
    assert len(report.deferred) == 1 and report.permanent == [], report.summary()
    assert only(lenient.queue.rows(game_date=day)).status == "pending"


# ---------------------------------------------------------------------------------------
# DML conflicts (streaming buffer, concurrent DML, quota): bounded retries, logged
# ---------------------------------------------------------------------------------------
class ConflictingClient:
    """The real BigQuery client, except that the next matching statements raise ``errors`` first."""

    def __init__(self, real: Any, match: Callable[[str], bool]) -> None:
        self.real = real
        self.match = match
        self.errors: list[Exception] = []
        self.raised = 0

    def query(self, sql: str, *args: Any, **kwargs: Any) -> Any:
        if self.errors and self.match(sql):
            self.raised += 1
            raise self.errors.pop(0)
        return self.real.query(sql, *args, **kwargs)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.real, name)


STREAMING = (
    "UPDATE or DELETE statement over table p.d.t would affect rows in the streaming buffer, which is not supported"
)
SERIALIZE = "Could not serialize access to table p.d.t due to concurrent update"
QUOTA = "Quota exceeded: Your table exceeded quota for UPDATE, DELETE or MERGE queries per table"


def test_dml_conflicts_are_retried_bounded_and_logged(rig: Rig) -> None:
    policy = rig.definition.retry
    client = ConflictingClient(bigquery_client(rig.cloud.project), lambda sql: sql.lstrip().startswith("MERGE"))
    slept: list[float] = []
    queue = RetryQueue(
        client, rig.cloud.project, rig.definition.pipeline.dataset, policy, rig.clock, sleep=slept.append
    )
    conflict_log = table(rig, policy.conflict_log_table)

    def log_rows() -> list[dict[str, Any]]:
        return run_sql(
            rig,
            f"SELECT conflict_type, retry_attempt, max_retries, delay_seconds, resolved, resolution_method, "
            f"rows_affected, processor_name, game_date, error_message, details, resolution_time "
            f"FROM {conflict_log} ORDER BY timestamp, retry_attempt",
        )

    # two streaming-buffer conflicts on the insert of a new key, then the statement goes through
    client.errors[:] = [gexc.BadRequest(STREAMING), gexc.BadRequest(STREAMING)]
    assert queue.enqueue(game_date=GAME_DATE, phase=2, processor=BDL, error_message="x", error_type="t") == "inserted"
    assert client.raised == 2 and slept == [2.0, 4.0]
    rows = log_rows()
    assert [(r["conflict_type"], r["retry_attempt"], r["resolved"], r["resolution_method"]) for r in rows] == [
        ("streaming_buffer", 1, False, None),
        ("streaming_buffer", 2, False, None),
        ("streaming_buffer", 3, True, "retried"),
    ]
    assert [r["delay_seconds"] for r in rows] == [2.0, 4.0, 0.0]
    assert all(r["max_retries"] == policy.dml_max_attempts for r in rows)
    assert all((r["processor_name"], r["game_date"]) == (BDL, GAME_DATE) for r in rows)
    assert all(json.loads(r["details"]) == {"operation": "enqueue"} for r in rows)
    assert STREAMING in rows[0]["error_message"] and rows[2]["error_message"] is None
    assert rows[2]["rows_affected"] == 1 and rows[2]["resolution_time"] == rig.clock.now()

    # a conflict that persists: bounded, then TransientError and a "gave_up" row
    row = only(queue.rows())
    slept.clear()
    client.match = lambda sql: sql.lstrip().startswith("UPDATE")
    client.errors[:] = [gexc.BadRequest(SERIALIZE)] * policy.dml_max_attempts
    rig.clock.advance(minutes=1)
    with pytest.raises(TransientError, match="concurrent_dml conflict persisted after 4 attempts"):
        queue.claim(row, rig.clock.now(), rig.clock.now() + timedelta(minutes=30))
    assert slept == [2.0, 4.0, 8.0]
    gave_up = [r for r in log_rows() if r["conflict_type"] == "concurrent_dml"]
    assert [(r["retry_attempt"], r["resolved"], r["resolution_method"]) for r in gave_up] == [
        (1, False, None),
        (2, False, None),
        (3, False, None),
        (4, False, "gave_up"),
    ]
    assert [r["delay_seconds"] for r in gave_up] == [2.0, 4.0, 8.0, 0.0]
    assert all(json.loads(r["details"]) == {"operation": "claim"} for r in gave_up)
    assert only(queue.rows()).status == "pending"  # nothing half-applied

    # a quota conflict on a MERGE is retried too; a non-conflict error is not retried nor logged
    client.match = lambda sql: sql.lstrip().startswith("MERGE")
    client.errors[:] = [gexc.Forbidden(QUOTA)]
    day = GAME_DATE - timedelta(days=1)
    assert queue.enqueue(game_date=day, phase=2, processor=BDL, error_message="x", error_type="t") == "inserted"
    quota = [r for r in log_rows() if r["conflict_type"] == "quota_exceeded"]
    assert [(r["retry_attempt"], r["resolved"]) for r in quota] == [(1, False), (2, True)]
    before, slept_before = len(log_rows()), list(slept)
    client.errors[:] = [gexc.BadRequest("Syntax error: Unexpected keyword WHERE at [1:20]")]
    with pytest.raises(TransientError, match="Syntax error"):
        queue.enqueue(game_date=day - timedelta(days=1), phase=2, processor=BDL, error_message="x", error_type="t")
    assert len(log_rows()) == before and slept == slept_before


# ---------------------------------------------------------------------------------------
# a failed dispatch is not a failed re-run
# ---------------------------------------------------------------------------------------
def unreachable_publisher(monkeypatch: pytest.MonkeyPatch) -> pubsub_v1.PublisherClient:
    """A real publisher client pointed at a loopback port nothing listens on (Pub/Sub unreachable)."""
    with monkeypatch.context() as env:  # the client reads the emulator host when it is built
        env.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
        return pubsub_v1.PublisherClient(publisher_options=pubsub_v1.types.PublisherOptions(timeout=5.0))


def alert_lines(log: io.StringIO, alert: str) -> list[dict[str, Any]]:
    entries = [json.loads(line) for line in log.getvalue().splitlines() if line.strip()]
    return [e for e in entries if e.get(structured_log.LABELS_KEY, {}).get("alert") == alert]


def test_fault_dispatch_failure_does_not_spend_retry_budget(
    rig: Rig, monkeypatch: pytest.MonkeyPatch, captured_log: io.StringIO
) -> None:
    """Pub/Sub is unreachable for the dispatcher: the processor never ran, so no retry is spent.

    Before: each failed publish counted as a retry (retry_count + 1, then the 15·2ⁿ backoff), so
    three failed publishes made the row failed_permanent without the processor running once.
    Now: pending, retry_count 0, due again on the next tick, ``dispatch_failures`` counted; from the
    third consecutive tick an ERROR with alert=retry_dispatch_failing and a monitor finding; once
    Pub/Sub is back the row goes out as attempt 1 and the count is reset.
    """
    svc, sub = retry_service(rig), retry_subscription(rig)
    dispatcher = RetryDispatcher(unreachable_publisher(monkeypatch), rig.cloud.project, auth="none", timeout=3.0)
    broken = RetryService(
        rig.definition, svc.queue, dispatcher, rig.clock, firestore_client=svc.firestore, rng=random.Random(7)
    )
    assert enqueue(svc, "nbac_schedule") == "inserted"
    row = only(svc.queue.rows())
    assert row.next_retry_at is not None
    rig.clock.set(row.next_retry_at)

    for tick in (1, 2, 3, 4):
        report = broken.tick(RetryTick())
        assert report.dispatched == [] and report.permanent == [] and len(report.deferred) == 1, report.summary()
        row = only(svc.queue.rows())
        assert (row.status, row.retry_count, row.max_retries) == ("pending", 0, 3)  # the budget is untouched
        assert row.next_retry_at == rig.clock.now()  # due on the next tick, not after the backoff
        assert row.last_retry_at is None and row.dispatch_failures == tick
        assert row.resolution_notes is not None and "no retry spent" in row.resolution_notes
        assert len(report.dispatch_failing) == (1 if tick >= 3 else 0)
        assert len(alert_lines(captured_log, "retry_dispatch_failing")) == max(0, tick - 2)
        rig.clock.advance(minutes=15)
    (line, _) = alert_lines(captured_log, "retry_dispatch_failing")
    assert line["severity"] == "ERROR" and "nbac_schedule" in line["message"]
    assert pull_requests(sub) == []

    monitor = build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())
    result, _ = monitor.run(MonitorTick())
    (failing,) = [f for f in result.findings if f.kind == "retry_dispatch_failing"]
    assert failing.severity == "ERROR" and failing.details == {"rows": [f"nbac_schedule@{GAME_DATE}"]}
    assert "4 ticks" in failing.message
    assert "retry_overdue" not in {f.kind for f in result.findings}

    # Pub/Sub reachable again: the first real attempt, the full budget ahead, the count reset
    report = svc.tick(RetryTick())
    assert [d.rsplit(" ", 1)[1] for d in report.dispatched] == ["1"], report.summary()
    (request,) = pull_requests(sub)
    assert (request.processor_name, request.attempt, request.queue_id) == ("nbac_schedule", 1, row.id)
    row = only(svc.queue.rows())
    assert (row.status, row.retry_count, row.dispatch_failures) == ("retrying", 1, 0)
    result, _ = monitor.run(MonitorTick())
    assert "retry_dispatch_failing" not in {f.kind for f in result.findings}
