"""``make demo``: the night of 2026-01-24 replayed on the local cloud, as a live timeline.

``phasectl local up`` starts the emulators, the deployment's topics and tables, every
function from its deploy bundle behind a push subscription, and the Cloud Scheduler jobs, all
on one simulated clock that starts at 00:30 New York time on 2026-01-25 and runs
``--accelerate`` times faster (default 120: the monitor's 10-minute tick every 5 s). The retry
backoff base is compressed from 15 to 5 minutes so the whole night fits in about 3 minutes.

Scenario 1, 2026-01-24, the real slate: 7 games, GSW@MIN (0022500644) postponed ~2 h before
tip-off: the schedule says Final with NULL scores and lists the same id again on 2026-01-25; no
boxscore source has it. The stand-in processors (demo-only: the real ones live elsewhere) report
phase 2; the coverage gate counts 6 of 6 (the postponed game left out, lesson L29: a postponed
game is not a missing game); the triggers run 2→3→4→5→6 with their phase_execution_log rows and
``postponed_games``; nothing goes to auto-retry; the monitor reports ``game_postponed`` naming the
game, the evidence and the new date; grading leaves it out; ``reconcile`` is clean.

Scenario 2, 2026-01-23: 4 of 7 games missing everywhere trips the breaker; the transition is
blocked (a ``blocked`` log row, no trigger, no latch).

Scenario 3, nights whose phase 3 never ran (the 2→3 trigger went out; the analytics service lost
it): 2026-01-10 is healed by the self-heal checkpoint of 2026-01-11 (its yesterday), run by hand as
``phasectl schedules run self-heal-predictions --date 2026-01-11`` would: the 2→3 trigger again as
generation 2 with ``trigger_source = self_heal``; 2026-01-19, a gap of the 14-day window, is found by
the gap pass the ``gap-detector-30min`` job runs every 30 minutes and re-triggered by the backfill
queue (``trigger_source = backfill``). Both chains then run through to phase 6.

The morning after (``deploy.local.morning``): the clock runs on to noon on the 25th, faster; the
schedule dispatcher, fed by its one-minute tick, runs every job slot of the definition against the
services' stand-ins and the phase 6 export topic; one same-day job answers 500 once and succeeds on
its retry; the dispatcher's tick is paused over one slot, which passes unrun (``schedule_missed``).

Every outcome is read back from the trigger topics, BigQuery and Firestore: ``run_demo``
returns them for the end-to-end test.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import threading
import time
import tomllib
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

from deploy.local.emulators import EmulatorUnavailableError
from deploy.local.morning import MORNING_ACCELERATE, MorningResult, check_morning, run_morning
from deploy.local.sample_night import (
    BACKFILL_DATE,
    BREAKER_DATE,
    GAME_DATE,
    GAMES,
    HEAL_DATE,
    POSTPONED_GAME,
    RESCHEDULED_TO,
    played,
    seed,
)
from shared.clock import PIPELINE_TZ
from shared.contracts.messages import PhaseTrigger, TimedTriggerMessage
from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, PipelineDefinition, load_definition, read_definition

SIM_START = datetime(2026, 1, 25, 5, 30, tzinfo=UTC)  # 00:30 in New York, the night after the games
DEMO_BACKOFF_MINUTES = 5  # the packaged 15·2ⁿ backoff, compressed to 5·2ⁿ for a demo that fits in 3 minutes
FALLBACK_JOB = "grading-daily-6am"  # run by hand at the end: it must find the night graded already
SELF_HEAL_JOB = "self-heal-predictions"  # the self-heal checkpoint ([heal.self_heal]), run by hand for a past day
COORDINATOR = "prediction-coordinator"  # the [services] entry the stand-in coordinator plays
DNP_SHARE = 0.15  # players with 0 minutes on the night: minutes coverage 85 % (alert below 90, block below 80)
# what the scenario steps may wait, in real seconds (each a share of it): an upper bound, not a pace. The
# jobs the dispatcher runs all night (live exports every 3 minutes, ...) load the emulators: next to another
# local cloud (the test suite's two workers) the night's first steps took more than 150 s * 0.35
STEP_TIMEOUT = 240.0
# real seconds the functions get to start before the clock reads SIM_START and the scheduler starts: the night
# starts at 00:30, not 10-40 simulated minutes later (the readiness sensor's last slot is 02:45)
STARTUP_SETTLE = 20.0
DEMO_LEASE_SECONDS = 3600  # the dispatcher's lease on a running slot, in simulated seconds (12 real s at x300)


@dataclass
class DemoResult:
    """What the night produced, read from the topics, BigQuery and Firestore (not from logs)."""

    triggers: list[PhaseTrigger] = field(default_factory=list)  # the first message of each trigger
    messages: list[PhaseTrigger] = field(default_factory=list)  # every message seen on the trigger topics
    timed: list[TimedTriggerMessage] = field(default_factory=list)  # sensors' and scheduled jobs' messages
    fallback_fired: bool = False  # the 06:00 grading fallback ran at the end of the night
    morning: MorningResult | None = None  # the morning after: the dispatcher's jobs, slot by slot
    log_rows: list[dict[str, Any]] = field(default_factory=list)
    queue_rows: list[dict[str, Any]] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)
    reconcile_after: int | None = None
    reconcile_output: str = ""
    deaths: list[str] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return not self.problems and not self.deaths

    def triggers_for(self, day: date) -> list[PhaseTrigger]:
        return [t for t in self.triggers if t.game_date == day]


class Timeline:
    """Prints ``[+real | simulated New York time] text`` lines."""

    def __init__(self, out: TextIO, clock: Callable[[], datetime] | None = None) -> None:
        self.out, self.clock, self.started = out, clock, time.monotonic()
        self._lock = threading.Lock()

    def __call__(self, text: str) -> None:
        real = time.monotonic() - self.started
        sim = f" | {self.clock().astimezone(PIPELINE_TZ):%b %d %H:%M} ET" if self.clock else ""
        with self._lock:
            self.out.write(f"[+{int(real // 60):02d}:{int(real % 60):02d}{sim}] {text}\n")
            self.out.flush()


def demo_definition(directory: Path) -> Path:
    """The packaged definition with the retry backoff base at ``DEMO_BACKOFF_MINUTES``, the coordinator's
    HTTP start call and the health gates unauthenticated (the stand-ins run on loopback), and the schedule
    dispatcher's lease at ``DEMO_LEASE_SECONDS``; nothing else changes. The scheduled jobs keep their ID
    tokens: the dispatcher sends unsigned local ones, whose audience the stand-ins record."""
    import re

    text, count = re.subn(
        r"(?m)^base_delay_minutes = [0-9.]+",
        f"base_delay_minutes = {DEMO_BACKOFF_MINUTES}",
        DEFAULT_DEFINITION_PATH.read_text(),
    )
    if count != 1:
        raise RuntimeError("the packaged definition has no [retry] base_delay_minutes line to compress")
    # the stand-in coordinator's /start and /ready on loopback take no Google ID token ([[jobs]] keep theirs)
    # and leases are simulated seconds: at the morning's x300 the packaged 300 s would be one real second
    lines, count, section, leases = text.splitlines(keepends=True), 0, "", 0
    lease = f"lease_seconds = {DEMO_LEASE_SECONDS}   # the demo's (deploy.local.demo)\n"
    for i, line in enumerate(lines):
        header = re.match(r"\s*\[+\s*([A-Za-z0-9_.\"-]+)\s*\]+", line)
        if header:
            section = header.group(1)
        elif not section.startswith("jobs") and re.match(r'\s*auth = "id_token"', line):
            lines[i], count = line.replace('"id_token"', '"none"', 1), count + 1
        elif section == "dispatcher" and re.match(r"lease_seconds\s*=", line):
            lines[i], leases = lease, leases + 1
    if count < 2:
        raise RuntimeError("the packaged definition has no [transitions.delivery.http] or health gate auth line")
    if not leases and "dispatcher" in tomllib.loads(text):
        lines = [ln if not re.match(r"\[dispatcher\]\s*(#.*)?$", ln) else ln + lease for ln in lines]
    elif not leases:
        lines.append(f"\n[dispatcher]\n{lease}")
    text = "".join(lines)
    path = directory / "pipeline.demo.toml"
    path.write_text(text)
    return path


class Watcher:
    """Follows the trigger topics, the two BigQuery tables and the monitor's findings."""

    def __init__(self, project: str, definition: PipelineDefinition, say: Callable[[str], None]) -> None:
        from deploy.local.topology import ensure_subscription
        from shared.gcp import firestore_client, subscriber_client
        from shared.gcp_bigquery import bigquery_client

        self.project, self.definition, self.say = project, definition, say
        self.subscriber, self.bq, self.fs = subscriber_client(), bigquery_client(project), firestore_client(project)
        suffix = uuid.uuid4().hex[:6]
        self.subs = [
            ensure_subscription(self.subscriber, project, definition.target_topic(t), f"demo-watch-{t.name}-{suffix}")
            for t in definition.transitions
        ]
        # a sensor's own topic (grading); the phase 6 export jobs publish to a phase topic watched already
        watched = {definition.target_topic(t) for t in definition.transitions}
        self.subs += [
            ensure_subscription(self.subscriber, project, t.topic, f"demo-watch-{t.name}-{suffix}")
            for t in definition.timed_triggers()
            if t.topic not in watched
        ]
        self.result = DemoResult()
        self.jobs = {j.name for j in definition.all_jobs()}
        self._seen_log = 0
        self._queue_state: dict[tuple[str, str], tuple[str, int]] = {}
        self._findings: set[str] = set()
        self._stop = threading.Event()
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._loop, name="demo-watcher", daemon=True)

    def start(self) -> Watcher:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=30)

    def _loop(self) -> None:
        tick = 0
        while not self._stop.is_set():
            try:
                self.poll_triggers()
                if tick % 4 == 0:
                    self.poll_tables()
                    self.poll_findings()
            except Exception as exc:  # noqa: BLE001 - shown on the timeline; the next poll retries
                if not self._stop.is_set():
                    self.say(f"(watcher: {type(exc).__name__}: {exc})")
            tick += 1
            self._stop.wait(0.5)

    def poll_triggers(self) -> None:
        from deploy.local.topology import pull_now

        for sub in self.subs:
            for data in pull_now(self.subscriber, sub):
                parsed = json.loads(data)
                if not isinstance(parsed, dict) or not {"transition", "trigger_id"} & parsed.keys():
                    continue  # a scheduled job's JSON body (the morning's report shows its run)
                if "transition" not in parsed:  # a sensor's or a scheduled job's message
                    timed = TimedTriggerMessage.model_validate_json(data)
                    with self._lock:
                        self.result.timed.append(timed)
                    if timed.name not in self.jobs:  # a job's message: the morning's report shows it
                        self.say(f"==> TRIGGER {timed.trigger_id} [{timed.slot}] {timed.reason}")
                    continue
                trigger = PhaseTrigger.model_validate_json(data)
                with self._lock:
                    self.result.messages.append(trigger)
                    if trigger.part == 1:  # one trigger, delivered as `parts` messages (one per source table)
                        self.result.triggers.append(trigger)
                if trigger.part > 1:
                    continue
                missing = f"; missing games {', '.join(trigger.missing_games)}" if trigger.missing_games else ""
                if trigger.postponed_games:
                    missing += f"; postponed (not expected) {', '.join(trigger.postponed_games)}"
                parts = f" ({trigger.parts} messages, one per source table)" if trigger.parts > 1 else ""
                self.say(f"==> TRIGGER {trigger.trigger_id} [{trigger.status}]{parts} {trigger.reason}{missing}")
                for g in trigger.gates:
                    if g.verdict != "pass":
                        self.say(f"    gate {g.gate} [{g.verdict.upper()}]: {g.reason}")

    def poll_tables(self) -> None:
        s, r = self.definition.pipeline, self.definition.retry
        log = list(
            self.bq.query(
                "SELECT phase_name, game_date, status, trigger_id, games_processed, duration_seconds "
                f"FROM `{self.project}.{s.dataset}.{s.phase_execution_log_table}` ORDER BY execution_timestamp"
            ).result(timeout=60)
        )
        for row in log[self._seen_log :]:
            if row["phase_name"] in self.jobs:  # a scheduled job's run: the morning's report shows them
                continue
            self.say(
                f"    phase_execution_log: {row['phase_name']} {row['game_date']} {row['status']} "
                f"trigger={row['trigger_id'] or '-'} games={row['games_processed']}"
            )
        self._seen_log = len(log)
        queue = list(
            self.bq.query(
                "SELECT processor_name, game_date, status, retry_count, max_retries, next_retry_at, fallback_for "
                f"FROM `{self.project}.{s.dataset}.{r.queue_table}` ORDER BY first_failure_at"
            ).result(timeout=60)
        )
        for row in queue:
            key = (row["processor_name"], str(row["game_date"]))
            state = (row["status"], row["retry_count"])
            if self._queue_state.get(key) == state:
                continue
            self._queue_state[key] = state
            nxt = row["next_retry_at"]
            when = f", next try {nxt.astimezone(PIPELINE_TZ):%H:%M} ET" if nxt and row["status"] == "pending" else ""
            if row["status"] == "pending" and row["retry_count"] >= row["max_retries"]:  # no try left
                at = f" at its {nxt.astimezone(PIPELINE_TZ):%H:%M} ET pass" if nxt else " at the next pass"
                when = f", retries spent: failed_permanent{at}"
            fallback = f" (fallback for {row['fallback_for']})" if row["fallback_for"] else ""
            self.say(
                f"    retry queue: {row['processor_name']}{fallback} {row['game_date']} → {row['status']} "
                f"({row['retry_count']}/{row['max_retries']} retries{when})"
            )
        with self._lock:
            self.result.log_rows = [dict(row.items()) for row in log]
            self.result.queue_rows = [dict(row.items()) for row in queue]

    def poll_findings(self) -> None:
        docs = list(self.fs.collection(self.definition.monitor.alert_collection).stream())
        for doc in docs:
            data = doc.to_dict() or {}
            if doc.id not in self._findings:
                self._findings.add(doc.id)
                self.say(f"    monitor finding [{data.get('severity')}] {data.get('kind')}: {data.get('message')}")
                with self._lock:
                    self.result.findings.append({"key": doc.id, **data})

    def findings(self) -> list[dict[str, Any]]:
        with self._lock:
            return list(self.result.findings)

    def timed(self) -> list[TimedTriggerMessage]:
        with self._lock:
            return list(self.result.timed)

    def wait_for(self, what: str, predicate: Callable[[DemoResult], bool], deadline: float) -> bool:
        while time.monotonic() < deadline:
            with self._lock:
                if predicate(self.result):
                    return True
            time.sleep(0.5)
        self.result.problems.append(f"timed out waiting for {what}")
        self.say(f"!! timed out waiting for {what}")
        return False


def _phasectl(args: list[str], say: Callable[[str], None]) -> tuple[int, str]:
    done = subprocess.run(
        [sys.executable, "-m", "phasectl", *args],
        capture_output=True,
        text=True,
        env=os.environ.copy(),
        timeout=120,
        check=False,
    )
    say(f"$ phasectl {' '.join(args)}   (exit {done.returncode})")
    text = (done.stdout + done.stderr).rstrip()
    for line in text.splitlines():
        say(f"    {line}")
    return done.returncode, text


def run_demo(
    out: TextIO = sys.stdout,
    accelerate: float = 120.0,
    timeout: float = STEP_TIMEOUT,
    html: Path | None = None,
    morning: bool = True,
    morning_accelerate: float = MORNING_ACCELERATE,
) -> DemoResult:
    """Both scenarios on a fresh local cloud, then (``morning``) the morning after; returns what they produced."""
    import tempfile

    from deploy.local.stack import LocalStack
    from deploy.local.standins import StandinProcessors, StartEndpoint
    from shared.structured_log import configure, reset_configuration

    scratch = Path(tempfile.mkdtemp(prefix="phasechain-demo-"))
    definition_path = demo_definition(scratch)
    definition = load_definition(definition_path)
    say = Timeline(out)
    started = time.monotonic()
    coordinator = StartEndpoint()  # the prediction coordinator's /start, before the functions start
    http_phases = {t.target_phase: t.delivery.http for t in definition.transitions if t.delivery.http}
    services = {COORDINATOR: coordinator} if COORDINATOR in definition.services else {}
    stack = LocalStack(
        definition,
        project="phasechain-demo",
        accelerate=accelerate,
        start=SIM_START,
        definition_path=definition_path,
        say=say,
        extra_env={http.url_env: coordinator.url for http in http_phases.values()},
        standins=services,  # the other services' stand-ins: started by the stack, one each
        settle=STARTUP_SETTLE,
    )
    log_stream = open(os.devnull, "w")  # closed in finally: in-process JSON logs stay out of the timeline
    configure(stream=log_stream)
    say("phasectl local up: emulators, topology from deploy.spec, function bundles, scheduler ...")
    standins = watcher = None
    try:
        stack.up()
        say.clock = lambda: stack.clock.now()  # change_clock replaces the clock
        packaged_backoff = read_definition(DEFAULT_DEFINITION_PATH).retry.base_delay_minutes
        say(
            f"clock: simulated from {SIM_START.astimezone(PIPELINE_TZ):%b %d %H:%M} ET, x{accelerate:g}; "
            f"retry backoff {DEMO_BACKOFF_MINUTES}·2ⁿ min (packaged: {packaged_backoff:g}·2ⁿ)"
        )
        seed(stack.project, definition, GAME_DATE)
        say(
            f"seeded {GAME_DATE}: 7 games Final; GSW@MIN ({POSTPONED_GAME}) was postponed: Final with NULL scores, "
            f"on the schedule again on {RESCHEDULED_TO}, in no boxscore source"
        )
        watcher = Watcher(stack.project, definition, say).start()
        standins = StandinProcessors(
            definition,
            stack.project,
            stack.clock,
            failures={},
            say=say,
            start_endpoints=dict.fromkeys(http_phases, coordinator),
            # phase 3 and 4 write rows for the games that have boxscores; 15 % of the players of the
            # night did not play (0 minutes): minutes coverage 85 %, under the 3→4 alert line (90 %)
            games={GAME_DATE: played(GAME_DATE), HEAL_DATE: GAMES[HEAL_DATE], BACKFILL_DATE: GAMES[BACKFILL_DATE]},
            lost_triggers={(3, HEAL_DATE), (3, BACKFILL_DATE)},  # scenario 3: phase 3 never runs the first trigger
            dnp_share={_minutes_processor(definition): DNP_SHARE},
        ).start()

        say(f"--- scenario 1: the night of {GAME_DATE} (stand-in processors report phase 2) ---")
        standins.run_phase(2, GAME_DATE)
        deadline = time.monotonic() + timeout * 0.35
        last = definition.transitions[-1].name
        watcher.wait_for(
            f"the {last} trigger for {GAME_DATE}",
            lambda r: any(t.transition == last and t.game_date == GAME_DATE for t in r.triggers),
            deadline,
        )
        say("--- the monitor (every 10 simulated minutes) names the postponed game; nothing is retried ---")
        watcher.wait_for(
            "the monitor's game_postponed finding",
            lambda r: any(f.get("kind") == "game_postponed" for f in r.findings),
            time.monotonic() + timeout * 0.3,
        )
        watcher.poll_tables()
        watcher.result.reconcile_after, watcher.result.reconcile_output = _phasectl(
            ["reconcile", "--date", str(GAME_DATE)], say
        )

        sensor = definition.sensors[0] if definition.sensors else None
        if sensor is not None:
            say(f"--- grading: the {sensor.name} sensor (every 15 simulated minutes) ---")
            watcher.wait_for(
                f"the {sensor.name} trigger for {GAME_DATE}",
                lambda r: any(m.name == sensor.name and m.game_date == GAME_DATE for m in r.timed),
                time.monotonic() + timeout * 0.2,
            )
        say(f"--- scenario 2: {BREAKER_DATE}, 4 of 7 games missing everywhere ---")
        seed(stack.project, definition, BREAKER_DATE)
        standins.run_phase(2, BREAKER_DATE)
        deadline = time.monotonic() + timeout * 0.3
        first = definition.transitions[0].name
        watcher.wait_for(
            f"a blocked {first} row for {BREAKER_DATE}",
            lambda r: any(
                row["phase_name"] == first and str(row["game_date"]) == str(BREAKER_DATE) and row["status"] == "blocked"
                for row in r.log_rows
            ),
            deadline,
        )
        time.sleep(2)  # a trigger would have arrived by now: show that none did
        watcher.poll_triggers()
        heal_nights(stack.project, definition, standins, watcher, say, timeout)
        fallback = next((slot for slot in sensor.slots if slot.job == FALLBACK_JOB), None) if sensor else None
        if fallback is not None:
            _run_job(stack.project, definition, FALLBACK_JOB, say)
            watcher.result.fallback_fired = True
            time.sleep(3)  # its tick is handled by now: a second grading trigger would be on the topic
            watcher.poll_triggers()
            graded = [m for m in watcher.result.timed if m.name == fallback_name(definition)]
            say(f"    grading triggers for {GAME_DATE}: {len(graded)} (the fallback found the date triggered)")
        if html is not None:
            _phasectl(["status", "--date", str(GAME_DATE), "--days", "3", "--html", str(html)], say)
        if morning:
            standins.clock = stack.clock
            watcher.result.morning = run_morning(
                stack,
                definition,
                say,
                day=GAME_DATE + timedelta(days=1),
                findings=watcher.findings,
                timed=watcher.timed,
                accelerate=morning_accelerate,
                timeout=timeout,
            )
            standins.clock = stack.clock
    except EmulatorUnavailableError as exc:
        say(f"!! {exc}")
        if watcher is not None:
            watcher.result.problems.append(str(exc))
        else:
            raise
    finally:
        if standins is not None:
            standins.stop()
        if watcher is not None:
            watcher.stop()
        result = watcher.result if watcher is not None else DemoResult(problems=["the local cloud did not start"])
        result.deaths = list(stack.deaths)
        stack.down()
        coordinator.close()
        reset_configuration()
        log_stream.close()
        shutil.rmtree(scratch, ignore_errors=True)
    result.seconds = time.monotonic() - started
    result.problems += check(result, definition)
    return result


def heal_nights(
    project: str,
    definition: PipelineDefinition,
    standins: Any,
    watcher: Watcher,
    say: Callable[[str], None],
    timeout: float,
) -> None:
    """Scenario 3: two nights whose phase 3 never ran, healed by self-heal and by the backfill queue."""
    first = definition.transitions[0].name
    say(f"--- scenario 3: {HEAL_DATE} and {BACKFILL_DATE}, nights whose phase 3 never ran ---")
    for day in (HEAL_DATE, BACKFILL_DATE):
        seed(project, definition, day)
        standins.run_phase(2, day)
    deadline = time.monotonic() + timeout * 0.3
    for day in (HEAL_DATE, BACKFILL_DATE):
        watcher.wait_for(f"the first {first} trigger for {day}", _healed_check(first, day, None), deadline)
    checkpoint = HEAL_DATE + timedelta(days=1)
    say(f"--- self-heal: the {checkpoint} checkpoint (12:45 ET) checks its yesterday, {HEAL_DATE} ---")
    _run_job(project, definition, SELF_HEAL_JOB, say, day=checkpoint, why="the checkpoint of that day, by hand")
    deadline = time.monotonic() + timeout * 0.4
    watcher.wait_for(
        f"the self_heal re-trigger of {first} for {HEAL_DATE}", _healed_check(first, HEAL_DATE, "self_heal"), deadline
    )
    say(f"--- the backfill queue: the gap pass (gap-detector-30min, every 30 min) finds {BACKFILL_DATE} ---")
    watcher.wait_for(
        f"the backfill re-trigger of {first} for {BACKFILL_DATE}",
        _healed_check(first, BACKFILL_DATE, "backfill"),
        deadline,
    )
    last = definition.transitions[-1].name
    for day in (HEAL_DATE, BACKFILL_DATE):
        watcher.wait_for(f"the {last} trigger for {day}", _healed_check(last, day, None), deadline)


def _healed_check(transition: str, day: date, source: str | None) -> Callable[[DemoResult], bool]:
    return lambda result: _healed(result, transition, day, source)


def _healed(result: DemoResult, transition: str, day: date, source: str | None) -> bool:
    """A trigger of ``transition`` for ``day`` (from ``source``, generation 2, when given)."""
    return any(
        t.transition == transition
        and t.game_date == day
        and (source is None or (t.trigger_source == source and t.generation == 2))
        for t in result.triggers
    )


def _run_job(
    project: str,
    definition: PipelineDefinition,
    job: str,
    say: Callable[[str], None],
    *,
    day: date | None = None,
    why: str = "the fallback, now: graded once",
) -> None:
    """Run one job's slot by hand (its latest, or ``day``'s): a ``ScheduleTick`` naming it, on the
    dispatcher's tick topic (what ``phasectl schedules run JOB [--date D]`` sends)."""
    from shared.contracts.messages import ScheduleTick
    from shared.gcp import publisher_client

    topic = definition.dispatcher.tick_topic
    tick = ScheduleTick(job=job, game_date=day, requested_by="demo")
    body = tick.model_dump_json(exclude_none=True, exclude_defaults=True)
    say(f"$ gcloud pubsub topics publish {topic} --message '{body}'   ({job}: {why})")
    publisher = publisher_client()
    publisher.publish(publisher.topic_path(project, topic), body.encode()).result(timeout=30)


def fallback_name(definition: PipelineDefinition) -> str:
    """The sensor whose fallback the demo fires (the one with that job)."""
    return next(t.name for t in definition.sensors if any(s.job == FALLBACK_JOB for s in t.slots))


def _minutes_processor(definition: PipelineDefinition) -> str:
    """The processor that writes the table the 3→4 ``minutes_coverage`` gate reads."""
    from shared.pipeline.definition import RatioGate

    gate = definition.gates["minutes_coverage"]
    assert isinstance(gate, RatioGate)
    table = gate.table.table.split(".")[1]
    return next(p.name for p in definition.processors if p.output_table == table)


def check(result: DemoResult, definition: PipelineDefinition) -> list[str]:
    """The outcomes the demo promises; an empty list when all hold."""
    problems = []
    night = result.triggers_for(GAME_DATE)
    names = [t.transition for t in night]
    for t in definition.transitions:
        if names.count(t.name) != 1:
            problems.append(f"{t.name} triggered {names.count(t.name)} times for {GAME_DATE}, expected once")
    first = definition.transitions[0].name
    gate = next((t for t in night if t.transition == first), None)
    canonical = f"{GAME_DATE:%Y%m%d}_GSW_MIN"
    # the coverage gate passes over the 6 played games (the trigger itself may still be partial: it can
    # fire at 4 of 5 phase 2 processors, before the last one reports)
    coverage = [g for g in (gate.gates if gate else []) if g.kind == "game_coverage_pct"]
    covered = bool(coverage) and all(g.verdict == "pass" and g.value == 100.0 for g in coverage)
    if gate is not None and (not covered or gate.missing_games or gate.postponed_games != [canonical]):
        seen = [(g.verdict, g.value) for g in coverage]
        problems.append(
            f"{first} for {GAME_DATE} should cover the 6 played games with {canonical} postponed: "
            f"coverage {seen}, missing {gate.missing_games}, postponed {gate.postponed_games}"
        )
    retried = [r["processor_name"] for r in result.queue_rows if str(r["game_date"]) == str(GAME_DATE)]
    if retried:
        problems.append(f"nothing should be retried for {GAME_DATE} (the postponed game was not played): {retried}")
    named = [f for f in result.findings if f.get("kind") == "game_postponed" and canonical in str(f.get("message"))]
    if not any(str(RESCHEDULED_TO) in str(f.get("message")) for f in named):
        problems.append(f"no game_postponed finding naming {canonical} and its new date {RESCHEDULED_TO}")
    second = definition.transitions[1].name
    p34 = next((t for t in night if t.transition == second), None)
    minutes = next((g for g in (p34.gates if p34 else []) if g.gate == "minutes_coverage"), None)
    if p34 is not None and (minutes is None or minutes.verdict != "alert" or minutes.value != 85.0):
        shown = None if minutes is None else (minutes.verdict, minutes.value)
        problems.append(f"{second} for {GAME_DATE} should carry minutes_coverage alert at 85%: {shown}")
    third = definition.transitions[2].name
    p45 = next((t for t in night if t.transition == third), None)
    unhealthy = [g.reason for g in (p45.gates if p45 else []) if g.kind == "service_health" and g.verdict != "pass"]
    if unhealthy:
        problems.append(f"{third} for {GAME_DATE}: the stand-in coordinator's /ready should be healthy: {unhealthy}")
    if definition.sensors:
        sensor = fallback_name(definition)
        graded = [m for m in result.timed if m.name == sensor and m.game_date == GAME_DATE]
        if [m.slot for m in graded] != ["readiness"]:
            problems.append(
                f"{sensor} for {GAME_DATE}: expected one trigger from its readiness slot, got "
                f"{[(m.trigger_id, m.slot) for m in graded]}"
            )
        elif graded[0].postponed_games != [canonical]:
            problems.append(f"{sensor} for {GAME_DATE} should leave out {canonical}: {graded[0].postponed_games}")
        if not result.fallback_fired:
            problems.append(f"the {FALLBACK_JOB} fallback was not fired at the end of the night")
    first_name = definition.transitions[0].name
    for day, source in ((HEAL_DATE, "self_heal"), (BACKFILL_DATE, "backfill")):
        if not _healed(result, first_name, day, source):
            problems.append(f"{day}: no {first_name} re-trigger as generation 2 from {source}")
        if not _healed(result, definition.transitions[-1].name, day, None):
            problems.append(f"{day}: the healed chain did not reach {definition.transitions[-1].name}")
    blocked_night = [t.trigger_id for t in result.triggers_for(BREAKER_DATE)]
    if blocked_night:
        problems.append(f"the breaker night {BREAKER_DATE} was triggered: {blocked_night}")
    logged = {(r["phase_name"], str(r["game_date"])) for r in result.log_rows}
    problems += [
        f"no phase_execution_log row for {t.name} {GAME_DATE}"
        for t in definition.transitions
        if (t.name, str(GAME_DATE)) not in logged
    ]
    if result.reconcile_after != 0:
        problems.append(f"reconcile of {GAME_DATE} exited {result.reconcile_after}, expected 0 (nothing missing)")
    if result.morning is not None:
        problems += check_morning(result.morning, definition)
    return problems


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Replay the night of 2026-01-24 on the local cloud.")
    parser.add_argument("--accelerate", type=float, default=120.0, help="simulated seconds per real second")
    parser.add_argument("--timeout", type=float, default=STEP_TIMEOUT, help="seconds a scenario step may wait")
    parser.add_argument("--html", type=Path, default=Path("build/demo-status.html"))
    parser.add_argument("--morning-accelerate", type=float, default=MORNING_ACCELERATE, help="the morning's speed")
    parser.add_argument("--no-morning", action="store_true", help="stop after the night")
    args = parser.parse_args(argv)
    args.html.parent.mkdir(parents=True, exist_ok=True)
    try:
        result = run_demo(
            accelerate=args.accelerate,
            timeout=args.timeout,
            html=args.html,
            morning=not args.no_morning,
            morning_accelerate=args.morning_accelerate,
        )
    except EmulatorUnavailableError as exc:
        sys.stderr.write(f"error: {exc}\n")
        return 1
    sys.stdout.write(
        json.dumps(
            {
                "ok": result.ok,
                "seconds": round(result.seconds, 1),
                "problems": result.problems,
                "deaths": result.deaths,
                "morning_seconds": round(result.morning.seconds, 1) if result.morning else None,
            },
            indent=2,
        )
        + "\n"
    )
    return 0 if result.ok else 1


if __name__ == "__main__":
    raise SystemExit(main())
