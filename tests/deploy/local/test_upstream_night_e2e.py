"""A night of the replaced system's own completions through the deployed shape, end to end.

Every function runs from its bundle in its own functions-framework process behind an emulator
push subscription (``LocalStack``, the topology ``phasectl local up`` and ``deploy`` share). The
completions are the checked-in upstream fixtures (tests/data/upstream/completions: built exactly
as najicham/nba-stats-scraper@18f6ecfe builds them, no attributes), and every one is published
three times at once. Each transition must trigger exactly once for the date (one trigger id; every
part of a per-source-table trigger exactly once), and the coordinator's /start be called once.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import pytest

from deploy.local.demo import demo_definition
from deploy.local.outputs import write_outputs
from deploy.local.sample_night import GAME_DATE, played, seed
from deploy.local.stack import LocalStack
from deploy.local.standins import StartEndpoint
from shared.contracts.messages import PhaseTrigger
from shared.gcp_bigquery import bigquery_client
from shared.pipeline.definition import PipelineDefinition, load_definition

pytestmark = pytest.mark.integration

UPSTREAM = Path(__file__).resolve().parents[2] / "data" / "upstream" / "completions"
START = datetime(2026, 1, 25, 12, 0, tzinfo=UTC)  # 07:00 ET the morning after: overnight mode
COPIES = 3


@pytest.fixture(scope="module")
def night(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStack, StartEndpoint, dict[str, str]]]:
    from deploy.local.topology import ensure_subscription
    from shared.gcp import subscriber_client

    path = demo_definition(tmp_path_factory.mktemp("upstream-night"))  # /start without an ID token
    definition = load_definition(path)
    coordinator = StartEndpoint()
    http = {t.delivery.http.url_env: coordinator.url for t in definition.transitions if t.delivery.http}
    stack = LocalStack(
        definition, project="upstream-night", start=START, definition_path=path, run_scheduler=False, extra_env=http
    )
    try:
        stack.up()
        subscriber = subscriber_client()
        subs = {
            t.name: ensure_subscription(subscriber, stack.project, definition.target_topic(t), f"watch-{t.name}")
            for t in definition.transitions
        }
        seed(stack.project, definition, GAME_DATE)  # the real slate: GSW@MIN postponed, in no boxscore source
        # the rows the phase 3 and 4 processors wrote for the six games played (real schemas): the 3→4
        # and 4→5 gates read them
        covered = played(GAME_DATE)
        write_outputs(bigquery_client(stack.project), stack.project, definition.gate_tables(), GAME_DATE, covered)
        yield stack, coordinator, subs
    finally:
        stack.down()
        coordinator.close()


def publish_phase(stack: LocalStack, definition: PipelineDefinition, phase: int, files: list[Path]) -> None:
    from shared.gcp import publisher_client

    publisher = publisher_client()
    topic = publisher.topic_path(stack.project, definition.phase(phase).completion_topic)
    payloads = []
    for f in files:
        message = json.loads(f.read_text())["message"]
        message["timestamp"] = stack.clock.now().isoformat()
        payloads.append(json.dumps(message, default=str).encode())
    with ThreadPoolExecutor(max_workers=8) as pool:  # every message three times, at once
        futures = [pool.submit(lambda d: publisher.publish(topic, d).result(timeout=30), p)
                   for p in payloads for _ in range(COPIES)]
        for future in futures:
            future.result()


def wait_for(subscription: str, collected: list[PhaseTrigger], timeout: float = 90.0) -> None:
    from deploy.local.topology import pull_now
    from shared.gcp import subscriber_client

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        collected += [PhaseTrigger.model_validate_json(d) for d in pull_now(subscriber_client(), subscription)]
        if collected and all(
            {m.part for m in collected if m.trigger_id == t.trigger_id} >= set(range(1, t.parts + 1))
            for t in collected
        ):
            time.sleep(3.0)  # anything duplicated would arrive now
            collected += [PhaseTrigger.model_validate_json(d) for d in pull_now(subscriber_client(), subscription)]
            return
        time.sleep(0.5)
    raise AssertionError(f"no complete trigger on {subscription} within {timeout:.0f}s: {collected}")


def test_each_transition_triggers_exactly_once_from_upstream_completions_delivered_three_times(
    night: tuple[LocalStack, StartEndpoint, dict[str, str]],
) -> None:
    stack, coordinator, subs = night
    definition = stack.definition
    fixtures = {
        2: sorted((UPSTREAM / "phase2").glob("*.json")),
        3: sorted((UPSTREAM / "phase3").glob("*__success*.json")),
        4: sorted((UPSTREAM / "phase4").glob("*__success.json")),
        5: [UPSTREAM / "phase5" / "prediction_coordinator__success_batch_complete.json"],
    }
    seen: dict[str, list[PhaseTrigger]] = {}
    for transition in definition.transitions:
        publish_phase(stack, definition, transition.source_phase, fixtures[transition.source_phase])
        seen[transition.name] = []
        wait_for(subs[transition.name], seen[transition.name])

    for name, messages in seen.items():
        mode = ":overnight" if definition.transition(name).modes else ""  # the morning after the games
        assert {m.trigger_id for m in messages} == {f"{name}:{GAME_DATE}:g1{mode}"}, (name, messages)
        parts = sorted(m.part for m in messages)
        assert parts == list(range(1, messages[0].parts + 1)), (name, parts)  # each part exactly once
        assert all(m.game_date == GAME_DATE and m.success for m in messages)

    (p23,) = [m for m in seen["phase2_to_phase3"] if m.part == 1]
    # a postponed game is not a missing game (L29): the six played covered, GSW@MIN carried as postponed (the
    # trigger itself may be partial: it can fire at 4 of 5 phase-2 processors)
    coverage = next(g for g in p23.gates if g.kind == "game_coverage_pct")
    assert (coverage.verdict, coverage.value) == ("pass", 100.0), coverage
    assert p23.missing_games == [] and p23.postponed_games == ["20260124_GSW_MIN"]
    # one message per completed phase-3 table (it may fire at 4/5, before the last one arrives)
    p34 = seen["phase3_to_phase4"]
    assert {m.source_table for m in p34} == {definition.processor(p).output_table for p in p34[0].processors_completed}
    assert {"player_game_summary", "upcoming_player_game_context"} <= {m.source_table for m in p34}
    (p56,) = seen["phase5_to_phase6"]
    assert p56.target_date == GAME_DATE and p56.export_types and p56.status == "complete"
    # the coordinator's /start: once, for the 4→5 trigger
    assert [r["body"]["trigger_id"] for r in coordinator.received] == [f"phase4_to_phase5:{GAME_DATE}:g1"]
    assert not stack.deaths
