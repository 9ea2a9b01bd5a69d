"""The field types every message shares, each with its validator and its JSON Schema.

Explicit dates (never "TODAY", lesson L14: a relative date resolved in the wrong timezone lost
most predictions, so a message carries ``YYYY-MM-DD``), timestamps with a timezone offset,
phase numbers in the spellings real publishers send, and bounded names. The message models are
in ``shared.contracts.messages``.
"""

from __future__ import annotations

import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BeforeValidator, Field, StringConstraints, WithJsonSchema

_MAX_SHOWN = 60  # longest input echoed back in an error message

# "2", "phase2", "phase_2" (any case), and the replaced system's own strings "phase_2_raw",
# "phase_3_analytics", "phase_4_precompute", "phase_5_predictions" (its processor bases pass
# them to UnifiedPubSubPublisher: data_processors/raw/processor_base.py:1806,
# analytics/analytics_base.py:1641, precompute/base/precompute_base.py:642,
# predictions/coordinator/coordinator.py:3944 at najicham/nba-stats-scraper@18f6ecfe). Only the
# number matters. Spelled with character classes so that the same pattern is valid in the
# exported JSON Schema (ECMA-262 has no inline flags).
_PHASE_TEXT = r"^(?:[Pp][Hh][Aa][Ss][Ee]_?)?([1-9])(?:_[A-Za-z][A-Za-z0-9_]*)?$"
_PHASE_TEXT_RE = re.compile(_PHASE_TEXT)
_ISO_DATE_RE = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
_RELATIVE_DATE_WORDS = frozenset({"today", "yesterday", "tomorrow", "now"})


def shown(value: object) -> str:
    """``repr(value)``, cut to 60 characters: how an error message echoes its input."""
    text = repr(value)
    return text if len(text) <= _MAX_SHOWN else text[: _MAX_SHOWN - 3] + "..."


def _coerce_phase(value: object) -> object:
    """Accept 2, "2", "phase2", "phase_2"; leave other ints to the range check."""
    if isinstance(value, bool):
        raise ValueError("phase must be a number 1..9, not a boolean")
    if isinstance(value, str):
        match = _PHASE_TEXT_RE.fullmatch(value)
        if match is None:
            raise ValueError(f"phase must be 1..9 or a string like '2', 'phase_2' or 'phase_2_raw'; got {shown(value)}")
        return int(match.group(1))
    return value


def explicit_date(value: object) -> date:
    """Accept only a ``date`` or an explicit ``YYYY-MM-DD`` string (never "TODAY")."""
    if isinstance(value, datetime):
        raise ValueError("expected a date (YYYY-MM-DD), got a datetime")
    if isinstance(value, date):
        return value
    if isinstance(value, str):
        if _ISO_DATE_RE.fullmatch(value):
            try:
                return date.fromisoformat(value)
            except ValueError:
                raise ValueError(f"{shown(value)} is not a real calendar date") from None
        if value.strip().lower() in _RELATIVE_DATE_WORDS:
            raise ValueError(
                f"relative date {shown(value)} is not allowed in a message; "
                "the publisher must resolve it to an explicit YYYY-MM-DD date"
            )
        raise ValueError(f"expected an explicit YYYY-MM-DD date, got {shown(value)}")
    kind = "null" if value is None else type(value).__name__
    raise ValueError(f"expected an explicit YYYY-MM-DD date string, got {kind}")


def _require_timezone(value: datetime) -> datetime:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError("datetime has no timezone (naive); send ISO 8601 with an offset, e.g. 2026-01-25T08:12:45Z")
    try:
        value.astimezone(UTC)  # 9999-12-31T23:30-01:00 is valid ISO but overflows in UTC (and in storage)
    except OverflowError:
        raise ValueError(f"{value.isoformat()} is out of range when converted to UTC") from None
    return value


NonEmptyStr = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1)]
PhaseNumber = Annotated[int, Field(ge=1, le=9)]
LenientPhaseNumber = Annotated[
    int,
    BeforeValidator(_coerce_phase),
    Field(ge=1, le=9),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 1, "maximum": 9},
                {"type": "string", "pattern": _PHASE_TEXT},
            ],
            "description": "Phase number 1..9; also accepted as '2', 'phase2', 'phase_2' or 'phase_2_raw'.",
        }
    ),
]
ExplicitDate = Annotated[date, BeforeValidator(explicit_date)]


def _no_epoch_number(value: Any) -> Any:
    """A number is not a timestamp here: seconds or milliseconds, and in which zone? (The replaced
    processors send ``datetime.now(timezone.utc).isoformat()`` strings.)"""
    if isinstance(value, (int, float)):
        raise ValueError("a timestamp must be an ISO 8601 string with a timezone offset, not a number")
    return value


AwareTimestamp = Annotated[datetime, BeforeValidator(_no_epoch_number), AfterValidator(_require_timezone)]
# Longest processor name accepted (longer is quarantined: it would bloat every transaction, L22).
MAX_PROCESSOR_NAME = 200
BoundedName = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=MAX_PROCESSOR_NAME)]
