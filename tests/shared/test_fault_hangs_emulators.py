"""A backend that accepts connections and never answers, per function kind (issue 25, lesson L26).

A hang raises nothing: before, a monitor pass with BigQuery hung was still running at 330 s (its
function timeout is 300 s), with no heartbeat, no findings and no alert. Here one backend at a time
is a ``HungListener`` (``tests/support/hung_listener.py``): a client is pointed at it through its
emulator variable, built by the package's own factories (``shared.gcp``, ``shared.gcp_bigquery``),
while the other backends are the real emulators. Each test checks the outcome that makes the hang
visible and recoverable (a finding, a heartbeat, a raised ``TransientError`` that gets the event
redelivered, rows kept in the outbox) and, as its one time assertion, that the function returned
before its timeout. Small deadlines keep them fast: the hung backend's client is built with
``PHASECHAIN_CALL_TIMEOUT`` of a few seconds (the real emulators keep the default), and
``PHASECHAIN_MONITOR_TIMEOUT`` stands in for the monitor's timeout its pass budget is taken from.
"""

from __future__ import annotations

import io
import json
import os
import threading
import time
import uuid
from collections.abc import Iterator
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.contracts.messages import MonitorTick, RetryTick
from shared.deadline import CALL_TIMEOUT_ENV
from shared.errors import TransientError
from shared.gcp import firestore_client, publisher_client
from shared.gcp_bigquery import bigquery_client
from shared.monitor.checks import MONITOR_TIMEOUT_ENV
from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID
from shared.monitor.runtime import build_monitor
from shared.orchestration.outbox import build_outbox_delivery
from shared.orchestration.runtime import build_service
from shared.orchestration.timed_runtime import build_timed_runtime
from shared.pipeline.definition import PipelineDefinition
from shared.retry.runtime import build_retry_service
from shared.structured_log import LABELS_KEY
from tests.support.definition_checks import exports_trigger
from tests.support.hung_listener import HungListener
from tests.support.rig import GAME_DATE, GAMES, PHASE2, Rig

pytestmark = pytest.mark.integration

P23 = "phase2_to_phase3"
CALL_TIMEOUT = "3"  # seconds, every backend call of the function under test
MONITOR_TIMEOUT = 12.0  # seconds, in place of the monitor's 300 s: its pass budget is 90 % of it
EMULATOR_VARIABLES = {
    "bigquery": ("BIGQUERY_EMULATOR_HOST", "url"),
    "firestore": ("FIRESTORE_EMULATOR_HOST", "host"),
    "pubsub": ("PUBSUB_EMULATOR_HOST", "host"),
}


@pytest.fixture(scope="module")
def shared_rig(local_cloud: LocalCloud) -> Rig:
    """One isolated definition with a complete night of games (every 2→3 gate passes)."""
    rig = Rig.create(local_cloud, uuid.uuid4().hex[:10])
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES]})
    return rig


@pytest.fixture
def rig(cloud: LocalCloud, shared_rig: Rig) -> Rig:
    """The module's rig; Firestore is empty (``cloud``)."""
    return shared_rig


@pytest.fixture
def hung() -> Iterator[HungListener]:
    """A listener that accepts and never answers. Afterwards, the checks the monitor stopped waiting
    for (daemon threads named ``monitor-*``) are given their call deadline to end, so none of them
    writes to a later test's log."""
    before = set(threading.enumerate())
    with HungListener() as listener:
        yield listener
        for thread in set(threading.enumerate()) - before:
            if thread.name.startswith("monitor-"):
                thread.join(timeout=30)


def hang(monkeypatch: pytest.MonkeyPatch, listener: HungListener, backend: str, project: str) -> dict[str, str]:
    """``backend`` is ``listener`` from now on: its variable points there, and the process's shared
    client for it is built now by the package's factory, with the short call deadline (the other
    backends keep their clients, on the real emulators, with the default one). The environment as
    a function would see it."""
    variable, attribute = EMULATOR_VARIABLES[backend]
    monkeypatch.setenv(variable, getattr(listener, attribute))
    monkeypatch.setenv(CALL_TIMEOUT_ENV, CALL_TIMEOUT)
    if backend == "bigquery":
        bigquery_client(project)
    elif backend == "firestore":
        firestore_client(project)
    else:
        publisher_client()
    monkeypatch.delenv(CALL_TIMEOUT_ENV)
    return dict(os.environ)


def function_timeout(rig: Rig, function: str) -> float:
    timeout = rig.definition.deploy.settings_for(function).timeout_seconds
    assert timeout is not None
    return float(timeout)


def log_entries(stream: io.StringIO) -> list[dict[str, Any]]:
    return [json.loads(line) for line in stream.getvalue().splitlines() if line.strip()]


# -- the monitor ---------------------------------------------------------------------------------
def test_fault_monitor_with_bigquery_hung_reports_check_timeouts_and_writes_its_heartbeat(
    rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The fault of issue 25: the schedule read and the retry-queue check wait on BigQuery. Each is a
    ``check_timeout`` finding naming the hung endpoint, the other checks ran, the findings were
    alerted and the heartbeat landed in the real Firestore, counting them."""
    env = {**hang(monkeypatch, hung, "bigquery", rig.cloud.project), MONITOR_TIMEOUT_ENV: str(MONITOR_TIMEOUT)}
    monitor = build_monitor(definition=rig.definition, clock=rig.clock, environ=env)

    started = time.monotonic()
    report, alerts = monitor.run(MonitorTick())
    elapsed = time.monotonic() - started

    assert elapsed < MONITOR_TIMEOUT, f"the pass took {elapsed:.1f} s, past the function timeout"
    assert hung.connections > 0 and hung.received > 0  # BigQuery was asked, and never answered
    timeouts = {f.subject: f for f in report.findings if f.kind == "check_timeout"}
    assert {"schedule", "retry_queue"} <= set(timeouts), [f.message for f in report.findings]
    for finding in timeouts.values():
        assert finding.severity == "ERROR"
        assert f"the BigQuery emulator at {hung.url}" in finding.message, finding.message
        assert finding.details["waiting_on"] == [f"the BigQuery emulator at {hung.url}"]
    assert report.dates_checked == len(rig.definition.transitions) * (rig.definition.monitor.lookback_days + 1)
    assert alerts is not None and {f.key for f in timeouts.values()} <= set(alerts.alerted)
    beat = (
        firestore_client(rig.cloud.project)
        .collection(rig.definition.monitor.heartbeat_collection)
        .document(MONITOR_HEARTBEAT_ID)
        .get()
    )
    assert beat.exists, "the monitor wrote no heartbeat"
    data = beat.to_dict() or {}
    assert data["last_run_at"] == report.ran_at
    assert data["timeouts"] == len(timeouts) and "check_timeout" in data["kinds"]
    assert data["findings"] == len(report.findings)


def test_fault_monitor_with_firestore_hung_raises_before_its_timeout(
    rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch, captured_log: io.StringIO
) -> None:
    """Firestore hung: the checks that read it run out of their shares, the alert step of its own,
    and the heartbeat cannot be written: the pass logs ``monitor_heartbeat_failed`` and raises (the
    tick is redelivered) instead of waiting for the function timeout."""
    env = {**hang(monkeypatch, hung, "firestore", rig.cloud.project), MONITOR_TIMEOUT_ENV: str(MONITOR_TIMEOUT)}
    monitor = build_monitor(definition=rig.definition, clock=rig.clock, environ=env)

    started = time.monotonic()
    with pytest.raises(TransientError, match="monitor heartbeat not written: no answer within"):
        monitor.run(MonitorTick())
    elapsed = time.monotonic() - started

    assert elapsed < MONITOR_TIMEOUT, f"the pass took {elapsed:.1f} s, past the function timeout"
    assert hung.connections > 0
    entries = log_entries(captured_log)
    timed_out = {e[LABELS_KEY].get("check") for e in entries if e.get(LABELS_KEY, {}).get("alert") == "check_timeout"}
    assert {"transition_dates", "retry_heartbeat", "alerts"} <= timed_out, timed_out
    (failed,) = [e for e in entries if e.get(LABELS_KEY, {}).get("alert") == "monitor_heartbeat_failed"]
    assert failed["severity"] == "ERROR" and f"the Firestore emulator at {hung.host}" in failed["message"]


# -- a transition function -----------------------------------------------------------------------
def test_fault_transition_with_firestore_hung_raises_transient_before_its_timeout(
    rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A completion arrives while Firestore hangs: recording it runs out of the call deadline and the
    event is handed back for redelivery (TransientError), well before the function timeout."""
    env = hang(monkeypatch, hung, "firestore", rig.cloud.project)
    service = build_service(P23, definition=rig.definition, clock=rig.clock, environ=env)

    started = time.monotonic()
    with pytest.raises(TransientError):
        service.handle_event(rig.event(rig.completion(PHASE2[0], 2)))
    elapsed = time.monotonic() - started

    assert elapsed < function_timeout(rig, P23), f"handle_event took {elapsed:.1f} s"
    assert hung.connections > 0 and hung.received > 0


def test_fault_transition_with_pubsub_hung_on_publish_raises_transient_and_releases_the_claim(
    rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The date is ready and its gates pass, but Pub/Sub hangs on the publish: the publish runs out of
    its deadline, the claim is released (the date stays retriggerable, nothing latched) and the event
    is handed back for redelivery."""
    service = build_service(P23, definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())
    for processor in PHASE2[:-1]:
        assert service.handle_event(rig.event(rig.completion(processor, 2))).kind == "waiting"
    hang(monkeypatch, hung, "pubsub", rig.cloud.project)  # the service's publisher, built on first use: the listener's

    started = time.monotonic()
    with pytest.raises(TransientError, match="publishing trigger"):
        service.handle_event(rig.event(rig.completion(PHASE2[-1], 2)))
    elapsed = time.monotonic() - started

    assert elapsed < function_timeout(rig, P23), f"handle_event took {elapsed:.1f} s"
    assert hung.connections > 0
    state = service.state.load(GAME_DATE)
    assert state.claim is None and state.triggered_current is None  # released, not latched (L01)
    monkeypatch.undo()  # the real Pub/Sub again, to look
    assert rig.pull_triggers(P23) == []


# -- the outbox and auto-retry -------------------------------------------------------------------
def test_fault_outbox_delivery_with_bigquery_hung_leaves_the_rows_in_the_outbox(
    rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A trigger's log row and a failed completion's hand-off wait in the outbox; BigQuery hangs when
    auto-retry delivers them: both stay for the next delivery, and the delivery returns."""
    service = rig.services[P23]
    outcomes = [service.handle_event(rig.event(rig.completion(p, 2))) for p in PHASE2]
    assert outcomes[-1].kind == "triggered", outcomes[-1].detail
    failed = rig.completion("player_game_summary", 3, status="failed", error_message="boom")
    service_34 = rig.services["phase3_to_phase4"]
    service_34.handle_event(rig.event(failed))
    outbox = service.state.outbox
    rows, handoffs = len(outbox.pending_log_rows()), len(outbox.pending_handoffs())
    assert rows >= 1 and handoffs >= 1, (rows, handoffs)
    env = hang(monkeypatch, hung, "bigquery", rig.cloud.project)
    retry = build_retry_service(definition=rig.definition, clock=rig.clock, environ=env, with_dispatcher=False)
    delivery = build_outbox_delivery(rig.definition, rig.cloud.project, firestore_client(rig.cloud.project), retry)

    started = time.monotonic()
    report = delivery.deliver()
    elapsed = time.monotonic() - started

    assert elapsed < function_timeout(rig, "auto_retry_processor"), f"the delivery took {elapsed:.1f} s"
    assert hung.connections > 0
    assert (report.log_rows, report.log_rows_pending) == (0, rows) and report.error
    assert (report.handoffs, report.handoffs_pending) == (0, handoffs)
    assert len(outbox.pending_log_rows()) == rows and len(outbox.pending_handoffs()) == handoffs  # kept


def test_fault_auto_retry_with_bigquery_hung_ends_with_an_error(
    rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The auto-retry tick reads and updates the queue in BigQuery: hung, the tick raises (the
    scheduler's tick is redelivered) instead of running into its function timeout."""
    env = hang(monkeypatch, hung, "bigquery", rig.cloud.project)
    service = build_retry_service(definition=rig.definition, clock=rig.clock, environ=env)

    started = time.monotonic()
    with pytest.raises(TransientError, match="failed_processor_queue"):
        service.tick(RetryTick())
    elapsed = time.monotonic() - started

    assert elapsed < function_timeout(rig, "auto_retry_processor"), f"the tick took {elapsed:.1f} s"
    assert hung.connections > 0 and hung.received > 0


# -- timed triggers: sensors, and triggers latched once per date and slot ----------------------
def test_fault_sensor_with_bigquery_hung_raises_transient_and_releases_the_claim(
    rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The grading sensor claims the date, then its conditions query hangs: the claim is released and
    the tick is handed back for redelivery."""
    env = hang(monkeypatch, hung, "bigquery", rig.cloud.project)
    sensor = rig.definition.timed_trigger("grading_readiness")
    runtime = build_timed_runtime(sensor.function, definition=rig.definition, clock=rig.clock, environ=env)
    slot = next(s for s in sensor.slots if not s.fallback)
    tick = {"trigger": sensor.name, "slot": slot.name, "game_date": GAME_DATE.isoformat()}

    started = time.monotonic()
    with pytest.raises(TransientError, match="conditions could not be evaluated"):
        runtime.handle_event(rig.event(tick))
    elapsed = time.monotonic() - started

    assert elapsed < function_timeout(rig, sensor.function), f"the tick took {elapsed:.1f} s"
    assert hung.connections > 0
    state = runtime.services[sensor.name].state.load(GAME_DATE)
    assert state.claim is None and state.triggered_slot(None) is None


def with_once_per_slot_trigger(rig: Rig) -> PipelineDefinition:
    """The rig's definition plus a trigger latched once per date and slot, without conditions (what
    the phase 6 export runs were before they became ``[[jobs]]``), on the rig's phase 6 topic."""
    topic = rig.definition.phase(6).trigger_topic
    assert topic is not None
    exports = exports_trigger(topic, f"scheduled-trigger-tick-{rig.suffix}")
    return rig.definition.model_copy(update={"sensors": (*rig.definition.sensors, exports)})


@pytest.mark.parametrize("trigger", ["grading_readiness", "phase6_exports"], ids=["sensor", "once-per-slot"])
def test_fault_timed_trigger_with_firestore_hung_raises_transient_before_its_timeout(
    trigger: str, rig: Rig, hung: HungListener, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A sensor's or once-per-slot trigger's tick while Firestore hangs: reading its date's state runs
    out of the call deadline and the tick is handed back for redelivery."""
    env = hang(monkeypatch, hung, "firestore", rig.cloud.project)
    definition = rig.definition if trigger == "grading_readiness" else with_once_per_slot_trigger(rig)
    timed = definition.timed_trigger(trigger)
    assert timed.once_per == ("date" if trigger == "grading_readiness" else "slot")
    runtime = build_timed_runtime(timed.function, definition=definition, clock=rig.clock, environ=env)
    tick = {"trigger": timed.name, "slot": timed.slots[0].name, "game_date": GAME_DATE.isoformat()}

    started = time.monotonic()
    with pytest.raises(TransientError):
        runtime.handle_event(rig.event(tick))
    elapsed = time.monotonic() - started

    assert elapsed < function_timeout(rig, timed.function), f"the tick took {elapsed:.1f} s"
    assert hung.connections > 0 and hung.received > 0


# -- the mechanism -------------------------------------------------------------------------------
def test_the_factories_bound_every_call_but_the_open_streams(rig: Rig) -> None:
    """What the fault tests rely on: every client the factories build has every unary and
    server-streaming method bounded; the bidirectional streams (Firestore Listen/Write, Pub/Sub
    StreamingPull) stay open; BigQuery's session is bounded."""
    from shared.deadline import DeadlineCall, DeadlineRequest
    from shared.gcp import subscriber_client

    fs, publisher, subscriber = firestore_client(rig.cloud.project), publisher_client(), subscriber_client()
    for transport in (fs._firestore_api._transport, publisher._transport, subscriber._transport):
        for stub, method in transport._wrapped_methods.items():
            bidi = "StreamStream" in type(stub).__name__
            assert isinstance(method, DeadlineCall) != bidi, (type(transport).__name__, stub)
    assert isinstance(bigquery_client(rig.cloud.project)._http.request, DeadlineRequest)


def test_a_long_poll_is_asked_to_answer_within_the_deadline() -> None:
    """``jobs.query``/``getQueryResults`` long polls: the server is asked to answer within 3/4 of the
    deadline, so a slow healthy query answers "not done yet" in time instead of timing out."""
    from shared.deadline import DeadlineRequest

    seen: list[dict[str, Any]] = []
    request = DeadlineRequest(lambda **kwargs: seen.append(kwargs), 4, "BigQuery", None)
    request(url="http://bq/projects/p/queries/j?maxResults=0&timeoutMs=10000&location=US", method="GET")
    request(url="http://bq/projects/p/queries", method="POST", data=json.dumps({"query": "x", "timeoutMs": 59750}))
    request(url="http://bq/projects/p/queries/j?timeoutMs=1000", method="GET", timeout=120)
    assert seen[0]["url"].endswith("?maxResults=0&timeoutMs=3000&location=US") and seen[0]["timeout"] == 4
    assert json.loads(seen[1]["data"]) == {"query": "x", "timeoutMs": 3000}
    assert seen[2]["url"].endswith("timeoutMs=1000") and seen[2]["timeout"] == 4  # shorter ones are kept


def test_refused_connections_are_retried_for_at_most_the_deadline() -> None:
    """On Google Cloud a dropped or refused connection is the client's to retry (a closed keep-alive
    connection is normal), but only until this thread has seen nothing else for the deadline: then
    DeadlineExceeded, which BigQuery does not retry, naming the backend."""
    import requests
    from google.api_core import exceptions as gexc

    from shared.deadline import BACKEND_ATTRIBUTE, DeadlineRequest

    def refuse(**kwargs: Any) -> None:
        raise requests.exceptions.ConnectionError("connection refused")

    request = DeadlineRequest(refuse, 0.5, "BigQuery (Google Cloud)", None)
    with pytest.raises(requests.exceptions.ConnectionError):
        request(url="http://bq/x", method="GET")  # retried by the client's own retry
    time.sleep(0.6)
    with pytest.raises(gexc.DeadlineExceeded, match=r"no connection within 0\.5 s") as caught:
        request(url="http://bq/x", method="GET")
    assert getattr(caught.value, BACKEND_ATTRIBUTE) == "BigQuery (Google Cloud)"
