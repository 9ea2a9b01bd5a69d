"""``phasectl deploy plan``: the ordered ``gcloud``/``bq`` commands that build the deployment.

A plan is a list of steps. A resource step names how to ``describe`` the resource, how to
``create`` it and, where Google Cloud allows it, how to ``update`` it in place; ``apply`` runs
describe, then create or update. A binding step is idempotent by itself (add-iam-policy-binding)
and always runs. An ensure step is for a setting that has no "not found": its ``describe`` lists
what is in place, and ``create`` runs only when the ``expect`` line is not among them (a Firestore
TTL policy). A lookup step reads one value (the project number, the subscription Eventarc made
for a function) into a variable that later steps use as ``${NAME}``.

The rendered plan is a deterministic bash script: the same definition and project print the
same text (a golden file in ``tests/deploy`` pins it).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.spec import DeploymentSpec, FunctionSpec, TableSpec

SCHEMA_OUT_DIR = Path("build") / "deploy" / "bigquery"  # relative to the repository root


@dataclass(frozen=True)
class Var:
    """A reference to a lookup step's value: rendered ``"<prefix>${NAME}<suffix>"``."""

    name: str
    prefix: str = ""
    suffix: str = ""

    def substitute(self, values: dict[str, str]) -> str:
        if self.name not in values:
            raise KeyError(f"variable {self.name} has no value yet (its lookup step must run first)")
        return f"{self.prefix}{values[self.name]}{self.suffix}"


Token = str | Var
Command = tuple[Token, ...]


@dataclass(frozen=True)
class Step:
    """One resource, binding or lookup.

    kind: ``resource`` (describe → create | update), ``binding`` (always run ``create``),
    ``ensure`` (run ``create`` unless a line of ``describe``'s output is ``expect``),
    ``lookup`` (run ``create``, keep its stdout as ``${var}``).
    """

    kind: str
    label: str
    create: Command
    describe: Command | None = None
    update: Command | None = None
    var: str | None = None
    function: str | None = None  # the function this step belongs to (None: shared by all)
    expect: str | None = None  # ensure: the line ``describe`` prints when the setting is in place

    def commands(self) -> Iterator[Command]:
        for command in (self.describe, self.create, self.update):
            if command is not None:
                yield command


def _q(token: Token) -> str:
    if isinstance(token, Var):

        def esc(text: str) -> str:
            return text.replace("\\", "\\\\").replace('"', '\\"').replace("$", "\\$").replace("`", "\\`")

        return f'"{esc(token.prefix)}${{{token.name}}}{esc(token.suffix)}"'
    return shlex.quote(token)


def render_command(command: Command) -> str:
    return " ".join(_q(t) for t in command)


def resolve(command: Command, values: dict[str, str]) -> list[str]:
    return [t.substitute(values) if isinstance(t, Var) else t for t in command]


def schema_file(table: TableSpec) -> str:
    return str(SCHEMA_OUT_DIR / f"{table.dataset}.{table.table}.schema.json")


def _sa(spec: DeploymentSpec, fn: FunctionSpec) -> str:
    return f"serviceAccount:{fn.service_account_email(spec.project)}"


def _pubsub_agent() -> Var:
    """``--member=`` the project's Pub/Sub service agent (its number is looked up first)."""
    return Var("PROJECT_NUMBER", "--member=serviceAccount:service-", "@gcp-sa-pubsub.iam.gserviceaccount.com")


def subscription_var(fn: FunctionSpec) -> str:
    return "TRIGGER_SUBSCRIPTION_" + fn.name.upper()


def build_plan(spec: DeploymentSpec, source_root: str = "build") -> list[Step]:
    """Every step, in dependency order: APIs, identities, topics, storage, functions, wiring, jobs."""
    p = f"--project={spec.project}"
    steps: list[Step] = []
    if spec.apis:
        steps.append(Step("binding", "enable APIs", ("gcloud", "services", "enable", *spec.apis, p)))
    steps.append(
        Step(
            "lookup",
            "project number (for the Pub/Sub service agent)",
            ("gcloud", "projects", "describe", spec.project, "--format=value(projectNumber)"),
            var="PROJECT_NUMBER",
        )
    )
    if spec.tables:  # the whole deployment, not one function: the database comes with it
        steps.append(
            Step(
                "resource",
                "Firestore database (default)",
                describe=("gcloud", "firestore", "databases", "describe", "--database=(default)", p),
                create=(
                    "gcloud",
                    "firestore",
                    "databases",
                    "create",
                    "--database=(default)",
                    f"--location={spec.firestore_location}",
                    "--type=firestore-native",
                    p,
                ),
            )
        )
        steps.append(
            Step(
                "binding",
                "Pub/Sub service agent may mint tokens for push/Eventarc delivery",
                (
                    "gcloud",
                    "projects",
                    "add-iam-policy-binding",
                    spec.project,
                    _pubsub_agent(),
                    "--role=roles/iam.serviceAccountTokenCreator",
                    "--condition=None",
                ),
            )
        )
    steps += _ttl_steps(spec)
    for fn in spec.functions:
        email = fn.service_account_email(spec.project)
        steps.append(
            Step(
                "resource",
                f"service account {email}",
                describe=("gcloud", "iam", "service-accounts", "describe", email, p),
                create=(
                    "gcloud",
                    "iam",
                    "service-accounts",
                    "create",
                    fn.service_account,
                    f"--display-name=phasechain {fn.name}",
                    p,
                ),
                function=fn.name,
            )
        )
        for role in fn.project_roles:
            steps.append(
                Step(
                    "binding",
                    f"{fn.name}: {role}",
                    (
                        "gcloud",
                        "projects",
                        "add-iam-policy-binding",
                        spec.project,
                        f"--member={_sa(spec, fn)}",
                        f"--role={role}",
                        "--condition=None",
                    ),
                    function=fn.name,
                )
            )
    for topic in spec.topics:
        steps.append(
            Step(
                "resource",
                f"topic {topic}",
                describe=("gcloud", "pubsub", "topics", "describe", topic, p),
                create=("gcloud", "pubsub", "topics", "create", topic, p),
            )
        )
    for fn in spec.functions:
        for topic in fn.publishes:
            steps.append(
                Step(
                    "binding",
                    f"{fn.name} may publish to {topic}",
                    (
                        "gcloud",
                        "pubsub",
                        "topics",
                        "add-iam-policy-binding",
                        topic,
                        f"--member={_sa(spec, fn)}",
                        "--role=roles/pubsub.publisher",
                        p,
                    ),
                    function=fn.name,
                )
            )
        steps.append(
            Step(
                "resource",
                f"dead-letter subscription {fn.dead_letter_subscription}",
                describe=("gcloud", "pubsub", "subscriptions", "describe", fn.dead_letter_subscription, p),
                create=(
                    "gcloud",
                    "pubsub",
                    "subscriptions",
                    "create",
                    fn.dead_letter_subscription,
                    f"--topic={fn.dead_letter_topic}",
                    f"--message-retention-duration={spec.dead_letter_retention}",
                    "--ack-deadline=60",
                    "--expiration-period=never",
                    p,
                ),
                update=(
                    "gcloud",
                    "pubsub",
                    "subscriptions",
                    "update",
                    fn.dead_letter_subscription,
                    f"--message-retention-duration={spec.dead_letter_retention}",
                    "--ack-deadline=60",
                    "--expiration-period=never",
                    p,
                ),
                function=fn.name,
            )
        )
        steps.append(
            Step(
                "binding",
                f"Pub/Sub service agent may dead-letter into {fn.dead_letter_topic}",
                (
                    "gcloud",
                    "pubsub",
                    "topics",
                    "add-iam-policy-binding",
                    fn.dead_letter_topic,
                    _pubsub_agent(),
                    "--role=roles/pubsub.publisher",
                    p,
                ),
                function=fn.name,
            )
        )
    for fn in spec.functions:  # after every dead-letter subscription exists
        for subscription in fn.subscribes:
            steps.append(
                Step(
                    "binding",
                    f"{fn.name} may read {subscription} (its backlog)",
                    (
                        "gcloud",
                        "pubsub",
                        "subscriptions",
                        "add-iam-policy-binding",
                        subscription,
                        f"--member={_sa(spec, fn)}",
                        "--role=roles/pubsub.subscriber",
                        p,
                    ),
                    function=fn.name,
                )
            )
    steps += _bigquery_steps(spec)
    for fn in spec.functions:
        steps += _function_steps(spec, fn, source_root)
    for job in spec.jobs:
        # The topic as a full path: gcloud resolves --topic while the flags parse, before a later
        # --project applies, so a bare name fails ("[projectsId] ... is required") or lands in the
        # configured project.
        flags = (
            f"--location={spec.region}",
            f"--schedule={job.cron}",
            f"--time-zone={job.timezone}",
            f"--topic=projects/{spec.project}/topics/{job.topic}",
            f"--message-body={job.body}",
            p,
        )
        steps.append(
            Step(
                "resource",
                f"scheduler job {job.name}",
                describe=("gcloud", "scheduler", "jobs", "describe", job.name, f"--location={spec.region}", p),
                create=("gcloud", "scheduler", "jobs", "create", "pubsub", job.name, *flags),
                update=("gcloud", "scheduler", "jobs", "update", "pubsub", job.name, *flags),
                function=job.function,
            )
        )
    return steps


def ttl_list_command(spec: DeploymentSpec, collection_group: str | None = None) -> Command:
    """``gcloud firestore fields ttls list``: one collection group's TTL field names (apply), or every
    policy as JSON (verify: ``[{"name": ".../collectionGroups/G/fields/F", "ttlConfig": {"state": S}}]``)."""
    if collection_group is None:
        return ("gcloud", "firestore", "fields", "ttls", "list", f"--project={spec.project}", "--format=json")
    return (
        "gcloud",
        "firestore",
        "fields",
        "ttls",
        "list",
        f"--collection-group={collection_group}",
        f"--project={spec.project}",
        "--format=value(name.basename())",
    )


def _ttl_steps(spec: DeploymentSpec) -> list[Step]:
    """One TTL policy per collection group (lesson L25), after the database exists.

    ``--async``: enabling TTL on a collection that already holds documents is a long operation;
    verify accepts ``CREATING`` and ``ACTIVE``. Only one field of a collection group can be its
    TTL field, so a policy on another field makes the update fail (apply stops and says so).
    """
    return [
        Step(
            "ensure",
            f"Firestore TTL policy {ttl.collection_group}.{ttl.field} ({ttl.days} days; {ttl.writer})",
            describe=ttl_list_command(spec, ttl.collection_group),
            create=(
                "gcloud",
                "firestore",
                "fields",
                "ttls",
                "update",
                ttl.field,
                f"--collection-group={ttl.collection_group}",
                "--enable-ttl",
                f"--project={spec.project}",
                "--async",
            ),
            expect=ttl.field,
        )
        for ttl in spec.firestore_ttls
    ]


def _bigquery_steps(spec: DeploymentSpec) -> list[Step]:
    steps: list[Step] = []
    for dataset in spec.datasets:
        ref = f"{spec.project}:{dataset}"
        steps.append(
            Step(
                "resource",
                f"dataset {dataset}",
                describe=("bq", "show", "--format=none", "--dataset", ref),
                create=("bq", f"--location={spec.dataset_location}", "mk", "--dataset", ref),
            )
        )
    for table in spec.tables:
        ref = f"{spec.project}:{table.ref}"
        shape: list[str] = [f"--description={table.description}"] if table.description else []
        if table.partition_expiration_days:
            shape.append(f"--time_partitioning_expiration={table.partition_expiration_days * 86_400}")
        if table.clustering_fields:
            shape.append(f"--clustering_fields={','.join(table.clustering_fields)}")
        steps.append(
            Step(
                "resource",
                f"table {table.ref}",
                describe=("bq", "show", "--format=none", ref),  # `bq show` has no --table flag
                create=(
                    "bq",
                    "mk",
                    "--table",
                    f"--schema={schema_file(table)}",
                    "--time_partitioning_type=DAY",
                    f"--time_partitioning_field={table.partition_field}",
                    *shape,
                    ref,
                ),
                # Adds new columns (BigQuery never drops or retypes one in place); keeps expiry and clustering current.
                update=("bq", "update", "--table", f"--schema={schema_file(table)}", *shape, ref),
            )
        )
    for fn in spec.functions:
        for dataset, role in fn.dataset_roles:
            steps.append(
                Step(
                    "binding",
                    f"{fn.name}: {role} on {dataset}",
                    (
                        "bq",
                        "add-iam-policy-binding",
                        "--dataset",
                        f"--member={_sa(spec, fn)}",
                        f"--role={role}",
                        f"{spec.project}:{dataset}",
                    ),
                    function=fn.name,
                )
            )
    return steps


def _function_steps(spec: DeploymentSpec, fn: FunctionSpec, source_root: str) -> list[Step]:
    p, region = f"--project={spec.project}", f"--region={spec.region}"
    email = fn.service_account_email(spec.project)
    env = ",".join(f"{k}={v}" for k, v in fn.env)
    deploy: Command = (
        "gcloud",
        "functions",
        "deploy",
        fn.cloud_name,
        "--gen2",
        region,
        f"--runtime={spec.runtime}",
        f"--entry-point={spec.entry_point}",
        f"--source={source_root}/{fn.name}",
        f"--trigger-topic={fn.trigger_topic}",
        "--retry" if fn.retry else "--no-retry",
        f"--service-account={email}",
        f"--trigger-service-account={email}",
        f"--memory={fn.memory}",
        f"--timeout={fn.timeout_seconds}s",
        f"--min-instances={fn.min_instances}",
        f"--max-instances={fn.max_instances}",
        f"--update-env-vars={env}",
        "--no-allow-unauthenticated",
        p,
    )
    var = subscription_var(fn)
    return [
        Step(
            "resource",
            f"function {fn.cloud_name}",
            describe=("gcloud", "functions", "describe", fn.cloud_name, "--gen2", region, p),
            create=deploy,
            update=deploy,  # deploy creates or updates; --update-env-vars keeps variables set by hand
            function=fn.name,
        ),
        Step(
            "lookup",
            f"{fn.cloud_name}: its Eventarc trigger (named by the deploy)",
            (
                "gcloud",
                "functions",
                "describe",
                fn.cloud_name,
                "--gen2",
                region,
                p,
                "--format=value(eventTrigger.trigger)",
            ),
            var="TRIGGER_" + fn.name.upper(),
            function=fn.name,
        ),
        Step(
            "binding",
            f"{fn.cloud_name}: its trigger identity may invoke it (lesson L06)",
            (
                "gcloud",
                "functions",
                "add-invoker-policy-binding",
                fn.cloud_name,
                region,
                f"--member=serviceAccount:{email}",
                p,
            ),
            function=fn.name,
        ),
        Step(
            "lookup",
            f"{fn.cloud_name}: the subscription Eventarc made for its trigger",
            (
                "gcloud",
                "eventarc",
                "triggers",
                "describe",
                Var("TRIGGER_" + fn.name.upper()),
                f"--location={spec.region}",
                p,
                "--format=value(transport.pubsub.subscription)",
            ),
            var=var,
            function=fn.name,
        ),
        Step(
            "binding",
            f"{fn.cloud_name}: dead letters after {spec.max_delivery_attempts} attempts to {fn.dead_letter_topic}",
            (
                "gcloud",
                "pubsub",
                "subscriptions",
                "update",
                Var(var),
                f"--dead-letter-topic={fn.dead_letter_topic}",
                f"--max-delivery-attempts={spec.max_delivery_attempts}",
                p,
            ),
            function=fn.name,
        ),
        Step(
            "binding",
            f"{fn.cloud_name}: Pub/Sub service agent may dead-letter from its trigger subscription",
            (
                "gcloud",
                "pubsub",
                "subscriptions",
                "add-iam-policy-binding",
                Var(var),
                _pubsub_agent(),
                "--role=roles/pubsub.subscriber",
                p,
            ),
            function=fn.name,
        ),
    ]


def render_plan(spec: DeploymentSpec, steps: Sequence[Step], header: bool = True) -> str:
    lines: list[str] = []
    if header:
        lines += [
            "#!/usr/bin/env bash",
            f"# phasectl deploy plan — project {spec.project}, region {spec.region}",
            "# Each resource: describe; create when missing, else update (phasectl deploy apply does this).",
            f"# Table schemas are written to {SCHEMA_OUT_DIR}/ and bundles to build/ by apply.",
            "set -euo pipefail",
        ]
    for i, step in enumerate(steps, 1):
        lines.append("")
        lines.append(f"# [{i}] {step.kind}: {step.label}")
        if step.kind == "lookup":
            lines.append(f'{step.var}="$({render_command(step.create)})"')
        elif step.kind == "ensure":
            assert step.describe is not None and step.expect is not None
            # grep reads to the end (no -q): an early exit could SIGPIPE gcloud and, under pipefail,
            # look like a missing policy
            lines.append(f"{render_command(step.describe)} | grep -Fx {_q(step.expect)} >/dev/null || \\")
            lines.append(f"  {render_command(step.create)}")
        elif step.kind == "binding":
            lines.append(render_command(step.create))
        else:
            assert step.describe is not None
            if step.update is None:
                lines.append(f"{render_command(step.describe)} >/dev/null 2>&1 || \\")
                lines.append(f"  {render_command(step.create)}")
            elif step.update == step.create:
                lines.append(render_command(step.create))
            else:
                lines.append(f"if {render_command(step.describe)} >/dev/null 2>&1; then")
                lines.append(f"  {render_command(step.update)}")
                lines.append("else")
                lines.append(f"  {render_command(step.create)}")
                lines.append("fi")
    return "\n".join(lines) + "\n"


def summarise(spec: DeploymentSpec) -> dict[str, int]:
    return {
        "functions": len(spec.functions),
        "topics": len(spec.topics),
        "dead_letter_subscriptions": len(spec.functions),
        "scheduler_jobs": len(spec.jobs),
        "datasets": len(spec.datasets),
        "tables": len(spec.tables),
        "service_accounts": len(spec.functions),
        "firestore_indexes": len(spec.firestore_indexes),
        "firestore_ttl_policies": len(spec.firestore_ttls),
    }
