"""``make doctor``: what ``make demo`` and ``make test`` need on this machine, each OK or how to fix it.

It finds the emulator jars and Python 3.13 exactly as ``make provision`` does (``deploy.local.emulators``)
and uses the standard library only, so it runs before the venv exists: ``python3 -m deploy.local.doctor``
from the repository root. Exit 1 when a required check fails; Chromium is a warning, since ``make test``
installs it itself (``make browser``).
"""

from __future__ import annotations

import shutil
import subprocess
import sys
from types import ModuleType


def first_line(argv: list[str]) -> tuple[int, str]:
    """The exit code and the first meaningful output line of ``argv`` (stdout, then stderr)."""
    out = subprocess.run(argv, capture_output=True, text=True, timeout=60, check=False)
    text = out.stdout + "\n" + out.stderr
    lines = [line for line in text.splitlines() if line.strip() and not line.startswith("/")]
    return out.returncode, (lines[0].strip() if lines else "")


class Report:
    """The ``  STATUS  what  text`` lines, and which required checks failed."""

    def __init__(self) -> None:
        self.failed: list[str] = []

    def __call__(self, status: str, what: str, text: str) -> None:
        print(f"  {status:<7} {what:<24} {text}")  # noqa: T201 - this module is a command's output
        if status == "MISSING":
            self.failed.append(what)


def program(report: Report, name: str, version_args: list[str], failing: str, fix: str) -> None:
    """A program on ``PATH`` that prints its version: OK with that line, else ``failing`` with ``fix``."""
    found = shutil.which(name)
    if found is None:
        report(failing, name, f"not on PATH: {fix}")
        return
    code, line = first_line([found, *version_args])
    if code == 0:
        report("OK", name, f"{line} ({found})")
    else:
        report(failing, name, f"{found} {' '.join(version_args)} failed ({line}): {fix}")


def main() -> int:
    report = Report()
    print("make doctor: what make demo and make test need on this machine")  # noqa: T201
    found = ".".join(map(str, sys.version_info[:3]))
    if sys.version_info >= (3, 11):  # noqa: UP036 - the machine's python3 runs this, whatever its version
        report("OK", "python (the project)", f"Python {found} ({sys.executable}): the project needs >= 3.11")
    else:
        report(
            "MISSING",
            "python (the project)",
            f"Python {found} ({sys.executable}) is older than 3.11: install Python >= 3.11 and run "
            "make PYTHON=/path/to/python3.x ...",
        )

    emulators: ModuleType | None
    try:
        from deploy.local import emulators
    except Exception as exc:  # noqa: BLE001 - an old Python or a wrong directory: reported, not a traceback
        emulators = None
        report(
            "MISSING",
            "deploy.local",
            f"cannot import deploy.local.emulators ({type(exc).__name__}: {exc}): "
            "run make doctor from the repository root",
        )

    program(
        report,
        "java",
        ["-version"],
        "MISSING",
        "the Pub/Sub and Firestore emulators need a Java 11+ runtime: apt-get install default-jre-headless",
    )

    if emulators is not None:
        jars = (("pubsub emulator jar", emulators.pubsub_jar), ("firestore emulator jar", emulators.firestore_jar))
        for what, find in jars:
            try:
                jar = find()
            except Exception as exc:  # noqa: BLE001 - every failure to find it is reported, with how to fix it
                report("MISSING", what, str(exc))
            else:
                report("OK", what, str(jar))
        try:
            python313 = emulators.find_python313()
        except Exception as exc:  # noqa: BLE001 - as above
            report("MISSING", "python 3.13", str(exc))
        else:
            _, line = first_line([python313, "--version"])
            version = emulators.LOCAL_BIGQUERY_VERSION
            report("OK", "python 3.13", f"{line} ({python313}): local-bigquery {version} runs on it")
        root = emulators.default_cache_dir() / f"local-bigquery-{emulators.LOCAL_BIGQUERY_VERSION}"
        if (root / ".provisioned").is_file():
            report("OK", "local-bigquery", f"provisioned in {root}")
        else:
            report(
                "INFO",
                "local-bigquery",
                f"not provisioned yet: make provision (run by make demo and make test) installs it in {root}",
            )

    program(
        report,
        "chromium",
        ["--version"],
        "WARN",
        "make browser installs Debian's chromium (apt-get install chromium); make test runs it itself",
    )

    if report.failed:
        print(f"make doctor: {len(report.failed)} required check(s) failed: " + ", ".join(report.failed))  # noqa: T201
        return 1
    print("make doctor: all required checks passed")  # noqa: T201
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
