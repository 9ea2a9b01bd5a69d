"""What the schedule dispatcher decides, pure: which slots are due, whether a job is in season,
what a slot's body says, how long to wait before the next attempt, what a target's answer means.

A *slot* is one firing of one job: the job's cron evaluated in the job's own zone gives a UTC
instant; the slot's id (``<job>__<YYYYMMDDTHHMMZ>``) names its run document, so every tick, from
any process, agrees on which run a firing is. Template dates are resolved from the slot's instant
in the job's zone, not from when the tick happens to arrive: a late tick runs the same request.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from shared.pipeline.definition import Job, PipelineDefinition, Season, Waves
from shared.schedules.cron import CronExpression, fires_between

Verdict = Literal["succeeded", "retry", "client_error", "config_error"]
TERMINAL = ("succeeded", "failed", "client_error", "config_error", "skipped")
_VARIABLE = re.compile(r"\$\{([^}]*)\}")


@dataclass(frozen=True)
class Slot:
    """One firing of one job."""

    job: str
    at: datetime  # aware UTC
    zone: str
    manual: int = 0  # a manual run's generation (``phasectl schedules run``); 0 for a scheduled slot

    @property
    def local(self) -> datetime:
        return self.at.astimezone(ZoneInfo(self.zone))

    @property
    def day(self) -> date:
        """The slot's calendar day in the job's zone."""
        return self.local.date()

    @property
    def key(self) -> str:
        base = self.at.astimezone(UTC).strftime("%Y%m%dT%H%MZ")
        return base if not self.manual else f"{base}-m{self.manual}"

    @property
    def run_id(self) -> str:
        return f"{self.job}__{self.key}"


@dataclass(frozen=True)
class Overrides:
    """Operator overrides of the season calendar (``phasectl season pause|resume [--wave W]``), kept in
    ``{jobs_collection}/_season``: a paused wave (or ``all``) does not run even in season; a
    resumed wave runs even before its days-before-opener offset or after the playoffs."""

    paused: frozenset[str] = frozenset()  # "A", "B", "C", "-" (jobs without a wave), "all"
    resumed: frozenset[str] = frozenset()

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> Overrides:
        doc = doc or {}
        return cls(frozenset(doc.get("paused") or ()), frozenset(doc.get("resumed") or ()))

    def wave_key(self, job: Job) -> str:
        return job.wave or "-"

    def paused_job(self, job: Job) -> bool:
        return "all" in self.paused or self.wave_key(job) in self.paused

    def resumed_job(self, job: Job) -> bool:
        return "all" in self.resumed or self.wave_key(job) in self.resumed


NO_OVERRIDES = Overrides()
SEASON_DOC = "_season"  # not a job name (those start with a letter); "__x__" ids are reserved by Firestore


def season_on(seasons: Sequence[Season], day: date, waves: Waves, job: Job) -> Season | None:
    """The season whose window holds ``day`` for ``job`` (its wave resumes it early), or None."""
    for season in seasons:
        start = season.opener - timedelta(days=waves.days(job.wave))
        end = season.regular_season_end if job.window == "regular_season" else season.playoffs_end
        if start <= day <= end:
            return season
    return None


def active_on(definition: PipelineDefinition, job: Job, day: date, overrides: Overrides = NO_OVERRIDES) -> bool:
    """Whether ``job`` runs on ``day``: dispatched (not replaced), not paused by an operator, and
    ``always``, resumed by an operator, or in its season window."""
    if not job.dispatched or overrides.paused_job(job):
        return False
    if job.window == "always" or overrides.resumed_job(job):
        return True
    return season_on(definition.seasons, day, definition.waves, job) is not None


def pause_reason(
    definition: PipelineDefinition, job: Job, day: date, overrides: Overrides = NO_OVERRIDES
) -> str | None:
    """Why ``job`` does not run on ``day`` (None when it runs)."""
    if not job.dispatched:
        return f"replaced by {job.replaced_by}"
    if overrides.paused_job(job):
        return f"paused by an operator (phasectl season pause{' --wave ' + job.wave if job.wave else ''})"
    if active_on(definition, job, day, overrides):
        return None
    upcoming = [s for s in definition.seasons if s.opener - timedelta(days=definition.waves.days(job.wave)) > day]
    if upcoming:
        first = min(upcoming, key=lambda s: s.opener)
        resume = first.opener - timedelta(days=definition.waves.days(job.wave))
        wave = f"wave {job.wave}, " if job.wave else ""
        return f"off season: resumes {resume.isoformat()} ({wave}{first.name} opener {first.opener.isoformat()})"
    return "off season: no later season is defined ([[seasons]])"


def cron_of(job: Job) -> CronExpression:
    return CronExpression.parse(job.cron)


def slots_between(
    definition: PipelineDefinition, job: Job, start: datetime, end: datetime, overrides: Overrides = NO_OVERRIDES
) -> list[Slot]:
    """The job's slots in ``(start, end]`` on days it is active."""
    zone = definition.job_zone(job)
    out = []
    for at in fires_between(cron_of(job), zone, start, end):
        slot = Slot(job.name, at, zone.key)
        if active_on(definition, job, slot.day, overrides):
            out.append(slot)
    return out


def due_slots(
    definition: PipelineDefinition,
    now: datetime,
    jobs: Iterable[Job] | None = None,
    overrides: Overrides = NO_OVERRIDES,
) -> list[Slot]:
    """Every active slot fired within the dispatcher's catch-up window up to ``now``, oldest first."""
    start = now - timedelta(minutes=definition.dispatcher.catch_up_minutes)
    chosen = definition.all_jobs() if jobs is None else jobs
    found = [s for job in chosen for s in slots_between(definition, job, start, now, overrides)]
    return sorted(found, key=lambda s: (s.at, s.job))


def next_slot(
    definition: PipelineDefinition,
    job: Job,
    after: datetime,
    horizon_days: int = 400,
    overrides: Overrides = NO_OVERRIDES,
) -> Slot | None:
    """The job's next active slot after ``after`` (None within ``horizon_days``: paused that long)."""
    zone = definition.job_zone(job)
    cron = cron_of(job)
    moment = after
    limit = after + timedelta(days=horizon_days)
    while True:
        at = cron.next_after(moment, zone)
        if at > limit:
            return None
        slot = Slot(job.name, at, zone.key)
        if active_on(definition, job, slot.day, overrides):
            return slot
        # skip the rest of an inactive day at once
        moment = max(
            at, datetime.combine(slot.day + timedelta(days=1), time(0), tzinfo=zone).astimezone(UTC)
        ) - timedelta(seconds=1)


DAY_LOOKBACK = timedelta(hours=26)  # a daily job's latest slot, with room for a DST day


def lookback_for(job: Job) -> timedelta:
    """How far back a job's latest slot is looked for: a day for a daily (or more frequent) cron; a week
    and a day for a weekly one, a month for a monthly one, a year for one restricted by month — so a
    missed weekly job stays reported until its next slot runs, not only for a day."""
    cron = cron_of(job)
    if len(cron.months) < 12:
        return timedelta(days=367)
    if cron.dom_restricted:
        return timedelta(days=32)
    if cron.dow_restricted:
        return timedelta(days=8)
    return DAY_LOOKBACK


def last_slot(
    definition: PipelineDefinition,
    job: Job,
    before: datetime,
    lookback: timedelta,
    overrides: Overrides = NO_OVERRIDES,
) -> Slot | None:
    """The job's latest active slot in ``(before - lookback, before]``."""
    slots = slots_between(definition, job, before - lookback, before, overrides)
    return slots[-1] if slots else None


def slot_on(definition: PipelineDefinition, job: Job, day: date, manual: int = 0) -> Slot | None:
    """The job's first slot on the calendar ``day`` in its zone (for a manual run ``--date``)."""
    zone = definition.job_zone(job)
    start = datetime.combine(day, time(0), tzinfo=zone).astimezone(UTC) - timedelta(seconds=1)
    at = cron_of(job).next_after(start, zone)
    if at.astimezone(zone).date() != day:
        return None
    return Slot(job.name, at, zone.key, manual)


# ----------------------------------------------------------------------------- templates


def template_values(slot: Slot, job: Job, season: Season | None) -> dict[str, str]:
    """``${...}`` values for a slot, in the job's zone at the slot's instant."""
    local = slot.local
    today = local.date()
    night = today - timedelta(days=1) if local.time() < time(12, 0) else today
    return {
        "today": today.isoformat(),
        "yesterday": (today - timedelta(days=1)).isoformat(),
        "tomorrow": (today + timedelta(days=1)).isoformat(),
        "game_night": night.isoformat(),
        "mode": job.mode or "",
        "season": season.name if season else "",
    }


def render(template: Any, values: dict[str, str]) -> Any:
    """``template`` with every ``${name}`` replaced (names are checked when the definition loads)."""
    if isinstance(template, str):
        return _VARIABLE.sub(lambda m: values[m.group(1)], template)
    if isinstance(template, dict):
        return {render(k, values): render(v, values) for k, v in template.items()}
    if isinstance(template, (list, tuple)):
        return [render(v, values) for v in template]
    return template


def body_bytes(body: Any) -> bytes:
    return json.dumps(body, sort_keys=True, separators=(",", ":")).encode()


# ----------------------------------------------------------------------------- outcomes


def classify_status(status: int) -> Verdict:
    """A target's HTTP answer: 2xx done; 404 a configuration error (no such service/route);
    408/429 and 5xx retried; other 4xx a client error (recorded and alerted, not retried)."""
    if 200 <= status < 300:
        return "succeeded"
    if status == 404:
        return "config_error"
    if status in (408, 429) or status >= 500:
        return "retry"
    return "client_error"


def retry_delay(job: Job, attempts: int) -> timedelta:
    """Wait after the ``attempts``-th failed attempt: base, 2x base, 4x base, ..."""
    return timedelta(seconds=job.retry_base_seconds * 2 ** max(0, attempts - 1))


def excerpt(text: str, limit: int) -> str:
    """A response excerpt safe to store and print: printable, at most ``limit`` characters."""
    from shared.printable import printable

    clean = printable(text)
    return clean if len(clean) <= limit else clean[: max(0, limit - 1)] + "…"
