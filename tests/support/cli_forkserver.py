"""Run many ``gcloud`` (or ``bq.py``) commands, each in its own process, without paying the import each time.

Run by the Google Cloud SDK's *bundled* Python, not the project's: it imports the SDK's modules.
Starting ``gcloud`` costs about a second of CPU, nearly all of it importing the SDK; checking a
couple of hundred commands that way takes minutes on two cores. This server imports the CLI
once, exactly as ``lib/gcloud.py`` (or ``bq.py``) does, then forks one child per command: each
child is a fresh process that runs the CLI's own entry point with that command's ``sys.argv``,
its stdout/stderr going to files, its exit status being the command's. Nothing of the CLI is
reimplemented; the parent never runs a command, so no command sees another's state.

    <sdk>/platform/bundledpythonunix/bin/python3 cli_forkserver.py gcloud|bq SDK_ROOT WORKERS RESULTS
        stdin:   JSON list of argv lists (without the program name)
        RESULTS: written with a JSON list of {"argv", "returncode", "output", "seconds"}, in order

The environment (no credentials, an empty ``CLOUDSDK_CONFIG``, the working directory) is the
caller's; every child inherits it.
"""

from __future__ import annotations

import json
import os
import runpy
import sys
import tempfile
import time
import traceback
from collections.abc import Callable

Entry = Callable[[list[str]], None]


def _gcloud_entry(sdk_root: str) -> Entry:
    """Import gcloud as ``lib/gcloud.py`` does; return the per-command entry (``gcloud_main.main``)."""
    script = os.path.join(sdk_root, "lib", "gcloud.py")
    boot = runpy.run_path(script, run_name="gcloud_forkserver_boot")  # sets sys.path, defines main()
    sys.path = boot["reorder_sys_path"](sys.path)
    boot["_fix_google_module"]()
    gcloud_main = boot["_import_gcloud_main"]()
    cli = gcloud_main.CreateCLI([])

    def run(argv: list[str]) -> None:
        sys.argv = ["gcloud", *argv]
        sys.exit(gcloud_main.main(gcloud_cli=cli))

    return run


def _bq_entry(sdk_root: str) -> Entry:
    """Import ``bq.py``'s modules; each child runs ``bq.py`` as ``__main__`` (its imports already loaded)."""
    script = os.path.join(sdk_root, "platform", "bq", "bq.py")
    sys.path.insert(0, os.path.dirname(script))
    runpy.run_path(script, run_name="bq_forkserver_boot")  # the imports and flag definitions, not appcommands.Run()

    def run(argv: list[str]) -> None:
        sys.argv = [script, *argv]
        runpy.run_path(script, run_name="__main__")

    return run


def _child(run: Entry, argv: list[str], out_path: str) -> None:
    fd = os.open(out_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)
    code = 0
    try:
        run(argv)
    except SystemExit as exc:
        code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        if not isinstance(exc.code, (int, type(None))):
            sys.stderr.write(f"{exc.code}\n")
    except BaseException:  # noqa: BLE001 - a crash is the command's output (exit 99); the server keeps going
        traceback.print_exc()
        code = 99
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except OSError as exc:
                os.write(2, f"forkserver: flush failed: {exc}\n".encode())
    os._exit(code)


def main() -> int:
    kind, sdk_root, workers, results_path = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
    commands: list[list[str]] = json.load(sys.stdin)
    run = _gcloud_entry(sdk_root) if kind == "gcloud" else _bq_entry(sdk_root)
    sys.stdout.flush()
    sys.stderr.flush()
    scratch = tempfile.mkdtemp(prefix=f"forkserver-{kind}-")
    results: list[dict[str, object]] = [{} for _ in commands]
    running: dict[int, tuple[int, str, float]] = {}
    pending = list(enumerate(commands))
    while pending or running:
        while pending and len(running) < workers:
            index, argv = pending.pop(0)
            out_path = os.path.join(scratch, f"{index}.out")
            started = time.monotonic()
            pid = os.fork()
            if pid == 0:
                _child(run, argv, out_path)
            running[pid] = (index, out_path, started)
        pid, status = os.wait()
        index, out_path, started = running.pop(pid)
        with open(out_path, encoding="utf-8", errors="replace") as handle:
            output = handle.read()
        os.unlink(out_path)
        results[index] = {
            "argv": commands[index],
            "returncode": os.waitstatus_to_exitcode(status),
            "output": output,
            "seconds": round(time.monotonic() - started, 3),
        }
    os.rmdir(scratch)
    with open(results_path, "w", encoding="utf-8") as handle:
        json.dump(results, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())
