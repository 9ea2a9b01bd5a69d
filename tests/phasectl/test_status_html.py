"""The ``phasectl status --html`` page renderer (pure: no emulator, no browser)."""

from __future__ import annotations

import io
import re
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest

from phasectl import main
from phasectl.report import Heartbeat, PhaseLine
from phasectl.status_html import (
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
    kind: str | None = None  # data-kind: the trigger kind of a triggered cell
    spans: dict[str, str] = field(default_factory=dict)  # span class -> its text


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
    _span: str | None = None
    _span_text: list[str] = field(default_factory=list)

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
            cell = Cell(
                a["class"].split(), a.get("title", ""), a["data-date"], a["data-transition"], kind=a.get("data-kind")
            )
            self.cells.append(cell)
            self._text = []
        if tag == "span" and self._text is not None and self.cells and "class" in a:
            self._span, self._span_text = a["class"], []
        if tag == "ul" and a.get("id") in ("findings", "heartbeats"):
            self._list = a["id"]
        if tag == "li" and self._list is not None:
            self._text = []

    def handle_endtag(self, tag: str) -> None:
        text = "".join(self._text or ()).strip()
        if tag == "span" and self._span is not None:
            self.cells[-1].spans[self._span] = " ".join("".join(self._span_text).split())
            self._span = None
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
        if self._span is not None:
            self._span_text.append(data)


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
    assert [c.spans["state"] for c in cells] == ["triggered", "blocked", "wait", "no data yet"]
    assert [c.spans["done"] for c in cells] == ["3/3 done", "1/3 done", "2/3 done", "0/3 done"]
    assert cells[0].spans["trigger"] == "g1"
    # the reason is visible text in the cell, not only its title
    assert [c.spans["why"] for c in cells] == [
        "why: all 3 done",
        "why: gate blocked: coverage 50 %",
        "why: deadline tier 2 in 60 min",
        "why: waiting for critical alpha",
    ]
    assert cells[1].text == "blocked 1/3 done first completion 07:00 ET, 3 h 0 min ago why: gate blocked: coverage 50 %"
    assert cells[0].title == "phase2_to_phase3 2026-01-24 [phase2_to_phase3:2026-01-24:g1]: all 3 done"
    assert cells[1].title == "phase3_to_phase4 2026-01-24: gate blocked: coverage 50 %"


def test_each_state_has_its_background_colour_and_the_legend_names_them_all() -> None:
    page = render()
    for state, (background, _) in STATE_COLOURS.items():
        if state in ("partial", "deadline"):  # triggered cells of that kind (their class stays state-triggered)
            assert (
                f'.cell.state-triggered[data-kind="{state}"], .swatch.state-{state} {{ background: {background};'
                in page
            )
        else:
            assert f".state-{state} {{ background: {background};" in page
        assert f'<span class="swatch state-{state}"></span>{STATE_LABELS[state]}</li>' in page
    assert STATE_COLOURS["triggered"][0] == "#2e7d32"
    assert len({bg for bg, _ in STATE_COLOURS.values()}) == len(STATE_COLOURS)  # a partial is not drawn green


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
    earlier = DAY - timedelta(days=1)
    partly = {DAY: night(DAY)[:2], earlier: night(earlier)[:1]}
    more = parse(render_status_html(NOW, [DAY, earlier], partly, (), ()))
    assert [c.classes[1] for c in more.cells[2:]] == ["state-triggered", "state-none"]
    assert more.cells[3].title == "phase3_to_phase4 2026-01-23: no date document"


def test_a_date_that_recorded_nothing_is_one_line_that_says_so() -> None:
    """No completion and no trigger on any transition (a date without games): one line, no grey cells."""
    earlier = DAY - timedelta(days=1)
    quiet = tuple(line(t, "wait", (), reason="waiting for critical alpha") for t in TRANSITIONS)
    page = render_status_html(NOW, [DAY, earlier], {DAY: night(DAY), earlier: quiet}, (), ())
    parsed = parse(page)
    assert parsed.rows == ["2026-01-24", "2026-01-23"]
    assert {c.date for c in parsed.cells} == {"2026-01-24"}
    assert (
        '<tr class="quiet" data-date="2026-01-23"><th scope="row">2026-01-23</th><td class="quiet" colspan="4">'
        "nothing recorded: no completion and no trigger on any transition</td></tr>"
    ) in page
    assert page.count("waiting for critical alpha") == 2  # the 24th's own cell only (its title and its text)
    # a date without any line (no date document at all) is quiet too
    assert 'data-date="2026-01-22"><th scope="row">2026-01-22</th><td class="quiet"' in render_status_html(
        NOW, [DAY, DAY - timedelta(days=2)], {DAY: night(DAY)}, (), ()
    )


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
    assert parsed.heartbeats == [f"NEVER RAN hb{evil} has never run"]


def test_findings_are_listed_most_severe_first_with_severity_kind_date_and_message() -> None:
    page = parse(render())
    assert page.findings == [
        "CRITICAL grid_gap phase2_to_phase3: 120-day grid gap & more",
        "ERROR failed_permanent: row failed <script>alert(1)</script>",
        "WARNING silent_night 2026-01-24: no completion",
    ]
    assert page.heartbeats == [
        "OK monitor last ran 3 min ago (at Jan 25 09:57 ET)",
        "NEVER RAN auto-retry has never run",
    ]
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
        (["status", "--date", "2026-01-24", "--days", "3"], "--days applies to --html"),
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

    gated = replace(
        line(TRANSITIONS[1], "triggered", EXPECTED, trigger_id="t"),
        gates={
            "minutes_coverage": MINUTES,
            "coordinator_health": {
                "kind": "service_health",
                "verdict": "pass",
                "value": None,
                "advisory": True,
                "thresholds": {},
                "reason": "<b>ready</b>",
            },
        },
    )
    page = render_status_html(NOW, [DAY], {DAY: (gated,)}, (), ())
    section = page[page.index("<h2>Gates</h2>") :]
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
    from phasectl.report import describe_gate

    assert describe_gate("minutes_coverage", MINUTES) == (
        "minutes_coverage: ALERT 85.0% (block <80%, alert <90%) — 51/60 rows meet the condition: 85.0%, "
        "below the alert line 90%"
    )
    advisory = {"verdict": "pass", "value": None, "advisory": True, "thresholds": {}, "reason": "not set"}
    assert describe_gate("coordinator_health", advisory) == "coordinator_health: PASS (advisory) — not set"


def test_short_trigger_id_keeps_the_mode_of_a_transition_with_modes() -> None:
    assert short_trigger_id("phase3_to_phase4:2026-01-24:g1:overnight") == "g1:overnight"


# -- trigger kinds, times in ET, durations -----------------------------------------------------------
FIRST = datetime(2026, 1, 25, 4, 23, tzinfo=UTC)  # 23:23 ET on the game night
FIRED = datetime(2026, 1, 25, 6, 37, tzinfo=UTC)  # 01:37 ET, 2 h 14 min later


def fired(status: str | None, reason: str = "because", at: datetime = FIRED, first: datetime = FIRST) -> PhaseLine:
    from dataclasses import replace

    base = line(TRANSITIONS[0], "triggered", ("alpha", "beta"), trigger_id=f"{TRANSITIONS[0]}:{DAY}:g1", reason=reason)
    return replace(base, trigger_status=status, triggered_at=at, first_completion_at=first)


def one_cell(p: PhaseLine, now: datetime = NOW) -> Cell:
    return parse(render_status_html(now, [DAY], {DAY: (p,)}, (), ())).cells[0]


@pytest.mark.parametrize(
    ("status", "reason", "kind", "label"),
    [
        ("complete", "all 3 expected processors done", "triggered", "triggered: complete"),
        ("partial", "all critical done and 2/3 (≥60%) of critical+optional", "partial", "triggered: partial"),
        (
            "deadline_exceeded",
            "deadline tier 2 (≥2 of 3 after 120 min): 2 done",
            "deadline",
            "triggered: deadline tier 2",
        ),
        ("fallback", "triggered by slot run_0230: 7/7 games Final", "deadline", "triggered: fallback"),
        ("scheduled", "slots fired: daily_results", "triggered", "triggered: scheduled"),
        (None, "forced", "triggered", "triggered"),
    ],
)
def test_complete_partial_and_deadline_triggers_differ_by_colour_and_by_label(
    status: str | None, reason: str, kind: str, label: str
) -> None:
    from phasectl.status_html import cell_label, trigger_kind

    p = fired(status, reason)
    assert (trigger_kind(p), cell_label(p)) == (kind, label)
    cell = one_cell(p)
    assert cell.classes == ["cell", "state-triggered"]  # every trigger is triggered; its kind is data-kind
    assert cell.kind == kind
    assert cell.spans["state"] == label
    page = render_status_html(NOW, [DAY], {DAY: (p,)}, (), ())
    partial = STATE_COLOURS["partial"][0]
    assert f'.cell.state-triggered[data-kind="partial"], .swatch.state-partial {{ background: {partial};' in page
    assert STATE_COLOURS["partial"][0] != STATE_COLOURS["triggered"][0] != STATE_COLOURS["deadline"][0]


def test_a_cell_shows_the_trigger_time_in_et_and_the_time_since_the_first_completion() -> None:
    cell = one_cell(fired("partial"))
    assert cell.spans["when"] == "at 01:37 ET after 2 h 14 min (first completion 23:23 ET)"
    later = one_cell(fired("complete", at=datetime(2026, 1, 28, 15, 0, tzinfo=UTC)))  # a re-run days later
    assert later.spans["when"].startswith("at Jan 28 10:00 ET after ")
    forced = one_cell(fired(None, first=FIRED + timedelta(hours=1)))  # forced before the first completion
    assert forced.spans["when"] == "at 01:37 ET"
    waiting = (fired("partial"), line(TRANSITIONS[3], "wait", ()))
    quiet = parse(render_status_html(NOW, [DAY], {DAY: waiting}, (), ())).cells[1]
    assert "when" not in quiet.spans  # nothing recorded yet


@pytest.mark.parametrize(
    ("now", "dates", "offsets"),
    [
        (NOW, [DAY], "UTC\N{MINUS SIGN}05:00"),
        (datetime(2026, 7, 4, 12, 0, tzinfo=UTC), [date(2026, 7, 3)], "UTC\N{MINUS SIGN}04:00"),
        # daylight saving starts on 2026-03-08: both offsets, once, in the header
        (
            datetime(2026, 3, 9, 12, 0, tzinfo=UTC),
            [date(2026, 3, 9) - timedelta(days=n) for n in range(3)],
            "UTC\N{MINUS SIGN}04:00 now; UTC\N{MINUS SIGN}05:00 on some dates shown",
        ),
    ],
)
def test_times_are_in_et_with_the_offset_shown_once_in_the_header(
    now: datetime, dates: list[date], offsets: str
) -> None:
    page = render_status_html(now, dates, {}, (), ())
    assert f"times in ET ({offsets})" in page
    assert page.count("UTC\N{MINUS SIGN}") == offsets.count("UTC")
    assert "Z)" not in page and "UTC)" not in page


def test_every_time_on_the_page_is_in_et() -> None:
    finding = ActiveFinding(
        "k", "silent_night", "WARNING", "m", None, "2026-01-24", datetime(2026, 1, 25, 14, 0, tzinfo=UTC)
    )
    page = render_status_html(NOW, [DAY], {DAY: (fired("partial"),)}, HEARTBEATS, (finding,))
    assert "generated 2026-01-25 10:00:00 ET" in page
    assert "(since Jan 25 09:00 ET)" in page
    assert "(at Jan 25 09:57 ET)" in page  # the monitor's heartbeat: 3 min before 10:00 ET
    assert not re.search(r"[0-9]{2}:[0-9]{2}(:[0-9]{2})?Z", page)


def test_durations_are_worded_as_the_engine_words_them() -> None:
    from phasectl.status_html import format_duration
    from shared.orchestration.engine import _fmt_minutes

    for minutes in range(0, 24 * 60, 7):
        assert format_duration(timedelta(minutes=minutes)) == _fmt_minutes(timedelta(minutes=minutes))
    assert format_duration(timedelta(minutes=134)) == "2 h 14 min"


def test_format_time_and_utc_offset() -> None:
    from phasectl.status_html import format_time, utc_offset

    assert format_time(FIRED) == "Jan 25 01:37 ET"
    assert format_time(FIRED, game_date=DAY) == "01:37 ET"
    assert format_time(FIRED.replace(tzinfo=None), game_date=DAY) == "01:37 ET"  # naive: UTC
    assert format_time(FIRED, "UTC", DAY) == "06:37 UTC"
    assert utc_offset(FIRED) == "UTC\N{MINUS SIGN}05:00"
    assert utc_offset(FIRED, "Asia/Kolkata") == "UTC+05:30"


# -- heartbeats, retry queue, dead letters -------------------------------------------------------------
def test_stale_heartbeats_are_coloured_and_labelled() -> None:
    beats = (
        Heartbeat("monitor", NOW - timedelta(minutes=3), 30),
        Heartbeat("auto-retry", NOW - timedelta(minutes=90), 45),
        Heartbeat("never", None, 45),
    )
    page = render_status_html(NOW, [DAY], {}, beats, ())
    items = re.findall(r'<li class="(\w+)"><span class="badge">([A-Z ]+)</span>', page)
    assert items == [("healthy", "OK"), ("stale", "STALE"), ("stale", "NEVER RAN")]
    assert "auto-retry last ran 90 min ago (STALE: &gt; 45 min) (at Jan 25 08:30 ET)" in page
    assert "#heartbeats li.stale .badge { background: #c62828;" in page


@dataclass(frozen=True)
class FakeQueueRow:  # the attributes of shared.retry.queue.QueueRow the page reads
    processor_name: str
    game_date: date
    status: str
    retry_count: int
    max_retries: int
    next_retry_at: datetime | None
    phase: int = 2
    fallback_for: str | None = None
    error_message: str | None = None
    resolution_notes: str | None = None


def test_the_retry_queue_section_lists_processor_date_status_retries_and_next_try_in_et() -> None:
    rows = [
        FakeQueueRow(
            "bdl_boxscores",
            DAY,
            "failed_permanent",
            3,
            3,
            None,
            fallback_for="nbac_player_boxscores",
            error_message="gave up <b>",
        ),
        FakeQueueRow("nbac_player_boxscores", DAY, "pending", 1, 3, NOW + timedelta(minutes=15), error_message="503"),
        {
            "processor_name": "odds_api_game_lines",
            "game_date": DAY,
            "status": "retrying",
            "retry_count": 2,
            "max_retries": 3,
            "next_retry_at": NOW + timedelta(minutes=45),
            "phase": 2,
            "resolution_notes": None,
            "error_message": "timeout",
            "fallback_for": None,
        },
        FakeQueueRow("gone", DAY, "succeeded", 1, 3, NOW - timedelta(hours=1), resolution_notes="ok"),
    ]
    page = render_status_html(NOW, [DAY], {}, (), (), retry_rows=rows)
    assert "<h2>Retry queue (4)</h2>" in page
    section = page[page.index('<table id="retry-queue"') : page.index("</table>", page.index('id="retry-queue"'))]
    found = re.findall(
        r'<tr class="retry retry-(\w+)" data-processor="(\w+)" data-date="([0-9-]+)">.*?<td class="status">(\w+)</td>'
        r'<td class="retries">([0-9/]+)</td><td class="next">([^<]*)</td>',
        section,
    )
    assert found == [  # retrying, then pending (next try soonest first), then failed_permanent, then succeeded
        ("retrying", "odds_api_game_lines", "2026-01-24", "retrying", "2/3", "Jan 25 10:45 ET"),
        ("pending", "nbac_player_boxscores", "2026-01-24", "pending", "1/3", "Jan 25 10:15 ET"),
        ("failed_permanent", "bdl_boxscores", "2026-01-24", "failed_permanent", "3/3", "-"),
        ("succeeded", "gone", "2026-01-24", "succeeded", "1/3", "-"),
    ]
    assert "bdl_boxscores (fallback for nbac_player_boxscores)" in section
    assert "gave up &lt;b&gt;" in section
    assert "No retry queue rows." in render_status_html(NOW, [DAY], {}, (), (), retry_rows=[])


def test_a_real_queue_row_is_read_as_retry_list_shows_it() -> None:
    from dataclasses import asdict

    from phasectl.status_html import RetryLine
    from shared.retry.queue import QueueRow

    row = QueueRow(
        id="r1",
        game_date=DAY,
        phase=2,
        processor_name="nbac_player_boxscores",
        correlation_id=None,
        error_message="503",
        error_type=None,
        retry_count=1,
        max_retries=3,
        first_failure_at=NOW,
        last_retry_at=None,
        next_retry_at=NOW,
        status="pending",
        resolution_notes=None,
        fallback_for=None,
        game_ids=(),
        created_at=NOW,
        updated_at=NOW,
    )
    expected = RetryLine("nbac_player_boxscores", "2026-01-24", "pending", 1, 3, NOW, 2, None, "503", NOW, None)
    assert RetryLine.of(row) == expected
    assert RetryLine.of(asdict(row)) == expected  # reconcile's retry_rows are these dicts


def test_the_dead_letter_section_shows_each_function_backlog() -> None:
    from phasectl.status_html import DeadLetterBacklog

    @dataclass
    class Message:
        dead_lettered_at: datetime | None

    backlog = [
        DeadLetterBacklog.of(
            "phase2_to_phase3",
            "phase2_to_phase3-dlq-sub",
            [Message(NOW - timedelta(hours=1)), Message(NOW - timedelta(hours=5)), Message(None)],
        ),
        DeadLetterBacklog("auto_retry_processor", "auto_retry_processor-dlq-sub", 0),
        DeadLetterBacklog("phase_transition_monitor", "phase_transition_monitor-dlq-sub", None),
        DeadLetterBacklog("grading_readiness", "grading_readiness-dlq-sub", 1000, more=True),
    ]
    assert backlog[0] == DeadLetterBacklog(
        "phase2_to_phase3", "phase2_to_phase3-dlq-sub", 3, False, NOW - timedelta(hours=5)
    )
    page = render_status_html(NOW, [DAY], {}, (), (), dead_letters=backlog)
    assert "<h2>Dead letters (1003+)</h2>" in page
    rows = re.findall(
        r'<tr class="dlq (\w+)" data-function="(\w+)">.*?<td class="count">([^<]*)</td>'
        r'<td class="oldest">([^<]*)</td><td class="hint">([^<]*)</td>',
        page,
    )
    assert rows == [
        ("empty", "auto_retry_processor", "0", "-", "-"),
        ("backlog", "grading_readiness", "1000+", "-", "phasectl dlq replay --function grading_readiness"),
        ("backlog", "phase2_to_phase3", "3", "Jan 25 05:00 ET", "phasectl dlq replay --function phase2_to_phase3"),
        ("missing", "phase_transition_monitor", "subscription missing", "-", "phasectl deploy apply creates it"),
    ]


def test_sections_not_passed_say_so_and_existing_calls_keep_working() -> None:
    page = render()  # the five positional arguments only, as before
    assert '<h2>Retry queue</h2>\n<p class="empty">Not read for this page.</p>' in page
    assert '<h2>Dead letters</h2>\n<p class="empty">Not read for this page.</p>' in page
    assert 'http-equiv="refresh"' not in page


def test_refresh_seconds_makes_the_page_reload_itself() -> None:
    page = render_status_html(NOW, [DAY], {}, (), (), refresh_seconds=30)
    assert '<meta http-equiv="refresh" content="30">' in page
    assert "reloads every 30 s" in page
    assert parse(page).tags.isdisjoint({"script"})


# -- the same numbers as the engine and `phasectl status` ------------------------------------------------
def _engine_night() -> tuple[object, dict[tuple[str, date], object], dict[str, str]]:
    """The real definition: phase 2→3 triggered partial with 4 of 5 (the fifth came after the trigger),
    phase 4→5 by deadline tier 2 with 3 of 5, phase 3→4 triggered in mode same_day the day before."""
    from shared.clock import FixedClock
    from shared.orchestration.engine import CompletionRecord, decide
    from shared.orchestration.state import DateState
    from shared.pipeline.definition import load_definition

    d = load_definition()

    def rec(p: str, at: datetime) -> CompletionRecord:
        return CompletionRecord(p, p, "success", f"x-{p}", at)

    reasons: dict[str, str] = {}
    states: dict[tuple[str, date], object] = {}

    def trigger(
        name: str,
        comps: tuple[CompletionRecord, ...],
        at: datetime,
        later: tuple[CompletionRecord, ...],
        mode: str | None = None,
    ) -> None:
        decision = decide(d, d.transition(name), DAY, comps, FixedClock(at))
        assert decision.kind == "ready", decision
        reasons[name] = decision.reason
        key = "1" if mode is None else f"1-{mode}"
        tid = f"{name}:{DAY}:g1" + (f":{mode}" if mode else "")
        doc = {"trigger_id": tid, "at": at, "status": decision.status, "reason": decision.reason}
        states[(name, DAY)] = DateState(name, DAY, 1, "triggered", {key: doc}, None, (), None, comps + later)

    p2 = ("nbac_gamebook_player_stats", "nbac_player_boxscores", "odds_api_game_lines", "odds_api_player_points_props")
    trigger(
        "phase2_to_phase3",
        tuple(rec(p, FIRST + timedelta(minutes=10 * i)) for i, p in enumerate(p2)),
        FIRED,
        (rec("bigdataball_play_by_play", FIRED + timedelta(minutes=30)),),
    )
    p4 = ("ml_feature_store", "player_daily_cache", "player_composite_factors")
    trigger(
        "phase4_to_phase5",
        tuple(rec(p, FIRST + timedelta(minutes=5 * i)) for i, p in enumerate(p4)),
        FIRST + timedelta(minutes=125),
        (),
    )
    same_day = datetime(2026, 1, 24, 20, 0, tzinfo=UTC)  # 15:00 ET on the game day: mode same_day
    trigger(
        "phase3_to_phase4",
        (rec("upcoming_player_game_context", same_day - timedelta(minutes=5)),),
        same_day,
        (),
        mode="same_day",
    )
    return d, states, reasons


def test_the_cells_count_what_status_and_the_engine_count() -> None:
    from phasectl.report import StatusReport, phase_line, timed_line
    from phasectl.status_html import collect_status_lines, done_fraction
    from shared.clock import FixedClock
    from shared.orchestration.engine import progress_of
    from shared.orchestration.state import DateState

    d, states, reasons = _engine_night()
    clock = FixedClock(NOW)

    def load(name: str, day: date) -> DateState:
        return states.get((name, day)) or DateState(name, day, 1, "waiting", {}, None, (), None, ())  # type: ignore[return-value]

    dates = [DAY, DAY - timedelta(days=1)]
    got = collect_status_lines(d, load, clock, dates)
    for day in dates:  # the very lines `phasectl status` builds
        assert got.lines_by_date[day] == (
            *(phase_line(d, t, load(t.name, day), clock) for t in d.transitions),
            *(timed_line(t, load(t.name, day)) for t in d.timed_triggers()),
        )
    status = StatusReport(DAY, NOW, got.lines_by_date[DAY], ()).render()
    page = render_status_html(NOW, dates, got.lines_by_date, (), (), counts=got.counts, timezone=d.pipeline.timezone)
    cells = {(c.date, c.transition): c for c in parse(page).cells}
    for p in got.lines_by_date[DAY]:
        done = done_fraction(p.expected, p.completed)
        assert re.search(rf"^{p.transition}\s+\S+\s+{re.escape(done)}\s", status, re.M), (p.transition, status)
        assert cells[(str(DAY), p.transition)].spans["done"].startswith(f"{done} done")
        if p.transition in reasons:  # a transition: the engine's progress now, for the same inputs
            now = progress_of(d, d.transition(p.transition), DAY, load(p.transition, DAY).completions, clock)
            assert got.counts[(DAY, p.transition)].now == now
            assert done == done_fraction(now.expected, now.done)

    # what the engine counted when it fired: the numbers of the trigger's own reason
    p23 = cells[(str(DAY), "phase2_to_phase3")]
    assert "4/5 (≥60%) of critical+optional" in reasons["phase2_to_phase3"]
    assert p23.spans["done"] == "5/5 done now; 4/5 done at the trigger"
    assert p23.spans["why"] == f"why: {reasons['phase2_to_phase3']}"
    assert p23.kind == "partial" and p23.spans["state"] == "triggered: partial"
    assert p23.spans["when"] == "at 01:37 ET after 2 h 14 min (first completion 23:23 ET)"

    p45 = cells[(str(DAY), "phase4_to_phase5")]
    assert reasons["phase4_to_phase5"].startswith("deadline tier 2 (≥3 of 5 after 120 min): 3 done after 2 h 5 min")
    assert p45.spans["done"] == "3/5 done, as at the trigger"
    assert p45.kind == "deadline" and p45.spans["state"] == "triggered: deadline tier 2"
    assert p45.spans["when"] == "at 01:28 ET after 2 h 5 min (first completion 23:23 ET)"

    p34 = cells[(str(DAY), "phase3_to_phase4")]  # triggered same_day; the day after, the mode is overnight
    assert reasons["phase3_to_phase4"] == "all 1 expected processors done [mode same_day]"
    assert p34.spans["done"] == "1/5 done now; 1/1 done at the trigger [mode same_day]"
    assert p34.spans["trigger"] == "g1:same_day" and p34.kind == "triggered"
    assert p34.spans["when"] == "at 15:00 ET after 5 min (first completion 14:55 ET)"


def test_the_majority_pool_is_counted_when_it_is_not_the_expected_set() -> None:
    """A reason "… 2/4 of critical+optional" next to "1/2 done": the page names both counts."""
    from dataclasses import replace

    from phasectl.status_html import EngineCounts
    from shared.orchestration.engine import Progress

    progress = Progress(
        mode=None,
        expected=("a", "b"),
        critical=("a",),
        optional=("c", "d", "e"),
        done=("a", "c"),
        not_counted=(),
        unknown=(),
        first_completion_at=FIRST,
    )
    waiting = replace(line("t", "wait", ("a",)), expected=("a", "b"), completed=("a", "c"), missing=("b",))
    page = render_status_html(NOW, [DAY], {DAY: (waiting,)}, (), (), counts={(DAY, "t"): EngineCounts(progress)})
    assert parse(page).cells[0].spans["done"] == "1/2 done; critical+optional 2/4"
    done = replace(progress, done=("a", "b"))
    page = render_status_html(NOW, [DAY], {DAY: (waiting,)}, (), (), counts={(DAY, "t"): EngineCounts(done)})
    assert parse(page).cells[0].spans["done"] == "1/2 done"  # nothing missing: the majority rule is not consulted


def test_a_section_that_could_not_be_read_says_why() -> None:
    unread = {"retry_queue": "Forbidden: 403 <bq>", "dead_letters": "DeadlineExceeded: pubsub"}
    page = render_status_html(NOW, [DAY], {}, (), (), retry_rows=[], dead_letters=[], unread=unread)
    here = "not read: see the line at the top of the page"
    assert f'<h2>Retry queue</h2>\n<p class="unread" title="Forbidden: 403 &lt;bq&gt;">{here}</p>' in page
    assert f'<h2>Dead letters</h2>\n<p class="unread" title="DeadlineExceeded: pubsub">{here}</p>' in page
    assert '<p class="unread">not read: Forbidden: 403 &lt;bq&gt; (missing below: the retry queue)</p>' in page


# -- unknown processors and invisible characters (issue 25) -----------------------------------------------
ZWSP = "\u200b"  # a zero-width space: "player_game_summary\u200b" looks like the real processor


def test_unknown_processors_are_shown_in_their_cell_escaped() -> None:
    from dataclasses import replace

    unknown = (f"player_game_summary{ZWSP}", "<b>evil</b>", "\x1b[31mred", "\u202egnp.exe")
    lines = (replace(line(TRANSITIONS[1], "wait"), unknown=unknown), *night(DAY)[2:])
    page = render_status_html(NOW, [DAY], {DAY: lines}, (), ())
    cell = parse(page).cells[0]
    assert cell.spans["unknown"] == ("unknown: player_game_summary\\u200b, <b>evil</b>, \\x1b[31mred, \\u202egnp.exe")
    assert cell.text.index("unknown:") < cell.text.index("why:")  # above the reason, like status's lines
    assert "<b>evil" not in page and ZWSP not in page and "\x1b" not in page and "\u202e" not in page
    assert [c.spans.get("unknown") for c in parse(page).cells[1:]] == [None, None]  # only where there are some


def test_a_cell_lists_ten_unknown_names_and_counts_the_rest() -> None:
    from dataclasses import replace

    names = tuple(f"bogus_{i:02d}" for i in range(13))
    page = render_status_html(NOW, [DAY], {DAY: (replace(line(TRANSITIONS[0], "wait"), unknown=names),)}, (), ())
    assert parse(page).cells[0].spans["unknown"] == f"unknown: {', '.join(names[:10])} and 3 more"


def test_an_unknown_completion_of_a_date_reaches_status_and_the_page_alike() -> None:
    """A completion recorded under a name the definition does not know (L08: never counted): the text
    ``status`` and the page both name it, its zero-width space shown as an escape."""
    from phasectl.report import StatusReport
    from phasectl.status_html import collect_status_lines
    from shared.clock import FixedClock
    from shared.orchestration.engine import CompletionRecord
    from shared.orchestration.state import DateState
    from shared.pipeline.definition import load_definition

    d = load_definition()
    spoof = f"player_game_summary{ZWSP}"
    at = NOW - timedelta(hours=2)
    p34 = d.transition("phase3_to_phase4")
    records = (
        CompletionRecord("player_game_summary", "player_game_summary", "success", "x-1", at),
        CompletionRecord(spoof, None, "success", "x-2", at),  # recorded unknown: the raw name, no processor
    )

    def load(name: str, day: date) -> DateState:
        completions = records if name == p34.name else ()
        return DateState(
            transition=name,
            game_date=day,
            generation=1,
            status="waiting",
            triggered={},
            claim=None,
            missing_games=(),
            last_gate=None,
            completions=completions,
        )

    got = collect_status_lines(d, load, FixedClock(NOW), [DAY])
    (p,) = [x for x in got.lines_by_date[DAY] if x.transition == p34.name]
    assert p.unknown == (spoof,)
    out = io.StringIO()
    from phasectl import Context

    Context(d, FixedClock(NOW), {}, out, io.StringIO()).print(StatusReport(DAY, NOW, (p,), ()).render())
    assert "  unknown:   player_game_summary\\u200b" in out.getvalue()

    page = render_status_html(NOW, [DAY], got.lines_by_date, (), (), counts=got.counts)
    cell = {c.transition: c for c in parse(page).cells}[p34.name]
    assert cell.spans["unknown"] == "unknown: player_game_summary\\u200b"
    assert cell.spans["done"].startswith(f"1/{len(p.expected)} done")  # the spoof does not count
    assert ZWSP not in page


def test_no_invisible_or_control_character_reaches_the_page() -> None:
    """Every value on the page goes through ``printable``: names, reasons, findings, heartbeats, gates."""
    import unicodedata
    from dataclasses import replace

    sneaky = f"x{ZWSP}\u2060\ufeff\u200e\u2028\x1b\x07\U000e0041"
    lines = (
        replace(
            line(f"{TRANSITIONS[0]}{ZWSP}", "triggered", EXPECTED, trigger_id=f"t:{DAY}:g1{ZWSP}", reason=sneaky),
            unknown=(sneaky,),
            gates={f"gate{ZWSP}": {"verdict": "blocked", "reason": sneaky, "value": 1.0}},
        ),
    )
    finding = ActiveFinding(f"k{ZWSP}", f"kind{ZWSP}", "ERROR", sneaky, f"t{ZWSP}", f"d{ZWSP}")
    page = render_status_html(NOW, [DAY], {DAY: lines}, (Heartbeat(sneaky, None, 30),), (finding,))
    hidden = sorted({f"U+{ord(c):04X}" for c in page if unicodedata.category(c) in ("Cf", "Zl", "Zp")})
    controls = sorted({f"U+{ord(c):04X}" for c in page if unicodedata.category(c) == "Cc" and c != "\n"})
    assert hidden == [] and controls == []
    assert "x\\u200b\\u2060\\ufeff\\u200e\\u2028\\x1b\\x07\\U000e0041" in page


# -- the operator's order: findings first, the nights as pictures, fail soft, size ---------------------
def test_the_active_findings_come_first_above_the_grid() -> None:
    page = render()
    assert page.index('id="findings"') < page.index('id="legend"') < page.index('id="grid"')
    assert page.index("<h1>") < page.index('id="findings"')


def test_sections_not_read_say_so_in_their_place_and_once_at_the_top() -> None:
    why = "the Firestore emulator at 127.0.0.1:1 gave no answer within the 2 s deadline"
    unread = {"findings": why, "grid": why, "heartbeats": why, "retry_queue": "the BigQuery emulator <down>"}
    page = render_status_html(NOW, [DAY], {}, (), (), unread=unread, dead_letters=[])
    top = page[page.index('<div id="unread">') : page.index("</div>")]
    assert top.count('<p class="unread">') == 2  # one line per backend
    assert f"not read: {why} (missing below: the active findings, the grid and the nights, the heartbeats)" in top
    assert "not read: the BigQuery emulator &lt;down&gt; (missing below: the retry queue)" in top
    assert page.index('id="unread"') < page.index("<h2>Active findings</h2>")
    for title in ("Active findings", "Grid", "Heartbeats"):
        assert f'<h2>{title}</h2>\n<p class="unread" title="{why}">not read: see the line at the top' in page
    assert page.count(why) == 1 + 3  # the full line once as text (the top), in place as a tooltip
    assert 'id="grid"' not in page and 'id="findings"' not in page
    assert "<h1>phasechain status" in page and "<h2>Dead letters (0)</h2>" in page  # what was read is shown


def _seeded_page(days: int) -> str:
    from tests.support.seeded_night import render as seeded_render

    return seeded_render(days=days)


def test_the_seeded_night_has_its_timeline_open_and_the_others_folded() -> None:
    page = _seeded_page(7)
    section = page[page.index('<section id="timeline">') : page.index("</section>", page.index('id="timeline"'))]
    assert section.count('<svg class="timeline"') == 2  # the 24th and the blocked 23rd; quiet dates have none
    assert section.index('data-date="2026-01-24"') < section.index('<details data-date="2026-01-23">')
    assert section.count('class="phase-bar') == 4 + 1
    assert page.index('id="grid"') < page.index('id="timeline"') < page.index('id="retry-queue"')
    assert page.count('<tr class="quiet"') == 5


def test_thirty_days_of_six_transitions_with_a_month_of_retries_and_findings_is_under_a_megabyte() -> None:
    """30 busy nights x 6 transitions and sensors, ~10 retry rows and a finding per night: < 1 MB."""
    from dataclasses import replace

    from phasectl.status_html import RetryLine, collect_status_lines, nights_of
    from shared.clock import FixedClock
    from shared.orchestration.state import DateState
    from tests.support.seeded_night import DAY as SEEDED
    from tests.support.seeded_night import NOW as SEEDED_NOW
    from tests.support.seeded_night import seed

    s = seed()
    days = [SEEDED - timedelta(days=n) for n in range(30)]
    states: dict[tuple[str, date], DateState] = {}
    for (name, _), state in s.states.items():  # every night as busy as the seeded one (each of its own date)
        for n, day in enumerate(days):
            shift = SEEDED - day
            comps = tuple(replace(c, completed_at=c.completed_at - shift) for c in state.completions)
            triggered = {k: {**v, "at": v["at"] - shift} for k, v in state.triggered.items()}
            states[(name, day)] = replace(state, game_date=day, completions=comps, triggered=triggered, raw={"n": n})
    seeded = replace(s, states=states)
    rows = [
        replace(r, game_date=day.isoformat(), processor=f"{r.processor}_{i}")
        for day in days
        for r in s.retry_rows
        for i in range(10)
    ]
    assert all(isinstance(r, RetryLine) for r in rows) and len(rows) == 300
    findings = [replace(s.findings[0], key=f"k{n}", game_date=day.isoformat()) for n, day in enumerate(days)]
    got = collect_status_lines(s.definition, seeded.load, FixedClock(SEEDED_NOW), days)
    columns = {p.transition for lines in got.lines_by_date.values() for p in lines}
    tz = ZoneInfo(s.definition.pipeline.timezone)
    extra = [f"x_sensor_{n}" for n in range(6 - len(columns))]  # the definition has 5 columns: make it 6
    lines = {d: (*ls, *(replace(ls[0], transition=e) for e in extra)) for d, ls in got.lines_by_date.items()}
    page = render_status_html(
        SEEDED_NOW,
        days,
        lines,
        (),
        findings,
        counts=got.counts,
        retry_rows=rows,
        dead_letters=[],
        timezone=tz,
        nights=nights_of(s.definition, got.states, got.lines_by_date, SEEDED_NOW, tz, rows, firings_on=SEEDED),
    )
    size = len(page.encode("utf-8"))
    assert page.count('<svg class="timeline"') == 30 and page.count('<td class="cell') == 30 * 6
    assert size < 1_000_000, f"the page is {size} bytes"


def test_status_html_with_every_backend_refusing_still_writes_the_page_and_names_each(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    """The page is written with what could be read (here: nothing but its header) and one line per
    backend; stderr says the same; exit 2 (the grid could not be read). No traceback."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    monkeypatch.setenv("FIRESTORE_EMULATOR_HOST", f"127.0.0.1:{closed}")
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{closed}")
    monkeypatch.setenv("BIGQUERY_EMULATOR_HOST", f"http://127.0.0.1:{closed}")
    out, err = io.StringIO(), io.StringIO()
    page = tmp_path / "status.html"
    env = {"GOOGLE_CLOUD_PROJECT": "demo-html", "PHASECTL_NOW": "2026-01-25T15:00:00Z"}
    code = main(
        ["status", "--date", "2026-01-24", "--html", str(page), "--timeout", "2"], environ=env, out=out, err=err
    )
    assert code == 2
    assert out.getvalue().startswith(f"wrote {page} (7 dates")
    lines = err.getvalue().splitlines()
    assert [line.split(" emulator")[0] for line in lines] == [
        "phasectl: not read: cannot reach the Firestore",
        "phasectl: not read: cannot reach the BigQuery",
        "phasectl: not read: cannot reach the Pub/Sub",
    ]
    html = page.read_text()
    assert "<h1>phasechain status — 2026-01-18 … 2026-01-24</h1>" in html
    assert html.count("not read: cannot reach the Firestore emulator") == 1  # once, at the top
    assert html.count("not read: see the line at the top of the page") == 3 + 2  # the sections of all three
    assert "Traceback" not in html + err.getvalue()
