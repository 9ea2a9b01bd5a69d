"""The trigger path of one evaluation: gates → publish → latch, or release (blocked, gate error).

``TransitionService.evaluate`` (``shared.orchestration.transition``) records, decides and claims;
on a claimed date it hands over to a ``TriggerAttempt``, whose steps are its methods, each with
its failure path next to it:

- ``run_gates``: a block, or a gate that cannot run as configured, releases the claim with its
  log row (no latch: the date stays retriggerable) and is the outcome; any other failure
  releases the claim and raises (gate errors never pass silently);
- ``prepare``: the messages are built once, as a publish intent (``shared.orchestration.intent``);
- ``publish``: the claim is confirmed (still ours, extended) and the intent stored with it (status
  ``publishing``), then every part is published and the consumer's HTTP start call made; a failure
  of either releases the claim, keeps the intent, and raises: the publish may have reached the
  server, so the next attempt sends the same bytes (L27: an id names one content);
- ``latch``: only now the generation is marked triggered, with its log row and hand-offs in the
  same transaction (a date is marked triggered only after its trigger is published, L01). Both
  describe the intent, the bytes that went out.

``resume`` is the same publish → latch for an intent an earlier attempt stored (no decision, no
gates: the date is not evaluated again until its trigger is latched).

A block the engine itself decided (before any claim) is recorded by ``blocked`` without a claim.
Every outcome writes one ``phase_execution_log`` row (``_log_row``) to the outbox, in the same
transaction as the latch or release. This module loads on the first date that is ready or blocked:
a completion that only records and waits never imports it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Protocol

from shared.contracts.messages import PhaseTrigger, TriggerStatus
from shared.orchestration.bounded import MAX_LIST, bounded, capped
from shared.orchestration.engine import Decision, Progress, Ready
from shared.orchestration.intent import Intent, StoredMessage, log_row
from shared.orchestration.outcome import Outcome
from shared.orchestration.state import Claim, DateState, TransitionState
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from shared.clock import Clock
    from shared.orchestration.gates import GateConfigError, GateResult, GateRunner
    from shared.orchestration.handoffs import Handoff
    from shared.orchestration.http_delivery import HttpDeliverer
    from shared.orchestration.publisher import TriggerPublisher
    from shared.pipeline.definition import PipelineDefinition, Transition

_log = get_logger("shared.orchestration.transition")  # the transition's log: its lines as they always were


class TransitionAdapters(Protocol):
    """What an attempt uses of its ``TransitionService`` (the adapters are built on first read)."""

    definition: PipelineDefinition
    transition: Transition
    clock: Clock
    state: TransitionState
    hands_off_to_retry: bool

    @property
    def gates(self) -> GateRunner: ...

    @property
    def publisher(self) -> TriggerPublisher: ...

    @property
    def http(self) -> HttpDeliverer | None: ...

    def nudge_outbox(self, why: str) -> None: ...


@dataclass(frozen=True)
class Published:
    intent: Intent  # what went out: the intent stored on the date (an earlier attempt's wins)
    message_ids: list[str]
    http: dict[str, Any] | None  # the HTTP start call, for a transition that delivers by HTTP


@dataclass(frozen=True)
class TriggerAttempt:
    """One attempt at one date, from its decision on. ``owner`` is unique per attempt; ``claim`` is
    ``None`` only for a block the engine decided (nothing was claimed)."""

    service: TransitionAdapters
    game_date: date
    owner: str
    correlation_id: str | None
    date_state: DateState  # as read before deciding
    decision: Decision | None  # None: resuming a stored intent (nothing is decided again)
    claim: Claim | None

    @property
    def held(self) -> Claim:
        """The claim this attempt holds (every step after the claim has one)."""
        assert self.claim is not None
        return self.claim

    @property
    def progress(self) -> Progress:
        """The decision's progress (every step that decides has one)."""
        assert self.decision is not None
        return self.decision.progress

    def trigger(self, decision: Ready) -> Outcome:
        """Steps 4-6 on the claimed date: gates → prepare → publish → latch."""
        gate_results = self.run_gates()
        if isinstance(gate_results, Outcome):
            return gate_results  # blocked or gate error: released and recorded
        return self.resume(self.prepare(decision, gate_results))

    def resume(self, intent: Intent) -> Outcome:
        """Steps 5-6 for fixed messages: a fresh intent, or one an earlier attempt stored."""
        published = self.publish(intent)
        if isinstance(published, Outcome):
            return published  # the claim was lost before publishing: nothing went out
        return self.latch(published)

    # -- the steps -------------------------------------------------------------------------
    def run_gates(self) -> list[GateResult] | Outcome:
        """Step 4, gates: a block or a gate error is the outcome (released, recorded, alerted)."""
        from shared.orchestration.gates import GateConfigError

        svc = self.service
        deadline = svc.state.claim_ttl.total_seconds() * 0.5
        try:
            with self._released_on_failure("waiting", unless=GateConfigError):
                results = svc.gates.run(
                    svc.transition, self.game_date, mode=self.progress.mode, deadline_seconds=deadline
                )
        except GateConfigError as exc:
            return self.gate_error(exc)
        blocking = next((g for g in results if g.verdict == "blocked"), None)
        if blocking is not None:
            return self.blocked(blocking.reason, results)
        return results

    def prepare(self, decision: Ready, results: list[GateResult]) -> Intent:
        """The trigger's messages, status and reason, fixed once (data below an alert line is
        partial data)."""
        from shared.orchestration.triggers import build_triggers

        svc = self.service
        missing_games = _missing_games(results)
        status = TriggerStatus(decision.status)
        below_alert = any(g.verdict == "alert" and not g.advisory for g in results)
        if status is TriggerStatus.COMPLETE and (missing_games or below_alert):
            status = TriggerStatus.PARTIAL
        reason = "; ".join([decision.reason, *(f"gate {g.gate}: {g.reason}" for g in results)])
        messages = build_triggers(
            svc.definition,
            svc.transition,
            game_date=self.game_date,
            generation=self.held.generation,
            status=status,
            reason=reason,
            mode=decision.progress.mode,
            processors_done=decision.progress.done,
            correlation_id=self.correlation_id,
            missing_games=missing_games,
            now=svc.clock.now(),
            gates=[g.as_dict() for g in results],
            postponed_games=_postponed_games(results),
            trigger_source=self.date_state.trigger_source,
        )
        progress = decision.progress
        return Intent(
            trigger_id=messages[0].trigger_id,
            generation=self.held.generation,
            mode=progress.mode,
            status=str(status),
            headline=decision.reason,
            reason=reason,
            messages=tuple(StoredMessage(m.trigger_id, m.to_json_bytes(), m.attributes()) for m in messages),
            gates=_gates_doc(results),
            games_processed=_games_processed(results),
            missing_games=tuple(missing_games),
            processors_completed=tuple(progress.done),
            missing_processors=tuple(progress.missing),
            unknown_processors=tuple(progress.unknown),
            start_time=progress.first_completion_at,
            correlation_id=self.correlation_id,
            source_tables=tuple(m.source_table for m in messages if m.source_table),
        )

    def publish(self, intent: Intent) -> Published | Outcome:
        """Step 5, publish: nothing goes out unless the claim is still ours (it may have expired while
        the gates ran): confirmed, and extended, first, with the intent stored (an intent stored by
        an earlier attempt wins: its bytes are the ones sent). A failed publish or HTTP start call
        releases the claim, keeps the intent and raises."""
        svc = self.service
        confirmed = svc.state.confirm(self.game_date, self.held, svc.clock.now(), intent=intent.to_doc())
        if confirmed is None:
            _log.warning(
                "%s %s: the claim expired before publishing (another attempt took over); not publishing",
                svc.transition.name,
                self.game_date,
                extra={"labels": {"alert": "claim_lost", "trigger_id": intent.trigger_id}},
            )
            return Outcome("claimed_elsewhere", "claim lost before publishing", self.game_date, intent.trigger_id)
        if confirmed.intent is not None:
            intent = Intent.from_doc(confirmed.intent)
        # a failure here is ambiguous (the server may have the messages): the date stays `publishing`
        with self._released_on_failure("publishing"):
            message_ids = svc.publisher.publish_all(intent.messages)  # all parts at once, or raise
        http_doc: dict[str, Any] | None = None
        if svc.transition.delivery.http is not None and svc.http is not None:
            with self._released_on_failure("delivery_failed"):
                http_doc = self._deliver_http(PhaseTrigger.model_validate_json(intent.messages[0].data))
        return Published(intent, message_ids, http_doc)

    def latch(self, published: Published) -> Outcome:
        """Step 6, latch: mark the generation triggered, with its log row and the missing games'
        hand-off, in one transaction; refused (nothing written) when another attempt took over."""
        svc, intent = self.service, published.intent
        name, message_id, status = svc.transition.name, published.message_ids[0], intent.status
        now = svc.clock.now()
        missing_games = list(intent.missing_games)
        latched = svc.state.mark_triggered(
            self.game_date,
            self.owner,
            intent.generation,
            now,
            {
                "trigger_id": intent.trigger_id,
                "at": now,
                "message_id": message_id,
                "parts": len(intent.messages),
                "status": status,
                "reason": capped(intent.reason),
                "http": published.http,
            },
            token=self.held.token,
            mode=intent.mode,
            gate=intent.gates,
            missing_games=missing_games[:MAX_LIST],
            log_row=log_row(intent, name, self.game_date, now, published.message_ids, published.http),
            handoffs=self._missing_games_handoff(missing_games),
        )
        if not latched:
            refused = "latch refused: the claim was taken over"
            return Outcome("claimed_elsewhere", refused, self.game_date, intent.trigger_id)
        labels = {"trigger_id": intent.trigger_id, "status": status}
        _log.info("triggered %s for %s: %s", name, self.game_date, intent.headline, extra={"labels": labels})
        for gate, reason in intent.alert_gates():  # triggered with a warning: once per trigger
            _log.warning(
                "GATE ALERT %s for %s, triggered anyway: gate %s: %s",
                name,
                self.game_date,
                gate,
                reason,
                extra={"labels": {"alert": "gate_alert", "gate": gate, "trigger_id": intent.trigger_id}},
            )
        svc.nudge_outbox(f"triggered {intent.trigger_id}")
        extra = {"status": status, "missing_games": missing_games, "message_id": message_id}
        return Outcome("triggered", intent.headline, self.game_date, intent.trigger_id, extra=extra)

    # -- release: a block, a gate error, a failed step --------------------------------------
    def blocked(self, reason: str, gate_results: list[GateResult] | None) -> Outcome:
        """Blocked by the engine (no claim: recorded only while nobody holds the date) or by a gate
        (the claim is released): no latch, the date stays retriggerable; logged and alerted."""
        name = self.service.transition.name
        now = self.service.clock.now()
        missing_games = _missing_games(gate_results or [])
        gate_doc = _gates_doc(gate_results) if gate_results is not None else None
        row = self._log_row(
            "blocked",
            reason,
            now,
            gates=gate_doc,
            games_processed=_games_processed(gate_results or []),
            **bounded("missing_games", missing_games),
        )
        logged = self._release(
            "blocked",
            now,
            gate=gate_doc,
            missing_games=missing_games[:MAX_LIST] if gate_results is not None else None,
            log_row=row,
            handoffs=self._missing_games_handoff(missing_games),
        )
        labels = {"alert": "transition_blocked", "claimed": str(self.claim is not None)}
        _log_check("BLOCKED", name, self.game_date, reason, logged, labels)
        if logged:
            self.service.nudge_outbox(f"blocked {name} {self.game_date}")
        return Outcome("blocked", reason, self.game_date, extra={"missing_games": missing_games})

    def gate_error(self, exc: GateConfigError) -> Outcome:
        """A gate that cannot run as configured: ack (redelivery cannot fix it), alert, record.

        The completion is already recorded, and the date stays retriggerable: the monitor
        re-evaluates it on every pass, so it triggers once the configuration is fixed.
        """
        name = self.service.transition.name
        now = self.service.clock.now()
        reason = capped(str(exc)) or ""
        gate_doc = {exc.gate: {"gate": exc.gate, "verdict": "error", "reason": reason}}
        row = self._log_row("gate_error", reason, now, gates=gate_doc, games_processed=None)
        logged = self._release("gate_error", now, gate=gate_doc, log_row=row)
        _log_check("GATE ERROR", name, self.game_date, reason, logged, {"alert": "gate_error", "gate": exc.gate})
        if logged:
            self.service.nudge_outbox(f"gate error {name} {self.game_date}")
        return Outcome("gate_error", reason, self.game_date, extra={"gate": exc.gate})

    def _release(self, status: str, now: datetime, **recorded: Any) -> bool:
        """Release the claim (fenced: only if it is still this attempt's), or, without one, record the
        block only while nobody holds the date; ``recorded``: the gates, missing games, log row and
        hand-offs written with it. Whether the log row was written."""
        claim = self.claim
        token = None if claim is None else claim.token
        return self.service.state.release(
            self.game_date, self.owner, now, status=status, token=token, claimed=claim is not None, **recorded
        )

    @contextmanager
    def _released_on_failure(self, status: str, *, unless: type[BaseException] | None = None) -> Iterator[None]:
        """Any failure of the step inside (but ``unless``) releases the claim with ``status`` and goes
        on up: the event is redelivered and the date stays retriggerable. A failed release is only
        logged (the claim expires on its own): the step's error is the one that counts."""
        try:
            yield
        except BaseException as exc:
            if unless is None or not isinstance(exc, unless):
                try:
                    self._release(status, self.service.clock.now())
                except Exception as release_error:  # noqa: BLE001 - the first error wins (re-raised below)
                    _log.warning(
                        "could not release the claim of %s %s (it expires on its own): %s",
                        self.service.transition.name,
                        self.game_date,
                        release_error,
                    )
            raise

    # -- what the outbox gets: the log row and the hand-offs ---------------------------------
    def _log_row(
        self,
        status: str,
        reason: str,
        now: datetime,
        *,
        gates: dict[str, Any] | None,
        games_processed: int | None,
        trigger_id: str | None = None,
        **details: Any,
    ) -> tuple[str, dict[str, Any]]:
        """The ``phase_execution_log`` row of this attempt's outcome (triggered, blocked, gate error)."""
        from shared.orchestration.execution_log import build_row

        progress = self.progress
        return build_row(
            transition=self.service.transition.name,
            game_date=self.game_date,
            status=status,
            now=now,
            correlation_id=self.correlation_id,
            trigger_id=trigger_id,
            start_time=progress.first_completion_at,
            games_processed=games_processed,
            metadata={
                "mode": progress.mode,
                "reason": capped(reason),
                "gates": gates,
                **bounded("processors_completed", progress.done),
                **details,
            },
        )

    def _missing_games_handoff(self, missing: list[str]) -> list[Handoff]:
        """Missing games for auto-retry, written with the latch or release (durable: a hand-off is
        never lost on a BigQuery blip, L24)."""
        svc = self.service
        if not missing or not svc.hands_off_to_retry:
            return []
        from shared.orchestration.handoffs import missing_games_handoff

        primary = svc.definition.games.boxscore_sources[0].processor
        handoff = missing_games_handoff(
            svc.transition.name,
            self.game_date,
            missing,
            processor=primary,
            phase=svc.definition.processor(primary).phase,
            correlation_id=self.correlation_id,
            now=svc.clock.now(),
            # the retry budget holds per (processor, date, generation): a re-trigger starts a fresh one
            generation=self.claim.generation if self.claim is not None else self.date_state.generation,
        )
        return [handoff]

    def _deliver_http(self, trigger: PhaseTrigger) -> dict[str, Any]:
        """The consumer's HTTP start call, once per ``trigger_id`` (a redelivery after a crash between
        this call and the latch finds it recorded and does not call again)."""
        from shared.orchestration.http_delivery import HttpDeliveryRejected
        from shared.orchestration.triggers import http_body

        svc = self.service
        assert svc.http is not None
        done = (self.date_state.raw.get("http_delivery") or {}).get(_field_key(trigger.trigger_id))
        if done:
            return {**done, "repeat": "already delivered for this trigger_id; not called again"}
        try:
            result = svc.http.deliver(http_body(trigger))
        except HttpDeliveryRejected as exc:
            reason = capped(str(exc)) or ""
            _log.error(
                "HTTP delivery of %s refused (the trigger stands; fix it, then re-run with phasectl trigger "
                "--force): %s",
                trigger.trigger_id,
                reason,
                extra={"labels": {"alert": "http_delivery_rejected", "trigger_id": trigger.trigger_id}},
            )
            return {"delivered": False, "error": reason}
        doc = {"delivered": True, **result.as_dict(), "at": svc.clock.now()}
        svc.state.note_http_delivery(self.game_date, _field_key(trigger.trigger_id), doc)
        return doc


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


def _field_key(trigger_id: str) -> str:
    """A trigger id as a Firestore map key (no dots or colons: field paths would split on them)."""
    return trigger_id.replace(":", "_").replace(".", "_")


def _gates_doc(results: list[GateResult]) -> dict[str, Any]:
    return {r.gate: r.as_dict() for r in results}


def _postponed_games(results: list[GateResult]) -> list[str]:
    """The games any gate found postponed (canonical ids, sorted, each once)."""
    return sorted({str(p["game_id"]) for r in results for p in r.postponed})


def _missing_games(results: list[GateResult]) -> list[str]:
    """The games the boxscore chain's coverage gate found missing (handed to auto-retry)."""
    return sorted({g for r in results if r.retry_missing_games for g in r.missing_games})


def _games_processed(results: list[GateResult]) -> int | None:
    totals = [r.games_covered for r in results if r.games_total]
    return max(totals) if totals else None
