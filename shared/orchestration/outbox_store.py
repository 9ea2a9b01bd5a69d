"""The Firestore outbox: what the transitions leave for the functions that own BigQuery.

Layout (the collection name comes from the pipeline definition)::

    phase_execution_log_outbox/{row_id}          a phase_execution_log row not yet in BigQuery
    phase_execution_log_outbox/handoff__{id}     a hand-off not yet delivered (e.g. to auto-retry)

The transitions write both kinds inside their own transactions and batches (``TransitionState``
stages them with ``stage``); ``shared.orchestration.outbox`` reads and deletes them when it has
delivered them. Every document carries the ``[retention]`` expiry (``outbox_days``): what nobody
delivers does not stay forever.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.orchestration.firestore_errors import TRANSIENT_ERRORS, firestore_transient
from shared.pipeline.definition import Retention

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.pipeline.definition import PipelineDefinition

OUTBOX_COLLECTION = "phase_execution_log_outbox"
HANDOFF_PREFIX = "handoff__"  # outbox documents that are hand-offs, not log rows


class Outbox:
    """The outbox collection (global: every transition, sensor and scheduled trigger writes it)."""

    def __init__(
        self,
        client: firestore.Client,
        collection: str = OUTBOX_COLLECTION,
        *,
        retention: Retention | None = None,
        quarantine_collection: str = "quarantine",
    ) -> None:
        self.client = client
        self.collection = collection
        self.retention = retention or Retention()
        self.quarantine_collection = quarantine_collection  # where rows BigQuery rejects go

    @classmethod
    def for_definition(cls, client: firestore.Client, definition: PipelineDefinition) -> Outbox:
        settings = definition.pipeline
        return cls(
            client,
            settings.outbox_collection,
            retention=definition.retention,
            quarantine_collection=settings.quarantine_collection,
        )

    def ref(self, doc_id: str) -> Any:
        return self.client.collection(self.collection).document(doc_id)

    def stage(self, writer: Any, doc_id: str, doc: dict[str, Any], now: datetime) -> None:
        """Set ``doc`` (with its expiry) in ``writer``: the transaction or batch it is written with."""
        expires_at = now + timedelta(days=self.retention.outbox_days)
        writer.set(self.ref(doc_id), {**doc, self.retention.expiry_field: expires_at})

    # -- delivery (auto-retry and the monitor) ----------------------------------------------
    def _pending(self, limit: int) -> list[tuple[str, dict[str, Any]]]:
        try:
            docs = self.client.collection(self.collection).limit(limit).stream()
            return [(d.id, d.to_dict() or {}) for d in docs]
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("read the outbox", exc) from exc

    def pending_log_rows(self, limit: int = 50) -> list[tuple[str, dict[str, Any]]]:
        """Log rows not yet in BigQuery (without the outbox's own expiry field)."""
        rows = [(i, d) for i, d in self._pending(limit * 4) if not i.startswith(HANDOFF_PREFIX)][:limit]
        return [(i, {k: v for k, v in d.items() if k != self.retention.expiry_field}) for i, d in rows]

    def pending_handoffs(self, limit: int = 50) -> list[tuple[str, dict[str, Any]]]:
        """Hand-offs not yet delivered (e.g. missing games for auto-retry)."""
        return [(i, d) for i, d in self._pending(limit * 4) if i.startswith(HANDOFF_PREFIX)][:limit]

    def delete_handoff(self, handoff_id: str) -> None:
        try:
            self.ref(handoff_id).delete()
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("delete a delivered hand-off", exc) from exc

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
            batch.delete(self.ref(row_id))
        try:
            batch.commit()
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("quarantine rejected log rows", exc) from exc

    def delete_log_rows(self, row_ids: list[str]) -> None:
        batch = self.client.batch()
        for row_id in row_ids:
            batch.delete(self.ref(row_id))
        try:
            batch.commit()
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("delete delivered log rows", exc) from exc
