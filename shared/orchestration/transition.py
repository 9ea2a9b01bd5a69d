"""The transition core: completion message → record → decide → claim → gates → publish → latch.

This is what every ``functions/phaseN_to_phaseM/main.py`` calls. The outcome tells the
entrypoint whether to ack (return) or let Pub/Sub redeliver (a ``TransientError`` raised).

The exactly-once protocol (L01, L03, L04):
1. record the completion idempotently (a duplicate has no effect, but the date is still
   re-evaluated so a redelivery after a failed publish can finish the job);
2. the pure engine decides; on ``Ready`` a transaction claims the current generation;
3. gates run; a block releases the claim (no latch), logs and alerts;
4. the trigger is published with a deterministic ``trigger_id``; a failed publish
   releases the claim and raises;
5. only then the generation is latched as triggered, with the log row in the same
   transaction. The row stays in the Firestore outbox: the transition never talks to BigQuery
   for it. It nudges auto-retry (one small message), which delivers the outbox to
   ``phase_execution_log`` (and failed completions to the retry queue) within seconds; the
   monitor delivers whatever is left on every pass (issue 18).

Cold path (issue 18): a completion that records and waits builds only the Firestore state and
the decision engine. Publisher, gates, quarantine, HTTP delivery and the nudge are built on
first use (``shared.deferred``), and their modules are imported where they are first needed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

from shared.clock import Clock
from shared.contracts.decode import PubSubMessage, decode_payload, extract_pubsub_message
from shared.contracts.messages import ErrorType, PhaseTrigger, ProcessorCompletion, TriggerStatus, make_trigger_id
from shared.deferred import Deferred, deferred_attribute
from shared.errors import MalformedMessageError
from shared.orchestration.completions import completion_doc_id
from shared.orchestration.engine import Blocked, CompletionRecord, Decision, Ready, decide
from shared.orchestration.outbox_store import HANDOFF_PREFIX
from shared.orchestration.state import Claim, TransitionState
from shared.pipeline.definition import PipelineDefinition, Transition
from shared.structured_log import get_logger, log_context

if TYPE_CHECKING:
    from shared.orchestration.gates import GateConfigError, GateResult, GateRunner
    from shared.orchestration.http_delivery import HttpDeliverer
    from shared.orchestration.publisher import OutboxNudge, TriggerPublisher
    from shared.orchestration.quarantine import Quarantine

OutcomeKind = Literal[
    "triggered",
    "waiting",
    "already_triggered",
    "claimed_elsewhere",
    "blocked",
    "quarantined",
    "stale",
    "gate_error",
]

_log = get_logger("shared.orchestration.transition")


@dataclass(frozen=True)
class Outcome:
    """What happened to one event. Every kind is acked; transient failures raise instead."""

    kind: OutcomeKind
    detail: str
    game_date: date | None = None
    trigger_id: str | None = None
    duplicate: bool = False
    unknown_processor: bool = False
    extra: dict[str, Any] = field(default_factory=dict)


class TransitionService:
    """Everything one transition function needs, injected (clock and adapters).

    ``publisher``, ``gates``, ``quarantine``, ``http`` and ``nudge`` may be given as values or as
    ``Deferred`` factories (the composition root does the latter: a wait event builds none).
    """

    publisher: deferred_attribute[TriggerPublisher] = deferred_attribute()
    gates: deferred_attribute[GateRunner] = deferred_attribute()
    quarantine: deferred_attribute[Quarantine] = deferred_attribute()
    http: deferred_attribute[HttpDeliverer | None] = deferred_attribute()  # [transitions.delivery.http]
    nudge: deferred_attribute[OutboxNudge | None] = deferred_attribute()  # "deliver the outbox" to auto-retry

    def __init__(
        self,
        *,
        definition: PipelineDefinition,
        transition: Transition,
        clock: Clock,
        state: TransitionState,
        publisher: TriggerPublisher | Deferred[TriggerPublisher],
        gates: GateRunner | Deferred[GateRunner],
        quarantine: Quarantine | Deferred[Quarantine],
        http: HttpDeliverer | Deferred[HttpDeliverer | None] | None = None,
        nudge: OutboxNudge | Deferred[OutboxNudge | None] | None = None,
        hands_off_to_retry: bool = True,
    ) -> None:
        self.definition = definition
        self.transition = transition
        self.clock = clock
        self.state = state
        self.publisher = publisher
        self.gates = gates
        self.quarantine = quarantine
        self.http = http
        self.nudge = nudge
        # failed completions and missing games go to auto-retry through the outbox (False: nowhere)
        self.hands_off_to_retry = hands_off_to_retry

    # -- entry: one Pub/Sub event ----------------------------------------------------------
    def handle_event(self, event: object) -> Outcome:
        """Handle one completion event (CloudEvent, push body or bytes)."""
        try:
            message = extract_pubsub_message(event)
        except MalformedMessageError as exc:
            self.quarantine.put(None, reason=str(exc), raw=event, transition=self.transition.name)
            return Outcome("quarantined", str(exc))
        try:
            completion = decode_payload(message, ProcessorCompletion)
        except MalformedMessageError as exc:
            self.quarantine.put(message, reason=str(exc), transition=self.transition.name)
            return Outcome("quarantined", str(exc))
        return self.handle_completion(message, completion)

    def handle_completion(self, message: PubSubMessage, completion: ProcessorCompletion) -> Outcome:
        t = self.transition
        now = self.clock.now()
        with log_context(
            transition=t.name,
            game_date=completion.game_date.isoformat(),
            processor=completion.processor_name,
            execution_id=completion.execution_id,
        ):
            if completion.phase != t.source_phase:
                reason = (
                    f"completion of phase {completion.phase} ({completion.processor_name}) arrived on "
                    f"{t.name}, which listens to phase {t.source_phase}"
                )
                self.quarantine.put(message, reason=reason, transition=t.name)
                return Outcome("quarantined", reason, completion.game_date)
            sent_at = message.publish_time or completion.timestamp
            max_age = timedelta(minutes=self.definition.pipeline.max_event_age_minutes)
            if sent_at is not None and now - sent_at > max_age:
                reason = (
                    f"stale event: published {sent_at.isoformat()}, older than the max age "
                    f"{self.definition.pipeline.max_event_age_minutes} min; acked, not retried"
                )
                _log.error(reason, extra={"labels": {"alert": "stale_event"}})
                self.quarantine.put(message, reason=reason, transition=t.name, kind="stale")
                return Outcome("stale", reason, completion.game_date)

            canonical = self.definition.normalise_processor(
                t.source_phase, completion.processor_name, completion.output_table
            )
            error_class = completion.error_class
            record = CompletionRecord(
                raw_name=completion.processor_name,
                processor=canonical,
                status=str(completion.status),
                execution_id=completion.execution_id,
                completed_at=now,
                record_count=completion.record_count,
                completion_pct=completion.effective_completion_pct,
                predictions=completion.completed_predictions,
            )
            failed = canonical is not None and str(completion.status) == "failed"
            handoff = self._failure_handoff(completion, canonical, record) if failed else None
            try:
                new = self.state.completions.record(
                    completion.game_date,
                    record,
                    {
                        "message_id": message.message_id,
                        "correlation_id": completion.correlation_id,
                        "reported_at": completion.timestamp,
                        "output_table": completion.output_table,
                        "error_type": completion.error_type,
                        "error_class": None if error_class is None else str(error_class),
                        "error_message": _capped(completion.error_message),
                        "unknown_fields": completion.unknown_fields(),
                    },
                    handoff=handoff,
                )
            except MalformedMessageError as exc:
                self.quarantine.put(message, reason=str(exc), transition=t.name)
                return Outcome("quarantined", str(exc), completion.game_date)
            if canonical is None:
                _log.warning(
                    "unknown processor %r recorded for %s; it never counts toward completion",
                    completion.processor_name,
                    t.name,
                )
            if handoff is not None and new:
                self._nudge("failed completion handed to auto-retry")
            # one owner per delivery attempt, never the message id alone: a concurrent redelivery of
            # the same message must not walk into this attempt's live claim (L21)
            owner = f"msg:{message.message_id or '-'}"
            outcome = self.evaluate(completion.game_date, correlation_id=completion.correlation_id, owner=owner)
            return Outcome(
                outcome.kind,
                outcome.detail,
                outcome.game_date,
                outcome.trigger_id,
                duplicate=not new,
                unknown_processor=canonical is None,
                extra=outcome.extra,
            )

    # -- entry: re-evaluate a date (messages, the monitor's deadline sweep, the CLI) ---------
    def evaluate(self, game_date: date, *, correlation_id: str | None = None, owner: str | None = None) -> Outcome:
        t = self.transition
        owner = f"{owner or 'run'}:{uuid.uuid4().hex[:12]}"  # unique per attempt (L21); the prefix says who
        state = self.state.load(game_date)
        decision = decide(self.definition, t, game_date, state.completions, self.clock)
        mode = decision.progress.mode
        done = state.triggered_slot(mode)  # with modes: once per mode
        if done is not None:
            return Outcome(
                "already_triggered",
                f"generation {state.generation}{f' mode {mode}' if mode else ''} already triggered",
                game_date,
                done.get("trigger_id"),
            )
        if isinstance(decision, Blocked):
            unclaimed = Claim("claimed", state.generation, None, owner, None)
            return self._blocked(game_date, unclaimed, decision.reason, decision, None, correlation_id, claimed=False)
        if not isinstance(decision, Ready):
            return Outcome(
                "waiting", decision.reason, game_date, extra={"next_check_at": getattr(decision, "next_check_at", None)}
            )

        now = self.clock.now()
        claim = self.state.claim(
            game_date, owner, now, lambda gen: make_trigger_id(t.name, game_date, gen, mode), mode=mode
        )
        if claim.result != "claimed":
            return Outcome(claim.result, f"claim not taken: {claim.result}", game_date, claim.trigger_id)
        assert claim.trigger_id is not None

        # the trigger path: its modules load here, on the first date that is ready (issue 18)
        from shared.orchestration.execution_log import build_row
        from shared.orchestration.gates import GateConfigError
        from shared.orchestration.triggers import build_triggers

        try:
            gate_results = self.gates.run(
                t, game_date, mode=mode, deadline_seconds=self.state.claim_ttl.total_seconds() * 0.5
            )
        except GateConfigError as exc:
            return self._gate_error(game_date, claim, exc, decision, correlation_id)
        except BaseException:
            self._release_quietly(game_date, claim, "waiting")
            raise
        blocking = next((g for g in gate_results if g.verdict == "blocked"), None)
        if blocking is not None:
            return self._blocked(
                game_date, claim, blocking.reason, decision, gate_results, correlation_id, claimed=True
            )

        missing_games = _missing_games(gate_results)
        alerts = [g for g in gate_results if g.verdict == "alert"]
        status = TriggerStatus(decision.status)
        if status is TriggerStatus.COMPLETE and (missing_games or any(not g.advisory for g in alerts)):
            status = TriggerStatus.PARTIAL  # data below an alert line is partial data
        reason = "; ".join([decision.reason, *(f"gate {g.gate}: {g.reason}" for g in gate_results)])
        triggers = build_triggers(
            self.definition,
            t,
            game_date=game_date,
            generation=claim.generation,
            status=status,
            reason=reason,
            mode=decision.progress.mode,
            processors_done=decision.progress.done,
            correlation_id=correlation_id,
            missing_games=missing_games,
            now=self.clock.now(),
            gates=[g.as_dict() for g in gate_results],
        )
        trigger = triggers[0]
        # the claim may have expired while the gates ran (another attempt may hold the date now):
        # confirm it is still ours, and extend it, before anything leaves this function
        if not self.state.confirm(game_date, claim, self.clock.now()):
            _log.warning(
                "%s %s: the claim expired before publishing (another attempt took over); not publishing",
                t.name,
                game_date,
                extra={"labels": {"alert": "claim_lost", "trigger_id": trigger.trigger_id}},
            )
            return Outcome("claimed_elsewhere", "claim lost before publishing", game_date, trigger.trigger_id)
        try:
            message_ids = self.publisher.publish_all(triggers)  # all parts at once, or raise
        except BaseException:
            self._release_quietly(game_date, claim, "publish_failed")
            raise
        message_id = message_ids[0]
        http_doc: dict[str, Any] | None = None
        if self.transition.delivery.http is not None and self.http is not None:
            try:
                http_doc = self._deliver_http(game_date, trigger, state.raw)
            except BaseException:
                self._release_quietly(game_date, claim, "delivery_failed")
                raise

        now = self.clock.now()
        gate_doc = _gates_doc(gate_results)
        row = build_row(
            transition=t.name,
            game_date=game_date,
            status=str(status),
            now=now,
            correlation_id=correlation_id,
            trigger_id=trigger.trigger_id,
            start_time=decision.progress.first_completion_at,
            games_processed=_games_processed(gate_results),
            metadata={
                "mode": decision.progress.mode,
                "reason": _capped(reason),
                **_bounded("processors_completed", decision.progress.done),
                **_bounded("missing_processors", decision.progress.missing),
                **_bounded("unknown_processors", decision.progress.unknown),
                **_bounded("missing_games", missing_games),
                "gates": gate_doc,
                "message_id": message_id,
                **_bounded("message_ids", message_ids),
                **_bounded("source_tables", [p.source_table for p in triggers if p.source_table]),
                "http": http_doc,
            },
        )
        latched = self.state.mark_triggered(
            game_date,
            claim.owner or owner,
            claim.generation,
            now,
            {
                "trigger_id": trigger.trigger_id,
                "at": now,
                "message_id": message_id,
                "parts": len(triggers),
                "status": str(status),
                "reason": _capped(reason),
                "http": http_doc,
            },
            token=claim.token,
            mode=mode,
            gate=gate_doc,
            missing_games=missing_games[:_MAX_LIST],
            log_row=row,
            handoffs=self._missing_games_handoff(game_date, missing_games, correlation_id),
        )
        if not latched:
            refused = "latch refused: the claim was taken over"
            return Outcome("claimed_elsewhere", refused, game_date, trigger.trigger_id)
        _log.info(
            "triggered %s for %s: %s",
            t.name,
            game_date,
            decision.reason,
            extra={"labels": {"trigger_id": trigger.trigger_id, "status": str(status)}},
        )
        for g in alerts:  # triggered with a warning: each alert-level gate, once per trigger
            _log.warning(
                "GATE ALERT %s for %s, triggered anyway: gate %s: %s",
                t.name,
                game_date,
                g.gate,
                g.reason,
                extra={"labels": {"alert": "gate_alert", "gate": g.gate, "trigger_id": trigger.trigger_id}},
            )
        self._nudge(f"triggered {trigger.trigger_id}")
        return Outcome(
            "triggered",
            decision.reason,
            game_date,
            trigger.trigger_id,
            extra={"status": str(status), "missing_games": missing_games, "message_id": message_id},
        )

    # -- helpers ---------------------------------------------------------------------------
    def _deliver_http(self, game_date: date, trigger: PhaseTrigger, raw_state: dict[str, Any]) -> dict[str, Any]:
        """The consumer's HTTP start call, once per ``trigger_id`` (a redelivery after a crash between
        this call and the latch finds it recorded and does not call again)."""
        from shared.orchestration.http_delivery import HttpDeliveryRejected
        from shared.orchestration.triggers import http_body

        assert self.http is not None
        done = (raw_state.get("http_delivery") or {}).get(_field_key(trigger.trigger_id))
        if done:
            return {**done, "repeat": "already delivered for this trigger_id; not called again"}
        try:
            result = self.http.deliver(http_body(trigger))
        except HttpDeliveryRejected as exc:
            reason = _capped(str(exc)) or ""
            _log.error(
                "HTTP delivery of %s refused (the trigger stands; fix it, then re-run with phasectl trigger "
                "--force): %s",
                trigger.trigger_id,
                reason,
                extra={"labels": {"alert": "http_delivery_rejected", "trigger_id": trigger.trigger_id}},
            )
            return {"delivered": False, "error": reason}
        doc = {"delivered": True, **result.as_dict(), "at": self.clock.now()}
        self.state.note_http_delivery(game_date, _field_key(trigger.trigger_id), doc)
        return doc

    def _blocked(
        self,
        game_date: date,
        claim: Claim,
        reason: str,
        decision: Decision,
        gate_results: list[GateResult] | None,
        correlation_id: str | None,
        *,
        claimed: bool,
    ) -> Outcome:
        from shared.orchestration.execution_log import build_row

        t = self.transition
        now = self.clock.now()
        missing_games = _missing_games(gate_results or [])
        gate_doc = _gates_doc(gate_results) if gate_results is not None else None
        row = build_row(
            transition=t.name,
            game_date=game_date,
            status="blocked",
            now=now,
            correlation_id=correlation_id,
            trigger_id=None,
            start_time=decision.progress.first_completion_at,
            games_processed=_games_processed(gate_results or []),
            metadata={
                "mode": decision.progress.mode,
                "reason": _capped(reason),
                **_bounded("missing_games", missing_games),
                "gates": gate_doc,
                **_bounded("processors_completed", decision.progress.done),
            },
        )
        logged = self.state.release(
            game_date,
            claim.owner or "",
            now,
            status="blocked",
            token=claim.token,
            claimed=claimed,
            gate=gate_doc,
            missing_games=missing_games[:_MAX_LIST] if gate_results is not None else None,
            log_row=row,
            handoffs=self._missing_games_handoff(game_date, missing_games, correlation_id),
        )
        labels = {"alert": "transition_blocked", "claimed": str(claimed)}
        _log_check("BLOCKED", t.name, game_date, reason, logged, labels)
        if logged:
            self._nudge(f"blocked {t.name} {game_date}")
        return Outcome("blocked", reason, game_date, extra={"missing_games": missing_games})

    def _gate_error(
        self, game_date: date, claim: Claim, exc: GateConfigError, decision: Ready, correlation_id: str | None
    ) -> Outcome:
        """A gate that cannot run as configured: ack (redelivery cannot fix it), alert, record.

        The completion is already recorded, and the date stays retriggerable: the monitor
        re-evaluates it on every pass, so it triggers once the configuration is fixed.
        """
        from shared.orchestration.execution_log import build_row

        t = self.transition
        now = self.clock.now()
        reason = _capped(str(exc)) or ""
        gate_doc = {exc.gate: {"gate": exc.gate, "verdict": "error", "reason": reason}}
        row = build_row(
            transition=t.name,
            game_date=game_date,
            status="gate_error",
            now=now,
            correlation_id=correlation_id,
            trigger_id=None,
            start_time=decision.progress.first_completion_at,
            games_processed=None,
            metadata={
                "mode": decision.progress.mode,
                "reason": reason,
                "gates": gate_doc,
                **_bounded("processors_completed", decision.progress.done),
            },
        )
        logged = self.state.release(
            game_date, claim.owner or "", now, status="gate_error", token=claim.token, gate=gate_doc, log_row=row
        )
        _log_check("GATE ERROR", t.name, game_date, reason, logged, {"alert": "gate_error", "gate": exc.gate})
        if logged:
            self._nudge(f"gate error {t.name} {game_date}")
        return Outcome("gate_error", reason, game_date, extra={"gate": exc.gate})

    # -- durable hand-offs (L24) -------------------------------------------------------------
    def _missing_games_handoff(
        self, game_date: date, missing: list[str], correlation_id: str | None
    ) -> list[tuple[str, dict[str, Any]]]:
        """The outbox document that hands missing games to auto-retry, written with the latch or
        release (so a BigQuery blip cannot lose them) and delivered by ``deliver_handoffs``."""
        if not missing or not self.hands_off_to_retry:
            return []
        primary = self.definition.games.boxscore_sources[0].processor
        doc = {
            "kind": "retry_enqueue",
            "transition": self.transition.name,
            "game_date": game_date.isoformat(),
            "phase": self.definition.processor(primary).phase,
            "processor": primary,
            "error_message": f"{len(missing)} game(s) missing from every boxscore source",
            "error_type": "missing_games",
            "correlation_id": correlation_id,
            "game_ids": missing[:_MAX_LIST],
            "created_at": self.clock.now(),
        }
        digest = hashlib.sha256(json.dumps(doc["game_ids"]).encode()).hexdigest()[:12]
        return [(f"{HANDOFF_PREFIX}{self.transition.name}__{game_date.isoformat()}__{digest}", doc)]

    def _failure_handoff(
        self, completion: ProcessorCompletion, processor: str | None, record: CompletionRecord
    ) -> tuple[str, dict[str, Any]] | None:
        """The outbox document that hands a failed completion to auto-retry, written in the same
        batch as the completion (durable, no BigQuery here: auto-retry turns it into the queue row)."""
        if not self.hands_off_to_retry or processor is None:
            return None
        doc = {
            "kind": "retry_enqueue",
            "transition": self.transition.name,
            "game_date": completion.game_date.isoformat(),
            "phase": completion.phase,
            "processor": processor,
            "error_message": _capped(completion.error_message),
            "error_type": completion.error_type,
            "permanent": completion.error_class is ErrorType.PERMANENT,
            "correlation_id": completion.correlation_id,
            "game_ids": [],
            "created_at": self.clock.now(),
        }
        key = completion_doc_id(record.raw_name, record.execution_id)
        return f"{HANDOFF_PREFIX}failed__{self.transition.name}__{completion.game_date.isoformat()}__{key}", doc

    def _nudge(self, why: str) -> None:
        """Ask auto-retry to deliver the outbox now (never raises: the monitor delivers it anyway)."""
        nudge = self.nudge
        if nudge is not None:
            nudge.send(why)

    def _release_quietly(self, game_date: date, claim: Claim, status: str) -> None:
        """Release after a failure; the original error is what the caller re-raises."""
        try:
            self.state.release(game_date, claim.owner or "", self.clock.now(), status=status, token=claim.token)
        except Exception as exc:  # noqa: BLE001 - the claim expires by itself; the first error wins
            _log.warning(
                "could not release the claim of %s %s (it expires on its own): %s", self.transition.name, game_date, exc
            )


def _log_check(what: str, transition: str, game_date: date, reason: str, logged: bool, labels: dict[str, str]) -> None:
    """ERROR for a new block or gate error; INFO when a re-check finds the same one (not news)."""
    _log.log(
        logging.ERROR if logged else logging.INFO,
        "%s %s for %s: %s%s",
        what,
        transition,
        game_date,
        reason,
        "" if logged else " (unchanged since the last check; not logged again)",
        extra={"labels": labels},
    )


_MAX_LIST = 100  # longest list stored in a state document or log row; the rest is counted


def _bounded(key: str, items: Sequence[str]) -> dict[str, Any]:
    """``{key: the first _MAX_LIST items (each capped)}``, plus ``{key}_more`` when some were cut (L22)."""
    kept = [item if len(item) <= 200 else item[:197] + "..." for item in list(items)[:_MAX_LIST]]
    out: dict[str, Any] = {key: kept}
    if len(items) > _MAX_LIST:
        out[f"{key}_more"] = len(items) - _MAX_LIST
    return out


_MAX_STORED_TEXT = 2000


def _field_key(trigger_id: str) -> str:
    """A trigger id as a Firestore map key (no dots or colons: field paths would split on them)."""
    return trigger_id.replace(":", "_").replace(".", "_")


def _capped(text: str | None) -> str | None:
    """Free text as stored in a document or queue row (error messages can be whole tracebacks)."""
    if text is None or len(text) <= _MAX_STORED_TEXT:
        return text
    return text[: _MAX_STORED_TEXT - 3] + "..."


def _gates_doc(results: list[GateResult]) -> dict[str, Any]:
    return {r.gate: r.as_dict() for r in results}


def _missing_games(results: list[GateResult]) -> list[str]:
    """The games the boxscore chain's coverage gate found missing (handed to auto-retry)."""
    return sorted({g for r in results if r.retry_missing_games for g in r.missing_games})


def _games_processed(results: list[GateResult]) -> int | None:
    totals = [r.games_covered for r in results if r.games_total]
    return max(totals) if totals else None
