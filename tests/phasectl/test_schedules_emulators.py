"""``phasectl schedules``, ``schedules run`` and ``season pause|resume`` on the real emulators.

Driven as the operator runs them (``python -m phasectl`` in a subprocess) with an isolated
definition (its topics renamed, its own dataset), a fixed "now" (``PHASECTL_NOW``: Sunday
2026-01-25 10:00 ET, in the 2025-26 season) and the real Firestore, Pub/Sub and BigQuery clients.
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription, ensure_tables, ensure_topic
from shared.contracts.messages import TimedTriggerMessage
from shared.gcp import firestore_client, publisher_client, subscriber_client
from shared.pipeline.definition import PipelineDefinition, load_definition
from shared.schedules.plan import SEASON_DOC
from tests.support.definition_files import write_isolated_definition
from tests.support.phasectl_run import Run, runner

pytestmark = pytest.mark.integration

NOW = "2026-01-25T15:00:00Z"  # 10:00 ET, regular season 2025-26
PAUSE_REASON_B = "paused by an operator (phasectl season pause --wave B)"
PUBSUB_JOB = "phase6-daily-results"  # 05:00 ET daily, wave C: a TimedTriggerMessage for yesterday


@dataclass(frozen=True)
class Setup:
    """The CLI's isolated definition (a file, as a process reads it), its project and a runner."""

    definition: PipelineDefinition
    path: Path
    project: str
    env: dict[str, str]
    run: Run


@pytest.fixture
def setup(cloud: LocalCloud, unique: str, tmp_path: Path) -> Setup:
    """The packaged definition with this test's topics, collections and datasets; the log table exists."""
    from shared.gcp_bigquery import bigquery_client
    from tests.support.rig import CREATED_DATASETS

    path = write_isolated_definition(unique, tmp_path / "pipeline.toml")
    definition = load_definition(str(path))
    project = cloud.project
    client = bigquery_client(project)
    tables = ensure_tables(client, project, definition, gate_tables=False)  # phase_execution_log: the run's row
    CREATED_DATASETS.extend({(project, ref.split(".")[1]) for ref in tables.values()})  # dropped after the test
    env = {
        **{k: v for k, v in os.environ.items() if k != "PHASECTL_LOG_DIR"},
        **cloud.env(),
        "PIPELINE_DEFINITION": str(path),
        "PHASECTL_NOW": NOW,
        "USER": "ops-tester",
    }
    return Setup(definition, path, project, env, runner(env))


def _json(proc: subprocess.CompletedProcess[str]) -> dict[str, Any]:
    assert proc.returncode in (0, 1), proc.stderr
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


def _audit(project: str) -> list[dict[str, Any]]:
    docs = [d.to_dict() or {} for d in firestore_client(project).collection("operator_audit").stream()]
    return sorted(docs, key=lambda d: (d["when"], d["command"]))  # every "when" is the fixed now


def test_season_pause_of_wave_b_is_written_audited_and_shown_by_schedules(setup: Setup) -> None:
    definition, phasectl, project = setup.definition, setup.run, setup.project
    wave_b = {j.name for j in definition.all_jobs() if j.wave == "B" and j.dispatched}
    others = {j.name for j in definition.all_jobs() if j.wave != "B" and j.dispatched}
    assert "same-day-phase3" in wave_b and others

    before = _json(phasectl("schedules", "--json"))
    assert before["overrides"] == {"paused": [], "resumed": []}
    assert {j["name"] for j in before["jobs"] if j["paused"] is None} == wave_b | others  # in season: all run

    paused = phasectl("season", "pause", "--wave", "B", "--note", "vendor outage")
    assert paused.returncode == 0, paused.stderr
    assert "paused wave B: overrides now paused B; resumed none" in paused.stdout
    assert "same-day-phase3" in paused.stdout
    assert f"today {len(wave_b)} job(s) stop:" in paused.stdout
    assert "phasectl deploy verify" in paused.stdout

    fs = firestore_client(project)
    doc = fs.collection(definition.dispatcher.jobs_collection).document(SEASON_DOC).get().to_dict() or {}
    assert (doc["paused"], doc["resumed"]) == (["B"], [])
    assert (doc["note"], doc["updated_by"], doc["last_change"]) == (
        "vendor outage",
        "ops-tester",
        "season pause --wave B",
    )
    (audit,) = _audit(project)
    assert (audit["who"], audit["command"], audit["args"]) == (
        "ops-tester",
        "season pause",
        {"wave": "B", "note": "vendor outage"},
    )
    assert audit["result"].startswith("paused B; resumed none; today ")

    after = _json(phasectl("schedules", "--json"))
    assert after["overrides"] == {"paused": ["B"], "resumed": []}
    jobs = {j["name"]: j for j in after["jobs"]}
    for name in wave_b:
        assert (jobs[name]["paused"], jobs[name]["next_at"]) == (PAUSE_REASON_B, None), name
    for name in others:
        assert jobs[name]["paused"] is None and jobs[name]["next_at"] is not None, name
    text = phasectl("schedules")
    assert text.returncode == 0, text.stderr
    assert "operator overrides: paused B; resumed none" in text.stdout
    row = next(line for line in text.stdout.splitlines() if line.startswith("same-day-phase3 "))
    assert row.rstrip().endswith(PAUSE_REASON_B)

    again = phasectl("season", "pause", "--wave", "B")
    assert again.returncode == 1 and "wave B is already paused: nothing changed" in again.stdout

    resumed = phasectl("season", "resume", "--wave", "B")
    assert resumed.returncode == 0, resumed.stderr
    assert f"today {len(wave_b)} job(s) start:" in resumed.stdout
    doc = fs.collection(definition.dispatcher.jobs_collection).document(SEASON_DOC).get().to_dict() or {}
    assert (doc["paused"], doc["resumed"]) == ([], ["B"])
    status = phasectl("season", "status")
    assert status.returncode == 0, status.stderr
    assert "in season 2025-26: regular season, day 97" in status.stdout
    assert "operator overrides: paused none; resumed B; last change: season resume --wave B" in status.stdout
    assert [a["command"] for a in _audit(project)] == ["season pause", "season pause", "season resume"]


def _log_rows(setup: Setup) -> list[dict[str, Any]]:
    from shared.gcp_bigquery import bigquery_client

    s = setup.definition.pipeline
    table = f"`{setup.project}.{s.dataset}.{s.phase_execution_log_table}`"
    return [dict(r) for r in bigquery_client(setup.project).query(f"SELECT * FROM {table}").result()]


def _pull(subscription: str, settle: float = 3.0) -> list[Any]:
    """Every message on ``subscription`` until none came for ``settle`` seconds (acknowledged)."""
    subscriber = subscriber_client()
    out: list[Any] = []
    quiet_since = time.monotonic()
    while time.monotonic() - quiet_since < settle:
        response = subscriber.pull(subscription=subscription, max_messages=10, timeout=10, return_immediately=True)
        if response.received_messages:
            out += [m.message for m in response.received_messages]
            subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
            quiet_since = time.monotonic()
        else:
            time.sleep(0.2)
    return out


def test_schedules_run_publishes_once_then_says_it_ran_and_force_runs_a_new_generation(
    setup: Setup, unique: str
) -> None:
    definition, phasectl, project = setup.definition, setup.run, setup.project
    job = definition.job(PUBSUB_JOB)
    assert job.pubsub is not None and job.pubsub.topic.endswith(unique)  # this test's own topic
    ensure_topic(publisher_client(), project, job.pubsub.topic)
    subscription = ensure_subscription(
        subscriber_client(), project, job.pubsub.topic, f"capture-{unique}", ack_deadline_seconds=10
    )

    first = phasectl("schedules", "run", PUBSUB_JOB, "--date", "2026-01-25")
    assert first.returncode == 0, first.stdout + first.stderr
    run_id = f"{PUBSUB_JOB}__20260125T1000Z"
    assert f"{PUBSUB_JOB}: slot 2026-01-25 05:00 -05:00 (run {run_id})" in first.stdout
    assert "succeeded (attempt 1/" in first.stdout and "message " in first.stdout
    (message,) = _pull(subscription)
    trigger = TimedTriggerMessage.model_validate_json(message.data)
    assert (trigger.target_date.isoformat(), trigger.generation, trigger.name) == ("2026-01-24", 1, PUBSUB_JOB)
    assert message.attributes["scheduler_job"] == PUBSUB_JOB

    second = phasectl("schedules", "run", PUBSUB_JOB, "--date", "2026-01-25")
    assert second.returncode == 1, second.stdout + second.stderr
    assert "already ran: succeeded after 1 attempt(s)" in second.stdout
    assert f"phasectl schedules run {PUBSUB_JOB} --date 2026-01-25 --force" in second.stdout
    assert _pull(subscription) == []

    forced = phasectl("schedules", "run", PUBSUB_JOB, "--date", "2026-01-25", "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert f"generation m1 (run {run_id}-m1)" in forced.stdout and "succeeded" in forced.stdout
    (again,) = _pull(subscription)
    regenerated = TimedTriggerMessage.model_validate_json(again.data)
    assert (regenerated.generation, regenerated.trigger_source) == (2, "manual")
    assert regenerated.trigger_id != trigger.trigger_id and regenerated.target_date == trigger.target_date

    fs = firestore_client(project)
    runs = fs.collection(definition.dispatcher.runs_collection)
    stored = {d.id: d.to_dict() or {} for d in runs.stream()}
    assert set(stored) == {run_id, f"{run_id}-m1"}
    assert {r["status"] for r in stored.values()} == {"succeeded"}
    assert {r["requested_by"] for r in stored.values()} == {"phasectl:ops-tester"}
    audit = [a for a in _audit(project) if a["command"] == "schedules run"]
    assert sorted((a["args"]["run_id"], a["result"].split()[0]) for a in audit) == [  # one "when": the fixed now
        (run_id, "done"),
        (run_id, "succeeded"),
        (f"{run_id}-m1", "succeeded"),
    ]
    assert all(a["who"] == "ops-tester" and a["args"]["date"] == "2026-01-25" for a in audit)

    logged = [r for r in _log_rows(setup) if r["phase_name"] == PUBSUB_JOB]
    assert sorted(r["trigger_id"] for r in logged) == [run_id, f"{run_id}-m1"]  # the CLI flushed its rows


@pytest.fixture
def firestore_reads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """The Firestore read RPCs made in this process (the generated client's methods, counted)."""
    from google.cloud.firestore_v1.services.firestore.client import FirestoreClient

    calls: list[str] = []
    for name in ("batch_get_documents", "get_document", "run_query", "list_documents", "run_aggregation_query"):
        original = getattr(FirestoreClient, name)

        def counted(self: Any, *args: Any, _name: str = name, _original: Any = original, **kwargs: Any) -> Any:
            calls.append(_name)
            return _original(self, *args, **kwargs)

        monkeypatch.setattr(FirestoreClient, name, counted)
    yield calls


def test_schedules_reads_the_summaries_and_the_overrides_in_one_batched_read(
    setup: Setup, firestore_reads: list[str]
) -> None:
    import phasectl

    topic = setup.definition.job(PUBSUB_JOB).pubsub.topic  # type: ignore[union-attr]
    ensure_topic(publisher_client(), setup.project, topic)
    ran = setup.run("schedules", "run", PUBSUB_JOB, "--date", "2026-01-25")  # the dispatcher writes its summary
    assert ran.returncode == 0, ran.stdout + ran.stderr
    fs = firestore_client(setup.project)
    fs.collection(setup.definition.dispatcher.jobs_collection).document(SEASON_DOC).set(
        {"paused": ["C"], "resumed": []}
    )
    firestore_reads.clear()
    out, err = io.StringIO(), io.StringIO()
    code = phasectl.main(["schedules", "--json"], environ=setup.env, out=out, err=err)
    assert code == 0, err.getvalue()
    assert firestore_reads == ["batch_get_documents"]
    data = json.loads(out.getvalue())
    assert data["overrides"] == {"paused": ["C"], "resumed": []}
    job = next(j for j in data["jobs"] if j["name"] == PUBSUB_JOB)
    assert job["paused"] == "paused by an operator (phasectl season pause --wave C)"
    last = job["last"]
    assert (last["run_id"], last["status"], last["attempts"], last["http_status"]) == (
        f"{PUBSUB_JOB}__20260125T1000Z",
        "succeeded",
        1,
        None,
    )
    assert last["slot_at"] == "2026-01-25T10:00:00+00:00" and job["last_success_at"] is not None
    text = io.StringIO()
    assert phasectl.main(["schedules"], environ=setup.env, out=text, err=err) == 0, err.getvalue()
    row = next(line for line in text.getvalue().splitlines() if line.startswith(f"{PUBSUB_JOB} "))
    assert "2026-01-25 05:00 -05:00  succeeded" in row, row
