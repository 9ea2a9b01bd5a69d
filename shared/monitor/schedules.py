"""The scheduled jobs' latest runs (issue 26): ``schedule_missed``, ``schedule_failed`` and
``schedule_stale_target``, one finding per job at most, ERROR.

Every dispatched job (``[[jobs]]`` and the sensors' slots: ``PipelineDefinition.all_jobs()``) is
judged on one slot only, its latest: the latest active slot at least ``missed_after_minutes`` old
(``plan.last_slot`` within ``LOOKBACK``, the operator's pauses and resumes applied), unless a newer
slot has already finished (then that one counts). Its run document
(``{dispatcher.runs_collection}/{Slot.run_id}``) says:

- no run → ``schedule_missed``: the dispatcher did not run the slot (a dead or deleted tick job, a
  dispatcher that does not deploy): what "weekly-retrain silently dead for months" looked like.
  Also a run left ``running`` or ``retry_wait`` more than the grace past the time it was to go on
  (the dispatcher stopped between attempts). A slot before the monitor's first recorded pass is not
  counted as missed: the deployment was not up yet (a fresh deploy, ``phasectl local up``);
- ``failed`` (retries used up) or ``client_error`` (a 4xx) → ``schedule_failed``;
- ``config_error`` (404, a missing topic, a service URL that cannot be resolved) →
  ``schedule_stale_target``;
- ``succeeded`` (or ``skipped``) → nothing: a finding clears once a later slot succeeds, or once a
  hand-run of the slot or a later one succeeds (``phasectl schedules run JOB --date D --force``:
  the job's summary, ``{dispatcher.jobs_collection}/{job}``, says so).

``schedule_findings`` decides, pure, from the documents; ``schedule_run_findings`` reads them: the
overrides document, one batched read of every job's slots to judge (``ScheduleRuns.get_many``), the
monitor's first pass, and the summaries of the jobs with a finding (only then).

A finding's key is its kind and job; its fingerprint the slot and outcome, so an alert repeats for
a new slot, not for each pass (``shared.monitor.alerts``).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from shared.monitor.findings import Finding
from shared.pipeline.definition import Job, PipelineDefinition
from shared.schedules.plan import TERMINAL, Overrides, Slot, excerpt, last_slot, lookback_for

if TYPE_CHECKING:
    from google.cloud import firestore

STORM_MIN = 5  # this many jobs missed at once (and most of those due): one finding about the dispatcher


FAILED = ("failed", "client_error")
IN_PROGRESS = ("running", "retry_wait")
RESPONSE_CHARS = 200  # of a target's answer, in a message


@dataclass(frozen=True)
class Watch:
    """A job's slots to judge: ``due`` (the latest active slot at least the job's grace old: it must
    have a run by now) and ``newer`` (a later slot within the grace: it counts once it finished)."""

    job: Job
    due: Slot | None
    newer: Slot | None

    @property
    def slots(self) -> list[Slot]:
        return [s for s in (self.newer, self.due) if s is not None]


def watched_slots(
    definition: PipelineDefinition, now: datetime, overrides: Overrides, jobs: Iterable[Job] | None = None
) -> list[Watch]:
    """Per dispatched job with an active slot within ``LOOKBACK``: the slots to read."""
    out = []
    for job in definition.all_jobs() if jobs is None else jobs:
        if not job.dispatched:
            continue
        grace = timedelta(minutes=job.missed_after_minutes)
        lookback = lookback_for(job)
        due = last_slot(definition, job, now - grace, lookback, overrides)
        latest = last_slot(definition, job, now, lookback + grace, overrides)
        newer = latest if latest is not None and (due is None or latest.at > due.at) else None
        if due is not None or newer is not None:
            out.append(Watch(job, due, newer))
    return out


def schedule_findings(
    definition: PipelineDefinition,
    now: datetime,
    overrides_doc: Mapping[str, Any] | None,
    runs: Mapping[str, Mapping[str, Any]],
    *,
    up_since: datetime | None = None,
    summaries: Mapping[str, Mapping[str, Any]] | None = None,
    jobs: Iterable[Job] | None = None,
) -> list[Finding]:
    """The findings of each job's latest slot, pure.

    ``runs``: the run documents by id (absent: no run); ``up_since``: the monitor's first recorded
    pass (slots before it are not missed); ``summaries``: job summary documents by job name (a
    succeeded run of the slot or a later one, a hand-run among them, clears the finding).
    """
    overrides = Overrides.from_doc(dict(overrides_doc) if overrides_doc is not None else None)
    found = []
    watches = watched_slots(definition, now, overrides, jobs)
    for watch in watches:
        slot, run = _counted(watch, runs)
        if slot is None:
            continue
        finding = _judge(definition, watch.job, slot, run, now, up_since)
        if finding is not None and not _cleared(slot, (summaries or {}).get(watch.job.name)):
            found.append(finding)
    return _one_for_a_dead_dispatcher(definition, found, watched=len(watches))


def schedule_run_findings(
    firestore_client: firestore.Client, definition: PipelineDefinition, now: datetime
) -> list[Finding]:
    """Read what ``schedule_findings`` needs (overrides, one batch of runs, the monitor's first pass,
    the summaries of the jobs with a finding) and decide."""
    from shared.monitor.heartbeats import monitor_up_since
    from shared.orchestration.outbox_store import Outbox
    from shared.schedules.runs import ScheduleRuns

    store = ScheduleRuns(firestore_client, definition, Outbox.for_definition(firestore_client, definition))
    overrides_doc = store.overrides()
    watches = watched_slots(definition, now, Overrides.from_doc(overrides_doc))
    if not watches:
        return []  # off season (or every job paused): no slot to judge
    runs = store.get_many(sorted({s.run_id for w in watches for s in w.slots}))
    up_since = monitor_up_since(firestore_client, definition) or now  # never ran: this is its first pass
    found = schedule_findings(definition, now, overrides_doc, runs, up_since=up_since)
    if not found:
        return found
    summaries = store.job_summaries(sorted({f.subject for f in found if f.subject}))
    return schedule_findings(definition, now, overrides_doc, runs, up_since=up_since, summaries=summaries)


# ----------------------------------------------------------------------------- the decision


def _one_for_a_dead_dispatcher(definition: PipelineDefinition, found: list[Finding], watched: int) -> list[Finding]:
    """When most jobs missed their slot at once (at least ``STORM_MIN`` and more than half of the jobs
    with a slot to judge), the cause is one: the tick job or the dispatcher. One finding says so and
    names the jobs, instead of one alert per job (which the per-pass alert cap would drain over hours)."""
    missed = [f for f in found if f.kind == "schedule_missed" and f.details.get("status") is None]
    if len(missed) < STORM_MIN or 2 * len(missed) <= watched:
        return found
    tick = definition.dispatcher.job
    names = sorted(f.subject or "" for f in missed)
    shown = ", ".join(names[:10]) + (f" and {len(names) - 10} more" if len(names) > 10 else "")
    message = (
        f"{len(missed)} of {watched} scheduled jobs missed their latest slot ({shown}): the schedule "
        f"dispatcher is not running them. Is its Cloud Scheduler tick job (`{tick}`) present and enabled, "
        f"and is the `{definition.dispatcher.function}` function healthy? `phasectl deploy verify`; "
        f"`gcloud scheduler jobs describe {tick}`; then run what matters by hand: "
        f"`phasectl schedules run JOB --date D`"
    )
    storm = Finding("schedule_missed", "ERROR", message, details={"jobs": names, "missed": len(missed)}, subject=tick)
    return [storm, *(f for f in found if f not in missed)]


def _counted(watch: Watch, runs: Mapping[str, Mapping[str, Any]]) -> tuple[Slot | None, Mapping[str, Any] | None]:
    """The slot that counts and its run: the newer slot once its run finished, else the due one."""
    if watch.newer is not None:
        run = runs.get(watch.newer.run_id)
        if run is not None and run.get("status") in TERMINAL:
            return watch.newer, run
    if watch.due is None:
        return None, None
    return watch.due, runs.get(watch.due.run_id)


def _judge(
    definition: PipelineDefinition,
    job: Job,
    slot: Slot,
    run: Mapping[str, Any] | None,
    now: datetime,
    up_since: datetime | None,
) -> Finding | None:
    if run is None:
        if up_since is not None and slot.at < up_since:
            return None  # before the monitor first ran: the deployment was not up
        return _missed(definition, job, slot, None, now)
    status = run.get("status")
    if status in FAILED or status == "config_error":
        return _ended(definition, job, slot, run, now)
    if status in IN_PROGRESS:
        resume = run.get("lease_until") if status == "running" else run.get("next_attempt_at")
        resume_at = resume if isinstance(resume, datetime) else slot.at
        if now - resume_at > timedelta(minutes=job.missed_after_minutes):
            return _missed(definition, job, slot, run, now)
    return None  # succeeded, skipped, or in progress within its time


def _cleared(slot: Slot, summary: Mapping[str, Any] | None) -> bool:
    """Whether the job's last recorded run, a hand-run included, succeeded for this slot or a later one."""
    last = (summary or {}).get("last") or {}
    at = last.get("slot_at")
    return last.get("status") == "succeeded" and isinstance(at, datetime) and at >= slot.at


def _missed(
    definition: PipelineDefinition, job: Job, slot: Slot, run: Mapping[str, Any] | None, now: datetime
) -> Finding:
    tick = definition.dispatcher.job
    if run is None:
        when = f"{_when(definition, slot)}, {_ago(now - slot.at)}"
        what = f"no run of its slot {when}: the schedule dispatcher did not run it"
    else:
        what = (
            f"its run of the slot {_when(definition, slot)} ({_ago(now - slot.at)}) is stuck `{run.get('status')}` "
            f"after {run.get('attempts') or 0}/{job.max_attempts} attempt(s): the schedule dispatcher did not finish it"
        )
    message = (
        f"{job.name} ({_schedule(definition, job)}): {what}: is its Cloud "
        f"Scheduler tick job (`{tick}`) present and enabled? `phasectl deploy verify`; run it by hand: "
        f"`phasectl schedules run {job.name} --date {slot.day.isoformat()}`"
    )
    details = {**_identity(job, slot), "status": None if run is None else run.get("status")}
    if run is not None:
        details["attempts"] = run.get("attempts")
    return Finding("schedule_missed", "ERROR", message, details=details, subject=job.name)


def _ended(definition: PipelineDefinition, job: Job, slot: Slot, run: Mapping[str, Any], now: datetime) -> Finding:
    status = str(run.get("status"))
    outcome: Mapping[str, Any] = run.get("outcome") or {}
    attempts = run.get("attempts") or 0
    http_status = outcome.get("http_status")
    error = " ".join(str(outcome.get("error") or "").split())
    response = excerpt(" ".join(str(outcome.get("response") or "").split()), RESPONSE_CHARS)
    said = "" if http_status is not None and error.startswith("HTTP ") else error  # not "HTTP 503" twice
    bits = [
        f"HTTP {http_status}" if http_status is not None else "",
        said,
        f"response: {response}" if response else "",
    ]
    answer = ", ".join(b for b in bits if b) or "no answer recorded"
    again = f"`phasectl schedules run {job.name} --date {slot.day.isoformat()} --force`"
    head = f"{job.name} ({_schedule(definition, job)}): its slot {_when(definition, slot)} ({_ago(now - slot.at)})"
    details = {
        **_identity(job, slot),
        "status": status,
        "attempts": attempts,
        "http_status": http_status,
        "error": error,
        "response": response,
    }
    if status == "config_error":
        message = (
            f"{head} has a stale target ({_target(job)}): {answer}; fix the job's target in the definition or deploy "
            f"what it calls (`phasectl deploy verify`), then run it again: {again}"
        )
        return Finding("schedule_stale_target", "ERROR", message, details=details, subject=job.name)
    how = (
        f"failed after {attempts}/{job.max_attempts} attempt(s) (retries used up)"
        if status == "failed"
        else f"was refused (a client error, not retried) after {attempts} attempt(s)"
    )
    message = f"{head} {how}: {answer}; fix the cause, then run it again: {again}"
    return Finding("schedule_failed", "ERROR", message, details=details, subject=job.name)


# ----------------------------------------------------------------------------- wording


def _identity(job: Job, slot: Slot) -> dict[str, Any]:
    return {"job": job.name, "run_id": slot.run_id, "slot_at": slot.at.isoformat()}


def _schedule(definition: PipelineDefinition, job: Job) -> str:
    return f"cron `{job.cron}` in {definition.job_zone(job).key}"


def _when(definition: PipelineDefinition, slot: Slot) -> str:
    """The slot in ET (the pipeline's zone) and, when it differs, in the job's zone."""
    et_zone = definition.pipeline.timezone
    et = slot.at.astimezone(ZoneInfo(et_zone)).strftime("%Y-%m-%d %H:%M %Z")
    if slot.zone == et_zone:
        return f"{et} (the job's zone, {slot.zone})"
    return f"{et} = {slot.local.strftime('%Y-%m-%d %H:%M %Z')} in the job's zone {slot.zone}"


def _ago(delta: timedelta) -> str:
    """``delta`` in whole days, hours and minutes: "1 d 2 h ago", "16 min ago"."""
    minutes = max(0, int(delta.total_seconds() // 60))
    days, rest = divmod(minutes, 24 * 60)
    hours, mins = divmod(rest, 60)
    parts = [f"{n} {unit}" for n, unit in ((days, "d"), (hours, "h"), (mins, "min")) if n]
    return f"{' '.join(parts) or '0 min'} ago"


def _target(job: Job) -> str:
    if job.http is not None:
        return f"{job.http.method} {job.http.service}{job.http.path}"
    assert job.pubsub is not None
    return f"Pub/Sub topic {job.pubsub.topic}"
