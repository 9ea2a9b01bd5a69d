"""The tree stays livable: no backup files tracked, no runtime-core module over 500 lines.

Git history is the record of a change: a ``*.orig`` or ``*.rej`` left by a merge or a refactor is
noise a reader must rule out (L31: a 1,300-line ``.orig`` backup was committed with a refactor). The
modules that functions ship (``shared/``) stay small enough to read in one sitting.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_CORE_MODULE_LINES = 500
BACKUP_SUFFIXES = (".orig", ".rej", ".bak", ".swp", "~")


def tracked_files() -> list[str]:
    done = subprocess.run(["git", "ls-files"], cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        pytest.skip(f"not a git checkout: {done.stderr.strip()}")
    return done.stdout.splitlines()


def test_l31_no_backup_files_are_tracked() -> None:
    backups = [name for name in tracked_files() if name.endswith(BACKUP_SUFFIXES)]
    assert not backups, f"backup files tracked (git history is the record): {backups}"


def test_no_module_of_the_runtime_core_is_over_500_lines() -> None:
    sizes = {p.relative_to(ROOT).as_posix(): len(p.read_text().splitlines()) for p in (ROOT / "shared").rglob("*.py")}
    over = {name: lines for name, lines in sizes.items() if lines > MAX_CORE_MODULE_LINES}
    assert not over, f"modules of shared/ over {MAX_CORE_MODULE_LINES} lines: {over}"
