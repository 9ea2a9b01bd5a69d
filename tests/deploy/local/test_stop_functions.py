"""``stop_functions``: the local cloud's function processes stop together, not one graceful wait after another."""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

from deploy.local.functions import FunctionProcess, stop_functions

# a server slow to stop: it ignores SIGTERM (as gunicorn waits for a request in flight)
STUBBORN = (
    "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); time.sleep(60)"
)
OBEDIENT = "import time; print('ready', flush=True); time.sleep(60)"


def start(code: str, tmp_path: Path, n: int) -> FunctionProcess:
    process = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert process.stdout is not None and process.stdout.readline().strip() == b"ready"
    return FunctionProcess(f"f{n}", 0, process, tmp_path / f"f{n}.log")


def test_stubborn_processes_are_killed_after_one_shared_timeout(tmp_path: Path) -> None:
    processes = [start(STUBBORN, tmp_path, n) for n in range(3)] + [start(OBEDIENT, tmp_path, 3)]
    started = time.monotonic()
    try:
        stop_functions(processes, timeout=2.0)
        elapsed = time.monotonic() - started
    finally:
        for p in processes:
            if p.process.poll() is None:
                p.process.kill()
                p.process.wait()
    assert all(p.process.poll() is not None for p in processes)
    # one shared timeout (~2 s), not one per stubborn process (3 x 2 s = 6 s); slack for a loaded CI
    assert elapsed < 5.0, f"{elapsed:.1f}s: the timeouts added up"
    assert processes[3].process.returncode == -15  # terminated, not killed
    assert all(p.process.returncode == -9 for p in processes[:3])


def test_already_stopped_processes_are_left_alone(tmp_path: Path) -> None:
    done = start(OBEDIENT, tmp_path, 0)
    done.process.kill()
    done.process.wait()
    stop_functions([done], timeout=1.0)
    assert done.process.returncode == -9
