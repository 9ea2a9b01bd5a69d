"""Stored values printed in text mode cannot drive the operator's terminal (control characters escaped)."""

from __future__ import annotations

import io
import json
from datetime import UTC, date, datetime

import pytest

from phasectl import Context, main
from phasectl.report import PhaseLine, StatusReport, format_table
from shared.clock import FixedClock
from shared.pipeline.definition import load_definition
from shared.printable import printable, printable_line

RED = "\x1b[31m"  # an SGR escape sequence, as a processor name could carry it
NOW = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        (f"player_game_summary{RED}", "player_game_summary\\x1b[31m"),
        ("\x1b]0;pwned\x07title", "\\x1b]0;pwned\\x07title"),  # OSC: set the window title
        ("\x1b[2J\x1b[H", "\\x1b[2J\\x1b[H"),  # clear the screen
        ("done\rFAILED", "done\\rFAILED"),  # a carriage return would overwrite the line
        ("a\bb\x00c\x7fd", "a\\bb\\0c\\x7fd"),
        ("\x9b31m", "\\x9b31m"),  # C1 CSI
        ("abc\u202edef", "abc\\u202edef"),  # a bidi override reverses what follows
        ("line one\nline\ttwo", "line one\nline\ttwo"),  # newline and tab are kept
        ("joueur_é_🏀", "joueur_é_🏀"),
    ],
)
def test_printable_shows_control_characters_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(printable(raw)) == printable(raw)  # nothing left to escape


def test_printable_line_keeps_one_line() -> None:
    assert printable_line(f"a\nb\t{RED}") == "a\\nb\\t\\x1b[31m"
    assert printable(12) == "12"


def test_format_table_escapes_cells_and_aligns_what_is_shown() -> None:
    table = format_table(("PROCESSOR", "N"), [(f"evil{RED}", 1), ("ok", 22)])
    assert "\x1b" not in table
    lines = table.splitlines()
    assert lines[2] == "evil\\x1b[31m  1"
    assert lines[3].index("22") == lines[2].rindex("1")  # the column starts where the shown text ends


def _context(out: io.StringIO) -> Context:
    return Context(load_definition(), FixedClock(NOW), {}, out, io.StringIO())


def test_status_text_escapes_a_processor_name_with_an_escape_sequence() -> None:
    evil = f"player_game_summary{RED}"
    line = PhaseLine(
        transition="phase3_to_phase4",
        status="waiting",
        generation=1,
        mode="all_complete",
        expected=(evil, "team_offense_game_summary"),
        completed=("team_offense_game_summary",),
        missing=(evil,),
        not_counted=(),
        unknown=("\x1b]0;pwned\x07",),
        decision="wait",
        reason=f"waiting for {evil}",
        trigger_id=f"t{RED}",
    )
    report = StatusReport(date(2026, 1, 24), NOW, (line,), ())
    out = io.StringIO()
    ctx = _context(out)
    ctx.print(report.render())  # exactly how `phasectl status` prints it
    text = out.getvalue()
    assert "\x1b" not in text and "\x07" not in text
    assert "missing:   player_game_summary\\x1b[31m" in text
    assert "unknown:   \\x1b]0;pwned\\x07" in text
    assert "why:       waiting for player_game_summary\\x1b[31m" in text

    out = io.StringIO()
    _context(out).dump(report.as_dict())  # --json: json.dumps escapes it already, unchanged
    data = json.loads(out.getvalue())
    assert data["transitions"][0]["missing"] == [evil]
    assert "\x1b" not in out.getvalue()


def test_an_error_naming_a_stored_value_is_escaped() -> None:
    out, err = io.StringIO(), io.StringIO()
    code = main(
        ["deploy", "plan", "--project", "my-proj", "--function", f"phase9{RED}\rx"], environ={}, out=out, err=err
    )
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().count("\n") == 1
    assert "\x1b" not in err.getvalue() and "\r" not in err.getvalue()
    assert "phase9\\x1b[31m" in err.getvalue()
