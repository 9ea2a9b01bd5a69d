"""``make bench``: what a day of the orchestration costs, counted operation by operation (issue 25).

Three simulated days on the local cloud of ``phasectl local up`` (every function from its bundle
behind a push subscription; the Cloud Scheduler jobs on an accelerated clock: the monitor every 10
minutes, auto-retry every 15, the grading sensor's and the phase 6 export slots), each a fresh stack:

- ``in_season``: a night of 7 Final games, every boxscore present; the stand-in processors
  (``deploy.local.standins``) report phase 2 at 00:30 ET and answer every trigger, so the chain
  runs 2→3→4→5→6 and the grading sensor fires;
- ``off_season``: a day without games: no schedule rows, no completions;
- ``blocked``: a night of 7 games with 4 boxscores missing everywhere: the coverage breaker blocks 2→3.

Every backend operation of the function processes in the 24 simulated hours is counted at the
client boundary by ``tests.bench.counting`` (injected into the bundles: see its docstring): function
requests and their seconds, Firestore documents read / written / deleted, BigQuery statements and
the tables each references, ``insertAll`` rows, Pub/Sub publish requests and bytes; push deliveries
to the functions are the requests they answered; the scheduler's firings come from the scheduler
emulator. Each is priced at the list prices below, without free tiers, and a month is 30 such days.

Not counted: the processors' own completion publishes and the consumers' trigger deliveries (the
processors' and consumers' projects), logging, storage (Firestore, BigQuery, Pub/Sub retention),
network egress, Firestore TTL deletes (the emulator has no TTL; estimated as one delete per distinct
document written, shown separately).
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import re
import shutil
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

from tests.bench.bundles import replace_section
from tests.bench.contention import checkout_version
from tests.bench.counting import COUNT_DIR_ENV, Tally, instrumented_bundles

# ----------------------------------------------------------------------------- list prices (USD)
# Read 2026-12-07 from the pages named; no free tier is applied anywhere.
# Cloud Run functions (2nd gen) are billed as Cloud Run services with request-based billing (CPU only
# during requests), rounded up to 100 ms per request: https://cloud.google.com/run/pricing
# ("Pricing for services with CPU only allocated during request processing", Tier 1 regions; the
# deploy region us-west2 is a Tier 2 region there, whose CPU/memory prices are higher: set
# PRICE_TIER below). A 512 MiB function gets 0.333 vCPU:
# https://cloud.google.com/functions/docs/configuring/memory
RUN_PRICES = {
    1: {"vcpu_second": 0.00002400, "gib_second": 0.00000250},
    2: {"vcpu_second": 0.00003360, "gib_second": 0.00000350},
}
PRICE_TIER = 1
RUN_PER_MILLION_REQUESTS = 0.40
FUNCTION_VCPU = 0.333  # 512 MiB ([deploy.defaults] memory = "512Mi")
FUNCTION_GIB = 0.5
BILLING_GRANULARITY_S = 0.1
IDLE_INSTANCE_MINUTES = 15.0  # an instance idle this long is gone: the next request is a cold start (model)
COLD_START_S = 0.9  # a bundle's cold start, measured by tests/bench/bundles.py (docs/benchmarks.md, ## Bundles)
# Firestore (Native), multi-region nam5 ([deploy] firestore_location): https://cloud.google.com/firestore/pricing
FIRESTORE_PER_100K = {"reads": 0.06, "writes": 0.18, "deletes": 0.02}
# BigQuery on-demand compute: $6.25 per TiB, at least 10 MB per table referenced and 10 MB per query:
# https://cloud.google.com/bigquery/pricing#on_demand_pricing ; legacy streaming inserts (insertAll)
# $0.01 per 200 MB, each row at least 1 KB: https://cloud.google.com/bigquery/pricing#data_ingestion_pricing
BQ_PER_TIB = 6.25
BQ_MIN_BYTES_PER_TABLE = 10 * 1024**2
BQ_STREAMING_PER_200MB = 0.01
BQ_STREAMING_MIN_ROW_BYTES = 1024
# Pub/Sub throughput (publish, push, pull): $40 per TiB, at least 1000 bytes per request:
# https://cloud.google.com/pubsub/pricing
PUBSUB_PER_TIB = 40.0
PUBSUB_MIN_REQUEST_BYTES = 1000
# Cloud Scheduler: $0.10 per job per month (3 free jobs per billing account not applied):
# https://cloud.google.com/scheduler/pricing
SCHEDULER_PER_JOB_MONTH = 0.10
DAYS_PER_MONTH = 30
TIB = 1024**4

REPO = Path(__file__).resolve().parents[2]
HEADING = "## What a day costs (operations counted on the local cloud)"
TARGET_MONTH_IN_SEASON = 2.0
REPLACED_SYSTEM_MONTH = 44.11


@dataclass(frozen=True)
class Scenario:
    name: str
    description: str
    start: datetime  # the simulated clock at the stack's construction (the day starts once it is up)
    night: date | None  # the game date whose phase 2 the stand-ins report at 00:30 ET the next morning
    covered: int | None = None  # games with a boxscore (None: all)


SCENARIOS = {
    "in_season": Scenario(
        "in_season",
        "in-season night, 7 Final games, all boxscores",
        datetime(2026, 1, 24, 16, 0, tzinfo=UTC),
        date(2026, 1, 24),
    ),
    "off_season": Scenario("off_season", "off-season day, no games", datetime(2026, 7, 20, 15, 0, tzinfo=UTC), None),
    "blocked": Scenario(
        "blocked",
        "blocked night, 7 games, 4 boxscores missing everywhere (breaker)",
        datetime(2026, 1, 23, 16, 0, tzinfo=UTC),
        date(2026, 1, 23),
        covered=3,
    ),
}


def cost_definition(directory: Path) -> Path:
    """The packaged definition with the stand-ins' HTTP endpoints unauthenticated (loopback); nothing else."""
    from shared.pipeline.definition import DEFAULT_DEFINITION_PATH

    text, count = re.subn(r'(?m)^(\s*)auth = "id_token"', r'\1auth = "none"', DEFAULT_DEFINITION_PATH.read_text())
    text = re.sub(r'(?m)^dispatch_auth = "id_token"', 'dispatch_auth = "none"', text)
    if count < 2:
        raise RuntimeError("the packaged definition has no HTTP delivery or health gate auth line")
    path = directory / "pipeline.cost.toml"
    path.write_text(text)
    return path


def seed_night(project: str, definition: Any, day: date, covered: int | None) -> list[tuple[str, str, str]]:
    """The night's schedule (7 Final games) and the boxscores of the first ``covered`` of them in every source."""
    from deploy.local.raw_tables import upstream_table
    from deploy.local.sample_night import GAMES
    from shared.gcp_bigquery import bigquery_client

    games = list(GAMES[date(2026, 1, 24)])
    games = [(f"00225{900 + i:05d}", away, home) for i, (_, away, home) in enumerate(games)]
    have = games if covered is None else games[:covered]
    bq, g = bigquery_client(project), definition.games
    schedule = upstream_table(g.schedule_table)
    batches = {
        g.schedule_table: [schedule.row(n, day, a, h, game_status=3, game_status_text="Final") for n, a, h in games]
    }
    for source in g.boxscore_sources:
        table = upstream_table(source.table)
        batches[source.table] = [table.row(n, day, a, h) for n, a, h in have]
    for table, rows in batches.items():
        if rows:
            errors = bq.insert_rows_json(f"{project}.{table}", rows)
            if errors:
                raise RuntimeError(f"seeding {table}: {errors[:2]}")
    return have


@dataclass
class Day:
    scenario: Scenario
    tally: Tally
    firings: Counter[str]
    jobs: int
    sim_start: datetime
    sim_end: datetime
    accelerate: float
    outcomes: list[str] = field(default_factory=list)
    load: tuple[float, float] = (0.0, 0.0)
    hours: float = 24.0  # simulated hours counted (a shorter window is scaled to a day: for trying the bench)

    # -- pricing -------------------------------------------------------------------------
    def function_rows(self) -> dict[str, dict[str, float]]:
        """Per function: invocations, seconds, billed seconds, cold starts (model) and their cost."""
        prices = RUN_PRICES[PRICE_TIER]
        per_second = FUNCTION_VCPU * prices["vcpu_second"] + FUNCTION_GIB * prices["gib_second"]
        out: dict[str, dict[str, float]] = {}
        for fn in self.tally.functions():
            requests = sorted(self.tally.where(svc="function", fn=fn), key=lambda r: r["t"])
            seconds = sum(r["seconds"] for r in requests)
            billed = sum(
                math.ceil(r["seconds"] / BILLING_GRANULARITY_S - 1e-9) * BILLING_GRANULARITY_S for r in requests
            )
            cold, last = 0, None
            for r in requests:
                if last is None or (r["t"] - last) * self.accelerate > IDLE_INSTANCE_MINUTES * 60:
                    cold += 1
                last = r["t"] + r["seconds"]
            billed_total = billed + cold * COLD_START_S
            out[fn] = {
                "invocations": len(requests),
                "seconds": seconds,
                "cpu_seconds": sum(r.get("cpu", 0.0) for r in requests),
                "billed_seconds": billed_total,
                "cold": cold,
                "non_2xx": sum(1 for r in requests if not 200 <= r["status"] < 300),
                "compute": billed_total * per_second,
                "requests": len(requests) * RUN_PER_MILLION_REQUESTS / 1e6,
            }
        return out

    def firestore_rows(self) -> dict[str, dict[str, float]]:
        out = {}
        for fn in self.tally.functions():
            ops = self.tally.firestore(fn)
            out[fn] = {**ops, "cost": sum(ops[k] * FIRESTORE_PER_100K[k] / 1e5 for k in FIRESTORE_PER_100K)}
        return out

    def ttl_deletes(self) -> int:
        """Estimated Firestore TTL deletes: one per distinct document written (each expires once)."""
        return len({d for r in self.tally.where(svc="firestore") for d in r.get("docs") or ()})

    def bigquery_rows(self) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = defaultdict(
            lambda: {
                "statements": Counter(),
                "tables": Counter(),
                "billed_bytes": 0,
                "rows": 0,
                "row_bytes": 0,
                "calls": 0,
                "cost": 0.0,
            }
        )
        for r in self.tally.where(svc="bigquery"):
            row = out[r["fn"]]
            row["calls"] += 1
            if "statement" in r:
                tables = r.get("tables") or []
                row["statements"][r["statement"]] += 1
                row["tables"].update(t.split(".", 1)[1] if t.count(".") == 2 else t for t in tables)
                billed = max(1, len(tables)) * BQ_MIN_BYTES_PER_TABLE
                row["billed_bytes"] += billed
                row["cost"] += billed / TIB * BQ_PER_TIB
            if "rows" in r:
                row["rows"] += r["rows"]
                row["row_bytes"] += sum(max(BQ_STREAMING_MIN_ROW_BYTES, 0) for _ in range(r["rows"]))
                row["cost"] += r["rows"] * BQ_STREAMING_MIN_ROW_BYTES / (200 * 1000**2) * BQ_STREAMING_PER_200MB
        return dict(out)

    def pubsub_rows(self) -> dict[str, dict[str, float]]:
        """Per function: its publish requests (and bytes) and the push deliveries it received."""
        out: dict[str, dict[str, float]] = {}
        for fn in self.tally.functions():
            publishes = self.tally.where(svc="pubsub", fn=fn, op="Publish")
            pushes = self.tally.where(svc="function", fn=fn)
            billed = sum(max(PUBSUB_MIN_REQUEST_BYTES, r.get("bytes", 0)) for r in publishes)
            billed += sum(max(PUBSUB_MIN_REQUEST_BYTES, r.get("bytes", 0)) for r in pushes)
            out[fn] = {
                "publish_requests": len(publishes),
                "messages": sum(r.get("messages", 0) for r in publishes),
                "push_deliveries": len(pushes),
                "billed_bytes": billed,
                "cost": billed / TIB * PUBSUB_PER_TIB,
            }
        scheduler = sum(self.firings.values())
        out["(Cloud Scheduler publishes)"] = {
            "publish_requests": scheduler,
            "messages": scheduler,
            "push_deliveries": 0,
            "billed_bytes": scheduler * PUBSUB_MIN_REQUEST_BYTES,
            "cost": scheduler * PUBSUB_MIN_REQUEST_BYTES / TIB * PUBSUB_PER_TIB,
        }
        return out

    def items(self) -> list[tuple[str, str, float]]:
        """(function, cost item, $ per day), every item, for the top list."""
        out: list[tuple[str, str, float]] = []
        for fn, row in self.function_rows().items():
            out.append((fn, "function compute (CPU + memory, incl. modelled cold starts)", row["compute"]))
            out.append((fn, "function requests", row["requests"]))
        for fn, row in self.firestore_rows().items():
            for kind in ("reads", "writes", "deletes"):
                out.append((fn, f"Firestore {kind}", row[kind] * FIRESTORE_PER_100K[kind] / 1e5))
        for fn, row in self.bigquery_rows().items():
            out.append((fn, "BigQuery statements (10 MB min per table) + insertAll", row["cost"]))
        for fn, row in self.pubsub_rows().items():
            out.append((fn, "Pub/Sub publish + push (1 KB min per request)", row["cost"]))
        out.append(
            ("(all)", "Firestore TTL deletes (estimate)", self.ttl_deletes() * FIRESTORE_PER_100K["deletes"] / 1e5)
        )
        scale = 24.0 / self.hours
        return [(fn, item, cost * scale) for fn, item, cost in out if cost > 0]

    def per_day(self) -> float:
        return sum(cost for _, _, cost in self.items())

    def scheduler_month(self) -> float:
        return self.jobs * SCHEDULER_PER_JOB_MONTH

    def month(self) -> float:
        return self.per_day() * DAYS_PER_MONTH + self.scheduler_month()


def run_day(scenario: Scenario, accelerate: float, say: Any, hours: float = 24.0) -> Day:
    from deploy.local.stack import LocalStack
    from deploy.local.standins import StandinProcessors, StartEndpoint
    from deploy.spec import build_spec
    from shared.clock import PIPELINE_TZ
    from shared.pipeline.definition import load_definition

    scratch = Path(tempfile.mkdtemp(prefix=f"phasechain-cost-{scenario.name}-"))
    counts = scratch / "counts"
    definition_path = cost_definition(scratch)
    definition = load_definition(definition_path)
    project = f"bench-cost-{scenario.name.replace('_', '-')}"
    coordinator = StartEndpoint()
    http_phases = {t.target_phase: t.delivery.http for t in definition.transitions if t.delivery.http}
    stack = LocalStack(
        definition,
        project=project,
        accelerate=accelerate,
        start=scenario.start,
        definition_path=definition_path,
        extra_env={COUNT_DIR_ENV: str(counts), **{h.url_env: coordinator.url for h in http_phases.values()}},
    )
    standins = None
    try:
        with instrumented_bundles():
            stack.up()
        games = seed_night(project, definition, scenario.night, scenario.covered) if scenario.night else []
        standins = StandinProcessors(
            definition,
            project,
            stack.clock,
            start_endpoints=dict.fromkeys(http_phases, coordinator),
            games={scenario.night: games} if scenario.night else {},
        ).start()
        real_start, sim_start = time.time(), stack.clock.now()
        real_end = real_start + hours * 3600 / accelerate
        night_at = None
        if scenario.night is not None:
            local = datetime.combine(scenario.night + timedelta(days=1), datetime.min.time()).replace(
                hour=0, minute=30, tzinfo=PIPELINE_TZ
            )
            night_at = local.astimezone(UTC)
        say(
            f"{scenario.name}: simulated {sim_start.astimezone(PIPELINE_TZ):%b %d %H:%M} ET for {hours:g} h, "
            f"x{accelerate:g} ({hours * 3600 / accelerate / 60:.0f} real minutes)"
        )
        load_start = os.getloadavg()[0]
        while time.time() < real_end:
            if night_at is not None and stack.clock.now() >= night_at:
                say(
                    f"  {stack.clock.now().astimezone(PIPELINE_TZ):%b %d %H:%M} ET: "
                    f"phase 2 reports for {scenario.night}"
                )
                assert scenario.night is not None
                standins.run_phase(2, scenario.night)
                night_at = None
            time.sleep(min(1.0, max(0.0, real_end - time.time())))
        sim_end = stack.clock.now()
        load_end = os.getloadavg()[0]
        spec = build_spec(definition, project)
        firings = Counter(
            name
            for name, moment in (stack.scheduler.history if stack.scheduler else [])
            if sim_start <= moment < sim_end
        )
        outcomes = _outcomes(project, definition)
        tally = Tally.read(counts, since=real_start, until=real_end)
        return Day(
            scenario,
            tally,
            firings,
            len(spec.jobs),
            sim_start,
            sim_end,
            accelerate,
            outcomes,
            (load_start, load_end),
            hours,
        )
    finally:
        if standins is not None:
            standins.stop()
        stack.down()
        coordinator.close()
        shutil.rmtree(scratch, ignore_errors=True)


def _outcomes(project: str, definition: Any) -> list[str]:
    """What the day produced: phase_execution_log rows by (phase, date, status) (read after the window)."""
    from shared.gcp_bigquery import bigquery_client

    s = definition.pipeline
    rows = (
        bigquery_client(project)
        .query(
            f"SELECT phase_name, CAST(game_date AS STRING) AS d, status, COUNT(*) AS n "
            f"FROM `{project}.{s.dataset}.{s.phase_execution_log_table}` GROUP BY 1, 2, 3 ORDER BY 2, 1"
        )
        .result(timeout=120)
    )
    return [f"{r['phase_name']} {r['d']} {r['status']} x{r['n']}" for r in rows]


# ----------------------------------------------------------------------------- report


def _usd(value: float) -> str:
    return f"${value:.4f}" if value < 1 else f"${value:.2f}"


def render(days: list[Day], command: str) -> str:
    by = {d.scenario.name: d for d in days}
    prices = RUN_PRICES[PRICE_TIER]
    lines = [
        HEADING,
        "",
        f"Command: `{command}`. Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {platform.system().lower()}, "
        f"{os.cpu_count()} cores, each day a fresh local cloud (`phasectl local up`: emulators, every function",
        "from its bundle behind a push subscription, the Cloud Scheduler jobs on the accelerated clock). Other",
        "engineers ran tests on the machine at the same time: function seconds are wall times on a loaded",
        "2-core machine against emulators (1-min load average at the day's start → end below), so compute",
        f"is an upper bound; the operation counts do not depend on the load. Code: {checkout_version(REPO)}.",
        "",
        "How it is counted: `tests/bench/counting.py` is copied into every bundle with a `sitecustomize.py`",
        "(nothing in shared/, functions/ or deploy/ changes) and wraps, in each function process, the gRPC",
        "channel (Firestore documents read / written / deleted as billed: each document returned or looked up,",
        "at least 1 per query; each write; each delete — and Pub/Sub Publish requests and bytes), the",
        "BigQuery REST connection (each statement, its kind and the tables it names; insertAll rows) and the",
        "WSGI app (each push delivery answered: status, wall time, body size). Scheduler firings come from",
        "the scheduler emulator's history. Only the simulated day after the stack is up is counted.",
        "",
        "Prices (USD, list, no free tier; read 2026-12-07): Cloud Run request-based billing Tier "
        f"{PRICE_TIER} ${prices['vcpu_second']:.8f}/vCPU-s, ${prices['gib_second']:.8f}/GiB-s, "
        f"${RUN_PER_MILLION_REQUESTS}/million requests, 100 ms rounding, {FUNCTION_VCPU} vCPU + {FUNCTION_GIB} GiB per "
        "function (https://cloud.google.com/run/pricing, https://cloud.google.com/functions/docs/configuring/memory);",
        f"a cold start (modelled: a request more than {IDLE_INSTANCE_MINUTES:g} simulated minutes after the function's "
        f"last) bills {COLD_START_S} s more; Firestore nam5 ${FIRESTORE_PER_100K['reads']}/"
        f"${FIRESTORE_PER_100K['writes']}/${FIRESTORE_PER_100K['deletes']} per 100k reads/writes/deletes "
        "(https://cloud.google.com/firestore/pricing); BigQuery on-demand "
        f"${BQ_PER_TIB}/TiB with 10 MB per table referenced (min 10 MB per statement), insertAll "
        f"${BQ_STREAMING_PER_200MB}/200 MB at 1 KB min per row (https://cloud.google.com/bigquery/pricing); "
        f"Pub/Sub ${PUBSUB_PER_TIB}/TiB at 1000 bytes min per publish or push request "
        f"(https://cloud.google.com/pubsub/pricing); Cloud Scheduler ${SCHEDULER_PER_JOB_MONTH}/job/month "
        "(https://cloud.google.com/scheduler/pricing). The deploy region us-west2 may bill Cloud Run at Tier 2",
        f"(${RUN_PRICES[2]['vcpu_second']:.8f}/vCPU-s, ${RUN_PRICES[2]['gib_second']:.8f}/GiB-s): compute x1.4.",
        "",
        "| day | $ / day | $ / month (30 such days + scheduler jobs) | scheduler jobs | firings | invocations | "
        "non-2xx | function s (handler CPU s) | Firestore R / W / D | BigQuery statements (10 MB units) | "
        "Pub/Sub requests | load start → end |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for d in days:
        fns = d.function_rows()
        fs = d.tally.firestore()
        bq = d.bigquery_rows()
        ps = d.pubsub_rows()
        statements = sum(sum(r["statements"].values()) for r in bq.values())
        units = sum(r["billed_bytes"] for r in bq.values()) // BQ_MIN_BYTES_PER_TABLE
        lines.append(
            f"| {d.scenario.description} | {_usd(d.per_day())} | **{_usd(d.month())}** | {d.jobs} | "
            f"{sum(d.firings.values())} | {sum(r['invocations'] for r in fns.values()):.0f} | "
            f"{sum(r['non_2xx'] for r in fns.values()):.0f} | {sum(r['seconds'] for r in fns.values()):.0f} "
            f"({sum(r['cpu_seconds'] for r in fns.values()):.0f}) | "
            f"{fs['reads']} / {fs['writes']} / {fs['deletes']} | {statements} ({units}) | "
            f"{sum(r['publish_requests'] + r['push_deliveries'] for r in ps.values()):.0f} | "
            f"{d.load[0]:.1f} → {d.load[1]:.1f} |"
        )
    season, off = by.get("in_season"), by.get("off_season")
    if season is not None:
        lines += [
            "",
            f"In season: **{_usd(season.month())}/month** (target ≤ ${TARGET_MONTH_IN_SEASON:.2f}: "
            f"{'met' if season.month() <= TARGET_MONTH_IN_SEASON else 'NOT met'}; the replaced system's three "
            f"orchestrators: ${REPLACED_SYSTEM_MONTH}/month, ratio {season.month() / REPLACED_SYSTEM_MONTH:.3f})."
            + (
                f" Off season: {_usd(off.month())}/month (cheaper than in season: "
                f"{'yes' if off.month() < season.month() else 'NO'})."
                if off is not None
                else ""
            ),
        ]
    for d in days:
        lines += ["", f"### {d.scenario.description}: by function and kind ($ per day)", ""]
        lines += [
            "| function | invocations (non-2xx) | wall s (billed s, cold starts, handler CPU s) | compute $ | "
            "Firestore R / W / D | Firestore $ | BigQuery statements (tables referenced) | BigQuery $ | "
            "Pub/Sub publish req / push | Pub/Sub $ |",
            "|---|---|---|---|---|---|---|---|---|---|",
        ]
        fns, fss, bqs, pss = d.function_rows(), d.firestore_rows(), d.bigquery_rows(), d.pubsub_rows()
        for fn in sorted(set(fns) | set(pss)):
            f = fns.get(fn, {})
            s = fss.get(fn, {"reads": 0, "writes": 0, "deletes": 0, "cost": 0.0})
            b = bqs.get(fn)
            p = pss.get(fn, {})
            stmts = ", ".join(f"{k} {v}" for k, v in b["statements"].most_common()) if b else "-"
            tables = ", ".join(f"{k} {v}" for k, v in b["tables"].most_common(4)) if b else ""
            lines.append(
                f"| {fn} | {f.get('invocations', 0):.0f} ({f.get('non_2xx', 0):.0f}) | "
                f"{f.get('seconds', 0):.1f} ({f.get('billed_seconds', 0):.1f}, {f.get('cold', 0):.0f}, "
                f"{f.get('cpu_seconds', 0):.1f}) | "
                f"{_usd(f.get('compute', 0.0) + f.get('requests', 0.0))} | "
                f"{s['reads']} / {s['writes']} / {s['deletes']} | "
                f"{_usd(s['cost'])} | {stmts}{f' ({tables})' if tables else ''} | {_usd(b['cost'] if b else 0.0)} | "
                f"{p.get('publish_requests', 0):.0f} / {p.get('push_deliveries', 0):.0f} | {_usd(p.get('cost', 0.0))} |"
            )
        lines.append(
            f"\nScheduler firings in the day: {', '.join(f'{k} {v}' for k, v in sorted(d.firings.items()))}; "
            f"{d.jobs} jobs = {_usd(d.scheduler_month())}/month. Estimated TTL deletes: {d.ttl_deletes()}. "
            f"phase_execution_log: {'; '.join(d.outcomes) or 'no rows'}."
        )
        top = sorted(d.items(), key=lambda item: -item[2])[:8]
        total = d.per_day()
        lines += ["", "Top items ($ per day, share of the day):", ""]
        lines += [f"- {fn}: {item}: {_usd(cost)} ({cost / total:.0%})" for fn, item, cost in top]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    from shared.structured_log import configure

    parser = argparse.ArgumentParser(prog="python -m tests.bench.cost", description=__doc__)
    parser.add_argument("--scenario", action="append", choices=sorted(SCENARIOS), help="default: all three")
    parser.add_argument("--accelerate", type=float, default=120.0, help="simulated seconds per real second")
    parser.add_argument("--hours", type=float, default=24.0, help="simulated hours counted (scaled to a day)")
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "benchmarks.md")
    parser.add_argument("--no-write", action="store_true")
    args = parser.parse_args(argv)
    names = args.scenario or ["in_season", "off_season", "blocked"]
    command = (
        "python -m tests.bench.cost"
        + "".join(f" --scenario {n}" for n in (args.scenario or []))
        + (f" --accelerate {args.accelerate:g}" if args.accelerate != 120.0 else "")
        + (f" --hours {args.hours:g}" if args.hours != 24.0 else "")
    )
    configure(stream=open(os.devnull, "w"))

    def say(text: str) -> None:
        sys.stdout.write(text + "\n")
        sys.stdout.flush()

    days = [run_day(SCENARIOS[name], args.accelerate, say, args.hours) for name in names]
    section = render(days, command)
    sys.stdout.write(section)
    if not args.no_write:
        args.write.write_text(replace_section(args.write.read_text(), section, HEADING))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
