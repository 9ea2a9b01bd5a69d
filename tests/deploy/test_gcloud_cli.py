"""Every ``gcloud``/``bq`` command the deployment runs, checked against the real Google Cloud CLI.

No cloud and no credentials: each command of the full plan (describe, create and update of
every step, lookups included, ``${VAR}`` filled with plausible samples) and each command
``verify`` runs is executed by the installed CLI with an empty configuration. It must fail
*for lack of credentials*: the CLI parsed every flag and value and only then asked for an
account. A flag typo, a bad value or a missing required flag fails earlier, with an argument
error, and fails this test, so it cannot ship.

``gcloud`` runs as installed. ``bq`` is a wrapper that checks for an account before it parses
flags, so the underlying ``bq.py`` runs with the SDK's bundled Python (it parses flags first,
then asks ``gcloud`` for a token and fails).

Speed: starting the CLI costs about a second of CPU, nearly all of it importing the SDK, and
there are ~200 distinct commands. ``tests/support/cli_forkserver.py`` imports the CLI once
(with the SDK's Python) and forks one fresh process per command that runs the CLI's own entry
point. A cross-check runs a sample of commands as plain ``gcloud``/``bq.py`` processes and
requires the same verdicts.

Negative controls show the check can fail: a typo'd flag, an out-of-range value, a topic the
CLI cannot resolve and a typo'd ``bq`` flag are all classified as argument errors.

The scheduler drift fixes verify prints (create, ``update pubsub`` with ``--schedule``/``--time-zone``/
``--message-body``, ``resume``, ``delete``, and delete-then-create) are taken from its own table rows,
on a canned project holding one job of each kind of drift, and run like the rest.
"""

from __future__ import annotations

import functools
import json
import os
import re
import shutil
import subprocess
import tempfile
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import pytest

from deploy.apply import LOGIN_COMMAND, Result, Runner, verify, verify_scheduler, write_schema_files
from deploy.plan import (
    Command,
    Step,
    Var,
    build_plan,
    policy_command,
    remove_command,
    resolve,
    secret_add_version_command,
)
from deploy.spec import TABLE_WRITER, Condition, DeploymentSpec, build_spec
from shared.pipeline import load_definition

pytestmark = pytest.mark.integration

PROJECT = "my-proj"
SAMPLE_TRIGGER = f"projects/{PROJECT}/locations/us-west2/triggers/sample-trigger"
SAMPLE_SUBSCRIPTION = f"projects/{PROJECT}/subscriptions/sample-sub"
FORKSERVER = Path(__file__).resolve().parents[1] / "support" / "cli_forkserver.py"
WORKERS = 4
TIMEOUT = 600.0

# What a command that parsed fails with, and what a command that did not parse fails with.
CREDENTIALS = re.compile(
    r"do not currently have an active account|auth credentials|Reauthentication|credentials", re.IGNORECASE
)
ARGUMENT_ERRORS = re.compile(
    r"unrecognized arguments|Invalid value|argument --|argument \(|Flags parsing error|Unknown command"
    r"|Invalid choice|must be specified|expected one argument|is required but was not provided|Usage: ",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Sdk:
    root: Path
    gcloud: Path
    python: Path  # the SDK's bundled interpreter
    bq_py: Path


def find_sdk() -> Sdk | None:
    found = shutil.which("gcloud")
    if found is None:
        return None
    root = Path(os.path.realpath(found)).parents[1]  # <sdk>/bin/gcloud
    python = root / "platform" / "bundledpythonunix" / "bin" / "python3"
    bq_py = root / "platform" / "bq" / "bq.py"
    if not (python.exists() and bq_py.exists() and (root / "lib" / "gcloud.py").exists()):
        return None
    return Sdk(root, root / "bin" / "gcloud", python, bq_py)


SDK = find_sdk()


# -- the commands --------------------------------------------------------------------------------
def sample_values(steps: Sequence[Step]) -> dict[str, str]:
    """A plausible value for every lookup variable of the plan."""
    values: dict[str, str] = {}
    for step in steps:
        if step.var is None:
            continue
        if step.var == "PROJECT_NUMBER":
            values[step.var] = "123456789012"
        elif step.var.startswith("TRIGGER_SUBSCRIPTION_"):
            values[step.var] = SAMPLE_SUBSCRIPTION
        elif step.var.startswith("TRIGGER_"):
            values[step.var] = SAMPLE_TRIGGER
        else:
            raise AssertionError(f"no sample value for lookup variable {step.var}: add one in {__file__}")
    for step in steps:
        for command in step.commands():
            for token in command:
                if isinstance(token, Var):
                    assert token.name in values, f"{step.label}: ${{{token.name}}} has no sample value"
    return values


def plan_commands(spec: DeploymentSpec) -> list[tuple[str, ...]]:
    steps = build_plan(spec)
    values = sample_values(steps)
    return [tuple(resolve(command, values)) for step in steps for command in step.commands()]


@functools.cache
def packaged_spec() -> DeploymentSpec:
    return build_spec(load_definition(), PROJECT)


def drifted_jobs(spec: DeploymentSpec) -> list[dict[str, object]]:
    """What ``scheduler jobs list`` prints for a project with one job of each kind of drift: the first
    defined job missing, the second paused with another schedule, zone and body, the third an HTTP job,
    and a zombie the dispatcher now runs (``same-day-phase3``, a job of the replaced system)."""
    import base64

    def job(name: str, **fields: object) -> dict[str, object]:
        return {"name": f"projects/{PROJECT}/locations/{spec.region}/jobs/{name}", "state": "ENABLED", **fields}

    second, third = spec.jobs[1:3]  # the first is missing
    data = base64.b64encode(b'{"other": true}').decode()
    topic = f"projects/{PROJECT}/topics/{second.topic}"
    return [
        job(
            second.name,
            state="PAUSED",
            schedule="0 * * * *",
            timeZone="Etc/UTC",
            pubsubTarget={"topicName": topic, "data": data},
        ),
        job(third.name, schedule=third.cron, timeZone=third.timezone, httpTarget={"uri": "https://example.com/"}),
        job("same-day-phase3", schedule="30 10 * * *", timeZone="America/New_York", httpTarget={"uri": "https://x/"}),
    ]


def canned_cloud(argv: Sequence[str]) -> Result:
    """Answers verify's reads with a plausible deployment, so every read path of verify runs."""
    if list(argv[:3]) == ["gcloud", "projects", "describe"]:
        return Result(0, "123456789012\n", "")
    if list(argv[:4]) == ["gcloud", "scheduler", "jobs", "list"]:
        return Result(0, json.dumps(drifted_jobs(packaged_spec())), "")
    if list(argv[:3]) == ["gcloud", "functions", "describe"]:
        described = {
            "state": "ACTIVE",
            "eventTrigger": {"trigger": SAMPLE_TRIGGER, "pubsubTopic": "projects/p/topics/t"},
            "serviceConfig": {"service": f"projects/{PROJECT}/locations/us-west2/services/sample"},
        }
        return Result(0, json.dumps(described), "")
    if list(argv[:4]) == ["gcloud", "eventarc", "triggers", "describe"]:
        return Result(0, json.dumps({"transport": {"pubsub": {"subscription": SAMPLE_SUBSCRIPTION}}}), "")
    if list(argv[:4]) == ["gcloud", "pubsub", "topics", "list-subscriptions"]:
        return Result(0, json.dumps([SAMPLE_SUBSCRIPTION]), "")
    if list(argv[:5]) == ["gcloud", "firestore", "fields", "ttls", "list"]:
        sample = f"projects/{PROJECT}/databases/(default)/collectionGroups/quarantine/fields/expires_at"
        return Result(0, json.dumps([{"name": sample, "ttlConfig": {"state": "ACTIVE"}}]), "")
    return Result(0, "{}", "")


def verify_commands(spec: DeploymentSpec) -> list[tuple[str, ...]]:
    """Every command ``verify`` runs: against a cloud that answers, and against one that refuses everything."""
    seen: list[tuple[str, ...]] = []

    def recording(answers: bool) -> Runner:
        def run(argv: Sequence[str]) -> Result:
            seen.append(tuple(argv))
            if answers or list(argv[:3]) == ["gcloud", "projects", "describe"]:
                return canned_cloud(argv)
            return Result(1, "", "ERROR: PERMISSION_DENIED")

        return run

    seen.append(LOGIN_COMMAND)  # deploy verify (and apply, secret set) check the login first
    verify(spec, recording(True))
    verify(spec, recording(False))
    return seen


SAMPLE_MEMBER = f"serviceAccount:phase2-to-phase3@{PROJECT}.iam.gserviceaccount.com"
SAMPLE_CONDITION = Condition(
    "phasechain-default-database", f'resource.name == "projects/{PROJECT}/databases/(default)"'
)
REMOVABLE = {  # a sample resource of each kind verify can find an extra grant on
    "project": PROJECT,
    "service_account": f"phase2-to-phase3-inv@{PROJECT}.iam.gserviceaccount.com",
    "secret": "slack-webhook",
    "topic": "nba-phase3-trigger",
    "subscription": "phase2-to-phase3-dlq-sub",
    "trigger_subscription": "eventarc-us-west2-phase2-to-phase3-000-sub-000",
    "table": "nba_raw.nbac_schedule",
    "dataset": "nba_orchestration",
    "service": "phase2-to-phase3",
    "run_service": "nba-phase3-analytics-processors",
}


def hint_commands(spec: DeploymentSpec) -> list[tuple[str, ...]]:
    """What verify tells an operator to run, and what ``secret set`` runs: every shape of them.

    The removal command verify names for an extra grant (each kind of resource; a project binding with
    and without a condition), the policy reads of every kind, and ``secrets versions add`` (stdin)."""
    commands: list[Command] = []
    for kind, resource in REMOVABLE.items():
        commands.append(remove_command(spec, kind, resource, "roles/viewer", SAMPLE_MEMBER))
        commands.append(policy_command(spec, kind, resource))
    commands.append(remove_command(spec, "project", PROJECT, "roles/datastore.user", SAMPLE_MEMBER, SAMPLE_CONDITION))
    commands.append(remove_command(spec, "project", PROJECT, "roles/x", SAMPLE_MEMBER, Condition("a,b", "true")))
    commands.append(secret_add_version_command(spec, "slack-webhook"))
    return [tuple(resolve(c, {})) for c in commands] + scheduler_fix_commands(spec)


def scheduler_fix_commands(spec: DeploymentSpec) -> list[tuple[str, ...]]:
    """The fix commands of verify's scheduler table, as it prints them (split as a shell splits them)."""
    import shlex

    rows = verify_scheduler(spec, canned_cloud)
    assert sorted({r.state for r in rows if r.drift}) == ["CHANGED", "MISSING", "PAUSED", "ZOMBIE"], rows
    return [tuple(shlex.split(part)) for r in rows if r.drift for part in r.fix.split(" && ")]


# -- running the real CLI ------------------------------------------------------------------------
@dataclass(frozen=True)
class Outcome:
    argv: tuple[str, ...]
    returncode: int
    output: str
    seconds: float

    @property
    def verdict(self) -> str:
        """``credentials`` (parsed, then asked for an account), ``arguments`` or ``other``."""
        if self.returncode != 0 and ARGUMENT_ERRORS.search(self.output):
            return "arguments"
        if self.returncode != 0 and CREDENTIALS.search(self.output):
            return "credentials"
        return "other"

    def render(self) -> str:
        first = " | ".join(line.strip() for line in self.output.splitlines()[:4] if line.strip())
        return f"{' '.join(self.argv)}\n    rc={self.returncode} ({self.verdict}): {first}"


def cli_env(sdk: Sdk, home: Path) -> dict[str, str]:
    """No account, no credentials, an empty configuration; ``gcloud`` on PATH for ``bq.py``'s token request."""
    config = home / "gcloud-config"
    config.mkdir(exist_ok=True)
    return {
        "PATH": f"{sdk.gcloud.parent}:/usr/bin:/bin",
        "HOME": str(home),
        "CLOUDSDK_CONFIG": str(config),
        "CLOUDSDK_CORE_DISABLE_PROMPTS": "1",
        "CLOUDSDK_CORE_CHECK_GCE_METADATA": "false",  # not on GCE: no metadata-server probe
        "CLOUDSDK_CORE_DISABLE_USAGE_REPORTING": "1",
        "CLOUDSDK_COMPONENT_MANAGER_DISABLE_UPDATE_CHECK": "1",
        "CLOUDSDK_CORE_DISABLE_FILE_LOGGING": "1",
        "LANG": "C.UTF-8",
    }


def run_batch(sdk: Sdk, kind: str, commands: Sequence[tuple[str, ...]], work: Path, workers: int) -> list[Outcome]:
    """``commands`` (all ``gcloud`` or all ``bq``) through the fork server, ``workers`` at a time."""
    if not commands:
        return []
    assert all(argv[0] == kind for argv in commands)
    results = Path(tempfile.mkstemp(prefix=f"{kind}-", suffix=".json", dir=work)[1])
    done = subprocess.run(
        [str(sdk.python), str(FORKSERVER), kind, str(sdk.root), str(workers), str(results)],
        input=json.dumps([list(argv[1:]) for argv in commands]),
        capture_output=True,
        text=True,
        env=cli_env(sdk, work),
        cwd=work,
        timeout=TIMEOUT,
        check=False,
    )
    assert done.returncode == 0, f"the {kind} fork server failed ({done.returncode}):\n{done.stderr[-3000:]}"
    raw = json.loads(results.read_text())
    return [
        Outcome(argv, int(r["returncode"]), str(r["output"]), float(r["seconds"]))
        for argv, r in zip(commands, raw, strict=True)
    ]


def run_direct(sdk: Sdk, argv: tuple[str, ...], work: Path) -> Outcome:
    """One command as a plain process: ``gcloud`` as installed, ``bq.py`` with the SDK's Python."""
    if argv[0] == "gcloud":
        command = [str(sdk.gcloud), *argv[1:]]
    else:
        command = [str(sdk.python), str(sdk.bq_py), *argv[1:]]
    home = Path(tempfile.mkdtemp(prefix="direct-", dir=work))
    started = time.monotonic()
    done = subprocess.run(
        command, capture_output=True, text=True, env=cli_env(sdk, home), cwd=work, timeout=120, check=False
    )
    return Outcome(argv, done.returncode, done.stderr + done.stdout, time.monotonic() - started)


# Commands that must be rejected as argument errors: the classification is able to fail.
NEGATIVE_CONTROLS: dict[str, tuple[str, ...]] = {
    "typo'd flag": (
        "gcloud",
        "pubsub",
        "subscriptions",
        "update",
        SAMPLE_SUBSCRIPTION,
        "--dead-letter-topic=nba-phase2-raw-complete-dlq",
        "--max-delivery-attempt=10",
        f"--project={PROJECT}",
    ),
    "out-of-range value": (
        "gcloud",
        "pubsub",
        "subscriptions",
        "update",
        SAMPLE_SUBSCRIPTION,
        "--dead-letter-topic=nba-phase2-raw-complete-dlq",
        "--max-delivery-attempts=1000",
        f"--project={PROJECT}",
    ),
    # gcloud resolves a job's --topic while flags parse, before a later --project applies: a bare
    # topic name cannot be resolved (the plan's first version did this; it now passes a full path).
    "unresolvable topic": (
        "gcloud",
        "scheduler",
        "jobs",
        "create",
        "pubsub",
        "sample-job",
        "--location=us-west2",
        "--schedule=*/10 * * * *",
        "--topic=sample-topic",
        "--message-body={}",
        f"--project={PROJECT}",
    ),
    # The plan's first version described tables with `bq show --table`; bq show has no such flag.
    "bq flag of another command": ("bq", "show", "--format=none", "--table", f"{PROJECT}:nba_orchestration.t"),
    "bq typo'd flag": ("bq", "show", "--format=none", "--datset", f"{PROJECT}:nba_orchestration"),
    # an IAM condition is parsed: a misspelt key is an argument error
    "condition key typo": (
        "gcloud",
        "projects",
        "add-iam-policy-binding",
        PROJECT,
        f"--member={SAMPLE_MEMBER}",
        "--role=roles/datastore.user",
        "--condition=expresion=true,title=t",
    ),
    "bq table flag typo": (
        "bq",
        "add-iam-policy-binding",
        "--tabel",
        f"--member={SAMPLE_MEMBER}",
        "--role=roles/bigquery.dataViewer",
        f"{PROJECT}:nba_raw.nbac_schedule",
    ),
    "secret version without its data": (
        "gcloud",
        "secrets",
        "versions",
        "add",
        "slack-webhook",
        f"--project={PROJECT}",
    ),
    # --enable-ttl and --disable-ttl are one required, mutually exclusive group
    # a job's location is --location (a --region is not a flag of the scheduler commands)
    "scheduler delete with --region": (
        "gcloud",
        "scheduler",
        "jobs",
        "delete",
        "same-day-phase3",
        "--region=us-west2",
        f"--project={PROJECT}",
    ),
    "ttl without enable or disable": (
        "gcloud",
        "firestore",
        "fields",
        "ttls",
        "update",
        "expires_at",
        "--collection-group=quarantine",
        f"--project={PROJECT}",
        "--async",
    ),
}


@dataclass(frozen=True)
class Checked:
    sdk: Sdk
    work: Path
    plan: list[tuple[str, ...]]
    verify: list[tuple[str, ...]]
    hints: list[tuple[str, ...]]
    outcomes: dict[tuple[str, ...], Outcome]
    seconds: float


@pytest.fixture(scope="module")
def checked(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Checked]:
    if SDK is None:
        pytest.skip("the Google Cloud CLI (gcloud, its bundled Python and bq.py) is not installed")
    spec = build_spec(load_definition(), PROJECT)
    work = tmp_path_factory.mktemp("gcloud-cli")
    write_schema_files(spec, work)  # bq mk/update read their --schema files relative to the working directory
    planned, verified, hints = plan_commands(spec), verify_commands(spec), hint_commands(spec)
    unique = list(dict.fromkeys([*planned, *verified, *hints, *NEGATIVE_CONTROLS.values()]))
    gcloud = [argv for argv in unique if argv[0] == "gcloud"]
    bq = [argv for argv in unique if argv[0] == "bq"]
    assert len(gcloud) + len(bq) == len(unique), [argv for argv in unique if argv[0] not in ("gcloud", "bq")]
    started = time.monotonic()
    # Two servers side by side: each bq.py command also starts a real `gcloud auth print-access-token`.
    with ThreadPoolExecutor(max_workers=2) as pool:
        gcloud_runs = pool.submit(run_batch, SDK, "gcloud", gcloud, work, WORKERS)
        bq_runs = pool.submit(run_batch, SDK, "bq", bq, work, 2)
        outcomes = {o.argv: o for o in [*gcloud_runs.result(), *bq_runs.result()]}
    elapsed = time.monotonic() - started
    print(
        f"\nreal CLI: {len(unique)} distinct commands ({len(gcloud)} gcloud, {len(bq)} bq; "
        f"{len(planned)} planned, {len(verified)} run by verify, {len(hints)} named by verify or secret set) "
        f"in {elapsed:.1f}s"
    )
    yield Checked(SDK, work, planned, verified, hints, outcomes, elapsed)


def _rejected(checked: Checked, commands: Sequence[tuple[str, ...]]) -> list[str]:
    return [
        checked.outcomes[argv].render()
        for argv in dict.fromkeys(commands)
        if checked.outcomes[argv].verdict != "credentials"
    ]


def test_the_commands_cover_the_whole_deployment(checked: Checked) -> None:
    def has(prefix: tuple[str, ...], commands: Sequence[tuple[str, ...]]) -> bool:
        return any(argv[: len(prefix)] == prefix for argv in commands)

    for prefix in [
        ("gcloud", "services", "enable"),
        ("gcloud", "projects", "describe"),
        ("gcloud", "iam", "service-accounts", "create"),
        ("gcloud", "pubsub", "topics", "create"),
        ("gcloud", "pubsub", "subscriptions", "update"),
        ("gcloud", "functions", "deploy"),
        ("gcloud", "functions", "add-invoker-policy-binding"),
        ("gcloud", "eventarc", "triggers", "describe"),
        ("gcloud", "scheduler", "jobs", "create", "pubsub"),
        ("gcloud", "scheduler", "jobs", "update", "pubsub"),
        ("gcloud", "run", "services", "describe"),  # a Cloud Run service a job calls exists
        ("gcloud", "run", "services", "add-iam-policy-binding"),  # the dispatcher may invoke it
        ("gcloud", "firestore", "fields", "ttls", "list"),
        ("gcloud", "firestore", "fields", "ttls", "update"),
        ("gcloud", "pubsub", "subscriptions", "add-iam-policy-binding"),
        ("bq", "mk", "--table"),
        ("bq", "update", "--table"),
        ("bq", "add-iam-policy-binding", "--table"),
        ("gcloud", "projects", "add-iam-policy-binding"),
        ("gcloud", "iam", "service-accounts", "add-iam-policy-binding"),
        ("gcloud", "iam", "roles", "describe"),
        ("gcloud", "iam", "roles", "create"),
        ("gcloud", "iam", "roles", "update"),
        ("gcloud", "secrets", "describe"),
        ("gcloud", "secrets", "create"),
        ("gcloud", "secrets", "add-iam-policy-binding"),
        ("gcloud", "secrets", "versions", "describe"),
    ]:
        assert has(prefix, checked.plan), prefix
    deploys = [argv for argv in checked.plan if argv[:3] == ("gcloud", "functions", "deploy")]
    assert any(any(t.startswith("--set-secrets=") for t in d) for d in deploys)
    assert any("--clear-secrets" in d for d in deploys)
    assert any(any(t.startswith("--condition=expression=") for t in argv) for argv in checked.plan)
    for prefix in [
        ("gcloud", "functions", "describe"),
        ("gcloud", "run", "services", "get-iam-policy"),
        ("gcloud", "eventarc", "triggers", "describe"),
        ("gcloud", "pubsub", "topics", "list-subscriptions"),
        ("gcloud", "pubsub", "subscriptions", "describe"),
        ("gcloud", "scheduler", "jobs", "list"),
        ("gcloud", "firestore", "fields", "ttls", "list"),
        ("gcloud", "pubsub", "subscriptions", "get-iam-policy"),
        ("bq", "show"),
        ("gcloud", "auth", "print-access-token"),
        ("gcloud", "projects", "describe"),
        ("gcloud", "projects", "get-iam-policy"),
        ("gcloud", "iam", "service-accounts", "get-iam-policy"),
        ("gcloud", "iam", "roles", "describe"),
        ("gcloud", "secrets", "get-iam-policy"),
        ("gcloud", "secrets", "versions", "describe"),
        ("gcloud", "pubsub", "topics", "get-iam-policy"),
        ("bq", "get-iam-policy", "--format=json", "--table"),
        ("bq", "get-iam-policy", "--format=json", "--dataset"),
    ]:
        assert has(prefix, checked.verify), prefix
    for prefix in [
        ("gcloud", "projects", "remove-iam-policy-binding"),
        ("gcloud", "iam", "service-accounts", "remove-iam-policy-binding"),
        ("gcloud", "secrets", "remove-iam-policy-binding"),
        ("gcloud", "pubsub", "topics", "remove-iam-policy-binding"),
        ("gcloud", "pubsub", "subscriptions", "remove-iam-policy-binding"),
        ("bq", "remove-iam-policy-binding", "--table"),
        ("bq", "remove-iam-policy-binding", "--dataset"),
        ("gcloud", "run", "services", "remove-iam-policy-binding"),
        ("gcloud", "secrets", "versions", "add"),
        ("gcloud", "scheduler", "jobs", "create", "pubsub"),  # MISSING, and an HTTP job recreated
        ("gcloud", "scheduler", "jobs", "update", "pubsub"),  # CHANGED
        ("gcloud", "scheduler", "jobs", "resume"),  # PAUSED
        ("gcloud", "scheduler", "jobs", "delete"),  # ZOMBIE
    ]:
        assert has(prefix, checked.hints), prefix
    updates = [argv for argv in checked.hints if argv[:5] == ("gcloud", "scheduler", "jobs", "update", "pubsub")]
    for flag in ("--schedule=", "--time-zone=", "--message-body=", "--topic=projects/"):
        assert all(any(t.startswith(flag) for t in argv) for argv in updates), (flag, updates)
    assert not any(argv[:4] == ("gcloud", "scheduler", "jobs", "describe") for argv in checked.verify)  # one list
    assert TABLE_WRITER.role_id in " ".join(" ".join(argv) for argv in checked.plan)


def test_the_ttl_list_projection_prints_the_field_name(checked: Checked) -> None:
    """The CLI checks a ``--format`` only when it prints (after the credentials check), so the projection
    apply reads (``value(name.basename())``) and the JSON verify reads are run through the SDK's own printer
    on a resource shaped like the API's ``GoogleFirestoreAdminV1Field``."""
    formats = sorted(
        {
            t
            for argv in checked.plan + checked.verify
            if argv[:5] == ("gcloud", "firestore", "fields", "ttls", "list")
            for t in argv
            if t.startswith("--format=")
        }
    )
    assert formats == ["--format=json", "--format=value(name.basename())"], formats
    name = f"projects/{PROJECT}/databases/(default)/collectionGroups/quarantine/fields/expires_at"
    program = (
        "import json, sys\n"
        "from googlecloudsdk.core.resource import resource_printer\n"
        f"resources = [{{'name': {name!r}, 'ttlConfig': {{'state': 'CREATING'}}}}]\n"
        "for fmt in sys.argv[1:]:\n"
        "    resource_printer.Print(resources, fmt)\n"
    )
    sdk = checked.sdk
    done = subprocess.run(
        [str(sdk.python), "-c", program, "value(name.basename())", "json"],
        capture_output=True,
        text=True,
        env={**cli_env(sdk, checked.work), "PYTHONPATH": f"{sdk.root / 'lib'}:{sdk.root / 'lib' / 'third_party'}"},
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    first, _, rest = done.stdout.partition("\n")
    assert first == "expires_at"
    assert json.loads(rest) == [{"name": name, "ttlConfig": {"state": "CREATING"}}]


def test_every_planned_command_fails_only_for_lack_of_credentials(checked: Checked) -> None:
    rejected = _rejected(checked, checked.plan)
    assert not rejected, (
        f"the real CLI rejected {len(rejected)} planned command(s) before asking for credentials:\n"
        + "\n".join(rejected)
    )


def test_every_verify_command_fails_only_for_lack_of_credentials(checked: Checked) -> None:
    rejected = _rejected(checked, checked.verify)
    assert not rejected, (
        f"the real CLI rejected {len(rejected)} verify command(s) before asking for credentials:\n"
        + "\n".join(rejected)
    )


def test_every_command_verify_names_or_secret_set_runs_fails_only_for_lack_of_credentials(checked: Checked) -> None:
    rejected = _rejected(checked, checked.hints)
    assert not rejected, (
        f"the real CLI rejected {len(rejected)} removal or secret command(s) before asking for credentials:\n"
        + "\n".join(rejected)
    )


@pytest.mark.parametrize("control", sorted(NEGATIVE_CONTROLS))
def test_negative_control_is_an_argument_error(checked: Checked, control: str) -> None:
    outcome = checked.outcomes[NEGATIVE_CONTROLS[control]]
    assert outcome.verdict == "arguments", outcome.render()


def test_the_fork_server_agrees_with_the_plain_cli(checked: Checked) -> None:
    """A sample run as plain processes (``gcloud`` as installed, ``bq.py``) gets the same verdicts."""
    sample = [
        next(argv for argv in checked.plan if argv[:3] == ("gcloud", "functions", "deploy")),
        next(argv for argv in checked.plan if argv[:5] == ("gcloud", "scheduler", "jobs", "create", "pubsub")),
        next(argv for argv in checked.plan if argv[:3] == ("bq", "mk", "--table")),
        NEGATIVE_CONTROLS["typo'd flag"],
        NEGATIVE_CONTROLS["unresolvable topic"],
        NEGATIVE_CONTROLS["bq typo'd flag"],
    ]
    with ThreadPoolExecutor(max_workers=WORKERS) as pool:
        direct = list(pool.map(lambda argv: run_direct(checked.sdk, argv, checked.work), sample))
    for plain in direct:
        served = checked.outcomes[plain.argv]
        assert (plain.verdict, plain.returncode) == (served.verdict, served.returncode), (
            f"plain:\n{plain.render()}\nfork server:\n{served.render()}"
        )
