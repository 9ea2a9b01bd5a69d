"""The retry budget holds per (processor, game_date, generation), whoever enqueues (issue 25, A).

On the real emulators with a simulated clock: a date the phase 2→3 coverage gate blocks is
re-evaluated by the monitor every 10 minutes, and every block hands its missing games to auto-retry
again; auto-retry ticks every 15 minutes; the primary boxscore processor's re-run reports success
(it ran, the games are still not there), as the stand-ins and the real processor do.
"""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.contracts.messages import RetryRequest, RetryTick
from shared.retry.runtime import build_retry_service
from shared.retry.service import RetryService
from tests.shared.retry.test_retry_emulators import pull_requests, retry_subscription
from tests.support.rig import GAME_DATE, PHASE2, SEVEN, Rig

pytestmark = pytest.mark.integration

BDL, ESPN = "bdl_player_boxscores", "espn_boxscores"
MONITOR_EVERY, TICK_EVERY = timedelta(minutes=10), timedelta(minutes=15)


def five_minute_backoff(data: dict[str, Any]) -> None:
    """5 · 2ⁿ minutes between attempts (the packaged 15 · 2ⁿ takes ~4 h to spend the budget): the
    same schedule shape in a quarter of the simulated night."""
    data["retry"].update(base_delay_minutes=5, jitter_fraction=0.0)


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique, mutate=five_minute_backoff)


def retry_service(rig: Rig) -> RetryService:
    return build_retry_service(
        definition=rig.definition, clock=rig.clock, environ=rig.cloud.env(), rng=random.Random(3)
    )


def blocked_night(rig: Rig) -> None:
    """Seven Final games, four in no boxscore source; every phase-2 processor reports: blocked."""
    rig.seed_games(final=SEVEN, sources={"bdl": [g[0] for g in SEVEN[:3]]})
    transition = rig.services["phase2_to_phase3"]
    outcome = None
    for p in PHASE2:
        outcome = transition.handle_event(rig.event(rig.completion(p, 2)))
    assert outcome is not None and outcome.kind == "blocked", outcome


def simulate(rig: Rig, svc: RetryService, sub: str, hours: float) -> tuple[list[RetryRequest], dict[str, int]]:
    """``hours`` of the night after the block: monitor passes (re-evaluate + deliver the outbox), retry
    ticks, and every dispatched re-run answering success for its date. The dispatches, and the count of
    each outcome of the monitor's re-evaluations."""
    transition = rig.services["phase2_to_phase3"]
    assert svc.outbox is not None
    end = rig.clock.now() + timedelta(hours=hours)
    next_monitor, next_tick = rig.clock.now(), rig.clock.now() + timedelta(minutes=5)
    dispatched: list[RetryRequest] = []
    outcomes: dict[str, int] = {}
    while rig.clock.now() < end:
        now = rig.clock.now()
        if now >= next_monitor:  # the monitor's pass: the same gate, the same missing games, handed off again
            outcome = transition.evaluate(GAME_DATE, owner="monitor:test")
            outcomes[outcome.kind] = outcomes.get(outcome.kind, 0) + 1
            svc.outbox.deliver()
            next_monitor += MONITOR_EVERY
        if now >= next_tick:
            svc.tick(RetryTick())
            next_tick += TICK_EVERY
        for request in pull_requests(sub):
            dispatched.append(request)
            # the re-run found nothing new and says so the way the processor does: success for the date
            rig.clock.advance(minutes=1)
            transition.handle_event(rig.event(rig.completion(request.processor_name, request.phase)))
        rig.clock.set(min(next_monitor, next_tick))
    return dispatched, outcomes


def attempts(dispatched: list[RetryRequest], processor: str) -> list[int]:
    return [r.attempt for r in dispatched if r.processor_name == processor]


def test_fault_a_blocked_date_does_not_re_dispatch_past_its_retry_budget(rig: Rig) -> None:
    """Issue 25, A: measured over one simulated day, BDL was re-dispatched 14 times in 9.5 h.

    Before: each re-run's success closed the row as ``succeeded``; the next monitor pass merged the
    same missing games again, found no open row and inserted a fresh one with retry_count 0: a new
    budget every ~40 minutes, until the date left the monitor's lookback. Now the key
    (processor, game_date, generation) has one row whatever enqueues it: a re-queue keeps its
    retry count, so BDL is dispatched three times, goes ``failed_permanent`` and hands over to
    its fallback (ESPN) once; the monitor's later hand-offs find the terminal row and change nothing.
    """
    svc, sub = retry_service(rig), retry_subscription(rig)
    blocked_night(rig)
    budget = rig.definition.retry.max_retries

    dispatched, outcomes = simulate(rig, svc, sub, hours=2)
    assert outcomes.get("blocked", 0) >= 12, outcomes  # the gate kept blocking on every pass
    assert attempts(dispatched, BDL) == list(range(1, budget + 1)), [(r.processor_name, r.attempt) for r in dispatched]
    assert attempts(dispatched, ESPN) == [1]  # the fallback, once
    rows: dict[str, Any] = {}
    for row in svc.queue.rows(game_date=GAME_DATE):
        assert row.processor_name not in rows, [(r.processor_name, r.status) for r in svc.queue.rows()]
        rows[row.processor_name] = row
    bdl = rows[BDL]
    assert (bdl.status, bdl.retry_count) == ("failed_permanent", budget)
    assert bdl.resolution_notes is not None and f"max retries ({budget})" in bdl.resolution_notes
    assert rows[ESPN].fallback_for == BDL and rows[ESPN].retry_count == 1

    # the night goes on: more passes, more hand-offs of the same games, no dispatch, no new row
    more, _ = simulate(rig, svc, sub, hours=1)
    assert more == []
    assert [(r.processor_name, r.status, r.retry_count) for r in svc.queue.rows(processor=BDL)] == [
        (BDL, "failed_permanent", budget)
    ]


def budget_spent(rig: Rig, svc: RetryService, processor: str, generation: int = 1) -> None:
    """Every attempt of the key's row dispatched and failed, until the tick that finds the budget spent."""
    for _ in range(2 * rig.definition.retry.max_retries + 2):
        (row,) = [r for r in svc.queue.rows(processor=processor) if r.generation == generation]
        if row.status == "failed_permanent":
            return
        if row.status == "retrying":  # the attempt went out and failed
            rig.clock.advance(minutes=1)
            result = svc.enqueue_failure(
                game_date=GAME_DATE,
                phase=2,
                processor=processor,
                error_message="failed",
                error_type="transient",
                generation=generation,
            )
            assert result == "requeued"
            continue
        assert row.status == "pending" and row.next_retry_at is not None, row
        rig.clock.set(max(row.next_retry_at, rig.clock.now()))
        svc.tick(RetryTick())
    raise AssertionError("the budget was never spent")


def test_a_requeue_keeps_the_rows_count_and_never_resurrects_it(rig: Rig) -> None:
    """Whoever enqueues the key again: pending absorbs it, retrying and succeeded return to pending
    with their retry count, failed_permanent stays terminal; one row for the key throughout."""
    svc, sub = retry_service(rig), retry_subscription(rig)

    def again(**kw: Any) -> str:
        return svc.enqueue_failure(
            game_date=GAME_DATE,
            phase=2,
            processor="nbac_schedule",
            error_message="again",
            error_type="transient",
            **kw,
        )

    assert again() == "inserted"
    assert again() == "exists"
    (row,) = svc.queue.rows()
    assert (row.status, row.retry_count, row.generation) == ("pending", 0, 1)
    assert row.next_retry_at is not None
    rig.clock.set(row.next_retry_at)
    svc.tick(RetryTick())
    assert [r.attempt for r in pull_requests(sub)] == [1]
    # a failure recorded before the attempt went out is not its outcome
    assert again(failed_at=rig.clock.now() - timedelta(minutes=1)) == "exists"
    (row,) = svc.queue.rows()
    assert (row.status, row.retry_count) == ("retrying", 1)

    # the attempt's outcome: success; a failure recorded before that success changes nothing
    rig.clock.advance(minutes=1)
    transition = rig.services["phase2_to_phase3"]
    transition.handle_event(rig.event(rig.completion("nbac_schedule", 2)))
    rig.clock.advance(minutes=14)
    assert len(svc.tick(RetryTick()).succeeded) == 1
    assert again(failed_at=rig.clock.now() - timedelta(minutes=20)) == "exists"
    # a failure after it reopens the row: pending, its retry count kept, not closed again by the old success
    assert again() == "requeued"
    (row,) = svc.queue.rows()
    assert (row.status, row.retry_count, row.last_failure_at) == ("pending", 1, rig.clock.now())
    assert row.resolution_notes is not None and "reopened" in row.resolution_notes
    assert svc.tick(RetryTick()).succeeded == []

    budget_spent(rig, svc, "nbac_schedule")
    (row,) = svc.queue.rows()
    assert (row.status, row.retry_count) == ("failed_permanent", 3)
    assert [r.attempt for r in pull_requests(sub)] == [2, 3]
    assert again() == "terminal"
    rig.clock.advance(hours=3)
    assert svc.tick(RetryTick()).dispatched == []
    assert [(r.status, r.retry_count) for r in svc.queue.rows()] == [("failed_permanent", 3)]


def test_a_new_generation_starts_a_fresh_budget(rig: Rig) -> None:
    """``phasectl trigger --force`` opens generation 2 of the date: its failures get their own row and
    budget; generation 1's terminal row stays as it is, and an operator requeue names the latest."""
    svc, sub = retry_service(rig), retry_subscription(rig)
    assert enqueue_gen(svc, 1) == "inserted"
    budget_spent(rig, svc, "nbac_schedule")
    assert [r.attempt for r in pull_requests(sub)] == [1, 2, 3]
    assert enqueue_gen(svc, 1) == "terminal"

    assert enqueue_gen(svc, 2) == "inserted"
    assert enqueue_gen(svc, 2) == "exists"
    rows = sorted(svc.queue.rows(), key=lambda r: r.generation)
    assert [(r.generation, r.status, r.retry_count) for r in rows] == [(1, "failed_permanent", 3), (2, "pending", 0)]
    budget_spent(rig, svc, "nbac_schedule", generation=2)
    assert [r.attempt for r in pull_requests(sub)] == [1, 2, 3]
    # the operator's requeue (L11: terminal until an operator requeues) revives the latest generation only
    note = "ops: fixed upstream"
    assert svc.queue.requeue_permanent(game_date=GAME_DATE, phase=2, processor="nbac_schedule", note=note) == 1
    rows = sorted(svc.queue.rows(), key=lambda r: r.generation)
    assert [(r.generation, r.status, r.retry_count) for r in rows] == [(1, "failed_permanent", 3), (2, "pending", 0)]


def enqueue_gen(svc: RetryService, generation: int) -> str:
    return svc.enqueue_failure(
        game_date=GAME_DATE,
        phase=2,
        processor="nbac_schedule",
        error_message="failed",
        error_type="transient",
        generation=generation,
    )


def test_rows_from_before_one_row_per_key_reopen_only_the_latest(rig: Rig) -> None:
    """The queue written by the earlier code holds several succeeded rows of one key (a fresh row per
    re-queue, generation NULL): a failure reopens the latest one only, never all of them."""
    svc = retry_service(rig)
    table = f"`{rig.cloud.project}.{rig.definition.pipeline.dataset}.{rig.definition.retry.queue_table}`"
    t0 = rig.clock.now() - timedelta(hours=3)
    values = ", ".join(
        f"('old{i}', DATE '{GAME_DATE}', 2, '{BDL}', {i}, 3, TIMESTAMP '{t0 + timedelta(minutes=40 * i)}', "
        f"'succeeded', TIMESTAMP '{t0 + timedelta(minutes=40 * i)}', TIMESTAMP '{t0}')"
        for i in range(3)
    )
    from shared.gcp_bigquery import bigquery_client

    bigquery_client(rig.cloud.project).query(
        f"INSERT INTO {table} (id, game_date, phase, processor_name, retry_count, max_retries, first_failure_at, "
        f"status, created_at, updated_at) VALUES {values}"
    ).result()
    assert enqueue(svc, BDL) == "requeued"
    rows = {r.id: (r.status, r.retry_count, r.generation) for r in svc.queue.rows()}
    assert rows == {"old0": ("succeeded", 0, 1), "old1": ("succeeded", 1, 1), "old2": ("pending", 2, 1)}


def enqueue(svc: RetryService, processor: str) -> str:
    return svc.enqueue_failure(
        game_date=GAME_DATE, phase=2, processor=processor, error_message="missing", error_type="missing_games"
    )
