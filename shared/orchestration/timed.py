"""Sensors: triggers evaluated on a schedule, exactly once.

The schedule dispatcher (``shared.schedules``) runs each sensor slot as a job: it publishes a
``TriggerTick`` to the sensor's tick topic once per fire slot. The function resolves the slot's
game date, then runs the same protocol as a transition: load → already latched? → claim → conditions (one parameterised
query) → publish with a deterministic ``trigger_id`` → fenced latch with the log row.

* A sensor latches once per date: its readiness slot and its fallback slots race for the
  same latch, so a date is triggered once whichever fires first. A fallback slot checks only
  the conditions marked ``fallback = true`` (the replaced system's scheduled grading runs
  grade whatever is there). A forced re-run is a new generation (``phasectl trigger --force``).
* A scheduled trigger latches once per date and slot (the slot is the latch's mode).
* A query error is never "not ready" or "not done": transient errors raise (Pub/Sub
  redelivers the tick), errors a retry cannot fix (400/403/404) are acked as ``gate_error``
  and alerted (the replaced monitor counted a failed query as "not graded": grading_readiness_
  monitor/main.py:130-134).
* Games marked unavailable (``phasectl mark-unavailable``) or postponed by their status text
  are not waited for: they leave the count ("6/6 games Final, 1 marked unavailable").

Cold path: a tick for a date already triggered builds only the Firestore state. Publisher,
queries, log writer and quarantine are built on first use (``shared.deferred``), and the
conditions' and trigger's modules are imported where they are first needed, as in
``shared.orchestration.transition``.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any, Literal
from zoneinfo import ZoneInfo

from shared.clock import Clock
from shared.contracts.decode import decode_payload, extract_pubsub_message
from shared.contracts.messages import TimedTriggerMessage, TriggerTick, make_trigger_id
from shared.deferred import Deferred, deferred_attribute
from shared.errors import MalformedMessageError, TransientError
from shared.orchestration.state import TransitionState
from shared.orchestration.timed_actuals import ActualsRows, ConditionInputs
from shared.orchestration.transition import Outcome
from shared.pipeline.definition import DateRule, GamesSources, PipelineDefinition, TimedTrigger, TriggerSlot
from shared.structured_log import get_logger, log_context

if TYPE_CHECKING:
    from shared.orchestration.gate_queries import BigQueryGateQueries
    from shared.orchestration.gates import GateResult
    from shared.orchestration.outbox import ExecutionLogWriter
    from shared.orchestration.publisher import TriggerPublisher
    from shared.orchestration.quarantine import Quarantine

_log = get_logger("shared.orchestration.timed")


def date_for(rule: DateRule, now: datetime, tz: ZoneInfo) -> date:
    """The game date a slot evaluates: ``yesterday``/``today`` in ``tz``; ``game_night``: before
    noon the previous day's games (the night just played), from noon on today's."""
    local = now.astimezone(tz)
    if rule == "today":
        return local.date()
    if rule == "yesterday" or local.time() < time(12, 0):
        return local.date() - timedelta(days=1)
    return local.date()


def conditions_sql(trigger: TimedTrigger, games: GamesSources, table: Any) -> str:
    """One query for every condition of ``trigger`` (``table(ref)`` quotes a validated table ref): the
    schedule branches (``shared.orchestration.schedule_sql``) once for ``all_final`` and ``actuals_coverage``,
    a row count per ``rows_present``/``not_done``, three per-game branches per ``actuals_coverage``."""
    from shared.orchestration.schedule_sql import null_columns, schedule_branches
    from shared.orchestration.timed_actuals import actuals_branches

    branches: list[str] = []
    if any(cond.kind in ("all_final", "actuals_coverage") for cond in trigger.conditions):
        branches += schedule_branches(games, table, "CAST(NULL AS INT64) AS n")
    for i, cond in enumerate(trigger.conditions):
        if cond.kind == "actuals_coverage":
            branches += actuals_branches(i, cond, table)[0]
        elif cond.kind != "all_final":
            assert cond.table is not None
            branches.append(
                f"(SELECT 'count:{i}' AS kind, CAST(NULL AS STRING) AS game_id, {null_columns('COUNT(*) AS n')} "
                f"FROM {table(cond.table.table)} WHERE {cond.table.date_column} = @game_date)"
            )
    return "\nUNION ALL\n".join(branches)


def read_conditions(queries: BigQueryGateQueries, trigger: TimedTrigger, game_date: date) -> ConditionInputs:
    from shared.orchestration.schedule_sql import ScheduleRows
    from shared.orchestration.timed_actuals import conditions_params, take

    read = ScheduleRows()
    counts: dict[int, int] = {}
    actuals: dict[int, ActualsRows] = {}
    sql, params = conditions_sql(trigger, queries.games, queries._table), conditions_params(trigger)
    for r in queries.rows(sql, game_date, params) if params else queries.rows(sql, game_date):
        if not read.take(r, game_date) and not take(r, actuals):
            counts[int(str(r["kind"]).removeprefix("count:"))] = int(r["n"] or 0)
    schedule, later = tuple(read.schedule), tuple(read.later)
    return ConditionInputs(schedule, tuple(read.unavailable), counts, later, read.marks, actuals)


def conditions_verdict(
    trigger: TimedTrigger, slot: TriggerSlot, games: GamesSources, inputs: ConditionInputs
) -> list[GateResult]:
    """Each condition the slot checks, pure: ``pass`` or ``blocked`` (not ready) with its reason."""
    from shared.orchestration.gates import GateResult
    from shared.orchestration.timed_actuals import actuals_verdict, considered_games

    out: list[GateResult] = []
    for i, cond in enumerate(trigger.conditions):
        if (slot.fallback and not cond.fallback) or (slot.redo and cond.kind == "not_done"):
            continue
        name = (
            cond.kind if cond.kind == "all_final" else f"{cond.kind}:{cond.label or (cond.table and cond.table.table)}"
        )
        if cond.kind == "all_final":
            out.append(_all_final(name, games, inputs))
            continue
        if cond.kind == "actuals_coverage":
            out.append(actuals_verdict(name, cond, inputs.actuals.get(i), slot, considered_games(games, inputs)))
            continue
        assert cond.table is not None
        rows = inputs.counts.get(i, 0)
        what = cond.label or f"rows in {cond.table.table}"
        details = {"table": cond.table.table, "rows": rows}
        if cond.kind == "rows_present":
            ok = rows > 0
            reason = f"{rows} {what}" if ok else f"no {what} yet"
        else:
            ok = rows == 0
            reason = f"not done yet (no {what})" if ok else f"already done: {rows} {what}"
        out.append(GateResult(name, "pass" if ok else "blocked", reason, cond.kind, None, {}, False, details))
    return out


def _all_final(name: str, games: GamesSources, inputs: ConditionInputs) -> GateResult:
    from shared.orchestration.gates import GateResult
    from shared.orchestration.timed_actuals import considered_games

    c = considered_games(games, inputs)
    entries, considered, final, postponed = c.entries, c.considered, c.final, c.postponed
    excluded = len([e for e in entries if e.date_teams_game_id in c.excluded])
    note = f", {excluded} marked unavailable or postponed" if excluded else ""
    details = {"scheduled": len(entries), "considered": len(considered), "final": len(final), "excluded": excluded}
    if not considered:
        return GateResult(
            name, "blocked", f"no games to wait for{note}", "all_final", None, {}, False, details, postponed=postponed
        )
    value = 100.0 * len(final) / len(considered)
    ok = len(final) == len(considered)
    reason = f"{len(final)}/{len(considered)} games Final{note}"
    verdict: Literal["pass", "blocked"] = "pass" if ok else "blocked"
    return GateResult(name, verdict, reason, "all_final", value, {}, False, details, postponed=postponed)


class TimedTriggerService:
    """One sensor or scheduled trigger, its clock and adapters (injected).

    ``publisher``, ``queries``, ``log_writer`` and ``quarantine`` may be given as values or as
    ``Deferred`` factories (the composition root does the latter: a tick that finds its date
    already triggered builds none).
    """

    publisher: deferred_attribute[TriggerPublisher] = deferred_attribute()
    queries: deferred_attribute[BigQueryGateQueries | None] = deferred_attribute()  # None: no conditions
    log_writer: deferred_attribute[ExecutionLogWriter] = deferred_attribute()
    quarantine: deferred_attribute[Quarantine] = deferred_attribute()

    def __init__(
        self,
        *,
        definition: PipelineDefinition,
        trigger: TimedTrigger,
        clock: Clock,
        state: TransitionState,
        publisher: TriggerPublisher | Deferred[TriggerPublisher],
        queries: BigQueryGateQueries | Deferred[BigQueryGateQueries] | None,
        log_writer: ExecutionLogWriter | Deferred[ExecutionLogWriter],
        quarantine: Quarantine | Deferred[Quarantine],
    ) -> None:
        self.definition = definition
        self.trigger = trigger
        self.clock = clock
        self.state = state
        self.publisher = publisher
        self.queries = queries
        self.log_writer = log_writer
        self.quarantine = quarantine

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.trigger.timezone)

    def game_date(self, slot: TriggerSlot, now: datetime | None = None) -> date:
        return date_for(slot.date or self.trigger.date, now or self.clock.now(), self.tz)

    def mode(self, slot: TriggerSlot) -> str | None:
        return slot.name if self.trigger.once_per == "slot" else None

    def check(self, game_date: date, slot: TriggerSlot) -> list[GateResult]:
        """The slot's conditions for ``game_date`` (read only; errors classified as the gates')."""
        if not self.trigger.conditions or all(slot.fallback and not c.fallback for c in self.trigger.conditions):
            return []
        from shared.orchestration.gates import GateConfigError, is_configuration_error, stable_error_text

        queries = self.queries
        if queries is None:
            raise TransientError(f"{self.trigger.name}: no BigQuery client for its conditions")
        try:
            inputs = read_conditions(queries, self.trigger, game_date)
        except TransientError:
            raise
        except Exception as exc:
            text = f"{type(exc).__name__}: {stable_error_text(exc)}"
            if is_configuration_error(exc):
                raise GateConfigError(
                    f"{self.trigger.name}: its conditions cannot run as configured: {text}",
                    gate="conditions",
                    game_date=str(game_date),
                ) from exc
            raise TransientError(
                f"{self.trigger.name}: its conditions could not be evaluated: {text}", game_date=str(game_date)
            ) from exc
        return conditions_verdict(self.trigger, slot, self.definition.games, inputs)

    def evaluate(self, game_date: date, slot: TriggerSlot, *, owner: str = "tick") -> Outcome:
        t = self.trigger
        mode = self.mode(slot)
        owner = f"{owner}:{uuid.uuid4().hex[:12]}"
        with log_context(transition=t.name, game_date=game_date.isoformat(), slot=slot.name):
            state = self.state.load(game_date)
            if state.intent is not None:  # an earlier tick fixed (and may have sent) its message: send it
                return self._resume(game_date, owner, state.intent)
            done = state.triggered_slot(mode)
            if done is not None:
                by = f" by slot {done.get('slot')}" if done.get("slot") else ""
                return Outcome(
                    "already_triggered",
                    f"{t.name} {game_date} already triggered{by} ({done.get('trigger_id')}); nothing new",
                    game_date,
                    done.get("trigger_id"),
                )
            now = self.clock.now()
            claim = self.state.claim(
                game_date,
                owner,
                now,
                lambda g: make_trigger_id(t.name, game_date, g, mode),
                mode,
                generation=state.generation,  # a claim document first: N ticks at once never storm the date
            )
            if claim.result != "claimed":
                return Outcome(claim.result, f"claim not taken: {claim.result}", game_date, claim.trigger_id)
            # the trigger path: its modules load here, on the first tick whose date is not triggered yet
            from shared.orchestration.gates import GateConfigError

            try:
                results = self.check(game_date, slot)
            except GateConfigError as exc:
                reason = str(exc)
                doc = {"conditions": {"gate": "conditions", "verdict": "error", "reason": reason}}
                self.state.release(game_date, claim.owner or "", now, status="gate_error", token=claim.token, gate=doc)
                _log.error(reason, extra={"labels": {"alert": "gate_error", "trigger": t.name}})
                return Outcome("gate_error", reason, game_date, extra={"gate": "conditions"})
            except BaseException:
                self._release(game_date, claim.owner or "", claim.token, "waiting", None)
                raise
            doc = {r.gate: r.as_dict() for r in results}
            waiting = [r for r in results if r.verdict != "pass"]
            if waiting:
                reason = "; ".join(r.reason for r in waiting)
                self._release(game_date, claim.owner or "", claim.token, "waiting", doc)
                _log.info("%s %s not ready (%s): %s", t.name, game_date, slot.name, reason)
                return Outcome("waiting", reason, game_date, extra={"conditions": doc})
            return self._trigger(game_date, slot, mode, claim, results, doc, state.trigger_source)

    def _trigger(
        self,
        game_date: date,
        slot: TriggerSlot,
        mode: str | None,
        claim: Any,
        results: list[GateResult],
        doc: Any,
        source: str | None = None,  # who reopened the generation (a regrade, a backfill): into the message
    ) -> Outcome:
        from shared.orchestration.intent import Intent, StoredMessage

        t = self.trigger
        if slot.fallback and not slot.redo:
            why = f"fallback run {slot.name}: the date was not triggered yet"
        elif results:
            why = "; ".join(r.reason for r in results)
        else:
            why = f"scheduled run {slot.name}"
        now = self.clock.now()
        message = TimedTriggerMessage(
            trigger_id=make_trigger_id(t.name, game_date, claim.generation, mode),
            name=t.name,
            slot=slot.name,
            mode=mode,
            game_date=game_date,
            target_date=game_date,
            generation=claim.generation,
            trigger_source=source or t.trigger_source,
            triggered_by=f"phasechain:{t.name}",
            triggered_at=now,
            reason=why,
            correlation_id=f"{t.name}-{game_date.isoformat()}",
            conditions=[{k: r.as_dict()[k] for k in ("gate", "kind", "verdict", "value", "reason")} for r in results],
            postponed_games=sorted({str(p["game_id"]) for r in results for p in r.postponed}),
            export_types=list(slot.export_types),
            run_aggregation=t.run_aggregation,
            update_latest=slot.update_latest,
        )
        status = "fallback" if slot.fallback else ("complete" if t.conditions else "scheduled")
        status = "regrade" if slot.redo else status
        intent = Intent(
            trigger_id=message.trigger_id,
            generation=claim.generation,
            mode=mode,
            status=status,
            headline=why,
            reason=why,
            messages=(StoredMessage(message.trigger_id, message.to_json_bytes(), message.attributes()),),
            gates=doc,
            games_processed=next((int(r.details.get("final", 0)) for r in results if r.kind == "all_final"), None),
            missing_games=(),
            processors_completed=(),
            missing_processors=(),
            unknown_processors=(),
            start_time=None,
            correlation_id=message.correlation_id,
            details={"slot": slot.name, "export_types": list(slot.export_types)},
        )
        return self._send(game_date, claim, intent)

    def _resume(self, game_date: date, owner: str, stored: dict[str, Any]) -> Outcome:
        """A trigger whose message an earlier tick fixed and may have published: claim it and publish
        exactly those bytes, without checking the conditions again (L27: an id names one content)."""
        from shared.orchestration.intent import Intent

        intent = Intent.from_doc(stored)
        t = self.trigger
        claim = self.state.claim(
            game_date,
            owner,
            self.clock.now(),
            lambda g: make_trigger_id(t.name, game_date, g, intent.mode),
            intent.mode,
            generation=intent.generation,
        )
        if claim.result != "claimed":
            return Outcome(claim.result, f"claim not taken: {claim.result}", game_date, claim.trigger_id)
        return self._send(game_date, claim, intent)

    def _send(self, game_date: date, claim: Any, intent: Any) -> Outcome:
        """Publish the intent's bytes (stored with the claim first; an earlier one wins), then latch."""
        from shared.orchestration.execution_log import build_row
        from shared.orchestration.intent import Intent

        t, now = self.trigger, self.clock.now()
        confirmed = self.state.confirm(game_date, claim, now, intent=intent.to_doc())
        if confirmed is None:
            return Outcome("claimed_elsewhere", "claim lost before publishing", game_date, intent.trigger_id)
        if confirmed.intent is not None:
            intent = Intent.from_doc(confirmed.intent)
        slot_name = str(intent.details.get("slot") or "")
        try:
            message_id = self.publisher.publish_all(list(intent.messages))[0]
        except BaseException:
            # ambiguous: the server may have the message; the next tick sends the same bytes
            self._release(game_date, claim.owner or "", claim.token, "publishing", None)
            raise
        row = build_row(
            transition=t.name,
            game_date=game_date,
            status=intent.status,
            now=now,
            correlation_id=intent.correlation_id,
            trigger_id=intent.trigger_id,
            start_time=None,
            games_processed=intent.games_processed,
            metadata={
                "slot": slot_name,
                "mode": intent.mode,
                "reason": intent.reason,
                "conditions": intent.gates,
                "message_id": message_id,
                "export_types": list(intent.details.get("export_types") or []),
            },
        )
        latched = self.state.mark_triggered(
            game_date,
            claim.owner or "",
            intent.generation,
            now,
            {
                "trigger_id": intent.trigger_id,
                "at": now,
                "message_id": message_id,
                "parts": 1,
                "status": intent.status,
                "reason": intent.reason,
                "slot": slot_name,
            },
            token=claim.token,
            mode=intent.mode,
            gate=intent.gates,
            missing_games=[],
            log_row=row,
        )
        if not latched:
            return Outcome("claimed_elsewhere", "latch refused: the claim was taken over", game_date, intent.trigger_id)
        _log.info(
            "triggered %s for %s (%s): %s",
            t.name,
            game_date,
            slot_name,
            intent.reason,
            extra={"labels": {"trigger_id": intent.trigger_id, "slot": slot_name}},
        )
        self.log_writer.flush(self.state.outbox)
        extra = {"slot": slot_name, "status": intent.status}
        return Outcome("triggered", intent.reason, game_date, intent.trigger_id, extra=extra)

    def _release(self, game_date: date, owner: str, token: int | None, status: str, doc: Any) -> None:
        try:
            self.state.release(game_date, owner, self.clock.now(), status=status, token=token, gate=doc)
        except Exception as exc:  # noqa: BLE001 - the claim expires by itself; the first error wins
            _log.warning(
                "could not release the claim of %s %s (it expires on its own): %s", self.trigger.name, game_date, exc
            )


class TimedRuntime:
    """The timed triggers one function serves, by name; decodes ticks and routes them."""

    quarantine: deferred_attribute[Quarantine] = deferred_attribute()  # built on the first bad tick

    def __init__(
        self, services: Mapping[str, TimedTriggerService], quarantine: Quarantine | Deferred[Quarantine], function: str
    ) -> None:
        self.services = services
        self.quarantine = quarantine
        self.function = function

    def handle_event(self, event: object) -> Outcome:
        try:
            message = extract_pubsub_message(event)
            tick = decode_payload(message, TriggerTick)
        except MalformedMessageError as exc:
            self.quarantine.put(None, reason=str(exc), raw=event, transition=self.function)
            return Outcome("quarantined", str(exc))
        service = self.services.get(tick.trigger)
        slot = None
        if service is not None:
            slot = next((s for s in service.trigger.slots if s.name == tick.slot), None)
        if service is None or slot is None:
            reason = f"tick for unknown trigger/slot {tick.trigger!r}/{tick.slot!r} on {self.function}"
            self.quarantine.put(message, reason=reason, transition=self.function)
            return Outcome("quarantined", reason)
        day = tick.game_date or service.game_date(slot)
        return service.evaluate(day, slot, owner=f"{tick.slot}")


def overdue_at(trigger: TimedTrigger, game_date: date) -> datetime | None:
    """When a date's trigger is overdue: ``overdue_after`` on the day after the game date."""
    if trigger.overdue_after is None:
        return None
    hour, minute = (int(x) for x in trigger.overdue_after.split(":"))
    return datetime.combine(game_date + timedelta(days=1), time(hour, minute), tzinfo=ZoneInfo(trigger.timezone))
