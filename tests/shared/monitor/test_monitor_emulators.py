"""The transition monitor on the real emulators (lessons L06, L12).

Each check fires on a constructed state and stays quiet on a healthy one; a deadline tier
fires exactly once when the monitor and a late completion race for the claim; alerts are
deduplicated across runs; the 120-day grid finds an old gap; the reads per run do not grow
with the number of stored dates.

Speed: creating a rig (topics, eight BigQuery tables, subscriptions) costs ~7 s on
local-bigquery, so this module shares one rig. Every test still starts from a clean slate:
the ``cloud`` fixture empties Firestore, the trigger subscriptions are drained, tests that
write the retry queue empty it afterwards, and every test runs in its own *calendar era*
(the rig's clock moved ``ERA_DAYS`` further each test), so schedule rows of earlier tests are
far outside the 120-day grid and the lookback window of later ones.
"""

from __future__ import annotations

import collections
import itertools
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import date, datetime, time, timedelta
from time import monotonic
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription, ensure_topic
from deploy.spec import ClosureFacts, FunctionSpec, build_spec
from shared.clock import today_et
from shared.contracts.messages import MonitorTick, RetryTick
from shared.deferred import Deferred
from shared.gcp import firestore_client, publisher_client, subscriber_client
from shared.gcp_bigquery import bigquery_client
from shared.monitor.alerts import AlertResult, SlackWebhook
from shared.monitor.checks import MONITOR_TIMEOUT_ENV, TransitionMonitor
from shared.monitor.findings import Finding, MonitorReport
from shared.monitor.heartbeats import (
    MONITOR_HEARTBEAT_ID,
    RETRY_HEARTBEAT_ID,
    monitor_heartbeat,
    retry_heartbeat_grace,
)
from shared.monitor.runtime import Monitor, build_monitor
from shared.orchestration.transition import Outcome
from shared.retry.queue import RetryQueue
from shared.retry.runtime import build_retry_service
from tests.support.rig import GAMES, MORNING_AFTER, PHASE2, Rig, date_teams

pytestmark = pytest.mark.integration

PHASE3 = [
    "player_game_summary",
    "team_offense_game_summary",
    "team_defense_game_summary",
    "upcoming_player_game_context",
    "upcoming_team_game_context",
]
PHASE4 = [
    "team_defense_zone_analysis",
    "player_shot_zone_analysis",
    "player_composite_factors",
    "player_daily_cache",
    "ml_feature_store",
]
TRANSITIONS = ["phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5", "phase5_to_phase6"]
# > grid_days (120) + the oldest offset a test seeds (130): eras never see each other's rows
ERA_DAYS = 150
_eras = itertools.count()


# ---------------------------------------------------------------------------------------
# fixtures
# ---------------------------------------------------------------------------------------
def unique_dead_letter_names(suffix: str) -> Callable[[dict[str, Any]], None]:
    """Dead-letter subscription names carry no topic suffix (``<function>-dlq-sub``): a rig makes its own
    with a unique ``[deploy] dead_letter_suffix``, so rigs sharing the emulator never see each other's."""

    def mutate(data: dict[str, Any]) -> None:
        data.setdefault("deploy", {})["dead_letter_suffix"] = f"-dlq-{suffix}"

    return mutate


def create_dead_letter_subscriptions(rig: Rig) -> dict[str, FunctionSpec]:
    """Every function's dead-letter topic and pull subscription, named as ``deploy.spec`` names them."""
    spec = build_spec(rig.definition, rig.cloud.project, facts=lambda _: ClosureFacts(frozenset(), frozenset()))
    subscriber = subscriber_client()
    for fn in spec.functions:
        ensure_topic(publisher_client(), rig.cloud.project, fn.dead_letter_topic)
        ensure_subscription(subscriber, rig.cloud.project, fn.dead_letter_topic, fn.dead_letter_subscription)
    return {fn.name: fn for fn in spec.functions}


@pytest.fixture(scope="module")
def shared_rig(local_cloud: LocalCloud) -> Rig:
    import uuid

    suffix = uuid.uuid4().hex[:10]
    rig = Rig.create(local_cloud, suffix, mutate=unique_dead_letter_names(suffix))
    create_dead_letter_subscriptions(rig)
    rig.seed_outputs(tables=[])  # the tables the gates and the grading sensor read exist, as in production
    return rig


@pytest.fixture
def rig(cloud: LocalCloud, shared_rig: Rig) -> Rig:
    """The module's rig at the morning after a night of its own era; Firestore is empty."""
    shared_rig.clock.set(MORNING_AFTER + timedelta(days=ERA_DAYS * next(_eras)))
    for transition in TRANSITIONS:
        shared_rig.pull_triggers(transition)  # drain whatever an earlier test left behind
    return shared_rig


@pytest.fixture
def clean_queue(rig: Rig) -> Iterator[RetryQueue]:
    """The rig's retry queue, emptied after the test (the monitor's queue check is global)."""
    queue = RetryQueue(
        Deferred(lambda: bigquery_client(rig.cloud.project)),
        rig.cloud.project,
        rig.definition.pipeline.dataset,
        rig.definition.retry,
        rig.clock,
    )
    yield queue
    queue.client.query(f"DELETE FROM {queue.table} WHERE TRUE").result(timeout=60)


@pytest.fixture
def monitor(rig: Rig) -> Monitor:
    return build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())


# ---------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------
def today(rig: Rig) -> date:
    return today_et(rig.clock)


def report(rig: Rig, transition: str, processors: list[str], day: date, **extra: Any) -> list[Outcome]:
    """Processors of the transition's source phase report completion for ``day``."""
    svc = rig.services[transition]
    phase = svc.transition.source_phase
    if svc.transition.gates and phase > 2:
        rig.ensure_outputs(day)  # the processors wrote their rows: the 3→4 and 4→5 gates pass
    return [svc.handle_event(rig.event(rig.completion(p, phase, game_date=day, **extra))) for p in processors]


def of_kind(monitor_report: MonitorReport, kind: str) -> list[Finding]:
    return [f for f in monitor_report.findings if f.kind == kind]


def kinds(monitor_report: MonitorReport) -> list[str]:
    return sorted(f.kind for f in monitor_report.findings)


def run(monitor: Monitor, **tick: Any) -> tuple[MonitorReport, AlertResult]:
    result, alerts = monitor.run(MonitorTick(**tick))
    assert alerts is not None
    return result, alerts


def write_retry_heartbeat(rig: Rig, at: datetime | None = None) -> None:
    fs = firestore_client(rig.cloud.project)
    fs.collection(rig.definition.monitor.heartbeat_collection).document(RETRY_HEARTBEAT_ID).set(
        {"last_run_at": at or rig.clock.now(), "dry_run": False, "summary": {}}
    )


def play_healthy_night(rig: Rig, day: date) -> None:
    """Every game covered, every phase reports, every transition triggers once."""
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES]}, game_date=day)
    outcomes = {
        "phase2_to_phase3": report(rig, "phase2_to_phase3", PHASE2, day),
        "phase3_to_phase4": report(rig, "phase3_to_phase4", PHASE3, day),
        "phase4_to_phase5": report(rig, "phase4_to_phase5", PHASE4, day),
        "phase5_to_phase6": report(
            rig, "phase5_to_phase6", ["prediction_coordinator"], day, completion_pct=96.0, record_count=420
        ),
    }
    for transition, results in outcomes.items():
        assert [o.kind for o in results].count("triggered") == 1, (transition, [(o.kind, o.detail) for o in results])
        assert len(rig.pull_triggers(transition)) == 1


# ---------------------------------------------------------------------------------------
# a healthy night: every check quiet
# ---------------------------------------------------------------------------------------
def test_healthy_night_is_quiet_on_every_check(rig: Rig, monitor: Monitor) -> None:
    day = today(rig) - timedelta(days=2)  # in the lookback window and old enough for the grid
    now = rig.clock.now()
    rig.clock.set(datetime.combine(day + timedelta(days=1), time(5), ZoneInfo("America/New_York")))
    play_healthy_night(rig, day)  # played the morning after, 05:00 ET: within every [slo] target
    rig.clock.set(now)
    rig.clock.advance(hours=3)  # past stuck_after_minutes and the handoff timeout
    write_retry_heartbeat(rig)

    result, alerts = run(monitor)

    assert result.findings == [], [f.message for f in result.findings]
    assert result.triggered == []
    # every transition date, and the grading sensor on the one date with Final games (no predictions)
    assert result.dates_checked == len(TRANSITIONS) * (rig.definition.monitor.lookback_days + 1) + 1
    assert alerts.alerted == [] and alerts.rate_limited == []
    assert rig.pull_triggers("phase4_to_phase5") == []  # the monitor re-evaluated, never re-triggered


# ---------------------------------------------------------------------------------------
# silent (L06) and the grid (L12)
# ---------------------------------------------------------------------------------------
def test_l12_silent_date_with_final_games_fires(rig: Rig, monitor: Monitor) -> None:
    day = today(rig) - timedelta(days=1)
    rig.seed_games(game_date=day)  # five Final games, and nothing reported at all

    result, alerts = run(monitor)

    (silent,) = of_kind(result, "silent")
    assert (silent.transition, silent.game_date, silent.severity) == ("phase2_to_phase3", day, "ERROR")
    assert silent.details == {"final_games": len(GAMES)}
    assert silent.key in alerts.alerted


def test_l12_healthy_date_with_final_games_is_not_silent(rig: Rig, monitor: Monitor) -> None:
    day = today(rig) - timedelta(days=1)
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES]}, game_date=day)
    report(rig, "phase2_to_phase3", PHASE2[:1], day)  # the first processor has reported: not silent

    result, _ = run(monitor)

    assert of_kind(result, "silent") == []
    # auto-retry has not run yet; at 09:00 ET the night's 2→3 trigger is past its SLO (06:00 ET)
    assert kinds(result) == ["retry_heartbeat_pending", "slo_breach"]


def test_l12_grid_catches_an_old_gap(rig: Rig, monitor: Monitor) -> None:
    now = today(rig)
    gap = now - timedelta(days=100)  # far outside the 3-day lookback
    stopped_at_phase4 = now - timedelta(days=80)  # triggered upstream, but never reached phase 6
    done = now - timedelta(days=50)
    beyond = now - timedelta(days=rig.definition.monitor.grid_days + 10)
    for day in (gap, stopped_at_phase4, done, beyond):
        rig.seed_games(game_date=day)
    (phase6,) = report(rig, "phase5_to_phase6", ["prediction_coordinator"], done, completion_pct=99.0, record_count=400)
    assert phase6.kind == "triggered", phase6.detail
    assert "triggered" in [o.kind for o in report(rig, "phase3_to_phase4", PHASE3, stopped_at_phase4)]

    result, alerts = run(monitor)

    (grid,) = of_kind(result, "grid_gap")
    assert grid.details == {"dates": [gap.isoformat(), stopped_at_phase4.isoformat()]}
    assert grid.severity == "CRITICAL" and gap.isoformat() in grid.message
    assert grid.key in alerts.alerted
    assert of_kind(result, "silent") == []  # the lookback window alone would never have seen it


# ---------------------------------------------------------------------------------------
# stuck and blocked
# ---------------------------------------------------------------------------------------
def test_stuck_fires_after_stuck_after_minutes_with_the_missing_processors(rig: Rig, monitor: Monitor) -> None:
    day = today(rig) - timedelta(days=1)  # overnight mode: five phase-3 processors expected
    (outcome,) = report(rig, "phase3_to_phase4", ["player_game_summary"], day)
    assert outcome.kind == "waiting"
    stuck_after = rig.definition.transition("phase3_to_phase4").stuck_after_minutes

    rig.clock.advance(minutes=stuck_after - 5)
    before, _ = run(monitor)
    assert of_kind(before, "stuck") == []

    rig.clock.advance(minutes=10)
    after, _ = run(monitor)
    (stuck,) = of_kind(after, "stuck")
    assert (stuck.transition, stuck.game_date) == ("phase3_to_phase4", day)
    assert sorted(stuck.details["missing"]) == sorted(PHASE3[1:])
    assert f"{stuck_after + 5} min after the first completion" in stuck.message
    assert after.triggered == [] and rig.pull_triggers("phase3_to_phase4") == []


def test_blocked_date_reports_the_breaker_reason(rig: Rig, monitor: Monitor, clean_queue: RetryQueue) -> None:
    day = today(rig) - timedelta(days=1)
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES[:2]]}, game_date=day)  # 3 of 5 games have no boxscore
    outcomes = report(rig, "phase2_to_phase3", PHASE2, day)
    assert outcomes[-1].kind == "blocked"

    result, alerts = run(monitor)

    (blocked,) = of_kind(result, "blocked")
    assert (blocked.transition, blocked.game_date, blocked.severity) == ("phase2_to_phase3", day, "ERROR")
    assert "circuit breaker" in blocked.details["reason"]
    assert sorted(blocked.details["missing_games"]) == sorted(date_teams(g, day) for g in GAMES[2:])
    assert of_kind(result, "stuck") == []
    assert blocked.key in alerts.alerted
    assert rig.pull_triggers("phase2_to_phase3") == []


# ---------------------------------------------------------------------------------------
# handoff
# ---------------------------------------------------------------------------------------
def test_handoff_fires_when_the_next_phase_reports_nothing(rig: Rig, monitor: Monitor) -> None:
    silent_next = today(rig) - timedelta(days=1)
    reporting_next = today(rig) - timedelta(days=2)
    for day in (silent_next, reporting_next):
        assert "triggered" in [o.kind for o in report(rig, "phase3_to_phase4", PHASE3, day)]
    published = {t.game_date: t.trigger_id for t in rig.pull_triggers("phase3_to_phase4")}
    assert sorted(published) == [reporting_next, silent_next]
    timeout = rig.definition.monitor.handoff_timeout_minutes

    rig.clock.advance(minutes=timeout - 10)
    before, _ = run(monitor)
    assert of_kind(before, "handoff") == []

    report(rig, "phase4_to_phase5", PHASE4[:1], reporting_next)  # phase 4 started on one date only
    rig.clock.advance(minutes=15)
    after, _ = run(monitor)

    (handoff,) = of_kind(after, "handoff")
    assert (handoff.transition, handoff.game_date) == ("phase3_to_phase4", silent_next)
    assert handoff.details == {"trigger_id": published[silent_next]}  # the trigger id that went out


# ---------------------------------------------------------------------------------------
# deadline tiers: fired by the monitor, exactly once
# ---------------------------------------------------------------------------------------
def test_deadline_tier_fires_from_the_monitor_without_a_new_message(rig: Rig, monitor: Monitor) -> None:
    day = today(rig) - timedelta(days=1)
    assert [o.kind for o in report(rig, "phase4_to_phase5", PHASE4[:3], day)] == ["waiting"] * 3
    rig.clock.advance(minutes=121)  # tier 2: 3 of 5 after 120 min

    first, alerts = run(monitor)

    trigger_id = f"phase4_to_phase5:{day}:g1"
    assert first.triggered == [trigger_id]
    (finding,) = of_kind(first, "deadline_trigger")
    assert (finding.transition, finding.game_date, finding.details) == (
        "phase4_to_phase5",
        day,
        {"trigger_id": trigger_id},
    )
    assert of_kind(first, "stuck") == []
    (trigger,) = rig.pull_triggers("phase4_to_phase5")
    assert trigger.trigger_id == trigger_id and trigger.status == "deadline_exceeded"
    assert finding.key in alerts.alerted

    rig.clock.advance(minutes=10)
    second, alerts = run(monitor)
    assert second.triggered == [] and of_kind(second, "deadline_trigger") == []
    assert rig.pull_triggers("phase4_to_phase5") == []
    assert finding.key in alerts.resolved


@pytest.mark.parametrize("first_claim", ["simultaneous", "late_completion", "monitor"])
def test_deadline_tier_monitor_and_late_completion_race_trigger_once(
    rig: Rig, monitor: Monitor, monkeypatch: pytest.MonkeyPatch, first_claim: str
) -> None:
    """Both sides decide Ready and reach the claim together; exactly one publishes."""
    day = today(rig) - timedelta(days=1)
    report(rig, "phase4_to_phase5", PHASE4[:3], day)
    rig.clock.advance(minutes=121)  # the tier is due: the monitor may fire it, so may the 4th completion

    at_claim = threading.Barrier(2, timeout=60)
    claimed = {"completion": threading.Event(), "monitor": threading.Event()}
    winner = {"late_completion": "completion", "monitor": "monitor"}.get(first_claim)  # None: simultaneous

    def gated(side: str, real: Callable[..., Any]) -> Callable[..., Any]:
        other = "monitor" if side == "completion" else "completion"

        def claim(*args: Any, **kwargs: Any) -> Any:
            at_claim.wait()  # both sides have decided Ready: neither has claimed yet
            if winner is not None and side != winner:
                assert claimed[other].wait(60)  # the loser claims only after the winner's claim returned
            try:
                return real(*args, **kwargs)
            finally:
                claimed[side].set()

        return claim

    completion_state = rig.services["phase4_to_phase5"].state
    monitor_state = monitor.checks.services["phase4_to_phase5"].state
    monkeypatch.setattr(completion_state, "claim", gated("completion", completion_state.claim))
    monkeypatch.setattr(monitor_state, "claim", gated("monitor", monitor_state.claim))
    late = rig.event(rig.completion(PHASE4[3], 4, game_date=day))

    with ThreadPoolExecutor(max_workers=2) as pool:
        from_monitor = pool.submit(run, monitor)
        from_completion = pool.submit(rig.services["phase4_to_phase5"].handle_event, late)
        (result, _), outcome = from_monitor.result(timeout=120), from_completion.result(timeout=120)

    trigger_id = f"phase4_to_phase5:{day}:g1"
    triggers = rig.pull_triggers("phase4_to_phase5")
    assert [t.trigger_id for t in triggers] == [trigger_id]
    monitor_fired = result.triggered == [trigger_id]
    completion_fired = outcome.kind == "triggered"
    assert monitor_fired != completion_fired, (result.triggered, outcome.kind, outcome.detail)
    if first_claim == "monitor":
        assert monitor_fired and outcome.kind in ("claimed_elsewhere", "already_triggered")
    if first_claim == "late_completion":
        assert completion_fired and result.triggered == []
    # the side that lost the claim is not a problem to report: the date is being triggered
    assert of_kind(result, "stuck") == [], [f.message for f in result.findings]
    assert len(of_kind(result, "deadline_trigger")) == int(monitor_fired)
    state = rig.services["phase4_to_phase5"].state.load(day)
    assert state.triggered_current is not None and state.triggered_current["trigger_id"] == trigger_id
    assert {c.processor for c in state.completions} == set(PHASE4[:4])


# ---------------------------------------------------------------------------------------
# retry queue health and the auto-retry heartbeat
# ---------------------------------------------------------------------------------------
def test_retry_queue_failed_permanent_and_overdue_rows_fire(
    rig: Rig, monitor: Monitor, clean_queue: RetryQueue
) -> None:
    # The era's own night: the queue check reads only its window (QUEUE_WINDOW_DAYS back from now),
    # and earlier tests move the shared clock on by whole eras, so a fixed date would fall out of it.
    night = today(rig) - timedelta(days=1)
    write_retry_heartbeat(rig)
    quiet, _ = run(monitor)  # empty queue
    assert quiet.findings == [], [f.message for f in quiet.findings]

    for processor in ("bdl_player_boxscores", "nbac_gamebook_player_stats"):
        assert (
            clean_queue.enqueue(
                game_date=night, phase=2, processor=processor, error_message="boom", error_type="transient"
            )
            == "inserted"
        )
    (gamebook,) = clean_queue.rows(game_date=night, processor="nbac_gamebook_player_stats")
    assert clean_queue.mark_permanent(gamebook, "max retries (3) reached without success")
    overdue_after = rig.definition.monitor.overdue_pending_minutes
    rig.clock.advance(minutes=overdue_after + 1)
    assert (
        clean_queue.enqueue(  # pending, but not due for an hour: not overdue
            game_date=night,
            phase=2,
            processor="espn_boxscores",
            error_message="boom",
            error_type="transient",
            next_retry_at=rig.clock.now() + timedelta(hours=1),
        )
        == "inserted"
    )
    write_retry_heartbeat(rig)

    result, alerts = run(monitor)

    (permanent,) = of_kind(result, "retry_failed_permanent")
    assert permanent.details == {"rows": [f"nbac_gamebook_player_stats@{night}"]}
    (overdue,) = of_kind(result, "retry_overdue")
    assert overdue.details == {"rows": [f"bdl_player_boxscores@{night}"]}
    assert kinds(result) == ["retry_failed_permanent", "retry_overdue"]
    assert sorted(alerts.alerted) == ["retry_failed_permanent", "retry_overdue"]


def test_queue_findings_come_from_the_auto_retry_heartbeat_while_it_is_fresh(
    rig: Rig, monitor: Monitor, clean_queue: RetryQueue
) -> None:
    """Cost: a tick stores the queue's health in its heartbeat and a monitor pass reports from it, no
    BigQuery statement of its own. Proof: rows deleted behind both still show until the heartbeat is
    stale; then the pass reads the table itself (and reports the stale heartbeat)."""
    night = today(rig) - timedelta(days=1)
    for processor, due_in in (("nbac_gamebook_player_stats", 0), ("bdl_player_boxscores", 60)):
        assert (
            clean_queue.enqueue(
                game_date=night,
                phase=2,
                processor=processor,
                error_message="boom",
                error_type="transient",
                next_retry_at=rig.clock.now() + timedelta(minutes=due_in + 60),
            )
            == "inserted"
        )
    (gamebook,) = clean_queue.rows(game_date=night, processor="nbac_gamebook_player_stats")
    assert clean_queue.mark_permanent(gamebook, "max retries (3) reached without success")
    build_retry_service(
        definition=rig.definition, clock=rig.clock, environ=rig.cloud.env(), with_dispatcher=False
    ).tick(RetryTick())  # nothing due: the tick only reads the queue and writes its heartbeat
    fs = firestore_client(rig.cloud.project)
    beat = fs.collection(rig.definition.monitor.heartbeat_collection).document(RETRY_HEARTBEAT_ID).get().to_dict()
    assert beat is not None and beat["queue"]["complete"] is True
    assert sorted((r["processor_name"], r["status"]) for r in beat["queue"]["rows"]) == [
        ("bdl_player_boxscores", "pending"),
        ("nbac_gamebook_player_stats", "failed_permanent"),
    ]
    clean_queue.client.query(f"DELETE FROM {clean_queue.table} WHERE TRUE").result(timeout=60)

    rig.clock.advance(minutes=10)
    from_heartbeat, _ = run(monitor)
    (permanent,) = of_kind(from_heartbeat, "retry_failed_permanent")
    assert permanent.details == {"rows": [f"nbac_gamebook_player_stats@{night}"]}

    stale = timedelta(minutes=rig.definition.monitor.retry_heartbeat_stale_minutes)
    rig.clock.advance(max(retry_heartbeat_grace(rig.definition), stale))
    from_table, _ = run(monitor)
    assert of_kind(from_table, "retry_failed_permanent") == []  # the table, read now, is empty
    assert of_kind(from_table, "retry_heartbeat_stale") != []


def test_retry_heartbeat_stale_until_auto_retry_runs(rig: Rig, monitor: Monitor) -> None:

    first, _ = run(monitor)  # a fresh start: auto-retry has not run yet, within one interval of the first pass
    (pending,) = of_kind(first, "retry_heartbeat_pending")
    assert pending.severity == "INFO" and of_kind(first, "retry_heartbeat_stale") == []
    rig.clock.advance(seconds=retry_heartbeat_grace(rig.definition).total_seconds() + 60)
    never, _ = run(monitor)
    (stale,) = of_kind(never, "retry_heartbeat_stale")
    assert stale.message == "auto-retry last ran never"
    assert of_kind(never, "retry_heartbeat_pending") == []

    # the real auto-retry tick writes the heartbeat the monitor reads (same field, L12)
    build_retry_service(
        definition=rig.definition, clock=rig.clock, environ=rig.cloud.env(), with_dispatcher=False
    ).tick(RetryTick())
    rig.clock.advance(minutes=rig.definition.monitor.retry_heartbeat_stale_minutes - 1)
    fresh, _ = run(monitor)
    assert of_kind(fresh, "retry_heartbeat_stale") == []

    rig.clock.advance(minutes=2)
    late, _ = run(monitor)
    (stale,) = of_kind(late, "retry_heartbeat_stale")
    stale_after = rig.definition.monitor.retry_heartbeat_stale_minutes
    assert stale.message == f"auto-retry last ran {stale_after + 1} min ago"


# ---------------------------------------------------------------------------------------
# the monitor's own heartbeat and alert deduplication
# ---------------------------------------------------------------------------------------
def test_monitor_heartbeat_written_every_run(rig: Rig, monitor: Monitor) -> None:
    fs = firestore_client(rig.cloud.project)
    assert monitor_heartbeat(fs, rig.definition, rig.clock.now()) == "monitor has never run"

    dry, alerts = monitor.run(MonitorTick(dry_run=True))
    assert alerts is None
    assert monitor_heartbeat(fs, rig.definition, rig.clock.now()) == "monitor has never run"

    first_at = rig.clock.now()
    run(monitor)
    assert monitor_heartbeat(fs, rig.definition, first_at + timedelta(minutes=7)) == "monitor last ran 7 min ago"

    rig.clock.advance(minutes=10)
    second, _ = run(monitor)
    assert monitor_heartbeat(fs, rig.definition, rig.clock.now() + timedelta(minutes=3)) == (
        "monitor last ran 3 min ago"
    )
    doc = fs.collection(rig.definition.monitor.heartbeat_collection).document("phase_transition_monitor").get()
    beat = doc.to_dict() or {}
    assert beat["last_run_at"] == second.ran_at
    assert beat["dates_checked"] == second.dates_checked == dry.dates_checked
    assert beat["kinds"] == ["retry_heartbeat_pending"] and beat["findings"] == 1
    assert beat["first_run_at"] == first_at  # the first pass: the start of the auto-retry heartbeat's grace


def test_alerts_deduplicated_across_consecutive_runs(rig: Rig, monitor: Monitor) -> None:
    rig.seed_games(game_date=today(rig) - timedelta(days=1))  # silent + no auto-retry heartbeat

    first, alerts = run(monitor)
    expected = sorted(f.key for f in first.findings)
    yesterday = today(rig) - timedelta(days=1)  # and at 09:00 ET its 2→3 trigger is past its SLO (06:00 ET)
    assert expected == [
        "retry_heartbeat_pending",
        f"silent__phase2_to_phase3__{yesterday}",
        f"slo_breach__phase2_to_phase3__{yesterday}",
    ]
    assert sorted(alerts.alerted) == expected

    rig.clock.advance(minutes=10)  # the next scheduled pass, nothing changed
    second, alerts = run(monitor)
    assert sorted(f.key for f in second.findings) == expected
    assert alerts.alerted == []
    assert sorted(alerts.suppressed) == expected and alerts.resolved == []

    write_retry_heartbeat(rig)  # auto-retry comes back: that finding resolves, the other stays quiet
    rig.clock.advance(minutes=10)
    _, alerts = run(monitor)
    assert alerts.alerted == [] and alerts.resolved == ["retry_heartbeat_pending"]


# ---------------------------------------------------------------------------------------
# cost per run
# ---------------------------------------------------------------------------------------
class Calls:
    def __init__(self) -> None:
        self.count: collections.Counter[str] = collections.Counter()
        self.streamed: list[int] = []


class _Proxy:
    """Delegates every attribute to the real object; subclasses count the calls they override."""

    def __init__(self, target: Any, calls: Calls) -> None:
        self._target = target
        self._calls = calls

    def __getattr__(self, name: str) -> Any:
        return getattr(self._target, name)


class _Query(_Proxy):
    def where(self, *args: Any, **kwargs: Any) -> _Query:
        return _Query(self._target.where(*args, **kwargs), self._calls)

    def limit(self, *args: Any, **kwargs: Any) -> _Query:
        return _Query(self._target.limit(*args, **kwargs), self._calls)

    def order_by(self, *args: Any, **kwargs: Any) -> _Query:
        return _Query(self._target.order_by(*args, **kwargs), self._calls)

    def stream(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        self._calls.count["firestore.stream"] += 1
        docs = [_Snapshot(d, self._calls) for d in self._target.stream(*args, **kwargs)]
        self._calls.streamed.append(len(docs))
        return iter(docs)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["firestore.query_get"] += 1
        return self._target.get(*args, **kwargs)


class _Collection(_Query):
    def document(self, *args: Any, **kwargs: Any) -> _Document:
        return _Document(self._target.document(*args, **kwargs), self._calls)

    def list_documents(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["firestore.list_documents"] += 1
        return self._target.list_documents(*args, **kwargs)


class _Document(_Proxy):
    def collection(self, *args: Any, **kwargs: Any) -> _Collection:
        return _Collection(self._target.collection(*args, **kwargs), self._calls)

    def get(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["firestore.get"] += 1
        return _Snapshot(self._target.get(*args, **kwargs), self._calls)

    def set(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["firestore.write"] += 1
        return self._target.set(*args, **kwargs)


class _Snapshot(_Proxy):
    """A read document; reading it again through ``.reference`` is counted too."""

    @property
    def reference(self) -> _Document:
        return _Document(self._target.reference, self._calls)


class _Firestore(_Proxy):
    def collection(self, *args: Any, **kwargs: Any) -> _Collection:
        return _Collection(self._target.collection(*args, **kwargs), self._calls)

    def collections(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["firestore.collections"] += 1
        return self._target.collections(*args, **kwargs)

    def get_all(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["firestore.get_all"] += 1
        return self._target.get_all(*args, **kwargs)

    def transaction(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["firestore.transaction"] += 1
        return self._target.transaction(*args, **kwargs)


class _BigQuery(_Proxy):
    def query(self, *args: Any, **kwargs: Any) -> Any:
        self._calls.count["bigquery.query"] += 1
        return self._target.query(*args, **kwargs)


def store_phase6_dates(rig: Rig, days: list[date]) -> None:
    fs = firestore_client(rig.cloud.project)
    batch = fs.batch()
    for day in days:
        ref = fs.collection(rig.definition.pipeline.state_collection).document(f"phase5_to_phase6__{day.isoformat()}")
        batch.set(
            ref,
            {
                "transition": "phase5_to_phase6",
                "game_date": day.isoformat(),
                "status": "triggered",
                "generation": 1,
                "triggered": {
                    "1": {"trigger_id": f"phase5_to_phase6:{day}:g1", "at": rig.clock.now(), "status": "complete"}
                },
            },
        )
    batch.commit()


def test_cost_per_run_does_not_grow_with_stored_dates(rig: Rig, monitor: Monitor) -> None:
    calls = Calls()
    built = monitor.checks
    checks = TransitionMonitor(  # the built monitor's parts, its own reads through the counting wrappers
        built.definition,
        built.clock,
        _Firestore(built.firestore, calls),  # type: ignore[arg-type]
        _BigQuery(bigquery_client(rig.cloud.project), calls),  # type: ignore[arg-type]
        built.project,
        built.services,
        subscriber=Deferred(subscriber_client),
        sensors=built.sensors,
        outbox=built.outbox,
    )
    for service in checks.services.values():  # evaluate() reads through the transitions' own clients
        service.state.client = _Firestore(service.state.client, calls)  # type: ignore[assignment]
    monitor = Monitor(checks, monitor.alerts)
    monitor.alerts.firestore = _Firestore(monitor.alerts.firestore, calls)  # type: ignore[assignment]
    now = today(rig)
    stored = [now - timedelta(days=n) for n in range(1, 201)]

    def one_run() -> tuple[collections.Counter[str], list[int], MonitorReport]:
        calls.count.clear()
        calls.streamed.clear()
        result, _ = run(monitor)
        return collections.Counter(calls.count), list(calls.streamed), result

    store_phase6_dates(rig, stored[:1])
    run(monitor)  # the first run alerts; the compared runs both only suppress
    small, small_streamed, small_report = one_run()
    store_phase6_dates(rig, stored[1:])
    large, large_streamed, large_report = one_run()

    # the retry queue (no auto-retry heartbeat here: the table), and not the schedule: no game is
    # scheduled near today, so the first run's answer is re-used for an hour (shared.monitor.schedule_read)
    assert small["bigquery.query"] == 1
    assert small["firestore.get"] >= small_report.dates_checked  # the counters see the per-date reads
    assert large == small, (small, large)
    assert [f.key for f in large_report.findings] == [f.key for f in small_report.findings]
    # the grid reads a bounded set of date documents per pass (its summary), not every stored date
    grid_days = rig.definition.monitor.grid_days
    assert max(large_streamed) < grid_days
    assert len(large_streamed) == len(small_streamed)


# ---------------------------------------------------------------------------------------
# isolation (L23): one bad item never aborts the pass; the heartbeat always lands
# ---------------------------------------------------------------------------------------
def monitor_beat(rig: Rig) -> dict[str, Any]:
    fs = firestore_client(rig.cloud.project)
    doc = fs.collection(rig.definition.monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID).get()
    assert doc.exists, "the monitor wrote no heartbeat"
    return doc.to_dict() or {}


def corrupt_completion(rig: Rig, transition: str, day: date) -> None:
    """The date's recorded completion loses ``completed_at`` (a malformed document in Firestore)."""
    from google.cloud import firestore

    fs = firestore_client(rig.cloud.project)
    date_ref = fs.collection(rig.definition.pipeline.state_collection).document(f"{transition}__{day.isoformat()}")
    (doc,) = list(date_ref.collection("completions").stream())
    doc.reference.update({"completed_at": firestore.DELETE_FIELD})


def test_fault_malformed_completion_does_not_abort_the_pass(rig: Rig, monitor: Monitor) -> None:
    """A date whose state cannot be read is a ``check_error`` finding; other dates' findings and the
    heartbeat (with ``errors`` = 1) still land (L23). Before: the KeyError escaped ``run`` and the pass
    lost the stuck finding of the other date and its heartbeat."""
    stuck_day = today(rig) - timedelta(days=1)
    bad_day = today(rig) - timedelta(days=2)
    for day in (stuck_day, bad_day):
        (outcome,) = report(rig, "phase3_to_phase4", ["player_game_summary"], day)
        assert outcome.kind == "waiting", outcome.detail
    corrupt_completion(rig, "phase3_to_phase4", bad_day)
    rig.clock.advance(minutes=rig.definition.transition("phase3_to_phase4").stuck_after_minutes + 5)
    write_retry_heartbeat(rig)

    result, alerts = run(monitor)

    (stuck,) = of_kind(result, "stuck")
    assert (stuck.transition, stuck.game_date) == ("phase3_to_phase4", stuck_day)
    (error,) = of_kind(result, "check_error")
    assert (error.transition, error.game_date, error.severity) == ("phase3_to_phase4", bad_day, "ERROR")
    assert f"phase3_to_phase4 {bad_day}" in error.message
    assert "KeyError" in error.message and "completed_at" in error.message
    assert len(error.message) <= 500
    assert kinds(result) == ["check_error", "stuck"]
    assert sorted(alerts.alerted) == sorted([stuck.key, error.key])
    beat = monitor_beat(rig)
    assert (beat["errors"], beat["findings"]) == (1, 2)
    assert beat["last_run_at"] == result.ran_at and beat["kinds"] == ["check_error", "stuck"]


def test_fault_grid_query_error_is_isolated(rig: Rig) -> None:
    """The schedule query of the grid fails (a real BigQuery NotFound): one ``check_error`` for the grid,
    every per-date check still runs, the heartbeat counts the error."""
    games = rig.definition.games.model_copy(update={"schedule_table": f"raw_{rig.suffix}.no_such_schedule"})
    broken = rig.definition.model_copy(update={"games": games})
    monitor = build_monitor(definition=broken, clock=rig.clock, environ=rig.cloud.env())
    day = today(rig) - timedelta(days=1)
    (outcome,) = report(rig, "phase3_to_phase4", ["player_game_summary"], day)
    assert outcome.kind == "waiting", outcome.detail
    rig.clock.advance(minutes=rig.definition.transition("phase3_to_phase4").stuck_after_minutes + 5)
    write_retry_heartbeat(rig)

    result, _ = run(monitor)

    (error,) = of_kind(result, "check_error")
    assert error.severity == "ERROR" and error.transition is None and error.game_date is None
    assert error.message.startswith("grid") and "NotFound" in error.message and len(error.message) <= 500
    assert error.key == "check_error__grid"
    assert [f.game_date for f in of_kind(result, "stuck")] == [day]
    assert result.dates_checked == len(TRANSITIONS) * (rig.definition.monitor.lookback_days + 1)
    assert monitor_beat(rig)["errors"] == 1


class _ExplodingSlack(SlackWebhook):
    """A webhook whose delivery raises (not a Google client): the alert step itself fails."""

    def __init__(self) -> None:
        super().__init__("http://127.0.0.1:9/never-called")

    def send(self, text: str) -> bool:
        raise RuntimeError("webhook exploded")


def test_fault_alert_step_failure_still_writes_the_heartbeat(rig: Rig, monitor: Monitor) -> None:
    rig.seed_games(game_date=today(rig) - timedelta(days=1))  # silent: an ERROR finding goes to Slack
    monitor.alerts.slack = _ExplodingSlack()

    result, alerts = run(monitor)

    assert "silent" in kinds(result)
    (error,) = of_kind(result, "check_error")
    assert error.key == "check_error__alerts"
    assert "RuntimeError" in error.message and "webhook exploded" in error.message
    assert alerts.error is not None and "webhook exploded" in alerts.error
    beat = monitor_beat(rig)
    assert beat["errors"] == 1 and beat["findings"] == len(result.findings)
    assert "check_error" in beat["kinds"]


class _HangingBigQuery:
    """A BigQuery client whose every query waits until released: a hang no client deadline bounds
    (not built by ``shared.gcp_bigquery``), so only the pass's budget can end it."""

    def __init__(self) -> None:
        self.released = threading.Event()
        self.queries = 0

    def query(self, *args: Any, **kwargs: Any) -> Any:
        self.queries += 1
        self.released.wait(120)
        raise RuntimeError("released at the end of the test")


def test_fault_a_check_stuck_past_its_share_is_a_check_timeout_and_the_pass_goes_on(rig: Rig) -> None:
    """L26: the schedule read and the retry-queue check wait forever on BigQuery. Each becomes a
    ``check_timeout`` (ERROR, naming the check and what it was waiting on) when its share of the pass
    runs out; the per-date checks still find the stuck date, the alerts go out and the heartbeat
    counts the timeouts, before the function timeout. Before: the pass waited on the first query."""
    day = today(rig) - timedelta(days=1)
    (outcome,) = report(rig, "phase3_to_phase4", ["player_game_summary"], day)
    assert outcome.kind == "waiting", outcome.detail
    rig.clock.advance(minutes=rig.definition.transition("phase3_to_phase4").stuck_after_minutes + 5)
    write_retry_heartbeat(rig)
    timeout = 12.0  # in place of the monitor's 300 s: the pass's budget is taken from it
    monitor = build_monitor(
        definition=rig.definition, clock=rig.clock, environ={**rig.cloud.env(), MONITOR_TIMEOUT_ENV: str(timeout)}
    )
    hanging = _HangingBigQuery()
    monitor.checks.bq = hanging  # type: ignore[assignment]

    started = monotonic()
    try:
        result, alerts = run(monitor)
    finally:
        hanging.released.set()
    elapsed = monotonic() - started

    assert elapsed < timeout, f"the pass took {elapsed:.1f} s"
    assert hanging.queries == 2  # the schedule and the retry queue: each asked once, never answered
    timeouts = {f.subject: f for f in of_kind(result, "check_timeout")}
    assert sorted(timeouts) == ["retry_queue", "schedule"]
    for check, finding in timeouts.items():
        assert finding.severity == "ERROR" and finding.key == f"check_timeout__{check}"
        assert finding.message.startswith(f"{check}: no result within its ")
        # an unbounded client: what the check uses (the retry queue: the heartbeat, then the table)
        assert "waiting on " in finding.message and "BigQuery (no call in flight)" in finding.message
    assert [f.game_date for f in of_kind(result, "stuck")] == [day]  # the other checks went on
    assert of_kind(result, "check_error") == []
    assert set(alerts.alerted) >= {f.key for f in timeouts.values()}
    beat = monitor_beat(rig)
    assert (beat["timeouts"], beat["errors"]) == (2, 0) and beat["last_run_at"] == result.ran_at


# ---------------------------------------------------------------------------------------
# dead letters: each function's dead-letter subscription, peeked and left for replay
# ---------------------------------------------------------------------------------------
def drain(subscription: str) -> list[str]:
    """Pull (and ack) everything waiting on ``subscription``; the message ids."""
    subscriber = subscriber_client()
    ids: list[str] = []
    while True:
        response = subscriber.pull(subscription=subscription, max_messages=50, timeout=10, return_immediately=True)
        if not response.received_messages:
            return ids
        ids += [m.message.message_id for m in response.received_messages]
        subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])


def test_fault_dead_letters_are_reported_and_left_for_replay(rig: Rig, monitor: Monitor) -> None:
    """Two messages on phase3_to_phase4's dead-letter topic: one ``dead_letters`` finding (ERROR) with the
    count, sample ids and subscription, all named as deploy.spec names them; the messages are still
    there after the pass (released, not consumed). Before: dead letters were never looked at."""
    functions = create_dead_letter_subscriptions(rig)  # idempotent: the module's rig has them already
    fn = functions["phase3_to_phase4"]
    subscription = subscriber_client().subscription_path(rig.cloud.project, fn.dead_letter_subscription)
    drain(subscription)
    publisher = publisher_client()
    topic = publisher.topic_path(rig.cloud.project, fn.dead_letter_topic)
    ids = sorted(publisher.publish(topic, f"undeliverable {n}".encode()).result(timeout=30) for n in range(2))
    write_retry_heartbeat(rig)
    try:
        result, alerts = run(monitor)

        (dead,) = of_kind(result, "dead_letters")
        assert dead.severity == "ERROR" and dead.key == "dead_letters__phase3_to_phase4"
        assert dead.details == {
            "function": "phase3_to_phase4",
            "subscription": fn.dead_letter_subscription,
            "topic": fn.dead_letter_topic,
            "count": 2,
            "sample_message_ids": ids,
        }
        assert fn.dead_letter_subscription in dead.message and "2 message(s)" in dead.message
        assert kinds(result) == ["dead_letters"]
        assert dead.key in alerts.alerted

        rig.clock.advance(minutes=10)  # the next pass sees the same backlog: nothing consumed, not re-alerted
        again, alerts = run(monitor)
        (dead_again,) = of_kind(again, "dead_letters")
        assert dead_again.details["count"] == 2 and dead.key in alerts.suppressed
    finally:
        left = drain(subscription)
    assert sorted(left) == ids  # still there after two passes, for phasectl dlq replay


def test_missing_dead_letter_subscription_is_one_warning(rig: Rig, monitor: Monitor) -> None:
    functions = create_dead_letter_subscriptions(rig)
    gone = [functions["phase2_to_phase3"], functions["auto_retry_processor"]]
    subscriber = subscriber_client()
    for fn in gone:
        subscriber.delete_subscription(
            subscription=subscriber.subscription_path(rig.cloud.project, fn.dead_letter_subscription)
        )
    write_retry_heartbeat(rig)
    try:
        result, _ = run(monitor)
    finally:
        create_dead_letter_subscriptions(rig)

    (missing,) = of_kind(result, "dead_letter_subscription_missing")
    assert missing.severity == "WARNING"
    assert missing.details == {"subscriptions": [fn.dead_letter_subscription for fn in gone]}
    assert kinds(result) == ["dead_letter_subscription_missing"]  # not an error: the other checks ran
    assert monitor_beat(rig)["errors"] == 0


def test_dead_letter_names_are_the_deployments(rig: Rig) -> None:
    """The monitor's naming rule (it may not import deploy/) is the one deploy.spec deploys."""
    from shared.monitor.dead_letters import dead_letter_routes

    spec = build_spec(rig.definition, rig.cloud.project, facts=lambda _: ClosureFacts(frozenset(), frozenset()))
    assert [(r.function, r.trigger_topic, r.topic, r.subscription) for r in dead_letter_routes(rig.definition)] == [
        (fn.name, fn.trigger_topic, fn.dead_letter_topic, fn.dead_letter_subscription) for fn in spec.functions
    ]


# ---------------------------------------------------------------------------------------
# sensors: grading_overdue
# ---------------------------------------------------------------------------------------
def test_grading_overdue_when_final_and_predicted_but_no_grading_trigger_by_8am(rig: Rig, monitor: Monitor) -> None:
    from shared.orchestration.timed_runtime import build_timed_runtime

    day = today(rig) - timedelta(days=1)  # the clock is 09:00 ET the morning after: past 08:00
    rig.seed_games(game_date=day)  # five Final games
    # predicted, and phase 3's actuals are in: the sensor grades only with actuals (issue 27)
    rig.seed_outputs(tables=["player_prop_predictions", "player_game_summary"], game_date=day)
    write_retry_heartbeat(rig)
    result, _ = run(monitor)
    (overdue,) = of_kind(result, "grading_overdue")
    assert (overdue.severity, overdue.transition, overdue.game_date) == ("ERROR", "grading_readiness", day)
    assert "5/5 games Final" in overdue.message and "50 predictions" in overdue.message
    assert "by 08:00 America/New_York" in overdue.message
    # the 11:00 fallback (or the sensor) triggers: the finding goes away
    runtime = build_timed_runtime("grading_readiness", definition=rig.definition, clock=rig.clock,
                                  environ=rig.cloud.env())
    tick = rig.event({"trigger": "grading_readiness", "slot": "run_1100", "game_date": day.isoformat()})
    assert runtime.handle_event(tick).kind == "triggered"
    result, _ = run(monitor)
    assert of_kind(result, "grading_overdue") == []


def test_no_grading_overdue_before_8am_or_without_predictions(rig: Rig, monitor: Monitor) -> None:
    day = today(rig) - timedelta(days=1)
    rig.seed_games(game_date=day)
    write_retry_heartbeat(rig)
    result, _ = run(monitor)  # Final, but no predictions: nothing to grade, nothing overdue
    assert of_kind(result, "grading_overdue") == []
    rig.seed_outputs(tables=["player_prop_predictions"], game_date=day)
    rig.clock.set(datetime.combine(today(rig), time(7, 30), tzinfo=ZoneInfo("America/New_York")))
    result, _ = run(monitor)  # predicted, but 07:30 ET: not due yet
    assert of_kind(result, "grading_overdue") == []
