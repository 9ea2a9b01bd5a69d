"""Firestore state of the transitions: one owner per document, one atomic protocol (L01, L03, L04).

Layout (collection names come from the pipeline definition)::

    phase_transitions/{transition}__{game_date}                  the date's state document
        transition, game_date, generation, status, claim{trigger_id, owner, token, expires_at},
        triggered{<generation>: {trigger_id, at, message_id, status}}, last_gate{...},
        missing_games[], blocked_count, updated_at
    phase_transitions/{transition}__{game_date}/completions/{id}  ``shared.orchestration.completions``
    phase_execution_log_outbox/{row_id}                           ``shared.orchestration.outbox_store``

Who writes what:

- a completion document: the transition function that received the completion, with
  ``create()`` (a duplicate delivery fails with AlreadyExists: no effect, L03), so recording
  never contends with other processors; nobody updates it (auto-retry and the monitor read it);
- the date document: whoever evaluates the date through the transition's service (the
  transition function on a completion, the monitor's deadline sweep, ``phasectl trigger``),
  only inside short transactions: *claim* (after the engine says ready), *confirm* (right
  before publishing), *release* (blocked, gate error or failed publish: the date stays
  retriggerable, L01) and *mark triggered* (after the publish succeeded). The claim is the one
  owner of the document (L04): release and mark triggered change nothing unless the claim is
  still this attempt's (owner and fencing token). The HTTP start call is noted on it before
  the latch; the operator's re-trigger (``phasectl trigger --force``) opens a new generation.
  Sensors and scheduled triggers (``shared.orchestration.timed``) keep their own documents,
  keyed by their own name, with the same protocol;
- the outbox: the release and mark-triggered transactions write the log row (and hand-offs to
  auto-retry) atomically with the date document, a failed completion's hand-off is written in
  the completion's batch; auto-retry and the monitor deliver and delete them.
"""

from __future__ import annotations

import functools
import json
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, TypeVar

from google.api_core import exceptions as gexc

from shared.orchestration.claim_docs import ClaimDocs
from shared.orchestration.completions import Completions, completion_doc_id
from shared.orchestration.date_state import Claim, Confirmed, DateState, _holds, slot_key, state_doc_id
from shared.orchestration.engine import CompletionRecord
from shared.orchestration.firestore_errors import TRANSIENT_ERRORS, firestore_transient
from shared.orchestration.outbox_store import OUTBOX_COLLECTION, Outbox
from shared.pipeline.definition import Retention
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.clock import Clock
    from shared.pipeline.definition import PipelineDefinition

__all__ = ["CLAIM_TTL", "Claim", "DateState", "TransitionState", "completion_doc_id", "slot_key", "state_doc_id"]

T = TypeVar("T")
_log = get_logger("shared.orchestration.state")

# Well above the functions' timeouts (120 s; the monitor 300 s): a claim outlives any attempt that
# holds it, so a slow attempt cannot lose its claim mid-work. Gates run under a 60 s deadline and
# the HTTP start call under 30 s, and the claim is confirmed (and extended) right before publishing.
# A crashed attempt's claim blocks the date until it expires; the monitor then finishes the job.
CLAIM_TTL = timedelta(minutes=10)


# Release statuses whose exact repeat (same gate results) is not logged again.
_REPEATABLE = frozenset({"blocked", "gate_error"})


class TransitionState:
    """Firestore adapter for one transition's state. Thin: no decisions here."""

    def __init__(
        self,
        client: firestore.Client,
        collection: str,
        transition: str,
        *,
        claim_ttl: timedelta = CLAIM_TTL,
        transaction_attempts: int = 12,
        quarantine_collection: str = "quarantine",
        retention: Retention | None = None,
        outbox_collection: str = OUTBOX_COLLECTION,
    ) -> None:
        self.retention = retention or Retention()
        # where the latch and release queue their log rows and hand-offs (and where BigQuery's
        # rejected rows are quarantined, by whoever delivers them)
        self.outbox = Outbox(
            client, outbox_collection, retention=self.retention, quarantine_collection=quarantine_collection
        )
        self.client = client
        self.collection = collection
        self.transition = transition
        self.completions = Completions(client, self._date_ref, self._expiry, self.outbox)
        self.claim_ttl = claim_ttl
        self.transaction_attempts = transaction_attempts
        self.claim_docs = ClaimDocs(self._date_ref, client, claim_ttl, self._expiry)

    @classmethod
    def for_definition(
        cls, client: firestore.Client, definition: PipelineDefinition, name: str, clock: Clock
    ) -> TransitionState:
        """The state of transition (or timed trigger) ``name`` as the definition configures it: its
        collection, quarantine, retention, and a claim TTL that bounds real work on any clock."""
        from shared.clock import real_time_scale

        settings = definition.pipeline
        return cls(
            client,
            settings.state_collection,
            name,
            quarantine_collection=settings.quarantine_collection,
            retention=definition.retention,
            outbox_collection=settings.outbox_collection,
            claim_ttl=CLAIM_TTL * real_time_scale(clock),
        )

    # -- expiry: every document expires (Firestore TTL policy, L25) ------------------------
    def _expiry(self, now: datetime) -> dict[str, Any]:
        return {self.retention.expiry_field: now + timedelta(days=self.retention.state_days)}

    # -- references ----------------------------------------------------------------------
    def _date_ref(self, game_date: date) -> Any:
        return self.client.collection(self.collection).document(state_doc_id(self.transition, game_date))

    def load(self, game_date: date) -> DateState:
        """The date document and all its completions (strongly consistent reads)."""
        try:
            snap = self._date_ref(game_date).get()
            completions = self.completions.read(game_date)
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("load state", exc, game_date=str(game_date)) from exc
        return self._state(game_date, snap.to_dict() if snap.exists else None, completions)

    def generation(self, game_date: date) -> int:
        """The date's current generation (1 before its document exists)."""
        try:
            snap = self._date_ref(game_date).get(field_paths=["generation"])
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("read generation", exc, game_date=str(game_date)) from exc
        return int((snap.to_dict() or {}).get("generation") or 1) if snap.exists else 1

    def _state(
        self, game_date: date, doc: dict[str, Any] | None, completions: tuple[CompletionRecord, ...] = ()
    ) -> DateState:
        doc = doc or {}
        return DateState(
            transition=self.transition,
            game_date=game_date,
            generation=int(doc.get("generation") or 1),
            status=str(doc.get("status") or "waiting"),
            triggered=dict(doc.get("triggered") or {}),
            claim=doc.get("claim"),
            missing_games=tuple(doc.get("missing_games") or ()),
            last_gate=doc.get("last_gate"),
            completions=completions,
            raw=doc,
        )

    # -- transactions ----------------------------------------------------------------------
    def _run(self, action: str, body: Callable[[Any], T], game_date: date) -> T:
        """Run ``body(transaction)`` transactionally, retrying lock timeouts (emulator: 2 s waits)."""
        from google.cloud import firestore

        wrapped = firestore.transactional(body)
        last: Exception | None = None
        for _ in range(3):
            try:
                result: T = wrapped(self.client.transaction(max_attempts=self.transaction_attempts))
                return result
            except (gexc.Aborted, ValueError) as exc:  # ValueError: the client's "exceeded attempts"
                if isinstance(exc, ValueError) and not isinstance(exc.__cause__, gexc.Aborted):
                    raise
                last = exc
                time.sleep(0.05)
            except TRANSIENT_ERRORS as exc:
                raise firestore_transient(action, exc, game_date=str(game_date)) from exc
        assert last is not None
        raise firestore_transient(action, last, game_date=str(game_date))

    def claim(
        self,
        game_date: date,
        owner: str,
        now: datetime,
        make_trigger_id: Callable[[int], str],
        mode: str | None = None,
        generation: int | None = None,
    ) -> Claim:
        """Atomically claim the right to trigger the current generation of this date.

        ``owner`` must be unique per attempt (never a message id: a concurrent redelivery of the
        same message must not walk into this claim, L21). The claim carries a fencing token, one
        more than any before it on this date; ``confirm``, ``mark_triggered`` and ``release``
        succeed only for the current owner and token.

        ``generation`` (the generation the caller read): first take the slot's claim document by
        create-if-absent (``shared.orchestration.claim_docs``), so of N attempts that decide at the
        same instant only one opens the transaction and the others answer ``claimed_elsewhere`` at
        once, with no contention on the date document (L28: a hot document is not a lock service).
        """
        ref = self._date_ref(game_date)
        slot = None if generation is None else slot_key(generation, mode)
        if slot is not None and generation is not None:
            if not self.claim_docs.take(game_date, slot, owner, now):
                return Claim("claimed_elsewhere", generation, make_trigger_id(generation))

        def body(tx: Any) -> Claim:
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            state = self._state(game_date, doc)
            current = state.triggered_slot(mode)
            if current is not None:
                return Claim("already_triggered", state.generation, current.get("trigger_id"))
            claim = state.claim
            if claim and claim.get("owner") != owner and claim.get("expires_at") and claim["expires_at"] > now:
                return Claim("claimed_elsewhere", state.generation, claim.get("trigger_id"))
            trigger_id = make_trigger_id(state.generation)
            token = int((doc or {}).get("fence") or 0) + 1
            tx.set(
                ref,
                {
                    "transition": self.transition,
                    "game_date": game_date.isoformat(),
                    "generation": state.generation,
                    "status": "claimed",
                    "fence": token,
                    "claim": {
                        "trigger_id": trigger_id,
                        "owner": owner,
                        "token": token,
                        "claimed_at": now,
                        "expires_at": now + self.claim_ttl,
                        "slot": slot,  # its claim document, deleted by the release or the latch
                    },
                    "updated_at": now,
                    **self._expiry(now),
                },
                merge=True,
            )
            return Claim("claimed", state.generation, trigger_id, owner, token)

        try:
            claim = self._run("claim trigger", body, game_date)
        except BaseException:
            if slot is not None:
                self.claim_docs.drop(game_date, slot, owner)
            raise
        if claim.result != "claimed" and slot is not None:
            self.claim_docs.drop(game_date, slot, owner)
        return claim

    def confirm(
        self, game_date: date, claim: Claim, now: datetime, intent: dict[str, Any] | None = None
    ) -> Confirmed | None:
        """Right before publishing: is the claim still ours and live? Extends it when it is.

        ``None`` means another attempt took the date over (ours expired): do not publish.
        ``intent``: the exact messages about to be published, stored with the claim (status
        ``publishing``) unless an intent of this generation is stored already, so every later
        attempt under this trigger_id publishes those bytes (L27: an id names one content); the
        intent stored is returned (publish that one).
        """
        ref = self._date_ref(game_date)

        def body(tx: Any) -> Confirmed | None:
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            held = (doc or {}).get("claim") or {}
            live = held.get("expires_at") is not None and held["expires_at"] > now
            if claim.owner is None or not _holds(doc, claim.owner, claim.token) or not live:
                return None
            state = self._state(game_date, doc)
            if intent is not None and int(intent.get("generation") or 0) != state.generation:
                return None  # the date was reopened since this attempt read it: not its generation
            update: dict[str, Any] = {"claim": {**held, "expires_at": now + self.claim_ttl}, "updated_at": now}
            stored = state.intent
            if intent is not None and stored is None:
                update |= {"intent": intent, "status": "publishing"}
                stored = intent
            tx.set(ref, update, merge=True)
            self.claim_docs.stage_extend(tx, game_date, held.get("slot"), claim.owner, now)
            return Confirmed(stored)

        return self._run("confirm claim", body, game_date)

    def release(
        self,
        game_date: date,
        owner: str,
        now: datetime,
        *,
        status: str,
        token: int | None = None,
        gate: dict[str, Any] | None = None,
        missing_games: list[str] | None = None,
        log_row: tuple[str, dict[str, Any]] | None = None,
        handoffs: list[tuple[str, dict[str, Any]]] | None = None,
        claimed: bool = True,
    ) -> bool:
        """Drop our claim (blocked, gate error or failed publish): the date stays retriggerable (L01).

        Fenced: with ``claimed`` it changes nothing unless the claim is still this attempt's
        (owner and token), so a late release never overwrites a date another attempt claimed or
        latched (it is logged instead). Without ``claimed`` (the engine itself blocked, no claim
        was taken) it applies only when no live claim is held and the date is not triggered.
        Returns whether ``log_row`` was written. A block that repeats the previous one exactly
        (same gate results: a monitor re-check, a redelivery) is counted but not logged again,
        so ``phase_execution_log`` gets one ``blocked`` row per distinct block, not one per re-check.
        ``handoffs`` go to the outbox in the same transaction (a hand-off is durable, never dropped
        on a blip, L24).
        """
        ref = self._date_ref(game_date)

        def body(tx: Any) -> tuple[bool, str | None]:
            """One run (the transaction may run it again: the last run decides): whether the log
            row was written, and why the release was refused (``None``: it was not)."""
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else {}
            state = self._state(game_date, doc)
            if claimed and not _holds(doc, owner, token):
                held = (doc or {}).get("claim") or {}
                holder = f"{held.get('owner')!r} token {held.get('token')!r}"
                return False, f"the claim is now {holder}, status {state.status}"
            if not claimed:
                held = (doc or {}).get("claim") or {}
                if state.triggered_current is not None or (held.get("expires_at") and held["expires_at"] > now):
                    return False, f"the date is {state.status} (claimed or triggered by another attempt)"
            update: dict[str, Any] = {"status": status, "updated_at": now, "claim": None, **self._expiry(now)}
            if claimed:
                self.claim_docs.stage_delete(tx, game_date, ((doc or {}).get("claim") or {}).get("slot"))
            if gate is not None:
                update["last_gate"] = gate
            if missing_games is not None:
                update["missing_games"] = missing_games
            previous_blocks = int((doc or {}).get("blocked_count") or 0)
            repeated = (
                status in _REPEATABLE
                and (doc or {}).get("last_check_status", "blocked" if previous_blocks else None) == status
                and gate is not None
                and (doc or {}).get("last_gate") == gate
            )
            if status in _REPEATABLE:
                update["last_check_status"] = status  # claims overwrite `status`; this survives them
            if status == "blocked":
                update["blocked_count"] = previous_blocks + 1
            tx.set(ref, update, merge=True)
            logged = [log_row] if log_row is not None and not repeated else []
            for doc_id, outbox_doc in [*logged, *(handoffs or [])]:
                self.outbox.stage(tx, doc_id, outbox_doc, now)
            return bool(logged), None

        logged, refused = self._run("release claim", body, game_date)
        if refused is not None:
            _log.warning(
                "release of %s %s (%s) refused: %s",
                self.transition,
                game_date,
                status,
                refused,
                extra={"labels": {"alert": "claim_fence_refused", "owner": owner}},
            )
        return logged

    def note_http_delivery(self, game_date: date, key: str, doc: dict[str, Any]) -> None:
        """Record that a trigger's HTTP start call was delivered (before the latch: a crash in
        between must not call the consumer again)."""
        try:
            self._date_ref(game_date).set({"http_delivery": {key: doc}}, merge=True)
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("record HTTP delivery", exc, game_date=str(game_date)) from exc

    def mark_triggered(
        self,
        game_date: date,
        owner: str,
        generation: int,
        now: datetime,
        record: dict[str, Any],
        *,
        token: int | None = None,
        mode: str | None = None,
        gate: dict[str, Any] | None,
        missing_games: list[str],
        log_row: tuple[str, dict[str, Any]],
        handoffs: list[tuple[str, dict[str, Any]]] | None = None,
    ) -> bool:
        """After a successful publish: latch the generation, queue the log row and hand-offs, atomically.

        Fenced like ``release``: refused (``False``, logged) unless the claim is still this
        attempt's. If the write fails for a permanent reason (a document over Firestore's limit),
        a minimal latch without the details is written instead and the reason recorded, so the
        claim is never left stuck (a permanent write failure never strands a claim, L22).
        """
        ref = self._date_ref(game_date)

        def latch(tx: Any, minimal: str | None = None) -> str | None:
            """One run (``minimal``: without the details, for that reason); why the latch was
            refused, or ``None`` once it is written."""
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else {}
            if not _holds(doc, owner, token):
                held = (doc or {}).get("claim") or {}
                return f"the claim is now {held.get('owner')!r} token {held.get('token')!r}"
            entry = (
                record
                if minimal is None
                else {k: record.get(k) for k in ("trigger_id", "at", "message_id", "status", "parts")}
                | {"latch_error": minimal}
            )
            update: dict[str, Any] = {
                "status": "triggered",
                "triggered": {slot_key(generation, mode): entry},
                "updated_at": now,
                "claim": None,
                "intent": None,  # published and latched: the messages live on in the topic and the log row
                **self._expiry(now),
            }
            self.claim_docs.stage_delete(tx, game_date, ((doc or {}).get("claim") or {}).get("slot"))
            if minimal is None:
                update["missing_games"] = missing_games
                if gate is not None:
                    update["last_gate"] = gate
            tx.set(ref, update, merge=True)
            row_id, row = log_row
            if minimal is not None:
                row = {**row, "metadata": json.dumps({"latch_error": minimal})}
            self.outbox.stage(tx, row_id, row, now)
            for handoff in handoffs or []:
                self.outbox.stage(tx, *handoff, now)
            return None

        try:
            refused = self._run("mark triggered", latch, game_date)
        except (ValueError, gexc.InvalidArgument) as exc:  # too large, or not storable: permanent
            reason = f"{type(exc).__name__}: {str(exc)[:300]}"
            _log.error(
                "latch of %s %s could not store its details (%s); latched without them",
                self.transition,
                game_date,
                reason,
                extra={"labels": {"alert": "latch_degraded"}},
            )
            refused = self._run("mark triggered (minimal)", functools.partial(latch, minimal=reason), game_date)
        if refused is not None:
            _log.error(
                "latch of %s %s generation %s refused: %s (this attempt's trigger was published anyway; "
                "consumers dedupe on its trigger_id)",
                self.transition,
                game_date,
                generation,
                refused,
                extra={"labels": {"alert": "claim_fence_refused", "owner": owner}},
            )
            return False
        return True

    def reopen(
        self, game_date: date, now: datetime, reason: str, *, trigger_source: str | None = None, only_from: int = 0
    ) -> int:
        """Start a new generation (an operator's re-trigger, a self-heal or a backfill); returns it.
        ``trigger_source`` (e.g. ``self_heal``) goes into the new generation's trigger messages;
        ``only_from``: only while the date is in that generation (else 0: another process moved it)."""
        ref = self._date_ref(game_date)

        def body(tx: Any) -> int:
            snap = ref.get(transaction=tx)
            state = self._state(game_date, snap.to_dict() if snap.exists else None)
            if only_from and state.generation != only_from:
                return 0
            generation = state.generation + 1
            tx.set(
                ref,
                {
                    "transition": self.transition,
                    "game_date": game_date.isoformat(),
                    "generation": generation,
                    "status": "waiting",
                    "claim": None,
                    "intent": None,  # a new generation decides (and fixes) its messages anew
                    "reopened": {
                        "at": now,
                        "reason": reason,
                        "generation": generation,
                        "trigger_source": trigger_source,
                    },
                    "updated_at": now,
                },
                merge=True,
            )
            return generation

        return self._run("reopen", body, game_date)
