"""``phasectl deploy apply|verify`` against a recording fake ``gcloud``/``bq`` on PATH (no cloud).

apply and verify run exactly as ``phasectl deploy`` runs them (``deploy.cli.run_deploy`` with the
real ``subprocess_runner``); only the programs they find on ``PATH`` are fakes
(``tests/support/fake_gcloud.py``), which keep a small simulated project in a JSON file and log
every call. Bundles and schema files go to a temporary root, not the repository's ``build/``.
"""

from __future__ import annotations

import copy
import io
import json
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from deploy.cli import run_deploy
from deploy.plan import build_plan, render_plan
from deploy.spec import DeploymentSpec
from shared.cli import phasectl
from shared.pipeline.definition import PipelineDefinition
from tests.support import fake_gcloud

PROJECT = "my-proj"


@dataclass
class Run:
    code: int
    out: str
    err: str


@dataclass
class FakeCloud:
    """One simulated project: the fake's state and log, and a root for bundles and schema files."""

    definition: PipelineDefinition
    root: Path
    state_path: Path
    log_path: Path
    env: dict[str, str]

    @classmethod
    def create(cls, definition: PipelineDefinition, base: Path, state: dict[str, Any] | None = None) -> FakeCloud:
        state_path, log_path = base / "cloud.json", base / "calls.jsonl"
        env = fake_gcloud.install(base / "bin", state_path, log_path, state or fake_gcloud.initial_state(PROJECT))
        root = base / "root"
        root.mkdir()
        return cls(definition, root, state_path, log_path, env)

    def state(self) -> dict[str, Any]:
        return fake_gcloud.read_state(self.state_path)

    def set_state(self, state: dict[str, Any]) -> None:
        fake_gcloud.write_state(self.state_path, state)

    def calls(self) -> list[list[str]]:
        return [entry["argv"] for entry in fake_gcloud.read_log(self.log_path)]

    def forget_calls(self) -> None:
        self.log_path.write_text("")

    def deploy(self, action: str, function: str | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = run_deploy(
            self.definition, action, PROJECT, out=out, err=err, function=function, env=self.env, root=self.root
        )
        return Run(code, out.getvalue(), err.getvalue())

    def by_hand(self, *argv: str) -> None:
        """An operator's own command, through the same fake (the state it leaves is the test's setup)."""
        done = subprocess.run(list(argv), env=self.env, cwd=self.root, capture_output=True, text=True, check=False)
        assert done.returncode == 0, done.stderr


def failures(run: Run) -> list[str]:
    return [line for line in run.out.splitlines() if line.startswith("FAIL")]


@dataclass(frozen=True)
class FirstApply:
    run: Run
    calls: list[list[str]]
    state: dict[str, Any]


@pytest.fixture(scope="module")
def first_apply(definition: PipelineDefinition, tmp_path_factory: pytest.TempPathFactory) -> FirstApply:
    """``apply`` on a project where nothing is deployed (only the processors' raw dataset exists)."""
    cloud = FakeCloud.create(definition, tmp_path_factory.mktemp("first-apply"))
    run = cloud.deploy("apply")
    return FirstApply(run, cloud.calls(), cloud.state())


@pytest.fixture
def deployed(definition: PipelineDefinition, first_apply: FirstApply, tmp_path: Path) -> FakeCloud:
    """A fresh fake project in the state the first apply left."""
    assert first_apply.run.code == 0, first_apply.run.err
    return FakeCloud.create(definition, tmp_path, copy.deepcopy(first_apply.state))


# -- apply -----------------------------------------------------------------------------------------
def test_first_apply_creates_everything(first_apply: FirstApply, spec: DeploymentSpec) -> None:
    run = first_apply.run
    assert run.code == 0, run.err
    resources = [s for s in build_plan(spec) if s.kind in ("resource", "ensure")]
    created = [line for line in run.out.splitlines() if line.endswith(": created")]
    # every resource (a function too: its deploy creates it) and TTL policy was looked up, found missing and created
    assert len(created) == len(resources), run.out
    assert f"apply: {len(resources)} created, 0 updated, 0 unchanged" in run.out

    state = first_apply.state
    assert sorted(state["functions"]) == sorted(fn.cloud_name for fn in spec.functions)
    assert sorted(state["topics"]) == sorted(spec.topics)
    assert sorted(state["jobs"]) == sorted(job.name for job in spec.jobs)
    assert sorted(state["tables"]) == sorted(t.ref for t in spec.tables)
    assert sorted(state["service_accounts"]) == sorted(fn.service_account_email(PROJECT) for fn in spec.functions)
    assert set(spec.datasets) <= set(state["datasets"])
    assert state["firestore"] == {"(default)": {"locationId": spec.firestore_location, "type": "FIRESTORE-NATIVE"}}
    assert set(spec.apis) <= set(state["services"])
    # lesson L25: every collection group has its TTL policy (--async: CREATING until Firestore finishes)
    assert state["ttls"] == {t.collection_group: {t.field: "CREATING"} for t in spec.firestore_ttls}
    monitor = spec.function("phase_transition_monitor")
    for fn in spec.functions:  # the monitor, and only the monitor, may read each dead-letter subscription
        readers = state["subscriptions"][fn.dead_letter_subscription]["iam"]
        assert readers == {"roles/pubsub.subscriber": [f"serviceAccount:{monitor.service_account_email(PROJECT)}"]}
    for fn in spec.functions:
        described = state["functions"][fn.cloud_name]["described"]
        assert described["serviceConfig"]["environmentVariables"] == {"GOOGLE_CLOUD_PROJECT": PROJECT}
        assert described["serviceConfig"]["serviceAccountEmail"] == fn.service_account_email(PROJECT)
        assert described["eventTrigger"]["serviceAccountEmail"] == fn.service_account_email(PROJECT)
        assert fn.dead_letter_subscription in state["subscriptions"]
    assert not [c for c in first_apply.calls if any("${" in token for token in c)]  # every lookup was substituted
    assert len([c for c in first_apply.calls if c[:3] == ["gcloud", "functions", "deploy"]]) == len(spec.functions)


def test_first_apply_then_verify_passes_through_phasectl(deployed: FakeCloud) -> None:
    out, err = io.StringIO(), io.StringIO()
    code = phasectl.main(["deploy", "verify", "--project", PROJECT], environ=deployed.env, out=out, err=err)
    assert code == 0, out.getvalue() + err.getvalue()
    assert "FAIL" not in out.getvalue()
    assert ", 0 failed" in out.getvalue().splitlines()[-1]


def test_verify_on_an_empty_project_fails_for_every_function(
    definition: PipelineDefinition, tmp_path: Path, spec: DeploymentSpec
) -> None:
    run = FakeCloud.create(definition, tmp_path).deploy("verify")
    assert run.code == 1
    for fn in spec.functions:
        assert any(f"function {fn.cloud_name}: not deployed" in line for line in failures(run))


TTL_UPDATE = ["gcloud", "firestore", "fields", "ttls", "update"]


def test_second_apply_creates_nothing_and_changes_nothing(deployed: FakeCloud, first_apply: FirstApply) -> None:
    ttl_update = TTL_UPDATE
    run = deployed.deploy("apply")
    assert run.code == 0, run.err
    assert ": created" not in run.out
    assert "apply: 0 created" in run.out
    assert deployed.state() == first_apply.state
    creating = [c for c in deployed.calls() if "create" in c[:5] or "mk" in c[:3] or c[:5] == ttl_update]
    assert creating == [], creating
    assert deployed.deploy("verify").code == 0


def test_apply_keeps_an_environment_variable_set_by_hand(deployed: FakeCloud) -> None:
    deployed.by_hand(
        "gcloud",
        "functions",
        "deploy",
        "phase-transition-monitor",
        "--gen2",
        "--region=us-west2",
        "--update-env-vars=MONITOR_SLACK_WEBHOOK_URL=https://hooks.example/T0/B0",
        f"--project={PROJECT}",
    )
    deployed.forget_calls()
    run = deployed.deploy("apply", function="phase_transition_monitor")  # its redeploy is what matters
    assert run.code == 0, run.err
    env = deployed.state()["functions"]["phase-transition-monitor"]["described"]["serviceConfig"][
        "environmentVariables"
    ]
    assert env == {"GOOGLE_CLOUD_PROJECT": PROJECT, "MONITOR_SLACK_WEBHOOK_URL": "https://hooks.example/T0/B0"}
    deploys = [c for c in deployed.calls() if c[:3] == ["gcloud", "functions", "deploy"]]
    assert len(deploys) == 1 and "--update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj" in deploys[0]
    assert not any(t.startswith(("--set-env-vars", "--clear-env-vars")) for t in deploys[0])


def test_a_describe_refused_for_permissions_stops_apply_without_creating(
    definition: PipelineDefinition, tmp_path: Path
) -> None:
    state = fake_gcloud.initial_state(PROJECT)
    state["faults"] = [
        {
            "prefix": ["gcloud", "pubsub", "topics", "describe"],
            "returncode": 1,
            "stderr": "ERROR: (gcloud.pubsub.topics.describe) PERMISSION_DENIED: User not authorized to perform this "
            "action.\n",
        }
    ]
    cloud = FakeCloud.create(definition, tmp_path, state)
    run = cloud.deploy("apply")
    assert run.code == 2
    assert run.err.count("\n") == 1 and run.err.startswith("phasectl: error: "), run.err
    assert "PERMISSION_DENIED" in run.err and "describe failed" in run.err
    calls = cloud.calls()
    assert calls[-1][:4] == ["gcloud", "pubsub", "topics", "describe"]  # stopped at the first refusal
    assert not any(c[:4] == ["gcloud", "pubsub", "topics", "create"] for c in calls)


def test_apply_of_one_function_touches_only_its_resources(deployed: FakeCloud, spec: DeploymentSpec) -> None:
    mine = spec.function("phase5_to_phase6")
    others = [fn for fn in spec.functions if fn is not mine]
    foreign = {name for fn in others for name in (fn.cloud_name, fn.service_account, fn.trigger_topic)}
    foreign |= {job.name for job in spec.jobs} | {t.table for t in spec.tables}
    deployed.forget_calls()
    run = deployed.deploy("apply", function="phase5_to_phase6")
    assert run.code == 0, run.err
    calls = deployed.calls()
    assert calls
    touched = [(c, name) for c in calls for name in foreign if any(name in token for token in c)]
    assert touched == [], touched
    deploys = [c for c in calls if c[:3] == ["gcloud", "functions", "deploy"]]
    assert [c[3] for c in deploys] == [mine.cloud_name]
    assert not any(c[:2] == ["gcloud", "services"] or c[:2] == ["bq", "mk"] or c[:2] == ["bq", "update"] for c in calls)

    deployed.forget_calls()
    assert deployed.deploy("verify", function="phase5_to_phase6").code == 0
    touched = [(c, name) for c in deployed.calls() for name in foreign if any(name in token for token in c)]
    assert touched == [], touched


def test_an_unknown_function_is_a_one_line_error(deployed: FakeCloud) -> None:
    run = deployed.deploy("apply", function="phase9_to_phase10")
    assert run.code == 2
    assert run.err.count("\n") == 1 and "phase9_to_phase10" in run.err
    assert deployed.calls() == []


# -- verify finds what drifted -------------------------------------------------------------------
def test_verify_flags_an_orphan_subscription_on_a_trigger_topic(deployed: FakeCloud) -> None:
    deployed.by_hand(
        "gcloud",
        "pubsub",
        "subscriptions",
        "create",
        "legacy-phase2-push",
        "--topic=nba-phase2-raw-complete",
        f"--project={PROJECT}",
    )
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "topic nba-phase2-raw-complete" in line and "orphans: legacy-phase2-push" in line


def test_verify_fails_when_the_invoker_binding_is_gone(deployed: FakeCloud) -> None:
    state = deployed.state()
    state["run_iam"]["phase3-to-phase4"] = {}
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "function phase3-to-phase4" in line and "invoker" in line and "L06" in line


def test_verify_fails_for_a_function_deployed_without_retry(deployed: FakeCloud) -> None:
    deployed.by_hand(
        "gcloud",
        "functions",
        "deploy",
        "phase4-to-phase5",
        "--gen2",
        "--region=us-west2",
        "--trigger-topic=nba-phase4-precompute-complete",
        f"--project={PROJECT}",
    )
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "function phase4-to-phase5" in line and "retry policy RETRY_POLICY_DO_NOT_RETRY" in line


def test_verify_fails_when_dead_letters_are_not_wired(deployed: FakeCloud) -> None:
    state = deployed.state()
    trigger = state["functions"]["auto-retry-processor"]["described"]["eventTrigger"]["trigger"].rsplit("/", 1)[-1]
    subscription = state["triggers"][trigger]["transport"]["pubsub"]["subscription"].rsplit("/", 1)[-1]
    del state["subscriptions"][subscription]["deadLetterPolicy"]
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert f"subscription {subscription}" in line and "dead letters to -" in line


def test_verify_fails_for_a_paused_scheduler_job(deployed: FakeCloud) -> None:
    state = deployed.state()
    state["jobs"]["auto-retry-processor-trigger"]["described"]["state"] = "PAUSED"
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "scheduler job auto-retry-processor-trigger" in line and "state PAUSED" in line


def test_verify_fails_for_a_table_missing_a_column(deployed: FakeCloud) -> None:
    state = deployed.state()
    table = state["tables"]["nba_orchestration.failed_processor_queue"]
    table["schema"]["fields"] = [f for f in table["schema"]["fields"] if f["name"] != "game_ids"]
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "table nba_orchestration.failed_processor_queue" in line and "missing columns ['game_ids']" in line


def test_apply_repairs_what_drifted(deployed: FakeCloud) -> None:
    """A lost invoker binding, a redeploy without retry, a lost dead-letter policy, a missing column."""
    deployed.by_hand(
        "gcloud",
        "functions",
        "deploy",
        "phase4-to-phase5",
        "--gen2",
        "--region=us-west2",
        "--trigger-topic=nba-phase4-precompute-complete",
        f"--project={PROJECT}",
    )
    state = deployed.state()
    state["run_iam"]["phase3-to-phase4"] = {}
    trigger = state["functions"]["auto-retry-processor"]["described"]["eventTrigger"]["trigger"].rsplit("/", 1)[-1]
    del state["subscriptions"][state["triggers"][trigger]["transport"]["pubsub"]["subscription"].split("/")[-1]][
        "deadLetterPolicy"
    ]
    table = state["tables"]["nba_orchestration.failed_processor_queue"]
    table["schema"]["fields"] = [f for f in table["schema"]["fields"] if f["name"] != "game_ids"]
    deployed.set_state(state)
    assert len(failures(deployed.deploy("verify"))) == 4

    run = deployed.deploy("apply")
    assert run.code == 0, run.err
    assert "apply: 0 created" in run.out
    verified = deployed.deploy("verify")
    assert verified.code == 0, failures(verified)


# -- Firestore TTL policies (lesson L25) and the monitor's dead-letter reads -------------------------
def test_verify_checks_every_ttl_policy(deployed: FakeCloud, spec: DeploymentSpec) -> None:
    run = deployed.deploy("verify")
    assert run.code == 0, failures(run)
    for ttl in spec.firestore_ttls:
        assert f"ok   Firestore TTL {ttl.collection_group}.{ttl.field}: state CREATING, {ttl.days} days" in run.out
    state = deployed.state()
    for fields in state["ttls"].values():  # Firestore finished scanning the existing documents
        fields.update(dict.fromkeys(fields, "ACTIVE"))
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 0 and "state ACTIVE" in run.out and "state CREATING" not in run.out


def test_l25_verify_fails_when_a_ttl_policy_is_missing_and_apply_restores_it(deployed: FakeCloud) -> None:
    state = deployed.state()
    del state["ttls"]["quarantine"]
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "Firestore TTL quarantine.expires_at: MISSING" in line and "L25" in line

    deployed.forget_calls()
    applied = deployed.deploy("apply")
    assert applied.code == 0, applied.err
    assert "Firestore TTL policy quarantine.expires_at (30 days; every function: bad or stale input): created" in (
        applied.out
    )
    assert [c[5:7] for c in deployed.calls() if c[:5] == TTL_UPDATE] == [
        ["expires_at", "--collection-group=quarantine"]
    ]
    assert deployed.deploy("verify").code == 0


@pytest.mark.parametrize("bad", ["NEEDS_REPAIR", "STATE_UNSPECIFIED"])
def test_verify_fails_for_a_ttl_policy_that_is_not_active(deployed: FakeCloud, bad: str) -> None:
    state = deployed.state()
    state["ttls"]["operator_audit"]["expires_at"] = bad
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "Firestore TTL operator_audit.expires_at" in line and f"state {bad}" in line


def test_a_ttl_on_another_field_stops_apply_with_the_reason(definition: PipelineDefinition, tmp_path: Path) -> None:
    """Firestore allows one TTL field per collection group: apply says so and stops, verify names the field."""
    cloud = FakeCloud.create(definition, tmp_path)
    p = f"--project={PROJECT}"
    cloud.by_hand(
        "gcloud", "firestore", "databases", "create", "--database=(default)", "--location=nam5", "--type=x", p
    )
    cloud.by_hand(
        "gcloud",
        "firestore",
        "fields",
        "ttls",
        "update",
        "purge_at",
        "--collection-group=monitor_alerts",
        "--enable-ttl",
        p,
    )
    run = cloud.deploy("apply")
    assert run.code == 2
    assert run.err.count("\n") == 1 and "FAILED_PRECONDITION" in run.err and "monitor_alerts" in run.err
    verified = cloud.deploy("verify")
    assert any("monitor_alerts.expires_at: MISSING" in f and "TTL field is purge_at" in f for f in failures(verified))


def test_the_rendered_plan_ensures_ttl_policies_once(
    definition: PipelineDefinition, spec: DeploymentSpec, tmp_path: Path
) -> None:
    """The bash form of an ensure step: the first run enables each policy, the second finds them all."""
    cloud = FakeCloud.create(definition, tmp_path)
    steps = [s for s in build_plan(spec) if s.kind == "ensure" or s.label == "Firestore database (default)"]
    script = tmp_path / "ttls.sh"
    script.write_text(render_plan(spec, steps))
    for _ in range(2):
        done = subprocess.run(
            ["bash", str(script)], env=cloud.env, cwd=cloud.root, capture_output=True, text=True, check=False
        )
        assert done.returncode == 0, done.stderr
    updates = [c for c in cloud.calls() if c[:5] == TTL_UPDATE]
    assert len(updates) == len(spec.firestore_ttls) == 7
    assert set(cloud.state()["ttls"]) == {t.collection_group for t in spec.firestore_ttls}


def test_verify_fails_when_the_monitor_cannot_read_a_dead_letter_subscription(deployed: FakeCloud) -> None:
    state = deployed.state()
    state["subscriptions"]["phase3-to-phase4-dlq-sub"]["iam"] = {}
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "subscription phase3-to-phase4-dlq-sub" in line and "roles/pubsub.subscriber" in line and "MISSING" in line
    assert deployed.deploy("apply", function="phase_transition_monitor").code == 0
    assert deployed.deploy("verify").code == 0


def test_verify_output_is_one_line_per_check(deployed: FakeCloud) -> None:
    run = deployed.deploy("verify")
    lines = run.out.splitlines()
    assert all(line.startswith(("ok   ", "FAIL ")) for line in lines[:-1]), lines
    assert json.dumps(lines)  # plain text, nothing binary


@pytest.fixture
def fake_only(tmp_path: Path) -> Iterator[dict[str, str]]:
    yield fake_gcloud.install(tmp_path / "bin", tmp_path / "s.json", tmp_path / "l.jsonl")


def test_the_fake_rejects_what_it_does_not_know(fake_only: dict[str, str]) -> None:
    """The fake is strict: a flag or command it does not simulate fails, so apply cannot pass by accident."""

    def call(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(list(argv), env=fake_only, capture_output=True, text=True, check=False)

    assert call("gcloud", "pubsub", "topics", "create", "t1", f"--project={PROJECT}").returncode == 0
    typo = call("gcloud", "pubsub", "topics", "describe", "t1", "--projekt=x", f"--project={PROJECT}")
    assert typo.returncode == 2 and "unrecognized arguments: --projekt" in typo.stderr
    assert call("gcloud", "compute", "instances", "list").returncode == 2
    missing = call("gcloud", "pubsub", "topics", "describe", "t2", f"--project={PROJECT}")
    assert missing.returncode == 1 and "NOT_FOUND" in missing.stderr
