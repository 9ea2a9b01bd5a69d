"""Every golden completion of the replaced system is accepted, normalised and counted (lesson L20).

The fixtures under ``tests/data/upstream/completions/`` are built exactly as
najicham/nba-stats-scraper@18f6ecfe builds them (each records the file and line); see INDEX.md.
They are fed as raw Pub/Sub push bodies without attributes, as that system publishes them.
"""

from __future__ import annotations

import base64
import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest

from shared.clock import FixedClock
from shared.contracts.decode import decode_completion
from shared.contracts.messages import ErrorType
from shared.orchestration.engine import CompletionRecord, Ready, counts_as_done, decide, progress_of
from shared.pipeline.definition import load_definition

UPSTREAM = Path(__file__).resolve().parents[2] / "data" / "upstream" / "completions"
FIXTURES = sorted(UPSTREAM.glob("phase*/*.json"))
DEFINITION = load_definition()
GAME_DATE = date(2026, 1, 24)
MORNING_AFTER = FixedClock(datetime(2026, 1, 25, 14, 0, tzinfo=UTC))


def load(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


def push_body(fixture: dict[str, Any]) -> dict[str, Any]:
    data = json.dumps(fixture["message"], default=str).encode()  # unified_pubsub_publisher.py:283
    return {
        "message": {"data": base64.b64encode(data).decode(), "messageId": "13618472093541822",
                    "publishTime": "2026-01-25T07:41:12.500Z"},
        "subscription": "projects/nba-props-platform/subscriptions/phase3-to-phase4",
    }


def canonical_of(path: Path) -> str:
    return path.stem.split("__")[0]


def record(path: Path) -> CompletionRecord:
    _, completion = decode_completion(push_body(load(path)))
    return CompletionRecord(
        raw_name=completion.processor_name,
        processor=DEFINITION.normalise_processor(
            completion.phase, completion.processor_name, completion.output_table
        ),
        status=str(completion.status),
        execution_id=completion.execution_id,
        completed_at=MORNING_AFTER.now(),
        record_count=completion.record_count,
        completion_pct=completion.effective_completion_pct,
        predictions=completion.completed_predictions,
    )


def test_there_is_a_fixture_for_every_processor_of_the_default_definition() -> None:
    covered = {canonical_of(p) for p in FIXTURES}
    missing = sorted(p.name for p in DEFINITION.processors if p.name not in covered)
    assert missing == [], f"no upstream fixture for {missing}"
    for path in FIXTURES:
        provenance = load(path)["provenance"]
        assert provenance["commit"] == "18f6ecfee0e93e61e3ef16604e9958670a4256f1"
        assert ":" in provenance["call_site"] and ":" in provenance["envelope"], path.name


def test_fixtures_are_shaped_as_the_replaced_publisher_builds_them() -> None:
    """No attributes, no None-valued top-level keys, upstream phase strings, aware ISO timestamps."""
    phases = set()
    for path in FIXTURES:
        fixture = load(path)
        message = fixture["message"]
        assert fixture["attributes"] == {}
        assert None not in message.values(), path.name
        assert message["status"] in ("success", "partial", "no_data", "failed")
        assert datetime.fromisoformat(message["timestamp"]).utcoffset() is not None
        phases.add(message["phase"])
    assert phases == {"phase_2_raw", "phase_3_analytics", "phase_4_precompute", "phase_5_predictions"}


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_fixture_is_accepted_and_normalised_to_its_processor(path: Path) -> None:
    fixture = load(path)
    _, completion = decode_completion(push_body(fixture))
    assert completion.phase == fixture["expected"]["phase"]
    assert completion.game_date == GAME_DATE
    canonical = DEFINITION.normalise_processor(completion.phase, completion.processor_name, completion.output_table)
    assert canonical == canonical_of(path)
    # and by the class name alone (a message without output_table still finds its processor)
    assert DEFINITION.normalise_processor(completion.phase, completion.processor_name) == canonical_of(path)
    # keys this contract does not name are kept, never a reason to reject
    for key in ("trigger_source", "parent_processor", "trigger_message_id"):
        if key in fixture["message"]:
            assert completion.unknown_fields()[key] == fixture["message"][key]


@pytest.mark.parametrize("path", FIXTURES, ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_fixture_counts_by_its_status(path: Path) -> None:
    rec = record(path)
    status = load(path)["message"]["status"]
    assert counts_as_done(DEFINITION, rec) is (status != "failed")  # no_data counts by default (L09)


def test_failed_analytics_completions_reach_auto_retry_as_transient() -> None:
    """error_type is type(error).__name__ of a str upstream (analytics_base.py:1659): "str"."""
    failed = [p for p in FIXTURES if load(p)["message"]["status"] == "failed"]
    assert failed
    for path in failed:
        _, completion = decode_completion(push_body(load(path)))
        assert completion.error_type == "str" and completion.error_class is ErrorType.TRANSIENT


@pytest.mark.parametrize("transition", [t.name for t in DEFINITION.transitions[:3]])
def test_a_night_of_upstream_success_fixtures_makes_each_transition_ready(transition: str) -> None:
    t = DEFINITION.transition(transition)
    records = [record(p) for p in FIXTURES if p.parent.name == f"phase{t.source_phase}" and "__success" in p.name]
    progress = progress_of(DEFINITION, t, GAME_DATE, records, MORNING_AFTER)
    assert set(progress.expected) <= set(progress.done), progress
    decision = decide(DEFINITION, t, GAME_DATE, records, MORNING_AFTER)
    assert isinstance(decision, Ready) and decision.status == "complete", decision.reason


def test_the_coordinators_completion_drives_5_to_6_from_its_metadata() -> None:
    t = DEFINITION.transition("phase5_to_phase6")
    complete = record(UPSTREAM / "phase5" / "prediction_coordinator__success_batch_complete.json")
    stalled = record(UPSTREAM / "phase5" / "prediction_coordinator__success_batch_stalled.json")
    dead = record(UPSTREAM / "phase5" / "prediction_coordinator__summary_success.json")
    assert (complete.completion_pct, complete.prediction_count) == (100.0, 287)
    ready = decide(DEFINITION, t, GAME_DATE, [complete], MORNING_AFTER)
    assert isinstance(ready, Ready) and ready.status == "complete"
    partial = decide(DEFINITION, t, GAME_DATE, [stalled], MORNING_AFTER)
    assert isinstance(partial, Ready) and partial.status == "partial"
    # the dead call site (coordinator.py:4304) reports 0 % and 0 predictions: never enough
    assert decide(DEFINITION, t, GAME_DATE, [dead], MORNING_AFTER).kind == "wait"
