"""The exact ``phasectl`` command that fixes or inspects a monitor finding (issue 28): pure.

``fix_command(finding, definition)`` fills in what the finding knows (its date, transition,
processor, game, job, function) and returns one shell line, which ``AlertManager`` stores on the
alert document (``command``) and puts in the Slack text and the log entry (``Fix: …``); ``phasectl
findings``, ``phasectl status`` and the status page show it. Each command follows its kind's runbook
section (docs/operations.md#<kind>): the fix where phasectl has one and it is safe to run as given
(re-sending a trigger, re-running a slot, requeueing a retry row, confirming a postponement), else
the command that shows what to do next (``status``, ``reconcile``, ``dlq list``, ``health``,
``deploy verify``). Free text the operator must write (``--reason``, ``--note``) is ``"…"``.

Every kind the monitor produces has an entry in ``COMMANDS`` (tests/shared/monitor/test_fix_commands.py
parses each produced command with phasectl's own parser, for every kind found in the code); a kind
without one falls back to ``phasectl status --date D`` (with a date) or ``phasectl health``.
"""

from __future__ import annotations

import dataclasses
import shlex
from collections.abc import Callable, Mapping
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from shared.monitor.findings import Finding

if TYPE_CHECKING:
    from shared.pipeline.definition import PipelineDefinition

PROGRAM = "phasectl"
TEXT = "…"  # free text the operator writes (a reason, a note): shown as "…"
_FREE = object()  # marks the next word as free text: quoted with double quotes, as the runbook shows it


def _line(*words: Any) -> str:
    """One shell line: each word quoted for a POSIX shell, free text as ``"…"``."""
    out = [PROGRAM]
    for word in words:
        if word is None:
            continue
        out.append(f'"{TEXT}"' if word is _FREE else shlex.quote(str(word)))
    return " ".join(out)


def _day(f: Finding) -> str | None:
    return f.game_date.isoformat() if isinstance(f.game_date, date) else None


def _dated(*words: Any, day: str | None) -> tuple[Any, ...]:
    return (*words, "--date", day) if day else words


def _listed(f: Finding, key: str) -> list[str]:
    value = f.details.get(key)
    return [str(v) for v in value] if isinstance(value, list | tuple) else []


def _iso_date(text: str) -> date | None:
    try:
        return date.fromisoformat(text)
    except ValueError:
        return None


def _function(f: Finding) -> str | None:
    return str(f.details.get("function") or f.subject or "") or None


def _status(f: Finding, _: PipelineDefinition | None = None) -> str:
    """Inspect: the date's lines (done/missing, the rule's why, gates, trigger), or the page's summary."""
    return _line("status", *_dated(day=_day(f)))


def _trigger(force: bool) -> Callable[[Finding, PipelineDefinition | None], str]:
    """Evaluate the date now (``--force``: as a new generation, a new trigger id downstream)."""

    def command(f: Finding, _: PipelineDefinition | None = None) -> str:
        day = _day(f)
        if not f.transition or not day:
            return _status(f)
        return _line("trigger", "--transition", f.transition, "--date", day, "--force" if force else None)

    return command


def _reconcile(detailed: bool) -> Callable[[Finding, PipelineDefinition | None], str]:
    def command(f: Finding, _: PipelineDefinition | None = None) -> str:
        day = _day(f)
        if not day:
            return _status(f)
        return _line("reconcile", "--date", day, "--detailed" if detailed else None)

    return command


def _health(since: str | None = None) -> Callable[[Finding, PipelineDefinition | None], str]:
    def command(f: Finding, _: PipelineDefinition | None = None) -> str:
        return _line("health", *(("--since", since) if since else ()))

    return command


def _deploy_verify(f: Finding, _: PipelineDefinition | None = None) -> str:
    """Inspect what ``deploy apply`` would fix (project from the environment, as every command)."""
    return _line("deploy", "verify")


def _blocked(f: Finding, d: PipelineDefinition | None = None) -> str:
    """Games missing from every source: which ones, per source; other blocks: the gates' numbers."""
    return _reconcile(True)(f, d) if _listed(f, "missing_games") else _status(f)


def _silent(f: Finding, _: PipelineDefinition | None = None) -> str:
    """Completions that failed their deliveries wait on the first transition's dead-letter subscription."""
    return _line("dlq", "list", "--function", f.transition) if f.transition else _health("12h")(f, None)


def _gate_error(f: Finding, _: PipelineDefinition | None = None) -> str:
    """A 400/403/404 from BigQuery: the function's grants and tables, as the plan has them."""
    return _line("deploy", "verify", "--function", f.transition) if f.transition else _deploy_verify(f)


def _dated_list(key: str, then: Callable[[Finding], str]) -> Callable[[Finding, PipelineDefinition | None], str]:
    """A finding over several dates (``details[key]``): the command for the oldest."""

    def command(f: Finding, _: PipelineDefinition | None = None) -> str:
        days = sorted(d for d in (_iso_date(v) for v in _listed(f, key)) if d is not None)
        if f.game_date is None and days:
            f = dataclasses.replace(f, game_date=days[0])
        return then(f)

    return command


def _gap(f: Finding, _: PipelineDefinition | None = None) -> str:
    """Queue each date's earliest gap for backfill (audited; the gap pass works the queue); one date: that one."""
    days = _listed(f, "dates")
    if not days:
        return _line("gaps")  # only queue entries: their states
    return _line("gaps", *_dated(day=days[0] if len(days) == 1 else None), "--enqueue")


def _retry_failed_permanent(f: Finding, _: PipelineDefinition | None = None) -> str:
    """One (processor, date): requeue it with a fresh budget; several: the rows, each requeued the same way."""
    rows = sorted({r for r in _listed(f, "rows") if "@" in r})
    if len(rows) == 1:
        processor, day = rows[0].rsplit("@", 1)
        return _line("retry", "requeue", "--date", day, "--processor", processor, "--note", _FREE)
    return _line("retry", "list", "--status", "failed_permanent")


def _retry_pending(f: Finding, _: PipelineDefinition | None = None) -> str:
    return _line("retry", "list", "--status", "pending")


def _dead_letters(f: Finding, _: PipelineDefinition | None = None) -> str:
    """Inspect before replaying (``dlq replay --function F`` once the cause is fixed)."""
    return _line("dlq", "list", *(("--function", _function(f)) if _function(f) else ()))


def _job_day(job: str, details: Mapping[str, Any], definition: PipelineDefinition | None) -> str | None:
    """The slot's day in the job's own zone (what ``schedules run --date`` takes); None when unknown."""
    raw = details.get("slot_at")
    if definition is None or not isinstance(raw, str):
        return None
    try:
        at = datetime.fromisoformat(raw)
        found = next(j for j in definition.all_jobs() if j.name == job)
    except (ValueError, StopIteration):
        return None
    if at.tzinfo is None:
        return None
    return at.astimezone(definition.job_zone(found)).date().isoformat()


def _schedule_run(force: bool) -> Callable[[Finding, PipelineDefinition | None], str]:
    """Run the job's slot by hand (``--force``: a slot that already ran, again); the tick itself: the table."""

    def command(f: Finding, definition: PipelineDefinition | None = None) -> str:
        job = str(f.details.get("job") or "")
        if not job:  # every job missed at once: the dispatcher's tick, not a job (`schedules` shows which)
            return _line("schedules")
        day = _job_day(job, f.details, definition)
        return _line("schedules", "run", job, *_dated(day=day), "--force" if force else None)

    return command


def _game_postponed(f: Finding, _: PipelineDefinition | None = None) -> str:
    """Confirm the postponement for the record (``games restore`` the same way undoes it)."""
    game = str(f.details.get("game_id") or f.subject or "")
    if not game:
        return _reconcile(False)(f, None)
    return _line("games", "postpone", game, *_dated(day=_day(f)), "--reason", _FREE)


def _self_heal_failed(f: Finding, d: PipelineDefinition | None = None) -> str:
    """Re-trigger the phase as a new generation; ``not_triggered``: the phase before has not reported (status)."""
    if f.details.get("status") == "not_triggered":
        return _status(f)
    return _trigger(True)(f, d)


def _grading(f: Finding, _: PipelineDefinition | None = None) -> str:
    """A sensor's date (grading): its line in ``status`` (the conditions, generations, regrades).
    ``trigger`` takes transitions only, so a re-grade is the monitor's or a fallback job's."""
    return _status(f)


def _grid_gap(f: Finding, _: PipelineDefinition | None = None) -> str:
    """120 days: where each date's chain stopped and its backfill queue state (``--enqueue`` queues them)."""
    return _line("gaps", "--season")


def _slo(f: Finding, _: PipelineDefinition | None = None) -> str:
    return _line("slo", *_dated(day=_day(f)))


COMMANDS: dict[str, Callable[[Finding, PipelineDefinition | None], str]] = {
    "stuck": _trigger(False),  # once the missing processor is done: evaluate now instead of next pass
    "blocked": _blocked,
    "silent": _silent,
    "handoff": _trigger(True),  # send the trigger again with a new trigger id (consumers dedupe on it)
    "deadline_trigger": _status,  # INFO: what was missing at the trigger
    "gate_alert": _reconcile(False),
    "gate_error": _gate_error,
    "grading_overdue": _grading,
    "grading_coverage_low": _grading,
    "grading_gap": _dated_list("dates", _status),
    "grid_gap": _grid_gap,
    "gap": _gap,
    "retry_failed_permanent": _retry_failed_permanent,
    "retry_dispatch_failing": _retry_pending,
    "retry_overdue": _health("2h"),  # auto-retry is not picking rows up: its heartbeat and errors
    "retry_queue_missing": _deploy_verify,
    "retry_heartbeat_pending": _health(),
    "retry_heartbeat_stale": _health(),
    "dead_letters": _dead_letters,
    "dead_letter_subscription_missing": _deploy_verify,
    "schedule_missed": _schedule_run(False),
    "schedule_failed": _schedule_run(True),
    "schedule_stale_target": _schedule_run(True),  # once the target is fixed
    "game_postponed": _game_postponed,
    "schedule_anomaly": _reconcile(True),
    "self_heal_failed": _self_heal_failed,
    "quarantine_flood": _health("2h"),
    "check_error": _health("1h"),
    "check_timeout": _health("1h"),
    "slo_breach": _slo,
}


def fix_command(finding: Finding, definition: PipelineDefinition | None = None) -> str:
    """The ``phasectl`` command that fixes or inspects ``finding`` (``definition``: a job's zone for
    ``schedules run --date``)."""
    command = COMMANDS.get(finding.kind)
    if command is None:
        return _status(finding) if finding.game_date else _line("health")
    return command(finding, definition)
