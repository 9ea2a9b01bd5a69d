"""The game coverage verdict: distinct covered games vs the Final games of the date (pure).

Over the boxscore fallback chain it is the circuit breaker; postponed games (lesson L29) and games
marked unavailable leave the denominator. Re-exported by ``shared.orchestration.gates``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from shared.errors import InvalidGameIdError
from shared.game_ids import GameIdConverter
from shared.orchestration.gate_result import GateResult, breaker_line, threshold_verdict
from shared.pipeline.definition import GameCoverageGate, GamesSources

if TYPE_CHECKING:
    from shared.orchestration.gate_queries import CoverageInputs


def coverage_verdict(
    name: str,
    gate: GameCoverageGate,
    games: GamesSources,
    inputs: CoverageInputs,
    *,
    timezone: str = "America/New_York",
) -> GateResult:
    """Distinct covered games vs the Final games of the schedule, and its thresholds.

    Over the fallback chain this is the circuit breaker: ``block_below = 50`` blocks when more
    than half of the date's Final games have data issues; ``alert_below = 100`` lets the
    trigger go out as ``partial`` with the missing games listed (and handed to auto-retry).
    Postponed games (``shared.orchestration.postponement``: a postponed game is not a missing game,
    lesson L29 — Final with NULL scores, the same id on a later date, a "Postponed" status text, an
    operator's mark) and games marked unavailable are not expected: they leave the denominator and
    are never missing, so never retried. Schedule anomalies (one game Final with scores on two
    dates) are carried in the result for the monitor to report; such a game still counts.
    """
    from shared.orchestration.postponement import detect_postponed

    converter = GameIdConverter.from_schedule(inputs.schedule)
    final_entries = [e for e in converter.games() if games.is_final(e.status)]
    finals = sorted(e.date_teams_game_id for e in final_entries)
    covered_any = {g for ids in inputs.source_game_ids.values() for g in _canonical_set(converter, ids)}
    check = detect_postponed(
        games,
        inputs.schedule,
        inputs.later,
        covered=covered_any,
        marks=inputs.marks,
        now=inputs.read_at,
        timezone=timezone,
    )
    postponed_docs = tuple(p.as_doc() for p in check.postponed)
    anomalies = tuple(a.as_doc() for a in check.anomalies)
    postponed = sorted(check.game_ids & set(finals))
    marked = sorted((_canonical_set(converter, inputs.unavailable_game_ids) & set(finals)) - set(postponed))
    unavailable = sorted({*marked, *postponed})
    considered = [g for g in finals if g not in unavailable]
    chain = gate.uses_boxscore_chain
    excluded_note = _excluded_note(len(marked), len(postponed))
    if not considered:
        return GateResult(
            name,
            "pass",
            f"no Final games to cover{f' ({excluded_note})' if excluded_note else ''}",
            gate.kind,
            None,
            gate.thresholds(),
            gate.advisory,
            unavailable=tuple(unavailable),
            retry_missing_games=chain,
            postponed=postponed_docs,
            anomalies=anomalies,
        )
    covered_by: dict[str, str] = {}
    for source, raw_ids in inputs.source_game_ids.items():  # chain order: first source wins
        for game in sorted(_canonical_set(converter, raw_ids)):
            covered_by.setdefault(game, source)
    missing = [g for g in considered if g not in covered_by]
    covered = len(considered) - len(missing)
    summary = f"{covered}/{len(considered)} Final games covered"
    if excluded_note:
        summary += f", {excluded_note}"
    fallback = sorted({s for g, s in covered_by.items() if g in considered} - {next(iter(inputs.source_game_ids), "")})
    if fallback and len(inputs.source_game_ids) > 1:
        summary += f" (fallback used: {', '.join(fallback)})"
    value = 100.0 * covered / len(considered)
    verdict, line = threshold_verdict(gate, value)
    if not missing:
        reason = summary
    elif verdict == "blocked" and chain:
        reason = (
            f"circuit breaker: {len(missing)}/{len(considered)} games ({len(missing) / len(considered):.0%}) have "
            f"data issues ({breaker_line(gate, value)}); missing {', '.join(missing)}"
        )
    else:
        reason = f"{summary} ({value:.1f}%{'' if verdict == 'pass' else ', ' + line}); missing {', '.join(missing)}"
    return GateResult(
        name,
        verdict,
        reason,
        gate.kind,
        value,
        gate.thresholds(),
        gate.advisory,
        {"sources": list(inputs.source_game_ids)},
        len(considered),
        covered,
        tuple(missing),
        {g: covered_by[g] for g in considered if g in covered_by},
        tuple(unavailable),
        retry_missing_games=chain,
        postponed=postponed_docs,
        anomalies=anomalies,
    )


def _excluded_note(marked: int, postponed: int) -> str:
    """ "1 marked unavailable, 1 postponed" (what left the denominator), or ""."""
    parts = [f"{marked} marked unavailable" if marked else "", f"{postponed} postponed" if postponed else ""]
    return ", ".join(p for p in parts if p)


def _canonical_set(converter: GameIdConverter, raw_ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for raw in raw_ids:
        try:
            out.add(converter.canonical(raw))
        except InvalidGameIdError:
            continue  # an id of another date or a malformed id cannot cover a scheduled game
    return out
