"""``make bench``: how long ``make demo``'s night takes against its 3-minute target.

Runs the demo (both scenarios, a fresh local cloud each run) ``--runs`` times and replaces the
``## make demo`` section of docs/benchmarks.md. A run that does not reach every outcome counts as
a failure, not as a time.
"""

from __future__ import annotations

import argparse
import io
import os
import platform
import statistics
import sys
from datetime import UTC, datetime
from pathlib import Path

from deploy.local.demo import run_demo
from tests.bench.bundles import replace_section

REPO = Path(__file__).resolve().parents[2]
HEADING = "## make demo"
TARGET_SECONDS = 180.0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--write", type=Path, default=REPO / "docs" / "benchmarks.md")
    args = parser.parse_args(argv)
    seconds: list[float] = []
    failures: list[str] = []
    for _ in range(args.runs):
        result = run_demo(out=io.StringIO())
        if result.ok:
            seconds.append(result.seconds)
        else:
            failures.append("; ".join(result.problems + result.deaths))
    load = os.getloadavg()[0]
    lines = [
        HEADING,
        "",
        f"Command: `python -m tests.bench.demo` (runs={args.runs}). Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on "
        f"{platform.system().lower()}, {os.cpu_count()} cores; 1-min load average after: {load:.1f}.",
        "Wall time of the whole demo: local cloud up (emulators, topology, 6 bundles), scenario 1 through the",
        "retry chain, the operator's commands, scenario 2, the status page, and down.",
        "",
        "| runs ok | median s | max s | median / target 180 s | met |",
        "|---|---|---|---|---|",
    ]
    if seconds:
        median = statistics.median(seconds)
        lines.append(
            f"| {len(seconds)}/{args.runs} | {median:.1f} | {max(seconds):.1f} | {median / TARGET_SECONDS:.2f} | "
            f"{'yes' if max(seconds) < TARGET_SECONDS and not failures else 'no'} |"
        )
    else:
        lines.append(f"| 0/{args.runs} | - | - | - | no |")
    lines += [f"- failed run: {f}" for f in failures]
    section = "\n".join(lines) + "\n"
    sys.stdout.write(section)
    if args.write:
        args.write.write_text(replace_section(args.write.read_text(), section, HEADING))
    return 0 if not failures else 1


if __name__ == "__main__":
    raise SystemExit(main())
