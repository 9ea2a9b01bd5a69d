"""The deployment model (``deploy.spec``) derived from the packaged pipeline definition. Pure: no cloud, no CLI."""

from __future__ import annotations

import ast
import json
import re
import tomllib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from unittest.mock import MagicMock

import pytest

from deploy.plan import build_plan
from deploy.spec import (
    FIRESTORE_INDEXES,
    PUBSUB_AGENT,
    TABLE_READER_ROLE,
    TABLE_SPEC_DIR,
    TABLE_WRITER,
    ClosureFacts,
    DeploymentSpec,
    build_spec,
    closure_facts,
    expected_grants,
    firestore_ttls,
    gate_read_tables,
    table_access,
    trigger_account_id,
)
from shared.contracts.messages import MonitorTick, RetryTick, ScheduleTick
from shared.errors import DefinitionError
from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, PipelineDefinition, parse_definition

REPO = Path(__file__).resolve().parents[2]
PROJECT = "my-proj"
OVERPRIVILEGED = {
    "roles/editor",
    "roles/owner",
    "roles/viewer",
    "roles/iam.serviceAccountAdmin",
    "roles/pubsub.admin",
    "roles/bigquery.admin",
    "roles/datastore.owner",
}


def function_dirs() -> list[str]:
    return sorted(p.name for p in (REPO / "functions").iterdir() if p.is_dir() and not p.name.startswith(("_", ".")))


# -- functions and topics -------------------------------------------------------------------------
def test_every_function_directory_is_deployed_exactly_once(spec: DeploymentSpec) -> None:
    names = [fn.name for fn in spec.functions]
    assert len(names) == len(set(names))
    assert sorted(names) == function_dirs()
    for fn in spec.functions:
        assert (REPO / "functions" / fn.name / "main.py").is_file()
    cloud_names = [fn.cloud_name for fn in spec.functions]
    assert len(set(cloud_names)) == len(cloud_names)


def test_every_topic_of_the_definition_and_one_dead_letter_topic_per_function(
    spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    wanted = set()
    for phase in definition.phases:
        wanted.update(t for t in (phase.completion_topic, phase.trigger_topic, phase.retry_topic) if t)
    wanted.update(schedule.topic for schedule in definition.schedule_entries().values())
    wanted.update(trigger.topic for trigger in definition.timed_triggers())  # what sensors publish to
    wanted.update(trigger.tick_topic for trigger in definition.timed_triggers())  # what runs a sensor's function
    # what the dispatcher publishes its Pub/Sub jobs to (a sensor slot: its tick topic)
    wanted.update(j.pubsub.topic for j in definition.all_jobs() if j.pubsub is not None and j.dispatched)
    dead_letters = [fn.dead_letter_topic for fn in spec.functions]
    assert len(set(dead_letters)) == len(spec.functions)
    for fn in spec.functions:
        assert fn.dead_letter_topic == fn.trigger_topic + definition.deploy.dead_letter_suffix
    assert set(spec.topics) == wanted | set(dead_letters)
    assert list(spec.topics) == sorted(set(spec.topics))


def test_each_function_is_triggered_by_its_source(spec: DeploymentSpec, definition: PipelineDefinition) -> None:
    for transition in definition.transitions:
        assert spec.function(transition.name).trigger_topic == definition.source_topic(transition)
    for schedule in definition.schedule_entries().values():  # the monitor, auto-retry, the dispatcher
        assert schedule.function is not None
        assert spec.function(schedule.function).trigger_topic == schedule.topic
    assert spec.function("schedule_dispatcher").trigger_topic == definition.dispatcher.tick_topic
    for trigger in definition.timed_triggers():  # a sensor's function: the tick the dispatcher publishes per slot
        assert spec.function(trigger.function).trigger_topic == trigger.tick_topic
    triggers = [fn.trigger_topic for fn in spec.functions]
    assert len(set(triggers)) == len(triggers)  # one function per trigger topic


def test_service_accounts_are_one_per_function_and_valid_ids(spec: DeploymentSpec) -> None:
    accounts = [fn.service_account for fn in spec.functions]
    assert len(set(accounts)) == len(accounts)
    for account in accounts:
        assert 6 <= len(account) <= 30 and account[0].isalpha() and account[-1] != "-"
        assert set(account) <= set("abcdefghijklmnopqrstuvwxyz0123456789-")


def test_runtime_settings_come_from_the_definition(spec: DeploymentSpec, definition: PipelineDefinition) -> None:
    for fn in spec.functions:
        settings = definition.deploy.settings_for(fn.name)
        assert (fn.memory, fn.timeout_seconds, fn.max_instances) == (
            settings.memory,
            settings.timeout_seconds,
            settings.max_instances,
        )
        assert fn.retry is True
        assert dict(fn.env) == {"GOOGLE_CLOUD_PROJECT": PROJECT, "PYDANTIC_DISABLE_PLUGINS": "__all__"}
        # only the dispatcher gets the project number (apply looks it up): its jobs' Cloud Run URLs name it
        assert fn.env_lookups == ((("GOOGLE_CLOUD_PROJECT_NUMBER", "PROJECT_NUMBER"),) if fn.invokes else ())
    assert spec.function("phase_transition_monitor").max_instances == 1
    assert spec.function("auto_retry_processor").max_instances == 1


def test_the_dispatchers_timeout_and_instances_fit_a_minute_tick(
    spec: DeploymentSpec, definition: PipelineDefinition, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A tick's budget (0.8 x the timeout, shared/schedules/runtime.py) holds an HTTP job's default
    attempt, and ends before the slot's claim lease (counted from the tick) expires: a later tick never
    takes over a slot that still runs. Ticks may overlap (each slot is claimed once), so one slow job
    does not hold up the others: more than one instance, and enough for every tick a budget spans."""
    from shared.pipeline.definition import HttpTarget
    from shared.schedules import runtime

    dispatcher = spec.function("schedule_dispatcher")
    assert (dispatcher.timeout_seconds, dispatcher.max_instances) == (300, 5)
    monkeypatch.setenv("GOOGLE_CLOUD_PROJECT", PROJECT)
    monkeypatch.setattr(runtime, "firestore_client", lambda project: MagicMock())  # no client: the budget only
    budget = runtime.build_dispatcher(definition=definition, environ={"GOOGLE_CLOUD_PROJECT": PROJECT}).budget_seconds
    assert budget == 0.8 * dispatcher.timeout_seconds
    default_attempt = HttpTarget.model_fields["timeout_seconds"].default
    assert default_attempt <= budget < definition.dispatcher.lease_seconds - 30
    tick = 60  # "* * * * *"
    assert dispatcher.max_instances >= -(-budget // tick) + 1


# -- least privilege -------------------------------------------------------------------------------
def test_no_function_gets_a_broad_role(spec: DeploymentSpec) -> None:
    for fn in spec.functions:
        roles = set(fn.project_roles) | {role for _, role in fn.table_roles}
        assert not roles & OVERPRIVILEGED, (fn.name, roles & OVERPRIVILEGED)
    plan_roles = {
        token.removeprefix("--role=")
        for step in build_plan(spec)
        for command in step.commands()
        for token in command
        if isinstance(token, str) and token.startswith("--role=")
    }
    assert not plan_roles & OVERPRIVILEGED
    assert "roles/editor" not in plan_roles and "roles/owner" not in plan_roles


def test_a_transition_publishes_only_its_target_trigger_topic_and_the_outbox_nudge(
    spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    nudge = definition.outbox_nudge_topic()
    assert nudge == definition.schedules["auto_retry"].topic  # the RetryTick schedule's topic
    for transition in definition.transitions:
        assert set(spec.function(transition.name).publishes) == {definition.target_topic(transition), nudge}


def test_the_monitor_publishes_trigger_topics_and_auto_retry_the_retry_topics(
    spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    triggers = {definition.target_topic(t) for t in definition.transitions}
    retry_topics = {p.retry_topic for p in definition.phases if p.retry_topic}
    # the monitor re-evaluates transitions, which nudge auto-retry after writing the outbox
    assert set(spec.function("phase_transition_monitor").publishes) == triggers | {definition.outbox_nudge_topic()}
    assert set(spec.function("auto_retry_processor").publishes) == retry_topics
    for fn in spec.functions:  # nobody publishes to a completion topic (that is the processors' job)
        assert not set(fn.publishes) & {p.completion_topic for p in definition.phases}


def test_bigquery_roles_follow_the_bundle_closure(definition: PipelineDefinition, spec: DeploymentSpec) -> None:
    writer = TABLE_WRITER.name(PROJECT)
    for fn in spec.functions:
        if "google-cloud-bigquery" in closure_facts(fn.name).distributions:
            assert "roles/bigquery.jobUser" in fn.project_roles
            assert fn.table_roles  # it writes a table (outbox delivery, queue) or reads its gates' tables
        else:  # a gateless transition: no BigQuery role at all
            assert not any(role.startswith("roles/bigquery.") for role in fn.project_roles), fn.name
            assert fn.table_roles == ()
    assert "google-cloud-bigquery" not in closure_facts("phase5_to_phase6").distributions
    assert not [t for t, role in spec.function("phase3_to_phase4").table_roles if role == writer]  # reads only

    def without_bigquery(function: str) -> ClosureFacts:
        return ClosureFacts(
            frozenset({"google-cloud-firestore", "google-cloud-pubsub"}), frozenset({f"functions.{function}.main"})
        )

    lean = build_spec(definition, PROJECT, facts=without_bigquery)
    for fn in lean.functions:
        assert not any(role.startswith("roles/bigquery.") for role in fn.project_roles), fn.project_roles
        assert fn.table_roles == ()
        assert "roles/datastore.user" in fn.project_roles
    assert lean.custom_roles == ()
    steps = build_plan(lean)
    assert not any(step.function and command[0] == "bq" for step in steps for command in step.commands()), (
        "a function without BigQuery in its bundle got a table binding"
    )


def test_each_function_writes_exactly_the_tables_its_modules_write(
    definition: PipelineDefinition, spec: DeploymentSpec
) -> None:
    s, r = definition.pipeline, definition.retry
    log, queue = f"{s.dataset}.{s.phase_execution_log_table}", f"{s.dataset}.{r.queue_table}"
    conflicts = f"{s.dataset}.{r.conflict_log_table}"
    written = {
        fn.name: {t for t, role in fn.table_roles if role == TABLE_WRITER.name(PROJECT)} for fn in spec.functions
    }
    for transition in definition.transitions:  # log rows and retry hand-offs stay in the Firestore outbox
        assert written[transition.name] == set(), transition.name
    assert written["phase_transition_monitor"] == {log, queue, conflicts}  # delivers the outbox every pass
    assert written["auto_retry_processor"] == {log, queue, conflicts}  # delivers it on every tick and nudge
    for trigger in definition.timed_triggers():
        assert written[trigger.function] == {log}
    assert written["schedule_dispatcher"] == {log}  # each slot's phase_execution_log row
    unavailable = definition.games.unavailable_table
    assert not any(unavailable in w for w in written.values())  # written by phasectl (the operator) only


def test_the_table_map_covers_every_module_that_names_a_table(
    spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    """A module of a bundle that names a table setting must be in ``deploy.spec.table_access`` (or be the
    gates' or sensors' SQL, whose tables the definition lists), or its function would lack the right."""
    settings = re.compile(
        r"\b(phase_execution_log_table|queue_table|conflict_log_table|unavailable_table|schedule_table|"
        r"boxscore_sources|read_tables|insert_rows_json)\b"
    )
    derived = {"shared.orchestration.gate_queries", "shared.orchestration.timed", "shared.orchestration.schedule_sql"}
    derived.add("shared.orchestration.execution_log")  # builds the rows; outbox/timed_runtime name the table
    derived.add("shared.orchestration.trigger_attempt")  # boxscore_sources[0].processor: a processor's name
    modules = {m for fn in spec.functions for m in closure_facts(fn.name).modules if m.startswith("shared.")}
    access = table_access(definition)
    for module in sorted(modules):
        path = REPO / Path(*module.split("."))
        source = (path / "__init__.py" if path.is_dir() else path.with_suffix(".py")).read_text()
        code = "\n".join(line for line in source.splitlines() if not line.lstrip().startswith("#"))
        if module.startswith("shared.pipeline.") or not settings.search(code):  # the definition declares them
            continue
        assert module in access or module in derived, f"{module} names a table: add it to deploy.spec.table_access"
    assert set(access) <= modules | {"shared.monitor.checks"}, set(access) - modules


def test_readers_read_only_their_gates_and_sensors_tables(spec: DeploymentSpec, definition: PipelineDefinition) -> None:
    raw = set(spec.read_tables)
    readers = {fn.name for fn in spec.functions if any(t in raw for t, _ in fn.table_roles)}
    gated = {t.name for t in definition.transitions if t.gates}
    sensing = {t.function for t in definition.timed_triggers() if t.conditions}
    # auto-retry reads a date's schedule, boxscores and marks: a postponed game is never retried (L29)
    assert readers == gated | sensing | {"phase_transition_monitor", "auto_retry_processor"}
    games = definition.games
    retry_reads = {t for t, role in spec.function("auto_retry_processor").table_roles if role == TABLE_READER_ROLE}
    assert {games.schedule_table, games.unavailable_table, *(b.table for b in games.boxscore_sources)} <= retry_reads
    for transition in definition.transitions:
        fn = spec.function(transition.name)
        written = {t for t, role in fn.table_roles if role == TABLE_WRITER.name(PROJECT)}
        read = {t for t, role in fn.table_roles if role == TABLE_READER_ROLE}
        assert read == gate_read_tables(definition, transition) - written, transition.name
    for fn in spec.functions:
        for table, role in fn.table_roles:
            if table in raw:
                assert role == TABLE_READER_ROLE  # read only: the processors own the raw data
    schedule = definition.games.schedule_table
    assert (schedule, TABLE_READER_ROLE) in spec.function("phase2_to_phase3").table_roles
    # no gates: it reads nothing, writes nothing, and ships no BigQuery at all
    assert spec.function("phase5_to_phase6").table_roles == ()
    assert not [r for r in spec.function("phase5_to_phase6").project_roles if r.startswith("roles/bigquery")]


def test_no_pubsub_in_the_bundle_means_no_publisher_role(definition: PipelineDefinition) -> None:
    def firestore_only(function: str) -> ClosureFacts:
        return ClosureFacts(frozenset({"google-cloud-firestore"}), frozenset())

    for fn in build_spec(definition, PROJECT, facts=firestore_only).functions:
        assert fn.publishes == ()
        assert fn.project_roles == ("roles/datastore.user", "roles/logging.logWriter")


def test_only_the_monitor_may_read_the_dead_letter_subscriptions(spec: DeploymentSpec) -> None:
    monitor = spec.function("phase_transition_monitor")
    assert monitor.subscribes == tuple(fn.dead_letter_subscription for fn in spec.functions)
    assert "roles/pubsub.subscriber" not in monitor.project_roles  # on those subscriptions only
    for fn in spec.functions:
        if fn is not monitor:
            assert fn.subscribes == (), fn.name
    member = f"--member=serviceAccount:{monitor.service_account_email(PROJECT)}"
    granted = [
        command
        for step in build_plan(spec)
        for command in step.commands()
        if member in command and "--role=roles/pubsub.subscriber" in command
    ]
    # on the subscriptions, never project-wide
    assert {c[:4] for c in granted} == {("gcloud", "pubsub", "subscriptions", "add-iam-policy-binding")}
    assert sorted(str(c[4]) for c in granted) == sorted(monitor.subscribes)


# -- Firestore TTL policies (lesson L25) -------------------------------------------------------------
def test_every_collection_group_the_package_writes_has_a_ttl_policy(
    spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    r = definition.retention
    assert {(t.collection_group, t.field, t.days) for t in spec.firestore_ttls} == {
        (definition.pipeline.state_collection, r.expiry_field, r.state_days),
        ("completions", r.expiry_field, r.state_days),
        ("claims", r.expiry_field, r.state_days),
        (definition.pipeline.outbox_collection, r.expiry_field, r.outbox_days),
        (definition.pipeline.quarantine_collection, r.expiry_field, r.quarantine_days),
        (definition.monitor.alert_collection, r.expiry_field, r.alerts_days),
        (definition.pipeline.audit_collection, r.expiry_field, r.audit_days),
        ("trigger_inbox", r.expiry_field, r.inbox_days),
        (definition.dispatcher.runs_collection, r.expiry_field, r.state_days),
        (definition.dispatcher.jobs_collection, r.expiry_field, r.state_days),
        (definition.heal.gaps.queue_collection, r.expiry_field, r.state_days),
        (definition.heal.gaps.slot_collection, r.expiry_field, r.state_days),
        (definition.heal.self_heal.collection, r.expiry_field, definition.heal.self_heal.retention_days),
    }
    assert spec.firestore_ttls == firestore_ttls(definition)
    groups = [t.collection_group for t in spec.firestore_ttls]
    assert len(set(groups)) == len(groups)  # one TTL field per collection group is all Firestore allows


# Collections of the definition that need no TTL: one overwritten document per function.
NO_TTL = {"heartbeat_collection"}


def test_every_collection_the_definition_names_is_covered(definition: PipelineDefinition) -> None:
    """A new ``*_collection`` setting needs a TTL policy in deploy.spec (or a reason to be in NO_TTL)."""
    groups = {t.collection_group for t in firestore_ttls(definition)}
    for section in (definition.pipeline, definition.monitor, definition.dispatcher):
        for name, value in section.model_dump().items():
            if name.endswith("_collection") and name not in NO_TTL:
                assert value in groups, f"{type(section).__name__}.{name} = {value!r} has no TTL policy"


def test_ttl_policies_follow_a_renamed_definition() -> None:
    data = tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())
    data["pipeline"]["state_collection"] = "transitions_x"
    data["pipeline"]["quarantine_collection"] = "quarantine_x"
    data["monitor"]["alert_collection"] = "alerts_x"
    data["retention"].update(expiry_field="purge_at", quarantine_days=7)
    ttls = {t.collection_group: t for t in firestore_ttls(parse_definition(data))}
    assert {"transitions_x", "quarantine_x", "alerts_x", "completions"} <= set(ttls)
    assert {t.field for t in ttls.values()} == {"purge_at"}
    assert ttls["quarantine_x"].days == 7


# -- scheduler jobs ---------------------------------------------------------------------------------
def test_scheduler_jobs(spec: DeploymentSpec, definition: PipelineDefinition) -> None:
    """Cloud Scheduler holds the [schedules] jobs and the dispatcher's tick; no [[jobs]] entry or sensor slot."""
    jobs = {job.name: job for job in spec.jobs}
    assert set(jobs) == {"phase-transition-monitor", "auto-retry-processor-trigger", "schedule-dispatcher-tick"}
    assert not set(jobs) & {job.name for job in definition.all_jobs()}
    assert spec.defined_jobs == tuple(sorted(jobs))
    assert {j.name for j in spec.dispatched_jobs} == {j.name for j in definition.all_jobs()}
    assert spec.dispatcher_job == "schedule-dispatcher-tick"
    tick = jobs["schedule-dispatcher-tick"]
    assert (tick.cron, tick.topic, tick.timezone, tick.function) == (
        "* * * * *",
        "schedule-dispatcher-tick",
        "UTC",
        "schedule_dispatcher",
    )
    assert ScheduleTick.model_validate_json(tick.body) == ScheduleTick()
    monitor, retry = jobs["phase-transition-monitor"], jobs["auto-retry-processor-trigger"]
    assert (monitor.cron, monitor.topic, monitor.timezone, monitor.function) == (
        "*/10 * * * *",
        "phase-transition-monitor-trigger",
        "America/New_York",
        "phase_transition_monitor",
    )
    assert (retry.cron, retry.topic, retry.timezone, retry.function) == (
        "*/15 * * * *",
        "auto-retry-trigger",
        "America/New_York",
        "auto_retry_processor",
    )
    assert MonitorTick.model_validate_json(monitor.body) == MonitorTick()
    assert RetryTick.model_validate_json(retry.body) == RetryTick()
    for job in spec.jobs:
        assert job.topic in spec.topics
        assert job.function is not None and spec.function(job.function).trigger_topic == job.topic


# -- tables ------------------------------------------------------------------------------------------
def test_tables_and_partitioning_come_from_the_table_specs(spec: DeploymentSpec) -> None:
    assert [t.table for t in spec.tables] == [
        "phase_execution_log",
        "failed_processor_queue",
        "streaming_conflict_log",
        "game_unavailable",
    ]
    for table in spec.tables:
        raw = json.loads((TABLE_SPEC_DIR / f"{table.table}.json").read_text())
        assert table.spec_file == TABLE_SPEC_DIR / f"{table.table}.json"
        assert table.partition_field == raw["time_partitioning"]["field"]
        assert table.partition_expiration_days == raw["time_partitioning"].get("expiration_days")
        assert table.clustering_fields == tuple(raw.get("clustering_fields", ()))
        assert list(table.schema) == raw["schema"]
        assert table.partition_field in {f["name"] for f in table.schema}
        assert table.dataset in spec.datasets
    assert spec.datasets == ("nba_orchestration",)
    assert "nba_raw" in spec.read_datasets and "nba_raw" not in spec.datasets  # never created by the deploy


def test_every_table_spec_file_is_deployed(spec: DeploymentSpec) -> None:
    assert sorted(p.stem for p in TABLE_SPEC_DIR.glob("*.json")) == sorted(t.table for t in spec.tables)


# -- one function ------------------------------------------------------------------------------------
def test_only_limits_the_deployment_to_one_function(spec: DeploymentSpec) -> None:
    assert spec.only(None) is spec
    one = spec.only("phase5_to_phase6")
    fn = spec.function("phase5_to_phase6")
    assert one.functions == (fn,)
    assert one.jobs == ()
    assert set(one.topics) == {fn.trigger_topic, fn.dead_letter_topic, *fn.publishes}
    assert (one.apis, one.datasets, one.tables, one.firestore_indexes, one.firestore_ttls) == ((), (), (), (), ())
    assert (one.project, one.region) == (spec.project, spec.region)

    monitor = spec.only("phase-transition-monitor")  # the Cloud Functions name works too
    assert [f.name for f in monitor.functions] == ["phase_transition_monitor"]
    assert [j.name for j in monitor.jobs] == ["phase-transition-monitor"]
    # the whole definition's jobs stay known (a zombie is one of none of them); zombies are reported for
    # the whole deployment or the dispatcher alone (a zombie of a dispatched job runs it twice)
    dispatcher = spec.only("schedule_dispatcher")
    assert [j.name for j in dispatcher.jobs] == ["schedule-dispatcher-tick"]
    for one_fn in (one, monitor, dispatcher):
        assert (one_fn.defined_jobs, one_fn.dispatched_jobs) == (spec.defined_jobs, spec.dispatched_jobs)
    assert (spec.zombie_scope, dispatcher.zombie_scope, one.zombie_scope, monitor.zombie_scope) == (
        True,
        True,
        False,
        False,
    )
    with pytest.raises(KeyError, match="no function 'nope'"):
        spec.only("nope")


# -- settings guards ---------------------------------------------------------------------------------
def test_max_delivery_attempts_is_within_pubsub_limits(spec: DeploymentSpec) -> None:
    assert 5 <= spec.max_delivery_attempts <= 100
    data = tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())
    for bad in (4, 101):
        data["deploy"]["max_delivery_attempts"] = bad
        with pytest.raises(DefinitionError, match="max_delivery_attempts"):
            parse_definition(data)


def test_a_region_flag_overrides_the_definition(definition: PipelineDefinition) -> None:
    assert build_spec(definition, PROJECT).region == definition.deploy.region
    assert build_spec(definition, PROJECT, region="europe-west1").region == "europe-west1"


# -- Firestore: no query may need a composite index that the deployment does not create -------------
@dataclass(frozen=True)
class FieldUse:
    where: str
    field: str  # "__name__" for FieldPath.document_id(), "<expr>" when not a literal

    def render(self) -> str:
        return f"{self.where}: {self.field}"


COMPARISONS = {"<", "<=", "==", ">", ">=", "!=", "in", "not-in", "array-contains", "array-contains-any"}


def _field(node: ast.expr) -> str:
    if (
        isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and node.func.attr == "document_id"
        and isinstance(node.func.value, ast.Name)
        and node.func.value.id == "FieldPath"
    ):
        return "__name__"
    if isinstance(node, ast.Constant) and isinstance(node.value, str):
        return node.value
    return f"<{ast.unparse(node)}>"


def _name(func: ast.expr) -> str:
    if isinstance(func, ast.Attribute):
        return func.attr
    return func.id if isinstance(func, ast.Name) else ""


def firestore_field_uses(source: str, filename: str) -> Iterator[FieldUse]:
    """The fields Firestore queries in ``source`` filter or order on.

    ``FieldFilter(field, op, value)`` anywhere; ``.where(field, op, value)`` (the positional form,
    recognised by its comparison operator); ``.order_by(field, ...)``. ``numpy.where(a, b, c)``
    and the like are not queries and are skipped.
    """
    for node in ast.walk(ast.parse(source, filename)):
        if not isinstance(node, ast.Call):
            continue
        at = f"{filename}:{node.lineno}"
        name = _name(node.func)
        if name == "FieldFilter" and node.args:
            yield FieldUse(at, _field(node.args[0]))
        elif (
            name == "where"
            and isinstance(node.func, ast.Attribute)
            and len(node.args) == 3
            and isinstance(node.args[1], ast.Constant)
            and node.args[1].value in COMPARISONS
        ):
            yield FieldUse(at, _field(node.args[0]))
        elif name == "order_by" and isinstance(node.func, ast.Attribute) and node.args:
            yield FieldUse(at, _field(node.args[0]))


# Queries with one equality filter on one field and no order_by: Firestore's automatic single-field
# index serves them (a composite index of one field cannot even be created). Each is named here, by
# file and field, so a new one (or an order_by added to one) is looked at.
SINGLE_FIELD = {("shared/schedules/runs.py", "status")}  # ScheduleRuns.waiting_for_retry


def unindexed(uses: list[FieldUse]) -> list[FieldUse]:
    """Uses on a field other than the document id that no ``FIRESTORE_INDEXES`` entry covers."""
    indexed = {path for index in FIRESTORE_INDEXES for path, _ in index.fields}
    return [
        u
        for u in uses
        if u.field != "__name__" and u.field not in indexed and (u.where.split(":")[0], u.field) not in SINGLE_FIELD
    ]


def scanned_sources() -> Iterator[Path]:
    for top in ("shared", "functions"):
        yield from sorted((REPO / top).rglob("*.py"))


def test_every_firestore_query_filters_on_document_ids_or_has_an_index() -> None:
    uses = [
        use for path in scanned_sources() for use in firestore_field_uses(path.read_text(), str(path.relative_to(REPO)))
    ]
    assert any(u.where.startswith("shared/monitor/transition_dates.py") for u in uses), "the scan found no query at all"
    missing = unindexed(uses)
    assert not missing, (
        "Firestore queries on fields other than the document id need a composite index in production; "
        "add it to deploy.spec.FIRESTORE_INDEXES (or query by document id):\n  "
        + "\n  ".join(u.render() for u in missing)
    )


def test_the_firestore_scan_catches_a_field_query() -> None:
    source = """
from google.cloud.firestore_v1.base_query import FieldFilter
from google.cloud.firestore_v1.field_path import FieldPath
import numpy as np

col.where(filter=FieldFilter(FieldPath.document_id(), ">=", start)).stream()
col.where(filter=FieldFilter("status", "==", "triggered")).stream()
col.where("game_date", ">=", "2026-01-01").order_by("updated_at").stream()
flt = FieldFilter(field, "==", 1)
np.where(mask, a, b)
client.list_entries(filter_=flt, order_by="timestamp desc")
"""
    found = unindexed(list(firestore_field_uses(source, "example.py")))
    assert sorted(u.field for u in found) == sorted(["status", "game_date", "updated_at", "<field>"]), found


# -- identities, secrets, grants ---------------------------------------------------------------------
def test_each_function_has_a_trigger_identity_apart_from_its_runtime_account(spec: DeploymentSpec) -> None:
    ids = [a for fn in spec.functions for a in (fn.service_account, fn.trigger_account)]
    assert len(set(ids)) == len(ids)
    for fn in spec.functions:
        assert fn.trigger_account == trigger_account_id(fn.name) == f"{fn.service_account}-inv"
        assert 6 <= len(fn.trigger_account) <= 30 and re.fullmatch(r"[a-z][a-z0-9-]*[a-z0-9]", fn.trigger_account)
    assert trigger_account_id("a_function_with_a_very_long_name_indeed") == "a-function-with-a-very-lon-inv"


def test_the_webhook_is_a_secret_of_the_functions_that_ship_the_module_reading_it(
    spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    (secret,) = spec.secrets
    assert (secret.secret_id, secret.env, secret.readers) == (
        "slack-webhook",
        definition.monitor.slack_webhook_env,
        ("phase_transition_monitor",),
    )
    assert "slack_webhook_env" in (REPO / "shared" / "monitor" / "alerts.py").read_text()  # the module that reads it
    for fn in spec.functions:
        assert fn.secrets == ((secret.env, secret.secret_id),) if fn.name in secret.readers else fn.secrets == ()
        assert fn.remove_env == (secret.env,)

    def no_alerts(function: str) -> ClosureFacts:
        facts = closure_facts(function)
        return ClosureFacts(facts.distributions, facts.modules - {"shared.monitor.alerts"})

    bare = build_spec(definition, PROJECT, facts=no_alerts)
    assert bare.secrets == () and all(fn.secrets == () for fn in bare.functions)


def test_the_grants_are_scoped(spec: DeploymentSpec) -> None:
    grants = expected_grants(spec)
    assert len(set(grants)) == len(grants)
    for grant in grants:
        if (
            grant.kind == "project"
        ):  # project-wide: only the runtime accounts' logging, jobs and (conditioned) Firestore
            assert grant.role in ("roles/logging.logWriter", "roles/bigquery.jobUser", "roles/datastore.user")
            assert (grant.condition is not None) == (grant.role == "roles/datastore.user")
            assert grant.member != PUBSUB_AGENT
        if grant.role == "roles/iam.serviceAccountTokenCreator":
            assert grant.kind == "service_account" and grant.member == PUBSUB_AGENT
            assert grant.resource == spec.function(str(grant.function)).trigger_account_email(PROJECT)
    for fn in spec.functions:
        trigger = f"serviceAccount:{fn.trigger_account_email(PROJECT)}"
        assert [(g.kind, g.resource, g.role) for g in grants if g.member == trigger] == [
            ("service", fn.cloud_name, "roles/run.invoker")
        ]
        runtime = f"serviceAccount:{fn.service_account_email(PROJECT)}"
        # a runtime account invokes nothing but the Cloud Run services its jobs call (the dispatcher's)
        invoking = [(g.kind, g.resource) for g in grants if g.member == runtime and g.role == "roles/run.invoker"]
        assert invoking == [("run_service", service) for service in fn.invokes], fn.name
    assert [fn.name for fn in spec.functions if fn.invokes] == ["schedule_dispatcher"]
    assert spec.firestore_condition.expression == 'resource.name == "projects/my-proj/databases/(default)"'


# -- the schedule dispatcher -------------------------------------------------------------------------
def test_the_dispatcher_publishes_its_jobs_topics_and_invokes_only_the_services_its_jobs_call(
    spec: DeploymentSpec, definition: PipelineDefinition
) -> None:
    dispatched = [j for j in definition.all_jobs() if j.dispatched]
    fn = spec.function("schedule_dispatcher")
    assert set(fn.publishes) == {j.pubsub.topic for j in dispatched if j.pubsub is not None}
    assert {t.tick_topic for t in definition.timed_triggers()} <= set(fn.publishes)  # the sensor slots
    called = {j.http.service for j in dispatched if j.http is not None and j.http.auth == "id_token"}
    assert set(fn.invokes) == called and called <= set(definition.services)
    # a service no dispatched job calls with a token is not granted (the replaced jobs' targets, unused entries)
    uncalled = set(definition.services) - called
    assert not uncalled & set(fn.invokes)
    assert set(fn.project_roles) == {"roles/bigquery.jobUser", "roles/datastore.user", "roles/logging.logWriter"}
    assert fn.subscribes == () and fn.secrets == ()
    grants = [g for g in expected_grants(spec) if g.kind == "run_service"]
    runtime = f"serviceAccount:{fn.service_account_email(PROJECT)}"
    assert {(g.resource, g.role, g.member, g.function) for g in grants} == {
        (service, "roles/run.invoker", runtime, fn.name) for service in called
    }


def test_the_dispatchers_rights_follow_the_jobs(definition: PipelineDefinition) -> None:
    """Without HTTP jobs it invokes nothing and needs no project number; without Pub/Sub jobs it publishes nothing."""
    data = tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())
    data["jobs"] = [j for j in data.get("jobs", []) if "pubsub" in j]
    data["sensors"] = []
    lean = build_spec(parse_definition(data), PROJECT)
    fn = lean.function("schedule_dispatcher")
    assert fn.invokes == () and fn.env_lookups == ()
    assert fn.publishes == tuple(sorted({j["pubsub"]["topic"] for j in data["jobs"]}))
    assert not [g for g in expected_grants(lean) if g.kind == "run_service"]
