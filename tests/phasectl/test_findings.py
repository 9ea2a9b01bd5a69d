"""``phasectl findings`` and the findings of ``status`` and the page, rendered (issue 28) — unit tests, no emulator."""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from zoneinfo import ZoneInfo

from phasectl.commands.findings import finding_lines, ordered, status_findings_lines, unacknowledged_alarms
from phasectl.status_html import ActiveFinding, _findings
from phasectl.timefmt import TimeView

NY = ZoneInfo("America/New_York")
ET = TimeView.of("America/New_York")
FIRST = datetime(2026, 1, 25, 6, 12, tzinfo=UTC)  # 01:12 ET
ACKED = datetime(2026, 1, 25, 7, 0, tzinfo=UTC)  # 02:00 ET
DAY = date(2026, 1, 24)

GATE = ActiveFinding(
    "gate_alert__phase2_to_phase3__2026-01-24",
    "gate_alert",
    "WARNING",
    "phase2_to_phase3 2026-01-24: triggered with a gate under its alert line: game_coverage: 6/7",
    "phase2_to_phase3",
    "2026-01-24",
    FIRST,
    "docs/operations.md#gate_alert",
    "phasectl reconcile --date 2026-01-24",
)
ACKED_BLOCK = ActiveFinding(
    "blocked__phase3_to_phase4__2026-01-24",
    "blocked",
    "ERROR",
    "phase3_to_phase4 2026-01-24: blocked",
    "phase3_to_phase4",
    "2026-01-24",
    FIRST,
    "docs/operations.md#blocked",
    "phasectl status --date 2026-01-24",
    acked_by="ana",
    acked_at=ACKED,
    ack_note="upstream re-run at 9",
)
OPEN_ERROR = ActiveFinding(
    "retry_heartbeat_stale", "retry_heartbeat_stale", "ERROR", "auto-retry last ran never", command="phasectl health"
)


def test_acknowledged_findings_sort_after_the_unacknowledged_of_their_severity() -> None:
    info = ActiveFinding("a_info", "x", "INFO", "")
    assert ordered([info, GATE, ACKED_BLOCK, OPEN_ERROR]) == [OPEN_ERROR, ACKED_BLOCK, GATE, info]
    assert unacknowledged_alarms([GATE, ACKED_BLOCK, OPEN_ERROR]) == [OPEN_ERROR]
    assert unacknowledged_alarms([GATE, ACKED_BLOCK]) == []


def test_a_finding_as_text_has_its_fix_runbook_and_acknowledgement_in_et() -> None:
    assert finding_lines(ACKED_BLOCK, ET) == [
        "ERROR blocked 2026-01-24 phase3_to_phase4 (first seen 2026-01-25 01:12 ET)",
        "  blocked",
        "  fix:     phasectl status --date 2026-01-24",
        "  runbook: docs/operations.md#blocked",
        "  acknowledged by ana at 2026-01-25 02:00 ET: upstream re-run at 9",
        "  key:     blocked__phase3_to_phase4__2026-01-24",
    ]
    utc = finding_lines(ACKED_BLOCK, TimeView.of("America/New_York", utc=True))
    assert utc[0].endswith("(first seen 2026-01-25 06:12 UTC)")
    # a record written before commands were stored: the fields say so, nothing is invented
    assert finding_lines(ActiveFinding("k", "stuck", "WARNING", "m"), ET)[1:4] == [
        "  m",
        "  fix:     -",
        "  runbook: -",
    ]


def test_status_shows_the_dates_findings_and_counts_the_others() -> None:
    lines = status_findings_lines([OPEN_ERROR, GATE, ACKED_BLOCK], DAY, ET)
    assert lines[1] == "active findings for 2026-01-24 (2):"
    assert "    fix:     phasectl reconcile --date 2026-01-24" in lines
    assert "    runbook: docs/operations.md#gate_alert" in lines
    assert lines[2].startswith("  ERROR blocked") and any(line.startswith("  WARNING gate_alert") for line in lines)
    assert lines[-1] == "1 other active finding(s) (other dates, or none): phasectl findings"
    assert status_findings_lines([OPEN_ERROR], DAY, ET)[1:] == [
        "active findings for 2026-01-24: none",
        "1 other active finding(s) (other dates, or none): phasectl findings",
    ]
    assert status_findings_lines([], DAY, ET) == ["", "active findings for 2026-01-24: none"]


def test_the_page_links_the_runbook_shows_the_command_escaped_and_marks_the_acknowledged() -> None:
    evil = ActiveFinding(
        "k",
        "gate_alert",
        "ERROR",
        "m",
        runbook="javascript:alert(1)",
        command="phasectl games postpone '<b>x</b>' --reason \"…\"",
    )
    page = _findings([GATE, ACKED_BLOCK, OPEN_ERROR, evil], NY)

    assert page.startswith("<h2>Active findings (4, 1 acknowledged)</h2>")
    keys = re.findall(r'data-key="([^"]+)"', page)
    assert keys == ["k", "retry_heartbeat_stale", ACKED_BLOCK.key, GATE.key]  # acknowledged after open ERRORs
    gate = page.splitlines()[-2]
    assert '<a class="runbook" href="docs/operations.md#gate_alert">runbook</a>' in gate
    assert '<code class="command">phasectl reconcile --date 2026-01-24</code>' in gate
    (acked,) = [line for line in page.splitlines() if ACKED_BLOCK.key in line]
    assert 'class="finding sev-error acked"' in acked
    assert '<span class="ack">acknowledged by ana at Jan 25 02:00 ET: upstream re-run at 9</span>' in acked
    (bad,) = [line for line in page.splitlines() if 'data-key="k"' in line]
    assert "<b>" not in bad and "&lt;b&gt;x&lt;/b&gt;" in bad and "&quot;…&quot;" in bad
    assert "href" not in bad and 'runbook: <span class="runbook">javascript:alert(1)</span>' in bad


def test_a_findings_line_says_the_transition_and_date_once() -> None:
    """The page read "silent 2026-01-24 phase2_to_phase3: phase2_to_phase3 2026-01-24: 7 Final game(s) …"."""
    from phasectl.status_html import ActiveFinding

    f = ActiveFinding(
        key="silent__phase2_to_phase3__2026-01-24",
        kind="silent",
        severity="ERROR",
        message="phase2_to_phase3 2026-01-24: 7 Final game(s) in the schedule but no completion at all",
        transition="phase2_to_phase3",
        game_date="2026-01-24",
    )
    assert f.text == "7 Final game(s) in the schedule but no completion at all"
    other = ActiveFinding(key="k", kind="gap", severity="WARNING", message="2 gap date(s)", game_date="2026-01-24")
    assert other.text == "2 gap date(s)"
