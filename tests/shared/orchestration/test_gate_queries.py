"""``BigQueryGateQueries``: how a gate's query is sent (one ``jobs.query`` call) and the coverage SQL.

Unit tests use a recording stand-in for the client (only ``query_and_wait`` is allowed); the
integration tests at the end run the same SQL on local-bigquery and count its HTTP requests.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, date, datetime
from typing import Any

import pytest
from google.api_core import exceptions as gexc
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.game_ids import TEAM_CODE_ALIASES, ScheduleEntry
from shared.orchestration.gate_queries import BigQueryGateQueries, CoverageInputs
from shared.orchestration.gates import GateResult, coverage_verdict, is_configuration_error
from shared.pipeline.definition import GameCoverageGate, GameSource, load_definition

D = load_definition()
GATE = D.gates["game_coverage"]
assert isinstance(GATE, GameCoverageGate) and GATE.uses_boxscore_chain
ANALYTICS = D.gates["analytics_game_coverage"]
assert isinstance(ANALYTICS, GameCoverageGate) and len(ANALYTICS.sources) == 1
CHAIN = tuple(s.name for s in D.games.boxscore_sources)  # bdl → espn → gamebook
GAME_DATE = date(2026, 1, 24)
BACKTICKED = re.compile(r"`([^`]*)`")
LITERAL = re.compile(r"'([^']*)'")
PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")


class RecordingClient:
    """Stands in for ``bigquery.Client``: records ``query_and_wait`` calls, answers given rows."""

    def __init__(self, rows: Sequence[dict[str, Any]] = (), error: BaseException | None = None) -> None:
        self.calls: list[tuple[str, dict[str, Any]]] = []
        self.answer = list(rows)
        self.error = error

    def query_and_wait(self, query: str, **kwargs: Any) -> Any:
        self.calls.append((query, kwargs))
        if self.error is not None:
            raise self.error
        return iter(self.answer)

    def query(self, *args: Any, **kwargs: Any) -> Any:
        raise AssertionError("the gate path must not take jobs.insert (query + result)")


def make(client: Any = None, **kwargs: Any) -> BigQueryGateQueries:
    return BigQueryGateQueries(client or RecordingClient(), "p", D.games, **kwargs)


# ============================================================================ rows(): one query_and_wait


def test_rows_is_one_query_and_wait_with_parameters_a_deadline_and_no_job_retry() -> None:
    client = RecordingClient([{"n": 1}])
    q = make(client, deadline_seconds=30.0)
    assert q.rows("SELECT 1", GAME_DATE, [("v0", "INT64", 0), ("v1", "STRING", "x")]) == [{"n": 1}]
    ((sql, kwargs),) = client.calls
    assert sql == "SELECT 1"
    params = [(p.name, p.type_, p.value) for p in kwargs["job_config"].query_parameters]
    assert params == [("game_date", "DATE", GAME_DATE), ("v0", "INT64", 0), ("v1", "STRING", "x")]
    assert kwargs["api_timeout"] == kwargs["wait_timeout"] == 30.0
    assert kwargs["retry"].timeout == 30.0  # every API call retry within the deadline
    assert "job_retry" in kwargs and kwargs["job_retry"] is None  # a failed query raises: Pub/Sub redelivers


@pytest.mark.parametrize(("claim", "expected"), [(None, 60.0), (5.0, 5.0), (120.0, 60.0)])
def test_rows_deadline_is_the_smaller_of_the_claims_and_the_adapters(claim: float | None, expected: float) -> None:
    client = RecordingClient()
    make(client).rows("SELECT 1", GAME_DATE, deadline_seconds=claim)
    ((_, kwargs),) = client.calls
    assert kwargs["api_timeout"] == kwargs["wait_timeout"] == kwargs["retry"].timeout == expected


@pytest.mark.parametrize(
    ("error", "config"),
    [
        (gexc.BadRequest("Unrecognized name: nope"), True),  # jobs.query answers 400 for an unknown column
        (gexc.NotFound("Not found: Table p:raw.x"), True),
        (gexc.Forbidden("Access Denied"), True),
        (gexc.ServiceUnavailable("backend"), False),
        (gexc.InternalServerError("boom"), False),
    ],
)
def test_rows_raises_the_clients_error_as_is(error: gexc.GoogleAPICallError, config: bool) -> None:
    with pytest.raises(type(error)) as info:
        make(RecordingClient(error=error)).rows("SELECT 1", GAME_DATE)
    assert info.value is error
    assert is_configuration_error(info.value) is config


# ============================================================================ coverage SQL


def branches(sql: str) -> list[str]:
    return sql.split("\nUNION ALL\n")


LOOKAHEAD = D.games.reschedule_lookahead_days
assert LOOKAHEAD == 14  # pipeline.toml [games] reschedule_lookahead_days


def test_gate_coverage_sql_reads_every_source_once_in_one_branch_labelled_by_the_first_holder() -> None:
    sql = make().coverage_sql(GATE)
    schedule, later, unavailable, chain = branches(sql)
    assert BACKTICKED.findall(schedule) == ["p.nba_raw.nbac_schedule"]
    # the same game ids on the next days (postponement, L29): the schedule twice, a bounded range
    assert BACKTICKED.findall(later) == ["p.nba_raw.nbac_schedule", "p.nba_raw.nbac_schedule"]
    assert later.startswith("(SELECT 'later' AS kind, CAST(game_id AS STRING) AS game_id, ")
    assert (
        f"WHERE game_date > @game_date AND game_date <= DATE_ADD(@game_date, INTERVAL {LOOKAHEAD} DAY) "
        "AND CAST(game_id AS STRING) IN (SELECT CAST(game_id AS STRING) FROM `p.nba_raw.nbac_schedule` "
        "WHERE game_date = @game_date))"
    ) in later
    assert "CAST(game_date AS DATE) AS on_date" in later
    assert BACKTICKED.findall(unavailable) == ["p.nba_orchestration.game_unavailable"]
    assert BACKTICKED.findall(chain) == [f"p.{s.table}" for s in D.games.boxscore_sources]  # once each, in order
    for i, s in enumerate(D.games.boxscore_sources):
        assert (
            f"SELECT {i} AS chain_position, CAST({s.game_id_column} AS STRING) AS game_id "
            f"FROM `p.{s.table}` WHERE {s.date_column} = @game_date"
        ) in chain
    labels = " ".join(f"WHEN {i} THEN 'source:{name}'" for i, name in enumerate(CHAIN))
    assert chain.startswith(f"(SELECT CASE MIN(chain_position) {labels} END AS kind, game_id, CAST(NULL AS STRING)")
    assert chain.endswith(") GROUP BY game_id)")
    assert "EXCEPT" not in sql and "DISTINCT 'source:" not in sql


def test_coverage_sql_only_parameters_no_values() -> None:
    sql = make().coverage_sql(GATE)
    assert set(PARAM.findall(sql)) == {"game_date"}
    # schedule, later (lower and upper bound, the inner date's ids), each source, unavailable
    assert sql.count("@game_date") == 2 + 3 + len(CHAIN)
    assert set(LITERAL.findall(sql)) == {"schedule", "later", "unavailable", *(f"source:{n}" for n in CHAIN)}
    assert str(GAME_DATE) not in sql and f"{GAME_DATE:%Y%m%d}" not in sql
    # chain positions and the validated lookahead window (SQL structure of the definition), no values
    assert set(re.findall(r"\b\d+\b", sql)) == {str(i) for i in range(len(CHAIN))} | {str(LOOKAHEAD)}


def test_reconcile_reads_every_source_in_full() -> None:
    """``load`` (phasectl reconcile: which sources hold each game) keeps one DISTINCT branch per source."""
    client = RecordingClient()
    q = make(client)
    q.load(GAME_DATE)
    ((sql, _),) = client.calls
    assert sql == q.coverage_sql(None, only_missing=False)
    _, _, _, *sources = branches(sql)  # schedule, later, unavailable, then one branch per source
    assert sources == [
        f"(SELECT DISTINCT 'source:{s.name}' AS kind, CAST({s.game_id_column} AS STRING) AS game_id, "
        "CAST(NULL AS STRING) AS away, CAST(NULL AS STRING) AS home, CAST(NULL AS STRING) AS game_status, "
        "CAST(NULL AS STRING) AS status_text, CAST(NULL AS TIMESTAMP) AS updated_at, "
        "CAST(NULL AS BOOL) AS scored, CAST(NULL AS DATE) AS on_date, CAST(NULL AS STRING) AS note "
        f"FROM `p.{s.table}` WHERE {s.date_column} = @game_date)"
        for s in D.games.boxscore_sources
    ]


def test_the_gate_path_sends_the_first_holder_sql() -> None:
    client = RecordingClient()
    q = make(client)
    q.coverage(GATE, GAME_DATE, 12.0)
    ((sql, kwargs),) = client.calls
    assert sql == q.coverage_sql(GATE) == q.coverage_sql(GATE, only_missing=True)
    assert kwargs["api_timeout"] == 12.0


def test_a_single_source_gate_keeps_its_plain_branch() -> None:
    (source,) = ANALYTICS.sources
    _, _, _, branch = branches(make().coverage_sql(ANALYTICS))
    assert branch.startswith(f"(SELECT DISTINCT 'source:{source.name}' AS kind, CAST({source.game_id_column}")
    assert "chain_position" not in branch


def test_a_gates_own_sources_use_their_own_columns() -> None:
    gate = GameCoverageGate(
        kind="game_coverage_pct",
        block_below=50,
        sources=(
            GameSource(name="first", table="ds.a", game_id_column="gid_a", date_column="day_a"),
            GameSource(name="second", table="ds.b", game_id_column="gid_b", date_column="day_b"),
        ),
    )
    _, _, _, branch = branches(make().coverage_sql(gate))
    assert "CASE MIN(chain_position) WHEN 0 THEN 'source:first' WHEN 1 THEN 'source:second' END" in branch
    assert (
        "SELECT 0 AS chain_position, CAST(gid_a AS STRING) AS game_id FROM `p.ds.a` WHERE day_a = @game_date" in branch
    )
    assert (
        "SELECT 1 AS chain_position, CAST(gid_b AS STRING) AS game_id FROM `p.ds.b` WHERE day_b = @game_date" in branch
    )


def test_coverage_rows_become_inputs_in_chain_order() -> None:
    from shared.clock import FixedClock

    nulls = {
        "away": None,
        "home": None,
        "game_status": None,
        "status_text": None,
        "updated_at": None,
        "scored": None,
        "on_date": None,
        "note": None,
    }
    gsw_min = {"game_id": "0022500644", "away": "GSW", "home": "MIN", "note": None}
    rows = [
        {
            "kind": "schedule",
            **gsw_min,
            "game_status": "3",
            "status_text": "Final",
            "updated_at": datetime(2026, 1, 25, tzinfo=UTC),
            "scored": False,
            "on_date": None,
        },
        {  # the same id on a later date (the 'later' branch): its own date, naive timestamps read as UTC
            "kind": "later",
            **gsw_min,
            "game_status": "1",
            "status_text": "Scheduled",
            "updated_at": datetime(2026, 1, 25, 2, 0),
            "scored": False,
            "on_date": date(2026, 1, 25),
        },
        {"kind": "source:gamebook", "game_id": "20260124_LAL_DEN", **nulls},
        {"kind": "source:bdl", "game_id": "20260124_GSW_MIN", **nulls},
        {"kind": "unavailable", "game_id": "0022500645", **nulls},
        {"kind": "unavailable", "game_id": "20260124_LAL_DEN", **nulls, "status_text": "postponed", "note": "snow"},
        {"kind": "unavailable", "game_id": "20260124_SAS_UTA", **nulls, "status_text": " Restored "},
    ]
    read_at = datetime(2026, 1, 26, 12, 0, tzinfo=UTC)
    inputs = make(RecordingClient(rows), clock=FixedClock(read_at)).coverage(GATE, GAME_DATE)
    assert list(inputs.source_game_ids) == list(CHAIN)  # every source, in chain order, even without ids
    assert inputs.source_game_ids == {"bdl": ("20260124_GSW_MIN",), "espn": (), "gamebook": ("20260124_LAL_DEN",)}
    assert inputs.unavailable_game_ids == ("0022500645",)  # a postponed / restored mark is not "unavailable"
    assert [e.date_teams_game_id for e in inputs.schedule] == ["20260124_GSW_MIN"]
    assert inputs.schedule[0].scored is False and inputs.schedule[0].game_date == GAME_DATE
    (later,) = inputs.later
    assert (later.game_date, later.status, later.scored) == (date(2026, 1, 25), "1", False)
    assert later.updated_at == datetime(2026, 1, 25, 2, 0, tzinfo=UTC)
    assert dict(inputs.marks.postponed) == {"20260124_LAL_DEN": "snow"}
    assert inputs.marks.restored == frozenset({"20260124_SAS_UTA"})
    assert inputs.read_at == read_at


# ============================================================================ same verdict, filtered or not

SLATE = (
    ("0022500644", "GSW", "MIN"),  # ESPN: GS
    ("0022500645", "BOS", "NYK"),  # ESPN: NY
    ("0022500646", "LAL", "DEN"),  # same code everywhere
    ("0022500647", "SAS", "UTA"),  # ESPN: SA, UTAH
    ("0022500648", "PHX", "DAL"),
)
_ESPN = {nba: espn for espn, nba in TEAM_CODE_ALIASES.items()}


def spellings(i: int) -> list[str]:
    """The ways a source can hold game ``i``: every format ``GameIdConverter`` accepts."""
    nba, away, home = SLATE[i]
    canon = f"20260124_{away}_{home}"
    espn = f"20260124_{_ESPN.get(away, away)}_{_ESPN.get(home, home)}"
    return [canon, espn, canon.lower(), f" {canon} ", nba, nba[2:]]


ODD_IDS = ["None", "", "20260124_AAA_BBB", "0000000000", "20260123_LAL_DEN", "0022599999"]
RAW_ID = st.one_of(
    st.tuples(st.integers(0, len(SLATE) - 1), st.integers(0, 5)).map(lambda t: spellings(t[0])[t[1]]),
    st.sampled_from(ODD_IDS),
)


def first_holder(sources: dict[str, list[str]]) -> dict[str, tuple[str, ...]]:
    """What the gate's SQL returns: every distinct id once, under the first source (chain order) holding it."""
    seen: set[str] = set()
    out: dict[str, tuple[str, ...]] = {}
    for name, ids in sources.items():
        out[name] = tuple(i for i in dict.fromkeys(ids) if i not in seen)
        seen |= set(ids)
    return out


def same(a: GateResult, b: GateResult) -> bool:
    """Equal in every field, and in what the trigger, the log and the status page carry."""
    return a == b and a.as_dict() == b.as_dict()


@settings(max_examples=300, deadline=None)
@given(
    sources=st.fixed_dictionaries({name: st.lists(RAW_ID, max_size=8) for name in CHAIN}),
    final=st.lists(st.booleans(), min_size=len(SLATE), max_size=len(SLATE)),
    unavailable=st.lists(RAW_ID, max_size=2),
)
def test_first_holder_inputs_give_the_same_verdict(
    sources: dict[str, list[str]], final: list[bool], unavailable: list[str]
) -> None:
    schedule = tuple(
        ScheduleEntry(
            nba, GAME_DATE, away, home, status="3" if f else "1", updated_at=datetime(2026, 1, 25, tzinfo=UTC)
        )
        for (nba, away, home), f in zip(SLATE, final, strict=True)
    )
    full = CoverageInputs(schedule, {k: tuple(dict.fromkeys(v)) for k, v in sources.items()}, tuple(unavailable))
    filtered = CoverageInputs(schedule, first_holder(sources), tuple(unavailable))
    assert same(
        coverage_verdict("game_coverage", GATE, D.games, filtered),
        coverage_verdict("game_coverage", GATE, D.games, full),
    )


# ============================================================================ on local-bigquery


@pytest.mark.integration
def test_on_local_bigquery_one_request_and_the_same_verdict(cloud: Any, unique: str, monkeypatch: Any) -> None:
    from deploy.local.raw_tables import upstream_table
    from shared.gcp_bigquery import bigquery_client
    from tests.support.rig import GAMES, Rig

    rig = Rig.create(cloud, unique)
    rig.seed_games(final=GAMES, sources={"bdl": [GAMES[0][0], GAMES[1][0]], "espn": [GAMES[1][0], GAMES[2][0]]})
    project, games = cloud.project, rig.definition.games
    tables = {s.name: s.table for s in games.boxscore_sources}
    lal_den = f"{GAME_DATE:%Y%m%d}_LAL_DEN"  # GAMES[2]: the same id in ESPN's and the gamebook's format
    gamebook = upstream_table(tables["gamebook"])
    extra = ["20260124_gsw_min", lal_den, GAMES[3][0], "20260124_AAA_BBB", lal_den]
    rows = [gamebook.row(GAMES[0][0], GAME_DATE, "GSW", "MIN", game_id=raw) for raw in extra]
    client = bigquery_client(project)
    assert client.insert_rows_json(f"{project}.{tables['gamebook']}", rows) == []

    requests: list[str] = []
    send = client._http.request

    def counting(method: str, url: str, *args: Any, **kwargs: Any) -> Any:
        requests.append(f"{method} {url.split('?')[0].rsplit('/projects/', 1)[-1]}")
        return send(method, url, *args, **kwargs)

    monkeypatch.setattr(client._http, "request", counting)
    q = BigQueryGateQueries(client, project, games)
    gate_inputs = q.coverage(GATE, GAME_DATE)
    assert requests == [f"POST {project}/queries"]  # jobs.query: one round trip
    full = q.load(GAME_DATE)

    assert {k: sorted(v) for k, v in full.source_game_ids.items()} == {
        "bdl": ["20260124_BOS_NYK", "20260124_GSW_MIN"],
        "espn": ["20260124_BOS_NY", lal_den],
        "gamebook": sorted({"0022500647", "20260124_AAA_BBB", "20260124_gsw_min", lal_den}),
    }
    # a fallback keeps only the ids no earlier source holds verbatim (ESPN's BOS_NY is not BDL's BOS_NYK)
    assert {k: sorted(v) for k, v in gate_inputs.source_game_ids.items()} == {
        "bdl": ["20260124_BOS_NYK", "20260124_GSW_MIN"],
        "espn": ["20260124_BOS_NY", lal_den],
        "gamebook": ["0022500647", "20260124_AAA_BBB", "20260124_gsw_min"],
    }
    filtered = coverage_verdict("game_coverage", GATE, games, gate_inputs)
    assert same(filtered, coverage_verdict("game_coverage", GATE, games, full))
    assert filtered.covered_by == {
        "20260124_GSW_MIN": "bdl",
        "20260124_BOS_NYK": "bdl",
        "20260124_LAL_DEN": "espn",
        "20260124_MIA_CHI": "gamebook",
    }
    assert filtered.missing_games == ("20260124_PHX_DAL",)


@pytest.mark.integration
def test_on_local_bigquery_an_unknown_column_is_a_configuration_error(cloud: Any, unique: str) -> None:
    from shared.gcp_bigquery import bigquery_client
    from tests.support.rig import Rig

    rig = Rig.create(cloud, unique)
    q = BigQueryGateQueries(bigquery_client(cloud.project), cloud.project, rig.definition.games)
    table = q._table(rig.definition.games.schedule_table)
    with pytest.raises(gexc.BadRequest) as info:
        q.rows(f"SELECT no_such_column FROM {table} WHERE game_date = @game_date", GAME_DATE)
    assert is_configuration_error(info.value)
    with pytest.raises(gexc.NotFound) as missing:
        q.rows(f"SELECT 1 FROM {table[:-1]}_nope` WHERE game_date = @game_date", GAME_DATE)
    assert is_configuration_error(missing.value)
