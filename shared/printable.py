"""``printable(text)``: a stored value made safe to print on a terminal; ``one_line`` folds it onto one line.

A processor name, a reason or a log line comes from Firestore, BigQuery or Pub/Sub, where anyone
who can write there chose it. Printed raw, ``"\\x1b[2J"`` clears the operator's screen, ``"\\r"``
overwrites the line it is on and ``"\\u202e"`` reverses what follows. Every C0 and C1 control
character (ESC included, so no escape sequence survives), DEL and the Unicode bidirectional
formatting characters become a visible escape (``\\x1b``, ``\\r``, ``\\u202e``); newline and tab
are kept. A backslash is kept as it is: the output is for reading, not for parsing back
(``--json`` is for that, and ``json.dumps`` escapes control characters itself).
"""

from __future__ import annotations

_NAMED = {"\r": "\\r", "\b": "\\b", "\f": "\\f", "\v": "\\v", "\0": "\\0"}
_BIDI = (0x061C, 0x200E, 0x200F, *range(0x202A, 0x202F), *range(0x2066, 0x206A))


def _escape(code: int) -> str:
    char = chr(code)
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{code:02x}" if code <= 0xFF else f"\\u{code:04x}"


_TABLE = {code: _escape(code) for code in (*range(0x20), 0x7F, *range(0x80, 0xA0), *_BIDI) if chr(code) not in "\n\t"}


def printable(text: object) -> str:
    """``text`` (``str()`` of it) with control and bidi characters shown as escapes; ``\\n`` and ``\\t`` kept."""
    return str(text).translate(_TABLE)


def one_line(text: object, limit: int | None = None) -> str:
    """``str(text)`` on one line: every run of white space (newlines included) becomes one space; at most
    ``limit`` characters (an error message that was a whole traceback stays one readable line)."""
    folded = " ".join(str(text).split())
    return folded if limit is None else folded[:limit]


def printable_line(text: object) -> str:
    """``printable`` on one line: newlines and tabs shown as escapes too."""
    return printable(text).replace("\n", "\\n").replace("\t", "\\t")
