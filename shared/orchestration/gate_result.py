"""One gate's outcome (``GateResult``) and the threshold arithmetic every ratio-like gate shares.

Below both ``shared.orchestration.gates`` (the gate kinds and their runner) and
``shared.orchestration.coverage`` (the game coverage verdict), which both re-export them.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from shared.pipeline.definition import Gate

GateVerdict = Literal["pass", "alert", "blocked"]


@dataclass(frozen=True)
class GateResult:
    """One gate's outcome: its value, thresholds and verdict, and what an operator needs to act."""

    gate: str
    verdict: GateVerdict
    reason: str
    kind: str = "game_coverage_pct"
    value: float | None = None  # percent; None when there was nothing to measure
    thresholds: Mapping[str, float] = field(default_factory=dict)
    advisory: bool = False
    details: Mapping[str, Any] = field(default_factory=dict)
    games_total: int = 0
    games_covered: int = 0
    missing_games: tuple[str, ...] = ()
    covered_by: Mapping[str, str] = field(default_factory=dict)
    unavailable: tuple[str, ...] = ()
    advisory_error: str | None = None
    retry_missing_games: bool = False  # the missing games go to auto-retry (the boxscore chain only)
    # games found postponed (shared.orchestration.postponement): each {game_id, nba_game_id, matchup,
    # evidence, new_date}; they leave the denominator like unavailable games and are never retried
    postponed: tuple[Mapping[str, Any], ...] = ()
    # schedule rows that are wrong in a way that is not a postponement (a game Final with scores on two
    # dates): reported as findings with the rows, the game still counts
    anomalies: tuple[Mapping[str, Any], ...] = ()
    seconds: float | None = None  # how long the gate took (query and all)

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "kind": self.kind,
            "verdict": self.verdict,
            "reason": self.reason,
            "value": None if self.value is None else round(self.value, 2),
            "thresholds": dict(self.thresholds),
            "advisory": self.advisory,
            "details": dict(self.details),
            "games_total": self.games_total,
            "games_covered": self.games_covered,
            "missing_games": list(self.missing_games)[:100],
            "covered_by": dict(list(self.covered_by.items())[:100]),
            "unavailable": list(self.unavailable)[:100],
            "advisory_error": self.advisory_error,
            "postponed": [dict(p) for p in self.postponed[:100]],
            "anomalies": [dict(a) for a in self.anomalies[:100]],
        }  # no timing here: a block that repeats the last one exactly must compare equal


def threshold_verdict(gate: Gate, value: float | None) -> tuple[GateVerdict, str]:
    """The verdict of ``value`` (percent) against ``gate``'s lines, and the line it crossed.

    ``None`` (nothing to measure: no rows, no Final games) passes; what is absent altogether is
    the ``rows_present`` gate's business. An advisory gate's block is an alert.
    """
    if value is None:
        return "pass", "nothing to measure"
    crossed: list[tuple[GateVerdict, str]] = []
    if gate.block_below is not None and value < gate.block_below - 1e-9:
        crossed.append(("blocked", f"below the block line {gate.block_below:g}%"))
    if gate.block_above is not None and value > gate.block_above + 1e-9:
        crossed.append(("blocked", f"above the block line {gate.block_above:g}%"))
    if not crossed:
        if gate.alert_below is not None and value < gate.alert_below - 1e-9:
            crossed.append(("alert", f"below the alert line {gate.alert_below:g}%"))
        if gate.alert_above is not None and value > gate.alert_above + 1e-9:
            crossed.append(("alert", f"above the alert line {gate.alert_above:g}%"))
    if not crossed:
        return "pass", "within thresholds"
    verdict, line = crossed[0]
    if verdict == "blocked" and gate.advisory:
        return "alert", f"{line} (advisory: not blocking)"
    return verdict, line


def breaker_line(gate: Gate, coverage_pct: float) -> str:
    """The circuit breaker's line said of the games with data issues (the share it counts), not of
    the coverage the gate compares: coverage below ``block_below`` is issues above ``100 - block_below``.

    ``above the block line 50%: coverage 42.9% < 50%``; an advisory breaker says it does not block.
    """
    if gate.block_below is None:
        return threshold_verdict(gate, coverage_pct)[1]
    line = f"above the block line {100.0 - gate.block_below:g}%: coverage {coverage_pct:.1f}% < {gate.block_below:g}%"
    return f"{line} (advisory: not blocking)" if gate.advisory else line
