"""The demo's morning after the night: the schedule dispatcher runs the day's jobs on the simulated clock.

After the night of 2026-01-24 (``deploy.local.demo``), the local cloud's clock runs on into the
morning of the 25th, faster (``change_clock``: every function and the scheduler restart on it).
One Cloud Scheduler tick a minute feeds the ``schedule_dispatcher`` function (its bundle, behind its
push subscription), which runs every ``[[jobs]]`` entry and sensor slot whose cron fires: HTTP calls
to the services' stand-ins (``deploy.local.standins.ServiceStandin``, which record each request and
the unsigned local ID token's audience) and Pub/Sub messages (phase 6 exports, sensor ticks).

Two things go wrong on purpose:

- one job of the same-day chain (``same-day-phase4`` when the definition has it) gets HTTP 500 from
  its stand-in on the first call: the dispatcher retries it and it succeeds on attempt 2;
- the dispatcher's tick job is paused (``gcloud scheduler jobs pause``) around one job's slot, past
  the dispatcher's catch-up window, so that slot passes unrun: the monitor reports ``schedule_missed``;
  a slot due later in the pause (the half-hourly gap pass) runs late, caught up after the resume.

``plan_morning`` chooses both from the definition (pure); ``run_morning`` plays the morning and
reads back every slot's run document (Firestore), the stand-ins' records and the messages.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import PIPELINE_TZ
from shared.pipeline.definition import Job, PipelineDefinition
from shared.schedules.plan import Slot, render, season_on, slots_between, template_values

if TYPE_CHECKING:
    from deploy.local.stack import LocalStack

MORNING_ACCELERATE = 300.0  # x300: a simulated hour in 12 s (the night runs at x120)
MORNING_END = (12, 5)  # ET, the day after the night's games
FAILING_PREFERENCE = ("same-day-phase4", "same-day-phase3", "same-day-predictions")  # the chain's 500
MARGIN = timedelta(minutes=5)  # the pause starts this long before the missed slot, ends this long after the window
SAME_MINUTE = timedelta(minutes=1)


@dataclass(frozen=True)
class MorningPlan:
    """The morning's slots, the one whose target answers 500 first, the one that passes unrun."""

    start: datetime
    end: datetime
    slots: tuple[Slot, ...]
    failing: Slot | None
    failing_body: Any = None
    missed: Slot | None = None
    pause: tuple[datetime, datetime] | None = None


def rendered_body(definition: PipelineDefinition, job: Job, slot: Slot) -> Any:
    """The JSON body the dispatcher sends for ``slot`` (its template resolved in the job's zone)."""
    assert job.http is not None
    season = season_on(definition.seasons, slot.day, definition.waves, job)
    return render(job.http.body, template_values(slot, job, season))


def plan_morning(definition: PipelineDefinition, start: datetime, end: datetime) -> MorningPlan:
    """Every active job slot in ``(start, end]``; the chain job that answers 500 once; and a slot alone
    in its window to let pass unrun, preferring a ``[[jobs]]`` entry after the failing slot whose job
    has no later slot this morning (a later success would clear its ``schedule_missed``).

    The pause runs from ``MARGIN`` before the missed slot to ``MARGIN`` past its catch-up window. Alone
    means no other slot is lost with it: none is due from ``MARGIN`` before the pause to ``MARGIN``
    past the pause's end minus the catch-up window, and every other slot due in the pause is caught
    up (late) after the resume. The recurring jobs (``gap-detector-30min`` at :15 and :45) leave no
    pause-long gap in the morning, so one of them is always caught up late. The failing slot and its
    retries finish before the pause."""
    slots = tuple(
        sorted(
            (s for j in definition.all_jobs() for s in slots_between(definition, j, start, end)),
            key=lambda s: (s.at, s.job),
        )
    )
    http = [s for s in slots if definition.job(s.job).http is not None]
    failing = next((s for name in FAILING_PREFERENCE for s in http if s.job == name), None) or next(iter(http), None)
    body = rendered_body(definition, definition.job(failing.job), failing) if failing is not None else None
    catch_up = timedelta(minutes=definition.dispatcher.catch_up_minutes)
    defined = {j.name for j in definition.jobs}

    def window(slot: Slot) -> tuple[datetime, datetime]:
        return slot.at - MARGIN, slot.at + catch_up + MARGIN

    def alone(slot: Slot) -> bool:
        begin, stop = window(slot)
        lost = [s for s in slots if s != slot and begin - MARGIN <= s.at < stop - catch_up + MARGIN]
        retrying = failing is not None and failing.at + catch_up >= begin - MARGIN and failing.at <= stop
        room = begin >= start + 3 * MARGIN and stop <= end
        return not lost and not retrying and room and slot != failing

    def caught_up(slot: Slot) -> int:
        begin, stop = window(slot)
        return sum(1 for s in slots if s != slot and begin <= s.at <= stop)

    candidates = [s for s in slots if alone(s)]
    ranked = sorted(
        candidates,
        key=lambda s: (
            s.job not in defined,
            failing is not None and s.at < failing.at,
            any(o.job == s.job and o.at > s.at for o in slots),
            caught_up(s),
            s.at,
        ),
    )
    missed = ranked[0] if ranked else None
    pause = window(missed) if missed is not None else None
    return MorningPlan(start, end, slots, failing, body, missed, pause)


@dataclass
class MorningSlot:
    """One slot of the morning, as read back: its run document, the stand-in's records, the messages."""

    slot: Slot
    job: Job
    run: dict[str, Any] | None
    records: list[dict[str, Any]] = field(default_factory=list)
    messages: int = 0  # Pub/Sub ``trigger`` jobs: messages seen on the topic for this slot

    @property
    def status(self) -> str:
        return str(self.run.get("status")) if self.run else "no run"

    @property
    def attempts(self) -> int:
        return int(self.run.get("attempts") or 0) if self.run else 0


@dataclass
class MorningResult:
    plan: MorningPlan | None = None
    slots: list[MorningSlot] = field(default_factory=list)
    findings: list[dict[str, Any]] = field(default_factory=list)  # the monitor's schedule_* findings
    monitor_checks_schedules: bool = False  # the monitor of this tree has the schedule_missed check
    paused_ticks: int = 0  # dispatcher ticks the paused scheduler job did not publish
    seconds: float = 0.0


def _time(at: datetime | None) -> str:
    return "--:--" if at is None else f"{at.astimezone(PIPELINE_TZ):%H:%M}"


def slot_label(slot: Slot) -> str:
    local = slot.local
    zone = "ET" if slot.zone == "America/New_York" else local.strftime("%Z")
    return f"{local:%H:%M} {zone}"


def records_for(
    slot: Slot, job: Job, records: Sequence[dict[str, Any]], run: dict[str, Any] | None, catch_up: timedelta
) -> list[dict[str, Any]]:
    """The stand-in requests of ``slot``: its service, path and body, within its catch-up window."""
    if job.http is None or run is None:
        return []
    request = run.get("request") or {}
    try:
        body = json.loads(request["body"]) if request.get("body") is not None else None
    except ValueError:
        body = request.get("body")
    out = []
    for r in records:
        at = datetime.fromisoformat(r["at"]) if r.get("at") else None
        if r.get("service") != job.http.service or r.get("path") != job.http.path or r.get("body") != body:
            continue
        if at is not None and not slot.at <= at <= slot.at + catch_up + SAME_MINUTE:
            continue
        out.append(r)
    return out


def read_back(
    stack: LocalStack, definition: PipelineDefinition, plan: MorningPlan, timed: Sequence[Any]
) -> list[MorningSlot]:
    """Each planned slot's run document (one batched read), stand-in records and messages."""
    from shared.gcp import firestore_client

    fs = firestore_client(stack.project)
    runs = fs.collection(definition.dispatcher.runs_collection)
    snaps = fs.get_all([runs.document(s.run_id) for s in plan.slots]) if plan.slots else []
    docs = {snap.id: snap.to_dict() or {} for snap in snaps if snap.exists}
    records = [r for standin in stack.standins.values() for r in standin.recorded()]
    catch_up = timedelta(minutes=definition.dispatcher.catch_up_minutes)
    out = []
    for slot in plan.slots:
        job = definition.job(slot.job)
        run = docs.get(slot.run_id)
        seen = sum(1 for m in timed if getattr(m, "name", None) == job.name and getattr(m, "slot", None) == slot.key)
        out.append(MorningSlot(slot, job, run, records_for(slot, job, records, run, catch_up), seen))
    return out


def describe_slot(item: MorningSlot) -> list[str]:
    """``10:30 ET same-day-phase3: succeeded, attempt 1/3`` and the request the stand-in recorded."""
    from deploy.local.standins import body_text, describe

    job, run = item.job, item.run
    head = f"{slot_label(item.slot)} {job.name}: {item.status}"
    if run:
        outcome = run.get("outcome") or {}
        answer = f"HTTP {outcome['http_status']}" if outcome.get("http_status") is not None else outcome.get("error")
        head += f", attempt {item.attempts}/{job.max_attempts}" + (f" ({answer})" if answer else "")
    lines = [head]
    if job.http is not None:
        for r in item.records:
            at = _time(datetime.fromisoformat(r["at"]))
            lines.append(f"      {job.name} {describe(r, service=False)} at {at} ET")
        if run and not item.records:
            lines.append(f"      (no request recorded by the {job.http.service} stand-in)")
    elif job.pubsub is not None and run:
        request = run.get("request") or {}
        try:
            data = json.loads(request.get("data") or "null")
        except ValueError:
            data = request.get("data")
        if isinstance(data, dict) and "trigger_id" in data:
            shown = {k: data[k] for k in ("target_date", "export_types", "update_latest") if data.get(k) is not None}
        else:
            shown = data
        seen = f", {item.messages} message(s) seen on the topic" if job.pubsub.message == "trigger" else ""
        lines.append(f"      {job.name} -> {job.pubsub.topic} {body_text(shown)}{seen}")
    return lines


def _monitor_checks_schedules() -> bool:
    import importlib.util

    return importlib.util.find_spec("shared.monitor.schedules") is not None


def run_morning(
    stack: LocalStack,
    definition: PipelineDefinition,
    say: Callable[[str], None],
    *,
    day: date,
    findings: Callable[[], list[dict[str, Any]]],
    timed: Callable[[], Sequence[Any]],
    accelerate: float = MORNING_ACCELERATE,
    timeout: float = 120.0,
) -> MorningResult:
    """Play the morning of ``day`` on ``stack`` (its night already played) and read it back."""
    started = time.monotonic()
    result = MorningResult(monitor_checks_schedules=_monitor_checks_schedules())
    say(f"--- the morning of {day}: the schedule dispatcher runs the day's jobs (x{accelerate:g}) ---")
    stack.change_clock(accelerate)
    end = datetime(day.year, day.month, day.day, *MORNING_END, tzinfo=PIPELINE_TZ)
    plan = result.plan = plan_morning(definition, stack.clock.start, end)  # from the switch on
    say(
        f"    {len(plan.slots)} job slots from {_time(plan.slots[0].at) if plan.slots else '-'} to "
        f"{_time(plan.end)} ET; the dispatcher is fed by '{definition.dispatcher.job}' every minute"
    )
    if plan.failing is not None:
        job = definition.job(plan.failing.job)
        assert job.http is not None
        stack.standins[job.http.service].script(job.http.path, [500], match=plan.failing_body)
        say(f"    stand-in {job.http.service}: {job.name}'s {slot_label(plan.failing)} call answers 500 once, then 200")
    pauser = threading.Thread(target=_pause_window, args=(stack, definition, plan, say), daemon=True)
    pauser.start()
    deadline = time.monotonic() + timeout
    stack.clock.sleep_until(plan.end, threading.Event())
    pauser.join(timeout=max(1.0, deadline - time.monotonic()))
    expected = {s.run_id for s in plan.slots if s != plan.missed}
    while time.monotonic() < deadline:  # every run finished (the failing one after its retry)
        items = read_back(stack, definition, plan, timed())
        if all(i.status not in ("running", "retry_wait", "no run") for i in items if i.slot.run_id in expected):
            break
        time.sleep(1.0)
    if plan.missed is not None and result.monitor_checks_schedules:
        key = f"schedule_missed__{plan.missed.job}"
        while time.monotonic() < deadline and not any(f.get("key") == key for f in findings()):
            time.sleep(1.0)
    time.sleep(2.0)  # a duplicate attempt or message would have arrived by now
    result.slots = read_back(stack, definition, plan, timed())
    result.findings = [f for f in findings() if str(f.get("kind", "")).startswith("schedule_")]
    scheduler = stack.scheduler
    skipped = scheduler.skipped if scheduler is not None else []
    result.paused_ticks = sum(1 for name, _ in skipped if name == definition.dispatcher.job)
    say("--- the morning, slot by slot (run documents from Firestore, requests as the stand-ins recorded them) ---")
    for item in result.slots:
        for line in describe_slot(item):
            say(f"    {line}")
    if plan.missed is not None:
        key = f"schedule_missed__{plan.missed.job}"
        found = [f for f in result.findings if f.get("key") == key]
        if found:
            say(f"    monitor: [{found[0].get('severity')}] schedule_missed: {found[0].get('message')}")
        elif result.monitor_checks_schedules:
            say(f"!! the monitor did not report {plan.missed.job}'s missed slot")
        else:
            others = ", ".join(str(f.get("kind")) for f in findings()) or "nothing"
            say(f"    monitor: this tree's monitor has no schedule_missed check yet; it reported: {others}")
    result.seconds = time.monotonic() - started
    return result


def _pause_window(
    stack: LocalStack, definition: PipelineDefinition, plan: MorningPlan, say: Callable[[str], None]
) -> None:
    """Pause the dispatcher's tick job over the missed slot's window, then resume it."""
    if plan.pause is None or plan.missed is None:
        return
    stop = threading.Event()
    tick = definition.dispatcher.job
    begin, end = plan.pause
    stack.clock.sleep_until(begin, stop)
    if stack.scheduler is None:
        return
    stack.scheduler.pause(tick)
    say(
        f"$ gcloud scheduler jobs pause {tick}   (no tick until {_time(end)} ET: {plan.missed.job}'s "
        f"{slot_label(plan.missed)} slot passes the dispatcher's {definition.dispatcher.catch_up_minutes}-minute "
        "catch-up window unrun)"
    )
    stack.clock.sleep_until(end, stop)
    if stack.scheduler is not None:
        stack.scheduler.resume(tick)
    say(f"$ gcloud scheduler jobs resume {tick}")


def check_morning(result: MorningResult, definition: PipelineDefinition) -> list[str]:
    """The morning's promises; an empty list when all hold."""
    problems: list[str] = []
    plan = result.plan
    if plan is None:
        return ["the morning was not played"]
    if plan.failing is None:
        problems.append("the morning has no HTTP job slot to fail once")
    if plan.missed is None:
        problems.append("the morning has no slot alone in its window to let pass unrun")
    for item in result.slots:
        job, name = item.job, f"{item.slot.job} {slot_label(item.slot)}"
        if item.slot == plan.missed:
            if item.run is not None or item.records:
                problems.append(f"{name} should have passed unrun (the tick was paused): {item.status}")
            continue
        want = 2 if item.slot == plan.failing else 1
        if item.status != "succeeded" or item.attempts != want:
            problems.append(
                f"{name}: {item.status} after {item.attempts} attempt(s), expected success on attempt {want}"
            )
        if job.http is not None:
            statuses = [int(r.get("status") or 0) for r in item.records]
            answered = ["5xx" if s >= 500 else "2xx" if 200 <= s < 300 else str(s) for s in statuses]
            expected = ["5xx", "2xx"] if item.slot == plan.failing else ["2xx"]
            if answered != expected:
                problems.append(f"{name}: the stand-in recorded answers {statuses}, expected {expected}")
            base = (item.run or {}).get("request", {}).get("audience")
            if job.http.auth == "id_token" and any(r.get("aud") != base for r in item.records):
                problems.append(f"{name}: token audiences {[r.get('aud') for r in item.records]}, expected {base}")
        elif job.pubsub is not None and job.pubsub.message == "trigger" and item.messages != 1:
            problems.append(f"{name}: {item.messages} messages on {job.pubsub.topic}, expected 1")
    if plan.missed is not None and result.monitor_checks_schedules:
        key = f"schedule_missed__{plan.missed.job}"
        if not any(f.get("key") == key for f in result.findings):
            problems.append(f"the monitor did not report schedule_missed for {plan.missed.job}")
    return problems


__all__ = [
    "MORNING_ACCELERATE",
    "MorningPlan",
    "MorningResult",
    "MorningSlot",
    "check_morning",
    "plan_morning",
    "run_morning",
]
