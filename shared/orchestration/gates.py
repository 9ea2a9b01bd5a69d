"""Gates run after the claim and before the publish. The game-coverage gate and its breaker.

A game is covered when any source of the fallback chain (BDL → ESPN → gamebook) has a
boxscore for it (L13). Ids are normalised through the schedule before any comparison
(L15). Games marked permanently unavailable are excluded. When more than the breaker
threshold (50 %) of the date's Final games have data issues the gate blocks; fewer
issues let the trigger go out as ``partial`` with the missing games listed.

Gate query errors are transient (raise, Pub/Sub redelivers) unless the definition
marks the gate advisory (L17) or the error says the gate cannot run as configured: a
400 (unknown column or table, bad SQL), 401/403 other than a rate or quota limit, or 404
(dataset or table missing) raises ``GateConfigError``. Redelivering cannot fix that, and the
completion is already recorded, so the transition acks, alerts and records ``gate_error``;
the monitor re-evaluates the date every pass, so it triggers once the configuration is
fixed. BigQuery is imported only here, on the gate path (L16).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any, Literal

from shared.errors import InvalidGameIdError, PermanentError, TransientError
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


def coverage_verdict(name: str, gate: GameCoverageGate, games: GamesSources, inputs: CoverageInputs) -> GateResult:
    """The pure coverage decision and circuit breaker.

    Final games whose schedule status text starts with one of ``games.excluded_status_texts``
    (the replaced system's operators mark a postponed game so and leave its status Final:
    bin/fixes/fix_postponed_game.py:183-200 at najicham/nba-stats-scraper@18f6ecfe) are not
    expected, like games marked unavailable.
    """
    converter = GameIdConverter.from_schedule(inputs.schedule)
    final_entries = [e for e in converter.games() if games.is_final(e.status)]
    finals = sorted(e.date_teams_game_id for e in final_entries)
    postponed = {e.date_teams_game_id for e in final_entries if games.excluded_by_text(e.status_text)}
    unavailable = sorted((_canonical_set(converter, inputs.unavailable_game_ids) & set(finals)) | postponed)
    considered = [g for g in finals if g not in unavailable]
    if not considered:
        return GateResult(
            name,
            "pass",
            f"no Final games to cover ({len(unavailable)} marked unavailable or postponed)",
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
        self,
        client: bigquery.Client | Callable[[], bigquery.Client],
        project: str,
        games: GamesSources,
        *,
        deadline_seconds: float = 60.0,
    ) -> None:
        self._client = LazyClient(client)  # a client or a factory (BigQuery loads on the gate path only)
        self.project = project
        self.games = games
        self.deadline_seconds = deadline_seconds  # bounds the query, its retries and the wait for rows

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
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        # every retry bounded by the deadline; no job_retry (its own deadline is 10 min): a failed
        # job raises and Pub/Sub redelivers the event instead
        deadline = self.deadline_seconds
        retry = DEFAULT_RETRY.with_deadline(deadline)
        job = self.client.query(sql, job_config=config, retry=retry, timeout=deadline, job_retry=None)
        return list(job.result(timeout=deadline, retry=retry))

    def sql(self) -> str:
        """One parameterised query for the schedule, every source and the unavailable list.

        One round trip instead of five: a BigQuery query costs ~0.1-2 s of latency each. Every
        column comes from the definition's ``[games]`` section; every branch filters on the
        table's date column (the replaced system's raw tables require a partition filter).
        """
        g = self.games
        updated = f"CAST({g.schedule_updated_column} AS TIMESTAMP)" if g.schedule_updated_column else "NULL"
        status_text = f"CAST({g.schedule_status_text_column} AS STRING)" if g.schedule_status_text_column else "NULL"
        branches = [
            f"(SELECT 'schedule' AS kind, CAST({g.schedule_game_id_column} AS STRING) AS game_id, "
            f"CAST({g.schedule_away_team_column} AS STRING) AS away, "
            f"CAST({g.schedule_home_team_column} AS STRING) AS home, "
            f"CAST({g.schedule_status_column} AS STRING) AS game_status, {status_text} AS status_text, "
            f"{updated} AS updated_at "
            f"FROM {self._table(g.schedule_table)} WHERE {g.schedule_date_column} = @game_date)"
        ]
        nulls = (
            "CAST(NULL AS STRING) AS away, CAST(NULL AS STRING) AS home, CAST(NULL AS STRING) AS game_status, "
            "CAST(NULL AS STRING) AS status_text, CAST(NULL AS TIMESTAMP) AS updated_at"
        )
        for source in g.boxscore_sources:
            branches.append(
                f"(SELECT DISTINCT 'source:{source.name}' AS kind, CAST({source.game_id_column} AS STRING) AS game_id, "
                f"{nulls} FROM {self._table(source.table)} WHERE {source.date_column} = @game_date)"
            )
        branches.append(
            f"(SELECT DISTINCT 'unavailable' AS kind, CAST(game_id AS STRING) AS game_id, {nulls} "
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
                        status_text=None if r["status_text"] is None else str(r["status_text"]),
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


class GateConfigError(PermanentError):
    """A gate cannot run because of configuration (unknown column/table, no permission)."""

    def __init__(self, message: str, *, gate: str, **context: Any) -> None:
        super().__init__(message, gate=gate, **context)
        self.gate = gate


# HTTP statuses that mean "this query can never work as configured" (google.api_core exceptions
# carry .code); 403s whose reason is a rate or quota limit are transient.
_CONFIG_STATUS_CODES = frozenset({400, 401, 403, 404})
_TRANSIENT_403_REASONS = frozenset({"ratelimitexceeded", "quotaexceeded", "backenderror", "userratelimitexceeded"})


def is_configuration_error(exc: BaseException) -> bool:
    """Whether a gate's query failed for a reason a retry cannot fix (see the module docstring)."""
    code = getattr(exc, "code", None)
    if not isinstance(code, int) or code not in _CONFIG_STATUS_CODES:
        return False
    if code == 403:
        errors = getattr(exc, "errors", None) or []
        reasons = {str(e.get("reason", "")).lower() for e in errors if isinstance(e, dict)}
        if reasons & _TRANSIENT_403_REASONS:
            return False
    return True


_JOB_DEBUG = re.compile(r"\s*(Location: \S+\s*)?Job ID: \S+\s*", re.MULTILINE)


def _stable_text(exc: BaseException) -> str:
    """An error's text without the per-call job id BigQuery appends (so a repeat compares equal)."""
    return _JOB_DEBUG.sub(" ", str(exc)).strip()[:500]


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
                result = coverage_verdict(name, gate, self.definition.games, inputs)
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
                if is_configuration_error(exc):
                    raise GateConfigError(
                        f"gate {name!r} cannot run as configured: {type(exc).__name__}: {_stable_text(exc)}",
                        gate=name,
                        transition=transition.name,
                        game_date=str(game_date),
                    ) from exc
                raise TransientError(
                    f"gate {name!r} could not be evaluated: {type(exc).__name__}: {exc}",
                    transition=transition.name,
                    game_date=str(game_date),
                ) from exc
            results.append(result)
            if result.verdict == "blocked":
                break
        return results
