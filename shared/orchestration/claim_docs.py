"""Claim documents: who may open the claim transaction on a date, taken by create-if-absent.

Lesson L28, a hot document is not a lock service: when N deliveries decide at the same instant that
a date is ready, N read-modify-write transactions on the one date document contend (on the
emulator, pessimistic locks: 20 of them failed after ~72 s, "Failed to commit transaction in 12
attempts", and were redelivered). So before the claim transaction an attempt creates one small
document per trigger slot::

    {state_collection}/{transition}__{game_date}/claims/{slot}    owner, claimed_at, held_until

``create()`` has a precondition (the document must not exist): exactly one of N simultaneous
attempts succeeds; the others fail fast with AlreadyExists and answer ``claimed_elsewhere`` without
touching the date document. A claim document whose ``held_until`` has passed (a crashed attempt)
is taken over by an update with a ``last_update_time`` precondition, so again one taker wins.

The claim document only keeps the crowd out: the date document's claim (owner + fencing token, in
its transaction) stays the one authority every later step checks. The release and the latch delete
the claim document in their transaction; confirm extends it with the date's claim.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import Any

from google.api_core import exceptions as gexc

from shared.orchestration.firestore_errors import TRANSIENT_ERRORS, firestore_transient
from shared.structured_log import get_logger

CLAIMS = "claims"
_log = get_logger("shared.orchestration.claim_docs")


class ClaimDocs:
    """The claim documents of one transition's dates (in the date documents' ``claims`` subcollection)."""

    def __init__(self, date_ref: Any, client: Any, ttl: timedelta, expiry: Any) -> None:
        self._date_ref = date_ref  # game_date -> the date document's reference
        self.client = client
        self.ttl = ttl
        self._expiry = expiry  # now -> {expiry field: when}: every document expires (lesson L25)

    def ref(self, game_date: date, slot: str) -> Any:
        return self._date_ref(game_date).collection(CLAIMS).document(slot)

    def _doc(self, owner: str, now: datetime) -> dict[str, Any]:
        return {"owner": owner, "claimed_at": now, "held_until": now + self.ttl, **self._expiry(now)}

    def take(self, game_date: date, slot: str, owner: str, now: datetime) -> bool:
        """Create the slot's claim document for ``owner``, or take over an expired one; ``False``
        when another attempt holds it (answer ``claimed_elsewhere`` without any transaction)."""
        ref = self.ref(game_date, slot)
        try:
            for _ in range(2):  # a takeover may find the document deleted meanwhile: create once more
                try:
                    ref.create(self._doc(owner, now))
                    return True
                except gexc.AlreadyExists:
                    pass
                snap = ref.get()
                if not snap.exists:
                    continue
                held = snap.to_dict() or {}
                held_until = held.get("held_until")
                if held.get("owner") != owner and held_until is not None and held_until > now:
                    return False
                try:
                    unchanged = self.client.write_option(last_update_time=snap.update_time)
                    ref.update(self._doc(owner, now), option=unchanged)
                    return True
                except (gexc.FailedPrecondition, gexc.NotFound):
                    return False  # another attempt took it over first
            return False
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("take claim document", exc, game_date=str(game_date)) from exc

    def drop(self, game_date: date, slot: str, owner: str) -> None:
        """Delete ``owner``'s claim document (the claim transaction did not give it the date).
        Best effort: a document left behind stops counting at its ``held_until`` (and is deleted by
        the retention TTL like every state document)."""
        ref = self.ref(game_date, slot)
        try:
            snap = ref.get()
            if snap.exists and (snap.to_dict() or {}).get("owner") == owner:
                ref.delete(option=self.client.write_option(last_update_time=snap.update_time))
        except (gexc.FailedPrecondition, gexc.NotFound):
            return  # taken over or gone: nothing of ours to delete
        except TRANSIENT_ERRORS as exc:  # it lapses at its held_until; the outcome stands
            _log.warning("claim document %s of %s not deleted (it expires): %s", slot, game_date, exc)

    def stage_delete(self, tx: Any, game_date: date, slot: str | None) -> None:
        """In the release or latch transaction: the slot is free again (or settled)."""
        if slot:
            tx.delete(self.ref(game_date, slot))

    def stage_extend(self, tx: Any, game_date: date, slot: str | None, owner: str, now: datetime) -> None:
        """In the confirm transaction: the claim document lives as long as the date's claim."""
        if slot:
            tx.set(self.ref(game_date, slot), self._doc(owner, now))
