"""The argument parser of every command (help, choices, EXAMPLES from ``phasectl.help_text``)."""

from __future__ import annotations

import argparse
import os
from collections.abc import Mapping

from phasectl import help_text as cli_help
from phasectl.commands.audit import add_parser as add_audit_parser
from phasectl.commands.deploy import cmd_deploy
from phasectl.commands.findings import add_parser as add_findings_parser
from phasectl.commands.games import cmd_games_postpone, cmd_games_restore, cmd_mark_unavailable
from phasectl.commands.gaps import add_parser as add_gaps_parser
from phasectl.commands.health import cmd_health
from phasectl.commands.lineage import add_parser as add_lineage_parser
from phasectl.commands.local import cmd_local
from phasectl.commands.logs import add_parser as add_logs_parser
from phasectl.commands.next_up import add_parser as add_next_parser
from phasectl.commands.publish import cmd_publish_completion
from phasectl.commands.reconcile import cmd_reconcile
from phasectl.commands.retry import cmd_retry_list, cmd_retry_requeue, cmd_retry_resolve
from phasectl.commands.schedules import SCHEDULE_NEEDS, cmd_schedules, cmd_schedules_run
from phasectl.commands.season import cmd_season_pause, cmd_season_resume, cmd_season_status
from phasectl.commands.slo import add_parser as add_slo_parser
from phasectl.commands.status import STATUS_REFRESH_SECONDS, _html_days, _port, cmd_status
from phasectl.commands.trigger import cmd_backfill, cmd_trigger
from phasectl.connect import (
    DEFAULT_TIMEOUT,
    MAX_TIMEOUT,
)
from phasectl.core import (
    BACKFILL_MODES,
    HTML_DAYS_DEFAULT,
    HTML_DAYS_MAX,
    NEEDS,
    STATUS_PORT_DEFAULT,
    _Parser,
)
from shared.env import LOG_DIR_ENV
from shared.errors import PipelineError
from shared.pipeline.definition import load_definition


# -- parser and main -----------------------------------------------------------------------------
def _timeout(value: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --timeout {value!r}: seconds, e.g. 30") from None
    if not 0 < seconds <= MAX_TIMEOUT:  # NaN fails too
        raise argparse.ArgumentTypeError(f"--timeout {value} is not in (0, {MAX_TIMEOUT:g}] seconds")
    return seconds


def _transition_help(env: Mapping[str, str]) -> str:
    """The transitions of the definition the command will use (``$PIPELINE_DEFINITION`` or the packaged one)."""
    try:
        definition = load_definition(env.get("PIPELINE_DEFINITION") or None)
        names = [t.name for t in definition.transitions]
        sensors = [t.name for t in definition.timed_triggers()]
    except (PipelineError, OSError, ValueError):  # the command reports it; help still works
        return "a transition of the pipeline definition"
    text = "the transition, one of: " + ", ".join(names)
    return text + (f" (trigger also takes a sensor: {', '.join(sensors)})" if sensors else "")


TIMEOUT_HELP = (
    "the deadline of every backend call (Firestore, Pub/Sub, BigQuery) in seconds "
    f"(default {DEFAULT_TIMEOUT:g}); a backend that does not answer in time is one line and exit 2"
)


UTC_HELP = (
    "show every time in UTC; by default times are in the pipeline's zone (ET, with its offset in the header) "
    "and TODAY/YESTERDAY are New York dates either way"
)


def build_parser(env: Mapping[str, str] | None = None) -> argparse.ArgumentParser:
    """The ``phasectl`` parser; ``env`` names the definition whose transitions the help lists."""
    env = os.environ if env is None else env
    parser = _Parser(
        prog="phasectl",
        description=(
            "Operate the phase-transition pipeline: its state, coverage, retry queue, dead letters,\n"
            "deployment and the local cloud. `phasectl COMMAND --help` shows a command's options and examples.\n\n"
            "Exit codes: 0 ok; 1 a problem found (blocked, stale heartbeat, coverage warning, nothing\n"
            "changed); 2 bad input or an error (one line on stderr); 3 degraded (`health`: healthy\n"
            "otherwise, but the monitor has active ERROR/WARNING findings)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"phasectl {cli_help.version()}")
    parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS", help=TIMEOUT_HELP)
    parser.add_argument("--utc", action="store_true", help=UTC_HELP)
    sub = parser.add_subparsers(dest="command", title="commands", metavar="COMMAND", parser_class=_Parser)
    date_help = "game date YYYY-MM-DD or TODAY/YESTERDAY (in New York)"
    transition_help = _transition_help(env)

    p = sub.add_parser("status", help="per transition: progress, the rule's explanation, gates, triggers, heartbeats")
    p.add_argument("--date", default="YESTERDAY", help="game date YYYY-MM-DD or TODAY/YESTERDAY (default YESTERDAY)")
    output = p.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    output.add_argument(
        "--html", metavar="PATH", help="write a static HTML page: the date-by-transition grid, findings"
    )
    output.add_argument(
        "--serve",
        action="store_true",
        help=f"serve the page live on http://127.0.0.1:PORT/ (read-only, reloads every {STATUS_REFRESH_SECONDS} s)",
    )
    p.add_argument(
        "--days",
        type=_html_days,
        metavar="N",
        help=f"with --html/--serve: the N dates up to --date (default {HTML_DAYS_DEFAULT}, at most {HTML_DAYS_MAX})",
    )
    p.add_argument(
        "--port",
        type=_port,
        metavar="N",
        help=f"with --serve: the port (default {STATUS_PORT_DEFAULT}, on 127.0.0.1 only)",
    )
    p.set_defaults(func=cmd_status)

    p = sub.add_parser("reconcile", help="Final games vs boxscores per source, phases, retry queue")
    p.add_argument("--date", required=True, help=date_help)
    p.add_argument("--detailed", action="store_true", help="one line per game")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.set_defaults(func=cmd_reconcile)

    add_findings_parser(sub, _Parser)  # phasectl findings [--json] [--ack KEY --note TEXT | --unack KEY]

    retry = sub.add_parser("retry", help="the auto-retry queue: list, requeue, resolve")
    rsub = retry.add_subparsers(dest="retry_command", title="commands", parser_class=_Parser)
    p = rsub.add_parser("list", help="the queue's rows: processor, status, retries, next retry, notes")
    p.add_argument("--date", help="only this game date (YYYY-MM-DD or TODAY/YESTERDAY; default: every date)")
    p.add_argument(
        "--status",
        choices=("pending", "retrying", "succeeded", "failed_permanent"),
        help="only rows in this status, one of: %(choices)s",
    )
    p.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    p.set_defaults(func=cmd_retry_list)
    p = rsub.add_parser("requeue", help="a failed_permanent row becomes pending with a fresh budget")
    p.add_argument("--date", required=True, help=date_help)
    p.add_argument("--processor", required=True, help="processor name, alias or class name")
    p.add_argument("--note", required=True, help="why (kept on the row and in the audit record)")
    p.set_defaults(func=cmd_retry_requeue)
    p = rsub.add_parser("resolve", help="close a row by hand (succeeded, with your note)")
    p.add_argument("row_id", help="the row's id, or a prefix of at least 6 characters (see retry list)")
    p.add_argument("--note", required=True, help="what you did (kept on the row and in the audit record)")
    p.set_defaults(func=cmd_retry_resolve)

    p = sub.add_parser("mark-unavailable", help="exclude a game from coverage and completeness (reversible)")
    p.add_argument("game_id", help="0022500644, 20260124_GSW_MIN or GSW@MIN (any form phasectl prints a game in)")
    p.add_argument("--reason", required=True, help="why the game will never have data (kept with the mark)")
    p.add_argument("--date", help="the game date (found from the schedule when omitted)")
    p.add_argument("--undo", action="store_true", help="count the game again")
    p.set_defaults(func=cmd_mark_unavailable)

    games = sub.add_parser("games", help="postponed games: confirm or undo a postponement (audited)")
    gsub = games.add_subparsers(dest="games_command", title="commands", parser_class=_Parser)
    for name, func, text, why in (
        ("postpone", cmd_games_postpone, "mark a game postponed: not expected, never retried", "why (kept)"),
        ("restore", cmd_games_restore, "undo a postponement (the game was played): it counts again", "why (kept)"),
    ):
        p = gsub.add_parser(name, help=text)
        p.add_argument("game_id", help="0022500644, 20260124_GSW_MIN or GSW@MIN (any form phasectl prints a game in)")
        p.add_argument("--reason", required=True, help=why)
        p.add_argument("--date", help="the game date (found from the schedule when omitted)")
        p.set_defaults(func=func)

    p = sub.add_parser("trigger", help="evaluate a date through the claim protocol")
    p.add_argument("--transition", required=True, metavar="TRANSITION", help=transition_help)
    p.add_argument("--date", required=True, help=date_help)
    p.add_argument("--force", action="store_true", help="start a new generation (new trigger id downstream)")
    p.set_defaults(func=cmd_trigger)

    publish = sub.add_parser("publish", help="publish a message by hand (a re-run processor is done)")
    psub = publish.add_subparsers(dest="what", title="commands", parser_class=_Parser)
    p = psub.add_parser("completion", help="a processor completion, shaped as the replaced system's processors send it")
    p.add_argument("--processor", required=True, help="processor name, alias or class name")
    p.add_argument("--date", required=True, help="game date YYYY-MM-DD (or TODAY/YESTERDAY, resolved in New York)")
    statuses = ("success", "partial", "no_data", "failed")
    p.add_argument("--status", required=True, choices=statuses, help="the processor's outcome, one of: %(choices)s")
    p.add_argument("--records", type=int, default=0, help="record_count (default 0)")
    p.add_argument("--error-message", help="for --status failed")
    p.add_argument("--error-type", help="for --status failed: free text, e.g. an exception class name")
    p.add_argument("--metadata", help="JSON object, e.g. '{\"completion_pct\": 95.0}' for the prediction coordinator")
    p.set_defaults(func=cmd_publish_completion)

    p = sub.add_parser("health", help="recent function errors, heartbeats and active findings (exit 3: degraded)")
    p.add_argument("--since", default="1h", help="how far back: a duration like 30m, 1h or 2d (default 1h)")
    p.add_argument("--log-dir", help=f"local function logs (default ${LOG_DIR_ENV})")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.set_defaults(func=cmd_health)

    p = sub.add_parser("backfill", help="re-trigger a date range (Airflow reprocess modes)")
    p.add_argument("--from", dest="date_from", required=True, metavar="DATE", help="first game date YYYY-MM-DD")
    p.add_argument("--to", dest="date_to", required=True, metavar="DATE", help="last game date YYYY-MM-DD (included)")
    p.add_argument("--transition", required=True, metavar="TRANSITION", help=transition_help)
    p.add_argument(
        "--mode",
        "--reprocess-behavior",
        dest="mode",
        choices=tuple(BACKFILL_MODES),
        default="none",
        metavar="MODE",
        help=(
            "which dates to run, one of: %(choices)s (default none). --reprocess-behavior is Airflow's name "
            "for this option; Airflow's values are these, one to one: none = only the dates never evaluated or "
            "still waiting; failed = those and the failed ones (blocked, gate or publish error); completed = "
            "every date, a triggered one re-triggered as a new generation"
        ),
    )
    p.add_argument("--dry-run", action="store_true", help="print each date's state and action; change nothing")
    p.set_defaults(func=cmd_backfill)

    add_gaps_parser(sub, _Parser)  # phasectl gaps [--season] [--enqueue] [--date D]
    add_slo_parser(sub, _Parser)  # phasectl slo [--date D] [--nights 30] [--json]

    p = sub.add_parser("schedules", help="every scheduled job: target, cron, zone, next fire, last run, why paused")
    p.add_argument("--json", action="store_true", help="print the jobs as JSON instead of a table")
    p.set_defaults(func=cmd_schedules)
    ssub = p.add_subparsers(dest="schedules_command", title="commands", parser_class=_Parser)
    p = ssub.add_parser("run", help="run one slot of a job by hand through the dispatcher (audited)")
    p.add_argument("job", metavar="JOB", help="the job's name (`phasectl schedules` lists them)")
    p.add_argument(
        "--date",
        help="the day whose slot runs, YYYY-MM-DD or TODAY/YESTERDAY in the job's own zone (default: its "
        "latest slot up to now)",
    )
    p.add_argument("--force", action="store_true", help="run a slot that already ran again, as a new generation")
    p.set_defaults(func=cmd_schedules_run)

    season = sub.add_parser("season", help="the season calendar, and pausing or resuming the scheduled jobs")
    wsub = season.add_subparsers(dest="season_command", title="commands", parser_class=_Parser)
    p = wsub.add_parser("status", help="the seasons, today's place in them, the overrides, per wave what runs")
    p.add_argument("--json", action="store_true", help="print the report as JSON instead of text")
    p.set_defaults(func=cmd_season_status)
    for action, func, verb in (("pause", cmd_season_pause, "stop"), ("resume", cmd_season_resume, "run")):
        p = wsub.add_parser(action, help=f"{verb} a wave's jobs (or every job) whatever the calendar says (audited)")
        p.add_argument(
            "--wave",
            choices=("A", "B", "C"),
            help="only this wave's jobs, one of: %(choices)s (default: every job, `all`)",
        )
        p.add_argument("--note", help="why (kept in the overrides document and the audit record)")
        p.set_defaults(func=func)

    from phasectl import dlq  # stdlib only at import; it never imports this module (run as __main__ under -m)

    dlq.add_parser(sub, _Parser)

    add_next_parser(sub)  # phasectl next [--date D] [--hours 24] [--json]
    add_audit_parser(sub)  # phasectl audit [--date D] [--since 7d] [--json]
    add_logs_parser(sub)  # phasectl logs --function F [--date D] [--severity S] [--since 1h]
    add_lineage_parser(sub)  # phasectl lineage [--processor P] [--json]

    p = sub.add_parser("deploy", help="Google Cloud: print the gcloud/bq plan, apply it idempotently, verify it")
    p.add_argument(
        "action",
        choices=("plan", "apply", "verify", "secret"),
        help="plan: print the commands; apply: run them (idempotent); verify: compare the project with the "
        "plan; secret: store a secret (one of: %(choices)s)",
    )
    p.add_argument("operands", nargs="*", metavar="set NAME", help="secret: set NAME, the value read from stdin")
    p.add_argument("--project", help="default: GOOGLE_CLOUD_PROJECT, or gcloud's application default")
    p.add_argument("--region", help="default: [deploy] region in the pipeline definition")
    p.add_argument("--function", help="only this function (its account, topics, job and wiring)")
    p.set_defaults(func=cmd_deploy)

    p = sub.add_parser("local", help="the whole topology on the local emulators (functions from their bundles)")
    p.add_argument(
        "action",
        choices=("up", "down"),
        help="up: start everything and run until Ctrl-C; down: stop what an up started (one of: %(choices)s)",
    )
    p.add_argument("--accelerate", type=float, default=1.0, help="simulated seconds per real second (scheduler, clock)")
    p.add_argument("--state-dir", default=".localcloud", help="where up records what it started (default .localcloud)")
    p.add_argument("--project", default="phasechain-local", help="the emulators' project id (default phasechain-local)")
    p.add_argument(
        "--seed",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="up: load the sample night (2026-01-24: 7 games Final, GSW@MIN postponed) and start the simulated "
        "clock on it, 2026-01-25 02:30 ET (default: --seed; --no-seed: no games, the clock at the real now)",
    )
    p.add_argument(
        "--at",
        metavar="INSTANT",
        help="up: where the simulated clock starts: ISO 8601 with its zone (2026-01-25T02:30:00-05:00, ...Z) "
        "or 'YYYY-MM-DD HH:MM' in the pipeline's zone (default: the seeded night's 2026-01-25 02:30 ET)",
    )
    p.set_defaults(func=cmd_local)

    cli_help.finish(parser)
    for path, each in cli_help.walk(parser):
        each.set_defaults(command_path=path)
        if each is not parser:  # also after the command: phasectl status --utc
            each.add_argument("--utc", action="store_true", default=argparse.SUPPRESS, help=UTC_HELP)
        if path in NEEDS or path in SCHEDULE_NEEDS:  # also after the command: phasectl status --timeout 60
            each.add_argument(
                "--timeout", type=_timeout, default=argparse.SUPPRESS, metavar="SECONDS", help=TIMEOUT_HELP
            )
    return parser
