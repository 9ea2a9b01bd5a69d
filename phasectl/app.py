"""``main``: parse, check the backends, run the command, map failures to one line and an exit code."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable, Mapping, Sequence
from typing import TextIO

from phasectl.connect import (
    BackendError,
    failure_line,
)
from phasectl.core import PREPARE_FIRST, Context, UsageError, _needs, cli_clock
from phasectl.parser import build_parser
from shared.errors import PipelineError
from shared.pipeline.definition import load_definition
from shared.printable import one_line, printable


def _one_line(text: str) -> str:
    return printable(one_line(text))


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``phasectl``; returns the exit code (0 ok, 1 problem found, 2 bad input or error).

    ``environ`` supplies the project, ``PIPELINE_DEFINITION``, ``PHASECTL_NOW`` and ``USER``;
    the client factories still read the emulator hosts from ``os.environ`` (run it as a process).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    env = dict(os.environ if environ is None else environ)
    ctx: Context | None = None
    try:
        parser = build_parser(env)
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if getattr(args, "func", None) is None:  # a bare phasectl, or a group without its subcommand
            help_parser: argparse.ArgumentParser = getattr(args, "help_parser", parser)
            help_parser.print_help(err)
            err.write(f"\n{help_parser.prog}: error: give a command (listed above)\n")
            return 2
        from shared.structured_log import configure, reset_configuration

        configure(stream=err, level="WARNING")  # the services' logs never mix with the output
        try:
            definition = load_definition(env.get("PIPELINE_DEFINITION") or None)
            ctx = Context(
                definition,
                cli_clock(env),
                env,
                out,
                err,
                timeout=args.timeout,
                needs=_needs(args),
                utc=bool(getattr(args, "utc", False)),
            )
            if args.command_path in PREPARE_FIRST:
                ctx.prepare()
            func: Callable[[Context, argparse.Namespace], int] = args.func
            return func(ctx, args)
        finally:
            if ctx is not None:
                ctx.close()
            reset_configuration()  # an in-process caller (a test, a notebook) gets its logging back
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    except BrokenPipeError:  # `phasectl status | head`: the reader has what it wanted; no error line
        _quiet_stdout(out)
        return 0
    except (UsageError, BackendError) as exc:
        err.write(f"phasectl: error: {_one_line(str(exc))}\n")
        return 2
    except PipelineError as exc:
        err.write(f"phasectl: error: {_backend_failure(exc, ctx) or _one_line(exc.message)}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - a backend error is one line and exit 2, not a traceback
        line = _backend_failure(exc, ctx) or f"{type(exc).__name__}: {_one_line(str(exc))[:500]}"
        err.write(f"phasectl: error: {line}\n")
        return 2


def _quiet_stdout(out: TextIO) -> None:
    """After a closed pipe: the interpreter's final flush of stdout must not fail again."""
    if out is sys.stdout:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)


def _backend_failure(exc: BaseException, ctx: Context | None) -> str | None:
    """A deadline that ran out or a backend that went away, as one line naming the backend."""
    if ctx is None:
        return None
    line = failure_line(exc, ctx.timeout, ctx.backends.reached)
    return None if line is None else _one_line(line)[:600]
