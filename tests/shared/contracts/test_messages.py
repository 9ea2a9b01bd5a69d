"""The contract models: normalisation, validation errors and their messages, trigger ids."""

from __future__ import annotations

import importlib
import json
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest
from pydantic import BaseModel, ValidationError

import shared.contracts as contracts
from shared.contracts.messages import (
    CompletionStatus,
    ContractModel,
    ErrorType,
    MonitorTick,
    PhaseTrigger,
    ProcessorCompletion,
    RetryRequest,
    RetryTick,
    TriggerStatus,
    make_trigger_id,
)

GAME_DATE = date(2026, 1, 24)
WHEN = datetime(2026, 1, 25, 8, 12, 45, tzinfo=UTC)
_DROP = object()  # marks a key to leave out of the payload


def completion(**overrides: Any) -> dict[str, Any]:
    payload: dict[str, Any] = {
        "processor_name": "player_game_summary",
        "phase": 3,
        "execution_id": "exec-1",
        "game_date": "2026-01-24",
        "status": "success",
        "timestamp": "2026-01-25T08:12:45Z",
    }
    payload.update(overrides)
    return {k: v for k, v in payload.items() if v is not _DROP}


def trigger(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "trigger_id": make_trigger_id("phase2_to_phase3", GAME_DATE, 1),
        "transition": "phase2_to_phase3",
        "source_phase": 2,
        "target_phase": 3,
        "game_date": GAME_DATE,
        "status": TriggerStatus.COMPLETE,
        "reason": "all expected processors completed",
        "generation": 1,
        "triggered_at": WHEN,
        "processors_completed": ["nbac_schedule", "bdl_player_boxscores", "nbac_gamebook_player_stats"],
    }
    fields.update(overrides)
    return fields


def error_messages(exc_info: pytest.ExceptionInfo[ValidationError]) -> dict[str, str]:
    return {".".join(str(p) for p in err["loc"]): err["msg"] for err in exc_info.value.errors()}


# ---- ProcessorCompletion ---------------------------------------------------------------


def test_minimal_completion_gets_documented_defaults() -> None:
    model = ProcessorCompletion.model_validate(completion())
    assert model.phase == 3
    assert model.game_date == GAME_DATE
    assert model.status is CompletionStatus.SUCCESS
    assert (model.record_count, model.records_failed) == (0, 0)
    assert model.correlation_id is None and model.error_type is None and model.completion_pct is None
    assert model.metadata == {}
    assert model.timestamp == WHEN


@pytest.mark.parametrize(
    "raw", [3, "3", "phase3", "phase_3", "Phase_3", "PHASE3", "phase_3_analytics", "Phase_3_Analytics"]
)
def test_phase_spellings_normalise_to_int(raw: object) -> None:
    assert ProcessorCompletion.model_validate(completion(phase=raw)).phase == 3


@pytest.mark.parametrize(
    "raw",
    [0, 10, -1, "phase_0", "phase 3", "p3", "three", "", True, None, 3.5, "phase_0_raw", "phase_3_", "phase_3-raw"],
)
def test_phase_outside_1_to_9_or_unknown_spelling_is_rejected(raw: object) -> None:
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(phase=raw))
    assert "phase" in error_messages(exc_info)


def test_phase_error_message_lists_accepted_spellings() -> None:
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(phase="phase_x"))
    assert "'phase_2' or 'phase_2_raw'" in error_messages(exc_info)["phase"]


def test_target_date_is_accepted_as_alias_of_game_date() -> None:
    payload = completion(game_date=_DROP, target_date="2026-01-24")
    assert ProcessorCompletion.model_validate(payload).game_date == GAME_DATE


def test_game_date_and_target_date_that_agree_are_accepted() -> None:
    payload = completion(game_date="2026-01-24", target_date=GAME_DATE)
    assert ProcessorCompletion.model_validate(payload).game_date == GAME_DATE


def test_game_date_and_target_date_that_disagree_are_rejected() -> None:
    with pytest.raises(ValidationError, match=r"game_date \(2026-01-24\) and its alias target_date \(2026-01-25\)"):
        ProcessorCompletion.model_validate(completion(target_date="2026-01-25"))


def test_null_game_date_falls_back_to_target_date() -> None:
    payload = completion(game_date=None, target_date="2026-01-24")
    assert ProcessorCompletion.model_validate(payload).game_date == GAME_DATE


def test_invalid_target_date_next_to_valid_game_date_is_rejected() -> None:
    with pytest.raises(ValidationError, match="target_date: relative date 'today'"):
        ProcessorCompletion.model_validate(completion(target_date="today"))


def test_populate_by_name_keeps_game_date_constructor_working() -> None:
    model = ProcessorCompletion(
        processor_name="p",
        phase=2,
        execution_id="e",
        game_date=GAME_DATE,
        status=CompletionStatus.NO_DATA,
        timestamp=WHEN,
    )
    assert model.game_date == GAME_DATE


@pytest.mark.parametrize("literal", ["TODAY", "today", "Yesterday", "TOMORROW", "now"])
def test_relative_date_literals_are_rejected_with_a_clear_message(literal: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(game_date=literal))
    message = error_messages(exc_info)["game_date"]
    assert f"relative date {literal!r} is not allowed" in message
    assert "explicit YYYY-MM-DD" in message


@pytest.mark.parametrize(
    ("raw", "fragment"),
    [
        ("2026-02-30", "is not a real calendar date"),
        ("2026/01/24", "expected an explicit YYYY-MM-DD date"),
        ("2026-01-24T00:00:00", "expected an explicit YYYY-MM-DD date"),
        ("20260124", "expected an explicit YYYY-MM-DD date"),
        ("２０２６-01-24", "expected an explicit YYYY-MM-DD date"),  # noqa: RUF001 - full-width digits
        (20260124, "got int"),
        (datetime(2026, 1, 24, tzinfo=UTC), "got a datetime"),
        (None, "got null"),
    ],
)
def test_game_date_accepts_only_explicit_iso_dates(raw: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(game_date=raw))
    assert fragment in error_messages(exc_info)["game_date"]


def test_naive_timestamp_is_rejected_with_a_clear_message() -> None:
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(timestamp="2026-01-25T08:12:45"))
    assert "no timezone (naive)" in error_messages(exc_info)["timestamp"]


@pytest.mark.parametrize("raw", [5, 1769328765, 1769328765123, 1.5, True])
def test_a_numeric_timestamp_is_rejected(raw: object) -> None:
    """Found by the fuzzed-payload test: ``"timestamp": 5`` was read as 1970-01-01T00:00:05Z and the
    message recorded instead of quarantined. An epoch number says neither its unit nor its zone."""
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(timestamp=raw))
    assert "not a number" in error_messages(exc_info)["timestamp"]


def test_timestamp_keeps_its_offset() -> None:
    model = ProcessorCompletion.model_validate(completion(timestamp="2026-01-25T03:12:45-05:00"))
    assert model.timestamp == WHEN
    assert model.timestamp.utcoffset() == timedelta(hours=-5)


def test_missing_required_fields_are_all_reported() -> None:
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate({})
    assert set(error_messages(exc_info)) == {
        "processor_name",
        "phase",
        "execution_id",
        "game_date",
        "status",
        "timestamp",
    }


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("processor_name", ""),
        ("processor_name", "   "),
        ("execution_id", ""),
        ("record_count", -1),
        ("records_failed", -1),
        ("duration_seconds", -0.1),
        ("completion_pct", -1),
        ("completion_pct", float("nan")),
        ("duration_seconds", float("inf")),
        ("status", "succeeded"),
        ("error_type", 5),
        ("processor_name", "x" * 201),
    ],
)
def test_out_of_range_or_unknown_values_are_rejected(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(**{field: value}))
    assert field in error_messages(exc_info)


def test_unknown_keys_from_processors_are_kept_bounded_never_rejected() -> None:
    model = ProcessorCompletion.model_validate(
        completion(processor_version="3.2.1", parent_processor="NbacScheduleProcessor", note="x" * 5000)
    )
    kept = model.unknown_fields()
    assert kept["processor_version"] == "3.2.1" and kept["parent_processor"] == "NbacScheduleProcessor"
    assert len(kept["note"]) == 500 and kept["note"].endswith("...")


def test_failed_status_may_carry_error_type_and_success_with_error_type_is_accepted() -> None:
    failed = ProcessorCompletion.model_validate(
        completion(status="failed", error_type="transient", error_message="BigQuery 503")
    )
    assert failed.error_type == "transient" and failed.error_class is ErrorType.TRANSIENT
    odd = ProcessorCompletion.model_validate(completion(status="success", error_type="permanent"))
    assert odd.status is CompletionStatus.SUCCESS


@pytest.mark.parametrize(
    ("error_type", "expected"),
    [
        (None, None),
        ("", None),
        ("transient", ErrorType.TRANSIENT),
        ("PERMANENT", ErrorType.PERMANENT),
        ("ValueError", ErrorType.PERMANENT),
        ("google.api_core.exceptions.NotFound", ErrorType.PERMANENT),
        ("Forbidden", ErrorType.PERMANENT),
        ("ServiceUnavailable", ErrorType.TRANSIENT),
        ("TimeoutError", ErrorType.TRANSIENT),
        # the replaced analytics/precompute bases send type(error).__name__ of a str message
        ("str", ErrorType.TRANSIENT),
        ("SomethingNobodyListed", ErrorType.TRANSIENT),
    ],
)
def test_error_type_is_free_text_classified_by_the_documented_rule(
    error_type: str | None, expected: ErrorType | None
) -> None:
    model = ProcessorCompletion.model_validate(completion(status="failed", error_type=error_type))
    assert model.error_type == error_type
    assert model.error_class is expected


def test_long_error_type_is_kept_truncated() -> None:
    model = ProcessorCompletion.model_validate(completion(status="failed", error_type="E" * 1000))
    assert model.error_type is not None and len(model.error_type) == 200


def test_prediction_coordinator_completion_carries_pct_and_count() -> None:
    model = ProcessorCompletion.model_validate(
        completion(processor_name="prediction_coordinator", phase=5, completion_pct=92.5, record_count=420)
    )
    assert (model.completion_pct, model.record_count) == (92.5, 420)


def test_prediction_counts_are_read_from_metadata_when_not_at_the_top_level() -> None:
    """The replaced coordinator (coordinator.py:3954) sends completion_pct and counts in metadata."""
    meta = {"completion_pct": 96.4, "completed_predictions": 412, "expected_predictions": 427, "batch_id": "b"}
    model = ProcessorCompletion.model_validate(
        completion(processor_name="PredictionCoordinator", phase="phase_5_predictions", record_count=3, metadata=meta)
    )
    assert (model.completion_pct, model.completed_predictions, model.expected_predictions) == (96.4, 412, 427)
    assert model.predictions == 412 and model.effective_completion_pct == 96.4
    top = ProcessorCompletion.model_validate(
        completion(phase=5, completion_pct=50.0, metadata={"completion_pct": 99.0})
    )
    assert top.completion_pct == 50.0  # the top level wins


def test_completion_pct_is_computed_from_counts_when_only_counts_are_sent() -> None:
    model = ProcessorCompletion.model_validate(
        completion(phase=5, metadata={"completed_predictions": 45, "expected_predictions": 50})
    )
    assert model.completion_pct is None and model.effective_completion_pct == 90.0


def test_processor_name_is_stripped() -> None:
    assert ProcessorCompletion.model_validate(completion(processor_name=" nbac_schedule ")).processor_name == (
        "nbac_schedule"
    )


def test_models_are_frozen() -> None:
    model = ProcessorCompletion.model_validate(completion())
    with pytest.raises(ValidationError):
        model.record_count = 5  # type: ignore[misc]


# ---- PhaseTrigger ----------------------------------------------------------------------


def test_trigger_id_is_deterministic() -> None:
    assert make_trigger_id("phase2_to_phase3", GAME_DATE, 1) == "phase2_to_phase3:2026-01-24:g1"
    assert make_trigger_id("phase2_to_phase3", GAME_DATE, 1) == make_trigger_id(
        "phase2_to_phase3", date(2026, 1, 24), 1
    )
    assert make_trigger_id("phase5_to_phase6", GAME_DATE, 12) == "phase5_to_phase6:2026-01-24:g12"


def test_trigger_rejects_an_id_that_does_not_match_its_fields() -> None:
    with pytest.raises(ValidationError, match=r"expected 'phase2_to_phase3:2026-01-24:g2'"):
        PhaseTrigger.model_validate(trigger(generation=2))


def test_trigger_attributes_are_strings_for_pubsub() -> None:
    model = PhaseTrigger.model_validate(trigger(status=TriggerStatus.DEADLINE_EXCEEDED))
    assert model.attributes() == {
        "trigger_id": "phase2_to_phase3:2026-01-24:g1",
        "transition": "phase2_to_phase3",
        "game_date": "2026-01-24",
        "generation": "1",
        "status": "deadline_exceeded",
    }


def test_phase6_trigger_carries_target_date_and_export_types() -> None:
    model = PhaseTrigger.model_validate(
        trigger(
            trigger_id=make_trigger_id("phase5_to_phase6", GAME_DATE, 1),
            transition="phase5_to_phase6",
            source_phase=5,
            target_phase=6,
            target_date=GAME_DATE,
            export_types=["predictions", "best_bets"],
            processors_completed=["prediction_coordinator"],
        )
    )
    assert model.target_date == GAME_DATE
    assert model.export_types == ["predictions", "best_bets"]
    assert model.missing_games == [] and model.metadata == {}


@pytest.mark.parametrize(
    ("field", "value", "fragment"),
    [
        ("generation", 0, "greater than or equal to 1"),
        ("unexpected", "x", "Extra inputs are not permitted"),
        ("triggered_at", datetime(2026, 1, 25, 8, 0), "no timezone"),
        ("status", "done", "'complete', 'partial' or 'deadline_exceeded'"),
        ("source_phase", "phase_2", "valid integer"),
    ],
)
def test_trigger_validation_errors_name_the_problem(field: str, value: object, fragment: str) -> None:
    with pytest.raises(ValidationError) as exc_info:
        PhaseTrigger.model_validate(trigger(**{field: value}))
    assert fragment in error_messages(exc_info).get(field, "")


def test_to_json_bytes_is_compact_with_iso_dates() -> None:
    model = PhaseTrigger.model_validate(
        trigger(triggered_at=datetime(2026, 1, 25, 3, 0, tzinfo=timezone(-timedelta(hours=5))))
    )
    raw = model.to_json_bytes()
    assert b"\n" not in raw and b", " not in raw and b": " not in raw
    decoded = json.loads(raw)
    assert decoded["game_date"] == "2026-01-24"
    assert decoded["triggered_at"] == "2026-01-25T03:00:00-05:00"
    assert decoded["status"] == "complete"


# ---- Scheduler payloads and RetryRequest ----------------------------------------------


def test_scheduler_ticks_default_from_an_empty_object() -> None:
    assert MonitorTick.model_validate({}) == MonitorTick(check="transitions", lookback_days=None, dry_run=False)
    assert RetryTick.model_validate({}) == RetryTick(max_rows=50, dry_run=False)


@pytest.mark.parametrize(
    ("model", "payload", "field"),
    [
        (MonitorTick, {"check": "processors"}, "check"),
        (MonitorTick, {"lookback_days": 0}, "lookback_days"),
        (MonitorTick, {"dryrun": True}, "dryrun"),
        (RetryTick, {"max_rows": 0}, "max_rows"),
        (RetryTick, {"max_rows": 1001}, "max_rows"),
        (RetryTick, {"dry_run": "maybe"}, "dry_run"),
    ],
)
def test_scheduler_ticks_reject_bad_values_and_typos(
    model: type[BaseModel], payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(ValidationError) as exc_info:
        model.model_validate(payload)
    assert field in error_messages(exc_info)


def retry_request(**overrides: Any) -> dict[str, Any]:
    fields: dict[str, Any] = {
        "request_id": "req-1",
        "queue_id": "queue-1",
        "processor_name": "espn_boxscores",
        "phase": 2,
        "game_date": "2026-01-24",
        "attempt": 1,
        "fallback_for": "bdl_player_boxscores",
        "game_ids": ["0022500612"],
        "requested_at": "2026-01-25T09:00:00Z",
    }
    fields.update(overrides)
    return fields


def test_retry_request_for_a_fallback_source() -> None:
    model = RetryRequest.model_validate(retry_request())
    assert model.fallback_for == "bdl_player_boxscores"
    assert model.game_ids == ["0022500612"]
    assert model.correlation_id is None


@pytest.mark.parametrize(
    ("field", "value"),
    [("attempt", 0), ("game_date", "TODAY"), ("requested_at", "2026-01-25T09:00:00"), ("phase", 0), ("x", 1)],
)
def test_retry_request_rejects_bad_fields(field: str, value: object) -> None:
    with pytest.raises(ValidationError) as exc_info:
        RetryRequest.model_validate(retry_request(**{field: value}))
    assert field in error_messages(exc_info)


@pytest.mark.parametrize("model_type", [PhaseTrigger, RetryRequest, MonitorTick, RetryTick])
def test_outbound_and_scheduler_models_forbid_unknown_keys(model_type: type[ContractModel]) -> None:
    assert model_type.model_config.get("extra") == "forbid"
    assert ProcessorCompletion.model_config.get("extra") == "allow"  # inbound: kept, never a reason to reject


# ---- package -------------------------------------------------------------------------


def test_package_exports_every_public_name_lazily() -> None:
    lazy: dict[str, str] = vars(contracts)["_LAZY"]
    assert sorted(contracts.__all__) == sorted(lazy)
    for name, module in lazy.items():
        defined_in = importlib.import_module(module, "shared.contracts")
        assert getattr(contracts, name) is getattr(defined_in, name)


@pytest.mark.parametrize("stamp", ["9999-12-31T23:30:00-01:00", "0001-01-01T00:30:00+01:00"])
def test_a_timestamp_that_overflows_in_utc_is_rejected(stamp: str) -> None:
    """Valid ISO 8601, but not representable in UTC (nor storable): a 500 until dead-lettered, before."""
    with pytest.raises(ValidationError) as exc_info:
        ProcessorCompletion.model_validate(completion(timestamp=stamp))
    assert "out of range when converted to UTC" in error_messages(exc_info)["timestamp"]
