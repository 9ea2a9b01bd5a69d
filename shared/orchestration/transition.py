"""The transition core: completion message → record → decide → claim → gates → publish → latch.

This is what every ``functions/phaseN_to_phaseM/main.py`` calls. The outcome tells the
entrypoint whether to ack (return) or let Pub/Sub redeliver (a ``TransientError`` raised).

The exactly-once protocol, one named step each:
1. record the completion idempotently (``TransitionService._record``: a duplicate has no effect,
   L03, but the date is still re-evaluated so a redelivery after a failed publish can finish the
   job);
2. the pure engine decides (``evaluate``);
3. on ``Ready`` a transaction claims the current generation for this attempt (``_claim``: one
   owner per attempt, and the claim is the date document's one owner, L04);
4. gates run (``TriggerAttempt.run_gates``); a block releases the claim (no latch), logs and
   alerts;
5. the trigger is published with a deterministic ``trigger_id`` (``TriggerAttempt.publish``); a
   failed publish releases the claim and raises;
6. only then the generation is latched as triggered (``TriggerAttempt.latch``: a date is marked
   triggered only after its trigger is published, L01), with the log row in the same
   transaction. The row stays in the Firestore outbox: the transition never talks to BigQuery
   for it. It nudges auto-retry (one small message), which delivers the outbox to
   ``phase_execution_log`` (and failed completions to the retry queue) within seconds; the
   monitor delivers whatever is left on every pass.

Steps 4-6 (and recording a block) are ``shared.orchestration.trigger_attempt``, the trigger path.

Cold start: a completion that records and waits builds only the Firestore state and the
decision engine. The trigger path, publisher, gates, quarantine, HTTP delivery and the nudge are
built on first use (``shared.deferred``), and their modules are imported where first needed.
"""

from __future__ import annotations

import uuid
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import Clock
from shared.contracts.decode import PubSubMessage, decode_payload, extract_pubsub_message
from shared.contracts.messages import ProcessorCompletion, make_trigger_id
from shared.deferred import Deferred, deferred_attribute
from shared.errors import MalformedMessageError
from shared.orchestration.bounded import capped
from shared.orchestration.engine import Blocked, CompletionRecord, Ready, Wait, decide
from shared.orchestration.outcome import Outcome, OutcomeKind
from shared.orchestration.state import Claim, DateState, TransitionState
from shared.pipeline.definition import PipelineDefinition, Transition
from shared.structured_log import get_logger, log_context

if TYPE_CHECKING:
    from shared.orchestration.gates import GateRunner
    from shared.orchestration.handoffs import Handoff
    from shared.orchestration.http_delivery import HttpDeliverer
    from shared.orchestration.publisher import OutboxNudge, TriggerPublisher
    from shared.orchestration.quarantine import Quarantine

__all__ = ["Outcome", "OutcomeKind", "TransitionService"]

_log = get_logger("shared.orchestration.transition")


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
            refused = self._refuse(message, completion, now)
            if refused is not None:
                return refused
            record = CompletionRecord(
                raw_name=completion.processor_name,
                processor=self.definition.normalise_processor(
                    t.source_phase, completion.processor_name, completion.output_table
                ),
                status=str(completion.status),
                execution_id=completion.execution_id,
                completed_at=now,
                record_count=completion.record_count,
                completion_pct=completion.effective_completion_pct,
                predictions=completion.completed_predictions,
            )
            try:
                new = self._record(message, completion, record)
            except MalformedMessageError as exc:  # valid by the contract but not storable: permanent
                self.quarantine.put(message, reason=str(exc), transition=t.name)
                return Outcome("quarantined", str(exc), completion.game_date)
            who = f"msg:{message.message_id or '-'}"
            outcome = self.evaluate(completion.game_date, correlation_id=completion.correlation_id, owner=who)
            return Outcome(
                outcome.kind,
                outcome.detail,
                outcome.game_date,
                outcome.trigger_id,
                duplicate=not new,
                unknown_processor=record.processor is None,
                extra=outcome.extra,
            )

    def _refuse(self, message: PubSubMessage, completion: ProcessorCompletion, now: datetime) -> Outcome | None:
        """A completion this transition does not take: another phase's (quarantined), or one older
        than the max age (acked, alerted and quarantined: never redelivered without end)."""
        t = self.transition
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
        return None

    def _record(self, message: PubSubMessage, completion: ProcessorCompletion, record: CompletionRecord) -> bool:
        """Step 1, record: the completion, once (``False``: recorded before). A failed one is handed
        to auto-retry in the same write. Raises ``MalformedMessageError`` when it cannot be stored."""
        failed = record.processor is not None and record.status == "failed"
        handoff = self._failure_handoff(completion, record) if failed else None
        error_class = completion.error_class
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
                "error_message": capped(completion.error_message),
                "unknown_fields": completion.unknown_fields(),
            },
            handoff=handoff,
        )
        if record.processor is None:
            _log.warning(
                "unknown processor %r recorded for %s; it never counts toward completion",
                completion.processor_name,
                self.transition.name,
            )
        if handoff is not None and new:
            self.nudge_outbox("failed completion handed to auto-retry")
        return new

    def _failure_handoff(self, completion: ProcessorCompletion, record: CompletionRecord) -> Handoff | None:
        """A failed completion for auto-retry, written in the same batch as the completion (durable:
        a hand-off is never lost on a BigQuery blip, L24)."""
        if not self.hands_off_to_retry or record.processor is None:
            return None
        from shared.orchestration.handoffs import failure_handoff

        # the retry budget holds per (processor, date, generation): the date's current one (one read,
        # for failed completions only)
        generation = self.state.generation(completion.game_date)
        return failure_handoff(
            self.transition.name, completion, record.processor, record, self.clock.now(), generation=generation
        )

    # -- entry: re-evaluate a date (messages, the monitor's deadline sweep, the CLI) ---------
    def evaluate(self, game_date: date, *, correlation_id: str | None = None, owner: str | None = None) -> Outcome:
        """Decide → claim → gates → publish → latch (or release) for one date.

        ``owner`` says who asks (``msg:<message id>``, ``monitor:…``, ``phasectl:…``; default
        ``run``): it prefixes this attempt's owner, which is unique per attempt and never the
        message id alone, so a concurrent redelivery of the same message cannot walk into this
        attempt's live claim (L21).
        """
        attempt_owner = f"{owner or 'run'}:{uuid.uuid4().hex[:12]}"
        state = self.state.load(game_date)
        if state.intent is not None:  # an earlier attempt fixed this trigger's messages: send those
            return self._resume(game_date, attempt_owner, correlation_id, state, state.intent)
        decision = decide(self.definition, self.transition, game_date, state.completions, self.clock)
        mode = decision.progress.mode
        done = state.triggered_slot(mode)  # with modes: once per mode
        if done is not None:
            return Outcome(
                "already_triggered",
                f"generation {state.generation}{f' mode {mode}' if mode else ''} already triggered",
                game_date,
                done.get("trigger_id"),
            )
        if isinstance(decision, Wait):
            return Outcome("waiting", decision.reason, game_date, extra={"next_check_at": decision.next_check_at})
        claim: Claim | None = None  # the engine blocked: the block is recorded without a claim
        if isinstance(decision, Ready):
            claim = self._claim(game_date, attempt_owner, mode, state.generation)
            if claim.result != "claimed":
                return Outcome(claim.result, f"claim not taken: {claim.result}", game_date, claim.trigger_id)
        # the trigger path: its module loads here, on the first date that is ready (or blocked)
        from shared.orchestration.trigger_attempt import TriggerAttempt

        attempt = TriggerAttempt(self, game_date, attempt_owner, correlation_id, state, decision, claim)
        if isinstance(decision, Blocked):
            return attempt.blocked(decision.reason, None)
        return attempt.trigger(decision)

    def _claim(self, game_date: date, owner: str, mode: str | None, generation: int) -> Claim:
        """Step 3, claim: the right to trigger the current generation (of the decided mode): its claim
        document by create-if-absent (N simultaneous deciders: one goes on, the others answer
        ``claimed_elsewhere`` at once), then one transaction on the date that fixes the trigger id and
        the fencing token of every later write."""
        name = self.transition.name
        return self.state.claim(
            game_date,
            owner,
            self.clock.now(),
            lambda gen: make_trigger_id(name, game_date, gen, mode),
            mode=mode,
            generation=generation,
        )

    def _resume(
        self, game_date: date, owner: str, correlation_id: str | None, state: DateState, stored: dict[str, Any]
    ) -> Outcome:
        """A trigger whose messages an earlier attempt fixed and may have published (its publish was
        ambiguous, or it crashed before the latch): claim it and publish exactly those bytes, without
        deciding the date again (L27: an id names one content)."""
        from shared.orchestration.intent import Intent
        from shared.orchestration.trigger_attempt import TriggerAttempt

        intent = Intent.from_doc(stored)
        claim = self._claim(game_date, owner, intent.mode, intent.generation)
        if claim.result != "claimed":
            return Outcome(claim.result, f"claim not taken: {claim.result}", game_date, claim.trigger_id)
        attempt = TriggerAttempt(self, game_date, owner, correlation_id or intent.correlation_id, state, None, claim)
        return attempt.resume(intent)

    def nudge_outbox(self, why: str) -> None:
        """Ask auto-retry to deliver the outbox now (never raises: the monitor delivers it anyway)."""
        nudge = self.nudge
        if nudge is not None:
            nudge.send(why)
