"""The Makefile explains itself: ``make help`` lists every target, ``make doctor`` checks the machine.

The targets are parsed from the Makefile's rule lines, so a new target without a ``## description``
fails here. ``make doctor`` runs twice: as is (every check reported, the exit code true to what it
found) and on a bare ``PATH`` with no pyenv (Java, Python 3.13 and Chromium missing: each says how to
fix it, and the required ones fail the target). Neither installs anything.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAKEFILE = ROOT / "Makefile"
MAKE = shutil.which("make")
CHECKS = ("python (the project)", "java", "pubsub emulator jar", "firestore emulator jar", "python 3.13", "chromium")

pytestmark = pytest.mark.skipif(MAKE is None, reason="GNU make is not installed")


def targets() -> set[str]:
    """Every explicit target of the Makefile: rule lines outside ``define`` blocks (variable assignments,
    ``$(VAR)`` and special ``.TARGETS`` excluded; a target-specific variable line names its target too)."""
    names: set[str] = set()
    in_define = False
    for line in MAKEFILE.read_text().splitlines():
        if re.match(r"^define\s", line):
            in_define = True
        elif line.startswith("endef"):
            in_define = False
        elif not in_define:
            match = re.match(r"^([A-Za-z][A-Za-z0-9_.-]*)\s*:(?!=)", line)
            if match:
                names.add(match.group(1))
    return names


def phony() -> set[str]:
    text = MAKEFILE.read_text()
    return {name for line in re.findall(r"^\.PHONY:(.*)$", text, re.MULTILINE) for name in line.split()}


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    assert MAKE is not None
    return subprocess.run(
        [MAKE, "--no-print-directory", "-s", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
        env=env,
    )


def test_make_help_lists_every_target_with_a_description() -> None:
    found = targets()
    assert {"help", "doctor", "demo", "test", "install", "provision", "build", "bench", "clean"} <= found
    assert phony() <= found, f"declared .PHONY but no rule: {sorted(phony() - found)}"

    result = make("help")

    assert result.returncode == 0, result.stderr
    listed = {}
    for line in result.stdout.splitlines():
        match = re.match(r"^\s+make (\S+)\s+- (.+)$", line)
        if match:
            listed[match.group(1)] = match.group(2).strip()
    assert set(listed) == found, f"missing from make help: {sorted(found - set(listed))}"
    assert all(listed.values())
    assert "make demo" in result.stdout.splitlines()[0] and "make test" in result.stdout.splitlines()[0]


def test_make_is_the_default_goal_help() -> None:
    """A bare ``make`` explains instead of doing something."""
    assert make().stdout == make("help").stdout


def _doctor_lines(stdout: str) -> dict[str, tuple[str, str]]:
    """check name → (status, text) from ``make doctor``'s ``  STATUS  name  text`` lines."""
    out = {}
    for line in stdout.splitlines():
        match = re.match(r"^\s+(OK|MISSING|WARN|INFO)\s+(.+?)\s{2,}(.*)$", line)
        if match:
            out[match.group(2).strip()] = (match.group(1), match.group(3))
    return out


def test_make_doctor_reports_every_check() -> None:
    result = make("doctor")

    lines = _doctor_lines(result.stdout)
    assert set(CHECKS) <= set(lines), result.stdout + result.stderr
    missing = [name for name, (status, _) in lines.items() if status == "MISSING"]
    assert (result.returncode == 0) == (not missing), result.stdout
    assert ("all required checks passed" in result.stdout) == (not missing)
    assert "local-bigquery" in lines  # provisioned, or what provisions it


def test_make_doctor_says_how_to_fix_what_is_missing(tmp_path: Path) -> None:
    """A bare PATH (no java, no chromium, no gcloud, no python3.13) and an empty pyenv root."""
    bare = tmp_path / "bin"
    bare.mkdir()
    env = {
        "PATH": str(bare),
        "HOME": str(tmp_path),
        "PYENV_ROOT": str(tmp_path / "pyenv"),
        "LOCALCLOUD_CACHE": str(tmp_path / "cache"),
    }
    result = make("doctor", f"PYTHON={sys.executable}", env=env)

    assert result.returncode != 0, result.stdout
    lines = _doctor_lines(result.stdout)
    assert set(CHECKS) <= set(lines), result.stdout + result.stderr
    assert lines["python (the project)"][0] == "OK"
    assert lines["java"][0] == "MISSING" and "apt-get install default-jre-headless" in lines["java"][1]
    if not any(os.access(p, os.X_OK) for p in ("/usr/bin/python3.13", "/usr/local/bin/python3.13")):
        status, text = lines["python 3.13"]
        assert status == "MISSING" and "pyenv install 3.13" in text and "LOCAL_BIGQUERY_PYTHON" in text
    for jar in ("pubsub emulator jar", "firestore emulator jar"):  # found in the usual SDK places, or named
        status, text = lines[jar]
        assert status == "OK" or "google-cloud-cli-" in text, text
    assert lines["chromium"][0] == "WARN" and "make browser" in lines["chromium"][1]  # make test installs it
    assert lines["local-bigquery"][0] == "INFO" and "make provision" in lines["local-bigquery"][1]
    assert "required check(s) failed" in result.stdout and "java" in result.stdout.splitlines()[-1]
