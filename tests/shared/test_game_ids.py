"""Tests for shared.game_ids: the two game id formats and the schedule converter (lesson L15)."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given
from hypothesis import strategies as st

from shared.errors import InvalidGameIdError, PermanentError
from shared.game_ids import (
    NBA_TEAMS,
    SEASON_TYPES,
    DateTeamsGameId,
    GameIdConverter,
    NbaGameId,
    ScheduleEntry,
    parse_game_id,
)

T0 = datetime(2026, 1, 20, 12, 0, tzinfo=UTC)

# The game from the retry story: 0022500644 is GSW at MIN on 2026-01-24.
GSW_MIN = ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "Final", T0)
SCHEDULE = [
    GSW_MIN,
    ScheduleEntry("0022500645", date(2026, 1, 24), "BOS", "NYK", "Final", T0),
    ScheduleEntry("0022500646", date(2026, 1, 24), "LAL", "PHX", "Final", T0),
    ScheduleEntry("0022500650", date(2026, 1, 25), "MIN", "GSW", "Scheduled", T0),
]


def converter() -> GameIdConverter:
    return GameIdConverter.from_schedule(SCHEDULE)


# ----------------------------------------------------------------------------- teams


def test_thirty_current_teams() -> None:
    assert len(NBA_TEAMS) == 30
    assert all(len(code) == 3 and code.isupper() for code in NBA_TEAMS)
    assert {"GSW", "MIN", "BKN", "PHX", "NOP", "UTA", "WAS"} <= NBA_TEAMS
    assert not {"NJN", "SEA", "NOH", "BRK", "PHO", "GS"} & NBA_TEAMS


# ----------------------------------------------------------------------------- numeric ids


def test_parse_numeric_id() -> None:
    parsed = parse_game_id("0022500644")
    assert parsed == NbaGameId(season_type=2, season_yy=25, game_number=644)
    assert isinstance(parsed, NbaGameId)
    assert parsed.format() == str(parsed) == "0022500644"
    assert parsed.season_start_year == 2025
    assert parsed.season_type_name == "regular_season"


@pytest.mark.parametrize("raw", [22500644, "22500644", " 0022500644 ", "0022500644\n", " 22500644"])
def test_dropped_leading_zeros_and_whitespace_are_normalised(raw: str | int) -> None:
    assert parse_game_id(raw) == NbaGameId.parse("0022500644")
    assert str(parse_game_id(raw)) == "0022500644"


@pytest.mark.parametrize(
    ("raw", "season_type"),
    [("0012500001", 1), ("0032500001", 3), ("0042500101", 4), ("0052500201", 5), ("0062500001", 6)],
)
def test_every_season_type(raw: str, season_type: int) -> None:
    parsed = NbaGameId.parse(raw)
    assert parsed.season_type == season_type
    assert parsed.season_type_name == SEASON_TYPES[season_type]


def test_season_start_year_century() -> None:
    assert NbaGameId.parse("0024600001").season_start_year == 1946
    assert NbaGameId.parse("0029900001").season_start_year == 1999
    assert NbaGameId.parse("0020000001").season_start_year == 2000


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("0072500644", "season type"),  # type 7 does not exist
        ("0002500644", "season type"),  # type 0 does not exist
        ("0022500000", "game number"),
        ("1022500644", "starts with 00"),
        ("002250064", "10 digits"),  # 9 digits
        ("00225006444", "10 digits"),  # 11 digits
        ("2500644", "10 digits"),  # 7 digits
        ("00225OO644", "expected"),  # letters O
        ("", "expected"),
        ("   ", "expected"),
        ("0022500644.0", "expected"),  # float-looking CSV value
        ("-22500644", "expected"),
    ],
)
def test_invalid_numeric_ids(raw: str, reason: str) -> None:
    with pytest.raises(InvalidGameIdError, match=reason) as info:
        parse_game_id(raw)
    assert repr(raw) in str(info.value)


@pytest.mark.parametrize("raw", [-22500644, 644, 72500644, True, 22500644.0, None, b"0022500644"])
def test_invalid_numeric_inputs(raw: object) -> None:
    with pytest.raises(InvalidGameIdError):
        parse_game_id(raw)  # type: ignore[arg-type]


def test_nba_game_id_constructor_validates() -> None:
    with pytest.raises(InvalidGameIdError, match="season type"):
        NbaGameId(9, 25, 1)
    with pytest.raises(InvalidGameIdError, match="season year"):
        NbaGameId(2, 125, 1)
    with pytest.raises(InvalidGameIdError, match="game number"):
        NbaGameId(2, 25, 100_000)


@given(
    st.sampled_from(sorted(SEASON_TYPES)),
    st.integers(min_value=0, max_value=99),
    st.integers(min_value=1, max_value=99_999),
)
def test_numeric_ids_round_trip_including_int_form(season_type: int, yy: int, number: int) -> None:
    game_id = NbaGameId(season_type, yy, number)
    text = game_id.format()
    assert len(text) == 10
    assert parse_game_id(text) == game_id
    assert parse_game_id(int(text)) == game_id  # an INT64 column drops the "00"
    assert parse_game_id(str(int(text))) == game_id


# ----------------------------------------------------------------------------- date-teams ids


def test_parse_date_teams_id() -> None:
    parsed = parse_game_id("20260124_GSW_MIN")
    assert parsed == DateTeamsGameId(date(2026, 1, 24), "GSW", "MIN")
    assert isinstance(parsed, DateTeamsGameId)
    assert parsed.format() == str(parsed) == "20260124_GSW_MIN"


def test_date_teams_id_is_normalised() -> None:
    assert str(parse_game_id("  20260124_gsw_Min \t")) == "20260124_GSW_MIN"
    assert DateTeamsGameId(date(2026, 1, 24), "gsw", "min").away == "GSW"


@pytest.mark.parametrize(
    ("raw", "reason"),
    [
        ("20260230_GSW_MIN", "calendar date"),
        ("20261301_GSW_MIN", "calendar date"),
        ("20260124_GSW_GSW", "both GSW"),
        ("20260124_GSW_XXX", "XXX"),
        ("20260124_SEA_NJN", "SEA, NJN"),  # historical tricodes are not current teams
        ("20260124_G_MIN", "YYYYMMDD_AWAY_HOME"),
        ("20260124_GOLDN_MIN", "YYYYMMDD_AWAY_HOME"),
        ("20260124_XX_MIN", "XX"),
        ("2026-01-24_GSW_MIN", "YYYYMMDD_AWAY_HOME"),
        ("260124_GSW_MIN", "YYYYMMDD_AWAY_HOME"),
        ("20260124-GSW-MIN", "expected"),
        ("20260124_GSW_MIN_2", "YYYYMMDD_AWAY_HOME"),
        ("20260124_GSW", "YYYYMMDD_AWAY_HOME"),
        ("GSW@MIN", "expected"),
    ],
)
def test_invalid_date_teams_ids(raw: str, reason: str) -> None:
    with pytest.raises(InvalidGameIdError, match=reason) as info:
        parse_game_id(raw)
    assert repr(raw) in str(info.value)


def test_date_teams_constructor_validates() -> None:
    with pytest.raises(InvalidGameIdError, match="both MIN"):
        DateTeamsGameId(date(2026, 1, 24), "MIN", "min")
    with pytest.raises(InvalidGameIdError, match="must be a date"):
        DateTeamsGameId(datetime(2026, 1, 24, tzinfo=UTC), "GSW", "MIN")


def test_invalid_game_id_error_is_permanent_and_carries_the_id() -> None:
    with pytest.raises(InvalidGameIdError) as info:
        parse_game_id("nope")
    assert isinstance(info.value, PermanentError)
    assert isinstance(info.value, ValueError)
    assert info.value.context["game_id"] == "nope"
    assert "0022500644" in info.value.message and "20260124_GSW_MIN" in info.value.message


_TEAM_PAIRS = st.lists(st.sampled_from(sorted(NBA_TEAMS)), min_size=2, max_size=2, unique=True)


@given(st.dates(min_value=date(1000, 1, 1), max_value=date(9999, 12, 31)), _TEAM_PAIRS)
def test_date_teams_ids_round_trip(day: date, teams: list[str]) -> None:
    away, home = teams
    game_id = DateTeamsGameId(day, away, home)
    text = game_id.format()
    assert text == f"{day:%Y%m%d}_{away}_{home}"
    assert parse_game_id(text) == game_id
    assert parse_game_id(text.lower()) == game_id
    assert parse_game_id(game_id) is game_id


@pytest.mark.parametrize(
    ("day", "text"),
    [
        (date(1, 1, 1), "00010101_GSW_MIN"),
        (date(9, 3, 4), "00090304_GSW_MIN"),
        (date(99, 12, 31), "00991231_GSW_MIN"),
        (date(999, 1, 24), "09990124_GSW_MIN"),  # %Y gives "999" on glibc: 7 digits, unparseable
        (date(1000, 1, 24), "10000124_GSW_MIN"),
        (date(9999, 12, 31), "99991231_GSW_MIN"),
    ],
)
def test_a_date_teams_id_always_has_a_four_digit_year(day: date, text: str) -> None:
    game_id = DateTeamsGameId(day, "GSW", "MIN")
    assert game_id.format() == str(game_id) == text
    assert DateTeamsGameId.parse(text) == parse_game_id(text) == game_id
    assert ScheduleEntry("0022500644", day, "GSW", "MIN").date_teams_game_id == text


@given(st.dates(), _TEAM_PAIRS)  # every date Python has: years 1-9999
def test_date_teams_ids_of_any_year_round_trip(day: date, teams: list[str]) -> None:
    away, home = teams
    game_id = DateTeamsGameId(day, away, home)
    text = game_id.format()
    assert text == f"{day.isoformat().replace('-', '')}_{away}_{home}"
    assert len(text.split("_")[0]) == 8
    assert parse_game_id(text) == game_id


def test_an_invalid_team_names_the_id_with_a_four_digit_year() -> None:
    with pytest.raises(InvalidGameIdError) as info:
        DateTeamsGameId(date(999, 1, 24), "GSW", "XXX")
    assert info.value.context["game_id"] == "09990124_GSW_XXX"


def test_parsed_ids_are_frozen_and_hashable() -> None:
    game_id = DateTeamsGameId.parse("20260124_GSW_MIN")
    with pytest.raises(AttributeError):
        game_id.home = "BOS"  # type: ignore[misc]
    assert len({game_id, parse_game_id("20260124_gsw_min")}) == 1


# ----------------------------------------------------------------------------- schedule entries


def test_schedule_entry_normalises() -> None:
    entry = ScheduleEntry("22500644", date(2026, 1, 24), "gsw", "min")
    assert entry.nba_game_id == "0022500644"
    assert (entry.away, entry.home) == ("GSW", "MIN")
    assert entry.date_teams_game_id == "20260124_GSW_MIN"
    assert entry.nba_id == NbaGameId(2, 25, 644)
    assert entry.date_teams_id == DateTeamsGameId(date(2026, 1, 24), "GSW", "MIN")


def test_schedule_entry_validates() -> None:
    with pytest.raises(InvalidGameIdError):
        ScheduleEntry("0072500644", date(2026, 1, 24), "GSW", "MIN")
    with pytest.raises(InvalidGameIdError):
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "GSW")
    with pytest.raises(ValueError, match="timezone-aware"):
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", None, datetime(2026, 1, 24))


# ----------------------------------------------------------------------------- converter


def test_retry_story_game_converts_both_ways() -> None:
    conv = converter()
    assert conv.to_date_teams("0022500644") == "20260124_GSW_MIN"
    assert conv.to_nba("20260124_GSW_MIN") == "0022500644"
    assert conv.canonical("0022500644") == "20260124_GSW_MIN"
    assert conv.canonical(22500644) == "20260124_GSW_MIN"
    assert conv.canonical(" 20260124_gsw_min ") == "20260124_GSW_MIN"
    assert conv.entry("0022500644") is conv.entry("20260124_GSW_MIN")


def test_same_teams_next_day_reversed_is_a_different_game() -> None:
    conv = converter()
    assert conv.to_date_teams("0022500650") == "20260125_MIN_GSW"
    assert conv.to_nba("20260125_MIN_GSW") == "0022500650"


def test_identity_conversions_need_no_schedule() -> None:
    empty = GameIdConverter.from_schedule([])
    assert empty.canonical("20991231_BOS_LAL") == "20991231_BOS_LAL"
    assert empty.to_date_teams("20991231_BOS_LAL") == "20991231_BOS_LAL"
    assert empty.to_nba(22500999) == "0022500999"


def test_unknown_numeric_id_is_named_in_the_error() -> None:
    with pytest.raises(InvalidGameIdError, match="0022500999") as info:
        converter().canonical("22500999")
    assert info.value.context["game_id"] == "0022500999"
    assert "not in the schedule" in str(info.value)


def test_unknown_date_teams_id_is_named_in_the_error() -> None:
    with pytest.raises(InvalidGameIdError, match="20260124_MIN_GSW"):
        converter().to_nba("20260124_MIN_GSW")


def test_converter_rejects_garbage() -> None:
    with pytest.raises(InvalidGameIdError):
        converter().canonical("GSW@MIN")


def test_l15_reconciliation_joins_on_one_id_format() -> None:
    conv = converter()
    # Source A (e.g. a scraper table) keys by NBA id, some read back from an INT64 column.
    source_a: list[str | int] = ["0022500644", 22500645, "0022500646 ", "22500650"]
    # Source B (e.g. predictions) keys by date-teams id.
    source_b = ["20260124_GSW_MIN", "20260124_BOS_NYK", "20260124_lal_phx", "20260125_MIN_GSW"]
    assert set(map(str, source_a)).isdisjoint(source_b)  # joined raw, nothing matches
    canon_a = {conv.canonical(game_id) for game_id in source_a}
    canon_b = {conv.canonical(game_id) for game_id in source_b}
    assert canon_a == canon_b == {entry.date_teams_game_id for entry in SCHEDULE}
    # ... and the other direction gives the same join on NBA ids.
    assert {conv.to_nba(g) for g in source_a} == {conv.to_nba(g) for g in source_b}


def test_l15_duplicate_schedule_rows_collapse_to_latest() -> None:
    rows = [
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "Scheduled", T0),
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "Final", T0 + timedelta(days=5)),
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "In Progress", T0 + timedelta(days=4)),
        ScheduleEntry("22500644", date(2026, 1, 24), "GSW", "MIN", "Unknown", None),
        ScheduleEntry("0022500645", date(2026, 1, 24), "BOS", "NYK", "Scheduled", T0),
    ]
    conv = GameIdConverter.from_schedule(rows)
    games = conv.games()
    assert len(games) == len(conv) == 2
    assert [g.nba_game_id for g in games] == ["0022500644", "0022500645"]
    assert conv.entry("0022500644").status == "Final"
    assert conv.entry("0022500644").updated_at == T0 + timedelta(days=5)


def test_duplicate_rows_a_game_moved_to_another_date_maps_to_the_latest_date() -> None:
    rows = [
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "Postponed", T0 + timedelta(days=1)),
        ScheduleEntry("0022500644", date(2026, 3, 2), "GSW", "MIN", "Scheduled", T0 + timedelta(days=2)),
    ]
    # Order of rows must not matter.
    for ordered in (rows, rows[::-1]):
        conv = GameIdConverter.from_schedule(ordered)
        assert conv.canonical("0022500644") == "20260302_GSW_MIN"
        assert "20260124_GSW_MIN" not in conv


def test_duplicate_rows_without_timestamps_last_row_wins() -> None:
    rows = [
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "Scheduled"),
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "Final"),
    ]
    assert GameIdConverter.from_schedule(rows).entry("0022500644").status == "Final"


def test_dedup_ignores_timezone_of_updated_at() -> None:
    later_in_other_zone = datetime(2026, 1, 20, 8, 0, tzinfo=ZoneInfo("America/New_York"))
    rows = [
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "later", later_in_other_zone),  # 13:00Z
        ScheduleEntry("0022500644", date(2026, 1, 24), "GSW", "MIN", "earlier", T0),  # 12:00Z
    ]
    assert GameIdConverter.from_schedule(rows).entry("0022500644").status == "later"


def test_two_nba_ids_for_one_game_is_an_error() -> None:
    rows = [GSW_MIN, ScheduleEntry("0022500999", date(2026, 1, 24), "GSW", "MIN")]
    with pytest.raises(InvalidGameIdError, match=r"0022500644, 0022500999"):
        GameIdConverter.from_schedule(rows)


def test_plain_constructor_refuses_duplicates() -> None:
    with pytest.raises(InvalidGameIdError, match="from_schedule"):
        GameIdConverter([GSW_MIN, GSW_MIN])


def test_games_are_sorted_and_contains_works() -> None:
    conv = GameIdConverter.from_schedule(reversed(SCHEDULE))
    assert [g.nba_game_id for g in conv.games()] == ["0022500644", "0022500645", "0022500646", "0022500650"]
    assert "0022500644" in conv
    assert 22500644 in conv
    assert "20260124_GSW_MIN" in conv
    assert "0022500999" not in conv
    assert "garbage" not in conv
    assert 3.5 not in conv
    assert repr(conv) == "GameIdConverter(4 games)"


@given(
    st.lists(
        st.tuples(
            st.integers(min_value=1, max_value=60),  # game number
            st.integers(min_value=0, max_value=10),  # version (updated_at offset)
        ),
        max_size=40,
    )
)
def test_dedup_keeps_one_row_per_game_with_the_max_updated_at(rows: list[tuple[int, int]]) -> None:
    entries = [
        ScheduleEntry(
            f"00225{number:05d}",
            date(2026, 1, 1) + timedelta(days=number),  # one game per day: no date-teams clashes
            "GSW",
            "MIN",
            f"v{version}",
            T0 + timedelta(hours=version),
        )
        for number, version in rows
    ]
    conv = GameIdConverter.from_schedule(entries)
    expected: dict[int, int] = {}
    for number, version in rows:
        expected[number] = max(version, expected.get(number, version))
    assert len(conv.games()) == len(expected)
    for number, version in expected.items():
        assert conv.entry(f"00225{number:05d}").status == f"v{version}"


@pytest.mark.parametrize(
    ("raw", "canonical"),
    [
        ("20260124_GS_MIN", "20260124_GSW_MIN"),
        ("20260124_BOS_NY", "20260124_BOS_NYK"),
        ("20260124_no_sa", "20260124_NOP_SAS"),
        ("20260124_UTAH_WSH", "20260124_UTA_WAS"),
    ],
)
def test_espn_team_codes_map_to_nba_tricodes(raw: str, canonical: str) -> None:
    """The replaced ESPN boxscore writer stores ESPN's own codes (espn_boxscore_processor.py:291-296)."""
    assert DateTeamsGameId.parse(raw).format() == canonical
