"""The backfill queue (issue 27): gaps re-triggered exactly once per (target, date, generation), at
most ``dates_per_hour`` dates an hour across every process, oldest date first, each with a log row.

Layout (collection names from ``[heal.gaps]``)::

    backfill_queue/{YYYY-MM-DD}__{target}__g{generation}   one entry: a gap to re-trigger
    backfill_slots/{YYYYMMDDTHH}__{n}                      the n-th re-trigger of that hour (UTC), n < N

``target`` is what re-triggers the date: a transition's name (the gap pass) or a sensor's (the
grading gap check); the worker looks it up in the ``retriggers`` it is given. Entry ids start with
the date, so the collection read in id order is oldest date first.

Exactly once (lesson L28: claims by create-if-absent with a precondition, never a read-modify-write on
a hot document):

- ``enqueue`` creates the entry if absent: N passes in N processes find the same gap, one creates it;
- a worker claims an entry with an update preconditioned on the entry's update time (two workers:
  one wins, the other sees a failed precondition and moves on); a claim whose worker died is taken
  over after ``lease_minutes``;
- the rate cap is N slot documents per hour, each created if absent (``{hour}__0`` .. ``{hour}__N-1``),
  taken *before* an entry is claimed (so under contention the N oldest entries go, not the first N
  claimed); a worker that creates none stops and the rest stays queued for the next hour; a slot taken
  and not used is deleted. No counter document.
- the re-trigger reopens the date only while it is still at the entry's generation (a worker that died
  after reopening is not followed by a second reopen), then evaluates it through the claim protocol
  (one trigger per generation), with ``trigger_source = "backfill"`` in the trigger messages.

Bounded retries: an entry beyond ``max_attempts`` entries for its (target, date) is created
``exhausted`` and never triggered (the replaced gap detector's cap, gap_detector/main.py:41, kept
a permanently empty date from looping through the processors: the July 2026 cost audit,
docs/08-projects/current/gcp-cost-audit-2026-07/00-FULL-ANALYSIS.md:142-144).

Every entry and slot carries the ``[retention]`` expiry (``state_days``); ``phasectl deploy`` sets the TTL
policy of both collections (lesson L25: every collection has an expiry).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any, Protocol

from shared.orchestration.firestore_errors import TRANSIENT_ERRORS, firestore_transient
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import firestore

    from shared.orchestration.transition import TransitionService
    from shared.pipeline.definition import PipelineDefinition

_log = get_logger("shared.heal.backfill")

PENDING, CLAIMED, TRIGGERED, RESOLVED, EXHAUSTED = "pending", "claimed", "triggered", "resolved", "exhausted"
OPEN = (PENDING, CLAIMED)
TRIGGER_SOURCE = "backfill"


def entry_id(target: str, game_date: date, generation: int) -> str:
    return f"{game_date.isoformat()}__{target}__g{generation}"


def hour_key(now: datetime) -> str:
    """The rate cap's window: the hour (UTC) ``now`` falls in."""
    from datetime import UTC

    return now.astimezone(UTC).strftime("%Y%m%dT%H")


def slot_ids(now: datetime, per_hour: int) -> list[str]:
    """The slot documents of ``now``'s hour, in the order workers try them."""
    return [f"{hour_key(now)}__{n}" for n in range(per_hour)]


@dataclass(frozen=True)
class BackfillEntry:
    """One queued gap, as read."""

    entry_id: str
    target: str
    game_date: date
    generation: int
    status: str
    reason: str = ""
    doc: dict[str, Any] = field(default_factory=dict)
    update_time: Any = None  # the document's update time: the claim's precondition

    @classmethod
    def from_doc(cls, doc_id: str, doc: dict[str, Any], update_time: Any = None) -> BackfillEntry:
        return cls(
            doc_id,
            str(doc.get("target") or ""),
            date.fromisoformat(str(doc.get("game_date"))),
            int(doc.get("generation") or 1),
            str(doc.get("status") or PENDING),
            str(doc.get("reason") or ""),
            doc,
            update_time,
        )


@dataclass(frozen=True)
class RetriggerResult:
    """What re-triggering an entry did: the outcome kind (``triggered``, ``waiting``, ``blocked`` ...)."""

    kind: str
    generation: int | None = None
    trigger_id: str | None = None
    detail: str = ""


class Retrigger(Protocol):
    """Re-triggers one entry's date for its target (a transition, a sensor)."""

    def __call__(self, entry: BackfillEntry, why: str, now: datetime) -> RetriggerResult: ...


class TransitionRetrigger:
    """A transition's date as a new generation (``trigger_source = "backfill"``), then evaluated."""

    def __init__(self, service: TransitionService) -> None:
        self.service = service

    def __call__(self, entry: BackfillEntry, why: str, now: datetime) -> RetriggerResult:
        state = self.service.state
        generation = state.generation(entry.game_date)
        if generation == entry.generation:  # not reopened yet (a worker that died after reopening: no 2nd reopen)
            generation = state.reopen(entry.game_date, now, why, trigger_source=TRIGGER_SOURCE)
        outcome = self.service.evaluate(entry.game_date, correlation_id=f"backfill-{entry.entry_id}", owner="backfill")
        return RetriggerResult(outcome.kind, generation, outcome.trigger_id, outcome.detail)


@dataclass
class WorkReport:
    """What one ``work`` call did."""

    triggered: list[dict[str, Any]] = field(default_factory=list)  # entry, outcome kind, trigger id, slot
    capped: bool = False  # no slot left this hour: the rest stays queued
    skipped: list[str] = field(default_factory=list)  # claimed elsewhere, or no retrigger for the target
    errors: list[str] = field(default_factory=list)


class BackfillQueue:
    """The queue's Firestore documents (``[heal.gaps]`` collections)."""

    def __init__(self, client: firestore.Client, definition: PipelineDefinition) -> None:
        self.client = client
        self.definition = definition
        self.settings = definition.heal.gaps
        self.entries_ref = client.collection(self.settings.queue_collection)
        self.slots_ref = client.collection(self.settings.slot_collection)
        self.expiry_field = definition.retention.expiry_field
        self.keep = timedelta(days=definition.retention.state_days)

    # -- reads ------------------------------------------------------------------------------
    def entries(self, start: date | None = None, end: date | None = None) -> list[BackfillEntry]:
        """The entries of ``[start, end]`` (every one when open), oldest date first: one range read over
        document ids (the built-in index; no composite index to deploy)."""
        from google.cloud.firestore_v1.base_query import FieldFilter
        from google.cloud.firestore_v1.field_path import FieldPath

        query: Any = self.entries_ref
        first = self.entries_ref.document(f"{start.isoformat()}__") if start is not None else None
        after = self.entries_ref.document(f"{end.isoformat()}__~") if end is not None else None
        if first is not None:
            query = query.where(filter=FieldFilter(FieldPath.document_id(), ">=", first))
        if after is not None:
            query = query.where(filter=FieldFilter(FieldPath.document_id(), "<", after))
        try:
            snaps = list(query.stream())
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("reading the backfill queue", exc) from exc
        return [BackfillEntry.from_doc(s.id, s.to_dict() or {}, s.update_time) for s in snaps]

    # -- enqueue ----------------------------------------------------------------------------
    def enqueue(
        self,
        target: str,
        game_date: date,
        generation: int,
        now: datetime,
        *,
        reason: str,
        requested_by: str,
        earlier: Iterable[BackfillEntry] = (),
        details: Mapping[str, Any] | None = None,
    ) -> bool:
        """Create the entry unless it exists (``False`` then). ``earlier``: the queue's entries (read once
        by the caller); with ``max_attempts`` of (target, date) already triggered it is created exhausted;
        none while one was triggered within ``settle_hours`` (``False``)."""
        from google.api_core import exceptions as gexc

        done = [e for e in earlier if e.target == target and e.game_date == game_date and e.status == TRIGGERED]
        settle = timedelta(hours=self.settings.settle_hours)
        if any(_after((e.doc.get("outcome") or {}).get("at"), now - settle) for e in done):
            return False  # re-triggered lately: its processors get ``settle_hours`` before it is a gap again
        attempts = len(done)
        status = EXHAUSTED if attempts >= self.settings.max_attempts else PENDING
        doc = {
            "target": target,
            "game_date": game_date.isoformat(),
            "generation": generation,
            "status": status,
            "reason": reason[:500],
            "details": dict(details or {}),
            "attempt": attempts + 1,
            "requested_by": requested_by,
            "created_at": now,
            "updated_at": now,
            self.expiry_field: now + self.keep,
        }
        try:
            self.entries_ref.document(entry_id(target, game_date, generation)).create(doc)
        except gexc.Conflict:
            return False
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("queueing a backfill entry", exc) from exc
        return True

    def resolve(self, entry: BackfillEntry, now: datetime, why: str) -> bool:
        """An open entry whose gap is gone (filled, or the date moved to another generation) is closed
        without a trigger; preconditioned on the entry as read (a worker's claim wins)."""
        return self._update(entry, {"status": RESOLVED, "outcome": {"detail": why[:500]}, "updated_at": now})

    # -- work -------------------------------------------------------------------------------
    def work(
        self,
        retriggers: Mapping[str, Retrigger],
        now: Callable[[], datetime],
        *,
        rank: Callable[[str], int] = lambda _target: 0,
        stopped: Callable[[], bool] = lambda: False,
        entries: list[BackfillEntry] | None = None,
    ) -> WorkReport:
        """Re-trigger queued entries within this hour's slots: oldest date first, one entry per date per
        call (its target ranked first by ``rank``: the earliest phase; the later ones follow from it)."""
        report = WorkReport()
        at = now()
        lease = timedelta(minutes=self.settings.lease_minutes)
        todo = [
            e
            for e in (entries if entries is not None else self.entries())
            if e.status == PENDING or (e.status == CLAIMED and _before(e.doc.get("lease_until"), at))
        ]
        todo.sort(key=lambda e: (e.game_date, rank(e.target), e.generation))
        dates: set[date] = set()
        slot: str | None = None  # taken before an entry is claimed: the oldest entries go first under contention
        owner = f"backfill:{uuid.uuid4().hex[:12]}"
        for entry in todo:
            if stopped():
                break
            if entry.game_date in dates:
                continue
            retrigger = retriggers.get(entry.target)
            if retrigger is None:
                report.skipped.append(f"{entry.entry_id}: no re-trigger for {entry.target!r} here")
                continue
            if slot is None:
                slot = self._take_slot(owner, at)
                if slot is None:
                    report.capped = True  # no slot left this hour: the rest stays queued
                    break
            if not self._update(
                entry, {"status": CLAIMED, "owner": owner, "lease_until": at + lease, "updated_at": at}
            ):
                report.skipped.append(f"{entry.entry_id}: claimed elsewhere")
                continue
            dates.add(entry.game_date)
            self._use_slot(slot, entry)
            self._run(entry, owner, slot, retrigger, now, report)
            slot, owner = None, f"backfill:{uuid.uuid4().hex[:12]}"
        if slot is not None:
            self._free_slot(slot, owner)  # taken but nothing left to claim: another worker may use it
        return report

    def _run(
        self,
        entry: BackfillEntry,
        owner: str,
        slot: str,
        retrigger: Retrigger,
        now: Callable[[], datetime],
        report: WorkReport,
    ) -> None:
        started = now()
        why = f"backfill of a gap ({entry.reason or 'gap'}), queue entry {entry.entry_id}"
        try:
            result = retrigger(entry, why, started)
        except Exception as exc:  # noqa: BLE001 - one entry never stops the others (L23); recorded on the entry
            result = RetriggerResult("error", None, None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:500])
            report.errors.append(f"{entry.entry_id}: {result.detail}")
        done = now()
        outcome = {
            "kind": result.kind,
            "generation": result.generation,
            "trigger_id": result.trigger_id,
            "detail": result.detail[:500],
            "slot": slot,
            "at": done,
        }
        status = PENDING if result.kind == "error" else TRIGGERED  # an error leaves it for the next hour
        self._finish(entry, owner, status, outcome, self._log_row(entry, result, slot, started, done), done)
        report.triggered.append({"entry": entry.entry_id, "kind": result.kind, "trigger_id": result.trigger_id})

    def _take_slot(self, owner: str, now: datetime) -> str | None:
        """The first free slot of ``now``'s hour, created if absent; ``None`` when all N are taken."""
        from google.api_core import exceptions as gexc

        doc = {"owner": owner, "at": now, self.expiry_field: now + self.keep}
        for slot in slot_ids(now, self.settings.dates_per_hour):
            try:
                self.slots_ref.document(slot).create(doc)
            except gexc.Conflict:
                continue
            except TRANSIENT_ERRORS as exc:
                raise firestore_transient("taking a backfill slot", exc) from exc
            return slot
        return None

    def _use_slot(self, slot: str, entry: BackfillEntry) -> None:
        """The slot names the entry it re-triggers (for the record)."""
        update = {"entry": entry.entry_id, "target": entry.target, "game_date": entry.game_date.isoformat()}
        try:
            self.slots_ref.document(slot).update(update)
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("recording a backfill slot", exc) from exc

    def _free_slot(self, slot: str, owner: str) -> None:
        """Delete a slot this worker took and did not use (only while it is still this worker's)."""
        from google.api_core import exceptions as gexc

        ref = self.slots_ref.document(slot)
        try:
            snap = ref.get()
            if snap.exists and (snap.to_dict() or {}).get("owner") == owner and "entry" not in (snap.to_dict() or {}):
                ref.delete(option=self.client.write_option(last_update_time=snap.update_time))
        except (gexc.FailedPrecondition, gexc.NotFound):
            return
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("freeing a backfill slot", exc) from exc

    def slots_used(self, now: datetime) -> int:
        """How many slots of ``now``'s hour are taken (one batched read)."""
        refs = [self.slots_ref.document(s) for s in slot_ids(now, self.settings.dates_per_hour)]
        try:
            return sum(1 for snap in self.client.get_all(refs) if snap.exists)
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("reading the backfill slots", exc) from exc

    def _update(self, entry: BackfillEntry, update: dict[str, Any]) -> bool:
        """``update`` on the entry unless it changed since it was read (the precondition)."""
        from google.api_core import exceptions as gexc

        ref = self.entries_ref.document(entry.entry_id)
        option = self.client.write_option(last_update_time=entry.update_time) if entry.update_time else None
        try:
            ref.update(update, option=option)
        except (gexc.FailedPrecondition, gexc.NotFound, gexc.Aborted):
            return False
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("updating a backfill entry", exc) from exc
        return True

    def _finish(
        self,
        entry: BackfillEntry,
        owner: str,
        status: str,
        outcome: dict[str, Any],
        log_row: tuple[str, dict[str, Any]],
        now: datetime,
    ) -> None:
        """The entry's outcome and its ``phase_execution_log`` row (outbox), in one transaction fenced by owner."""
        from google.cloud import firestore as fs

        from shared.orchestration.outbox_store import Outbox

        outbox = Outbox.for_definition(self.client, self.definition)
        ref = self.entries_ref.document(entry.entry_id)
        update = {"status": status, "outcome": outcome, "owner": None, "lease_until": None, "updated_at": now}

        @fs.transactional
        def run(tx: Any) -> bool:
            snap = ref.get(transaction=tx)
            if (snap.to_dict() or {}).get("owner") != owner:
                return False
            tx.update(ref, update)
            outbox.stage(tx, log_row[0], log_row[1], now)
            return True

        try:
            if not run(self.client.transaction(max_attempts=5)):
                _log.warning("backfill entry %s was taken over before it finished", entry.entry_id)
        except TRANSIENT_ERRORS as exc:
            raise firestore_transient("recording a backfill entry", exc) from exc

    def _log_row(
        self, entry: BackfillEntry, result: RetriggerResult, slot: str, started: datetime, done: datetime
    ) -> tuple[str, dict[str, Any]]:
        from shared.orchestration.execution_log import build_row

        return build_row(
            transition=entry.target,
            game_date=entry.game_date,
            status=f"backfill_{result.kind}",
            now=done,
            correlation_id=f"backfill-{entry.entry_id}",
            trigger_id=result.trigger_id,
            start_time=started,
            games_processed=None,
            metadata={
                "kind": TRIGGER_SOURCE,
                "entry": entry.entry_id,
                "reason": entry.reason,
                "from_generation": entry.generation,
                "generation": result.generation,
                "attempt": entry.doc.get("attempt"),
                "slot": slot,
                "detail": result.detail[:500],
            },
        )


def _after(value: Any, instant: datetime) -> bool:
    return isinstance(value, datetime) and value > instant


def _before(value: Any, now: datetime) -> bool:
    """Whether a stored timestamp is in the past (a lease that ran out)."""
    return isinstance(value, datetime) and value <= now
