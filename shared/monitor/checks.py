"""The transition monitor: every 10 minutes, find stuck, blocked, silent and failed transitions.

Per transition and per date of the recent window it loads the date's state and re-evaluates
it through the *same* ``TransitionService.evaluate`` the transition functions use, so a
deadline tier fires with no new message through the same claim protocol (a monitor and a late
completion can never both trigger). Then:

- stuck: completions recorded, not triggered, first completion older than the transition's
  ``stuck_after_minutes`` → the engine's reason (missing processors, next tier);
- blocked: the engine or a gate blocked the date → the reason;
- gate_error: a gate cannot run as configured (unknown column or table, no permission);
- handoff: triggered, but the next transition has no completion within the handoff timeout;
- silent: the schedule has Final games for the date and the transition has no activity at all;
- retry queue health: ``failed_permanent`` rows and overdue ``pending`` rows;
- a cheap grid over ``grid_days``: one schedule query and one Firestore query for the whole
  window (not per date) → dates with Final games and no phase-6 trigger;
- retry dispatch failing: ``pending`` rows whose dispatch (our publish, or the processor's
  ``retry_url``) failed on ``DISPATCH_FAILING_AFTER`` consecutive ticks or more;
- dead letters: each function's dead-letter pull subscription (named by ``dead_letter_routes``,
  the one naming rule ``deploy.spec`` uses too) is peeked: messages are pulled and released at once
  (ack deadline 0), so they stay for ``phasectl dlq replay``;
- heartbeats: its own (written every run) and the auto-retry heartbeat's age. A missing auto-retry
  heartbeat is ``retry_heartbeat_pending`` (INFO) until one auto-retry interval (its cron's longest
  gap) plus its function's timeout after the monitor's first recorded pass (``first_run_at`` of its
  heartbeat: the earliest evidence the deployment is up, on Google Cloud after a fresh deploy as on
  the local cloud); after that, and for a heartbeat older than ``retry_heartbeat_stale_minutes``, it
  is ``retry_heartbeat_stale`` (ERROR).

Isolation (lesson L23): every (transition, date) evaluation and every other check runs on its own.
One that raises becomes a ``check_error`` finding (ERROR, naming the item and the exception, at
most 500 characters) and the pass goes on; the heartbeat is always written, with the number of
errors and findings.

Findings are deduplicated by ``shared.monitor.alerts``.
"""

from __future__ import annotations

import functools
import hashlib
import itertools
import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar, cast
from zoneinfo import ZoneInfo

from shared.clock import Clock, today_et
from shared.orchestration.engine import select_mode
from shared.orchestration.state import TransitionState
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import PipelineDefinition
from shared.retry.policy import DISPATCH_FAILING_AFTER
from shared.structured_log import get_logger

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import bigquery, firestore

    from shared.orchestration.outbox import OutboxDelivery
    from shared.orchestration.timed import TimedTriggerService

Severity = Literal["INFO", "WARNING", "ERROR", "CRITICAL"]
MONITOR_HEARTBEAT_ID = "phase_transition_monitor"
RETRY_HEARTBEAT_ID = "auto_retry_processor"
CHECK_ERROR_MAX_CHARS = 500
DEAD_LETTER_PEEK_MAX = 100  # messages pulled per subscription and pass (then released at once)
DEAD_LETTER_SAMPLE_IDS = 5
RETRY_GRACE_MARGIN = timedelta(minutes=5)  # when the auto-retry function has no timeout in [deploy]
_log = get_logger("shared.monitor.checks")
T = TypeVar("T")


# -- deployment naming: the one rule for function and dead-letter names ------------------------
def function_cloud_name(function: str) -> str:
    """A function's Cloud Functions name: its folder name with hyphens."""
    return function.replace("_", "-")


def function_trigger_topics(definition: PipelineDefinition) -> dict[str, str]:
    """Every deployable function → the topic that triggers it (a transition: its source phase's
    completion topic; a scheduled function: its schedule's topic)."""
    topics = {t.name: definition.source_topic(t) for t in definition.transitions}
    for schedule in definition.schedule_entries().values():
        if schedule.function:
            topics[schedule.function] = schedule.topic
    return {name: topics[name] for name in definition.function_names()}


@dataclass(frozen=True)
class DeadLetterRoute:
    """Where a function's undeliverable trigger messages go after ``max_delivery_attempts``."""

    function: str
    trigger_topic: str
    topic: str  # ``<trigger topic><dead_letter_suffix>``
    subscription: str  # ``<cloud name><dead_letter_suffix>-sub``, a pull subscription on ``topic``


def dead_letter_routes(definition: PipelineDefinition) -> tuple[DeadLetterRoute, ...]:
    """Each function's dead-letter topic and pull subscription, in ``function_names()`` order.

    The single naming rule: ``deploy.spec.build_spec`` and the monitor both read it from here
    (the monitor's bundle may not import ``deploy``).
    """
    suffix = definition.deploy.dead_letter_suffix
    return tuple(
        DeadLetterRoute(
            function=name,
            trigger_topic=trigger,
            topic=f"{trigger}{suffix}",
            subscription=f"{function_cloud_name(name)}{suffix}-sub",
        )
        for name, trigger in function_trigger_topics(definition).items()
    )


@dataclass(frozen=True)
class Finding:
    """One thing an operator should know. ``key`` identifies it across runs for deduplication."""

    kind: str
    severity: Severity
    message: str
    transition: str | None = None
    game_date: date | None = None
    details: dict[str, Any] = field(default_factory=dict)
    subject: str | None = None  # what else the finding is about (a check, a function), part of the key

    @property
    def key(self) -> str:
        parts = (self.kind, self.transition or "", str(self.game_date or ""), self.subject or "")
        return "__".join(x for x in parts if x)

    @property
    def fingerprint(self) -> str:
        """Changes when the substance changes (not the wording of times)."""
        return hashlib.sha256(json.dumps(self.details, sort_keys=True, default=str).encode()).hexdigest()[:16]


def check_error(
    what: str,
    exc: BaseException,
    *,
    transition: str | None = None,
    game_date: date | None = None,
    check: str | None = None,
) -> Finding:
    """The finding for a check (or one transition's date) that raised: the pass goes on (L23)."""
    text = f"{what}: check failed with {type(exc).__name__}: {' '.join(str(exc).split())}"
    if len(text) > CHECK_ERROR_MAX_CHARS:
        text = text[: CHECK_ERROR_MAX_CHARS - 1] + "…"
    return Finding(
        "check_error",
        "ERROR",
        text,
        transition,
        game_date,
        {"check": check or what, "error_type": type(exc).__name__},
        subject=check,
    )


@dataclass
class MonitorReport:
    ran_at: datetime
    findings: list[Finding] = field(default_factory=list)
    triggered: list[str] = field(default_factory=list)
    dates_checked: int = 0
    # the monitor's first recorded pass (this one when none is recorded): kept in its heartbeat as
    # ``first_run_at``; ``None`` when it could not be read this pass (the recorded value is kept)
    up_since: datetime | None = None

    @property
    def errors(self) -> int:
        """Checks (or transition dates) that raised in this pass."""
        return sum(1 for f in self.findings if f.kind == "check_error")


class TransitionMonitor:
    def __init__(
        self,
        definition: PipelineDefinition,
        clock: Clock,
        firestore_client: firestore.Client,
        bigquery_client: bigquery.Client | Callable[[], bigquery.Client],
        project: str,
        services: dict[str, TransitionService],
        subscriber: pubsub_v1.SubscriberClient | Callable[[], pubsub_v1.SubscriberClient] | None = None,
        sensors: Mapping[str, TimedTriggerService] | None = None,
        outbox: OutboxDelivery | None = None,
    ) -> None:
        self.outbox = outbox  # log rows and retry hand-offs left by the transitions (delivered every pass)
        self.definition = definition
        self.clock = clock
        self.firestore = firestore_client
        self._bq = bigquery_client
        self.project = project
        self.services = services
        self._subscriber = subscriber
        self.sensors = dict(sensors or {})  # the sensors with an `overdue_after`, by name
        self.tz = ZoneInfo(definition.pipeline.timezone)

    @property
    def bq(self) -> bigquery.Client:
        if callable(self._bq) and not hasattr(self._bq, "query"):
            self._bq = self._bq()
        return self._bq  # type: ignore[return-value]

    @property
    def subscriber(self) -> pubsub_v1.SubscriberClient:
        """Reads the dead-letter subscriptions (built on first use: a pass without it loads no gRPC channel)."""
        if self._subscriber is None:
            from shared.gcp import subscriber_client

            self._subscriber = subscriber_client()
        elif callable(self._subscriber) and not hasattr(self._subscriber, "pull"):
            self._subscriber = self._subscriber()
        return self._subscriber

    def _state(self, transition: str) -> TransitionState:
        return TransitionState(self.firestore, self.definition.pipeline.state_collection, transition)

    # -- the run ----------------------------------------------------------------------------
    def run(
        self, lookback_days: int | None = None, *, dry_run: bool = False, write_heartbeat: bool = True
    ) -> MonitorReport:
        """One pass. Never raises for a failing check (each is isolated, L23); writes the heartbeat
        unless ``dry_run`` or ``write_heartbeat=False`` (the caller writes it after alerting)."""
        now = self.clock.now()
        report = MonitorReport(ran_at=now)
        settings = self.definition.monitor
        today = today_et(self.clock, self.tz)
        window = [today - timedelta(days=n) for n in range(lookback_days or settings.lookback_days, -1, -1)]
        grid_start = today - timedelta(days=settings.grid_days)
        # the schedule read feeds the grid and the silent check; when it fails, both go without
        # (silent finds nothing this pass) and the grid reports the error
        final_games = self._isolated(report, "grid", lambda: self._final_games(grid_start, today), check="grid")
        for transition in self.definition.transitions:
            for day in window:
                report.dates_checked += 1
                games = (final_games or {}).get(day, 0)
                check = functools.partial(self._check_date, transition.name, day, games, report, dry_run)
                what = f"{transition.name} {day}"
                report.findings += (
                    self._isolated(report, what, check, transition=transition.name, game_date=day) or []
                )
        for name in self.sensors:
            for day in window:
                if not (final_games or {}).get(day):
                    continue  # no Final games that night (or the schedule read failed): nothing to be overdue
                overdue = functools.partial(self._sensor_overdue, name, day)
                report.dates_checked += 1
                found = self._isolated(report, f"{name} {day}", overdue, transition=name, game_date=day)
                report.findings += found or []
        if final_games is not None:
            report.findings += self._isolated(
                report, "grid", lambda: self._grid(grid_start, today, final_games), check="grid"
            ) or []
        report.findings += self._isolated(report, "retry_queue", self._retry_queue, check="retry_queue") or []
        report.findings += (
            self._isolated(
                report, "retry_heartbeat", lambda: self._retry_heartbeat(now, report), check="retry_heartbeat"
            )
            or []
        )
        report.findings += self._dead_letters(report)
        if not dry_run:
            self._isolated(report, "outbox", self._deliver_outbox, check="outbox")
        if not dry_run and write_heartbeat:
            self.write_heartbeat(report)
        return report

    def _sensor_overdue(self, name: str, day: date) -> list[Finding]:
        """A sensor's date past its ``overdue_after`` with every condition met but no trigger out
        (e.g. ``grading_overdue``: games Final, predictions present, not graded, no grading trigger)."""
        from shared.orchestration.timed import overdue_at

        service = self.sensors[name]
        sensor = service.trigger
        due = overdue_at(sensor, day)
        if due is None or self.clock.now() < due:
            return []
        if service.state.load(day).triggered_slot(None) is not None:
            return []
        readiness = next((s for s in sensor.slots if not s.fallback), sensor.slots[0])
        results = service.check(day, readiness)  # read only: no claim
        if not results or any(r.verdict != "pass" for r in results):
            return []  # not ready (not Final, no predictions, already done): nothing is overdue
        reasons = "; ".join(r.reason for r in results)
        return [
            Finding(
                sensor.overdue_finding,
                "ERROR",
                f"{name} {day}: ready ({reasons}) but no trigger went out by {sensor.overdue_after} "
                f"{sensor.timezone}; the fallbacks did not fire either (check the scheduler jobs)",
                name,
                day,
                {"conditions": {r.gate: r.reason for r in results}, "due": due.isoformat()},
            )
        ]

    def _deliver_outbox(self) -> None:
        """Log rows and hand-offs still in the outbox (auto-retry down, a lost nudge, a BigQuery
        outage) go out on every pass (L19, L24; issue 18)."""
        if self.outbox is not None:
            report = self.outbox.deliver()
            if report.error or report.handoffs_pending:
                _log.warning("outbox not fully delivered: %s", report.summary())

    def _isolated(
        self,
        report: MonitorReport,
        what: str,
        run: Callable[[], T],
        *,
        transition: str | None = None,
        game_date: date | None = None,
        check: str | None = None,
    ) -> T | None:
        """``run()``, or ``None`` with a ``check_error`` finding in ``report`` (and an ERROR log with the
        traceback) when it raises: one bad item never aborts the pass (L23)."""
        try:
            return run()
        except Exception as exc:  # noqa: BLE001 - isolated (L23): a check_error finding and an ERROR log
            finding = check_error(what, exc, transition=transition, game_date=game_date, check=check)
            report.findings.append(finding)
            _log.error(
                "monitor %s",
                finding.message,
                exc_info=exc,
                extra={"labels": {"alert": "check_error", "check": check or "transition_date"}},
            )
            return None

    def _check_date(self, name: str, day: date, games: int, report: MonitorReport, dry_run: bool) -> list[Finding]:
        transition = self.definition.transition(name)
        state = self._state(name).load(day)
        now = self.clock.now()
        # a transition with modes triggers once per mode: a pre-game (same_day) trigger does not
        # settle the post-game (overnight) one, so look at the current mode's slot
        mode = select_mode(transition, day, self.clock, self.tz)[0]
        latched = state.triggered_slot(mode)
        if latched is not None:
            return self._handoff(name, day, latched) + _gate_alerts(name, day, state.last_gate, latched)
        earlier = state.triggered_current  # another mode's trigger of this generation, if any
        if not state.completions:
            # only the first transition can be silent on its own: further down, an untriggered
            # upstream explains the silence, and a triggered one is the upstream's handoff finding
            is_first = name == self.definition.transitions[0].name
            # grace: games of a date are processed overnight; silent only once the first
            # transition's stuck threshold has passed after midnight (New York) that follows
            midnight = datetime.combine(day + timedelta(days=1), time(0), tzinfo=self.tz)
            overdue = now > midnight + timedelta(minutes=transition.stuck_after_minutes)
            if games and is_first and overdue and state.status == "waiting":
                return [
                    Finding(
                        "silent",
                        "ERROR",
                        f"{name} {day}: {games} Final game(s) in the schedule but no completion at all",
                        name,
                        day,
                        {"final_games": games},
                    )
                ]
            return []
        service = self.services[name]
        if dry_run:
            from shared.orchestration.engine import decide

            decision = decide(self.definition, transition, day, state.completions, self.clock)
            kind: str = decision.kind
            detail = decision.reason
        else:
            outcome = service.evaluate(day, owner=f"monitor:{now.isoformat()}")
            kind, detail = outcome.kind, outcome.detail
            if outcome.kind in ("claimed_elsewhere", "already_triggered"):
                # a late completion won the claim (or latched) since the state was loaded: the date
                # is being triggered right now, not stuck; the next pass sees the latch and its handoff
                return []
            if outcome.kind == "triggered":
                report.triggered.append(outcome.trigger_id or name)
                return [
                    Finding(
                        "deadline_trigger",
                        "INFO",
                        f"{name} {day}: triggered by the monitor: {detail}",
                        name,
                        day,
                        {"trigger_id": outcome.trigger_id},
                    )
                ]
        if kind == "gate_error" or (kind != "blocked" and state.status == "gate_error"):
            gate_reason = detail if kind == "gate_error" else _gate_error_reason(state.last_gate)
            return [
                Finding(
                    "gate_error",
                    "ERROR",
                    f"{name} {day}: a gate cannot run as configured (fix it; the next pass re-evaluates): "
                    f"{gate_reason}",
                    name,
                    day,
                    {"reason": gate_reason},
                )
            ]
        if kind == "blocked" or state.status == "blocked":
            reason = detail if kind == "blocked" else _gate_reason(state.last_gate, "blocked") or "blocked"
            return [
                Finding(
                    "blocked",
                    "ERROR",
                    f"{name} {day}: blocked: {reason}",
                    name,
                    day,
                    {"reason": reason, "missing_games": list(state.missing_games)},
                )
            ]
        known = [c.completed_at for c in state.completions if c.processor is not None]
        if earlier is not None and earlier.get("at") is not None:  # measure from after that trigger
            known = [at for at in known if at > earlier["at"]]
        if not known:  # only unknown names so far: they never count (L08), nothing is stuck yet
            return []
        age = now - min(known)
        if age > timedelta(minutes=transition.stuck_after_minutes):
            missing = self._missing(transition.name, day, state)
            return [
                Finding(
                    "stuck",
                    "WARNING",
                    f"{name} {day}: not triggered {int(age.total_seconds() // 60)} min after the first "
                    f"completion: {detail}",
                    name,
                    day,
                    {"missing": missing},
                )
            ]
        return []

    def _missing(self, name: str, day: date, state: Any) -> list[str]:
        from shared.orchestration.engine import progress_of

        transition = self.definition.transition(name)
        return list(progress_of(self.definition, transition, day, state.completions, self.clock).missing)

    def _handoff(self, name: str, day: date, triggered: dict[str, Any]) -> list[Finding]:
        transition = self.definition.transition(name)
        nxt = next((t for t in self.definition.transitions if t.source_phase == transition.target_phase), None)
        at = triggered.get("at")
        if nxt is None or not isinstance(at, datetime):
            return []
        timeout = timedelta(minutes=self.definition.monitor.handoff_timeout_minutes)
        if self.clock.now() - at < timeout:
            return []
        following = self._state(nxt.name).load(day)
        if following.completions:
            return []
        return [
            Finding(
                "handoff",
                "ERROR",
                f"{name} {day}: triggered {triggered.get('trigger_id')} but phase {transition.target_phase} "
                f"reported nothing within {timeout.total_seconds() / 60:.0f} min",
                name,
                day,
                {"trigger_id": triggered.get("trigger_id")},
            )
        ]

    # -- window-wide reads (one query each, whatever the number of stored dates) ----------------
    def _final_games(self, start: date, end: date) -> dict[date, int]:
        from google.cloud import bigquery

        g = self.definition.games
        sql = (
            f"SELECT {g.schedule_date_column} AS game_date, "
            f"COUNT(DISTINCT CAST({g.schedule_game_id_column} AS STRING)) AS games "
            f"FROM `{self.project}.{g.schedule_table}` "
            f"WHERE {g.schedule_date_column} BETWEEN @start AND @end "
            f"AND CAST({g.schedule_status_column} AS STRING) = @final GROUP BY 1"
        )
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("start", "DATE", start),
                bigquery.ScalarQueryParameter("end", "DATE", end),
                bigquery.ScalarQueryParameter("final", "STRING", g.final_status),
            ]
        )
        return {r["game_date"]: int(r["games"]) for r in self.bq.query(sql, job_config=config).result(timeout=60)}

    def _grid(self, start: date, today: date, final_games: dict[date, int]) -> list[Finding]:
        last = self.definition.transitions[-1].name
        from google.cloud.firestore_v1.base_query import FieldFilter
        from google.cloud.firestore_v1.field_path import FieldPath

        # one range read over document ids ("{transition}__{date}"): served by the built-in
        # index on __name__, so production needs no composite index for it
        col = self.firestore.collection(self.definition.pipeline.state_collection)
        docs = (
            col.where(filter=FieldFilter(FieldPath.document_id(), ">=", col.document(f"{last}__{start.isoformat()}")))
            .where(filter=FieldFilter(FieldPath.document_id(), "<=", col.document(f"{last}__{today.isoformat()}")))
            .stream()
        )
        done = {d.get("game_date") for d in docs if (d.to_dict() or {}).get("status") == "triggered"}
        horizon = today - timedelta(days=1)  # tonight's games are not expected through phase 6 yet
        gaps = sorted(str(d) for d, n in final_games.items() if n and d < horizon and d.isoformat() not in done)
        if not gaps:
            return []
        return [
            Finding(
                "grid_gap",
                "CRITICAL",
                f"{len(gaps)} date(s) in the last {self.definition.monitor.grid_days} days had Final games "
                f"and no phase-6 trigger: {', '.join(gaps[:20])}{' …' if len(gaps) > 20 else ''}",
                None,
                None,
                {"dates": gaps},
            )
        ]

    def _retry_queue(self) -> list[Finding]:
        from google.api_core import exceptions as gexc
        from google.cloud import bigquery

        table = f"`{self.project}.{self.definition.pipeline.dataset}.{self.definition.retry.queue_table}`"
        overdue_before = self.clock.now() - timedelta(minutes=self.definition.monitor.overdue_pending_minutes)
        sql = (
            "SELECT processor_name, CAST(game_date AS STRING) AS game_date, status, resolution_notes, "
            "COALESCE(dispatch_failures, 0) AS dispatch_failures, next_retry_at "
            f"FROM {table} WHERE status = 'failed_permanent' "
            "OR (status = 'pending' AND (next_retry_at < @overdue_before OR dispatch_failures >= @failing)) "
            "ORDER BY game_date, processor_name"
        )
        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("overdue_before", "TIMESTAMP", overdue_before),
                bigquery.ScalarQueryParameter("failing", "INT64", DISPATCH_FAILING_AFTER),
            ]
        )
        try:
            rows = list(self.bq.query(sql, job_config=config).result(timeout=60))
        except gexc.NotFound:
            return [Finding("retry_queue_missing", "ERROR", f"retry queue table {table} does not exist", details={})]
        permanent = sorted(f"{r['processor_name']}@{r['game_date']}" for r in rows if r["status"] == "failed_permanent")
        pending = [r for r in rows if r["status"] == "pending"]
        failing = sorted(
            (f"{r['processor_name']}@{r['game_date']}", int(r["dispatch_failures"]), r["resolution_notes"] or "")
            for r in pending
            if int(r["dispatch_failures"]) >= DISPATCH_FAILING_AFTER
        )
        overdue = sorted(
            f"{r['processor_name']}@{r['game_date']}"
            for r in pending
            if r["next_retry_at"] is not None and r["next_retry_at"] < overdue_before
        )
        findings = []
        if permanent:
            findings.append(
                Finding(
                    "retry_failed_permanent",
                    "ERROR",
                    f"{len(permanent)} failed_permanent retry row(s): {', '.join(permanent[:20])}",
                    details={"rows": permanent},
                )
            )
        if failing:
            listed = ", ".join(f"{key} ({n} ticks)" for key, n, _ in failing[:20])
            findings.append(
                Finding(
                    "retry_dispatch_failing",
                    "ERROR",
                    f"{len(failing)} retry row(s) could not be dispatched on {DISPATCH_FAILING_AFTER} or more "
                    f"consecutive ticks (Pub/Sub or the processor's retry_url; the retry budget is untouched): "
                    f"{listed}; last: {failing[0][2][:200]}",
                    details={"rows": [key for key, _, _ in failing]},
                )
            )
        if overdue:
            findings.append(
                Finding(
                    "retry_overdue",
                    "WARNING",
                    f"{len(overdue)} pending retry row(s) overdue: {', '.join(overdue[:20])}",
                    details={"rows": overdue},
                )
            )
        return findings

    def _retry_heartbeat(self, now: datetime, report: MonitorReport | None = None) -> list[Finding]:
        """The auto-retry heartbeat: fresh, ``retry_heartbeat_pending`` (never ran, within the grace after
        the monitor's first pass; INFO) or ``retry_heartbeat_stale`` (ERROR)."""
        heartbeats = self.firestore.collection(self.definition.monitor.heartbeat_collection)
        up_since = recorded_up_since(heartbeats.document(MONITOR_HEARTBEAT_ID).get()) or now
        if report is not None:
            report.up_since = up_since
        doc = heartbeats.document(RETRY_HEARTBEAT_ID).get()
        stale = timedelta(minutes=self.definition.monitor.retry_heartbeat_stale_minutes)
        last = (doc.to_dict() or {}).get("last_run_at") if doc.exists else None
        if isinstance(last, datetime) and now - last <= stale:
            return []
        if last is None:
            expected_by = up_since + retry_heartbeat_grace(self.definition)
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

    def _dead_letters(self, report: MonitorReport) -> list[Finding]:
        """Per function: its dead-letter backlog (``dead_letters``, ERROR); every subscription that does
        not exist, in one ``dead_letter_subscription_missing`` WARNING. Each function is isolated."""
        from google.api_core import exceptions as gexc

        findings: list[Finding] = []
        missing: list[str] = []
        for route in dead_letter_routes(self.definition):

            def peek(route: DeadLetterRoute = route) -> list[Finding]:
                try:
                    return self._peek_dead_letters(route)
                except gexc.NotFound:
                    missing.append(route.subscription)
                    return []

            findings += (
                self._isolated(report, f"dead_letters {route.function}", peek, check=f"dead_letters:{route.function}")
                or []
            )
        if missing:
            findings.append(
                Finding(
                    "dead_letter_subscription_missing",
                    "WARNING",
                    f"{len(missing)} dead-letter subscription(s) do not exist, so their dead letters cannot be "
                    f"seen (create them: phasectl deploy apply): {', '.join(missing)}",
                    details={"subscriptions": missing},
                )
            )
        return findings

    def _peek_dead_letters(self, route: DeadLetterRoute) -> list[Finding]:
        """Pull what waits (no waiting), then release it at once (ack deadline 0): nothing is consumed,
        the messages stay for ``phasectl dlq replay``. A dry run peeks too: it changes nothing."""
        subscriber = self.subscriber
        path = subscriber.subscription_path(self.project, route.subscription)
        response = subscriber.pull(
            subscription=path, max_messages=DEAD_LETTER_PEEK_MAX, return_immediately=True, timeout=30
        )
        received = list(response.received_messages)
        if not received:
            return []
        subscriber.modify_ack_deadline(subscription=path, ack_ids=[m.ack_id for m in received], ack_deadline_seconds=0)
        count = len(received)
        samples = sorted(m.message.message_id for m in received)[:DEAD_LETTER_SAMPLE_IDS]
        seen = f"{count}" if count < DEAD_LETTER_PEEK_MAX else f"at least {count}"
        return [
            Finding(
                "dead_letters",
                "ERROR",
                f"{route.function}: {seen} message(s) dead-lettered on {route.subscription} (from "
                f"{route.trigger_topic} after the delivery attempts ran out); e.g. {', '.join(samples)}; "
                "inspect and replay with phasectl dlq replay",
                details={
                    "function": route.function,
                    "subscription": route.subscription,
                    "topic": route.topic,
                    "count": count,
                    "sample_message_ids": samples,
                },
                subject=route.function,
            )
        ]

    def write_heartbeat(self, report: MonitorReport) -> None:
        """``monitor_heartbeats/phase_transition_monitor``: when it ran, findings and errors (L12, L23), and
        ``first_run_at`` (its first pass: kept across passes, merged, never moved later)."""
        doc: dict[str, Any] = {
            "last_run_at": report.ran_at,
            "findings": len(report.findings),
            "errors": report.errors,
            "triggered": report.triggered,
            "dates_checked": report.dates_checked,
            "kinds": sorted({f.kind for f in report.findings}),
        }
        if report.up_since is not None:
            doc["first_run_at"] = report.up_since
        heartbeats = self.firestore.collection(self.definition.monitor.heartbeat_collection)
        heartbeats.document(MONITOR_HEARTBEAT_ID).set(doc, merge=True)


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


def _gate_reason(last_gate: dict[str, Any] | None, verdict: str) -> str:
    """The reasons of the last evaluation's gates with ``verdict``, each prefixed by its gate."""
    items = sorted((last_gate or {}).items())
    gates = [(n, g) for n, g in items if isinstance(g, dict) and g.get("verdict") == verdict]
    return "; ".join(f"{n}: {g.get('reason')}" for n, g in gates)


def _gate_error_reason(last_gate: dict[str, Any] | None) -> str:
    return _gate_reason(last_gate, "error") or "gate error"


def _gate_alerts(name: str, day: date, last_gate: dict[str, Any] | None, latched: dict[str, Any]) -> list[Finding]:
    """A triggered date whose gates were under an alert line: a warning while the date is checked."""
    reason = _gate_reason(last_gate, "alert")
    if not reason:
        return []
    return [
        Finding(
            "gate_alert",
            "WARNING",
            f"{name} {day}: triggered with a gate under its alert line: {reason}",
            name,
            day,
            {"reason": reason, "trigger_id": latched.get("trigger_id")},
        )
    ]
