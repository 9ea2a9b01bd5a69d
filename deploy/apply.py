"""``phasectl deploy apply`` and ``verify``: run the plan idempotently, then check what is deployed.

Both talk to Google Cloud only through the ``gcloud`` and ``bq`` commands on ``PATH`` (a
``Runner``), so the tests put a recording fake there, and an operator sees in the plan exactly
what apply runs.
"""

from __future__ import annotations

import json
import re
import subprocess
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

from deploy.plan import Step, render_command, resolve, schema_file, ttl_list_command
from deploy.spec import DeploymentSpec, FunctionSpec

NOT_FOUND = re.compile(r"NOT_FOUND|not found|does not exist|404", re.IGNORECASE)


@dataclass(frozen=True)
class Result:
    returncode: int
    stdout: str
    stderr: str


Runner = Callable[[Sequence[str]], Result]


def subprocess_runner(cwd: Path, env: Mapping[str, str] | None = None, timeout: float = 900.0) -> Runner:
    """Runs each command as a process (``gcloud`` and ``bq`` from ``PATH``) in ``cwd``."""

    def run(argv: Sequence[str]) -> Result:
        try:
            done = subprocess.run(
                list(argv),
                capture_output=True,
                text=True,
                timeout=timeout,
                env=dict(env) if env else None,
                check=False,
                cwd=cwd,
            )
        except FileNotFoundError as exc:
            raise DeployError(f"{argv[0]} is not installed or not on PATH (install the Google Cloud CLI)") from exc
        return Result(done.returncode, done.stdout, done.stderr)

    return run


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


def _one_line(text: str, limit: int = 400) -> str:
    return " ".join(text.split())[:limit]


def apply(steps: Sequence[Step], run: Runner, out: TextIO) -> ApplyReport:
    """Describe each resource, then create or update it; run bindings; resolve lookups. Stops at the first error."""
    report = ApplyReport()
    values: dict[str, str] = {}

    def must(argv: list[str], what: str) -> Result:
        result = run(argv)
        if result.returncode != 0:
            raise DeployError(
                f"{what} failed ({result.returncode}): {render_command(tuple(argv))}: "
                f"{_one_line(result.stderr or result.stdout)}"
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
                f"{where}: describe failed ({found.returncode}): {_one_line(found.stderr or found.stdout)}"
            )
    out.write(
        f"apply: {len(report.created)} created, {len(report.updated)} updated, {len(report.existing)} unchanged, "
        f"{report.bindings} bindings\n"
    )
    return report


# -- verify ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Check:
    subject: str
    ok: bool
    detail: str

    def render(self) -> str:
        return f"{'ok  ' if self.ok else 'FAIL'} {self.subject}: {self.detail}"


def _json(run: Runner, argv: list[str]) -> tuple[Any, str | None]:
    result = run(argv)
    if result.returncode != 0:
        return None, _one_line(result.stderr or result.stdout) or f"exit {result.returncode}"
    try:
        return json.loads(result.stdout or "null"), None
    except json.JSONDecodeError as exc:
        return None, f"unreadable output of {' '.join(argv[:4])}: {exc}"


def _last(path: str | None) -> str:
    return (path or "").rstrip("/").rsplit("/", 1)[-1]


def verify_function(spec: DeploymentSpec, fn: FunctionSpec, run: Runner) -> list[Check]:
    p, region = f"--project={spec.project}", f"--region={spec.region}"
    subject = f"function {fn.cloud_name}"
    described, error = _json(
        run, ["gcloud", "functions", "describe", fn.cloud_name, "--gen2", region, p, "--format=json"]
    )
    if error is not None or not isinstance(described, dict):
        return [Check(subject, False, f"not deployed: {error}")]
    checks: list[Check] = []
    state = described.get("state")
    checks.append(Check(subject, state == "ACTIVE", f"state {state}"))
    trigger = described.get("eventTrigger") or {}
    email = fn.service_account_email(spec.project)
    topic_ok = _last(trigger.get("pubsubTopic")) == fn.trigger_topic
    checks.append(Check(subject, topic_ok, f"trigger topic {_last(trigger.get('pubsubTopic')) or '-'}"))
    retry = trigger.get("retryPolicy")
    checks.append(Check(subject, retry == "RETRY_POLICY_RETRY", f"retry policy {retry} (lesson L05)"))
    account = (described.get("serviceConfig") or {}).get("serviceAccountEmail")
    checks.append(Check(subject, account == email, f"runs as {account}"))

    service = _last((described.get("serviceConfig") or {}).get("service")) or fn.cloud_name
    invoker = trigger.get("serviceAccountEmail") or email
    policy, error = _json(run, ["gcloud", "run", "services", "get-iam-policy", service, region, p, "--format=json"])
    members: set[str] = set()
    for binding in (policy or {}).get("bindings", []) if isinstance(policy, dict) else []:
        if binding.get("role") == "roles/run.invoker":
            members.update(binding.get("members", []))
    has_invoker = f"serviceAccount:{invoker}" in members
    public = bool(members & {"allUsers", "allAuthenticatedUsers"})
    detail = error or ("present" if has_invoker else f"MISSING for {invoker} (lesson L06)")
    checks.append(Check(subject, has_invoker and error is None, f"invoker binding {detail}"))
    if public:
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
    else:
        checks.append(Check(subject, False, "no Eventarc trigger subscription found"))
    dlq, error = _json(
        run, ["gcloud", "pubsub", "subscriptions", "describe", fn.dead_letter_subscription, p, "--format=json"]
    )
    dlq_ok = isinstance(dlq, dict) and _last(dlq.get("topic")) == fn.dead_letter_topic
    checks.append(
        Check(f"subscription {fn.dead_letter_subscription}", dlq_ok, error or f"on {_last((dlq or {}).get('topic'))}")
    )
    member = f"serviceAccount:{email}"
    for subscription in fn.subscribes:
        policy, error = _json(
            run, ["gcloud", "pubsub", "subscriptions", "get-iam-policy", subscription, p, "--format=json"]
        )
        readers: set[str] = set()
        for binding in (policy or {}).get("bindings", []) if isinstance(policy, dict) else []:
            if binding.get("role") == "roles/pubsub.subscriber":
                readers.update(binding.get("members", []))
        granted = error is None and member in readers
        checks.append(
            Check(
                f"subscription {subscription}",
                granted,
                f"roles/pubsub.subscriber for {fn.cloud_name} "
                + ("present" if granted else f"MISSING: {error}" if error else "MISSING (it cannot read the backlog)"),
            )
        )
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


def verify(spec: DeploymentSpec, run: Runner) -> list[Check]:
    checks: list[Check] = []
    for fn in spec.functions:
        checks += verify_function(spec, fn, run)
    checks += verify_ttls(spec, run)
    p = f"--project={spec.project}"
    for job in spec.jobs:
        described, error = _json(
            run, ["gcloud", "scheduler", "jobs", "describe", job.name, f"--location={spec.region}", p, "--format=json"]
        )
        subject = f"scheduler job {job.name}"
        if not isinstance(described, dict):
            checks.append(Check(subject, False, f"missing: {error}"))
            continue
        target = _last((described.get("pubsubTarget") or {}).get("topicName"))
        problems = []
        if described.get("state") != "ENABLED":
            problems.append(f"state {described.get('state')}")
        if described.get("schedule") != job.cron or described.get("timeZone") != job.timezone:
            problems.append(f"schedule {described.get('schedule')} {described.get('timeZone')}")
        if target != job.topic:
            problems.append(f"publishes to {target}")
        checks.append(
            Check(subject, not problems, "; ".join(problems) or f"ENABLED, {job.cron} {job.timezone} → {target}")
        )
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
