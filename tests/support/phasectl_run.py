"""Run ``phasectl`` as a subprocess against a rig's isolated definition on the emulators."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from tests.support.definition_files import write_isolated_definition
from tests.support.rig import Rig

REPO = Path(__file__).resolve().parents[2]
Run = Callable[..., subprocess.CompletedProcess[str]]


def runner(env: dict[str, str], timeout: float = 120) -> Run:
    """A ``run(*args)`` for ``phasectl`` as a subprocess with exactly ``env``."""

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "phasectl", *args],
            cwd=REPO,
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            check=False,
        )

    return run


def phasectl_runner(rig: Rig, directory: Path, now: str) -> Run:
    """A ``run(*args)`` for ``phasectl`` with the rig's definition, its emulators and a fixed "now"."""
    definition = write_isolated_definition(rig.suffix, directory / "pipeline.toml")
    env = {
        **{k: v for k, v in os.environ.items() if k != "PHASECTL_LOG_DIR"},
        **rig.cloud.env(),
        "PIPELINE_DEFINITION": str(definition),
        "PHASECTL_NOW": now,
        "USER": "ops-tester",
    }
    return runner(env)
