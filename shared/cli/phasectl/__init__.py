"""``phasectl``: the operator CLI. A thin composition root over the existing services.

Every command works against the local emulators (the usual ``*_EMULATOR_HOST`` variables,
``BIGQUERY_EMULATOR_HOST``) and against real Google Cloud (project from
``GOOGLE_CLOUD_PROJECT``/``GCP_PROJECT``/``GCLOUD_PROJECT`` or, like gcloud, from Application
Default Credentials). The definition is ``$PIPELINE_DEFINITION`` or the packaged one.

Commands (``phasectl COMMAND --help``: its options and EXAMPLES; a bare ``phasectl``: them all)::

    phasectl [--timeout SECONDS] COMMAND ...   (every backend call's deadline, default 15 s)
    phasectl --version
    phasectl status [--date D] [--json]
    phasectl status [--date D] --html PATH [--days N]   (static page: a date-by-transition grid, findings)
    phasectl reconcile --date D [--detailed] [--json]
    phasectl retry list [--date D] [--status S] [--json]
    phasectl retry requeue --date D --processor P --note TEXT
    phasectl retry resolve ROW_ID --note TEXT
    phasectl mark-unavailable GAME_ID --reason TEXT [--date D] [--undo]
    phasectl trigger --transition T --date D [--force]
    phasectl publish completion --processor P --date D --status S [--records N] [--metadata JSON]
    phasectl health [--since 1h] [--log-dir DIR] [--json]
    phasectl backfill --from D1 --to D2 --transition T --mode none|failed|completed [--dry-run]
                      (--reprocess-behavior: Airflow's name for --mode, the same values)
    phasectl dlq list [--function F] [--json]
    phasectl dlq replay --function F [--max N] [--dry-run]
    phasectl deploy plan|apply|verify [--project P] [--region R] [--function NAME]
    phasectl deploy secret set NAME [--project P]         (the value from stdin; never an argument)
    phasectl local up [--accelerate N] [--state-dir DIR] | phasectl local down [--state-dir DIR]

Backends: a command checks the ones it needs before it first uses them (``shared.cli.cli_connect``):
an emulator variable pointing at nothing, or no Google Cloud login, is one line and exit 2 at
once. Every call then has the ``--timeout`` deadline (``shared.cli.cli_deadline``): a backend that
accepts connections but does not answer is one line and exit 2 after it, not minutes of retries.

Exit codes: 0 ok; 1 a warning or problem found (blocked, stale heartbeat, coverage warning,
nothing changed); 2 bad input or an error (one line on stderr). ``reconcile`` exits 2 on a
coverage *error* (< 80 %) too.

Testing / operations overrides (environment):

* ``PHASECTL_NOW=2026-01-25T15:00:00Z``: the CLI's "now" (a fixed clock) instead of the
  system clock: deterministic output in tests, and "what would the rule say at T" for operators.
* ``PHASECTL_LOG_DIR=DIR``: where ``health`` reads the local cloud's ``function-<name>.log``.

Mutating commands (mark-unavailable, trigger, publish, retry requeue/resolve, backfill, dlq replay) write
an audit record to the Firestore collection ``operator_audit`` (who = ``$USER``, when, command, args), with
``expires_at`` = when + ``[retention] audit_days`` for its TTL policy.
"""

from __future__ import annotations

from shared.cli.phasectl.app import (
    _backend_failure,
    _one_line,
    main,
)
from shared.cli.phasectl.core import (
    AUDIT_COLLECTION,
    BACKFILL_MODES,
    DRY_RUN_NEEDS,
    HTML_DAYS_DEFAULT,
    HTML_DAYS_MAX,
    LOG_DIR_ENV,
    MAX_BACKFILL_DAYS,
    MONITOR_STALE_MINUTES,
    NEEDS,
    NOW_ENV,
    PREPARE_FIRST,
    STATUS_PORT_DEFAULT,
    Context,
    UsageError,
    _date,
    _json_default,
    _needs,
    _Parser,
    _processor,
    _resolve_project,
    _transition,
    _user,
    clock_from_env,
)
from shared.cli.phasectl.deploy import (
    cmd_deploy,
)
from shared.cli.phasectl.games import (
    _dml,
    _schedule_dates,
    cmd_mark_unavailable,
)
from shared.cli.phasectl.health import (
    _SINCE_RE,
    _UNITS,
    FunctionErrors,
    _cloud_errors,
    _parse_time,
    cmd_health,
    parse_since,
    read_local_errors,
)
from shared.cli.phasectl.local import (
    cmd_local,
)
from shared.cli.phasectl.parser import (
    TIMEOUT_HELP,
    _timeout,
    _transition_help,
    build_parser,
)
from shared.cli.phasectl.publish import (
    cmd_publish_completion,
)
from shared.cli.phasectl.reconcile import (
    _log_rows,
    _sources,
    cmd_reconcile,
)
from shared.cli.phasectl.retry import (
    _row_dict,
    cmd_retry_list,
    cmd_retry_requeue,
    cmd_retry_resolve,
)
from shared.cli.phasectl.status import (
    DLQ_PAGE_LIMIT,
    STATUS_REFRESH_SECONDS,
    _active_findings,
    _dead_letter_backlog,
    _heartbeats,
    _html_days,
    _phase_lines,
    _port,
    _status_html,
    _status_page,
    _status_serve,
    _write_page,
    cmd_status,
)
from shared.cli.phasectl.trigger import (
    _progress,
    _run_one,
    _service,
    _service_backends,
    classify,
    cmd_backfill,
    cmd_trigger,
)

__all__ = [
    "AUDIT_COLLECTION",
    "BACKFILL_MODES",
    "DLQ_PAGE_LIMIT",
    "DRY_RUN_NEEDS",
    "HTML_DAYS_DEFAULT",
    "HTML_DAYS_MAX",
    "LOG_DIR_ENV",
    "MAX_BACKFILL_DAYS",
    "MONITOR_STALE_MINUTES",
    "NEEDS",
    "NOW_ENV",
    "PREPARE_FIRST",
    "STATUS_PORT_DEFAULT",
    "STATUS_REFRESH_SECONDS",
    "TIMEOUT_HELP",
    "_SINCE_RE",
    "_UNITS",
    "Context",
    "FunctionErrors",
    "UsageError",
    "_Parser",
    "_active_findings",
    "_backend_failure",
    "_cloud_errors",
    "_date",
    "_dead_letter_backlog",
    "_dml",
    "_heartbeats",
    "_html_days",
    "_json_default",
    "_log_rows",
    "_needs",
    "_one_line",
    "_parse_time",
    "_phase_lines",
    "_port",
    "_processor",
    "_progress",
    "_resolve_project",
    "_row_dict",
    "_run_one",
    "_schedule_dates",
    "_service",
    "_service_backends",
    "_sources",
    "_status_html",
    "_status_page",
    "_status_serve",
    "_timeout",
    "_transition",
    "_transition_help",
    "_user",
    "_write_page",
    "build_parser",
    "classify",
    "clock_from_env",
    "cmd_backfill",
    "cmd_deploy",
    "cmd_health",
    "cmd_local",
    "cmd_mark_unavailable",
    "cmd_publish_completion",
    "cmd_reconcile",
    "cmd_retry_list",
    "cmd_retry_requeue",
    "cmd_retry_resolve",
    "cmd_status",
    "cmd_trigger",
    "main",
    "parse_since",
    "read_local_errors",
]
