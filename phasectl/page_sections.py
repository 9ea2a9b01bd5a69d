"""Extra sections of the status page (``phasectl status --html/--serve``), each from its own module.

A section is a function ``(ctx, day, dates) -> str`` returning one ``<section id="...">`` of HTML.
It reads what it needs through ``ctx`` (bounded by ``--timeout``) and never raises for a backend
that fails: it renders its title and one line naming the backend instead (the page fails soft,
section by section). The page shows them in the order of ``SECTIONS``, after the findings.
"""

from __future__ import annotations

import html
from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from phasectl.core import Context

Section = Callable[["Context", date, Sequence[date]], str]

# (section id, the module:function that renders it) — imported when the page is built; one line each
SECTIONS: tuple[tuple[str, str], ...] = (
    ("next", "phasectl.page_next:section"),  # [next]
    ("history", "phasectl.page_history:section"),  # [history]
    ("lineage", "phasectl.page_lineage:section"),  # [lineage]
)


def unreadable(section_id: str, title: str, exc: BaseException) -> str:
    """The section's title and one line saying which backend failed and how."""
    line = f"{type(exc).__name__}: {exc}".splitlines()[0][:300]
    return (
        f'<section id="{html.escape(section_id)}"><h2>{html.escape(title)}</h2>'
        f'<p class="unread">not read: {html.escape(line)}</p></section>'
    )


def render_sections(ctx: Context, day: date, dates: Sequence[date]) -> list[str]:
    """Every section of ``SECTIONS``, each failing soft on its own."""
    import importlib

    out = []
    for section_id, target in SECTIONS:
        module, _, name = target.partition(":")
        try:
            render: Section = getattr(importlib.import_module(module), name)
            out.append(render(ctx, day, dates))
        except Exception as exc:  # noqa: BLE001 — one section that cannot be read never takes the page down
            out.append(unreadable(section_id, section_id.replace("-", " "), exc))
    return out
