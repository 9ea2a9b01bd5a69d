"""Firestore state of the transitions: one owner per document, one atomic protocol (L01, L03, L04).

Layout (collection names come from the pipeline definition)::

    phase_transitions/{transition}__{game_date}                  the date's state document
        transition, game_date, generation, status, claim{trigger_id, owner, expires_at},
        triggered{<generation>: {trigger_id, at, message_id, status}}, last_gate{...},
        missing_games[], blocked_count, updated_at
    phase_transitions/{transition}__{game_date}/completions/{id}  one document per
        (processor name as sent, execution_id): created once, never updated
    phase_execution_log_outbox/{row_id}                           log rows not yet in BigQuery

Only the transition function of ``transition`` writes these documents. Completions are
created with ``create()`` (a duplicate delivery fails with AlreadyExists: no effect),
so recording never contends with other processors. The date document is written only
inside short transactions: *claim* (after the engine says ready), *release* (gate
blocked or publish failed: the date stays retriggerable, L01) and *mark triggered*
(after the publish succeeded), which also writes the log row to the outbox atomically.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from google.api_core import exceptions as gexc

from shared.errors import MalformedMessageError, TransientError
from shared.orchestration.engine import CompletionRecord
from shared.pipeline.definition import Retention
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.clock import Clock
    from shared.pipeline.definition import PipelineDefinition

T = TypeVar("T")
_log = get_logger("shared.orchestration.state")

OUTBOX_COLLECTION = "phase_execution_log_outbox"
HANDOFF_PREFIX = "handoff__"  # outbox documents that are hand-offs, not log rows
# Well above the functions' timeouts (120 s; the monitor 300 s): a claim outlives any attempt that
# holds it, so a slow attempt cannot lose its claim mid-work. Gates run under a 60 s deadline and
# the HTTP start call under 30 s, and the claim is confirmed (and extended) right before publishing.
# A crashed attempt's claim blocks the date until it expires; the monitor then finishes the job.
CLAIM_TTL = timedelta(minutes=10)
TRANSIENT_ERRORS: tuple[type[Exception], ...] = (
    gexc.ServiceUnavailable,
    gexc.DeadlineExceeded,
    gexc.InternalServerError,
    gexc.TooManyRequests,
    gexc.Aborted,
    gexc.RetryError,
    gexc.Unknown,
    gexc.GatewayTimeout,
    gexc.BadGateway,
    gexc.Conflict,
)


def state_doc_id(transition: str, game_date: date) -> str:
    return f"{transition}__{game_date.isoformat()}"


def slot_key(generation: int, mode: str | None) -> str:
    """Where a generation's trigger is latched: once per mode for a transition with modes (pre-game
    ``same_day``/``tomorrow`` and post-game ``overnight`` are distinct triggers), else once."""
    return str(generation) if mode is None else f"{generation}-{mode}"


def completion_doc_id(raw_name: str, execution_id: str) -> str:
    """A stable id for one (processor as sent, execution) pair; safe for Firestore."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", raw_name)[:60]
    digest = hashlib.sha256(f"{raw_name}\x00{execution_id}".encode()).hexdigest()[:24]
    return f"{slug}__{digest}"


@dataclass(frozen=True)
class DateState:
    """The date document as read (plus its completions)."""

    transition: str
    game_date: date
    generation: int
    status: str
    triggered: dict[str, Any]
    claim: dict[str, Any] | None
    missing_games: tuple[str, ...]
    last_gate: dict[str, Any] | None
    completions: tuple[CompletionRecord, ...] = ()
    raw: dict[str, Any] = field(default_factory=dict)

    @property
    def triggered_current(self) -> dict[str, Any] | None:
        """The current generation's trigger (of a transition with modes: its latest mode's)."""
        value = self.triggered.get(str(self.generation))
        if isinstance(value, dict):
            return value
        prefix = f"{self.generation}-"
        slots = [v for k, v in self.triggered.items() if k.startswith(prefix) and isinstance(v, dict)]
        return max(slots, key=lambda v: str(v.get("at") or "")) if slots else None

    def triggered_slot(self, mode: str | None) -> dict[str, Any] | None:
        """The current generation's trigger for ``mode`` (``None``: a transition without modes)."""
        value = self.triggered.get(slot_key(self.generation, mode))
        return value if isinstance(value, dict) else None


ClaimResult = Literal["claimed", "already_triggered", "claimed_elsewhere"]


@dataclass(frozen=True)
class Claim:
    """The outcome of a claim; ``token`` fences every later write of this attempt (L21)."""

    result: ClaimResult
    generation: int
    trigger_id: str | None = None
    owner: str | None = None
    token: int | None = None


def _holds(doc: dict[str, Any] | None, owner: str, token: int | None) -> bool:
    """Whether the date document's claim is exactly this attempt's (owner and fencing token)."""
    claim = (doc or {}).get("claim") or {}
    return bool(claim) and claim.get("owner") == owner and claim.get("token") == token


def _transient(action: str, exc: Exception, **context: Any) -> TransientError:
    return TransientError(f"Firestore {action} failed: {type(exc).__name__}: {exc}", **context)


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
        self.outbox_collection = outbox_collection
        self.retention = retention or Retention()
        self.quarantine_collection = quarantine_collection
        self.client = client
        self.collection = collection
        self.transition = transition
        self.claim_ttl = claim_ttl
        self.transaction_attempts = transaction_attempts

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

    # -- expiry (L25) -----------------------------------------------------------------------
    def _expiry(self, now: datetime) -> dict[str, Any]:
        return {self.retention.expiry_field: now + timedelta(days=self.retention.state_days)}

    def _outbox_expiry(self, now: datetime) -> dict[str, Any]:
        return {self.retention.expiry_field: now + timedelta(days=self.retention.outbox_days)}

    # -- references ----------------------------------------------------------------------
    def _date_ref(self, game_date: date) -> Any:
        return self.client.collection(self.collection).document(state_doc_id(self.transition, game_date))

    def _outbox_ref(self, row_id: str) -> Any:
        return self.client.collection(self.outbox_collection).document(row_id)

    # -- completions -------------------------------------------------------------------
    def record_completion(
        self,
        game_date: date,
        record: CompletionRecord,
        extra: dict[str, Any],
        *,
        handoff: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Create the completion document; ``False`` when this exact one was recorded before (L03).

        ``handoff`` (a failed completion for auto-retry) goes to the outbox in the same batch: both
        are written, or neither (a repeat writes neither: the first one's hand-off stands).
        """
        ref = (
            self._date_ref(game_date)
            .collection("completions")
            .document(completion_doc_id(record.raw_name, record.execution_id))
        )
        doc = {
            "raw_name": record.raw_name,
            "processor": record.processor,
            "status": record.status,
            "execution_id": record.execution_id,
            "completed_at": record.completed_at,
            "record_count": record.record_count,
            "completion_pct": record.completion_pct,
            "predictions": record.predictions,
            **extra,
            **self._expiry(record.completed_at),
        }
        try:
            if handoff is None:
                ref.create(doc)
            else:
                batch = self.client.batch()
                batch.create(ref, doc)
                batch.set(self._outbox_ref(handoff[0]), {**handoff[1], **self._outbox_expiry(record.completed_at)})
                batch.commit()
        except gexc.AlreadyExists:
            return False
        except TRANSIENT_ERRORS as exc:
            raise _transient("record completion", exc, game_date=str(game_date)) from exc
        except (ValueError, UnicodeEncodeError, gexc.InvalidArgument) as exc:
            # valid by the contract but not storable (int beyond 64 bits, > 1 MiB, lone surrogates):
            # retrying cannot help, so it is permanent and the caller quarantines it
            raise MalformedMessageError(
                f"completion cannot be stored: {type(exc).__name__}: {str(exc)[:300]}", game_date=str(game_date)
            ) from exc
        return True

    def load(self, game_date: date) -> DateState:
        """The date document and all its completions (strongly consistent reads)."""
        ref = self._date_ref(game_date)
        try:
            snap = ref.get()
            completions = [self._completion(d.to_dict() or {}) for d in ref.collection("completions").stream()]
        except TRANSIENT_ERRORS as exc:
            raise _transient("load state", exc, game_date=str(game_date)) from exc
        return self._state(game_date, snap.to_dict() if snap.exists else None, tuple(completions))

    @staticmethod
    def _completion(doc: dict[str, Any]) -> CompletionRecord:
        return CompletionRecord(
            raw_name=str(doc.get("raw_name", "")),
            processor=doc.get("processor"),
            status=str(doc.get("status", "")),
            execution_id=str(doc.get("execution_id", "")),
            completed_at=doc["completed_at"],
            record_count=int(doc.get("record_count") or 0),
            completion_pct=doc.get("completion_pct"),
            predictions=doc.get("predictions"),
        )

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
                raise _transient(action, exc, game_date=str(game_date)) from exc
        assert last is not None
        raise _transient(action, last, game_date=str(game_date))

    def claim(
        self,
        game_date: date,
        owner: str,
        now: datetime,
        make_trigger_id: Callable[[int], str],
        mode: str | None = None,
    ) -> Claim:
        """Atomically claim the right to trigger the current generation of this date.

        ``owner`` must be unique per attempt (never a message id: a concurrent redelivery of the
        same message must not walk into this claim, L21). The claim carries a fencing token, one
        more than any before it on this date; ``confirm``, ``mark_triggered`` and ``release``
        succeed only for the current owner and token.
        """
        ref = self._date_ref(game_date)

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
                    },
                    "updated_at": now,
                    **self._expiry(now),
                },
                merge=True,
            )
            return Claim("claimed", state.generation, trigger_id, owner, token)

        return self._run("claim trigger", body, game_date)

    def confirm(self, game_date: date, claim: Claim, now: datetime) -> bool:
        """Right before publishing: is the claim still ours and live? Extends it when it is.

        ``False`` means another attempt took the date over (ours expired): do not publish.
        """
        ref = self._date_ref(game_date)

        def body(tx: Any) -> bool:
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else None
            held = (doc or {}).get("claim") or {}
            live = held.get("expires_at") is not None and held["expires_at"] > now
            if claim.owner is None or not _holds(doc, claim.owner, claim.token) or not live:
                return False
            tx.set(ref, {"claim": {**held, "expires_at": now + self.claim_ttl}, "updated_at": now}, merge=True)
            return True

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
        ``handoffs`` go to the outbox in the same transaction (durable, L24).
        """
        ref = self._date_ref(game_date)
        logged = False
        refused: str | None = None

        def body(tx: Any) -> None:
            nonlocal logged, refused  # the transaction may run the body again: the last run decides
            logged, refused = False, None
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else {}
            state = self._state(game_date, doc)
            if claimed and not _holds(doc, owner, token):
                held = (doc or {}).get("claim") or {}
                refused = f"the claim is now {held.get('owner')!r} token {held.get('token')!r}, status {state.status}"
                return
            if not claimed:
                held = (doc or {}).get("claim") or {}
                if state.triggered_current is not None or (held.get("expires_at") and held["expires_at"] > now):
                    refused = f"the date is {state.status} (claimed or triggered by another attempt)"
                    return
            update: dict[str, Any] = {"status": status, "updated_at": now, "claim": None, **self._expiry(now)}
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
            if log_row is not None and not repeated:
                tx.set(self._outbox_ref(log_row[0]), {**log_row[1], **self._outbox_expiry(now)})
                logged = True
            for handoff_id, handoff in handoffs or []:
                tx.set(self._outbox_ref(handoff_id), {**handoff, **self._outbox_expiry(now)})

        self._run("release claim", body, game_date)
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
            raise _transient("record HTTP delivery", exc, game_date=str(game_date)) from exc

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
        claim is never left stuck (L22).
        """
        ref = self._date_ref(game_date)
        refused: str | None = None

        def latch(minimal: str | None) -> Callable[[Any], None]:
            def body(tx: Any) -> None:
                nonlocal refused
                refused = None
                snap = ref.get(transaction=tx)
                doc = snap.to_dict() if snap.exists else {}
                if not _holds(doc, owner, token):
                    held = (doc or {}).get("claim") or {}
                    refused = f"the claim is now {held.get('owner')!r} token {held.get('token')!r}"
                    return
                entry = record if minimal is None else {
                    k: record.get(k) for k in ("trigger_id", "at", "message_id", "status", "parts")
                } | {"latch_error": minimal}
                update: dict[str, Any] = {
                    "status": "triggered",
                    "triggered": {slot_key(generation, mode): entry},
                    "updated_at": now,
                    "claim": None,
                    **self._expiry(now),
                }
                if minimal is None:
                    update["missing_games"] = missing_games
                    if gate is not None:
                        update["last_gate"] = gate
                tx.set(ref, update, merge=True)
                row = log_row[1]
                if minimal is not None:
                    row = {**row, "metadata": json.dumps({"latch_error": minimal})}
                tx.set(self._outbox_ref(log_row[0]), {**row, **self._outbox_expiry(now)})
                for handoff_id, handoff in handoffs or []:
                    tx.set(self._outbox_ref(handoff_id), {**handoff, **self._outbox_expiry(now)})

            return body

        try:
            self._run("mark triggered", latch(None), game_date)
        except (ValueError, gexc.InvalidArgument) as exc:  # too large, or not storable: permanent
            reason = f"{type(exc).__name__}: {str(exc)[:300]}"
            _log.error(
                "latch of %s %s could not store its details (%s); latched without them",
                self.transition,
                game_date,
                reason,
                extra={"labels": {"alert": "latch_degraded"}},
            )
            self._run("mark triggered (minimal)", latch(reason), game_date)
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

    def reopen(self, game_date: date, now: datetime, reason: str) -> int:
        """Start a new generation (operator re-trigger); returns it."""
        ref = self._date_ref(game_date)

        def body(tx: Any) -> int:
            snap = ref.get(transaction=tx)
            state = self._state(game_date, snap.to_dict() if snap.exists else None)
            generation = state.generation + 1
            tx.set(
                ref,
                {
                    "transition": self.transition,
                    "game_date": game_date.isoformat(),
                    "generation": generation,
                    "status": "waiting",
                    "claim": None,
                    "reopened": {"at": now, "reason": reason},
                    "updated_at": now,
                },
                merge=True,
            )
            return generation

        return self._run("reopen", body, game_date)

    # -- outbox ----------------------------------------------------------------------------
    def _outbox(self, limit: int) -> list[tuple[str, dict[str, Any]]]:
        try:
            docs = self.client.collection(self.outbox_collection).limit(limit).stream()
            return [(d.id, d.to_dict() or {}) for d in docs]
        except TRANSIENT_ERRORS as exc:
            raise _transient("read the outbox", exc) from exc

    def pending_log_rows(self, limit: int = 50) -> list[tuple[str, dict[str, Any]]]:
        """Log rows not yet in BigQuery (without the outbox's own expiry field)."""
        rows = [(i, d) for i, d in self._outbox(limit * 4) if not i.startswith(HANDOFF_PREFIX)][:limit]
        return [(i, {k: v for k, v in d.items() if k != self.retention.expiry_field}) for i, d in rows]

    def pending_handoffs(self, limit: int = 50) -> list[tuple[str, dict[str, Any]]]:
        """Hand-offs not yet delivered (e.g. missing games for auto-retry)."""
        return [(i, d) for i, d in self._outbox(limit * 4) if i.startswith(HANDOFF_PREFIX)][:limit]

    def delete_handoff(self, handoff_id: str) -> None:
        try:
            self._outbox_ref(handoff_id).delete()
        except TRANSIENT_ERRORS as exc:
            raise _transient("delete a delivered hand-off", exc) from exc

    def quarantine_log_rows(self, rows: list[tuple[str, dict[str, Any], str]]) -> None:
        """Move log rows BigQuery rejected into the quarantine collection, with the reason."""
        batch = self.client.batch()
        for row_id, row, reason in rows:
            batch.set(
                self.client.collection(self.quarantine_collection).document(f"log__{row_id}"),
                {
                    "kind": "phase_execution_log_row",
                    "reason": reason,
                    "row": row,
                    self.retention.expiry_field: datetime.now(UTC) + timedelta(days=self.retention.quarantine_days),
                },
            )
            batch.delete(self._outbox_ref(row_id))
        try:
            batch.commit()
        except TRANSIENT_ERRORS as exc:
            raise _transient("quarantine rejected log rows", exc) from exc

    def delete_log_rows(self, row_ids: list[str]) -> None:
        batch = self.client.batch()
        for row_id in row_ids:
            batch.delete(self._outbox_ref(row_id))
        try:
            batch.commit()
        except TRANSIENT_ERRORS as exc:
            raise _transient("delete delivered log rows", exc) from exc
