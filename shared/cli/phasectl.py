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

import argparse
import dataclasses
import getpass
import io
import json
import os
import re
import sys
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, TextIO, cast

from shared.cli import cli_help
from shared.cli.cli_connect import (
    BACKEND_ATTRIBUTE,
    BIGQUERY,
    DEFAULT_TIMEOUT,
    FIRESTORE,
    MAX_TIMEOUT,
    PUBSUB,
    BackendError,
    Backends,
    failure_line,
)
from shared.cli.printable import printable
from shared.clock import Clock, FixedClock, resolve_game_date
from shared.clock import clock_from_env as shared_clock_from_env
from shared.errors import ConfigError, InvalidDateError, InvalidGameIdError, PipelineError
from shared.pipeline.definition import PipelineDefinition, Transition, load_definition

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import bigquery, firestore

    from shared.orchestration.state import DateState, TransitionState
    from shared.retry.queue import QueueRow, RetryQueue

NOW_ENV = "PHASECTL_NOW"
LOG_DIR_ENV = "PHASECTL_LOG_DIR"
AUDIT_COLLECTION = "operator_audit"
MONITOR_STALE_MINUTES = 30  # the monitor runs every 10 min: three missed runs is stale
MAX_BACKFILL_DAYS = 400
HTML_DAYS_DEFAULT = 7
HTML_DAYS_MAX = 120
STATUS_PORT_DEFAULT = 8765  # shared.cli.status_serve.DEFAULT_PORT
BACKFILL_MODES = {"none": ("none",), "failed": ("none", "failed"), "completed": ("none", "failed", "completed")}
# the backends each command uses (checked together before the first is touched); a dry run writes nothing
NEEDS: dict[str, frozenset[str]] = {
    "status": frozenset({FIRESTORE}),
    "reconcile": frozenset({FIRESTORE, BIGQUERY}),
    "retry list": frozenset({BIGQUERY}),
    "retry requeue": frozenset({BIGQUERY, FIRESTORE}),  # Firestore: the audit record
    "retry resolve": frozenset({BIGQUERY, FIRESTORE}),
    "mark-unavailable": frozenset({BIGQUERY, FIRESTORE}),
    "trigger": frozenset({FIRESTORE, PUBSUB}),  # + BigQuery when the transition's gates query it
    "publish completion": frozenset({PUBSUB, FIRESTORE}),
    "health": frozenset({FIRESTORE}),
    "backfill": frozenset({FIRESTORE, PUBSUB}),
    "dlq list": frozenset({PUBSUB}),
    "dlq replay": frozenset({PUBSUB, FIRESTORE}),
}
DRY_RUN_NEEDS: dict[str, frozenset[str]] = {"backfill": frozenset({FIRESTORE}), "dlq replay": frozenset({PUBSUB})}
# commands whose clients are made outside the Context (shared.cli.dlq): checked and bounded before they run
PREPARE_FIRST = frozenset({"dlq list", "dlq replay"})


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        where = self.prog.removeprefix("phasectl").strip()
        raise UsageError(f"{where}: {message}" if where else message)


def _needs(args: argparse.Namespace) -> frozenset[str]:
    path = getattr(args, "command_path", "")
    if getattr(args, "dry_run", False) and path in DRY_RUN_NEEDS:
        return DRY_RUN_NEEDS[path]
    return NEEDS.get(path, frozenset())


# -- context -----------------------------------------------------------------------------------
@dataclass
class Context:
    definition: PipelineDefinition
    clock: Clock
    env: dict[str, str]
    out: TextIO
    err: TextIO
    _project: str | None = None
    _fs: Any = None
    _bq: Any = None
    timeout: float = DEFAULT_TIMEOUT  # seconds: the deadline of every backend call (--timeout)
    needs: frozenset[str] = frozenset()  # the command's backends, checked together before the first use
    _backends: Backends | None = None
    _pub: Any = None
    _undo: list[Callable[[], None]] = field(default_factory=list)

    @property
    def project(self) -> str:
        if self._project is None:
            self._project = _resolve_project(self.env)
            self.env["GOOGLE_CLOUD_PROJECT"] = self._project
        return self._project

    @property
    def backends(self) -> Backends:
        """The command's backends; the emulator variables are read where the client factories read them."""
        if self._backends is None:
            self._backends = Backends(os.environ, self.needs, deadline=self.timeout)
        return self._backends

    def firestore(self) -> firestore.Client:
        if self._fs is None:
            self.backends.ensure(FIRESTORE)
            from shared.cli.cli_deadline import bind_firestore
            from shared.gcp import firestore_client

            client = firestore_client(self.project)
            self._undo.append(bind_firestore(client, self.timeout, self.backends.label(FIRESTORE)))
            self._fs = client
        return cast("firestore.Client", self._fs)

    def bq(self) -> bigquery.Client:
        if self._bq is None:
            self.backends.ensure(BIGQUERY)
            from shared.cli.cli_deadline import bind_http
            from shared.gcp_bigquery import bigquery_client

            client = bigquery_client(self.project)
            emulator = self.backends.emulator(BIGQUERY)
            unreachable = emulator.unreachable("connection refused") if emulator else None
            self._undo.append(bind_http(client, self.timeout, self.backends.label(BIGQUERY), unreachable))
            self._bq = client
        return cast("bigquery.Client", self._bq)

    def publisher(self) -> pubsub_v1.PublisherClient:
        if self._pub is None:
            self.backends.ensure(PUBSUB)
            from shared.cli.cli_deadline import bind_publisher
            from shared.gcp import publisher_client

            client = publisher_client()
            self._undo.append(bind_publisher(client, self.timeout, self.backends.label(PUBSUB)))
            self._pub = client
        return self._pub

    def prepare(self, *extra: str) -> None:
        """Check the command's backends (and ``extra``), then bound the shared clients of each.

        For code that makes its own clients from the shared factories (the transition service,
        ``shared.cli.dlq``): it gets these instances, with the deadline. A Pub/Sub subscriber is
        not shared (``shared.gcp.subscriber_client``): its calls keep their own timeouts.
        """
        wanted = self.needs | set(extra)
        self.backends.ensure(*wanted)
        for key, make in ((FIRESTORE, self.firestore), (PUBSUB, self.publisher), (BIGQUERY, self.bq)):
            if key in wanted:
                make()

    def close(self) -> None:
        """The shared clients as they were (an in-process caller keeps using them)."""
        while self._undo:
            self._undo.pop()()

    def bq_retry(self) -> Any:
        """BigQuery's default retry, bounded by the deadline (its own is 10 minutes)."""
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        return DEFAULT_RETRY.with_timeout(self.timeout)

    def now(self) -> datetime:
        return self.clock.now()

    def state(self, transition: str) -> TransitionState:
        from shared.orchestration.state import TransitionState

        s = self.definition.pipeline
        return TransitionState(
            self.firestore(), s.state_collection, transition, quarantine_collection=s.quarantine_collection
        )

    def queue(self) -> RetryQueue:
        from shared.retry.queue import RetryQueue

        return RetryQueue(self.bq, self.project, self.definition.pipeline.dataset, self.definition.retry, self.clock)

    def print(self, text: str = "") -> None:
        """Text output: stored values may carry terminal escape sequences, shown escaped here."""
        self.out.write(printable(text) + "\n")

    def dump(self, data: Any) -> None:
        self.out.write(json.dumps(data, indent=2, sort_keys=True, default=_json_default) + "\n")

    def audit(self, command: str, args: Mapping[str, Any], result: str) -> None:
        now, retention = self.now(), self.definition.retention
        doc = {
            "who": self.env.get("USER") or _user(),
            "when": now,
            "command": command,
            "args": {k: _json_default(v) if isinstance(v, date | datetime) else v for k, v in args.items()},
            "result": result,
            "project": self.project,
            # the collection's Firestore TTL policy deletes it then (lesson L25; phasectl deploy creates it)
            retention.expiry_field: now + timedelta(days=retention.audit_days),
        }
        self.firestore().collection(AUDIT_COLLECTION).add(doc, timeout=self.timeout)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | set | frozenset):
        return list(value)
    return str(value)


def _resolve_project(env: Mapping[str, str]) -> str:
    from shared.env import project_id

    try:
        return project_id(env)
    except ConfigError:
        pass
    try:  # like gcloud: Application Default Credentials know the project
        import google.auth
        from google.auth.exceptions import DefaultCredentialsError

        try:
            _, project = google.auth.default()
        except DefaultCredentialsError:
            project = None
    except ImportError:
        project = None
    if not project:
        raise UsageError("no Google Cloud project: set GOOGLE_CLOUD_PROJECT or configure gcloud/ADC")
    return str(project)


def clock_from_env(env: Mapping[str, str]) -> Clock:
    raw = (env.get(NOW_ENV) or "").strip()
    if not raw:  # the system clock, or the local cloud's simulated one ($PHASECHAIN_SIMULATED_CLOCK)
        return shared_clock_from_env(env)
    try:
        value = datetime.fromisoformat(raw)
    except ValueError:
        raise UsageError(f"{NOW_ENV}={raw!r} is not an ISO 8601 instant like 2026-01-25T15:00:00Z") from None
    if value.tzinfo is None:
        raise UsageError(f"{NOW_ENV}={raw!r} needs a timezone (e.g. a trailing Z)")
    return FixedClock(value)


def _date(ctx: Context, value: str) -> date:
    import zoneinfo

    try:
        return resolve_game_date(value, ctx.clock, zoneinfo.ZoneInfo(ctx.definition.pipeline.timezone))
    except InvalidDateError as exc:
        raise UsageError(exc.message) from None


def _transition(ctx: Context, name: str) -> Transition:
    try:
        return ctx.definition.transition(name)
    except KeyError:
        known = ", ".join(t.name for t in ctx.definition.transitions)
        raise UsageError(f"unknown transition {name!r} (known: {known})") from None


def _processor(ctx: Context, name: str) -> tuple[str, int]:
    for phase in sorted({p.phase for p in ctx.definition.processors}):
        canonical = ctx.definition.normalise_processor(phase, name)
        if canonical is not None:
            return canonical, phase
    raise UsageError(f"unknown processor {name!r}")


# -- status ------------------------------------------------------------------------------------
def _heartbeats(ctx: Context) -> list[Any]:
    from shared.cli.reconcile import Heartbeat
    from shared.monitor.checks import (
        MONITOR_HEARTBEAT_ID,
        RETRY_HEARTBEAT_ID,
        recorded_up_since,
        retry_heartbeat_grace,
    )

    collection = ctx.firestore().collection(ctx.definition.monitor.heartbeat_collection)
    monitor = collection.document(MONITOR_HEARTBEAT_ID).get(timeout=ctx.timeout)
    up = recorded_up_since(monitor)
    # a missing auto-retry heartbeat is expected, not stale, for one schedule interval after the
    # monitor first ran (the same grace the monitor's own check gives)
    retry_due = up + retry_heartbeat_grace(ctx.definition) if up is not None else None
    out = []
    for label, doc_id, stale, expected_by in (
        ("monitor", MONITOR_HEARTBEAT_ID, MONITOR_STALE_MINUTES, None),
        ("auto-retry", RETRY_HEARTBEAT_ID, ctx.definition.monitor.retry_heartbeat_stale_minutes, retry_due),
    ):
        snap = monitor if doc_id == MONITOR_HEARTBEAT_ID else collection.document(doc_id).get(timeout=ctx.timeout)
        last = (snap.to_dict() or {}).get("last_run_at") if snap.exists else None
        out.append(Heartbeat(label, last if isinstance(last, datetime) else None, stale, expected_by))
    return out


def _phase_lines(ctx: Context, day: date) -> list[Any]:
    from shared.cli.reconcile import phase_line, timed_line

    lines = [phase_line(ctx.definition, t, ctx.state(t.name).load(day), ctx.clock) for t in ctx.definition.transitions]
    return lines + [timed_line(t, ctx.state(t.name).load(day)) for t in ctx.definition.timed_triggers()]


def _html_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid day count {value!r}") from None
    if not 1 <= days <= HTML_DAYS_MAX:
        raise argparse.ArgumentTypeError(f"{days} is not in 1..{HTML_DAYS_MAX}")
    return days


def _active_findings(ctx: Context) -> list[Any]:
    from shared.cli.status_html import ActiveFinding, sort_findings

    collection = ctx.firestore().collection(ctx.definition.monitor.alert_collection)
    docs = collection.stream(timeout=ctx.timeout)
    return sort_findings(ActiveFinding.from_doc(d.id, d.to_dict() or {}) for d in docs)


def _write_page(path: Path, page: str) -> None:
    """Whole-file replace, so a web server never serves half a page."""
    partial = path.with_name(f".{path.name}.partial")
    try:
        partial.write_text(page, encoding="utf-8")
        partial.replace(path)
    except OSError as exc:
        raise UsageError(f"cannot write {path}: {exc.strerror or exc}") from None


STATUS_REFRESH_SECONDS = 30
DLQ_PAGE_LIMIT = 100  # messages counted per dead-letter subscription for the page ("100+" beyond)


def _port(value: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid port {value!r}") from None
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError(f"{port} is not in 1..65535")
    return port


def _dead_letter_backlog(ctx: Context) -> list[Any]:
    """Per function: its dead-letter backlog, read as ``dlq list`` reads it (leased, then handed back at once)."""
    from shared.cli import dlq
    from shared.cli.status_html import DeadLetterBacklog
    from shared.gcp import subscriber_client

    subscriber = subscriber_client()
    out = []
    for fn in dlq._functions(ctx, None):
        path = subscriber.subscription_path(ctx.project, fn.dead_letter_subscription)
        if not dlq._exists(subscriber, path):
            out.append(DeadLetterBacklog(fn.name, fn.dead_letter_subscription, None))
            continue
        found, more = dlq._pull(subscriber, path, fn, DLQ_PAGE_LIMIT)
        try:
            out.append(DeadLetterBacklog.of(fn.name, fn.dead_letter_subscription, found, more))
        finally:
            dlq.release(subscriber, path, [m.ack_id for m in found])
    return out


def _status_page(ctx: Context, day: date, days: int, refresh_seconds: int | None = None) -> tuple[str, int, int]:
    """(the page, status's exit code over its dates, the number of findings)."""
    from shared.cli.reconcile import StatusReport
    from shared.cli.status_html import collect_status_lines, render_status_html

    now = ctx.now()
    dates = [day - timedelta(days=n) for n in range(days)]
    got = collect_status_lines(ctx.definition, lambda name, d: ctx.state(name).load(d), ctx.clock, dates)
    heartbeats = tuple(_heartbeats(ctx))
    findings = _active_findings(ctx)
    unread: dict[str, str] = {}
    retry_rows: list[Any] | None = None
    dead_letters: list[Any] | None = None
    try:  # the dates shown, and whatever still waits for a retry
        retry_rows = [r for r in ctx.queue().rows() if r.game_date in dates or r.status in ("pending", "retrying")]
    except Exception as exc:  # noqa: BLE001 — the page says why the section is missing
        unread["retry_queue"] = f"{type(exc).__name__}: {exc}"
    try:
        dead_letters = _dead_letter_backlog(ctx)
    except Exception as exc:  # noqa: BLE001 — the page says why the section is missing
        unread["dead_letters"] = f"{type(exc).__name__}: {exc}"
    page = render_status_html(
        now,
        dates,
        got.lines_by_date,
        heartbeats,
        findings,
        counts=got.counts,
        retry_rows=retry_rows,
        dead_letters=dead_letters,
        timezone=ctx.definition.pipeline.timezone,
        refresh_seconds=refresh_seconds,
        unread=unread,
    )
    blocked = any(p.decision == "blocked" for day_lines in got.lines_by_date.values() for p in day_lines)
    code = 1 if blocked else StatusReport(day, now, got.lines_by_date[day], heartbeats).exit_code
    return page, code, len(findings)


def _status_html(ctx: Context, day: date, path: Path, days: int) -> int:
    page, code, findings = _status_page(ctx, day, days)
    _write_page(path, page)
    columns = len(ctx.definition.transitions) + len(ctx.definition.timed_triggers())
    ctx.print(
        f"wrote {path} ({days} dates \N{MULTIPLICATION SIGN} {columns} transitions and sensors, {findings} findings)"
    )
    return code


def _status_serve(ctx: Context, date_arg: str, days: int, port: int) -> int:
    from shared.cli.status_serve import serve_status

    def render() -> str:  # the date is resolved per render: YESTERDAY moves on with the clock
        return _status_page(ctx, _date(ctx, date_arg), days, STATUS_REFRESH_SECONDS)[0]

    try:
        serve_status(render, port=port, refresh_seconds=STATUS_REFRESH_SECONDS, out=ctx.out, err=ctx.err)
    except OSError as exc:
        raise UsageError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    return 0


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    from shared.cli.reconcile import StatusReport

    if args.days is not None and args.html is None and not args.serve:
        raise UsageError("--days applies to --html and --serve only")
    if args.port is not None and not args.serve:
        raise UsageError("--port applies to --serve only")
    day = _date(ctx, args.date)
    if args.serve:
        return _status_serve(ctx, args.date, args.days or HTML_DAYS_DEFAULT, args.port or STATUS_PORT_DEFAULT)
    if args.html is not None:
        return _status_html(ctx, day, Path(args.html), args.days or HTML_DAYS_DEFAULT)
    report = StatusReport(day, ctx.now(), tuple(_phase_lines(ctx, day)), tuple(_heartbeats(ctx)))
    if args.json:
        ctx.dump(report.as_dict())
    else:
        ctx.print(report.render())
    return report.exit_code


# -- reconcile ---------------------------------------------------------------------------------
def _sources(ctx: Context) -> Any:
    from shared.orchestration.gate_queries import BigQueryGateQueries

    return BigQueryGateQueries(ctx.bq, ctx.project, ctx.definition.games, deadline_seconds=ctx.timeout)


def _log_rows(ctx: Context, day: date) -> list[dict[str, Any]]:
    from google.cloud import bigquery as bq

    s = ctx.definition.pipeline
    sql = (
        "SELECT phase_name, status, execution_timestamp, start_time, duration_seconds, trigger_id, games_processed "
        f"FROM `{ctx.project}.{s.dataset}.{s.phase_execution_log_table}` WHERE game_date = @game_date "
        "ORDER BY execution_timestamp, phase_name"
    )
    config = bq.QueryJobConfig(query_parameters=[bq.ScalarQueryParameter("game_date", "DATE", day)])
    job = ctx.bq().query(sql, job_config=config, retry=ctx.bq_retry(), timeout=ctx.timeout)
    return [dict(r.items()) for r in job.result(retry=ctx.bq_retry(), timeout=ctx.timeout)]


def _row_dict(row: QueueRow) -> dict[str, Any]:
    return dataclasses.asdict(row)


def cmd_reconcile(ctx: Context, args: argparse.Namespace) -> int:
    from shared.cli.reconcile import build_reconcile

    day = _date(ctx, args.date)
    inputs = _sources(ctx).load(day)
    report = build_reconcile(
        ctx.definition,
        day,
        inputs,
        phases=_phase_lines(ctx, day),
        log_rows=_log_rows(ctx, day),
        retry_rows=[_row_dict(r) for r in ctx.queue().rows(game_date=day)],
    )
    if args.json:
        ctx.dump(report.as_dict(detailed=args.detailed))
    else:
        ctx.print(report.render(detailed=args.detailed))
    return report.exit_code


# -- retry ---------------------------------------------------------------------------------------
def cmd_retry_list(ctx: Context, args: argparse.Namespace) -> int:
    from shared.cli.reconcile import format_table

    day = _date(ctx, args.date) if args.date else None
    rows = [r for r in ctx.queue().rows(game_date=day) if args.status is None or r.status == args.status]
    if args.json:
        ctx.dump({"version": 1, "command": "retry list", "rows": [_row_dict(r) for r in rows]})
        return 0
    ctx.print(
        format_table(
            ("ID", "DATE", "PHASE", "PROCESSOR", "STATUS", "RETRIES", "NEXT RETRY", "FALLBACK FOR", "NOTES"),
            [
                (
                    r.id,
                    r.game_date,
                    r.phase,
                    r.processor_name,
                    r.status,
                    f"{r.retry_count}/{r.max_retries}",
                    r.next_retry_at.strftime("%Y-%m-%d %H:%M") if r.next_retry_at else "-",
                    r.fallback_for or "-",
                    (r.resolution_notes or r.error_message or "-")[:60],
                )
                for r in rows
            ],
        )
    )
    ctx.print(f"{len(rows)} row(s)")
    return 0


def cmd_retry_requeue(ctx: Context, args: argparse.Namespace) -> int:
    day = _date(ctx, args.date)
    processor, phase = _processor(ctx, args.processor)
    note = f"requeued by {ctx.env.get('USER') or _user()}: {args.note}"
    count = ctx.queue().requeue_permanent(game_date=day, phase=phase, processor=processor, note=note)
    ctx.audit("retry requeue", {"date": day, "processor": processor, "note": args.note}, f"{count} row(s)")
    if not count:
        ctx.print(f"nothing requeued: no failed_permanent row for {processor} on {day}")
        return 1
    ctx.print(f"requeued {count} row(s) of {processor} on {day}: pending, fresh retry budget")
    return 0


def cmd_retry_resolve(ctx: Context, args: argparse.Namespace) -> int:
    queue = ctx.queue()
    wanted = args.row_id.strip()
    if len(wanted) < 6:
        raise UsageError(f"row id {wanted!r} is too short (give at least 6 characters)")
    matches = [r for r in queue.rows() if r.id == wanted or r.id.startswith(wanted)]
    if not matches:
        raise UsageError(f"unknown retry row id {wanted!r}")
    if len(matches) > 1:
        raise UsageError(f"retry row id {wanted!r} is ambiguous ({len(matches)} rows)")
    row = matches[0]
    if row.status not in ("pending", "retrying", "failed_permanent"):
        ctx.print(f"row {row.id} is already {row.status}: nothing to resolve")
        return 1
    note = f"resolved by {ctx.env.get('USER') or _user()}: {args.note}"
    # the queue's own guarded status change (also from failed_permanent, which mark_succeeded excludes)
    changed = queue.resolve(row, note)
    ctx.audit("retry resolve", {"row_id": row.id, "note": args.note}, "resolved" if changed else "unchanged")
    ctx.print(
        f"row {row.id} ({row.processor_name} {row.game_date}) {'resolved' if changed else 'changed concurrently'}"
    )
    return 0 if changed else 1


# -- mark-unavailable ----------------------------------------------------------------------------
def _schedule_dates(ctx: Context, nba_id: str) -> list[date]:
    from google.cloud import bigquery as bq

    g = ctx.definition.games
    # the replaced system's schedule requires a partition filter: search a season either side of today
    today = ctx.now().date()
    sql = (
        f"SELECT DISTINCT {g.schedule_date_column} AS game_date FROM `{ctx.project}.{g.schedule_table}` "
        f"WHERE {g.schedule_date_column} BETWEEN @start AND @end "
        f"AND CAST({g.schedule_game_id_column} AS STRING) IN (@id10, @id8) ORDER BY game_date"
    )
    config = bq.QueryJobConfig(
        query_parameters=[
            bq.ScalarQueryParameter("id10", "STRING", nba_id),
            bq.ScalarQueryParameter("id8", "STRING", nba_id[2:]),
            bq.ScalarQueryParameter("start", "DATE", today - timedelta(days=400)),
            bq.ScalarQueryParameter("end", "DATE", today + timedelta(days=400)),
        ]
    )
    job = ctx.bq().query(sql, job_config=config, retry=ctx.bq_retry(), timeout=ctx.timeout)
    return [r["game_date"] for r in job.result(retry=ctx.bq_retry(), timeout=ctx.timeout)]


def _dml(ctx: Context, sql: str, params: Sequence[tuple[str, str, Any]]) -> int:
    from google.cloud import bigquery as bq

    config = bq.QueryJobConfig(query_parameters=[bq.ScalarQueryParameter(n, t, v) for n, t, v in params])
    job = ctx.bq().query(sql, job_config=config, retry=ctx.bq_retry(), timeout=ctx.timeout)
    job.result(retry=ctx.bq_retry(), timeout=ctx.timeout)
    return int(job.num_dml_affected_rows or 0)


def cmd_mark_unavailable(ctx: Context, args: argparse.Namespace) -> int:
    from shared.game_ids import DateTeamsGameId, GameIdConverter, parse_game_id

    try:
        parsed = parse_game_id(args.game_id)
    except InvalidGameIdError as exc:
        raise UsageError(exc.message) from None
    if not args.reason.strip():
        raise UsageError("--reason must not be empty")
    day = _date(ctx, args.date) if args.date else None
    if isinstance(parsed, DateTeamsGameId):
        if day is not None and day != parsed.game_date:
            raise UsageError(f"game {parsed.format()} is on {parsed.game_date}, not {day}")
        day = parsed.game_date
    elif day is None:
        dates = _schedule_dates(ctx, parsed.format())
        if not dates:
            raise UsageError(f"unknown game id {args.game_id!r}: not in the schedule")
        if len(dates) > 1:
            raise UsageError(f"game {parsed.format()} is scheduled on {', '.join(map(str, dates))}: pass --date")
        day = dates[0]
    inputs = _sources(ctx).load(day)
    converter = GameIdConverter.from_schedule(inputs.schedule)
    try:
        entry = converter.entry(parsed)
    except InvalidGameIdError:
        raise UsageError(f"unknown game id {args.game_id!r}: not in the schedule of {day}") from None
    canonical, nba = entry.date_teams_game_id, entry.nba_game_id
    marked = False
    for raw in inputs.unavailable_game_ids:
        try:
            marked = marked or converter.canonical(raw) == canonical
        except InvalidGameIdError:
            continue
    table = f"`{ctx.project}.{ctx.definition.games.unavailable_table}`"
    label = f"{canonical} ({entry.away}@{entry.home}, {nba}) on {day}"
    call = {"game_id": canonical, "nba_game_id": nba, "date": day, "reason": args.reason, "undo": args.undo}
    if args.undo:
        if not marked:
            ctx.print(f"{label} is not marked unavailable: nothing to undo")
            return 1
        count = _dml(
            ctx,
            f"DELETE FROM {table} WHERE game_date = @game_date AND game_id IN (@canonical, @nba10, @nba8)",
            [
                ("game_date", "DATE", day),
                ("canonical", "STRING", canonical),
                ("nba10", "STRING", nba),
                ("nba8", "STRING", nba[2:]),
            ],
        )
        ctx.audit("mark-unavailable --undo", call, f"deleted {count} row(s)")
        ctx.print(f"{label} counts again toward coverage and completeness ({count} row(s) removed)")
        return 0
    if marked:
        ctx.print(f"{label} is already marked unavailable")
        return 0
    _dml(
        ctx,
        f"INSERT INTO {table} (game_id, game_date, reason, marked_at) "
        "VALUES (@game_id, @game_date, @reason, @marked_at)",
        [
            ("game_id", "STRING", canonical),
            ("game_date", "DATE", day),
            ("reason", "STRING", args.reason),
            ("marked_at", "TIMESTAMP", ctx.now()),
        ],
    )
    ctx.audit("mark-unavailable", call, "marked")
    ctx.print(f"{label} marked unavailable ({args.reason}): excluded from coverage and completeness from now on")
    return 0


# -- trigger and backfill ---------------------------------------------------------------------------
def _service_backends(ctx: Context, transition: Transition) -> tuple[str, ...]:
    """BigQuery too when the transition's gates query it (a service_health gate probes HTTP)."""
    kinds = {ctx.definition.gates[g].kind for g in transition.gates}
    return (BIGQUERY,) if kinds - {"service_health"} else ()


def _service(ctx: Context, transition: str) -> Any:
    from shared.orchestration.runtime import build_service

    # its clients come from the shared factories: checked, then bounded by the deadline, here
    ctx.prepare(*_service_backends(ctx, ctx.definition.transition(transition)))
    _ = ctx.project  # resolve (and export) the project first
    return build_service(transition, definition=ctx.definition, clock=ctx.clock, environ=ctx.env)


def _run_one(ctx: Context, service: Any, day: date, force: bool, why: str) -> Any:
    if force:
        service.state.reopen(day, ctx.now(), why)
    owner = f"phasectl:{ctx.env.get('USER') or _user()}:{uuid.uuid4().hex[:8]}"
    return service.evaluate(day, correlation_id=f"phasectl-{uuid.uuid4().hex[:12]}", owner=owner)


def cmd_trigger(ctx: Context, args: argparse.Namespace) -> int:
    transition = _transition(ctx, args.transition)
    day = _date(ctx, args.date)
    service = _service(ctx, transition.name)
    user = ctx.env.get("USER") or _user()
    outcome = _run_one(ctx, service, day, args.force, f"phasectl trigger --force by {user}")
    ctx.audit(
        "trigger",
        {"transition": transition.name, "date": day, "force": args.force},
        f"{outcome.kind} {outcome.trigger_id or ''}".strip(),
    )
    ctx.print(f"{transition.name} {day}: {outcome.kind}" + (f" ({outcome.trigger_id})" if outcome.trigger_id else ""))
    ctx.print(f"  {outcome.detail}")
    return 0 if outcome.kind in ("triggered", "already_triggered") else 1


def cmd_publish_completion(ctx: Context, args: argparse.Namespace) -> int:
    """Publish a completion shaped exactly as the replaced system's processors build it."""
    from shared.client.completion import build_completion

    canonical, phase_number = _processor(ctx, args.processor)
    phase = ctx.definition.phase(phase_number)
    day = _date(ctx, args.date)
    try:
        metadata = json.loads(args.metadata) if args.metadata else {}
    except ValueError as exc:
        raise UsageError(f"--metadata is not JSON: {exc}") from None
    if not isinstance(metadata, dict):
        raise UsageError("--metadata must be a JSON object")
    user = ctx.env.get("USER") or _user()
    try:
        message = build_completion(
            processor_name=args.processor,
            phase=f"phase_{phase.number}_{phase.name}",
            game_date=day,
            status=args.status,
            execution_id=f"phasectl-{uuid.uuid4().hex[:8]}",
            output_table=ctx.definition.processor(canonical).output_table,
            record_count=args.records,
            trigger_source="manual",
            error_message=args.error_message,
            error_type=args.error_type,
            metadata={**metadata, "published_by": f"phasectl publish completion ({user})"},
            now=ctx.now(),
        )
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    publisher = ctx.publisher()
    topic = publisher.topic_path(ctx.project, phase.completion_topic)
    future = publisher.publish(topic, json.dumps(message).encode("utf-8"))
    try:  # the publish call itself fails at the deadline: a second more for its batch to report it
        message_id = future.result(timeout=ctx.timeout + 1)
    except TimeoutError as exc:
        setattr(exc, BACKEND_ATTRIBUTE, ctx.backends.label(PUBSUB))
        raise
    ctx.audit(
        "publish completion",
        {"processor": args.processor, "date": day, "status": args.status, "records": args.records},
        f"message {message_id} on {phase.completion_topic}",
    )
    ctx.print(
        f"published {args.status} completion of {args.processor} ({canonical}, phase {phase.number}) for {day} "
        f"to {phase.completion_topic}: message {message_id}"
    )
    return 0


def classify(state: DateState) -> str:
    """Airflow-style run state of a date: completed | failed | none."""
    if state.triggered_current is not None:
        return "completed"
    if state.status in ("blocked", "gate_error", "publish_failed"):
        return "failed"
    return "none"


def _progress(err: TextIO, done: int, total: int, label: str) -> None:
    width = 30
    filled = int(width * done / total) if total else width
    line = f"[{'#' * filled}{'.' * (width - filled)}] {done}/{total} {label}"
    if err.isatty():
        err.write("\r" + line.ljust(80) + ("\n" if done == total else ""))
    else:
        err.write(line + "\n")
    err.flush()


def cmd_backfill(ctx: Context, args: argparse.Namespace) -> int:
    from shared.cli.reconcile import format_table

    transition = _transition(ctx, args.transition)
    start, end = _date(ctx, args.date_from), _date(ctx, args.date_to)
    if end < start:
        raise UsageError(f"range reversed: --from {start} is after --to {end}")
    days = (end - start).days + 1
    if days > MAX_BACKFILL_DAYS:
        raise UsageError(f"range of {days} days is longer than {MAX_BACKFILL_DAYS}")
    wanted = BACKFILL_MODES[args.mode]
    if not args.dry_run:  # every backend the run needs, before the first date is read
        ctx.backends.ensure(*_service_backends(ctx, transition))
    state = ctx.state(transition.name)
    plan: list[tuple[date, str]] = []
    for n in range(days):
        day = start + timedelta(days=n)
        plan.append((day, classify(state.load(day))))
    selected = [(d, c) for d, c in plan if c in wanted]
    if args.dry_run:
        rows = [
            (d, c, ("re-trigger (new generation)" if c == "completed" else "evaluate") if c in wanted else "skip")
            for d, c in plan
        ]
        ctx.print(format_table(("DATE", "STATE", "ACTION"), rows))
        ctx.print(f"dry run: {len(selected)} of {days} date(s) would be re-triggered (mode {args.mode})")
        return 0
    service = _service(ctx, transition.name) if selected else None
    results: dict[str, list[str]] = {}
    user = ctx.env.get("USER") or _user()
    for i, (day, category) in enumerate(selected, start=1):
        outcome = _run_one(
            ctx, service, day, category == "completed", f"phasectl backfill --mode {args.mode} by {user}"
        )
        results.setdefault(outcome.kind, []).append(day.isoformat())
        _progress(ctx.err, i, len(selected), f"{day} {outcome.kind}")
    summary = ", ".join(f"{kind} {len(ds)}" for kind, ds in sorted(results.items())) or "nothing to do"
    ctx.audit(
        "backfill",
        {"transition": transition.name, "from": start, "to": end, "mode": args.mode},
        summary,
    )
    ctx.print(
        f"backfill {transition.name} {start}..{end} mode {args.mode}: {len(selected)} of {days} date(s); {summary}"
    )
    for kind, ds in sorted(results.items()):
        if kind not in ("triggered", "already_triggered"):
            ctx.print(f"  {kind}: {', '.join(ds)}")
    return 0 if set(results) <= {"triggered", "already_triggered"} else 1


# -- health --------------------------------------------------------------------------------------
_SINCE_RE = re.compile(r"([0-9]+)\s*([smhd])")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def parse_since(value: str) -> timedelta:
    match = _SINCE_RE.fullmatch(value.strip().lower())
    if match is None or int(match.group(1)) <= 0:
        raise UsageError(f"invalid --since {value!r}: expected a duration like 30m, 1h or 2d")
    return timedelta(**{_UNITS[match.group(2)]: int(match.group(1))})


@dataclass
class FunctionErrors:
    function: str
    count: int = 0
    last_at: datetime | None = None
    last_message: str | None = None
    samples: list[str] = field(default_factory=list)

    def as_dict(self) -> dict[str, Any]:
        return {
            "function": self.function,
            "errors": self.count,
            "last_at": None if self.last_at is None else self.last_at.isoformat(),
            "last_message": self.last_message,
        }


def read_local_errors(log_dir: Path, functions: Sequence[str], since: datetime) -> list[FunctionErrors]:
    """ERROR/CRITICAL JSON lines of each ``function-<name>.log`` at or after ``since``."""
    out = []
    for name in functions:
        entry = FunctionErrors(name)
        path = log_dir / f"function-{name}.log"
        try:
            lines = path.read_text(errors="replace").splitlines()
        except OSError:
            lines = []
        for line in lines:
            if not line.startswith("{"):
                continue
            try:
                doc = json.loads(line)
            except ValueError:
                continue
            if not isinstance(doc, dict) or str(doc.get("severity", "")).upper() not in ("ERROR", "CRITICAL"):
                continue
            at = _parse_time(doc.get("time") or doc.get("timestamp"))
            if at is not None and at < since:
                continue
            entry.count += 1
            if at is None or entry.last_at is None or at >= entry.last_at:
                entry.last_at, entry.last_message = at, str(doc.get("message", ""))[:200]
        out.append(entry)
    return out


def _parse_time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _cloud_errors(ctx: Context, functions: Sequence[str], since: datetime) -> tuple[list[FunctionErrors], str | None]:
    try:
        from google.cloud import logging as cloud_logging  # type: ignore[attr-defined]
    except ImportError:
        return [], "Cloud Logging client not installed (pip install google-cloud-logging to see function errors)"
    client = cloud_logging.Client(project=ctx.project)
    out = []
    for name in functions:
        entry = FunctionErrors(name)
        service = name.replace("_", "-")
        flt = (
            f'severity>=ERROR AND timestamp>="{since.isoformat()}" AND '
            f'(resource.labels.service_name="{service}" OR resource.labels.function_name="{name}")'
        )
        for log in client.list_entries(filter_=flt, order_by=cloud_logging.DESCENDING, max_results=100):
            entry.count += 1
            if entry.last_at is None:
                payload = log.payload
                message = payload.get("message") if isinstance(payload, dict) else payload
                entry.last_at, entry.last_message = log.timestamp, str(message)[:200]
        out.append(entry)
    return out, None


def cmd_health(ctx: Context, args: argparse.Namespace) -> int:
    from shared.cli.reconcile import format_table

    window = parse_since(args.since)
    now = ctx.now()
    since = now - window
    functions = list(ctx.definition.function_names())  # every deployed function, sensors' included
    log_dir = args.log_dir or ctx.env.get(LOG_DIR_ENV)
    note: str | None = None
    if log_dir:
        if not Path(log_dir).is_dir():
            raise UsageError(f"log directory {log_dir!r} does not exist")
        errors, source = read_local_errors(Path(log_dir), functions, since), f"local logs in {log_dir}"
    elif ctx.env.get("FIRESTORE_EMULATOR_HOST"):
        raise UsageError(f"local emulators in use: give the function log directory with --log-dir or ${LOG_DIR_ENV}")
    else:
        ctx.backends.ensure(FIRESTORE)  # Google Cloud: logged in? (before Cloud Logging is asked)
        errors, note = _cloud_errors(ctx, functions, since)
        source = f"Cloud Logging, project {ctx.project}"
    heartbeats = _heartbeats(ctx)
    problem = note is not None or any(e.count for e in errors) or not all(h.healthy(now) for h in heartbeats)
    if args.json:
        ctx.dump(
            {
                "version": 1,
                "command": "health",
                "now": now.isoformat(),
                "since": since.isoformat(),
                "source": source,
                "note": note,
                "functions": [e.as_dict() for e in errors],
                "heartbeats": [h.as_dict(now) for h in heartbeats],
                "healthy": not problem,
            }
        )
        return 1 if problem else 0
    ctx.print(f"phasectl health — errors since {since:%Y-%m-%d %H:%M:%SZ} ({args.since}) from {source}")
    if note:
        ctx.print(note)
    else:
        ctx.print(
            format_table(
                ("FUNCTION", "ERRORS", "LAST ERROR AT", "LAST ERROR"),
                [
                    (
                        e.function,
                        e.count,
                        e.last_at.strftime("%Y-%m-%d %H:%M:%SZ") if e.last_at else "-",
                        e.last_message or "-",
                    )
                    for e in errors
                ],
            )
        )
    for h in heartbeats:
        ctx.print(f"heartbeat: {h.describe(now)}")
    ctx.print("UNHEALTHY" if problem else "healthy")
    return 1 if problem else 0


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
        names = [t.name for t in load_definition(env.get("PIPELINE_DEFINITION") or None).transitions]
    except (PipelineError, OSError, ValueError):  # the command reports it; help still works
        return "a transition of the pipeline definition"
    return "the transition, one of: " + ", ".join(names)


TIMEOUT_HELP = (
    "the deadline of every backend call (Firestore, Pub/Sub, BigQuery) in seconds "
    f"(default {DEFAULT_TIMEOUT:g}); a backend that does not answer in time is one line and exit 2"
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
            "changed); 2 bad input or an error (one line on stderr)."
        ),
    )
    parser.add_argument("--version", action="version", version=f"phasectl {cli_help.version()}")
    parser.add_argument("--timeout", type=_timeout, default=DEFAULT_TIMEOUT, metavar="SECONDS", help=TIMEOUT_HELP)
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
    p.add_argument("game_id", help="0022500644 or 20260124_GSW_MIN")
    p.add_argument("--reason", required=True, help="why the game will never have data (kept with the mark)")
    p.add_argument("--date", help="the game date (found from the schedule when omitted)")
    p.add_argument("--undo", action="store_true", help="count the game again")
    p.set_defaults(func=cmd_mark_unavailable)

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

    p = sub.add_parser("health", help="recent function errors and heartbeats")
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

    from shared.cli import dlq  # stdlib only at import; it never imports this module (run as __main__ under -m)

    dlq.add_parser(sub, _Parser)

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
        help="up: load the demo's sample night (2026-01-24: 7 Final games, one missing from every boxscore "
        "source) so the gates have a schedule (default: --seed)",
    )
    p.set_defaults(func=cmd_local)

    cli_help.finish(parser)
    for path, each in cli_help.walk(parser):
        each.set_defaults(command_path=path)
        if path in NEEDS:  # also after the command: phasectl status --timeout 60
            each.add_argument(
                "--timeout", type=_timeout, default=argparse.SUPPRESS, metavar="SECONDS", help=TIMEOUT_HELP
            )
    return parser


# -- deploy --------------------------------------------------------------------------------------
def cmd_deploy(ctx: Context, args: argparse.Namespace) -> int:
    from deploy.cli import run_deploy

    project = args.project if args.project is not None else ctx.project  # an empty --project is an error
    stdin: BinaryIO | None = None
    if args.action == "secret":
        if sys.stdin is None or sys.stdin.isatty():  # typed, not piped: do not echo it
            stdin = io.BytesIO(getpass.getpass("secret value (not echoed): ", stream=ctx.err).encode())
        else:
            stdin = sys.stdin.buffer
    return run_deploy(
        ctx.definition,
        args.action,
        project,
        out=ctx.out,
        err=ctx.err,
        region=args.region,
        function=args.function,
        env=ctx.env,
        operands=args.operands,
        stdin=stdin,
    )


# -- local cloud -----------------------------------------------------------------------------------
def cmd_local(ctx: Context, args: argparse.Namespace) -> int:
    """``up`` runs in the foreground until Ctrl-C (or ``local down``), then stops exactly what it started."""
    import shlex
    import signal
    import threading

    from deploy.local.stack import LocalStack, stop_from_state

    state_dir = Path(args.state_dir)
    if args.action == "down":
        stopped, message = stop_from_state(state_dir)
        ctx.print(message)
        return 0 if stopped else 1
    if args.accelerate < 1:
        raise UsageError(f"--accelerate must be >= 1 (got {args.accelerate:g})")
    stop = threading.Event()
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())

    def say(text: str) -> None:
        ctx.print(text)
        ctx.out.flush()

    stack = LocalStack(
        ctx.definition,
        project=args.project,
        accelerate=args.accelerate,
        definition_path=Path(ctx.env["PIPELINE_DEFINITION"]) if ctx.env.get("PIPELINE_DEFINITION") else None,
        state_dir=state_dir,
        say=say,
        seed=args.seed,
    )
    try:
        stack.up()
        say("local cloud is up; in another terminal:")
        for key, value in sorted(stack.env.items()):
            say(f"  export {key}={shlex.quote(value)}")
        say(f"stop with Ctrl-C or: phasectl local down --state-dir {state_dir}")
        while not stop.wait(0.5):
            pass
    except KeyboardInterrupt:
        say("interrupted")
    finally:
        signal.signal(signal.SIGTERM, previous)
        deaths = list(stack.deaths)
        stack.down()
        say("local cloud stopped (only the processes it started)")
    for line in deaths:
        ctx.err.write(f"phasectl: {printable(line)}\n")
    return 1 if deaths else 0


def _one_line(text: str) -> str:
    return printable(" ".join(str(text).split()))


def main(
    argv: Sequence[str] | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> int:
    """Run ``phasectl``; returns the exit code (0 ok, 1 problem found, 2 bad input or error).

    ``environ`` supplies the project, ``PIPELINE_DEFINITION``, ``PHASECTL_NOW`` and ``USER``;
    the client factories still read the emulator hosts from ``os.environ`` (run it as a process).
    """
    out = out or sys.stdout
    err = err or sys.stderr
    env = dict(os.environ if environ is None else environ)
    ctx: Context | None = None
    try:
        parser = build_parser(env)
        args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
        if getattr(args, "func", None) is None:  # a bare phasectl, or a group without its subcommand
            help_parser: argparse.ArgumentParser = getattr(args, "help_parser", parser)
            help_parser.print_help(err)
            err.write(f"\n{help_parser.prog}: error: give a command (listed above)\n")
            return 2
        from shared.structured_log import configure, reset_configuration

        configure(stream=err, level="WARNING")  # the services' logs never mix with the output
        try:
            definition = load_definition(env.get("PIPELINE_DEFINITION") or None)
            ctx = Context(definition, clock_from_env(env), env, out, err, timeout=args.timeout, needs=_needs(args))
            if args.command_path in PREPARE_FIRST:
                ctx.prepare()
            func: Callable[[Context, argparse.Namespace], int] = args.func
            return func(ctx, args)
        finally:
            if ctx is not None:
                ctx.close()
            reset_configuration()  # an in-process caller (a test, a notebook) gets its logging back
    except SystemExit as exc:  # --help, --version
        return int(exc.code or 0)
    except (UsageError, BackendError) as exc:
        err.write(f"phasectl: error: {_one_line(str(exc))}\n")
        return 2
    except PipelineError as exc:
        err.write(f"phasectl: error: {_backend_failure(exc, ctx) or _one_line(exc.message)}\n")
        return 2
    except Exception as exc:  # noqa: BLE001 - a backend error is one line and exit 2, not a traceback
        line = _backend_failure(exc, ctx) or f"{type(exc).__name__}: {_one_line(str(exc))[:500]}"
        err.write(f"phasectl: error: {line}\n")
        return 2


def _backend_failure(exc: BaseException, ctx: Context | None) -> str | None:
    """A deadline that ran out or a backend that went away, as one line naming the backend."""
    if ctx is None:
        return None
    line = failure_line(exc, ctx.timeout, ctx.backends.reached)
    return None if line is None else _one_line(line)[:600]


if __name__ == "__main__":
    sys.exit(main())
