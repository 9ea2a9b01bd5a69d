"""The gap pass (issue 27, item 3): the expected-outputs grid of a lookback (or the season), its
gaps, and the backfill queue they go to.

The grid: every date of the window (``[heal.gaps] lookback_days``, default 14, or ``--season``: the
season's opener on) up to ``min_age_days`` before today, with Final games in the schedule (the
monitor's schedule read, ``shared.monitor.schedule_read``) x every transition x the phases'
output tables (``[heal.gaps] outputs``). A date is a gap for a transition when

- ``no_trigger``: the transition's date document has no trigger in its current generation, or
- ``no_rows``: a table of the phase the transition starts has no row for the date (one
  parameterised query per pass over the whole window, ``GROUP BY`` date, filtered on each table's
  partition column).

A phase no transition starts (phase 2: the scrapers) is reported, never queued: its processors must
run again (``phasectl retry``, the scrapers' own backfill). Per date only the earliest backfillable
gap is queued (``shared.heal.backfill``): the later phases follow from its trigger, and a later
gap that remains is queued by the next pass. Entries whose gap is gone are resolved.

The replaced system (najicham/nba-stats-scraper@18f6ecfe) planned the same grid in a table
(``expected_outputs_planner/main.py:62-97``, nightly at 04:00 ET, ``deploy.sh:63-64``), reconciled it
every 30 minutes (``phase_completion_reconciler``) and published stale rows to a backfill topic with
3 attempts (``gap_detector/main.py:41``); it had to, after 51 dates without gamebook data and a hole
from October to February that nobody saw for 9 months
(``docs/09-handoff/2026-01-25-SEASON-VALIDATION-REPORT.md:128-132``, ``expected_outputs_planner/main.py:7-10``).

Runs as a monitor heal task (``MonitorTick(check="gaps")``: the jobs ``expected-outputs-planner-nightly``
and ``gap-detector-30min``) and from ``phasectl gaps``. Bounded (lesson L26: every backend call and
every pass is bounded): each query has the pass's deadline, the queue work stops at it, and the heal
task runs on a worker thread waited for until then.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import Clock, today_et
from shared.heal.backfill import EXHAUSTED, OPEN, PENDING, TRIGGERED, BackfillQueue, Retrigger, TransitionRetrigger
from shared.heal.gap_report import summary_ref
from shared.orchestration.date_state import DateState, state_doc_id
from shared.orchestration.firestore_errors import TRANSIENT_ERRORS
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore

    from shared.contracts.messages import MonitorTick
    from shared.heal.backfill import WorkReport
    from shared.monitor.checks import PassDeadlines, TransitionMonitor
    from shared.monitor.findings import MonitorReport
    from shared.orchestration.transition import TransitionService
    from shared.pipeline.definition import PipelineDefinition

_log = get_logger("shared.heal.gaps")
WORK_MARGIN_SECONDS = 5.0  # no entry is started with less of the pass left


@dataclass(frozen=True)
class Gap:
    """One (date, phase) of the grid without its trigger or its rows."""

    game_date: date
    phase: int  # the phase that did not run (the transition's target phase)
    target: str | None  # the transition that re-triggers it; None: no transition starts this phase
    generation: int  # the target's current generation for the date
    kinds: tuple[str, ...]  # no_trigger, no_rows
    detail: str

    @property
    def reason(self) -> str:
        return f"phase {self.phase}: {' and '.join(self.kinds)} ({self.detail})"


@dataclass
class GapScan:
    """One look at the grid."""

    start: date
    end: date
    season: bool
    final_games: dict[date, int]
    gaps: list[Gap]
    rows_error: str | None = None  # the rows query failed: only trigger gaps this time

    @property
    def window_text(self) -> str:
        return f"{'season' if self.season else 'lookback'} {self.start}..{self.end}"

    @property
    def dates(self) -> list[date]:
        return sorted({g.game_date for g in self.gaps})

    def to_queue(self) -> dict[date, Gap]:
        """Per date, its earliest gap a transition can re-trigger."""
        first: dict[date, Gap] = {}
        for gap in sorted(self.gaps, key=lambda g: (g.game_date, g.phase)):
            if gap.target is not None and gap.game_date not in first:
                first[gap.game_date] = gap
        return first


@dataclass
class PassResult:
    scan: GapScan
    queued: list[str] = field(default_factory=list)  # entries created by this pass
    resolved: list[str] = field(default_factory=list)
    work: WorkReport | None = None
    counts: dict[str, int] = field(default_factory=dict)


# -- the grid (pure) ------------------------------------------------------------------------------
def gap_window(definition: PipelineDefinition, today: date, season: bool) -> tuple[date, date]:
    """``[start, end]``: the lookback (or the season of ``today``, else the latest one begun) up to
    ``min_age_days`` before today."""
    settings = definition.heal.gaps
    end = today - timedelta(days=settings.min_age_days)
    start = today - timedelta(days=settings.lookback_days)
    if season:
        begun = [s for s in definition.seasons if s.opener <= today]
        if begun:
            start = max(begun, key=lambda s: s.opener).opener
    return start, end


def triggered_now(doc: Mapping[str, Any] | None) -> tuple[bool, int]:
    """Whether the date document has a trigger in its current generation, and that generation."""
    doc = dict(doc or {})
    generation = int(doc.get("generation") or 1)
    state = DateState(
        "", date.min, generation, str(doc.get("status") or ""), dict(doc.get("triggered") or {}), None, (), None
    )
    return state.triggered_current is not None, generation


def find_gaps(
    definition: PipelineDefinition,
    dates: list[date],
    docs: Mapping[tuple[str, date], Mapping[str, Any] | None],
    rows: Mapping[tuple[str, date], int] | None,
) -> list[Gap]:
    """The gaps of ``dates`` (each with Final games): per transition its trigger, per phase its rows
    (``rows`` by (table, date); ``None``: not known this pass, only trigger gaps)."""
    by_phase = {t.target_phase: t for t in definition.transitions}
    tables: dict[int, list[str]] = {}
    for out in definition.heal.gaps.outputs:
        tables.setdefault(out.phase, []).append(out.table)
    phases = sorted(set(by_phase) | set(tables))
    found: list[Gap] = []
    for day in dates:
        for phase in phases:
            kinds: list[str] = []
            detail: list[str] = []
            transition = by_phase.get(phase)
            generation = 1
            if transition is not None:
                triggered, generation = triggered_now(docs.get((transition.name, day)))
                if not triggered:
                    kinds.append("no_trigger")
                    detail.append(f"{transition.name} not triggered in generation {generation}")
            if rows is not None:
                empty = [t for t in tables.get(phase, []) if not rows.get((t, day))]
                if empty:
                    kinds.append("no_rows")
                    detail.append(f"no rows in {', '.join(empty)}")
            if kinds:
                target = transition.name if transition is not None else None
                found.append(Gap(day, phase, target, generation, tuple(kinds), "; ".join(detail)))
    return found


# -- the pass ----------------------------------------------------------------------------------------
class GapPass:
    """The grid of a window, its gaps into the backfill queue, the queue worked within the rate cap."""

    def __init__(
        self,
        definition: PipelineDefinition,
        firestore_client: firestore.Client,
        bq: Callable[[], bigquery.Client],
        project: str,
        clock: Clock,
        *,
        deadline: float | None = None,  # time.monotonic() the pass ends by
    ) -> None:
        self.definition = definition
        self.firestore = firestore_client
        self.bq = bq
        self.project = project
        self.clock = clock
        self.deadline = deadline
        self.queue = BackfillQueue(firestore_client, definition)

    def _seconds(self, most: float = 60.0) -> float:
        left = most if self.deadline is None else self.deadline - time.monotonic()
        return max(1.0, min(most, left))

    def scan(self, *, season: bool = False, start: date | None = None, end: date | None = None) -> GapScan:
        """The grid of the window (or ``[start, end]``): the schedule, the date documents, the rows."""
        from shared.monitor.schedule_read import query_schedule

        today = today_et(self.clock)
        first, last = gap_window(self.definition, today, season)
        first, last = start or first, end or last
        read = query_schedule(self.bq(), self.project, self.definition, (first, first, today), self.clock.now())
        final = {d: n for d, n in read.final_games.items() if first <= d <= last and n}
        dates = sorted(final)
        docs = self._date_docs(dates)
        rows: dict[tuple[str, date], int] | None
        error = None
        try:
            rows = self._rows(first, last) if dates else {}
        except Exception as exc:  # noqa: BLE001 - a missing table or a failed query: trigger gaps only, and said
            rows, error = None, f"{type(exc).__name__}: {' '.join(str(exc).split())}"[:300]
            _log.warning("gap pass: the rows query failed (%s); only trigger gaps this pass", error)
        gaps = find_gaps(self.definition, dates, docs, rows)
        return GapScan(first, last, season, final, gaps, error)

    def _date_docs(self, dates: list[date]) -> dict[tuple[str, date], dict[str, Any] | None]:
        """Every transition's date document of ``dates``, in one batched read (absent: None)."""
        collection = self.firestore.collection(self.definition.pipeline.state_collection)
        keys = {state_doc_id(t.name, d): (t.name, d) for t in self.definition.transitions for d in dates}
        docs: dict[tuple[str, date], dict[str, Any] | None] = dict.fromkeys(keys.values())
        if keys:
            for snap in self.firestore.get_all([collection.document(k) for k in keys]):
                if snap.exists:
                    docs[keys[snap.id]] = snap.to_dict() or {}
        return docs

    def _rows(self, start: date, end: date) -> dict[tuple[str, date], int]:
        """Rows per (table, date) of every output table over ``[start, end]``: one query."""
        from google.cloud import bigquery as bq
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        outputs = self.definition.heal.gaps.outputs
        if not outputs:
            return {}

        def table(ref: str) -> str:
            return f"`{self.project}.{ref}`"  # identifiers come from the validated definition only

        # every branch on its table's partition column; the dates are parameters (L18)
        sql = "\nUNION ALL\n".join(
            f"(SELECT '{o.table}' AS table_ref, {o.date_column} AS day, COUNT(*) AS n "
            f"FROM {table(o.table)} WHERE {o.date_column} BETWEEN @start AND @end GROUP BY day)"
            for o in outputs
        )
        config = bq.QueryJobConfig(
            query_parameters=[
                bq.ScalarQueryParameter("start", "DATE", start),
                bq.ScalarQueryParameter("end", "DATE", end),
            ]
        )
        seconds = self._seconds()
        result = self.bq().query_and_wait(
            sql,
            job_config=config,
            api_timeout=seconds,
            wait_timeout=seconds,
            retry=DEFAULT_RETRY.with_deadline(seconds),
            job_retry=None,  # type: ignore[arg-type]  # annotated Retry; None is the documented "no job retry"
        )
        return {(str(r["table_ref"]), r["day"]): int(r["n"] or 0) for r in result}

    def enqueue(self, scan: GapScan, requested_by: str) -> PassResult:
        """The earliest backfillable gap of each date into the queue (once per target, date and
        generation); the open entries of the window whose gap is gone are resolved."""
        result = PassResult(scan)
        entries = self.queue.entries(scan.start, scan.end)
        now = self.clock.now()
        wanted = scan.to_queue()
        for day, gap in sorted(wanted.items()):
            assert gap.target is not None
            created = self.queue.enqueue(
                gap.target,
                day,
                gap.generation,
                now,
                reason=gap.reason,
                requested_by=requested_by,
                earlier=entries,
                details={"kinds": list(gap.kinds), "phase": gap.phase, "final_games": scan.final_games.get(day, 0)},
            )
            if created:
                result.queued.append(f"{day}__{gap.target}__g{gap.generation}")
        current = {(g.target, g.game_date, g.generation) for g in wanted.values()}
        for entry in entries:
            if entry.status == PENDING and (entry.target, entry.game_date, entry.generation) not in current:
                if self.queue.resolve(entry, now, "the gap is gone (filled, or the date is in another generation)"):
                    result.resolved.append(entry.entry_id)
        return result

    def work(self, retriggers: Mapping[str, Retrigger]) -> WorkReport:
        rank = {t.name: n for n, t in enumerate(self.definition.transitions)}
        return self.queue.work(
            retriggers,
            self.clock.now,
            rank=lambda target: rank.get(target, len(rank)),
            stopped=lambda: self.deadline is not None and self.deadline - time.monotonic() < WORK_MARGIN_SECONDS,
        )

    def save_summary(self, result: PassResult) -> None:
        """What the monitor's next pass reports (``shared.heal.gap_report``): one overwritten document."""
        entries = self.queue.entries()
        now = self.clock.now()
        exhausted = [e.entry_id for e in entries if e.status == EXHAUSTED]
        open_ = [e for e in entries if e.status in OPEN]
        scan = result.scan
        manual = [f"{g.game_date} phase {g.phase}" for g in scan.gaps if g.target is None]
        result.counts = {
            "gaps": len(scan.gaps),
            "dates": len(scan.dates),
            "queued_now": len(result.queued),
            "resolved_now": len(result.resolved),
            "triggered_now": len(result.work.triggered) if result.work else 0,
            "queue_open": len(open_),
            "queue_triggered": sum(1 for e in entries if e.status == TRIGGERED),
            "queue_exhausted": len(exhausted),
            "slots_used": self.queue.slots_used(now),
        }
        doc = {
            "as_of": now,
            "window": [scan.start.isoformat(), scan.end.isoformat()],
            "window_text": scan.window_text,
            "season": scan.season,
            "dates": [d.isoformat() for d in scan.dates],
            "by_phase": {
                str(p): sum(1 for g in scan.gaps if g.phase == p) for p in sorted({g.phase for g in scan.gaps})
            },
            "exhausted": exhausted[:200],
            "not_backfillable": manual[:200],
            "counts": result.counts,
            "rows_error": scan.rows_error,
            "capped": bool(result.work and result.work.capped),
            self.definition.retention.expiry_field: now + timedelta(days=self.definition.retention.state_days),
        }
        try:
            summary_ref(self.firestore, self.definition).set(doc)
        except TRANSIENT_ERRORS as exc:
            _log.warning("gap summary not saved (%s); the next pass writes it", type(exc).__name__)


def transition_retriggers(services: Mapping[str, TransitionService]) -> dict[str, Retrigger]:
    """A re-trigger per transition (the queue's targets the gap pass creates)."""
    return {name: TransitionRetrigger(service) for name, service in services.items()}


def run_gap_pass(monitor: TransitionMonitor, tick: MonitorTick, deadlines: PassDeadlines) -> MonitorReport:
    """One gap pass: find the gaps of the lookback (``tick.season``: the season), queue them, work the
    backfill queue within its rate cap, record the summary the next monitor pass reports. Bounded: on
    a worker thread waited for until ``deadlines.checks`` (then a ``check_timeout`` finding)."""
    from shared.deadline import run_within
    from shared.monitor.findings import MonitorReport, check_error, check_timeout

    report = MonitorReport(ran_at=monitor.clock.now())
    if not monitor.definition.heal.gaps.enabled:
        return report
    gap_pass = GapPass(
        monitor.definition,
        monitor.firestore,
        lambda: monitor.bq,
        monitor.project,
        monitor.clock,
        deadline=deadlines.checks,
    )
    requested_by = tick.requested_by or "monitor"

    def run() -> PassResult:
        result = gap_pass.enqueue(gap_pass.scan(season=tick.season), requested_by)
        result.work = gap_pass.work(transition_retriggers(monitor.services))
        gap_pass.save_summary(result)
        return result

    seconds = max(0.0, deadlines.checks - time.monotonic())
    within = run_within(seconds, run, name="gap-pass")
    if not within.done:
        report.findings.append(check_timeout("gaps", seconds, within.waiting_on or ["Firestore", "BigQuery"]))
    elif within.error is not None:
        if not isinstance(within.error, Exception):
            raise within.error
        report.findings.append(check_error("gap pass", within.error, check="gaps"))
        _log.error(
            "gap pass failed: %s", within.error, exc_info=within.error, extra={"labels": {"alert": "check_error"}}
        )
    else:
        result = within.value
        assert result is not None
        report.dates_checked = len(result.scan.final_games)
        report.triggered += [str(t["entry"]) for t in (result.work.triggered if result.work else [])]
        from shared.heal.gap_report import gap_findings

        report.findings += gap_findings(monitor.firestore, monitor.definition, monitor.clock.now())
        _log.info("gap pass", extra={"fields": {**result.counts, "window": result.scan.window_text}})
    return report
