"""Each bundle installs from its own requirements.txt, imports lightly and serves an event.

For every function: build the bundle, install ``requirements.txt`` (and nothing of the
project) into a fresh venv cached by the requirements' sha256 under
``.cache/bundle-venvs/`` (bundles with the same requirements share one), then from the
bundle directory only (no PYTHONPATH; the repo is not importable there):

1. ``import main`` succeeds and leaves BigQuery and pandas out of ``sys.modules``;
2. the ``functions-framework`` CLI of that venv serves one raw Pub/Sub push body with a
   valid completion of the function's source phase against the emulators (HTTP 2xx),
   and the completion is recorded in Firestore.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from deploy.bundle import build_function, functions
from deploy.local.emulators import LocalCloud
from shared.gcp import firestore_client
from shared.orchestration.state import state_doc_id
from shared.pipeline import load_definition
from shared.pipeline.definition import PipelineDefinition
from tests.bench.bundles import (
    Server,
    cached_venv,
    function_env,
    past_game_date,
    post_json,
    push_body,
    sample_completion,
    start_server,
)

pytestmark = pytest.mark.integration

VENV_CACHE = Path(__file__).parents[2] / ".cache" / "bundle-venvs"
HEAVY = ("google.cloud.bigquery", "pandas")
PROBE = """
import importlib.util, json, sys
import main
print(json.dumps({
    "heavy": [m for m in sys.argv[1:] if m in sys.modules],
    "shared": getattr(sys.modules.get("shared"), "__file__", None),
    "main": main.__file__,
    "repo_importable": [m for m in ("deploy", "tests", "functions") if importlib.util.find_spec(m) is not None],
}))
"""


@pytest.mark.parametrize("function", functions())
def test_bundle_installs_imports_lightly_and_serves_an_event(function: str, cloud: LocalCloud, tmp_path: Path) -> None:
    build_function(function, tmp_path / "build")
    bundle = (tmp_path / "build" / function).resolve()
    venv = cached_venv((bundle / "requirements.txt").read_text(), VENV_CACHE)
    env = function_env(cloud.env())

    probe = subprocess.run(
        [str(venv / "bin" / "python"), "-c", PROBE, *HEAVY],
        cwd=bundle,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert probe.returncode == 0, probe.stderr[-3000:]
    seen = json.loads(probe.stdout.strip().splitlines()[-1])
    assert seen["heavy"] == [], f"heavy modules loaded at import: {seen['heavy']}"
    assert seen["main"] == str(bundle / "main.py")
    assert seen["shared"] is None or seen["shared"].startswith(str(bundle) + "/")
    assert seen["repo_importable"] == []

    definition = load_definition()
    transitions = {t.name for t in definition.transitions}
    server = start_server(venv / "bin" / "functions-framework", bundle, env, tmp_path / "server.log")
    try:
        server.wait_listening()
        if any(t.function == function for t in definition.timed_triggers()):
            _serve_trigger_tick(function, server, cloud, definition)
            return
        if function == definition.dispatcher.function:
            _serve_dispatcher_tick(function, server, cloud, definition)
            return
        if function not in transitions:
            _serve_scheduler_tick(function, server, cloud, definition)
            return
        game_date = past_game_date(definition)
        payload = sample_completion(definition, function, game_date)
        status = post_json(server.url, push_body(payload, cloud.project))
        assert 200 <= status < 300, f"HTTP {status}:\n{server.log_tail()}"
    finally:
        server.stop()

    doc = (
        firestore_client(cloud.project)
        .collection(definition.pipeline.state_collection)
        .document(state_doc_id(function, game_date))
    )
    assert doc.id == f"{function}__{game_date}"
    recorded = [d.to_dict() or {} for d in doc.collection("completions").stream()]
    assert [(r.get("raw_name"), r.get("execution_id")) for r in recorded] == [
        (payload["processor_name"], payload["execution_id"])
    ], server.log_tail()


def _post_tick(server: Server, cloud: LocalCloud, definition: PipelineDefinition, data: bytes) -> None:
    """What Cloud Scheduler sends through a push subscription: ``data`` as the message (2xx expected)."""
    import base64
    import uuid
    from datetime import UTC, datetime

    from deploy.local.topology import ensure_tables, ensure_topics
    from shared.gcp import publisher_client
    from shared.gcp_bigquery import bigquery_client

    ensure_topics(publisher_client(), cloud.project, definition)
    ensure_tables(bigquery_client(cloud.project), cloud.project, definition)
    body = {
        "message": {
            "data": base64.b64encode(data).decode(),
            "messageId": uuid.uuid4().hex,
            "publishTime": datetime.now(UTC).isoformat().replace("+00:00", "Z"),
        },
        "subscription": f"projects/{cloud.project}/subscriptions/scheduler",
    }
    status = post_json(server.url, body)
    assert 200 <= status < 300, f"HTTP {status}:\n{server.log_tail()}"


def _serve_trigger_tick(function: str, server: Server, cloud: LocalCloud, definition: PipelineDefinition) -> None:
    """A sensor's or scheduled trigger's function serves its first slot's tick (a manual run for a
    past date) and records the evaluation in that trigger's date document."""
    trigger = next(t for t in definition.timed_triggers() if t.function == function)
    game_date = past_game_date(definition)
    tick = {"trigger": trigger.name, "slot": trigger.slots[0].name, "game_date": game_date.isoformat()}
    _post_tick(server, cloud, definition, json.dumps(tick).encode())
    doc = (
        firestore_client(cloud.project)
        .collection(definition.pipeline.state_collection)
        .document(state_doc_id(trigger.name, game_date))
        .get()
    )
    assert doc.exists, f"{function} evaluated nothing:\n{server.log_tail()}"
    # no predictions for that date: the sensor waits; a scheduled trigger fires at its time
    assert (doc.to_dict() or {}).get("status") in ("waiting", "triggered"), doc.to_dict()


def _serve_dispatcher_tick(function: str, server: Server, cloud: LocalCloud, definition: PipelineDefinition) -> None:
    """The schedule dispatcher serves a manual tick of a Pub/Sub job for a past date: it claims the slot,
    publishes to the job's topic and records the run as succeeded."""
    job = next(j for j in definition.all_jobs() if j.dispatched and j.pubsub is not None)
    game_date = past_game_date(definition)
    tick = {"job": job.name, "game_date": game_date.isoformat(), "requested_by": "test_bundle_verify"}
    _post_tick(server, cloud, definition, json.dumps(tick).encode())
    runs = firestore_client(cloud.project).collection(definition.dispatcher.runs_collection).stream()
    mine = [d.to_dict() or {} for d in runs if (d.to_dict() or {}).get("job") == job.name]
    assert [(r.get("day"), r.get("status")) for r in mine] == [(game_date.isoformat(), "succeeded")], (
        f"{function} did not run {job.name}:\n{server.log_tail()}"
    )


def _serve_scheduler_tick(function: str, server: Server, cloud: LocalCloud, definition: PipelineDefinition) -> None:
    """The scheduled functions (auto-retry, monitor) serve an empty tick and write their heartbeat."""
    _post_tick(server, cloud, definition, b"{}")
    heartbeat = (
        firestore_client(cloud.project).collection(definition.monitor.heartbeat_collection).document(function).get()
    )
    assert heartbeat.exists, f"{function} wrote no heartbeat:\n{server.log_tail()}"
