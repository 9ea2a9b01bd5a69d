"""``phasectl next``: what happens next, in one list ordered by time.

- **deadline tiers** of the dates still waiting: a ``deadline_tiers`` transition fires when a tier's
  minutes have passed since the date's first completion (``shared.orchestration.engine``: "deadline
  tiers start at the first completion") with at least its count done; each tier still ahead is
  listed with whether the count recorded now meets it;
- **retries**: the retry queue's open rows (a ``pending`` row at its ``next_retry_at``, picked up by
  auto-retry's next pass; one past it longer than ``[monitor] overdue_pending_minutes`` is overdue; a
  ``retrying`` row returns to pending ``[retry] stale_retrying_minutes`` after its dispatch without an
  outcome);
- **scheduled firings**: each job's next slot in the window (``shared.schedules.plan.slots_between``,
  with the season calendar and the operator overrides, as ``phasectl schedules``), with how many more
  follow in the window;
- **passes**: the monitor's and auto-retry's next runs (their ``[schedules]`` crons).

Each line: when (ET), the countdown, what, and the command to look closer. ``build_items`` is pure
(inputs in, items out); ``read_inputs`` does the reads (Firestore: the dates' state and the schedule
overrides; BigQuery: the retry queue).
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from phasectl.core import Context, _date, iso
from shared.pipeline.definition import DeadlineTier, PipelineDefinition

if TYPE_CHECKING:
    from phasectl.timefmt import TimeView
    from shared.retry.queue import QueueRow
    from shared.schedules.plan import Overrides

JSON_VERSION = 1
HOURS_DEFAULT = 24.0
HOURS_MAX = 24.0 * 14
KIND_ORDER = {"retry": 0, "tier": 1, "pass": 2, "job": 3}  # at the same minute: the most urgent first


@dataclass(frozen=True)
class NextItem:
    """One thing that happens at ``at`` (aware UTC)."""

    at: datetime
    kind: str  # tier | retry | job | pass
    what: str
    command: str
    overdue: bool = False
    game_date: date | None = None

    def as_dict(self, now: datetime) -> dict[str, Any]:
        return {
            "at": iso(self.at),
            "in_seconds": int((self.at - now).total_seconds()),
            "kind": self.kind,
            "what": self.what,
            "command": self.command,
            "overdue": self.overdue,
            "game_date": iso(self.game_date),
        }


@dataclass(frozen=True)
class TierDate:
    """A date of a ``deadline_tiers`` transition, not triggered, with its first completion recorded."""

    transition: str
    day: date
    first_completion_at: datetime
    done: int  # expected processors done
    expected: int
    tiers: tuple[DeadlineTier, ...]
    ready: bool = False  # the engine says ready now (a tier was reached): the next evaluation fires it


# -- pure ------------------------------------------------------------------------------------------
def countdown(delta: timedelta) -> str:
    """``in 2 h 14 min``, ``in 5 min``, ``in <1 min``; a past instant: ``12 min ago``."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return _span(-seconds) + " ago"
    return "in " + _span(seconds)


def _span(seconds: int) -> str:
    minutes = seconds // 60
    if minutes < 1:
        return "<1 min"
    if minutes < 60:
        return f"{minutes} min"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min"
    return f"{minutes // (24 * 60)} d {minutes % (24 * 60) // 60} h"


def tier_items(dates: Sequence[TierDate], now: datetime, next_pass: datetime | None) -> list[NextItem]:
    """Each tier still ahead of each date; a date ready now: its evaluation at the monitor's next pass."""
    out = []
    for d in dates:
        look = f"phasectl status --date {d.day.isoformat()}"
        if d.ready:
            out.append(
                NextItem(
                    next_pass or now,
                    "tier",
                    f"{d.transition} {d.day}: a deadline tier is reached ({d.done}/{d.expected} done); "
                    "the monitor's next pass fires it",
                    look,
                    game_date=d.day,
                )
            )
            continue
        for number, tier in enumerate(d.tiers, start=1):
            due = d.first_completion_at + timedelta(minutes=tier.after_minutes)
            if due <= now:
                continue
            meets = (
                f"{d.done}/{d.expected} done: fires then unless all arrive first"
                if d.done >= tier.min_completed
                else f"{d.done}/{d.expected} done: needs {tier.min_completed - d.done} more"
            )
            what = (
                f"{d.transition} {d.day}: deadline tier {number} (≥{tier.min_completed} of {d.expected} after "
                f"{tier.after_minutes} min from the first completion); {meets}"
            )
            out.append(NextItem(due, "tier", what, look, game_date=d.day))
    return out


def retry_items(
    rows: Sequence[QueueRow],
    now: datetime,
    *,
    overdue_after: timedelta,
    stale_after: timedelta,
    next_pass: datetime | None,
    times: TimeView,
) -> list[NextItem]:
    """The open rows: when each is retried (or returns to pending), overdue ones said so."""
    out = []
    today = times.local(now).date()
    passing = f"auto-retry's next pass {times.clock(next_pass, day=today)}" if next_pass else "auto-retry's next pass"
    for row in rows:
        look = f"phasectl retry list --date {row.game_date.isoformat()}"
        name = f"retry {row.processor_name} {row.game_date}"
        tries = f"{row.retry_count}/{row.max_retries} retries so far"
        if row.status == "retrying":
            since = row.last_retry_at or row.updated_at
            at = since + stale_after
            sent = times.clock(since, day=today)
            what = f"{name}: dispatched {sent}, outcome awaited ({tries}); back to pending then if none"
            out.append(NextItem(at, "retry", what, look, game_date=row.game_date))
            continue
        if row.status != "pending":
            continue
        at = row.next_retry_at or now
        if at > now:
            out.append(NextItem(at, "retry", f"{name}: next try ({tries})", look, game_date=row.game_date))
        elif now - at > overdue_after:
            late = _span(int((now - at).total_seconds()))
            what = f"{name}: OVERDUE by {late} (due {times.clock(at, day=today)}; {tries})"
            out.append(NextItem(at, "retry", what, look, overdue=True, game_date=row.game_date))
        else:
            what = f"{name}: due since {times.clock(at, day=today)}, taken at {passing} ({tries})"
            out.append(NextItem(at, "retry", what, look, game_date=row.game_date))
    return out


def job_items(
    definition: PipelineDefinition, now: datetime, until: datetime, overrides: Overrides, times: TimeView
) -> tuple[list[NextItem], int]:
    """(each dispatched job's next slot in ``(now, until]`` and how many follow, the jobs with none there)."""
    from phasectl.commands.schedules import target_text
    from shared.schedules.plan import slots_between

    out, quiet = [], 0
    today = times.local(now).date()
    for job in definition.all_jobs():
        if not job.dispatched:
            continue
        slots = slots_between(definition, job, now, until, overrides)
        if not slots:
            quiet += 1
            continue
        more = (
            f"; then {len(slots) - 1} more, the last {times.clock(slots[-1].at, day=today)}" if len(slots) > 1 else ""
        )
        out.append(NextItem(slots[0].at, "job", f"job {job.name} ({target_text(job)}){more}", "phasectl schedules"))
    return out, quiet


PASS_COMMANDS = {"MonitorTick": "phasectl health", "RetryTick": "phasectl retry list"}
PASS_NAMES = {"MonitorTick": "the monitor's next pass", "RetryTick": "auto-retry's next pass"}


def next_passes(definition: PipelineDefinition, now: datetime) -> dict[str, datetime]:
    """The next run of each ``[schedules]`` entry (the monitor, auto-retry), by its payload (or name)."""
    from shared.schedules.cron import CronExpression

    out = {}
    for name, schedule in definition.schedules.items():
        at = CronExpression.parse(schedule.cron).next_after(now, ZoneInfo(schedule.timezone))
        out[schedule.payload or name] = at
    return out


def pass_items(definition: PipelineDefinition, passes: dict[str, datetime]) -> list[NextItem]:
    out = []
    for name, schedule in definition.schedules.items():
        key = schedule.payload or name
        label = PASS_NAMES.get(key, f"{name}'s next run")
        what = f"{label} ({schedule.function or name}, {schedule.cron} {schedule.timezone})"
        out.append(NextItem(passes[key], "pass", what, PASS_COMMANDS.get(key, "phasectl health")))
    return out


def build_items(
    definition: PipelineDefinition,
    now: datetime,
    until: datetime,
    *,
    tiers: Sequence[TierDate],
    rows: Sequence[QueueRow],
    overrides: Overrides,
    times: TimeView,
) -> tuple[list[NextItem], int]:
    """(everything up to ``until`` ordered by time — overdue retries first, as they are past —, the
    number of dispatched jobs with no slot in the window)."""
    passes = next_passes(definition, now)
    items = tier_items(tiers, now, passes.get("MonitorTick"))
    items += retry_items(
        rows,
        now,
        overdue_after=timedelta(minutes=definition.monitor.overdue_pending_minutes),
        stale_after=timedelta(minutes=definition.retry.stale_retrying_minutes),
        next_pass=passes.get("RetryTick"),
        times=times,
    )
    jobs, quiet = job_items(definition, now, until, overrides, times)
    items += jobs + pass_items(definition, passes)
    kept = [i for i in items if i.at <= until]
    return sorted(kept, key=lambda i: (i.at, KIND_ORDER.get(i.kind, 9), i.what)), quiet


def render_text(items: Sequence[NextItem], now: datetime, hours: float, quiet: int, times: TimeView) -> str:
    from phasectl.report import format_table

    today = times.local(now).date()
    head = f"phasectl next — {times.header_now(now)}; the next {hours:g} h"
    rows = [(times.clock(i.at, day=today), countdown(i.at - now), i.what, i.command) for i in items]
    out = [head, "", format_table((f"WHEN ({times.label})", "IN", "WHAT", "LOOK CLOSER"), rows) if rows else "nothing"]
    if quiet:
        out += [
            "",
            f"{quiet} scheduled job(s) do not fire in this window (off season, paused, or later): phasectl schedules",
        ]
    overdue = sum(1 for i in items if i.overdue)
    if overdue:
        out += ["", f"{overdue} retry row(s) OVERDUE: is auto-retry running? phasectl health; runbook: retry_overdue"]
    return "\n".join(out)


def next_json(items: Sequence[NextItem], now: datetime, until: datetime, quiet: int) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "command": "next",
        "now": iso(now),
        "until": iso(until),
        "items": [i.as_dict(now) for i in items],
        "jobs_not_in_window": quiet,
    }


# -- reads -----------------------------------------------------------------------------------------
def default_dates(ctx: Context) -> list[date]:
    """The dates whose tiers may still be ahead: the monitor's lookback up to tomorrow (New York)."""
    today = ctx.now().astimezone(ZoneInfo(ctx.definition.pipeline.timezone)).date()
    back = ctx.definition.monitor.lookback_days
    return [today + timedelta(days=n) for n in range(-back, 2)]


def read_tier_dates(ctx: Context, dates: Sequence[date]) -> list[TierDate]:
    """Per ``deadline_tiers`` transition and date: the first completion and the count, when it still waits."""
    from shared.orchestration.engine import decide

    out = []
    for transition in ctx.definition.transitions:
        if not transition.deadline_tiers:
            continue
        state = ctx.state(transition.name)
        for day in dates:
            loaded = state.load(day)
            if loaded.triggered_current is not None:
                continue
            decision = decide(ctx.definition, transition, day, loaded.completions, ctx.clock)
            progress = decision.progress
            if progress.first_completion_at is None:
                continue
            done = len([p for p in progress.expected if p in progress.done])
            out.append(
                TierDate(
                    transition.name,
                    day,
                    progress.first_completion_at,
                    done,
                    len(progress.expected),
                    transition.deadline_tiers,
                    ready=decision.kind == "ready",
                )
            )
    return out


def read_open_rows(ctx: Context, day: date | None) -> list[QueueRow]:
    queue = ctx.queue()
    rows = queue.rows(game_date=day) if day is not None else queue.snapshot()
    return [r for r in rows if r.status in ("pending", "retrying")]


def collect(ctx: Context, day: date | None, hours: float) -> tuple[list[NextItem], datetime, datetime, int]:
    """(the items, now, until, jobs not in the window): the command's and the page section's reads."""
    from phasectl.commands.schedules import read_schedule_docs
    from shared.schedules.plan import Overrides

    now = ctx.now()
    until = now + timedelta(hours=hours)
    tiers = read_tier_dates(ctx, [day] if day is not None else default_dates(ctx))
    rows = read_open_rows(ctx, day)
    _, season = read_schedule_docs(ctx)
    items, quiet = build_items(
        ctx.definition, now, until, tiers=tiers, rows=rows, overrides=Overrides.from_doc(season), times=ctx.times
    )
    return items, now, until, quiet


def _hours(value: str) -> float:
    try:
        hours = float(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"invalid --hours {value!r}: a number of hours, e.g. 24") from None
    if not 0 < hours <= HOURS_MAX:  # NaN fails too
        raise argparse.ArgumentTypeError(f"--hours {value} is not in (0, {HOURS_MAX:g}]")
    return hours


def add_parser(sub: Any) -> None:
    """``phasectl next [--date D] [--hours 24] [--json]``."""
    from phasectl.commands.audit import epilog

    p = sub.add_parser(
        "next",
        help="what happens next, by time: deadline tiers, retries, scheduled jobs, the monitor's next pass",
        epilog=epilog(
            ("To see what happens in the next 24 hours", "phasectl next"),
            ("To see one night's tiers and retries in the next 6 hours", "phasectl next --date 2026-01-24 --hours 6"),
            ("To get the list as JSON (for a script)", "phasectl next --json"),
        ),
    )  # fmt: skip
    p.add_argument(
        "--date",
        help="only this game date's deadline tiers and retries (YYYY-MM-DD or TODAY/YESTERDAY; default: the "
        "monitor's lookback days up to tomorrow, and every open retry)",
    )
    p.add_argument(
        "--hours",
        type=_hours,
        default=HOURS_DEFAULT,
        metavar="N",
        help=f"how far ahead, in hours (default {HOURS_DEFAULT:g}, at most {HOURS_MAX:g})",
    )
    p.add_argument("--json", action="store_true", help="print the list as JSON instead of a table")
    p.set_defaults(func=cmd_next)


def cmd_next(ctx: Context, args: argparse.Namespace) -> int:
    day = _date(ctx, args.date) if args.date else None
    items, now, until, quiet = collect(ctx, day, args.hours)
    if args.json:
        ctx.dump(next_json(items, now, until, quiet))
    else:
        ctx.print(render_text(items, now, args.hours, quiet, ctx.times))
    return 1 if any(i.overdue for i in items) else 0
