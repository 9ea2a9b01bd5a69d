"""``phasectl``: the operator CLI. A thin composition root over the runtime core (``shared``) and ``deploy``.

It is its own package: no function ships it (the bundle build forbids it) and nothing in
``shared`` or ``deploy`` imports it. ``python -m phasectl`` and the ``phasectl`` script run ``main``.

Every command works against the local emulators (the usual ``*_EMULATOR_HOST`` variables,
``BIGQUERY_EMULATOR_HOST``) and against real Google Cloud (project from
``GOOGLE_CLOUD_PROJECT``/``GCP_PROJECT``/``GCLOUD_PROJECT`` or, like gcloud, from Application
Default Credentials). The definition is ``$PIPELINE_DEFINITION`` or the packaged one.

Commands (``phasectl COMMAND --help``: its options and EXAMPLES; a bare ``phasectl``: them all)::

    phasectl [--timeout SECONDS] COMMAND ...   (every backend call's deadline, default 15 s)
    phasectl --version
    phasectl status [--date D] [--json]
    phasectl status [--date D] --html PATH [--days N]   (static page: a date-by-transition grid, findings)
    phasectl status [--date D] --serve [--port P]        (the same page, live on 127.0.0.1)
    phasectl reconcile --date D [--detailed] [--json]
    phasectl retry list [--date D] [--status S] [--json]
    phasectl retry requeue --date D --processor P --note TEXT
    phasectl retry resolve ROW_ID --note TEXT
    phasectl mark-unavailable GAME_ID --reason TEXT [--date D] [--undo]
    phasectl trigger --transition T --date D [--force]
    phasectl publish completion --processor P --date D --status S [--records N] [--metadata JSON]
                                [--error-message TEXT]
    phasectl health [--since 1h] [--log-dir DIR] [--json]
    phasectl backfill --from D1 --to D2 --transition T --mode none|failed|completed [--dry-run]
                      (--reprocess-behavior: Airflow's name for --mode, the same values)
    phasectl dlq list [--function F] [--json]
    phasectl dlq replay --function F [--max N] [--dry-run]
    phasectl schedules [--json]                          (every scheduled job: next fire, last run)
    phasectl schedules run JOB [--date D] [--force]      (one slot by hand, through the dispatcher)
    phasectl season status|pause|resume [--wave A|B|C] [--note TEXT]
    phasectl deploy plan|apply|verify [--project P] [--region R] [--function NAME]
    phasectl deploy secret set NAME [--project P]         (the value from stdin; never an argument)
    phasectl local up [--accelerate N] [--at INSTANT] [--state-dir DIR] [--no-seed]
    phasectl local down [--state-dir DIR]

Backends: a command checks the ones it needs before it first uses them (``phasectl.connect``):
an emulator variable pointing at nothing, or no Google Cloud login, is one line and exit 2 at
once. Every call then has the ``--timeout`` deadline (``shared.deadline``): a backend that
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

from phasectl.app import main
from phasectl.commands.health import parse_since, read_local_errors
from phasectl.commands.trigger import classify
from phasectl.core import BACKFILL_MODES, NOW_ENV, Context, UsageError, cli_clock
from phasectl.parser import build_parser

__all__ = [
    "BACKFILL_MODES",
    "NOW_ENV",
    "Context",
    "UsageError",
    "build_parser",
    "classify",
    "cli_clock",
    "main",
    "parse_since",
    "read_local_errors",
]
