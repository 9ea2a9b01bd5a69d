"""``phasectl deploy plan|apply|verify|secret``: Google Cloud."""

from __future__ import annotations

import argparse
import getpass
import io
import sys
from typing import BinaryIO

from phasectl.core import Context


# -- deploy --------------------------------------------------------------------------------------
def cmd_deploy(ctx: Context, args: argparse.Namespace) -> int:
    from deploy.cli import run_deploy

    project = args.project if args.project is not None else ctx.project  # an empty --project is an error
    stdin: BinaryIO | None = None
    if args.action == "secret":
        if sys.stdin is None or sys.stdin.isatty():  # typed, not piped: do not echo it
            stdin = io.BytesIO(getpass.getpass("secret value (not echoed): ", stream=ctx.err).encode())
        else:
            stdin = sys.stdin.buffer
    return run_deploy(
        ctx.definition,
        args.action,
        project,
        out=ctx.out,
        err=ctx.err,
        region=args.region,
        function=args.function,
        env=ctx.env,
        operands=args.operands,
        stdin=stdin,
    )
