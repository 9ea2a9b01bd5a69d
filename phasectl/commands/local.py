"""``phasectl local up|down``: the whole topology on the local emulators."""

from __future__ import annotations

import argparse
from pathlib import Path

from phasectl.core import Context, UsageError
from shared.printable import printable


# -- local cloud -----------------------------------------------------------------------------------
def cmd_local(ctx: Context, args: argparse.Namespace) -> int:
    """``up`` runs in the foreground until Ctrl-C (or ``local down``), then stops exactly what it started."""
    import shlex
    import signal
    import threading

    from deploy.local.stack import LocalStack, stop_from_state

    state_dir = Path(args.state_dir)
    if args.action == "down":
        stopped, message = stop_from_state(state_dir)
        ctx.print(message)
        return 0 if stopped else 1
    if args.accelerate < 1:
        raise UsageError(f"--accelerate must be >= 1 (got {args.accelerate:g})")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def say(text: str) -> None:
        ctx.print(text)
        ctx.out.flush()

    stack = LocalStack(
        ctx.definition,
        project=args.project,
        accelerate=args.accelerate,
        definition_path=Path(ctx.env["PIPELINE_DEFINITION"]) if ctx.env.get("PIPELINE_DEFINITION") else None,
        state_dir=state_dir,
        say=say,
        seed=args.seed,
    )
    try:
        stack.up()
        say("local cloud is up; in another terminal:")
        for key, value in sorted(stack.env.items()):
            say(f"  export {key}={shlex.quote(value)}")
        say(f"stop with Ctrl-C or: phasectl local down --state-dir {state_dir}")
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
