"""The status page's lineage section: processors → phases → transitions → trigger topics → consumers.

From the definition only (``phasectl.commands.lineage.build_lineage``, as ``phasectl lineage``):
one collapsible ``<details>`` per phase holding nested lists (no script). Pure but for ``ctx``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING

from phasectl.commands.lineage import Node, build_lineage

if TYPE_CHECKING:
    from phasectl.core import Context
    from shared.pipeline.definition import PipelineDefinition


def _item(node: Node) -> str:
    from phasectl.status_html import _e

    label = node.name if node.kind in ("phase", "processor", "processors", "jobs") else f"{node.kind} {node.name}"
    arrow = "→ " if node.kind in ("topic", "consumer") else ""
    detail = f" — {_e(node.detail)}" if node.detail else ""
    kids = f"<ul>{''.join(_item(c) for c in node.children)}</ul>" if node.children else ""
    return f'<li class="lineage-{_e(node.kind)}">{_e(arrow)}<b>{_e(label)}</b>{detail}{kids}</li>'


def render_section(definition: PipelineDefinition, nodes: Sequence[Node]) -> str:
    from phasectl.status_html import _e

    parts = [
        '<section id="lineage"><h2>Lineage</h2>',
        f'<p class="meta">{_e(definition.pipeline.name)}, from the pipeline definition: each phase\'s processors, '
        "the transition that leaves it, its trigger topic and who consumes it, and what else reads the phase "
        "(<code>phasectl lineage</code>)</p>",
    ]
    for node in nodes:
        summary = f"<b>{_e(node.name)}</b> — {_e(node.detail)}" if node.detail else f"<b>{_e(node.name)}</b>"
        body = "".join(_item(c) for c in node.children)
        parts.append(f"<details open><summary>{summary}</summary><ul>{body}</ul></details>")
    parts.append("</section>")
    return "".join(parts)


def section(ctx: Context, day: date, dates: Sequence[date]) -> str:
    return render_section(ctx.definition, build_lineage(ctx.definition))
