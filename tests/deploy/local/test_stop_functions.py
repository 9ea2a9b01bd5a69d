"""``stop_functions``: the local cloud's function processes stop together, not one graceful wait after another."""

from __future__ import annotations

import subprocess
import sys
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


def test_stubborn_processes_are_killed_and_obedient_ones_terminated(tmp_path: Path) -> None:
    processes = [start(STUBBORN, tmp_path, n) for n in range(3)] + [start(OBEDIENT, tmp_path, 3)]
    try:
        stop_functions(processes, timeout=2.0)
    finally:
        for p in processes:
            if p.process.poll() is None:
                p.process.kill()
                p.process.wait()
    assert all(p.process.poll() is not None for p in processes)
    assert processes[3].process.returncode == -15  # terminated, not killed
    assert all(p.process.returncode == -9 for p in processes[:3])


class SimulatedClock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class StubbornProcess:
    """Ignores SIGTERM: every wait before the kill uses its whole timeout on the simulated clock."""

    def __init__(self, clock: SimulatedClock) -> None:
        self.clock = clock
        self.returncode: int | None = None
        self.waits: list[float] = []

    def poll(self) -> int | None:
        return self.returncode

    def terminate(self) -> None:
        pass

    def kill(self) -> None:
        self.returncode = -9

    def wait(self, timeout: float | None = None) -> int:
        if self.returncode is None:
            self.waits.append(float(timeout or 0.0))
            self.clock.now += timeout or 0.0
            raise subprocess.TimeoutExpired("stubborn", timeout or 0.0)
        return self.returncode


def test_stubborn_processes_share_one_timeout(tmp_path: Path) -> None:
    """Three servers that ignore SIGTERM are killed after one shared 2 s timeout, not 3 x 2 s."""
    clock = SimulatedClock()
    stubborn = [StubbornProcess(clock) for _ in range(3)]
    processes = [FunctionProcess(f"f{n}", 0, p, tmp_path / f"f{n}.log") for n, p in enumerate(stubborn)]  # type: ignore[arg-type]
    stop_functions(processes, timeout=2.0, monotonic=clock)
    assert [p.waits for p in stubborn] == [[2.0], [0.0], [0.0]]
    assert clock.now == 2.0
    assert all(p.returncode == -9 for p in stubborn)


def test_already_stopped_processes_are_left_alone(tmp_path: Path) -> None:
    done = start(OBEDIENT, tmp_path, 0)
    done.process.kill()
    done.process.wait()
    stop_functions([done], timeout=1.0)
    assert done.process.returncode == -9
