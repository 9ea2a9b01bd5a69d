"""A game as an operator types it: every form phasectl prints a game in is accepted back.

``reconcile --detailed`` prints a game three ways (GAME ``20260124_GSW_MIN``, NBA ID ``0022500644``,
MATCHUP ``GSW@MIN``); ``mark-unavailable`` and ``games postpone|restore`` label it
``20260124_GSW_MIN (GSW@MIN, 0022500644)``; a CSV or an INT64 column leaves ``22500644``. Each of
them (any case, spaces around the separator, an en dash or `` at `` for ``@``, a pasted label)
names the same game. A matchup names teams, not a date: the date comes from ``--date`` or the
schedule's recent nights.

    >>> parse_game_ref(" gsw @ min ")
    GameRef(game_id=None, away='GSW', home='MIN')
    >>> parse_game_ref("LAL\N{EN DASH}DAL").teams
    ('LAL', 'DAL')
    >>> parse_game_ref("20260124_GSW_MIN (GSW@MIN, 0022500644)").game_id
    DateTeamsGameId(game_date=datetime.date(2026, 1, 24), away='GSW', home='MIN')
    >>> parse_game_ref("22500644").game_id.format()
    '0022500644'
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date

from shared.errors import InvalidGameIdError
from shared.game_ids import DateTeamsGameId, GameId, parse_game_id

ACCEPTED_FORMS = (
    "0022500644 (or 22500644), 20260124_GSW_MIN, or a matchup GSW@MIN "
    "(also 'gsw @ min', GSW\N{EN DASH}MIN, GSW-MIN, 'GSW at MIN'; away team first) with --date, "
    "or found on the schedule of the recent nights"
)

# away/home separators as phasectl and the upstream print a matchup: @, an en or em dash, a hyphen, " at "
_MATCHUP = re.compile(r"^\s*([A-Za-z]{2,4})\s*(?:@|\N{EN DASH}|\N{EM DASH}|-|\s+at\s+)\s*([A-Za-z]{2,4})\s*$", re.I)


@dataclass(frozen=True)
class GameRef:
    """Either a game id (the date is known or looked up) or a matchup's teams (the date is needed)."""

    game_id: GameId | None
    away: str | None = None
    home: str | None = None

    @property
    def teams(self) -> tuple[str, str] | None:
        return None if self.away is None or self.home is None else (self.away, self.home)

    def on(self, day: date) -> GameId:
        """The id on ``day``: a matchup becomes ``YYYYMMDD_AWAY_HOME``; an id stays as it is."""
        if self.game_id is not None:
            return self.game_id
        assert self.away is not None and self.home is not None
        return DateTeamsGameId(day, self.away, self.home)


def _error(raw: str, why: str) -> InvalidGameIdError:
    return InvalidGameIdError(f"invalid game {raw.strip()!r}: {why}; accepted: {ACCEPTED_FORMS}", game_id=raw)


def parse_game_ref(raw: str) -> GameRef:
    """Any printed form of a game (see the module); raises ``InvalidGameIdError`` naming the accepted forms."""
    text = raw.strip()
    if "(" in text:  # a pasted label: "20260124_GSW_MIN (GSW@MIN, 0022500644) on 2026-01-24"
        text = text.split("(", 1)[0].strip()
    text = text.strip("`'\"")
    matchup = _MATCHUP.match(text)
    if matchup is not None:
        try:  # tricodes checked (and ESPN's aliases mapped) as a date-teams id checks them
            teams = DateTeamsGameId(date(2000, 1, 1), matchup.group(1), matchup.group(2))
        except InvalidGameIdError as exc:
            raise _error(raw, exc.message.split(": ", 1)[-1]) from None
        return GameRef(None, teams.away, teams.home)
    compact = re.sub(r"\s+", "", text)
    try:
        return GameRef(parse_game_id(compact.upper() if "_" in compact else compact))
    except InvalidGameIdError as exc:
        why = exc.message.split(": ", 1)[-1]
        raise _error(raw, "not a game id or a matchup" if why.startswith("expected") else why) from None
