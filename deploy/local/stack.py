"""``phasectl local up``: the whole deployment on one machine, from the same definitions as the cloud.

- the emulator stack (Pub/Sub, Firestore, local-bigquery) on free loopback ports;
- every topic, dead-letter topic and table of ``deploy.spec`` (what ``phasectl deploy`` creates);
- every function built as its deploy bundle and served from that bundle by its own
  ``functions-framework`` process (the repository is not on its ``PYTHONPATH``);
- a push subscription per function trigger with the dead-letter policy of the deployment, as a
  direct Pub/Sub trigger does in the cloud;
- the Cloud Scheduler jobs, fired from their cron expressions on a ``SimulatedClock`` that every
  process shares (``--accelerate N`` runs the night N times faster);
- one HTTP stand-in per ``[services]`` entry the scheduled jobs call (``deploy.local.standins.
  ServiceStandin``): each service's ``url_env`` is its URL, every request is recorded (with the
  bearer token's audience: the schedule dispatcher runs with ``PHASECHAIN_LOCAL_ID_TOKENS=1`` and
  sends unsigned local ID tokens) and answered 200 unless scripted;
- a watchdog: a function process that dies is reported with its exit code and log tail.

``change_clock`` restarts every function and the scheduler on a new clock (the demo's morning runs
faster than its night): same ports, same push subscriptions, the logs appended to.

Started by hand (``phasectl local up``: ``interactive``, the default when a state directory is
given) it is a usable stage, not an empty one: the demo's sample night (``deploy.local.demo``:
its schedule and boxscores) is seeded and the simulated clock starts on it (``sample_night.
NIGHT_START``, 02:30 ET the morning after, unless ``start`` says otherwise), the auto-retry and monitor
jobs run once at start (like ``gcloud scheduler jobs run``) so both heartbeats exist from the first
minute and the monitor's first pass already sees the night, ``env`` carries every variable
``phasectl`` reads (with ``PHASECTL_LOG_DIR``, where ``phasectl health`` finds the function logs),
and it says the next steps: real commands for the seeded night, calling ``phasectl`` as given
(``local up``: the absolute path of the one running).

``down()`` stops exactly what ``up()`` started, by PID. A state file lets ``phasectl local down``
stop a stack started from another terminal.
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from deploy.local.emulators import LocalCloud
from deploy.local.functions import FunctionProcess, start_function, stop_functions
from deploy.local.sample_night import NIGHT_START
from deploy.local.standins import STANDIN_LOG, ServiceStandin
from deploy.local.state import DEFAULT_STATE_DIR as DEFAULT_STATE_DIR
from deploy.local.state import STATE_FILE as STATE_FILE
from deploy.local.state import StackState as StackState
from shared.clock import PIPELINE_TZ, SIMULATED_CLOCK_ENV, SimulatedClock
from shared.pipeline.definition import DEFINITION_ENV, PipelineDefinition
from shared.schedules.runtime import LOCAL_TOKENS_ENV

HEARTBEAT_WAIT_SECONDS = 30.0  # for the auto-retry heartbeat, before the monitor's first pass


class LocalStack:
    """The topology of ``deploy.spec`` on the local emulators."""

    def __init__(
        self,
        definition: PipelineDefinition,
        *,
        project: str = "phasechain-local",
        accelerate: float = 1.0,
        start: datetime | None = None,
        definition_path: Path | None = None,
        state_dir: Path | None = None,
        run_scheduler: bool = True,
        say: Callable[[str], None] | None = None,
        extra_env: Mapping[str, str] | None = None,
        interactive: bool | None = None,
        seed: bool | None = None,
        standins: Mapping[str, ServiceStandin] | None = None,
        settle: float | None = None,
        phasectl: str = "phasectl",
    ) -> None:
        self.definition = definition
        self.project = project
        # by hand (phasectl local up records a state dir): seed, run the heartbeat jobs once, say next steps;
        # the demo and the tests seed their own nights and drive the stack themselves
        self.interactive = state_dir is not None if interactive is None else interactive
        self.seed = self.interactive if seed is None else seed
        # re-anchored when the functions start: the simulated time is ``start`` then, or (``settle``) that
        # many real seconds later, when the scheduler starts (a test that needs the first slots to fire).
        # Seeding the sample night, it starts on it (``sample_night.NIGHT_START``); else at the real now.
        self.clock = SimulatedClock(start or (NIGHT_START if self.seed else datetime.now(UTC)), accelerate)
        self.settle = settle
        self.definition_path = definition_path
        self.state_dir = state_dir
        self.run_scheduler = run_scheduler
        self.say = say or (lambda _text: None)
        self.cloud: LocalCloud | None = None
        self.functions: dict[str, FunctionProcess] = {}
        self.scheduler: Any = None
        self.deaths: list[str] = []
        self._stop = threading.Event()
        self._watchdog: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self.env: dict[str, str] = {}
        self.extra_env = dict(extra_env or {})  # e.g. a consumer's URL for an HTTP delivery
        self.phasectl = phasectl  # how the next steps call phasectl (local up: the running one's absolute path)
        self.seeded: date | None = None  # the sample night's date, once seeded
        self.log_dir: Path | None = None  # the functions' logs (function-<name>.log)
        # one stand-in per [services] entry: the caller's (e.g. the demo's coordinator), the rest started by up()
        self.standins: dict[str, ServiceStandin] = dict(standins or {})
        self._own_standins: list[ServiceStandin] = []
        self.standin_log: Path | None = None
        self._spec: Any = None
        self._restart_lock = threading.Lock()  # the watchdog does not report a function change_clock stops

    # -- lifecycle -------------------------------------------------------------------------
    def up(self) -> LocalStack:
        try:
            self._up()
        except BaseException:
            self.down()
            raise
        return self

    def _up(self) -> None:
        from deploy.bundle import build_function
        from deploy.local.topology import ensure_subscription, ensure_tables, ensure_topic
        from deploy.spec import build_spec
        from shared.env import LOG_DIR_ENV
        from shared.gcp import publisher_client, subscriber_client
        from shared.gcp_bigquery import bigquery_client

        self.cloud = LocalCloud(project=self.project).start()
        log_dir = self.log_dir = self.cloud.workdir / "functions"
        self._start_standins(self.cloud.workdir / STANDIN_LOG)
        self.env = self.environment(self.cloud)
        self._export(self.env)
        self.say(f"emulators: {', '.join(f'{k} pid {v}' for k, v in self.cloud.pids.items())}")

        spec = self._spec = build_spec(self.definition, self.project)
        publisher, subscriber = publisher_client(), subscriber_client()
        for topic in spec.topics:
            ensure_topic(publisher, self.project, topic)
        ensure_tables(bigquery_client(self.project), self.project, self.definition)
        self.say(f"topology: {len(spec.topics)} topics, {len(spec.tables)} tables (from deploy.spec)")
        if self.seed:
            self._seed_sample_night()

        bundles = self.cloud.workdir / "bundles"
        for fn in spec.functions:
            build_function(fn.name, bundles)

        anchor = time.time() + self.settle if self.settle else None  # simulated time starts as the functions do
        self._new_clock(self.clock.start, self.clock.factor, anchor=anchor)
        started = self._start_functions([fn.name for fn in spec.functions])
        for fn_spec, process in zip(spec.functions, started, strict=True):
            self.functions[fn_spec.name] = process
            ensure_subscription(
                subscriber,
                self.project,
                fn_spec.trigger_topic,
                f"{fn_spec.cloud_name}-trigger",
                push_endpoint=process.url,
                dead_letter_topic=fn_spec.dead_letter_topic,
                max_delivery_attempts=spec.max_delivery_attempts,
            )
            ensure_subscription(subscriber, self.project, fn_spec.dead_letter_topic, fn_spec.dead_letter_subscription)
            self.say(
                f"function {fn_spec.name}: bundle on {process.url} (pid {process.process.pid}) "
                f"<- push from {fn_spec.trigger_topic}"
            )
        self._watchdog = threading.Thread(target=self._watch, name="local-watchdog", daemon=True)
        self._watchdog.start()
        self.say(f"function logs: {log_dir}/function-<name>.log (${LOG_DIR_ENV}, read by phasectl health)")
        if self.settle:
            self.clock.sleep_until(self.clock.start, self._stop)
        if self.run_scheduler:
            self._start_scheduler(spec, publisher)
            if self.interactive:
                self._run_heartbeat_jobs(spec)
        self._write_state()
        if self.interactive:
            for line in self.next_steps():
                self.say(line)

    def _seed_sample_night(self) -> None:
        """The demo's sample night: its schedule (so the coverage gates have one) and boxscores."""
        from deploy.local.sample_night import GAME_DATE, GAMES, RESCHEDULED_TO, postponed_label, seed

        games = self.definition.games
        try:
            seed(self.project, self.definition, GAME_DATE)
        except Exception as exc:  # noqa: BLE001 - the stack is still usable: say so, go on
            self.say(f"!! could not seed the sample night {GAME_DATE}: {type(exc).__name__}: {exc}")
            return
        self.seeded = GAME_DATE
        self.say(
            f"seeded the sample night {GAME_DATE} (the demo's): {len(GAMES[GAME_DATE])} games Final in "
            f"{games.schedule_table}, {postponed_label()} postponed (Final with NULL scores, on the schedule "
            f"again on {RESCHEDULED_TO}); boxscores for the 6 played in "
            f"{', '.join(s.table for s in games.boxscore_sources)}"
        )

    def _run_heartbeat_jobs(self, spec: Any, wait: float = HEARTBEAT_WAIT_SECONDS) -> None:
        """Run the auto-retry job, then the monitor's, once now (``gcloud scheduler jobs run``): both
        heartbeats exist from the start instead of after their first cron firing. The monitor runs once
        the auto-retry heartbeat landed (at most ``wait`` seconds), so its first pass finds it."""
        from shared.gcp import firestore_client
        from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID, RETRY_HEARTBEAT_ID

        heartbeats = firestore_client(self.project).collection(self.definition.monitor.heartbeat_collection)
        for function in (RETRY_HEARTBEAT_ID, MONITOR_HEARTBEAT_ID):
            fired = False
            for job in (j for j in spec.jobs if j.function == function):
                try:
                    self.scheduler.fire_now(job.name)
                except Exception as exc:  # noqa: BLE001 - the cron firings follow anyway
                    self.say(f"scheduler: could not run {job.name} now: {type(exc).__name__}: {exc}")
                else:
                    fired = True
                    self.say(f"scheduler: ran {job.name} once now (for its heartbeat), then on its cron")
            if function == RETRY_HEARTBEAT_ID and fired:
                deadline = time.monotonic() + wait
                while not heartbeats.document(function).get().exists and time.monotonic() < deadline:
                    time.sleep(0.2)

    def next_steps(self) -> list[str]:
        """What to type next, in another terminal with the exports: real commands for the seeded night."""
        day = self.seeded.isoformat() if self.seeded is not None else "YESTERDAY"
        first = self.definition.transitions[0]
        expected = first.expected or tuple(dict.fromkeys(name for mode in first.modes for name in mode.expected))
        processors = " ".join(expected)
        night = f"the sample night {day}" if self.seeded is not None else "a night (seed one, or use --date)"
        cli = self.phasectl
        return [
            f"next steps for {night}, in another terminal after the exports below:",
            f"  {cli} status --date {day}",
            f"  for p in {processors}; do",
            f'    {cli} publish completion --processor "$p" --date {day} --status success --records 100; done',
            f"  {cli} status --date {day}      # {first.name}: every expected processor reported",
            f"  {cli} reconcile --date {day}",
            f"  {cli} status --date {day} --html local-status.html      # the status page",
            f"  {cli} status --date {day} --serve      # the same page live on http://127.0.0.1:8765/",
            f"  {cli} health",
        ]

    def _start_scheduler(
        self, spec: Any, publisher: Any, *, after: datetime | None = None, paused: frozenset[str] = frozenset()
    ) -> None:
        """The Cloud Scheduler jobs of ``deploy.spec`` (``[schedules]`` and the dispatcher's tick: every
        ``[[jobs]]`` entry and sensor slot runs through the dispatcher, fed by that tick)."""
        from zoneinfo import ZoneInfo

        from deploy.local.scheduler import CronExpression, ScheduledJob, SchedulerEmulator, pubsub_publisher

        jobs = [
            ScheduledJob(j.name, CronExpression.parse(j.cron), j.topic, ZoneInfo(j.timezone), j.body.encode())
            for j in spec.jobs
        ]
        publish = pubsub_publisher(publisher, self.project)

        def on_error(job: ScheduledJob, error: BaseException) -> None:
            self.say(f"scheduler: job {job.name} could not publish to {job.topic}: {error}")

        self.scheduler = SchedulerEmulator(jobs, publish, self.clock, on_error)
        for name in paused:
            self.scheduler.pause(name)
        self.scheduler.start(after=after)
        if after is not None:
            return
        for job in spec.jobs:
            self.say(f"scheduler: {job.name} '{job.cron}' {job.timezone} -> {job.topic} (x{self.clock.factor:g})")
        dispatched = self.definition.all_jobs()
        if dispatched:
            d = self.definition.dispatcher
            self.say(
                f"scheduler: {len(dispatched)} defined jobs ([[jobs]] and sensor slots) run through "
                f"{d.function}, fed by {d.job} on {d.tick_topic}"
            )

    # -- stand-ins and clocks -----------------------------------------------------------------
    def _start_standins(self, log: Path) -> None:
        """One ``ServiceStandin`` per ``[services]`` entry not given by the caller."""
        self.standin_log = log
        for name in self.definition.services:
            if name not in self.standins:
                standin = ServiceStandin(name, log=log)
                self.standins[name] = standin
                self._own_standins.append(standin)
        for standin in self.standins.values():
            if standin.clock is None:
                standin.clock = lambda: self.clock.now()
            if standin.log is None:
                standin.log = log
        if self.standins:
            self.say(
                f"stand-ins: {len(self.standins)} services on loopback "
                f"({', '.join(f'{n} {s.url}' for n, s in sorted(self.standins.items()))}); requests in {log}"
            )

    def service_env(self) -> dict[str, str]:
        """Each service's ``url_env`` → its stand-in's URL, and the dispatcher's local ID tokens."""
        env = {
            spec.url_env: self.standins[name].url
            for name, spec in self.definition.services.items()
            if spec.url_env and name in self.standins
        }
        if self.standins:
            env[LOCAL_TOKENS_ENV] = "1"  # unsigned tokens naming their audience (emulator hosts are set)
        return env

    def _new_clock(self, start: datetime, factor: float, anchor: float | None = None) -> None:
        self.clock = SimulatedClock(start, factor, anchor=anchor)
        self.env[SIMULATED_CLOCK_ENV] = self.clock.to_env()
        self._export({SIMULATED_CLOCK_ENV: self.env[SIMULATED_CLOCK_ENV]})

    def _start_functions(
        self, names: list[str], env: Mapping[str, str] | None = None, *, append: bool = False
    ) -> list[FunctionProcess]:
        assert self.cloud is not None and self.log_dir is not None
        bundles, log_dir, environ = self.cloud.workdir / "bundles", self.log_dir, dict(env or self.env)

        def start(name: str) -> FunctionProcess:
            return start_function(name, environ, log_dir, source_dir=bundles / name, isolated=True, append=append)

        with ThreadPoolExecutor(max_workers=max(1, len(names))) as pool:
            return list(pool.map(start, names))

    def _warm_up(self, process: FunctionProcess) -> None:
        """One empty ``ScheduleTick`` pushed straight to a new dispatcher process: it builds its clients
        now, not on its first real tick, when a cold start would let due slots leave its catch-up window.
        Its clock reads earlier than the running one's until the switch: the slots it finds due are
        already run (done) or, if the running dispatcher missed one, run once, late, as any tick would."""
        import base64
        import urllib.request

        from shared.contracts.messages import ScheduleTick

        data = ScheduleTick(requested_by="local-warm-up").model_dump_json(exclude_none=True).encode()
        push = {
            "subscription": f"projects/{self.project}/subscriptions/warm-up",
            "message": {
                "data": base64.b64encode(data).decode(),
                "messageId": f"warm-up-{process.process.pid}",
                "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
            },
        }
        request = urllib.request.Request(
            process.url, data=json.dumps(push).encode(), method="POST", headers={"Content-Type": "application/json"}
        )
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                response.read()
        except OSError as exc:  # the real ticks come anyway; only the first is slower
            self.say(f"scheduler: could not warm up {process.name} (pid {process.process.pid}): {exc}")

    def change_clock(self, factor: float, settle: float = 20.0) -> None:
        """Go on ``factor`` times faster, with no simulated time skipped or repeated (the demo's
        morning runs faster than its night).

        A second set of function processes starts at once on the new clock, which reads, ``settle``
        real seconds from now, what the current clock reads then; until that instant the current
        processes and scheduler run on. Then each push subscription is pointed at its new process,
        the scheduler restarts on the new clock (paused jobs stay paused; a firing in between is
        published once) and the old processes stop. A start slower than ``settle`` makes the switch
        late: the dispatcher's catch-up window covers the first minutes of it.
        """
        from google.cloud.pubsub_v1.types import PushConfig

        from shared.gcp import publisher_client, subscriber_client

        assert self._spec is not None, "change_clock needs a stack that is up"
        wall = time.time() + settle
        switch_at = self.clock.now() + timedelta(seconds=settle * self.clock.factor)  # the current clock then
        clock = SimulatedClock(switch_at, factor, anchor=wall)
        env = {**self.env, SIMULATED_CLOCK_ENV: clock.to_env()}
        started = {p.name: p for p in self._start_functions(list(self.functions), env, append=True)}
        dispatcher = started.get(self.definition.dispatcher.function)
        if dispatcher is not None:
            self._warm_up(dispatcher)
        self.clock.sleep_until(switch_at, self._stop)
        subscriber = subscriber_client()
        with self._restart_lock:
            paused = frozenset(self.scheduler.paused) if self.scheduler is not None else frozenset()
            if self.scheduler is not None:
                self.scheduler.stop()
                self.scheduler = None
            last = self.clock.now()
            for fn_spec in self._spec.functions:
                path = subscriber.subscription_path(self.project, f"{fn_spec.cloud_name}-trigger")
                push = PushConfig(push_endpoint=started[fn_spec.name].url)
                subscriber.modify_push_config(request={"subscription": path, "push_config": push})
            old, self.functions = self.functions, started
            self.clock, self.env = clock, env
            self._export({SIMULATED_CLOCK_ENV: env[SIMULATED_CLOCK_ENV]})
            if self.run_scheduler:
                self._start_scheduler(self._spec, publisher_client(), after=last, paused=paused)
            late = max(0.0, time.time() - wall)
            self._write_state()
        stop_functions(old.values())  # no longer watched: stopping them is not a death
        self.say(
            f"clock: x{factor:g} from {switch_at.astimezone(PIPELINE_TZ):%H:%M} ET: every function restarted on it"
            + (f" ({late:.1f} s late: {late * factor / 60:.0f} simulated minutes without a tick)" if late > 1 else "")
        )

    def down(self) -> None:
        """Stop the scheduler, the functions, then the emulators: exactly what ``up`` started."""
        self._stop.set()
        if self.scheduler is not None:
            self.scheduler.stop()
            self.scheduler = None
        stop_functions(self.functions.values())
        self.functions.clear()
        for standin in self._own_standins:
            standin.close()
        self._own_standins.clear()
        if self.cloud is not None:
            self.cloud.stop()
            self.cloud = None
        self._restore_env()
        if self.state_dir is not None:
            (self.state_dir / STATE_FILE).unlink(missing_ok=True)

    def __enter__(self) -> LocalStack:
        return self.up()

    def __exit__(self, *exc: object) -> None:
        self.down()

    # -- health ----------------------------------------------------------------------------
    def dead_functions(self) -> list[str]:
        return [name for name, p in self.functions.items() if p.process.poll() is not None]

    def _watch(self) -> None:
        reported: set[int] = set()  # pids
        while not self._stop.wait(1.0):
            with self._restart_lock:  # change_clock stops functions on purpose
                dead = [(name, self.functions[name]) for name in self.dead_functions()]
            for name, process in dead:
                if process.process.pid in reported or self._stop.is_set():
                    continue
                reported.add(process.process.pid)
                line = f"function {name} (pid {process.process.pid}) EXITED with code {process.process.returncode}"
                self.deaths.append(line)
                self.say(f"!! {line}; log tail:\n{process.log_tail(1500)}")

    # -- environment -----------------------------------------------------------------------
    def environment(self, cloud: LocalCloud) -> dict[str, str]:
        """What the functions run with, and what ``phasectl`` in another terminal needs (``local up``
        prints it as exports): the project, the emulator hosts, the simulated clock, the definition
        (when one was given), the function logs' directory (``phasectl health``), each service's
        stand-in URL and the dispatcher's local ID tokens (``phasectl schedules run`` too)."""
        from shared.env import LOG_DIR_ENV

        env = {
            **cloud.env(),
            SIMULATED_CLOCK_ENV: self.clock.to_env(),
            LOG_DIR_ENV: str(cloud.workdir / "functions"),
            **self.service_env(),
            **self.extra_env,
        }
        if self.definition_path is not None:
            env[DEFINITION_ENV] = str(self.definition_path)
        return env

    def _export(self, env: dict[str, str]) -> None:
        for key, value in env.items():
            self._saved_env.setdefault(key, os.environ.get(key))
            os.environ[key] = value

    def _restore_env(self) -> None:
        for key, old in self._saved_env.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old
        self._saved_env.clear()

    def _write_state(self) -> None:
        if self.state_dir is None or self.cloud is None:
            return
        state = StackState(
            owner_pid=os.getpid(),
            project=self.project,
            env=self.env,
            functions={
                name: {"pid": p.process.pid, "port": p.port, "url": p.url, "log": str(p.log_path)}
                for name, p in self.functions.items()
            },
            emulators=self.cloud.pids,
            started_at=datetime.now(UTC).isoformat(),
            standins={
                name: {"url": s.url, "url_env": self.definition.services[name].url_env or ""}
                for name, s in self.standins.items()
                if name in self.definition.services
            },
            standin_log=str(self.standin_log or ""),
        )
        state.write(self.state_dir)


def _running(pid: int) -> bool:
    """Whether ``pid`` is a live process (a zombie waiting for its parent counts as stopped)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[-1].split()
    except OSError:
        return True  # no procfs: trust the signal probe
    return bool(fields) and fields[0] != "Z"


def stop_from_state(state_dir: Path, timeout: float = 30.0) -> tuple[bool, str]:
    """``phasectl local down``: ask the ``up`` process to stop what it started, and wait for it."""
    state = StackState.read(state_dir)
    if state is None:
        return True, f"no local cloud is recorded in {state_dir / STATE_FILE}"
    if not _running(state.owner_pid):
        (state_dir / STATE_FILE).unlink(missing_ok=True)
        return True, f"the local cloud's process {state.owner_pid} is gone; removed its stale state file"
    os.kill(state.owner_pid, signal.SIGTERM)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not _running(state.owner_pid):
            return True, f"stopped the local cloud (process {state.owner_pid})"
        time.sleep(0.2)
    return False, f"process {state.owner_pid} did not stop within {timeout:.0f}s"
