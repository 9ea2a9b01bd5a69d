"""``make bench``: N processes each deliver the completion that makes one date ready, at once (issue 25).

N separate OS processes (20 and 100 by default) each run ``build_service("phase2_to_phase3",
...).handle_event(body)`` for one game date, from a shared start line (the pattern of
tests/shared/orchestration/test_faults_emulators.py's ``_WORKER``). Every one of them decides
"ready" from its own point of view, so all N go for the claim at the same instant:

- an isolated definition (``tests.support.rig.isolated_definition``) adds N phase-2 processors
  ``bench_extra_000..`` as optional to 2→3 and sets ``majority_threshold`` to (critical + ½) / pool;
- the three critical processors are recorded first: the date waits (3 of 5 + N done);
- each worker delivers a distinct extra processor: 4 or more done, all critical → ready; the
  coverage gate passes (five Final games, each with a gamebook boxscore, seeded per date).

Per run: start line → the trigger's ``publish_time`` on the topic (assigned by the Pub/Sub emulator),
start line → the last delivery answered, the deliveries that raised (the function answers non-2xx and
Pub/Sub redelivers), the outcome kinds, exactly one trigger on the topic and N/N completions recorded.

``--tree LABEL=PATH`` (repeatable) runs the workers with cwd and ``PYTHONPATH`` of another checkout
(e.g. a ``git worktree`` of an older commit), with this repository's venv; the trees alternate run by
run, so machine load hits them alike. The parent (emulators, topics, seeding, the pre-recorded
completions, the checks) always runs this repository's code.
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.bundles import replace_section

REPO = Path(__file__).resolve().parents[2]
HEADING = "## Contention: N deliveries complete one date at once"
P23 = "phase2_to_phase3"
NOW = datetime(2026, 3, 1, 15, 0, tzinfo=UTC)  # every benchmark date is before "today": overnight
FIRST_DATE = date(2025, 11, 1)
READY_TIMEOUT = 900.0  # 100 interpreters importing the clients on 2 cores
RUN_TIMEOUT = 1200.0

WORKER = r"""
import json, os, sys, time, traceback
from datetime import datetime
import shared
from shared.clock import FixedClock
from shared.orchestration.runtime import build_service
from shared.pipeline.definition import parse_definition
job = json.loads(sys.stdin.readline())
now = datetime.fromisoformat(job["now"])
service = build_service("phase2_to_phase3", definition=parse_definition(job["definition"], "<bench>"),
                        clock=FixedClock(now))
service.state.load(datetime.fromisoformat(job["game_date"]).date())  # warm the channel before the start line
print("@@ready " + json.dumps({"shared": shared.__file__}), flush=True)
start_at = float(sys.stdin.readline())
time.sleep(max(0.0, start_at - time.time()))
try:
    outcome = service.handle_event(job["body"])
    result = {"kind": outcome.kind, "trigger_id": outcome.trigger_id}
except Exception as exc:  # the function would answer non-2xx: Pub/Sub redelivers
    result = {"kind": "error", "error": f"{type(exc).__name__}: {str(exc)[:300]}"}
result["answered_at"] = time.time()
print("@@result " + json.dumps(result), flush=True)
"""


@dataclass
class Run:
    tree: str
    n: int
    game_date: date
    trigger_s: float | None  # start line → the trigger's publish_time (None: no trigger)
    answered_s: float  # start line → the last delivery answered
    kinds: Counter[str]
    errors: list[str]
    triggers: int
    completions: int
    error_after_s: list[float] = field(default_factory=list)  # start line → each failed delivery's answer

    @property
    def correct(self) -> bool:
        return self.triggers == 1 and self.completions == self.n


def contention_mutate(n: int, captured: dict[str, Any]) -> Any:
    """N optional phase-2 processors; the threshold makes any one of them, with the critical three,
    enough (and the critical three alone not)."""

    def mutate(data: dict[str, Any]) -> None:
        extras = [f"bench_extra_{i:03d}" for i in range(n)]
        data["processors"] += [{"name": name, "phase": 2} for name in extras]
        spec = next(t for t in data["transitions"] if t["name"] == P23)
        spec["expected"] = [*spec["expected"], *extras]
        spec["optional"] = [*spec["optional"], *extras]
        pool = len(spec["critical"]) + len(spec["optional"])
        spec["majority_threshold"] = (len(spec["critical"]) + 0.5) / pool
        captured.update(copy.deepcopy(data))

    return mutate


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


class Bench:
    def __init__(self, cloud: Any, n: int) -> None:
        from tests.support.rig import Rig

        self.n = n
        self.data: dict[str, Any] = {}
        self.rig = Rig.create(cloud, f"c{n}{uuid.uuid4().hex[:6]}", now=NOW, mutate=contention_mutate(n, self.data))
        self.env = {**cloud.env(), "PATH": "/usr/bin:/bin", "PYDANTIC_DISABLE_PLUGINS": "__all__"}

    def prepare(self, day: date) -> list[dict[str, Any]]:
        """Seed the date's games, record the critical completions (the date waits), and return the N bodies."""
        from tests.support.rig import GAMES

        rig = self.rig
        rig.seed_games(game_date=day, sources={"gamebook": [g[0] for g in GAMES]})
        spec = rig.definition.transition(P23)
        svc = rig.services[P23]
        for name in spec.critical:
            outcome = svc.handle_event(rig.event(rig.completion(name, 2, game_date=day)))
            assert outcome.kind == "waiting", outcome
        return [rig.event(rig.completion(f"bench_extra_{i:03d}", 2, game_date=day)) for i in range(self.n)]

    def run(self, label: str, tree: Path, day: date) -> Run:
        bodies = self.prepare(day)
        env = {**self.env, "PYTHONPATH": str(tree)}
        procs = [
            subprocess.Popen(
                [sys.executable, "-c", WORKER],
                cwd=tree,
                env=env,
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.DEVNULL,
                text=True,
            )
            for _ in bodies
        ]
        try:
            for proc, body in zip(procs, bodies, strict=True):
                assert proc.stdin is not None
                job = {"definition": self.data, "body": body, "now": NOW.isoformat(), "game_date": day.isoformat()}
                proc.stdin.write(json.dumps(job) + "\n")
                proc.stdin.flush()
            deadline = time.monotonic() + READY_TIMEOUT
            for proc in procs:
                ready = _line(proc, "@@ready ", deadline)
                where = Path(json.loads(ready)["shared"]).resolve()
                assert where.is_relative_to(tree.resolve()), f"worker imported {where}, not from {tree}"
            start_at = time.time() + 1.0
            for proc in procs:
                assert proc.stdin is not None
                proc.stdin.write(f"{start_at}\n")
                proc.stdin.flush()
            deadline = time.monotonic() + RUN_TIMEOUT
            results = [json.loads(_line(proc, "@@result ", deadline)) for proc in procs]
        finally:
            for proc in procs:
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
        published = self.published(day)
        kinds = Counter(r["kind"] for r in results)
        return Run(
            tree=label,
            n=self.n,
            game_date=day,
            trigger_s=(min(published) - start_at) if published else None,
            answered_s=max(r["answered_at"] for r in results) - start_at,
            kinds=kinds,
            errors=[r["error"] for r in results if r["kind"] == "error"],
            triggers=len(published),
            completions=sum(
                1 for d in self.rig.completion_docs(P23, day) if str(d.get("processor")).startswith("bench_extra_")
            ),
            error_after_s=sorted(r["answered_at"] - start_at for r in results if r["kind"] == "error"),
        )

    def published(self, day: date) -> list[float]:
        """publish_time of every trigger (first part) for ``day`` on the 2→3 trigger topic."""
        from shared.contracts.messages import PhaseTrigger
        from shared.gcp import subscriber_client

        subscriber = subscriber_client()
        sub = self.rig.trigger_subscriptions[P23]
        times: list[float] = []
        while True:
            response = subscriber.pull(subscription=sub, max_messages=100, timeout=10, return_immediately=True)
            if not response.received_messages:
                return times
            for received in response.received_messages:
                trigger = PhaseTrigger.model_validate_json(received.message.data)
                if trigger.part == 1 and trigger.game_date == day:
                    times.append(received.message.publish_time.timestamp())
            subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])


def _line(proc: subprocess.Popen[str], prefix: str, deadline: float) -> str:
    assert proc.stdout is not None
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            raise RuntimeError(f"worker {proc.pid} exited ({proc.wait()}) before {prefix.strip()}")
        if line.startswith(prefix):
            return line[len(prefix) :]
    raise TimeoutError(f"worker {proc.pid}: no {prefix.strip()} in time")


def _tree(text: str) -> tuple[str, Path]:
    label, sep, path = text.partition("=")
    if not sep:
        label, path = Path(text).name, text
    resolved = Path(path).resolve()
    if not (resolved / "shared" / "orchestration" / "state.py").is_file():
        raise argparse.ArgumentTypeError(f"{path} is not a phasechain checkout")
    return label, resolved


def checkout_version(tree: Path) -> str:
    """The checkout's commit (short hash and subject) and whether shared/ has uncommitted changes."""
    done = subprocess.run(["git", "-C", str(tree), "log", "-1", "--format=%h %s"], capture_output=True, text=True)
    dirty = subprocess.run(
        ["git", "-C", str(tree), "status", "--porcelain", "--", "shared"], capture_output=True, text=True
    ).stdout.strip()
    return (done.stdout.strip()[:90] or "?") + (" (+ uncommitted changes under shared/)" if dirty else "")


def render(runs: list[Run], trees: list[tuple[str, Path]], ns: list[int], loads: list[float], command: str) -> str:
    lines = [
        HEADING,
        "",
        f"Command: `{command}`. Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.system().lower()}, "
        f"{os.cpu_count()} cores, real Firestore and Pub/Sub emulators and local-bigquery. 1-min load average "
        f"before each run: {', '.join(f'{x:.1f}' for x in loads)} (other engineers ran tests on the machine "
        "at the same time). Ratios compare numbers of this one run.",
        "",
        "N worker processes each deliver a distinct phase-2 completion for one date from a shared start line",
        "(`build_service('phase2_to_phase3').handle_event`); each completion alone makes the date ready (the",
        "three critical processors are recorded first, N optional ones are added and the majority threshold is",
        "(critical + ½) / pool), so all N claim at once. trigger = start line → the trigger's publish_time on the",
        "topic; answered = start line → the last of the N deliveries returned or raised. Errors are deliveries",
        "that raised: the function answers non-2xx and Pub/Sub redelivers them.",
        "",
        "Trees: " + "; ".join(f"{label} = {path} at {checkout_version(path)}" for label, path in trees) + ".",
        "",
        "p95 of a handful of runs is the slowest run. Every worker is its own interpreter: at N = 100 on 2 cores",
        "the start line is followed by 100 processes competing for the CPU (the load average shows it), in every",
        "tree alike, so those times are mostly CPU wait; the Firestore emulator makes a conflicting transaction",
        "wait 2 s before it aborts (and the client retries), which is what a claim transaction runs into.",
        "",
        "| tree | N | runs | trigger p50 s | trigger p95 s | answered p50 s | errors per run | "
        "outcomes (all runs) | 1 trigger and N/N completions |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for n in ns:
        for label, _ in trees:
            series = [r for r in runs if r.n == n and r.tree == label]
            if not series:
                continue
            trig = [r.trigger_s for r in series if r.trigger_s is not None]
            kinds: Counter[str] = Counter()
            for r in series:
                kinds.update(r.kinds)
            lines.append(
                f"| {label} | {n} | {len(series)} | {statistics.median(trig) if trig else float('nan'):.2f} | "
                f"{_pct(trig, 0.95) if trig else float('nan'):.2f} | "
                f"{statistics.median(r.answered_s for r in series):.2f} | "
                f"{', '.join(str(r.kinds.get('error', 0)) for r in series)} | "
                f"{', '.join(f'{k} {v}' for k, v in sorted(kinds.items()))} | "
                f"{sum(r.correct for r in series)}/{len(series)} |"
            )
    if len(trees) > 1:
        first = trees[0][0]
        lines += ["", f"Ratios to {first} (trigger p50, answered p50), same N:", ""]
        for n in ns:
            base = [r for r in runs if r.n == n and r.tree == first]
            for label, _ in trees[1:]:
                other = [r for r in runs if r.n == n and r.tree == label]
                if not base or not other:
                    continue
                ratio_t = _ratio([r.trigger_s for r in other], [r.trigger_s for r in base])
                ratio_a = _ratio([r.answered_s for r in other], [r.answered_s for r in base])
                lines.append(f"- N={n}: {label} / {first}: trigger {ratio_t}, answered {ratio_a}")
    lines += ["", "Per run:", ""]
    for r in runs:
        failed = (
            f"; failed deliveries answered after {r.error_after_s[0]:.1f}-{r.error_after_s[-1]:.1f} s"
            if (r.error_after_s)
            else ""
        )
        trigger_text = f"{r.trigger_s:.2f} s" if r.trigger_s is not None else "none"
        lines.append(
            f"- {r.tree} N={r.n} {r.game_date}: trigger {trigger_text}, answered {r.answered_s:.2f} s, "
            f"{r.triggers} trigger(s), {r.completions}/{r.n} completions; "
            f"{', '.join(f'{k} {v}' for k, v in sorted(r.kinds.items()))}{failed}"
        )
    errors = Counter(e.split(":", 1)[0] + ":" + e.split(":", 1)[1][:110] for r in runs for e in r.errors)
    if errors:
        lines += ["", "Errors (first 110 characters of each distinct message):", ""]
        lines += [f"- {count} x {text}" for text, count in errors.most_common(6)]
    return "\n".join(lines) + "\n"


def _ratio(num: list[float | None], den: list[float | None]) -> str:
    a = [x for x in num if x is not None]
    b = [x for x in den if x is not None]
    if not a or not b or statistics.median(b) == 0:
        return "-"
    return f"{statistics.median(a) / statistics.median(b):.2f}"


def main(argv: list[str] | None = None) -> int:
    from deploy.local.emulators import LocalCloud
    from shared.structured_log import configure

    parser = argparse.ArgumentParser(prog="python -m tests.bench.contention", description=__doc__)
    parser.add_argument("--n", type=int, action="append", help="processes per run (repeatable; default 20 and 100)")
    parser.add_argument("--runs", type=int, default=3, help="runs per N and tree")
    parser.add_argument(
        "--tree",
        type=_tree,
        action="append",
        metavar="[LABEL=]PATH",
        help="a checkout whose code the workers run (repeatable; default: this repository)",
    )
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    ns = args.n or [20, 100]
    trees = args.tree or [("this tree", REPO)]
    command = (
        "python -m tests.bench.contention"
        + "".join(f" --n {n}" for n in (args.n or []))
        + (f" --runs {args.runs}" if args.runs != 3 else "")
        + "".join(f" --tree {label}={path}" for label, path in (args.tree or []))
    )
    configure(stream=open(os.devnull, "w"))  # the parent's structured logs stay out of the report
    runs: list[Run] = []
    loads: list[float] = []
    day = FIRST_DATE
    with LocalCloud(project="bench-contention") as cloud, cloud.environ():
        for n in ns:
            bench = Bench(cloud, n)
            for _ in range(args.runs):
                for label, tree in trees:  # alternate the trees run by run
                    loads.append(os.getloadavg()[0])
                    run = bench.run(label, tree, day)
                    day += timedelta(days=1)
                    runs.append(run)
                    sys.stdout.write(
                        f"{label} N={n} {run.game_date}: trigger "
                        f"{'none' if run.trigger_s is None else f'{run.trigger_s:.2f}'} s, answered "
                        f"{run.answered_s:.2f} s, {dict(run.kinds)}, triggers {run.triggers}, "
                        f"completions {run.completions}/{n}, load {loads[-1]:.1f}\n"
                    )
                    sys.stdout.flush()
    section = render(runs, trees, ns, loads, command)
    sys.stdout.write(section)
    if not args.no_write:
        args.write.write_text(replace_section(args.write.read_text(), section, HEADING))
    return 0 if all(r.correct for r in runs) else 1


if __name__ == "__main__":
    raise SystemExit(main())
