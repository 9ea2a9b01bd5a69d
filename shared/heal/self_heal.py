"""Self-heal checkpoints (issue 27, item 2): re-trigger what never ran, through the latch.

A checkpoint is a ``[[jobs]]`` slot (default ``self-heal-predictions``, 12:45 ET daily, 15 minutes
before the tonight export, as the replaced ``self_heal`` function: orchestration/cloud_functions/
self_heal/main.py:5-8, bin/deploy/deploy_self_heal_function.sh:38-39) that sends the monitor a
``MonitorTick`` with ``check = "self_heal"`` and its date. For each ``[heal.self_heal]`` target on
its date (and every unresolved (target, date) of the last ``verify_days``) it reads, in one
parameterised query on the date's partition, the schedule's games and each step's rows, and
decides (``shared.heal.self_heal_plan``). To heal, it claims the (date, transition)'s next attempt
(create-if-absent, at most ``max_heals``, once per checkpoint: ``shared.heal.self_heal_store``),
then does what ``phasectl trigger --force`` does: ``reopen`` (a new generation whose triggers carry
``trigger_source = "self_heal"``) and ``evaluate`` (the same claim → gates → publish → latch as every
trigger: the date's completions decide; a date whose upstream completions are absent answers
``waiting`` and that is recorded as ``not_triggered``, never as a heal).

Every action is a Firestore record (the attempt and the verdict), a ``phase_execution_log`` row
(through the outbox) and a structured log line. A heal task has no alert step: the monitor's
10-minute pass reports ``self_heal_failed`` from the verdicts (``shared.monitor.heal_findings``).

Isolation and bounds (lessons L23, L26): each (target, date) is on its own; one that raises does
not stop the others, and the task raises ``TransientError`` at the end (the tick is redelivered;
a redelivery heals nothing twice). No item starts after the pass's check deadline, and each query
waits at most what is left of it.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import today_et
from shared.errors import ConfigError, TransientError
from shared.heal.self_heal_plan import (
    UNRESOLVED,
    Verdict,
    checkpoint_id,
    decide,
    earliest_missing,
    healed_before,
    target_date,
)
from shared.heal.self_heal_store import SelfHealStore
from shared.monitor.findings import MonitorReport
from shared.structured_log import get_logger, log_context

if TYPE_CHECKING:
    from shared.contracts.messages import MonitorTick
    from shared.monitor.checks import PassDeadlines, TransitionMonitor
    from shared.orchestration.gate_queries import BigQueryGateQueries
    from shared.orchestration.transition import Outcome
    from shared.pipeline._heal import HealTarget

_log = get_logger("shared.heal.self_heal")
TRIGGER_SOURCE = "self_heal"
HEALED = frozenset({"triggered", "already_triggered", "claimed_elsewhere"})  # a trigger is out (or going out)
MIN_ITEM_SECONDS = 2.0  # no (target, date) starts with less of the pass left
_PARAM = re.compile(r"@([vd]\d+)\b")


@dataclass(frozen=True)
class Observation:
    games: int  # of the target's kind (Final, or any scheduled)
    rows: dict[int, int]  # phase -> rows for the date


def run_self_heal(monitor: TransitionMonitor, tick: MonitorTick, deadlines: PassDeadlines) -> MonitorReport:
    """One self-heal checkpoint for ``tick.game_date`` (default: today in the pipeline's zone).

    Raises:
        ConfigError: a target names a transition the definition does not have.
        TransientError: a (target, date) failed (each other one was still done); the tick is redelivered.
    """
    definition = monitor.definition
    settings = definition.heal.self_heal
    report = MonitorReport(ran_at=monitor.clock.now())
    day = tick.game_date or today_et(monitor.clock, monitor.tz)
    checkpoint = checkpoint_id(tick.requested_by, day)
    if not settings.enabled:
        _log.info("self-heal checkpoint %s: [heal.self_heal] is disabled", checkpoint)
        return report
    for target in settings.targets:
        unknown = [s.transition for s in target.steps if s.transition not in monitor.services]
        if unknown:
            raise ConfigError(f"[heal.self_heal] target {target.name}: unknown transition(s) {unknown}")
    with log_context(function="phase_transition_monitor", check="self_heal"):
        return Checkpoint(monitor, checkpoint, day, deadlines).run(report)


class Checkpoint:
    """One checkpoint run: its items, each isolated and bounded."""

    def __init__(self, monitor: TransitionMonitor, checkpoint: str, day: date, deadlines: PassDeadlines) -> None:
        self.monitor = monitor
        self.definition = monitor.definition
        self.settings = monitor.definition.heal.self_heal
        self.checkpoint = checkpoint
        self.day = day
        self.deadlines = deadlines
        self.store = SelfHealStore(monitor.firestore, monitor.definition)

    def items(self) -> list[tuple[HealTarget, date]]:
        """Each target on its own date, then every unresolved (target, date) of the last ``verify_days``."""
        targets = {t.name: t for t in self.settings.targets}
        wanted = [(t, target_date(t, self.day)) for t in self.settings.targets]
        start = self.day - timedelta(days=self.settings.verify_days + 1)
        for (day, name), record in sorted(self.store.records(start, self.day + timedelta(days=1)).items()):
            target = targets.get(name)
            if target is not None and record.get("status") in UNRESOLVED and (target, day) not in wanted:
                wanted.append((target, day))
        return wanted

    def run(self, report: MonitorReport) -> MonitorReport:
        from shared.monitor.checks import PassDeadlines

        failed: list[str] = []
        for target, day in self.items():
            what = f"{target.name} {day}"
            if PassDeadlines.left(self.deadlines.checks) < MIN_ITEM_SECONDS:
                failed.append(f"{what}: not started, the pass's time is spent")
                continue
            try:
                with log_context(game_date=day.isoformat(), target=target.name):
                    self.item(target, day, report)
                report.dates_checked += 1
            except Exception as exc:  # noqa: BLE001 - isolated (L23): the others go on; raised below
                _log.error(
                    "self-heal %s %s failed: %s: %s",
                    self.checkpoint,
                    what,
                    type(exc).__name__,
                    exc,
                    exc_info=exc,
                    extra={"labels": {"alert": "self_heal_error"}},
                )
                failed.append(f"{what}: {type(exc).__name__}: {exc}"[:300])
        if failed:
            raise TransientError(f"self-heal checkpoint {self.checkpoint}: {len(failed)} item(s) failed: {failed}")
        return report

    # -- one (target, date) ------------------------------------------------------------------
    def item(self, target: HealTarget, day: date, report: MonitorReport) -> None:
        seen = self.observe(target, day)
        record = self.store.record(day, target.name)
        earlier = healed_before(record, self.checkpoint)
        step = earliest_missing(target, seen.rows) if seen.games > 0 else None
        existing = self.store.attempts(step.transition, day) if step is not None else []
        verdict = decide(
            target,
            day,
            seen.games,
            seen.rows,
            earlier_heals=earlier,
            heals_used=len(existing),
            max_heals=self.settings.max_heals,
        )
        entry: dict[str, Any] = {
            "at": self.monitor.clock.now(),
            "verdict": verdict.status,
            "games": seen.games,
            "rows": {str(k): v for k, v in sorted(seen.rows.items())},
            "transition": verdict.transition,
            "attempt": None,
        }
        status: str = verdict.status
        reason = verdict.reason
        if verdict.heal:
            assert verdict.step is not None
            healed = self.heal(target, day, verdict, existing, entry, report)
            if healed is None:
                return  # this checkpoint's other run (or a redelivery's first run) owns the verdict
            status, reason = healed
        elif status in ("no_games", "present") and record is None:
            return  # nothing was ever wrong here: no record
        previous = (record or {}).get("status")
        fields = {"status": status, "reason": reason, "transition": verdict.transition, "checkpoint": self.checkpoint}
        failed = status in ("still_missing", "cap_reached", "not_triggered") and previous != status
        row = (
            self.log_row(verdict.transition or target.steps[-1].transition, day, f"self_heal_{status}", entry, reason)
            if failed
            else None
        )
        self.store.save_verdict(day, target.name, self.checkpoint, fields, entry, self.monitor.clock.now(), row)
        if status in ("still_missing", "cap_reached", "not_triggered"):
            labels = {"alert": "self_heal_failed", "status": status}
            _log.warning(
                "self-heal %s %s %s: %s: %s",
                self.checkpoint,
                target.name,
                day,
                status,
                reason,
                extra={"labels": labels},
            )
        else:
            _log.info(
                "self-heal %s %s %s: %s: %s",
                self.checkpoint,
                target.name,
                day,
                status,
                reason,
                extra={"labels": {"self_heal": status}},
            )

    def heal(
        self,
        target: HealTarget,
        day: date,
        verdict: Verdict,
        existing: list[dict[str, Any]],
        entry: dict[str, Any],
        report: MonitorReport,
    ) -> tuple[str, str] | None:
        """Claim the next attempt and re-trigger; the verdict's (status, reason), or ``None`` when this
        run does not own the heal (a concurrent run or an earlier delivery of this checkpoint does)."""
        assert verdict.step is not None
        transition = verdict.step.transition
        doc = {"target": target.name, "missing_phase": verdict.step.phase, "reason": verdict.reason[:1000]}
        now = self.monitor.clock.now()
        claim = self.store.claim(transition, day, self.checkpoint, existing, doc, now)
        if claim.result in ("done_here", "claimed_elsewhere"):
            _log.info("self-heal %s %s %s: %s (attempt %d)", self.checkpoint, target.name, day, claim.result, claim.n)
            return None
        if claim.result == "cap_reached":  # another run used the last heal meanwhile
            return ("still_missing" if verdict.status == "still_missing" else "cap_reached"), verdict.reason
        service = self.monitor.services[transition]
        correlation_id = f"self-heal-{uuid.uuid4().hex[:12]}"
        why = f"self-heal {self.checkpoint} (attempt {claim.n}/{self.settings.max_heals}): {verdict.reason}"[:1000]
        try:
            generation = service.state.reopen(day, now, why, trigger_source=TRIGGER_SOURCE)
            outcome = service.evaluate(day, correlation_id=correlation_id, owner=f"self_heal:{self.checkpoint}")
        except Exception:
            self.store.release(transition, day, claim)  # not healed: a redelivery may heal
            raise
        result = self.outcome_doc(outcome, generation, claim.n, correlation_id)
        entry.update(attempt=claim.n, outcome=outcome.kind, trigger_id=outcome.trigger_id, generation=generation)
        row = self.log_row(transition, day, "self_heal", entry, outcome.detail, outcome.trigger_id, correlation_id)
        self.store.finish(transition, day, claim, result, row, self.monitor.clock.now())
        if outcome.kind == "triggered" and outcome.trigger_id:
            report.triggered.append(outcome.trigger_id)
        _log.warning(
            "self-heal %s re-triggered %s %s (attempt %d/%d, generation %d): %s: %s",
            self.checkpoint,
            transition,
            day,
            claim.n,
            self.settings.max_heals,
            generation,
            outcome.kind,
            outcome.detail,
            extra={"labels": {"self_heal": "re_trigger", "transition": transition}, "fields": result},
        )
        if outcome.kind in HEALED:
            return verdict.status, f"{verdict.reason}; re-triggered: {outcome.kind} {outcome.trigger_id or ''}".strip()
        status = "still_missing" if verdict.status == "still_missing" else "not_triggered"
        return status, f"{verdict.reason}; the re-trigger answered {outcome.kind}: {outcome.detail}"

    # -- reading what exists -----------------------------------------------------------------
    def queries(self) -> BigQueryGateQueries:
        from shared.monitor.checks import PassDeadlines
        from shared.orchestration.gate_queries import BigQueryGateQueries

        left = max(1.0, min(60.0, PassDeadlines.left(self.deadlines.checks)))
        return BigQueryGateQueries(self.monitor.bq, self.monitor.project, self.definition.games, deadline_seconds=left)

    def observe(self, target: HealTarget, day: date) -> Observation:
        """The date's games and each step's rows: one query, every branch on the date's partition."""
        from shared.orchestration.gate_queries import predicate_sql

        g = self.definition.games
        project = self.monitor.project

        def table(ref: str) -> str:
            return f"`{project}.{ref}`"  # identifiers come from the validated definition only

        game_id = f"CAST({g.schedule_game_id_column} AS STRING)"
        branches = [
            f"(SELECT 0 AS phase, COUNT(DISTINCT IF(CAST({g.schedule_status_column} AS STRING) = @final, "
            f"{game_id}, NULL)) AS final, COUNT(DISTINCT {game_id}) AS n FROM `{project}.{g.schedule_table}` "
            f"WHERE {g.schedule_date_column} = @game_date)"
        ]
        params: list[Any] = [("final", "STRING", g.final_status)]
        for k, step in enumerate(target.steps):
            where, step_params = predicate_sql(step.where)
            where = _PARAM.sub(f"@s{k}_\\1", where)  # the step's parameter names, unique in the query
            params += [(f"s{k}_{name}", kind, value) for name, kind, value in step_params]
            branches.append(
                f"(SELECT {int(step.phase)} AS phase, 0 AS final, COUNT(*) AS n FROM {table(step.table.table)} "
                f"WHERE {step.table.date_column} = @game_date AND {where or 'TRUE'})"
            )
        rows: dict[int, int] = {}
        games = 0
        for r in self.queries().rows("\nUNION ALL\n".join(branches), day, params):
            if int(r["phase"]) == 0:
                games = int((r["final"] if target.games == "final" else r["n"]) or 0)
            else:
                rows[int(r["phase"])] = int(r["n"] or 0)
        return Observation(games, rows)

    # -- records -------------------------------------------------------------------------------
    def outcome_doc(self, outcome: Outcome, generation: int, n: int, correlation_id: str) -> dict[str, Any]:
        return {
            "outcome": outcome.kind,
            "detail": outcome.detail[:1000],
            "trigger_id": outcome.trigger_id,
            "generation": generation,
            "attempt": n,
            "max_heals": self.settings.max_heals,
            "correlation_id": correlation_id,
            "trigger_source": TRIGGER_SOURCE,
        }

    def log_row(
        self,
        transition: str,
        day: date,
        status: str,
        entry: dict[str, Any],
        reason: str,
        trigger_id: str | None = None,
        correlation_id: str | None = None,
    ) -> tuple[str, dict[str, Any]]:
        """A ``phase_execution_log`` row of a self-heal action (built as every row is)."""
        from shared.orchestration.execution_log import build_row

        return build_row(
            transition=transition,
            game_date=day,
            status=status,
            now=self.monitor.clock.now(),
            correlation_id=correlation_id,
            trigger_id=trigger_id,
            start_time=None,
            games_processed=entry.get("games"),
            metadata={"kind": "self_heal", "checkpoint": self.checkpoint, "reason": reason[:1000], **entry},
        )
