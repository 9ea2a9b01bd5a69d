"""``phasectl local up`` / ``down`` as an operator runs them: a real process tree on the emulators.

One stack for the module (it takes ~20 s to start): every function is served from its bundle,
the scheduler's ticks reach the monitor through a push subscription (its heartbeat lands in
Firestore), a killed function is reported, and ``down`` stops exactly the recorded processes.
Usable by hand: the sample night is seeded and the simulated clock starts on it (the monitor's
first pass reports it), the next steps are said, and every one of them runs in another terminal
from the printed exports alone (no ``phasectl`` on its PATH).
"""

from __future__ import annotations

import json
import os
import shlex
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from deploy.local.sample_night import GAME_DATE, NIGHT_START, POSTPONED_GAME, RESCHEDULED_TO
from phasectl import NOW_ENV
from shared.clock import SIMULATED_CLOCK_ENV, SimulatedClock
from shared.env import LOG_DIR_ENV, PROJECT_ENV_VARS
from shared.pipeline.definition import DEFINITION_ENV, load_definition

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
# x60: the monitor's */10 job fires every 10 real seconds, the dispatcher's tick every second; the module's
# few minutes stay on the morning of 2026-01-25 (the 12:45 ET self-heal checkpoint is 10 real minutes away)
ACCELERATE = 60


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie child of ours counts as gone
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _wait(predicate: Any, timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


class Up:
    def __init__(self, state_dir: Path, log: Path) -> None:
        self.state_dir, self.log_path = state_dir, log
        env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST")}
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "phasectl",
                "local",
                "up",
                "--accelerate",
                str(ACCELERATE),
                "--state-dir",
                str(state_dir),
                "--project",
                "local-up-test",
            ],
            stdout=open(log, "wb"),
            stderr=subprocess.STDOUT,
            cwd=REPO,
            env=env,
        )

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def state(self) -> dict[str, Any]:
        return json.loads((self.state_dir / "state.json").read_text())


@pytest.fixture(scope="module")
def up(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Up]:
    base = tmp_path_factory.mktemp("local-up")
    stack = Up(base / "state", base / "up.log")
    try:
        _wait(lambda: "local cloud is up" in stack.output() or stack.process.poll() is not None, 180, "local up")
        assert stack.process.poll() is None, stack.output()
        yield stack
    finally:
        if stack.process.poll() is None:
            stack.process.send_signal(signal.SIGTERM)
            stack.process.wait(timeout=60)


def test_every_function_is_served_from_its_bundle(up: Up) -> None:
    state = up.state()
    assert sorted(state["functions"]) == sorted(load_definition().function_names())
    for name, info in state["functions"].items():
        assert _alive(info["pid"]), name
        cmdline = Path(f"/proc/{info['pid']}/cmdline").read_bytes().split(b"\0")
        source = Path(cmdline[cmdline.index(b"--source") + 1].decode())
        assert source.name == "main.py" and source.parent.name == name and source.parent.parent.name == "bundles"
        assert (source.parent / "requirements.txt").is_file() and (source.parent / "manifest.json").is_file()
        environ = dict(
            line.split("=", 1) for line in Path(f"/proc/{info['pid']}/environ").read_text().split("\0") if "=" in line
        )
        assert str(REPO) not in environ.get("PYTHONPATH", ""), "a bundle must not see the repository"
        with socket.create_connection(("127.0.0.1", info["port"]), timeout=5):
            pass
    assert "export PHASECHAIN_SIMULATED_CLOCK='" in up.output()  # quoted: the value contains '|'


def test_scheduler_ticks_reach_the_monitor_bundle(up: Up, monkeypatch: pytest.MonkeyPatch) -> None:
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    from shared.monitor.heartbeats import MONITOR_HEARTBEAT_ID

    state = up.state()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", state["env"]["FIRESTORE_EMULATOR_HOST"])
    client = firestore.Client(project=state["project"], credentials=AnonymousCredentials())
    doc = client.collection(load_definition().monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID)
    # x60: the */10 job fires every 10 real seconds; each tick is pushed to the monitor bundle
    # a finished pass: its last_run_at (a pass in progress may have written the document already)
    _wait(
        lambda: "last_run_at" in (doc.get().to_dict() or {}),
        90,
        "the monitor's heartbeat (scheduler → Pub/Sub push → bundle → Firestore)",
    )
    assert "phase-transition-monitor '*/10 * * * *' America/New_York" in up.output()


def printed_exports(output: str) -> dict[str, str]:
    """The ``export K=V`` lines ``local up`` printed, as a shell would read them."""
    exports = {}
    for line in output.splitlines():
        if line.strip().startswith("export "):
            key, _, value = line.strip().removeprefix("export ").partition("=")
            (exports[key],) = shlex.split(value)
    return exports


def phasectl_from_exports(up: Up, *args: str) -> subprocess.CompletedProcess[str]:
    """``phasectl`` in another terminal: nothing of the local cloud in its environment but the exports."""
    ours = {*PROJECT_ENV_VARS, LOG_DIR_ENV, DEFINITION_ENV, SIMULATED_CLOCK_ENV, NOW_ENV, "PUBSUB_PROJECT_ID"}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST") and k not in ours}
    env.update(printed_exports(up.output()))
    return subprocess.run(
        [sys.executable, "-m", "phasectl", *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        env=env,
        timeout=120,
        check=False,
    )


def test_local_up_seeds_the_sample_night_and_says_the_next_steps(up: Up) -> None:
    output = up.output()
    assert f"seeded the sample night {GAME_DATE}" in output
    assert f"next steps for the sample night {GAME_DATE}" in output
    assert f"phasectl reconcile --date {GAME_DATE}" in output
    # the heartbeat jobs ran once at start: no waiting for their first cron firing
    assert "scheduler: ran auto-retry-processor-trigger once now" in output
    assert "scheduler: ran phase-transition-monitor once now" in output
    exports = printed_exports(output)
    logs = {Path(info["log"]).parent for info in up.state()["functions"].values()}
    assert logs == {Path(exports[LOG_DIR_ENV])}  # where every function writes function-<name>.log


def alerts(up: Up, monkeypatch: pytest.MonkeyPatch) -> dict[str, dict[str, Any]]:
    """The monitor's alert collection (its active findings), read from the stack's Firestore."""
    from google.auth.credentials import AnonymousCredentials
    from google.cloud import firestore

    state = up.state()
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", state["env"]["FIRESTORE_EMULATOR_HOST"])
    client = firestore.Client(project=state["project"], credentials=AnonymousCredentials())
    return {d.id: d.to_dict() or {} for d in client.collection(load_definition().monitor.alert_collection).stream()}


def test_the_clock_starts_on_the_seeded_night_and_the_monitors_first_pass_reports_it(
    up: Up, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Not the real now: 02:30 ET the morning after the seeded night, in the exports (so ``status``, the page
    and the monitor agree), and the monitor's first pass at ``up`` already has a finding for that night."""
    output = up.output()
    exports = printed_exports(output)
    assert SimulatedClock.from_env(exports[SIMULATED_CLOCK_ENV]).start == NIGHT_START
    assert "simulated clock: 2026-01-25 02:30 ET at start (on the seeded night), x60" in output
    tz = ZoneInfo(load_definition().pipeline.timezone)
    night = [a for a in alerts(up, monkeypatch).values() if a.get("game_date") == str(GAME_DATE)]
    silent = [a for a in night if a.get("kind") == "silent" and a.get("transition") == "phase2_to_phase3"]
    assert silent, f"no silent finding for {GAME_DATE} after up: {night}"  # 7 Final games, no completion yet
    assert silent[0]["first_seen_at"].astimezone(tz).date() == RESCHEDULED_TO  # seen on the simulated morning
    assert silent[0]["command"] and silent[0]["runbook"]
    status = phasectl_from_exports(up, "status", "--date", str(GAME_DATE))
    assert "now 2026-01-25 " in status.stdout, status.stdout  # the same simulated time as the monitor's


def printed_next_steps(output: str) -> list[str]:
    """The next-step commands ``local up`` printed, one shell command each (a ``for`` loop is one)."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.startswith("next steps for "))
    commands: list[str] = []
    for line in lines[start + 1 :]:
        if not line.startswith("  "):
            break
        if commands and commands[-1].startswith("for ") and not commands[-1].endswith("done"):
            commands[-1] += "\n" + line.strip()
        else:
            commands.append(line.strip())
    return commands


def test_phasectl_works_from_the_printed_exports_alone(up: Up, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Pasted as printed into a shell that has the exports and nothing else of this repository (no venv on
    its PATH, another directory): each next step runs, and the night they report reaches the monitor."""
    commands = printed_next_steps(up.output())
    assert len(commands) >= 7 and not any(c.startswith("phasectl ") for c in commands), commands
    ours = {*PROJECT_ENV_VARS, LOG_DIR_ENV, DEFINITION_ENV, SIMULATED_CLOCK_ENV, NOW_ENV, "PUBSUB_PROJECT_ID"}
    env = {k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST") and k not in ours}
    env.update(printed_exports(up.output()), PATH="/usr/bin:/bin")
    env.pop("VIRTUAL_ENV", None)
    ran: dict[str, subprocess.CompletedProcess[str]] = {}
    for command in commands:
        if "--serve" in command:
            serve_from_the_exports(command, env, tmp_path)
            continue
        done = subprocess.run(
            ["sh", "-c", command], capture_output=True, text=True, cwd=tmp_path, env=env, timeout=180, check=False
        )
        # status 0/1 (1: a problem found), health 0/1/3 (3: degraded); never 2 (bad input, no backend) or 127
        assert done.returncode in (0, 1, 3), f"{command}\n{done.stdout}{done.stderr}"
        ran[command] = done
    published = next(done for command, done in ran.items() if command.startswith("for p in "))
    assert published.returncode == 0 and published.stdout.count("published success completion") == 5
    status = next(iter(ran.values()))  # the first step: the seeded night as up left it
    assert " status --date " in next(iter(ran)) and "phase2_to_phase3" in status.stdout
    reconcile = next(done for command, done in ran.items() if " reconcile " in command)
    # the seeded real slate: GSW@MIN postponed (Final with NULL scores), the six played games covered
    assert reconcile.returncode == 0, reconcile.stdout + reconcile.stderr
    assert "6/6 Final games covered (100.0 %); 20260124_GSW_MIN (GSW@MIN) postponed" in reconcile.stdout
    health = next(done for command, done in ran.items() if command.endswith(" health"))
    assert f"from local logs in {env[LOG_DIR_ENV]}" in health.stdout  # found the log directory and the emulators
    assert "has never run" not in health.stdout, health.stdout  # both heartbeats exist from the start
    assert (tmp_path / "local-status.html").stat().st_size > 0
    # the 2→3 coverage gate ran on the seeded schedule: the monitor's next pass (every 10 simulated
    # minutes) names the postponed game for the seeded night
    deadline = time.monotonic() + 120
    while True:
        found = [
            a
            for a in alerts(up, monkeypatch).values()
            if a.get("kind") == "game_postponed" and a.get("game_date") == str(GAME_DATE)
        ]
        if found or time.monotonic() > deadline:
            break
        time.sleep(1.0)
    assert found and POSTPONED_GAME in found[0]["message"] and "GSW@MIN" in found[0]["message"], found


def serve_from_the_exports(command: str, env: dict[str, str], cwd: Path) -> None:
    """``status --serve`` as printed (on a free port, not to collide with another page): it answers."""
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        ["sh", "-c", f"exec {command.split('#')[0].strip()} --port {port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        cwd=cwd,
        env=env,
    )
    try:
        deadline, page = time.monotonic() + 90, b""
        while not page and time.monotonic() < deadline and server.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=30) as response:
                    page = response.read()
            except OSError:
                time.sleep(0.5)
        assert page.startswith(b"<!") or b"<html" in page[:500], (server.poll(), page[:200])
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_each_service_has_a_stand_in_that_phasectl_sessions_can_read_and_script(up: Up) -> None:
    """The jobs' services: one recording stand-in each, its URL in the exports under the service's
    ``url_env`` (with the dispatcher's local ID tokens), readable and scriptable from another terminal."""
    import urllib.error
    import urllib.request

    from shared.schedules.runtime import LOCAL_TOKENS_ENV

    definition = load_definition()
    state = up.state()
    assert sorted(state["standins"]) == sorted(definition.services)
    exports = printed_exports(up.output())
    assert exports[LOCAL_TOKENS_ENV] == "1"
    for name, service in definition.services.items():
        assert service.url_env and exports[service.url_env] == state["standins"][name]["url"]
    name = "nba-phase4-precompute-processors"
    cli = [sys.executable, "-m", "deploy.local.standins", "--state-dir", str(up.state_dir)]
    scripted = subprocess.run(
        [*cli, "script", name, "/local-up-test", "503", "--then", "404"], capture_output=True, text=True, cwd=REPO
    )
    assert scripted.returncode == 0, scripted.stderr
    answers = []
    for _ in range(2):
        request = urllib.request.Request(state["standins"][name]["url"] + "/local-up-test", data=b"{}", method="POST")
        try:
            with urllib.request.urlopen(request, timeout=10) as response:
                answers.append(response.status)
        except urllib.error.HTTPError as exc:
            answers.append(exc.code)
    assert answers == [503, 404]
    read = subprocess.run([*cli, "requests", "--service", name], capture_output=True, text=True, cwd=REPO)
    assert read.returncode == 0, read.stderr
    assert f"{name} POST /local-up-test {{}} (no token) -> 503" in read.stdout
    assert Path(state["standin_log"]).is_file()


def test_a_dead_function_is_reported_and_down_stops_exactly_what_up_started(up: Up) -> None:
    state = up.state()
    victim = state["functions"]["phase3_to_phase4"]["pid"]
    os.kill(victim, signal.SIGKILL)
    _wait(lambda: "phase3_to_phase4" in up.output() and "EXITED" in up.output(), 30, "the death report")

    bystander = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(120)"])
    try:
        recorded = [info["pid"] for info in state["functions"].values()] + list(state["emulators"].values())
        done = subprocess.run(
            [sys.executable, "-m", "phasectl", "local", "down", "--state-dir", str(up.state_dir)],
            capture_output=True,
            text=True,
            cwd=REPO,
            timeout=90,
            check=False,
        )
        assert done.returncode == 0, done.stderr
        assert "stopped the local cloud" in done.stdout
        assert up.process.wait(timeout=60) == 1  # a function died while it ran: exit 1, not hidden
        _wait(lambda: not any(_alive(pid) for pid in recorded), 30, "every recorded process to stop")
        assert bystander.poll() is None, "down must stop only the processes up started"
        assert not (up.state_dir / "state.json").exists()
        assert "EXITED with code -9" in up.output()
    finally:
        bystander.kill()
        bystander.wait()


def test_down_without_a_stack_says_so(tmp_path: Path) -> None:
    done = subprocess.run(
        [sys.executable, "-m", "phasectl", "local", "down", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0
    assert "no local cloud is recorded" in done.stdout
