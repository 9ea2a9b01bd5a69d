"""Postponed is not missing (lesson L29): ``detect_postponed`` on the real 2026-01-24 slate, pure.

The night GSW@MIN (``0022500644``) was postponed ~2 h before tip-off: the schedule kept it Final
with NULL scores and listed the same id again on 2026-01-25 (the slate and its sources:
``tests/support/slate.py``). Each signal is tested alone, then the operator's marks, the no-rows
rule's three conditions, schedule anomalies, duplicate rows (L15), id formats, and what the
coverage gate and the grading sensor's ``all_final`` make of a postponed game.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from shared.game_ids import ScheduleEntry
from shared.orchestration.gate_queries import CoverageInputs
from shared.orchestration.gates import coverage_verdict
from shared.orchestration.postponement import OperatorMarks, Postponed, PostponementCheck, detect_postponed
from shared.orchestration.timed import ConditionInputs, conditions_verdict
from shared.pipeline.definition import GameCoverageGate, GamesSources, load_definition
from tests.support.slate import GSW_MIN, GSW_MIN_ID, NEXT_DAY, NIGHT, PLAYED, SLATE, canonical

D = load_definition()
GAMES = D.games
GATE = D.gates["game_coverage"]
assert isinstance(GATE, GameCoverageGate) and GATE.uses_boxscore_chain
NY = ZoneInfo("America/New_York")
# the schedule scraper's morning-after rewrite of the night's rows (nbac_schedule processed_at)
REWRITTEN = datetime(2026, 1, 25, 9, 0, tzinfo=UTC)
NULL_SCORES = "schedule says Final with NULL scores"


def entry(
    game: tuple[str, str, str] = GSW_MIN,
    day: date = NIGHT,
    *,
    status: str = "3",
    text: str | None = "Final",
    scored: bool | None = True,
    updated: datetime | None = REWRITTEN,
) -> ScheduleEntry:
    nba, away, home = game
    return ScheduleEntry(nba, day, away, home, status=status, updated_at=updated, status_text=text, scored=scored)


def night(gsw_min: ScheduleEntry | None = None) -> list[ScheduleEntry]:
    """The slate as the schedule held it: six played games Final with scores, and GSW@MIN as given
    (default: Final with scores, as if it had been played)."""
    return [gsw_min or entry() if g == GSW_MIN else entry(g) for g in SLATE]


def detect(
    schedule: Iterable[ScheduleEntry],
    later: Iterable[ScheduleEntry] = (),
    games: GamesSources = GAMES,
    **kwargs: object,
) -> PostponementCheck:
    return detect_postponed(games, schedule, later, **kwargs)  # type: ignore[arg-type]


def only(check: PostponementCheck) -> Postponed:
    (postponed,) = check.postponed
    assert postponed.game_id == GSW_MIN_ID and postponed.nba_game_id == "0022500644"
    assert postponed.matchup == "GSW@MIN"
    return postponed


# ============================================================================ the signals, one at a time


def test_a_normal_night_has_no_postponement() -> None:
    """Seven games Final with scores (as if GSW@MIN had been played): nothing postponed, no anomaly."""
    check = detect(night())
    assert check == PostponementCheck()
    assert check.game_ids == frozenset()


def test_final_with_null_scores_is_postponed() -> None:
    """The design's first missed signal (POSTPONEMENT-HANDLING-DESIGN.md:34): a played game has both scores."""
    p = only(detect(night(entry(scored=False))))
    assert p.evidence == (NULL_SCORES,)
    assert p.new_date is None and not p.by_operator


def test_scores_not_read_are_not_null_scores() -> None:
    """``scored`` None (no score columns configured): no evidence either way."""
    assert detect(night(entry(scored=None))).postponed == ()


@pytest.mark.parametrize("status", ["1", "2"])
def test_null_scores_of_a_game_not_final_are_not_evidence(status: str) -> None:
    """Scheduled or in progress games have NULL scores: only Final with NULL scores is a signal."""
    assert detect(night(entry(status=status, text=None, scored=False))).postponed == ()


def test_the_same_id_on_the_next_date_is_postponed_and_names_it() -> None:
    """The fourth missed signal (:37): the NBA reuses the id on the new date; scores not read here."""
    moved = entry(day=NEXT_DAY, status="1", text="Scheduled", scored=False)
    p = only(detect(night(entry(scored=None)), [moved]))
    assert p.new_date == NEXT_DAY
    assert p.evidence == ("the same game id is on the schedule again on 2026-01-25 (Scheduled)",)
    assert p.as_doc()["new_date"] == "2026-01-25"
    assert "rescheduled to 2026-01-25" in p.describe() and "GSW@MIN 0022500644 postponed" in p.describe()


def test_the_real_night_has_both_signals() -> None:
    """2026-01-24 as it was: Final with NULL scores on the 24th, Scheduled on the 25th."""
    moved = entry(day=NEXT_DAY, status="1", text="Scheduled", scored=False)
    p = only(detect(night(entry(scored=False)), [moved]))
    assert p.evidence == (NULL_SCORES, "the same game id is on the schedule again on 2026-01-25 (Scheduled)")
    assert p.new_date == NEXT_DAY
    assert p.as_doc() == {
        "game_id": GSW_MIN_ID,
        "nba_game_id": "0022500644",
        "matchup": "GSW@MIN",
        "evidence": list(p.evidence),
        "new_date": "2026-01-25",
        "by_operator": False,
    }


def test_moved_twice_names_the_latest_date_and_a_status_without_text() -> None:
    later = [
        entry(day=date(2026, 1, 27), status="1", text=None, scored=False),
        entry(day=NEXT_DAY, status="1", text="Scheduled", scored=False),
    ]
    p = only(detect(night(entry(scored=None)), later))
    assert p.new_date == date(2026, 1, 27)
    assert p.evidence == ("the same game id is on the schedule again on 2026-01-27 (status 1)",)


def test_later_rows_of_other_games_or_earlier_dates_are_not_evidence() -> None:
    later = [
        entry(day=date(2026, 1, 23), status="3", scored=True),  # an earlier date: not "later"
        entry(("0022500650", "GSW", "MIN"), NEXT_DAY, status="1", scored=False),  # another id, same teams
    ]
    assert detect(night(), later).postponed == ()


@pytest.mark.parametrize("text", ["Postponed", "postponed", "Rescheduled to 2026-01-25", " Cancelled"])
def test_status_text_is_postponed(text: str) -> None:
    """The replaced system's operators set the text and leave the game Final (fix_postponed_game.py:183-200)."""
    p = only(detect(night(entry(text=text))))
    assert p.evidence == (f"schedule status text {text!r}",)


def test_a_status_text_is_evidence_only_when_configured() -> None:
    games = GAMES.model_copy(update={"excluded_status_texts": ()})
    assert detect(night(entry(text="Postponed")), games=games).postponed == ()


# ============================================================================ the no-rows rule


HOURS = 30.0
WITH_RULE = GAMES.model_copy(update={"postponed_after_empty_hours": HOURS})
DATE_ENDS = datetime(2026, 1, 25, 0, 0, tzinfo=NY)  # the end of 2026-01-24 in New York
LATE = DATE_ENDS + timedelta(hours=HOURS, minutes=1)
COVERED = [canonical(g) for g in PLAYED]  # every boxscore source has the six played games


def no_rows(
    *,
    games: GamesSources = WITH_RULE,
    now: datetime | None = LATE,
    updated: datetime | None = REWRITTEN,
    covered: Iterable[str] = COVERED,
    status: str = "3",
) -> PostponementCheck:
    """GSW@MIN Final, its scores not read (no other signal), judged ``now``."""
    return detect(night(entry(scored=None, updated=updated, status=status)), games=games, covered=covered, now=now)


def test_no_rows_n_hours_after_the_date_with_a_rewritten_row_is_postponed() -> None:
    p = only(no_rows())
    (evidence,) = p.evidence
    assert evidence.startswith("Final with no row in any boxscore source 30 h after its date ended")
    assert "schedule row rewritten 2026-01-25T09:00+00:00" in evidence


def test_no_rows_rule_is_off_unless_configured() -> None:
    assert GAMES.postponed_after_empty_hours is None  # the packaged definition: off
    assert no_rows(games=GAMES).postponed == ()


def test_no_rows_rule_waits_n_hours_past_the_end_of_the_date() -> None:
    assert no_rows(now=DATE_ENDS + timedelta(hours=HOURS) - timedelta(minutes=1)).postponed == ()
    assert only(no_rows(now=DATE_ENDS + timedelta(hours=HOURS)))
    assert no_rows(now=None).postponed == ()  # no clock: the rule cannot be judged


def test_no_rows_rule_needs_the_row_rewritten_on_or_after_the_date() -> None:
    """A row last written before the date is a stale schedule, not a postponement."""
    assert no_rows(updated=datetime(2026, 1, 23, 23, 59, tzinfo=NY)).postponed == ()
    assert only(no_rows(updated=datetime(2026, 1, 24, 0, 0, tzinfo=NY)))
    assert no_rows(updated=None).postponed == ()


def test_no_rows_rule_spares_covered_and_unfinished_games() -> None:
    assert no_rows(covered=[*COVERED, GSW_MIN_ID]).postponed == ()
    assert no_rows(status="2").postponed == ()


# ============================================================================ anomalies


def test_a_game_with_scores_listed_again_later_is_an_anomaly_never_excluded() -> None:
    """Scores say the game was played: a later Scheduled row of its id is a schedule error, reported,
    and the game still counts (a postponement must never hide a played game)."""
    again = entry(day=NEXT_DAY, status="1", text="Scheduled", scored=None)
    check = detect(night(), [again])
    assert check.postponed == ()
    (anomaly,) = check.anomalies
    assert "on the schedule again on 2026-01-25 (Scheduled)" in anomaly.problem


def test_final_with_scores_on_two_dates_is_an_anomaly_not_a_postponement() -> None:
    """One game cannot be played twice: a schedule error, reported with its rows; the game still counts."""
    twice = entry(day=NEXT_DAY, status="3", text="Final", scored=True)
    check = detect(night(), [twice])
    assert check.postponed == ()
    (anomaly,) = check.anomalies
    assert (anomaly.game_id, anomaly.nba_game_id) == (GSW_MIN_ID, "0022500644")
    assert "Final with scores on 2026-01-24 and on the schedule again on 2026-01-25 (Final)" in anomaly.problem
    assert "the game still counts" in anomaly.problem
    assert [r["game_date"] for r in anomaly.rows] == ["2026-01-24", "2026-01-25"]
    assert all(r["scored"] is True and r["game_status"] == "3" for r in anomaly.rows)
    assert anomaly.as_doc()["rows"] == list(anomaly.rows)


# ============================================================================ operators' marks


def test_an_operator_postponed_mark_postpones() -> None:
    marks = OperatorMarks(postponed={GSW_MIN_ID: "shooting in Minneapolis"})
    p = only(detect(night(), marks=marks))
    assert p.by_operator and p.evidence == ("marked postponed by an operator: shooting in Minneapolis",)


def test_restored_overrides_every_detected_signal() -> None:
    """Status text, NULL scores, a later date, an operator's postpone and the no-rows rule: restored wins."""
    moved = entry(day=NEXT_DAY, status="1", text="Scheduled", scored=False)
    schedule = night(entry(text="Postponed", scored=False))
    postponed = OperatorMarks(postponed={GSW_MIN_ID: "x"})
    every = only(detect(schedule, [moved], WITH_RULE, covered=COVERED, now=LATE, marks=postponed))
    assert len(every.evidence) == 5  # every signal fires without the restore
    marks = OperatorMarks(postponed={GSW_MIN_ID: "x"}, restored=frozenset({GSW_MIN_ID}))
    check = detect(schedule, [moved], WITH_RULE, covered=COVERED, now=LATE, marks=marks)
    assert check.postponed == ()


@pytest.mark.parametrize(
    "raw",
    [
        "20260124_GS_MIN",  # ESPN's team codes
        "20260124_gsw_min",
        " 20260124_GSW_MIN ",
        "0022500644",  # the numeric NBA id
        "22500644",  # ... with its leading zeros dropped (an INT64 column, a CSV)
    ],
)
def test_marks_in_any_id_format_normalise(raw: str) -> None:
    p = only(detect(night(), marks=OperatorMarks(postponed={raw: "r"})))
    assert p.by_operator
    assert detect(night(entry(scored=False)), marks=OperatorMarks(restored=frozenset({raw}))).postponed == ()


def test_a_mark_for_a_game_not_on_the_schedule_or_unparseable_is_ignored() -> None:
    marks = OperatorMarks(postponed={"20260124_BOS_NYK": "r", "not an id": "r"}, restored=frozenset({"??"}))
    assert detect(night(), marks=marks) == PostponementCheck()


# ============================================================================ duplicate rows (L15)


def test_duplicate_rows_collapse_to_the_latest() -> None:
    """The schedule processor's duplicates (DELETE+WRITE_APPEND before 2026-01-11): the latest row decides."""
    earlier, later = REWRITTEN - timedelta(hours=6), REWRITTEN
    stale_null = entry(scored=False, updated=earlier)
    fixed = entry(scored=True, updated=later)
    assert detect([*night(fixed), stale_null]).postponed == ()  # the latest has scores
    assert only(detect([*night(entry(scored=False, updated=later)), entry(scored=True, updated=earlier)]))
    # a row without processed_at is older than any with one
    assert detect([entry(scored=False, updated=None), *night(fixed)]).postponed == ()


# ============================================================================ the coverage gate and all_final


def coverage(gsw_min: ScheduleEntry, later: Iterable[ScheduleEntry] = (), marks: OperatorMarks | None = None):  # type: ignore[no-untyped-def]
    """The gate's verdict: BDL has the six played games, nobody has GSW@MIN."""
    inputs = CoverageInputs(
        tuple(night(gsw_min)),
        {"bdl": tuple(COVERED), "espn": (), "gamebook": ()},
        later=tuple(later),
        marks=marks or OperatorMarks(),
    )
    return coverage_verdict("game_coverage", GATE, GAMES, inputs)


def test_coverage_leaves_the_postponed_game_out_of_the_denominator() -> None:
    moved = entry(day=NEXT_DAY, status="1", text="Scheduled", scored=False)
    result = coverage(entry(scored=False), [moved])
    assert result.verdict == "pass"
    assert (result.games_total, result.games_covered, result.value) == (6, 6, 100.0)
    assert result.reason == "6/6 Final games covered, 1 postponed"
    assert result.missing_games == ()  # never missing, so never handed to auto-retry
    assert GSW_MIN_ID in result.unavailable and GSW_MIN_ID not in result.covered_by
    (doc,) = result.postponed
    assert doc["game_id"] == GSW_MIN_ID and doc["new_date"] == "2026-01-25"
    assert doc["evidence"] == [NULL_SCORES, "the same game id is on the schedule again on 2026-01-25 (Scheduled)"]
    assert result.as_dict()["postponed"] == [dict(doc)]
    assert result.anomalies == ()


def test_without_postponement_the_same_night_is_partial_with_gsw_at_min_missing() -> None:
    """The replaced system's night: the game counted, went missing and down the retry chain."""
    result = coverage(entry(scored=True))
    assert result.verdict == "alert" and result.missing_games == (GSW_MIN_ID,)
    assert result.retry_missing_games and result.postponed == ()


def test_restored_game_counts_again_in_coverage() -> None:
    result = coverage(entry(scored=False), marks=OperatorMarks(restored=frozenset({"0022500644"})))
    assert result.missing_games == (GSW_MIN_ID,) and result.postponed == ()
    assert result.games_total == 7


def test_coverage_carries_an_anomaly_and_the_game_still_counts() -> None:
    twice = entry(day=NEXT_DAY, status="3", scored=True)
    result = coverage(entry(scored=True), [twice])
    assert result.postponed == () and result.games_total == 7
    assert result.missing_games == (GSW_MIN_ID,)
    (anomaly,) = result.anomalies
    assert anomaly["game_id"] == GSW_MIN_ID and len(anomaly["rows"]) == 2


def test_coverage_postponed_and_unavailable_are_both_named() -> None:
    inputs = CoverageInputs(
        tuple(night(entry(scored=False))),
        {"bdl": tuple(COVERED[1:]), "espn": (), "gamebook": ()},
        (COVERED[0],),  # BOS@CHI marked unavailable by an operator
    )
    result = coverage_verdict("game_coverage", GATE, GAMES, inputs)
    assert result.reason == "5/5 Final games covered, 1 marked unavailable, 1 postponed"
    assert result.unavailable == tuple(sorted((COVERED[0], GSW_MIN_ID)))


SENSOR = D.timed_trigger("grading_readiness")
READINESS = SENSOR.slot("readiness")


@pytest.mark.parametrize(
    "gsw_min",
    [
        entry(scored=False),  # Final with NULL scores: Final, but not played
        entry(status="1", text="Scheduled", scored=False),  # not Final at all: would block forever
    ],
    ids=["final-null-scores", "scheduled"],
)
def test_all_final_excludes_the_postponed_game(gsw_min: ScheduleEntry) -> None:
    moved = entry(day=NEXT_DAY, status="1", text="Scheduled", scored=False)
    inputs = ConditionInputs(tuple(night(gsw_min)), later=(moved,))
    results = conditions_verdict(SENSOR, READINESS, GAMES, inputs)
    (final,) = [r for r in results if r.gate == "all_final"]
    assert final.verdict == "pass"
    assert final.reason == "6/6 games Final, 1 marked unavailable or postponed"
    assert final.details == {"scheduled": 7, "considered": 6, "final": 6, "excluded": 1}
    (doc,) = final.postponed
    assert doc["game_id"] == GSW_MIN_ID and doc["new_date"] == "2026-01-25"


def test_all_final_without_evidence_waits_for_the_unfinished_game() -> None:
    inputs = ConditionInputs(tuple(night(entry(status="2", text="Q4 2:31", scored=None))))
    (final,) = [r for r in conditions_verdict(SENSOR, READINESS, GAMES, inputs) if r.gate == "all_final"]
    assert final.verdict == "blocked" and final.reason == "6/7 games Final" and final.postponed == ()


def test_timestamps_here_are_aware() -> None:
    """Guard for the fixtures above: ScheduleEntry rejects naive ``updated_at``."""
    with pytest.raises(ValueError, match="timezone-aware"):
        entry(updated=datetime(2026, 1, 25, 9, 0))
    assert REWRITTEN.tzinfo is UTC
