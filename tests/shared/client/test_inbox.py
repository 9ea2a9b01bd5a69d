"""The inbox's first-delivery create under contention (pure: a stand-in document, no backend).

On the emulator, four processes accepting one trigger at once saw the create answer ABORTED
("Transaction lock timeout": the others' take-over transactions held the entry) and the process
failed. ABORTED means nothing was written, so the create is tried again, a bounded number of times.
"""

from __future__ import annotations

from typing import Any

import pytest
from google.api_core import exceptions as gexc

from shared.client.inbox import CREATE_ATTEMPTS, TriggerInbox


class _Doc:
    def __init__(self, aborts: int) -> None:
        self.aborts, self.creates = aborts, 0

    def create(self, entry: dict[str, Any]) -> None:
        self.creates += 1
        if self.creates <= self.aborts:
            raise gexc.Aborted("Transaction lock timeout.")


class _Client:
    def __init__(self, doc: _Doc) -> None:
        self.doc = doc

    def collection(self, name: str) -> _Client:
        return self

    def document(self, name: str) -> _Doc:
        return self.doc


def test_an_aborted_create_is_tried_again_and_the_delivery_is_first() -> None:
    doc = _Doc(aborts=2)
    delivery = TriggerInbox(_Client(doc), consumer="race").accept("phase2_to_phase3:2026-01-24:g1")  # type: ignore[arg-type]
    assert (delivery.kind, doc.creates) == ("first", 3)


def test_a_create_aborted_every_time_raises_after_the_bounded_attempts() -> None:
    doc = _Doc(aborts=CREATE_ATTEMPTS)
    with pytest.raises(gexc.Aborted):
        TriggerInbox(_Client(doc), consumer="race").accept("phase2_to_phase3:2026-01-24:g1")  # type: ignore[arg-type]
    assert doc.creates == CREATE_ATTEMPTS
