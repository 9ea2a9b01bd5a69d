"""``phasectl local up`` usable by hand, without emulators.

The exports it prints (``LocalStack.env``) hold every variable ``phasectl`` reads: the set is
derived by scanning the ``phasectl`` package and the client factories under ``shared/`` for the variables
they read, so a new one fails here until the stack exports it. The next steps it says are real
``phasectl`` commands for the seeded night. (``test_local_up.py`` runs them against a real stack.)
"""

from __future__ import annotations

import re
import shlex
import subprocess
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, cast
from zoneinfo import ZoneInfo

import pytest

import phasectl
from deploy.local.emulators import BACKENDS, Backend, LocalCloud
from deploy.local.sample_night import GAME_DATE, NIGHT_START
from deploy.local.stack import LocalStack
from shared.clock import SIMULATED_CLOCK_ENV, FixedClock, SimulatedClock, today_et
from shared.env import LOG_DIR_ENV, PROJECT_ENV_VARS
from shared.monitor.transition_dates import silent_after
from shared.orchestration.engine import select_mode
from shared.pipeline.definition import DEFINITION_ENV, PipelineDefinition, load_definition

SHARED = Path(__file__).resolve().parents[3] / "shared"
# read by phasectl but not the local cloud's to give: the operator's name, and a fixed clock for tests
# (the stack exports its simulated clock, which phasectl reads when PHASECTL_NOW is unset)
NOT_EXPORTED = {"USER", phasectl.NOW_ENV}

_READS = re.compile(r"""(?:environ|env)(?:\.get\(|\[)\s*["']([A-Z][A-Z0-9_]*)["']""")
_CONSTANT = re.compile(r"""^[A-Z][A-Z0-9_]*_ENV(?::[^=]+)? = ["']([A-Z][A-Z0-9_]*)["']""", re.MULTILINE)
_NAMED_CONSTANT = re.compile(r"""^([A-Z][A-Z0-9_]*_ENV)(?::[^=]+)? = ["']([A-Z][A-Z0-9_]*)["']""", re.MULTILINE)
_EMULATOR = re.compile(r"""["']([A-Z][A-Z0-9_]*_EMULATOR_HOST)["']""")


def phasectl_reads() -> set[str]:
    """Every variable ``phasectl`` reads: its own and its command modules' (``env.get("X")``, ``X_ENV = "X"``),
    the core's ``X_ENV`` constants it names, the emulator hosts the client factories read, the project and
    the simulated clock."""
    names: set[str] = set()
    own_text = ""
    for path in Path(phasectl.__file__).parent.rglob("*.py"):  # phasectl's package: its modules and commands
        own = path.read_text()
        own_text += own
        names |= set(_READS.findall(own)) | set(_CONSTANT.findall(own))
    for path in SHARED.rglob("*.py"):
        text = path.read_text()
        names |= {n for n in _EMULATOR.findall(text) if n in set(_READS.findall(text)) | set(_CONSTANT.findall(text))}
        names |= {value for name, value in _NAMED_CONSTANT.findall(text) if re.search(rf"\b{name}\b", own_text)}
    return names | {PROJECT_ENV_VARS[0], SIMULATED_CLOCK_ENV}


def fake_cloud(tmp_path: Path) -> LocalCloud:
    """A ``LocalCloud`` whose backends look started (nothing runs): its ``env()`` is the real one."""
    cloud = LocalCloud(project="usable-test", workdir=tmp_path)
    process = cast(Any, None)
    cloud.backends = {
        name: Backend(name, 40000 + i, process, tmp_path / f"{name}.log") for i, name in enumerate(BACKENDS)
    }
    return cloud


@pytest.fixture
def definition() -> PipelineDefinition:
    return load_definition()


def test_the_scan_finds_what_phasectl_is_known_to_read() -> None:
    names = phasectl_reads()
    expected = {
        "GOOGLE_CLOUD_PROJECT",
        "FIRESTORE_EMULATOR_HOST",
        "PUBSUB_EMULATOR_HOST",
        "BIGQUERY_EMULATOR_HOST",
        LOG_DIR_ENV,
        DEFINITION_ENV,
        SIMULATED_CLOCK_ENV,
    }
    assert expected <= names, expected - names


def test_the_exports_hold_every_variable_phasectl_reads(tmp_path: Path, definition: PipelineDefinition) -> None:
    path = tmp_path / "pipeline.toml"
    stack = LocalStack(definition, project="usable-test", definition_path=path, state_dir=tmp_path / "state")
    env = stack.environment(fake_cloud(tmp_path))
    missing = phasectl_reads() - NOT_EXPORTED - set(env)
    assert not missing, f"local up's exports lack {sorted(missing)}"
    assert env[LOG_DIR_ENV] == str(tmp_path / "functions")  # where start_function writes the logs
    assert env[DEFINITION_ENV] == str(path) and env["GOOGLE_CLOUD_PROJECT"] == "usable-test"


def test_without_a_definition_file_phasectl_uses_the_packaged_one_like_the_functions(
    tmp_path: Path, definition: PipelineDefinition
) -> None:
    env = LocalStack(definition, state_dir=tmp_path).environment(fake_cloud(tmp_path))
    assert DEFINITION_ENV not in env
    assert not phasectl_reads() - NOT_EXPORTED - {DEFINITION_ENV} - set(env)


def test_the_exports_as_printed_are_valid_shell(tmp_path: Path, definition: PipelineDefinition) -> None:
    """``local up`` prints ``export K=<shlex.quote(V)>`` (the simulated clock's value has a ``|``)."""
    env = LocalStack(definition, state_dir=tmp_path).environment(fake_cloud(tmp_path))
    script = "".join(f"export {k}={shlex.quote(v)}\n" for k, v in sorted(env.items()))
    names = " ".join(f'"${k}"' for k in sorted(env))
    done = subprocess.run(
        ["sh", "-c", f"{script}printf '%s\\n' {names}"], capture_output=True, text=True, check=True, env={}
    )
    assert done.stdout.splitlines() == [v for _, v in sorted(env.items())]


def test_by_hand_it_seeds_and_says_next_steps_programmatic_callers_opt_in(
    tmp_path: Path, definition: PipelineDefinition
) -> None:
    by_hand = LocalStack(definition, state_dir=tmp_path)  # what phasectl local up builds
    assert by_hand.interactive and by_hand.seed
    assert not LocalStack(definition, state_dir=tmp_path, seed=False).seed  # --no-seed
    demo = LocalStack(definition)  # the demo and the tests seed their own nights
    assert not demo.interactive and not demo.seed
    assert LocalStack(definition, seed=True).seed


def test_the_next_steps_are_real_phasectl_commands(tmp_path: Path, definition: PipelineDefinition) -> None:
    cli = "'/opt/my venv/bin/phasectl'"  # local up: the running phasectl's absolute path, quoted for the shell
    stack = LocalStack(definition, state_dir=tmp_path, phasectl=cli)
    stack.seeded = GAME_DATE
    lines = stack.next_steps()
    assert str(GAME_DATE) in lines[0]
    first = definition.transitions[0]
    loop = next(line for line in lines if line.strip().startswith("for p in "))
    processors = loop.strip().removeprefix("for p in ").removesuffix("; do").split()
    assert processors == list(first.expected)
    parser = phasectl.build_parser()
    commands = []
    for line in lines[1:]:
        text = line.split("#")[0].strip().removesuffix("; done")
        if text.startswith("for p in "):
            continue
        assert text.startswith(f"{cli} "), f"not the running phasectl: {line}"  # never a bare `phasectl`
        text = "phasectl " + text.removeprefix(f"{cli} ")
        commands += [text.replace('"$p"', p) for p in processors] if '"$p"' in text else [text]
    verbs = set()
    for command in commands:
        args = parser.parse_args(shlex.split(command)[1:])  # raises (UsageError) on a wrong command
        verbs.add(args.command)
        if getattr(args, "date", None) is not None:
            assert args.date == str(GAME_DATE), command
    assert {"status", "publish", "reconcile", "health"} <= verbs
    assert any("--html" in c for c in commands)  # the status page


def test_without_a_seeded_night_the_next_steps_use_yesterday(tmp_path: Path, definition: PipelineDefinition) -> None:
    lines = LocalStack(definition, state_dir=tmp_path, seed=False).next_steps()
    assert "--date YESTERDAY" in lines[1]


# -- the simulated clock starts on the seeded night ---------------------------------------------------
def test_by_hand_the_clock_starts_on_the_seeded_night(tmp_path: Path, definition: PipelineDefinition) -> None:
    """``local up`` seeds 2026-01-24 and starts at ``NIGHT_START``; ``--no-seed`` keeps the real now,
    ``--at`` (``start``) wins over both; ``env`` (the printed exports) carries that clock."""
    by_hand = LocalStack(definition, state_dir=tmp_path)
    assert by_hand.clock.start == NIGHT_START
    assert SimulatedClock.from_env(by_hand.environment(fake_cloud(tmp_path))[SIMULATED_CLOCK_ENV]).start == NIGHT_START
    before = datetime.now(UTC)
    unseeded = LocalStack(definition, state_dir=tmp_path, seed=False)
    assert before <= unseeded.clock.start <= datetime.now(UTC)
    chosen = datetime(2026, 3, 8, 7, 0, tzinfo=UTC)
    assert LocalStack(definition, state_dir=tmp_path, seed=False, start=chosen).clock.start == chosen
    assert LocalStack(definition, state_dir=tmp_path, start=chosen).clock.start == chosen


def test_at_the_start_the_monitor_sees_the_seeded_night(definition: PipelineDefinition) -> None:
    """Why ``NIGHT_START``: the seeded date is yesterday (3→4 in its overnight mode), inside the monitor's
    lookback, past the first transition's silent line (its first pass reports the night), before its SLO."""
    clock, tz = FixedClock(NIGHT_START), ZoneInfo(definition.pipeline.timezone)
    today = today_et(clock, tz)
    assert today == GAME_DATE + timedelta(days=1)
    assert today - timedelta(days=definition.monitor.lookback_days) <= GAME_DATE < today
    assert select_mode(definition.transition("phase3_to_phase4"), GAME_DATE, clock, tz)[0] == "overnight"
    first = definition.transitions[0]
    assert silent_after(GAME_DATE, tz, first.stuck_after_minutes) < NIGHT_START
    assert NIGHT_START.astimezone(tz).strftime("%Y-%m-%d %H:%M") == "2026-01-25 02:30"


def test_the_scheduler_from_the_start_fires_each_slot_once_and_nothing_before_it(
    definition: PipelineDefinition,
) -> None:
    """At the seeded night's start no firing before it is made up (a simulated clock far from the real now
    must not be a flood): each job fires at its cron's slots after the start, once each, in order; the
    dispatcher's first tick finds only the slots of its catch-up window."""
    from deploy.local.scheduler import CronExpression, ScheduledJob, SchedulerEmulator
    from deploy.spec import build_spec
    from shared.schedules.plan import due_slots

    spec = build_spec(definition, "usable-test")
    jobs = [
        ScheduledJob(j.name, CronExpression.parse(j.cron), j.topic, ZoneInfo(j.timezone), j.body.encode())
        for j in spec.jobs
    ]
    clock = SimulatedClock(NIGHT_START, 3600.0)  # a simulated hour per real second
    published: list[tuple[str, datetime]] = []
    scheduler = SchedulerEmulator(jobs, lambda job, at: published.append((job.name, at)), clock)
    scheduler.start()
    try:
        deadline = time.monotonic() + 60
        while sum(1 for name, _ in published if name == definition.dispatcher.job) < 60:
            assert time.monotonic() < deadline, f"the scheduler fired only {published}"
            time.sleep(0.05)
    finally:
        scheduler.stop()
    last = max(at for _, at in published)
    for job in jobs:
        fired = [at for name, at in published if name == job.name]
        expected, moment = [], NIGHT_START
        while (moment := job.next_after(moment)) <= last:
            expected.append(moment)
        # from the start on, each slot once, in order (the emulator may have stopped before a firing at `last`)
        assert fired == expected[: len(fired)] and len(expected) - len(fired) <= 1, job.name
        assert all(at > NIGHT_START for at in fired), job.name
    first_tick = min(at for name, at in published if name == definition.dispatcher.job)
    slots = due_slots(definition, first_tick)
    window = timedelta(minutes=definition.dispatcher.catch_up_minutes)
    assert all(first_tick - window <= s.at <= first_tick for s in slots)
    assert len(slots) <= len(definition.all_jobs())  # a handful, not a night's worth of catch-up


def test_at_reads_an_instant_with_its_zone_or_a_wall_time_in_the_pipelines_zone() -> None:
    from phasectl.commands.local import parse_at
    from phasectl.core import UsageError

    zone = ZoneInfo("America/New_York")
    expected = datetime(2026, 1, 25, 7, 30, tzinfo=UTC)
    assert parse_at("2026-01-25 02:30", zone) == expected  # ET in January: UTC-05:00
    assert parse_at("2026-01-25T02:30", zone) == expected
    assert parse_at("2026-01-25T07:30:00Z", zone) == expected
    assert parse_at("2026-01-25T02:30:00-05:00", zone) == expected
    assert parse_at("2026-07-04 02:30", zone) == datetime(2026, 7, 4, 6, 30, tzinfo=UTC)  # EDT
    for bad in ("2026-01-25T02:30:00", "yesterday", "2026-01-25", "02:30", ""):
        with pytest.raises(UsageError, match="--at"):
            parse_at(bad, zone)


def test_local_up_rejects_a_bad_at_in_one_line_with_exit_2(tmp_path: Path) -> None:
    import sys

    done = subprocess.run(
        [sys.executable, "-m", "phasectl", "local", "up", "--at", "tonight", "--state-dir", str(tmp_path)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 2, done.stdout + done.stderr
    assert done.stderr.count("\n") == 1 and "--at 'tonight'" in done.stderr
    assert not (tmp_path / "state.json").exists()  # nothing was started


def test_the_running_phasectl_is_named_by_an_absolute_path(monkeypatch: pytest.MonkeyPatch) -> None:
    """What the next steps call: the script that runs (``.venv/bin/phasectl local up``), or, run as
    ``python -m phasectl``, the script beside that Python; never a bare ``phasectl`` (not on PATH)."""
    import sys

    from phasectl.commands import local

    venv_script = Path(sys.executable).parent / "phasectl"
    assert venv_script.is_file(), "the venv installs the phasectl script"
    monkeypatch.setattr(sys, "argv", [str(venv_script), "local", "up"])
    assert shlex.split(local.running_phasectl()) == [str(venv_script)]
    monkeypatch.setattr(sys, "argv", ["/no/such/dir/__main__.py", "local", "up"])  # python -m phasectl
    assert shlex.split(local.running_phasectl()) == [str(venv_script)]
