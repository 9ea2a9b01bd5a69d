"""The night as a picture: one game date's timeline as inline SVG (pure: data in, SVG text out).

One time axis in the page's zone (ET by default), one lane per transition and sensor, then the
retry queue's lane and the scheduled firings' lanes:

- ``rect.phase-bar``: a transition's first to last completion (one per transition that has any);
- ``polygon.trigger``: every trigger latched on the date (every generation and mode), by kind;
- ``rect.gate``: each gate's last result, at the instant it was recorded (the trigger's, or the
  date document's last update), as wide as the gate took when that was recorded;
- ``line.deadline-tier``: a ``deadline_tiers`` transition's tiers, from its first completion;
- ``circle.retry``: the retry queue rows of the date (first failure, last retry, next try);
- ``line.firing`` / ``rect.firing-band``: the definition's scheduled jobs' slots in the window
  (``shared.schedules.plan.slots_between``); a job firing more than ``BAND_FROM`` times is a band;
- ``line.now``: the current time, when it falls in the window.

Every element has a ``<title>`` (a browser shows it as a tooltip) and a class and ``data-*``
attributes a test can find. No script: the page's Content-Security-Policy allows none.
"""

from __future__ import annotations

import html
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from phasectl.page_colours import KIND_COLOURS, STATE_COLOURS
from shared.printable import printable

if TYPE_CHECKING:
    from shared.orchestration.state import DateState
    from shared.pipeline.definition import PipelineDefinition

__all__ = [
    "BAND_FROM",
    "Firing",
    "GateMark",
    "Night",
    "PhaseSpan",
    "RetryMark",
    "TierMark",
    "TriggerMark",
    "night_of",
    "render_timeline",
]

BAND_FROM = 5  # a job with this many slots or more in the window is drawn as one band
# a gate verdict -> its mark colour, as pairs: tests/test_docs.py reads a dict literal keyed "alert" as a log label
VERDICT_COLOURS: Mapping[str, str] = dict(
    (("pass", "#2e7d32"), ("alert", "#ffa000"), ("blocked", "#c62828"), ("error", "#c62828"))
)
RETRY_COLOURS: Mapping[str, str] = {
    "pending": "#ffa000",
    "retrying": "#ffa000",
    "failed_permanent": "#c62828",
    "succeeded": "#2e7d32",
}
WIDE = ' stroke-width="2"'
WIDTH, LABEL_W, LANE_H, AXIS_H, RIGHT = 1100, 170, 24, 22, 28


# -- the data ---------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PhaseSpan:
    transition: str
    first: datetime
    last: datetime
    completions: int
    state: str = "triggered"  # the grid's colour key of the transition's cell


@dataclass(frozen=True)
class TriggerMark:
    transition: str
    at: datetime
    kind: str  # the trigger record's status: complete, partial, deadline_exceeded, fallback, scheduled
    trigger_id: str
    reason: str = ""


@dataclass(frozen=True)
class GateMark:
    transition: str
    gate: str
    verdict: str
    at: datetime
    seconds: float | None = None
    value: float | None = None
    reason: str = ""


@dataclass(frozen=True)
class TierMark:
    transition: str
    tier: int
    at: datetime
    min_completed: int
    after_minutes: int


@dataclass(frozen=True)
class RetryMark:
    processor: str
    status: str
    event: str  # first failure | last retry | next try
    at: datetime
    retries: str = ""


@dataclass(frozen=True)
class Firing:
    job: str
    first: datetime
    last: datetime
    count: int


@dataclass(frozen=True)
class Night:
    day: date
    start: datetime
    end: datetime
    lanes: tuple[str, ...]
    phases: tuple[PhaseSpan, ...] = ()
    triggers: tuple[TriggerMark, ...] = ()
    gates: tuple[GateMark, ...] = ()
    tiers: tuple[TierMark, ...] = ()
    retries: tuple[RetryMark, ...] = ()
    firings: tuple[Firing, ...] = ()
    now: datetime | None = None


# -- from what the page read ------------------------------------------------------------------------
def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _instant(value: Any) -> datetime | None:
    return _aware(value) if isinstance(value, datetime) else None


def default_window(day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The game night: the date's noon to the next day's noon, in the page's zone."""
    start = datetime.combine(day, time(12), tzinfo=tz)
    return start.astimezone(UTC), (start + timedelta(days=1)).astimezone(UTC)


def night_of(
    definition: PipelineDefinition,
    day: date,
    states: Mapping[str, DateState],
    now: datetime,
    tz: ZoneInfo,
    *,
    retry_rows: Iterable[Any] = (),
    cell_states: Mapping[str, str] | None = None,
    firings: bool = True,
) -> Night:
    """One date's night from its date documents (per transition and sensor name), the retry queue
    rows (``status_html.RetryLine``s of any date: this one's are kept) and the definition's jobs.

    The window is the date's noon to the next noon, widened to what was recorded (at most a day
    before and two after)."""
    lanes = tuple([t.name for t in definition.transitions] + [t.name for t in definition.timed_triggers()])
    phases: list[PhaseSpan] = []
    triggers: list[TriggerMark] = []
    gates: list[GateMark] = []
    tiers: list[TierMark] = []
    for name in lanes:
        state = states.get(name)
        if state is None:
            continue
        done = sorted(_aware(r.completed_at) for r in state.completions)
        if done:
            colour = (cell_states or {}).get(name, "triggered")
            phases.append(PhaseSpan(name, done[0], done[-1], len(done), colour))
        for slot, record in sorted(state.triggered.items()):
            at = _instant(record.get("at")) if isinstance(record, Mapping) else None
            if at is None or not isinstance(record, Mapping):
                continue
            tid = str(record.get("trigger_id") or f"{name}:{day}:{slot}")
            triggers.append(
                TriggerMark(name, at, str(record.get("status") or "complete"), tid, str(record.get("reason") or ""))
            )
        latest = max((t.at for t in triggers if t.transition == name), default=None)
        gate_at = latest or _instant(state.raw.get("updated_at"))
        for gate, doc in sorted((state.last_gate or {}).items()):
            if not isinstance(doc, Mapping) or gate_at is None:
                continue
            value = doc.get("value")
            seconds = doc.get("seconds")
            gates.append(
                GateMark(
                    name,
                    str(gate),
                    str(doc.get("verdict") or "unknown"),
                    gate_at,
                    float(seconds) if isinstance(seconds, int | float) else None,
                    float(value) if isinstance(value, int | float) else None,
                    str(doc.get("reason") or ""),
                )
            )
        transition = next((t for t in definition.transitions if t.name == name), None)
        if transition is not None and done:
            for n, tier in enumerate(transition.deadline_tiers, 1):
                at = done[0] + timedelta(minutes=tier.after_minutes)
                tiers.append(TierMark(name, n, at, tier.min_completed, tier.after_minutes))
    retries = []
    for row in retry_rows:
        if str(getattr(row, "game_date", "")) != day.isoformat():
            continue
        count = f"{getattr(row, 'retry_count', 0)}/{getattr(row, 'max_retries', 0)}"
        status = str(getattr(row, "status", "?"))
        waiting = status in ("pending", "retrying")
        for event, attr in (
            ("first failure", "first_failure_at"),
            ("last retry", "last_retry_at"),
            ("next try", "next_retry_at"),
        ):
            at = _instant(getattr(row, attr, None))
            if at is not None and (event != "next try" or waiting):
                retries.append(RetryMark(str(getattr(row, "processor", "?")), status, event, at, count))
    start, end = default_window(day, tz)
    seen = [p.first for p in phases] + [p.last for p in phases] + [t.at for t in triggers] + [r.at for r in retries]
    floor, ceiling = start - timedelta(days=1), end + timedelta(days=2)
    seen = [s for s in seen if floor <= s <= ceiling]
    start = min([start, *seen]) if seen else start
    end = max([end, *seen]) if seen else end
    shown = []
    if firings:
        from shared.schedules.plan import slots_between

        for job in definition.all_jobs():
            if not job.dispatched:
                continue
            slots = slots_between(definition, job, start, end)
            if slots:
                shown.append(Firing(job.name, slots[0].at, slots[-1].at, len(slots)))
    return Night(
        day,
        start,
        end,
        lanes,
        tuple(phases),
        tuple(triggers),
        tuple(gates),
        tuple(tiers),
        tuple(retries),
        tuple(sorted(shown, key=lambda f: (f.first, f.job))),
        _aware(now),
    )


# -- the picture -------------------------------------------------------------------------------------
def _e(value: object) -> str:
    return html.escape(printable(value), quote=True)


def _clock(instant: datetime, tz: ZoneInfo, label: str, day: date) -> str:
    local = _aware(instant).astimezone(tz)
    near = local.date() in (day, day + timedelta(days=1))
    return f"{local:%H:%M} {label}" if near else f"{local:%b %d %H:%M} {label}"


def _minutes(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def render_timeline(night: Night, tz: ZoneInfo, label: str = "ET") -> str:
    """The night as one ``<svg class="timeline">`` (every time in ``tz``, shown as ``label``)."""
    one_off = [f for f in night.firings if f.count < BAND_FROM]  # ticks; the others are bands
    bands = [f for f in night.firings if f.count >= BAND_FROM]
    lanes = [*night.lanes, "retries", *(["scheduled"] if one_off else []), *(["repeating"] if bands else [])]
    band_h = 5
    heights = {name: LANE_H for name in lanes}
    if bands:
        heights["repeating"] = max(LANE_H, 6 + len(bands) * (band_h + 2))
    tops: dict[str, int] = {}
    y = AXIS_H
    for name in lanes:
        tops[name] = y
        y += heights[name]
    height = y + 4
    plot = WIDTH - LABEL_W - RIGHT
    span = (night.end - night.start).total_seconds() or 1.0

    def x(instant: datetime) -> float:
        at = min(max(_aware(instant), night.start), night.end)
        return round(LABEL_W + plot * (at - night.start).total_seconds() / span, 1)

    def clock(instant: datetime) -> str:
        return _clock(instant, tz, label, night.day)

    day = night.day.isoformat()
    out = [
        f'<svg class="timeline" data-date="{day}" xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" '
        f'height="{height}" viewBox="0 0 {WIDTH} {height}" role="img" '
        f'aria-label="{_e(f"the night of {day}, {clock(night.start)} to {clock(night.end)}")}">',
        f"<title>{_e(f'the night of {day}: {clock(night.start)} to {clock(night.end)}')}</title>",
    ]
    # the axis: a tick every hour, labelled every two (every four on a wide window)
    local = night.start.astimezone(tz)
    tick = local.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    hours = span / 3600
    label_every = 2 if hours <= 30 else 4 if hours <= 60 else 8
    while tick.astimezone(UTC) <= night.end:
        tx = x(tick)
        out.append(f'<line class="hour" x1="{tx}" y1="{AXIS_H - 4}" x2="{tx}" y2="{height - 4}"/>')
        if tick.hour % label_every == 0:
            text = f"{tick:%H:%M}" if tick.hour else f"{tick:%b %d}"
            out.append(
                f'<text class="hour-label" x="{tx}" y="{AXIS_H - 8}" font-size="10" text-anchor="middle" '
                f'fill="#555">{text}</text>'
            )
        tick = (tick + timedelta(hours=1)).astimezone(tz)
    out.append(f'<text x="4" y="{AXIS_H - 8}" font-size="10" fill="#555">{_e(label)}</text>')
    for name in lanes:
        top = tops[name]
        out.append(
            f'<text class="lane-label" x="4" y="{top + 15}">{_e(name)}</text>'
            f'<line class="lane" x1="{LABEL_W}" y1="{top + heights[name]}" x2="{WIDTH - RIGHT}" '
            f'y2="{top + heights[name]}"/>'
        )
    mid = {name: tops[name] + LANE_H // 2 for name in lanes}
    for p in night.phases:
        if p.transition not in tops:
            continue
        x1, x2 = x(p.first), x(p.last)
        tip = (
            f"{p.transition}: first completion {clock(p.first)}, last {clock(p.last)} "
            f"({p.completions} completion{'s' if p.completions != 1 else ''}, over {_minutes(p.last - p.first)})"
        )
        out.append(
            f'<rect class="phase-bar state-{_e(p.state)}" data-transition="{_e(p.transition)}" x="{x1}" '
            f'y="{tops[p.transition] + 6}" width="{max(3.0, round(x2 - x1, 1))}" height="12" rx="2" '
            f'fill="{_fill(p.state)}"><title>{_e(tip)}</title></rect>'
        )
    for t in night.tiers:
        tx, lane_top = x(t.at), tops.get(t.transition)
        if lane_top is None:
            continue
        tip = (
            f"{t.transition} deadline tier {t.tier}: {t.after_minutes} min after the first completion "
            f"({clock(t.at)}) it fires with ≥{t.min_completed} done"
        )
        out.append(
            f'<line class="deadline-tier" data-transition="{_e(t.transition)}" data-tier="{t.tier}" x1="{tx}" '
            f'y1="{lane_top + 2}" x2="{tx}" y2="{lane_top + LANE_H - 2}" stroke="#6a1b9a" stroke-width="2" '
            f'stroke-dasharray="3,2"><title>{_e(tip)}</title></line>'
        )
    for g in night.gates:
        gate_top = tops.get(g.transition)
        if gate_top is None:
            continue
        gx = x(g.at)
        width = max(5.0, round(x(g.at + timedelta(seconds=g.seconds)) - gx, 1)) if g.seconds else 5.0
        took = f"took {g.seconds:.1f} s" if g.seconds is not None else "its duration is not recorded"
        value = f" {g.value:.1f}%" if g.value is not None else ""
        tip = f"gate {g.gate} ({g.transition}): {g.verdict}{value} at {clock(g.at)}, {took}; {g.reason}"
        out.append(
            f'<rect class="gate verdict-{_e(g.verdict)}" data-transition="{_e(g.transition)}" '
            f'data-gate="{_e(g.gate)}" data-verdict="{_e(g.verdict)}" x="{round(gx - 6 - width, 1)}" '
            f'y="{gate_top + 3}" width="{width}" height="18" fill="{VERDICT_COLOURS.get(g.verdict, "#757575")}" '
            f'stroke="#1a1a1a" stroke-width="0.5"><title>{_e(tip)}</title></rect>'
        )
    for mark in night.triggers:
        if mark.transition not in mid:
            continue
        tx, ty = x(mark.at), mid[mark.transition]
        tip = f"{mark.transition} triggered ({mark.kind}) at {clock(mark.at)}: {mark.trigger_id}" + (
            f" — {mark.reason}" if mark.reason else ""
        )
        points = f"{tx},{ty - 9} {tx + 7},{ty} {tx},{ty + 9} {tx - 7},{ty}"
        out.append(
            f'<polygon class="trigger" data-transition="{_e(mark.transition)}" data-kind="{_e(mark.kind)}" '
            f'data-trigger-id="{_e(mark.trigger_id)}" points="{points}" '
            f'fill="{KIND_COLOURS.get(mark.kind, "#2e7d32")}" stroke="#1a1a1a" stroke-width="1">'
            f"<title>{_e(tip)}</title></polygon>"
        )
    for r in night.retries:
        rx, ry = x(r.at), mid["retries"]
        colour = RETRY_COLOURS.get(r.status, "#757575")
        fill = "#ffffff" if r.event == "next try" else colour
        tip = f"retry {r.processor} ({r.status}, {r.retries}): {r.event} {clock(r.at)}"
        out.append(
            f'<circle class="retry" data-processor="{_e(r.processor)}" data-status="{_e(r.status)}" '
            f'data-event="{_e(r.event)}" cx="{rx}" cy="{ry}" r="5" fill="{fill}" stroke="{colour}" '
            f'stroke-width="2"><title>{_e(tip)}</title></circle>'
        )
    by_instant: dict[datetime, list[str]] = {}
    for f in one_off:
        by_instant.setdefault(f.first, []).append(f.job)
        if f.last != f.first:
            by_instant.setdefault(f.last, []).append(f.job)
    for at, jobs in sorted(by_instant.items()):
        fx, top = x(at), tops["scheduled"]
        tip = f"scheduled {clock(at)}: {', '.join(jobs)}"
        out.append(
            f'<line class="firing" data-jobs="{len(jobs)}" x1="{fx}" y1="{top + 4}" x2="{fx}" y2="{top + LANE_H - 4}"'
            f"{WIDE if len(jobs) > 1 else ''}><title>{_e(tip)}</title></line>"
        )
    for n, f in enumerate(bands):
        x1, x2 = x(f.first), x(f.last)
        by = tops["repeating"] + 4 + n * (band_h + 2)
        every = _minutes((f.last - f.first) / max(1, f.count - 1))
        tip = f"scheduled {f.job}: {f.count} firings, {clock(f.first)} to {clock(f.last)} (every {every})"
        out.append(
            f'<rect class="firing-band" data-job="{_e(f.job)}" data-count="{f.count}" x="{x1}" y="{by}" '
            f'width="{max(2.0, round(x2 - x1, 1))}" height="{band_h}"><title>{_e(tip)}</title></rect>'
        )
    if night.now is not None and night.start <= night.now <= night.end:
        nx = x(night.now)
        out.append(
            f'<line class="now" x1="{nx}" y1="{AXIS_H - 6}" x2="{nx}" y2="{height - 2}" stroke="#d50000" '
            f'stroke-width="2"><title>{_e(f"now {clock(night.now)}")}</title></line>'
        )
    out.append("</svg>")
    return "\n".join(out)


CSS = """
svg.timeline line.hour { stroke: #e0e0e0; }
svg.timeline line.lane { stroke: #f0f0f0; }
svg.timeline text.lane-label { font-size: 11px; fill: #1a1a1a; }
svg.timeline line.firing { stroke: #455a64; stroke-width: 1; }
svg.timeline rect.firing-band { fill: #90a4ae; }
"""


def _fill(state: str) -> str:
    return STATE_COLOURS.get(state, STATE_COLOURS["triggered"])[0]


def legend() -> str:
    """What the marks mean (HTML, below the first timeline)."""
    items: Sequence[tuple[str, str]] = (
        ("bar", "first to last completion (coloured as its cell)"),
        ("◆", "trigger (colour: its kind)"),
        ("■", "gate result"),
        ("┆", "deadline tier"),
        ("●", "retry: failure / retried (hollow: next try)"),
        ("|", "scheduled firing (on the newest night; grey bands: jobs that repeat)"),
        ("red line", "now"),
    )
    return '<p class="timeline-legend">' + "; ".join(f"{_e(k)}: {_e(v)}" for k, v in items) + "</p>"
