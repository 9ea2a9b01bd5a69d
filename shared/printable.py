"""``printable(text)``: a stored value made safe to print on a terminal; ``one_line`` folds it onto one line.

A processor name, a reason or a log line comes from Firestore, BigQuery or Pub/Sub, where anyone
who can write there chose it. Printed raw, ``"\\x1b[2J"`` clears the operator's screen, ``"\\r"``
overwrites the line it is on, ``"\\u202e"`` reverses what follows, and ``"\\u200b"`` (a zero-width
space) makes ``player_game_summary\\u200b`` look exactly like the real processor. So every
character that is invisible, or whose look depends on the font or the terminal, becomes a
visible escape (``\\x1b``, ``\\r``, ``\\u202e``, ``\\u200b``, ``\\U000e0041``):

* control characters (Unicode ``Cc``: C0, DEL, C1; ESC included, so no escape sequence survives),
  but newline and tab, which are kept;
* format characters (``Cf``): the bidirectional controls, zero-width space / joiners / word joiner,
  the byte order mark, the soft hyphen, tag characters, invisible operators;
* the line and paragraph separators (``Zl``, ``Zp``: a line break a terminal may or may not draw);
* the other default-ignorable code points (Unicode's ``Default_Ignorable_Code_Point``, drawn as
  nothing: variation selectors, the Hangul fillers, the combining grapheme joiner);
* surrogates (``Cs``: a lone one cannot even be encoded for the terminal), private-use characters
  (``Co``: a glyph only some fonts have) and unassigned code points (``Cn``, noncharacters
  included: nothing defines how they look; a character newer than Python's Unicode database —
  ``unicodedata.unidata_version`` — is shown as its escape too, which is the safe side).

Other spaces (no-break space and the like) look like spaces and are kept. An escape is
``\\xNN`` up to U+00FF, ``\\uNNNN`` in the BMP and ``\\UNNNNNNNN`` beyond (``\\r``, ``\\b``, ``\\f``,
``\\v`` and ``\\0`` by name). A backslash is kept as it is: the output is for reading, not for
parsing back (``--json`` is for that, and ``json.dumps`` escapes control characters itself).
HTML output (the status page) applies ``printable`` before HTML-escaping.
"""

from __future__ import annotations

import unicodedata

_NAMED = {"\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\0": "\\0"}
_KEPT = frozenset("\n\t")
_HIDDEN_CATEGORIES = frozenset({"Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp"})
# Default_Ignorable_Code_Point (DerivedCoreProperties.txt) outside the categories above: drawn as nothing.
_IGNORABLE = frozenset(
    (
        0x034F,  # combining grapheme joiner
        *range(0x115F, 0x1161),  # Hangul choseong / jungseong fillers
        *range(0x17B4, 0x17B6),  # Khmer inherent vowels
        *range(0x180B, 0x1810),  # Mongolian free variation selectors
        0x3164,  # Hangul filler
        *range(0xFE00, 0xFE10),  # variation selectors
        0xFFA0,  # halfwidth Hangul filler
        *range(0xE0100, 0xE01F0),  # variation selectors supplement
    )
)


def _hidden(code: int) -> bool:
    """True for a character ``printable`` shows as an escape (see the module docstring)."""
    char = chr(code)
    if char in _KEPT:
        return False
    return code in _IGNORABLE or unicodedata.category(char) in _HIDDEN_CATEGORIES


def _escape(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    if code <= 0xFF:
        return f"\\x{code:02x}"
    return f"\\u{code:04x}" if code <= 0xFFFF else f"\\U{code:08x}"


_CACHED = 1 << 16  # code points remembered: a text of every character cannot grow the table without end


class _Table(dict[int, str]):
    """``str.translate``'s table: each code point's escape (or itself), decided when first seen (the
    categories of all 1.1 million code points would cost a noticeable start-up) and remembered."""

    def __missing__(self, code: int) -> str:
        shown = _escape(code) if _hidden(code) else chr(code)
        if len(self) < _CACHED:
            self[code] = shown
        return shown


_TABLE = _Table()


def printable(text: object) -> str:
    """``text`` (``str()`` of it) with invisible and ambiguous characters shown as escapes; ``\\n`` and
    ``\\t`` kept."""
    return str(text).translate(_TABLE)


def one_line(text: object, limit: int | None = None) -> str:
    """``str(text)`` on one line: every run of white space (newlines included) becomes one space; at most
    ``limit`` characters (an error message that was a whole traceback stays one readable line)."""
    folded = " ".join(str(text).split())
    return folded if limit is None else folded[:limit]


def printable_line(text: object) -> str:
    """``printable`` on one line: newlines and tabs shown as escapes too."""
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")
