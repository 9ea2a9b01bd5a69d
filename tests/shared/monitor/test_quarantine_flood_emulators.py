"""``quarantine_flood_findings`` on the Firestore emulator: what the monitor reports of a poison flood.

The quarantine counts every bad message per function and window and stores only the first
``max_per_window`` (tests/shared/orchestration/test_quarantine_emulators.py). The monitor reads those
counters: one ``quarantine_flood`` finding per function whose window overflowed recently, with the
counted numbers; ERROR while it floods, WARNING once its window has ended, nothing past the lookback.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import pytest

from deploy.local.emulators import LocalCloud
from shared.clock import FixedClock
from shared.contracts.decode import PubSubMessage
from shared.gcp import firestore_client
from shared.monitor.quarantine_flood import FLOOD_LOOKBACK, quarantine_flood_findings
from shared.orchestration.quarantine import Quarantine
from shared.pipeline.definition import PipelineDefinition
from tests.support.rig import isolated_definition

pytestmark = pytest.mark.integration

START = datetime(2026, 1, 25, 14, 7, tzinfo=UTC)
CAP = 3


@pytest.fixture
def definition(cloud: LocalCloud) -> PipelineDefinition:
    return isolated_definition(uuid.uuid4().hex[:10])


@pytest.fixture
def clock() -> FixedClock:
    return FixedClock(START)


def flood(definition: PipelineDefinition, clock: FixedClock, function: str, count: int) -> None:
    q = Quarantine(
        firestore_client(), definition.pipeline.quarantine_collection, clock, definition.retention, max_per_window=CAP
    )
    for n in range(count):
        message = PubSubMessage(b"garbage", {}, f"{function}-{uuid.uuid4().hex[:8]}-{n}", clock.now())
        q.put(message, reason="data is not valid JSON", transition=function)


def findings(definition: PipelineDefinition, now: datetime) -> list[object]:
    return list(quarantine_flood_findings(firestore_client(), definition, now))


def test_no_finding_without_counters_or_within_the_cap(definition: PipelineDefinition, clock: FixedClock) -> None:
    assert findings(definition, START) == []
    flood(definition, clock, "phase3_to_phase4", CAP)  # every one stored
    assert findings(definition, START) == []


def test_a_flood_under_way_is_an_error_with_the_counted_numbers(
    definition: PipelineDefinition, clock: FixedClock
) -> None:
    flood(definition, clock, "phase3_to_phase4", 8)
    (finding,) = quarantine_flood_findings(firestore_client(), definition, START + timedelta(minutes=10))
    assert finding.kind == "quarantine_flood" and finding.severity == "ERROR"
    assert finding.subject == "phase3_to_phase4" and finding.key == "quarantine_flood__phase3_to_phase4"
    assert finding.message == (
        "quarantine flood on phase3_to_phase4 (still flooding): 8 bad messages in 2026-01-25 14:00 to 15:00 UTC; "
        "5 beyond the cap of 3 a window were acked and counted, not stored"
    )
    assert finding.details == {"function": "phase3_to_phase4", "windows": ["20260125T1400Z"], "max_stored": [CAP]}


def test_an_ended_flood_is_a_warning_until_the_lookback_passes(
    definition: PipelineDefinition, clock: FixedClock
) -> None:
    flood(definition, clock, "phase3_to_phase4", CAP + 1)
    (ended,) = quarantine_flood_findings(firestore_client(), definition, datetime(2026, 1, 25, 15, 30, tzinfo=UTC))
    assert ended.severity == "WARNING" and "(over): 4 bad messages" in ended.message
    assert "1 beyond the cap of 3" in ended.message
    end = datetime(2026, 1, 25, 15, tzinfo=UTC)
    assert len(findings(definition, end + FLOOD_LOOKBACK - timedelta(seconds=1))) == 1
    assert findings(definition, end + FLOOD_LOOKBACK) == []


def test_one_finding_per_function_over_its_windows(definition: PipelineDefinition, clock: FixedClock) -> None:
    flood(definition, clock, "phase3_to_phase4", CAP + 2)
    flood(definition, clock, "auto_retry_processor", CAP)  # at the cap: nothing lost, no finding
    flood(definition, clock, "phase_transition_monitor", CAP + 1)
    clock.advance(hours=1)  # 15:07: the next window floods too
    flood(definition, clock, "phase3_to_phase4", CAP + 4)

    got = quarantine_flood_findings(firestore_client(), definition, clock.now())
    assert [(f.subject, f.severity) for f in got] == [
        ("phase3_to_phase4", "ERROR"),
        ("phase_transition_monitor", "WARNING"),
    ]
    p34 = got[0]
    assert p34.details["windows"] == ["20260125T1400Z", "20260125T1500Z"]
    assert "12 bad messages in 2026-01-25 14:00 to 15:00 UTC, 2026-01-25 15:00 to 16:00 UTC; 6 beyond" in p34.message


def test_the_fingerprint_changes_with_a_new_window_not_with_each_message(
    definition: PipelineDefinition, clock: FixedClock
) -> None:
    """The alerts deduplicate on the fingerprint: one alert per overflowing window, not one a pass."""
    flood(definition, clock, "phase4_to_phase5", CAP + 1)
    (first,) = findings(definition, clock.now())
    flood(definition, clock, "phase4_to_phase5", 10)
    (more,) = findings(definition, clock.now())
    assert more.fingerprint == first.fingerprint and more.message != first.message  # type: ignore[attr-defined]
    clock.advance(hours=1)
    flood(definition, clock, "phase4_to_phase5", CAP + 1)
    (next_window,) = findings(definition, clock.now())
    assert next_window.fingerprint != first.fingerprint  # type: ignore[attr-defined]


def test_a_counter_of_another_collection_is_not_read(definition: PipelineDefinition, clock: FixedClock) -> None:
    other = isolated_definition(uuid.uuid4().hex[:10])
    flood(other, clock, "phase3_to_phase4", CAP + 5)
    assert findings(definition, clock.now()) == []
    assert len(findings(other, clock.now())) == 1
