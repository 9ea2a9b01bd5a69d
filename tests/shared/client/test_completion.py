"""The processor-side client builds what the replaced publisher builds, and we accept it."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from typing import Any

import pytest

from shared.client.completion import COMPLETION_STATUSES, build_completion, phase_string
from shared.contracts.decode import PubSubMessage, decode_payload
from shared.contracts.messages import ProcessorCompletion
from shared.pipeline.definition import load_definition

NOW = datetime(2026, 1, 25, 7, 41, 12, 345678, tzinfo=UTC)

# The replaced publisher's envelope keys, in order (unified_pubsub_publisher.py:178-206 at
# najicham/nba-stats-scraper@18f6ecfe) and its required fields (_validate_message, 238-246).
UPSTREAM_KEYS = [
    "processor_name", "phase", "execution_id", "correlation_id", "game_date", "output_table",
    "output_dataset", "status", "record_count", "records_failed", "timestamp", "duration_seconds",
    "parent_processor", "trigger_source", "trigger_message_id", "error_message", "error_type", "metadata",
]
UPSTREAM_REQUIRED = ["processor_name", "phase", "execution_id", "correlation_id", "game_date", "status", "timestamp"]


def upstream_validate(message: dict[str, Any]) -> bool:
    """The replaced system's ``_validate_message``, restated."""
    return all(k in message for k in UPSTREAM_REQUIRED) and message["status"] in COMPLETION_STATUSES


def test_message_has_the_upstream_keys_in_order_and_drops_none() -> None:
    message = build_completion(
        processor_name="PlayerGameSummaryProcessor",
        phase=3,
        game_date=date(2026, 1, 24),
        status="success",
        execution_id="a1b2c3d4",
        output_table="player_game_summary",
        output_dataset="nba_analytics",
        record_count=212,
        now=NOW,
    )
    present = [k for k in UPSTREAM_KEYS if k in message]
    assert list(message) == present
    assert message["phase"] == "phase_3_analytics"
    assert message["correlation_id"] == "a1b2c3d4"  # defaults to execution_id, as upstream
    assert message["timestamp"] == "2026-01-25T07:41:12.345678+00:00"  # datetime.isoformat() of UTC
    assert message["records_failed"] == 0 and message["trigger_source"] == "pubsub" and message["metadata"] == {}
    assert "error_type" not in message and "duration_seconds" not in message
    assert upstream_validate(message)


@pytest.mark.parametrize("status", COMPLETION_STATUSES)
@pytest.mark.parametrize("phase", [2, 3, 4, 5])
def test_every_status_and_phase_is_accepted_by_us_and_by_the_replaced_validator(status: str, phase: int) -> None:
    definition = load_definition()
    proc = definition.processors_of(phase)[0]
    message = build_completion(
        processor_name=proc.aliases[0] if proc.aliases else proc.name,
        phase=phase,
        game_date="2026-01-24",
        status=status,
        error_message="boom" if status == "failed" else None,
        error_type="str" if status == "failed" else None,
        now=NOW,
    )
    assert upstream_validate(message)
    model = decode_payload(PubSubMessage(json.dumps(message).encode()), ProcessorCompletion)
    assert model.phase == phase and model.game_date == date(2026, 1, 24)
    assert definition.normalise_processor(phase, model.processor_name, model.output_table) == proc.name


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"status": "succeeded"}, "status must be one of"),
        ({"game_date": "TODAY"}, "explicit YYYY-MM-DD"),
        ({"game_date": "2026-02-30"}, "day is out of range"),
        ({"game_date": datetime(2026, 1, 24, tzinfo=UTC)}, "explicit YYYY-MM-DD"),
        ({"processor_name": " "}, "must not be empty"),
        ({"record_count": -1}, "must not be negative"),
        ({"phase": 0}, "1..9"),
        ({"phase": "analytics"}, "phase_3_analytics"),
        ({"now": datetime(2026, 1, 25)}, "timezone-aware"),
    ],
)
def test_bad_fields_are_refused_before_publishing(kwargs: dict[str, Any], match: str) -> None:
    fields: dict[str, Any] = {
        "processor_name": "X",
        "phase": 2,
        "game_date": "2026-01-24",
        "status": "success",
        "now": NOW,
        **kwargs,
    }
    with pytest.raises(ValueError, match=match):
        build_completion(**fields)


def test_phase_strings_match_the_replaced_processor_bases() -> None:
    assert [phase_string(n) for n in (2, 3, 4, 5)] == [
        "phase_2_raw",
        "phase_3_analytics",
        "phase_4_precompute",
        "phase_5_predictions",
    ]
    assert phase_string(6) == "phase_6" and phase_string("phase_6_export") == "phase_6_export"


def test_prediction_metadata_reaches_the_phase_5_rule() -> None:
    message = build_completion(
        processor_name="PredictionCoordinator",
        phase=5,
        game_date="2026-01-24",
        status="success",
        record_count=412,
        metadata={"completion_pct": 96.4, "completed_predictions": 412, "expected_predictions": 427},
        now=NOW,
    )
    model = ProcessorCompletion.model_validate(message)
    assert (model.effective_completion_pct, model.predictions) == (96.4, 412)


def test_the_client_has_a_light_closure() -> None:
    """A processor importing the client and building a message loads no pydantic, no Google library."""
    import subprocess
    import sys
    from pathlib import Path

    probe = (
        "import sys\n"
        "from shared.client import build_completion, TriggerInbox\n"
        "build_completion(processor_name='X', phase=2, game_date='2026-01-24', status='success')\n"
        "namespaces = {'google', 'google.cloud'}  # empty namespace packages a .pth file may preload\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] in ('pydantic', 'google', 'grpc',\n"
        "    'functions_framework') and m not in namespaces)\n"
        "print(','.join(heavy))\n"
    )
    root = Path(__file__).resolve().parents[3]
    import os

    env = {k: v for k, v in os.environ.items() if k != "SHARED_EAGER"}  # the probe measures the lazy import
    out = subprocess.run([sys.executable, "-c", probe], cwd=root, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "", out.stdout
