"""``phasectl trigger`` and ``phasectl backfill``: evaluate dates through the claim protocol."""

from __future__ import annotations

import argparse
import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TextIO

from phasectl.connect import (
    BIGQUERY,
)
from shared.pipeline.definition import Transition

if TYPE_CHECKING:
    from shared.orchestration.state import DateState
from phasectl.core import BACKFILL_MODES, MAX_BACKFILL_DAYS, Context, UsageError, _date, _transition, _user


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


def _sensor_run(ctx: Context, name: str, day: date, force: bool, why: str) -> tuple[Any, Any]:
    """A sensor (e.g. grading_readiness) evaluated by hand: its conditions as its fallback slot checks
    them; ``force`` re-runs a date done already as a new generation (``not_done`` does not apply), as
    the monitor's coverage regrade does (``shared.monitor.grading_net``). Returns (outcome, service)."""
    from shared.orchestration.timed_runtime import build_timed_runtime
    from shared.pipeline.definition import TriggerSlot

    trigger = ctx.definition.timed_trigger(name)
    if trigger.conditions:  # its conditions query BigQuery
        ctx.prepare(BIGQUERY)
    else:
        ctx.prepare()
    _ = ctx.project
    runtime = build_timed_runtime(trigger.function, definition=ctx.definition, clock=ctx.clock, environ=ctx.env)
    service = runtime.services[name]
    if force:
        service.state.reopen(day, ctx.now(), why, trigger_source="operator")
    slot = TriggerSlot(name="operator", cron="0 0 1 1 *", job="phasectl-trigger", fallback=True, redo=force)
    owner = f"phasectl:{ctx.env.get('USER') or _user()}"
    return service.evaluate(day, slot, owner=owner), service


def cmd_trigger(ctx: Context, args: argparse.Namespace) -> int:
    day = _date(ctx, args.date)
    user = ctx.env.get("USER") or _user()
    why = f"phasectl trigger --force by {user}"
    if args.transition in {t.name for t in ctx.definition.timed_triggers()}:
        name = args.transition
        outcome, service = _sensor_run(ctx, name, day, args.force, why)
    else:
        name = _transition(ctx, args.transition).name
        service = _service(ctx, name)
        outcome = _run_one(ctx, service, day, args.force, why)
    ctx.audit(
        "trigger",
        {"transition": name, "date": day, "force": args.force},
        f"{outcome.kind} {outcome.trigger_id or ''}".strip(),
    )
    ctx.print(f"{name} {day}: {outcome.kind}" + (f" ({outcome.trigger_id})" if outcome.trigger_id else ""))
    detail = outcome.detail
    if outcome.kind == "already_triggered":
        detail = already_triggered_text(ctx, name, day, service.state.load(day))
    ctx.print(f"  {detail}")
    return 0 if outcome.kind in ("triggered", "already_triggered") else 1


def already_triggered_text(ctx: Context, transition: str, day: date, state: DateState) -> str:
    """``generation 1 already triggered at 01:12 ET (partial); `phasectl trigger ... --force` starts generation 2``."""
    current = state.triggered_current or {}
    at = current.get("at")
    when = f" at {ctx.times.clock(at, day=day)}" if isinstance(at, datetime) else ""
    kind = f" ({current.get('status')})" if current.get("status") else ""
    force = f"phasectl trigger --transition {transition} --date {day} --force"
    then = f"`{force}` starts generation {state.generation + 1}"
    return f"generation {state.generation} already triggered{when}{kind}; {then}"


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
    from phasectl.report import format_table

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
