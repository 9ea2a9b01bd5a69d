"""The completion documents of a transition's dates: who reported, once per execution (L03).

Layout::

    phase_transitions/{transition}__{game_date}/completions/{id}   one document per
        (processor name as sent, execution_id)

A completion is created with ``create()``: a duplicate delivery fails with AlreadyExists and has
no effect (every function is idempotent on redelivery), and recording never contends with other
processors (no transaction, no read-modify-write). Nobody updates it; auto-retry and the monitor
read it through ``TransitionState.load``.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from google.api_core import exceptions as gexc

from shared.errors import MalformedMessageError
from shared.orchestration.engine import CompletionRecord
from shared.orchestration.firestore_errors import TRANSIENT_ERRORS, firestore_transient

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.orchestration.outbox_store import Outbox


def completion_doc_id(raw_name: str, execution_id: str) -> str:
    """A stable id for one (processor as sent, execution) pair; safe for Firestore."""
    slug = re.sub(r"[^A-Za-z0-9_-]", "_", raw_name)[:60]
    digest = hashlib.sha256(f"{raw_name}\x00{execution_id}".encode()).hexdigest()[:24]
    return f"{slug}__{digest}"


class Completions:
    """The ``completions`` under each date document of one transition."""

    def __init__(
        self,
        client: firestore.Client,
        date_ref: Callable[[date], Any],
        expiry: Callable[[datetime], dict[str, Any]],
        outbox: Outbox,
    ) -> None:
        self.client = client
        self.date_ref = date_ref  # the date document the completions are under
        self.expiry = expiry  # the date document's: a completion lives as long as its date
        self.outbox = outbox  # a failed completion's hand-off is written with it

    def record(
        self,
        game_date: date,
        record: CompletionRecord,
        extra: dict[str, Any],
        *,
        handoff: tuple[str, dict[str, Any]] | None = None,
    ) -> bool:
        """Create the completion document; ``False`` when this exact one was recorded before.

        ``handoff`` (a failed completion for auto-retry) goes to the outbox in the same batch: both
        are written, or neither (a repeat writes neither: the first one's hand-off stands).
        """
        ref = (
            self.date_ref(game_date)
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
            **self.expiry(record.completed_at),
        }
        try:
            if handoff is None:
                ref.create(doc)
            else:
                batch = self.client.batch()
                batch.create(ref, doc)
                self.outbox.stage(batch, *handoff, record.completed_at)
                batch.commit()
        except gexc.AlreadyExists:
            return False
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("record completion", exc, game_date=str(game_date)) from exc
        except (ValueError, UnicodeEncodeError, gexc.InvalidArgument) as exc:
            # valid by the contract but not storable (int beyond 64 bits, > 1 MiB, lone surrogates):
            # retrying cannot help, so it is permanent and the caller quarantines it
            raise MalformedMessageError(
                f"completion cannot be stored: {type(exc).__name__}: {str(exc)[:300]}", game_date=str(game_date)
            ) from exc
        return True

    def read(self, game_date: date) -> tuple[CompletionRecord, ...]:
        """Every completion of the date (the client's errors go to the caller, which says what failed)."""
        return tuple(_record(d.to_dict() or {}) for d in self.date_ref(game_date).collection("completions").stream())


def _record(doc: dict[str, Any]) -> CompletionRecord:
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
