"""Pure tests for the demo's stand-in processors and its outcome check (no emulator, no network).

``StandinProcessors.processors`` decides which stand-ins report for a phase; ``demo.check``
decides whether ``make demo`` passed; ``demo_definition`` compresses the retry backoff. All
three run here on hand-built inputs: nothing starts an emulator or creates a Google client.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.local.demo import (
    DEMO_BACKOFF_MINUTES,
    DEMO_LEASE_SECONDS,
    DemoResult,
    check,
    demo_definition,
)
from deploy.local.sample_night import (
    BACKFILL_DATE,
    BREAKER_DATE,
    GAME_DATE,
    GAMES,
    HEAL_DATE,
    POSTPONED_GAME,
    RESCHEDULED_TO,
)
from deploy.local.standins import StandinProcessors
from shared.clock import FixedClock
from shared.contracts.messages import PhaseTrigger, TimedTriggerMessage, TriggerStatus, make_trigger_id
from shared.pipeline.definition import (
    DEFAULT_DEFINITION_PATH,
    Mode,
    ModeWhen,
    PipelineDefinition,
    read_definition,
)

CANONICAL_POSTPONED = "20260124_GSW_MIN"


@pytest.fixture(scope="module")
def definition() -> PipelineDefinition:
    return read_definition(DEFAULT_DEFINITION_PATH)


# ----------------------------------------------------------------------------- StandinProcessors.processors


class _NoClient:
    """Stands in for a Pub/Sub client: ``processors`` must never use one."""

    def __getattr__(self, name: str) -> Any:
        raise AssertionError(f"StandinProcessors.processors touched the Pub/Sub client ({name})")


@pytest.fixture
def no_google(monkeypatch: pytest.MonkeyPatch) -> None:
    """``StandinProcessors.__init__`` gets its clients from ``shared.gcp``: hand it inert fakes.

    (With ``PUBSUB_EMULATOR_HOST`` set the real clients would not connect either, but
    ``publisher_client`` caches its client for the whole process; fakes leave nothing behind.)
    """
    import shared.gcp

    monkeypatch.setattr(shared.gcp, "publisher_client", _NoClient)
    monkeypatch.setattr(shared.gcp, "subscriber_client", _NoClient)


def standins(definition: PipelineDefinition) -> StandinProcessors:
    return StandinProcessors(definition, "no-project", FixedClock(datetime(2026, 1, 25, 5, 30, tzinfo=UTC)))


def first_occurrences(definition: PipelineDefinition, phase: int) -> list[str]:
    """Every processor named by the transition leaving ``phase``, in definition order, once; then the
    coverage gate's boxscore sources of that phase."""
    names: list[str] = []
    for _label, expected, critical, optional in definition.transition_from(phase).processor_sets():
        for name in (*expected, *critical, *optional):
            if name not in names:
                names.append(name)
    for source in definition.games.boxscore_sources:
        if definition.processor(source.processor).phase == phase and source.processor not in names:
            names.append(source.processor)
    return names


def test_processors_of_every_phase_are_listed_once_in_definition_order(
    no_google: None, definition: PipelineDefinition
) -> None:
    stand = standins(definition)
    for transition in definition.transitions:
        names = stand.processors(transition.source_phase)
        assert len(names) == len(set(names)), f"duplicates for phase {transition.source_phase}: {names}"
        assert names == first_occurrences(definition, transition.source_phase)
        named = {n for _, e, c, o in transition.processor_sets() for n in (*e, *c, *o)}
        sources = {s.processor for s in definition.games.boxscore_sources}
        phase_sources = {n for n in sources if definition.processor(n).phase == transition.source_phase}
        assert set(names) == named | phase_sources


def test_processors_of_the_packaged_phase_2_and_3(no_google: None, definition: PipelineDefinition) -> None:
    stand = standins(definition)
    phase2 = stand.processors(2)
    assert phase2[0] == "nbac_gamebook_player_stats"  # expected and critical: listed once, at its first place
    assert phase2.count("nbac_gamebook_player_stats") == 1
    # the boxscore sources of the coverage gate run too (BDL fails in the demo; ESPN is its fallback)
    assert {"bdl_player_boxscores", "espn_boxscores", "nbac_player_boxscores", "odds_api_game_lines"} <= set(phase2)
    # Phase 3 has three modes naming upcoming_player_game_context each (expected and critical).
    phase3 = stand.processors(3)
    assert phase3.count("upcoming_player_game_context") == 1
    assert len(phase3) == len(set(phase3))


def test_processors_dedupe_across_lists_and_modes(no_google: None, definition: PipelineDefinition) -> None:
    leaving_2 = definition.transition_from(2).model_copy(
        update={"modes": (), "expected": ("b", "a"), "critical": ("a", "c"), "optional": ("d", "b", "e")}
    )
    leaving_3 = definition.transition_from(3).model_copy(
        update={
            "modes": (
                Mode(name="first", when=ModeWhen.BEFORE_TODAY, expected=("x", "y"), critical=("y",), optional=("z",)),
                Mode(name="second", when=ModeWhen.TODAY, expected=("w", "x"), critical=("w",), optional=("y", "v")),
            )
        }
    )
    transitions = tuple(
        leaving_2 if t.source_phase == 2 else leaving_3 if t.source_phase == 3 else t for t in definition.transitions
    )
    stand = standins(definition.model_copy(update={"transitions": transitions}))
    sources = [s.processor for s in definition.games.boxscore_sources]  # all phase 2: appended, in chain order
    assert stand.processors(2) == ["b", "a", "c", "d", "e", *sources]
    assert stand.processors(3) == ["x", "y", "z", "w", "v"]


def test_processors_of_a_phase_nothing_leaves(no_google: None, definition: PipelineDefinition) -> None:
    last = max(t.target_phase for t in definition.transitions)
    with pytest.raises(KeyError, match=f"no transition leaves phase {last}"):
        standins(definition).processors(last)


def test_constructing_standins_creates_no_google_client(no_google: None, definition: PipelineDefinition) -> None:
    stand = standins(definition)
    assert isinstance(stand.publisher, _NoClient)
    assert isinstance(stand.subscriber, _NoClient)


# ----------------------------------------------------------------------------- demo.check


def test_demo_constants_match_the_seeded_games() -> None:
    assert GAME_DATE == date(2026, 1, 24)
    assert BREAKER_DATE == date(2026, 1, 23)
    [(away, home)] = [(a, h) for nba, a, h in GAMES[GAME_DATE] if nba == POSTPONED_GAME]
    assert f"{GAME_DATE:%Y%m%d}_{away}_{home}" == CANONICAL_POSTPONED
    assert RESCHEDULED_TO == date(2026, 1, 25)


def trigger(
    definition: PipelineDefinition,
    name: str,
    day: date = GAME_DATE,
    *,
    generation: int = 1,
    status: TriggerStatus | None = None,
    missing_games: list[str] | None = None,
    postponed_games: list[str] | None = None,
    coverage: tuple[str, float] | None = None,
    trigger_source: str = "orchestrator",
) -> PhaseTrigger:
    transition = definition.transition(name)
    gates: list[dict[str, Any]] = []
    if name == definition.transitions[1].name:  # the demo's 3→4 alert: 15 % of players without minutes
        gates = [{"gate": "minutes_coverage", "kind": "ratio", "verdict": "alert", "value": 85.0, "reason": "85%"}]
    if name == definition.transitions[0].name:  # the coverage gate: 6/6 played games, GSW@MIN postponed
        verdict, value = coverage or ("pass", 100.0)
        gates = [
            {"gate": "game_coverage", "kind": "game_coverage_pct", "verdict": verdict, "value": value, "reason": "6/6"}
        ]
    return PhaseTrigger(
        trigger_id=make_trigger_id(name, day, generation),
        transition=name,
        source_phase=transition.source_phase,
        target_phase=transition.target_phase,
        game_date=day,
        status=status or TriggerStatus.COMPLETE,
        reason="test",
        generation=generation,
        triggered_at=datetime(2026, 1, 25, 6, 0, tzinfo=UTC) + timedelta(minutes=generation),
        processors_completed=[],
        missing_games=missing_games or [],
        postponed_games=[CANONICAL_POSTPONED] if postponed_games is None else postponed_games,
        trigger_source=trigger_source,
        gates=gates,  # type: ignore[arg-type]
    )


def log_row(name: str, day: date, status: str = "triggered") -> dict[str, Any]:
    return {"phase_name": name, "game_date": day, "status": status, "trigger_id": None, "games_processed": 6}


def good_result(definition: PipelineDefinition) -> DemoResult:
    """What a successful demo night produces."""
    first = definition.transitions[0].name
    return DemoResult(
        triggers=[trigger(definition, t.name) for t in definition.transitions] + healed(definition),
        log_rows=[
            *(log_row(t.name, GAME_DATE) for t in definition.transitions),
            log_row(first, BREAKER_DATE, "blocked"),
        ],
        reconcile_after=0,
        timed=[grading(definition)],
        fallback_fired=True,
        findings=[postponed_finding()],
    )


def healed(definition: PipelineDefinition, skip: str | None = None) -> list[PhaseTrigger]:
    """Scenario 3: each night whose phase 3 never ran re-triggered as generation 2 (self-heal, backfill),
    its chain on to phase 6 (``skip``: leave that source's out)."""
    first, last = definition.transitions[0].name, definition.transitions[-1].name
    out = []
    for day, source in ((HEAL_DATE, "self_heal"), (BACKFILL_DATE, "backfill")):
        if source != skip:
            out.append(trigger(definition, first, day, generation=2, trigger_source=source, postponed_games=[]))
            out.append(trigger(definition, last, day, postponed_games=[]))
    return out


@pytest.mark.parametrize("source", ["self_heal", "backfill"])
def test_a_night_not_healed_is_reported(definition: PipelineDefinition, source: str) -> None:
    result = good_result(definition)
    result.triggers = [trigger(definition, t.name) for t in definition.transitions] + healed(definition, skip=source)
    day = HEAL_DATE if source == "self_heal" else BACKFILL_DATE
    assert check(result, definition) == [
        f"{day}: no phase2_to_phase3 re-trigger as generation 2 from {source}",
        f"{day}: the healed chain did not reach phase5_to_phase6",
    ]


def postponed_finding(message: str | None = None) -> dict[str, Any]:
    text = f"GSW@MIN (0022500644) on {GAME_DATE} is postponed, rescheduled to {RESCHEDULED_TO} ({CANONICAL_POSTPONED})"
    return {"key": f"game_postponed__{CANONICAL_POSTPONED}", "kind": "game_postponed", "message": message or text}


def grading(definition: PipelineDefinition, slot: str = "readiness", generation: int = 1) -> TimedTriggerMessage:
    name = definition.sensors[0].name
    return TimedTriggerMessage(
        trigger_id=make_trigger_id(name, GAME_DATE, generation),
        name=name,
        slot=slot,
        game_date=GAME_DATE,
        target_date=GAME_DATE,
        generation=generation,
        trigger_source="readiness-monitor",
        triggered_at=datetime(2026, 1, 25, 6, 15, tzinfo=UTC),
        reason="6/6 games Final, 1 marked unavailable or postponed",
        postponed_games=[CANONICAL_POSTPONED],
    )


def test_a_second_grading_trigger_or_one_from_a_fallback_is_reported(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    result.timed.append(grading(definition, "daily_0600", generation=2))
    assert check(result, definition) == [
        "grading_readiness for 2026-01-24: expected one trigger from its readiness slot, got "
        "[('grading_readiness:2026-01-24:g1', 'readiness'), ('grading_readiness:2026-01-24:g2', 'daily_0600')]"
    ]
    result = good_result(definition)
    result.fallback_fired = False
    assert check(result, definition) == ["the grading-daily-6am fallback was not fired at the end of the night"]


def test_a_complete_correct_result_has_no_problems(definition: PipelineDefinition) -> None:
    assert check(good_result(definition), definition) == []


def test_log_row_dates_may_be_strings(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    result.log_rows = [{**row, "game_date": str(row["game_date"])} for row in result.log_rows]
    assert check(result, definition) == []


def test_a_duplicated_trigger_is_reported(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    name = definition.transitions[2].name
    result.triggers.append(trigger(definition, name, generation=2))
    assert check(result, definition) == [f"{name} triggered 2 times for {GAME_DATE}, expected once"]


def test_a_missing_trigger_is_reported(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    last = definition.transitions[-1].name
    result.triggers = [t for t in result.triggers if t.transition != last or t.game_date != GAME_DATE]
    assert check(result, definition) == [f"{last} triggered 0 times for {GAME_DATE}, expected once"]


def test_a_triggered_breaker_night_is_reported(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    first = definition.transitions[0].name
    breaker = trigger(definition, first, BREAKER_DATE, missing_games=["20260123_UTA_HOU"])
    result.triggers.append(breaker)
    problems = check(result, definition)
    assert problems == [f"the breaker night {BREAKER_DATE} was triggered: {[breaker.trigger_id]}"]
    assert "2026-01-23" in problems[0]


def test_a_missing_log_row_is_reported(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    name = definition.transitions[1].name
    result.log_rows = [row for row in result.log_rows if row["phase_name"] != name]
    assert check(result, definition) == [f"no phase_execution_log row for {name} {GAME_DATE}"]


def test_a_log_row_for_another_night_does_not_count(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    name = definition.transitions[1].name
    result.log_rows = [
        {**row, "game_date": BREAKER_DATE} if row["phase_name"] == name else row for row in result.log_rows
    ]
    assert check(result, definition) == [f"no phase_execution_log row for {name} {GAME_DATE}"]


@pytest.mark.parametrize("coverage", [("alert", 85.7), ("blocked", 42.0), ("pass", 85.7)])
def test_a_coverage_gate_short_of_the_six_played_games_is_reported(
    definition: PipelineDefinition, coverage: tuple[str, float]
) -> None:
    result = good_result(definition)
    first = definition.transitions[0].name
    assert first == "phase2_to_phase3"
    result.triggers[0] = trigger(definition, first, coverage=coverage)
    problems = check(result, definition)
    assert len(problems) == 1
    assert problems[0].startswith(f"{first} for {GAME_DATE} should cover the 6 played games")
    assert str([coverage]) in problems[0]


def test_a_partial_trigger_with_full_coverage_is_fine(definition: PipelineDefinition) -> None:
    """The first transition can fire at 4 of 5 phase 2 processors (partial): the coverage is what counts."""
    result = good_result(definition)
    first = definition.transitions[0].name
    result.triggers[0] = trigger(definition, first, status=TriggerStatus.PARTIAL)
    assert check(result, definition) == []


@pytest.mark.parametrize(
    ("missing", "postponed"),
    [
        ([CANONICAL_POSTPONED], []),  # the replaced system's night: the postponed game taken for a missing one
        ([], []),
        ([], [POSTPONED_GAME]),  # the NBA id, not the canonical id
        ([], ["20260124_MIN_GSW"]),
        ([], [CANONICAL_POSTPONED, "20260124_BOS_CHI"]),
        (["20260124_BOS_CHI"], [CANONICAL_POSTPONED]),
    ],
)
def test_wrong_missing_or_postponed_games_are_reported(
    definition: PipelineDefinition, missing: list[str], postponed: list[str]
) -> None:
    result = good_result(definition)
    first = definition.transitions[0].name
    result.triggers[0] = trigger(definition, first, missing_games=missing, postponed_games=postponed)
    problems = check(result, definition)
    assert len(problems) == 1
    assert f"{first} for {GAME_DATE} should cover the 6 played games" in problems[0]
    assert str(postponed) in problems[0]


def test_a_retry_row_for_the_night_is_reported(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    result.queue_rows = [{"processor_name": "bdl_player_boxscores", "game_date": GAME_DATE, "status": "pending"}]
    assert check(result, definition) == [
        f"nothing should be retried for {GAME_DATE} (the postponed game was not played): ['bdl_player_boxscores']"
    ]


@pytest.mark.parametrize("message", ["GSW@MIN on 2026-01-24 is postponed (20260124_GSW_MIN)", "something else"])
def test_a_postponed_finding_without_the_game_or_its_new_date_is_reported(
    definition: PipelineDefinition, message: str
) -> None:
    result = good_result(definition)
    result.findings = [postponed_finding(message)]
    assert check(result, definition) == [
        f"no game_postponed finding naming {CANONICAL_POSTPONED} and its new date {RESCHEDULED_TO}"
    ]


def test_grading_that_keeps_the_postponed_game_is_reported(definition: PipelineDefinition) -> None:
    result = good_result(definition)
    result.timed = [grading(definition).model_copy(update={"postponed_games": []})]
    assert check(result, definition) == [
        f"grading_readiness for {GAME_DATE} should leave out {CANONICAL_POSTPONED}: []"
    ]


@pytest.mark.parametrize("exit_code", [1, 2, None])
def test_reconcile_after_not_zero_is_reported(definition: PipelineDefinition, exit_code: int | None) -> None:
    result = good_result(definition)
    result.reconcile_after = exit_code
    assert check(result, definition) == [
        f"reconcile of {GAME_DATE} exited {exit_code}, expected 0 (nothing missing)"
    ]


def test_every_problem_is_reported_at_once(definition: PipelineDefinition) -> None:
    first = definition.transitions[0].name
    result = DemoResult(
        triggers=[trigger(definition, first, status=TriggerStatus.COMPLETE, missing_games=[], postponed_games=[])] * 2
        + [trigger(definition, first, BREAKER_DATE)],
        log_rows=[],
        reconcile_after=3,
    )
    problems = check(result, definition)
    # every transition (twice for the first, never for the rest), the gate, no game_postponed finding,
    # two nights not healed (2 each), the breaker night, every log row, reconcile, no grading, no fallback
    assert len(problems) == len(definition.transitions) + 1 + 1 + 4 + 1 + len(definition.transitions) + 1 + 2
    assert not DemoResult(problems=problems).ok


# ----------------------------------------------------------------------------- demo_definition


def test_demo_definition_only_compresses_the_retry_backoff_drops_http_auth_and_lengthens_the_lease(
    tmp_path: Path, definition: PipelineDefinition
) -> None:
    path = demo_definition(tmp_path)
    assert path.parent == tmp_path
    demo = read_definition(path)
    assert demo.retry.base_delay_minutes == DEMO_BACKOFF_MINUTES
    assert definition.retry.base_delay_minutes != DEMO_BACKOFF_MINUTES  # the test would prove nothing otherwise
    expected = definition.model_dump()
    expected["retry"]["base_delay_minutes"] = DEMO_BACKOFF_MINUTES
    http = [t for t in expected["transitions"] if t["delivery"]["http"]]
    assert [t["delivery"]["http"]["auth"] for t in http] == ["id_token"]
    http[0]["delivery"]["http"]["auth"] = "none"  # the stand-in coordinator on loopback takes no ID token
    health = [g for g in expected["gates"].values() if g["kind"] == "service_health"]
    assert health and all(g["auth"] == "id_token" for g in health)
    for g in health:
        g["auth"] = "none"  # nor do the stand-ins' /ready endpoints
    expected["dispatcher"]["lease_seconds"] = DEMO_LEASE_SECONDS  # leases are simulated seconds
    assert definition.dispatcher.lease_seconds != DEMO_LEASE_SECONDS
    # the scheduled jobs keep their ID tokens: the stand-ins record the local tokens' audience
    assert any(j["http"] and j["http"]["auth"] == "id_token" for j in expected["jobs"])
    assert demo.model_dump() == expected
