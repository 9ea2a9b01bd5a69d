"""``phasectl status``: the text report, the static page and the live page (``--serve``)."""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable, Mapping
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

from phasectl.argtypes import bounded_int
from phasectl.core import (
    HTML_DAYS_DEFAULT,
    HTML_DAYS_MAX,
    MONITOR_STALE_MINUTES,
    STATUS_PORT_DEFAULT,
    Context,
    UsageError,
    _date,
)
from shared.printable import printable

T = TypeVar("T")


# -- status ------------------------------------------------------------------------------------
def _heartbeats(ctx: Context) -> list[Any]:
    from phasectl.report import Heartbeat
    from shared.monitor.heartbeats import (
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
    from phasectl.report import phase_line, timed_line

    lines = [phase_line(ctx.definition, t, ctx.state(t.name).load(day), ctx.clock) for t in ctx.definition.transitions]
    return lines + [timed_line(t, ctx.state(t.name).load(day)) for t in ctx.definition.timed_triggers()]


_html_days = bounded_int("day count", HTML_DAYS_MAX)


def _active_findings(ctx: Context) -> list[Any]:
    from phasectl.status_html import ActiveFinding, sort_findings

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
    from phasectl import dlq
    from phasectl.status_html import DeadLetterBacklog

    subscriber = ctx.subscriber()  # bounded by --timeout
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


class _BackendReads:
    """One backend's reads for the page, in order: after the first that fails the rest are skipped (a
    backend that is down costs one ``--timeout``, not one per read) and the page says why, once. Every
    read that returns is progress (``_Progress``): a slow backend that answers is waited for."""

    def __init__(self, ctx: Context, key: str, progress: _Progress) -> None:
        self.ctx, self.key, self.progress = ctx, key, progress
        self.why: str | None = None
        self.unread: dict[str, str] = {}

    def read(self, section: str, fn: Callable[[], T], default: T) -> T:
        if self.why is None:
            try:
                value = fn()
                self.progress.tick()
                return value
            except Exception as exc:  # noqa: BLE001 — the page says which backend and why, never a traceback
                self.why = _not_read_line(self.ctx, self.key, exc)
        self.unread[section] = self.why
        return default


class _Progress:
    """When a read of the page last returned (any backend)."""

    def __init__(self) -> None:
        self.at = time.monotonic()

    def tick(self) -> None:
        self.at = time.monotonic()


def _not_read_line(ctx: Context, key: str, exc: BaseException) -> str:
    """One line naming the backend: ``cannot reach the Firestore emulator at …``, ``… gave no answer
    within the 15 s deadline …``, else ``<backend>: <error>``."""
    from phasectl.connect import BackendError, failure_line
    from shared.printable import one_line

    label = ctx.backends.label(key)
    if isinstance(exc, BackendError):
        return one_line(str(exc), 400)
    line = failure_line(exc, ctx.timeout, [label])
    return one_line(line, 400) if line else f"{label}: {type(exc).__name__}: {one_line(str(exc), 300)}"


def _in_threads(jobs: Mapping[str, Callable[[], Any]], progress: _Progress, quiet: float) -> dict[str, Any]:
    """Run each job on its own daemon thread (one per backend: a hung backend delays none of the others)
    and return the results of those that finished; stop waiting once no read has succeeded for ``quiet``
    seconds (a hung backend's first call has failed by then: each call is bounded by ``--timeout``)."""
    results: dict[str, Any] = {}
    lock = threading.Lock()

    def run(name: str, job: Callable[[], Any]) -> None:
        value = job()
        with lock:
            results[name] = value

    threads = [
        threading.Thread(target=run, args=(name, job), name=f"status-page-{name}", daemon=True)
        for name, job in jobs.items()
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        while thread.is_alive() and time.monotonic() - progress.at < quiet:
            thread.join(min(0.2, max(0.01, quiet - (time.monotonic() - progress.at))))
    with lock:
        return dict(results)


# the sections each backend's reads fill
_SECTIONS_OF = {
    "firestore": ("findings", "grid", "heartbeats"),
    "bigquery": ("retry_queue",),
    "pubsub": ("dead_letters",),
}


def _status_page(
    ctx: Context, day: date, days: int, refresh_seconds: int | None = None
) -> tuple[str, int, int, list[str]]:
    """(the page, status's exit code over its dates — 2 when the grid could not be read —, the number of
    findings, the "not read" lines: one per backend that could not be read).

    Fails soft: each backend (Firestore: heartbeats, findings, grid; BigQuery: the retry queue; Pub/Sub:
    the dead letters; the extra sections) is read on its own thread and checked on its own, so one that
    is down or hangs costs about one ``--timeout`` and one "not read: <backend>: <why>" line, and the
    page shows the rest.
    """
    from phasectl.connect import BIGQUERY, FIRESTORE, PUBSUB
    from phasectl.page_sections import render_sections, unreadable
    from phasectl.report import StatusReport
    from phasectl.status_html import StatusLines, collect_status_lines, nights_of, render_status_html

    now = ctx.now()
    dates = [day - timedelta(days=n) for n in range(days)]
    ctx.backends.needs = frozenset()  # each backend is checked when first read: one down hides no other
    progress = _Progress()

    def firestore_reads() -> tuple[Any, ...]:
        fs = _BackendReads(ctx, FIRESTORE, progress)
        heartbeats = fs.read("heartbeats", lambda: tuple(_heartbeats(ctx)), ())
        findings: list[Any] = fs.read("findings", lambda: _active_findings(ctx), [])

        def load(name: str, d: date) -> Any:
            state = ctx.state(name).load(d)
            progress.tick()
            return state

        got = fs.read("grid", lambda: collect_status_lines(ctx.definition, load, ctx.clock, dates), StatusLines({}, {}))
        return heartbeats, findings, got, fs.unread

    def bigquery_reads() -> tuple[Any, dict[str, str]]:
        def rows() -> list[Any]:  # the dates shown, and whatever still waits for a retry
            return [r for r in ctx.queue().rows() if r.game_date in dates or r.status in ("pending", "retrying")]

        bq = _BackendReads(ctx, BIGQUERY, progress)
        return bq.read("retry_queue", rows, None), bq.unread

    def pubsub_reads() -> tuple[Any, dict[str, str]]:
        ps = _BackendReads(ctx, PUBSUB, progress)
        return ps.read("dead_letters", lambda: _dead_letter_backlog(ctx), None), ps.unread

    quiet = ctx.timeout + 2
    done = _in_threads(
        {
            "firestore": firestore_reads,
            "bigquery": bigquery_reads,
            "pubsub": pubsub_reads,
            "sections": lambda: render_sections(ctx, day, dates),  # each fails soft on its own
        },
        progress,
        quiet,
    )
    unread: dict[str, str] = {}
    for key, name in ((FIRESTORE, "firestore"), (BIGQUERY, "bigquery"), (PUBSUB, "pubsub")):
        if name not in done:  # still waiting on its first call: bounded, but the page does not wait longer
            line = f"{ctx.backends.label(key)} gave no answer within {quiet:g} s (is it up and healthy?)"
            unread.update(dict.fromkeys(_SECTIONS_OF[name], line))
    heartbeats, findings, got, fs_unread = done.get("firestore", ((), [], StatusLines({}, {}), {}))
    retry_rows, bq_unread = done.get("bigquery", (None, {}))
    dead_letters, ps_unread = done.get("pubsub", (None, {}))
    unread.update({**fs_unread, **bq_unread, **ps_unread})
    late = TimeoutError(f"no answer within {quiet:g} s")
    sections = done["sections"] if "sections" in done else [unreadable("sections", "more sections", late)]
    zone = ctx.times.shown_zone
    page = render_status_html(
        now,
        dates,
        got.lines_by_date,
        heartbeats,
        findings,
        counts=got.counts,
        retry_rows=retry_rows,
        dead_letters=dead_letters,
        timezone=zone,
        refresh_seconds=refresh_seconds,
        unread=unread,
        sections=sections,
        nights=nights_of(ctx.definition, got.states, got.lines_by_date, now, zone, retry_rows or (), firings_on=day),
    )
    lines = list(dict.fromkeys(unread.values()))
    if "grid" in unread:
        return page, 2, len(findings), lines
    blocked = any(p.decision == "blocked" for day_lines in got.lines_by_date.values() for p in day_lines)
    code = 1 if blocked else StatusReport(day, now, got.lines_by_date[day], heartbeats).exit_code
    return page, code, len(findings), lines


def _status_html(ctx: Context, day: date, path: Path, days: int) -> int:
    page, code, findings, unread = _status_page(ctx, day, days)
    _write_page(path, page)  # with a backend down too: the page says what it could not read
    columns = len(ctx.definition.transitions) + len(ctx.definition.timed_triggers())
    ctx.print(
        f"wrote {path} ({days} dates \N{MULTIPLICATION SIGN} {columns} transitions and sensors, {findings} findings)"
    )
    for line in unread:
        ctx.err.write(f"phasectl: not read: {printable(line)}\n")
    return code


def _status_serve(ctx: Context, date_arg: str, days: int, port: int) -> int:
    from phasectl.status_serve import serve_status

    def render() -> str:  # the date is resolved per render: YESTERDAY moves on with the clock
        return _status_page(ctx, _date(ctx, date_arg), days, STATUS_REFRESH_SECONDS)[0]

    try:
        serve_status(render, port=port, refresh_seconds=STATUS_REFRESH_SECONDS, out=ctx.out, err=ctx.err)
    except OSError as exc:
        raise UsageError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from None
    return 0


def cmd_status(ctx: Context, args: argparse.Namespace) -> int:
    from phasectl.report import StatusReport

    if args.days is not None and args.html is None and not args.serve:
        raise UsageError("--days applies to --html and --serve only")
    if args.port is not None and not args.serve:
        raise UsageError("--port applies to --serve only")
    day = _date(ctx, args.date)
    if args.serve:
        return _status_serve(ctx, args.date, args.days or HTML_DAYS_DEFAULT, args.port or STATUS_PORT_DEFAULT)
    if args.html is not None:
        return _status_html(ctx, day, Path(args.html), args.days or HTML_DAYS_DEFAULT)
    report = StatusReport(day, ctx.now(), tuple(_phase_lines(ctx, day)), tuple(_heartbeats(ctx)), ctx.times)
    if args.json:
        from phasectl.commands.findings import status_findings_json

        ctx.dump({**report.as_dict(), "findings": status_findings_json(ctx, day)})
    else:
        ctx.print(report.render())
        from phasectl.commands.findings import print_status_findings

        print_status_findings(ctx, day)  # the date's findings with their fix command and runbook
    return report.exit_code
