"""``phasectl schedules`` and ``phasectl schedules run``: the scheduled jobs and one slot by hand.

``schedules`` is one table of every job of the definition (``[[jobs]]`` and the sensors' slots):
its target, cron and zone, its next fire time (in the pipeline's zone with the UTC offset, and in
the job's own zone when that differs), its last run from the job summaries the dispatcher keeps
(``schedule_jobs/{job}``) and why it does not run today (``shared.schedules.plan.pause_reason``
with the operator overrides, ``schedule_jobs/{SEASON_DOC}``). The summaries and the overrides
are one batched Firestore read.

``schedules run JOB`` runs one slot through the dispatcher itself (``build_dispatcher``: the same
claim → act → record protocol and run document as a scheduled tick), audited.

The rendering below is pure (no I/O): ``job_lines``, ``render_table``, ``schedules_json``.
"""

from __future__ import annotations

import argparse
import difflib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from phasectl.connect import BIGQUERY, FIRESTORE, PUBSUB
from phasectl.core import Context, UsageError, _user, iso
from phasectl.timefmt import TimeView
from phasectl.timefmt import zone_label as timefmt_label
from shared.pipeline.definition import Job, PipelineDefinition

if TYPE_CHECKING:
    from shared.schedules.plan import Overrides, Slot

JSON_VERSION = 1
FAILED_STATUSES = ("failed", "client_error", "config_error")  # a last run in one of these: exit 1
RAN = ("succeeded", "retry_wait", "failed", "client_error", "config_error")  # an attempt was made by hand
# the backends each command needs (checked together before the first is used)
SCHEDULE_NEEDS: dict[str, frozenset[str]] = {
    "schedules": frozenset({FIRESTORE}),
    "schedules run": frozenset({FIRESTORE, BIGQUERY}),  # + Pub/Sub for a Pub/Sub job; BigQuery: the log row
    "season status": frozenset({FIRESTORE}),
    "season pause": frozenset({FIRESTORE}),
    "season resume": frozenset({FIRESTORE}),
}


# -- pure: times -------------------------------------------------------------------------------------
def zone_label(zone: str) -> str:
    return "ET" if zone == "America/New_York" else zone


def offset_text(moment: datetime) -> str:
    """``-05:00`` (``+00:00`` for UTC)."""
    text = moment.strftime("%z") or "+0000"
    return f"{text[:3]}:{text[3:]}"


def at_text(moment: datetime, zone: str) -> str:
    """``2026-01-25 10:30 -05:00``: the instant in ``zone`` with its UTC offset."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {offset_text(local)}"


def at_in_zone(moment: datetime, zone: str) -> str:
    """``2026-01-25 07:30 PST``: the instant in ``zone`` with the zone's abbreviation."""
    local = moment.astimezone(ZoneInfo(zone))
    return f"{local:%Y-%m-%d %H:%M} {local.tzname() or zone}"


def age_text(delta: timedelta) -> str:
    """How long ago: ``just now``, ``12 min``, ``3 h 05 min``, ``4 d``; a future instant ``in ...``."""
    seconds = int(delta.total_seconds())
    if seconds < 0:
        return "in " + age_text(-delta).removesuffix(" ago")
    if seconds < 60:
        return "just now"
    minutes = seconds // 60
    if minutes < 60:
        return f"{minutes} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h {minutes % 60:02d} min ago"
    return f"{minutes // (24 * 60)} d ago"


def target_text(job: Job) -> str:
    if job.http is not None:
        method = "" if job.http.method == "POST" else f" ({job.http.method})"
        return f"http {job.http.service}{job.http.path}{method}"
    assert job.pubsub is not None
    return f"pubsub {job.pubsub.topic}"


# -- pure: the table -------------------------------------------------------------------------------
@dataclass(frozen=True)
class JobLine:
    """One job as ``phasectl schedules`` shows it."""

    job: Job
    zone: str
    next_at: datetime | None  # the next slot that runs (UTC), None when none within the horizon
    paused: str | None  # why it does not run today (None: it runs today)
    last: Mapping[str, Any] | None  # the job summary's ``last``
    last_success_at: datetime | None

    @property
    def failed(self) -> bool:
        return bool(self.last) and str((self.last or {}).get("status")) in FAILED_STATUSES

    def as_dict(self, pipeline_zone: str, now: datetime) -> dict[str, Any]:
        job, last = self.job, dict(self.last or {})
        target: dict[str, Any]
        if job.http is not None:
            target = {"kind": "http", "service": job.http.service, "path": job.http.path, "method": job.http.method}
        else:
            assert job.pubsub is not None
            target = {"kind": "pubsub", "topic": job.pubsub.topic, "message": job.pubsub.message}
        at = last.get("at")
        return {
            "name": job.name,
            "description": job.description,
            "target": target,
            "cron": job.cron,
            "zone": self.zone,
            "wave": job.wave,
            "window": job.window,
            "replaced_by": job.replaced_by or None,
            "next_at": iso(self.next_at),
            "next_local": self.next_at.astimezone(ZoneInfo(pipeline_zone)).isoformat() if self.next_at else None,
            "next_in_job_zone": self.next_at.astimezone(ZoneInfo(self.zone)).isoformat() if self.next_at else None,
            "paused": self.paused,
            "last": (
                {
                    "run_id": last.get("run_id"),
                    "slot_at": iso(last.get("slot_at")),
                    "status": last.get("status"),
                    "attempts": last.get("attempts"),
                    "http_status": last.get("http_status"),
                    "at": iso(at),
                    "age_seconds": int((now - at).total_seconds()) if isinstance(at, datetime) else None,
                    "duration_ms": last.get("duration_ms"),
                    "error": last.get("error") or None,
                    "next_attempt_at": iso(last.get("next_attempt_at")),
                }
                if last
                else None
            ),
            "last_success_at": iso(self.last_success_at),
        }


def job_lines(
    definition: PipelineDefinition,
    now: datetime,
    summaries: Mapping[str, Mapping[str, Any]],
    overrides: Overrides,
) -> list[JobLine]:
    """Every job of the definition, sorted by next fire time (the ones that will not fire last, by name)."""
    from shared.schedules.plan import next_slot, pause_reason

    lines = []
    for job in definition.all_jobs():
        zone = definition.job_zone(job)
        today = now.astimezone(zone).date()
        slot = next_slot(definition, job, now, overrides=overrides) if job.dispatched else None
        summary = summaries.get(job.name) or {}
        last = summary.get("last")
        success = summary.get("last_success_at")
        lines.append(
            JobLine(
                job=job,
                zone=zone.key,
                next_at=slot.at if slot is not None else None,
                paused=pause_reason(definition, job, today, overrides),
                last=last if isinstance(last, Mapping) else None,
                last_success_at=success if isinstance(success, datetime) else None,
            )
        )
    far = datetime.max.replace(tzinfo=now.tzinfo)
    return sorted(lines, key=lambda line: (line.next_at is None, line.next_at or far, line.job.name))


def overrides_text(overrides: Overrides) -> str:
    paused = ", ".join(sorted(overrides.paused)) or "none"
    resumed = ", ".join(sorted(overrides.resumed)) or "none"
    return f"paused {paused}; resumed {resumed}"


def _last_cells(line: JobLine, now: datetime, pipeline_zone: str) -> tuple[str, str, str, str, str]:
    last = line.last
    if not last:
        return ("-", "never ran", "-", "-", "-")
    slot_at, at = last.get("slot_at"), last.get("at")
    status = str(last.get("status") or "?")
    retry_at = last.get("next_attempt_at")
    if status == "retry_wait" and isinstance(retry_at, datetime):
        local = retry_at.astimezone(ZoneInfo(pipeline_zone))
        status += f" (next {local:%H:%M} {timefmt_label(ZoneInfo(pipeline_zone))})"
    return (
        at_text(slot_at, pipeline_zone) if isinstance(slot_at, datetime) else "-",
        status,
        str(last.get("attempts") or "-"),
        str(last.get("http_status") or "-"),
        age_text(now - at) if isinstance(at, datetime) else "-",
    )


def render_table(
    lines: Sequence[JobLine],
    now: datetime,
    definition: PipelineDefinition,
    overrides: Overrides,
    times: TimeView | None = None,
) -> str:
    """The jobs table; times in ``times``' zone (``ctx.times``: the pipeline's, or UTC with ``--utc``)."""
    from phasectl.report import format_table

    times = times or TimeView.of(definition.pipeline.timezone)
    pz = times.shown_zone.key
    label = times.label
    rows = []
    for line in lines:
        job = line.job
        if line.next_at is None:
            nxt, own = ("-", "-")
        else:
            nxt = at_text(line.next_at, pz)
            own = at_in_zone(line.next_at, line.zone) if line.zone != pz else "same"
        rows.append(
            (
                job.name,
                target_text(job),
                job.cron,
                line.zone,
                job.wave or "-",
                nxt,
                own,
                *_last_cells(line, now, pz),
                _short(line.paused, 100) if line.paused else "-",
            )
        )
    headers = (
        "JOB",
        "TARGET",
        "CRON",
        "ZONE",
        "WAVE",
        f"NEXT ({label})",
        "NEXT (JOB ZONE)",
        f"LAST SLOT ({label})",
        "LAST STATUS",
        "TRIES",
        "HTTP",
        "LAST RUN",
        "NOT RUNNING TODAY BECAUSE",
    )
    failed = [line.job.name for line in lines if line.failed]
    out = [
        f"phasectl schedules — {len(lines)} job(s), now {at_text(now, pz)} ({pz}); "
        f"operator overrides: {overrides_text(overrides)}",
        "",
        format_table(headers, rows),
    ]
    if failed:
        out += [
            "",
            f"last run failed: {', '.join(failed)} (runbook: schedule_failed; re-run: phasectl schedules run JOB)",
        ]
    return "\n".join(out)


def schedules_json(
    lines: Sequence[JobLine], now: datetime, definition: PipelineDefinition, overrides: Overrides
) -> dict[str, Any]:
    return {
        "version": JSON_VERSION,
        "command": "schedules",
        "now": now.isoformat(),
        "timezone": definition.pipeline.timezone,
        "overrides": {"paused": sorted(overrides.paused), "resumed": sorted(overrides.resumed)},
        "jobs": [line.as_dict(definition.pipeline.timezone, now) for line in lines],
    }


# -- Firestore: one batched read -------------------------------------------------------------------
def read_schedule_docs(ctx: Context) -> tuple[dict[str, dict[str, Any]], dict[str, Any] | None]:
    """(the job summaries by job name, the overrides document or None), in one ``get_all``."""
    from shared.schedules.plan import SEASON_DOC

    fs = ctx.firestore()
    collection = fs.collection(ctx.definition.dispatcher.jobs_collection)
    names = [job.name for job in ctx.definition.all_jobs()]
    refs = [collection.document(name) for name in [*names, SEASON_DOC]]
    found = {snap.id: snap.to_dict() or {} for snap in fs.get_all(refs, timeout=ctx.timeout) if snap.exists}
    season = found.pop(SEASON_DOC, None)
    return found, season


def cmd_schedules(ctx: Context, args: argparse.Namespace) -> int:
    from shared.schedules.plan import Overrides

    ctx.backends.ensure(*SCHEDULE_NEEDS["schedules"])
    summaries, season = read_schedule_docs(ctx)
    overrides = Overrides.from_doc(season)
    now = ctx.now()
    lines = job_lines(ctx.definition, now, summaries, overrides)
    if args.json:
        ctx.dump(schedules_json(lines, now, ctx.definition, overrides))
    else:
        ctx.print(render_table(lines, now, ctx.definition, overrides, ctx.times))
    return 1 if any(line.failed for line in lines) else 0


# -- schedules run -------------------------------------------------------------------------------------
def find_job(definition: PipelineDefinition, name: str) -> Job:
    """The job named ``name``; an unknown name is a usage error naming the close ones."""
    names = [job.name for job in definition.all_jobs()]
    if name in names:
        return definition.job(name)
    close = difflib.get_close_matches(name, names, n=5, cutoff=0.5)
    hint = f"did you mean: {', '.join(close)}?" if close else f"known: {', '.join(sorted(names))}"
    raise UsageError(f"unknown job {name!r} ({hint}); `phasectl schedules` lists every job")


def _job_day(ctx: Context, job: Job, value: str | None) -> date | None:
    """``--date`` in the job's own zone (TODAY/YESTERDAY there too)."""
    if value is None:
        return None
    from shared.clock import resolve_game_date
    from shared.errors import InvalidDateError

    try:
        return resolve_game_date(value, ctx.clock, ctx.definition.job_zone(job))
    except InvalidDateError as exc:
        raise UsageError(exc.message) from None


def _short(text: Any, limit: int = 240) -> str:
    value = str(text)
    return value if len(value) <= limit else value[: limit - 1] + "…"


def request_text(request: Mapping[str, Any]) -> str:
    """A stored request in one line: ``POST URL BODY`` or ``pubsub TOPIC DATA``."""
    if request.get("error"):
        return f"not sent: {request['error']}"
    if request.get("kind") == "http":
        body = f" {request['body']}" if request.get("body") else ""
        return _short(f"{request.get('method')} {request.get('url')}{body}")
    return _short(f"pubsub {request.get('topic')} {request.get('data')}")


def retried_by_ticks(definition: PipelineDefinition, job: Job, slot: Slot, retry_at: datetime) -> str | None:
    """None when the tick of ``retry_at``'s minute retries the slot (a calendar slot still in the
    catch-up window), else how it is retried: a hand-run of an older day, a ``--force`` generation or a
    slot past the window is picked up by the ticks' look for stragglers, every few minutes."""
    from shared.schedules.dispatcher import STRAGGLER_EVERY_MINUTES
    from shared.schedules.plan import pause_reason

    window = timedelta(minutes=definition.dispatcher.catch_up_minutes)
    calendar = not slot.manual and pause_reason(definition, job, slot.day) is None
    if calendar and retry_at < slot.at + window:
        return None
    return f"its slot is not one the ticks run now: they look for such retries every {STRAGGLER_EVERY_MINUTES} min"


def outcome_lines(
    job: Job,
    outcome: str,
    detail: str,
    run: Mapping[str, Any] | None,
    pipeline_zone: str,
    force_hint: str,
    not_retried: str | None = None,
) -> list[str]:
    """What ``schedules run`` prints about the result (pure); ``not_retried``: why the ticks will not
    retry a ``retry_wait`` (``retried_by_ticks``)."""
    run = dict(run or {})
    attempts = run.get("attempts")
    tries = f" (attempt {attempts}/{job.max_attempts})" if attempts else ""
    result = dict(run.get("outcome") or {})
    if outcome == "done":
        return [
            f"already ran: {detail or run.get('status')}",
            f"  to run this slot again as a new generation: {force_hint}",
        ]
    if outcome == "waiting":
        at = run.get("next_attempt_at")
        when = at_text(at, pipeline_zone) if isinstance(at, datetime) else "later"
        return [f"waiting for its retry at {when}: {detail}", f"  to run it now as a new generation: {force_hint}"]
    if outcome == "running_elsewhere":
        return [f"running elsewhere (another tick holds its claim): {detail}"]
    if outcome in ("deferred", "lost"):
        return [f"{outcome}: {detail}"]
    out = [f"{outcome}{tries}: {detail or '-'}"]
    if result.get("response"):
        out.append(f"  response: {_short(result['response'], 300)}")
    if result.get("error") and not str(result["error"]).startswith("HTTP "):
        out.append(f"  error: {_short(result['error'], 300)}")
    if outcome == "retry_wait":
        at = run.get("next_attempt_at")
        when = at_text(at, pipeline_zone) if isinstance(at, datetime) else "later"
        if not_retried is None:
            out.append(f"  the dispatcher tries again at {when} (at most {job.max_attempts} attempts in all)")
        else:
            out.append(
                f"  the dispatcher tries again a few minutes after {when} ({not_retried}; "
                f"at most {job.max_attempts} attempts in all)"
            )
    return out


def _check_slot(ctx: Context, job: Job, day: date | None, force: bool) -> None:
    """Bad input before any backend: a day without a slot, or a slot that has not fired yet (run now, it
    would use up the scheduled run: the tick finds it done; ``--force`` runs a generation of its own)."""
    from shared.schedules.plan import slot_on

    if day is None:
        return
    slot = slot_on(ctx.definition, job, day)
    zone = ctx.definition.job_zone(job).key
    if slot is None:
        raise UsageError(f"job {job.name} ({job.cron}, {zone}) has no slot on {day.isoformat()}")
    if slot.at > ctx.now() and not force:
        raise UsageError(
            f"the {day.isoformat()} slot of {job.name} fires at {at_text(slot.at, ctx.times.shown_zone.key)}, "
            "after now: run by hand now it would use up the scheduled run; add --force to run a generation of "
            "its own (the scheduled run still happens)"
        )


def cmd_schedules_run(ctx: Context, args: argparse.Namespace) -> int:
    from shared.contracts.messages import ScheduleTick
    from shared.schedules.plan import pause_reason
    from shared.schedules.runtime import build_dispatcher

    job = find_job(ctx.definition, args.job)
    if not job.dispatched:
        raise UsageError(f"job {job.name} is replaced by {job.replaced_by}: it is never dispatched")
    day = _job_day(ctx, job, args.date)
    _check_slot(ctx, job, day, args.force)
    needs = SCHEDULE_NEEDS["schedules run"] | ({PUBSUB} if job.pubsub is not None else set())
    ctx.prepare(*needs)  # the dispatcher's clients come from the shared factories: checked and bounded here
    _ = ctx.project  # resolved (and exported) before the dispatcher reads it
    user = ctx.env.get("USER") or _user()
    dispatcher = build_dispatcher(definition=ctx.definition, clock=ctx.clock, environ=ctx.env)
    tick = ScheduleTick(job=job.name, game_date=day, force=args.force, requested_by=f"phasectl:{user}")
    report = dispatcher.tick(tick)
    (result,) = report.results  # a manual tick names one slot: it ran, or why it did not
    slot = result.slot
    run = dispatcher.runs.get(slot.run_id)
    pz = ctx.times.shown_zone.key  # the pipeline's zone, or UTC with --utc
    ctx.audit(
        "schedules run",
        {"job": job.name, "date": slot.day, "force": args.force, "run_id": slot.run_id},
        f"{result.outcome} {slot.run_id}: {result.detail}".strip(),
    )
    where = f" = {at_in_zone(slot.at, slot.zone)}" if slot.zone != pz else ""
    generation = f", generation m{slot.manual}" if slot.manual else ""
    ctx.print(f"{job.name}: slot {at_text(slot.at, pz)}{where}{generation} (run {slot.run_id})")
    if run and run.get("request") and result.outcome in RAN:
        ctx.print(f"  request: {request_text(run['request'])}")
    reason = pause_reason(ctx.definition, job, slot.day)  # the calendar's (a manual run reads no overrides)
    if reason is not None and result.outcome in RAN:
        ctx.print(f"  note: by the calendar it does not run that day ({reason}); run by hand anyway")
    hint = f"phasectl schedules run {job.name} --date {slot.day.isoformat()} --force"
    retry_at = (run or {}).get("next_attempt_at")
    why = retried_by_ticks(ctx.definition, job, slot, retry_at) if isinstance(retry_at, datetime) else None
    for line in outcome_lines(job, result.outcome, result.detail, run, pz, hint, why):
        ctx.print(line)
    return 0 if result.outcome == "succeeded" else 1
