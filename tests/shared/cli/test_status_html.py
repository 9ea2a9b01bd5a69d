"""The ``phasectl status --html`` page renderer (pure: no emulator, no browser)."""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser

import pytest

from shared.cli.phasectl import main
from shared.cli.reconcile import Heartbeat, PhaseLine
from shared.cli.status_html import (
    STATE_COLOURS,
    STATE_LABELS,
    ActiveFinding,
    cell_state,
    render_status_html,
    short_trigger_id,
    sort_findings,
)

NOW = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)
DAY = date(2026, 1, 24)
TRANSITIONS = ("phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5", "phase5_to_phase6")
EXPECTED = ("alpha", "beta", "gamma")


def line(
    transition: str,
    decision: str,
    completed: tuple[str, ...] = ("alpha",),
    *,
    trigger_id: str | None = None,
    reason: str = "because",
) -> PhaseLine:
    return PhaseLine(
        transition=transition,
        status="triggered" if decision == "triggered" else "waiting",
        generation=1,
        mode=None,
        expected=EXPECTED,
        completed=completed,
        missing=tuple(x for x in EXPECTED if x not in completed),
        not_counted=(),
        unknown=(),
        decision=decision,
        reason=reason,
        trigger_id=trigger_id,
        first_completion_at=NOW - timedelta(hours=3) if completed else None,
    )


def night(day: date) -> tuple[PhaseLine, ...]:
    """One transition in every state: triggered, blocked, wait, and no completions yet."""
    return (
        line(TRANSITIONS[0], "triggered", EXPECTED, trigger_id=f"{TRANSITIONS[0]}:{day}:g1", reason="all 3 done"),
        line(TRANSITIONS[1], "blocked", reason="gate blocked: coverage 50 %"),
        line(TRANSITIONS[2], "wait", ("alpha", "beta"), reason="deadline tier 2 in 60 min"),
        line(TRANSITIONS[3], "wait", (), reason="waiting for critical alpha"),
    )


HEARTBEATS = (Heartbeat("monitor", NOW - timedelta(minutes=3), 30), Heartbeat("auto-retry", None, 45))
FINDINGS = (
    ActiveFinding("silent_night__2026-01-24", "silent_night", "WARNING", "no completion", None, "2026-01-24"),
    ActiveFinding("failed_permanent__x", "failed_permanent", "ERROR", "row failed <script>alert(1)</script>"),
    ActiveFinding("grid_gap", "grid_gap", "CRITICAL", "120-day grid gap & more", "phase2_to_phase3"),
)


@dataclass
class Cell:
    classes: list[str]
    title: str
    date: str
    transition: str
    text: str = ""


@dataclass
class Page(HTMLParser):
    """Just enough structure: grid rows and cells, the findings' items, the heartbeats' items."""

    rows: list[str] = field(default_factory=list)
    cells: list[Cell] = field(default_factory=list)
    columns: list[str] = field(default_factory=list)
    findings: list[str] = field(default_factory=list)
    heartbeats: list[str] = field(default_factory=list)
    tags: set[str] = field(default_factory=set)
    _stack: list[str] = field(default_factory=list)
    _list: str | None = None
    _text: list[str] | None = None
    _in_thead: bool = False

    def __post_init__(self) -> None:
        super().__init__()

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        self.tags.add(tag)
        self._in_thead = self._in_thead or tag == "thead"
        if tag == "tr" and "data-date" in a:
            self.rows.append(a["data-date"])
        if tag == "th" and self._in_thead:
            self._text = []
        if tag == "td" and "cell" in a.get("class", "").split():
            self.cells.append(Cell(a["class"].split(), a.get("title", ""), a["data-date"], a["data-transition"]))
            self._text = []
        if tag == "ul" and a.get("id") in ("findings", "heartbeats"):
            self._list = a["id"]
        if tag == "li" and self._list is not None:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or ()).strip()
        if tag == "thead":
            self._in_thead = False
        if tag == "th" and self._in_thead:
            self.columns.append(text)
        if tag == "td" and self._text is not None and self.cells:
            self.cells[-1].text = " ".join(text.split())
        if tag == "li" and self._list is not None:
            (self.findings if self._list == "findings" else self.heartbeats).append(text)
        if tag == "ul":
            self._list = None
        if tag in ("td", "li", "th"):
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data)


def parse(page: str) -> Page:
    parsed = Page()
    parsed.feed(page)
    parsed.close()
    return parsed


def render(days: int = 3, findings: tuple[ActiveFinding, ...] = FINDINGS) -> str:
    dates = [DAY - timedelta(days=n) for n in range(days)]
    return render_status_html(NOW, dates, {d: night(d) for d in dates}, HEARTBEATS, findings)


def test_one_row_per_date_newest_first_and_one_cell_per_transition_in_definition_order() -> None:
    dates = [DAY - timedelta(days=2), DAY, DAY - timedelta(days=1)]  # any order in, newest first out
    page = parse(render_status_html(NOW, dates, {d: night(d) for d in dates}, HEARTBEATS, FINDINGS))
    assert page.rows == ["2026-01-24", "2026-01-23", "2026-01-22"]
    assert page.columns == ["game date", *TRANSITIONS]
    assert len(page.cells) == 3 * 4
    for i, day in enumerate(page.rows):
        assert [(c.date, c.transition) for c in page.cells[4 * i : 4 * i + 4]] == [(day, t) for t in TRANSITIONS]


def test_each_cell_has_the_class_of_its_state_counts_trigger_and_reason() -> None:
    cells = parse(render(days=1)).cells
    assert [c.classes for c in cells] == [
        ["cell", "state-triggered"],
        ["cell", "state-blocked"],
        ["cell", "state-wait"],
        ["cell", "state-none"],  # the date has no completions for this transition yet
    ]
    assert [c.text for c in cells] == ["triggered 3/3 g1", "blocked 1/3", "wait 2/3", "no data yet 0/3"]
    assert cells[0].title == "phase2_to_phase3 2026-01-24 [phase2_to_phase3:2026-01-24:g1]: all 3 done"
    assert cells[1].title == "phase3_to_phase4 2026-01-24: gate blocked: coverage 50 %"


def test_each_state_has_its_background_colour_and_the_legend_names_them_all() -> None:
    page = render()
    for state, (background, _) in STATE_COLOURS.items():
        assert f".state-{state} {{ background: {background};" in page
        assert f'<span class="swatch state-{state}"></span>{STATE_LABELS[state]}</li>' in page
    assert STATE_COLOURS["triggered"][0] == "#2e7d32"


@pytest.mark.parametrize(
    ("decision", "completed", "trigger_id", "state"),
    [
        ("wait", (), None, "none"),
        ("wait", ("alpha",), None, "wait"),
        ("ready", EXPECTED, None, "ready"),
        ("triggered", (), "t:2026-01-24:g2", "triggered"),  # a forced trigger without completions
        ("blocked", (), None, "blocked"),
    ],
)
def test_cell_state(decision: str, completed: tuple[str, ...], trigger_id: str | None, state: str) -> None:
    assert cell_state(line("t", decision, completed, trigger_id=trigger_id)) == state


def test_a_date_without_a_line_for_a_transition_still_gets_its_cell() -> None:
    page = parse(render_status_html(NOW, [DAY], {DAY: night(DAY)[:2]}, (), ()))
    assert len(page.cells) == 2
    more = parse(render_status_html(NOW, [DAY, DAY - timedelta(days=1)], {DAY: night(DAY)[:2]}, (), ()))
    assert [c.classes[1] for c in more.cells[2:]] == ["state-none", "state-none"]
    assert more.cells[2].title == "phase2_to_phase3 2026-01-23: no date document"


def test_everything_is_escaped() -> None:
    evil = '<script>alert("x")</script>'
    lines = (line(f"{TRANSITIONS[0]}<b>", "wait", reason=f"reason {evil} & \"quoted\" 'single'"),)
    finding = ActiveFinding(f"key{evil}", f"kind{evil}", "ERROR", f"message {evil}", f"t{evil}", f"d{evil}")
    page = render_status_html(NOW, [DAY], {DAY: lines}, (Heartbeat(f"hb{evil}", None, 30),), (finding,))
    assert "<script" not in page.lower()
    assert "<b>" not in page
    assert "&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;" in page
    assert "&#x27;single&#x27;" in page  # quotes inside the title attribute cannot end it
    parsed = parse(page)
    assert parsed.cells[0].title == f"{TRANSITIONS[0]}<b> 2026-01-24: reason {evil} & \"quoted\" 'single'"
    assert parsed.findings == [f"ERROR kind{evil} d{evil} t{evil}: message {evil}"]
    assert parsed.heartbeats == [f"hb{evil} has never run"]


def test_findings_are_listed_most_severe_first_with_severity_kind_date_and_message() -> None:
    page = parse(render())
    assert page.findings == [
        "CRITICAL grid_gap phase2_to_phase3: 120-day grid gap & more",
        "ERROR failed_permanent: row failed <script>alert(1)</script>",
        "WARNING silent_night 2026-01-24: no completion",
    ]
    assert page.heartbeats == ["monitor last ran 3 min ago", "auto-retry has never run"]
    assert "No active findings." in render(findings=())
    assert parse(render(findings=())).findings == []


def test_output_is_deterministic_and_self_contained() -> None:
    first = render(days=7)
    assert first == render(days=7)
    assert first == render_status_html(
        NOW,
        [DAY - timedelta(days=n) for n in reversed(range(7))],
        {DAY - timedelta(days=n): night(DAY - timedelta(days=n)) for n in range(7)},
        HEARTBEATS,
        tuple(reversed(FINDINGS)),
    )
    page = parse(first)
    assert page.tags.isdisjoint({"script", "link", "img", "iframe", "object", "embed"})
    assert "http://" not in first and "https://" not in first and "url(" not in first
    assert '<table id="grid">' in first and '<ul id="findings">' in first and 'id="legend"' in first


def test_findings_from_alert_documents_and_their_order() -> None:
    doc = {
        "kind": "silent_night",
        "severity": "warning",
        "message": "m",
        "fingerprint": "abc",
        "first_seen_at": NOW,
        "last_alerted_at": NOW,
        "transition": None,
        "game_date": "2026-01-24",
    }
    finding = ActiveFinding.from_doc("silent_night__2026-01-24", doc)
    assert finding == ActiveFinding("silent_night__2026-01-24", "silent_night", "WARNING", "m", None, "2026-01-24", NOW)
    assert ActiveFinding.from_doc("k", {}) == ActiveFinding("k", "unknown", "INFO", "")
    odd = ActiveFinding("a", "x", "DEBUG", "")
    ordered = sort_findings([odd, *FINDINGS, ActiveFinding("a_first", "y", "ERROR", "")])
    assert [f.key for f in ordered] == ["grid_gap", "a_first", "failed_permanent__x", "silent_night__2026-01-24", "a"]


def test_short_trigger_id() -> None:
    assert short_trigger_id("phase2_to_phase3:2026-01-24:g12") == "g12"
    assert short_trigger_id(None) == ""
    assert short_trigger_id("opaque") == "opaque"


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["status", "--html", "x.html", "--days", "0"], "argument --days: 0 is not in 1..120"),
        (["status", "--html", "x.html", "--days", "121"], "argument --days: 121 is not in 1..120"),
        (["status", "--html", "x.html", "--days", "a week"], "argument --days: invalid day count 'a week'"),
        (["status", "--json", "--html", "x.html"], "argument --html: not allowed with argument --json"),
        (["status", "--date", "2026-01-24", "--days", "3"], "--days applies to --html only"),
    ],
)
def test_bad_html_options_are_one_line_and_exit_2_before_any_backend(args: list[str], message: str) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(args, environ={"GOOGLE_CLOUD_PROJECT": "no-such-project"}, out=out, err=err)
    assert code == 2
    assert err.getvalue().startswith("phasectl: error: ") and message in err.getvalue(), err.getvalue()
    assert out.getvalue() == ""


MINUTES = {
    "kind": "ratio",
    "verdict": "alert",
    "value": 85.0,
    "thresholds": {"block_below": 80.0, "alert_below": 90.0},
    "advisory": False,
    "reason": "51/60 rows meet the condition: 85.0%, below the alert line 90%",
}


def test_the_gates_section_shows_each_gate_value_lines_verdict_and_reason() -> None:
    import re
    from dataclasses import replace

    gated = replace(line(TRANSITIONS[1], "triggered", EXPECTED, trigger_id="t"), gates={
        "minutes_coverage": MINUTES,
        "coordinator_health": {"kind": "service_health", "verdict": "pass", "value": None, "advisory": True,
                               "thresholds": {}, "reason": "<b>ready</b>"},
    })
    page = render_status_html(NOW, [DAY], {DAY: (gated,)}, (), ())
    section = page[page.index("<h2>Gates</h2>"):]
    rows = re.findall(r'<tr class="gate verdict-(\w+)"[^>]*data-gate="(\w+)">(.*?)</tr>', section)
    assert [(v, g) for v, g, _ in rows] == [("pass", "coordinator_health"), ("alert", "minutes_coverage")]
    minutes = rows[1][2]
    assert '<td class="value">85.0%</td>' in minutes
    assert '<td class="thresholds">block &lt;80%, alert &lt;90%</td>' in minutes
    assert "below the alert line 90%" in minutes
    assert "coordinator_health (advisory)" in rows[0][2] and "&lt;b&gt;ready&lt;/b&gt;" in rows[0][2]


def test_no_gate_results_say_so() -> None:
    page = render_status_html(NOW, [DAY], {DAY: night(DAY)}, (), ())
    assert "No gate evaluated for these dates." in page


def test_describe_gate_is_the_one_line_status_and_reconcile_print() -> None:
    from shared.cli.reconcile import describe_gate

    assert describe_gate("minutes_coverage", MINUTES) == (
        "minutes_coverage: ALERT 85.0% (block <80%, alert <90%) — 51/60 rows meet the condition: 85.0%, "
        "below the alert line 90%"
    )
    advisory = {"verdict": "pass", "value": None, "advisory": True, "thresholds": {}, "reason": "not set"}
    assert describe_gate("coordinator_health", advisory) == "coordinator_health: PASS (advisory) — not set"
