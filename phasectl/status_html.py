"""Pure rendering of ``phasectl status --html`` (and ``--serve``): a self-contained status page (no I/O).

Rows are game dates (newest first), columns the transitions (definition order). Each cell is
one ``PhaseLine`` — the very line ``phasectl status`` prints — shown with the same numbers and
words: the state, ``done`` (expected processors done, as status's DONE column), ``unknown:``
(completions recorded under a name the definition does not know, which never count: a misspelt
or spoofed processor), and ``why:`` (the reason, as visible text). A triggered cell also says
which kind of trigger it was (complete / partial / deadline tier, by colour *and* label), when
it fired and how long after the first completion, and — from ``EngineCounts``, the engine's
own ``progress_of`` at the trigger's instant — what the engine had counted when it fired: the
count its reason speaks of, which may differ from the count now (later completions, another
mode, the critical+optional pool of the majority rule).

Below the grid: the active monitor findings, the gates, the retry queue, the dead-letter
backlog per function, and the heartbeats (stale ones coloured and labelled). Every time is in
the pipeline timezone (America/New_York: "01:37 ET"), its UTC offset shown once in the header.

The page has inline CSS only (no script, no external resource; a Content-Security-Policy says
so), every value is shown as ``phasectl`` prints it (``shared.printable``: control, format and
other invisible characters as visible escapes, so ``player_game_summary\\u200b`` cannot pass for
the real processor) and HTML-escaped, and the same inputs give the same bytes.
"""

from __future__ import annotations

import html
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from phasectl.page_colours import STATE_COLOURS, STATE_LABELS, TRIGGER_KINDS
from phasectl.report import Heartbeat, PhaseLine, gate_thresholds
from shared.printable import printable

if TYPE_CHECKING:
    from phasectl.page_timeline import Night
    from shared.clock import Clock
    from shared.orchestration.engine import Progress
    from shared.orchestration.state import DateState
    from shared.pipeline.definition import PipelineDefinition, Transition

__all__ = [
    "DEFAULT_TIMEZONE",
    "STATE_COLOURS",
    "STATE_LABELS",
    "ActiveFinding",
    "DeadLetterBacklog",
    "EngineCounts",
    "RetryLine",
    "StatusLines",
    "cell_label",
    "cell_state",
    "collect_status_lines",
    "done_fraction",
    "engine_counts",
    "format_duration",
    "format_time",
    "render_status_html",
    "short_trigger_id",
    "sort_findings",
    "trigger_kind",
    "unknown_text",
    "utc_offset",
]

DEFAULT_TIMEZONE = "America/New_York"
TZ_LABELS: Mapping[str, str] = {"America/New_York": "ET"}

SEVERITY_RANK: Mapping[str, int] = {"CRITICAL": 0, "ERROR": 1, "WARNING": 2, "INFO": 3}
RETRY_ORDER: Mapping[str, int] = {"retrying": 0, "pending": 1, "failed_permanent": 2, "succeeded": 3}
UNKNOWN_SHOWN = 10  # unknown processor names listed in a cell; the rest are counted
_CLASS_UNSAFE = re.compile(r"[^a-z0-9_-]+")
_TIER = re.compile(r"^deadline tier ([0-9]+)\b")

_CSS = """
body { font-family: system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 16px; color: #1a1a1a; }
h1 { font-size: 20px; margin: 0 0 4px 0; }
h2 { font-size: 16px; margin: 20px 0 6px 0; }
p.meta { margin: 0 0 12px 0; color: #555; }
table#grid { border-collapse: separate; border-spacing: 3px; }
#grid th { font-size: 13px; text-align: left; padding: 4px 8px; white-space: nowrap; vertical-align: top; }
#grid td.cell { min-width: 150px; max-width: 280px; padding: 4px 8px; font-size: 12px; vertical-align: top; }
#grid td.cell span { display: block; }
#grid td.cell .state { font-weight: 700; }
#grid td.cell .trigger { font-family: ui-monospace, monospace; font-size: 11px; }
#grid td.cell .why { font-size: 11px; margin-top: 2px; overflow-wrap: anywhere; }
#grid td.cell .unknown { font-size: 11px; margin-top: 2px; overflow-wrap: anywhere; font-style: italic; }
ul.legend { list-style: none; padding: 0; margin: 10px 0; }
ul.legend li { display: inline-block; margin-right: 14px; font-size: 13px; }
.swatch { display: inline-block; width: 12px; height: 12px; vertical-align: middle; margin-right: 4px; }
#findings li, #heartbeats li { margin: 3px 0; font-size: 13px; }
.severity { font-weight: 700; }
.sev-critical, .sev-error { color: #b71c1c; }
.sev-warning { color: #8a5a00; }
.badge { display: inline-block; padding: 0 6px; margin-right: 6px; border-radius: 3px; font-weight: 700; }
#heartbeats li.stale { color: #b71c1c; font-weight: 600; }
#heartbeats li.stale .badge { background: #c62828; color: #ffffff; }
#heartbeats li.healthy .badge { background: #2e7d32; color: #ffffff; }
table.list { border-collapse: collapse; font-size: 12px; }
table.list th, table.list td { text-align: left; padding: 3px 8px; border-bottom: 1px solid #ddd; vertical-align: top; }
#gates .verdict-blocked .verdict { color: #b71c1c; font-weight: 700; }
#gates .verdict-alert .verdict { color: #8a5a00; font-weight: 700; }
#gates .verdict-error .verdict { color: #b71c1c; font-weight: 700; }
#retry-queue .retry-failed_permanent .status { color: #b71c1c; font-weight: 700; }
#retry-queue .retry-retrying .status, #retry-queue .retry-pending .status { color: #8a5a00; font-weight: 700; }
#dead-letters .backlog .count { color: #b71c1c; font-weight: 700; }
#dead-letters .missing .count { color: #8a5a00; font-weight: 700; }
p.error, p.unread { color: #b71c1c; font-weight: 600; }
#grid td.quiet { font-size: 12px; color: #616161; padding: 2px 8px; font-style: italic; }
#unread { border-left: 4px solid #c62828; padding: 2px 10px; margin: 8px 0; }
section#timeline details summary { cursor: pointer; font-size: 13px; margin: 4px 0; }
svg.timeline { display: block; margin: 4px 0 10px 0; font-family: system-ui, sans-serif; }
p.timeline-legend { font-size: 11px; color: #555; margin: 0 0 6px 0; }
"""


# -- inputs ------------------------------------------------------------------------------------
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
    runbook: str | None = None  # the link to its runbook section (docs/operations.md#<kind>)
    command: str | None = None  # the exact phasectl command that fixes or inspects it
    acked_by: str | None = None  # phasectl findings --ack: who, when, why (still listed, shown as acknowledged)
    acked_at: datetime | None = None
    ack_note: str | None = None

    @property
    def text(self) -> str:
        """The message without the "transition date: " it starts with when the line already says where
        (``silent 2026-01-24 phase2_to_phase3: 7 Final game(s) …``, not the transition and date twice)."""
        for prefix in (f"{self.transition} {self.game_date}: ", f"{self.game_date} {self.transition}: "):
            if self.transition and self.game_date and self.message.startswith(prefix):
                return self.message[len(prefix) :]
        return self.message

    @classmethod
    def from_doc(cls, key: str, doc: Mapping[str, Any]) -> ActiveFinding:
        first = doc.get("first_seen_at")
        acked_at = doc.get("acked_at")
        return cls(
            key=key,
            kind=str(doc.get("kind") or "unknown"),
            severity=str(doc.get("severity") or "INFO").upper(),
            message=str(doc.get("message") or ""),
            transition=_optional_str(doc.get("transition")),
            game_date=_optional_str(doc.get("game_date")),
            first_seen_at=first if isinstance(first, datetime) else None,
            runbook=_optional_str(doc.get("runbook")),
            command=_optional_str(doc.get("command")),
            acked_by=_optional_str(doc.get("acked_by")),
            acked_at=acked_at if isinstance(acked_at, datetime) else None,
            ack_note=_optional_str(doc.get("ack_note")),
        )


@dataclass(frozen=True)
class EngineCounts:
    """The engine's own ``Progress`` for one cell: now, and at the instant the trigger fired.

    ``at_trigger`` is ``engine.progress_of`` over the completions recorded up to the trigger's
    ``at``, with the clock at that instant (so the mode is the one the engine chose then): the
    numbers the trigger's frozen reason speaks of.
    """

    now: Progress
    at_trigger: Progress | None = None


@dataclass(frozen=True)
class StatusLines:
    """What the page shows per date: ``status``'s own lines, and the engine's counts per (date, transition)."""

    lines_by_date: Mapping[date, tuple[PhaseLine, ...]]
    counts: Mapping[tuple[date, str], EngineCounts]
    states: Mapping[tuple[date, str], DateState] = field(default_factory=dict)  # the night's timeline reads them


@dataclass(frozen=True)
class RetryLine:
    """One row of the retry queue (``failed_processor_queue``), as ``phasectl retry list`` shows it."""

    processor: str
    game_date: str
    status: str
    retry_count: int
    max_retries: int
    next_retry_at: datetime | None = None
    phase: int | None = None
    fallback_for: str | None = None
    note: str | None = None
    first_failure_at: datetime | None = None
    last_retry_at: datetime | None = None

    @classmethod
    def of(cls, row: Any) -> RetryLine:
        """From a ``QueueRow`` or its dict (``dataclasses.asdict``, reconcile's ``retry_rows``)."""
        get: Callable[[str], Any] = row.get if isinstance(row, Mapping) else (lambda k: getattr(row, k, None))
        nxt = get("next_retry_at")
        first, last = get("first_failure_at"), get("last_retry_at")
        phase = get("phase")
        return cls(
            processor=str(get("processor_name") or "?"),
            game_date=str(get("game_date") or "?"),
            status=str(get("status") or "?"),
            retry_count=int(get("retry_count") or 0),
            max_retries=int(get("max_retries") or 0),
            next_retry_at=nxt if isinstance(nxt, datetime) else None,
            phase=None if phase is None else int(phase),
            fallback_for=_optional_str(get("fallback_for")),
            note=_optional_str(get("resolution_notes") or get("error_message")),
            first_failure_at=first if isinstance(first, datetime) else None,
            last_retry_at=last if isinstance(last, datetime) else None,
        )


@dataclass(frozen=True)
class DeadLetterBacklog:
    """One function's dead-letter subscription: how many messages wait (``None``: it does not exist)."""

    function: str
    subscription: str
    count: int | None
    more: bool = False  # more than ``count`` are waiting (``dlq list`` stops at its limit)
    oldest_at: datetime | None = None  # the oldest message's dead-lettering time

    @classmethod
    def of(cls, function: str, subscription: str, messages: Sequence[Any], more: bool = False) -> DeadLetterBacklog:
        """From ``dlq``'s ``DeadLetter`` messages of one subscription (their ``dead_lettered_at``)."""
        times = [m.dead_lettered_at for m in messages if isinstance(getattr(m, "dead_lettered_at", None), datetime)]
        return cls(function, subscription, len(messages), more, min(times, default=None))


def _optional_str(value: Any) -> str | None:
    return None if value is None or value == "" else str(value)


# -- the engine's counts -------------------------------------------------------------------------
def engine_counts(
    definition: PipelineDefinition, transition: Transition, state: DateState, clock: Clock
) -> EngineCounts:
    """``engine.progress_of`` now and at the current trigger's instant (completions recorded by then)."""
    from shared.clock import FixedClock
    from shared.orchestration.engine import progress_of

    now = progress_of(definition, transition, state.game_date, state.completions, clock)
    current = state.triggered_current
    at = current.get("at") if current is not None else None
    if not isinstance(at, datetime):
        return EngineCounts(now)
    at = _aware(at)
    by_then = [r for r in state.completions if _aware(r.completed_at) <= at]
    return EngineCounts(now, progress_of(definition, transition, state.game_date, by_then, FixedClock(at)))


def collect_status_lines(
    definition: PipelineDefinition,
    load: Callable[[str, date], DateState],
    clock: Clock,
    dates: Iterable[date],
) -> StatusLines:
    """Every date's lines, built exactly as ``phasectl status`` builds them (``reconcile.phase_line`` /
    ``timed_line``), plus the engine's counts, from one ``load(name, day)`` of each date document."""
    from phasectl.report import phase_line, timed_line

    lines: dict[date, tuple[PhaseLine, ...]] = {}
    counts: dict[tuple[date, str], EngineCounts] = {}
    states: dict[tuple[date, str], DateState] = {}
    for day in dates:
        day_lines: list[PhaseLine] = []
        for t in definition.transitions:
            state = states[(day, t.name)] = load(t.name, day)
            day_lines.append(phase_line(definition, t, state, clock))
            counts[(day, t.name)] = engine_counts(definition, t, state, clock)
        for timed in definition.timed_triggers():
            state = states[(day, timed.name)] = load(timed.name, day)
            day_lines.append(timed_line(timed, state))
        lines[day] = tuple(day_lines)
    return StatusLines(lines, counts, states)


# -- words and numbers -----------------------------------------------------------------------------
def sort_findings(findings: Iterable[ActiveFinding]) -> list[ActiveFinding]:
    """Most severe first (unknown severities last), then by key."""
    return sorted(findings, key=lambda f: (SEVERITY_RANK.get(f.severity, len(SEVERITY_RANK)), f.key))


def trigger_kind(line: PhaseLine) -> str:
    """``triggered`` (complete, scheduled, or unknown), ``partial`` or ``deadline`` (a deadline tier, a fallback)."""
    return TRIGGER_KINDS.get(line.trigger_status or "", "triggered")


def cell_state(line: PhaseLine | None) -> str:
    """triggered / blocked as decided; ``none`` when nothing was recorded; else the engine's decision.

    The CSS class: every triggered cell is ``triggered`` (its kind is ``trigger_kind``)."""
    if line is None:
        return "none"
    if line.decision in ("triggered", "blocked"):
        return line.decision
    recorded = line.completed or line.not_counted or line.unknown or line.first_completion_at is not None
    return line.decision if recorded else "none"


def recorded_nothing(lines: Sequence[PhaseLine]) -> bool:
    """No completion (counted, not counted or unknown) and no trigger on any transition or sensor of
    the date: a date without games or activity, shown as one line."""
    return all(
        not (line.completed or line.not_counted or line.unknown)
        and line.first_completion_at is None
        and line.trigger_id is None
        and line.triggered_at is None
        and line.decision != "triggered"
        for line in lines
    )


QUIET_TEXT = "nothing recorded: no completion and no trigger on any transition"


def cell_label(line: PhaseLine | None) -> str:
    """The cell's visible state: ``triggered: partial``, ``triggered: deadline tier 2``, ``wait``, ..."""
    state = cell_state(line)
    if line is None or state != "triggered":
        return STATE_LABELS.get(state, state)
    status = line.trigger_status
    if status in ("complete", "partial"):
        return f"triggered: {status}"
    if status == "deadline_exceeded":
        tier = _TIER.match(line.reason)
        return f"triggered: deadline tier {tier.group(1)}" if tier else "triggered: deadline tier"
    return f"triggered: {status}" if status else "triggered"


def done_fraction(expected: Sequence[str], done: Iterable[str]) -> str:
    """``4/5``: expected processors done, over expected (status's and reconcile's DONE column)."""
    have = set(done)
    return f"{len([x for x in expected if x in have])}/{len(expected)}"


def _pool_fraction(progress: Progress) -> str | None:
    """The majority rule's ``critical+optional`` count, when the rule was consulted (something expected is
    missing) and its pool is not the expected set: the count a reason "… 4/6 of critical+optional" gives."""
    pool = tuple(dict.fromkeys((*progress.critical, *progress.optional)))
    if not pool or not progress.missing or set(pool) == set(progress.expected):
        return None
    return f"{len([p for p in pool if p in progress.done])}/{len(pool)}"


def unknown_text(unknown: Sequence[str]) -> str:
    """``unknown: a, b`` — the names recorded that the definition does not know (status's ``unknown:``
    line); past ``UNKNOWN_SHOWN`` of them, how many more."""
    shown = ", ".join(unknown[:UNKNOWN_SHOWN])
    more = f" and {len(unknown) - UNKNOWN_SHOWN} more" if len(unknown) > UNKNOWN_SHOWN else ""
    return f"unknown: {shown}{more}"


def short_trigger_id(trigger_id: str | None) -> str:
    """``phase2_to_phase3:2026-01-24:g1`` → ``g1``, ``…:g1:overnight`` → ``g1:overnight`` (the generation
    and mode; the full id is in the title)."""
    if not trigger_id:
        return ""
    parts = trigger_id.split(":", 2)
    return parts[2] if len(parts) == 3 else parts[-1]


def format_duration(delta: timedelta) -> str:
    """``45 min``, ``2 h 14 min`` — the engine's own wording (``N min`` below 120 min)."""
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _zone(timezone: str | ZoneInfo) -> ZoneInfo:
    return timezone if isinstance(timezone, ZoneInfo) else ZoneInfo(timezone)


def _tz_label(tz: ZoneInfo) -> str:
    return TZ_LABELS.get(tz.key, tz.key)


def utc_offset(instant: datetime, timezone: str | ZoneInfo = DEFAULT_TIMEZONE) -> str:
    """``UTC\N{MINUS SIGN}05:00`` (a real minus sign) — the zone's offset at ``instant``."""
    offset = _aware(instant).astimezone(_zone(timezone)).utcoffset() or timedelta(0)
    minutes = int(offset.total_seconds() // 60)
    sign = "+" if minutes >= 0 else "\N{MINUS SIGN}"
    return f"UTC{sign}{abs(minutes) // 60:02d}:{abs(minutes) % 60:02d}"


def format_time(instant: datetime, timezone: str | ZoneInfo = DEFAULT_TIMEZONE, game_date: date | None = None) -> str:
    """``01:37 ET``; with the day (``Jan 27 01:37 ET``) unless it is ``game_date`` or the night after it."""
    tz = _zone(timezone)
    local = _aware(instant).astimezone(tz)
    near = game_date is not None and local.date() in (game_date, game_date + timedelta(days=1))
    return f"{local:%H:%M} {_tz_label(tz)}" if near else f"{local:%b %d %H:%M} {_tz_label(tz)}"


# -- HTML ------------------------------------------------------------------------------------------
def _e(value: object) -> str:
    """A value as text on the page: printable (invisible characters as escapes), then HTML-escaped."""
    return html.escape(printable(value), quote=True)


def _class(value: str) -> str:
    return _CLASS_UNSAFE.sub("-", value.lower()) or "unknown"


def _style() -> str:
    rules = []
    for state, (bg, fg) in STATE_COLOURS.items():
        if state in ("partial", "deadline"):  # triggered cells of that kind, and the legend's swatch
            selector = f'.cell.state-triggered[data-kind="{state}"], .swatch.state-{state}'
        else:
            selector = f".state-{state}"
        rules.append(f"{selector} {{ background: {bg}; color: {fg}; }}")
    from phasectl.page_timeline import CSS as TIMELINE_CSS

    return _CSS + TIMELINE_CSS + "\n".join(rules) + "\n"


def _columns(dates: Sequence[date], lines_by_date: Mapping[date, Sequence[PhaseLine]]) -> list[str]:
    """Transition names in the order the lines give them (definition order), first seen first."""
    out: list[str] = []
    for day in dates:
        out += [p.transition for p in lines_by_date.get(day, ()) if p.transition not in out]
    return out


def _counts_text(line: PhaseLine, counts: EngineCounts | None) -> str:
    """``4/5 done`` (status's DONE); for a trigger, what the engine counted when it fired, if that differs."""
    now = done_fraction(line.expected, line.completed)
    text = f"{now} done"
    pool = _pool_fraction(counts.now) if counts is not None else None
    if pool is not None and line.decision != "triggered":
        text += f"; critical+optional {pool}"
    then = counts.at_trigger if counts is not None and line.decision == "triggered" else None
    if then is None:
        return text
    at = done_fraction(then.expected, then.done)
    pool = _pool_fraction(then)
    mode = f" [mode {then.mode}]" if then.mode and then.mode != line.mode else ""
    extra = f", critical+optional {pool}" if pool is not None else ""
    if at == now and not mode and not extra:
        return f"{text}, as at the trigger"
    return f"{text} now; {at} done at the trigger{extra}{mode}"


def _when_text(line: PhaseLine, counts: EngineCounts | None, now: datetime, tz: ZoneInfo, day: date) -> str:
    """When it fired and how long after the first completion; or since when it has waited."""
    if line.decision == "triggered" and isinstance(line.triggered_at, datetime):
        fired = _aware(line.triggered_at)
        then = counts.at_trigger if counts is not None else None
        first = then.first_completion_at if then is not None else line.first_completion_at
        took = ""
        if isinstance(first, datetime) and _aware(first) <= fired:
            took = f" after {format_duration(fired - _aware(first))} (first completion {format_time(first, tz, day)})"
        return f"at {format_time(fired, tz, day)}{took}"
    first = line.first_completion_at
    if line.decision != "triggered" and isinstance(first, datetime):
        return f"first completion {format_time(first, tz, day)}, {format_duration(now - _aware(first))} ago"
    return ""


def _cell(
    day: date, transition: str, line: PhaseLine | None, counts: EngineCounts | None, now: datetime, tz: ZoneInfo
) -> str:
    state = cell_state(line)
    kind = f' data-kind="{_e(trigger_kind(line))}"' if line is not None and state == "triggered" else ""
    if line is None:
        title, reason = f"{transition} {day}: no date document", "no date document"
        parts = [f'<span class="state">{_e(STATE_LABELS["none"])}</span>']
    else:
        full = f" [{line.trigger_id}]" if line.trigger_id else ""
        title, reason = f"{transition} {day}{full}: {line.reason}", line.reason
        parts = [f'<span class="state">{_e(cell_label(line))}</span>']
        parts.append(f'<span class="done">{_e(_counts_text(line, counts))}</span>')
        when = _when_text(line, counts, now, tz, day)
        parts += [f'<span class="when">{_e(when)}</span>'] if when else []
        short = short_trigger_id(line.trigger_id)
        parts += [f'<span class="trigger">{_e(short)}</span>'] if short else []
        parts += [f'<span class="unknown">{_e(unknown_text(line.unknown))}</span>'] if line.unknown else []
    parts.append(f'<span class="why">why: {_e(reason)}</span>')
    return (
        f'<td class="cell state-{_class(state)}" data-transition="{_e(transition)}" '
        f'data-date="{day.isoformat()}"{kind} title="{_e(title)}">{" ".join(parts)}</td>'
    )


def _grid(
    dates: Sequence[date],
    lines_by_date: Mapping[date, Sequence[PhaseLine]],
    counts: Mapping[tuple[date, str], EngineCounts],
    now: datetime,
    tz: ZoneInfo,
) -> str:
    columns = _columns(dates, lines_by_date)
    head = "".join(f'<th scope="col">{_e(c)}</th>' for c in columns)
    rows = []
    for day in dates:
        day_lines = lines_by_date.get(day, ())
        if recorded_nothing(day_lines):  # no games, no activity: one line, not a row of grey cells
            rows.append(
                f'<tr class="quiet" data-date="{day.isoformat()}"><th scope="row">{day.isoformat()}</th>'
                f'<td class="quiet" colspan="{max(1, len(columns))}">{_e(QUIET_TEXT)}</td></tr>'
            )
            continue
        by_name = {p.transition: p for p in day_lines}
        cells = "".join(_cell(day, c, by_name.get(c), counts.get((day, c)), now, tz) for c in columns)
        rows.append(f'<tr data-date="{day.isoformat()}"><th scope="row">{day.isoformat()}</th>{cells}</tr>')
    body = "\n".join(rows)
    thead = f'<thead><tr><th scope="col">game date</th>{head}</tr></thead>'
    return f'<table id="grid">\n{thead}\n<tbody>\n{body}\n</tbody>\n</table>'


def _legend() -> str:
    items = "".join(
        f'<li><span class="swatch state-{state}"></span>{_e(STATE_LABELS[state])}</li>' for state in STATE_COLOURS
    )
    return f'<ul class="legend" id="legend">{items}</ul>'


def _finding(f: ActiveFinding, tz: ZoneInfo) -> str:
    """One finding: severity, kind, where, message, since; its runbook (a link), the command that fixes
    or inspects it (``<code>``), and who acknowledged it (``phasectl findings --ack``)."""
    where = " ".join(x for x in (f.game_date, f.transition) if x)
    since = f" (since {format_time(f.first_seen_at, tz)})" if f.first_seen_at else ""
    acked = " acked" if f.acked_by else ""
    parts = [
        f'<li class="finding sev-{_class(f.severity)}{acked}" data-key="{_e(f.key)}">'
        f'<span class="severity">{_e(f.severity)}</span> <span class="kind">{_e(f.kind)}</span>'
        + (f' <span class="where">{_e(where)}</span>' if where else "")
        + f': <span class="message">{_e(f.text)}</span>{_e(since)}'
    ]
    if f.acked_by:
        when = f" at {format_time(f.acked_at, tz)}" if f.acked_at else ""
        note = f": {f.ack_note}" if f.ack_note else ""
        parts.append(f'<br><span class="ack">acknowledged by {_e(f.acked_by)}{_e(when)}{_e(note)}</span>')
    if f.command:
        parts.append(f'<br>fix: <code class="command">{_e(f.command)}</code>')
    if f.runbook:
        scheme = f.runbook.split(":", 1)[0].lower() if ":" in f.runbook.split("#", 1)[0] else ""
        if scheme in ("", "http", "https"):  # a page or a relative path; never javascript: and the like
            parts.append(f' <a class="runbook" href="{_e(f.runbook)}">runbook</a>')
        else:
            parts.append(f' runbook: <span class="runbook">{_e(f.runbook)}</span>')
    return "".join(parts) + "</li>"


def _findings(findings: Sequence[ActiveFinding], tz: ZoneInfo) -> str:
    """Most severe first; within a severity the unacknowledged before the acknowledged; then by key."""
    rank = len(SEVERITY_RANK)
    ordered = sorted(findings, key=lambda f: (SEVERITY_RANK.get(f.severity, rank), f.acked_by is not None, f.key))
    items = "\n".join(_finding(f, tz) for f in ordered)
    acked = sum(1 for f in ordered if f.acked_by)
    count = f"{len(ordered)}, {acked} acknowledged" if acked else f"{len(ordered)}"
    empty = "" if ordered else '<p class="empty">No active findings.</p>\n'
    return f'<h2>Active findings ({count})</h2>\n{empty}<ul id="findings">\n{items}\n</ul>'


def _table(table_id: str, headers: Sequence[str], rows: Sequence[str]) -> str:
    head = "".join(f"<th>{_e(h)}</th>" for h in headers)
    body = "\n".join(rows)
    return f'<table id="{table_id}" class="list">\n<thead><tr>{head}</tr></thead>\n<tbody>\n{body}\n</tbody>\n</table>'


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
    headers = ("game date", "transition", "gate", "verdict", "value", "lines", "reason")
    return "<h2>Gates</h2>\n" + _table("gates", headers, rows)


def _not_read(title: str, why: str | None) -> str:
    if why is None:
        return f'<h2>{title}</h2>\n<p class="empty">Not read for this page.</p>'
    # the reason is the line at the top of the page (one per backend); here its place, with the reason as a tooltip
    return f'<h2>{title}</h2>\n<p class="unread" title="{_e(why)}">not read: see the line at the top of the page</p>'


def _retry_queue(rows: Sequence[Any] | None, tz: ZoneInfo, why: str | None = None) -> str:
    """Retrying and pending rows first (the next try soonest first), then failed_permanent, then succeeded."""
    if rows is None or why is not None:
        return _not_read("Retry queue", why)
    lines = sorted(
        (r if isinstance(r, RetryLine) else RetryLine.of(r) for r in rows),
        key=lambda r: (
            RETRY_ORDER.get(r.status, len(RETRY_ORDER)),
            r.next_retry_at is None,
            _aware(r.next_retry_at) if r.next_retry_at else datetime.min.replace(tzinfo=UTC),
            r.game_date,
            r.processor,
        ),
    )
    if not lines:
        return '<h2>Retry queue (0)</h2>\n<p class="empty">No retry queue rows.</p>'
    out = []
    for r in lines:
        waiting = r.status in ("pending", "retrying") and r.next_retry_at is not None
        nxt = format_time(r.next_retry_at, tz) if waiting and r.next_retry_at is not None else "-"
        fallback = f" (fallback for {r.fallback_for})" if r.fallback_for else ""
        out.append(
            f'<tr class="retry retry-{_class(r.status)}" data-processor="{_e(r.processor)}" '
            f'data-date="{_e(r.game_date)}">'
            f'<td class="processor">{_e(r.processor)}{_e(fallback)}</td><td>{_e(r.game_date)}</td>'
            f'<td class="status">{_e(r.status)}</td><td class="retries">{r.retry_count}/{r.max_retries}</td>'
            f'<td class="next">{_e(nxt)}</td><td class="note">{_e((r.note or "-")[:200])}</td></tr>'
        )
    headers = ("processor", "game date", "status", "retries", "next try", "last error / note")
    return f"<h2>Retry queue ({len(lines)})</h2>\n" + _table("retry-queue", headers, out)


def _dead_letters(backlog: Sequence[DeadLetterBacklog] | None, tz: ZoneInfo, why: str | None = None) -> str:
    if backlog is None or why is not None:
        return _not_read("Dead letters", why)
    if not backlog:
        return '<h2>Dead letters (0)</h2>\n<p class="empty">No dead-letter subscription.</p>'
    total = sum(b.count or 0 for b in backlog)
    more = "+" if any(b.more for b in backlog) else ""
    rows = []
    for b in sorted(backlog, key=lambda x: x.function):
        if b.count is None:
            kind, count, hint = "missing", "subscription missing", "phasectl deploy apply creates it"
        elif b.count:
            kind, count = "backlog", f"{b.count}{'+' if b.more else ''}"
            hint = f"phasectl dlq replay --function {b.function}"
        else:
            kind, count, hint = "empty", "0", "-"
        oldest = format_time(b.oldest_at, tz) if b.oldest_at else "-"
        rows.append(
            f'<tr class="dlq {kind}" data-function="{_e(b.function)}"><td>{_e(b.function)}</td>'
            f'<td>{_e(b.subscription)}</td><td class="count">{_e(count)}</td>'
            f'<td class="oldest">{_e(oldest)}</td><td class="hint">{_e(hint)}</td></tr>'
        )
    headers = ("function", "dead-letter subscription", "messages", "oldest dead-lettered", "to replay")
    return f"<h2>Dead letters ({total}{more})</h2>\n" + _table("dead-letters", headers, rows)


def _heartbeats(now: datetime, heartbeats: Sequence[Heartbeat], tz: ZoneInfo) -> str:
    items = []
    for h in heartbeats:
        healthy = h.healthy(now)
        badge = "OK" if healthy else ("NEVER RAN" if h.last_run_at is None else "STALE")
        at = f" (at {format_time(h.last_run_at, tz)})" if h.last_run_at is not None else ""
        items.append(
            f'<li class="{"healthy" if healthy else "stale"}"><span class="badge">{badge}</span> '
            f"{_e(h.describe(now))}{_e(at)}</li>"
        )
    body = "\n".join(items)
    return f'<h2>Heartbeats</h2>\n<ul id="heartbeats">\n{body}\n</ul>'


def _offsets(now: datetime, dates: Sequence[date], tz: ZoneInfo) -> str:
    """``UTC\N{MINUS SIGN}05:00``; both offsets when daylight saving changes within the dates shown."""
    seen = [utc_offset(now, tz)]
    for day in dates:
        noon = datetime(day.year, day.month, day.day, 12, tzinfo=tz)
        for instant in (noon, noon + timedelta(hours=18)):  # the game night and the morning after
            off = utc_offset(instant, tz)
            seen += [off] if off not in seen else []
    return seen[0] if len(seen) == 1 else f"{seen[0]} now; {', '.join(seen[1:])} on some dates shown"


UNREAD_TITLES: Mapping[str, str] = {
    "findings": "the active findings",
    "grid": "the grid and the nights",
    "heartbeats": "the heartbeats",
    "retry_queue": "the retry queue",
    "dead_letters": "the dead letters",
}


def _unread_banner(why: Mapping[str, str]) -> list[str]:
    """One line per backend that could not be read (the same reason for several sections: one line),
    at the top of the page, naming what is missing below."""
    by_reason: dict[str, list[str]] = {}
    order = list(UNREAD_TITLES)
    for key, reason in sorted(why.items(), key=lambda kv: order.index(kv[0]) if kv[0] in order else len(order)):
        by_reason.setdefault(reason, []).append(UNREAD_TITLES.get(key, key.replace("_", " ")))
    if not by_reason:
        return []
    lines = "\n".join(
        f'<p class="unread">not read: {_e(reason)} (missing below: {_e(", ".join(what))})</p>'
        for reason, what in by_reason.items()
    )
    return [f'<div id="unread">\n{lines}\n</div>']


def _nights(
    dates: Sequence[date], lines_by_date: Mapping[date, Sequence[PhaseLine]], nights: Mapping[date, Night], tz: ZoneInfo
) -> list[str]:
    """The night of each date that recorded something, as a picture: the newest open, the others folded."""
    from phasectl.page_timeline import legend, render_timeline

    shown = [d for d in dates if d in nights and not recorded_nothing(lines_by_date.get(d, ()))]
    if not shown:
        return []
    label = _tz_label(tz)
    parts = ['<section id="timeline">', f"<h2>The night, {_e(label)}</h2>", legend()]
    for n, day in enumerate(shown):
        svg = render_timeline(nights[day], tz, label)
        if n == 0:
            parts.append(f"<h3>{day.isoformat()}</h3>\n{svg}")
        else:
            parts.append(
                f'<details data-date="{day.isoformat()}"><summary>{day.isoformat()}</summary>\n{svg}\n</details>'
            )
    parts.append("</section>")
    return ["\n".join(parts)]


def render_status_html(
    now: datetime,
    dates: Sequence[date],
    lines_by_date: Mapping[date, Sequence[PhaseLine]],
    heartbeats: Sequence[Heartbeat],
    findings: Sequence[ActiveFinding],
    *,
    counts: Mapping[tuple[date, str], EngineCounts] | None = None,
    retry_rows: Sequence[Any] | None = None,
    dead_letters: Sequence[DeadLetterBacklog] | None = None,
    timezone: str | ZoneInfo = DEFAULT_TIMEZONE,
    refresh_seconds: int | None = None,
    unread: Mapping[str, str] | None = None,
    sections: Sequence[str] = (),
    nights: Mapping[date, Night] | None = None,
) -> str:
    """The whole page. Dates are shown newest first whatever their order in ``dates``.

    Args:
        now: the page's instant (heartbeat ages, "ago").
        dates: the game dates (rows).
        lines_by_date: ``phasectl status``'s lines per date (``collect_status_lines`` builds them).
        heartbeats: the monitor's and auto-retry's heartbeats.
        findings: the monitor's active findings.
        counts: the engine's counts per (date, transition) (``collect_status_lines``); without them a
            triggered cell shows the counts now only.
        retry_rows: ``RetryQueue.rows()`` (``QueueRow``s or their dicts); ``None``: not read.
        dead_letters: per function, its dead-letter backlog; ``None``: not read.
        timezone: the zone every time is shown in (the pipeline's, America/New_York: "ET").
        refresh_seconds: the page reloads itself (``<meta http-equiv="refresh">``) — ``--serve``.
        unread: why a section could not be read (``"findings"``, ``"grid"``, ``"heartbeats"``,
            ``"retry_queue"``, ``"dead_letters"`` → one line naming the backend), shown in its place and
            once at the top: one unreachable backend does not take the whole page down.
        sections: extra sections' HTML (``phasectl.page_sections``), shown after the grid and the nights.
        nights: per date, its timeline's data (``phasectl.page_timeline.night_of``): the newest date's
            picture is shown, the others' are one click away (``<details>``); dates that recorded
            nothing have none.
    """
    why = unread or {}
    tz = _zone(timezone)
    now = _aware(now)
    ordered = sorted(set(dates), reverse=True)
    span = f"{ordered[-1].isoformat()} … {ordered[0].isoformat()}" if ordered else "no dates"
    label = _tz_label(tz)
    local = now.astimezone(tz)
    stamp = f"{local.date().isoformat()} {local:%H:%M:%S} {label}"  # isoformat: four year digits, always
    refresh = [f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'] if refresh_seconds else []
    live = f"; reloads every {int(refresh_seconds)} s" if refresh_seconds else ""
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en">',
            "<head>",
            '<meta charset="utf-8">',
            "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; style-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            *refresh,
            f"<title>phasechain status {_e(span)}</title>",
            f"<style>{_style()}</style>",
            "</head>",
            "<body>",
            f"<h1>phasechain status — {_e(span)}</h1>",
            f'<p class="meta" id="meta">generated {_e(stamp)}; times in {_e(label)} '
            f"({_e(_offsets(now, ordered, tz))}){_e(live)}</p>",
            *_unread_banner(why),
            _not_read("Active findings", why["findings"]) if "findings" in why else _findings(findings, tz),
            _legend(),
            _not_read("Grid", why["grid"]) if "grid" in why else _grid(ordered, lines_by_date, counts or {}, now, tz),
            *_nights(ordered, lines_by_date, nights or {}, tz),
            *sections,
            _retry_queue(retry_rows, tz, why.get("retry_queue")),
            _dead_letters(dead_letters, tz, why.get("dead_letters")),
            _gates(ordered, lines_by_date),
            _not_read("Heartbeats", why["heartbeats"]) if "heartbeats" in why else _heartbeats(now, heartbeats, tz),
            "</body>",
            "</html>",
            "",
        ]
    )


def nights_of(
    definition: PipelineDefinition,
    states: Mapping[tuple[date, str], DateState],
    lines_by_date: Mapping[date, Sequence[Any]],
    now: datetime,
    tz: ZoneInfo,
    retry_rows: Iterable[Any] = (),
    firings_on: date | None = None,
) -> dict[date, Night]:
    """Every date's night from ``status_html.collect_status_lines``'s states and lines (a bar has its
    cell's colour: a partial trigger's amber, a blocked date's red). The scheduled firings are drawn on
    ``firings_on``'s night only (the page's newest date: the schedule is the same every night)."""
    from phasectl.page_timeline import night_of

    rows = [r if isinstance(r, RetryLine) else RetryLine.of(r) for r in retry_rows]
    out = {}
    for day, lines in lines_by_date.items():
        colours = {}
        for line in lines:
            state = cell_state(line)
            colours[line.transition] = trigger_kind(line) if state == "triggered" else state
        day_states = {name: s for (d, name), s in states.items() if d == day}
        out[day] = night_of(
            definition, day, day_states, now, tz, retry_rows=rows, cell_states=colours, firings=day == firings_on
        )
    return out
