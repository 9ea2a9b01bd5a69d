"""``phasectl deploy plan``: the ordered ``gcloud``/``bq`` commands that build the deployment.

A plan is a list of steps. A resource step names how to ``describe`` the resource, how to
``create`` it and, where Google Cloud allows it, how to ``update`` it in place; ``apply`` runs
describe, then create or update. A binding step is idempotent by itself (add-iam-policy-binding)
and always runs. An ensure step is for a setting that has no "not found": its ``describe`` lists
what is in place, and ``create`` runs only when the ``expect`` line is not among them (a Firestore
TTL policy). A require step stops the plan unless its command prints the ``expect`` line (a secret
must have a version before a function mounts it). A lookup step reads one value (the project
number, the subscription Eventarc made for a function) into a variable that later steps use as
``${NAME}``. Every binding comes from ``deploy.spec.expected_grants`` (verify checks the same list).

Cloud Scheduler holds exactly the jobs of ``schedule_entries()``: the monitor's, auto-retry's and
the dispatcher's one-a-minute tick. The ``[[jobs]]`` and sensor slots are run by the dispatcher,
never as Cloud Scheduler jobs (``scheduler_*_command`` build the commands verify names to repair
drift: create, update, resume, delete).

The rendered plan is a deterministic bash script: the same definition and project print the
same text (a golden file in ``tests/deploy`` pins it).
"""

from __future__ import annotations

import shlex
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

from deploy.spec import (
    PROJECT_NUMBER_VAR,
    PUBSUB_AGENT,
    Condition,
    CustomRole,
    DeploymentSpec,
    FunctionSpec,
    Grant,
    SchedulerJobSpec,
    SecretSpec,
    TableSpec,
    expected_grants,
)

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
    ``require`` (stop with ``hint`` unless a line of ``create``'s output is ``expect``),
    ``lookup`` (run ``create``, keep its stdout as ``${var}``).
    """

    kind: str
    label: str
    create: Command
    describe: Command | None = None
    update: Command | None = None
    var: str | None = None
    function: str | None = None  # the function this step belongs to (None: shared by all)
    expect: str | None = None  # ensure/require: the line printed when the setting is in place
    hint: str | None = None  # require: what the operator does when it is not

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


def _pubsub_agent() -> Var:
    """``--member=`` the project's Pub/Sub service agent (its number is looked up first)."""
    return Var(PROJECT_NUMBER_VAR, "--member=serviceAccount:service-", "@gcp-sa-pubsub.iam.gserviceaccount.com")


def subscription_var(fn: FunctionSpec) -> str:
    return "TRIGGER_SUBSCRIPTION_" + fn.name.upper()


def member_flag(member: str) -> Token:
    return _pubsub_agent() if member == PUBSUB_AGENT else f"--member={member}"


def condition_flag(condition: Condition | None) -> str:
    """``--condition=`` for a project binding: ``None`` (unconditional) or the expression and title."""
    if condition is None:
        return "--condition=None"
    if "," in condition.expression or "," in condition.title:  # gcloud splits the flag's value on commas
        raise ValueError(f"an IAM condition with a comma needs --condition-from-file: {condition}")
    return f"--condition=expression={condition.expression},title={condition.title}"


def table_ref(spec: DeploymentSpec, table: str) -> str:
    return f"{spec.project}:{table}"


def grant_command(spec: DeploymentSpec, grant: Grant, region: str | None = None) -> Command:
    """The idempotent add-binding command that makes ``grant``."""
    p = f"--project={spec.project}"
    member = member_flag(grant.member)
    role = f"--role={grant.role}"
    if grant.kind == "project":
        return (
            "gcloud",
            "projects",
            "add-iam-policy-binding",
            grant.resource,
            member,
            role,
            condition_flag(grant.condition),
        )
    if grant.kind == "service_account":
        return (
            "gcloud",
            "iam",
            "service-accounts",
            "add-iam-policy-binding",
            grant.resource,
            member,
            role,
            "--condition=None",
            p,
        )
    if grant.kind == "secret":
        return ("gcloud", "secrets", "add-iam-policy-binding", grant.resource, member, role, "--condition=None", p)
    if grant.kind == "topic":
        return ("gcloud", "pubsub", "topics", "add-iam-policy-binding", grant.resource, member, role, p)
    if grant.kind in ("subscription", "trigger_subscription"):
        target: Token = grant.resource
        if grant.kind == "trigger_subscription":
            target = Var(subscription_var(spec.function(grant.resource)))
        return ("gcloud", "pubsub", "subscriptions", "add-iam-policy-binding", target, member, role, p)
    if grant.kind == "table":
        return ("bq", "add-iam-policy-binding", "--table", member, role, table_ref(spec, grant.resource))
    if grant.kind == "service":  # roles/run.invoker on the function's Cloud Run service
        assert grant.role == "roles/run.invoker", grant
        return (
            "gcloud",
            "functions",
            "add-invoker-policy-binding",
            grant.resource,
            f"--region={region or spec.region}",
            member,
            p,
        )
    if grant.kind == "run_service":  # a Cloud Run service a job calls (not a function of this deployment)
        return (
            "gcloud",
            "run",
            "services",
            "add-iam-policy-binding",
            grant.resource,
            f"--region={region or spec.region}",
            member,
            role,
            p,
        )
    raise ValueError(f"no command for a grant on a {grant.kind}")


def remove_command(
    spec: DeploymentSpec, kind: str, resource: str, role: str, member: str, condition: Condition | None = None
) -> Command:
    """The command that removes one binding (verify names it for each grant it did not expect).

    ``kind`` as in ``Grant`` plus ``dataset``; ``member`` as the policy shows it (never symbolic);
    ``resource`` for a table or dataset is ``dataset[.table]``.
    """
    p = f"--project={spec.project}"
    flags = (f"--member={member}", f"--role={role}")
    if kind == "project":
        try:
            cond = condition_flag(condition)
        except ValueError:
            cond = "--all"
        return ("gcloud", "projects", "remove-iam-policy-binding", resource, *flags, cond)
    if kind == "service_account":
        return ("gcloud", "iam", "service-accounts", "remove-iam-policy-binding", resource, *flags, p)
    if kind == "secret":
        return ("gcloud", "secrets", "remove-iam-policy-binding", resource, *flags, p)
    if kind == "topic":
        return ("gcloud", "pubsub", "topics", "remove-iam-policy-binding", resource, *flags, p)
    if kind in ("subscription", "trigger_subscription"):
        return ("gcloud", "pubsub", "subscriptions", "remove-iam-policy-binding", resource, *flags, p)
    if kind in ("table", "dataset"):
        return ("bq", "remove-iam-policy-binding", f"--{kind}", *flags, table_ref(spec, resource))
    if kind in ("service", "run_service"):
        return (
            "gcloud",
            "run",
            "services",
            "remove-iam-policy-binding",
            resource,
            f"--region={spec.region}",
            *flags,
            p,
        )
    raise ValueError(f"no command to remove a grant on a {kind}")


def policy_command(spec: DeploymentSpec, kind: str, resource: str) -> Command:
    """The command that prints a resource's IAM policy as JSON (``kind`` as in ``remove_command``)."""
    p, fmt = f"--project={spec.project}", "--format=json"
    if kind == "project":
        return ("gcloud", "projects", "get-iam-policy", resource, fmt)
    if kind == "service_account":
        return ("gcloud", "iam", "service-accounts", "get-iam-policy", resource, p, fmt)
    if kind == "secret":
        return ("gcloud", "secrets", "get-iam-policy", resource, p, fmt)
    if kind == "topic":
        return ("gcloud", "pubsub", "topics", "get-iam-policy", resource, p, fmt)
    if kind in ("subscription", "trigger_subscription"):
        return ("gcloud", "pubsub", "subscriptions", "get-iam-policy", resource, p, fmt)
    if kind in ("table", "dataset"):
        return ("bq", "get-iam-policy", fmt, f"--{kind}", table_ref(spec, resource))
    if kind in ("service", "run_service"):
        return ("gcloud", "run", "services", "get-iam-policy", resource, f"--region={spec.region}", p, fmt)
    raise ValueError(f"no policy command for a {kind}")


def _grant_steps(spec: DeploymentSpec, grants: Sequence[Grant]) -> list[Step]:
    out = []
    for grant in grants:
        subject = grant.function or "deployment"
        if grant.member == PUBSUB_AGENT:
            subject = "Pub/Sub service agent"
        elif (
            grant.function
            and grant.member == f"serviceAccount:{spec.function(grant.function).trigger_account_email(spec.project)}"
        ):
            subject = f"{grant.function} (trigger identity)"
        out.append(
            Step("binding", f"{subject}: {grant.describe()}", grant_command(spec, grant), function=grant.function)
        )
    return out


def custom_role_step(spec: DeploymentSpec, role: CustomRole) -> Step:
    p = f"--project={spec.project}"
    settings = (
        p,
        f"--title={role.title}",
        f"--description={role.description}",
        f"--permissions={','.join(role.permissions)}",
        "--stage=GA",
    )
    return Step(
        "resource",
        f"custom role {role.role_id} ({', '.join(role.permissions)})",
        describe=("gcloud", "iam", "roles", "describe", role.role_id, p),
        create=("gcloud", "iam", "roles", "create", role.role_id, *settings),
        update=("gcloud", "iam", "roles", "update", role.role_id, *settings),
    )


def secret_step(spec: DeploymentSpec, secret: SecretSpec) -> Step:
    """The secret itself, never its value (``phasectl deploy secret set`` adds a version from stdin)."""
    p = f"--project={spec.project}"
    return Step(
        "resource",
        f"secret {secret.secret_id} ({secret.purpose}; no value: phasectl deploy secret set {secret.secret_id})",
        describe=("gcloud", "secrets", "describe", secret.secret_id, p),
        create=("gcloud", "secrets", "create", secret.secret_id, "--replication-policy=automatic", p),
        function=secret.readers[0] if len(secret.readers) == 1 else None,
    )


def secret_version_command(spec: DeploymentSpec, secret_id: str) -> Command:
    return (
        "gcloud",
        "secrets",
        "versions",
        "describe",
        "latest",
        f"--secret={secret_id}",
        f"--project={spec.project}",
        "--format=value(state)",
    )


def secret_add_version_command(spec: DeploymentSpec, secret_id: str) -> Command:
    """Adds a version whose value is read from stdin (never an argument, never a file on disk)."""
    return ("gcloud", "secrets", "versions", "add", secret_id, "--data-file=-", f"--project={spec.project}")


def build_plan(spec: DeploymentSpec, source_root: str = "build") -> list[Step]:
    """Every step, in dependency order: APIs, identities, topics, storage, functions, wiring, jobs."""
    p = f"--project={spec.project}"
    grants = expected_grants(spec)

    def of(kind: str, fn: FunctionSpec | None = None) -> list[Grant]:
        return [g for g in grants if g.kind == kind and (fn is None or g.function == fn.name)]

    steps: list[Step] = []
    if spec.apis:
        steps.append(Step("binding", "enable APIs", ("gcloud", "services", "enable", *spec.apis, p)))
    steps.append(
        Step(
            "lookup",
            "project number (for the Pub/Sub service agent)",
            ("gcloud", "projects", "describe", spec.project, "--format=value(projectNumber)"),
            var=PROJECT_NUMBER_VAR,
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
    steps += [custom_role_step(spec, role) for role in spec.custom_roles]
    steps += _ttl_steps(spec)
    for fn in spec.functions:
        for account, purpose in (
            (fn.service_account, f"phasechain {fn.name}"),
            (fn.trigger_account, f"phasechain {fn.name} trigger (invoker only)"),
        ):
            email = f"{account}@{spec.project}.iam.gserviceaccount.com"
            steps.append(
                Step(
                    "resource",
                    f"service account {email}",
                    describe=("gcloud", "iam", "service-accounts", "describe", email, p),
                    create=("gcloud", "iam", "service-accounts", "create", account, f"--display-name={purpose}", p),
                    function=fn.name,
                )
            )
        steps += _grant_steps(spec, of("project", fn))
        steps += _grant_steps(spec, of("service_account", fn))
    for secret in spec.secrets:
        steps.append(secret_step(spec, secret))
        steps += _grant_steps(spec, [g for g in of("secret") if g.resource == secret.secret_id])
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
        mine = of("topic", fn)
        steps += _grant_steps(spec, [g for g in mine if g.member != PUBSUB_AGENT])
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
        steps += _grant_steps(spec, [g for g in mine if g.member == PUBSUB_AGENT])  # it dead-letters there
    for fn in spec.functions:  # after every dead-letter subscription exists
        steps += _grant_steps(spec, of("subscription", fn))
    steps += _bigquery_steps(spec)
    for fn in spec.functions:
        steps += _grant_steps(spec, of("table", fn))
    for fn in spec.functions:
        steps += _function_steps(spec, fn, source_root, of("service", fn) + of("trigger_subscription", fn))
    for fn in spec.functions:  # after the functions: a missing target service stops apply before the jobs
        steps += _run_service_steps(spec, fn, of("run_service", fn))
    for job in spec.jobs:
        steps.append(
            Step(
                "resource",
                f"scheduler job {job.name}",
                describe=scheduler_describe_command(spec, job.name),
                create=scheduler_create_command(spec, job),
                update=scheduler_update_command(spec, job),
                function=job.function,
            )
        )
    return steps


# -- Cloud Scheduler: the plan's steps and the commands verify names to repair drift ----------------
def _scheduler_flags(spec: DeploymentSpec, job: SchedulerJobSpec) -> tuple[str, ...]:
    # The topic as a full path: gcloud resolves --topic while the flags parse, before a later
    # --project applies, so a bare name fails ("[projectsId] ... is required") or lands in the
    # configured project.
    return (
        f"--location={spec.region}",
        f"--schedule={job.cron}",
        f"--time-zone={job.timezone}",
        f"--topic=projects/{spec.project}/topics/{job.topic}",
        f"--message-body={job.body}",
        f"--project={spec.project}",
    )


def scheduler_describe_command(spec: DeploymentSpec, name: str) -> Command:
    return ("gcloud", "scheduler", "jobs", "describe", name, f"--location={spec.region}", f"--project={spec.project}")


def scheduler_create_command(spec: DeploymentSpec, job: SchedulerJobSpec) -> Command:
    return ("gcloud", "scheduler", "jobs", "create", "pubsub", job.name, *_scheduler_flags(spec, job))


def scheduler_update_command(spec: DeploymentSpec, job: SchedulerJobSpec) -> Command:
    """Sets schedule, time zone, topic and body (a Pub/Sub job's; an HTTP job cannot become one: delete it)."""
    return ("gcloud", "scheduler", "jobs", "update", "pubsub", job.name, *_scheduler_flags(spec, job))


def scheduler_resume_command(spec: DeploymentSpec, name: str) -> Command:
    return ("gcloud", "scheduler", "jobs", "resume", name, f"--location={spec.region}", f"--project={spec.project}")


def scheduler_delete_command(spec: DeploymentSpec, name: str) -> Command:
    """Asks for confirmation when run at a terminal (an operator's command, never apply's)."""
    return ("gcloud", "scheduler", "jobs", "delete", name, f"--location={spec.region}", f"--project={spec.project}")


def scheduler_list_command(spec: DeploymentSpec) -> Command:
    """Every job in the deployment's region (verify compares them with the definition)."""
    return (
        "gcloud",
        "scheduler",
        "jobs",
        "list",
        f"--location={spec.region}",
        f"--project={spec.project}",
        "--format=json",
    )


def run_service_check_command(spec: DeploymentSpec, service: str) -> Command:
    """Prints the Cloud Run service's name when it exists in the deployment's region."""
    return (
        "gcloud",
        "run",
        "services",
        "describe",
        service,
        f"--region={spec.region}",
        f"--project={spec.project}",
        "--format=value(metadata.name)",
    )


def _run_service_steps(spec: DeploymentSpec, fn: FunctionSpec, grants: Sequence[Grant]) -> list[Step]:
    """The Cloud Run services ``fn``'s jobs call: each must exist (the processors' own, never created
    here), then the function's runtime account may invoke it (the OIDC token it presents)."""
    steps: list[Step] = []
    for grant in grants:
        steps.append(
            Step(
                "require",
                f"Cloud Run service {grant.resource} exists (called by {fn.cloud_name}'s jobs)",
                run_service_check_command(spec, grant.resource),
                function=fn.name,
                expect=grant.resource,
                hint=f"Cloud Run service {grant.resource} does not exist in {spec.region} (project {spec.project}): "
                f"the scheduled jobs that call it would fail; deploy it first (or remove those jobs from the "
                "definition), then apply again",
            )
        )
        steps += _grant_steps(spec, [grant])
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
    return steps


def _function_steps(spec: DeploymentSpec, fn: FunctionSpec, source_root: str, grants: Sequence[Grant]) -> list[Step]:
    p, region = f"--project={spec.project}", f"--region={spec.region}"
    env = ",".join(f"{k}={v}" for k, v in fn.env)
    env_flag: Token = f"--update-env-vars={env}"
    if fn.env_lookups:  # a looked-up value (the project number) goes last: one Var per flag
        assert len(fn.env_lookups) == 1, fn.env_lookups
        ((name, var),) = fn.env_lookups
        env_flag = Var(var, f"--update-env-vars={env},{name}=")
    secret_flags: tuple[str, ...] = ()
    if fn.remove_env:  # a secret is never a plain variable (a copy set by hand is removed)
        secret_flags += (f"--remove-env-vars={','.join(fn.remove_env)}",)
    if fn.secrets:
        secret_flags += (f"--set-secrets={','.join(f'{k}={s}:latest' for k, s in fn.secrets)}",)
    else:
        secret_flags += ("--clear-secrets",)
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
        f"--service-account={fn.service_account_email(spec.project)}",
        f"--trigger-service-account={fn.trigger_account_email(spec.project)}",
        f"--memory={fn.memory}",
        f"--timeout={fn.timeout_seconds}s",
        f"--min-instances={fn.min_instances}",
        f"--max-instances={fn.max_instances}",
        env_flag,
        *secret_flags,
        "--no-allow-unauthenticated",
        p,
    )
    var = subscription_var(fn)
    steps = [
        Step(
            "require",
            f"secret {secret_id} has a value (for {fn.cloud_name}'s {env_name})",
            secret_version_command(spec, secret_id),
            function=fn.name,
            expect="ENABLED",
            hint=f"secret {secret_id} has no enabled version: set it with "
            f"`phasectl deploy secret set {secret_id} --project {spec.project}` (reads the value from stdin), "
            "then apply again",
        )
        for env_name, secret_id in fn.secrets
    ]
    steps += [
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
    ]
    # the invoker binding, explicitly: a redeploy once removed it silently (L06)
    steps += _grant_steps(spec, [g for g in grants if g.kind == "service"])
    steps += [
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
    ]
    steps += _grant_steps(spec, [g for g in grants if g.kind == "trigger_subscription"])
    return steps


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
        elif step.kind == "require":
            assert step.expect is not None and step.hint is not None
            lines.append(f"{render_command(step.create)} | grep -Fx {_q(step.expect)} >/dev/null || \\")
            lines.append(f"  {{ echo {_q('phasectl deploy: ' + step.hint)} >&2; exit 1; }}")
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
        "service_accounts": 2 * len(spec.functions),
        "secrets": len(spec.secrets),
        "custom_roles": len(spec.custom_roles),
        "iam_bindings": len(expected_grants(spec)),
        "firestore_indexes": len(spec.firestore_indexes),
        "firestore_ttl_policies": len(spec.firestore_ttls),
    }


def render_iam_table(spec: DeploymentSpec) -> str:
    """Every identity of the deployment and its exact rights, as a Markdown table (README, ``python -m
    deploy iam``): the grants of ``expected_grants``, grouped by who holds them."""

    def code(items: Sequence[str]) -> str:
        return ", ".join(f"`{i}`" for i in items)

    grants = expected_grants(spec)
    writer = {role.name(spec.project): role.role_id for role in spec.custom_roles}
    rows = ["| Identity | Rights (exactly these; `deploy verify` fails on any other grant it holds) |", "|---|---|"]
    for fn in spec.functions:
        runtime = f"serviceAccount:{fn.service_account_email(spec.project)}"
        mine = [g for g in grants if g.member == runtime]
        parts = []
        project = [g for g in mine if g.kind == "project"]
        parts.append(
            "project: "
            + ", ".join(
                f"`{g.role}`" + (" on database `(default)` only (IAM condition)" if g.condition else "")
                for g in project
            )
        )
        by_role: dict[str, list[str]] = {}
        for g in mine:
            if g.kind == "table":
                by_role.setdefault(g.role, []).append(g.resource)
        for role, tables in sorted(by_role.items(), key=lambda item: item[0] not in writer):
            verb = f"write (`{writer[role]}`)" if role in writer else f"read (`{role}`)"
            parts.append(f"{verb}: {code(tables)}")
        for kind, what in (
            ("secret", "secretAccessor on secret"),
            ("topic", "publisher on"),
            ("subscription", "subscriber on"),
            ("run_service", "invoker (`roles/run.invoker`) on the Cloud Run services its jobs call:"),
        ):
            resources = [g.resource for g in mine if g.kind == kind]
            if resources:
                parts.append(f"{what} {code(resources)}")
        rows.append(f"| `{fn.service_account}` (runs {fn.name}) | {'; '.join(parts)} |")
        rows.append(
            f"| `{fn.trigger_account}` (trigger identity of {fn.name}) | `roles/run.invoker` on its service "
            f"`{fn.cloud_name}` |"
        )
    agent = [g for g in grants if g.member == PUBSUB_AGENT]
    minting = [g.resource.split("@")[0] for g in agent if g.kind == "service_account"]
    dead_letter = [g.resource for g in agent if g.kind == "topic"]
    rows.append(
        "| Pub/Sub service agent (`service-NUMBER@gcp-sa-pubsub`) | `roles/iam.serviceAccountTokenCreator` on "
        f"{code(minting)}; `roles/pubsub.publisher` on {code(dead_letter)}; `roles/pubsub.subscriber` on each "
        "function's Eventarc trigger subscription |"
    )
    return "\n".join(rows) + "\n"
