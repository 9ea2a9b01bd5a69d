"""``phasectl deploy plan|apply|verify|secret``: Google Cloud."""

from __future__ import annotations

import argparse
import getpass
import io
import sys
from collections.abc import Mapping
from typing import Any, BinaryIO

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
        season=(lambda p: read_season_overrides(ctx, p)) if args.action == "verify" else None,
        now=ctx.clock.now(),
    )


def read_season_overrides(ctx: Context, project: str) -> Mapping[str, Any] | None:
    """The operator's season overrides (``phasectl season pause|resume``) of ``project``: the one
    Firestore document verify reads (``gcloud`` cannot read a document). Raises when Firestore cannot
    be reached or the login is missing (verify then says so in an informational row)."""
    from phasectl.connect import FIRESTORE
    from shared.gcp import firestore_client
    from shared.schedules.plan import SEASON_DOC

    ctx.backends.ensure(FIRESTORE)  # Application Default Credentials (or the emulator), bounded
    collection = firestore_client(project).collection(ctx.definition.dispatcher.jobs_collection)
    snap = collection.document(SEASON_DOC).get(timeout=ctx.timeout)
    return snap.to_dict() if snap.exists else None
