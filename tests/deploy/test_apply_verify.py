"""``phasectl deploy apply|verify`` against a recording fake ``gcloud``/``bq`` on PATH (no cloud).

apply and verify run exactly as ``phasectl deploy`` runs them (``deploy.cli.run_deploy`` with the
real ``subprocess_runner``); only the programs they find on ``PATH`` are fakes
(``tests/support/fake_gcloud.py``), which keep a small simulated project in a JSON file and log
every call. Bundles and schema files go to a temporary root, not the repository's ``build/``.
"""

from __future__ import annotations

import copy
import hashlib
import io
import json
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import phasectl
from deploy.apply import NOT_LOGGED_IN
from deploy.cli import run_deploy
from deploy.plan import build_plan, render_plan
from deploy.spec import RUNTIME_ENV, TABLE_WRITER, DeploymentSpec, build_spec
from shared.pipeline.definition import PipelineDefinition
from tests.support import fake_gcloud
from tests.support.fake_gcloud_runner import in_process_runner

PROJECT = "my-proj"
RUNTIME = dict(RUNTIME_ENV)  # set on every function (deploy.spec)
REPO = Path(__file__).resolve().parents[2]
WEBHOOK = b"https://hooks.slack.com/services/T0FAKE/B0FAKE/s3cr3tV4lue"  # a made-up value; never printed
LOGIN = ["gcloud", "auth", "print-access-token", "--format=none"]


_PROCESSOR_TABLES: dict[int, tuple[str, ...]] = {}


def processor_tables(definition: PipelineDefinition) -> tuple[str, ...]:
    """The processors' tables the functions read: they exist before any deploy."""
    if id(definition) not in _PROCESSOR_TABLES:
        _PROCESSOR_TABLES[id(definition)] = build_spec(definition, PROJECT).read_tables
    return _PROCESSOR_TABLES[id(definition)]


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
        state = state or fake_gcloud.initial_state(PROJECT, tables=processor_tables(definition))
        env = fake_gcloud.install(base / "bin", state_path, log_path, state)
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

    def deploy(self, action: str, function: str | None = None, *operands: str, stdin: bytes | None = None) -> Run:
        out, err = io.StringIO(), io.StringIO()
        code = run_deploy(
            self.definition,
            action,
            PROJECT,
            out=out,
            err=err,
            function=function,
            env=self.env,
            root=self.root,
            runner=in_process_runner(self.env, self.root),
            operands=operands,
            stdin=None if stdin is None else io.BytesIO(stdin),
        )
        return Run(code, out.getvalue(), err.getvalue())

    def set_secret(self, name: str = "slack-webhook", value: bytes = WEBHOOK + b"\n") -> Run:
        return self.deploy("secret", None, "set", name, stdin=value)

    def update(self, change: Any) -> None:
        state = self.state()
        change(state)
        self.set_state(state)

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
    """``secret set`` then ``apply`` on a project where nothing is deployed (only the processors'
    datasets and tables exist)."""
    cloud = FakeCloud.create(definition, tmp_path_factory.mktemp("first-apply"))
    secret = cloud.set_secret()
    assert secret.code == 0, secret.err
    cloud.forget_calls()
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
    # every resource (a function too: its deploy creates it) and TTL policy was looked up, found missing and
    # created; the secret (`secret set` made it) exists and has its value
    assert len(created) == len(resources) - len(spec.secrets), run.out
    requires = len([s for s in build_plan(spec) if s.kind == "require"])
    assert (
        f"apply: {len(resources) - len(spec.secrets)} created, 0 updated, {len(spec.secrets) + requires} unchanged"
        in (run.out)
    )

    state = first_apply.state
    assert sorted(state["functions"]) == sorted(fn.cloud_name for fn in spec.functions)
    assert sorted(state["topics"]) == sorted(spec.topics)
    assert sorted(state["jobs"]) == sorted(job.name for job in spec.jobs)
    assert sorted(state["tables"]) == sorted([*(t.ref for t in spec.tables), *spec.read_tables])
    for ref, role in ((r, role) for fn in spec.functions for r, role in fn.table_roles):  # BigQuery: per table
        assert ref in state["tables"] and role in state["table_iam"][ref], (ref, role)
    assert sorted(state["service_accounts"]) == sorted(e for fn in spec.functions for e in fn.account_emails(PROJECT))
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
        assert described["serviceConfig"]["environmentVariables"] == {"GOOGLE_CLOUD_PROJECT": PROJECT, **RUNTIME}
        assert described["serviceConfig"]["serviceAccountEmail"] == fn.service_account_email(PROJECT)
        assert described["eventTrigger"]["serviceAccountEmail"] == fn.trigger_account_email(PROJECT)
        assert state["run_iam"][fn.cloud_name] == {
            "roles/run.invoker": [f"serviceAccount:{fn.trigger_account_email(PROJECT)}"]
        }
        secrets = described["serviceConfig"].get("secretEnvironmentVariables", [])
        assert [(m["key"], m["secret"], m["version"]) for m in secrets] == [(k, v, "latest") for k, v in fn.secrets]
        assert fn.dead_letter_subscription in state["subscriptions"]
    # only the monitor mounts the webhook, and only its runtime account may read the secret
    assert spec.function("phase_transition_monitor").secrets == (("MONITOR_SLACK_WEBHOOK_URL", "slack-webhook"),)
    assert state["secrets"]["slack-webhook"]["iam"] == {
        "roles/secretmanager.secretAccessor": [f"serviceAccount:{monitor.service_account_email(PROJECT)}"]
    }
    agent = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"
    for email, account in state["service_accounts"].items():  # token minting: on the trigger identities only
        trigger = email.split("@")[0].endswith("-inv")
        assert account.get("iam", {}) == ({"roles/iam.serviceAccountTokenCreator": [agent]} if trigger else {}), email
    assert not any(agent in members for members in state["project_iam"].values())
    assert all(not r.startswith(("roles/bigquery.data", "roles/datastore")) for r in state["project_iam"]), state[
        "project_iam"
    ]
    assert {e["role"] for e in state["project_iam_conditional"]} == {"roles/datastore.user"}
    assert all(d["iam"] == {} for d in state["datasets"].values())  # nothing dataset-wide
    assert state["roles"][TABLE_WRITER.role_id]["includedPermissions"] == sorted(TABLE_WRITER.permissions)
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


# -- login and arguments: exit 2, one line, before anything else ------------------------------------
@pytest.mark.parametrize("auth", ["none", "expired"])
@pytest.mark.parametrize("action", ["verify", "apply"])
def test_without_a_valid_login_deploy_stops_at_once(
    definition: PipelineDefinition, first_apply: FirstApply, tmp_path: Path, auth: str, action: str
) -> None:
    cloud = FakeCloud.create(definition, tmp_path, copy.deepcopy(first_apply.state))
    cloud.update(lambda state: state.update(auth=auth))
    run = cloud.deploy(action)
    assert (run.code, run.out, run.err) == (2, "", f"phasectl: error: {NOT_LOGGED_IN}\n")
    assert cloud.calls() == [LOGIN]  # no function was reported missing: nothing else ran


@pytest.mark.parametrize("project", ["MY_PROJECT", "my-proj-", "1project", "abc", "a" * 31, "my_proj", ""])
@pytest.mark.parametrize("action", ["plan", "verify", "apply"])
def test_an_invalid_project_id_is_rejected_before_anything_runs(
    definition: PipelineDefinition, tmp_path: Path, project: str, action: str
) -> None:
    cloud = FakeCloud.create(definition, tmp_path)
    out, err = io.StringIO(), io.StringIO()
    argv = ["deploy", action, "--project", project]
    code = phasectl.main(argv, environ={**cloud.env, "GOOGLE_CLOUD_PROJECT": PROJECT}, out=out, err=err)
    assert code == 2 and out.getvalue() == ""
    assert err.getvalue().count("\n") == 1 and "invalid project id" in err.getvalue(), err.getvalue()
    assert cloud.calls() == []
    assert not (cloud.root / "build").exists()  # not even a bundle was built


# -- secrets ------------------------------------------------------------------------------------------
def test_secret_set_reads_the_value_from_stdin_and_never_shows_it(
    definition: PipelineDefinition, tmp_path: Path
) -> None:
    cloud = FakeCloud.create(definition, tmp_path)
    run = cloud.set_secret(value=WEBHOOK + b"\n")  # as `echo URL |` gives it
    assert run.code == 0, run.err
    assert run.err == "" and "slack-webhook: new version added" in run.out
    versions = cloud.state()["secrets"]["slack-webhook"]["versions"]
    assert versions == [{"state": "ENABLED", "sha256": hashlib.sha256(WEBHOOK).hexdigest(), "size": len(WEBHOOK)}]
    calls = cloud.calls()
    assert calls[0] == LOGIN
    assert ["gcloud", "secrets", "versions", "add", "slack-webhook", "--data-file=-", f"--project={PROJECT}"] in calls
    everything = run.out + run.err + cloud.log_path.read_text() + cloud.state_path.read_bytes().decode("latin-1")
    assert WEBHOOK.decode() not in everything and "s3cr3t" not in everything


def test_secret_set_through_phasectl_as_a_process(definition: PipelineDefinition, tmp_path: Path) -> None:
    cloud = FakeCloud.create(definition, tmp_path)
    env = {k: v for k, v in cloud.env.items() if k != "PIPELINE_DEFINITION"}
    done = subprocess.run(
        [sys.executable, "-m", "phasectl", "deploy", "secret", "set", "slack-webhook", "--project", PROJECT],
        input=WEBHOOK,
        capture_output=True,
        env=env,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert WEBHOOK not in done.stdout + done.stderr and b"s3cr3t" not in done.stdout + done.stderr
    assert cloud.state()["secrets"]["slack-webhook"]["versions"][0]["sha256"] == hashlib.sha256(WEBHOOK).hexdigest()


@pytest.mark.parametrize(
    ("operands", "stdin", "message"),
    [
        (("set", "github-token"), WEBHOOK, "no secret 'github-token'"),
        (("set", "slack-webhook"), b"", "no value on stdin"),
        (("set", "slack-webhook"), b"\n", "no value on stdin"),
        (("get", "slack-webhook"), WEBHOOK, "usage: phasectl deploy secret set NAME"),
        (("set",), WEBHOOK, "usage: phasectl deploy secret set NAME"),
    ],
)
def test_a_bad_secret_command_is_one_line_and_runs_nothing(
    definition: PipelineDefinition, tmp_path: Path, operands: tuple[str, ...], stdin: bytes, message: str
) -> None:
    cloud = FakeCloud.create(definition, tmp_path)
    run = cloud.deploy("secret", None, *operands, stdin=stdin)
    assert run.code == 2 and run.out == ""
    assert run.err.count("\n") == 1 and message in run.err, run.err
    assert cloud.calls() == []


def test_apply_stops_before_mounting_a_secret_without_a_value(definition: PipelineDefinition, tmp_path: Path) -> None:
    cloud = FakeCloud.create(definition, tmp_path)
    run = cloud.deploy("apply")
    assert run.code == 2
    assert run.err.count("\n") == 1 and "secret slack-webhook has no enabled version" in run.err
    assert "phasectl deploy secret set slack-webhook" in run.err
    state = cloud.state()
    assert "slack-webhook" in state["secrets"] and state["secrets"]["slack-webhook"]["versions"] == []
    assert "phase-transition-monitor" not in state["functions"]  # stopped before its deploy
    assert cloud.set_secret().code == 0
    again = cloud.deploy("apply")
    assert again.code == 0, again.err
    assert cloud.deploy("verify").code == 0


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
        "--update-env-vars=MONITOR_LOOKBACK_NOTE=ops",
        f"--project={PROJECT}",
    )
    deployed.forget_calls()
    run = deployed.deploy("apply", function="phase_transition_monitor")  # its redeploy is what matters
    assert run.code == 0, run.err
    env = deployed.state()["functions"]["phase-transition-monitor"]["described"]["serviceConfig"][
        "environmentVariables"
    ]
    assert env == {"GOOGLE_CLOUD_PROJECT": PROJECT, **RUNTIME, "MONITOR_LOOKBACK_NOTE": "ops"}
    deploys = [c for c in deployed.calls() if c[:3] == ["gcloud", "functions", "deploy"]]
    expected = "--update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__"
    assert len(deploys) == 1 and expected in deploys[0]
    assert not any(t.startswith(("--set-env-vars", "--clear-env-vars")) for t in deploys[0])


def test_a_webhook_set_as_a_plain_variable_fails_verify_and_apply_replaces_it_with_the_secret(
    deployed: FakeCloud,
) -> None:
    """The old way (`--update-env-vars=MONITOR_SLACK_WEBHOOK_URL=...`) left the URL readable by any viewer."""
    monitor = "phase-transition-monitor"
    plain = "https://hooks.slack.com/services/T0/B0/plainValue"

    def by_hand(state: dict[str, Any]) -> None:
        config = state["functions"][monitor]["described"]["serviceConfig"]
        config["environmentVariables"]["MONITOR_SLACK_WEBHOOK_URL"] = plain
        config.pop("secretEnvironmentVariables")

    deployed.update(by_hand)
    run = deployed.deploy("verify")
    assert run.code == 1
    lines = failures(run)
    assert any("MONITOR_SLACK_WEBHOOK_URL is a plain environment variable" in line for line in lines), lines
    assert any(f"function {monitor}: secrets none" in line for line in lines), lines
    assert "plainValue" not in run.out + run.err  # verify never prints a value
    applied = deployed.deploy("apply", function="phase_transition_monitor")
    assert applied.code == 0, applied.err
    config = deployed.state()["functions"][monitor]["described"]["serviceConfig"]
    assert config["environmentVariables"] == {"GOOGLE_CLOUD_PROJECT": PROJECT, **RUNTIME}
    assert [m["key"] for m in config["secretEnvironmentVariables"]] == ["MONITOR_SLACK_WEBHOOK_URL"]
    assert deployed.deploy("verify").code == 0


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
    own_tables = {ref for ref, _ in mine.table_roles}  # its grants on them are its own
    foreign |= {job.name for job in spec.jobs} | {t.table for t in spec.tables if t.ref not in own_tables}
    foreign -= set(mine.publishes)  # its publisher grants on them are its own (e.g. the outbox nudge topic)
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
    assert len(failures(deployed.deploy("verify"))) == 4, failures(deployed.deploy("verify"))

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
    assert len(updates) == len(spec.firestore_ttls) == 8
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


# -- IAM: every planned grant present, no other grant held by a function account ---------------------
AGENT = "serviceAccount:service-123456789012@gcp-sa-pubsub.iam.gserviceaccount.com"


def sa(account: str) -> str:
    return f"serviceAccount:{account}@{PROJECT}.iam.gserviceaccount.com"


def run_removal(cloud: FakeCloud, line: str) -> None:
    """Run the command a FAIL line names after ``remove:`` (through the fake, as an operator would)."""
    import shlex

    command = line.split("(remove: ", 1)[1].rsplit(")", 1)[0]
    cloud.by_hand(*shlex.split(command))


def test_verify_checks_every_planned_grant(deployed: FakeCloud, spec: DeploymentSpec) -> None:
    run = deployed.deploy("verify")
    assert run.code == 0, failures(run)
    audited = [line for line in run.out.splitlines() if line.startswith("ok   IAM ")]
    assert f"ok   IAM project {PROJECT}: as planned" in run.out
    for fn in spec.functions:
        for email in fn.account_emails(PROJECT):
            assert f"ok   IAM service account {email}: as planned" in run.out
        assert f"ok   function {fn.cloud_name}: trigger identity {fn.trigger_account_email(PROJECT)}" in run.out
        assert f"ok   function {fn.cloud_name} invoker: as planned (1 grant(s)" in run.out
    for table in {ref for fn in spec.functions for ref, _ in fn.table_roles}:
        assert f"ok   IAM table {table}: as planned" in run.out
    for dataset in {*spec.datasets, *spec.read_datasets}:
        assert f"ok   IAM dataset {dataset}: as planned (0 grant(s)" in run.out
    assert "ok   IAM secret slack-webhook: as planned (1 grant(s)" in run.out
    assert "ok   secret slack-webhook: latest version ENABLED" in run.out
    assert (
        f"ok   custom role {TABLE_WRITER.role_id}: permissions {', '.join(sorted(TABLE_WRITER.permissions))}" in run.out
    )
    assert len(audited) >= 1 + 2 * len(spec.functions) + len(spec.topics) + len(spec.read_datasets)


@pytest.mark.parametrize(
    ("grant", "where"),
    [
        # a runtime account with a project-wide role it does not need
        (["gcloud", "projects", "add-iam-policy-binding", PROJECT, "--role=roles/bigquery.dataEditor"], "project"),
        # Firestore without the database condition
        (["gcloud", "projects", "add-iam-policy-binding", PROJECT, "--role=roles/datastore.user"], "project"),
        # the previous version's dataset-wide grants
        (
            [
                "bq",
                "add-iam-policy-binding",
                "--dataset",
                "--role=roles/bigquery.dataEditor",
                f"{PROJECT}:nba_orchestration",
            ],
            "dataset nba_orchestration",
        ),
        (
            ["bq", "add-iam-policy-binding", "--dataset", "--role=roles/bigquery.dataViewer", f"{PROJECT}:nba_raw"],
            "dataset nba_raw",
        ),
        # writing a table it only reads
        (
            [
                "bq",
                "add-iam-policy-binding",
                "--table",
                f"--role=projects/{PROJECT}/roles/{TABLE_WRITER.role_id}",
                f"{PROJECT}:nba_raw.nbac_schedule",
            ],
            "table nba_raw.nbac_schedule",
        ),
        # reading the secret it does not mount
        (
            [
                "gcloud",
                "secrets",
                "add-iam-policy-binding",
                "slack-webhook",
                "--role=roles/secretmanager.secretAccessor",
                f"--project={PROJECT}",
            ],
            "secret slack-webhook",
        ),
        # publishing where it does not publish
        (
            [
                "gcloud",
                "pubsub",
                "topics",
                "add-iam-policy-binding",
                "nba-phase2-raw-complete",
                "--role=roles/pubsub.publisher",
                f"--project={PROJECT}",
            ],
            "topic nba-phase2-raw-complete",
        ),
    ],
)
def test_verify_fails_on_an_extra_grant_and_names_the_command_that_removes_it(
    deployed: FakeCloud, grant: list[str], where: str
) -> None:
    member = f"--member={sa('phase2-to-phase3')}"
    deployed.by_hand(*grant[:-1], member, grant[-1]) if grant[0] == "bq" else deployed.by_hand(*grant, member)
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert f"IAM {where}" in line and "EXTRA" in line and "for phase2-to-phase3" in line and "(remove: " in line, line
    run_removal(deployed, line)
    assert deployed.deploy("verify").code == 0


def test_verify_fails_when_the_runtime_account_may_invoke_or_the_trigger_identity_may_read(deployed: FakeCloud) -> None:
    """The trigger identity is invoker only; the runtime account keeps its data rights only."""
    p = f"--project={PROJECT}"
    deployed.by_hand(
        "gcloud",
        "functions",
        "add-invoker-policy-binding",
        "phase3-to-phase4",
        "--region=us-west2",
        f"--member={sa('phase3-to-phase4')}",
        p,
    )
    deployed.by_hand(
        "gcloud",
        "pubsub",
        "topics",
        "add-iam-policy-binding",
        "nba-phase4-trigger",
        f"--member={sa('phase3-to-phase4-inv')}",
        "--role=roles/pubsub.publisher",
        p,
    )
    run = deployed.deploy("verify")
    assert run.code == 1
    lines = failures(run)
    assert len(lines) == 2, lines
    assert any(
        "function phase3-to-phase4 invoker" in f and "EXTRA roles/run.invoker for phase3-to-phase4 " in f for f in lines
    )
    assert any(
        "IAM topic nba-phase4-trigger" in f and "EXTRA roles/pubsub.publisher for phase3-to-phase4-inv" in f
        for f in lines
    )
    for line in lines:
        run_removal(deployed, line)
    assert deployed.deploy("verify").code == 0


@pytest.mark.parametrize(
    ("change", "expect"),
    [
        (lambda s: s.update(project_iam_conditional=[]), "MISSING roles/datastore.user if resource.name =="),
        (
            lambda s: s["service_accounts"][f"phase2-to-phase3-inv@{PROJECT}.iam.gserviceaccount.com"].update(iam={}),
            "MISSING roles/iam.serviceAccountTokenCreator for the Pub/Sub service agent",
        ),
        (
            lambda s: s["secrets"]["slack-webhook"].update(iam={}),
            "MISSING roles/secretmanager.secretAccessor for phase-transition-monitor",
        ),
        (lambda s: s["table_iam"]["nba_raw.nbac_schedule"].clear(), "MISSING roles/bigquery.dataViewer for"),
        (
            lambda s: s["topics"]["nba-phase2-raw-complete-dlq"]["iam"].clear(),
            "MISSING roles/pubsub.publisher for the Pub/Sub service agent",
        ),
        (
            lambda s: s["roles"][TABLE_WRITER.role_id]["includedPermissions"].append("bigquery.tables.delete"),
            f"custom role {TABLE_WRITER.role_id}: permissions bigquery.tables.delete",
        ),
        (
            lambda s: s["secrets"]["slack-webhook"]["versions"][0].update(state="DISABLED"),
            "secret slack-webhook: latest version DISABLED",
        ),
    ],
)
def test_verify_fails_on_a_missing_grant_and_apply_restores_it(deployed: FakeCloud, change: Any, expect: str) -> None:
    deployed.update(change)
    run = deployed.deploy("verify")
    assert run.code == 1
    assert any(expect in line for line in failures(run)), failures(run)
    if "DISABLED" in expect:  # a value is the operator's: apply stops and says how to set one
        applied = deployed.deploy("apply")
        assert applied.code == 2 and "phasectl deploy secret set slack-webhook" in applied.err
        assert deployed.set_secret().code == 0
    else:
        applied = deployed.deploy("apply")
        assert applied.code == 0, applied.err
    verified = deployed.deploy("verify")
    assert verified.code == 0, failures(verified)


def test_the_previous_versions_grants_are_all_named_with_their_removal(
    deployed: FakeCloud, spec: DeploymentSpec
) -> None:
    """What an earlier deploy left: project-wide token minting, dataset-wide editor and viewer, the runtime
    account as trigger identity (invoker), Firestore unconditioned. Verify names each; its commands remove them."""
    p = f"--project={PROJECT}"
    deployed.by_hand(
        "gcloud",
        "projects",
        "add-iam-policy-binding",
        PROJECT,
        f"--member={AGENT}",
        "--role=roles/iam.serviceAccountTokenCreator",
        "--condition=None",
    )
    for fn in spec.functions:
        runtime = f"--member=serviceAccount:{fn.service_account_email(PROJECT)}"
        deployed.by_hand(
            "bq",
            "add-iam-policy-binding",
            "--dataset",
            runtime,
            "--role=roles/bigquery.dataEditor",
            f"{PROJECT}:nba_orchestration",
        )
        deployed.by_hand(
            "gcloud",
            "projects",
            "add-iam-policy-binding",
            PROJECT,
            runtime,
            "--role=roles/datastore.user",
            "--condition=None",
        )
        deployed.by_hand(
            "gcloud", "functions", "add-invoker-policy-binding", fn.cloud_name, "--region=us-west2", runtime, p
        )
    deployed.by_hand(
        "bq",
        "add-iam-policy-binding",
        "--dataset",
        f"--member={sa('phase2-to-phase3')}",
        "--role=roles/bigquery.dataViewer",
        f"{PROJECT}:nba_raw",
    )
    run = deployed.deploy("verify")
    assert run.code == 1
    lines = failures(run)
    project = next(line for line in lines if line.startswith(f"FAIL IAM project {PROJECT}:"))
    assert "EXTRA roles/iam.serviceAccountTokenCreator for the Pub/Sub service agent" in project
    assert project.count("EXTRA roles/datastore.user for") == len(spec.functions)
    extra = [cmd for line in lines for cmd in line.split("(remove: ")[1:]]
    assert len(extra) == 1 + 3 * len(spec.functions) + 1, lines
    import shlex

    for command in extra:
        deployed.by_hand(*shlex.split(command.rsplit(")", 1)[0]))
    verified = deployed.deploy("verify")
    assert verified.code == 0, failures(verified)
