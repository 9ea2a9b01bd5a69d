"""``phasectl season status|pause|resume``: the season calendar and the operator's overrides.

The calendar is the definition's (``[[seasons]]``, ``[waves]``): a job runs from its wave's days
before a season's opener to the playoffs' end (the regular season's for ``window =
"regular_season"``). The operator overrides it in one Firestore document,
``{[dispatcher] jobs_collection}/_season`` (``shared.schedules.plan.SEASON_DOC``): ``paused``
and ``resumed`` lists of waves (``A``, ``B``, ``C``, ``-`` for the jobs without a wave) or
``all``. A pause wins over a resume and over the calendar; a resume runs the wave even outside
its window. The dispatcher reads the document on every tick that has a job due: no redeploy.

The report and the override arithmetic are pure (``season_report``, ``apply_override``,
``changes_today``); the commands read or write the one document and audit every change.
"""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Literal

from phasectl.commands.schedules import SCHEDULE_NEEDS, at_text, overrides_text
from phasectl.core import Context, _user, iso
from phasectl.timefmt import TimeView
from shared.pipeline.definition import Job, PipelineDefinition, Season
from shared.schedules.plan import Overrides, active_on

WAVES = ("A", "B", "C")
KEYS = (*WAVES, "-")  # "-": the jobs without a wave (they resume at the opener)
Place = Literal["pre_season", "in_season", "off_season"]
JSON_VERSION = 1


# -- pure: where the calendar stands -----------------------------------------------------------------
@dataclass(frozen=True)
class WaveLine:
    key: str
    days: int  # days before the opener it resumes
    resumes: date | None  # in the reference season (None: no season to come)
    by_calendar: bool  # the calendar runs it today (a season window, no override)
    override: str  # "paused", "resumed", "paused (all)", ... or "-"
    jobs: tuple[str, ...]
    running: tuple[str, ...]  # running today (overrides applied)
    paused: tuple[str, ...]

    def as_dict(self) -> dict[str, Any]:
        return {
            "wave": self.key,
            "days_before_opener": self.days,
            "resumes": iso(self.resumes),
            "by_calendar": self.by_calendar,
            "override": self.override,
            "jobs": list(self.jobs),
            "running_today": list(self.running),
            "paused_today": list(self.paused),
        }


@dataclass(frozen=True)
class SeasonReport:
    today: date
    zone: str
    place: Place
    summary: str
    seasons: tuple[Season, ...]
    current: str | None  # the season today is in (in season), else None
    reference: str | None  # the season the waves' resume dates are of
    overrides: Overrides
    doc: Mapping[str, Any] = field(default_factory=dict)  # the overrides document as stored
    waves: tuple[WaveLine, ...] = ()
    replaced: tuple[str, ...] = ()

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": JSON_VERSION,
            "command": "season status",
            "today": self.today.isoformat(),
            "timezone": self.zone,
            "place": self.place,
            "summary": self.summary,
            "current_season": self.current,
            "seasons": [
                {
                    "name": s.name,
                    "opener": s.opener.isoformat(),
                    "regular_season_end": s.regular_season_end.isoformat(),
                    "playoffs_end": s.playoffs_end.isoformat(),
                }
                for s in self.seasons
            ],
            "overrides": {
                "paused": sorted(self.overrides.paused),
                "resumed": sorted(self.overrides.resumed),
                "last_change": self.doc.get("last_change"),
                "updated_by": self.doc.get("updated_by"),
                "updated_at": iso(self.doc.get("updated_at")),
                "note": self.doc.get("note"),
            },
            "waves": [w.as_dict() for w in self.waves],
            "replaced": list(self.replaced),
        }

    def render(self, times: TimeView | None = None) -> str:
        """The text; the last change's instant in ``times`` (``ctx.times``; default: the pipeline's zone)."""
        from phasectl.report import format_table

        out = [f"phasectl season status — today {self.today.isoformat()} ({self.zone})", self.summary]
        change = ""
        if self.doc.get("last_change"):
            when = self.doc.get("updated_at")
            shown = times.stamp(when) if times is not None and isinstance(when, datetime) else None
            at = f" at {shown or at_text(when, self.zone)}" if isinstance(when, datetime) else ""
            note = f' ("{self.doc["note"]}")' if self.doc.get("note") else ""
            change = f"; last change: {self.doc['last_change']} by {self.doc.get('updated_by') or '?'}{at}{note}"
        out.append(f"operator overrides: {overrides_text(self.overrides)}{change}")
        out.append("")
        seasons = [
            (
                s.name,
                s.opener.isoformat(),
                s.regular_season_end.isoformat(),
                s.playoffs_end.isoformat(),
                "today is in it" if s.name == self.current else ("the next" if s.name == self.reference else ""),
            )
            for s in self.seasons
        ]
        out.append(format_table(("SEASON", "OPENER", "REGULAR SEASON END", "PLAYOFFS END", "NOW"), seasons))
        out.append("")
        rows = [
            (
                w.key,
                f"{w.resumes.isoformat()} ({'opener' if not w.days else f'-{w.days} d'})" if w.resumes else "-",
                "running" if w.by_calendar else "not running",
                w.override,
                len(w.jobs),
                len(w.running),
                len(w.paused),
            )
            for w in self.waves
        ]
        resumes = f"RESUMES ({self.reference})" if self.reference else "RESUMES"
        headers = ("WAVE", resumes, "BY THE CALENDAR", "OVERRIDE", "JOBS", "RUNNING TODAY", "PAUSED TODAY")
        out.append(format_table(headers, rows))
        out.append("(wave -: the jobs without a wave, from the opener; a job's window can end it earlier)")
        if self.replaced:
            out.append(f"replaced, never dispatched: {', '.join(self.replaced)}")
        return "\n".join(out)


def _days(n: int) -> str:
    return f"{n} day{'s' if n != 1 else ''}"


def _wave_days(definition: PipelineDefinition, key: str) -> int:
    return definition.waves.days(None) if key == "-" else int(getattr(definition.waves, key))


def _override(overrides: Overrides, key: str) -> str:
    paused = "paused" if key in overrides.paused else "paused (all)" if "all" in overrides.paused else ""
    resumed = "resumed" if key in overrides.resumed else "resumed (all)" if "all" in overrides.resumed else ""
    if paused and resumed:
        return f"{paused}, wins over {resumed}"
    return paused or resumed or "-"


def place_of(definition: PipelineDefinition, today: date) -> tuple[Place, Season | None, Season | None]:
    """(where today is, the season it is in, the season the waves' resume dates are of)."""
    seasons = sorted(definition.seasons, key=lambda s: s.opener)
    current = next((s for s in seasons if s.opener <= today <= s.playoffs_end), None)
    if current is not None:
        return "in_season", current, current
    upcoming = next((s for s in seasons if s.opener > today), None)
    lead = max(_wave_days(definition, k) for k in KEYS)
    if upcoming is not None and today >= upcoming.opener - timedelta(days=lead):
        return "pre_season", None, upcoming
    return "off_season", None, upcoming


def _summary(definition: PipelineDefinition, today: date, place: Place, ref: Season | None) -> str:
    if place == "in_season":
        assert ref is not None
        if today <= ref.regular_season_end:
            return (
                f"in season {ref.name}: regular season, day {(today - ref.opener).days + 1} (opened "
                f"{ref.opener.isoformat()}; regular season ends {ref.regular_season_end.isoformat()}, "
                f"playoffs end {ref.playoffs_end.isoformat()})"
            )
        return (
            f"in season {ref.name}: playoffs (regular season ended {ref.regular_season_end.isoformat()}); "
            f"playoffs end {ref.playoffs_end.isoformat()}, in {_days((ref.playoffs_end - today).days)}"
        )
    if ref is None:
        ended = [s for s in definition.seasons if s.playoffs_end < today]
        since = f" since {max(ended, key=lambda s: s.playoffs_end).playoffs_end.isoformat()}" if ended else ""
        return (
            f"off season{since}: no later season is defined — add it to [[seasons]] in the definition "
            "(until then every job with a season window stays paused)"
        )
    starts = {k: ref.opener - timedelta(days=_wave_days(definition, k)) for k in KEYS}
    to_opener = f"{ref.name} opens {ref.opener.isoformat()}, in {_days((ref.opener - today).days)}"
    if place == "pre_season":
        running = [f"{k} since {starts[k].isoformat()}" for k in WAVES if starts[k] <= today]
        waiting = [
            f"{k} resumes {starts[k].isoformat()} (in {_days((starts[k] - today).days)})"
            for k in WAVES
            if starts[k] > today
        ]
        parts = [f"running by the calendar: wave {', '.join(running)}"]
        return f"pre-season: {to_opener}; " + "; ".join(parts + waiting)
    first = min(WAVES, key=lambda k: starts[k])
    ended = [s for s in definition.seasons if s.playoffs_end < today]
    since = f" since {max(ended, key=lambda s: s.playoffs_end).playoffs_end.isoformat()}" if ended else ""
    return (
        f"off season{since}: {to_opener}; wave {first} resumes first, on {starts[first].isoformat()} "
        f"(in {_days((starts[first] - today).days)})"
    )


def _today(definition: PipelineDefinition, job: Job, now: datetime) -> date:
    return now.astimezone(definition.job_zone(job)).date()


def season_report(definition: PipelineDefinition, now: datetime, doc: Mapping[str, Any] | None = None) -> SeasonReport:
    """Where the calendar stands today (in the pipeline's zone), and per wave what runs today."""
    from zoneinfo import ZoneInfo

    zone = definition.pipeline.timezone
    today = now.astimezone(ZoneInfo(zone)).date()
    overrides = Overrides.from_doc(dict(doc) if doc else None)
    place, current, ref = place_of(definition, today)
    jobs = [j for j in definition.all_jobs() if j.dispatched]
    waves = []
    for key in KEYS:
        days = _wave_days(definition, key)
        resumes = ref.opener - timedelta(days=days) if ref is not None else None
        by_calendar = ref is not None and resumes is not None and resumes <= today <= ref.playoffs_end
        mine = [j for j in jobs if (j.wave or "-") == key]
        running = tuple(j.name for j in mine if active_on(definition, j, _today(definition, j, now), overrides))
        paused = tuple(j.name for j in mine if j.name not in running)
        waves.append(
            WaveLine(
                key, days, resumes, by_calendar, _override(overrides, key), tuple(j.name for j in mine), running, paused
            )
        )
    replaced = tuple(f"{j.name} (by {j.replaced_by})" for j in definition.all_jobs() if not j.dispatched)
    return SeasonReport(
        today=today,
        zone=zone,
        place=place,
        summary=_summary(definition, today, place, ref),
        seasons=tuple(sorted(definition.seasons, key=lambda s: s.opener)),
        current=current.name if current else None,
        reference=ref.name if ref else None,
        overrides=overrides,
        doc=dict(doc or {}),
        waves=tuple(waves),
        replaced=replaced,
    )


# -- pure: the override arithmetic -------------------------------------------------------------------
def apply_override(doc: Mapping[str, Any] | None, action: str, key: str) -> Overrides:
    """The overrides after ``season pause|resume`` of ``key`` (a wave or ``all``): a pause removes
    it from ``resumed``, a resume from ``paused``."""
    before = Overrides.from_doc(dict(doc) if doc else None)
    if action == "pause":
        return Overrides(before.paused | {key}, before.resumed - {key})
    return Overrides(before.paused - {key}, before.resumed | {key})


def affected_jobs(definition: PipelineDefinition, key: str) -> list[str]:
    """The dispatched jobs an override of ``key`` names."""
    return [j.name for j in definition.all_jobs() if j.dispatched and (key == "all" or (j.wave or "-") == key)]


def changes_today(
    definition: PipelineDefinition, now: datetime, before: Overrides, after: Overrides
) -> tuple[list[str], list[str]]:
    """(the jobs that stop running today, the jobs that start) when ``before`` becomes ``after``."""
    stops, starts = [], []
    for job in definition.all_jobs():
        day = _today(definition, job, now)
        was, will = active_on(definition, job, day, before), active_on(definition, job, day, after)
        if was and not will:
            stops.append(job.name)
        elif will and not was:
            starts.append(job.name)
    return stops, starts


def change_lines(
    definition: PipelineDefinition, now: datetime, action: str, key: str, before: Overrides, after: Overrides
) -> list[str]:
    """What ``season pause|resume`` prints once the document is written (pure)."""
    what = "every job" if key == "all" else f"wave {key}"
    named = affected_jobs(definition, key)
    out = [
        f"{'paused' if action == 'pause' else 'resumed'} {what}: overrides now {overrides_text(after)}",
        f"jobs it names ({len(named)}): {', '.join(named) or 'none'}",
    ]
    stops, starts = changes_today(definition, now, before, after)
    for verb, changed in (("stop", stops), ("start", starts)):
        if changed == named:
            out.append(f"today {len(changed)} job(s) {verb}: all of them")
        elif changed:
            out.append(f"today {len(changed)} job(s) {verb}: {', '.join(changed)}")
    if not stops and not starts:
        out.append("today: no job changes (the calendar or another override already decides them)")
    if action == "resume" and key != "all" and "all" in after.paused:
        out.append("note: every job stays paused while `all` is paused: `phasectl season resume` lifts that")
    if action == "resume" and key == "all" and after.paused:
        keys = ", ".join(sorted(after.paused))
        out.append(f"note: a pause wins over a resume: wave(s) {keys} stay paused (phasectl season resume --wave W)")
    if action == "resume":
        out.append(
            f"note: a resume overrides the calendar: {what} runs every day, even outside its season window, "
            "until it is paused again"
        )
    out.append("no redeploy needed: the dispatcher reads the overrides on every tick that has a job due")
    out.append("`phasectl deploy verify` will show the overrides against the calendar (the jobs they pause or run)")
    return out


# -- commands -------------------------------------------------------------------------------------------
def _season_ref(ctx: Context) -> Any:
    from shared.schedules.plan import SEASON_DOC

    return ctx.firestore().collection(ctx.definition.dispatcher.jobs_collection).document(SEASON_DOC)


def _read(ctx: Context) -> dict[str, Any] | None:
    snap = _season_ref(ctx).get(timeout=ctx.timeout)
    return (snap.to_dict() or {}) if snap.exists else None


def cmd_season_status(ctx: Context, args: argparse.Namespace) -> int:
    ctx.backends.ensure(*SCHEDULE_NEEDS["season status"])
    report = season_report(ctx.definition, ctx.now(), _read(ctx))
    if args.json:
        ctx.dump(report.as_dict())
    else:
        ctx.print(report.render(ctx.times))
    return 0


def _change(ctx: Context, args: argparse.Namespace, action: str) -> int:
    from google.cloud import firestore

    key = args.wave or "all"
    ctx.backends.ensure(*SCHEDULE_NEEDS[f"season {action}"])
    doc = _read(ctx)
    before = Overrides.from_doc(doc)
    after = apply_override(doc, action, key)
    command = f"season {action}" + (f" --wave {args.wave}" if args.wave else "")
    audit_args = {"wave": key, "note": args.note}
    if after == before:
        ctx.audit(f"season {action}", audit_args, f"unchanged: {overrides_text(after)}")
        state = "paused" if action == "pause" else "resumed"
        ctx.print(f"{'every job' if key == 'all' else f'wave {key}'} is already {state}: nothing changed")
        ctx.print(f"overrides: {overrides_text(after)}")
        return 1
    user = ctx.env.get("USER") or _user()
    added, removed = ("paused", "resumed") if action == "pause" else ("resumed", "paused")
    _season_ref(ctx).set(
        {
            added: firestore.ArrayUnion([key]),  # atomic per list: two operators at once lose neither change
            removed: firestore.ArrayRemove([key]),
            "last_change": command,
            "updated_by": user,
            "updated_at": ctx.now(),
            "note": args.note or "",
        },
        merge=True,
        timeout=ctx.timeout,
    )
    stops, starts = changes_today(ctx.definition, ctx.now(), before, after)
    ctx.audit(
        f"season {action}",
        audit_args,
        f"{overrides_text(after)}; today {len(stops)} stop, {len(starts)} start",
    )
    for line in change_lines(ctx.definition, ctx.now(), action, key, before, after):
        ctx.print(line)
    return 0


def cmd_season_pause(ctx: Context, args: argparse.Namespace) -> int:
    return _change(ctx, args, "pause")


def cmd_season_resume(ctx: Context, args: argparse.Namespace) -> int:
    return _change(ctx, args, "resume")
