"""Self-heal's decisions, pure: what is missing, which transition is re-triggered, the cap, and
"still missing at the next checkpoint" (``shared.heal.self_heal_plan``). No emulator."""

from __future__ import annotations

import tomllib
from datetime import UTC, date, datetime

import pytest

from shared.clock import FixedClock, today_et
from shared.errors import DefinitionError
from shared.heal.self_heal_plan import (
    checkpoint_id,
    decide,
    earliest_missing,
    healed_before,
    target_date,
)
from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, load_definition, parse_definition

DEFINITION = load_definition()
TARGETS = {t.name: t for t in DEFINITION.heal.self_heal.targets}
YESTERDAY = TARGETS["yesterday_analytics"]
TODAY = TARGETS["today_predictions"]
# 2026-01-25 12:45 ET, the checkpoint's slot (17:45 UTC in January)
CHECKPOINT_AT = FixedClock(datetime(2026, 1, 25, 17, 45, tzinfo=UTC))
DAY = today_et(CHECKPOINT_AT)


def test_the_packaged_targets_are_upstreams_checks() -> None:
    """Yesterday's player_game_summary (main.py:872-907) and today's active predictions (:1032-1055),
    each step's transition real and starting that very phase; one heal per (date, transition)."""
    settings = DEFINITION.heal.self_heal
    assert settings.max_heals == 1 and settings.verify_days == 3
    assert [(t.name, t.date, t.games) for t in settings.targets] == [
        ("yesterday_analytics", "yesterday", "final"),
        ("today_predictions", "today", "scheduled"),
    ]
    assert YESTERDAY.steps[-1].table.table == "nba_analytics.player_game_summary"
    assert TODAY.steps[-1].table.table == "nba_predictions.player_prop_predictions"
    assert [(p.column, p.op) for p in TODAY.steps[-1].where] == [("is_active", "is_true")]  # main.py:124
    for target in settings.targets:
        for step in target.steps:
            assert DEFINITION.transition(step.transition).target_phase == step.phase, (target.name, step)


def test_the_checkpoint_job_is_a_self_heal_tick_at_1245_et() -> None:
    job = DEFINITION.job("self-heal-predictions")
    assert (job.cron, job.timezone, job.wave) == ("45 12 * * *", "America/New_York", "C")
    assert job.pubsub is not None and job.pubsub.topic == DEFINITION.schedules["phase_transition_monitor"].topic
    assert job.pubsub.body == {"check": "self_heal", "game_date": "${today}", "requested_by": "self-heal-predictions"}


def test_target_dates_count_from_the_checkpoint_date_in_new_york() -> None:
    assert DAY == date(2026, 1, 25)
    assert target_date(YESTERDAY, DAY) == date(2026, 1, 24)
    assert target_date(TODAY, DAY) == date(2026, 1, 25)
    # 00:30 ET on the 26th is still the 26th in New York, 05:30 UTC: never the UTC date's neighbour
    late = FixedClock(datetime(2026, 1, 26, 5, 30, tzinfo=UTC))
    assert target_date(YESTERDAY, today_et(late)) == date(2026, 1, 25)


def test_the_earliest_phase_without_rows_is_re_triggered() -> None:
    assert earliest_missing(TODAY, {3: 120, 4: 0, 5: 0}).transition == "phase3_to_phase4"  # type: ignore[union-attr]
    assert earliest_missing(TODAY, {3: 0, 4: 0, 5: 0}).transition == "phase2_to_phase3"  # type: ignore[union-attr]
    assert earliest_missing(TODAY, {3: 120, 4: 300, 5: 0}).transition == "phase4_to_phase5"  # type: ignore[union-attr]
    assert earliest_missing(TODAY, {3: 0, 4: 0, 5: 420}) is None  # the output exists: nothing to heal
    assert earliest_missing(YESTERDAY, {3: 0}).transition == "phase2_to_phase3"  # type: ignore[union-attr]


def test_a_missing_output_heals_and_says_what_and_why() -> None:
    v = decide(YESTERDAY, date(2026, 1, 24), 7, {3: 0}, earlier_heals=[], heals_used=0, max_heals=1)
    assert (v.status, v.heal, v.transition) == ("healing", True, "phase2_to_phase3")
    assert "7 Final games on 2026-01-24" in v.reason and "nba_analytics.player_game_summary" in v.reason


def test_no_games_means_nothing_should_exist() -> None:
    v = decide(YESTERDAY, date(2026, 1, 24), 0, {3: 0}, earlier_heals=[], heals_used=0, max_heals=1)
    assert (v.status, v.heal) == ("no_games", False)


def test_present_output_is_fine_and_fixed_after_a_heal() -> None:
    assert decide(TODAY, DAY, 7, {3: 1, 4: 1, 5: 420}, earlier_heals=[], heals_used=0, max_heals=1).status == "present"
    fixed = decide(TODAY, DAY, 7, {5: 420}, earlier_heals=["job@2026-01-24"], heals_used=1, max_heals=1)
    assert (fixed.status, fixed.heal) == ("fixed", False)


def test_cap_reached_heals_no_more() -> None:
    v = decide(YESTERDAY, date(2026, 1, 24), 7, {3: 0}, earlier_heals=[], heals_used=1, max_heals=1)
    assert (v.status, v.heal) == ("cap_reached", False)
    assert "1 of 1 heal(s) used" in v.reason


def test_still_missing_at_the_next_checkpoint_is_a_finding_not_another_loop() -> None:
    earlier = ["self-heal-predictions@2026-01-25"]
    v = decide(YESTERDAY, date(2026, 1, 24), 7, {3: 0}, earlier_heals=earlier, heals_used=1, max_heals=1)
    assert (v.status, v.heal) == ("still_missing", False)
    assert "still missing after the heal at self-heal-predictions@2026-01-25" in v.reason
    # with heals left the next checkpoint heals once more, and the verdict still says it failed
    again = decide(YESTERDAY, date(2026, 1, 24), 7, {3: 0}, earlier_heals=earlier, heals_used=1, max_heals=2)
    assert (again.status, again.heal) == ("still_missing", True)


def test_healed_before_counts_other_checkpoints_that_re_triggered() -> None:
    record = {
        "checkpoints": {
            "self-heal-predictions@2026-01-25": {"attempt": 1},
            "self-heal-predictions@2026-01-26": {"attempt": None},  # looked, did not heal
        }
    }
    assert healed_before(record, "self-heal-predictions@2026-01-27") == ["self-heal-predictions@2026-01-25"]
    assert healed_before(record, "self-heal-predictions@2026-01-25") == []  # its own run is not "before"
    assert healed_before(None, "x@2026-01-25") == []


def test_a_checkpoint_is_named_by_who_asked_and_its_date() -> None:
    assert checkpoint_id("self-heal-predictions", DAY) == "self-heal-predictions@2026-01-25"
    assert checkpoint_id(None, DAY) == "manual@2026-01-25"
    assert checkpoint_id("phasectl:ann.o", DAY) == "phasectl_ann_o@2026-01-25"  # a safe map key


def test_steps_out_of_phase_order_are_refused() -> None:
    data = tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())
    steps = data["heal"]["self_heal"]["targets"][1]["steps"]
    data["heal"]["self_heal"]["targets"][1]["steps"] = [steps[1], steps[0], steps[2]]
    with pytest.raises(DefinitionError, match="phase order"):
        parse_definition(data)
