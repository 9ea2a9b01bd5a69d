"""Lesson L05: functions deployed without retry-on-failure dropped events ("raise to NACK" lost them).

The three halves of the contract, each checked where it lives: every event function is deployed
with retry on failure; a transient error is a non-2xx answer (Pub/Sub redelivers); an event older
than the max age is acked (2xx), quarantined as stale and alerted, never retried forever.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient

from deploy.local.emulators import free_port
from deploy.plan import build_plan, render_command
from deploy.spec import build_spec
from shared.orchestration import runtime
from shared.orchestration.publisher import TriggerPublisher
from shared.pipeline.definition import load_definition
from tests.functions.test_transition_entrypoints import (  # noqa: F401 - fixtures used by name
    TRANSITION,
    make_app,
    post_push,
    quarantined_for,
    rig,
)
from tests.support.rig import Rig, push_body, short_retry_publisher


def test_l05_every_event_function_deploys_with_retry_on_failure() -> None:
    spec = build_spec(load_definition(), "my-proj")
    assert spec.functions and all(fn.retry for fn in spec.functions)
    commands = [render_command(c) for s in build_plan(spec) for c in (s.create, s.update) if c is not None]
    deploys = [c for c in commands if c.startswith("gcloud functions deploy ")]
    assert len({d.split()[3] for d in deploys}) == len(spec.functions)
    assert all("--retry" in d for d in deploys), deploys


@pytest.mark.integration
def test_l05_a_transient_error_is_a_non_2xx_and_a_stale_event_is_acked(
    make_app: Callable[..., FlaskClient],  # noqa: F811
    rig: Rig,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    client = make_app()
    # stale: published a day ago (max age 12 h) → 2xx, quarantined as stale, never a redelivery loop
    stale_id = uuid.uuid4().hex
    old = datetime.now(UTC) - timedelta(days=1)
    completion = rig.completion("player_game_summary", 3) | {"timestamp": old.isoformat()}
    response = post_push(client, push_body(completion, {}, stale_id, old))
    assert 200 <= response.status_code < 300
    assert [d["kind"] for d in quarantined_for(rig, stale_id)] == ["stale"]

    # transient: Pub/Sub unreachable when the trigger is published → 500 → Pub/Sub redelivers
    monkeypatch.setenv("PUBSUB_EMULATOR_HOST", f"127.0.0.1:{free_port()}")
    broken = runtime.build_service(TRANSITION)
    dead = short_retry_publisher()
    topic = rig.definition.target_topic(rig.definition.transition(TRANSITION))
    broken.publisher = TriggerPublisher(dead, rig.cloud.project, topic, timeout=10.0)
    runtime._services[TRANSITION] = broken
    now = datetime.now(UTC)
    for name in ("player_game_summary", "upcoming_player_game_context"):
        assert post_push(client, push_body(rig.completion(name, 3), {}, uuid.uuid4().hex, now)).status_code == 200
    ready = post_push(client, push_body(rig.completion("team_offense_game_summary", 3), {}, uuid.uuid4().hex, now))
    assert ready.status_code == 500
    dead.stop()
