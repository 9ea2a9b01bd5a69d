"""``phasectl local up|down``: the whole topology on the local emulators."""

from __future__ import annotations

import argparse
import re
import shlex
import sys
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

from phasectl.core import Context, UsageError
from shared.printable import printable

_WALL_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}$")


def parse_at(text: str, zone: ZoneInfo) -> datetime:
    """``--at``: an ISO 8601 instant with its zone, or ``YYYY-MM-DD HH:MM`` read in ``zone`` (the pipeline's)."""
    raw = text.strip()
    if _WALL_TIME.match(raw):
        return datetime.fromisoformat(raw.replace(" ", "T")).replace(tzinfo=zone)
    try:
        instant = datetime.fromisoformat(raw)
    except ValueError:
        instant = None
    if instant is None or instant.tzinfo is None:
        raise UsageError(
            f"--at {text!r} is not an ISO 8601 instant with its zone (2026-01-25T02:30:00-05:00, "
            f"2026-01-25T07:30:00Z) nor 'YYYY-MM-DD HH:MM' in {zone.key}"
        )
    return instant


def running_phasectl() -> str:
    """The ``phasectl`` that is running, as a shell word another terminal can run without this PATH: the
    script it was started as, else the one next to this Python (a venv's bin), else ``python -m phasectl``."""
    started = Path(sys.argv[0]) if sys.argv and sys.argv[0] else None
    if started is not None and started.name == "phasectl" and started.is_file():
        return shlex.quote(str(started.absolute()))  # not resolved: a venv's script stays the venv's
    beside = Path(sys.executable).parent / "phasectl"
    if beside.is_file():
        return shlex.quote(str(beside))
    return f"{shlex.quote(sys.executable)} -m phasectl"


# -- local cloud -----------------------------------------------------------------------------------
def cmd_local(ctx: Context, args: argparse.Namespace) -> int:
    """``up`` runs in the foreground until Ctrl-C (or ``local down``), then stops exactly what it started."""
    import signal
    import threading

    from deploy.local.stack import LocalStack, stop_from_state

    state_dir = Path(args.state_dir)
    cli = running_phasectl()
    if args.action == "down":
        stopped, message = stop_from_state(state_dir)
        ctx.print(message)
        return 0 if stopped else 1
    if args.accelerate < 1:
        raise UsageError(f"--accelerate must be >= 1 (got {args.accelerate:g})")
    at = getattr(args, "at", None)
    start = parse_at(at, ZoneInfo(ctx.definition.pipeline.timezone)) if at else None
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def say(text: str) -> None:
        ctx.print(text)
        ctx.out.flush()

    stack = LocalStack(
        ctx.definition,
        project=args.project,
        accelerate=args.accelerate,
        start=start,  # None: on the seeded night (sample_night.NIGHT_START), or the real now with --no-seed
        definition_path=Path(ctx.env["PIPELINE_DEFINITION"]) if ctx.env.get("PIPELINE_DEFINITION") else None,
        state_dir=state_dir,
        say=say,
        seed=args.seed,
        phasectl=cli,
    )
    try:
        stack.up()
        why = "--at" if start is not None else "on the seeded night" if args.seed else "the real now (--no-seed)"
        say(
            f"simulated clock: {ctx.times.stamp(stack.clock.start)} at start ({why}), x{stack.clock.factor:g}; "
            "status, the page and the monitor all read it from PHASECHAIN_SIMULATED_CLOCK"
        )
        say("local cloud is up; in another terminal:")
        for key, value in sorted(stack.env.items()):
            say(f"  export {key}={shlex.quote(value)}")
        say(f"stop with Ctrl-C or: {cli} local down --state-dir {shlex.quote(str(state_dir.absolute()))}")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        signal.signal(signal.SIGTERM, previous)
        deaths = list(stack.deaths)
        stack.down()
        say("local cloud stopped (only the processes it started)")
    for line in deaths:
        ctx.err.write(f"phasectl: {printable(line)}\n")
    return 1 if deaths else 0
