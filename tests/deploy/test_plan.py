"""``phasectl deploy plan``: a golden plan, determinism, a syntax check, and counts per function.

The golden file is the exact output of ``phasectl deploy plan --project my-proj`` with the
packaged definition. After an intended change, regenerate it with

    UPDATE_GOLDEN=1 .venv/bin/pytest tests/deploy/test_plan.py -p no:cacheprovider

and review the diff.
"""

from __future__ import annotations

import difflib
import io
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from deploy.plan import Step, Var, build_plan, render_command, render_plan
from deploy.spec import DeploymentSpec, build_spec
from shared.cli import phasectl
from shared.pipeline.definition import PipelineDefinition

PROJECT = "my-proj"
GOLDEN = Path(__file__).parent / "golden" / f"plan_{PROJECT}.sh"
DEFAULT_COMPUTE = "-compute@developer.gserviceaccount.com"


@pytest.fixture(scope="module")
def steps(spec: DeploymentSpec) -> list[Step]:
    return build_plan(spec)


def phasectl_plan(*extra: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    environ = {k: v for k, v in os.environ.items() if k != "PIPELINE_DEFINITION"}  # the packaged definition
    code = phasectl.main(["deploy", "plan", "--project", PROJECT, *extra], environ=environ, out=out, err=err)
    return code, out.getvalue(), err.getvalue()


def commands(steps: list[Step]) -> list[tuple[Step, tuple[str | Var, ...]]]:
    """Each distinct command of each step (a function's deploy is both its create and its update)."""
    out = []
    for step in steps:
        seen: list[tuple[str | Var, ...]] = []
        for command in step.commands():
            if command not in seen:
                seen.append(command)
                out.append((step, command))
    return out


# -- golden ---------------------------------------------------------------------------------------
def test_the_plan_matches_the_golden_file() -> None:
    code, plan, err = phasectl_plan()
    assert code == 0, err
    assert re.fullmatch(r"plan: \d+ steps \(6 functions, 21 topics, .*\)\n", err), err
    if os.environ.get("UPDATE_GOLDEN") == "1":
        GOLDEN.parent.mkdir(parents=True, exist_ok=True)
        GOLDEN.write_text(plan)
    expected = GOLDEN.read_text() if GOLDEN.exists() else ""
    if plan != expected:
        diff = "".join(
            difflib.unified_diff(
                expected.splitlines(keepends=True),
                plan.splitlines(keepends=True),
                fromfile=str(GOLDEN.relative_to(Path.cwd()) if GOLDEN.is_relative_to(Path.cwd()) else GOLDEN),
                tofile="phasectl deploy plan --project my-proj",
            )
        )
        pytest.fail(
            "the deployment plan changed. If the change is intended, regenerate the golden file with\n"
            "    UPDATE_GOLDEN=1 .venv/bin/pytest tests/deploy/test_plan.py -p no:cacheprovider\n"
            f"and review it. Diff (golden → now):\n{diff}",
            pytrace=False,
        )


def test_the_plan_is_deterministic(definition: PipelineDefinition) -> None:
    first = build_spec(definition, PROJECT)
    second = build_spec(definition, PROJECT)
    assert render_plan(first, build_plan(first)) == render_plan(second, build_plan(second))


def test_the_plan_is_valid_bash(spec: DeploymentSpec, steps: list[Step], tmp_path: Path) -> None:
    bash = shutil.which("bash")
    if bash is None:
        pytest.skip("bash is not installed")
    script = tmp_path / "plan.sh"
    script.write_text(render_plan(spec, steps))
    done = subprocess.run([bash, "-n", str(script)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stderr


def test_variables_render_as_quoted_bash_expansions(spec: DeploymentSpec, steps: list[Step]) -> None:
    text = render_plan(spec, steps)
    for step in steps:
        if step.var:
            assert f'{step.var}="$(' in text
    assert '"--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"' in text


# -- counts per function ----------------------------------------------------------------------------
def test_each_function_is_deployed_once_with_retry_its_own_account_and_no_public_access(
    spec: DeploymentSpec, steps: list[Step]
) -> None:
    text = render_plan(spec, steps)
    all_commands = [c for _, c in commands(steps)]
    for fn in spec.functions:
        email = fn.service_account_email(PROJECT)
        deploys = [c for c in all_commands if c[:4] == ("gcloud", "functions", "deploy", fn.cloud_name)]
        assert len(deploys) == 1, (fn.name, len(deploys))
        (deploy,) = deploys
        assert len(re.findall(rf"^gcloud functions deploy {re.escape(fn.cloud_name)} ", text, re.MULTILINE)) == 1
        assert "--retry" in deploy and "--no-retry" not in deploy
        assert "--no-allow-unauthenticated" in deploy and "--allow-unauthenticated" not in deploy
        assert f"--service-account={email}" in deploy
        assert f"--trigger-service-account={email}" in deploy
        assert f"--trigger-topic={fn.trigger_topic}" in deploy
        assert f"--source=build/{fn.name}" in deploy
        assert [t for t in deploy if isinstance(t, str) and t.startswith("--update-env-vars=")] == [
            f"--update-env-vars=GOOGLE_CLOUD_PROJECT={PROJECT}"
        ]
    assert "--set-env-vars" not in text and "--clear-env-vars" not in text
    assert DEFAULT_COMPUTE not in text
    assert "allUsers" not in text and "allAuthenticatedUsers" not in text


def test_each_function_has_its_invoker_binding_and_dead_letter_wiring(spec: DeploymentSpec, steps: list[Step]) -> None:
    for fn in spec.functions:
        mine = [c for s, c in commands(steps) if s.function == fn.name]
        email = fn.service_account_email(PROJECT)
        invokers = [c for c in mine if c[:3] == ("gcloud", "functions", "add-invoker-policy-binding")]
        assert invokers == [
            (
                "gcloud",
                "functions",
                "add-invoker-policy-binding",
                fn.cloud_name,
                f"--region={spec.region}",
                f"--member=serviceAccount:{email}",
                f"--project={PROJECT}",
            )
        ]
        wiring = [c for c in mine if c[:3] == ("gcloud", "pubsub", "subscriptions") and c[3] == "update"]
        dead_letter = [c for c in wiring if f"--dead-letter-topic={fn.dead_letter_topic}" in c]
        assert len(dead_letter) == 1, wiring
        assert f"--max-delivery-attempts={spec.max_delivery_attempts}" in dead_letter[0]
        target = dead_letter[0][4]
        assert isinstance(target, Var) and target.name == f"TRIGGER_SUBSCRIPTION_{fn.name.upper()}"
        dlq_subs = [
            c for c in mine if c[:5] == ("gcloud", "pubsub", "subscriptions", "create", fn.dead_letter_subscription)
        ]
        assert len(dlq_subs) == 1 and f"--topic={fn.dead_letter_topic}" in dlq_subs[0]


def test_every_ttl_policy_is_ensured_after_the_database_exists(spec: DeploymentSpec, steps: list[Step]) -> None:
    """Lesson L25: one TTL policy per collection group the package writes, enabled only when missing."""
    database = next(i for i, s in enumerate(steps) if s.label == "Firestore database (default)")
    ensured = [(i, s) for i, s in enumerate(steps) if s.kind == "ensure"]
    assert len(ensured) == len(spec.firestore_ttls) == 7
    for (i, step), ttl in zip(ensured, spec.firestore_ttls, strict=True):
        assert i > database
        assert step.create == (
            "gcloud",
            "firestore",
            "fields",
            "ttls",
            "update",
            ttl.field,
            f"--collection-group={ttl.collection_group}",
            "--enable-ttl",
            f"--project={PROJECT}",
            "--async",
        )
        assert step.describe == (
            "gcloud",
            "firestore",
            "fields",
            "ttls",
            "list",
            f"--collection-group={ttl.collection_group}",
            f"--project={PROJECT}",
            "--format=value(name.basename())",
        )
        assert step.expect == ttl.field and step.function is None
    text = render_plan(spec, steps)
    assert text.count("| grep -Fx expires_at >/dev/null || \\\n  gcloud firestore fields ttls update expires_at ") == 7


def test_the_monitor_may_read_every_dead_letter_subscription_after_it_exists(
    spec: DeploymentSpec, steps: list[Step]
) -> None:
    monitor = spec.function("phase_transition_monitor")
    created: set[str] = set()
    granted: list[str] = []
    for step, command in commands(steps):
        if command[:4] == ("gcloud", "pubsub", "subscriptions", "create"):
            created.add(str(command[4]))
        if "--role=roles/pubsub.subscriber" in command and command[4] in monitor.subscribes:
            assert command[4] in created, f"{step.label}: before its subscription exists"
            assert f"--member=serviceAccount:{monitor.service_account_email(PROJECT)}" in command
            assert step.function == monitor.name
            granted.append(str(command[4]))
    assert sorted(granted) == sorted(fn.dead_letter_subscription for fn in spec.functions)


def test_every_resource_and_identity_is_planned(spec: DeploymentSpec, steps: list[Step]) -> None:
    all_commands = [c for _, c in commands(steps)]

    def creates(*prefix: str) -> set[str]:
        return {str(c[len(prefix)]) for c in all_commands if c[: len(prefix)] == prefix}

    assert creates("gcloud", "pubsub", "topics", "create") == set(spec.topics)
    assert creates("gcloud", "iam", "service-accounts", "create") == {fn.service_account for fn in spec.functions}
    assert creates("gcloud", "scheduler", "jobs", "create", "pubsub") == {job.name for job in spec.jobs}
    assert creates("gcloud", "functions", "deploy") == {fn.cloud_name for fn in spec.functions}
    assert {c[-1] for c in all_commands if c[:3] == ("bq", "mk", "--table")} == {
        f"{PROJECT}:{t.ref}" for t in spec.tables
    }
    subs = creates("gcloud", "pubsub", "subscriptions", "create")
    assert subs == {fn.dead_letter_subscription for fn in spec.functions}


def test_steps_come_in_dependency_order(spec: DeploymentSpec, steps: list[Step]) -> None:
    """A topic, account, variable or dataset is created (or looked up) before a later step uses it."""
    topics: set[str] = set()
    accounts: set[str] = set()
    variables: set[str] = set()
    datasets: set[str] = set(spec.read_datasets)  # the processors' datasets exist before any deploy
    for step, command in commands(steps):
        tokens = [t for t in command if isinstance(t, str)]
        for var in (t for t in command if isinstance(t, Var)):
            assert var.name in variables, f"{step.label}: ${{{var.name}}} used before its lookup"
        for token in tokens:
            for flag in ("--topic=", "--trigger-topic=", "--dead-letter-topic="):
                if token.startswith(flag):
                    topic = token.removeprefix(flag).rsplit("/", 1)[-1]
                    assert topic in topics, f"{step.label}: topic {topic} used before it is created"
            if token.startswith(("--member=serviceAccount:", "--service-account=", "--trigger-service-account=")):
                email = token.rsplit(":", 1)[-1].rsplit("=", 1)[-1]
                if email.endswith(f"@{PROJECT}.iam.gserviceaccount.com"):
                    assert email.split("@")[0] in accounts, f"{step.label}: {email} used before it is created"
        if command[:2] == ("bq", "add-iam-policy-binding") or command[:3] == ("bq", "mk", "--table"):
            dataset = str(command[-1]).split(":")[1].split(".")[0]
            assert dataset in datasets, f"{step.label}: dataset {dataset} used before it is created"
        if command[:4] == ("gcloud", "pubsub", "topics", "create"):
            topics.add(str(command[4]))
        if command[:4] == ("gcloud", "iam", "service-accounts", "create"):
            accounts.add(str(command[4]))
        if command[0] == "bq" and "mk" in command and "--dataset" in command:
            datasets.add(str(command[-1]).split(":")[1])
        if step.kind == "lookup" and step.var:
            variables.add(step.var)


def test_every_command_names_the_project(steps: list[Step]) -> None:
    """No command relies on the operator's configured gcloud project."""
    for _, command in commands(steps):
        rendered = render_command(command)
        if command[0] == "gcloud":
            assert f"--project={PROJECT}" in command or command[:3] in (
                ("gcloud", "projects", "describe"),
                ("gcloud", "projects", "add-iam-policy-binding"),
            ), rendered
            if command[:3] == ("gcloud", "projects", "add-iam-policy-binding"):
                assert command[3] == PROJECT
        else:
            assert f"{PROJECT}:" in str(command[-1]), rendered


# -- one function -----------------------------------------------------------------------------------
def test_a_function_plan_deploys_only_that_function(spec: DeploymentSpec) -> None:
    code, plan, err = phasectl_plan("--function", "phase5_to_phase6")
    assert code == 0, err
    assert re.findall(r"^gcloud functions deploy (\S+)", plan, re.MULTILINE) == ["phase5-to-phase6"]
    for other in spec.functions:
        if other.name != "phase5_to_phase6":
            assert other.cloud_name not in plan and other.service_account_email(PROJECT) not in plan
    assert "scheduler jobs" not in plan and "bq mk" not in plan and "services enable" not in plan
    assert "firestore fields ttls" not in plan  # shared by all functions: the whole deployment's


def test_the_monitor_plan_grants_its_dead_letter_reads() -> None:
    code, plan, err = phasectl_plan("--function", "phase_transition_monitor")
    assert code == 0, err
    assert len(re.findall(r"^gcloud pubsub subscriptions add-iam-policy-binding \S+-dlq-sub ", plan, re.MULTILINE)) == 6


def test_a_function_plan_for_an_unknown_function_is_an_error() -> None:
    code, plan, err = phasectl_plan("--function", "phase9_to_phase10")
    assert code == 2 and plan == ""
    assert err.count("\n") == 1 and "phase9_to_phase10" in err
