"""The schedule runs in Firestore: one document per (job, fire slot), the claim, the fenced finish.

Layout (collection names from ``[dispatcher]``)::

    schedule_runs/{job}__{YYYYMMDDTHHMMZ}    one slot's run: status, attempts, the request, the outcome
    schedule_jobs/{job}                      the job's last run (what ``phasectl schedules`` and the
                                             monitor read without scanning runs)

A run's ``status``: ``running`` (claimed; ``lease_until`` bounds it), ``retry_wait`` (a 5xx or a
timeout; ``next_attempt_at``), and the terminal ``succeeded``, ``failed`` (retries used up),
``client_error`` (a 4xx: not retried) and ``config_error`` (no such service, route or topic).

The claim is a create-if-absent (many ticks at once: one creates, the rest see it exists, no
transaction storm); taking over a ``retry_wait`` run whose time has come, or a ``running`` run
whose lease expired, is a transaction that bumps ``token``. Every finish checks owner and token
(fencing), and writes the run, the job's summary and the ``phase_execution_log`` row (outbox) in
one transaction: a run is never recorded without its row, nor twice.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.orchestration.firestore_errors import TRANSIENT_ERRORS, firestore_transient
from shared.schedules.plan import TERMINAL, Slot

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.orchestration.outbox_store import Outbox
    from shared.pipeline.definition import PipelineDefinition


@dataclass(frozen=True)
class Claim:
    """The outcome of trying to run a slot: ``claimed`` (with owner/token/attempt) or why not."""

    result: str  # claimed | running_elsewhere | waiting | done
    run: dict[str, Any]
    owner: str = ""
    token: int = 0

    @property
    def attempt(self) -> int:
        return int(self.run.get("attempts") or 0)


class ScheduleRuns:
    """The run and job documents of the schedule dispatcher."""

    def __init__(self, client: firestore.Client, definition: PipelineDefinition, outbox: Outbox) -> None:
        self.client = client
        self.definition = definition
        self.outbox = outbox
        d = definition.dispatcher
        self.runs = client.collection(d.runs_collection)
        self.jobs = client.collection(d.jobs_collection)
        self.lease = timedelta(seconds=d.lease_seconds)
        self.expiry_field = definition.retention.expiry_field
        self.keep = timedelta(days=definition.retention.state_days)

    # -- reads ---------------------------------------------------------------------------
    def get_many(self, run_ids: list[str]) -> dict[str, dict[str, Any]]:
        """The run documents that exist among ``run_ids`` (one batched read)."""
        return self._existing(self.runs, run_ids, "reading schedule runs")

    def job_summaries(self, names: list[str]) -> dict[str, dict[str, Any]]:
        """The job summary documents that exist among ``names`` (one batched read)."""
        return self._existing(self.jobs, names, "reading schedule jobs")

    def _existing(self, collection: Any, ids: list[str], action: str) -> dict[str, dict[str, Any]]:
        if not ids:
            return {}
        refs = [collection.document(i) for i in ids]
        with _transient(action):
            return {snap.id: snap.to_dict() or {} for snap in self.client.get_all(refs) if snap.exists}

    def overrides(self) -> dict[str, Any] | None:
        """The operator's season overrides document (``phasectl season pause|resume``), if any."""
        from shared.schedules.plan import SEASON_DOC

        with _transient("reading the season overrides"):
            snap = self.jobs.document(SEASON_DOC).get()
        return snap.to_dict() if snap.exists else None

    def waiting_for_retry(self, limit: int) -> list[dict[str, Any]]:
        """Runs in ``retry_wait`` (a single-field equality query: no composite index needed)."""
        from google.cloud.firestore_v1.base_query import FieldFilter

        query = self.runs.where(filter=FieldFilter("status", "==", "retry_wait")).limit(limit)
        with _transient("listing schedule runs waiting for a retry"):
            return [d.to_dict() or {} for d in query.stream()]

    def get(self, run_id: str) -> dict[str, Any] | None:
        with _transient("reading a schedule run"):
            snap = self.runs.document(run_id).get()
        return snap.to_dict() if snap.exists else None

    # -- claim ---------------------------------------------------------------------------
    def claim(self, slot: Slot, owner: str, now: datetime, request: dict[str, Any], requested_by: str | None) -> Claim:
        """Create the slot's run (first attempt), or take over one that waits for a retry or whose
        lease expired. ``request`` is stored only on creation: every attempt sends the first bytes."""
        from google.api_core import exceptions as gexc

        ref = self.runs.document(slot.run_id)
        doc = {
            "job": slot.job,
            "slot_at": slot.at,
            "slot_key": slot.key,
            "day": slot.day.isoformat(),
            "zone": slot.zone,
            "manual": slot.manual,
            "requested_by": requested_by,
            "status": "running",
            "owner": owner,
            "token": 1,
            "attempts": 1,
            "lease_until": now + self.lease,
            "first_attempt_at": now,
            "next_attempt_at": None,
            "request": request,
            "outcome": None,
            "history": [],
            self.expiry_field: now + self.keep,
        }
        try:
            ref.create(doc)
        except gexc.Conflict:
            return self._take_over(ref, owner, now)  # it exists: take it over if its time has come
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("claiming a schedule run", exc, run=slot.run_id) from exc
        return Claim("claimed", doc, owner, 1)

    def _take_over(self, ref: Any, owner: str, now: datetime) -> Claim:
        from google.cloud import firestore

        transaction = self.client.transaction(max_attempts=3)

        @firestore.transactional
        def run(tx: Any) -> Claim:
            snap = ref.get(transaction=tx)
            current = snap.to_dict() or {}
            status = current.get("status")
            if status in TERMINAL:
                return Claim("done", current)
            if status == "running" and _after(current.get("lease_until"), now):
                return Claim("running_elsewhere", current)
            if status == "retry_wait" and _after(current.get("next_attempt_at"), now):
                return Claim("waiting", current)
            token = int(current.get("token") or 0) + 1
            update = {
                "status": "running",
                "owner": owner,
                "token": token,
                "attempts": int(current.get("attempts") or 0) + 1,
                "lease_until": now + self.lease,
            }
            tx.update(ref, update)
            return Claim("claimed", {**current, **update}, owner, token)

        with _transient("taking over a schedule run"):
            result: Claim = run(transaction)
        return result

    # -- finish --------------------------------------------------------------------------
    def finish(
        self,
        slot: Slot,
        claim: Claim,
        now: datetime,
        *,
        status: str,
        outcome: dict[str, Any],
        next_attempt_at: datetime | None,
        log_row: tuple[str, dict[str, Any]] | None,
    ) -> bool:
        """Record an attempt's outcome, fenced by owner and token; False when the claim was lost."""
        from google.cloud import firestore

        ref = self.runs.document(slot.run_id)
        job_ref = self.jobs.document(slot.job)
        transaction = self.client.transaction(max_attempts=5)

        @firestore.transactional
        def run(tx: Any) -> bool:
            snap = ref.get(transaction=tx)
            current = snap.to_dict() or {}
            if current.get("owner") != claim.owner or int(current.get("token") or 0) != claim.token:
                return False
            if current.get("status") != "running":
                return False
            history = list(current.get("history") or [])[-9:]
            history.append({"attempt": claim.attempt, "at": now, **outcome})
            tx.update(
                ref,
                {
                    "status": status,
                    "outcome": outcome,
                    "next_attempt_at": next_attempt_at,
                    "lease_until": None,
                    "history": history,
                    "finished_at": now if status in TERMINAL else None,
                },
            )
            summary: dict[str, Any] = {
                "job": slot.job,
                "last": {
                    "run_id": slot.run_id,
                    "slot_at": slot.at,
                    "status": status,
                    "attempts": claim.attempt,
                    "at": now,
                    "next_attempt_at": next_attempt_at,
                    **outcome,
                },
                "updated_at": now,
                self.expiry_field: now + self.keep,
            }
            if status == "succeeded":
                summary["last_success_at"] = now
            tx.set(job_ref, summary, merge=True)
            if log_row is not None:
                self.outbox.stage(tx, log_row[0], log_row[1], now)
            return True

        with _transient("recording a schedule run"):
            result: bool = run(transaction)
        return result


@contextmanager
def _transient(action: str) -> Iterator[None]:
    """Firestore errors a retry may fix become ``TransientError`` (raise: the tick is redelivered)."""
    try:
        yield
    except TRANSIENT_ERRORS as exc:
        raise firestore_transient(action, exc) from exc


def _after(value: Any, now: datetime) -> bool:
    """Whether a stored timestamp is still in the future."""
    return isinstance(value, datetime) and value > now
