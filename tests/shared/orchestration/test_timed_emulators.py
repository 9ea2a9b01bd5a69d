"""[grading] The grading readiness sensor, its fallbacks and a once-per-slot trigger, on the emulators.

The sensor reads the real tables (``nbac_schedule``, ``player_prop_predictions``,
``prediction_accuracy``; schemas from ``deploy/bigquery/upstream/``) in one parameterised
query and triggers ``nba-grading-trigger`` through the transitions' claim → conditions →
publish → latch protocol: the readiness slot and a fallback racing for a date give one trigger.
A trigger latched once per date and slot (``once_per = "slot"``, what the phase 6 export runs were
before they became ``[[jobs]]``) is built by the test on the rig's phase 6 topic.
"""

from __future__ import annotations

import json
import threading
from datetime import UTC, date, datetime
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.raw_tables import upstream_table
from deploy.local.topology import ensure_subscription, pull_now
from shared.contracts.messages import TimedTriggerMessage
from shared.errors import TransientError
from shared.gcp import subscriber_client
from shared.gcp_bigquery import bigquery_client
from shared.orchestration.timed import TimedRuntime
from shared.orchestration.timed_runtime import build_timed_runtime
from shared.orchestration.transition import Outcome
from shared.pipeline.definition import TimedTrigger, TriggerSlot
from tests.support.rig import GAME_DATE, GAMES, Rig

pytestmark = pytest.mark.integration

NIGHT = datetime(2026, 1, 25, 5, 30, tzinfo=UTC)  # 00:30 ET: the night of the 24th
SENSOR = "grading_readiness"
EXPORTS = "phase6_exports"


def exports_trigger(rig: Rig) -> TimedTrigger:
    """A once-per-slot trigger without conditions on the rig's phase 6 topic: the packaged phase 6
    export runs before they became ``[[jobs]]`` (same names, crons, dates and export types)."""
    topic = rig.definition.phase(6).trigger_topic
    assert topic is not None
    return TimedTrigger(
        name=EXPORTS,
        topic=topic,
        tick_topic=f"scheduled-trigger-tick-{rig.suffix}",
        function="scheduled_triggers",
        trigger_source="scheduler",
        once_per="slot",
        slots=(
            TriggerSlot(name="daily_results", cron="0 5 * * *", job="phase6-daily-results", date="yesterday",
                        export_types=("results", "performance", "best-bets", "predictions", "admin-dashboard",
                                      "admin-picks"),
                        update_latest=True),
            TriggerSlot(name="tonight_picks", cron="0 13 * * *", job="phase6-tonight-picks", date="today",
                        export_types=("tonight", "tonight-players", "best-bets-all", "best-bets-today")),
            TriggerSlot(name="clv_reexport", cron="30 16 * * *", job="phase6-clv-reexport", date="today",
                        export_types=("signal-best-bets",)),
        ),
    )


class Timed:
    """The rig's timed-trigger functions and a subscription on each trigger's topic."""

    def __init__(self, rig: Rig) -> None:
        self.rig = rig
        self.runtimes: dict[str, TimedRuntime] = {}
        self.functions: dict[str, str] = {}  # trigger → function
        self.subscriptions: dict[str, str] = {}
        for t in rig.definition.timed_triggers():
            if t.function not in self.runtimes:
                self.runtimes[t.function] = self.runtime(t.function)
            self.watch(t)

    def watch(self, t: TimedTrigger) -> None:
        self.functions[t.name] = t.function
        self.subscriptions[t.name] = ensure_subscription(
            subscriber_client(), self.rig.cloud.project, t.topic, f"timed-{t.name}-{self.rig.suffix}",
            ack_deadline_seconds=10
        )

    def add(self, t: TimedTrigger) -> None:
        """A trigger the test builds, on a function of its own: the rig's definition plus it."""
        definition = self.rig.definition.model_copy(update={"sensors": (*self.rig.definition.sensors, t)})
        assert definition.timed_trigger(t.name) == t
        self.runtimes[t.function] = self.runtime(t.function, definition)
        self.watch(t)

    def runtime(self, function: str, definition: Any = None) -> TimedRuntime:
        return build_timed_runtime(function, definition=definition or self.rig.definition, clock=self.rig.clock,
                                   environ=self.rig.cloud.env())

    def tick(self, trigger: str, slot: str, game_date: date | None = None, runtime: TimedRuntime | None = None
             ) -> Outcome:
        function = self.functions[trigger]
        body: dict[str, Any] = {"trigger": trigger, "slot": slot}
        if game_date is not None:
            body["game_date"] = game_date.isoformat()
        return (runtime or self.runtimes[function]).handle_event(self.rig.event(body))

    def messages(self, trigger: str) -> list[TimedTriggerMessage]:
        out = []
        for data in pull_now(subscriber_client(), self.subscriptions[trigger]):
            payload = json.loads(data)
            if payload.get("name") == trigger:  # phase 6's topic also carries the 5→6 phase triggers
                out.append(TimedTriggerMessage.model_validate(payload))
        return out


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique, now=NIGHT)
    rig.seed_outputs(tables=[])  # creates the phase 3-5 tables the gates and the sensor read
    return rig


@pytest.fixture
def timed(rig: Rig) -> Timed:
    return Timed(rig)


def schedule(rig: Rig, final: list[tuple[str, str, str]], in_progress: list[tuple[str, str, str]] = ()) -> None:  # type: ignore[assignment]
    rig.seed_games(final=final)
    if in_progress:
        table = upstream_table(rig.definition.games.schedule_table)
        rows = [table.row(n, GAME_DATE, a, h, game_status=2, game_status_text="Q4 2:31") for n, a, h in in_progress]
        assert bigquery_client(rig.cloud.project).insert_rows_json(
            f"{rig.cloud.project}.{rig.definition.games.schedule_table}", rows) == []


def predictions(rig: Rig, games: list[tuple[str, str, str]] = GAMES, *, actuals: bool = True) -> None:
    """The night's predictions and (``actuals``) the played games' rows in player_game_summary: the
    sensor grades only with actuals for >= 80 % of predicted players and >= 90 % of the games."""
    rig.seed_outputs(tables=["player_prop_predictions", *(["player_game_summary"] if actuals else [])], games=games)


def graded(rig: Rig) -> None:
    rig.seed_outputs(tables=["prediction_accuracy"])


# ----------------------------------------------------------------------------- the readiness sensor


def test_all_final_and_predicted_triggers_grading_once(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig)
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "triggered", outcome.detail
    assert outcome.trigger_id == "grading_readiness:2026-01-24:g1"
    (message,) = timed.messages(SENSOR)
    # what the replaced grading function reads (grading/main.py:1151-1154)
    assert (message.target_date, message.trigger_source, message.run_aggregation) == (
        GAME_DATE, "readiness-monitor", True)
    assert "5/5 games Final" in message.reason and "50 predictions" in message.reason
    assert timed.tick(SENSOR, "readiness").kind == "already_triggered"
    assert timed.messages(SENSOR) == []
    (row,) = [r for r in rig.log_rows() if r["phase_name"] == SENSOR]
    assert (row["status"], row["trigger_id"]) == ("complete", "grading_readiness:2026-01-24:g1")


def test_not_all_final_waits_with_a_readable_reason(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES[:3], in_progress=GAMES[3:])
    predictions(rig)
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "waiting" and outcome.detail == "3/5 games Final"
    state = timed.runtimes["grading_readiness"].services[SENSOR].state.load(GAME_DATE)
    assert state.claim is None and state.triggered_current is None
    assert state.last_gate is not None and state.last_gate["all_final"]["reason"] == "3/5 games Final"
    assert timed.messages(SENSOR) == []


def test_no_predictions_and_already_graded_wait(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    # the actuals condition waits too (nothing predicted to measure): the reason starts with predictions
    assert timed.tick(SENSOR, "readiness").detail.startswith("no predictions yet; ")
    predictions(rig)
    graded(rig)
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "waiting" and outcome.detail.startswith("already done: ")
    assert "graded rows" in outcome.detail
    assert timed.messages(SENSOR) == []


def test_a_game_marked_unavailable_does_not_hold_grading_back(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES[:4], in_progress=GAMES[4:])
    predictions(rig)
    assert timed.tick(SENSOR, "readiness").kind == "waiting"
    rig.seed_games(final=[], unavailable=[GAMES[4][0]])  # phasectl mark-unavailable
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "triggered", outcome.detail
    assert "4/4 games Final, 1 marked unavailable or postponed" in outcome.detail


# ----------------------------------------------------------------------------- fallbacks and races


def test_the_sensor_and_a_fallback_racing_for_a_date_give_one_grading_trigger(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig)
    other = timed.runtime("grading_readiness")  # a second instance: its own clients
    barrier = threading.Barrier(2)
    outcomes: dict[str, Outcome] = {}

    def fire(slot: str, runtime: TimedRuntime) -> None:
        barrier.wait(timeout=30)
        outcomes[slot] = timed.tick(SENSOR, slot, GAME_DATE, runtime)

    threads = [threading.Thread(target=fire, args=("readiness", timed.runtimes["grading_readiness"])),
               threading.Thread(target=fire, args=("daily_0600", other))]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    kinds = sorted(o.kind for o in outcomes.values())
    assert kinds.count("triggered") == 1, kinds
    assert set(kinds) <= {"triggered", "already_triggered", "claimed_elsewhere"}
    assert len(timed.messages(SENSOR)) == 1
    # whichever fired first, every later slot finds the latch: nothing new
    for slot in ("run_0230", "daily_0600", "run_0630", "run_1100", "readiness"):
        assert timed.tick(SENSOR, slot, GAME_DATE).kind == "already_triggered"
    assert timed.messages(SENSOR) == []


def test_a_fallback_grades_what_is_there_when_a_game_never_goes_final(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES[:4], in_progress=GAMES[4:])
    predictions(rig)
    assert timed.tick(SENSOR, "readiness").kind == "waiting"
    rig.clock.set(datetime(2026, 1, 25, 11, 0, tzinfo=UTC))  # 06:00 ET
    outcome = timed.tick(SENSOR, "daily_0600")
    assert outcome.kind == "triggered" and outcome.extra["status"] == "fallback"
    (message,) = timed.messages(SENSOR)
    assert message.slot == "daily_0600" and message.game_date == GAME_DATE  # 06:00 ET: last night's games
    assert "fallback run daily_0600" in message.reason
    assert timed.tick(SENSOR, "run_1100").kind == "already_triggered"


def test_a_fallback_still_needs_predictions_and_an_ungraded_date(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    rig.clock.set(datetime(2026, 1, 25, 11, 0, tzinfo=UTC))
    assert timed.tick(SENSOR, "daily_0600").detail.startswith("no predictions yet; ")
    assert timed.messages(SENSOR) == []


def test_a_forced_rerun_is_a_new_generation(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig)
    assert timed.tick(SENSOR, "readiness").kind == "triggered"
    service = timed.runtimes["grading_readiness"].services[SENSOR]
    service.state.reopen(GAME_DATE, rig.clock.now(), "phasectl trigger --force")
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "triggered" and outcome.trigger_id == "grading_readiness:2026-01-24:g2"
    assert [m.trigger_id for m in timed.messages(SENSOR)] == [
        "grading_readiness:2026-01-24:g1", "grading_readiness:2026-01-24:g2"]


# ----------------------------------------------------------------------------- errors


def test_a_query_error_is_never_not_graded_it_raises_and_a_redelivery_triggers(rig: Rig, timed: Timed) -> None:
    from google.api_core.client_options import ClientOptions
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import bigquery

    schedule(rig, GAMES)
    predictions(rig)
    service = timed.runtimes["grading_readiness"].services[SENSOR]
    assert service.queries is not None
    working = service.queries.client
    dead = bigquery.Client(project=rig.cloud.project, credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
                           client_options=ClientOptions(api_endpoint="http://127.0.0.1:9"))
    service.queries.client = dead
    real_deadline = service.queries.deadline_seconds
    service.queries.deadline_seconds = 3
    with pytest.raises(TransientError):
        timed.tick(SENSOR, "readiness")
    state = service.state.load(GAME_DATE)
    assert state.claim is None and state.triggered_current is None
    assert timed.messages(SENSOR) == []
    service.queries.client = working
    service.queries.deadline_seconds = real_deadline  # the redelivery's real query gets its real deadline
    assert timed.tick(SENSOR, "readiness").kind == "triggered"  # Pub/Sub redelivers the tick
    assert len(timed.messages(SENSOR)) == 1


def test_a_missing_table_is_a_gate_error_acked_not_redelivered(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig)
    ref = rig.gate_table("prediction_accuracy")
    bigquery_client(rig.cloud.project).delete_table(f"{rig.cloud.project}.{ref}")  # a 404: redelivery cannot fix it
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "gate_error" and "prediction_accuracy" in outcome.detail
    assert timed.runtimes["grading_readiness"].services[SENSOR].state.load(GAME_DATE).status == "gate_error"
    assert timed.messages(SENSOR) == []


def test_a_malformed_tick_is_acked_and_quarantined(rig: Rig, timed: Timed) -> None:
    outcome = timed.runtimes["grading_readiness"].handle_event(rig.event({"trigger": SENSOR}))
    assert outcome.kind == "quarantined" and "trigger` and `slot`" in outcome.detail
    outcome = timed.tick(SENSOR, "no_such_slot")
    assert outcome.kind == "quarantined" and "unknown trigger/slot" in outcome.detail
    assert [d["transition"] for d in rig.quarantined()] == ["grading_readiness", "grading_readiness"]


# ----------------------------------------------------------------------------- once per date and slot


def test_each_slot_of_a_once_per_slot_trigger_fires_once_per_date(rig: Rig, timed: Timed) -> None:
    timed.add(exports_trigger(rig))
    assert timed.runtimes["scheduled_triggers"].services[EXPORTS].trigger.once_per == "slot"
    rig.clock.set(datetime(2026, 1, 25, 10, 0, tzinfo=UTC))  # 05:00 ET
    first = timed.tick(EXPORTS, "daily_results")
    assert first.kind == "triggered" and first.trigger_id == "phase6_exports:2026-01-24:g1:daily_results"
    assert timed.tick(EXPORTS, "daily_results").kind == "already_triggered"
    rig.clock.set(datetime(2026, 1, 25, 18, 0, tzinfo=UTC))  # 13:00 ET: tonight's picks, today's date
    tonight = timed.tick(EXPORTS, "tonight_picks")
    assert tonight.trigger_id == "phase6_exports:2026-01-25:g1:tonight_picks"
    messages = {m.slot: m for m in timed.messages(EXPORTS)}
    assert set(messages) == {"daily_results", "tonight_picks"}
    # what phase 6 export reads (phase6_export/main.py:405-411), as the replaced jobs send it
    assert messages["daily_results"].export_types[:2] == ["results", "performance"]
    assert messages["daily_results"].update_latest is True
    assert messages["tonight_picks"].target_date == date(2026, 1, 25)
    statuses = sorted((r["trigger_id"], r["status"]) for r in rig.log_rows() if r["phase_name"] == EXPORTS)
    assert statuses == [("phase6_exports:2026-01-24:g1:daily_results", "scheduled"),
                        ("phase6_exports:2026-01-25:g1:tonight_picks", "scheduled")]


def test_fault_an_ambiguous_timed_publish_is_resent_with_the_same_bytes(rig: Rig, timed: Timed) -> None:
    """Lesson L27 (an id names one content) for timed triggers: a publish that reached
    the server while the client raised used to be released as ``publish_failed``; the next tick
    built a new message (another ``triggered_at`` and reason) under the same trigger_id."""
    schedule(rig, GAMES)
    predictions(rig)
    service = timed.runtimes[rig.definition.timed_trigger(SENSOR).function].services[SENSOR]
    real = service.publisher.publish_all
    calls: list[int] = []

    def reaches_server_then_raises(messages: Any) -> list[str]:
        ids = real(messages)
        calls.append(len(ids))
        if len(calls) == 1:
            raise TransientError("publish deadline exceeded (the server took the message)")
        return ids

    service.publisher.publish_all = reaches_server_then_raises  # type: ignore[method-assign]
    with pytest.raises(TransientError):
        timed.tick(SENSOR, "readiness")
    assert service.state.load(GAME_DATE).status == "publishing"
    rig.clock.advance(minutes=30)  # a later tick: a rebuilt message would carry another triggered_at
    assert timed.tick(SENSOR, "readiness").kind == "triggered"
    bodies = list(pull_now(subscriber_client(), timed.subscriptions[SENSOR]))
    assert len(bodies) == 2 and bodies[0] == bodies[1], bodies
