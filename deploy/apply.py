"""``phasectl deploy apply`` and ``verify``: run the plan idempotently, then check what is deployed.

Both talk to Google Cloud only through the ``gcloud`` and ``bq`` commands on ``PATH`` (a
``Runner``), so the tests put a recording fake there, and an operator sees in the plan exactly
what apply runs.

Cloud Scheduler is compared as a whole (``verify_scheduler``): one ``jobs list`` of the region
against the definition's jobs, one row per job in one table: ``MISSING``, ``ZOMBIE`` (a job the
definition does not hold: the replaced system's, or an earlier per-slot job the dispatcher now
runs, which would run twice), ``CHANGED``, ``PAUSED`` (drift: verify fails, the row names the
command that repairs it) and ``OVERRIDE`` (an operator's season pause or resume: informational).
The season overrides are the one thing verify reads outside ``gcloud``: a Firestore document,
through the caller's reader (``phasectl deploy verify``).
"""

from __future__ import annotations

import base64
import binascii
import json
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

from deploy.plan import (
    Command,
    Step,
    policy_command,
    remove_command,
    render_command,
    resolve,
    scheduler_create_command,
    scheduler_delete_command,
    scheduler_list_command,
    scheduler_resume_command,
    scheduler_update_command,
    schema_file,
    secret_add_version_command,
    secret_step,
    secret_version_command,
    ttl_list_command,
)
from deploy.spec import (
    INVOKER_ROLE,
    PROJECT_NUMBER_VAR,
    PUBSUB_AGENT,
    TOKEN_CREATOR_ROLE,
    Condition,
    DeploymentSpec,
    FunctionSpec,
    Grant,
    SchedulerJobSpec,
    expected_grants,
)
from shared.printable import one_line

if TYPE_CHECKING:
    from shared.pipeline.definition import PipelineDefinition

NOT_FOUND = re.compile(r"NOT_FOUND|not found|does not exist|404", re.IGNORECASE)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], Result]
Feeder = Callable[[Sequence[str], bytes], Result]  # a command with bytes on its stdin (a secret's value)


def _run_process(
    argv: Sequence[str], cwd: Path, env: Mapping[str, str] | None, timeout: float, data: bytes | None
) -> Result:
    """One command as a process; ``data`` (a secret's value) goes to its stdin, never kept or echoed."""
    try:
        done = subprocess.run(
            list(argv),
            input=data,
            capture_output=True,
            timeout=timeout,
            env=dict(env) if env else None,
            check=False,
            cwd=cwd,
        )
    except FileNotFoundError as exc:
        raise DeployError(f"{argv[0]} is not installed or not on PATH (install the Google Cloud CLI)") from exc
    return Result(done.returncode, done.stdout.decode(errors="replace"), done.stderr.decode(errors="replace"))


def subprocess_runner(cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900.0) -> Runner:
    """Runs each command as a process (``gcloud`` and ``bq`` from ``PATH``) in ``cwd``."""
    return lambda argv: _run_process(argv, cwd, env, timeout, None)


def subprocess_feeder(cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 120.0) -> Feeder:
    """Runs a command with ``data`` on its stdin; nothing of ``data`` is kept or echoed."""
    return lambda argv, data: _run_process(argv, cwd, env, timeout, data)


class DeployError(Exception):
    """A command failed in a way apply must not paper over (permissions, quota, a bad value)."""


@dataclass
class ApplyReport:
    created: list[str] = field(default_factory=list)
    updated: list[str] = field(default_factory=list)
    existing: list[str] = field(default_factory=list)
    bindings: int = 0
    lookups: dict[str, str] = field(default_factory=dict)


def write_schema_files(spec: DeploymentSpec, root: Path) -> list[Path]:
    """The ``--schema`` files the table steps name: the field list of each ``deploy/bigquery`` spec."""
    written = []
    for table in spec.tables:
        path = root / schema_file(table)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(list(table.schema), indent=2, sort_keys=True) + "\n")
        written.append(path)
    return written


def apply(steps: Sequence[Step], run: Runner, out: TextIO) -> ApplyReport:
    """Describe each resource, then create or update it; run bindings; resolve lookups. Stops at the first error."""
    report = ApplyReport()
    values: dict[str, str] = {}

    def must(argv: list[str], what: str) -> Result:
        result = run(argv)
        if result.returncode != 0:
            raise DeployError(
                f"{what} failed ({result.returncode}): {render_command(tuple(argv))}: "
                f"{one_line(result.stderr or result.stdout, 400)}"
            )
        return result

    for i, step in enumerate(steps, 1):
        where = f"[{i}/{len(steps)}] {step.label}"
        if step.kind == "lookup":
            value = must(resolve(step.create, values), where).stdout.strip()
            if not value:
                raise DeployError(f"{where}: the lookup returned nothing")
            assert step.var is not None
            values[step.var] = value
            report.lookups[step.var] = value
            out.write(f"{where}: {value}\n")
            continue
        if step.kind == "binding":
            must(resolve(step.create, values), where)
            report.bindings += 1
            out.write(f"{where}: ok\n")
            continue
        if step.kind == "require":  # a precondition the operator fulfils (a secret's value)
            assert step.expect is not None and step.hint is not None
            found = run(resolve(step.create, values))
            if found.returncode != 0 and not NOT_FOUND.search(found.stderr or found.stdout):
                detail = one_line(found.stderr or found.stdout, 400)
                raise DeployError(f"{where}: failed ({found.returncode}): {detail}")
            if step.expect not in (line.strip() for line in found.stdout.splitlines()):
                raise DeployError(f"{where}: {step.hint}")
            report.existing.append(step.label)
            out.write(f"{where}: ok\n")
            continue
        if step.kind == "ensure":  # no "not found" here: the describe lists what is in place
            assert step.describe is not None and step.expect is not None
            listed = must(resolve(step.describe, values), f"{where}: describe").stdout.splitlines()
            if step.expect in (line.strip() for line in listed):
                report.existing.append(step.label)
                out.write(f"{where}: exists\n")
            else:
                must(resolve(step.create, values), where)
                report.created.append(step.label)
                out.write(f"{where}: created\n")
            continue
        assert step.describe is not None
        found = run(resolve(step.describe, values))
        if found.returncode == 0:
            if step.update is None:
                report.existing.append(step.label)
                out.write(f"{where}: exists\n")
            else:
                must(resolve(step.update, values), where)
                report.updated.append(step.label)
                out.write(f"{where}: updated\n")
        elif NOT_FOUND.search(found.stderr or found.stdout):
            must(resolve(step.create, values), where)
            report.created.append(step.label)
            out.write(f"{where}: created\n")
        else:
            raise DeployError(
                f"{where}: describe failed ({found.returncode}): {one_line(found.stderr or found.stdout, 400)}"
            )
    out.write(
        f"apply: {len(report.created)} created, {len(report.updated)} updated, {len(report.existing)} unchanged, "
        f"{report.bindings} bindings\n"
    )
    return report


# -- login and secrets ------------------------------------------------------------------------------
LOGIN_COMMAND = ("gcloud", "auth", "print-access-token", "--format=none")  # refreshes the token; prints nothing
NOT_LOGGED_IN = "not logged in: run gcloud auth login"


def logged_in(run: Runner) -> bool:
    """Whether gcloud has an active account whose credentials still refresh (missing or expired: False)."""
    return run(list(LOGIN_COMMAND)).returncode == 0


def read_secret_value(data: bytes) -> bytes:
    """The value as given on stdin, without the one line ending ``echo`` or a file adds."""
    for ending in (b"\r\n", b"\n"):
        if data.endswith(ending):
            return data[: -len(ending)]
    return data


def set_secret(spec: DeploymentSpec, secret_id: str, value: bytes, run: Runner, feed: Feeder, out: TextIO) -> None:
    """Create the secret if it is missing, then add ``value`` as its new version (through stdin).

    Nothing prints the value: it is neither an argument nor in any message.
    """
    secret = next((s for s in spec.secrets if s.secret_id == secret_id), None)
    if secret is None:
        known = ", ".join(s.secret_id for s in spec.secrets) or "none"
        raise DeployError(f"no secret {secret_id!r} in the deployment (known: {known})")
    if not value:
        raise DeployError(f"secret {secret_id}: no value on stdin (pipe it in: the value is never an argument)")
    apply([secret_step(spec, secret)], run, out)
    argv = resolve(secret_add_version_command(spec, secret_id), {})
    done = feed(argv, value)
    if done.returncode != 0:
        raise DeployError(
            f"adding a version of secret {secret_id} failed ({done.returncode}): {one_line(done.stderr, 400)}"
        )
    readers = ", ".join(spec.function(r).cloud_name for r in secret.readers)
    out.write(
        f"secret {secret_id}: new version added ({secret.env} of {readers}; new instances read it, "
        f"`phasectl deploy apply --function {secret.readers[0]}` restarts them now)\n"
    )


# -- verify ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    subject: str
    ok: bool
    detail: str
    row: SchedulerRow | None = None  # a Cloud Scheduler check: shown in the scheduler table

    def render(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.subject}: {self.detail}"


def _json(run: Runner, argv: Sequence[str]) -> tuple[Any, str | None]:
    result = run(list(argv))
    if result.returncode != 0:
        return None, one_line(result.stderr or result.stdout, 400) or f"exit {result.returncode}"
    try:
        return json.loads(result.stdout or "null"), None
    except json.JSONDecodeError as exc:
        return None, f"unreadable output of {' '.join(argv[:4])}: {exc}"


def _last(path: str | None) -> str:
    return (path or "").rstrip("/").rsplit("/", 1)[-1]


@dataclass(frozen=True)
class Audit:
    """What verify compares a resource's IAM policy with: ``expected`` (role, member, condition)
    bindings, and the members whose other bindings there are extra grants."""

    spec: DeploymentSpec
    agent: str  # the Pub/Sub service agent's member (serviceAccount:service-N@gcp-sa-pubsub...)
    project_number: str = ""

    def resolve(self, member: str) -> str:
        return self.agent if member == PUBSUB_AGENT else member

    def ours(self, member: str) -> bool:
        """A function account (runtime or trigger) of this deployment, or the Pub/Sub service agent."""
        email = member.partition(":")[2].lower()
        emails = {e.lower() for fn in self.spec.functions for e in fn.account_emails(self.spec.project)}
        return email in emails or member == self.agent

    def name(self, member: str) -> str:
        if member == self.agent:
            return "the Pub/Sub service agent"
        email = member.partition(":")[2]
        return email.split("@")[0] if email.endswith(f"@{self.spec.project}.iam.gserviceaccount.com") else member


def _normal(expression: str | None) -> str | None:
    return None if expression is None else "".join(expression.split())


def _policy_bindings(policy: Any) -> list[tuple[str, str, Condition | None]]:
    out = []
    for binding in (policy or {}).get("bindings", []) if isinstance(policy, dict) else []:
        raw = binding.get("condition") or None
        condition = Condition(str(raw.get("title", "")), str(raw.get("expression", ""))) if raw else None
        out += [(str(binding.get("role")), str(m), condition) for m in binding.get("members", [])]
    return out


def audit_policy(
    audit: Audit,
    kind: str,
    resource: str,
    name: str,
    expected: Sequence[Grant],
    run: Runner,
    subject: str = "",
    fetched: tuple[Any, str | None] | None = None,
) -> Check:
    """``resource``'s policy holds every ``expected`` grant, and a function account (or the Pub/Sub
    service agent) holds nothing else there. ``name`` is how the policy and removal commands name it;
    ``fetched``: the policy as ``_json`` read it already."""
    spec = audit.spec
    subject = subject or f"IAM {kind.replace('_', ' ')} {resource}"
    policy, error = fetched or _json(run, resolve(policy_command(spec, kind, name), {}))
    if error is not None:
        return Check(subject, False, f"cannot read its IAM policy: {error}")

    def key(role: str, member: str, condition: Condition | None) -> tuple[str, str, str | None]:
        return role, member.partition(":")[2].lower() or member, _normal(condition.expression if condition else None)

    actual = _policy_bindings(policy)
    have = {key(*b) for b in actual}
    want = {key(g.role, audit.resolve(g.member), g.condition): g for g in expected}
    problems = []
    for k, grant in want.items():
        if k not in have:
            where = f" if {grant.condition.expression}" if grant.condition else ""
            problems.append(f"MISSING {grant.role}{where} for {audit.name(audit.resolve(grant.member))}")
    for role, member, condition in actual:
        if not audit.ours(member) or key(role, member, condition) in want:
            continue
        if kind == "project" and member == audit.agent and role != TOKEN_CREATOR_ROLE:
            continue  # the agent's own project roles are Google's; only project-wide token minting is ours
        if kind == "run_service" and role == INVOKER_ROLE:
            continue  # a processor's service: other functions may call it too, granted by hand (docs/deploy.md)
        where = f" if {condition.expression}" if condition else ""
        fix = render_command(remove_command(spec, kind, name, role, member, condition))
        problems.append(f"EXTRA {role}{where} for {audit.name(member)} (remove: {fix})")
    if problems:
        return Check(subject, False, "; ".join(problems))
    return Check(subject, True, f"as planned ({len(want)} grant(s) of this deployment, nothing more)")


def verify_function(spec: DeploymentSpec, fn: FunctionSpec, run: Runner, audit: Audit) -> list[Check]:
    p, region = f"--project={spec.project}", f"--region={spec.region}"
    subject = f"function {fn.cloud_name}"
    described, error = _json(
        run, ["gcloud", "functions", "describe", fn.cloud_name, "--gen2", region, p, "--format=json"]
    )
    if error is not None or not isinstance(described, dict):
        what = "not deployed" if error is None or NOT_FOUND.search(error) else "cannot describe it"
        return [Check(subject, False, f"{what}: {error}")]
    checks: list[Check] = []
    state = described.get("state")
    checks.append(Check(subject, state == "ACTIVE", f"state {state}"))
    trigger = described.get("eventTrigger") or {}
    config = described.get("serviceConfig") or {}
    email, invoker = fn.account_emails(spec.project)
    topic_ok = _last(trigger.get("pubsubTopic")) == fn.trigger_topic
    checks.append(Check(subject, topic_ok, f"trigger topic {_last(trigger.get('pubsubTopic')) or '-'}"))
    retry = trigger.get("retryPolicy")
    # an event function retries on failure, or "raise to redeliver" drops the event (L05)
    checks.append(Check(subject, retry == "RETRY_POLICY_RETRY", f"retry policy {retry} (lesson L05)"))
    account = config.get("serviceAccountEmail")
    checks.append(Check(subject, account == email, f"runs as {account}"))
    identity = trigger.get("serviceAccountEmail")
    checks.append(Check(subject, identity == invoker, f"trigger identity {identity} (invoker only)"))
    mounted = sorted(
        (str(e.get("key")), _last(str(e.get("secret", ""))), str(e.get("version")))
        for e in config.get("secretEnvironmentVariables") or []
    )
    wanted = sorted((env, secret, "latest") for env, secret in fn.secrets)
    shown = ", ".join(f"{k} from secret {s}:{v}" for k, s, v in mounted) or "none"
    checks.append(Check(subject, mounted == wanted, f"secrets {shown}"))
    variables = config.get("environmentVariables") or {}
    for name, var in fn.env_lookups:
        if var == PROJECT_NUMBER_VAR and audit.project_number:
            have = variables.get(name)
            ok = have == audit.project_number
            detail = f"{name} {have or 'unset'}" + ("" if ok else f", expected {audit.project_number} (apply sets it)")
            checks.append(Check(subject, ok, detail))
    plain = sorted(set(variables) & set(fn.remove_env))
    if plain:  # the value is never printed
        checks.append(
            Check(subject, False, f"{', '.join(plain)} is a plain environment variable (a secret's): apply removes it")
        )

    service = _last(config.get("service")) or fn.cloud_name
    grants = [g for g in expected_grants(spec) if g.function == fn.name]
    fetched = _json(run, resolve(policy_command(spec, "service", service), {}))
    invokers = [g for g in grants if g.kind == "service"]
    check = audit_policy(audit, "service", service, service, invokers, run, f"{subject} invoker", fetched)
    # without the invoker binding every event is refused at the door, with no log (L06)
    checks.append(replace(check, detail=check.detail + " (lesson L06)") if "MISSING" in check.detail else check)
    members = {m for role, m, _ in _policy_bindings(fetched[0]) if role == "roles/run.invoker"}
    if members & {"allUsers", "allAuthenticatedUsers"}:
        checks.append(Check(subject, False, "invoker granted to allUsers/allAuthenticatedUsers: unauthenticated HTTP"))

    trigger_sub: str | None = None
    if trigger.get("trigger"):
        arc, error = _json(
            run,
            [
                "gcloud",
                "eventarc",
                "triggers",
                "describe",
                str(trigger["trigger"]),
                f"--location={spec.region}",
                p,
                "--format=json",
            ],
        )
        if isinstance(arc, dict):
            trigger_sub = ((arc.get("transport") or {}).get("pubsub") or {}).get("subscription")
    subs, error = _json(run, ["gcloud", "pubsub", "topics", "list-subscriptions", fn.trigger_topic, p, "--format=json"])
    names = sorted(str(s if isinstance(s, str) else s.get("name", "")) for s in (subs or []))
    orphans = [s for s in names if trigger_sub is None or _last(s) != _last(trigger_sub)]
    if error is not None:
        checks.append(Check(f"topic {fn.trigger_topic}", False, f"cannot list subscriptions: {error}"))
    else:
        ok = len(names) == 1 and not orphans
        detail = f"{len(names)} subscription(s)" + (
            f"; orphans: {', '.join(_last(o) for o in orphans)}" if orphans else ""
        )
        checks.append(
            Check(f"topic {fn.trigger_topic}", ok, detail + " (exactly one expected: the function's trigger)")
        )
    if trigger_sub:
        described_sub, error = _json(
            run, ["gcloud", "pubsub", "subscriptions", "describe", trigger_sub, p, "--format=json"]
        )
        policy_dl = (described_sub or {}).get("deadLetterPolicy") or {} if isinstance(described_sub, dict) else {}
        dl_ok = (
            _last(policy_dl.get("deadLetterTopic")) == fn.dead_letter_topic
            and policy_dl.get("maxDeliveryAttempts") == spec.max_delivery_attempts
        )
        checks.append(
            Check(
                f"subscription {_last(trigger_sub)}",
                dl_ok,
                error
                or f"dead letters to {_last(policy_dl.get('deadLetterTopic')) or '-'} after "
                f"{policy_dl.get('maxDeliveryAttempts', '-')} attempts",
            )
        )
        mine = [g for g in grants if g.kind == "trigger_subscription"]
        checks.append(audit_policy(audit, "trigger_subscription", _last(trigger_sub), _last(trigger_sub), mine, run))
    else:
        checks.append(Check(subject, False, "no Eventarc trigger subscription found"))
    dlq, error = _json(
        run, ["gcloud", "pubsub", "subscriptions", "describe", fn.dead_letter_subscription, p, "--format=json"]
    )
    dlq_ok = isinstance(dlq, dict) and _last(dlq.get("topic")) == fn.dead_letter_topic
    checks.append(
        Check(f"subscription {fn.dead_letter_subscription}", dlq_ok, error or f"on {_last((dlq or {}).get('topic'))}")
    )
    return checks


def verify_iam(spec: DeploymentSpec, run: Runner, audit: Audit) -> list[Check]:
    """Every resource the deployment grants on (and the datasets it used to): the planned grants,
    and no other grant held by a function account (or project-wide token minting by the agent)."""
    grants = expected_grants(spec)

    def of(kind: str, resource: str) -> list[Grant]:
        return [g for g in grants if g.kind == kind and g.resource == resource]

    checks = [audit_policy(audit, "project", spec.project, spec.project, of("project", spec.project), run)]
    for fn in spec.functions:
        for email in fn.account_emails(spec.project):
            checks.append(audit_policy(audit, "service_account", email, email, of("service_account", email), run))
    for secret in spec.secrets:
        checks.append(
            audit_policy(audit, "secret", secret.secret_id, secret.secret_id, of("secret", secret.secret_id), run)
        )
        state = run(resolve(secret_version_command(spec, secret.secret_id), {}))
        value = state.stdout.strip() if state.returncode == 0 else one_line(state.stderr, 400) or "no version"
        checks.append(
            Check(
                f"secret {secret.secret_id}",
                value == "ENABLED",
                f"latest version {value}"
                + ("" if value == "ENABLED" else f" (phasectl deploy secret set {secret.secret_id})"),
            )
        )
    for topic in spec.topics:
        checks.append(audit_policy(audit, "topic", topic, topic, of("topic", topic), run))
    for fn in spec.functions:
        sub = fn.dead_letter_subscription
        checks.append(audit_policy(audit, "subscription", sub, sub, of("subscription", sub), run))
    for service in sorted({g.resource for g in grants if g.kind == "run_service"}):
        subject = f"IAM Cloud Run service {service}"
        checks.append(audit_policy(audit, "run_service", service, service, of("run_service", service), run, subject))
    tables = sorted({t.ref for t in spec.tables} | {g.resource for g in grants if g.kind == "table"})
    for table in tables:
        checks.append(audit_policy(audit, "table", table, table, of("table", table), run))
    # no function account holds a dataset-wide role (an earlier version granted dataEditor/dataViewer there)
    for dataset in sorted({*spec.datasets, *spec.read_datasets, *(t.split(".")[0] for t in tables)}):
        checks.append(audit_policy(audit, "dataset", dataset, dataset, [], run))
    for role in spec.custom_roles:
        described, error = _json(
            run, ["gcloud", "iam", "roles", "describe", role.role_id, f"--project={spec.project}", "--format=json"]
        )
        have = sorted((described or {}).get("includedPermissions") or []) if isinstance(described, dict) else []
        deleted = isinstance(described, dict) and bool(described.get("deleted"))
        ok = error is None and have == sorted(role.permissions) and not deleted
        detail = error or ("deleted" if deleted else f"permissions {', '.join(have) or '-'}")
        checks.append(Check(f"custom role {role.role_id}", ok, detail))
    return checks


TTL_OK_STATES = ("ACTIVE", "CREATING")  # CREATING: new documents expire already; old ones are being scanned


def verify_ttls(spec: DeploymentSpec, run: Runner) -> list[Check]:
    """Each collection group the package writes has its TTL policy, ACTIVE or CREATING (lesson L25)."""
    if not spec.firestore_ttls:
        return []
    listed, error = _json(run, resolve(ttl_list_command(spec), {}))
    if error is not None or not isinstance(listed, list):
        detail = error or f"unexpected output of ttls list: {type(listed).__name__}"
        return [Check(f"Firestore TTL {t.collection_group}.{t.field}", False, detail) for t in spec.firestore_ttls]
    states: dict[tuple[str, str], str] = {}
    for entry in listed:
        if not isinstance(entry, dict):
            continue
        # projects/P/databases/(default)/collectionGroups/<group>/fields/<field>
        parts = str(entry.get("name", "")).split("/")
        if len(parts) >= 8 and parts[2] == "databases" and parts[3] == "(default)" and parts[-2] == "fields":
            state = (entry.get("ttlConfig") or {}).get("state") or "STATE_UNSPECIFIED"
            states[(parts[-3], parts[-1])] = str(state)
    checks = []
    for ttl in spec.firestore_ttls:
        state = states.get((ttl.collection_group, ttl.field))
        others = sorted(f for g, f in states if g == ttl.collection_group and f != ttl.field)
        if state is None:
            detail = "MISSING: documents never expire (lesson L25)" + (
                f"; the group's TTL field is {', '.join(others)}" if others else ""
            )
        elif state not in TTL_OK_STATES:
            detail = f"state {state} (re-run apply or `gcloud firestore fields ttls update ... --enable-ttl`)"
        else:
            detail = f"state {state}, {ttl.days} days"
        checks.append(Check(f"Firestore TTL {ttl.collection_group}.{ttl.field}", state in TTL_OK_STATES, detail))
    return checks


def project_number(spec: DeploymentSpec, run: Runner) -> str:
    """The project's number (the Pub/Sub service agent's email has it); DeployError when unreadable."""
    done = run(["gcloud", "projects", "describe", spec.project, "--format=value(projectNumber)"])
    number = done.stdout.strip()
    if done.returncode != 0 or not number.isdigit():
        detail = one_line(done.stderr or done.stdout, 400) or "no number"
        raise DeployError(f"cannot read project {spec.project}: {detail}")
    return number


def verify(spec: DeploymentSpec, run: Runner, season: Sequence[SchedulerRow] = ()) -> list[Check]:
    """Every check; the Cloud Scheduler ones carry their table row (``season``: the informational
    rows of the operator's season overrides, ``season_rows``)."""
    number = project_number(spec, run)
    audit = Audit(spec, f"serviceAccount:service-{number}@gcp-sa-pubsub.iam.gserviceaccount.com", number)
    checks: list[Check] = []
    for fn in spec.functions:
        checks += verify_function(spec, fn, run, audit)
    checks += verify_iam(spec, run, audit)
    checks += verify_ttls(spec, run)
    checks += [row.check() for row in (*verify_scheduler(spec, run), *season)]
    for table in spec.tables:
        described, error = _json(run, ["bq", "show", "--format=json", f"{spec.project}:{table.ref}"])
        subject = f"table {table.ref}"
        if not isinstance(described, dict):
            checks.append(Check(subject, False, f"missing: {error}"))
            continue
        have = {
            f.get("name"): (f.get("type"), f.get("mode", "NULLABLE"))
            for f in described.get("schema", {}).get("fields", [])
        }
        want = {f["name"]: (f["type"], f.get("mode", "NULLABLE")) for f in table.schema}
        missing = sorted(set(want) - set(have))
        differ = sorted(n for n in set(want) & set(have) if have[n] != want[n])
        partition = (described.get("timePartitioning") or {}).get("field")
        problems = [f"missing columns {missing}"] if missing else []
        problems += [f"column {n} is {have[n]}, expected {want[n]}" for n in differ]
        if partition != table.partition_field:
            problems.append(f"partitioned by {partition}, expected {table.partition_field}")
        checks.append(Check(subject, not problems, "; ".join(problems) or f"schema matches ({len(want)} columns)"))
    return checks


# -- Cloud Scheduler -------------------------------------------------------------------------------
DRIFT_STATES = ("MISSING", "ZOMBIE", "CHANGED", "PAUSED")  # verify fails on each
INFO_STATES = ("OK", "OVERRIDE")
_UTC_ALIASES = frozenset({"UTC", "Etc/UTC", "Etc/GMT", "GMT", "Etc/Universal", "Universal", "Etc/Zulu", "Zulu"})
SCHEDULER_COLUMNS = ("job", "state", "expected", "actual", "fix command")
BODY_CHARS = 160  # a body in the table (the fix command carries it whole)
COLUMN_WIDTH = 60  # columns are padded to this at most


@dataclass(frozen=True)
class SchedulerRow:
    """One row of verify's scheduler table: a job and how the project holds it."""

    job: str
    state: str  # OK | MISSING | ZOMBIE | CHANGED | PAUSED | OVERRIDE | ERROR
    expected: str
    actual: str
    fix: str = "-"

    @property
    def drift(self) -> bool:
        return self.state in DRIFT_STATES

    @property
    def ok(self) -> bool:
        return self.state in INFO_STATES

    def check(self) -> Check:
        detail = f"{self.state}: expected {self.expected}; actual {self.actual}" + (
            f" (fix: {self.fix})" if self.fix != "-" else ""
        )
        return Check(f"scheduler job {self.job}", self.ok, detail, self)


def _zone(name: str | None) -> str | None:
    return "UTC" if name in _UTC_ALIASES else name


def _decoded(data: Any) -> str | None:
    """A Pub/Sub job's message body as text (the API returns it base64-encoded)."""
    if not isinstance(data, str):
        return None
    try:
        return base64.b64decode(data, validate=True).decode("utf-8", "replace")
    except (binascii.Error, ValueError):
        return data


def _same_body(expected: str, actual: str | None) -> bool:
    if actual is None:
        return False
    try:
        return bool(json.loads(expected) == json.loads(actual))
    except ValueError:
        return expected == actual


def _short(text: str, limit: int = BODY_CHARS) -> str:
    return one_line(text, limit)


def _target(job: Mapping[str, Any]) -> str:
    """Where a listed job sends: ``topic NAME`` or ``http METHOD URI`` (or what else it holds)."""
    pubsub = job.get("pubsubTarget")
    if isinstance(pubsub, dict):
        return f"topic {_last(pubsub.get('topicName')) or '-'}"
    http = job.get("httpTarget")
    if isinstance(http, dict):
        return f"http {http.get('httpMethod') or 'POST'} {http.get('uri') or '-'}"
    if isinstance(job.get("appEngineHttpTarget"), dict):
        return f"App Engine {job['appEngineHttpTarget'].get('relativeUri') or '/'}"
    return "no target"


def _describe_listed(job: Mapping[str, Any]) -> str:
    return f"{job.get('state') or '?'}, {job.get('schedule') or '-'} ({job.get('timeZone') or '-'}) → {_target(job)}"


def _describe_defined(job: SchedulerJobSpec) -> str:
    return f"ENABLED, {job.cron} ({job.timezone}) → topic {job.topic}, body {_short(job.body)}"


def _differences(job: SchedulerJobSpec, listed: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(expected, actual) per setting that differs: schedule, time zone, target, body."""
    out: list[tuple[str, str]] = []
    if listed.get("schedule") != job.cron:
        out.append((f"schedule {job.cron}", f"schedule {listed.get('schedule') or '-'}"))
    if _zone(listed.get("timeZone")) != _zone(job.timezone):
        out.append((f"time zone {job.timezone}", f"time zone {listed.get('timeZone') or '-'}"))
    target = _target(listed)
    if target != f"topic {job.topic}":
        out.append((f"topic {job.topic}", target))
    pubsub = listed.get("pubsubTarget")
    if isinstance(pubsub, dict):
        body = _decoded(pubsub.get("data"))
        if not _same_body(job.body, body):
            out.append((f"body {_short(job.body)}", f"body {_short(body) if body is not None else '-'}"))
    return out


def _fix(*commands: Command) -> str:
    return " && ".join(render_command(c) for c in commands)


def verify_scheduler(spec: DeploymentSpec, run: Runner) -> list[SchedulerRow]:
    """The region's Cloud Scheduler jobs (one ``jobs list``) against the definition's.

    Each defined job: ``OK``, ``MISSING`` (fix: create), ``CHANGED`` (schedule, time zone, topic
    or body; fix: update, or delete and create for a job that is not a Pub/Sub job) and/or
    ``PAUSED`` (fix: resume). Each other job in the region: ``ZOMBIE`` (fix: delete), noting when
    the dispatcher runs a job of that name (the Cloud Scheduler job would run it a second time).
    Zombies are not reported for one function (``--function``) other than the dispatcher.
    """
    listed, error = _json(run, resolve(scheduler_list_command(spec), {}))
    if error is not None or not isinstance(listed, list):
        detail = error or f"unexpected output of jobs list: {type(listed).__name__}"
        return [SchedulerRow(f"(all in {spec.region})", "ERROR", "the jobs can be listed", f"cannot list: {detail}")]
    found = {_last(str(j.get("name"))): j for j in listed if isinstance(j, dict) and j.get("name")}
    rows: list[SchedulerRow] = []
    for job in spec.jobs:
        have = found.get(job.name)
        if have is None:
            fix = _fix(scheduler_create_command(spec, job))
            rows.append(SchedulerRow(job.name, "MISSING", _describe_defined(job), "absent", fix))
            continue
        differences = _differences(job, have)
        state = have.get("state")
        mine: list[SchedulerRow] = []
        if differences:
            expected = "; ".join(e for e, _ in differences)
            actual = "; ".join(a for _, a in differences)
            if isinstance(have.get("pubsubTarget"), dict):
                fix = _fix(scheduler_update_command(spec, job))
            else:  # `update pubsub` cannot turn an HTTP job into a Pub/Sub job
                fix = _fix(scheduler_delete_command(spec, job.name), scheduler_create_command(spec, job))
            mine.append(SchedulerRow(job.name, "CHANGED", expected, actual, fix))
        if state == "PAUSED":
            fix = _fix(scheduler_resume_command(spec, job.name))
            mine.append(SchedulerRow(job.name, "PAUSED", "state ENABLED", "state PAUSED", fix))
        elif state != "ENABLED" and not differences:  # UPDATE_FAILED, DISABLED (by the system): update again
            fix = _fix(scheduler_update_command(spec, job))
            mine.append(SchedulerRow(job.name, "CHANGED", "state ENABLED", f"state {state or '-'}", fix))
        rows += mine or [SchedulerRow(job.name, "OK", _describe_defined(job), "as defined")]
    if spec.zombie_scope:
        dispatched = {j.name: j for j in spec.dispatched_jobs}
        tick = spec.dispatcher_job or "the dispatcher's tick"
        for name in sorted(set(found) - set(spec.defined_jobs)):
            known = dispatched.get(name)
            if known is not None and known.replaced_by:
                expected = f"absent: replaced by {_short(known.replaced_by, 120)}; delete it or its work is done twice"
            elif known is not None:
                expected = f"absent: now dispatched by {tick}: delete the Cloud Scheduler job or it runs twice"
            else:
                expected = "absent (not in the definition)"
            fix = _fix(scheduler_delete_command(spec, name))
            rows.append(SchedulerRow(name, "ZOMBIE", expected, _describe_listed(found[name]), fix))
    return rows


def season_rows(
    definition: PipelineDefinition, doc: Mapping[str, Any] | None, now: datetime, *, where: str = ""
) -> list[SchedulerRow]:
    """Informational rows: each wave (or ``all``) an operator paused or resumed, against the calendar.

    ``doc``: the overrides document (``{jobs_collection}/_season``); a pause wins over a resume.
    The calendar is the definition's seasons and waves, each job's day in its own zone.
    """
    from shared.schedules.plan import NO_OVERRIDES, SEASON_DOC, Overrides, active_on

    overrides = Overrides.from_doc(dict(doc) if doc else None)
    where = where or f"Firestore {definition.dispatcher.jobs_collection}/{SEASON_DOC}"
    last = ""
    if doc and doc.get("last_change"):
        last = f" (last change: {doc['last_change']} by {doc.get('updated_by') or '?'}"
        last += f" at {doc['updated_at'].isoformat()})" if isinstance(doc.get("updated_at"), datetime) else ")"
    rows: list[SchedulerRow] = []
    for action, keys in (("paused", overrides.paused), ("resumed", overrides.resumed)):
        for key in sorted(keys):
            jobs = [j for j in definition.all_jobs() if j.dispatched and (key == "all" or (j.wave or "-") == key)]
            by_calendar = [j.name for j in jobs if active_on(definition, j, _day(definition, j, now), NO_OVERRIDES)]
            running = [j.name for j in jobs if active_on(definition, j, _day(definition, j, now), overrides)]
            what = "all jobs" if key == "all" else "jobs without a wave" if key == "-" else f"wave {key}"
            expected = f"calendar: {len(by_calendar)} of {len(jobs)} job(s) run today"
            if action == "paused":
                against = [n for n in by_calendar if n not in running]
                actual = (
                    f"paused by an operator against the calendar: {len(against)} job(s) do not run today: "
                    f"{_names(against)}"
                    if against
                    else "paused by an operator (the calendar runs none of them today either)"
                )
            else:
                against = [n for n in running if n not in by_calendar]
                actual = (
                    f"resumed by an operator against the calendar: {len(against)} job(s) run today outside "
                    f"their season window: {_names(against)}"
                    if against
                    else "resumed by an operator (the calendar runs them today anyway, or a pause wins)"
                )
            fix = f"- (an operator's choice in {where}: phasectl season status)"
            rows.append(SchedulerRow(f"season: {what}", "OVERRIDE", expected, actual + last, fix))
    return rows


def season_error_row(definition: PipelineDefinition, error: str) -> SchedulerRow:
    """The informational row when the overrides document cannot be read (not drift: verify does not fail)."""
    from shared.schedules.plan import SEASON_DOC

    where = f"Firestore {definition.dispatcher.jobs_collection}/{SEASON_DOC}"
    return SchedulerRow("season: overrides", "OVERRIDE", f"{where} read", f"not read: {_short(error, 200)}")


def _day(definition: PipelineDefinition, job: Any, now: datetime) -> Any:
    return now.astimezone(definition.job_zone(job)).date()


def _names(names: Sequence[str], limit: int = 8) -> str:
    shown = ", ".join(names[:limit])
    return shown + (f", … ({len(names) - limit} more)" if len(names) > limit else "")


def render_scheduler_table(spec: DeploymentSpec, rows: Sequence[SchedulerRow]) -> list[str]:
    """The scheduler rows as one table (job | state | expected | actual | fix command), drift first."""
    order = {state: i for i, state in enumerate(("ERROR", *DRIFT_STATES, "OVERRIDE", "OK"))}
    ranked = sorted(rows, key=lambda r: (order.get(r.state, 0), r.job))
    drift = [r for r in rows if r.drift]
    title = f"Cloud Scheduler ({spec.region}): {len(spec.jobs)} job(s) defined, {len(drift)} drifted" + (
        " (zombies not checked for one function)" if not spec.zombie_scope else ""
    )
    cells = [SCHEDULER_COLUMNS, *((r.job, r.state, r.expected, r.actual, r.fix) for r in ranked)]
    widths = [min(COLUMN_WIDTH, max(len(c[i]) for c in cells)) for i in range(4)]  # a longer cell overflows
    lines = [title]
    for n, cell in enumerate(cells):
        lines.append(" | ".join([*(v.ljust(w) for v, w in zip(cell[:4], widths, strict=True)), cell[4]]).rstrip())
        if n == 0:
            lines.append("-+-".join([*("-" * w for w in widths), "-" * len(SCHEDULER_COLUMNS[4])]))
    return lines
