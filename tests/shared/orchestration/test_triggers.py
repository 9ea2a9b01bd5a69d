"""Our triggers carry what the replaced system's consumers read, one fixture-based test per consumer.

Each consumer's reads are restated from its code (cited), and their allowed values come from
``tests/data/upstream/consumers/<consumer>.json`` (najicham/nba-stats-scraper@18f6ecfe). The
messages are built by ``build_triggers`` and round-tripped through JSON, as they go on the wire.
"""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.contracts.messages import PhaseTrigger, TriggerStatus
from shared.orchestration.triggers import build_triggers, http_body, source_tables
from shared.pipeline.definition import load_definition

CONSUMERS = Path(__file__).resolve().parents[2] / "data" / "upstream" / "consumers"
D = load_definition()
GAME_DATE = date(2026, 1, 24)
NOW = datetime(2026, 1, 25, 8, 2, 47, tzinfo=UTC)


def consumer(name: str) -> dict[str, Any]:
    return dict(json.loads((CONSUMERS / f"{name}.json").read_text()))


def allowed(name: str, field: str) -> list[Any]:
    read = next(r for r in consumer(name)["reads"] if r["field"] == field)
    return list(read["allowed"])


def wire(transition: str, done: list[str] | None = None) -> list[dict[str, Any]]:
    t = D.transition(transition)
    processors = done if done is not None else list(t.expected or t.processor_sets()[0][1])
    triggers = build_triggers(
        D,
        t,
        game_date=GAME_DATE,
        generation=1,
        status=TriggerStatus.PARTIAL,
        reason="all critical done",
        mode=None,
        processors_done=processors,
        correlation_id="b3f0d815",
        missing_games=["20260124_GSW_MIN"],
        now=NOW,
    )
    messages = [json.loads(m.to_json_bytes()) for m in triggers]
    for m in messages:  # what a consumer of ours decodes is the same contract
        assert PhaseTrigger.model_validate(m).trigger_id == f"{transition}:2026-01-24:g1"
    return messages


def phase3_reads(message: dict[str, Any]) -> tuple[str, str | None]:
    """main_analytics_service.py:870-898: (outcome, source table)."""
    raw_table = message.get("output_table") or message.get("source_table")
    status = message.get("status", "success")
    success = message.get("success", status == "success")
    if not success or status == "failed":
        return "skipped", None
    if not raw_table:
        return "400", None
    return "run", raw_table.split(".")[-1]


def test_phase3_analytics_runs_one_table_per_message_and_never_skips_ours() -> None:
    messages = wire("phase2_to_phase3")
    groups = set(allowed("phase3_analytics", "output_table"))
    outcomes = [phase3_reads(m) for m in messages]
    assert all(kind == "run" for kind, _ in outcomes), outcomes
    tables = [table for _, table in outcomes]
    assert tables == source_tables(D, D.transition("phase2_to_phase3").expected)
    # the tables its ANALYTICS_TRIGGER_GROUPS start from are all delivered
    expected_runs = {D.processor(p).output_table for p in D.transition("phase2_to_phase3").expected} & groups
    assert expected_runs and expected_runs <= set(tables)
    assert all(m["game_date"] == "2026-01-24" for m in messages)
    assert [m["part"] for m in messages] == list(range(1, len(messages) + 1))
    assert len({m["trigger_id"] for m in messages}) == 1
    assert len({PhaseTrigger.model_validate(m).message_key for m in messages}) == len(messages)


def test_phase4_precompute_gets_source_table_and_analysis_date() -> None:
    """main_precompute_service.py:134-164: source_table required, analysis_date %Y-%m-%d, success."""
    messages = wire("phase3_to_phase4")
    tables = set(allowed("phase4_precompute", "source_table"))
    assert len(messages) == 5
    for m in messages:
        assert m.get("success", True) is True
        assert m["source_table"] in tables
        analysis = m.get("analysis_date") or m.get("game_date")
        assert datetime.strptime(analysis, "%Y-%m-%d").date() == GAME_DATE
        assert m["correlation_id"] == "b3f0d815" and m["trigger_source"] == "orchestrator"
    assert {m["source_table"] for m in messages} == tables  # the replaced orchestrator sends all five


def test_phase4_same_day_trigger_sends_only_the_tables_that_completed() -> None:
    messages = wire("phase3_to_phase4", ["upcoming_player_game_context"])
    assert [(m["source_table"], m["part"], m["parts"]) for m in messages] == [("upcoming_player_game_context", 1, 1)]


def test_prediction_coordinator_start_body() -> None:
    """coordinator.py:919-961: game_date YYYY-MM-DD (or TODAY/TOMORROW); no `force` (an active batch → 409)."""
    (message,) = wire("phase4_to_phase5")
    assert "source_table" not in message or message["source_table"] is None
    body = http_body(PhaseTrigger.model_validate(message))
    assert datetime.strptime(body["game_date"], "%Y-%m-%d").date() == GAME_DATE
    assert "force" not in body and body["trigger_id"] == "phase4_to_phase5:2026-01-24:g1"
    assert body["correlation_id"] == "b3f0d815"
    http = consumer("prediction_coordinator")["http"]
    assert D.transition("phase4_to_phase5").delivery.http is not None
    assert D.transition("phase4_to_phase5").delivery.http.path == http["path"] == "/start"
    assert set(consumer("prediction_coordinator")["http"]["body"]) <= set(body)


def test_phase6_export_gets_target_date_and_real_export_types() -> None:
    """phase6_export/main.py:399-411: a non-empty export_types list, target_date, no players/sport."""
    (message,) = wire("phase5_to_phase6", ["prediction_coordinator"])
    known = set(allowed("phase6_export", "export_types"))
    assert message["export_types"] and set(message["export_types"]) <= known
    assert message["export_types"] == consumer("phase6_export")["real_orchestrator_message"]["export_types"]
    assert message["target_date"] == "2026-01-24"
    assert "players" not in message and message.get("sport", "nba") == "nba"


@pytest.mark.parametrize("transition", [t.name for t in D.transitions])
def test_every_message_carries_the_common_consumer_fields(transition: str) -> None:
    for m in wire(transition):
        assert m["success"] is True and m["correlation_id"] == "b3f0d815"
        assert m["trigger_source"] == "orchestrator" and m["triggered_by"] == f"phasechain:{transition}"
        assert m["analysis_date"] == m["game_date"] == "2026-01-24"
