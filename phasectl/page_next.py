"""The status page's "What happens next" section: ``phasectl next``'s list as a table (no script).

``section`` reads as ``phasectl next`` does (``phasectl.commands.next_up.collect``: the dates' state,
the retry queue, the schedule overrides) and raises when a backend fails: ``page_sections`` then
renders the section's title and one "not read" line. ``render_section`` is pure.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date, datetime
from typing import TYPE_CHECKING

from phasectl.commands.next_up import HOURS_DEFAULT, NextItem, collect, countdown

if TYPE_CHECKING:
    from phasectl.core import Context
    from phasectl.timefmt import TimeView

OVERDUE_STYLE = "background:#f8d7da"  # the page's red for what needs a look (CSP: inline styles only)


def render_section(items: Sequence[NextItem], now: datetime, hours: float, quiet: int, times: TimeView) -> str:
    from phasectl.status_html import _e

    today = times.local(now).date()
    head = f'<section id="next"><h2>What happens next ({len(items)})</h2>'
    meta = (
        f'<p class="meta">the next {_e(f"{hours:g}")} h from {_e(times.stamp(now))}: deadline tiers, retries, '
        "scheduled jobs, the monitor's and auto-retry's passes (<code>phasectl next</code>)</p>"
    )
    if not items:
        return f'{head}{meta}<p class="empty">Nothing in this window.</p></section>'
    rows = []
    for item in items:
        style = f' class="overdue" style="{OVERDUE_STYLE}"' if item.overdue else ""
        cells = (
            times.clock(item.at, day=today),
            countdown(item.at - now),
            item.kind,
            item.what,
        )
        tds = "".join(f"<td>{_e(c)}</td>" for c in cells) + f"<td><code>{_e(item.command)}</code></td>"
        rows.append(f"<tr{style}>{tds}</tr>")
    headers = "".join(f"<th>{_e(h)}</th>" for h in (f"when ({times.label})", "in", "kind", "what", "look closer"))
    note = (
        f'<p class="meta">{_e(quiet)} scheduled job(s) do not fire in this window (off season, paused, or later): '
        "<code>phasectl schedules</code></p>"
        if quiet
        else ""
    )
    table = f'<table id="next-table"><thead><tr>{headers}</tr></thead><tbody>{"".join(rows)}</tbody></table>'
    return f"{head}{meta}{table}{note}</section>"


def section(ctx: Context, day: date, dates: Sequence[date]) -> str:
    """What happens next from now (the page's dates do not change it: the future is the same)."""
    items, now, _, quiet = collect(ctx, None, HOURS_DEFAULT)
    return render_section(items, now, HOURS_DEFAULT, quiet, ctx.times)
