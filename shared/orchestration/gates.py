"""Gates run after the claim and before the publish. The game-coverage gate and its breaker.

A game is covered when any source of the fallback chain (BDL → ESPN → gamebook) has a
boxscore for it (L13). Ids are normalised through the schedule before any comparison
(L15). Games marked permanently unavailable are excluded. When more than the breaker
threshold (50 %) of the date's Final games have data issues the gate blocks; fewer
issues let the trigger go out as ``partial`` with the missing games listed.

Gate query errors are transient (raise, Pub/Sub redelivers) unless the definition
marks the gate advisory (L17). BigQuery is imported only here, on the gate path (L16).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.errors import InvalidGameIdError, TransientError
from shared.game_ids import GameIdConverter, ScheduleEntry
from shared.gcp import LazyClient
from shared.pipeline.definition import GameCoverageGate, GamesSources, PipelineDefinition, Transition

if TYPE_CHECKING:
    from google.cloud import bigquery

GateVerdict = Literal["pass", "partial", "blocked"]


@dataclass(frozen=True)
class GateResult:
    gate: str
    verdict: GateVerdict
    reason: str
    games_total: int = 0
    games_covered: int = 0
    missing_games: tuple[str, ...] = ()
    covered_by: Mapping[str, str] = field(default_factory=dict)
    unavailable: tuple[str, ...] = ()
    advisory_error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "gate": self.gate,
            "verdict": self.verdict,
            "reason": self.reason,
            "games_total": self.games_total,
            "games_covered": self.games_covered,
            "missing_games": list(self.missing_games),
            "covered_by": dict(self.covered_by),
            "unavailable": list(self.unavailable),
            "advisory_error": self.advisory_error,
        }


@dataclass(frozen=True)
class CoverageInputs:
    """What the coverage gate reads for one date, already in raw form."""

    schedule: tuple[ScheduleEntry, ...]
    source_game_ids: Mapping[str, tuple[str, ...]]  # source name (chain order) → raw ids
    unavailable_game_ids: tuple[str, ...] = ()


def coverage_verdict(name: str, gate: GameCoverageGate, final_status: str, inputs: CoverageInputs) -> GateResult:
    """The pure coverage decision and circuit breaker."""
    converter = GameIdConverter.from_schedule(inputs.schedule)
    finals = sorted(e.date_teams_game_id for e in converter.games() if (e.status or "").lower() == final_status.lower())
    unavailable = sorted(_canonical_set(converter, inputs.unavailable_game_ids) & set(finals))
    considered = [g for g in finals if g not in unavailable]
    if not considered:
        return GateResult(
            name,
            "pass",
            f"no Final games to cover ({len(unavailable)} marked unavailable)",
            unavailable=tuple(unavailable),
        )
    covered_by: dict[str, str] = {}
    for source, raw_ids in inputs.source_game_ids.items():  # chain order: first source wins
        for game in sorted(_canonical_set(converter, raw_ids)):
            covered_by.setdefault(game, source)
    missing = [g for g in considered if g not in covered_by]
    share = len(missing) / len(considered)
    covered = len(considered) - len(missing)
    summary = f"{covered}/{len(considered)} Final games covered"
    if unavailable:
        summary += f", {len(unavailable)} marked unavailable"
    fallback = sorted({s for g, s in covered_by.items() if g in considered} - {next(iter(inputs.source_game_ids), "")})
    if fallback:
        summary += f" (fallback used: {', '.join(fallback)})"
    if not missing:
        return GateResult(
            name,
            "pass",
            summary,
            len(considered),
            covered,
            (),
            {g: covered_by[g] for g in considered},
            tuple(unavailable),
        )
    verdict: GateVerdict = "blocked" if share > gate.breaker_threshold else "partial"
    reason = (
        f"circuit breaker: {len(missing)}/{len(considered)} games ({share:.0%}) have data issues, "
        f"more than {gate.breaker_threshold:.0%}; missing {', '.join(missing)}"
        if verdict == "blocked"
        else f"{summary}; missing {', '.join(missing)}"
    )
    return GateResult(
        name,
        verdict,
        reason,
        len(considered),
        covered,
        tuple(missing),
        {g: covered_by[g] for g in considered if g in covered_by},
        tuple(unavailable),
    )


def _canonical_set(converter: GameIdConverter, raw_ids: Iterable[str]) -> set[str]:
    out: set[str] = set()
    for raw in raw_ids:
        try:
            out.add(converter.canonical(raw))
        except InvalidGameIdError:
            continue  # an id of another date or a malformed id cannot cover a scheduled game
    return out


class BigQueryGameSources:
    """Reads the schedule, boxscore sources and unavailable games of a date (parameterised SQL, L18)."""

    def __init__(
        self, client: bigquery.Client | Callable[[], bigquery.Client], project: str, games: GamesSources
    ) -> None:
        self._client = LazyClient(client)  # a client or a factory (BigQuery loads on the gate path only)
        self.project = project
        self.games = games

    @property
    def client(self) -> bigquery.Client:
        return self._client.get()

    def _table(self, ref: str) -> str:
        return f"`{self.project}.{ref}`"  # identifiers come from the validated definition only

    def _rows(self, sql: str, game_date: date) -> list[Any]:
        from google.cloud import bigquery

        config = bigquery.QueryJobConfig(
            query_parameters=[bigquery.ScalarQueryParameter("game_date", "DATE", game_date)]
        )
        return list(self.client.query(sql, job_config=config).result(timeout=60))

    def sql(self) -> str:
        """One parameterised query for the schedule, every source and the unavailable list.

        One round trip instead of five: a BigQuery query costs ~0.1-2 s of latency each.
        """
        g = self.games
        branches = [
            f"(SELECT 'schedule' AS kind, CAST({g.schedule_game_id_column} AS STRING) AS game_id, "
            f"away_team_tricode AS away, home_team_tricode AS home, "
            f"CAST({g.schedule_status_column} AS STRING) AS game_status, updated_at "
            f"FROM {self._table(g.schedule_table)} WHERE game_date = @game_date)"
        ]
        for source in g.boxscore_sources:
            branches.append(
                f"(SELECT DISTINCT 'source:{source.name}' AS kind, CAST({source.game_id_column} AS STRING) AS game_id, "
                "CAST(NULL AS STRING) AS away, CAST(NULL AS STRING) AS home, CAST(NULL AS STRING) AS game_status, "
                f"CAST(NULL AS TIMESTAMP) AS updated_at FROM {self._table(source.table)} WHERE game_date = @game_date)"
            )
        branches.append(
            "(SELECT DISTINCT 'unavailable' AS kind, CAST(game_id AS STRING) AS game_id, CAST(NULL AS STRING) AS away, "
            "CAST(NULL AS STRING) AS home, CAST(NULL AS STRING) AS game_status, CAST(NULL AS TIMESTAMP) AS updated_at "
            f"FROM {self._table(g.unavailable_table)} WHERE game_date = @game_date)"
        )
        return "\nUNION ALL\n".join(branches)

    def load(self, game_date: date) -> CoverageInputs:
        schedule: list[ScheduleEntry] = []
        sources: dict[str, list[str]] = {s.name: [] for s in self.games.boxscore_sources}  # chain order
        unavailable: list[str] = []
        for r in self._rows(self.sql(), game_date):
            kind, game_id = str(r["kind"]), str(r["game_id"])
            if kind == "schedule":
                schedule.append(
                    ScheduleEntry(
                        nba_game_id=game_id,
                        game_date=game_date,
                        away=str(r["away"]),
                        home=str(r["home"]),
                        status=None if r["game_status"] is None else str(r["game_status"]),
                        updated_at=_aware(r["updated_at"]),
                    )
                )
            elif kind == "unavailable":
                unavailable.append(game_id)
            else:
                sources[kind.removeprefix("source:")].append(game_id)
        return CoverageInputs(tuple(schedule), {k: tuple(v) for k, v in sources.items()}, tuple(unavailable))


def _aware(value: datetime | None) -> datetime | None:
    if value is None or value.tzinfo is not None:
        return value
    from datetime import UTC

    return value.replace(tzinfo=UTC)


class GateRunner:
    """Runs a transition's gates in order. Errors are transient unless the gate is advisory."""

    def __init__(self, definition: PipelineDefinition, sources: BigQueryGameSources | None) -> None:
        self.definition = definition
        self.sources = sources

    def run(self, transition: Transition, game_date: date) -> list[GateResult]:
        results = []
        for name in transition.gates:
            gate = self.definition.gates[name]
            try:
                if self.sources is None:
                    raise TransientError("no BigQuery game sources configured for the coverage gate")
                inputs = self.sources.load(game_date)
                result = coverage_verdict(name, gate, self.definition.games.final_status, inputs)
            except Exception as exc:
                if gate.advisory:
                    results.append(
                        GateResult(
                            name, "pass", f"advisory gate errored: {exc}", advisory_error=f"{type(exc).__name__}: {exc}"
                        )
                    )
                    continue
                if isinstance(exc, TransientError):
                    raise
                raise TransientError(
                    f"gate {name!r} could not be evaluated: {type(exc).__name__}: {exc}",
                    transition=transition.name,
                    game_date=str(game_date),
                ) from exc
            results.append(result)
            if result.verdict == "blocked":
                break
        return results
