"""DEMO STAND-INS for the data processors this package does not contain.

The real scrapers, analytics, precompute and prediction processors live elsewhere. On the
local cloud these stand-ins play them: they answer each phase trigger by publishing that
phase's completion messages after a short delay, and answer each ``RetryRequest`` from
auto-retry by re-running (publishing a success or a failure). Their completions are shaped as
the replaced system's processors build them (``shared.client.build_completion``: class names,
``phase_3_analytics``-style phase strings, ``output_table``, the coordinator's counts in
``metadata``). A phase whose trigger arrives over HTTP (the prediction coordinator's ``/start``)
is started by ``StartEndpoint`` instead of its trigger topic. Failures are configurable per
processor. Nothing here is deployed: it is only imported by the demo and its test.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from deploy.local.topology import pull_now
from shared.clock import Clock
from shared.contracts.messages import PhaseTrigger, RetryRequest
from shared.pipeline.definition import PipelineDefinition


@dataclass(frozen=True)
class Failure:
    """How a stand-in processor fails: on the nightly run, on auto-retry re-runs, or both."""

    message: str
    nightly: bool = True
    retries: bool = True
    error_type: str = "transient"  # transient: auto-retry retries it; permanent: failed_permanent at once


class StartEndpoint:
    """A local stand-in for a consumer's HTTP start endpoint (the prediction coordinator's ``/start``).

    Started before the local stack, so its URL can go into the functions' environment; it answers
    each POST with the next of ``statuses`` (then ``status``), records path, headers and JSON
    body in ``received``, and queues each body for the stand-in processors. ``GET /ready`` answers
    ``{"status": ready_status}`` (the health check the 4→5 gate makes).
    """

    def __init__(self, status: int = 202, ready_status: str = "ready") -> None:
        self.status = status
        self.ready_status = ready_status  # what GET /ready answers (the replaced services' health check)
        self.health_checks: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers for the next requests, in order (tests inject failures)
        self.requests: queue.Queue[dict[str, Any]] = queue.Queue()
        self.received: list[dict[str, Any]] = []
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                try:
                    body = json.loads(self.rfile.read(length) or b"{}")
                except ValueError:
                    body = {}
                endpoint.received.append({"path": self.path, "headers": dict(self.headers), "body": body})
                status = endpoint.statuses.pop(0) if endpoint.statuses else endpoint.status
                if 200 <= status < 300:
                    endpoint.requests.put(body)
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(b'{"status": "started"}')

            def do_GET(self) -> None:
                endpoint.health_checks.append({"path": self.path, "headers": dict(self.headers)})
                found = self.path.split("?")[0] == "/ready"
                self.send_response(200 if found else 404)
                self.send_header("Content-Type", "application/json")
                self.end_headers()
                self.wfile.write(json.dumps({"status": endpoint.ready_status} if found else {}).encode())

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name="start-endpoint", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)


class StandinProcessors:
    """Stand-in processors wired to the trigger and retry topics of ``definition``."""

    def __init__(
        self,
        definition: PipelineDefinition,
        project: str,
        clock: Clock,
        *,
        failures: Mapping[tuple[str, date], Failure] | None = None,
        delay_seconds: float = 0.3,
        say: Callable[[str], None] | None = None,
        phase5_completion_pct: float = 96.4,
        phase5_predictions: int = 412,
        start_endpoints: Mapping[int, StartEndpoint] | None = None,
        games: Mapping[date, Sequence[tuple[str, str, str]]] | None = None,
        dnp_share: Mapping[str, float] | None = None,
    ) -> None:
        from shared.gcp import publisher_client, subscriber_client

        self.definition = definition
        self.project = project
        self.clock = clock
        self.failures = dict(failures or {})
        self.delay = delay_seconds
        self.say = say or (lambda _text: None)
        self.pct, self.predictions = phase5_completion_pct, phase5_predictions
        self.publisher, self.subscriber = publisher_client(), subscriber_client()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._subscriptions: dict[str, tuple[str, int | None]] = {}  # path → (kind, phase)
        self.start_endpoints = dict(start_endpoints or {})  # phase → its HTTP start endpoint
        self.errors: list[str] = []
        # the games whose rows a processor writes to its output table before reporting (the tables
        # the gates read); dnp_share: per processor, the share of player rows with 0 minutes
        self.games = dict(games or {})
        self.dnp_share = dict(dnp_share or {})

    # -- wiring ----------------------------------------------------------------------------
    def start(self) -> StandinProcessors:
        from deploy.local.topology import ensure_subscription

        suffix = uuid.uuid4().hex[:6]
        for phase in self.definition.phases:
            listens = phase.number not in self.start_endpoints  # an HTTP-started phase ignores its topic
            has_transition = any(t.source_phase == phase.number for t in self.definition.transitions)
            if listens and phase.trigger_topic and has_transition:
                path = ensure_subscription(
                    self.subscriber, self.project, phase.trigger_topic, f"standin-phase{phase.number}-{suffix}"
                )
                self._subscriptions[path] = ("trigger", phase.number)
            if phase.retry_topic:
                path = ensure_subscription(
                    self.subscriber, self.project, phase.retry_topic, f"standin-retry{phase.number}-{suffix}"
                )
                self._subscriptions[path] = ("retry", phase.number)
        self._thread = threading.Thread(target=self._loop, name="standin-processors", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=15)

    def _loop(self) -> None:
        while not self._stop.is_set():
            idle = True
            for started_phase, endpoint in self.start_endpoints.items():
                while not endpoint.requests.empty():
                    body = endpoint.requests.get_nowait()
                    idle = False
                    time.sleep(self.delay)
                    day = date.fromisoformat(str(body["game_date"]))
                    self.run_phase(started_phase, day, body.get("correlation_id"))
            for path, (kind, phase) in self._subscriptions.items():
                try:
                    messages = pull_now(self.subscriber, path)
                except Exception as exc:  # noqa: BLE001 - reported; the emulator may be stopping
                    if not self._stop.is_set():
                        self.errors.append(f"pull {path}: {exc}")
                    continue
                idle = idle and not messages
                for data in messages:
                    self._handle(kind, phase, data)
            if idle:
                self._stop.wait(0.25)

    def _handle(self, kind: str, phase: int | None, data: bytes) -> None:
        if kind == "trigger" and phase is not None:
            trigger = PhaseTrigger.model_validate_json(data)
            if trigger.part > 1:  # one run per trigger, not per source-table message
                return
            time.sleep(self.delay)
            self.run_phase(phase, trigger.game_date, trigger.correlation_id)
            return
        request = RetryRequest.model_validate_json(data)
        failure = self.failures.get((request.processor_name, request.game_date))
        why = f" (fallback for {request.fallback_for})" if request.fallback_for else ""
        if failure is not None and failure.retries:
            self.say(f"stand-in {request.processor_name} re-run {request.attempt}{why}: failed — {failure.message}")
            self.publish(
                request.phase,
                request.processor_name,
                request.game_date,
                status="failed",
                error_type=failure.error_type,
                error_message=failure.message,
                record_count=0,
            )
        else:
            self.say(f"stand-in {request.processor_name} re-run {request.attempt}{why}: success")
            self.publish(request.phase, request.processor_name, request.game_date)

    # -- publishing --------------------------------------------------------------------------
    def processors(self, phase: int) -> list[str]:
        """The processors named by the transition leaving ``phase``, then the gate's boxscore sources."""
        transition = self.definition.transition_from(phase)
        names: list[str] = []
        for _, expected, critical, optional in transition.processor_sets():
            for name in (*expected, *critical, *optional):
                if name not in names:
                    names.append(name)
        for source in self.definition.games.boxscore_sources:
            if self.definition.processor(source.processor).phase == phase and source.processor not in names:
                names.append(source.processor)
        return names

    def run_phase(self, phase: int, game_date: date, correlation_id: str | None = None) -> None:
        """Every processor of ``phase`` reports for ``game_date`` (failing ones as configured)."""
        for name in self.processors(phase):
            failure = self.failures.get((name, game_date))
            if failure is not None and failure.nightly:
                self.publish(
                    phase,
                    name,
                    game_date,
                    correlation_id,
                    status="failed",
                    error_type=failure.error_type,
                    error_message=failure.message,
                    record_count=0,
                )
                self.say(f"stand-in {name} (phase {phase}, {game_date}): failed — {failure.message}")
            elif self.definition.transition_from(phase).completion is not None:
                expected = round(self.predictions * 100 / self.pct) if self.pct else self.predictions
                metadata = {  # as the replaced coordinator sends them (coordinator.py:3954-3961)
                    "batch_id": f"batch_{game_date.isoformat()}_{int(time.time())}",
                    "expected_players": expected,
                    "completed_players": self.predictions,
                    "completed_predictions": self.predictions,
                    "total_predictions": self.predictions,
                    "completion_pct": self.pct,
                }
                self.write_output(name, game_date)  # the predictions the grading sensor looks for
                self.publish(phase, name, game_date, correlation_id, record_count=self.predictions, metadata=metadata)
                self.say(
                    f"stand-in {name} (phase {phase}, {game_date}): {self.pct:g}% with {self.predictions} predictions"
                )
            else:
                rows = self.write_output(name, game_date)
                self.publish(phase, name, game_date, correlation_id)
                self.say(f"stand-in {name} (phase {phase}, {game_date}): success{f' ({rows} rows)' if rows else ''}")

    def write_output(self, processor: str, game_date: date) -> int:
        """The processor's rows in its output table, when a gate or a sensor reads it (0 otherwise)."""
        table = self.definition.processor(processor).output_table
        read = (*self.definition.gate_tables(), *self.definition.condition_tables())
        refs = [ref for ref in read if ref.split(".")[1] == table]
        games = self.games.get(game_date)
        if not refs or not games:
            return 0
        from deploy.local.outputs import write_outputs
        from shared.gcp_bigquery import bigquery_client

        share = self.dnp_share.get(processor, 0.0)
        return write_outputs(bigquery_client(self.project), self.project, refs, game_date, games, dnp_share=share)

    def publish(
        self, phase: int, processor: str, game_date: date, correlation_id: str | None = None, **extra: Any
    ) -> None:
        """A completion as the replaced system's processor would send it (class name, output_table)."""
        from shared.client.completion import build_completion

        proc = self.definition.processor(processor)
        phase_def = self.definition.phase(phase)
        message = build_completion(
            processor_name=proc.aliases[0] if proc.aliases else proc.name,
            phase=f"phase_{phase}_{phase_def.name}",
            game_date=game_date,
            status=extra.pop("status", "success"),
            execution_id=uuid.uuid4().hex[:8],
            correlation_id=correlation_id or f"night-{game_date}",
            output_table=proc.output_table,
            record_count=extra.pop("record_count", 240),
            trigger_source="pubsub",
            now=self.clock.now(),
            **extra,
        )
        topic = self.publisher.topic_path(self.project, phase_def.completion_topic)
        self.publisher.publish(topic, json.dumps(message).encode()).result(timeout=30)
