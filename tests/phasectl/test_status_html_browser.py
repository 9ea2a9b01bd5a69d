"""The ``phasectl status --html`` page in a real browser: headless Chromium renders the grid.

Chromium takes a screenshot, a stdlib-only PNG decoder reads it back, and the test counts
pixels of each state's colour (a complete, a partial and a deadline-tier trigger each in its
own): the grid rendered, with its colours. The DOM Chromium built (``--dump-dom``) has one
``td.cell`` per date and transition, each with its label, counts, times and reason as text.
``phasectl status --serve``'s server is loaded by Chromium too (``start_in_thread``).

Chromium is the Debian package ``chromium`` (``make browser`` installs it). When it is missing
these tests FAIL, unless ``PHASECHAIN_SKIP_BROWSER=1``.
"""

from __future__ import annotations

import json
import os
import random
import struct
import subprocess
import zlib
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from html.parser import HTMLParser
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud
from phasectl.report import Heartbeat, PhaseLine
from phasectl.status_html import STATE_COLOURS, ActiveFinding, render_status_html
from phasectl.status_serve import start_in_thread
from shared.gcp import firestore_client
from shared.monitor.alerts import AlertManager
from shared.monitor.findings import Finding
from tests.support.phasectl_run import Run, phasectl_runner
from tests.support.rig import GAMES, PHASE2, Rig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[3]
CHROMIUM = Path("/usr/bin/chromium")
SKIP_ENV = "PHASECHAIN_SKIP_BROWSER"
WINDOW = (1200, 800)
CHROMIUM_FLAGS = (
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--hide-scrollbars",
    "--force-color-profile=srgb",  # screenshot pixels are the CSS colours, not a display profile's
    f"--window-size={WINDOW[0]},{WINDOW[1]}",
)
MIN_PIXELS = 500
NOW = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)
NOW_ENV = "2026-01-25T15:00:00Z"
DAY = date(2026, 1, 24)
TRANSITIONS = ("phase2_to_phase3", "phase3_to_phase4", "phase4_to_phase5", "phase5_to_phase6")


# -- a stdlib PNG decoder (8-bit RGB/RGBA, not interlaced) ------------------------------------
@dataclass(frozen=True)
class Image:
    width: int
    height: int
    channels: int  # 3 RGB, 4 RGBA
    rows: tuple[bytes, ...]

    def colours(self) -> Counter[tuple[int, int, int]]:
        """Pixel count per RGB colour (alpha ignored)."""
        counts: Counter[tuple[int, int, int]] = Counter()
        c = self.channels
        for row in self.rows:
            counts.update(zip(row[0::c], row[1::c], row[2::c], strict=True))
        return counts


def _paeth(a: int, b: int, c: int) -> int:
    p = a + b - c
    pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
    if pa <= pb and pa <= pc:
        return a
    return b if pb <= pc else c


def _unfilter(kind: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    out = bytearray(line)
    n = len(out)
    if kind == 0:
        return bytes(out)
    if kind == 1:  # Sub
        for i in range(bpp, n):
            out[i] = (out[i] + out[i - bpp]) & 0xFF
    elif kind == 2:  # Up
        out = bytearray((x + y) & 0xFF for x, y in zip(line, prev, strict=True))
    elif kind == 3:  # Average
        for i in range(n):
            left = out[i - bpp] if i >= bpp else 0
            out[i] = (out[i] + ((left + prev[i]) >> 1)) & 0xFF
    elif kind == 4:  # Paeth
        for i in range(n):
            left, up_left = (out[i - bpp], prev[i - bpp]) if i >= bpp else (0, 0)
            out[i] = (out[i] + _paeth(left, prev[i], up_left)) & 0xFF
    else:
        raise ValueError(f"PNG filter type {kind} is not one of 0..4")
    return bytes(out)


def _chunks(data: bytes) -> list[tuple[bytes, bytes]]:
    if data[:8] != b"\x89PNG\r\n\x1a\n":
        raise ValueError("not a PNG file (bad signature)")
    chunks, pos = [], 8
    while pos < len(data):
        (length,) = struct.unpack(">I", data[pos : pos + 4])
        kind, body = data[pos + 4 : pos + 8], data[pos + 8 : pos + 8 + length]
        (crc,) = struct.unpack(">I", data[pos + 8 + length : pos + 12 + length])
        if zlib.crc32(kind + body) != crc:
            raise ValueError(f"PNG chunk {kind!r} has a bad CRC")
        chunks.append((kind, body))
        pos += 12 + length
        if kind == b"IEND":
            break
    return chunks


def decode_png(data: bytes) -> Image:
    chunks = _chunks(data)
    if not chunks or chunks[0][0] != b"IHDR":
        raise ValueError("PNG without IHDR first")
    width, height, depth, colour, _, _, interlace = struct.unpack(">IIBBBBB", chunks[0][1])
    if depth != 8 or colour not in (2, 6) or interlace != 0:
        raise ValueError(f"unsupported PNG: bit depth {depth}, colour type {colour}, interlace {interlace}")
    channels = 3 if colour == 2 else 4
    raw = zlib.decompress(b"".join(body for kind, body in chunks if kind == b"IDAT"))
    stride = width * channels
    if len(raw) != height * (stride + 1):
        raise ValueError(f"PNG data is {len(raw)} bytes, expected {height * (stride + 1)}")
    rows: list[bytes] = []
    prev = bytes(stride)
    for y in range(height):
        start = y * (stride + 1)
        prev = _unfilter(raw[start], raw[start + 1 : start + 1 + stride], prev, channels)
        rows.append(prev)
    return Image(width, height, channels, tuple(rows))


def _filter(kind: int, line: bytes, prev: bytes, bpp: int) -> bytes:
    """The encoder's side (for the decoder's own test)."""

    def left(i: int, row: bytes) -> int:
        return row[i - bpp] if i >= bpp else 0

    predictors: dict[int, Callable[[int], int]] = {
        0: lambda i: 0,
        1: lambda i: left(i, line),
        2: lambda i: prev[i],
        3: lambda i: (left(i, line) + prev[i]) >> 1,
        4: lambda i: _paeth(left(i, line), prev[i], left(i, prev)),
    }
    predict = predictors[kind]
    return bytes((line[i] - predict(i)) & 0xFF for i in range(len(line)))


def encode_png(width: int, rows: Sequence[bytes], channels: int, filters: Sequence[int]) -> bytes:
    def chunk(kind: bytes, body: bytes) -> bytes:
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))

    header = struct.pack(">IIBBBBB", width, len(rows), 8, 2 if channels == 3 else 6, 0, 0, 0)
    raw, prev = b"", bytes(width * channels)
    for row, kind in zip(rows, filters, strict=True):
        raw += bytes([kind]) + _filter(kind, row, prev, channels)
        prev = row
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", zlib.compress(raw)) + chunk(b"IEND", b"")


@pytest.mark.parametrize("channels", [3, 4])
def test_the_png_decoder_undoes_all_five_filters(channels: int) -> None:
    rng = random.Random(channels)
    width, filters = 7, [0, 1, 2, 3, 4, 4, 3, 2, 1, 0]
    rows = [bytes(rng.randrange(256) for _ in range(width * channels)) for _ in filters]
    image = decode_png(encode_png(width, rows, channels, filters))
    assert (image.width, image.height, image.channels) == (width, len(filters), channels)
    assert list(image.rows) == rows
    with pytest.raises(ValueError, match="bad signature"):
        decode_png(b"GIF89a" + bytes(20))


# -- Chromium ------------------------------------------------------------------------------------
def _hex(colour: str) -> tuple[int, int, int]:
    value = colour.removeprefix("#")
    return int(value[0:2], 16), int(value[2:4], 16), int(value[4:6], 16)


@pytest.fixture(scope="module")
def chromium() -> Path:
    if CHROMIUM.is_file() and os.access(CHROMIUM, os.X_OK):
        return CHROMIUM
    if os.environ.get(SKIP_ENV) == "1":
        pytest.skip(f"{CHROMIUM} is missing and {SKIP_ENV}=1")
    pytest.fail(
        f"{CHROMIUM} is missing: run `make browser` (installs the Debian package chromium), "
        f"or set {SKIP_ENV}=1 to skip the browser tests",
        pytrace=False,
    )


def _chromium(browser: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(
        [str(browser), *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=90,
        check=False,
    )
    tail = "\n".join(proc.stderr.splitlines()[-15:])
    assert proc.returncode == 0, f"chromium exited {proc.returncode}:\n{tail}"
    return proc


def screenshot(browser: Path, page: Path, tmp: Path) -> Image:
    shot = tmp / "shot.png"
    _chromium(browser, tmp / "profile-shot", f"--screenshot={shot}", page.resolve().as_uri())
    assert shot.is_file() and shot.stat().st_size > 0, f"chromium wrote no screenshot {shot}"
    image = decode_png(shot.read_bytes())
    assert (image.width, image.height) == WINDOW
    return image


class _Cells(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        # (date, transition, classes, data-kind, visible text)
        self.cells: list[tuple[str, str, list[str], str | None, str]] = []
        self.quiet: list[str] = []  # dates collapsed to one "nothing recorded" line
        self.bars: list[tuple[str, str]] = []  # (the timeline's date, data-transition) of each rect.phase-bar
        self.timelines: list[str] = []  # data-date of each svg.timeline
        self.findings = 0
        self.refresh: str | None = None
        self._in_findings = False
        self._text: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        a = {k: v or "" for k, v in attrs}
        classes = a.get("class", "").split()
        if tag == "td" and "cell" in classes:
            self.cells.append((a.get("data-date", ""), a.get("data-transition", ""), classes, a.get("data-kind"), ""))
            self._text = []
        if tag == "tr" and "quiet" in classes:
            self.quiet.append(a.get("data-date", ""))
        if tag == "svg" and "timeline" in classes:
            self.timelines.append(a.get("data-date", ""))
        if tag == "rect" and "phase-bar" in classes:
            self.bars.append((self.timelines[-1], a.get("data-transition", "")))
        if tag == "meta" and a.get("http-equiv") == "refresh":
            self.refresh = a.get("content")
        self._in_findings = self._in_findings or (tag == "ul" and a.get("id") == "findings")
        self.findings += tag == "li" and self._in_findings

    def handle_endtag(self, tag: str) -> None:
        self._in_findings = self._in_findings and tag != "ul"
        if tag == "td" and self._text is not None:
            day, transition, classes, kind, _ = self.cells[-1]
            self.cells[-1] = (day, transition, classes, kind, " ".join("".join(self._text).split()))
            self._text = None

    def handle_data(self, data: str) -> None:
        if self._text is not None:
            self._text.append(data + " ")


def dom_cells(browser: Path, page: Path | str, tmp: Path) -> _Cells:
    url = page if isinstance(page, str) else page.resolve().as_uri()
    dom = _chromium(browser, tmp / "profile-dom", "--dump-dom", url).stdout
    assert '<table id="grid">' in dom, dom[:2000]
    parsed = _Cells()
    parsed.feed(dom)
    parsed.close()
    return parsed


def assert_colours_rendered(image: Image, *states: str) -> dict[str, int]:
    counts = image.colours()
    found = {state: counts[_hex(STATE_COLOURS[state][0])] for state in states}
    for state, n in found.items():
        assert n > MIN_PIXELS, f"{state} colour {STATE_COLOURS[state][0]}: {n} pixels (of {sum(counts.values())})"
    return found


# -- a known grid, rendered directly ---------------------------------------------------------------
def _line(
    transition: str,
    decision: str,
    completed: tuple[str, ...],
    trigger_id: str | None = None,
    trigger_status: str | None = None,
) -> PhaseLine:
    expected = ("alpha", "beta", "gamma")
    return PhaseLine(
        transition=transition,
        status=decision,
        generation=1,
        mode=None,
        expected=expected,
        completed=completed,
        missing=tuple(x for x in expected if x not in completed),
        not_counted=(),
        unknown=(),
        decision=decision,
        reason=f"{decision} <because>",
        trigger_id=trigger_id,
        triggered_at=NOW - timedelta(minutes=30) if trigger_id else None,
        trigger_status=trigger_status,
        first_completion_at=NOW - timedelta(hours=2) if completed else None,
    )


# the first column's trigger per row: complete, partial, a deadline tier, and a trigger of no known kind
KINDS = ("complete", "partial", "deadline_exceeded", None)


def _known_grid(day: date, kind: str | None = "complete") -> tuple[PhaseLine, ...]:
    everything = ("alpha", "beta", "gamma")
    return (
        _line(TRANSITIONS[0], "triggered", everything, f"{TRANSITIONS[0]}:{day}:g1", kind),
        _line(TRANSITIONS[1], "blocked", ("alpha",)),
        _line(TRANSITIONS[2], "wait", ("alpha", "beta")),
        _line(TRANSITIONS[3], "wait", ()),
    )


def test_a_known_grid_renders_with_its_colours(chromium: Path, tmp_path: Path) -> None:
    dates = [DAY - timedelta(days=n) for n in range(4)]
    findings = [ActiveFinding("blocked__x", "blocked", "ERROR", "<script>document.title='owned'</script>")]
    page = tmp_path / "status.html"
    lines = {d: _known_grid(d, kind) for d, kind in zip(dates, KINDS, strict=True)}
    page.write_text(render_status_html(NOW, dates, lines, [Heartbeat("monitor", None, 30)], findings))

    image = screenshot(chromium, page, tmp_path)
    # a partial and a deadline-tier trigger are drawn in their own colours, not the complete one's green
    found = assert_colours_rendered(image, "triggered", "partial", "deadline", "blocked", "wait", "none")
    assert found["none"] > MIN_PIXELS  # the fourth column: no completions yet

    dom = dom_cells(chromium, page, tmp_path)
    assert len(dom.cells) == 4 * 4
    assert [c[2][1] for c in dom.cells[:4]] == ["state-triggered", "state-blocked", "state-wait", "state-none"]
    assert [c[0] for c in dom.cells[::4]] == ["2026-01-24", "2026-01-23", "2026-01-22", "2026-01-21"]
    assert [c[3] for c in dom.cells[::4]] == ["triggered", "partial", "deadline", "triggered"]  # data-kind
    assert [c[4].split(" at ")[0] for c in dom.cells[::4]] == [
        "triggered: complete 3/3 done",
        "triggered: partial 3/3 done",
        "triggered: deadline tier 3/3 done",
        "triggered 3/3 done",
    ]
    assert "why: blocked <because>" in dom.cells[1][4]  # the reason is text on the page, not only a tooltip
    assert "at 09:30 ET after 90 min (first completion 08:00 ET)" in dom.cells[0][4]
    assert dom.findings == 1


def _hue(colour: tuple[int, int, int]) -> float:
    import colorsys

    return 360 * colorsys.rgb_to_hsv(*(c / 255 for c in colour))[0]


def test_the_seeded_night_partial_is_amber_blocked_red_and_its_timeline_has_one_bar_per_phase(
    chromium: Path, tmp_path: Path
) -> None:
    """The real-looking night (tests/support/seeded_night.py, the page docs/operations.md shows): the
    partial cell is drawn amber and the blocked one red (screenshot pixels), the finding comes first,
    and the night's SVG has one phase bar per transition."""
    from tests.support.seeded_night import render as seeded_render
    from tests.support.seeded_night import seed

    page = tmp_path / "seeded.html"
    page.write_text(seeded_render())
    counts = screenshot(chromium, page, tmp_path).colours()
    amber, red = _hex(STATE_COLOURS["partial"][0]), _hex(STATE_COLOURS["blocked"][0])
    assert 30 <= _hue(amber) <= 50 and min(amber[:2]) > 150  # amber: orange-yellow, bright — not green
    assert _hue(red) < 10 or _hue(red) > 350
    assert counts[amber] > MIN_PIXELS, counts.most_common(12)
    assert counts[red] > MIN_PIXELS, counts.most_common(12)

    dom = dom_cells(chromium, page, tmp_path)
    transitions = [t.name for t in seed().definition.transitions]
    assert dom.timelines[0] == "2026-01-24"
    assert [t for d, t in dom.bars if d == "2026-01-24"] == transitions  # one bar per phase of the night
    assert dom.quiet == [f"2026-01-{n}" for n in range(22, 17, -1)]
    assert dom.findings == 1
    cells = {(d, t): (classes[1], kind) for d, t, classes, kind, _ in dom.cells}
    assert cells[("2026-01-24", "phase2_to_phase3")] == ("state-triggered", "partial")
    assert cells[("2026-01-23", "phase2_to_phase3")][0] == "state-blocked"


def test_the_served_page_renders_in_chromium_and_reloads_itself(chromium: Path, tmp_path: Path) -> None:
    """``phasectl status --serve``: Chromium loads the page from the local server, fresh per request."""
    dates = [DAY - timedelta(days=n) for n in range(2)]
    renders: list[int] = []

    def render() -> str:
        renders.append(1)
        return render_status_html(NOW, dates, {d: _known_grid(d, "partial") for d in dates}, [], [])

    server = start_in_thread(render, refresh_seconds=30)
    try:
        assert server.url.startswith("http://127.0.0.1:")
        dom = dom_cells(chromium, server.url, tmp_path)
    finally:
        server.close()
    assert renders  # rendered on request
    assert dom.refresh == "30"
    assert len(dom.cells) == 2 * 4
    assert [(c[2][1], c[3]) for c in dom.cells[::4]] == [("state-triggered", "partial")] * 2
    assert all("why: " in c[4] for c in dom.cells)


# -- the real command against the emulators ----------------------------------------------------------
@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


@pytest.fixture
def phasectl(rig: Rig, tmp_path: Path) -> Run:
    return phasectl_runner(rig, tmp_path, NOW_ENV)


def _report_phase2(rig: Rig, day: date, covered: Sequence[str]) -> str:
    rig.seed_games(sources={"bdl": list(covered)}, game_date=day)
    service = rig.services["phase2_to_phase3"]
    kinds = [service.handle_event(rig.event(rig.completion(p, 2, game_date=day))).kind for p in PHASE2]
    return kinds[-1]


def test_phasectl_status_html_renders_the_emulator_state(
    chromium: Path, rig: Rig, phasectl: Run, tmp_path: Path
) -> None:
    """24th: every game covered → triggered. 23rd: 3 of 5 games missing → the breaker blocks. 22nd: nothing."""
    assert _report_phase2(rig, DAY, [g[0] for g in GAMES]) == "triggered"
    assert _report_phase2(rig, DAY - timedelta(days=1), [g[0] for g in GAMES[:2]]) == "blocked"
    finding = Finding("blocked", "ERROR", "phase2_to_phase3 <script>alert(1)</script>", "phase2_to_phase3", DAY)
    AlertManager(rig.definition, firestore_client(rig.cloud.project), rig.clock).process([finding])

    page = tmp_path / "out.html"
    proc = phasectl("status", "--date", "2026-01-24", "--days", "3", "--html", str(page))
    assert proc.returncode == 1, proc.stdout + proc.stderr  # a blocked cell (and no heartbeats)
    columns = len(TRANSITIONS) + len(rig.definition.timed_triggers())  # the sensor too ([[jobs]] are no column)
    assert proc.stdout.splitlines() == [
        f"wrote {page} (3 dates \N{MULTIPLICATION SIGN} {columns} transitions and sensors, 1 findings)"
    ]
    html = page.read_text()
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html and "<script" not in html

    dom = dom_cells(chromium, page, tmp_path)
    assert len(dom.cells) == 2 * columns
    states = {(d, t): classes[1] for d, t, classes, _, _ in dom.cells}
    assert states[("2026-01-24", "grading_readiness")] == "state-none"  # never evaluated
    assert states[("2026-01-24", "phase2_to_phase3")] == "state-triggered"
    assert states[("2026-01-23", "phase2_to_phase3")] == "state-blocked"
    assert dom.quiet == ["2026-01-22"]  # nothing recorded: one line, no grey cells
    # the nights as pictures: the 24th's and the 23rd's, one bar for the phase that has completions
    assert dom.timelines == ["2026-01-24", "2026-01-23"]
    assert dom.bars == [("2026-01-24", "phase2_to_phase3"), ("2026-01-23", "phase2_to_phase3")]
    assert dom.findings == 1
    assert_colours_rendered(screenshot(chromium, page, tmp_path), "triggered", "blocked", "none")


def test_the_live_page_counts_what_phasectl_status_counts_on_the_emulators(
    chromium: Path, rig: Rig, phasectl: Run, tmp_path: Path
) -> None:
    """The page as ``status --serve`` builds it — ``collect_status_lines`` over the date documents, the
    retry queue — served and loaded by Chromium. The 22nd triggers partial with 4 of 5 and the fifth
    arrives later: the cell says 5/5 done now, 4/5 at the trigger (the count of the trigger's reason),
    and every cell's count is ``phasectl status --json``'s."""
    from phasectl.status_html import collect_status_lines, done_fraction
    from shared.clock import FixedClock
    from shared.orchestration.state import DateState, TransitionState

    first = "phase2_to_phase3"
    assert _report_phase2(rig, DAY, [g[0] for g in GAMES]) == "triggered"
    early = DAY - timedelta(days=2)
    rig.seed_games(sources={"bdl": [g[0] for g in GAMES]}, game_date=early)
    service = rig.services[first]
    kinds = [service.handle_event(rig.event(rig.completion(p, 2, game_date=early))).kind for p in PHASE2[1:]]
    assert kinds[-1] == "triggered"
    rig.clock.advance(timedelta(minutes=20))
    late = service.handle_event(rig.event(rig.completion(PHASE2[0], 2, game_date=early)))
    assert late.kind == "already_triggered", late
    failed = rig.completion(PHASE2[-1], 2, game_date=DAY - timedelta(days=1), status="failed", error_message="503")
    service.handle_event(rig.event(failed))
    retry_rows = rig.retry_rows()
    assert [(r.processor_name, r.status) for r in retry_rows] == [(PHASE2[-1], "pending")]

    settings = rig.definition.pipeline
    fs = firestore_client(rig.cloud.project)

    def load(name: str, day: date) -> DateState:
        state = TransitionState(
            fs, settings.state_collection, name, quarantine_collection=settings.quarantine_collection
        )
        return state.load(day)

    dates = [DAY - timedelta(days=n) for n in range(3)]

    def render() -> str:
        got = collect_status_lines(rig.definition, load, FixedClock(NOW), dates)
        return render_status_html(
            NOW,
            dates,
            got.lines_by_date,
            [],
            [],
            counts=got.counts,
            retry_rows=retry_rows,
            dead_letters=[],
            timezone=settings.timezone,
        )

    server = start_in_thread(render, refresh_seconds=30)
    try:
        dom = dom_cells(chromium, server.url, tmp_path)
    finally:
        server.close()
    cells = {(d, t): (classes[1], kind, text) for d, t, classes, kind, text in dom.cells}

    for day in dates:
        proc = phasectl("status", "--date", day.isoformat(), "--json")
        for p in json.loads(proc.stdout)["transitions"]:
            _, _, text = cells[(day.isoformat(), p["transition"])]
            assert text.split(" done")[0].endswith(done_fraction(p["expected"], p["completed"])), (day, p, text)

    state, kind, text = cells[(early.isoformat(), first)]
    assert (state, kind) == ("state-triggered", "partial")
    assert text.startswith("triggered: partial 5/5 done now; 4/5 done at the trigger at Jan 25 09:00 ET after 0 min")
    assert "why: all critical done and 4/5 (≥60%) of critical+optional" in text
    state, kind, text = cells[(DAY.isoformat(), first)]
    assert (state, kind) == ("state-triggered", "triggered")
    assert text.startswith("triggered: complete 5/5 done, as at the trigger at 09:00 ET")
    assert dom.refresh == "30"


def test_the_history_chart_draws_30_points_in_chromium(chromium: Path, tmp_path: Path) -> None:
    """Issue 28's done-when: the history chart has 30 points from a seeded month of
    ``phase_execution_log`` rows, as Chromium parses and paints it (the SVG text is checked on the
    emulators in tests/phasectl/test_slo_emulators.py)."""
    import re
    from types import SimpleNamespace

    from phasectl.page_history import COLORS, render
    from phasectl.timefmt import TimeView
    from shared.clock import FixedClock
    from shared.monitor.slo import build_history
    from shared.pipeline.definition import load_definition

    END, NOW = date(2026, 1, 30), datetime(2026, 1, 31, 17, tzinfo=UTC)
    definition = load_definition()
    times = TimeView.of(definition.pipeline.timezone)
    ctx = SimpleNamespace(definition=definition, clock=FixedClock(NOW), times=times, now=lambda: NOW)

    rows = [
        {
            "phase_name": "phase5_to_phase6",
            "game_date": END - timedelta(days=n),
            "status": "complete",
            "trigger_id": f"phase5_to_phase6:{END - timedelta(days=n)}:g1",
            "execution_timestamp": datetime(2026, 1, 31, 13, tzinfo=UTC) - timedelta(days=n, minutes=3 * n),
            "duration_seconds": 3600.0,
        }
        for n in range(30)
    ]
    games = {END - timedelta(days=n): 3 for n in range(30)}
    history = build_history(ctx.definition, rows, END - timedelta(days=29), END, NOW, games=games)
    section = render(ctx, history, END)
    chart = section[section.index("<svg", section.index('id="history-phase5_to_phase6"')) :]
    chart = chart[: chart.index("</svg>") + len("</svg>")]
    page = tmp_path / "history.html"
    page.write_text(f'<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"></head><body>{chart}</body></html>')

    dom = _chromium(chromium, tmp_path / "profile-dom", "--dump-dom", page.resolve().as_uri()).stdout
    assert len(re.findall(r'<circle class="on-time"', dom)) == 30, dom[:2000]
    image = screenshot(chromium, page, tmp_path)
    assert image.colours()[_hex(COLORS["on-time"])] > 30 * 20  # 30 painted dots of radius 4
