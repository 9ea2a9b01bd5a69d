"""[grading] The grading safety net on the emulators (issue 27, item 4): grading waits for actuals,
a low graded coverage regrades as a new generation (capped, then a finding), grading gaps are found.

The real tables (schemas from ``deploy/bigquery/upstream/``): ``nbac_schedule``,
``player_prop_predictions``, ``player_game_summary``, ``prediction_accuracy``. The monitor's items
(``shared.monitor.grading_net.net_checks``) run against the sensor service the grading function builds.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from deploy.local.emulators import LocalCloud
from shared.monitor.findings import Finding
from shared.monitor.grading_net import net_checks
from tests.shared.orchestration.test_timed_emulators import NIGHT, SENSOR, Timed, predictions, schedule
from tests.support.rig import GAME_DATE, GAMES, Rig

pytestmark = pytest.mark.integration

EARLIER = date(2026, 1, 20)
EARLIER_GAMES = [("0022500600", "BOS", "NYK"), ("0022500601", "PHI", "ATL")]


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique, now=NIGHT)
    rig.seed_outputs(tables=[])  # creates the tables the gates and the sensor read
    return rig


@pytest.fixture
def timed(rig: Rig) -> Timed:
    return Timed(rig)


def net(t: Timed, final_games: dict[date, int] | None = None) -> list[Finding]:
    """One monitor pass's grading-net items for the sensor (each isolated there; here they must not raise)."""
    service = t.runtimes["grading_readiness"].services[SENSOR]
    games = final_games or {GAME_DATE: len(GAMES)}
    net = net_checks(SENSOR, service, [GAME_DATE], games, t.rig.clock)
    assert net is not None
    return net.date(GAME_DATE) + net.gaps()


def graded(r: Rig, games: list[tuple[str, str, str]], day: date = GAME_DATE) -> None:
    r.seed_outputs(tables=["prediction_accuracy"], games=games, game_date=day)


def test_grading_waits_with_no_actuals_and_triggers_once_they_cover_the_thresholds(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig, actuals=False)
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "waiting"
    assert "actuals for 0/50 predicted players (0 %), 0/5 Final games (0 %)" in outcome.detail
    # a fallback does not grade a night without actuals either (the grading function's floors)
    assert timed.tick(SENSOR, "run_0230", GAME_DATE).kind == "waiting"
    rig.seed_outputs(tables=["player_game_summary"], games=GAMES[:4])  # 4/5 games: 80 % < 90 %
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "waiting" and "40/50 predicted players (80 %), 4/5 Final games (80 %)" in outcome.detail
    assert timed.messages(SENSOR) == []
    rig.seed_outputs(tables=["player_game_summary"], games=GAMES[4:])
    outcome = timed.tick(SENSOR, "readiness")
    assert outcome.kind == "triggered", outcome.detail
    (message,) = timed.messages(SENSOR)
    assert "actuals for 50/50 predicted players (100 %), 5/5 Final games (100 %)" in message.reason
    assert [c.kind for c in message.conditions] == ["all_final", "rows_present", "not_done", "actuals_coverage"]


def test_low_graded_coverage_regrades_as_a_new_generation_up_to_the_cap_then_a_finding(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig)
    assert timed.tick(SENSOR, "readiness").trigger_id == "grading_readiness:2026-01-24:g1"
    assert len(timed.messages(SENSOR)) == 1
    graded(rig, GAMES[:2])  # grading graded 20 of 50 gradable predictions: 40 % < 70 %
    assert net(timed) == []  # still within settle_minutes of the trigger: grading may be running
    assert timed.messages(SENSOR) == []

    for generation in (2, 3):  # max_regrades = 2 (grading_coverage_monitor/main.py:72)
        rig.clock.advance(minutes=61)
        assert net(timed) == []
        (message,) = timed.messages(SENSOR)
        assert message.trigger_id == f"grading_readiness:2026-01-24:g{generation}"
        assert (message.slot, message.trigger_source) == ("regrade", "coverage-monitor-regrade")
        assert "actuals for 50/50" in message.reason
        assert net(timed) == []  # the same pass again (a redelivered tick): the new trigger is too young
        assert timed.messages(SENSOR) == []

    rig.clock.advance(minutes=61)
    (finding,) = net(timed)
    assert (finding.kind, finding.severity, finding.game_date) == ("grading_coverage_low", "ERROR", GAME_DATE)
    assert "20/50 gradable predictions graded (40.0 %), below 70 % after 2 regrade(s)" in finding.message
    assert timed.messages(SENSOR) == []  # no third regrade
    rows = sorted((r["trigger_id"], r["status"]) for r in rig.log_rows() if r["phase_name"] == SENSOR)
    assert rows == [("grading_readiness:2026-01-24:g1", "complete"), ("grading_readiness:2026-01-24:g2", "regrade"),
                    ("grading_readiness:2026-01-24:g3", "regrade")]


def test_coverage_at_or_above_70_percent_is_left_alone(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig)
    assert timed.tick(SENSOR, "readiness").kind == "triggered"
    timed.messages(SENSOR)
    graded(rig, GAMES[:4])  # 40/50 = 80 %
    rig.clock.advance(minutes=61)
    assert net(timed) == []
    assert timed.messages(SENSOR) == []


def test_a_grading_gap_of_the_last_14_days_is_a_finding(rig: Rig, timed: Timed) -> None:
    schedule(rig, GAMES)
    predictions(rig)
    graded(rig, GAMES)
    rig.seed_outputs(tables=["player_prop_predictions"], games=EARLIER_GAMES, game_date=EARLIER)  # never graded
    old = EARLIER - timedelta(days=20)  # outside the 14 days
    rig.seed_outputs(tables=["player_prop_predictions"], games=EARLIER_GAMES, game_date=old)
    final = {GAME_DATE: len(GAMES), EARLIER: 2, old: 2, EARLIER + timedelta(days=1): 3}  # the 21st: no predictions
    (finding,) = [f for f in net(timed, final) if f.kind == "grading_gap"]
    assert finding.severity == "ERROR" and finding.details["dates"] == ["2026-01-20"]
    assert "2026-01-20 (20 gradable)" in finding.message
    graded(rig, EARLIER_GAMES, EARLIER)
    assert [f for f in net(timed, final) if f.kind == "grading_gap"] == []
