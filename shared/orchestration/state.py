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
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Literal, TypeVar

from google.api_core import exceptions as gexc

from shared.errors import MalformedMessageError, TransientError
from shared.orchestration.engine import CompletionRecord

if TYPE_CHECKING:
    from google.cloud import firestore

T = TypeVar("T")

OUTBOX_COLLECTION = "phase_execution_log_outbox"
CLAIM_TTL = timedelta(minutes=2)
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
        value = self.triggered.get(str(self.generation))
        return value if isinstance(value, dict) else None


ClaimResult = Literal["claimed", "already_triggered", "claimed_elsewhere"]


@dataclass(frozen=True)
class Claim:
    result: ClaimResult
    generation: int
    trigger_id: str | None = None


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
    ) -> None:
        self.quarantine_collection = quarantine_collection
        self.client = client
        self.collection = collection
        self.transition = transition
        self.claim_ttl = claim_ttl
        self.transaction_attempts = transaction_attempts

    # -- references ----------------------------------------------------------------------
    def _date_ref(self, game_date: date) -> Any:
        return self.client.collection(self.collection).document(state_doc_id(self.transition, game_date))

    def _outbox_ref(self, row_id: str) -> Any:
        return self.client.collection(OUTBOX_COLLECTION).document(row_id)

    # -- completions -------------------------------------------------------------------
    def record_completion(self, game_date: date, record: CompletionRecord, extra: dict[str, Any]) -> bool:
        """Create the completion document; ``False`` when this exact one was recorded before (L03)."""
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
        }
        try:
            ref.create(doc)
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

    def claim(self, game_date: date, owner: str, now: datetime, make_trigger_id: Callable[[int], str]) -> Claim:
        """Atomically claim the right to trigger the current generation of this date."""
        ref = self._date_ref(game_date)

        def body(tx: Any) -> Claim:
            snap = ref.get(transaction=tx)
            state = self._state(game_date, snap.to_dict() if snap.exists else None)
            current = state.triggered_current
            if current is not None:
                return Claim("already_triggered", state.generation, current.get("trigger_id"))
            claim = state.claim
            if claim and claim.get("owner") != owner and claim.get("expires_at") and claim["expires_at"] > now:
                return Claim("claimed_elsewhere", state.generation, claim.get("trigger_id"))
            trigger_id = make_trigger_id(state.generation)
            tx.set(
                ref,
                {
                    "transition": self.transition,
                    "game_date": game_date.isoformat(),
                    "generation": state.generation,
                    "status": "claimed",
                    "claim": {
                        "trigger_id": trigger_id,
                        "owner": owner,
                        "claimed_at": now,
                        "expires_at": now + self.claim_ttl,
                    },
                    "updated_at": now,
                },
                merge=True,
            )
            return Claim("claimed", state.generation, trigger_id)

        return self._run("claim trigger", body, game_date)

    def release(
        self,
        game_date: date,
        owner: str,
        now: datetime,
        *,
        status: str,
        gate: dict[str, Any] | None = None,
        missing_games: list[str] | None = None,
        log_row: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Drop our claim (blocked or failed publish): the date stays retriggerable (L01).

        Returns whether ``log_row`` was written. A block that repeats the previous one exactly
        (same gate results: a monitor re-check, a redelivery) is counted but not logged again,
        so ``phase_execution_log`` gets one ``blocked`` row per distinct block, not one per re-check.
        """
        ref = self._date_ref(game_date)
        logged = False

        def body(tx: Any) -> None:
            nonlocal logged  # the transaction may run the body again: the last run decides
            logged = False
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else {}
            update: dict[str, Any] = {"status": status, "updated_at": now}
            claim = (doc or {}).get("claim")
            if claim and claim.get("owner") == owner:
                update["claim"] = None
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
                tx.set(self._outbox_ref(log_row[0]), log_row[1])
                logged = True

        self._run("release claim", body, game_date)
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
        gate: dict[str, Any] | None,
        missing_games: list[str],
        log_row: tuple[str, dict[str, Any]],
    ) -> None:
        """After a successful publish: latch the generation and queue the log row, atomically."""
        ref = self._date_ref(game_date)

        def body(tx: Any) -> None:
            snap = ref.get(transaction=tx)
            doc = snap.to_dict() if snap.exists else {}
            update: dict[str, Any] = {
                "status": "triggered",
                "triggered": {str(generation): record},
                "missing_games": missing_games,
                "updated_at": now,
            }
            claim = (doc or {}).get("claim")
            if claim and claim.get("owner") == owner:
                update["claim"] = None
            if gate is not None:
                update["last_gate"] = gate
            tx.set(ref, update, merge=True)
            tx.set(self._outbox_ref(log_row[0]), log_row[1])

        self._run("mark triggered", body, game_date)

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
    def pending_log_rows(self, limit: int = 50) -> list[tuple[str, dict[str, Any]]]:
        try:
            docs = self.client.collection(OUTBOX_COLLECTION).limit(limit).stream()
            return [(d.id, d.to_dict() or {}) for d in docs]
        except TRANSIENT_ERRORS as exc:
            raise _transient("read log outbox", exc) from exc

    def quarantine_log_rows(self, rows: list[tuple[str, dict[str, Any], str]]) -> None:
        """Move log rows BigQuery rejected into the quarantine collection, with the reason."""
        batch = self.client.batch()
        for row_id, row, reason in rows:
            batch.set(
                self.client.collection(self.quarantine_collection).document(f"log__{row_id}"),
                {"kind": "phase_execution_log_row", "reason": reason, "row": row},
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
