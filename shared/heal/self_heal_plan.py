"""Self-heal's decisions, pure (no backend): what a checkpoint looks at, what is missing, what it does.

A checkpoint (``[heal.self_heal]``, a ``self_heal`` monitor tick for its date) checks each target
on the target's date (yesterday, today or tomorrow of the checkpoint's date) and every unresolved
(target, date) of the last ``verify_days``. For one (target, date), from what BigQuery holds:

- no games of the target's kind that date: nothing should exist (``no_games``);
- the target's last step has rows: ``present``, or ``fixed`` when an earlier checkpoint healed it;
- else the earliest step without rows names the transition to re-trigger. It heals when the
  (date, transition) has heals left (``max_heals``); the verdict is ``still_missing`` when an
  earlier checkpoint already healed this target and date (healing did not fix it by the next
  checkpoint: a finding), ``cap_reached`` when no heal is left, else ``healing``.

The replaced self_heal (orchestration/cloud_functions/self_heal/main.py:885-907, :1048-1055)
re-runs on every run without a cap and never says that healing failed; here the failure is the
monitor's ``self_heal_failed`` finding (``shared.monitor.heal_findings``), not another loop.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import date, timedelta
from typing import TYPE_CHECKING, Any, Literal

if TYPE_CHECKING:  # the [heal.self_heal] section's parts (PipelineDefinition.heal.self_heal)
    from shared.pipeline._heal import HealStep, HealTarget

Status = Literal["no_games", "present", "fixed", "healing", "still_missing", "cap_reached", "not_triggered"]
FAILED: frozenset[str] = frozenset({"still_missing", "cap_reached", "not_triggered"})  # the monitor reports these
UNRESOLVED: frozenset[str] = frozenset({"healing", *FAILED})  # re-checked by later checkpoints
_OFFSETS = {"yesterday": -1, "today": 0, "tomorrow": 1}


def target_date(target: HealTarget, checkpoint_date: date) -> date:
    """The date ``target`` is checked on at the checkpoint of ``checkpoint_date``."""
    return checkpoint_date + timedelta(days=_OFFSETS[target.date])


def checkpoint_id(requested_by: str | None, checkpoint_date: date) -> str:
    """Names one checkpoint: the job (or operator) that asked and its date. A redelivered tick and a
    second instance of the same checkpoint share it, so they heal once."""
    who = "".join(c if c.isalnum() or c in "-_" else "_" for c in (requested_by or "manual"))[:80]
    return f"{who}@{checkpoint_date.isoformat()}"


def earliest_missing(target: HealTarget, rows: Mapping[int, int]) -> HealStep | None:
    """The first step (in phase order) without rows, or ``None`` when the target's output exists
    (its last step has rows: what a later phase wrote shows the earlier ones ran)."""
    if rows.get(target.steps[-1].phase, 0) > 0:
        return None
    return next(step for step in target.steps if rows.get(step.phase, 0) <= 0)


def healed_before(record: Mapping[str, Any] | None, checkpoint: str) -> list[str]:
    """The other checkpoints that re-triggered something for this (target, date) (from its record)."""
    checkpoints = (record or {}).get("checkpoints") or {}
    return sorted(k for k, v in checkpoints.items() if k != checkpoint and isinstance(v, dict) and v.get("attempt"))


@dataclass(frozen=True)
class Verdict:
    """What one checkpoint decides for one (target, date)."""

    status: Status
    step: HealStep | None  # the earliest missing step (None: nothing missing)
    heal: bool  # re-trigger ``step.transition`` now (a claim decides whether this run does it)
    reason: str

    @property
    def transition(self) -> str | None:
        return self.step.transition if self.step is not None else None


def decide(
    target: HealTarget,
    day: date,
    games: int,
    rows: Mapping[int, int],
    *,
    earlier_heals: list[str],
    heals_used: int,
    max_heals: int,
) -> Verdict:
    """The verdict for ``target`` on ``day``: ``games`` of the target's kind, ``rows`` per phase,
    the other checkpoints that healed it before, and the heals its (date, transition) has used."""
    kind = "Final games" if target.games == "final" else "games scheduled"
    if games <= 0:
        return Verdict("no_games", None, False, f"no {kind} on {day}: nothing should exist")
    step = earliest_missing(target, rows)
    last = target.steps[-1]
    if step is None:
        have = f"{rows.get(last.phase, 0)} row(s) in {last.table.table}"
        if earlier_heals:
            return Verdict("fixed", None, False, f"{have} after the heal at {', '.join(earlier_heals)}")
        return Verdict("present", None, False, have)
    missing = (
        f"{games} {kind} on {day} and no rows in {last.table.table}; the earliest phase without rows is "
        f"{step.phase} ({step.table.table}): re-trigger {step.transition}"
    )
    left = max_heals - heals_used
    if earlier_heals:
        reason = f"still missing after the heal at {', '.join(earlier_heals)}: {missing}"
        return Verdict("still_missing", step, left > 0, reason + ("" if left > 0 else f" (cap {max_heals} reached)"))
    if left <= 0:
        return Verdict("cap_reached", step, False, f"{missing}; cap reached: {heals_used} of {max_heals} heal(s) used")
    return Verdict("healing", step, True, missing)
