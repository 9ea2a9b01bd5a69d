"""Run function entrypoints in real ``functions-framework`` processes, wired by Pub/Sub push.

This is what a direct Pub/Sub trigger does in the cloud: a push subscription on the
source topic POSTs each message to the function's URL; a non-2xx reply is redelivered.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

from deploy.local.emulators import BIND_ATTEMPTS, free_port, port_was_taken
from deploy.spec import RUNTIME_ENV

REPO_ROOT = Path(__file__).resolve().parents[2]
FUNCTIONS_DIR = REPO_ROOT / "functions"


@dataclass
class FunctionProcess:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    log_path: Path

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/"

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)

    def log_tail(self, chars: int = 3000) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return "<no log>"


def stop_functions(
    processes: Iterable[FunctionProcess], timeout: float = 10.0, *, monotonic: Callable[[], float] = time.monotonic
) -> None:
    """Stop every process at once: all are asked to terminate first, then each gets what is left of
    ``timeout`` before it is killed (a busy server's graceful stop no longer adds up, one after another).
    ``monotonic`` is the clock the shared deadline is measured on (tests give a simulated one)."""
    running = [p for p in processes if p.process.poll() is None]
    for fn in running:
        fn.process.terminate()
    deadline = monotonic() + timeout
    for fn in running:
        try:
            fn.process.wait(timeout=max(0.0, deadline - monotonic()))
        except subprocess.TimeoutExpired:
            fn.process.kill()
            fn.process.wait(timeout=10)


def start_function(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    source_dir: Path | None = None,
    target: str = "handle",
    startup_timeout: float = 60.0,
    isolated: bool = False,
    append: bool = False,
) -> FunctionProcess:
    """Start ``functions/<name>/main.py`` in its own framework process (relaunched if its port was taken).

    ``isolated``: ``source_dir`` is a built bundle and the repository is not put on ``PYTHONPATH``,
    so the process imports only what the bundle ships (its own ``shared`` first on ``sys.path``).
    ``append``: add to the function's log (a second process of the function) instead of starting it anew.
    """
    for attempt in range(1, BIND_ATTEMPTS + 1):
        try:
            return _start_function_once(
                name,
                env,
                log_dir,
                source_dir=source_dir,
                target=target,
                startup_timeout=startup_timeout,
                isolated=isolated,
                append=append,
            )
        except FunctionStartError as exc:
            if attempt == BIND_ATTEMPTS or not port_was_taken(exc.log):
                raise
    raise AssertionError("unreachable")


class FunctionStartError(RuntimeError):
    def __init__(self, message: str, log: str) -> None:
        super().__init__(message)
        self.log = log


def _start_function_once(
    name: str,
    env: dict[str, str],
    log_dir: Path,
    *,
    source_dir: Path | None = None,
    target: str = "handle",
    startup_timeout: float = 60.0,
    isolated: bool = False,
    append: bool = False,
) -> FunctionProcess:
    source = (source_dir or FUNCTIONS_DIR / name) / "main.py"
    port = free_port()
    log_path = log_dir / f"function-{name}.log"
    log_dir.mkdir(parents=True, exist_ok=True)
    argv = [
        sys.executable,
        "-m",
        "functions_framework",
        "--target",
        target,
        "--source",
        str(source),
        "--signature-type",
        "cloudevent",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
    ]
    paths = (str(source.parent),) if isolated else (str(source.parent), str(REPO_ROOT), env.get("PYTHONPATH"))
    pythonpath = os.pathsep.join(p for p in paths if p)
    if not append:
        log_path.write_bytes(b"")
    with open(log_path, "ab") as log:  # O_APPEND: a restarted process and the one it replaces share the log
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            # several functions-framework (gunicorn) processes on one machine: no shared control socket
            env={
                **os.environ,
                **dict(RUNTIME_ENV),  # as deployed (deploy.spec)
                **env,
                "PYTHONPATH": pythonpath,
                "GUNICORN_CMD_ARGS": "--no-control-socket",
            },
            cwd=source.parent,
        )
    fn = FunctionProcess(name, port, proc, log_path)
    deadline = time.monotonic() + startup_timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise FunctionStartError(f"function {name} exited with {proc.returncode}:\n{fn.log_tail()}", fn.log_tail())
        with socket.socket() as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return fn
        time.sleep(0.1)
    fn.stop()
    raise FunctionStartError(
        f"function {name} did not listen on {port} within {startup_timeout:.0f}s:\n{fn.log_tail()}", fn.log_tail()
    )
