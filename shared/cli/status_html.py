"""Pure rendering of ``phasectl status --html``: a static, self-contained status page (no I/O).

Rows are game dates (newest first), columns the transitions (definition order). Each cell is
one ``PhaseLine``: its state (triggered / ready / wait / blocked, or ``none`` — no data yet —
when the date has no completions), done/expected, the short trigger id, and the reason as the
cell's ``title``. Below the grid: the active monitor findings and the heartbeats.

The page has inline CSS only (no script, no external resource; a Content-Security-Policy says
so), every value is HTML-escaped, and the same inputs give the same bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from typing import Any

from shared.cli.reconcile import Heartbeat, PhaseLine, gate_thresholds

__all__ = [
    "STATE_COLOURS",
    "STATE_LABELS",
    "ActiveFinding",
    "cell_state",
    "render_status_html",
    "short_trigger_id",
    "sort_findings",
]

# state -> (background, text colour); the legend and the CSS are generated from this map
STATE_COLOURS: Mapping[str, tuple[str, str]] = {
    "triggered": ("#2e7d32", "#ffffff"),
    "ready": ("#1565c0", "#ffffff"),
    "wait": ("#f9a825", "#1a1a1a"),
    "blocked": ("#c62828", "#ffffff"),
    "none": ("#bdbdbd", "#1a1a1a"),
}
STATE_LABELS: Mapping[str, str] = {
    "triggered": "triggered",
    "ready": "ready",
    "wait": "wait",
    "blocked": "blocked",
    "none": "no data yet",
}
SEVERITY_RANK: Mapping[str, int] = {"CRITICAL": 0, "ERROR": 1, "WARNING": 2, "INFO": 3}
_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]+")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px; color: #1a1a1a; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 20px 0 6px 0; }
p.meta { margin: 0 0 12px 0; color: #555; }
table#grid { border-collapse: separate; border-spacing: 3px; }
#grid th { font-size: 13px; text-align: left; padding: 4px 8px; white-space: nowrap; }
#grid td.cell { min-width: 150px; height: 46px; padding: 4px 8px; font-size: 12px; vertical-align: top; }
#grid td.cell .state { font-weight: 600; display: block; }
ul.legend { list-style: none; padding: 0; margin: 10px 0; }
ul.legend li { display: inline-block; margin-right: 14px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-right: 4px; }
#findings li, #heartbeats li { margin: 3px 0; font-size: 13px; }
.severity { font-weight: 700; }
.sev-critical, .sev-error { color: #b71c1c; }
.sev-warning { color: #8a5a00; }
.stale { color: #b71c1c; font-weight: 600; }
table#gates { border-collapse: collapse; font-size: 12px; }
#gates th, #gates td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #ddd; vertical-align: top; }
#gates .verdict-blocked .verdict { color: #b71c1c; font-weight: 700; }
#gates .verdict-alert .verdict { color: #8a5a00; font-weight: 700; }
#gates .verdict-error .verdict { color: #b71c1c; font-weight: 700; }
"""


@dataclass(frozen=True)
class ActiveFinding:
    """One document of the monitor's alert collection (what ``AlertManager`` keeps while it fires)."""

    key: str
    kind: str
    severity: str
    message: str
    transition: str | None = None
    game_date: str | None = None
    first_seen_at: datetime | None = None

    @classmethod
    def from_doc(cls, key: str, doc: Mapping[str, Any]) -> ActiveFinding:
        first = doc.get("first_seen_at")
        return cls(
            key=key,
            kind=str(doc.get("kind") or "unknown"),
            severity=str(doc.get("severity") or "INFO").upper(),
            message=str(doc.get("message") or ""),
            transition=_optional_str(doc.get("transition")),
            game_date=_optional_str(doc.get("game_date")),
            first_seen_at=first if isinstance(first, datetime) else None,
        )


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


def sort_findings(findings: Iterable[ActiveFinding]) -> list[ActiveFinding]:
    """Most severe first (unknown severities last), then by key."""
    return sorted(findings, key=lambda f: (SEVERITY_RANK.get(f.severity, len(SEVERITY_RANK)), f.key))


def cell_state(line: PhaseLine | None) -> str:
    """triggered / blocked as decided; ``none`` when nothing was recorded; else the engine's decision."""
    if line is None:
        return "none"
    if line.decision in ("triggered", "blocked"):
        return line.decision
    recorded = line.completed or line.not_counted or line.unknown or line.first_completion_at is not None
    return line.decision if recorded else "none"


def short_trigger_id(trigger_id: str | None) -> str:
    """``phase2_to_phase3:2026-01-24:g1`` → ``g1`` (the generation; the full id is in the title)."""
    if not trigger_id:
        return ""
    return trigger_id.rsplit(":", 1)[-1]


def _e(value: object) -> str:
    return html.escape(str(value), quote=True)


def _class(value: str) -> str:
    return _CLASS_UNSAFE.sub("-", value.lower()) or "unknown"


def _style() -> str:
    rules = [f".state-{state} {{ background: {bg}; color: {fg}; }}" for state, (bg, fg) in STATE_COLOURS.items()]
    return _CSS + "\n".join(rules) + "\n"


def _columns(dates: Sequence[date], lines_by_date: Mapping[date, Sequence[PhaseLine]]) -> list[str]:
    """Transition names in the order the lines give them (definition order), first seen first."""
    out: list[str] = []
    for day in dates:
        out += [p.transition for p in lines_by_date.get(day, ()) if p.transition not in out]
    return out


def _cell(day: date, transition: str, line: PhaseLine | None) -> str:
    state = cell_state(line)
    label = STATE_LABELS.get(state, state)
    if line is None:
        title, done, short = f"{transition} {day}: no date document", "", ""
    else:
        counted = len([x for x in line.expected if x in line.completed])
        done = f"{counted}/{len(line.expected)}"
        short = short_trigger_id(line.trigger_id)
        full = f" [{line.trigger_id}]" if line.trigger_id else ""
        title = f"{transition} {day}{full}: {line.reason}"
    parts = [f'<span class="state">{_e(label)}</span>']
    parts += [f'<span class="done">{_e(done)}</span>'] if done else []
    parts += [f'<span class="trigger">{_e(short)}</span>'] if short else []
    return (
        f'<td class="cell state-{_class(state)}" data-transition="{_e(transition)}" '
        f'data-date="{day.isoformat()}" title="{_e(title)}">{" ".join(parts)}</td>'
    )


def _grid(dates: Sequence[date], lines_by_date: Mapping[date, Sequence[PhaseLine]]) -> str:
    columns = _columns(dates, lines_by_date)
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    rows = []
    for day in dates:
        by_name = {p.transition: p for p in lines_by_date.get(day, ())}
        cells = "".join(_cell(day, c, by_name.get(c)) for c in columns)
        rows.append(f'<tr data-date="{day.isoformat()}"><th scope="row">{day.isoformat()}</th>{cells}</tr>')
    body = "\n".join(rows)
    thead = f'<thead><tr><th scope="col">game date</th>{head}</tr></thead>'
    return f'<table id="grid">\n{thead}\n<tbody>\n{body}\n</tbody>\n</table>'


def _legend() -> str:
    items = "".join(
        f'<li><span class="swatch state-{state}"></span>{_e(STATE_LABELS[state])}</li>' for state in STATE_COLOURS
    )
    return f'<ul class="legend" id="legend">{items}</ul>'


def _finding(f: ActiveFinding) -> str:
    where = " ".join(x for x in (f.game_date, f.transition) if x)
    since = f" (since {f.first_seen_at:%Y-%m-%d %H:%M}Z)" if f.first_seen_at else ""
    return (
        f'<li class="finding sev-{_class(f.severity)}" data-key="{_e(f.key)}">'
        f'<span class="severity">{_e(f.severity)}</span> <span class="kind">{_e(f.kind)}</span>'
        + (f' <span class="where">{_e(where)}</span>' if where else "")
        + f': <span class="message">{_e(f.message)}</span>{_e(since)}</li>'
    )


def _findings(findings: Sequence[ActiveFinding]) -> str:
    ordered = sort_findings(findings)
    items = "\n".join(_finding(f) for f in ordered)
    empty = "" if ordered else '<p class="empty">No active findings.</p>\n'
    return f'<h2>Active findings ({len(ordered)})</h2>\n{empty}<ul id="findings">\n{items}\n</ul>'


def _gates(dates: Sequence[date], lines_by_date: Mapping[date, Sequence[PhaseLine]]) -> str:
    """Every gate's last result per date and transition: value, thresholds, verdict, reason."""
    rows = []
    for day in dates:
        for line in lines_by_date.get(day, ()):
            for name, gate in sorted(line.gates.items()):
                verdict = str(gate.get("verdict") or "unknown")
                value = gate.get("value")
                advisory = " (advisory)" if gate.get("advisory") else ""
                rows.append(
                    f'<tr class="gate verdict-{_class(verdict)}" data-date="{day.isoformat()}" '
                    f'data-transition="{_e(line.transition)}" data-gate="{_e(name)}">'
                    f"<td>{day.isoformat()}</td><td>{_e(line.transition)}</td><td>{_e(name)}{_e(advisory)}</td>"
                    f'<td class="verdict">{_e(verdict)}</td>'
                    f'<td class="value">{"-" if value is None else _e(f"{float(value):.1f}%")}</td>'
                    f'<td class="thresholds">{_e(gate_thresholds(gate.get("thresholds")) or "-")}</td>'
                    f'<td class="reason">{_e(gate.get("reason"))}</td></tr>'
                )
    if not rows:
        return '<h2>Gates</h2>\n<p class="empty">No gate evaluated for these dates.</p>'
    head = "".join(f"<th>{h}</th>" for h in ("game date", "transition", "gate", "verdict", "value", "lines", "reason"))
    body = "\n".join(rows)
    return f'<h2>Gates</h2>\n<table id="gates">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


def _heartbeats(now: datetime, heartbeats: Sequence[Heartbeat]) -> str:
    items = "\n".join(
        f'<li class="{"healthy" if h.healthy(now) else "stale"}">{_e(h.describe(now))}</li>' for h in heartbeats
    )
    return f'<h2>Heartbeats</h2>\n<ul id="heartbeats">\n{items}\n</ul>'


def render_status_html(
    now: datetime,
    dates: Sequence[date],
    lines_by_date: Mapping[date, Sequence[PhaseLine]],
    heartbeats: Sequence[Heartbeat],
    findings: Sequence[ActiveFinding],
) -> str:
    """The whole page. Dates are shown newest first whatever their order in ``dates``."""
    ordered = sorted(set(dates), reverse=True)
    span = f"{ordered[-1].isoformat()} … {ordered[0].isoformat()}" if ordered else "no dates"
    stamp = now.strftime("%Y-%m-%d %H:%M:%S %Z").strip()
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>phasechain status {_e(span)}</title>",
            f"<style>{_style()}</style>",
            "</head>",
            "<body>",
            f"<h1>phasechain status — {_e(span)}</h1>",
            f'<p class="meta">generated {_e(stamp)}; hover a cell for the reason</p>',
            _legend(),
            _grid(ordered, lines_by_date),
            _findings(findings),
            _gates(ordered, lines_by_date),
            _heartbeats(now, heartbeats),
            "</body>",
            "</html>",
            "",
        ]
    )
