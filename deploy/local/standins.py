"""DEMO STAND-INS for the data processors this package does not contain.

The real scrapers, analytics, precompute and prediction processors live elsewhere. On the
local cloud these stand-ins play them: they answer each phase trigger by publishing that
phase's completion messages after a short delay, and answer each ``RetryRequest`` from
auto-retry by re-running (publishing a success or a failure). Their completions are shaped as
the replaced system's processors build them (``shared.client.build_completion``: class names,
``phase_3_analytics``-style phase strings, ``output_table``, the coordinator's counts in
``metadata``). A phase whose trigger arrives over HTTP (the prediction coordinator's ``/start``)
is started by ``StartEndpoint`` instead of its trigger topic. Failures are configurable per
processor.

``ServiceStandin``: one local HTTP stand-in per ``[services]`` entry the scheduled jobs call
(``LocalStack`` starts them and sets each service's ``url_env`` to its URL). It records every
request (method, path, query, JSON body, the bearer token's ``aud``, the simulated and wall time)
and answers 200 unless scripted ("500 twice then 200", "404"). ``python -m deploy.local.standins
requests|script`` reads the records and scripts answers from another terminal.

Nothing here is deployed: it is only imported by the local cloud, the demo and their tests.
"""

from __future__ import annotations

import json
import queue
import threading
import time
import uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from deploy.local.topology import pull_now
from shared.clock import Clock
from shared.contracts.messages import PhaseTrigger, RetryRequest
from shared.pipeline.definition import PipelineDefinition

DISPATCHER_AGENT = "phasechain-schedule-dispatcher"  # the User-Agent of the dispatcher's HTTP calls


@dataclass(frozen=True)
class Failure:
    """How a stand-in processor fails: on the nightly run, on auto-retry re-runs, or both."""

    message: str
    nightly: bool = True
    retries: bool = True
    error_type: str = "transient"  # transient: auto-retry retries it; permanent: failed_permanent at once


STANDIN_LOG = "standin-requests.jsonl"  # every stand-in's requests, one JSON object a line
CONTROL = "/__standin"  # the stand-ins' own endpoints (not recorded): /requests, /script


def token_claims(authorization: str | None) -> dict[str, Any]:
    """The claims of a ``Bearer`` JWT, decoded without verification (the local cloud's tokens are
    unsigned, ``shared.schedules.targets.local_id_token``); ``{}`` when there is none or it is not a JWT."""
    import base64

    if not authorization or not authorization.startswith("Bearer "):
        return {}
    parts = authorization.removeprefix("Bearer ").strip().split(".")
    if len(parts) < 2:
        return {}
    try:
        payload = base64.urlsafe_b64decode(parts[1] + "=" * (-len(parts[1]) % 4))
        claims = json.loads(payload)
    except ValueError:
        return {}
    return claims if isinstance(claims, dict) else {}


@dataclass
class Script:
    """Scripted answers for one path: ``statuses`` in order, then ``then`` for good (None: the
    stand-in's default). ``match``: only requests whose JSON body holds these keys and values."""

    statuses: list[int]
    then: int | None = None
    match: dict[str, Any] | None = None

    def applies(self, body: Any) -> bool:
        if not self.match:
            return True
        return isinstance(body, dict) and all(body.get(k) == v for k, v in self.match.items())

    def next(self) -> int | None:
        if self.statuses:
            return self.statuses.pop(0)
        return self.then


def parse_answers(words: Sequence[str]) -> list[int]:
    """``["500x2", "200"]`` or ``["500", "500", "200"]`` → ``[500, 500, 200]`` (the CLI's answers)."""
    out: list[int] = []
    for word in words:
        for part in word.replace(",", " ").split():
            status, _, times = part.partition("x")
            count = int(times) if times else 1
            code = int(status)
            if not 100 <= code <= 599 or count < 1:
                raise ValueError(f"not an HTTP status (or count): {part!r}")
            out += [code] * count
    return out


class ServiceStandin:
    """A local stand-in for a Cloud Run service the scheduled jobs (and the transitions) call.

    It records every request in ``records`` (and, with ``log``, as a JSON line): the service, method,
    path, query, JSON body, the ``Authorization`` bearer token's ``aud`` (decoded, not verified: the
    local cloud's tokens are unsigned), the answer, the simulated time (``clock``) and the wall time.
    Every request is answered ``status`` (200) unless scripted: ``script(path, [500], then=None)``
    answers the next matching request 500, then the default again; ``GET /ready`` answers
    ``{"status": ready_status}``. ``/__standin/requests`` (GET) and ``/__standin/script`` (POST
    ``{"path", "statuses", "then", "match"}``) do the same from another process.

    As the prediction coordinator's ``/start`` (``StartEndpoint``) it also queues each accepted
    transition start (a POST whose body names a ``game_date``) in ``requests`` for the stand-in
    processors; a scheduled job's call (the dispatcher's) is recorded and answered, not played.
    """

    def __init__(
        self,
        service: str = "standin",
        *,
        status: int = 200,
        ready_status: str = "ready",
        clock: Callable[[], datetime] | None = None,
        log: Path | None = None,
    ) -> None:
        self.service = service
        self.status = status
        self.ready_status = ready_status  # what GET /ready answers (the replaced services' health check)
        self.clock = clock  # the simulated clock's now (set by LocalStack when None)
        self.log = log
        self.health_checks: list[dict[str, Any]] = []
        self.statuses: list[int] = []  # answers for the next POSTs, in order, before any script
        self.requests: queue.Queue[dict[str, Any]] = queue.Queue()  # transition starts, for the processors
        self.received: list[dict[str, Any]] = []  # POST/PUT: path, headers, body
        self.records: list[dict[str, Any]] = []  # every request, with its answer
        self.scripts: dict[str, list[Script]] = {}  # path ("*": any) -> its scripts, in order
        self._lock = threading.Lock()
        endpoint = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                endpoint._handle(self, "GET")

            def do_POST(self) -> None:
                endpoint._handle(self, "POST")

            def do_PUT(self) -> None:
                endpoint._handle(self, "PUT")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._thread = threading.Thread(
            target=self._server.serve_forever, args=(0.05,), name=f"standin-{service}", daemon=True
        )
        self._thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self._server.server_address[1]}"

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=10)

    # -- scripting -------------------------------------------------------------------------
    def script(
        self, path: str, statuses: Sequence[int], *, then: int | None = None, match: dict[str, Any] | None = None
    ) -> None:
        """Answer the next requests to ``path`` (``"*"``: any path) with ``statuses``, then ``then``
        (None: the default again). ``match``: only requests whose JSON body holds these items."""
        with self._lock:
            self.scripts.setdefault(path, []).append(Script(list(statuses), then, dict(match) if match else None))

    def _answer(self, method: str, path: str, body: Any) -> int:
        with self._lock:
            if method != "GET" and self.statuses:
                return self.statuses.pop(0)
            scripts: list[Script] = [*self.scripts.get(path, []), *self.scripts.get("*", [])]
            for script in scripts:
                if script.applies(body):
                    status = script.next()
                    if status is not None:
                        return status
        return 200 if method == "GET" else self.status

    def recorded(self, path: str | None = None, method: str | None = None) -> list[dict[str, Any]]:
        """The records so far (health checks included), optionally of one path and method."""
        with self._lock:
            return [
                r
                for r in self.records
                if (path is None or r["path"] == path) and (method is None or r["method"] == method)
            ]

    # -- serving ---------------------------------------------------------------------------
    def _handle(self, handler: BaseHTTPRequestHandler, method: str) -> None:
        from urllib.parse import parse_qsl, urlsplit

        parts = urlsplit(handler.path)
        length = int(handler.headers.get("Content-Length") or 0)
        raw = handler.rfile.read(length) if length else b""
        if parts.path.startswith(CONTROL + "/"):
            self._control(handler, method, parts.path.removeprefix(CONTROL), raw)
            return
        try:
            body: Any = json.loads(raw) if raw else None
        except ValueError:
            body = raw.decode("utf-8", "replace")
        headers = dict(handler.headers)
        ready = method == "GET" and parts.path == "/ready"
        status = self._answer(method, parts.path, body)
        claims = token_claims(handler.headers.get("Authorization"))
        record = {
            "service": self.service,
            "method": method,
            "path": parts.path,
            "query": dict(parse_qsl(parts.query)),
            "body": body,
            "aud": claims.get("aud"),
            "status": status,
            "at": self.clock().isoformat() if self.clock is not None else None,
            "wall": datetime.now(UTC).isoformat(),
            "user_agent": handler.headers.get("User-Agent"),
        }
        with self._lock:
            self.records.append(record)
            if ready:
                self.health_checks.append({"path": handler.path, "headers": headers})
            elif method != "GET":
                posted = body if body is not None else {}
                self.received.append({"path": handler.path, "headers": headers, "body": posted})
            if self.log is not None:
                with self.log.open("a") as out:
                    out.write(json.dumps(record, default=str) + "\n")
        scheduled = str(handler.headers.get("User-Agent") or "").startswith(DISPATCHER_AGENT)
        start = method == "POST" and isinstance(body, dict) and "game_date" in body
        if start and 200 <= status < 300 and not scheduled:
            self.requests.put(body)
        if ready:
            answer: Any = {"status": self.ready_status} if status == 200 else {}
        elif method == "GET":
            answer = {}
        else:
            answer = {"status": "started" if 200 <= status < 300 else "error", "standin": self.service}
        self._reply(handler, status, answer)

    def _control(self, handler: BaseHTTPRequestHandler, method: str, what: str, raw: bytes) -> None:
        if method == "GET" and what == "/requests":
            self._reply(handler, 200, {"service": self.service, "requests": self.recorded()})
            return
        if method == "POST" and what == "/script":
            try:
                spec = json.loads(raw or b"{}")
                self.script(
                    str(spec.get("path") or "*"),
                    [int(s) for s in spec.get("statuses") or []],
                    then=None if spec.get("then") is None else int(spec["then"]),
                    match=spec.get("match"),
                )
            except (ValueError, TypeError, AttributeError) as exc:
                self._reply(handler, 400, {"error": str(exc)})
                return
            scripts = {p: len(s) for p, s in self.scripts.items()}
            self._reply(handler, 200, {"service": self.service, "scripts": scripts})
            return
        self._reply(handler, 404, {"error": f"no {method} {CONTROL}{what}"})

    @staticmethod
    def _reply(handler: BaseHTTPRequestHandler, status: int, answer: Any) -> None:
        data = json.dumps(answer, default=str).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)


class StartEndpoint(ServiceStandin):
    """The prediction coordinator's ``/start`` stand-in: answers 202 by default, and queues each
    accepted transition start for the stand-in processors (``StandinProcessors(start_endpoints=...)``)."""

    def __init__(self, status: int = 202, ready_status: str = "ready", service: str = "prediction-coordinator") -> None:
        super().__init__(service, status=status, ready_status=ready_status)


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
        lost_triggers: Iterable[tuple[int, date]] = (),
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
        # (phase, date): its generation-1 trigger is lost (the service never ran it: a night whose phase never ran)
        self.lost_triggers = set(lost_triggers)

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
        for sensor in self.definition.sensors:  # a sensor's consumer (grading) writes its rows
            if self.graded_table(sensor.name):
                path = ensure_subscription(
                    self.subscriber, self.project, sensor.topic, f"standin-{sensor.name}-{suffix}"
                )
                self._subscriptions[path] = ("sensor", None)
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
                    try:
                        day = date.fromisoformat(str(body["game_date"]))
                    except (KeyError, ValueError) as exc:
                        self.errors.append(f"start without a game date: {body!r}: {exc}")
                        continue
                    time.sleep(self.delay)
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

    def graded_table(self, sensor: str) -> str | None:
        """The table a sensor's consumer writes, as its ``not_done`` condition names it (grading:
        prediction_accuracy), or ``None``."""
        trigger = next((s for s in self.definition.sensors if s.name == sensor), None)
        done = [c for c in (trigger.conditions if trigger else ()) if c.kind == "not_done" and c.table is not None]
        return done[0].table.table if done and done[0].table is not None else None

    def _grade(self, data: bytes) -> None:
        """Grading's stand-in: one graded row per predicted player of the date's played games."""
        from deploy.local.outputs import write_outputs
        from shared.contracts.messages import TimedTriggerMessage
        from shared.gcp_bigquery import bigquery_client

        message = TimedTriggerMessage.model_validate_json(data)
        table, games = self.graded_table(message.name), self.games.get(message.game_date)
        if table is None or not games:
            return
        rows = write_outputs(bigquery_client(self.project), self.project, [table], message.game_date, games)
        self.say(f"stand-in grading ({message.name}, {message.game_date}): {rows} graded rows")

    def _handle(self, kind: str, phase: int | None, data: bytes) -> None:
        if kind == "sensor":
            self._grade(data)
            return
        if kind == "trigger" and phase is not None:
            trigger = PhaseTrigger.model_validate_json(data)
            if trigger.part > 1:  # one run per trigger, not per source-table message
                return
            if trigger.generation == 1 and (phase, trigger.game_date) in self.lost_triggers:
                self.lost_triggers.discard((phase, trigger.game_date))
                self.say(f"stand-in phase {phase}: {trigger.trigger_id} lost, phase {phase} never runs for it")
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


# -- reading what the stand-ins recorded, scripting them from another terminal ------------------
def body_text(body: Any, limit: int = 160) -> str:
    """A JSON body on one line, ``{key: value, ...}``, cut at ``limit`` characters."""
    if body is None:
        return "-"
    if isinstance(body, dict):
        text = "{" + ", ".join(f"{k}: {json.dumps(v) if not isinstance(v, str) else v}" for k, v in body.items()) + "}"
    else:
        text = json.dumps(body) if not isinstance(body, str) else body
    return text if len(text) <= limit else text[: limit - 1] + "…"


def describe(record: Mapping[str, Any], *, service: bool = True) -> str:
    """One line: ``nba-phase4-precompute-processors POST /process-date {analysis_date: 2026-01-25, ...}
    aud=http://127.0.0.1:NNNN -> 200``."""
    query = "?" + "&".join(f"{k}={v}" for k, v in record.get("query", {}).items()) if record.get("query") else ""
    who = f"{record.get('service')} " if service else ""
    aud = f" aud={record['aud']}" if record.get("aud") else " (no token)"
    body = f" {body_text(record.get('body'))}" if record.get("body") is not None else ""
    return f"{who}{record.get('method')} {record.get('path')}{query}{body}{aud} -> {record.get('status')}"


def read_records(log: Path, service: str | None = None) -> list[dict[str, Any]]:
    """The requests every stand-in of a local cloud recorded (its ``standin_log``), oldest first."""
    if not log.is_file():
        return []
    records = [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    return [r for r in records if service is None or r.get("service") == service]


def main(argv: list[str] | None = None) -> int:
    """``python -m deploy.local.standins requests|script``: against the local cloud ``--state-dir`` names."""
    import argparse
    import sys
    import urllib.request

    from deploy.local.state import DEFAULT_STATE_DIR, StackState

    parser = argparse.ArgumentParser(prog="python -m deploy.local.standins", description=main.__doc__)
    parser.add_argument("--state-dir", type=Path, default=DEFAULT_STATE_DIR)
    sub = parser.add_subparsers(dest="action", required=True)
    requests = sub.add_parser("requests", help="what the stand-ins recorded, oldest first")
    requests.add_argument("--service")
    requests.add_argument("--json", action="store_true", help="one JSON object a line")
    script = sub.add_parser("script", help="answers for a service's next requests: SERVICE PATH 500x2 [--then 404]")
    script.add_argument("service")
    script.add_argument("path", help='the request path ("*": any)')
    script.add_argument("answers", nargs="*", help="HTTP statuses in order (500 500, or 500x2)")
    script.add_argument("--then", type=int, help="the answer after those, for good (default: 200 again)")
    script.add_argument("--match", help="only requests whose JSON body holds these items (a JSON object)")
    args = parser.parse_args(argv)
    state = StackState.read(args.state_dir)
    if state is None:
        sys.stderr.write(f"no local cloud is recorded in {args.state_dir} (phasectl local up --state-dir ...)\n")
        return 2
    if args.action == "requests":
        for record in read_records(Path(state.standin_log), args.service):
            if args.json:
                sys.stdout.write(json.dumps(record, default=str) + "\n")
            else:
                sys.stdout.write(f"{record.get('at') or record.get('wall')} {describe(record)}\n")
        return 0
    known = state.standins.get(args.service)
    if known is None:
        sys.stderr.write(f"no stand-in for service {args.service!r} (known: {sorted(state.standins)})\n")
        return 2
    spec = {
        "path": args.path,
        "statuses": parse_answers(args.answers),
        "then": args.then,
        "match": json.loads(args.match) if args.match else None,
    }
    request = urllib.request.Request(
        f"{known['url']}{CONTROL}/script",
        data=json.dumps(spec).encode(),
        method="POST",
        headers={"Content-Type": "application/json"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        sys.stdout.write(
            f"{args.service} {args.path}: {spec['statuses'] or []} then {args.then or 'the default'} "
            f"({response.read().decode()})\n"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
