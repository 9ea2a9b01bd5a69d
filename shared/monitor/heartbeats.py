"""The two heartbeats: the monitor's own (written every pass) and auto-retry's, checked every pass.

A missing auto-retry heartbeat is ``retry_heartbeat_pending`` (INFO) until one auto-retry interval
(its cron's longest gap) plus its function's timeout after the monitor's first recorded pass
(``first_run_at`` of its heartbeat: the earliest evidence the deployment is up, on Google Cloud after
a fresh deploy as on the local cloud); after that, and for a heartbeat older than
``retry_heartbeat_stale_minutes``, it is ``retry_heartbeat_stale`` (ERROR). ``phasectl status``
reads the same documents and gives the same grace.
"""

from __future__ import annotations

import functools
import itertools
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

from shared.monitor.findings import Finding, MonitorReport
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    from google.cloud import firestore

MONITOR_HEARTBEAT_ID = "phase_transition_monitor"
RETRY_HEARTBEAT_ID = "auto_retry_processor"
RETRY_GRACE_MARGIN = timedelta(minutes=5)  # when the auto-retry function has no timeout in [deploy]


# -- the monitor's heartbeat, as operators' tools read it ------------------------------------------
def monitor_heartbeat(firestore_client: firestore.Client, definition: PipelineDefinition, now: datetime) -> str:
    """ "monitor last ran N min ago" for operators."""
    doc = firestore_client.collection(definition.monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID).get()
    last = (doc.to_dict() or {}).get("last_run_at") if doc.exists else None
    if not isinstance(last, datetime):
        return "monitor has never run"
    return f"monitor last ran {int((now - last).total_seconds() // 60)} min ago"


def recorded_up_since(snapshot: Any) -> datetime | None:
    """The monitor's first recorded pass from its heartbeat document: ``first_run_at``; ``last_run_at``
    for a heartbeat written before ``first_run_at`` existed (the earliest evidence there is); ``None``
    when the monitor never ran."""
    data = (snapshot.to_dict() or {}) if snapshot.exists else {}
    for key in ("first_run_at", "last_run_at"):
        if isinstance(data.get(key), datetime):
            return cast(datetime, data[key])
    return None


def monitor_up_since(firestore_client: firestore.Client, definition: PipelineDefinition) -> datetime | None:
    """When the monitor first ran (its heartbeat's ``first_run_at``), or ``None``: for operators' tools."""
    collection = firestore_client.collection(definition.monitor.heartbeat_collection)
    return recorded_up_since(collection.document(MONITOR_HEARTBEAT_ID).get())


# -- the auto-retry heartbeat check ----------------------------------------------------------------
def retry_heartbeat_findings(
    firestore_client: firestore.Client, definition: PipelineDefinition, now: datetime, report: MonitorReport
) -> list[Finding]:
    """The auto-retry heartbeat: fresh, ``retry_heartbeat_pending`` (never ran, within the grace after
    the monitor's first pass; INFO) or ``retry_heartbeat_stale`` (ERROR). Records the monitor's first
    pass in ``report.up_since``."""
    heartbeats = firestore_client.collection(definition.monitor.heartbeat_collection)
    up_since = recorded_up_since(heartbeats.document(MONITOR_HEARTBEAT_ID).get()) or now
    report.up_since = up_since
    doc = heartbeats.document(RETRY_HEARTBEAT_ID).get()
    stale = timedelta(minutes=definition.monitor.retry_heartbeat_stale_minutes)
    last = (doc.to_dict() or {}).get("last_run_at") if doc.exists else None
    if isinstance(last, datetime) and now - last <= stale:
        return []
    if last is None:
        expected_by = up_since + retry_heartbeat_grace(definition)
        if now <= expected_by:
            return [
                Finding(
                    "retry_heartbeat_pending",
                    "INFO",
                    f"auto-retry has not run yet (the monitor first ran {_utc(up_since)}); "
                    f"expected by {_utc(expected_by)} (one auto-retry interval and its run later)",
                    details={"up_since": up_since.isoformat(), "expected_by": expected_by.isoformat()},
                )
            ]
    when = "never" if last is None else f"{int((now - last).total_seconds() // 60)} min ago"
    return [
        Finding("retry_heartbeat_stale", "ERROR", f"auto-retry last ran {when}", details={"last_run_at": str(last)})
    ]


def retry_schedule_cron(definition: PipelineDefinition) -> str | None:
    """The cron of the schedule that runs auto-retry (its function, else its ``RetryTick`` payload)."""
    schedules = definition.schedules.values()
    schedule = next((s for s in schedules if s.function == RETRY_HEARTBEAT_ID), None) or next(
        (s for s in schedules if s.payload == "RetryTick"), None
    )
    return None if schedule is None else schedule.cron


def retry_heartbeat_grace(definition: PipelineDefinition) -> timedelta:
    """How long after the system is first up a missing auto-retry heartbeat is expected, not stale: one
    interval of the auto-retry schedule (the longest gap between its firings; ``*/15 * * * *`` → 15 min)
    plus the auto-retry function's timeout (the run that writes the heartbeat). A schedule whose interval
    cannot be read from its cron falls back to ``retry_heartbeat_stale_minutes``."""
    cron = retry_schedule_cron(definition)
    interval = cron_interval(cron) if cron else None
    if interval is None:
        interval = timedelta(minutes=definition.monitor.retry_heartbeat_stale_minutes)
    timeout = definition.deploy.settings_for(RETRY_HEARTBEAT_ID).timeout_seconds
    return interval + (timedelta(seconds=timeout) if timeout else RETRY_GRACE_MARGIN)


# -- the auto-retry schedule's interval, read from its cron ------------------------------------------
_CRON_DAY = 24 * 60
_CRON_WEEK = 7 * _CRON_DAY


def _cron_field(text: str, low: int, high: int) -> list[int]:
    """The values of one numeric cron field (``*``, ``a``, ``a-b``, ``*/n``, ``a-b/n``, lists).

    Raises:
        ValueError: a token this reader does not know (names, ``a/n``) or a value out of range.
    """
    values: set[int] = set()
    for token in text.split(","):
        body, slash, step_text = token.partition("/")
        step = int(step_text) if slash else 1
        if body == "*":
            first, last = low, high
        elif "-" in body:
            a, _, b = body.partition("-")
            first, last = int(a), int(b)
        elif slash:
            raise ValueError(f"unsupported cron token {token!r}")
        else:
            first = last = int(body)
        if step < 1 or not low <= first <= last <= high:
            raise ValueError(f"cron token {token!r} is out of range {low}-{high}")
        values.update(range(first, last + 1, step))
    return sorted(values)


@functools.cache
def cron_interval(expression: str) -> timedelta | None:
    """The longest gap between two consecutive firings of a 5-field cron on its wall clock
    (``*/15 * * * *`` → 15 min, ``*/15 22-23,0-2 * * *`` → 19 h 15 min, ``0 6 * * 1-5`` → 3 days).

    The minute and hour fields repeat every day, or every week when only the day-of-week is restricted;
    ``None`` when day-of-month or month is restricted, or a field uses a form this reader does not know
    (month or day names): the caller falls back to a configured duration. DST shifts are ignored.
    """
    parts = expression.split()
    if len(parts) != 5 or parts[2] != "*" or parts[3] != "*":
        return None
    try:
        minutes = _cron_field(parts[0], 0, 59)
        hours = _cron_field(parts[1], 0, 23)
        weekdays = sorted({d % 7 for d in _cron_field(parts[4], 0, 7)})
    except ValueError:
        return None
    daily = [h * 60 + m for h in hours for m in minutes]
    if parts[4] == "*":
        period, firings = _CRON_DAY, daily
    else:
        period, firings = _CRON_WEEK, sorted(d * _CRON_DAY + t for d in weekdays for t in daily)
    gaps = [b - a for a, b in itertools.pairwise(firings)] + [firings[0] + period - firings[-1]]
    return timedelta(minutes=max(gaps))


def _utc(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")
