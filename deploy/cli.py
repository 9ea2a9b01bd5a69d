"""``phasectl deploy plan|apply|verify [--project P] [--region R] [--function NAME]``."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import TextIO

from deploy.apply import DeployError, Runner, apply, subprocess_runner, verify, write_schema_files
from deploy.bundle import REPO_ROOT, BuildError, build_function
from deploy.plan import build_plan, render_plan, summarise
from deploy.spec import build_spec
from shared.pipeline.definition import PipelineDefinition


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
) -> int:
    """0 ok; 1 verify found a problem; 2 a command failed (one line on ``err``)."""
    try:
        spec = build_spec(definition, project, region=region).only(function)
    except KeyError as exc:
        err.write(f"phasectl: error: {exc.args[0]}\n")
        return 2
    steps = build_plan(spec)
    if action == "plan":
        out.write(render_plan(spec, steps))
        counts = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in summarise(spec).items())
        err.write(f"plan: {len(steps)} steps ({counts})\n")
        return 0
    run = runner or subprocess_runner(root, env)
    if action == "verify":
        checks = verify(spec, run)
        for check in checks:
            out.write(check.render() + "\n")
        failed = [c for c in checks if not c.ok]
        out.write(f"verify: {len(checks) - len(failed)} ok, {len(failed)} failed\n")
        return 1 if failed else 0
    try:
        for fn in spec.functions:  # the plan's --source=build/<function>
            build_function(fn.name, root / "build")
        write_schema_files(spec, root)
        apply(steps, run, out)
    except (DeployError, BuildError) as exc:
        err.write(f"phasectl: error: {exc}\n")
        return 2
    return 0
