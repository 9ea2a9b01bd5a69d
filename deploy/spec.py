"""The deployment, derived from the pipeline definition: what must exist on Google Cloud.

Nothing here repeats a topic, function, table or job name: each comes from
``shared/pipeline/pipeline.toml`` (phases, transitions, schedules, ``[deploy]``) or from the
table specs in ``deploy/bigquery/*.json``. ``phasectl deploy plan|apply|verify`` and
``phasectl local up`` both read this model, so the laptop and the cloud get the same topology.

Least privilege: a function's roles follow from its bundle's import closure (a function that
does not ship ``google-cloud-bigquery`` gets no BigQuery role) and from what the definition says
it publishes (a transition may publish only its target phase's trigger topic and the auto-retry
topic, to nudge it to deliver the outbox; the schedule dispatcher only the topics of the
Pub/Sub jobs it runs, and it may invoke only the Cloud Run services its HTTP jobs call). Each function has
two identities: its runtime account (the data rights) and its trigger account (Eventarc's
identity: ``roles/run.invoker`` on that function's service, nothing else). BigQuery rights are
per table (``TABLE_ACCESS``, the gates' and sensors' tables), Firestore's are limited to the
database by an IAM condition, and a secret (``SECRETS``) is mounted from Secret Manager on the
functions whose bundle ships the module that reads it. ``expected_grants`` lists every binding:
the plan makes them and verify checks them (and nothing more).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from shared.pipeline.definition import GameCoverageGate, PipelineDefinition, TimedTrigger, Transition

TABLE_SPEC_DIR = Path(__file__).resolve().parent / "bigquery"

# Distribution in a function's closure → the project-level roles it needs, and whether it
# needs dataset-level BigQuery access.
DISTRIBUTION_ROLES: Mapping[str, tuple[str, ...]] = {
    "google-cloud-firestore": ("roles/datastore.user",),
    "google-cloud-bigquery": ("roles/bigquery.jobUser",),
}
COMMON_ROLES = ("roles/logging.logWriter",)
MONITOR_MODULE = "shared.monitor.checks"
RETRY_DISPATCH_MODULE = "shared.retry.dispatch"
TIMED_MODULE = "shared.orchestration.timed"  # evaluates sensors
DISPATCH_MODULE = "shared.schedules.dispatcher"  # runs the [[jobs]] and sensor slots (the schedule dispatcher)
FIRESTORE_ROLE = "roles/datastore.user"
# Set on every function: pydantic looks for plugins (a scan of every installed distribution's entry
# points) when it builds its first validator, on the cold path; the functions use none (cold start).
RUNTIME_ENV = (("PYDANTIC_DISABLE_PLUGINS", "__all__"),)
TABLE_READER_ROLE = "roles/bigquery.dataViewer"  # on each table a function reads (the processors own them)
INVOKER_ROLE = "roles/run.invoker"
TOKEN_CREATOR_ROLE = "roles/iam.serviceAccountTokenCreator"
SECRET_ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
PUBSUB_AGENT = "pubsub-service-agent"  # symbolic member: service-<project number>@gcp-sa-pubsub.iam.gserviceaccount.com
TRIGGER_ACCOUNT_SUFFIX = "-inv"
PROJECT_NUMBER_VAR = "PROJECT_NUMBER"  # the plan's lookup of the project number (deploy.plan)


@dataclass(frozen=True)
class CustomRole:
    """A project-level custom role (``projects/<project>/roles/<role_id>``)."""

    role_id: str
    title: str
    description: str
    permissions: tuple[str, ...]

    def name(self, project: str) -> str:
        return f"projects/{project}/roles/{self.role_id}"


# bigquery.dataEditor on a table may also delete it and change its schema; the functions only
# stream rows (insertAll) and run DML (MERGE/UPDATE) on the tables they write.
TABLE_WRITER = CustomRole(
    role_id="phasechainTableWriter",
    title="phasechain table writer",
    description="Read and write the rows of a table (streaming inserts, DML); no delete, no schema change.",
    permissions=("bigquery.tables.get", "bigquery.tables.getData", "bigquery.tables.updateData"),
)


@dataclass(frozen=True)
class TableAccess:
    """The tables (``dataset.table``) a module's code writes or reads, besides the gates' and sensors'."""

    writes: tuple[str, ...] = ()
    reads: tuple[str, ...] = ()


def table_access(definition: PipelineDefinition) -> dict[str, TableAccess]:
    """Module → the tables its SQL and inserts name (keep in step with the code: a test scans every
    module of every bundle for the definition's table settings and fails on one missing here).

    A function gets the union over the modules its bundle ships; the gates' and sensors' tables come
    from the definition (``gate_read_tables``, ``timed_read_tables``). ``game_unavailable`` is written
    only by phasectl (the operator), so no function writes it.
    """
    s, r, g = definition.pipeline, definition.retry, definition.games
    log = f"{s.dataset}.{s.phase_execution_log_table}"
    queue = f"{s.dataset}.{r.queue_table}"
    return {
        "shared.orchestration.outbox": TableAccess(writes=(log,)),  # auto-retry and the monitor deliver the outbox
        "shared.orchestration.timed_runtime": TableAccess(writes=(log,)),
        "shared.schedules.runtime": TableAccess(writes=(log,)),  # the dispatcher: one row per slot's outcome
        "shared.retry.queue": TableAccess(writes=(queue, f"{s.dataset}.{r.conflict_log_table}")),
        "shared.monitor.schedule_read": TableAccess(reads=(g.schedule_table,)),  # the grid's schedule read
        "shared.monitor.slo_read": TableAccess(reads=(g.schedule_table,)),  # slo_breach: a day's first tip-off
        "shared.monitor.retry_queue": TableAccess(reads=(queue,)),
        # auto-retry reads a date's postponed and unavailable games before a dispatch (the coverage query)
        "shared.retry.not_played": TableAccess(
            reads=(g.schedule_table, *(b.table for b in g.boxscore_sources), g.unavailable_table)
        ),
        # the self-heal checkpoints' one query: the schedule and each target step's table ([heal.self_heal])
        "shared.heal.self_heal": TableAccess(
            reads=(g.schedule_table, *(s.table.table for t in definition.heal.self_heal.targets for s in t.steps))
        ),
    }


@dataclass(frozen=True)
class SecretUse:
    """A secret the package reads from an environment variable: Secret Manager holds it, the
    functions whose bundle ships ``module`` mount it (``--set-secrets``), only they may access it."""

    secret_id: str
    module: str
    env: Callable[[PipelineDefinition], str]
    purpose: str


SECRETS: tuple[SecretUse, ...] = (
    SecretUse(
        "slack-webhook",
        "shared.monitor.alerts",
        lambda definition: definition.monitor.slack_webhook_env,
        "the monitor's Slack incoming-webhook URL",
    ),
)


@dataclass(frozen=True)
class SecretSpec:
    secret_id: str
    env: str
    readers: tuple[str, ...]  # function names
    purpose: str


@dataclass(frozen=True, order=True)
class Condition:
    """An IAM condition (CEL ``expression``), named by ``title``."""

    title: str
    expression: str


@dataclass(frozen=True, order=True)
class Grant:
    """One IAM binding the deployment makes: ``member`` holds ``role`` on ``resource``.

    kind: ``project`` (resource: the project id), ``service_account`` (an email), ``secret``,
    ``topic``, ``subscription``, ``trigger_subscription`` (resource: the function whose Eventarc
    subscription it is; its name is looked up), ``table`` (``dataset.table``), ``service`` (a
    function's Cloud Run service: its Cloud Functions name), ``run_service`` (a Cloud Run service
    of ``[services]`` a scheduled job calls: not deployed here, it must exist). ``member`` is
    ``serviceAccount:EMAIL`` or ``PUBSUB_AGENT``.
    """

    kind: str
    resource: str
    role: str
    member: str
    condition: Condition | None = None
    function: str | None = None  # the function it serves (None: the deployment's)

    def describe(self) -> str:
        where = f" if {self.condition.expression}" if self.condition else ""
        if self.kind == "trigger_subscription":
            return f"{self.role} on the Eventarc subscription of {self.resource}"
        if self.kind == "run_service":
            return f"{self.role} on Cloud Run service {self.resource}"
        return f"{self.role} on {self.kind.replace('_', ' ')} {self.resource}{where}"


@dataclass(frozen=True)
class FunctionSpec:
    """One 2nd-gen Cloud Function with a Pub/Sub trigger and retry on failure."""

    name: str  # the folder under functions/ (and the bundle under build/)
    cloud_name: str  # the Cloud Functions name (hyphens)
    trigger_topic: str
    dead_letter_topic: str
    dead_letter_subscription: str
    service_account: str  # runtime account id (the part before @): the function's data rights
    memory: str
    timeout_seconds: int
    min_instances: int
    max_instances: int
    env: tuple[tuple[str, str], ...]
    project_roles: tuple[str, ...]  # roles/datastore.user is granted with the database condition
    publishes: tuple[str, ...]  # topics it may publish to (roles/pubsub.publisher on each)
    table_roles: tuple[tuple[str, str], ...]  # (dataset.table, role): the only BigQuery data rights
    trigger_account: str = ""  # its Eventarc trigger identity's account id: run.invoker on its service only
    secrets: tuple[tuple[str, str], ...] = ()  # (environment variable, secret id) mounted with --set-secrets
    remove_env: tuple[str, ...] = ()  # every secret's variable: never a plain environment variable
    retry: bool = True
    # subscriptions it may pull from (roles/pubsub.subscriber on each, nothing project-wide): the
    # monitor reads every function's dead-letter subscription to report a backlog
    subscribes: tuple[str, ...] = ()
    # Cloud Run services of [services] it calls with an OIDC ID token (roles/run.invoker on each): the
    # dispatcher's HTTP jobs. The token comes from the metadata server as the runtime account: no
    # token-creator role is needed, only the invoker grant on the target.
    invokes: tuple[str, ...] = ()
    # (variable, lookup) set from a value apply looks up: the dispatcher's GOOGLE_CLOUD_PROJECT_NUMBER
    # (Cloud Run's deterministic service URLs name the project number)
    env_lookups: tuple[tuple[str, str], ...] = ()

    def service_account_email(self, project: str) -> str:
        return f"{self.service_account}@{project}.iam.gserviceaccount.com"

    def trigger_account_email(self, project: str) -> str:
        return f"{self.trigger_account}@{project}.iam.gserviceaccount.com"

    def account_emails(self, project: str) -> tuple[str, str]:
        return self.service_account_email(project), self.trigger_account_email(project)


@dataclass(frozen=True)
class SchedulerJobSpec:
    """One Cloud Scheduler job (a ``schedule_entries()`` entry): Pub/Sub ``body`` to ``topic`` on ``cron``."""

    name: str
    cron: str
    timezone: str
    topic: str
    body: str  # JSON
    function: str | None


@dataclass(frozen=True)
class DispatchedJob:
    """A ``[[jobs]]`` entry or sensor slot: run by the dispatcher, never a Cloud Scheduler job.

    Verify names a Cloud Scheduler job of the same name (the replaced system's, or one of an earlier
    deploy) as a zombie that runs it a second time."""

    name: str
    replaced_by: str = ""  # declared for the record only: what in this package does its work


@dataclass(frozen=True)
class TableSpec:
    dataset: str
    table: str
    spec_file: Path
    description: str
    partition_field: str
    partition_expiration_days: int | None
    clustering_fields: tuple[str, ...]
    schema: tuple[Mapping[str, str], ...]

    @property
    def ref(self) -> str:
        return f"{self.dataset}.{self.table}"


@dataclass(frozen=True)
class FirestoreIndex:
    collection_group: str
    fields: tuple[tuple[str, str], ...]  # (field path, ASCENDING | DESCENDING)


@dataclass(frozen=True)
class FirestoreTtl:
    """A Firestore TTL policy: documents of ``collection_group`` expire at their ``field`` (lesson L25).

    The writers set ``field`` to written-at + ``days`` (``[retention]`` in the definition);
    Firestore deletes a document some time (typically within a day) after that instant.
    """

    collection_group: str
    field: str
    days: int
    writer: str  # who writes the documents (for the plan's labels and verify's messages)


@dataclass(frozen=True)
class DeploymentSpec:
    project: str
    region: str
    runtime: str
    entry_point: str
    dataset_location: str
    firestore_location: str
    max_delivery_attempts: int
    dead_letter_retention: str
    apis: tuple[str, ...]
    topics: tuple[str, ...]  # every topic, dead-letter topics included, sorted
    functions: tuple[FunctionSpec, ...]
    jobs: tuple[SchedulerJobSpec, ...]
    datasets: tuple[str, ...]
    tables: tuple[TableSpec, ...]
    read_datasets: tuple[str, ...]  # datasets the functions only read (owned by the processors)
    firestore_indexes: tuple[FirestoreIndex, ...] = field(default=())
    firestore_ttls: tuple[FirestoreTtl, ...] = field(default=())
    # the processors' tables the functions read: they must exist before a deploy (never created here)
    read_tables: tuple[str, ...] = field(default=())
    secrets: tuple[SecretSpec, ...] = field(default=())
    custom_roles: tuple[CustomRole, ...] = field(default=())
    # every Cloud Scheduler job of the whole definition (kept by ``only``): any other job in the
    # region is a zombie
    defined_jobs: tuple[str, ...] = field(default=())
    dispatched_jobs: tuple[DispatchedJob, ...] = field(default=())
    dispatcher_job: str | None = None  # the tick job that feeds the dispatcher
    # verify reports zombies: the whole deployment, or the dispatcher's alone (a zombie runs its jobs twice)
    zombie_scope: bool = True

    @property
    def firestore_condition(self) -> Condition:
        """``roles/datastore.user`` only on the ``(default)`` database (IAM conditions on Firestore go
        down to a database, not to a collection)."""
        return Condition(
            "phasechain-default-database", f'resource.name == "projects/{self.project}/databases/(default)"'
        )

    def function(self, name: str) -> FunctionSpec:
        for fn in self.functions:
            if name in (fn.name, fn.cloud_name):
                return fn
        raise KeyError(f"no function {name!r} (known: {[f.name for f in self.functions]})")

    def only(self, name: str | None) -> DeploymentSpec:
        """The same deployment limited to one function (its topics, job and account)."""
        if name is None:
            return self
        fn = self.function(name)
        jobs = tuple(j for j in self.jobs if j.function == fn.name)
        topics = tuple(sorted({fn.trigger_topic, fn.dead_letter_topic, *fn.publishes}))
        mine = {table for table, _ in fn.table_roles}
        return DeploymentSpec(
            **{
                **self.__dict__,
                "functions": (fn,),
                "jobs": jobs,
                "topics": topics,
                "apis": (),
                "datasets": (),
                "tables": (),
                "firestore_indexes": (),
                "firestore_ttls": (),
                "read_tables": tuple(t for t in self.read_tables if t in mine),
                "read_datasets": tuple(d for d in self.read_datasets if any(t.startswith(f"{d}.") for t in mine)),
                "secrets": tuple(s for s in self.secrets if fn.name in s.readers),
                "custom_roles": (),
                "zombie_scope": any(j.name == self.dispatcher_job for j in jobs),
            }
        )


# Firestore queries in this package filter on document ids only (the monitor's date range)
# or stream whole collections, so they need no composite index. A query that filters or
# orders on a field and another one must add its index here; tests/deploy/test_spec.py
# scans the code for such queries.
FIRESTORE_INDEXES: tuple[FirestoreIndex, ...] = ()


def firestore_ttls(definition: PipelineDefinition) -> tuple[FirestoreTtl, ...]:
    """One TTL policy per collection group the package writes, on ``[retention] expiry_field``.

    Heartbeats are one overwritten document per function and need none. A new collection the
    package writes must be added here (and its documents must carry the expiry field).
    """
    import inspect

    from shared.client.inbox import TriggerInbox
    from shared.orchestration.claim_docs import CLAIMS

    r, settings = definition.retention, definition.pipeline
    inbox = inspect.signature(TriggerInbox).parameters["collection"].default
    wanted = (
        (settings.state_collection, r.state_days, "the transition functions: one document per transition and date"),
        ("completions", r.state_days, f"the transition functions: {settings.state_collection}/*/completions"),
        (
            CLAIMS,
            r.state_days,
            f"transitions and timed triggers: {settings.state_collection}/*/{CLAIMS} (claim documents)",
        ),
        (
            settings.outbox_collection,
            r.outbox_days,
            "the transition functions: log rows and hand-offs not yet delivered",
        ),
        (settings.quarantine_collection, r.quarantine_days, "every function: bad or stale input"),
        (definition.monitor.alert_collection, r.alerts_days, "the monitor: deduplicated findings"),
        (settings.audit_collection, r.audit_days, "phasectl: the operator audit"),
        (str(inbox), r.inbox_days, "consumers: shared.client.TriggerInbox entries"),
        (definition.dispatcher.runs_collection, r.state_days, "the schedule dispatcher: one run per job and slot"),
        (
            definition.dispatcher.jobs_collection,
            r.state_days,
            "the schedule dispatcher: each job's last run (the season overrides never expire)",
        ),
        (
            definition.heal.self_heal.collection,
            definition.heal.self_heal.retention_days,
            "the monitor's self-heal checkpoints: attempts (claims) and verdicts",
        ),
        (definition.heal.gaps.queue_collection, r.state_days, "the gap pass: the backfill queue's entries"),
        (definition.heal.gaps.slot_collection, r.state_days, "the gap pass: the backfill rate cap's hourly slots"),
    )
    groups = [group for group, _, _ in wanted]
    if len(set(groups)) != len(groups):
        raise ValueError(f"retention: two collections share a collection group: {groups}")
    return tuple(FirestoreTtl(group, r.expiry_field, days, writer) for group, days, writer in wanted)


def cloud_name(function: str) -> str:
    from shared.monitor.dead_letters import function_cloud_name  # the one naming rule (the monitor reads it too)

    return function_cloud_name(function)


def service_account_id(function: str) -> str:
    """``<function>`` as a service-account id: 6 to 30 chars, lowercase, digits and hyphens."""
    base = cloud_name(function)
    return base if len(base) <= 30 else base[:30].rstrip("-")


def trigger_account_id(function: str) -> str:
    """The trigger (invoker) identity's account id: ``<function>-inv``, at most 30 chars."""
    base = cloud_name(function)[: 30 - len(TRIGGER_ACCOUNT_SUFFIX)].rstrip("-")
    return base + TRIGGER_ACCOUNT_SUFFIX


def table_specs(definition: PipelineDefinition, spec_dir: Path = TABLE_SPEC_DIR) -> tuple[TableSpec, ...]:
    """The tables the package writes, named by the definition, shaped by ``deploy/bigquery``."""
    settings, retry = definition.pipeline, definition.retry
    unavailable_dataset, unavailable_table = definition.games.unavailable_table.split(".")
    wanted = (
        ("phase_execution_log", settings.dataset, settings.phase_execution_log_table),
        ("failed_processor_queue", settings.dataset, retry.queue_table),
        ("streaming_conflict_log", settings.dataset, retry.conflict_log_table),
        ("game_unavailable", unavailable_dataset, unavailable_table),
    )
    out = []
    for spec_name, dataset, table in wanted:
        path = spec_dir / f"{spec_name}.json"
        raw = json.loads(path.read_text())
        part = raw["time_partitioning"]
        out.append(
            TableSpec(
                dataset=dataset,
                table=table,
                spec_file=path,
                description=raw.get("description", ""),
                partition_field=part["field"],
                partition_expiration_days=part.get("expiration_days"),
                clustering_fields=tuple(raw.get("clustering_fields", ())),
                schema=tuple(raw["schema"]),
            )
        )
    return tuple(out)


def _payload(model_name: str | None, body: dict[str, object] | None = None) -> str:
    if model_name is None:
        return "{}"
    from shared.contracts import messages

    model = getattr(messages, model_name, None)
    if model is None:
        raise ValueError(f"schedules: payload {model_name!r} is not a model in shared.contracts.messages")
    return str(model(**(body or {})).model_dump_json(exclude_none=True))


@dataclass(frozen=True)
class ClosureFacts:
    """What a function's bundle ships: distributions and first-party modules."""

    distributions: frozenset[str]
    modules: frozenset[str]


def closure_facts(function: str) -> ClosureFacts:
    """From the bundle's import closure of ``functions/<function>``."""
    from deploy.bundle import Analyzer

    closure = Analyzer().analyze(function)
    return ClosureFacts(frozenset(closure.distributions), frozenset(closure.modules))


def build_spec(
    definition: PipelineDefinition,
    project: str,
    *,
    region: str | None = None,
    facts: Callable[[str], ClosureFacts] = closure_facts,
) -> DeploymentSpec:
    """Everything the package needs on Google Cloud, derived from ``definition``."""
    from shared.monitor.dead_letters import dead_letter_routes  # the one naming rule (the monitor reads it too)

    deploy = definition.deploy
    dead_letter_names = {route.function: route for route in dead_letter_routes(definition)}
    gate_reads = {t.name: gate_read_tables(definition, t) for t in definition.transitions}
    timed = definition.timed_triggers()
    timed_reads = {t.name: timed_read_tables(definition, t) for t in timed}
    tables = table_specs(definition)
    write_datasets = tuple(sorted({t.dataset for t in tables}))
    trigger_topics = {t.name: definition.target_topic(t) for t in definition.transitions}
    routes = [definition.retry_route(p.name) for p in definition.processors]
    retry_topics = sorted({route[1] for route in routes if route is not None and route[0] == "topic"})
    access = table_access(definition)

    sources: dict[str, str] = {t.name: definition.source_topic(t) for t in definition.transitions}
    for t in timed:  # a sensor's function runs on its tick topic (the dispatcher publishes its slots there)
        sources.setdefault(t.function, t.tick_topic)
    jobs: list[SchedulerJobSpec] = []
    for key, schedule in definition.schedule_entries().items():
        if schedule.function:
            sources[schedule.function] = schedule.topic
        jobs.append(
            SchedulerJobSpec(
                name=schedule.job or cloud_name(key),
                cron=schedule.cron,
                timezone=schedule.timezone,
                topic=schedule.topic,
                body=_payload(schedule.payload, schedule.body),
                function=schedule.function,
            )
        )
    dispatched = [j for j in definition.all_jobs() if j.dispatched]
    job_topics = sorted({j.pubsub.topic for j in dispatched if j.pubsub is not None})
    called = sorted({j.http.service for j in dispatched if j.http is not None and j.http.auth == "id_token"})
    functions: list[FunctionSpec] = []
    nudge_topic = definition.outbox_nudge_topic()
    dead_letter_readers: set[str] = set()
    secret_readers: dict[str, list[str]] = {use.secret_id: [] for use in SECRETS}
    for name in definition.function_names():
        closure = facts(name)
        dists = closure.distributions
        if MONITOR_MODULE in closure.modules and "google-cloud-pubsub" in dists:
            dead_letter_readers.add(name)
        roles = set(COMMON_ROLES)
        for dist, dist_roles in DISTRIBUTION_ROLES.items():
            if dist in dists:
                roles.update(dist_roles)
        mine = [t for t in timed if t.function == name]
        reads: set[str] = set()
        # a transition nudges auto-retry to deliver the Firestore outbox it wrote (transitions never write BigQuery)
        nudge = (nudge_topic,) if nudge_topic else ()
        if name in trigger_topics:
            publishes: tuple[str, ...] = tuple(sorted({trigger_topics[name], *nudge}))
            reads |= gate_reads[name]
        elif MONITOR_MODULE in closure.modules:  # it re-evaluates every transition (claim protocol)
            publishes = tuple(sorted({*trigger_topics.values(), *nudge}))
            reads = reads.union(*gate_reads.values())
            if TIMED_MODULE in closure.modules:  # and every sensor, if it ships their evaluation
                reads = reads.union(*timed_reads.values())
        elif mine:  # a sensor function: the topics its triggers publish to
            publishes = tuple(sorted({t.topic for t in mine}))
            reads = reads.union(*(timed_reads[t.name] for t in mine))
        elif DISPATCH_MODULE in closure.modules:  # the dispatcher: its Pub/Sub jobs' topics
            publishes = tuple(job_topics)
        elif RETRY_DISPATCH_MODULE in closure.modules:  # auto-retry: RetryRequests to the retry topics
            publishes = tuple(retry_topics)
        else:
            publishes = ()
        if "google-cloud-pubsub" not in dists:
            publishes = ()
        table_roles: list[tuple[str, str]] = []
        if "google-cloud-bigquery" in dists:
            writes = {t for module in closure.modules if module in access for t in access[module].writes}
            reads |= {t for module in closure.modules if module in access for t in access[module].reads}
            table_roles += [(t, TABLE_WRITER.name(project)) for t in sorted(writes)]
            table_roles += [(t, TABLE_READER_ROLE) for t in sorted(reads - writes)]
        secrets: list[tuple[str, str]] = []
        for use in SECRETS:
            if use.module in closure.modules:
                secrets.append((use.env(definition), use.secret_id))
                secret_readers[use.secret_id].append(name)
        invokes: tuple[str, ...] = ()
        env_lookups: tuple[tuple[str, str], ...] = ()
        if DISPATCH_MODULE in closure.modules and "google-auth" in dists:
            from shared.schedules.targets import PROJECT_NUMBER_ENV

            invokes = tuple(called)
            env_lookups = ((PROJECT_NUMBER_ENV, PROJECT_NUMBER_VAR),) if called else ()
        settings = deploy.settings_for(name)
        assert settings.memory and settings.timeout_seconds and settings.max_instances is not None
        trigger = sources[name]
        functions.append(
            FunctionSpec(
                name=name,
                cloud_name=cloud_name(name),
                trigger_topic=trigger,
                dead_letter_topic=dead_letter_names[name].topic,
                dead_letter_subscription=dead_letter_names[name].subscription,
                service_account=service_account_id(name),
                memory=settings.memory,
                timeout_seconds=settings.timeout_seconds,
                min_instances=settings.min_instances or 0,
                max_instances=settings.max_instances,
                env=(("GOOGLE_CLOUD_PROJECT", project), *RUNTIME_ENV, *_consumer_urls(definition, name)),
                project_roles=tuple(sorted(roles)),
                publishes=publishes,
                table_roles=tuple(table_roles),
                trigger_account=trigger_account_id(name),
                secrets=tuple(sorted(secrets)),
                remove_env=tuple(sorted({use.env(definition) for use in SECRETS})),
                invokes=invokes,
                env_lookups=env_lookups,
            )
        )
    accounts = [a for f in functions for a in (f.service_account, f.trigger_account)]
    if len(set(accounts)) != len(accounts):
        raise ValueError(f"two functions' service accounts share an id: {sorted(accounts)}")

    # the monitor reads every function's dead-letter subscription (a backlog is a finding)
    dead_letters = tuple(f.dead_letter_subscription for f in functions)
    functions = [replace(f, subscribes=dead_letters) if f.name in dead_letter_readers else f for f in functions]
    topics: set[str] = set()
    for phase in definition.phases:
        topics.update(t for t in (phase.completion_topic, phase.trigger_topic, phase.retry_topic) if t)
    topics.update(j.topic for j in jobs)
    topics.update(t.topic for t in timed)
    topics.update(f.dead_letter_topic for f in functions)
    # every function's trigger and every topic a function publishes to (the dispatcher's job topics)
    topics.update(t for f in functions for t in (f.trigger_topic, *f.publishes))
    written = {t.ref for t in tables}
    read_tables = sorted({t for f in functions for t, _ in f.table_roles} - written)
    secrets_spec = tuple(
        SecretSpec(use.secret_id, use.env(definition), tuple(secret_readers[use.secret_id]), use.purpose)
        for use in SECRETS
        if secret_readers[use.secret_id]
    )
    return DeploymentSpec(
        project=project,
        region=region or deploy.region,
        runtime=deploy.runtime,
        entry_point=deploy.entry_point,
        dataset_location=deploy.dataset_location,
        firestore_location=deploy.firestore_location,
        max_delivery_attempts=deploy.max_delivery_attempts,
        dead_letter_retention=deploy.dead_letter_retention,
        apis=deploy.apis,
        topics=tuple(sorted(topics)),
        functions=tuple(functions),
        jobs=tuple(jobs),
        datasets=write_datasets,
        tables=tables,
        read_datasets=tuple(sorted({t.split(".")[0] for t in read_tables} - set(write_datasets))),
        firestore_indexes=FIRESTORE_INDEXES,
        firestore_ttls=firestore_ttls(definition),
        read_tables=tuple(read_tables),
        secrets=secrets_spec,
        custom_roles=(TABLE_WRITER,)
        if any(r == TABLE_WRITER.name(project) for f in functions for _, r in f.table_roles)
        else (),
        defined_jobs=tuple(sorted(j.name for j in jobs)),
        dispatched_jobs=tuple(DispatchedJob(j.name, j.replaced_by) for j in definition.all_jobs()),
        dispatcher_job=next((j.name for j in jobs if j.function == definition.dispatcher.function), None),
    )


def gate_read_tables(definition: PipelineDefinition, transition: Transition) -> set[str]:
    """The tables (``dataset.table``) ``transition``'s gates read: a coverage gate's schedule, its
    boxscore chain (or its own sources) and the unavailable-games table; every table a gate names
    (owned by the processors; the deploy only grants reading them)."""
    out: set[str] = set()
    games = definition.games
    for name in transition.gates:
        gate = definition.gates[name]
        if isinstance(gate, GameCoverageGate):
            out.update((games.schedule_table, games.unavailable_table))
            if gate.uses_boxscore_chain:
                out.update(s.table for s in games.boxscore_sources)
        out.update(t.table for t in gate.read_tables())
    return out


def timed_read_tables(definition: PipelineDefinition, trigger: TimedTrigger) -> set[str]:
    """The tables a sensor's conditions read (``all_final``: the schedule and the unavailable games)."""
    out: set[str] = set()
    for condition in trigger.conditions:
        if condition.table is not None:
            out.add(condition.table.table)
        else:
            out.update((definition.games.schedule_table, definition.games.unavailable_table))
    return out


def expected_grants(spec: DeploymentSpec) -> tuple[Grant, ...]:
    """Every IAM binding of the deployment (the plan makes exactly these; verify checks them and
    fails on any other grant held by a function account)."""
    out: list[Grant] = []
    p = spec.project
    for fn in spec.functions:
        runtime, trigger = (f"serviceAccount:{e}" for e in fn.account_emails(p))
        for role in fn.project_roles:
            condition = spec.firestore_condition if role == FIRESTORE_ROLE else None
            out.append(Grant("project", p, role, runtime, condition, fn.name))
        # the Pub/Sub service agent mints the push (OIDC) token as the trigger identity: on that account only
        out.append(
            Grant("service_account", fn.trigger_account_email(p), TOKEN_CREATOR_ROLE, PUBSUB_AGENT, None, fn.name)
        )
        for _env, secret in fn.secrets:
            out.append(Grant("secret", secret, SECRET_ACCESSOR_ROLE, runtime, None, fn.name))
        for topic in fn.publishes:
            out.append(Grant("topic", topic, "roles/pubsub.publisher", runtime, None, fn.name))
        out.append(Grant("topic", fn.dead_letter_topic, "roles/pubsub.publisher", PUBSUB_AGENT, None, fn.name))
        for subscription in fn.subscribes:
            out.append(Grant("subscription", subscription, "roles/pubsub.subscriber", runtime, None, fn.name))
        out.append(Grant("trigger_subscription", fn.name, "roles/pubsub.subscriber", PUBSUB_AGENT, None, fn.name))
        for table, role in fn.table_roles:
            out.append(Grant("table", table, role, runtime, None, fn.name))
        out.append(Grant("service", fn.cloud_name, INVOKER_ROLE, trigger, None, fn.name))
        for service in fn.invokes:  # the target checks the OIDC token the runtime account presents
            out.append(Grant("run_service", service, INVOKER_ROLE, runtime, None, fn.name))
    return tuple(out)


def _consumer_urls(definition: PipelineDefinition, function: str) -> tuple[tuple[str, str], ...]:
    """Consumer URLs a function calls (``[transitions.delivery.http]`` with a ``url``): the transition
    itself and the monitor, which evaluates every transition. Without a ``url`` in the definition the
    operator sets the variable by hand (deploy uses --update-env-vars, which keeps it)."""
    transitions = [t for t in definition.transitions if t.name == function]
    monitor = any(s.function == function and s.payload == "MonitorTick" for s in definition.schedules.values())
    if not transitions and monitor:
        transitions = list(definition.transitions)  # the monitor evaluates every transition
    return tuple(
        (t.delivery.http.url_env, t.delivery.http.url) for t in transitions if t.delivery.http and t.delivery.http.url
    )
