"""What the gates read: one parameterised BigQuery query per gate, and the service health probe.

Every identifier in the SQL (project, tables, columns) comes from the validated definition
(``Name``/``TableRef`` patterns: letters, digits, underscores); every value (the game date,
predicate values) is a query parameter. Every branch filters on the table's date column, as
the replaced system's tables require a partition filter. BigQuery is imported only here and
in ``shared.gcp_bigquery``, on the gate path (L16: a function loads only the libraries it uses,
so a gateless one never imports BigQuery).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from shared.clock import Clock
from shared.deferred import Deferred, deferred_attribute
from shared.game_ids import ScheduleEntry
from shared.orchestration.postponement import OperatorMarks
from shared.orchestration.schedule_sql import ScheduleRows, null_columns, schedule_branches
from shared.pipeline.definition import (
    GameCoverageGate,
    GameSource,
    GamesSources,
    GateValue,
    NullRateGate,
    Predicate,
    RatioGate,
    RowsPresentGate,
    ServiceHealthGate,
)

if TYPE_CHECKING:
    from google.cloud import bigquery


@dataclass(frozen=True)
class CoverageInputs:
    """What a coverage gate reads for one date, already in raw form."""

    schedule: tuple[ScheduleEntry, ...]
    # source name (chain order) → raw ids; on the gate path a fallback source's ids leave out those an
    # earlier source holds verbatim (``coverage_sql(only_missing=True)``)
    source_game_ids: Mapping[str, tuple[str, ...]]
    unavailable_game_ids: tuple[str, ...] = ()
    later: tuple[ScheduleEntry, ...] = ()  # the date's game ids on the schedule of later dates
    marks: OperatorMarks = field(default_factory=OperatorMarks)  # operators' postponed / restored games
    read_at: datetime | None = None  # when it was read (the injected clock's time; None: not known)


@dataclass(frozen=True)
class RatioCounts:
    numerator: int
    denominator: int


@dataclass(frozen=True)
class NullCount:
    table: str
    column: str
    rows: int
    nulls: int


@dataclass(frozen=True)
class HealthProbeResult:
    url: str | None
    http_status: int | None = None
    status: str | None = None  # the JSON body's "status"
    error: str | None = None


_OPS = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
_UNARY = {"is_null": "IS NULL", "not_null": "IS NOT NULL", "is_true": "IS TRUE", "is_false": "IS FALSE"}


def _param_type(value: GateValue) -> str:
    if isinstance(value, bool):
        return "BOOL"
    if isinstance(value, int):
        return "INT64"
    if isinstance(value, float):
        return "FLOAT64"
    return "STRING"


def predicate_sql(predicates: Sequence[Predicate]) -> tuple[str, list[tuple[str, str, GateValue]]]:
    """``a AND b ...`` over the predicates, and the (name, type, value) parameters it uses."""
    parts: list[str] = []
    params: list[tuple[str, str, GateValue]] = []
    for i, p in enumerate(predicates):
        if p.coalesce:
            args = list(p.coalesce)
            if p.default is not None:
                params.append((f"d{i}", _param_type(p.default), p.default))
                args.append(f"@d{i}")
            subject = f"COALESCE({', '.join(args)})"
        else:
            assert p.column is not None
            subject = p.column
        if p.op in _UNARY:
            parts.append(f"{subject} {_UNARY[p.op]}")
        else:
            assert p.value is not None
            params.append((f"v{i}", _param_type(p.value), p.value))
            parts.append(f"{subject} {_OPS[p.op]} @v{i}")
    return " AND ".join(f"({x})" for x in parts), params


class BigQueryGateQueries:
    """Runs each gate's one query (bounded by a deadline; no job retry: a failure redelivers)."""

    client: deferred_attribute[bigquery.Client] = deferred_attribute()  # a Deferred: built on the first query

    def __init__(
        self,
        client: bigquery.Client | Deferred[bigquery.Client],
        project: str,
        games: GamesSources,
        *,
        deadline_seconds: float = 60.0,
        clock: Clock | None = None,
    ) -> None:
        self.client = client
        self.project = project
        self.games = games
        self.deadline_seconds = deadline_seconds  # bounds the query, its retries and the wait for rows
        self.clock = clock  # stamps what was read (the optional "no rows N hours after" postponement rule)

    def _table(self, ref: str) -> str:
        return f"`{self.project}.{ref}`"  # identifiers come from the validated definition only

    def rows(
        self,
        sql: str,
        game_date: date,
        params: Sequence[tuple[str, str, GateValue]] = (),
        *,
        deadline_seconds: float | None = None,
    ) -> list[Any]:
        """The query's rows: one ``jobs.query`` round trip when BigQuery answers within the request.

        ``query_and_wait`` posts the query with ``timeoutMs`` = the deadline (less the client's
        250 ms buffer); a query that finishes in that time comes back with its first page of rows
        in the same response (a gate's result is a few dozen rows: one page). One that does not
        (``jobComplete: false``) or has more pages is polled as a job (jobs.get, getQueryResults)
        within ``wait_timeout`` and cancelled when that runs out. Before, ``query()`` +
        ``result()`` took jobs.insert + getQueryResults (wait) + getQueryResults (rows).
        """
        from google.cloud import bigquery
        from google.cloud.bigquery.retry import DEFAULT_RETRY

        config = bigquery.QueryJobConfig(
            query_parameters=[
                bigquery.ScalarQueryParameter("game_date", "DATE", game_date),
                *(bigquery.ScalarQueryParameter(name, kind, value) for name, kind, value in params),
            ]
        )
        # every retry of an API call bounded by the deadline (the jobs.query POST is retried with its
        # requestId, so BigQuery runs it once); no job_retry (its own deadline is 10 min): a failed
        # query raises and Pub/Sub redelivers the event instead
        deadline = min(self.deadline_seconds, deadline_seconds or self.deadline_seconds)
        retry = DEFAULT_RETRY.with_deadline(deadline)
        result = self.client.query_and_wait(
            sql,
            job_config=config,
            api_timeout=deadline,
            wait_timeout=deadline,
            retry=retry,
            job_retry=None,  # type: ignore[arg-type]  # annotated Retry; None is the documented "no job retry"
        )
        return list(result)

    # -- rows_present ---------------------------------------------------------------------
    def rows_present_sql(self, gate: RowsPresentGate) -> str:
        return "\nUNION ALL\n".join(
            f"(SELECT '{t.table}' AS table_ref, COUNT(*) AS n FROM {self._table(t.table)} "
            f"WHERE {t.date_column} = @game_date)"
            for t in gate.tables
        )

    def rows_present(self, gate: RowsPresentGate, game_date: date, deadline: float | None = None) -> dict[str, int]:
        counts = {t.table: 0 for t in gate.tables}
        for r in self.rows(self.rows_present_sql(gate), game_date, deadline_seconds=deadline):
            counts[str(r["table_ref"])] = int(r["n"] or 0)
        return counts

    # -- ratio ----------------------------------------------------------------------------
    def ratio_sql(self, gate: RatioGate) -> tuple[str, list[tuple[str, str, GateValue]]]:
        where, params = predicate_sql(gate.where)
        count = f"COUNT(DISTINCT {gate.key})" if gate.key else "COUNT(*)"
        numerator = (
            f"(SELECT {count} AS n FROM {self._table(gate.table.table)} "
            f"WHERE {gate.table.date_column} = @game_date AND {where})"
        )
        if gate.denominator is None:
            denominator = (
                f"(SELECT {count} AS n FROM {self._table(gate.table.table)} "
                f"WHERE {gate.table.date_column} = @game_date)"
            )
        else:
            key = gate.denominator_key or gate.key
            dcount = f"COUNT(DISTINCT {key})" if key else "COUNT(*)"
            denominator = (
                f"(SELECT {dcount} AS n FROM {self._table(gate.denominator.table)} "
                f"WHERE {gate.denominator.date_column} = @game_date)"
            )
        sql = (
            f"(SELECT 'numerator' AS part, n FROM {numerator})\nUNION ALL\n"
            f"(SELECT 'denominator' AS part, n FROM {denominator})"
        )
        return sql, params

    def ratio(self, gate: RatioGate, game_date: date, deadline: float | None = None) -> RatioCounts:
        sql, params = self.ratio_sql(gate)
        parts = {str(r["part"]): int(r["n"] or 0) for r in self.rows(sql, game_date, params, deadline_seconds=deadline)}
        return RatioCounts(parts.get("numerator", 0), parts.get("denominator", 0))

    # -- null_rate ------------------------------------------------------------------------
    def null_rate_sql(self, gate: NullRateGate) -> str:
        return "\nUNION ALL\n".join(
            f"(SELECT '{t.table}' AS table_ref, '{column}' AS column_name, COUNT(*) AS n, "
            f"COUNTIF({column} IS NULL) AS nulls FROM {self._table(t.table)} WHERE {t.date_column} = @game_date)"
            for t in gate.tables
            for column in t.columns
        )

    def null_rate(self, gate: NullRateGate, game_date: date, deadline: float | None = None) -> list[NullCount]:
        return [
            NullCount(str(r["table_ref"]), str(r["column_name"]), int(r["n"] or 0), int(r["nulls"] or 0))
            for r in self.rows(self.null_rate_sql(gate), game_date, deadline_seconds=deadline)
        ]

    # -- game coverage --------------------------------------------------------------------
    def coverage_sources(self, gate: GameCoverageGate | None) -> tuple[GameSource, ...]:
        if gate is not None and gate.sources:
            return gate.sources
        return tuple(
            GameSource(name=s.name, table=s.table, game_id_column=s.game_id_column, date_column=s.date_column)
            for s in self.games.boxscore_sources
        )

    def coverage_sql(self, gate: GameCoverageGate | None = None, *, only_missing: bool = True) -> str:
        """One parameterised query for the schedule, every source and the unavailable list.

        One round trip instead of five: a BigQuery query costs ~0.1-2 s of latency each. Every
        column comes from the definition's ``[games]`` section (or the gate's own sources).

        ``only_missing``: a fallback source (every source after the first) returns only the ids
        no earlier source of the chain returned verbatim: one branch reads every source once and
        labels each distinct id with the first source holding it (``MIN`` of the chain position),
        so BigQuery scans what it scanned before. Without it, every distinct id of every source
        (``phasectl reconcile`` lists every source holding a game).

        Why only verbatim: the sources do not share one id space. BDL and the gamebook write
        ``20260124_GSW_MIN``, ESPN ``20260124_GS_MIN`` (its own team codes), and any source may
        hold a numeric NBA id, other case or whitespace; ``GameIdConverter.canonical`` maps them
        with ``TEAM_CODE_ALIASES`` and the deduplicated schedule (latest row per game), which the
        SQL does not repeat. An id equal, as the string the query returns, to an earlier source's
        maps to the same game (or is invalid in both), and the first source covering a game wins
        (``coverage_verdict``): leaving it out changes neither ``covered_by`` nor the missing
        games. Ids equal only after that mapping (an ESPN id of a GSW, NYK, NOP, SAS, UTA or WAS
        game, a numeric id) still come back and are decided in Python.
        """
        branches = schedule_branches(self.games, self._table)
        nulls = null_columns()
        sources = self.coverage_sources(gate)
        if only_missing and len(sources) > 1:
            # the chain position is SQL structure (0, 1, ...), not a value; the labels are the
            # validated source names, as in the per-source branches
            ids = " UNION ALL ".join(
                f"SELECT {i} AS chain_position, CAST({s.game_id_column} AS STRING) AS game_id "
                f"FROM {self._table(s.table)} WHERE {s.date_column} = @game_date"
                for i, s in enumerate(sources)
            )
            first = " ".join(f"WHEN {i} THEN 'source:{s.name}'" for i, s in enumerate(sources))
            branches.append(
                f"(SELECT CASE MIN(chain_position) {first} END AS kind, game_id, {nulls} FROM ({ids}) GROUP BY game_id)"
            )
        else:
            branches += [
                f"(SELECT DISTINCT 'source:{s.name}' AS kind, CAST({s.game_id_column} AS STRING) AS game_id, "
                f"{nulls} FROM {self._table(s.table)} WHERE {s.date_column} = @game_date)"
                for s in sources
            ]
        return "\nUNION ALL\n".join(branches)

    def coverage(
        self,
        gate: GameCoverageGate | None,
        game_date: date,
        deadline: float | None = None,
        *,
        only_missing: bool = True,
    ) -> CoverageInputs:
        """The coverage gate's inputs; with ``only_missing`` a fallback source's ids are only those
        its earlier sources lack (see ``coverage_sql``: the coverage verdict is the same)."""
        read = ScheduleRows()
        sources: dict[str, list[str]] = {s.name: [] for s in self.coverage_sources(gate)}  # chain order
        sql = self.coverage_sql(gate, only_missing=only_missing)
        for r in self.rows(sql, game_date, deadline_seconds=deadline):
            if not read.take(r, game_date):
                sources[str(r["kind"]).removeprefix("source:")].append(str(r["game_id"]))
        return CoverageInputs(
            tuple(read.schedule),
            {k: tuple(v) for k, v in sources.items()},
            tuple(read.unavailable),
            tuple(read.later),
            read.marks,
            self.clock.now() if self.clock is not None else None,
        )

    def load(self, game_date: date) -> CoverageInputs:
        """The ``[games]`` fallback chain's coverage inputs, every source's ids in full:
        ``phasectl reconcile`` shows every source holding a game, not just the first."""
        return self.coverage(None, game_date, only_missing=False)


def _no_redirect_handler() -> type:
    """A handler class that refuses redirects (built on first use: urllib stays off the cold path)."""
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args: Any, **kwargs: Any) -> None:
            return None  # the 3xx surfaces as an HTTPError: "answered 302", not healthy

    return NoRedirect


class HealthProbe:
    """GET ``$url_env`` + ``path`` with a Google ID token (audience: the base URL), as the replaced
    orchestrators' ``check_service_health`` does (phase3_to_phase4/main.py:255-309). Never raises:
    an unreachable service is an unhealthy one."""

    def __init__(self, environ: Mapping[str, str], *, token: Callable[[str], str] | None = None) -> None:
        self.environ = environ
        self._token = token

    def check(self, gate: ServiceHealthGate, deadline: float | None = None) -> HealthProbeResult:
        base = (self.environ.get(gate.url_env) or "").rstrip("/")
        if not base:
            return HealthProbeResult(None)
        url = f"{base}{gate.path}"
        import urllib.error  # only a transition with a health gate pays for urllib, and only then
        import urllib.request

        headers = {"Accept": "application/json"}
        try:
            if gate.auth == "id_token":
                from shared.gcp import id_token

                headers["Authorization"] = f"Bearer {(self._token or id_token)(base)}"
            request = urllib.request.Request(url, headers=headers, method="GET")
            timeout = min(gate.timeout_seconds, deadline or gate.timeout_seconds)
            # never follow a redirect: urllib would send the ID token on to wherever it points
            opener = urllib.request.build_opener(_no_redirect_handler())
            with opener.open(request, timeout=timeout) as response:
                code = int(response.status)
                body = response.read(65536)
        except urllib.error.HTTPError as exc:
            return HealthProbeResult(url, int(exc.code), None, f"answered {exc.code}")
        except Exception as exc:  # noqa: BLE001 - unreachable, timeout, no token: all mean "not healthy"
            return HealthProbeResult(url, None, None, f"{type(exc).__name__}: {exc}"[:300])
        try:
            parsed = json.loads(body or b"{}")
        except ValueError:
            return HealthProbeResult(url, code, None, "answered with a body that is not JSON")
        status = parsed.get("status") if isinstance(parsed, dict) else None
        return HealthProbeResult(url, code, None if status is None else str(status))
