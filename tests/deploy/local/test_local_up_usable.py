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
from pathlib import Path
from typing import Any, cast

import pytest

import phasectl
from deploy.local.emulators import BACKENDS, Backend, LocalCloud
from deploy.local.sample_night import GAME_DATE
from deploy.local.stack import LocalStack
from shared.clock import SIMULATED_CLOCK_ENV
from shared.env import LOG_DIR_ENV, PROJECT_ENV_VARS
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
    stack = LocalStack(definition, state_dir=tmp_path)
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
        if text.startswith("phasectl "):
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
