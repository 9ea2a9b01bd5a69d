"""The night as a picture (``phasectl.page_timeline``): pure, data in and SVG text out."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from phasectl.page_timeline import BAND_FROM, night_of, render_timeline
from phasectl.status_html import collect_status_lines, nights_of
from shared.clock import FixedClock
from shared.orchestration.state import DateState
from tests.support.seeded_night import DAY, NOW, Seeded, et, seed

NY = ZoneInfo("America/New_York")
SVG = "{http://www.w3.org/2000/svg}"


def svg_of(seeded: Seeded, day: date = DAY, now: datetime = NOW) -> ET.Element:
    got = collect_status_lines(seeded.definition, seeded.load, FixedClock(now), [day])
    nights = nights_of(seeded.definition, got.states, got.lines_by_date, now, NY, seeded.retry_rows, firings_on=day)
    return ET.fromstring(render_timeline(nights[day], NY))


def elements(svg: ET.Element, tag: str, cls: str) -> list[ET.Element]:
    return [e for e in svg.iter(f"{SVG}{tag}") if cls in (e.get("class") or "").split()]


def title(e: ET.Element) -> str:
    found = e.find(f"{SVG}title")
    assert found is not None, ET.tostring(e)
    return found.text or ""


def test_one_bar_per_phase_from_its_first_to_its_last_completion() -> None:
    seeded = seed()
    svg = svg_of(seeded)
    bars = elements(svg, "rect", "phase-bar")
    assert [b.get("data-transition") for b in bars] == [t.name for t in seeded.definition.transitions]
    p2 = bars[0]
    assert "state-partial" in (p2.get("class") or "")  # coloured as its cell: amber
    assert p2.get("fill") == "#ffa000"
    # 4 completions 41 min apart from 23:05 ET: 23:05 … 01:08 ET
    assert title(p2) == ("phase2_to_phase3: first completion 23:05 ET, last 01:08 ET (4 completions, over 2 h 3 min)")
    widths = [float(b.get("width") or 0) for b in bars]
    assert widths[0] > widths[1] > 0  # phase 2 took longest
    x = [float(b.get("x") or 0) for b in bars]
    assert x == sorted(x)  # phases follow each other on the one axis


def test_each_trigger_is_a_marker_with_its_kind_and_the_gates_and_tiers_are_drawn() -> None:
    svg = svg_of(seed())
    triggers = {t.get("data-transition"): t for t in elements(svg, "polygon", "trigger")}
    assert {k: t.get("data-kind") for k, t in triggers.items()} == {
        "phase2_to_phase3": "partial",
        "phase3_to_phase4": "complete",
        "phase4_to_phase5": "deadline_exceeded",
        "phase5_to_phase6": "complete",
    }
    assert title(triggers["phase2_to_phase3"]).startswith(
        "phase2_to_phase3 triggered (partial) at 01:12 ET: phase2_to_phase3:2026-01-24:g1"
    )
    (gate,) = elements(svg, "rect", "gate")
    assert (gate.get("data-gate"), gate.get("data-verdict")) == ("game_coverage", "alert")
    assert title(gate).startswith("gate game_coverage (phase2_to_phase3): alert 85.7% at 01:12 ET")
    assert "its duration is not recorded" in title(gate)
    tiers = elements(svg, "line", "deadline-tier")
    assert [(t.get("data-transition"), t.get("data-tier")) for t in tiers] == [
        ("phase4_to_phase5", str(n)) for n in (1, 2, 3)
    ]
    assert "60 min after the first completion (03:20 ET) it fires with ≥4 done" in title(tiers[0])


def test_retries_firings_and_now_are_on_the_same_axis() -> None:
    svg = svg_of(seed())
    retries = elements(svg, "circle", "retry")
    assert [(r.get("data-event"), r.get("data-status")) for r in retries] == [
        ("first failure", "pending"),
        ("last retry", "pending"),
        ("next try", "pending"),
    ]
    assert title(retries[2]) == "retry bdl_player_boxscores (pending, 1/3): next try 10:15 ET"
    firings = elements(svg, "line", "firing")
    assert firings, "the definition's one-off jobs fire in the night"
    six = [f for f in firings if title(f).startswith("scheduled 06:00 ET: ")]
    assert len(six) == 1 and int(six[0].get("data-jobs") or 0) > 1  # the jobs of one instant share a tick
    bands = elements(svg, "rect", "firing-band")
    assert all(int(b.get("data-count") or 0) >= BAND_FROM for b in bands)
    assert any(b.get("data-job") == "live-export-evening" for b in bands)
    (now,) = elements(svg, "line", "now")
    assert title(now) == "now 09:00 ET"
    # one axis: the trigger at 01:12 ET is left of the now line at 09:00 ET, the next try at 10:15 right of it
    (p2,) = [t for t in elements(svg, "polygon", "trigger") if t.get("data-transition") == "phase2_to_phase3"]
    trigger_x = float((p2.get("points") or "").split(",")[0])
    assert trigger_x < float(now.get("x1") or 0) < float(retries[2].get("cx") or 0)


def test_every_generation_stays_visible_and_the_window_widens_to_what_was_recorded() -> None:
    seeded = seed()
    name = "phase2_to_phase3"
    state = seeded.load(name, DAY)
    late = et(26, 14, 0)  # a forced re-run the day after
    g2 = {"trigger_id": f"{name}:{DAY}:g2", "at": late, "status": "complete", "reason": "forced"}
    states = {
        name: DateState(name, DAY, 2, "triggered", {**state.triggered, "2": g2}, None, (), None, state.completions)
    }
    night = night_of(seeded.definition, DAY, states, NOW, NY, firings=False)
    assert [t.trigger_id for t in night.triggers] == [f"{name}:{DAY}:g1", f"{name}:{DAY}:g2"]
    assert night.end == late and night.start == datetime(2026, 1, 24, 17, 0, tzinfo=UTC)  # noon ET
    svg = ET.fromstring(render_timeline(night, NY))
    assert len(elements(svg, "polygon", "trigger")) == 2
    assert not elements(svg, "line", "firing")  # firings=False
    assert not elements(svg, "line", "now") or NOW <= late


def test_a_night_without_anything_has_no_bar_and_every_text_is_escaped() -> None:
    seeded = seed()
    evil = "<script>x</script>"
    night = night_of(seeded.definition, date(2026, 1, 20), {}, NOW, NY, firings=False)
    out = render_timeline(night, NY)
    assert "phase-bar" not in out and 'class="now"' not in out  # now is not within the 20th's night
    bad = DateState(evil, DAY, 1, "waiting", {"1": {"at": NOW, "trigger_id": evil, "status": evil}}, None, (), None)
    night = night_of(seeded.definition, DAY, {"phase2_to_phase3": bad}, NOW, NY, firings=False)
    out = render_timeline(night, NY)
    assert "<script" not in out and "&lt;script&gt;" in out
    ET.fromstring(out)  # well-formed


def test_times_follow_the_zone_given() -> None:
    got = seed()
    lines = collect_status_lines(got.definition, got.load, FixedClock(NOW), [DAY])
    utc = ZoneInfo("UTC")
    nights = nights_of(got.definition, lines.states, lines.lines_by_date, NOW, utc)
    out = render_timeline(nights[DAY], utc, "UTC")
    assert "first completion Jan 25 04:05 UTC" not in out  # the night's days are shown without a date
    assert "first completion 04:05 UTC" in out
    assert not re.search(r"\d\d:\d\d ET", out)
    assert nights[DAY].start == datetime(2026, 1, 24, 12, tzinfo=UTC)
    assert nights[DAY].start + timedelta(days=1) <= nights[DAY].end
