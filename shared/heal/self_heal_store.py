"""Self-heal's Firestore records (``[heal.self_heal] collection``), each with the retention expiry (L25).

Layout::

    {collection}/{date}__{target}                         the verdict of one (date, target): status,
                                                          reason, and per checkpoint what it saw and did
    {collection}/attempt__{transition}__{date}__{n}       heal n (1..max_heals) of one (date, transition):
                                                          the claim, then the re-trigger's outcome

An attempt is claimed by create-if-absent (lesson L28: claims by create-if-absent with a
precondition, never a read-modify-write on a hot document): two runs of one checkpoint at once (a
redelivered tick, a second instance) both try attempt n; one creates it and heals, the other gets
a conflict and leaves it. Attempt ids end at ``max_heals``, so the cap holds under any race. Each
finished attempt writes its ``phase_execution_log`` row through the outbox in the same batch (the
row reaches BigQuery with the transitions' rows: ``shared.orchestration.outbox``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.orchestration.firestore_errors import TRANSIENT_ERRORS, firestore_transient
from shared.orchestration.outbox_store import Outbox
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.pipeline.definition import PipelineDefinition

_log = get_logger("shared.heal.self_heal_store")
ATTEMPT_PREFIX = "attempt__"


def record_id(day: date, target: str) -> str:
    return f"{day.isoformat()}__{target}"


def attempt_id(transition: str, day: date, n: int) -> str:
    return f"{ATTEMPT_PREFIX}{transition}__{day.isoformat()}__{n}"


@dataclass(frozen=True)
class AttemptClaim:
    """``claimed`` (attempt ``n`` is this run's), ``done_here`` (this checkpoint healed it already),
    ``claimed_elsewhere`` (a concurrent run took attempt ``n``) or ``cap_reached``."""

    result: str
    n: int
    doc: dict[str, Any] = field(default_factory=dict)


class SelfHealStore:
    def __init__(self, client: firestore.Client, definition: PipelineDefinition) -> None:
        settings = definition.heal.self_heal
        self.client = client
        self.collection = client.collection(settings.collection)
        self.max_heals = settings.max_heals
        self.keep = timedelta(days=settings.retention_days)
        self.expiry_field = definition.retention.expiry_field
        self.outbox = Outbox.for_definition(client, definition)

    def _expiry(self, now: datetime) -> dict[str, datetime]:
        return {self.expiry_field: now + self.keep}

    # -- reads ---------------------------------------------------------------------------
    def records(self, start: date, end: date) -> dict[tuple[date, str], dict[str, Any]]:
        """Every verdict of ``[start, end]``, by (date, target): one range read over document ids
        (served by the built-in index on ``__name__``: no composite index)."""
        from google.cloud.firestore_v1.base_query import FieldFilter
        from google.cloud.firestore_v1.field_path import FieldPath

        col = self.collection
        low, high = col.document(f"{start.isoformat()}__"), col.document(f"{end.isoformat()}__\uf8ff")
        query = col.where(filter=FieldFilter(FieldPath.document_id(), ">=", low)).where(
            filter=FieldFilter(FieldPath.document_id(), "<=", high)
        )
        out: dict[tuple[date, str], dict[str, Any]] = {}
        try:
            for snap in query.stream():
                day_text, _, target = snap.id.partition("__")
                try:
                    out[(date.fromisoformat(day_text), target)] = snap.to_dict() or {}
                except ValueError:
                    continue  # not a verdict (an id that only sorts inside the range)
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("reading self-heal verdicts", exc) from exc
        return out

    def record(self, day: date, target: str) -> dict[str, Any] | None:
        try:
            snap = self.collection.document(record_id(day, target)).get()
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("reading a self-heal verdict", exc) from exc
        return snap.to_dict() if snap.exists else None

    def attempts(self, transition: str, day: date) -> list[dict[str, Any]]:
        """The heals of one (date, transition) so far (one batched read of the ``max_heals`` ids)."""
        refs = [self.collection.document(attempt_id(transition, day, n)) for n in range(1, self.max_heals + 1)]
        try:
            return [snap.to_dict() or {} for snap in self.client.get_all(refs) if snap.exists]
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("reading self-heal attempts", exc) from exc

    # -- the claim -------------------------------------------------------------------------
    def claim(
        self,
        transition: str,
        day: date,
        checkpoint: str,
        existing: list[dict[str, Any]],
        doc: dict[str, Any],
        now: datetime,
    ) -> AttemptClaim:
        """Attempt ``len(existing) + 1`` by create-if-absent; never more than ``max_heals``, never two
        for one checkpoint."""
        from google.api_core import exceptions as gexc

        for previous in existing:
            if previous.get("checkpoint") == checkpoint:
                return AttemptClaim("done_here", int(previous.get("attempt") or 0), previous)
        n = len(existing) + 1
        if n > self.max_heals:
            return AttemptClaim("cap_reached", len(existing))
        body = {
            **doc,
            "transition": transition,
            "game_date": day.isoformat(),
            "attempt": n,
            "checkpoint": checkpoint,
            "status": "claimed",
            "claimed_at": now,
            **self._expiry(now),
        }
        try:
            self.collection.document(attempt_id(transition, day, n)).create(body)
        except gexc.Conflict:
            return AttemptClaim("claimed_elsewhere", n)
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("claiming a self-heal attempt", exc, transition=transition) from exc
        return AttemptClaim("claimed", n, body)

    def release(self, transition: str, day: date, claim: AttemptClaim) -> None:
        """Give a claimed attempt back (the re-trigger raised before an outcome): a redelivery may
        heal again. Best effort: a release that fails leaves the attempt counted (the cap is safe)."""
        try:
            self.collection.document(attempt_id(transition, day, claim.n)).delete()
        except Exception as exc:  # noqa: BLE001 - the re-trigger's own error is what is raised
            _log.warning("self-heal attempt %s of %s %s not released: %s", claim.n, transition, day, exc)

    def finish(
        self,
        transition: str,
        day: date,
        claim: AttemptClaim,
        outcome: dict[str, Any],
        log_row: tuple[str, dict[str, Any]],
        now: datetime,
    ) -> None:
        """The attempt's outcome and its ``phase_execution_log`` row, in one batch."""
        batch = self.client.batch()
        ref = self.collection.document(attempt_id(transition, day, claim.n))
        batch.update(ref, {"status": outcome.get("outcome"), "outcome": outcome, "finished_at": now})
        self.outbox.stage(batch, log_row[0], log_row[1], now)
        try:
            batch.commit()
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("recording a self-heal attempt", exc, transition=transition) from exc

    # -- verdicts --------------------------------------------------------------------------
    def save_verdict(
        self,
        day: date,
        target: str,
        checkpoint: str,
        fields: dict[str, Any],
        entry: dict[str, Any],
        now: datetime,
        log_row: tuple[str, dict[str, Any]] | None = None,
    ) -> None:
        """Merge this checkpoint's ``entry`` into the (date, target) verdict, with its status (and the
        log row of a failed verdict, in the same batch)."""
        batch = self.client.batch()
        doc = {
            **fields,
            "target": target,
            "game_date": day.isoformat(),
            "updated_at": now,
            "checkpoints": {checkpoint: entry},
            **self._expiry(now),
        }
        batch.set(self.collection.document(record_id(day, target)), doc, merge=True)
        if log_row is not None:
            self.outbox.stage(batch, log_row[0], log_row[1], now)
        try:
            batch.commit()
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("recording a self-heal verdict", exc, target=target) from exc
