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
- heartbeats: its own (written every run) and the auto-retry heartbeat's age.

Findings are deduplicated by ``shared.monitor.alerts``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from shared.clock import Clock, today_et
from shared.orchestration.state import TransitionState
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore

Severity = Literal["INFO", "WARNING", "ERROR", "CRITICAL"]
MONITOR_HEARTBEAT_ID = "phase_transition_monitor"
RETRY_HEARTBEAT_ID = "auto_retry_processor"


@dataclass(frozen=True)
class Finding:
    """One thing an operator should know. ``key`` identifies it across runs for deduplication."""

    kind: str
    severity: Severity
    message: str
    transition: str | None = None
    game_date: date | None = None
    details: dict[str, Any] = field(default_factory=dict)

    @property
    def key(self) -> str:
        return "__".join(x for x in (self.kind, self.transition or "", str(self.game_date or "")) if x)

    @property
    def fingerprint(self) -> str:
        """Changes when the substance changes (not the wording of times)."""
        return hashlib.sha256(json.dumps(self.details, sort_keys=True, default=str).encode()).hexdigest()[:16]


@dataclass
class MonitorReport:
    ran_at: datetime
    findings: list[Finding] = field(default_factory=list)
    triggered: list[str] = field(default_factory=list)
    dates_checked: int = 0


class TransitionMonitor:
    def __init__(
        self,
        definition: PipelineDefinition,
        clock: Clock,
        firestore_client: firestore.Client,
        bigquery_client: bigquery.Client | Callable[[], bigquery.Client],
        project: str,
        services: dict[str, TransitionService],
    ) -> None:
        self.definition = definition
        self.clock = clock
        self.firestore = firestore_client
        self._bq = bigquery_client
        self.project = project
        self.services = services
        self.tz = ZoneInfo(definition.pipeline.timezone)

    @property
    def bq(self) -> bigquery.Client:
        if callable(self._bq) and not hasattr(self._bq, "query"):
            self._bq = self._bq()
        return self._bq  # type: ignore[return-value]

    def _state(self, transition: str) -> TransitionState:
        return TransitionState(self.firestore, self.definition.pipeline.state_collection, transition)

    # -- the run ----------------------------------------------------------------------------
    def run(self, lookback_days: int | None = None, *, dry_run: bool = False) -> MonitorReport:
        now = self.clock.now()
        report = MonitorReport(ran_at=now)
        settings = self.definition.monitor
        today = today_et(self.clock, self.tz)
        window = [today - timedelta(days=n) for n in range(lookback_days or settings.lookback_days, -1, -1)]
        grid_start = today - timedelta(days=settings.grid_days)
        final_games = self._final_games(grid_start, today)
        for transition in self.definition.transitions:
            for day in window:
                report.dates_checked += 1
                report.findings += self._check_date(transition.name, day, final_games.get(day, 0), report, dry_run)
        report.findings += self._grid(grid_start, today, final_games)
        report.findings += self._retry_queue()
        report.findings += self._retry_heartbeat(now)
        if not dry_run:
            self._write_heartbeat(report)
        return report

    def _check_date(self, name: str, day: date, games: int, report: MonitorReport, dry_run: bool) -> list[Finding]:
        transition = self.definition.transition(name)
        state = self._state(name).load(day)
        now = self.clock.now()
        if state.triggered_current is not None:
            return self._handoff(name, day, state.triggered_current)
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
            reason = (
                detail
                if kind == "blocked"
                else (state.last_gate or {}).get("game_coverage", {}).get("reason", "blocked")
            )
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
            "SELECT processor_name, CAST(game_date AS STRING) AS game_date, status, resolution_notes "
            f"FROM {table} WHERE status = 'failed_permanent' "
            "OR (status = 'pending' AND next_retry_at < @overdue_before) ORDER BY game_date, processor_name"
        )
        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("overdue_before", "TIMESTAMP", overdue_before)]
        )
        try:
            rows = list(self.bq.query(sql, job_config=config).result(timeout=60))
        except gexc.NotFound:
            return [Finding("retry_queue_missing", "ERROR", f"retry queue table {table} does not exist", details={})]
        permanent = sorted(f"{r['processor_name']}@{r['game_date']}" for r in rows if r["status"] == "failed_permanent")
        overdue = sorted(f"{r['processor_name']}@{r['game_date']}" for r in rows if r["status"] == "pending")
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

    def _retry_heartbeat(self, now: datetime) -> list[Finding]:
        doc = self.firestore.collection(self.definition.monitor.heartbeat_collection).document(RETRY_HEARTBEAT_ID).get()
        stale = timedelta(minutes=self.definition.monitor.retry_heartbeat_stale_minutes)
        last = (doc.to_dict() or {}).get("last_run_at") if doc.exists else None
        if isinstance(last, datetime) and now - last <= stale:
            return []
        when = "never" if last is None else f"{int((now - last).total_seconds() // 60)} min ago"
        return [
            Finding("retry_heartbeat_stale", "ERROR", f"auto-retry last ran {when}", details={"last_run_at": str(last)})
        ]

    def _write_heartbeat(self, report: MonitorReport) -> None:
        self.firestore.collection(self.definition.monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID).set(
            {
                "last_run_at": report.ran_at,
                "findings": len(report.findings),
                "triggered": report.triggered,
                "dates_checked": report.dates_checked,
                "kinds": sorted({f.kind for f in report.findings}),
            }
        )


def monitor_heartbeat(firestore_client: firestore.Client, definition: PipelineDefinition, now: datetime) -> str:
    """ "monitor last ran N min ago" for operators."""
    doc = firestore_client.collection(definition.monitor.heartbeat_collection).document(MONITOR_HEARTBEAT_ID).get()
    last = (doc.to_dict() or {}).get("last_run_at") if doc.exists else None
    if not isinstance(last, datetime):
        return "monitor has never run"
    return f"monitor last ran {int((now - last).total_seconds() // 60)} min ago"


def _gate_error_reason(last_gate: dict[str, Any] | None) -> str:
    gates = (last_gate or {}).values()
    errors = [str(g.get("reason")) for g in gates if isinstance(g, dict) and g.get("verdict") == "error"]
    return "; ".join(errors) or "gate error"
