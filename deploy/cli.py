"""``phasectl deploy plan|apply|verify [--project P] [--region R] [--function NAME]`` and
``phasectl deploy secret set NAME [--project P]`` (the value from stdin)."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TextIO

from deploy.apply import (
    NOT_LOGGED_IN,
    DeployError,
    Feeder,
    Runner,
    SchedulerRow,
    apply,
    logged_in,
    read_secret_value,
    render_scheduler_table,
    season_error_row,
    season_rows,
    set_secret,
    subprocess_feeder,
    subprocess_runner,
    verify,
    write_schema_files,
)
from deploy.bundle import REPO_ROOT, BuildError, build_function
from deploy.plan import build_plan, render_plan, summarise
from deploy.spec import build_spec
from shared.pipeline.definition import PipelineDefinition
from shared.printable import printable, printable_line

# A project id: 6-30 characters, lowercase letters, digits and hyphens, starting with a letter,
# not ending with a hyphen.
PROJECT_ID = re.compile(r"[a-z][a-z0-9-]{4,28}[a-z0-9]")
REGION = re.compile(r"[a-z]+-[a-z]+[0-9]")
ACTIONS = ("plan", "apply", "verify", "secret")
# reads the operator's season overrides document of a project (None: there is none); raises when it cannot
SeasonReader = Callable[[str], Mapping[str, Any] | None]


def project_error(project: str | None) -> str | None:
    """Why ``project`` is not a Google Cloud project id (None: it is one)."""
    if project and PROJECT_ID.fullmatch(project):
        return None
    return (
        f"invalid project id {project!r}: 6-30 characters, lowercase letters, digits and hyphens, "
        "starting with a letter and not ending with a hyphen"
    )


def run_deploy(
    definition: PipelineDefinition,
    action: str,
    project: str,
    *,
    out: TextIO,
    err: TextIO,
    region: str | None = None,
    function: str | None = None,
    runner: Runner | None = None,
    env: Mapping[str, str] | None = None,
    root: Path = REPO_ROOT,
    operands: Sequence[str] = (),
    stdin: BinaryIO | None = None,
    feeder: Feeder | None = None,
    season: SeasonReader | None = None,
    now: datetime | None = None,
) -> int:
    """0 ok; 1 verify found a problem (a failed check or Cloud Scheduler drift); 2 bad input, no login
    or a command failed (one line on ``err``).

    Every argument is checked before any command runs. ``season`` reads the operator's season
    overrides for verify's informational rows (none without it); ``now`` places them on the calendar.
    """

    def fail(message: str) -> int:
        err.write(f"phasectl: error: {printable(' '.join(message.split()))}\n")
        return 2

    if action not in ACTIONS:
        return fail(f"unknown deploy action {action!r} (one of {', '.join(ACTIONS)})")
    problem = project_error(project)
    if problem:
        return fail(problem)
    if region is not None and not REGION.fullmatch(region):
        return fail(f"invalid region {region!r} (e.g. us-west2)")
    if action == "secret":
        if len(operands) != 2 or operands[0] != "set":
            return fail("usage: phasectl deploy secret set NAME [--project P] (the value is read from stdin)")
        if function is not None:
            return fail("--function does not apply to deploy secret")
    elif operands:
        return fail(f"deploy {action} takes no operands (got {' '.join(operands)})")
    try:
        spec = build_spec(definition, project, region=region).only(function)
    except KeyError as exc:
        return fail(str(exc.args[0]))
    steps = build_plan(spec)
    if action == "plan":
        out.write(render_plan(spec, steps))
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summarise(spec).items())
        err.write(f"plan: {len(steps)} steps ({counts})\n")
        return 0
    run = runner or subprocess_runner(root, env)
    try:
        if action == "secret":
            name = operands[1]
            if name not in {s.secret_id for s in spec.secrets}:
                known = ", ".join(s.secret_id for s in spec.secrets) or "none"
                return fail(f"no secret {name!r} in the deployment (known: {known})")
            if stdin is None:
                return fail(f"secret {name}: pipe the value on stdin")
            value = read_secret_value(stdin.read())
            if not value:
                return fail(f"secret {name}: no value on stdin (pipe it in; it is never an argument)")
            if not logged_in(run):
                return fail(NOT_LOGGED_IN)
            set_secret(spec, name, value, run, feeder or subprocess_feeder(root, env), out)
            return 0
        if not logged_in(run):
            return fail(NOT_LOGGED_IN)
        if action == "verify":
            checks = verify(spec, run, _season(definition, project, season, now))
            for check in checks:
                if check.row is None:
                    out.write(printable_line(check.render()) + "\n")  # values read from the cloud
            rows = [c.row for c in checks if c.row is not None]
            for line in render_scheduler_table(spec, rows):
                out.write(printable_line(line) + "\n")
            failed = [c for c in checks if not c.ok]
            drift = sum(1 for r in rows if r.drift)
            out.write(
                f"verify: {len(checks) - len(failed)} ok, {len(failed)} failed"
                + (f" ({drift} Cloud Scheduler drift)" if drift else "")
                + "\n"
            )
            return 1 if failed else 0
        for fn in spec.functions:  # the plan's --source=build/<function>
            build_function(fn.name, root / "build")
        write_schema_files(spec, root)
        apply(steps, run, out)
    except (DeployError, BuildError) as exc:
        return fail(str(exc))
    return 0


def _season(
    definition: PipelineDefinition, project: str, season: SeasonReader | None, now: datetime | None
) -> list[SchedulerRow]:
    """The informational rows of the operator's season overrides (none without a reader)."""
    if season is None:
        return []
    try:
        doc = season(project)
    except Exception as exc:  # noqa: BLE001 - informational: verify goes on and says why it has no rows
        return [season_error_row(definition, str(exc) or type(exc).__name__)]
    return season_rows(definition, doc, now or datetime.now(UTC))
