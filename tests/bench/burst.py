"""``make bench``: a whole regular season of completions at once, through the local cloud (issue 25).

The local cloud of ``phasectl local up`` (``deploy.local.stack.LocalStack``: the emulators, the
deployment's topics and tables, every function served from its deploy bundle behind a push
subscription with its dead-letter policy). Then, for ``--dates`` game dates (default 160, a regular
season) x every processor of phases 2-5 of the definition, one completion each is published as fast
as the Pub/Sub emulator accepts them; then the same for a quarter of the season (40 dates) on a fresh
local cloud, so the ratio of the two drain times shows whether cost grows linearly (target ≤ 4.4
for 4x the dates).

Checked: exactly one trigger per (transition, date, mode) on the trigger topics, one
``phase_execution_log`` row each (delivered from the Firestore outbox by auto-retry on the
transitions' nudges), zero messages on the functions' dead-letter topics. Measured: the drain time
(first publish → the last trigger or log row, whichever is later), the publish time, the function
processes' HTTP answers that were not 2xx (every push delivery is counted by the WSGI wrapper of
``tests.bench.counting``, injected into the bundles), and Firestore reads/writes/deletes per date
(counted at the gRPC boundary in every function process, the way Firestore bills them).

The definition is the packaged one without gates and without the 4→5 HTTP start call (its trigger
goes to its topic): the gates read BigQuery tables the season would have to seed (schedule,
boxscores, phase 3-4 outputs for every date) and would measure the local-bigquery emulator's
query time more than the protocol. The scheduler does not run (no monitor or auto-retry ticks):
the burst is the transitions' own work, and auto-retry runs on their nudges only.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.bundles import replace_section
from tests.bench.contention import checkout_version
from tests.bench.counting import COUNT_DIR_ENV, Tally, instrumented_bundles

REPO = Path(__file__).resolve().parents[2]
HEADING = "## Season burst through the local cloud"
FIRST_DATE = date(2025, 10, 21)  # opening night of a regular season
SIM_START = datetime(2026, 6, 1, 16, 0, tzinfo=UTC)  # after the season: every date is overnight
TARGET_RATIO = 4.4
TRIGGER_STATUSES = ("complete", "partial", "deadline_exceeded")  # a trigger's log row (not blocked, no gate error)
QUIET_SECONDS = 180.0  # no new trigger or log row for this long: the burst has drained (or is stuck)


def burst_definition(directory: Path) -> Path:
    """The packaged definition without gates and without the 4→5 HTTP start call."""
    from shared.pipeline.definition import DEFAULT_DEFINITION_PATH

    text = DEFAULT_DEFINITION_PATH.read_text()
    text, gates = re.subn(r"(?ms)^(\s*)gates = \[[^\]]*\]", r"\1gates = []", text)
    text, http = re.subn(r"(?ms)^\s*\[transitions\.delivery\.http\]\n.*?\n\s*\n", "\n", text)
    if gates < 3 or http != 1:
        raise RuntimeError(f"the packaged definition changed shape: {gates} gate lists, {http} HTTP deliveries")
    path = directory / "pipeline.burst.toml"
    path.write_text(text)
    return path


def season_completions(definition: Any, dates: list[date], now: datetime) -> list[tuple[str, bytes]]:
    """(completion topic, message) for every date x every processor of phases 2-5, as the replaced
    processors send them (``shared.client.build_completion``: class names, output tables; the
    coordinator's counts in metadata)."""
    import uuid

    from shared.client.completion import build_completion

    out: list[tuple[str, bytes]] = []
    for day in dates:
        for phase_number in (2, 3, 4, 5):
            phase = definition.phase(phase_number)
            for proc in (p for p in definition.processors if p.phase == phase_number):
                extra: dict[str, Any] = {}
                if phase_number == 5:  # what 5→6's completion_threshold reads (coordinator.py:3954-3961)
                    extra["metadata"] = {
                        "batch_id": f"batch_{day}",
                        "expected_players": 428,
                        "completed_players": 412,
                        "completed_predictions": 412,
                        "total_predictions": 412,
                        "completion_pct": 96.4,
                    }
                message = build_completion(
                    processor_name=proc.aliases[0] if proc.aliases else proc.name,
                    phase=f"phase_{phase_number}_{phase.name}",
                    game_date=day,
                    status="success",
                    execution_id=uuid.uuid4().hex[:8],
                    correlation_id=f"night-{day}",
                    output_table=proc.output_table,
                    record_count=412 if phase_number == 5 else 240,
                    now=now,
                    **extra,
                )
                out.append((phase.completion_topic, json.dumps(message).encode()))
    return out


@dataclass
class Burst:
    dates: int
    completions: int
    publish_s: float  # first publish → every publish future resolved
    drain_s: float  # first publish → the last trigger or log row
    last_trigger_s: float
    last_log_s: float
    triggers: Counter[tuple[str, str, str | None]]
    log_rows: Counter[tuple[str, str, str]]
    dead_letters: dict[str, int]
    expected: set[tuple[str, str, str | None]]
    requests: int = 0
    non_2xx: Counter[str] = field(default_factory=Counter)
    firestore: dict[str, dict[str, int]] = field(default_factory=dict)
    load_before: float = 0.0
    load_after: float = 0.0
    problems: list[str] = field(default_factory=list)

    def check(self) -> None:
        for key in sorted(self.expected, key=str):
            if self.triggers.get(key, 0) != 1:
                self.problems.append(f"{key}: {self.triggers.get(key, 0)} triggers")
        extra = set(self.triggers) - self.expected
        self.problems += [f"unexpected trigger {key}" for key in sorted(extra, key=str)]
        logged: Counter[tuple[str, str]] = Counter()
        for (transition, day, _status), n in self.log_rows.items():
            logged[(transition, day)] += n
        for transition, day, _mode in sorted(self.expected, key=str):
            if logged.get((transition, day), 0) != 1:
                self.problems.append(f"{transition} {day}: {logged.get((transition, day), 0)} log rows")
        statuses = Counter(status for (_t, _d, status) in self.log_rows.elements())
        self.problems += [f"{n} log rows with status {s}" for s, n in statuses.items() if s not in TRIGGER_STATUSES]
        self.problems += [f"{n} dead letter(s) on {sub}" for sub, n in self.dead_letters.items() if n]

    def firestore_total(self) -> dict[str, int]:
        total = {"reads": 0, "writes": 0, "deletes": 0, "rpcs": 0}
        for ops in self.firestore.values():
            for key in total:
                total[key] += ops[key]
        return total


def run_burst(days: int, *, project: str, say: Any) -> Burst:
    from deploy.local.stack import LocalStack
    from deploy.local.topology import ensure_subscription
    from deploy.spec import build_spec
    from shared.gcp import publisher_client, subscriber_client
    from shared.gcp_bigquery import bigquery_client
    from shared.pipeline.definition import load_definition

    scratch = Path(tempfile.mkdtemp(prefix="phasechain-burst-"))
    counts = scratch / "counts"
    definition_path = burst_definition(scratch)
    definition = load_definition(definition_path)
    dates = [FIRST_DATE + timedelta(days=i) for i in range(days)]
    stack = LocalStack(
        definition,
        project=project,
        start=SIM_START,
        definition_path=definition_path,
        run_scheduler=False,
        extra_env={COUNT_DIR_ENV: str(counts)},
        say=say,
    )
    try:
        with instrumented_bundles():
            stack.up()
        spec = build_spec(definition, project)
        subscriber = subscriber_client()
        watch = {
            ensure_subscription(subscriber, project, definition.target_topic(t), f"burst-watch-{t.name}"): t.name
            for t in definition.transitions
        }
        messages = season_completions(definition, dates, stack.clock.now())
        expected = {(t.name, d.isoformat(), _mode(t)) for t in definition.transitions for d in dates}
        publisher = publisher_client()
        topics = {topic: publisher.topic_path(project, topic) for topic, _ in messages}
        load_before = os.getloadavg()[0]
        say(f"publishing {len(messages)} completions for {days} dates ...")
        t0 = time.time()
        futures = [publisher.publish(topics[topic], data) for topic, data in messages]
        for future in futures:
            future.result(timeout=300)
        published = time.time()
        bq = bigquery_client(project)
        s = definition.pipeline
        log_query = f"SELECT phase_name, game_date, status FROM `{project}.{s.dataset}.{s.phase_execution_log_table}`"
        triggers: Counter[tuple[str, str, str | None]] = Counter()
        published_at: list[float] = []
        log_rows: Counter[tuple[str, str, str]] = Counter()
        last_log = last_progress = time.time()
        settled = False
        while not settled and time.time() - last_progress < QUIET_SECONDS:
            new = _pull_triggers(subscriber, list(watch))
            for key, at in new:
                triggers[key] += 1
                published_at.append(at)
            rows = Counter(
                (r["phase_name"], str(r["game_date"]), r["status"]) for r in bq.query(log_query).result(timeout=120)
            )
            now = time.time()
            if rows.total() > log_rows.total():
                last_log = now
            if new or rows.total() > log_rows.total():
                last_progress = now
            log_rows = rows
            say(f"  +{now - t0:.0f}s: {triggers.total()}/{len(expected)} triggers, {rows.total()} log rows")
            if triggers.total() >= len(expected) and rows.total() >= len(expected):
                time.sleep(10)  # a duplicate trigger or row would show by now
                for key, at in _pull_triggers(subscriber, list(watch)):
                    triggers[key] += 1
                    published_at.append(at)
                log_rows = Counter(
                    (r["phase_name"], str(r["game_date"]), r["status"]) for r in bq.query(log_query).result(timeout=120)
                )
                settled = True
            else:
                time.sleep(1.0)
        dead = {}
        for fn in spec.functions:
            sub = subscriber.subscription_path(project, fn.dead_letter_subscription)
            response = subscriber.pull(subscription=sub, max_messages=1000, timeout=10, return_immediately=True)
            dead[fn.dead_letter_subscription] = len(response.received_messages)
        tally = Tally.read(counts)
        # when the last log row went in: the auto-retry process's last insertAll into the log table (the
        # poll above only sees it up to a poll later)
        inserts = [
            r["t"] for r in tally.where(svc="bigquery") if str(r.get("table", "")).endswith(s.phase_execution_log_table)
        ]
        last_log = max(inserts, default=last_log)
        last_trigger = max(published_at, default=t0)
        result = Burst(
            dates=days,
            completions=len(messages),
            publish_s=published - t0,
            drain_s=max(last_trigger, last_log) - t0,
            last_trigger_s=last_trigger - t0,
            last_log_s=last_log - t0,
            triggers=triggers,
            log_rows=log_rows,
            dead_letters=dead,
            expected=expected,
            requests=len(tally.requests()),
            non_2xx=Counter(f"{r['fn']} {r['status']}" for r in tally.non_2xx()),
            firestore={fn: tally.firestore(fn) for fn in tally.functions()},
            load_before=load_before,
            load_after=os.getloadavg()[0],
        )
        result.problems += stack.deaths
        result.check()
        return result
    finally:
        stack.down()
        shutil.rmtree(scratch, ignore_errors=True)


def _pull_triggers(subscriber: Any, subscriptions: list[str]) -> list[tuple[tuple[str, str, str | None], float]]:
    """Every trigger (its first message) waiting on ``subscriptions``: (transition, date, mode) and publish time."""
    from shared.contracts.messages import PhaseTrigger

    out = []
    for sub in subscriptions:
        while True:
            response = subscriber.pull(subscription=sub, max_messages=500, timeout=30, return_immediately=True)
            if not response.received_messages:
                break
            for received in response.received_messages:
                trigger = PhaseTrigger.model_validate_json(received.message.data)
                if trigger.part == 1:
                    key = (trigger.transition, trigger.game_date.isoformat(), trigger.mode)
                    out.append((key, received.message.publish_time.timestamp()))
            subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])
    return out


def _mode(transition: Any) -> str | None:
    """The mode of a date before today (the burst's dates are all in the past): overnight, or none."""
    return next((m.name for m in transition.modes if m.when == "before_today"), None)


def render(runs: list[Burst], command: str) -> str:
    season, quarter = runs[0], runs[-1]
    ratio = season.drain_s / quarter.drain_s if quarter.drain_s else float("nan")
    size = season.dates / quarter.dates
    more = max(1, season.dates - quarter.dates)
    lines = [
        HEADING,
        "",
        f"Command: `{command}`. Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.system().lower()}, "
        f"{os.cpu_count()} cores; the local cloud of `phasectl local up` (Pub/Sub and Firestore emulators,",
        "local-bigquery, every function from its bundle behind a push subscription with its dead-letter policy);",
        "other engineers ran tests on the machine at the same time (1-min load averages below). "
        f"Code: {checkout_version(REPO)}.",
        "",
        "Every date x every processor of phases 2-5 of the definition (21 completions a date) published at once,",
        "as fast as the emulator accepts them; a fresh local cloud per row. The definition is the packaged one",
        "**without gates and without the 4→5 HTTP start call** (its trigger goes to its topic): the gates would",
        "need every date's schedule, boxscores and phase 3-4 rows seeded and would time local-bigquery's queries",
        "more than the protocol. No scheduler (no monitor or auto-retry ticks): auto-retry runs on the",
        "transitions' nudges only and delivers the log rows from the Firestore outbox.",
        "",
        "| dates | completions | publish s | drain s (first publish → last trigger or log row) | last trigger s | "
        "last log row s | triggers (expected) | log rows | dead letters | requests | non-2xx | "
        "Firestore reads / writes / deletes per date | load before → after | correct |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in runs:
        fs = r.firestore_total()
        lines.append(
            f"| {r.dates} | {r.completions} | {r.publish_s:.1f} | {r.drain_s:.1f} | {r.last_trigger_s:.1f} | "
            f"{r.last_log_s:.1f} | {sum(r.triggers.values())} ({len(r.expected)}) | {sum(r.log_rows.values())} | "
            f"{sum(r.dead_letters.values())} | {r.requests} | {sum(r.non_2xx.values())} | "
            f"{fs['reads'] / r.dates:.1f} / {fs['writes'] / r.dates:.1f} / {fs['deletes'] / r.dates:.1f} | "
            f"{r.load_before:.1f} → {r.load_after:.1f} | {'yes' if not r.problems else 'NO'} |"
        )
    lines += [
        "",
        f"Drain-time ratio {season.dates} / {quarter.dates} dates ({size:.0f}x the dates): **{ratio:.2f}** "
        f"(target ≤ {TARGET_RATIO}: {'met' if ratio <= TARGET_RATIO else 'NOT met'}); "
        f"the {more} dates more took {(season.drain_s - quarter.drain_s) / more:.2f} s each "
        f"(the quarter: {quarter.drain_s / quarter.dates:.2f} s per date including the fixed start of the drain).",
        "",
        "Firestore operations per date by function (the season run; reads / writes / deletes as billed:",
        "each document returned or looked up, each document written, each document deleted; counted in",
        "every function process at the gRPC boundary by `tests/bench/counting.py`):",
        "",
        "| function | reads / date | writes / date | deletes / date | RPCs / date |",
        "|---|---|---|---|---|",
    ]
    for fn, ops in sorted(season.firestore.items()):
        lines.append(
            f"| {fn} | {ops['reads'] / season.dates:.1f} | {ops['writes'] / season.dates:.1f} | "
            f"{ops['deletes'] / season.dates:.1f} | {ops['rpcs'] / season.dates:.1f} |"
        )
    for r in runs:
        if r.non_2xx:
            lines.append(
                f"- non-2xx answers, {r.dates} dates: " + ", ".join(f"{k} x {n}" for k, n in r.non_2xx.items())
            )
        for problem in r.problems[:10]:
            lines.append(f"- problem, {r.dates} dates: {problem}")
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from shared.structured_log import configure

    parser = argparse.ArgumentParser(prog="python -m tests.bench.burst", description=__doc__)
    parser.add_argument("--dates", type=int, default=160, help="the season's game dates")
    parser.add_argument("--quarter", type=int, default=None, help="the smaller run's dates (default: dates / 4)")
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    quarter = args.quarter or max(1, args.dates // 4)
    command = (
        "python -m tests.bench.burst"
        + (f" --dates {args.dates}" if args.dates != 160 else "")
        + (f" --quarter {args.quarter}" if args.quarter else "")
    )
    configure(stream=open(os.devnull, "w"))

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    runs = []
    for days in (args.dates, quarter):
        run = run_burst(days, project=f"bench-burst-{days}", say=say)
        runs.append(run)
        say(f"{days} dates: drain {run.drain_s:.1f} s, problems: {run.problems[:5]}")
    section = render(runs, command)
    sys.stdout.write(section)
    if not args.no_write:
        args.write.write_text(replace_section(args.write.read_text(), section, HEADING))
    return 0 if not any(r.problems for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
