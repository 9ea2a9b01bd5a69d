"""The decision engine: pure functions of (transition definition, recorded completions, clock).

No I/O. Given what has been recorded for one (transition, game_date), ``decide`` answers
``Wait``, ``Ready`` or ``Blocked`` and explains itself in words an operator can act on
("waiting for critical player_game_summary; deadline tier 2 in 23 min"). The transition
functions, the monitor and the CLI all call this one function, so the rules live once.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Literal
from zoneinfo import ZoneInfo

from shared.clock import Clock, relation_to_today
from shared.pipeline.definition import (
    CountsPolicy,
    ModeWhen,
    PipelineDefinition,
    Rule,
    Transition,
)

# Completion statuses as they arrive on the wire (see shared.contracts.CompletionStatus).
COUNTING_STATUSES = frozenset({"success", "partial"})
POLICY_STATUSES = frozenset({"no_data", "skipped"})

TriggerKind = Literal["complete", "partial", "deadline_exceeded"]


@dataclass(frozen=True)
class CompletionRecord:
    """One recorded processor completion for a (transition, game_date).

    ``processor`` is the canonical name, or ``None`` when the raw name is unknown
    (recorded for operators, never counted: lesson L08).
    """

    raw_name: str
    processor: str | None
    status: str
    execution_id: str
    completed_at: datetime
    record_count: int = 0
    completion_pct: float | None = None
    predictions: int | None = None  # phase 5: completed predictions, when the coordinator sent them

    @property
    def prediction_count(self) -> int:
        """What the phase-5 ``min_predictions`` rule compares: the predictions, else the record count."""
        return self.predictions if self.predictions is not None else self.record_count


@dataclass(frozen=True)
class Progress:
    """What the engine counted; shown by ``phasectl status`` and written to logs."""

    mode: str | None
    expected: tuple[str, ...]
    critical: tuple[str, ...]
    optional: tuple[str, ...]
    done: tuple[str, ...]
    not_counted: tuple[str, ...]  # recorded, known, but status does not count (failed, policy)
    unknown: tuple[str, ...]
    first_completion_at: datetime | None

    @property
    def missing(self) -> tuple[str, ...]:
        return tuple(p for p in self.expected if p not in self.done)

    @property
    def missing_critical(self) -> tuple[str, ...]:
        return tuple(p for p in self.critical if p not in self.done)


@dataclass(frozen=True)
class Wait:
    reason: str
    progress: Progress
    next_check_at: datetime | None = None  # a deadline tier that will fire with no new message

    kind: Literal["wait"] = field(default="wait", init=False)


@dataclass(frozen=True)
class Ready:
    reason: str
    progress: Progress
    status: TriggerKind

    kind: Literal["ready"] = field(default="ready", init=False)


@dataclass(frozen=True)
class Blocked:
    reason: str
    progress: Progress

    kind: Literal["blocked"] = field(default="blocked", init=False)


Decision = Wait | Ready | Blocked


def counts_as_done(definition: PipelineDefinition, record: CompletionRecord) -> bool:
    """Whether one record counts toward completion (per-processor no_data/skipped policy, L09)."""
    if record.processor is None:
        return False
    if record.status in COUNTING_STATUSES:
        return True
    if record.status in POLICY_STATUSES:
        processor = definition.processor(record.processor)
        policy = processor.no_data if record.status == "no_data" else processor.skipped
        return policy is CountsPolicy.DONE
    return False


def select_mode(
    transition: Transition, game_date: date, clock: Clock, tz: ZoneInfo
) -> tuple[str | None, tuple[str, ...], tuple[str, ...], tuple[str, ...]]:
    """(mode name, expected, critical, optional) for this date; modes by date vs "today" (L14)."""
    if not transition.modes:
        return None, transition.expected, transition.critical, transition.optional
    when = ModeWhen(relation_to_today(game_date, clock, tz))
    mode = transition.mode_for(when)
    assert mode is not None  # the definition validator requires every relation covered
    return mode.name, mode.expected, mode.critical, mode.optional


def progress_of(
    definition: PipelineDefinition,
    transition: Transition,
    game_date: date,
    completions: Iterable[CompletionRecord],
    clock: Clock,
) -> Progress:
    tz = ZoneInfo(definition.pipeline.timezone)
    mode, expected, critical, optional = select_mode(transition, game_date, clock, tz)
    records = list(completions)
    done: set[str] = set()
    recorded: set[str] = set()
    unknown: set[str] = set()
    for record in records:
        if record.processor is None:
            unknown.add(record.raw_name)
            continue
        recorded.add(record.processor)
        if counts_as_done(definition, record):
            done.add(record.processor)
    # the deadline clock starts at the first completion of a known processor of this phase:
    # a stray unknown name (L08) must not start it early
    first = min((r.completed_at for r in records if r.processor is not None), default=None)
    return Progress(
        mode=mode,
        expected=expected,
        critical=critical,
        optional=optional,
        done=tuple(sorted(done)),
        not_counted=tuple(sorted(recorded - done)),
        unknown=tuple(sorted(unknown)),
        first_completion_at=first,
    )


def _names(items: Sequence[str]) -> str:
    return ", ".join(items) if items else "none"


def _critical_majority(transition: Transition, progress: Progress) -> tuple[bool, str]:
    pool = tuple(dict.fromkeys((*progress.critical, *progress.optional)))
    if not pool:
        return False, "no critical/optional set"
    done_in_pool = [p for p in pool if p in progress.done]
    share = len(done_in_pool) / len(pool)
    if progress.missing_critical:
        return False, f"waiting for critical {_names(progress.missing_critical)}"
    if share + 1e-9 >= transition.majority_threshold:
        return True, (
            f"all critical done and {len(done_in_pool)}/{len(pool)} "
            f"(≥{transition.majority_threshold:.0%}) of critical+optional"
        )
    return False, (
        f"all critical done but only {len(done_in_pool)}/{len(pool)} of critical+optional "
        f"(need ≥{transition.majority_threshold:.0%})"
    )


def _fmt_minutes(delta: timedelta) -> str:
    minutes = max(0, int(delta.total_seconds() // 60))
    return f"{minutes} min" if minutes < 120 else f"{minutes // 60} h {minutes % 60} min"


def decide(
    definition: PipelineDefinition,
    transition: Transition,
    game_date: date,
    completions: Iterable[CompletionRecord],
    clock: Clock,
) -> Decision:
    """Whether ``transition`` should fire for ``game_date`` now.

    Args:
        definition: the pipeline definition.
        transition: the transition to decide.
        game_date: the date whose completions are given.
        completions: every recorded completion of the date (any order, duplicates allowed).
        clock: the injected clock (mode selection and deadline tiers depend on it).

    Returns:
        ``Ready`` with a trigger status, ``Wait`` with the reason (and when a deadline
        tier will fire without any new message), or ``Blocked``.
    """
    records = list(completions)
    progress = progress_of(definition, transition, game_date, records, clock)
    mode_note = f" [mode {progress.mode}]" if progress.mode else ""

    if transition.rule is Rule.COMPLETION_THRESHOLD:
        return _decide_threshold(definition, transition, records, progress)

    if not progress.missing:
        return Ready(f"all {len(progress.expected)} expected processors done{mode_note}", progress, "complete")

    majority_ok, majority_note = _critical_majority(transition, progress)
    if majority_ok:
        return Ready(f"{majority_note}; missing {_names(progress.missing)}{mode_note}", progress, "partial")

    if transition.rule is Rule.DEADLINE_TIERS:
        return _decide_tiers(transition, progress, clock, majority_note, mode_note)

    return Wait(f"{majority_note}; missing {_names(progress.missing)}{mode_note}", progress)


def _decide_tiers(
    transition: Transition, progress: Progress, clock: Clock, majority_note: str, mode_note: str
) -> Decision:
    first = progress.first_completion_at
    done_expected = [p for p in progress.expected if p in progress.done]
    if first is None:
        return Wait("no completion recorded yet; deadline tiers start at the first completion", progress)
    elapsed = clock.now() - first
    for number, tier in enumerate(transition.deadline_tiers, start=1):
        if elapsed >= timedelta(minutes=tier.after_minutes) and len(done_expected) >= tier.min_completed:
            return Ready(
                f"deadline tier {number} (≥{tier.min_completed} of {len(progress.expected)} after "
                f"{tier.after_minutes} min): {len(done_expected)} done after {_fmt_minutes(elapsed)}; "
                f"missing {_names(progress.missing)}{mode_note}",
                progress,
                "deadline_exceeded",
            )
    # the next tier that the current count would satisfy, and when
    for number, tier in enumerate(transition.deadline_tiers, start=1):
        due = first + timedelta(minutes=tier.after_minutes)
        if due > clock.now() and len(done_expected) >= tier.min_completed:
            return Wait(
                f"{majority_note}; {len(done_expected)}/{len(progress.expected)} done; deadline tier "
                f"{number} in {_fmt_minutes(due - clock.now())}{mode_note}",
                progress,
                next_check_at=due,
            )
    return Wait(
        f"{majority_note}; {len(done_expected)}/{len(progress.expected)} done; no deadline tier reachable "
        f"with this count{mode_note}",
        progress,
    )


def _decide_threshold(
    definition: PipelineDefinition, transition: Transition, records: list[CompletionRecord], progress: Progress
) -> Decision:
    """Phase 5→6: any counting record meeting both thresholds fires; order never matters."""
    threshold = transition.completion
    assert threshold is not None  # validated by the definition
    relevant = [r for r in records if r.processor in progress.expected and r.status in COUNTING_STATUSES]
    need = f"≥{threshold.min_completion_pct:g}%, ≥{threshold.min_predictions}"
    if not relevant:
        policy_done = [
            r
            for r in records
            if r.processor in progress.expected and r.status in POLICY_STATUSES and counts_as_done(definition, r)
        ]
        if policy_done:  # e.g. no games that day: the no_data policy counts it as done (L09)
            first = min(policy_done, key=lambda r: (r.completed_at, r.execution_id))
            return Ready(f"{first.raw_name} reported {first.status}; counts as done by policy", progress, "complete")
        return Wait(f"waiting for {_names(progress.expected)} to report completion", progress)
    measured = [r for r in relevant if r.completion_pct is not None]
    meeting = [
        r
        for r in measured
        if (r.completion_pct or 0.0) + 1e-9 >= threshold.min_completion_pct
        and r.prediction_count >= threshold.min_predictions
    ]
    if meeting:
        best = max(
            meeting, key=lambda r: (r.completion_pct or 0.0, r.prediction_count, r.completed_at, r.execution_id)
        )
        pct = best.completion_pct or 0.0
        status: TriggerKind = "complete" if pct >= 100 else "partial"
        return Ready(
            f"predictions {pct:g}% complete with {best.prediction_count} predictions ({need})", progress, status
        )
    if not measured:
        return Blocked(
            f"{relevant[0].raw_name} reported without completion_pct; cannot apply the ({need}) rule", progress
        )
    best = max(
        measured, key=lambda r: (r.completion_pct or 0.0, r.prediction_count, r.completed_at, r.execution_id)
    )
    return Wait(
        f"predictions {best.completion_pct or 0.0:g}% complete with {best.prediction_count} predictions (need {need})",
        progress,
    )
