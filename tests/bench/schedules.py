"""``make bench``: scheduled jobs, one tick a minute or one Cloud Scheduler job per job (issue 26).

The design choice (docs/design.md, "One tick, one dispatcher"): (a) ONE Cloud Scheduler job ticks the
schedule dispatcher every minute and the dispatcher runs whatever the definition says is due (the
chosen design), versus (b) ONE Cloud Scheduler job PER defined job, each firing publishing a tick
that names its job to the same dispatcher function.

One in-season day (2026-01-24 00:00 → 2026-01-25 00:00 America/New_York) of the packaged
definition's jobs (``PipelineDefinition.all_jobs()``) is dispatched on the real Firestore and Pub/Sub
emulators, in both modes, in one run, by the real dispatcher (``shared.schedules.runtime.
build_dispatcher``) on a ``FixedClock``; every ``[services]`` ``url_env`` points at one in-process
recording HTTP server answering 200, every Pub/Sub job topic exists, ID tokens are the local
unsigned ones (``PHASECHAIN_LOCAL_ID_TOKENS=1``):

- (a) 1440 invocations, ``tick(ScheduleTick())`` at each minute + 3 s;
- (b) one invocation per slot, ``tick(ScheduleTick(job=J))`` at each slot's instant (the slots from
  ``shared.schedules.plan.slots_between``). The manual path behind ``ScheduleTick(job=J)`` runs the
  job's slot on a *day* (``slot_on``: the day's first slot), so a job firing several times a day
  (live exports every 3 minutes, hourly trends) would get "done" after its first slot; (b) would need
  its tick to mean "this job's latest slot", which is what this benchmark gives it: the dispatcher's
  ``manual_slot`` is replaced, for mode (b) only, by the job's latest active slot up to now within the
  catch-up window (``plan.last_slot``, with the operator's season overrides read as (a) reads them).
  Everything else (the batched run read, claim, attempt, fenced finish, log row) is the dispatcher's.

Before the counted day, the last 15 minutes (the catch-up window) of the previous day are dispatched
the same way, uncounted: (a)'s first ticks would otherwise run the previous evening's slots.

Counted, per mode, over the day: invocations and each one's wall time (``tick()``; request-based
Cloud Run billing rounds each request up to 100 ms, as ``tests.bench.cost`` does); the time spent
planning (``due_slots`` in (a), the job's latest slot in (b)); Firestore documents read / written
(of which created) / deleted and the RPCs, at the gRPC boundary (``tests.bench.counting.install()``
in this process, the way Firestore bills them); HTTP requests the recorder received and messages
published to the jobs' topics (asserted equal in both modes and equal to the day's slots); Cloud
Scheduler jobs. Priced at ``tests.bench.cost``'s list prices (no free tier), a month being 30 such
days. Cold starts are modelled as in ``tests.bench.cost`` (an instance idle 15 minutes is gone; a
request finding no warm instance bills ``COLD_START_S`` more), with the dispatcher's
``max_instances`` and one request per instance, on the day taken as a cycle (the day before is the
same day).

BigQuery does not run: the ``phase_execution_log`` rows are staged in the Firestore outbox in the
finish transaction (counted), and the log writer is replaced by one that reads the pending rows and
deletes them as delivered (the Firestore half of a delivery, counted) without the ``insertAll``
request. Left in the outbox, every later flush would read up to 200 of them: an artefact no deployed
day has.

Firing delay: for 20 sampled fire instants (the 10 with the most slots and 10 spread over the
single-slot ones), the tick(s) are published to a Pub/Sub topic at the instant (real time), pulled,
and dispatched in-process (in (b) every job's tick of the instant at once, at most ``max_instances``
at a time); the delay of each HTTP slot is the recorder's receipt minus the publish. The hops are the
same in both modes (Cloud Scheduler → Pub/Sub → the dispatcher → the target).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import sys
import tempfile
import threading
import time
from collections import Counter, defaultdict
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.orchestration.outbox import ExecutionLogWriter, FlushResult
from tests.bench import counting
from tests.bench.bundles import replace_section
from tests.bench.contention import checkout_version
from tests.bench.cost import (
    BILLING_GRANULARITY_S,
    COLD_START_S,
    DAYS_PER_MONTH,
    FIRESTORE_PER_100K,
    FUNCTION_GIB,
    FUNCTION_VCPU,
    IDLE_INSTANCE_MINUTES,
    PRICE_TIER,
    PUBSUB_MIN_REQUEST_BYTES,
    PUBSUB_PER_TIB,
    RUN_PER_MILLION_REQUESTS,
    RUN_PRICES,
    SCHEDULER_PER_JOB_MONTH,
    TIB,
)

if TYPE_CHECKING:
    from shared.contracts.messages import ScheduleTick
    from shared.orchestration.outbox_store import Outbox
    from shared.pipeline.definition import PipelineDefinition
    from shared.schedules.dispatcher import ScheduleDispatcher
    from shared.schedules.plan import Slot

REPO = Path(__file__).resolve().parents[2]
HEADING = "## Scheduled jobs: one tick or one job each"
NY = ZoneInfo("America/New_York")
DAY_START = datetime(2026, 1, 24, tzinfo=NY).astimezone(UTC)
DAY_END = datetime(2026, 1, 25, tzinfo=NY).astimezone(UTC)
TICK_OFFSET = timedelta(seconds=3)  # (a): Cloud Scheduler's minute tick arrives a few seconds late
PROJECT = "bench-schedules"
BUDGET_SECONDS = 60.0
SAMPLES = 20
MODES = {
    "a": "(a) one tick job every minute",
    "b": "(b) one Cloud Scheduler job per job",
}


# ----------------------------------------------------------------------------- the stand-in services


class Recorder:
    """One stand-in for every Cloud Run service: records each request's receipt time, answers 200."""

    def __init__(self) -> None:
        self.received: list[tuple[float, str, str]] = []  # (time.time() at receipt, method, path)
        self._lock = threading.Lock()
        recorder = self

        class Handler(BaseHTTPRequestHandler):
            def _any(self) -> None:
                at = time.time()
                length = int(self.headers.get("Content-Length") or 0)
                if length:
                    self.rfile.read(length)
                with recorder._lock:
                    recorder.received.append((at, self.command, self.path))
                payload = b'{"status": "ok"}'
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_POST = do_GET = do_PUT = _any

            def log_message(self, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def count(self) -> int:
        with self._lock:
            return len(self.received)

    def since(self, index: int) -> list[tuple[float, str, str]]:
        with self._lock:
            return list(self.received[index:])

    def between(self, start: float, end: float) -> list[tuple[float, str, str]]:
        with self._lock:
            return [r for r in self.received if start <= r[0] < end]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


# ----------------------------------------------------------------------------- counting and planning time


def install_counting(directory: Path) -> None:
    """``tests.bench.counting`` in this process, with two more fields per record: the creates of a
    ``Commit`` (writes with an ``exists = false`` precondition) and the topic of a ``Publish``."""
    os.environ[counting.COUNT_DIR_ENV] = str(directory)
    original = counting._request_record

    def record(service: str, method: str, request: Any) -> dict[str, Any]:
        out = original(service, method, request)
        try:
            pb = counting._pb(request)
            if service == "firestore" and method == "Commit":
                out["creates"] = sum(
                    1
                    for w in pb.writes
                    if w.HasField("current_document")
                    and w.current_document.WhichOneof("condition_type") == "exists"
                    and not w.current_document.exists
                )
            elif service == "pubsub" and method == "Publish":
                out["topic"] = str(pb.topic).rsplit("/", 1)[-1]
        except Exception as exc:  # noqa: BLE001 - counting must never break the dispatcher
            out["count_error"] = repr(exc)[:200]
        return out

    counting._request_record = record
    counting.install()


_planning = threading.local()


def _plan_seconds() -> float:
    return float(getattr(_planning, "seconds", 0.0))


def _add_plan(seconds: float) -> None:
    _planning.seconds = _plan_seconds() + seconds


def time_planning() -> None:
    """Time (per thread) the dispatcher's ``due_slots``: what every (a) tick computes."""
    import shared.schedules.dispatcher as module

    original: Callable[..., list[Slot]] = vars(module)["due_slots"]

    def timed(*args: Any, **kwargs: Any) -> list[Slot]:
        t0 = time.perf_counter()
        try:
            return original(*args, **kwargs)
        finally:
            _add_plan(time.perf_counter() - t0)

    vars(module)["due_slots"] = timed


def per_job_ticks(dispatcher: ScheduleDispatcher) -> None:
    """Mode (b): a tick naming job J runs J's latest active slot up to now within the catch-up window
    (the manual path's ``slot_on`` would give the day's first slot), honouring the operator's season
    overrides as (a) does."""
    from shared.errors import ConfigError
    from shared.schedules.plan import Overrides, last_slot

    definition = dispatcher.definition
    lookback = timedelta(minutes=definition.dispatcher.catch_up_minutes)

    def latest(tick: ScheduleTick, now: datetime) -> Slot:
        job = definition.job(str(tick.job))
        overrides = Overrides.from_doc(dispatcher.runs.overrides())
        t0 = time.perf_counter()
        slot = last_slot(definition, job, now, lookback, overrides)
        _add_plan(time.perf_counter() - t0)
        if slot is None:
            raise ConfigError(f"job {job.name} has no slot in the {lookback} before {now.isoformat()}")
        return slot

    dispatcher.__dict__["manual_slot"] = latest


def manual_path_misses(definition: PipelineDefinition, slots: list[Slot]) -> tuple[int, list[str]]:
    """How many of the day's slots ``ScheduleTick(job=J)`` at the slot's instant would not run as is
    (the manual path picks another slot), and the jobs concerned (pure: no I/O)."""
    from shared.clock import FixedClock
    from shared.contracts.messages import ScheduleTick
    from shared.schedules.dispatcher import ScheduleDispatcher

    probe = ScheduleDispatcher(
        definition=definition,
        clock=FixedClock(DAY_START),
        runs=None,  # type: ignore[arg-type]  # manual_slot without force reads nothing
        targets=None,  # type: ignore[arg-type]
        log_writer=None,  # type: ignore[arg-type]
    )
    missed = [s for s in slots if probe.manual_slot(ScheduleTick(job=s.job), s.at) != s]
    return len(missed), sorted({s.job for s in missed})


class DeliveredLog(ExecutionLogWriter):
    """The log writer without BigQuery: the pending rows are read from the outbox and deleted as if
    ``insertAll`` had taken them (the Firestore half of a delivery)."""

    def __init__(self) -> None:
        super().__init__(None, "bench.no_bigquery.phase_execution_log")
        self._lock = threading.Lock()
        self.flushes = 0
        self.rows = 0

    def flush(self, outbox: Outbox, limit: int = 50) -> FlushResult:
        with self._lock:  # one at a time: concurrent (b) ticks would delete the same rows twice
            rows = outbox.pending_log_rows(limit)
            if rows:
                outbox.delete_log_rows([row_id for row_id, _ in rows])
            self.flushes += 1
            self.rows += len(rows)
        return FlushResult(len(rows), 0)


# ----------------------------------------------------------------------------- one mode's day


@dataclass(frozen=True)
class Firing:
    """Cloud Scheduler firings at one instant: their ticks, and when the dispatcher handles them."""

    at: datetime
    ticks: tuple[ScheduleTick, ...]
    handled_at: datetime


@dataclass
class Invocation:
    at: datetime  # when the dispatcher handled it (simulated)
    seconds: float  # tick() wall time
    plan_seconds: float
    outcomes: Counter[str]
    sampled: bool


@dataclass
class Delay:
    at: datetime
    busy: bool  # one of the sampled instants with the most slots
    slots: int  # slots due at the instant (HTTP and Pub/Sub)
    hop: float  # publish → pulled, s
    http: list[float]  # publish → the recorder's receipt, per HTTP slot, s


@dataclass
class ModeResult:
    mode: str
    scheduler_jobs: int
    invocations: list[Invocation]
    tally: counting.Tally
    http_requests: int
    messages: int
    flushes: int
    delays: list[Delay]
    load: tuple[float, float]
    real_seconds: float
    tick_publishes: int
    max_instances: int
    cold: int = 0
    queued: int = 0
    outcomes: Counter[str] = field(default_factory=Counter)

    # -- derived -------------------------------------------------------------------------
    def walls(self) -> list[float]:
        return [i.seconds for i in self.invocations]

    def billed_seconds(self) -> float:
        steps = sum(math.ceil(s / BILLING_GRANULARITY_S - 1e-9) for s in self.walls())
        return steps * BILLING_GRANULARITY_S + self.cold * COLD_START_S

    def firestore(self) -> dict[str, int]:
        ops = self.tally.firestore()
        ops["creates"] = sum(int(r.get("creates") or 0) for r in self.tally.where(svc="firestore", op="Commit"))
        ops["commits"] = len(self.tally.where(svc="firestore", op="Commit"))
        ops["batch_gets"] = len(self.tally.where(svc="firestore", op="BatchGetDocuments"))
        ops["queries"] = len(self.tally.where(svc="firestore", op="RunQuery"))
        return ops

    def month(self) -> dict[str, float]:
        prices = RUN_PRICES[PRICE_TIER]
        per_second = FUNCTION_VCPU * prices["vcpu_second"] + FUNCTION_GIB * prices["gib_second"]
        fs = self.firestore()
        n = len(self.invocations)
        firestore = sum(fs[k] * FIRESTORE_PER_100K[k] / 1e5 for k in FIRESTORE_PER_100K)
        # each firing: Cloud Scheduler's publish to the tick topic and the push to the function
        pubsub = self.tick_publishes * 2 * PUBSUB_MIN_REQUEST_BYTES / TIB * PUBSUB_PER_TIB
        out = {
            "scheduler": self.scheduler_jobs * SCHEDULER_PER_JOB_MONTH,
            "invocations": n * RUN_PER_MILLION_REQUESTS / 1e6 * DAYS_PER_MONTH,
            "compute": self.billed_seconds() * per_second * DAYS_PER_MONTH,
            "firestore": firestore * DAYS_PER_MONTH,
            "pubsub": pubsub * DAYS_PER_MONTH,
        }
        out["total"] = sum(out.values())
        return out


def ran(result: ModeResult, something: bool) -> list[float]:
    """The wall times of the invocations that ran a slot (or that ran none)."""
    return [i.seconds for i in result.invocations if bool(i.outcomes) == something]


def pct(values: list[float], p: float) -> float:
    """Nearest-rank percentile (0 for no values)."""
    if not values:
        return 0.0
    ordered = sorted(values)
    return ordered[max(0, math.ceil(p * len(ordered)) - 1)]


def day_slots(definition: PipelineDefinition, start: datetime, end: datetime) -> list[Slot]:
    """Every dispatched job's active slots in ``[start, end)``, by instant then job."""
    from shared.schedules.plan import slots_between

    second = timedelta(seconds=1)
    found = [s for job in definition.all_jobs() for s in slots_between(definition, job, start - second, end - second)]
    return sorted(found, key=lambda s: (s.at, s.job))


def firings(mode: str, definition: PipelineDefinition, start: datetime, end: datetime) -> list[Firing]:
    from shared.contracts.messages import ScheduleTick

    if mode == "a":
        minutes = int((end - start).total_seconds() // 60)
        out = []
        for m in range(minutes):
            at = start + timedelta(minutes=m)
            out.append(Firing(at, (ScheduleTick(),), at + TICK_OFFSET))
        return out
    by_instant: dict[datetime, list[str]] = defaultdict(list)
    for slot in day_slots(definition, start, end):
        by_instant[slot.at].append(slot.job)
    return [Firing(at, tuple(ScheduleTick(job=j) for j in jobs), at) for at, jobs in sorted(by_instant.items())]


def sample_instants(slots: list[Slot], http_jobs: set[str], n: int) -> tuple[list[datetime], set[datetime]]:
    """``n`` fire instants with an HTTP slot: the ``n // 2`` with the most slots (the busy ones) and the
    rest spread evenly over the instants with a single slot."""
    per: Counter[datetime] = Counter(s.at for s in slots)
    candidates = sorted({s.at for s in slots if s.job in http_jobs})
    busy = sorted(candidates, key=lambda at: (-per[at], at))[: n // 2]
    singles = [at for at in candidates if per[at] == 1 and at not in busy]
    want = n - len(busy)
    step = len(singles) / want if want else 1.0
    spread = [singles[int(i * step)] for i in range(want)] if singles else []
    return sorted({*busy, *spread}), set(busy)


@dataclass
class Bench:
    definition: PipelineDefinition
    env: dict[str, str]
    recorder: Recorder
    counts: Path
    tick_topic: str
    tick_subscription: str
    job_topics: set[str]
    day_end: datetime
    slots_at: Counter[datetime]  # slots due at each instant (HTTP and Pub/Sub)
    say: Callable[[str], None]

    def run(self, mode: str, cloud: Any, sampled: list[datetime], busy: set[datetime]) -> ModeResult:
        from shared.clock import FixedClock
        from shared.contracts.messages import ScheduleTick
        from shared.gcp import publisher_client, subscriber_client
        from shared.schedules.runtime import build_dispatcher

        cloud.reset_firestore()
        clock = FixedClock(DAY_START)
        dispatcher = build_dispatcher(
            definition=self.definition, clock=clock, environ=self.env, budget_seconds=BUDGET_SECONDS
        )
        log = DeliveredLog()
        dispatcher.log_writer = log
        if mode == "b":
            per_job_ticks(dispatcher)
        max_instances = self.definition.deploy.settings_for(self.definition.dispatcher.function).max_instances or 1
        publisher, subscriber = publisher_client(), subscriber_client()

        def invoke(tick: ScheduleTick, sampled_tick: bool) -> Invocation:
            _planning.seconds = 0.0
            now = clock.now()
            t0 = time.perf_counter()
            report = dispatcher.tick(tick)
            seconds = time.perf_counter() - t0
            return Invocation(now, seconds, _plan_seconds(), Counter(r.outcome for r in report.results), sampled_tick)

        def hop(firing: Firing) -> tuple[list[Invocation], Delay]:
            """Publish the instant's ticks at once, pull them, dispatch them (at most max_instances at a time)."""
            n = len(firing.ticks)
            before = self.recorder.count()
            t_pub = time.time()
            futures = [publisher.publish(self.tick_topic, t.model_dump_json().encode()) for t in firing.ticks]
            for future in futures:
                future.result(timeout=30)
            received: list[Any] = []
            while len(received) < n:
                response = subscriber.pull(
                    subscription=self.tick_subscription, max_messages=n - len(received), timeout=30
                )
                received += list(response.received_messages)
            subscriber.acknowledge(subscription=self.tick_subscription, ack_ids=[m.ack_id for m in received])
            hop_s = time.time() - t_pub
            ticks = [ScheduleTick.model_validate_json(m.message.data) for m in received]
            clock.set(firing.at + timedelta(seconds=hop_s))
            with ThreadPoolExecutor(max_workers=min(max_instances, n)) as pool:
                done = list(pool.map(lambda t: invoke(t, True), ticks))
            http = [at - t_pub for at, _, _ in self.recorder.since(before)]
            return done, Delay(firing.at, firing.at in busy, self.slots_at[firing.at], hop_s, http)

        def dispatch(plan: list[Firing], sample: set[datetime]) -> tuple[list[Invocation], list[Delay]]:
            done: list[Invocation] = []
            delays: list[Delay] = []
            for firing in plan:
                if firing.at in sample:
                    got, delay = hop(firing)
                    done += got
                    delays.append(delay)
                    continue
                for tick in firing.ticks:
                    clock.set(firing.handled_at)
                    done.append(invoke(tick, False))
            return done, delays

        warm = firings(mode, self.definition, DAY_START - timedelta(minutes=15), DAY_START)
        dispatch(warm, set())
        log.flushes = log.rows = 0
        plan = firings(mode, self.definition, DAY_START, self.day_end)
        self.say(f"  {MODES[mode]}: {sum(len(f.ticks) for f in plan)} invocations to dispatch")
        load0 = os.getloadavg()[0]
        since = time.time()
        invocations, delays = dispatch(plan, set(sampled))
        until = time.time()
        load1 = os.getloadavg()[0]
        time.sleep(0.2)  # let the last stream records land
        tally = counting.Tally.read(self.counts, since=since, until=until + 0.2)
        publishes = [r for r in tally.where(svc="pubsub", op="Publish") if r.get("topic") in self.job_topics]
        result = ModeResult(
            mode=mode,
            scheduler_jobs=1 if mode == "a" else len([j for j in self.definition.all_jobs() if j.dispatched]),
            invocations=invocations,
            tally=tally,
            http_requests=len(self.recorder.between(since, until)),
            messages=sum(int(r.get("messages") or 0) for r in publishes),
            flushes=log.flushes,
            delays=delays,
            load=(load0, load1),
            real_seconds=until - since,
            tick_publishes=sum(len(f.ticks) for f in plan),
            max_instances=max_instances,
        )
        for inv in invocations:
            result.outcomes.update(inv.outcomes)
        result.cold, result.queued = instance_model(invocations, max_instances)
        return result


def instance_model(invocations: list[Invocation], max_instances: int) -> tuple[int, int]:
    """(cold starts, requests that found every instance busy) in a day that repeats: one request per
    instance at a time, at most ``max_instances``; an instance idle ``IDLE_INSTANCE_MINUTES`` is gone;
    a new instance serves its first request ``COLD_START_S`` later."""
    day = [((inv.at - DAY_START).total_seconds(), inv.seconds) for inv in invocations]
    events = sorted(day) + sorted((start + 86400.0, seconds) for start, seconds in day)
    idle = IDLE_INSTANCE_MINUTES * 60
    pool: list[float] = []  # when each instance is free
    cold = queued = 0
    for n, (start, seconds) in enumerate(events):
        counted = n >= len(day)
        pool = [free for free in pool if start - free <= idle]
        free = [k for k, at in enumerate(pool) if at <= start]
        if free:
            k, begin = max(free, key=lambda k: pool[k]), start
        elif len(pool) < max_instances:
            pool.append(start)
            k, begin = len(pool) - 1, start + COLD_START_S
            cold += counted
        else:
            k = min(range(len(pool)), key=pool.__getitem__)
            begin = pool[k]
            queued += counted
        pool[k] = begin + seconds
    return cold, queued


# ----------------------------------------------------------------------------- report


def _usd(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def _ms(seconds: float) -> str:
    return f"{seconds * 1000:.0f}"


def _ratio(b: float, a: float) -> str:
    return f"{b / a:.2f}" if a else "-"


def operator_text(a: ModeResult, b: ModeResult) -> list[str]:
    return [
        "What an operator sees:",
        "",
        f"- (a): the Cloud Scheduler console lists {a.scheduler_jobs} job for all of them, "
        "`schedule-dispatcher-tick` (beside the monitor's and auto-retry's), whose last status says the "
        "minute's tick reached Pub/Sub, nothing about any job. Each job's state is in `phasectl schedules`: "
        "one table of every job of the definition (target, cron, zone, wave, next fire time in ET and in "
        "the job's zone, last slot, last status, tries, HTTP status, age, why it does not run today) from "
        "the `schedule_jobs/{job}` summaries the dispatcher writes, one batched read; failures and missed "
        "slots come as monitor findings (`schedule_failed`, `schedule_stale_target`, `schedule_missed`). "
        "Season pauses are one document (`phasectl season pause|resume`).",
        f"- (b): the console lists {b.scheduler_jobs} jobs, each with its cron, zone, next run and a last "
        "status — but a job's target is the tick topic, so that status says the tick was published, not "
        "that the service answered 2xx (the dispatcher makes the call): a job whose service fails every "
        "time stays green there. `phasectl schedules` would show the same table (the dispatcher writes the "
        f"same summaries). The {b.scheduler_jobs} jobs are state beside the definition that a deploy must "
        "create, update and delete and that can drift or be deleted by hand (the replaced system's "
        "failure); a job paused in the console is a pause the definition and `phasectl` do not know (the monitor "
        "would report its slots as missed).",
    ]


def render(a: ModeResult, b: ModeResult, meta: dict[str, Any], command: str) -> str:
    prices = RUN_PRICES[PRICE_TIER]
    ma, mb = a.month(), b.month()
    fa, fb = a.firestore(), b.firestore()
    lines = [
        HEADING,
        "",
        f"Command: `{command}`. Measured {meta['when']:%Y-%m-%d %H:%M} UTC on {platform.system().lower()}, "
        f"{os.cpu_count()} cores, Python {platform.python_version()}, real Firestore and Pub/Sub emulators "
        f"(no BigQuery), the dispatcher in-process with the official clients. Both modes in this one run, "
        f"(a) then (b), each on an emptied Firestore; 1-min load average at each mode's start → end: "
        f"(a) {a.load[0]:.1f} → {a.load[1]:.1f}, (b) {b.load[0]:.1f} → {b.load[1]:.1f} (other engineers ran "
        f"tests on the machine at the same time: wall times are upper bounds; counts do not depend on the "
        f"load). Bench run time {meta['runtime'] / 60:.1f} min. Code: {meta['version']}.",
        "",
        f"The day: 2026-01-24 00:00 → 2026-01-25 00:00 America/New_York (in season, a Saturday), the "
        f"packaged definition: {meta['jobs']} jobs ({meta['dispatched']} dispatched), {meta['slots']} slots "
        f"that day ({meta['http_slots']} HTTP, {meta['pubsub_slots']} Pub/Sub) of {meta['jobs_with_slots']} "
        f"jobs. (a): `tick(ScheduleTick())` at each minute + {TICK_OFFSET.seconds} s; (b): "
        "`tick(ScheduleTick(job=J))` at each slot's instant. How it is driven and counted: the docstring of "
        "`tests/bench/schedules.py`. Firestore operations are counted at the gRPC boundary "
        "(`tests.bench.counting`, in-process) as billed; the log rows are staged in the Firestore outbox and "
        "removed by a stand-in delivery (reads + deletes counted; BigQuery's `insertAll` not made: one per "
        f"invocation that ran a slot, {a.flushes} in (a) vs {b.flushes} in (b), billed per row, the same rows).",
        "",
        "| per day | (a) one tick job | (b) one job each | (b) / (a) |",
        "|---|---|---|---|",
    ]
    rows: list[tuple[str, str, str, str]] = [
        (
            "Cloud Scheduler jobs",
            f"{a.scheduler_jobs}",
            f"{b.scheduler_jobs}",
            _ratio(b.scheduler_jobs, a.scheduler_jobs),
        ),
        (
            "function invocations",
            f"{len(a.invocations)}",
            f"{len(b.invocations)}",
            _ratio(len(b.invocations), len(a.invocations)),
        ),
        (
            "invocations that ran a slot / ran none",
            f"{sum(1 for i in a.invocations if i.outcomes)} / {sum(1 for i in a.invocations if not i.outcomes)}",
            f"{sum(1 for i in b.invocations if i.outcomes)} / {sum(1 for i in b.invocations if not i.outcomes)}",
            "",
        ),
        (
            "wall ms per invocation p50 / p95",
            f"{_ms(pct(a.walls(), 0.5))} / {_ms(pct(a.walls(), 0.95))}",
            f"{_ms(pct(b.walls(), 0.5))} / {_ms(pct(b.walls(), 0.95))}",
            f"{_ratio(pct(b.walls(), 0.5), pct(a.walls(), 0.5))} / "
            f"{_ratio(pct(b.walls(), 0.95), pct(a.walls(), 0.95))}",
        ),
        (
            "wall ms p50 of the invocations that ran a slot / that ran none",
            f"{_ms(pct(ran(a, True), 0.5))} / {_ms(pct(ran(a, False), 0.5))}",
            f"{_ms(pct(ran(b, True), 0.5))} / -",
            _ratio(pct(ran(b, True), 0.5), pct(ran(a, True), 0.5)) + " / -",
        ),
        (
            "wall s, total",
            f"{sum(a.walls()):.1f}",
            f"{sum(b.walls()):.1f}",
            _ratio(sum(b.walls()), sum(a.walls())),
        ),
        (
            "planning ms per invocation p50 / p95 (`due_slots` / the job's latest slot)",
            f"{pct([i.plan_seconds for i in a.invocations], 0.5) * 1000:.1f} / "
            f"{pct([i.plan_seconds for i in a.invocations], 0.95) * 1000:.1f}",
            f"{pct([i.plan_seconds for i in b.invocations], 0.5) * 1000:.1f} / "
            f"{pct([i.plan_seconds for i in b.invocations], 0.95) * 1000:.1f}",
            "",
        ),
        (
            f"modelled cold starts (max_instances {a.max_instances}, idle {IDLE_INSTANCE_MINUTES:g} min) / queued",
            f"{a.cold} / {a.queued}",
            f"{b.cold} / {b.queued}",
            "",
        ),
        (
            f"billed s (100 ms per request + {COLD_START_S} s per cold start)",
            f"{a.billed_seconds():.1f}",
            f"{b.billed_seconds():.1f}",
            _ratio(b.billed_seconds(), a.billed_seconds()),
        ),
        (
            "Firestore documents read",
            f"{fa['reads']}",
            f"{fb['reads']}",
            _ratio(fb["reads"], fa["reads"]),
        ),
        (
            "Firestore writes (of which creates)",
            f"{fa['writes']} ({fa['creates']})",
            f"{fb['writes']} ({fb['creates']})",
            _ratio(fb["writes"], fa["writes"]),
        ),
        ("Firestore deletes", f"{fa['deletes']}", f"{fb['deletes']}", _ratio(fb["deletes"], fa["deletes"])),
        (
            "Firestore RPCs (batch gets / commits / queries)",
            f"{fa['rpcs']} ({fa['batch_gets']} / {fa['commits']} / {fa['queries']})",
            f"{fb['rpcs']} ({fb['batch_gets']} / {fb['commits']} / {fb['queries']})",
            _ratio(fb["rpcs"], fa["rpcs"]),
        ),
        (
            "HTTP requests received / Pub/Sub messages published (jobs' topics)",
            f"{a.http_requests} / {a.messages}",
            f"{b.http_requests} / {b.messages}",
            "equal (asserted)",
        ),
        (
            "slot outcomes",
            ", ".join(f"{k} {v}" for k, v in sorted(a.outcomes.items())),
            ", ".join(f"{k} {v}" for k, v in sorted(b.outcomes.items())),
            "",
        ),
    ]
    lines += [f"| {r[0]} | {r[1]} | {r[2]} | {r[3]} |" for r in rows]
    lines += [
        "",
        f"Per month (30 such days), USD at list prices without free tiers (`tests.bench.cost`): Cloud Scheduler "
        f"${SCHEDULER_PER_JOB_MONTH}/job-month; Cloud Run request-based Tier {PRICE_TIER} "
        f"${RUN_PER_MILLION_REQUESTS}/million requests and {FUNCTION_VCPU} vCPU x ${prices['vcpu_second']:.8f} + "
        f"{FUNCTION_GIB} GiB x ${prices['gib_second']:.8f} per billed second (512 MiB); Firestore "
        f"${FIRESTORE_PER_100K['reads']}/${FIRESTORE_PER_100K['writes']}/${FIRESTORE_PER_100K['deletes']} per "
        f"100k reads/writes/deletes; Pub/Sub ${PUBSUB_PER_TIB}/TiB at {PUBSUB_MIN_REQUEST_BYTES} bytes per request "
        "for each firing's publish and push (the jobs' own publishes and HTTP calls are the same in both modes "
        "and left out).",
        "",
        "| $ / month | scheduler | invocations | CPU + memory seconds | Firestore ops | Pub/Sub ticks | total |",
        "|---|---|---|---|---|---|---|",
    ]
    keys = ("scheduler", "invocations", "compute", "firestore", "pubsub", "total")
    for name, m in (("(a) one tick job", ma), ("(b) one job each", mb)):
        cells = [_usd(m[k]) for k in keys]
        cells[-1] = f"**{cells[-1]}**"
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines.append("| (b) / (a) | " + " | ".join(_ratio(mb[k], ma[k]) for k in keys) + " |")
    verdict = "cheaper" if ma["total"] < mb["total"] else "NOT cheaper"
    without = ma["total"] - ma["scheduler"], mb["total"] - mb["scheduler"]
    lines += [
        "",
        f"(b) / (a), total: **{mb['total'] / ma['total']:.2f}** — the chosen design (a) is {verdict} "
        f"({_usd(ma['total'])} vs {_usd(mb['total'])} a month), and only because of the scheduler line: "
        f"{b.scheduler_jobs} jobs x ${SCHEDULER_PER_JOB_MONTH} against 1. Every other line is cheaper in (b): "
        f"without the scheduler, (a) {_usd(without[0])}, (b) {_usd(without[1])}, (b) / (a) "
        f"{_ratio(without[1], without[0])}. (a) pays for {len(a.invocations)} invocations of which "
        f"{sum(1 for i in a.invocations if not i.outcomes)} run nothing (each billed at least 100 ms) and for "
        f"re-reading every slot's run on each tick of its {meta['catch_up']}-minute catch-up window "
        f"({fa['reads'] / max(1, meta['slots']):.1f} documents read per slot vs "
        f"{fb['reads'] / max(1, meta['slots']):.1f} in (b): its one run, the season overrides, the run again in the "
        f"finish transaction, the outbox). (a)'s extra on those lines: {_usd(without[0] - without[1])} a month; "
        f"(b)'s extra scheduler jobs: {_usd(mb['scheduler'] - ma['scheduler'])} a month.",
        "",
    ]
    lines += delay_lines(a, b)
    lines += ["", *operator_text(a, b)]
    if meta["misses"]:
        lines += [
            "",
            f"Found on the way: as the code stands, `ScheduleTick(job=J)` is the manual path, so "
            f"{meta['misses']} of the day's {meta['slots']} slots ({', '.join(meta['miss_jobs'])}) would answer "
            "`done` instead of running in (b); the measured (b) runs the job's latest slot in the catch-up window "
            "(a replaced `manual_slot`, with the season overrides read as (a) reads them).",
        ]
    return "\n".join(lines) + "\n"


def delay_lines(a: ModeResult, b: ModeResult) -> list[str]:
    from shared.schedules.dispatcher import WORKERS

    lines = [
        f"Firing delay: the tick(s) published to a Pub/Sub topic at the slot's instant, pulled, dispatched "
        f"in-process, until the recorder receives the HTTP request; {len(a.delays)} sampled instants (the "
        f"{sum(1 for d in a.delays if d.busy)} with the most slots, the rest single-slot instants spread over "
        "the day), every HTTP slot at them; ms:",
        "",
        "| mode | instants | HTTP slots | publish → pulled p50 | delay p50 / p95 / max, all | single-slot instants "
        "p50 / max | busy instants p50 / max |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, r in (("(a) one tick job", a), ("(b) one job each", b)):
        every = [x for d in r.delays for x in d.http]
        single = [x for d in r.delays if not d.busy for x in d.http]
        busy = [x for d in r.delays if d.busy for x in d.http]
        lines.append(
            f"| {name} | {len(r.delays)} | {len(every)} | {_ms(pct([d.hop for d in r.delays], 0.5))} | "
            f"{_ms(pct(every, 0.5))} / {_ms(pct(every, 0.95))} / {_ms(max(every, default=0.0))} | "
            f"{_ms(pct(single, 0.5))} / {_ms(max(single, default=0.0))} | "
            f"{_ms(pct(busy, 0.5))} / {_ms(max(busy, default=0.0))} |"
        )
    busiest = max(a.delays, key=lambda d: d.slots, default=None)
    plan_a = pct([i.plan_seconds for i in a.invocations], 0.5)
    lines += [
        "",
        "The hops are the same (Cloud Scheduler → Pub/Sub → the dispatcher → the target). What differs: in (a) "
        f"every tick first computes every job's due slots (`due_slots`, p50 {_ms(plan_a)} ms of planning per "
        f"invocation, on every one of the {len(a.invocations)}) and reads the run documents of all slots in the "
        f"catch-up window, and a busy minute's slots share one invocation ({WORKERS} at a time: at the busiest "
        "sampled instant, "
        f"{busiest.slots if busiest else 0} slots, they queue behind each other); in (b) each job's tick plans "
        f"one job and reads one run, and a busy instant's ticks run in parallel on up to "
        f"{b.max_instances} instances (`max_instances`; more wait — on Cloud Run a push beyond them is refused "
        "and redelivered with backoff, slower than this in-process queue). Here (b)'s parallel ticks share one "
        "Python process on the 2 loaded cores; on Cloud Run they would be separate instances, so (b)'s busy-instant "
        "numbers are pessimistic and (a)'s are what one instance does. Not in these numbers: cold starts. "
        f"The model above gives (a) {a.cold} (one tick a minute keeps an instance warm) and (b) {b.cold} a day, "
        f"each adding ~{COLD_START_S} s (the bundles' cold start, `tests.bench.cost`) to its slot's delay.",
    ]
    return lines


# ----------------------------------------------------------------------------- main


@contextmanager
def local_cloud(say: Callable[[str], None]) -> Iterator[Any]:
    from deploy.local.emulators import LocalCloud

    cloud = LocalCloud(project=PROJECT, backends=("pubsub", "firestore")).start()
    say(f"emulators up: {cloud.pids}")
    try:
        with cloud.environ():
            yield cloud
    finally:
        cloud.stop()


def run(say: Callable[[str], None], samples: int, hours: float) -> tuple[ModeResult, ModeResult, dict[str, Any]]:
    from deploy.local.topology import ensure_subscription, ensure_topic
    from shared.gcp import publisher_client, subscriber_client
    from shared.pipeline.definition import load_definition
    from shared.schedules.runtime import LOCAL_TOKENS_ENV

    started = time.time()
    definition = load_definition()
    http_jobs = {job.name for job in definition.all_jobs() if job.http is not None}
    day_end = DAY_START + timedelta(hours=hours) if hours < 24 else DAY_END
    slots = day_slots(definition, DAY_START, day_end)
    sampled, busy = sample_instants(slots, http_jobs, samples)
    misses, miss_jobs = manual_path_misses(definition, slots)
    scratch = Path(tempfile.mkdtemp(prefix="phasechain-bench-schedules-"))
    recorder = Recorder()
    try:
        with local_cloud(say) as cloud:
            counts = scratch / "counts"
            install_counting(counts)
            time_planning()
            publisher, subscriber = publisher_client(), subscriber_client()
            job_topics = {j.pubsub.topic for j in definition.all_jobs() if j.pubsub is not None}
            for topic in sorted(job_topics):
                ensure_topic(publisher, cloud.project, topic)
            tick_topic = ensure_topic(publisher, cloud.project, definition.dispatcher.tick_topic)
            subscription = ensure_subscription(
                subscriber, cloud.project, definition.dispatcher.tick_topic, "bench-schedule-dispatcher-tick"
            )
            env = {
                **os.environ,
                **{s.url_env: recorder.url for s in definition.services.values() if s.url_env},
                LOCAL_TOKENS_ENV: "1",
            }
            slots_at = Counter(s.at for s in slots)
            bench = Bench(
                definition, env, recorder, counts, tick_topic, subscription, job_topics, day_end, slots_at, say
            )
            results = {}
            for mode in ("a", "b"):
                results[mode] = bench.run(mode, cloud, sampled, busy)
                r = results[mode]
                say(
                    f"  {MODES[mode]}: {len(r.invocations)} invocations in {r.real_seconds:.0f} s, "
                    f"HTTP {r.http_requests}, messages {r.messages}, outcomes {dict(r.outcomes)}"
                )
    finally:
        recorder.close()
        shutil.rmtree(scratch, ignore_errors=True)
    a, b = results["a"], results["b"]
    http_slots = sum(1 for s in slots if s.job in http_jobs)
    expected = {"succeeded": len(slots)}
    for r in (a, b):
        assert r.outcomes == expected, f"{MODES[r.mode]}: outcomes {dict(r.outcomes)} != {expected}"
        assert r.http_requests == http_slots, f"{MODES[r.mode]}: {r.http_requests} HTTP requests != {http_slots}"
        assert r.messages == len(slots) - http_slots, f"{MODES[r.mode]}: {r.messages} messages"
    assert (a.http_requests, a.messages) == (b.http_requests, b.messages)
    meta = {
        "when": datetime.now(UTC),
        "runtime": time.time() - started,
        "version": checkout_version(REPO),
        "jobs": len(definition.all_jobs()),
        "dispatched": sum(1 for j in definition.all_jobs() if j.dispatched),
        "slots": len(slots),
        "http_slots": http_slots,
        "pubsub_slots": len(slots) - http_slots,
        "jobs_with_slots": len({s.job for s in slots}),
        "misses": misses,
        "catch_up": definition.dispatcher.catch_up_minutes,
        "miss_jobs": miss_jobs,
    }
    return a, b, meta


def main(argv: list[str] | None = None) -> int:
    from shared.structured_log import configure

    parser = argparse.ArgumentParser(prog="python -m tests.bench.schedules", description=__doc__)
    parser.add_argument("--samples", type=int, default=SAMPLES, help="fire instants sampled for the firing delay")
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    parser.add_argument("--json", type=Path, help="also write the raw numbers here")
    parser.add_argument("--hours", type=float, default=24.0, help="a shorter day from 00:00 ET (for trying)")
    args = parser.parse_args(argv)
    command = "python -m tests.bench.schedules" + (f" --samples {args.samples}" if args.samples != SAMPLES else "")
    command += f" --hours {args.hours:g}" if args.hours < 24 else ""
    configure(stream=open(os.devnull, "w"))

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    a, b, meta = run(say, args.samples, args.hours)
    section = render(a, b, meta, command)
    sys.stdout.write(section)
    if args.json:
        raw = {
            r.mode: {
                "walls": r.walls(),
                "plan": [i.plan_seconds for i in r.invocations],
                "firestore": r.firestore(),
                "month": r.month(),
                "delays": [{"at": d.at.isoformat(), "busy": d.busy, "hop": d.hop, "http": d.http} for d in r.delays],
                "cold": r.cold,
                "queued": r.queued,
                "flushes": r.flushes,
            }
            for r in (a, b)
        }
        args.json.write_text(json.dumps(raw, indent=1, default=str))
    if not args.no_write:
        args.write.write_text(replace_section(args.write.read_text(), section, HEADING))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
