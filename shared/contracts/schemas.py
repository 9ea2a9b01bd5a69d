"""Export the message contracts as JSON Schema files, and check the exported files for drift.

Usage::

    python -m shared.contracts.schemas --write docs/contracts
    python -m shared.contracts.schemas --check docs/contracts   # exit 1 when a file drifts

Every schema is rendered in pydantic's ``validation`` mode: it describes what a consumer
accepts, which is the contract for inbound and outbound messages alike (both sides
decode through the same model, lesson L07).
"""

from __future__ import annotations

import argparse
import difflib
import json
import sys
from collections.abc import Sequence
from pathlib import Path

from pydantic import BaseModel

from shared.contracts.messages import (
    MonitorTick,
    PhaseTrigger,
    ProcessorCompletion,
    RetryRequest,
    RetryTick,
    ScheduleTick,
    TimedTriggerMessage,
    TriggerTick,
)

CONTRACTS: dict[str, type[BaseModel]] = {
    "processor_completion": ProcessorCompletion,
    "phase_trigger": PhaseTrigger,
    "monitor_tick": MonitorTick,
    "retry_tick": RetryTick,
    "schedule_tick": ScheduleTick,
    "retry_request": RetryRequest,
    "trigger_tick": TriggerTick,
    "timed_trigger": TimedTriggerMessage,
}

_MAX_DIFF_LINES = 40
_FIX_HINT = "run: python -m shared.contracts.schemas --write <dir>"


def render_schemas() -> dict[str, str]:
    """Render every contract's JSON Schema.

    Returns:
        File name (``"<stem>.json"``) → schema text (sorted keys, 2-space indent, final newline).
    """
    return {
        f"{stem}.json": json.dumps(model.model_json_schema(mode="validation"), indent=2, sort_keys=True) + "\n"
        for stem, model in CONTRACTS.items()
    }


def write_schemas(directory: str | Path) -> list[Path]:
    """Write every schema into ``directory`` and delete stale ``*.json`` files there.

    Args:
        directory: the target directory; created when missing.

    Returns:
        The paths written.
    """
    target = Path(directory)
    target.mkdir(parents=True, exist_ok=True)
    rendered = render_schemas()
    for stale in sorted(target.glob("*.json")):
        if stale.name not in rendered:
            stale.unlink()
    written = []
    for name, text in rendered.items():
        path = target / name
        path.write_text(text, encoding="utf-8", newline="\n")
        written.append(path)
    return written


def check_schemas(directory: str | Path) -> list[str]:
    """Compare the schema files in ``directory`` with the models.

    Args:
        directory: where the exported schemas live.

    Returns:
        One problem per missing, unexpected or out-of-date file (an out-of-date file
        comes with a unified diff, file → models); empty when everything matches.
    """
    target = Path(directory)
    rendered = render_schemas()
    problems = []
    for name, expected in rendered.items():
        path = target / name
        try:
            actual = path.read_text(encoding="utf-8")
        except FileNotFoundError:
            problems.append(f"{path}: missing ({_FIX_HINT})")
            continue
        except (OSError, UnicodeDecodeError) as exc:
            problems.append(f"{path}: unreadable: {exc}")
            continue
        if actual != expected:
            diff = list(
                difflib.unified_diff(
                    actual.splitlines(),
                    expected.splitlines(),
                    fromfile=f"{path} (on disk)",
                    tofile=f"{path} (from models)",
                    lineterm="",
                )
            )
            if len(diff) > _MAX_DIFF_LINES:
                diff = [*diff[:_MAX_DIFF_LINES], f"... ({len(diff) - _MAX_DIFF_LINES} more diff lines)"]
            problems.append(f"{path}: out of date ({_FIX_HINT})\n" + "\n".join(diff))
    if target.is_dir():
        for extra in sorted(target.glob("*.json")):
            if extra.name not in rendered:
                problems.append(f"{extra}: unexpected file, not a contract (delete it or {_FIX_HINT})")
    return problems


def main(argv: Sequence[str] | None = None) -> int:
    """Command line: ``--write DIR`` exports the schemas, ``--check DIR`` reports drift.

    Args:
        argv: arguments without the program name; defaults to ``sys.argv[1:]``.

    Returns:
        The exit status: 0 when written or up to date, 1 when a file drifts.
    """
    parser = argparse.ArgumentParser(
        prog="python -m shared.contracts.schemas", description="Export or check the contract JSON Schemas."
    )
    action = parser.add_mutually_exclusive_group(required=True)
    action.add_argument("--write", metavar="DIR", help="write the schemas into DIR")
    action.add_argument("--check", metavar="DIR", help="exit 1 when the schemas in DIR differ from the models")
    args = parser.parse_args(argv)
    if args.write is not None:
        for path in write_schemas(args.write):
            sys.stdout.write(f"wrote {path}\n")
        return 0
    problems = check_schemas(args.check)
    if problems:
        sys.stderr.write(f"{len(problems)} contract schema file(s) drift from the models:\n")
        for problem in problems:
            sys.stderr.write(problem + "\n")
        return 1
    sys.stdout.write(f"{len(CONTRACTS)} contract schemas in {args.check} match the models\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
