"""End to end: a real functions-framework server fed by a Pub/Sub emulator push subscription.

The phase 3→4 function runs in its own process, started with the ``functions-framework``
CLI exactly as Cloud Functions gen2 runs it (gunicorn, threads) and configured only by
environment: the emulator hosts and ``PIPELINE_DEFINITION``. Processors publish their
completions with the official publisher client; the emulator pushes them to the server;
the trigger must arrive exactly once on the phase-4 trigger topic and the
``phase_execution_log`` row must land in BigQuery.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import pytest
from google.api_core import exceptions as gexc

from deploy.local.emulators import LocalCloud, free_port
from deploy.local.topology import ensure_subscription
from shared.contracts.messages import PhaseTrigger
from shared.gcp import publisher_client, subscriber_client
from tests.support.definition_files import write_isolated_definition
from tests.support.rig import GAME_DATE, Rig

pytestmark = pytest.mark.integration

REPO = Path(__file__).resolve().parents[2]
TRANSITION = "phase3_to_phase4"
SOURCE = REPO / "functions" / TRANSITION / "main.py"
CLI = Path(sys.executable).with_name("functions-framework")
PHASE3 = [
    "player_game_summary",
    "upcoming_player_game_context",
    "team_offense_game_summary",
    "team_defense_game_summary",
    "upcoming_team_game_context",
]
DEADLINE_S = 60.0
T = TypeVar("T")


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


def _wait_for_port(port: int, proc: subprocess.Popen[bytes], log: Path, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"functions-framework exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            sock.settimeout(0.5)
            if sock.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise AssertionError(
        f"functions-framework not listening on {port} after {timeout:.0f}s:\n{log.read_text()[-3000:]}"
    )


@pytest.fixture
def function_server(rig: Rig, tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """The 3→4 function served by the functions-framework CLI; yields (url, its stdout log)."""
    definition_file = write_isolated_definition(rig.suffix, tmp_path / "pipeline.toml")
    port = free_port()
    env = {
        **os.environ,
        **rig.cloud.env(),
        "PIPELINE_DEFINITION": str(definition_file),
        "PYTHONPATH": os.pathsep.join(p for p in (str(REPO), os.environ.get("PYTHONPATH")) if p),
        "PYTHONUNBUFFERED": "1",  # the structured log lines are read back by the test
    }
    log = tmp_path / "function.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen(
            [
                str(CLI),
                "--target",
                "handle",
                "--source",
                str(SOURCE),
                "--signature-type",
                "cloudevent",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=REPO,
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        _wait_for_port(port, proc, log)
        yield f"http://127.0.0.1:{port}/", log
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGTERM)  # gunicorn's arbiter stops its worker on SIGTERM
            try:
                proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                os.kill(proc.pid, signal.SIGKILL)
                proc.wait(timeout=10)


def _poll(fetch: Callable[[], T], done: Callable[[T], bool], what: str, log: Path) -> T:
    deadline = time.monotonic() + DEADLINE_S
    while True:
        value = fetch()
        if done(value):
            return value
        if time.monotonic() > deadline:
            raise AssertionError(
                f"{what} not seen within {DEADLINE_S:.0f}s (last: {value!r}); server log tail:\n"
                f"{log.read_text(errors='replace')[-3000:]}"
            )
        time.sleep(0.25)


def _outcomes(log: Path) -> list[dict[str, Any]]:
    """The entrypoint's one outcome line per handled delivery, from the server's stdout."""
    out = []
    for line in log.read_text(errors="replace").splitlines():
        with contextlib.suppress(ValueError):
            entry = json.loads(line)
            if isinstance(entry, dict) and entry.get("logger") == "functions.transition":
                out.append(entry)
    return out


def test_push_subscription_to_a_real_server_triggers_exactly_once(rig: Rig, function_server: tuple[str, Path]) -> None:
    rig.seed_outputs()  # the rows the 3→4 and 4→5 gates read
    url, log = function_server
    project = rig.cloud.project
    transition = rig.definition.transition(TRANSITION)
    completion_topic = rig.definition.source_topic(transition)
    subscriber = subscriber_client()
    push_sub = ensure_subscription(
        subscriber, project, completion_topic, f"push-{completion_topic}", push_endpoint=url, ack_deadline_seconds=10
    )
    try:
        publisher = publisher_client()
        topic_path = publisher.topic_path(project, completion_topic)
        payloads = [json.dumps(rig.completion(p, 3)).encode() for p in PHASE3]
        futures = [
            publisher.publish(topic_path, data, processor_name=p, game_date=GAME_DATE.isoformat())
            for p, data in zip(PHASE3, payloads, strict=True)
        ]
        futures.append(publisher.publish(topic_path, payloads[0]))  # the same completion published twice
        message_ids = [f.result(timeout=30) for f in futures]
        assert len(set(message_ids)) == 6

        # every delivery handled (the emulator pushes concurrently; at-least-once may add more)
        outcomes = _poll(lambda: _outcomes(log), lambda o: len(o) >= 6, "six handled deliveries", log)
        triggers: list[PhaseTrigger] = _poll(
            lambda: rig.pull_triggers(TRANSITION), lambda t: len(t) > 0, "the phase-4 trigger", log
        )
        rows = _poll(rig.log_rows, lambda r: len(r) > 0, "the phase_execution_log row", log)

        time.sleep(1.0)  # a second trigger, were there one, is published before its outcome line
        triggers += rig.pull_triggers(TRANSITION)
        assert [t.trigger_id for t in triggers] == [f"{TRANSITION}:{GAME_DATE}:g1:overnight"]
        assert triggers[0].mode == "overnight" and triggers[0].source_phase == 3 and triggers[0].target_phase == 4
        trigger_id = f"{TRANSITION}:{GAME_DATE}:g1:overnight"
        assert [(r["phase_name"], r["trigger_id"]) for r in rows] == [(TRANSITION, trigger_id)]

        outcomes = _outcomes(log)
        kinds = [o["logging.googleapis.com/labels"]["outcome"] for o in outcomes]
        assert kinds.count("triggered") == 1, kinds
        assert set(kinds) <= {"waiting", "triggered", "already_triggered", "claimed_elsewhere"}, kinds
        # the duplicate publish was delivered and had no effect
        assert any(o["logging.googleapis.com/labels"]["duplicate"] == "true" for o in outcomes), outcomes
        assert rig.quarantined() == []
    finally:
        with contextlib.suppress(gexc.NotFound):
            subscriber.delete_subscription(subscription=push_sub)
