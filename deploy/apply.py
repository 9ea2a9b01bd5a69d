"""``phasectl deploy apply`` and ``verify``: run the plan idempotently, then check what is deployed.

Both talk to Google Cloud only through the ``gcloud`` and ``bq`` commands on ``PATH`` (a
``Runner``), so the tests put a recording fake there, and an operator sees in the plan exactly
what apply runs.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from deploy.plan import (
    Step,
    policy_command,
    remove_command,
    render_command,
    resolve,
    schema_file,
    secret_add_version_command,
    secret_step,
    secret_version_command,
    ttl_list_command,
)
from deploy.spec import PUBSUB_AGENT, TOKEN_CREATOR_ROLE, Condition, DeploymentSpec, FunctionSpec, Grant, expected_grants

NOT_FOUND = re.compile(r"NOT_FOUND|not found|does not exist|404", re.IGNORECASE)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], Result]
Feeder = Callable[[Sequence[str], bytes], Result]  # a command with bytes on its stdin (a secret's value)


def subprocess_runner(cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900.0) -> Runner:
    """Runs each command as a process (``gcloud`` and ``bq`` from ``PATH``) in ``cwd``."""

    def run(argv: Sequence[str]) -> Result:
        try:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=dict(env) if env else None,
                check=False,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise DeployError(f"{argv[0]} is not installed or not on PATH (install the Google Cloud CLI)") from exc
        return Result(done.returncode, done.stdout, done.stderr)

    return run


def subprocess_feeder(cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120.0) -> Feeder:
    """Runs a command with ``data`` on its stdin; nothing of ``data`` is kept or echoed."""

    def feed(argv: Sequence[str], data: bytes) -> Result:
        try:
            done = subprocess.run(
                list(argv),
                input=data,
                capture_output=True,
                timeout=timeout,
                env=dict(env) if env else None,
                check=False,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise DeployError(f"{argv[0]} is not installed or not on PATH (install the Google Cloud CLI)") from exc
        return Result(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))

    return feed


class DeployError(Exception):
    """A command failed in a way apply must not paper over (permissions, quota, a bad value)."""


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    bindings: int = 0
    lookups: dict[str, str] = field(default_factory=dict)


def write_schema_files(spec: DeploymentSpec, root: Path) -> list[Path]:
    """The ``--schema`` files the table steps name: the field list of each ``deploy/bigquery`` spec."""
    written = []
    for table in spec.tables:
        path = root / schema_file(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(list(table.schema), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def _one_line(text: str, limit: int = 400) -> str:
    return " ".join(text.split())[:limit]


def apply(steps: Sequence[Step], run: Runner, out: TextIO) -> ApplyReport:
    """Describe each resource, then create or update it; run bindings; resolve lookups. Stops at the first error."""
    report = ApplyReport()
    values: dict[str, str] = {}

    def must(argv: list[str], what: str) -> Result:
        result = run(argv)
        if result.returncode != 0:
            raise DeployError(
                f"{what} failed ({result.returncode}): {render_command(tuple(argv))}: "
                f"{_one_line(result.stderr or result.stdout)}"
            )
        return result

    for i, step in enumerate(steps, 1):
        where = f"[{i}/{len(steps)}] {step.label}"
        if step.kind == "lookup":
            value = must(resolve(step.create, values), where).stdout.strip()
            if not value:
                raise DeployError(f"{where}: the lookup returned nothing")
            assert step.var is not None
            values[step.var] = value
            report.lookups[step.var] = value
            out.write(f"{where}: {value}\n")
            continue
        if step.kind == "binding":
            must(resolve(step.create, values), where)
            report.bindings += 1
            out.write(f"{where}: ok\n")
            continue
        if step.kind == "require":  # a precondition the operator fulfils (a secret's value)
            assert step.expect is not None and step.hint is not None
            found = run(resolve(step.create, values))
            if found.returncode != 0 and not NOT_FOUND.search(found.stderr or found.stdout):
                raise DeployError(f"{where}: failed ({found.returncode}): {_one_line(found.stderr or found.stdout)}")
            if step.expect not in (line.strip() for line in found.stdout.splitlines()):
                raise DeployError(f"{where}: {step.hint}")
            report.existing.append(step.label)
            out.write(f"{where}: ok\n")
            continue
        if step.kind == "ensure":  # no "not found" here: the describe lists what is in place
            assert step.describe is not None and step.expect is not None
            listed = must(resolve(step.describe, values), f"{where}: describe").stdout.splitlines()
            if step.expect in (line.strip() for line in listed):
                report.existing.append(step.label)
                out.write(f"{where}: exists\n")
            else:
                must(resolve(step.create, values), where)
                report.created.append(step.label)
                out.write(f"{where}: created\n")
            continue
        assert step.describe is not None
        found = run(resolve(step.describe, values))
        if found.returncode == 0:
            if step.update is None:
                report.existing.append(step.label)
                out.write(f"{where}: exists\n")
            else:
                must(resolve(step.update, values), where)
                report.updated.append(step.label)
                out.write(f"{where}: updated\n")
        elif NOT_FOUND.search(found.stderr or found.stdout):
            must(resolve(step.create, values), where)
            report.created.append(step.label)
            out.write(f"{where}: created\n")
        else:
            raise DeployError(
                f"{where}: describe failed ({found.returncode}): {_one_line(found.stderr or found.stdout)}"
            )
    out.write(
        f"apply: {len(report.created)} created, {len(report.updated)} updated, {len(report.existing)} unchanged, "
        f"{report.bindings} bindings\n"
    )
    return report


