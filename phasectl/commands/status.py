"""``phasectl status``: the text report, the static page and the live page (``--serve``)."""

from __future__ import annotations

import argparse
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

from phasectl.core import (
    HTML_DAYS_DEFAULT,
    HTML_DAYS_MAX,
    MONITOR_STALE_MINUTES,
    STATUS_PORT_DEFAULT,
    Context,
    UsageError,
    _date,
)


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


def _html_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid day count {value!r}") from None
    if not 1 <= days <= HTML_DAYS_MAX:
        raise argparse.ArgumentTypeError(f"{days} is not in 1..{HTML_DAYS_MAX}")
    return days


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


def _status_page(ctx: Context, day: date, days: int, refresh_seconds: int | None = None) -> tuple[str, int, int]:
    """(the page, status's exit code over its dates, the number of findings)."""
    from phasectl.report import StatusReport
    from phasectl.status_html import collect_status_lines, render_status_html

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
    from phasectl.page_sections import render_sections

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
        sections=render_sections(ctx, day, dates),
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
        ctx.dump(report.as_dict())
    else:
        ctx.print(report.render())
        from phasectl.commands.findings import print_status_findings

        print_status_findings(ctx, day)  # the date's findings with their fix command and runbook
    return report.exit_code
