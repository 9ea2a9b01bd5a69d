"""The status page's "history" section: the last 30 nights of each transition against its SLO.

One inline SVG chart per transition (no script: the page's Content-Security-Policy forbids it).
x: the nights, oldest left; y: the local time of the night's first trigger (hours after the game
date's midnight, so 06:00 the morning after is 30 h). Each first trigger is a ``<circle>`` of class
``on-time`` or ``late`` with a ``<title>`` (date, time, verdict, generation); a later generation of
the same night (g2, ...) is a diamond above or below it with its own title; a night due without a
trigger is a red cross at the SLO line. The SLO is a dashed line (a polyline: a tip-off SLO moves
with the schedule). Under the chart, in text: "on time N of the last M nights" and p50/p95 of the
source phase's duration (first completion to trigger).

Reads ``phase_execution_log`` and the schedule through ``phasectl.commands.slo.read`` (two queries);
a backend that fails raises, and ``phasectl.page_sections`` renders the "not read" line.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from phasectl.timefmt import zone_label

if TYPE_CHECKING:
    from phasectl.core import Context
    from shared.monitor.slo import Night, TransitionHistory

NIGHTS = 30
STEP = 18  # px per night
LEFT, RIGHT, TOP, BOTTOM = 54, 12, 10, 22
HEIGHT = 150
COLORS = {"on-time": "#2e7d32", "late": "#c62828", "later": "#6a1b9a", "missing": "#c62828", "slo": "#ef6c00"}


def _hours(ctx: Context, instant: datetime, night: date) -> float:
    """Hours from the night's local midnight to ``instant`` (in the page's zone)."""
    local = ctx.times.local(instant)
    return (local.date() - night).days * 24 + local.hour + local.minute / 60 + local.second / 3600


def _hour_label(hours: float) -> str:
    h = int(hours) % 24
    return f"{h:02d}:00" + ("+1" if 24 <= hours < 48 else "+2" if hours >= 48 else "")


def chart(ctx: Context, h: TransitionHistory) -> str:
    """The SVG of one transition's nights."""
    nights = list(h.nights)
    values = [_hours(ctx, n.due, n.game_date) for n in nights]
    values += [_hours(ctx, t.at, n.game_date) for n in nights for t in n.triggers]
    low, high = (min(values), max(values)) if values else (0.0, 24.0)
    low, high = float(int(low)) - 1, float(int(high)) + 2
    width = LEFT + RIGHT + STEP * max(len(nights), 1)
    plot = HEIGHT - TOP - BOTTOM

    def y(hours: float) -> float:
        return round(TOP + plot * (high - hours) / (high - low), 1)

    def x(i: int) -> float:
        return LEFT + STEP * i + STEP / 2

    parts = [
        f'<svg class="history-chart" role="img" width="{width}" height="{HEIGHT}" viewBox="0 0 {width} {HEIGHT}" '
        f'xmlns="http://www.w3.org/2000/svg" aria-label="{html.escape(h.transition)} trigger times, last '
        f'{len(nights)} nights">'
    ]
    tick, every = int(low) + 1, 1 if high - low <= 8 else 3
    while tick < high:  # a grid line every hour (every 3 hours over a wider span)
        if tick % every == 0:
            parts.append(
                f'<line x1="{LEFT}" x2="{width - RIGHT}" y1="{y(tick)}" y2="{y(tick)}" stroke="#e0e0e0"/>'
                f'<text x="{LEFT - 4}" y="{y(tick) + 4}" font-size="10" text-anchor="end">{_hour_label(tick)}</text>'
            )
        tick += 1
    line = " ".join(f"{x(i)},{y(v)}" for i, v in enumerate(values[: len(nights)]))
    parts.append(
        f'<polyline class="slo" points="{line}" fill="none" stroke="{COLORS["slo"]}" stroke-dasharray="4 3">'
        f"<title>SLO: first trigger by {html.escape(h.slo.describe(zone_label(ctx.times.zone)))}</title></polyline>"
    )
    for i, night in enumerate(nights):
        parts += _marks(ctx, night, x(i), y)
        if i % 5 == 0 or i == len(nights) - 1:
            parts.append(
                f'<text x="{x(i)}" y="{HEIGHT - 6}" font-size="10" text-anchor="middle">{night.game_date:%m-%d}</text>'
            )
    parts.append("</svg>")
    return "".join(parts)


def _marks(ctx: Context, night: Night, cx: float, y: Callable[[float], float]) -> list[str]:
    from phasectl.commands.slo import VERDICT_TEXT

    out = []
    due = ctx.times.clock(night.due, day=night.game_date)
    for t in night.triggers:
        when = ctx.times.stamp(t.at)
        cy = y(_hours(ctx, t.at, night.game_date))
        if t is night.first:
            cls = "on-time" if night.verdict == "on_time" else "late"
            title = f"{night.game_date}: g{t.generation} {t.status} {when}, {VERDICT_TEXT[night.verdict]} (due {due})"
            out.append(
                f'<circle class="{cls}" cx="{cx}" cy="{cy}" r="4" fill="{COLORS[cls]}">'
                f"<title>{html.escape(title)}</title></circle>"
            )
        else:
            title = f"{night.game_date}: g{t.generation} {t.status} {when} (a later generation, not judged)"
            out.append(
                f'<path class="later" d="M{cx} {cy - 4} L{cx + 4} {cy} L{cx} {cy + 4} L{cx - 4} {cy} Z" '
                f'fill="none" stroke="{COLORS["later"]}"><title>{html.escape(title)}</title></path>'
            )
    if night.verdict == "missing":
        cy = y(_hours(ctx, night.due, night.game_date))
        title = f"{night.game_date}: no trigger, due {due}"
        out.append(
            f'<path class="missing" d="M{cx - 4} {cy - 4} L{cx + 4} {cy + 4} M{cx - 4} {cy + 4} L{cx + 4} {cy - 4}" '
            f'stroke="{COLORS["missing"]}" stroke-width="2"><title>{html.escape(title)}</title></path>'
        )
    return out


def render(ctx: Context, history: Sequence[TransitionHistory], end: date) -> str:
    from shared.monitor.slo import duration_text

    parts = [f'<section id="history"><h2>History: the last {NIGHTS} nights against their SLOs (to {end})</h2>']
    if not history:
        parts.append("<p>No SLO in the pipeline definition ([slo] targets).</p>")
    for h in history:
        slo = html.escape(h.slo.describe(zone_label(ctx.times.zone)))
        parts.append(
            f'<div class="history-transition" id="history-{html.escape(h.transition)}">'
            f"<h3>{html.escape(h.transition)}: first trigger by {slo}</h3>"
            f"{chart(ctx, h)}"
            f'<p class="history-summary">{html.escape(h.on_time_text())}; phase {h.source_phase} duration '
            f"(first completion to trigger, g1): p50 {duration_text(h.p50)}, p95 {duration_text(h.p95)}</p></div>"
        )
    parts.append("</section>")
    return "".join(parts)


# ``status --serve`` re-renders the page every 30 s: the history (two BigQuery queries, each billed at
# its minimum) is re-read at most every CACHE_SECONDS per (project, last night, zone)
CACHE_SECONDS = 300.0
_cache: dict[tuple[str, date, bool], tuple[float, str]] = {}


def section(ctx: Context, day: date, dates: Sequence[date]) -> str:
    """The history section: the 30 nights ending at the page's newest date that is over (yesterday
    at the latest: tonight is not judged yet)."""
    import time
    from datetime import timedelta

    from phasectl.commands.slo import read
    from shared.clock import today_et

    today = today_et(ctx.clock, ctx.times.zone)
    end = min(max([day, *dates]), today - timedelta(days=1))
    key = (ctx.project, end, ctx.times.utc)
    cached = _cache.get(key)
    if cached is not None and time.monotonic() - cached[0] < CACHE_SECONDS:
        return cached[1]
    html_text = render(ctx, read(ctx, end, NIGHTS), end)
    _cache[key] = (time.monotonic(), html_text)
    return html_text
