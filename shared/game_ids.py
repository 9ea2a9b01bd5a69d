"""Game ids in their two formats, and conversion between them via a schedule (lesson L15).

* The numeric NBA id ``0022500644``: 10 digits, ``"00"`` + season type digit
  (``SEASON_TYPES``) + 2-digit season start year + 5-digit game number. It encodes
  neither the date nor the teams.
* The date-teams id ``20260124_GSW_MIN``: ``YYYYMMDD_AWAY_HOME`` with NBA tricodes.

Because the numeric id says nothing about date or teams, converting between the two
needs a schedule (``GameIdConverter.from_schedule``). The canonical form, used to join
sources, is the date-teams form.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Final, Self, TypeAlias

from shared.errors import InvalidGameIdError

__all__ = [
    "NBA_TEAMS",
    "SEASON_TYPES",
    "TEAM_CODE_ALIASES",
    "DateTeamsGameId",
    "GameId",
    "GameIdConverter",
    "NbaGameId",
    "ScheduleEntry",
    "parse_game_id",
]

NBA_TEAMS: Final[frozenset[str]] = frozenset(
    {
        "ATL", "BOS", "BKN", "CHA", "CHI", "CLE", "DAL", "DEN", "DET", "GSW",
        "HOU", "IND", "LAC", "LAL", "MEM", "MIA", "MIL", "MIN", "NOP", "NYK",
        "OKC", "ORL", "PHI", "PHX", "POR", "SAC", "SAS", "TOR", "UTA", "WAS",
    }
)  # fmt: skip
"""The 30 current NBA team tricodes."""

TEAM_CODE_ALIASES: Final[dict[str, str]] = {
    "GS": "GSW",
    "NY": "NYK",
    "NO": "NOP",
    "SA": "SAS",
    "UTAH": "UTA",
    "WSH": "WAS",
}
"""ESPN's team codes that differ from NBA tricodes. The replaced system's ESPN boxscore writer
stores them unmapped in ``nba_raw.espn_boxscores.game_id`` (``20260124_GS_MIN``:
data_processors/raw/espn/espn_boxscore_processor.py:291-296 at najicham/nba-stats-scraper@18f6ecfe);
the same table of codes is its ESPN scoreboard mapping (espn_scoreboard_processor.py:60-73)."""

SEASON_TYPES: Final[dict[int, str]] = {
    1: "preseason",
    2: "regular_season",
    3: "all_star",
    4: "playoffs",
    5: "play_in",
    6: "in_season_final",
}
"""Season type digit (3rd digit of a numeric NBA id) → name."""

_NBA_ID_RE: Final = re.compile(r"00([0-9])([0-9]{2})([0-9]{5})")
_DATE_TEAMS_RE: Final = re.compile(r"([0-9]{4})([0-9]{2})([0-9]{2})_([A-Za-z]{2,4})_([A-Za-z]{2,4})")
_DIGITS_RE: Final = re.compile(r"[0-9]+")

_FORMATS: Final = "expected a 10-digit NBA id like 0022500644 or YYYYMMDD_AWAY_HOME like 20260124_GSW_MIN"


def _error(raw: object, reason: str) -> InvalidGameIdError:
    return InvalidGameIdError(f"invalid game id {raw!r}: {reason}", game_id=raw)


def _yyyymmdd(day: date) -> str:
    """``20260124``: always four year digits (``f"{day:%Y}"`` gives ``999`` for the year 999 on glibc)."""
    return f"{day.year:04d}{day.month:02d}{day.day:02d}"


def _check_teams(raw: object, away: str, home: str) -> tuple[str, str]:
    away_u, home_u = (TEAM_CODE_ALIASES.get(code.upper(), code.upper()) for code in (away, home))
    unknown = [code for code in (away_u, home_u) if code not in NBA_TEAMS]
    if unknown:
        raise _error(raw, f"unknown NBA team tricode(s) {', '.join(unknown)}")
    if away_u == home_u:
        raise _error(raw, f"away and home team are both {away_u}")
    return away_u, home_u


@dataclass(frozen=True, slots=True, order=True)
class NbaGameId:
    """A numeric NBA game id such as ``0022500644``.

    Attributes:
        season_type: 1 preseason, 2 regular season, 3 all-star, 4 playoffs, 5 play-in,
            6 in-season tournament final (``SEASON_TYPES``).
        season_yy: the season start year's last two digits (25 → 2025-26).
        game_number: the game number within the season type, 1-99999.
    """

    season_type: int
    season_yy: int
    game_number: int

    def __post_init__(self) -> None:
        if self.season_type not in SEASON_TYPES:
            raise InvalidGameIdError(
                f"invalid NBA game id: season type digit {self.season_type!r} is not one of {sorted(SEASON_TYPES)}",
                season_type=self.season_type,
            )
        if not 0 <= self.season_yy <= 99:
            raise InvalidGameIdError(
                f"invalid NBA game id: season year {self.season_yy!r} is not 00-99", season_yy=self.season_yy
            )
        if not 1 <= self.game_number <= 99_999:
            raise InvalidGameIdError(
                f"invalid NBA game id: game number {self.game_number!r} is not 00001-99999",
                game_number=self.game_number,
            )

    @classmethod
    def parse(cls, raw: str | int) -> Self:
        """Parse a numeric NBA id, restoring dropped leading zeros.

        Accepts the 10-digit string, the 8-digit string that a CSV or an INT64 column
        leaves after dropping the ``"00"`` (``22500644``), or the equivalent ``int``.
        Surrounding whitespace is ignored.

        Raises:
            InvalidGameIdError: not a valid numeric NBA id.
        """
        if isinstance(raw, bool) or not isinstance(raw, int | str):
            raise _error(raw, f"unsupported type {type(raw).__name__}; {_FORMATS}")
        if isinstance(raw, int):
            if raw < 0:
                raise _error(raw, "negative number")
            text = str(raw)
        else:
            text = raw.strip()
        if _DIGITS_RE.fullmatch(text) is None or len(text) not in (8, 10):
            raise _error(raw, "a numeric NBA id has 10 digits (or 8 when the leading 00 was dropped)")
        match = _NBA_ID_RE.fullmatch(text.zfill(10))
        if match is None:
            raise _error(raw, "a 10-digit NBA id starts with 00")
        season_type, season_yy, game_number = (int(part) for part in match.groups())
        try:
            return cls(season_type, season_yy, game_number)
        except InvalidGameIdError as exc:
            raise _error(raw, exc.message.removeprefix("invalid NBA game id: ")) from exc

    @property
    def season_start_year(self) -> int:
        """The four-digit year the season starts in (NBA ids begin with the 1946-47 season)."""
        return (1900 if self.season_yy >= 46 else 2000) + self.season_yy

    @property
    def season_type_name(self) -> str:
        """``SEASON_TYPES`` name of the season type digit."""
        return SEASON_TYPES[self.season_type]

    def format(self) -> str:
        """The 10-digit form, e.g. ``0022500644``."""
        return f"00{self.season_type}{self.season_yy:02d}{self.game_number:05d}"

    def __str__(self) -> str:
        return self.format()


@dataclass(frozen=True, slots=True, order=True)
class DateTeamsGameId:
    """A date-teams game id such as ``20260124_GSW_MIN`` (game date in ET, away, home).

    Tricodes are normalised to upper case; they must be current NBA teams and differ.
    """

    game_date: date
    away: str
    home: str

    def __post_init__(self) -> None:
        if isinstance(self.game_date, datetime) or not isinstance(self.game_date, date):
            raise InvalidGameIdError(
                f"invalid date-teams game id: game_date {self.game_date!r} must be a date",
                game_date=self.game_date,
            )
        raw = f"{_yyyymmdd(self.game_date)}_{self.away}_{self.home}"
        away, home = _check_teams(raw, self.away, self.home)
        object.__setattr__(self, "away", away)
        object.__setattr__(self, "home", home)

    @classmethod
    def parse(cls, raw: str) -> Self:
        """Parse ``YYYYMMDD_AWAY_HOME`` (whitespace stripped, tricodes case-insensitive; ESPN's
        codes such as ``GS`` and ``UTAH`` are mapped through ``TEAM_CODE_ALIASES``).

        Raises:
            InvalidGameIdError: wrong shape, impossible date, unknown team, or away == home.
        """
        if not isinstance(raw, str):
            raise _error(raw, f"unsupported type {type(raw).__name__}; {_FORMATS}")
        match = _DATE_TEAMS_RE.fullmatch(raw.strip())
        if match is None:
            raise _error(raw, "expected YYYYMMDD_AWAY_HOME like 20260124_GSW_MIN")
        year, month, day, away, home = match.groups()
        try:
            game_date = date(int(year), int(month), int(day))
        except ValueError as exc:
            raise _error(raw, f"{year}{month}{day} is not a real calendar date") from exc
        away, home = _check_teams(raw, away, home)
        return cls(game_date, away, home)

    def format(self) -> str:
        """The ``YYYYMMDD_AWAY_HOME`` form (the year zero-padded to four digits, as ``parse`` reads it)."""
        return f"{_yyyymmdd(self.game_date)}_{self.away}_{self.home}"

    def __str__(self) -> str:
        return self.format()


GameId: TypeAlias = NbaGameId | DateTeamsGameId


def parse_game_id(raw: str | int | GameId) -> GameId:
    """Parse a game id in either format.

    Strips surrounding whitespace; an ``int`` or an 8-digit numeric string (leading
    ``00`` dropped by a CSV or an INT64 column) is normalised to the 10-digit NBA id.
    An already-parsed id is returned unchanged.

    Raises:
        InvalidGameIdError: neither format; the message quotes the value and the formats.
    """
    if isinstance(raw, NbaGameId | DateTeamsGameId):
        return raw
    if isinstance(raw, int) and not isinstance(raw, bool):
        return NbaGameId.parse(raw)
    if not isinstance(raw, str):
        raise _error(raw, f"unsupported type {type(raw).__name__}; {_FORMATS}")
    text = raw.strip()
    if "_" in text:
        return DateTeamsGameId.parse(raw)
    if _DIGITS_RE.fullmatch(text) is not None:
        return NbaGameId.parse(raw)
    raise _error(raw, _FORMATS)


@dataclass(frozen=True, slots=True)
class ScheduleEntry:
    """One schedule row: a game under both ids.

    ``nba_game_id`` is normalised to 10 digits and the tricodes to upper case on
    construction; invalid values raise ``InvalidGameIdError``. ``updated_at`` must be
    timezone-aware: it orders duplicate rows of one game.
    """

    nba_game_id: str
    game_date: date
    away: str
    home: str
    status: str | None = None
    updated_at: datetime | None = None
    status_text: str | None = None  # e.g. "Postponed" set by operators on a Final row
    scored: bool | None = None  # both scores set (False: a score is NULL; None: the scores were not read)

    def __post_init__(self) -> None:
        nba = NbaGameId.parse(self.nba_game_id)
        date_teams = DateTeamsGameId(self.game_date, self.away, self.home)
        object.__setattr__(self, "nba_game_id", nba.format())
        object.__setattr__(self, "away", date_teams.away)
        object.__setattr__(self, "home", date_teams.home)
        if self.updated_at is not None and (
            not isinstance(self.updated_at, datetime) or self.updated_at.utcoffset() is None
        ):
            raise ValueError(
                f"schedule row {nba.format()}: updated_at must be a timezone-aware datetime, got {self.updated_at!r}"
            )

    @property
    def nba_id(self) -> NbaGameId:
        """The numeric id, parsed."""
        return NbaGameId.parse(self.nba_game_id)

    @property
    def date_teams_id(self) -> DateTeamsGameId:
        """The date-teams id, parsed."""
        return DateTeamsGameId(self.game_date, self.away, self.home)

    @property
    def date_teams_game_id(self) -> str:
        """The ``YYYYMMDD_AWAY_HOME`` form (the canonical id)."""
        return self.date_teams_id.format()


class GameIdConverter:
    """Maps game ids both ways using a deduplicated schedule.

    Build it with ``from_schedule``. Lookups accept either format (and the forms
    ``parse_game_id`` normalises) and return strings.
    """

    def __init__(self, entries: Iterable[ScheduleEntry] = ()) -> None:
        """Prefer ``from_schedule``; this takes rows that are already one per game."""
        self._by_nba: dict[str, ScheduleEntry] = {}
        self._by_date_teams: dict[str, ScheduleEntry] = {}
        for entry in entries:
            key = entry.date_teams_game_id
            if entry.nba_game_id in self._by_nba:
                raise InvalidGameIdError(
                    f"schedule has more than one row for NBA game id {entry.nba_game_id}; "
                    "use GameIdConverter.from_schedule to collapse duplicates",
                    game_id=entry.nba_game_id,
                )
            other = self._by_date_teams.get(key)
            if other is not None:
                raise InvalidGameIdError(
                    f"schedule maps two NBA game ids ({other.nba_game_id}, {entry.nba_game_id}) to the same game {key}",
                    game_id=key,
                )
            self._by_nba[entry.nba_game_id] = entry
            self._by_date_teams[key] = entry

    @classmethod
    def from_schedule(cls, rows: Iterable[ScheduleEntry]) -> Self:
        """Build a converter, collapsing duplicate rows per game to the latest (lesson L15).

        Rows are grouped by NBA game id; the row with the greatest ``updated_at`` wins
        (a row without ``updated_at`` is older than any with one; on a tie the later row
        in ``rows`` wins). So a game moved to another date maps to its latest date.

        Raises:
            InvalidGameIdError: after deduplication two NBA ids map to the same date-teams id.
        """
        latest: dict[str, ScheduleEntry] = {}
        for row in rows:
            current = latest.get(row.nba_game_id)
            if current is None or not _is_older(row, current):
                latest[row.nba_game_id] = row
        return cls(latest.values())

    def _entry_for_nba(self, game_id: NbaGameId) -> ScheduleEntry:
        key = game_id.format()
        entry = self._by_nba.get(key)
        if entry is None:
            raise InvalidGameIdError(
                f"NBA game id {key} is not in the schedule ({len(self._by_nba)} games); "
                "cannot convert it to YYYYMMDD_AWAY_HOME",
                game_id=key,
            )
        return entry

    def _entry_for_date_teams(self, game_id: DateTeamsGameId) -> ScheduleEntry:
        key = game_id.format()
        entry = self._by_date_teams.get(key)
        if entry is None:
            raise InvalidGameIdError(
                f"game {key} is not in the schedule ({len(self._by_date_teams)} games); "
                "cannot convert it to an NBA game id",
                game_id=key,
            )
        return entry

    def entry(self, game_id: str | int | GameId) -> ScheduleEntry:
        """The schedule row of a game given in either format.

        Raises:
            InvalidGameIdError: unparseable, or not in the schedule.
        """
        parsed = parse_game_id(game_id)
        if isinstance(parsed, NbaGameId):
            return self._entry_for_nba(parsed)
        return self._entry_for_date_teams(parsed)

    def to_date_teams(self, game_id: str | int | GameId) -> str:
        """Return the ``YYYYMMDD_AWAY_HOME`` form.

        A date-teams id is returned normalised without consulting the schedule.

        Raises:
            InvalidGameIdError: unparseable, or a numeric id not in the schedule.
        """
        parsed = parse_game_id(game_id)
        if isinstance(parsed, DateTeamsGameId):
            return parsed.format()
        return self._entry_for_nba(parsed).date_teams_game_id

    def to_nba(self, game_id: str | int | GameId) -> str:
        """Return the 10-digit NBA id.

        A numeric id is returned normalised (leading zeros restored) without consulting
        the schedule.

        Raises:
            InvalidGameIdError: unparseable, or a date-teams id not in the schedule.
        """
        parsed = parse_game_id(game_id)
        if isinstance(parsed, NbaGameId):
            return parsed.format()
        return self._entry_for_date_teams(parsed).nba_game_id

    def canonical(self, game_id: str | int | GameId) -> str:
        """Return the canonical id (the ``YYYYMMDD_AWAY_HOME`` form) to join sources on.

        Raises:
            InvalidGameIdError: unparseable, or a numeric id not in the schedule.
        """
        return self.to_date_teams(game_id)

    def games(self) -> list[ScheduleEntry]:
        """The deduplicated schedule, ordered by game date then NBA id."""
        return sorted(self._by_nba.values(), key=lambda e: (e.game_date, e.nba_game_id))

    def __len__(self) -> int:
        return len(self._by_nba)

    def __contains__(self, game_id: object) -> bool:
        if not isinstance(game_id, str | int | NbaGameId | DateTeamsGameId):
            return False
        try:
            self.entry(game_id)
        except InvalidGameIdError:
            return False
        return True

    def __repr__(self) -> str:
        return f"GameIdConverter({len(self)} games)"


def _is_older(row: ScheduleEntry, current: ScheduleEntry) -> bool:
    """True when ``row`` is strictly older than ``current`` (None is oldest; ties are not older)."""
    if row.updated_at is None:
        return current.updated_at is not None
    if current.updated_at is None:
        return False
    return row.updated_at < current.updated_at
