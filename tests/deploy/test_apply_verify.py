"""``phasectl deploy apply|verify`` against a recording fake ``gcloud``/``bq`` on PATH (no cloud).

apply and verify run exactly as ``phasectl deploy`` runs them (``deploy.cli.run_deploy``); only the
programs they call are fakes (``tests/support/fake_gcloud.py``, answered in this process, plus the
scheduler and Cloud Run commands of ``tests/deploy/fake_scheduler.py``), which keep a small simulated
project in a file and log every call. Bundles and schema files go to a temporary root, not the
repository's ``build/``. The processors' tables and the Cloud Run services the scheduled jobs call
exist before the first deploy, as in a real project.
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
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

import phasectl
from deploy.apply import NOT_LOGGED_IN
from deploy.cli import SeasonReader, run_deploy
from deploy.plan import build_plan, render_plan
from deploy.spec import RUNTIME_ENV, TABLE_WRITER, DeploymentSpec, build_spec
from shared.pipeline.definition import PipelineDefinition
from tests.deploy import fake_scheduler
from tests.support import fake_gcloud

PROJECT = "my-proj"
RUNTIME = dict(RUNTIME_ENV)  # set on every function (deploy.spec)
REPO = Path(__file__).resolve().parents[2]
WEBHOOK = b"https://hooks.slack.com/services/T0FAKE/B0FAKE/s3cr3tV4lue"  # a made-up value; never printed
LOGIN = ["gcloud", "auth", "print-access-token", "--format=none"]


_PROCESSOR_TABLES: dict[int, tuple[str, ...]] = {}
_CALLED_SERVICES: dict[int, tuple[str, ...]] = {}


def processor_tables(definition: PipelineDefinition) -> tuple[str, ...]:
    """The processors' tables the functions read: they exist before any deploy."""
    if id(definition) not in _PROCESSOR_TABLES:
        _PROCESSOR_TABLES[id(definition)] = build_spec(definition, PROJECT).read_tables
    return _PROCESSOR_TABLES[id(definition)]


def called_services(definition: PipelineDefinition) -> tuple[str, ...]:
    """The Cloud Run services the dispatcher's HTTP jobs call: the processors', deployed before ours."""
    if id(definition) not in _CALLED_SERVICES:
        spec = build_spec(definition, PROJECT)
        _CALLED_SERVICES[id(definition)] = tuple(sorted({s for fn in spec.functions for s in fn.invokes}))
    return _CALLED_SERVICES[id(definition)]


def empty_project(definition: PipelineDefinition) -> dict[str, Any]:
    """Nothing of ours deployed; the processors' tables and Cloud Run services exist (the latter with the
    invoker grants of their own callers)."""
    state = fake_gcloud.initial_state(PROJECT, tables=processor_tables(definition))
    for service in called_services(definition):
        state["run_iam"][service] = {
            "roles/run.invoker": [f"serviceAccount:scheduler@{PROJECT}.iam.gserviceaccount.com"]
        }
    return state


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
        state = state or empty_project(definition)
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

    def deploy(
        self,
        action: str,
        function: str | None = None,
        *operands: str,
        stdin: bytes | None = None,
        season: SeasonReader | None = None,
        now: datetime | None = None,
    ) -> Run:
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
            runner=self.runner(),
            operands=operands,
            stdin=None if stdin is None else io.BytesIO(stdin),
            season=season,
            now=now,
        )
        return Run(code, out.getvalue(), err.getvalue())

    def runner(self) -> Any:
        return fake_scheduler.runner(self.env, self.root)

    def run(self, command: str) -> None:
        """A command verify names (a fix), run as an operator would (through the same fakes)."""
        import shlex

        done = self.runner()(shlex.split(command))
        assert done.returncode == 0, (command, done.stderr)

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
        # the dispatcher also gets the project number (Cloud Run's service URLs name it), looked up by apply
        looked_up = {name: state["project"]["projectNumber"] for name, _ in fn.env_lookups}
        assert described["serviceConfig"]["environmentVariables"] == {
            "GOOGLE_CLOUD_PROJECT": PROJECT,
            **RUNTIME,
            **looked_up,
        }
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
    # the dispatcher may call each Cloud Run service its jobs call (with the OIDC token of its runtime account)
    dispatcher = spec.function("schedule_dispatcher")
    assert dispatcher.invokes and set(dispatcher.invokes) <= set(state["run_iam"])
    assert looked_up_number(state, dispatcher.name) == state["project"]["projectNumber"]
    for service in dispatcher.invokes:
        members = state["run_iam"][service]["roles/run.invoker"]
        assert f"serviceAccount:{dispatcher.service_account_email(PROJECT)}" in members, service
    checked = [c[4] for c in first_apply.calls if c[:4] == ["gcloud", "run", "services", "describe"]]
    assert checked == list(dispatcher.invokes)  # each checked to exist before its binding


def looked_up_number(state: dict[str, Any], function: str) -> str:
    env = state["functions"][function.replace("_", "-")]["described"]["serviceConfig"]["environmentVariables"]
    return str(env["GOOGLE_CLOUD_PROJECT_NUMBER"])


def test_first_apply_then_verify_passes_through_phasectl(deployed: FakeCloud, monkeypatch: pytest.MonkeyPatch) -> None:
    import deploy.cli
    import phasectl.commands.deploy

    read: list[str] = []

    def season(ctx: Any, project: str) -> dict[str, Any] | None:  # the Firestore read, not a real project's
        read.append(project)
        return {"paused": ["A"], "updated_by": "ops"}

    monkeypatch.setattr(deploy.cli, "subprocess_runner", lambda root, env=None: deployed.runner())
    monkeypatch.setattr(phasectl.commands.deploy, "read_season_overrides", season)
    out, err = io.StringIO(), io.StringIO()
    code = phasectl.main(["deploy", "verify", "--project", PROJECT], environ=deployed.env, out=out, err=err)
    assert code == 0, out.getvalue() + err.getvalue()
    assert "FAIL" not in out.getvalue()
    assert ", 0 failed" in out.getvalue().splitlines()[-1]
    assert read == [PROJECT]  # verify reads the season overrides of the project it verifies
    assert "| OVERRIDE |" in out.getvalue() and "season: wave A" in out.getvalue()


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


def test_verify_fails_for_a_paused_scheduler_job_and_names_the_resume(deployed: FakeCloud) -> None:
    state = deployed.state()
    state["jobs"]["auto-retry-processor-trigger"]["described"]["state"] = "PAUSED"
    deployed.set_state(state)
    run = deployed.deploy("verify")
    assert run.code == 1
    assert failures(run) == []  # no other check failed: the scheduler table says what
    (row,) = drift_rows(run)
    resume = f"gcloud scheduler jobs resume auto-retry-processor-trigger --location=us-west2 --project={PROJECT}"
    assert row == Row("auto-retry-processor-trigger", "PAUSED", "state ENABLED", "state PAUSED", resume)
    deployed.run(row.fix)
    assert deployed.deploy("verify").code == 0


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
    assert len(updates) == len(spec.firestore_ttls) == 13  # + self_heal, backfill_queue, backfill_slots (issue 27)
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


def test_verify_output_is_one_line_per_check_then_the_scheduler_table(
    deployed: FakeCloud, spec: DeploymentSpec
) -> None:
    run = deployed.deploy("verify")
    lines = run.out.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Cloud Scheduler (us-west2): "))
    assert all(line.startswith(("ok   ", "FAIL ")) for line in lines[:title]), lines
    table = lines[title + 1 : -1]
    assert [c.strip() for c in table[0].split(" | ")] == ["job", "state", "expected", "actual", "fix command"]
    assert set(table[1]) <= {"-", "+"}
    assert len(table) == 2 + len(spec.jobs)  # one row per defined job (all OK here)
    assert lines[-1].startswith("verify: ")
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


# -- Cloud Scheduler: one table of drift (MISSING, ZOMBIE, CHANGED, PAUSED) with the fix commands ------
DRIFT = ("MISSING", "ZOMBIE", "CHANGED", "PAUSED")
TICK = "schedule-dispatcher-tick"
MONITOR_JOB = "phase-transition-monitor"


@dataclass(frozen=True)
class Row:
    job: str
    state: str
    expected: str
    actual: str
    fix: str


def table_rows(run: Run) -> list[Row]:
    """The rows of verify's scheduler table (title, header and rule skipped; the summary line last)."""
    lines = run.out.splitlines()
    title = next(i for i, line in enumerate(lines) if line.startswith("Cloud Scheduler ("))
    assert [c.strip() for c in lines[title + 1].split(" | ")] == ["job", "state", "expected", "actual", "fix command"]
    rows = [Row(*(cell.strip() for cell in line.split(" | ", 4))) for line in lines[title + 3 : -1]]
    assert lines[-1].startswith("verify: ")
    return rows


def drift_rows(run: Run) -> list[Row]:
    return [r for r in table_rows(run) if r.state in DRIFT]


def listed_job(name: str, schedule: str, zone: str, **target: Any) -> dict[str, Any]:
    """A Cloud Scheduler job as the fake keeps it (``described``: what ``jobs list`` prints)."""
    return {
        "location": "us-west2",
        "described": {
            "name": f"projects/{PROJECT}/locations/us-west2/jobs/{name}",
            "schedule": schedule,
            "timeZone": zone,
            "state": "ENABLED",
            **target,
        },
    }


def b64(text: str) -> str:
    import base64

    return base64.b64encode(text.encode()).decode()


def scheduler_job(spec: DeploymentSpec, name: str) -> Any:
    return next(job for job in spec.jobs if job.name == name)


def test_the_project_holds_exactly_the_definitions_scheduler_jobs(
    deployed: FakeCloud, spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    """After apply: the monitor's, auto-retry's and the dispatcher's tick, nothing per [[jobs]] entry;
    verify lists the region once and finds every job as defined (exit 0)."""
    assert sorted(deployed.state()["jobs"]) == sorted(
        definition.schedule_entries()[k].job or k for k in definition.schedule_entries()
    )
    assert sorted(j.name for j in spec.jobs) == sorted([MONITOR_JOB, "auto-retry-processor-trigger", TICK])
    tick = scheduler_job(spec, TICK)
    assert (tick.cron, tick.timezone, tick.topic, tick.function) == ("* * * * *", "UTC", TICK, "schedule_dispatcher")
    assert json.loads(tick.body) == {"force": False}  # a ScheduleTick: run every slot due now
    assert not set(deployed.state()["jobs"]) & {j.name for j in definition.all_jobs()}
    deployed.forget_calls()
    run = deployed.deploy("verify")
    assert run.code == 0, run.out
    rows = table_rows(run)
    assert [(r.job, r.state, r.actual, r.fix) for r in rows] == [
        (j.name, "OK", "as defined", "-") for j in sorted(spec.jobs, key=lambda j: j.name)
    ]
    calls = deployed.calls()
    assert [c for c in calls if c[:3] == ["gcloud", "scheduler", "jobs"]] == [
        ["gcloud", "scheduler", "jobs", "list", "--location=us-west2", f"--project={PROJECT}", "--format=json"]
    ]
    assert "Cloud Scheduler (us-west2): 3 job(s) defined, 0 drifted" in run.out


def test_verify_reports_a_deleted_job_as_missing_with_its_create_command(
    deployed: FakeCloud, spec: DeploymentSpec
) -> None:
    from deploy.plan import render_command, scheduler_create_command

    deployed.update(lambda state: state["jobs"].pop(TICK))
    run = deployed.deploy("verify")
    assert run.code == 1
    assert failures(run) == []
    (row,) = drift_rows(run)
    assert (row.job, row.state, row.actual) == (TICK, "MISSING", "absent")
    assert row.expected == 'ENABLED, * * * * * (UTC) → topic schedule-dispatcher-tick, body {"force":false}'
    assert row.fix == render_command(scheduler_create_command(spec, scheduler_job(spec, TICK)))
    assert row.fix == (
        f"gcloud scheduler jobs create pubsub {TICK} --location=us-west2 '--schedule=* * * * *' --time-zone=UTC "
        f"--topic=projects/{PROJECT}/topics/{TICK} '--message-body={{\"force\":false}}' --project={PROJECT}"
    )
    assert run.out.splitlines()[-1].endswith(" failed (1 Cloud Scheduler drift)")
    deployed.run(row.fix)
    assert deployed.deploy("verify").code == 0


def test_apply_recreates_a_deleted_job(deployed: FakeCloud) -> None:
    deployed.update(lambda state: state["jobs"].pop(TICK))
    applied = deployed.deploy("apply")
    assert applied.code == 0, applied.err
    assert f"scheduler job {TICK}: created" in applied.out
    assert deployed.deploy("verify").code == 0


def test_verify_reports_jobs_outside_the_definition_as_zombies_with_their_delete_command(
    deployed: FakeCloud, definition: PipelineDefinition
) -> None:
    """The replaced system's ``same-day-phase3`` (a [[jobs]] entry the dispatcher now runs), an earlier
    deploy's per-slot job of the grading sensor, and a job nobody defines; one in another region is not
    verify's to judge."""
    dispatched = definition.job("same-day-phase3")  # a [[jobs]] entry: the dispatcher runs it
    slot = definition.timed_triggers()[0].slots[0].job  # a sensor slot: once its own Cloud Scheduler job
    uri = "https://nba-phase3-analytics-processors-f7p3g7f6ya-wl.a.run.app/process-date-range"

    def zombies(state: dict[str, Any]) -> None:
        state["jobs"]["same-day-phase3"] = listed_job(
            "same-day-phase3", dispatched.cron, "America/New_York", httpTarget={"uri": uri, "httpMethod": "POST"}
        )
        state["jobs"][slot] = listed_job(
            slot,
            "*/15 22-23,0-2 * * *",
            "America/New_York",
            pubsubTarget={"topicName": f"projects/{PROJECT}/topics/grading-readiness-tick", "data": b64("{}")},
        )
        state["jobs"]["legacy-cleanup"] = listed_job(
            "legacy-cleanup", "0 3 * * *", "UTC", httpTarget={"uri": "https://x.example/"}
        )
        state["jobs"]["other-region"] = {**listed_job("other-region", "0 3 * * *", "UTC"), "location": "us-east1"}

    deployed.update(zombies)
    run = deployed.deploy("verify")
    assert run.code == 1
    assert failures(run) == []
    rows = {r.job: r for r in drift_rows(run)}
    assert sorted(rows) == sorted(["legacy-cleanup", "same-day-phase3", slot])
    twice = f"absent: now dispatched by {TICK}: delete the Cloud Scheduler job or it runs twice"
    assert rows["same-day-phase3"] == Row(
        "same-day-phase3",
        "ZOMBIE",
        twice,
        f"ENABLED, 30 10 * * * (America/New_York) → http POST {uri}",
        f"gcloud scheduler jobs delete same-day-phase3 --location=us-west2 --project={PROJECT}",
    )
    assert rows[slot].expected == twice  # a sensor slot is dispatched too
    assert rows[slot].actual == "ENABLED, */15 22-23,0-2 * * * (America/New_York) → topic grading-readiness-tick"
    assert rows["legacy-cleanup"].expected == "absent (not in the definition)"
    assert (
        rows["legacy-cleanup"].fix
        == f"gcloud scheduler jobs delete legacy-cleanup --location=us-west2 --project={PROJECT}"
    )
    assert run.out.splitlines()[-1].endswith("(3 Cloud Scheduler drift)")
    for row in rows.values():
        deployed.run(row.fix)
    assert deployed.deploy("verify").code == 0
    assert sorted(deployed.state()["jobs"]) == sorted(
        [MONITOR_JOB, "auto-retry-processor-trigger", TICK, "other-region"]
    )


CHANGES = {
    "schedule": (lambda d: d.update(schedule="*/5 * * * *"), "schedule */10 * * * *", "schedule */5 * * * *"),
    "time zone": (lambda d: d.update(timeZone="Etc/UTC"), "time zone America/New_York", "time zone Etc/UTC"),
    "body": (
        lambda d: d["pubsubTarget"].update(data=b64('{"check":"transitions","dry_run":true}')),
        'body {"check":"transitions","dry_run":false,"season":false}',  # MonitorTick's defaults
        'body {"check":"transitions","dry_run":true}',
    ),
    "topic": (
        lambda d: d["pubsubTarget"].update(topicName=f"projects/{PROJECT}/topics/auto-retry-trigger"),
        "topic phase-transition-monitor-trigger",
        "topic auto-retry-trigger",
    ),
}


@pytest.mark.parametrize("what", sorted(CHANGES))
def test_verify_reports_a_changed_job_with_its_update_command(
    deployed: FakeCloud, spec: DeploymentSpec, what: str
) -> None:
    from deploy.plan import render_command, scheduler_update_command

    change, expected, actual = CHANGES[what]
    deployed.update(lambda state: change(state["jobs"][MONITOR_JOB]["described"]))
    run = deployed.deploy("verify")
    assert run.code == 1
    (row,) = drift_rows(run)
    assert (row.job, row.state, row.expected, row.actual) == (MONITOR_JOB, "CHANGED", expected, actual)
    assert row.fix == render_command(scheduler_update_command(spec, scheduler_job(spec, MONITOR_JOB)))
    assert row.fix.startswith(f"gcloud scheduler jobs update pubsub {MONITOR_JOB} --location=us-west2 ")
    for flag in ("'--schedule=*/10 * * * *'", "--time-zone=America/New_York", "--message-body=", "--topic=projects/"):
        assert flag in row.fix
    deployed.run(row.fix)
    assert deployed.deploy("verify").code == 0


def test_a_body_with_the_same_json_is_not_a_change(deployed: FakeCloud) -> None:
    """Cloud Scheduler keeps the bytes it was given; the same JSON with other spacing or key order is the same body."""
    deployed.update(
        lambda s: s["jobs"][MONITOR_JOB]["described"]["pubsubTarget"].update(
            data=b64('{ "season": false, "dry_run": false, "check": "transitions" }')
        )
    )
    assert deployed.deploy("verify").code == 0


def test_a_changed_and_paused_job_gets_a_row_for_each_and_an_http_job_is_recreated(
    deployed: FakeCloud, spec: DeploymentSpec
) -> None:
    def drift(state: dict[str, Any]) -> None:
        monitor = state["jobs"][MONITOR_JOB]["described"]
        monitor.update(schedule="0 * * * *", state="PAUSED")
        tick = state["jobs"][TICK]["described"]  # an earlier hand-made HTTP job under the tick's name
        del tick["pubsubTarget"]
        tick["httpTarget"] = {"uri": "https://schedule-dispatcher.example/", "httpMethod": "POST"}

    deployed.update(drift)
    run = deployed.deploy("verify")
    assert run.code == 1
    rows = drift_rows(run)
    assert [(r.job, r.state) for r in rows] == [(MONITOR_JOB, "CHANGED"), (TICK, "CHANGED"), (MONITOR_JOB, "PAUSED")]
    tick = rows[1]
    assert tick.expected == f"topic {TICK}" and tick.actual == "http POST https://schedule-dispatcher.example/"
    delete, create = tick.fix.split(" && ")
    assert delete == f"gcloud scheduler jobs delete {TICK} --location=us-west2 --project={PROJECT}"
    assert create.startswith(f"gcloud scheduler jobs create pubsub {TICK} ")  # update cannot change the target kind
    for row in rows:
        for command in row.fix.split(" && "):
            deployed.run(command)
    assert deployed.deploy("verify").code == 0


def test_zombies_are_checked_for_the_whole_deployment_or_the_dispatcher_alone(deployed: FakeCloud) -> None:
    deployed.update(
        lambda s: s["jobs"].update(
            {"phase6-daily-results": listed_job("phase6-daily-results", "0 5 * * *", "America/New_York")}
        )
    )
    one = deployed.deploy("verify", function="phase5_to_phase6")
    assert one.code == 0, one.out  # not this function's business
    assert "(zombies not checked for one function)" in one.out and "phase6-daily-results" not in one.out
    dispatcher = deployed.deploy("verify", function="schedule_dispatcher")
    assert dispatcher.code == 1
    assert [(r.job, r.state) for r in drift_rows(dispatcher)] == [("phase6-daily-results", "ZOMBIE")]
    assert [r.job for r in table_rows(dispatcher) if r.state == "OK"] == [TICK]


def test_a_zombie_of_a_replaced_job_names_what_replaced_it(spec: DeploymentSpec) -> None:
    """A ``replaced_by`` job is declared for the record, never dispatched: its old Cloud Scheduler job duplicates
    the work of what replaced it."""
    from dataclasses import replace

    from deploy.apply import Result, verify_scheduler
    from deploy.spec import DispatchedJob

    mine = replace(
        spec, dispatched_jobs=(DispatchedJob("phase4-timeout-check-job", "the phase4_to_phase5 deadline tiers"),)
    )
    listed = [j["described"] for j in (listed_job(job.name, job.cron, job.timezone) for job in spec.jobs)]
    for described, job in zip(listed, spec.jobs, strict=True):
        described["pubsubTarget"] = {"topicName": f"projects/{PROJECT}/topics/{job.topic}", "data": b64(job.body)}
    listed.append(listed_job("phase4-timeout-check-job", "*/15 * * * *", "America/New_York")["described"])
    rows = verify_scheduler(mine, lambda argv: Result(0, json.dumps(listed), ""))
    zombie = next(r for r in rows if r.state == "ZOMBIE")
    assert zombie.job == "phase4-timeout-check-job" and zombie.actual.endswith("→ no target")
    assert zombie.expected == (
        "absent: replaced by the phase4_to_phase5 deadline tiers; delete it or its work is done twice"
    )
    assert [r.state for r in rows if r.job != zombie.job] == ["OK"] * len(spec.jobs)
    broken = verify_scheduler(spec, lambda argv: Result(1, "", "ERROR: PERMISSION_DENIED: cloudscheduler.jobs.list"))
    assert [(r.state, r.ok) for r in broken] == [("ERROR", False)] and "PERMISSION_DENIED" in broken[0].actual


# -- the season overrides: informational rows, never drift -------------------------------------------
IN_SEASON = datetime.fromisoformat("2026-01-15T18:00:00+00:00")  # 2025-26, every wave running by the calendar
OFF_SEASON = datetime.fromisoformat("2026-08-01T18:00:00+00:00")  # after the playoffs, before any wave resumes


def wave_jobs(definition: PipelineDefinition, wave: str) -> list[str]:
    return [j.name for j in definition.all_jobs() if j.dispatched and (j.wave or "-") == wave]


def test_a_wave_an_operator_paused_in_season_is_an_informational_row(
    deployed: FakeCloud, definition: PipelineDefinition
) -> None:
    doc = {"paused": ["C"], "last_change": "pause C", "updated_by": "ops@example.com"}
    run = deployed.deploy("verify", season=lambda project: doc, now=IN_SEASON)
    assert run.code == 0, run.out  # an operator's choice, not drift
    (row,) = [r for r in table_rows(run) if r.state == "OVERRIDE"]
    jobs = wave_jobs(definition, "C")
    assert row.job == "season: wave C" and row.expected == f"calendar: {len(jobs)} of {len(jobs)} job(s) run today"
    assert row.actual.startswith(f"paused by an operator against the calendar: {len(jobs)} job(s) do not run today: ")
    assert jobs[0] in row.actual and row.actual.endswith("(last change: pause C by ops@example.com)")
    assert row.fix.startswith("- (an operator's choice in Firestore schedule_jobs/_season")
    assert "0 drifted" in run.out


def test_a_wave_an_operator_resumed_off_season_is_an_informational_row(
    deployed: FakeCloud, definition: PipelineDefinition
) -> None:
    run = deployed.deploy("verify", season=lambda project: {"resumed": ["B"]}, now=OFF_SEASON)
    assert run.code == 0, run.out
    (row,) = [r for r in table_rows(run) if r.state == "OVERRIDE"]
    jobs = wave_jobs(definition, "B")
    assert (row.job, row.expected) == ("season: wave B", f"calendar: 0 of {len(jobs)} job(s) run today")
    assert row.actual.startswith(
        f"resumed by an operator against the calendar: {len(jobs)} job(s) run today outside their season window: "
    )
    # a pause that agrees with the calendar is still shown, and said to agree
    agreed = deployed.deploy("verify", season=lambda project: {"paused": ["B"]}, now=OFF_SEASON)
    (row,) = [r for r in table_rows(agreed) if r.state == "OVERRIDE"]
    assert (row.job, row.actual) == (
        "season: wave B",
        "paused by an operator (the calendar runs none of them today either)",
    )
    # `all`: every dispatched job; off season only those with `window = "always"` run by the calendar
    everything = deployed.deploy("verify", season=lambda project: {"paused": ["all"]}, now=OFF_SEASON)
    (row,) = [r for r in table_rows(everything) if r.state == "OVERRIDE"]
    always = [j.name for j in definition.all_jobs() if j.dispatched and j.window == "always"]
    assert row.job == "season: all jobs"
    assert (
        row.expected
        == f"calendar: {len(always)} of {len([j for j in definition.all_jobs() if j.dispatched])} job(s) run today"
    )
    if always:
        assert row.actual.startswith(f"paused by an operator against the calendar: {len(always)} job(s) do not run")
        assert always[0] in row.actual


def test_unreadable_season_overrides_are_said_and_do_not_fail_verify(deployed: FakeCloud) -> None:
    def broken(project: str) -> None:
        raise RuntimeError("not logged in to Google Cloud (no Application Default Credentials)")

    run = deployed.deploy("verify", season=broken, now=IN_SEASON)
    assert run.code == 0, run.out
    (row,) = [r for r in table_rows(run) if r.state == "OVERRIDE"]
    assert row.job == "season: overrides"
    assert row.actual == "not read: not logged in to Google Cloud (no Application Default Credentials)"
    assert [r for r in table_rows(deployed.deploy("verify", season=lambda p: None)) if r.state == "OVERRIDE"] == []


# -- the dispatcher may call the Cloud Run services of its jobs, and only that ------------------------
def test_apply_stops_before_the_jobs_when_a_called_service_does_not_exist(
    definition: PipelineDefinition, tmp_path: Path
) -> None:
    state = empty_project(definition)
    missing = called_services(definition)[0]
    del state["run_iam"][missing]
    cloud = FakeCloud.create(definition, tmp_path, state)
    assert cloud.set_secret().code == 0
    run = cloud.deploy("apply")
    assert run.code == 2
    assert run.err.count("\n") == 1 and f"Cloud Run service {missing} does not exist in us-west2" in run.err, run.err
    after = cloud.state()
    assert "schedule-dispatcher" in after["functions"] and after["jobs"] == {}  # no tick before its targets


def test_an_invoker_grant_by_hand_is_allowed_another_role_is_extra(deployed: FakeCloud, spec: DeploymentSpec) -> None:
    service = spec.function("schedule_dispatcher").invokes[0]
    monitor = f"--member={sa('phase-transition-monitor')}"
    where = (f"--region={spec.region}", f"--project={PROJECT}")
    # docs/deploy.md: the monitor and phase4_to_phase5 call the coordinator; the operator grants that by hand
    deployed.run(
        f"gcloud run services add-iam-policy-binding {service} {monitor} --role=roles/run.invoker {' '.join(where)}"
    )
    assert deployed.deploy("verify").code == 0
    deployed.run(
        f"gcloud run services add-iam-policy-binding {service} {monitor} --role=roles/run.developer {' '.join(where)}"
    )
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert (
        f"IAM Cloud Run service {service}" in line and "EXTRA roles/run.developer for phase-transition-monitor" in line
    )
    run_removal(deployed, line)
    assert deployed.deploy("verify").code == 0


def test_verify_fails_when_the_dispatcher_may_not_call_a_service_and_apply_restores_it(
    deployed: FakeCloud, spec: DeploymentSpec
) -> None:
    dispatcher = spec.function("schedule_dispatcher")
    service = dispatcher.invokes[0]
    member = f"serviceAccount:{dispatcher.service_account_email(PROJECT)}"
    deployed.update(lambda s: s["run_iam"][service]["roles/run.invoker"].remove(member))
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert f"IAM Cloud Run service {service}" in line and "MISSING roles/run.invoker for schedule-dispatcher" in line
    assert deployed.deploy("apply").code == 0
    assert deployed.deploy("verify").code == 0


def test_verify_fails_when_the_dispatcher_lost_its_project_number(deployed: FakeCloud) -> None:
    deployed.update(
        lambda s: s["functions"]["schedule-dispatcher"]["described"]["serviceConfig"]["environmentVariables"].pop(
            "GOOGLE_CLOUD_PROJECT_NUMBER"
        )
    )
    run = deployed.deploy("verify")
    assert run.code == 1
    (line,) = failures(run)
    assert "function schedule-dispatcher: GOOGLE_CLOUD_PROJECT_NUMBER unset, expected 123456789012" in line
    assert deployed.deploy("apply", function="schedule_dispatcher").code == 0
    assert deployed.deploy("verify").code == 0
