"""``phasectl``'s help: an EXAMPLES block per command (gcloud's style), a help text on every option.

``finish(parser)`` walks the parser tree once it is built (``phasectl``'s own commands and the
ones other modules add, such as ``dlq``): every command gets a description (its one-line help),
the raw-description formatter and its examples as the epilog; an option without a help text gets
the common one for its flag. A command group run without its subcommand prints its help
(``help_parser`` in the namespace) instead of argparse's "the following arguments are required".
Standard library only.
"""

from __future__ import annotations

import argparse
import importlib.metadata
import tomllib
from collections.abc import Iterator
from pathlib import Path

PYPROJECT = Path(__file__).resolve().parents[2] / "pyproject.toml"


class HelpFormatter(argparse.RawDescriptionHelpFormatter):
    """Keeps the description and the EXAMPLES epilog as written; wraps the option help texts."""

    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32)


# (what it does, the command line) per command path; "" is phasectl itself
EXAMPLES: dict[str, tuple[tuple[str, str], ...]] = {
    "": (
        ("To see where every transition stands for last night's games", "phasectl status"),
        ("To check that every Final game of a night reached the pipeline", "phasectl reconcile --date 2026-01-24"),
        ("To run the pipeline on the local emulators (in a terminal of its own)", "phasectl local up"),
        ("To allow each backend call a minute instead of 15 seconds", "phasectl --timeout 60 status"),
        ("To see a command's options and examples", "phasectl backfill --help"),
    ),
    "status": (
        ("To see every transition, the rule's explanation and the heartbeats for yesterday", "phasectl status"),
        ("To see a given game date as JSON", "phasectl status --date 2026-01-24 --json"),
        (
            "To write a static page with the last two weeks (a date-by-transition grid and the findings)",
            "phasectl status --html /var/www/phasechain/index.html --days 14",
        ),
        (
            "To watch the page live on this machine (read-only, reloads every 30 s; Ctrl-C stops it)",
            "phasectl status --serve --port 8765",
        ),
    ),
    "reconcile": (
        ("To compare a night's Final games with the boxscore sources", "phasectl reconcile --date 2026-01-24"),
        ("To list every game and the sources that have it", "phasectl reconcile --date 2026-01-24 --detailed"),
        ("To get the report as JSON (for a script)", "phasectl reconcile --date YESTERDAY --json"),
    ),
    "findings": (
        ("To list the monitor's active findings, each with its fix command and runbook", "phasectl findings"),
        (
            "To acknowledge one (by its key or a prefix of 6+ characters; audited, it stays listed)",
            "phasectl findings --ack gate_alert__phase2_to_phase3__2026-01-24 --note 'partial is fine tonight'",
        ),
        ("To take an acknowledgement back", "phasectl findings --unack gate_alert__phase2_to_phase3__2026-01-24"),
        ("To get them as JSON (exit 1 while an ERROR is not acknowledged)", "phasectl findings --json"),
    ),
    "retry": (
        ("To list the auto-retry queue of a date", "phasectl retry list --date 2026-01-24"),
        (
            "To give a processor that ran out of retries a fresh budget",
            "phasectl retry requeue --date 2026-01-24 --processor bdl_player_boxscores --note 'API back up'",
        ),
        ("To close a row by hand", "phasectl retry resolve 3f2a9c1d --note 'reloaded manually'"),
    ),
    "retry list": (
        ("To list every row of the auto-retry queue", "phasectl retry list"),
        ("To list the rows that ran out of retries", "phasectl retry list --status failed_permanent"),
        ("To list one date's rows as JSON", "phasectl retry list --date 2026-01-24 --json"),
    ),
    "retry requeue": (
        (
            "To retry a processor's failed_permanent rows of a date with a fresh budget",
            "phasectl retry requeue --date 2026-01-24 --processor bdl_player_boxscores --note 'API back up'",
        ),
    ),
    "retry resolve": (
        (
            "To close a row (its id or a prefix of at least 6 characters) as succeeded",
            "phasectl retry resolve 3f2a9c1d --note 'reloaded by hand from the vendor export'",
        ),
    ),
    "mark-unavailable": (
        (
            "To exclude a game the sources will never have (the date found from the schedule)",
            "phasectl mark-unavailable 0022500644 --reason 'no boxscore from any vendor, ever'",
        ),
        (
            "To name the game by date and teams",
            "phasectl mark-unavailable 20260124_GSW_MIN --reason 'no boxscore from any vendor'",
        ),
        (
            "To name it as status and reconcile print it (the date from --date, or the last week's schedule)",
            "phasectl mark-unavailable 'GSW@MIN' --date 2026-01-24 --reason 'no boxscore from any vendor'",
        ),
        ("To count the game again", "phasectl mark-unavailable 20260124_GSW_MIN --reason 'data arrived' --undo"),
    ),
    "trigger": (
        (
            "To evaluate a date through the claim protocol (triggers it when its rule is met)",
            "phasectl trigger --transition phase2_to_phase3 --date 2026-01-24",
        ),
        (
            "To trigger a date again, as a new generation with a new trigger id",
            "phasectl trigger --transition phase3_to_phase4 --date 2026-01-24 --force",
        ),
    ),
    "publish": (
        (
            "To report a processor you re-ran by hand as done",
            "phasectl publish completion --processor player_game_summary --date 2026-01-24 --status success "
            "--records 212",
        ),
    ),
    "publish completion": (
        (
            "To report a processor you re-ran by hand as done",
            "phasectl publish completion --processor PlayerGameSummaryProcessor --date 2026-01-24 --status success "
            "--records 212",
        ),
        (
            "To report the prediction coordinator's completion with its metadata",
            "phasectl publish completion --processor prediction_coordinator --date 2026-01-24 --status success "
            "--metadata '{\"completion_pct\": 95.0}'",
        ),
    ),
    "health": (
        ("To see the last hour's function errors and the heartbeats (Google Cloud)", "phasectl health"),
        (
            "To read the local cloud's function logs for the last day",
            "phasectl health --since 1d --log-dir .localcloud",
        ),
        ("To get the report as JSON", "phasectl health --since 30m --json"),
    ),
    "backfill": (
        (
            "To see what a backfill would do, changing nothing",
            "phasectl backfill --from 2026-01-01 --to 2026-01-24 --transition phase2_to_phase3 --dry-run",
        ),
        (
            "To evaluate the dates that never ran and re-run the failed ones (Airflow's reprocess behavior)",
            "phasectl backfill --from 2026-01-01 --to 2026-01-24 --transition phase2_to_phase3 "
            "--reprocess-behavior failed",
        ),
        (
            "To re-trigger every date, completed ones too (a new generation each)",
            "phasectl backfill --from 2026-01-20 --to 2026-01-24 --transition phase3_to_phase4 --mode completed",
        ),
    ),
    "schedules": (
        ("To see every scheduled job, when it fires next and how its last run went", "phasectl schedules"),
        ("To get the same as JSON", "phasectl schedules --json"),
        ("To run yesterday's slot of a job by hand", "phasectl schedules run phase6-tonight-picks --date YESTERDAY"),
    ),
    "schedules run": (
        (
            "To run a job's latest slot by hand, through the dispatcher (once per slot)",
            "phasectl schedules run same-day-phase3",
        ),
        (
            "To run a given day's slot again after it ran, as a new generation",
            "phasectl schedules run phase6-daily-results --date 2026-01-25 --force",
        ),
    ),
    "games": (
        (
            "To confirm a postponement (the schedule may still say Final)",
            "phasectl games postpone 0022500644 --reason 'postponed by the league, moved to 2026-01-25'",
        ),
        ("To undo it (the game was played)", "phasectl games restore 20260124_GSW_MIN --reason 'it was played'"),
    ),
    "games postpone": (
        (
            "To mark a game postponed (not expected, never retried; open retry rows for it end)",
            "phasectl games postpone 20260124_GSW_MIN --reason 'postponed ~2 h before tip-off'",
        ),
    ),
    "games restore": (
        (
            "To count a game again that was wrongly seen as postponed",
            "phasectl games restore 0022500644 --date 2026-01-24 --reason 'boxscores arrived: it was played'",
        ),
    ),
    "season": (
        ("To see where the season calendar stands and what runs today", "phasectl season status"),
        ("To pause wave B's jobs whatever the calendar says", "phasectl season pause --wave B --note 'lockout'"),
        ("To run wave A's jobs before the calendar would", "phasectl season resume --wave A"),
    ),
    "season status": (
        ("To see the seasons, today's place, the overrides and per wave what runs", "phasectl season status"),
        ("To get the report as JSON", "phasectl season status --json"),
    ),
    "season pause": (
        ("To pause wave B's jobs (no redeploy)", "phasectl season pause --wave B --note 'vendor outage'"),
        ("To pause every scheduled job", "phasectl season pause --note 'season suspended'"),
    ),
    "season resume": (
        ("To run wave A's jobs now, before its days before the opener", "phasectl season resume --wave A"),
        ("To lift a pause of every job", "phasectl season resume"),
    ),
    "dlq": (
        ("To see what every function's dead-letter subscription holds", "phasectl dlq list"),
        (
            "To put one function's dead letters back on its trigger topic",
            "phasectl dlq replay --function phase2_to_phase3",
        ),
    ),
    "dlq list": (
        ("To list every dead-letter subscription's messages (none is consumed)", "phasectl dlq list"),
        ("To list one function's, as JSON", "phasectl dlq list --function phase2_to_phase3 --json"),
    ),
    "dlq replay": (
        (
            "To see what would be replayed, changing nothing",
            "phasectl dlq replay --function phase2_to_phase3 --dry-run",
        ),
        ("To replay at most 10 messages", "phasectl dlq replay --function phase2_to_phase3 --max 10"),
    ),
    "deploy": (
        ("To print the gcloud and bq commands of a deployment", "phasectl deploy plan --project my-proj"),
        ("To create or update everything (idempotent)", "phasectl deploy apply --project my-proj"),
        ("To check a deployment against the plan", "phasectl deploy verify --project my-proj"),
        (
            "To deploy one function and what it needs",
            "phasectl deploy apply --project my-proj --function phase2_to_phase3",
        ),
        (
            "To store a secret (the value read from stdin, never an argument)",
            'printf %s "$WEBHOOK_URL" | phasectl deploy secret set slack-webhook --project my-proj',
        ),
    ),
    "local": (
        (
            "To run the whole topology on the local emulators until Ctrl-C (the sample night seeded, the clock "
            "at 2026-01-25 02:30 ET)",
            "phasectl local up",
        ),
        (
            "To start the simulated clock at another instant (in the pipeline's zone)",
            "phasectl local up --at '2026-01-25 09:00'",
        ),
        ("To run the simulated clock (and the scheduler) 60 times faster", "phasectl local up --accelerate 60"),
        ("To stop what a `local up` started (from another terminal)", "phasectl local down"),
    ),
}

# help for options a command defines without one (the same flag means the same thing everywhere)
OPTION_HELP: dict[str, str] = {
    "--json": "print the result as JSON (a versioned, stable shape) instead of text",
    "--function": "the function: its name (phase2_to_phase3) or its Cloud Functions name",
    "--dry-run": "show what would be done; change nothing",
    "--date": "game date YYYY-MM-DD, or TODAY/YESTERDAY (in the pipeline's timezone)",
}


def examples_block(path: str) -> str | None:
    """The epilog of the command at ``path``: ``EXAMPLES:`` then description and command lines."""
    entries = EXAMPLES.get(path)
    if not entries:
        return None
    lines = ["EXAMPLES:"]
    for description, command in entries:
        lines += [f"    {description}, run:", "", f"        $ {command}", ""]
    return "\n".join(lines).rstrip()


def subparsers_of(parser: argparse.ArgumentParser) -> Iterator[argparse._SubParsersAction]:  # type: ignore[type-arg]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            yield action


def walk(parser: argparse.ArgumentParser, path: str = "") -> Iterator[tuple[str, argparse.ArgumentParser]]:
    """Every parser of the tree with its command path (``""``, ``"retry"``, ``"retry list"``, ...)."""
    yield path, parser
    for action in subparsers_of(parser):
        for name, child in action.choices.items():
            yield from walk(child, f"{path} {name}".strip())


def _one_line_helps(parser: argparse.ArgumentParser, path: str) -> dict[str, str]:
    """The help each subcommand was added with, by command path (argparse keeps it on a pseudo-action)."""
    helps: dict[str, str] = {}
    for action in subparsers_of(parser):
        for choice in getattr(action, "_choices_actions", ()):
            if choice.help:
                helps[f"{path} {choice.dest}".strip()] = str(choice.help)
    return helps


def finish(parser: argparse.ArgumentParser) -> None:
    """Descriptions, examples, formatter and missing option helps on every parser of the tree."""
    helps: dict[str, str] = {}
    for path, each in walk(parser):
        each.formatter_class = HelpFormatter
        if each.description is None and path in helps:
            text = helps[path]
            each.description = text[:1].upper() + text[1:] + ("" if text.endswith(".") else ".")
        epilog = examples_block(path)
        if epilog is not None:
            each.epilog = epilog if not each.epilog else f"{each.epilog}\n\n{epilog}"
        helps.update(_one_line_helps(each, path))
        for action in each._actions:
            if action.help is None and action.option_strings:
                action.help = next((OPTION_HELP[o] for o in action.option_strings if o in OPTION_HELP), None)
        for action in subparsers_of(each):
            action.required = False  # a group without its subcommand prints its help (main)
            action.metavar = action.metavar or "COMMAND"
        if any(True for _ in subparsers_of(each)):
            each.set_defaults(help_parser=each)


def version() -> str:
    """The installed package's version, else pyproject's (a source checkout), else ``unknown``."""
    try:
        return importlib.metadata.version("phasechain")
    except importlib.metadata.PackageNotFoundError:
        pass
    try:
        with PYPROJECT.open("rb") as handle:
            return str(tomllib.load(handle)["project"]["version"])
    except (OSError, KeyError, tomllib.TOMLDecodeError):
        return "unknown"
