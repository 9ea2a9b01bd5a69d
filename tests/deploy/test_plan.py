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

import phasectl
from deploy.plan import Step, Var, build_plan, render_command, render_plan
from deploy.spec import TABLE_WRITER, DeploymentSpec, build_spec
from shared.pipeline import load_definition
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
    spec = build_spec(load_definition(), PROJECT)
    counts = (
        rf"{len(spec.functions)} functions, {len(spec.topics)} topics, .*, {2 * len(spec.functions)} service accounts"
    )
    assert re.fullmatch(rf"plan: \d+ steps \({counts}, .*\)\n", err), err
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
        assert f"--trigger-service-account={fn.trigger_account_email(PROJECT)}" in deploy  # not the runtime account
        assert f"--trigger-topic={fn.trigger_topic}" in deploy
        assert f"--source=build/{fn.name}" in deploy
        env_flags = [t for t in deploy if str(t).startswith("--update-env-vars=") or isinstance(t, Var)]
        base = f"--update-env-vars=GOOGLE_CLOUD_PROJECT={PROJECT},PYDANTIC_DISABLE_PLUGINS=__all__"  # RUNTIME_ENV
        if fn.env_lookups:  # the dispatcher: + the project number, looked up when apply runs
            assert env_flags == [Var("PROJECT_NUMBER", f"{base},GOOGLE_CLOUD_PROJECT_NUMBER=")]
        else:
            assert env_flags == [base]
    assert "--set-env-vars" not in text and "--clear-env-vars" not in text
    assert DEFAULT_COMPUTE not in text
    assert "allUsers" not in text and "allAuthenticatedUsers" not in text


def test_each_function_has_its_invoker_binding_and_dead_letter_wiring(spec: DeploymentSpec, steps: list[Step]) -> None:
    for fn in spec.functions:
        mine = [c for s, c in commands(steps) if s.function == fn.name]
        email = fn.trigger_account_email(PROJECT)  # the trigger identity, never the runtime account
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
    assert len(ensured) == len(spec.firestore_ttls) == 13
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
    ensure = "| grep -Fx expires_at >/dev/null || \\\n  gcloud firestore fields ttls update expires_at "
    assert text.count(ensure) == len(spec.firestore_ttls)


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
    assert creates("gcloud", "iam", "service-accounts", "create") == {
        account for fn in spec.functions for account in (fn.service_account, fn.trigger_account)
    }
    assert creates("gcloud", "secrets", "create") == {s.secret_id for s in spec.secrets} == {"slack-webhook"}
    assert creates("gcloud", "iam", "roles", "create") == {TABLE_WRITER.role_id}
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
    tables: set[str] = set(spec.read_tables)  # and so do the tables the functions read
    roles: set[str] = set()
    secrets: set[str] = set()
    readable: set[tuple[str, str]] = set()  # (secret, member) with secretAccessor
    required: set[str] = set()  # secrets a require step checked for a value
    for step, command in commands(steps):
        tokens = [t for t in command if isinstance(t, str)]
        for var in (t for t in command if isinstance(t, Var)):
            assert var.name in variables, f"{step.label}: ${{{var.name}}} used before its lookup"
        for token in tokens:
            if token.startswith(f"--role=projects/{PROJECT}/roles/"):
                assert token.rsplit("/", 1)[1] in roles, f"{step.label}: custom role used before it is created"
            if token.startswith("--set-secrets="):
                for pair in token.removeprefix("--set-secrets=").split(","):
                    secret = pair.split("=")[1].split(":")[0]
                    runtime = next(t for t in tokens if t.startswith("--service-account="))
                    member = "serviceAccount:" + runtime.removeprefix("--service-account=")
                    assert (secret, member) in readable, f"{step.label}: mounts {secret} its account cannot read"
                    assert secret in required, f"{step.label}: mounts {secret} before checking it has a value"
        if command[:2] == ("bq", "add-iam-policy-binding"):
            table = str(command[-1]).split(":")[1]
            assert "--table" in command and table in tables, f"{step.label}: table {table} used before it exists"
        if command[:3] == ("gcloud", "secrets", "add-iam-policy-binding"):
            assert command[3] in secrets, f"{step.label}: secret used before it is created"
            readable.add((str(command[3]), str(command[4]).removeprefix("--member=")))
        if command[:4] == ("gcloud", "secrets", "versions", "describe"):
            required.add(str(command[5]).removeprefix("--secret="))
        if command[:3] == ("gcloud", "secrets", "create"):
            secrets.add(str(command[3]))
        if command[:4] == ("gcloud", "iam", "roles", "create"):
            roles.add(str(command[4]))
        if command[:3] == ("bq", "mk", "--table"):
            tables.add(str(command[-1]).split(":")[1])
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
    subs = re.findall(r"^gcloud pubsub subscriptions add-iam-policy-binding \S+-dlq-sub ", plan, re.MULTILINE)
    assert len(subs) == len(build_spec(load_definition(), PROJECT).functions)
    # and its secret, which only it mounts
    assert "gcloud secrets create slack-webhook --replication-policy=automatic" in plan
    assert "--set-secrets=MONITOR_SLACK_WEBHOOK_URL=slack-webhook:latest" in plan


def test_a_function_plan_for_an_unknown_function_is_an_error() -> None:
    code, plan, err = phasectl_plan("--function", "phase9_to_phase10")
    assert code == 2 and plan == ""
    assert err.count("\n") == 1 and "phase9_to_phase10" in err


# -- least privilege, as the plan grants it ----------------------------------------------------------
AGENT_MEMBER = '"--member=serviceAccount:service-${PROJECT_NUMBER}@gcp-sa-pubsub.iam.gserviceaccount.com"'


def test_token_minting_is_granted_on_the_trigger_identities_not_on_the_project(
    spec: DeploymentSpec, steps: list[Step]
) -> None:
    text = render_plan(spec, steps)
    minting = [line for line in text.splitlines() if "--role=roles/iam.serviceAccountTokenCreator" in line]
    assert len(minting) == len(spec.functions)
    for fn in spec.functions:
        assert (
            f"gcloud iam service-accounts add-iam-policy-binding {fn.trigger_account_email(PROJECT)} {AGENT_MEMBER} "
            "--role=roles/iam.serviceAccountTokenCreator --condition=None --project=my-proj"
        ) in minting
    projectwide = [c for _, c in commands(steps) if c[:3] == ("gcloud", "projects", "add-iam-policy-binding")]
    assert not [c for c in projectwide if isinstance(c[4], Var)]  # the agent gets nothing project-wide


def test_each_trigger_identity_may_only_invoke_its_function(spec: DeploymentSpec, steps: list[Step]) -> None:
    for fn in spec.functions:
        trigger = f"serviceAccount:{fn.trigger_account_email(PROJECT)}"
        runtime = f"serviceAccount:{fn.service_account_email(PROJECT)}"
        granted = [c for _, c in commands(steps) if f"--member={trigger}" in c]
        assert granted == [
            (
                "gcloud",
                "functions",
                "add-invoker-policy-binding",
                fn.cloud_name,
                f"--region={spec.region}",
                f"--member={trigger}",
                f"--project={PROJECT}",
            )
        ]
        invoking = [c for _, c in commands(steps) if c[:3] == ("gcloud", "functions", "add-invoker-policy-binding")]
        assert not [c for c in invoking if f"--member={runtime}" in c]  # the runtime account never invokes


def test_bigquery_rights_are_per_table_and_job_user_is_the_only_project_role(
    spec: DeploymentSpec, steps: list[Step]
) -> None:
    writer = f"--role=projects/{PROJECT}/roles/{TABLE_WRITER.role_id}"
    for _, command in commands(steps):
        roles = [t for t in command if isinstance(t, str) and t.startswith("--role=roles/bigquery.")]
        if command[:3] == ("gcloud", "projects", "add-iam-policy-binding"):
            assert roles in ([], ["--role=roles/bigquery.jobUser"]), command
        if command[:2] == ("bq", "add-iam-policy-binding"):
            assert "--table" in command and "--dataset" not in command, command  # nothing dataset-wide
    for fn in spec.functions:
        member = f"--member=serviceAccount:{fn.service_account_email(PROJECT)}"
        mine = {
            (str(c[-1]).split(":")[1], next(str(t) for t in c if str(t).startswith("--role=")))
            for _, c in commands(steps)
            if c[:2] == ("bq", "add-iam-policy-binding") and member in c
        }
        assert mine == {(t, f"--role={r}") for t, r in fn.table_roles}
        written = {t for t, r in mine if r == writer}
        assert written <= {t.ref for t in spec.tables}  # it writes only the package's own tables
        assert not {t for t, _ in mine} & set(spec.read_tables) & written
    assert "roles/bigquery.dataEditor" not in render_plan(spec, steps)


def test_firestore_access_is_limited_to_the_database(spec: DeploymentSpec, steps: list[Step]) -> None:
    grants = [c for _, c in commands(steps) if "--role=roles/datastore.user" in c]
    assert len(grants) == len([fn for fn in spec.functions if "roles/datastore.user" in fn.project_roles])
    condition = (
        '--condition=expression=resource.name == "projects/my-proj/databases/(default)",'
        "title=phasechain-default-database"
    )
    assert all(c[-1] == condition for c in grants), grants


def test_the_secret_is_created_without_a_value_and_readable_only_by_the_function_that_mounts_it(
    spec: DeploymentSpec, steps: list[Step]
) -> None:
    text = render_plan(spec, steps)
    assert "--data-file" not in text and "hooks.slack.com" not in text  # never a value in the plan
    accessors = [c for _, c in commands(steps) if "--role=roles/secretmanager.secretAccessor" in c]
    monitor = spec.function("phase_transition_monitor")
    assert accessors == [
        (
            "gcloud",
            "secrets",
            "add-iam-policy-binding",
            "slack-webhook",
            f"--member=serviceAccount:{monitor.service_account_email(PROJECT)}",
            "--role=roles/secretmanager.secretAccessor",
            "--condition=None",
            f"--project={PROJECT}",
        )
    ]
    for fn in spec.functions:
        (deploy,) = [c for _, c in commands(steps) if c[:4] == ("gcloud", "functions", "deploy", fn.cloud_name)]
        assert "--remove-env-vars=MONITOR_SLACK_WEBHOOK_URL" in deploy  # never a plain variable
        mounted = [t for t in deploy if isinstance(t, str) and t.startswith(("--set-secrets=", "--clear-secrets"))]
        if fn is monitor:
            assert mounted == ["--set-secrets=MONITOR_SLACK_WEBHOOK_URL=slack-webhook:latest"]
        else:
            assert mounted == ["--clear-secrets"]
    assert "secretmanager.googleapis.com" in spec.apis


def test_the_table_writer_role_cannot_delete_or_reshape_a_table(spec: DeploymentSpec, steps: list[Step]) -> None:
    assert spec.custom_roles == (TABLE_WRITER,)
    assert set(TABLE_WRITER.permissions) == {
        "bigquery.tables.get",
        "bigquery.tables.getData",
        "bigquery.tables.updateData",
    }
    (step,) = [s for s in steps if s.label.startswith("custom role ")]
    assert step.update is not None and "--permissions=" + ",".join(TABLE_WRITER.permissions) in step.update


DEPLOY_DOC = Path(__file__).resolve().parents[2] / "docs" / "deploy.md"  # the IAM table moved from the README
IAM_START, IAM_END = "<!-- iam-table: python -m deploy iam -->\n", "<!-- /iam-table -->\n"


def test_the_deploy_doc_lists_each_identity_with_its_exact_rights() -> None:
    """docs/deploy.md's table is ``python -m deploy iam`` (regenerated with the golden plan: UPDATE_GOLDEN=1)."""
    from deploy.__main__ import IAM_TABLE_PROJECT
    from deploy.plan import render_iam_table

    table = render_iam_table(build_spec(load_definition(), IAM_TABLE_PROJECT))
    text = DEPLOY_DOC.read_text()
    start, end = text.index(IAM_START) + len(IAM_START), text.index(IAM_END)
    if os.environ.get("UPDATE_GOLDEN") == "1" and text[start:end] != table:
        DEPLOY_DOC.write_text(text[:start] + table + text[end:])  # only between the markers
        text = DEPLOY_DOC.read_text()
        start, end = text.index(IAM_START) + len(IAM_START), text.index(IAM_END)
    assert text[start:end] == table, (
        "the identity table in docs/deploy.md differs from the deployment; regenerate it with\n"
        "    UPDATE_GOLDEN=1 .venv/bin/pytest tests/deploy/test_plan.py -p no:cacheprovider"
    )
    assert table.count("-inv` (trigger identity of") == len(build_spec(load_definition(), "my-proj").functions)


# -- the schedule dispatcher --------------------------------------------------------------------------
def test_the_dispatcher_is_deployed_on_its_tick_with_the_project_number(
    spec: DeploymentSpec, steps: list[Step]
) -> None:
    fn = spec.function("schedule_dispatcher")
    text = render_plan(spec, steps)
    (deploy,) = [line for line in text.splitlines() if line.startswith("gcloud functions deploy schedule-dispatcher ")]
    assert "--trigger-topic=schedule-dispatcher-tick" in deploy and "--retry" in deploy
    assert f"--service-account={fn.service_account_email(PROJECT)}" in deploy
    assert f"--timeout={fn.timeout_seconds}s --min-instances=0 --max-instances={fn.max_instances}" in deploy
    assert (
        '"--update-env-vars=GOOGLE_CLOUD_PROJECT=my-proj,PYDANTIC_DISABLE_PLUGINS=__all__,'
        'GOOGLE_CLOUD_PROJECT_NUMBER=${PROJECT_NUMBER}"'
    ) in deploy
    for topic in fn.publishes:  # every Pub/Sub job's topic, after it exists
        assert (
            f"gcloud pubsub topics add-iam-policy-binding {topic} "
            f"--member=serviceAccount:{fn.service_account_email(PROJECT)} --role=roles/pubsub.publisher"
        ) in text


def test_the_dispatcher_may_invoke_each_service_its_jobs_call_once_it_exists(
    spec: DeploymentSpec, steps: list[Step]
) -> None:
    """Each Cloud Run service is checked to exist (the processors deploy it), then granted; all of it after the
    functions and before the scheduler jobs, so a missing service stops apply before the tick job exists."""
    fn = spec.function("schedule_dispatcher")
    member = f"--member=serviceAccount:{fn.service_account_email(PROJECT)}"
    require = [i for i, s in enumerate(steps) if s.kind == "require" and s.label.startswith("Cloud Run service ")]
    bind = [
        i
        for i, s in enumerate(steps)
        for c in s.commands()
        if c[:4] == ("gcloud", "run", "services", "add-iam-policy-binding")
    ]
    assert len(require) == len(bind) == len(fn.invokes) > 0
    for i, j, service in zip(require, bind, fn.invokes, strict=True):
        assert i + 1 == j
        assert steps[i].create == (
            "gcloud",
            "run",
            "services",
            "describe",
            service,
            f"--region={spec.region}",
            f"--project={PROJECT}",
            "--format=value(metadata.name)",
        )
        assert steps[i].expect == service and f"Cloud Run service {service} does not exist" in str(steps[i].hint)
        assert steps[j].create == (
            "gcloud",
            "run",
            "services",
            "add-iam-policy-binding",
            service,
            f"--region={spec.region}",
            member,
            "--role=roles/run.invoker",
            f"--project={PROJECT}",
        )
    last_function = max(i for i, s in enumerate(steps) if s.label.startswith("function "))
    first_job = min(i for i, s in enumerate(steps) if s.label.startswith("scheduler job "))
    assert last_function < min(require) and max(bind) < first_job
    assert [s.label for s in steps[first_job:]] == [f"scheduler job {j.name}" for j in spec.jobs]


def test_the_scheduler_fix_commands_name_the_region_and_project(spec: DeploymentSpec) -> None:
    from deploy.plan import (
        scheduler_create_command,
        scheduler_delete_command,
        scheduler_list_command,
        scheduler_resume_command,
        scheduler_update_command,
    )

    job = next(j for j in spec.jobs if j.name == "schedule-dispatcher-tick")
    where = ("--location=us-west2", f"--project={PROJECT}")
    assert scheduler_delete_command(spec, "same-day-phase3") == (
        "gcloud",
        "scheduler",
        "jobs",
        "delete",
        "same-day-phase3",
        *where,
    )
    assert scheduler_resume_command(spec, job.name) == ("gcloud", "scheduler", "jobs", "resume", job.name, *where)
    assert scheduler_list_command(spec) == ("gcloud", "scheduler", "jobs", "list", *where, "--format=json")
    flags = (
        "--location=us-west2",
        "--schedule=* * * * *",
        "--time-zone=UTC",
        f"--topic=projects/{PROJECT}/topics/schedule-dispatcher-tick",
        '--message-body={"force":false}',
        f"--project={PROJECT}",
    )
    assert scheduler_create_command(spec, job) == ("gcloud", "scheduler", "jobs", "create", "pubsub", job.name, *flags)
    assert scheduler_update_command(spec, job) == ("gcloud", "scheduler", "jobs", "update", "pubsub", job.name, *flags)
