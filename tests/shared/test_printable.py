"""``printable``: invisible and ambiguous characters become visible escapes (issue 25).

A zero-width space after a processor name made ``player_game_summary\\u200b`` print exactly like
the real processor. Control characters were escaped already (tests/phasectl/test_printable.py);
format characters (Unicode ``Cf``), line/paragraph separators, default-ignorable code points,
surrogates, private-use and unassigned code points are escaped the same way now.
"""

from __future__ import annotations

import sys
import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.printable import printable, printable_line

HIDDEN_CATEGORIES = {"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"}


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("player_game_summary\u200b", "player_game_summary\\u200b"),  # zero-width space
        ("\u200eplayer_game_summary", "\\u200eplayer_game_summary"),  # left-to-right mark
        ("abc\u202edef", "abc\\u202edef"),  # right-to-left override
        ("\ufeffplayer_game_summary", "\\ufeffplayer_game_summary"),  # byte order mark / ZWNBSP
        ("player\u2060_game", "player\\u2060_game"),  # word joiner
        ("player\u00ad_game", "player\\xad_game"),  # soft hyphen
        ("a\u200cb\u200dc", "a\\u200cb\\u200dc"),  # zero-width non-joiner / joiner
        ("a\u2064b", "a\\u2064b"),  # invisible plus
        ("a\u2028b\u2029c", "a\\u2028b\\u2029c"),  # line / paragraph separator
        ("x\U000e0041\U000e007f", "x\\U000e0041\\U000e007f"),  # tag characters (invisible ASCII)
        ("x\U0001d173", "x\\U0001d173"),  # musical symbol begin beam (Cf beyond the BMP)
        ("a\ufe0fb\U000e0100c", "a\\ufe0fb\\U000e0100c"),  # variation selectors (default-ignorable)
        ("a\u3164b\u115fc\u034fd", "a\\u3164b\\u115fc\\u034fd"),  # Hangul fillers, grapheme joiner
        ("a\ud800b", "a\\ud800b"),  # a lone surrogate: not even encodable for a terminal
        ("a\ue000b\U000f0000", "a\\ue000b\\U000f0000"),  # private use
        ("a\u0378b\uffffc\U0010fffe", "a\\u0378b\\uffffc\\U0010fffe"),  # unassigned, noncharacters
        ("done\rFAILED\x1b[2J\x85", "done\\rFAILED\\x1b[2J\\x85"),  # control characters, as before
        ("line one\nline\ttwo", "line one\nline\ttwo"),  # newline and tab are kept
        ("joueur_é_🏀 北京 naïve", "joueur_é_🏀 北京 naïve"),  # letters, emoji and CJK are kept
        ("no\u00a0break\u2009thin\u3000wide", "no\u00a0break\u2009thin\u3000wide"),  # spaces look like spaces
    ],
)
def test_printable_shows_invisible_and_ambiguous_characters_as_escapes(raw: str, shown: str) -> None:
    assert printable(raw) == shown
    assert printable(shown) == shown  # nothing left to escape


def test_printable_line_escapes_format_characters_too() -> None:
    assert printable_line("a\u200b\nb\u2028") == "a\\u200b\\nb\\u2028"


def _escaped(char: str) -> bool:
    return printable(char) != char


def test_every_format_character_and_separator_is_escaped() -> None:
    """All of Unicode: every Cf, Zl, Zp, Cc (but newline and tab) character is escaped."""
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category in HIDDEN_CATEGORIES and char not in "\n\t":
            assert _escaped(char), f"U+{code:04X} ({category}) printed raw"


def test_letters_marks_symbols_and_spaces_are_kept() -> None:
    """What is drawn is kept: letters, digits, punctuation, symbols, spaces and (but the default-ignorable
    ones) marks."""
    ignorable = {0x034F, *range(0x17B4, 0x17B6), *range(0x180B, 0x1810), *range(0xFE00, 0xFE10)}
    ignorable |= {0x115F, 0x1160, 0x3164, 0xFFA0, *range(0xE0100, 0xE01F0)}
    for code in range(sys.maxunicode + 1):
        char = chr(code)
        category = unicodedata.category(char)
        if category not in HIDDEN_CATEGORIES and code not in ignorable:
            assert not _escaped(char), f"U+{code:04X} ({category}) escaped"


def test_escapes_are_unambiguous_by_length() -> None:
    assert printable("\x7f\x9b\u0600\U000e0001") == "\\x7f\\x9b\\u0600\\U000e0001"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_nothing_hidden_survives_and_printing_twice_changes_nothing(text: str) -> None:
    shown = printable(text)
    assert all(unicodedata.category(c) not in HIDDEN_CATEGORIES or c in "\n\t" for c in shown)
    assert printable(shown) == shown
    shown.encode("utf-8")  # a terminal can be given it (no lone surrogate left)
