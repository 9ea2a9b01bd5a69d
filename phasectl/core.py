"""Shared by every command: constants, the Context (clients, clock, audit), argument helpers."""

from __future__ import annotations

import argparse
import getpass
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO, cast

from phasectl.connect import (
    BIGQUERY,
    DEFAULT_TIMEOUT,
    FIRESTORE,
    PUBSUB,
    Backends,
)
from phasectl.timefmt import TimeView
from shared.clock import Clock, FixedClock, clock_from_env, resolve_game_date
from shared.errors import ConfigError, InvalidDateError
from shared.pipeline.definition import PipelineDefinition, Transition
from shared.printable import printable

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import bigquery, firestore

    from shared.orchestration.state import TransitionState
    from shared.retry.queue import RetryQueue


NOW_ENV = "PHASECTL_NOW"


MONITOR_STALE_MINUTES = 30  # the monitor runs every 10 min: three missed runs is stale


MAX_BACKFILL_DAYS = 400


HTML_DAYS_DEFAULT = 7


HTML_DAYS_MAX = 120


STATUS_PORT_DEFAULT = 8765  # phasectl status --serve


BACKFILL_MODES = {"none": ("none",), "failed": ("none", "failed"), "completed": ("none", "failed", "completed")}


# the backends each command uses (checked together before the first is touched); a dry run writes nothing
NEEDS: dict[str, frozenset[str]] = {
    "status": frozenset({FIRESTORE}),
    "findings": frozenset({FIRESTORE}),  # the alert collection; --ack/--unack: the audit record too
    "reconcile": frozenset({FIRESTORE, BIGQUERY}),
    "slo": frozenset({BIGQUERY}),  # phase_execution_log and the schedule
    "retry list": frozenset({BIGQUERY}),
    "retry requeue": frozenset({BIGQUERY, FIRESTORE}),  # Firestore: the audit record
    "retry resolve": frozenset({BIGQUERY, FIRESTORE}),
    # the mark, then the date re-evaluated (a blocked date may trigger: Pub/Sub)
    "mark-unavailable": frozenset({BIGQUERY, FIRESTORE, PUBSUB}),
    "games postpone": frozenset({BIGQUERY, FIRESTORE, PUBSUB}),
    "games restore": frozenset({BIGQUERY, FIRESTORE, PUBSUB}),
    "trigger": frozenset({FIRESTORE, PUBSUB}),  # + BigQuery when the transition's gates query it
    "publish completion": frozenset({PUBSUB, FIRESTORE}),
    "health": frozenset({FIRESTORE}),
    "backfill": frozenset({FIRESTORE, PUBSUB}),
    "dlq list": frozenset({PUBSUB}),
    "dlq replay": frozenset({PUBSUB, FIRESTORE}),
    "next": frozenset({FIRESTORE, BIGQUERY}),  # the dates' state and the overrides; the retry queue
    "audit": frozenset({FIRESTORE}),
    "logs": frozenset(),  # a local file, or Cloud Logging (bounded by --timeout itself)
}


DRY_RUN_NEEDS: dict[str, frozenset[str]] = {"backfill": frozenset({FIRESTORE}), "dlq replay": frozenset({PUBSUB})}


# commands whose clients are made outside the Context (phasectl.dlq): checked and bounded before they run
PREPARE_FIRST = frozenset({"dlq list", "dlq replay"})


class UsageError(Exception):
    """Bad input: printed as one line, exit code 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> Any:  # one line, no usage dump
        where = self.prog.removeprefix("phasectl").strip()
        message = with_suggestion(message)
        raise UsageError(f"{where}: {message}" if where else message)


_INVALID_CHOICE = re.compile(r"invalid choice: '(?P<given>[^']*)' \(choose from (?P<choices>.*)\)$")


def with_suggestion(message: str) -> str:
    """argparse's ``invalid choice`` message with a ``did you mean`` (difflib over the choices)."""
    import difflib

    match = _INVALID_CHOICE.search(message)
    if match is None:
        return message
    choices = re.findall(r"'([^']*)'", match.group("choices"))
    close = difflib.get_close_matches(match.group("given"), choices, n=1, cutoff=0.6)
    if not close:
        close = [c for c in choices if c.startswith(match.group("given")) and match.group("given")][:1]
    if not close:
        return message
    given, listed = match.group("given"), match.group("choices")
    return f"{message[: match.start()]}invalid choice: '{given}' — did you mean '{close[0]}'? (choose from {listed})"


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
    _subscriber: Any = None
    utc: bool = False  # --utc: every human output in UTC instead of the pipeline's zone

    @property
    def times(self) -> TimeView:
        """How this command shows instants: the pipeline's zone (ET) with its offset, or UTC."""
        return TimeView.of(self.definition.pipeline.timezone, utc=self.utc)

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
            from shared.deadline import bind_firestore
            from shared.gcp import firestore_client

            client = firestore_client(self.project)
            self._undo.append(bind_firestore(client, self.timeout, self.backends.label(FIRESTORE)))
            self._fs = client
        return cast("firestore.Client", self._fs)

    def bq(self) -> bigquery.Client:
        if self._bq is None:
            self.backends.ensure(BIGQUERY)
            from shared.deadline import bind_http
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
            from shared.deadline import bind_publisher
            from shared.gcp import publisher_client

            client = publisher_client()
            self._undo.append(bind_publisher(client, self.timeout, self.backends.label(PUBSUB)))
            self._pub = client
        return self._pub

    def subscriber(self) -> pubsub_v1.SubscriberClient:
        """A Pub/Sub subscriber (dead letters) whose every call has the ``--timeout`` deadline."""
        if self._subscriber is None:
            self.backends.ensure(PUBSUB)
            from shared.deadline import bind_subscriber
            from shared.gcp import subscriber_client

            client = subscriber_client()
            self._undo.append(bind_subscriber(client, self.timeout, self.backends.label(PUBSUB)))
            self._subscriber = client
        return self._subscriber

    def prepare(self, *extra: str) -> None:
        """Check the command's backends (and ``extra``), then bound the shared clients of each.

        For code that makes its own clients from the shared factories (the transition service,
        ``phasectl.dlq``): it gets these instances, with the deadline. A Pub/Sub subscriber is
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
        from shared.deferred import Deferred
        from shared.retry.queue import RetryQueue

        bq = Deferred(self.bq)  # connected on the first query
        return RetryQueue(bq, self.project, self.definition.pipeline.dataset, self.definition.retry, self.clock)

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
            "args": {k: iso(v) for k, v in args.items()},
            "result": result,
            "project": self.project,
            # the collection's Firestore TTL policy deletes it then (lesson L25; phasectl deploy creates it)
            retention.expiry_field: now + timedelta(days=retention.audit_days),
        }
        self.firestore().collection(self.definition.pipeline.audit_collection).add(doc, timeout=self.timeout)


def _user() -> str:
    try:
        return getpass.getuser()
    except (OSError, KeyError):
        return "unknown"


def iso(value: Any) -> Any:
    """Dates and datetimes as ISO 8601 text (how ``--json`` shows them); anything else as it is."""
    return value.isoformat() if isinstance(value, datetime | date) else value


def _json_default(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return iso(value)
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


def cli_clock(env: Mapping[str, str]) -> Clock:
    """The CLI's "now": ``$PHASECTL_NOW`` as a fixed clock when set, else the process clock (``shared.clock``)."""
    raw = (env.get(NOW_ENV) or "").strip()
    if not raw:  # the system clock, or the local cloud's simulated one ($PHASECHAIN_SIMULATED_CLOCK)
        return clock_from_env(env)
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
