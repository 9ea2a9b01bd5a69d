"""Working with the replaced system: its tables, its messages, its consumers, on the real emulators.

* The coverage gate reads tables with the real column sets (``deploy/bigquery/upstream``): the
  schedule keys games by numeric NBA id with ``game_status`` 3 = Final, the boxscore tables by
  ``YYYYMMDD_AWAY_HOME`` (ESPN with its own team codes) and require a partition filter.
* A gate that cannot run as configured is acked and recorded as ``gate_error``, never redelivered.
* Upstream-shaped completions (the checked-in fixtures) drive the transitions.
* Phase 4→5 calls the prediction coordinator's ``/start`` once per ``trigger_id``.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.standins import StartEndpoint
from shared.errors import TransientError
from shared.orchestration.http_delivery import HttpDeliverer
from shared.orchestration.runtime import build_service
from tests.support.rig import GAME_DATE, PHASE2, SEVEN, Rig

pytestmark = pytest.mark.integration

UPSTREAM = Path(__file__).resolve().parents[2] / "data" / "upstream" / "completions"
GSW_MIN = "20260124_GSW_MIN"


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


def report_phase2(rig: Rig) -> Any:
    svc = rig.services["phase2_to_phase3"]
    outcome = None
    for p in PHASE2:
        outcome = svc.handle_event(rig.event(rig.completion(p, 2)))
    return outcome


# ----------------------------------------------------------------------------- the gate on real tables


def test_seven_final_games_with_gsw_at_min_missing_trigger_partial(rig: Rig) -> None:
    covered = [g for g in SEVEN if g[0] != "0022500644"]
    # the gamebook (date-teams ids) has four, ESPN (its own team codes: GS, NY, ...) the other two
    rig.seed_games(final=SEVEN, sources={"gamebook": [g[0] for g in covered[:4]], "espn": [g[0] for g in covered[4:]]})
    outcome = report_phase2(rig)
    assert outcome.kind == "triggered", outcome.detail
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.status == "partial" and trigger.missing_games == [GSW_MIN]
    assert "6/7 Final games covered (fallback used: espn, gamebook)" in trigger.reason


def test_espn_ids_with_espn_team_codes_cover_their_games(rig: Rig) -> None:
    """BOS@NYK is 20260124_BOS_NY in espn_boxscores (espn_boxscore_processor.py:291-296)."""
    rig.seed_games(final=SEVEN, sources={"espn": [g[0] for g in SEVEN]})
    from shared.gcp_bigquery import bigquery_client

    table = rig.definition.games.boxscore_sources[1].table
    rows = bigquery_client(rig.cloud.project).query(
        f"SELECT DISTINCT game_id FROM `{rig.cloud.project}.{table}` WHERE game_date = '2026-01-24' ORDER BY 1"
    ).result()
    ids = [r["game_id"] for r in rows]
    assert "20260124_GS_MIN" in ids and "20260124_BOS_NY" in ids  # stored as the real writer stores them
    assert report_phase2(rig).kind == "triggered"
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.missing_games == [] and trigger.status == "complete"


def test_four_of_seven_missing_blocks(rig: Rig) -> None:
    rig.seed_games(final=SEVEN, sources={"gamebook": [g[0] for g in SEVEN[:3]]})
    outcome = report_phase2(rig)
    assert outcome.kind == "blocked" and "circuit breaker: 4/7 games (57%)" in outcome.detail
    assert rig.pull_triggers("phase2_to_phase3") == []


def test_a_game_marked_postponed_in_the_schedule_text_is_not_expected(rig: Rig) -> None:
    """The real operators' fix for a postponed game sets game_status_text and leaves game_status 3."""
    covered = [g[0] for g in SEVEN if g[0] != "0022500644"]
    rig.seed_games(final=SEVEN, sources={"gamebook": covered}, status_texts={"0022500644": "Postponed"})
    assert report_phase2(rig).kind == "triggered"
    (trigger,) = rig.pull_triggers("phase2_to_phase3")
    assert trigger.missing_games == [] and trigger.status == "complete"


def test_the_real_schedule_requires_a_partition_filter(rig: Rig) -> None:
    """What the gate reads is the real table: a query without the date filter fails, like production."""
    from google.api_core import exceptions as gexc

    from shared.gcp_bigquery import bigquery_client

    rig.seed_games(final=SEVEN)
    table = f"{rig.cloud.project}.{rig.definition.games.schedule_table}"
    with pytest.raises(gexc.BadRequest):
        list(bigquery_client(rig.cloud.project).query(f"SELECT game_id FROM `{table}`").result())


# ----------------------------------------------------------------------------- gate configuration errors


@pytest.mark.parametrize(
    ("mutate", "match"),
    [
        (lambda d: d["games"].update(schedule_status_column="status_code"), "status_code"),
        (lambda d: d["games"].update(schedule_table=d["games"]["schedule_table"] + "_typo"), "_typo"),
    ],
    ids=["unknown column (400)", "unknown table (404)"],
)
def test_a_misconfigured_gate_is_acked_recorded_and_alerted_never_redelivered(
    cloud: LocalCloud, unique: str, mutate: Any, match: str, caplog: pytest.LogCaptureFixture
) -> None:
    good = Rig.create(cloud, unique)
    good.seed_games(final=SEVEN, sources={"gamebook": [g[0] for g in SEVEN]})
    broken = build_service(
        "phase2_to_phase3",
        definition=_mutated(unique, mutate),
        clock=good.clock,
        environ=cloud.env(),
    )
    outcome = None
    for p in PHASE2:
        outcome = broken.handle_event(good.event(good.completion(p, 2)))  # returns: acked, not raised
    assert outcome is not None and outcome.kind == "gate_error" and match in outcome.detail
    state = broken.state.load(GAME_DATE)
    assert state.status == "gate_error" and state.claim is None and state.triggered_current is None
    assert any(r.levelname == "ERROR" and "GATE ERROR" in r.getMessage() for r in caplog.records)
    assert good.pull_triggers("phase2_to_phase3") == []
    # a redelivery finds the same error: acked again, not logged again
    good.clock.advance(minutes=10)
    assert broken.handle_event(good.event(good.completion(PHASE2[-1], 2))).kind == "gate_error"
    assert [r["status"] for r in good.log_rows()] == ["gate_error"]
    # the configuration is fixed: the next evaluation (the monitor's pass) triggers
    fixed = good.services["phase2_to_phase3"]
    assert fixed.evaluate(GAME_DATE).kind == "triggered"
    assert len(good.pull_triggers("phase2_to_phase3")) == 1


def _mutated(suffix: str, mutate: Any) -> Any:
    from tests.support.rig import isolated_definition

    return isolated_definition(suffix, mutate)


# ----------------------------------------------------------------------------- upstream completions


def upstream_event(rig: Rig, path: Path) -> dict[str, Any]:
    message = json.loads(path.read_text())["message"]
    message["timestamp"] = rig.clock.now().isoformat()  # not stale
    return rig.event(json.dumps(message).encode(), attributes=None)


def test_upstream_phase3_completions_trigger_phase4_once_per_source_table(rig: Rig) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    svc = rig.services["phase3_to_phase4"]
    files = sorted((UPSTREAM / "phase3").glob("*__success.json"))
    kinds = [svc.handle_event(upstream_event(rig, f)).kind for f in files for _ in range(3)]
    assert kinds.count("triggered") == 1 and "quarantined" not in kinds
    messages = rig.pull_messages("phase3_to_phase4")
    assert len({m.trigger_id for m in messages}) == 1
    tables = sorted(m.source_table or "" for m in messages)
    assert len(tables) == len(set(tables)) and set(tables) <= {
        "player_game_summary", "team_defense_game_summary", "team_offense_game_summary",
        "upcoming_player_game_context", "upcoming_team_game_context",
    }
    assert all(m.analysis_date == GAME_DATE and m.success for m in messages)


def test_upstream_failed_analytics_completion_reaches_auto_retry(rig: Rig) -> None:
    svc = rig.services["phase3_to_phase4"]
    outcome = svc.handle_event(upstream_event(rig, UPSTREAM / "phase3" / "player_game_summary__failed.json"))
    assert outcome.kind == "waiting"
    (handoff,) = svc.state.outbox.pending_handoffs()  # written with the completion; no BigQuery in the transition
    assert handoff[1]["processor"] == "player_game_summary"
    (row,) = rig.retry_rows()  # auto-retry delivers the outbox (on the transition's nudge)
    assert (row.processor_name, row.status, row.error_type) == ("player_game_summary", "pending", "str")
    assert svc.state.outbox.pending_handoffs() == []


# ----------------------------------------------------------------------------- 4→5: the coordinator's /start


@pytest.fixture
def coordinator() -> Iterator[StartEndpoint]:
    endpoint = StartEndpoint()
    yield endpoint
    endpoint.close()


def bodies(endpoint: StartEndpoint) -> list[dict[str, Any]]:
    return [r["body"] for r in endpoint.received]


PHASE4 = ["team_defense_zone_analysis", "player_shot_zone_analysis", "player_composite_factors",
          "player_daily_cache", "ml_feature_store"]


def rig_45(cloud: LocalCloud, unique: str, coordinator: StartEndpoint) -> Rig:
    def no_auth(data: dict[str, Any]) -> None:
        t = next(t for t in data["transitions"] if t["name"] == "phase4_to_phase5")
        t["delivery"]["http"]["auth"] = "none"

    rig = Rig.create(cloud, unique, mutate=no_auth)
    rig.seed_outputs()  # the phase 4 rows the 4→5 gates read
    svc = rig.services["phase4_to_phase5"]
    http = rig.definition.transition("phase4_to_phase5").delivery.http
    assert http is not None
    svc.http = HttpDeliverer(http, {http.url_env: coordinator.url})
    return rig


def test_coordinator_start_is_called_once_per_trigger_id(
    cloud: LocalCloud, unique: str, coordinator: StartEndpoint
) -> None:
    rig = rig_45(cloud, unique, coordinator)
    svc = rig.services["phase4_to_phase5"]
    kinds = [svc.handle_event(rig.event(rig.completion(p, 4))).kind for p in PHASE4 for _ in range(2)]
    assert kinds.count("triggered") == 1
    assert [b["trigger_id"] for b in bodies(coordinator)] == ["phase4_to_phase5:2026-01-24:g1"]
    assert bodies(coordinator)[0]["game_date"] == "2026-01-24"
    (trigger,) = rig.pull_triggers("phase4_to_phase5")
    assert trigger.trigger_id == bodies(coordinator)[0]["trigger_id"]
    state = svc.state.load(GAME_DATE)
    assert (state.triggered_current or {})["http"]["status"] == 202


def test_coordinator_5xx_redelivers_and_a_second_post_delivers(
    cloud: LocalCloud, unique: str, coordinator: StartEndpoint
) -> None:
    rig = rig_45(cloud, unique, coordinator)
    svc = rig.services["phase4_to_phase5"]
    for p in PHASE4[:-1]:
        svc.handle_event(rig.event(rig.completion(p, 4)))
    coordinator.statuses.append(503)
    last = rig.event(rig.completion(PHASE4[-1], 4))
    with pytest.raises(TransientError, match="503"):
        svc.handle_event(last)
    state = svc.state.load(GAME_DATE)
    assert state.triggered_current is None and state.claim is None  # retriggerable (L01)
    assert svc.handle_event(last).kind == "triggered"  # Pub/Sub redelivers
    assert len(bodies(coordinator)) == 2
    triggers = rig.pull_triggers("phase4_to_phase5")
    assert {t.trigger_id for t in triggers} == {"phase4_to_phase5:2026-01-24:g1"}  # at least once, one id


def test_a_crash_after_the_post_does_not_call_the_coordinator_again(
    cloud: LocalCloud, unique: str, coordinator: StartEndpoint
) -> None:
    rig = rig_45(cloud, unique, coordinator)
    svc = rig.services["phase4_to_phase5"]
    for p in PHASE4[:-1]:
        svc.handle_event(rig.event(rig.completion(p, 4)))
    latch = svc.state.mark_triggered

    def crash(*args: Any, **kwargs: Any) -> Any:
        raise TransientError("instance killed between the POST and the latch")

    svc.state.mark_triggered = crash  # type: ignore[method-assign]
    last = rig.event(rig.completion(PHASE4[-1], 4))
    with pytest.raises(TransientError, match="instance killed"):
        svc.handle_event(last)
    svc.state.mark_triggered = latch  # type: ignore[method-assign]
    assert svc.handle_event(last).kind == "claimed_elsewhere"  # the crashed attempt's claim is live
    rig.clock.advance(minutes=11)  # past the claim's TTL: the redelivery (or the monitor) finishes
    assert svc.handle_event(last).kind == "triggered"
    assert len(bodies(coordinator)) == 1  # recorded before the latch: not called again
    assert (svc.state.load(GAME_DATE).triggered_current or {})["http"]["repeat"].startswith("already delivered")


def test_a_refused_start_call_keeps_the_trigger_and_alerts(
    cloud: LocalCloud, unique: str, coordinator: StartEndpoint, caplog: pytest.LogCaptureFixture
) -> None:
    rig = rig_45(cloud, unique, coordinator)
    svc = rig.services["phase4_to_phase5"]
    coordinator.statuses.append(400)
    kinds = [svc.handle_event(rig.event(rig.completion(p, 4))).kind for p in PHASE4]
    assert kinds[-1] == "triggered"
    http = (svc.state.load(GAME_DATE).triggered_current or {})["http"]
    assert http["delivered"] is False and "400" in http["error"]
    assert any("http_delivery_rejected" in str(getattr(r, "labels", "")) or "refused" in r.getMessage()
               for r in caplog.records if r.levelname == "ERROR")

