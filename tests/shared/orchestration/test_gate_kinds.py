"""The data gates other than game coverage: verdicts, SQL, definition checks, the runner, the probe.

Pure unit tests: no emulator and no BigQuery (the SQL builders need no client; the runner gets
a fake of our own query adapter). The health probe talks to a real HTTP server on loopback.
Game coverage itself is ``test_gates.py``'s.
"""

from __future__ import annotations

import copy
import json
import re
import socket
import threading
import time
import tomllib
from collections.abc import Callable, Iterator, Mapping
from datetime import date
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeVar, cast

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.errors import DefinitionError, TransientError
from shared.orchestration.gate_queries import (
    BigQueryGateQueries,
    CoverageInputs,
    HealthProbe,
    HealthProbeResult,
    NullCount,
    RatioCounts,
    predicate_sql,
)
from shared.orchestration.gates import (
    GateConfigError,
    GateResult,
    GateRunner,
    health_verdict,
    null_rate_verdict,
    ratio_verdict,
    rows_present_verdict,
    threshold_verdict,
)
from shared.pipeline.definition import (
    DEFAULT_DEFINITION_PATH,
    GameCoverageGate,
    Gate,
    NullRateGate,
    NullRateTable,
    PipelineDefinition,
    Predicate,
    RatioGate,
    RowsPresentGate,
    ServiceHealthGate,
    load_definition,
    parse_definition,
)

T = TypeVar("T")

D = load_definition(DEFAULT_DEFINITION_PATH)  # the packaged definition, whatever $PIPELINE_DEFINITION says
GAME_DATE = date(2026, 1, 24)


def packaged_toml() -> dict[str, Any]:
    """A fresh, mutable copy of the packaged definition as parsed TOML."""
    return tomllib.loads(DEFAULT_DEFINITION_PATH.read_text(encoding="utf-8"))


def gate_of(name: str, kind: type[T], definition: PipelineDefinition = D) -> T:
    gate = definition.gates[name]
    assert isinstance(gate, kind), f"{name} is a {type(gate).__name__}, not a {kind.__name__}"
    return gate


PHASE3_ROWS = gate_of("phase3_rows_present", RowsPresentGate)
PHASE4_ROWS = gate_of("phase4_rows_present", RowsPresentGate)
MINUTES = gate_of("minutes_coverage", RatioGate)
FEATURE_STORE = gate_of("feature_store_coverage", RatioGate)
NULL_RATES = gate_of("phase3_null_rates", NullRateGate)
COORDINATOR = gate_of("coordinator_health", ServiceHealthGate)

PDC = "nba_precompute.player_daily_cache"
MLFS = "nba_predictions.ml_feature_store_v2"
PCF = "nba_precompute.player_composite_factors"
PSZA = "nba_precompute.player_shot_zone_analysis"
TDZA = "nba_precompute.team_defense_zone_analysis"
PGS = "nba_analytics.player_game_summary"
TDGS = "nba_analytics.team_defense_game_summary"
UPGC = "nba_analytics.upcoming_player_game_context"


# ============================================================================ threshold_verdict

# lower is worse: block below 50, alert below 90
LOW = GameCoverageGate(kind="game_coverage_pct", block_below=50.0, alert_below=90.0)
# higher is worse: alert above 5, block above 50
HIGH = NullRateGate(
    kind="null_rate", tables=(NullRateTable(table="d.t", columns=("c",)),), alert_above=5.0, block_above=50.0
)


@pytest.mark.parametrize(
    ("value", "verdict", "line"),
    [
        (0.0, "blocked", "below the block line 50%"),
        (49.9, "blocked", "below the block line 50%"),
        (50.0, "alert", "below the alert line 90%"),  # on the block line is not below it
        (50.1, "alert", "below the alert line 90%"),
        (89.99, "alert", "below the alert line 90%"),
        (90.0, "pass", "within thresholds"),  # on the alert line is not below it
        (90.0 - 1e-12, "pass", "within thresholds"),  # float noise of a computed share is not a crossing
        (100.0, "pass", "within thresholds"),
    ],
)
def test_lower_is_worse_lines(value: float, verdict: str, line: str) -> None:
    assert threshold_verdict(LOW, value) == (verdict, line)


@pytest.mark.parametrize(
    ("value", "verdict", "line"),
    [
        (0.0, "pass", "within thresholds"),
        (5.0, "pass", "within thresholds"),  # on the alert line is not above it
        (5.01, "alert", "above the alert line 5%"),
        (50.0, "alert", "above the alert line 5%"),  # on the block line is not above it
        (50.01, "blocked", "above the block line 50%"),
        (100.0, "blocked", "above the block line 50%"),
    ],
)
def test_higher_is_worse_lines(value: float, verdict: str, line: str) -> None:
    assert threshold_verdict(HIGH, value) == (verdict, line)


def test_block_wins_over_alert_when_both_lines_are_crossed() -> None:
    # 10 % is below both the alert and the block line; 90 % above both: the block line is named
    assert threshold_verdict(LOW, 10.0) == ("blocked", "below the block line 50%")
    assert threshold_verdict(HIGH, 90.0) == ("blocked", "above the block line 50%")


def test_a_single_line_gate() -> None:
    block_only = GameCoverageGate(kind="game_coverage_pct", block_below=80.0)
    alert_only = GameCoverageGate(kind="game_coverage_pct", alert_below=80.0)
    assert threshold_verdict(block_only, 79.0) == ("blocked", "below the block line 80%")
    assert threshold_verdict(block_only, 1.0)[0] == "blocked"
    assert threshold_verdict(alert_only, 1.0) == ("alert", "below the alert line 80%")
    assert threshold_verdict(alert_only, 80.0) == ("pass", "within thresholds")


@pytest.mark.parametrize("gate", [LOW, HIGH, PHASE4_ROWS, MINUTES, NULL_RATES], ids=lambda g: g.kind)
def test_none_passes_as_nothing_to_measure(gate: Gate) -> None:
    assert threshold_verdict(gate, None) == ("pass", "nothing to measure")


def test_advisory_turns_a_block_into_an_alert() -> None:
    low = LOW.model_copy(update={"advisory": True})
    high = HIGH.model_copy(update={"advisory": True})
    assert threshold_verdict(low, 10.0) == ("alert", "below the block line 50% (advisory: not blocking)")
    assert threshold_verdict(high, 75.0) == ("alert", "above the block line 50% (advisory: not blocking)")
    # an alert stays an alert, a pass a pass
    assert threshold_verdict(low, 60.0) == ("alert", "below the alert line 90%")
    assert threshold_verdict(low, 95.0) == ("pass", "within thresholds")


# ============================================================================ rows_present


def phase4_counts(**zero: bool) -> dict[str, int]:
    """Rows in every phase 4 table, except those named (by short name) with ``=True``."""
    return {t.table: 0 if zero.get(t.table.split(".")[1]) else 1200 for t in PHASE4_ROWS.tables}


def test_packaged_phase4_rows_present_gate() -> None:
    assert PHASE4_ROWS.thresholds() == {"block_below": 60.0, "alert_below": 100.0}
    assert set(PHASE4_ROWS.required) == {PDC, MLFS}
    assert [t.table for t in PHASE4_ROWS.tables] == [MLFS, PDC, PCF, PSZA, TDZA]


def test_rows_present_all_tables_pass() -> None:
    result = rows_present_verdict("phase4_rows_present", PHASE4_ROWS, phase4_counts())
    assert (result.verdict, result.value, result.kind) == ("pass", 100.0, "rows_present")
    assert result.reason == "5/5 tables have rows: 100.0%"
    assert result.details["missing_tables"] == []
    assert result.thresholds == {"block_below": 60.0, "alert_below": 100.0}


def test_rows_present_four_of_five_is_an_alert() -> None:
    result = rows_present_verdict("phase4_rows_present", PHASE4_ROWS, phase4_counts(player_shot_zone_analysis=True))
    assert result.verdict == "alert"
    assert result.value == pytest.approx(80.0)
    assert result.reason == f"4/5 tables have rows (none in {PSZA}): 80.0%, below the alert line 100%"
    assert result.details["missing_tables"] == [PSZA]
    assert result.details["row_counts"] == {MLFS: 1200, PDC: 1200, PCF: 1200, PSZA: 0, TDZA: 1200}


def test_rows_present_two_of_five_blocks() -> None:
    counts = phase4_counts(
        player_composite_factors=True, player_shot_zone_analysis=True, team_defense_zone_analysis=True
    )
    result = rows_present_verdict("phase4_rows_present", PHASE4_ROWS, counts)
    assert result.verdict == "blocked"
    assert result.value == pytest.approx(40.0)
    assert result.details["missing_tables"] == [PCF, PSZA, TDZA]
    assert all(t in result.reason for t in (PCF, PSZA, TDZA))
    assert "below the block line 60%" in result.reason


@pytest.mark.parametrize("required", [PDC, MLFS])
def test_rows_present_required_table_empty_blocks_even_at_four_of_five(required: str) -> None:
    counts = {**phase4_counts(), required: 0}
    result = rows_present_verdict("phase4_rows_present", PHASE4_ROWS, counts)
    assert result.verdict == "blocked"
    assert result.value == pytest.approx(80.0)  # the share is still reported
    assert result.reason == f"4/5 tables have rows (none in {required}); required {required} empty"
    assert result.details["missing_tables"] == [required]


def test_rows_present_required_empty_on_an_advisory_gate_is_an_alert() -> None:
    advisory = PHASE4_ROWS.model_copy(update={"advisory": True})
    result = rows_present_verdict("phase4_rows_present", advisory, {**phase4_counts(), PDC: 0})
    assert result.verdict == "alert"
    assert f"required {PDC} empty" in result.reason


def test_rows_present_a_table_the_query_did_not_return_counts_as_empty() -> None:
    result = rows_present_verdict("phase3_rows_present", PHASE3_ROWS, {PGS: 10, TDGS: 4})
    assert result.verdict == "blocked"  # phase 3: block_below 100, any table without rows blocks
    assert result.value == pytest.approx(40.0)
    assert result.details["row_counts"][UPGC] == 0
    assert len(result.details["missing_tables"]) == 3


def test_rows_present_as_dict_is_json() -> None:
    result = rows_present_verdict("phase4_rows_present", PHASE4_ROWS, phase4_counts(player_shot_zone_analysis=True))
    payload = json.loads(json.dumps(result.as_dict()))
    assert payload["gate"] == "phase4_rows_present" and payload["kind"] == "rows_present"
    assert payload["value"] == 80.0 and payload["verdict"] == "alert"
    assert payload["details"]["missing_tables"] == [PSZA]


# ============================================================================ ratio


def test_packaged_ratio_gates() -> None:
    assert MINUTES.thresholds() == {"block_below": 80.0, "alert_below": 90.0}
    assert FEATURE_STORE.thresholds() == {"block_below": 60.0}


@pytest.mark.parametrize(
    ("numerator", "verdict", "line"),
    [
        (95, "pass", None),
        (90, "pass", None),
        (85, "alert", "below the alert line 90%"),
        (80, "alert", "below the alert line 90%"),
        (79, "blocked", "below the block line 80%"),
        (0, "blocked", "below the block line 80%"),
    ],
)
def test_minutes_coverage(numerator: int, verdict: str, line: str | None) -> None:
    result = ratio_verdict("minutes_coverage", MINUTES, RatioCounts(numerator, 100))
    assert result.verdict == verdict
    assert result.value == pytest.approx(float(numerator))
    assert result.details == {"numerator": numerator, "denominator": 100}
    summary = f"{numerator}/100 rows meet the condition: {numerator:.1f}%"
    assert result.reason == (summary if line is None else f"{summary}, {line}")


def test_ratio_with_an_empty_denominator_passes_with_no_value() -> None:
    result = ratio_verdict("minutes_coverage", MINUTES, RatioCounts(0, 0))
    assert (result.verdict, result.value) == ("pass", None)
    assert result.reason == "0/0 rows meet the condition: nothing to measure"
    assert result.as_dict()["value"] is None


@pytest.mark.parametrize(("numerator", "verdict"), [(59, "blocked"), (60, "pass"), (61, "pass"), (300, "pass")])
def test_feature_store_coverage(numerator: int, verdict: str) -> None:
    result = ratio_verdict("feature_store_coverage", FEATURE_STORE, RatioCounts(numerator, 100))
    assert result.verdict == verdict
    assert result.reason.startswith(f"{numerator}/100 distinct player_lookup meet the condition")


# ============================================================================ null_rate


def null_counts(**nulls: tuple[int, int]) -> list[NullCount]:
    """Every packaged column with 100 rows and no NULLs, except ``<short table>__<column>=(rows, nulls)``."""
    out = []
    for t in NULL_RATES.tables:
        for column in t.columns:
            rows, n = nulls.get(f"{t.table.split('.')[1]}__{column}", (100, 0))
            out.append(NullCount(t.table, column, rows, n))
    return out


def test_packaged_null_rate_gate() -> None:
    assert NULL_RATES.thresholds() == {"block_above": 50.0, "alert_above": 5.0}
    assert sum(len(t.columns) for t in NULL_RATES.tables) == 17


def test_null_rate_clean_passes() -> None:
    result = null_rate_verdict("phase3_null_rates", NULL_RATES, null_counts())
    assert (result.verdict, result.value) == ("pass", 0.0)
    assert len(result.details["null_pct"]) == 17 and set(result.details["null_pct"].values()) == {0.0}


def test_null_rate_the_worst_column_decides() -> None:
    counts = null_counts(player_game_summary__points=(200, 20), team_defense_game_summary__game_id=(30, 18))
    result = null_rate_verdict("phase3_null_rates", NULL_RATES, counts)
    assert result.verdict == "blocked"
    assert result.value == pytest.approx(60.0)
    assert result.reason == (f"worst NULL share {TDGS}.game_id (18/30 rows): 60.0%, above the block line 50%")
    assert result.details["null_pct"][f"{PGS}.points"] == 10.0
    assert result.details["null_pct"][f"{TDGS}.game_id"] == 60.0


@pytest.mark.parametrize(
    ("rows", "nulls", "verdict"),
    [(100, 5, "pass"), (100, 6, "alert"), (100, 50, "alert"), (100, 51, "blocked"), (3, 3, "blocked")],
)
def test_null_rate_lines(rows: int, nulls: int, verdict: str) -> None:
    result = null_rate_verdict(
        "phase3_null_rates", NULL_RATES, null_counts(player_game_summary__team_abbr=(rows, nulls))
    )
    assert result.verdict == verdict
    assert result.value == pytest.approx(100.0 * nulls / rows)


def test_null_rate_skips_tables_without_rows() -> None:
    # an empty table would be 0/0; it is the rows_present gate's business, not a NULL share
    empty = {f"upcoming_team_game_context__{c}": (0, 0) for c in ("team_abbr", "game_id", "opponent_team_abbr")}
    result = null_rate_verdict(
        "phase3_null_rates", NULL_RATES, null_counts(**empty, player_game_summary__points=(100, 7))
    )
    assert result.verdict == "alert"
    assert result.value == pytest.approx(7.0)
    assert not any(k.startswith("nba_analytics.upcoming_team_game_context.") for k in result.details["null_pct"])
    assert len(result.details["null_pct"]) == 14


def test_null_rate_nothing_to_measure_passes() -> None:
    counts = [NullCount(c.table, c.column, 0, 0) for c in null_counts()]
    result = null_rate_verdict("phase3_null_rates", NULL_RATES, counts)
    assert (result.verdict, result.value, result.details["null_pct"]) == ("pass", None, {})
    assert result.reason == "no rows to measure: nothing to measure"


# ============================================================================ health_verdict

STRICT_HEALTH = ServiceHealthGate(kind="service_health", url_env="PREDICTION_COORDINATOR_URL", advisory=False)
URL = "https://coordinator.example/ready"


def test_health_gates_are_advisory_by_default() -> None:
    assert ServiceHealthGate(kind="service_health", url_env="X").advisory is True
    assert all(gate_of(n, ServiceHealthGate).advisory for n in ("coordinator_health", "analytics_service_health"))


@pytest.mark.parametrize("gate", [COORDINATOR, STRICT_HEALTH], ids=["advisory", "strict"])
def test_health_without_url_is_not_checked(gate: ServiceHealthGate) -> None:
    result = health_verdict("coordinator_health", gate, HealthProbeResult(None))
    assert (result.verdict, result.value) == ("pass", None)
    assert result.reason == "PREDICTION_COORDINATOR_URL not set; not checked"


@pytest.mark.parametrize("status", ["ready", "degraded", "READY"])
@pytest.mark.parametrize("gate", [COORDINATOR, STRICT_HEALTH], ids=["advisory", "strict"])
def test_health_healthy(gate: ServiceHealthGate, status: str) -> None:
    result = health_verdict("coordinator_health", gate, HealthProbeResult(URL, 200, status))
    assert (result.verdict, result.value) == ("pass", 100.0)
    assert result.reason == f"{URL} is {status}"
    assert result.details == {"url": URL, "http_status": 200, "status": status}


UNHEALTHY = [
    (HealthProbeResult(URL, 200, "unhealthy"), "status 'unhealthy'"),
    (HealthProbeResult(URL, 200, None), "status None"),  # no "status" in the body
    (HealthProbeResult(URL, 503, None, "answered 503"), "answered 503"),
    (HealthProbeResult(URL, None, None, "URLError: <urlopen error refused>"), "URLError: <urlopen error refused>"),
    (HealthProbeResult(URL, 301, "ready"), "status 'ready'"),  # not a 2xx
]


@pytest.mark.parametrize(("probe", "what"), UNHEALTHY)
def test_health_unhealthy_is_an_alert_for_an_advisory_gate(probe: HealthProbeResult, what: str) -> None:
    result = health_verdict("coordinator_health", COORDINATOR, probe)
    assert (result.verdict, result.value, result.advisory) == ("alert", 0.0, True)
    assert result.reason == f"{URL} not healthy: {what} (advisory: triggering anyway)"


@pytest.mark.parametrize(("probe", "what"), UNHEALTHY)
def test_health_unhealthy_blocks_a_non_advisory_gate(probe: HealthProbeResult, what: str) -> None:
    result = health_verdict("coordinator_health", STRICT_HEALTH, probe)
    assert (result.verdict, result.value, result.advisory) == ("blocked", 0.0, False)
    assert result.reason == f"{URL} not healthy: {what}"


# ============================================================================ predicate_sql

BINARY = {"eq": "=", "ne": "!=", "gt": ">", "ge": ">=", "lt": "<", "le": "<="}
UNARY = {"is_null": "IS NULL", "not_null": "IS NOT NULL", "is_true": "IS TRUE", "is_false": "IS FALSE"}


@pytest.mark.parametrize(("op", "sql"), sorted(BINARY.items()))
def test_predicate_binary_ops(op: str, sql: str) -> None:
    predicate = Predicate.model_validate({"column": "minutes_played", "op": op, "value": 7})
    assert predicate_sql([predicate]) == (f"(minutes_played {sql} @v0)", [("v0", "INT64", 7)])


@pytest.mark.parametrize(("op", "sql"), sorted(UNARY.items()))
def test_predicate_unary_ops(op: str, sql: str) -> None:
    predicate = Predicate.model_validate({"column": "is_starter", "op": op})
    assert predicate_sql([predicate]) == (f"(is_starter {sql})", [])


def test_predicate_coalesce_with_and_without_default() -> None:
    with_default = Predicate(coalesce=("required_default_count", "default_feature_count"), default=0, op="eq", value=0)
    assert predicate_sql([with_default]) == (
        "(COALESCE(required_default_count, default_feature_count, @d0) = @v0)",
        [("d0", "INT64", 0), ("v0", "INT64", 0)],
    )
    without = Predicate(coalesce=("a", "b"), op="is_null")
    assert predicate_sql([without]) == ("(COALESCE(a, b) IS NULL)", [])
    falsy_default = Predicate(coalesce=("flag",), default=False, op="is_true")  # False is a default, not "none"
    assert predicate_sql([falsy_default]) == ("(COALESCE(flag, @d0) IS TRUE)", [("d0", "BOOL", False)])


def test_predicates_are_anded_and_numbered_by_position() -> None:
    predicates = [
        Predicate(column="a", op="gt", value=1),
        Predicate(column="b", op="not_null"),
        Predicate(coalesce=("c", "d"), default="x", op="ne", value="y"),
    ]
    assert predicate_sql(predicates) == (
        "(a > @v0) AND (b IS NOT NULL) AND (COALESCE(c, d, @d2) != @v2)",
        [("v0", "INT64", 1), ("d2", "STRING", "x"), ("v2", "STRING", "y")],
    )


@pytest.mark.parametrize(
    ("value", "kind"),
    [
        (True, "BOOL"),
        (False, "BOOL"),
        (0, "INT64"),
        (-3, "INT64"),
        (1.5, "FLOAT64"),
        (0.0, "FLOAT64"),
        ("0", "STRING"),
        ("true", "STRING"),
    ],
)
def test_predicate_parameter_types(value: Any, kind: str) -> None:
    # bool is an int in Python: it must be typed BOOL, and the model must keep it a bool
    predicate = Predicate(column="c", op="eq", value=value)
    sql, params = predicate_sql([predicate])
    assert sql == "(c = @v0)"
    assert params == [("v0", kind, value)]
    assert type(params[0][2]) is type(value)


def test_predicate_types_survive_the_toml_loader() -> None:
    data = packaged_toml()
    data["gates"]["minutes_coverage"]["where"] = [
        {"column": "a", "op": "eq", "value": True},
        {"column": "b", "op": "ge", "value": 2},
        {"column": "c", "op": "lt", "value": 2.5},
        {"column": "d", "op": "ne", "value": "2"},
    ]
    gate = gate_of("minutes_coverage", RatioGate, parse_definition(data))
    assert [(kind, value) for _, kind, value in predicate_sql(gate.where)[1]] == [
        ("BOOL", True),
        ("INT64", 2),
        ("FLOAT64", 2.5),
        ("STRING", "2"),
    ]


DANGEROUS = ["'", "`", '"', "; DROP TABLE x; --", "\\", "') OR ('1'='1", "@game_date) OR (1=1"]
hostile = st.builds(lambda a, d, b: a + d + b, st.text(max_size=15), st.sampled_from(DANGEROUS), st.text(max_size=15))


@settings(max_examples=200, deadline=None)
@given(value=hostile, default=hostile, op=st.sampled_from(sorted(BINARY)), coalesce=st.booleans())
def test_predicate_values_are_never_sql_text(value: str, default: str, op: str, coalesce: bool) -> None:
    shape: dict[str, Any] = {"coalesce": ["a", "b"], "default": default} if coalesce else {"column": "a"}
    predicate = Predicate.model_validate({**shape, "op": op, "value": value})
    sql, params = predicate_sql([predicate])
    assert value not in sql
    assert default not in sql
    assert ("v0", "STRING", value) in params
    assert (("d0", "STRING", default) in params) == coalesce
    # the SQL text is the same whatever the value: only the parameters carry it
    benign = Predicate.model_validate({**shape, "op": op, "value": "x", **({"default": "y"} if coalesce else {})})
    assert predicate_sql([benign])[0] == sql
    # and so is the whole gate query
    q = queries()
    gate = MINUTES.model_copy(update={"where": (predicate,)})
    assert q.ratio_sql(gate)[0] == q.ratio_sql(MINUTES.model_copy(update={"where": (benign,)}))[0]


# ============================================================================ SQL builders

SQL_KEYWORDS = frozenset(
    "SELECT AS COUNT COUNTIF FROM WHERE AND UNION ALL DISTINCT IS NOT NULL COALESCE CAST STRING TIMESTAMP "
    "CASE MIN WHEN THEN END GROUP BY BOOL DATE DATE_ADD INTERVAL DAY IN".split()
)
SQL_ALIASES = frozenset(
    "table_ref n column_name nulls part kind game_id away home game_status status_text updated_at "
    "chain_position scored on_date note".split()
)
UNAVAILABLE_DATE_COLUMN = "game_date"  # the package's own game_unavailable table (phasectl mark-unavailable)
# ... and its other columns the marks branch reads (deploy/bigquery/game_unavailable.json); `kind` is also an alias
UNAVAILABLE_COLUMNS = frozenset({UNAVAILABLE_DATE_COLUMN, "reason", "kind"})
BACKTICKED = re.compile(r"`([^`]*)`")
LITERAL = re.compile(r"'([^']*)'")
PARAM = re.compile(r"@([A-Za-z_][A-Za-z0-9_]*)")
WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def queries(definition: PipelineDefinition = D) -> BigQueryGateQueries:
    """SQL builders only: the client factory is never called."""
    return BigQueryGateQueries(lambda: None, "p", definition.games)  # type: ignore[arg-type,return-value]


def renamed_toml() -> dict[str, Any]:
    """The packaged definition with every gate and [games] column renamed to a unique name, so
    SQL that hard-codes a column (or uses one table's date column for another) shows."""
    data = packaged_toml()
    for name, gate in data["gates"].items():
        for i, t in enumerate(gate.get("tables", [])):
            t["date_column"] = f"dt_{name}_{i}"
            if "columns" in t:
                t["columns"] = [f"col_{c}" for c in t["columns"]]
        for part in ("table", "denominator"):
            if part in gate:
                gate[part]["date_column"] = f"dt_{name}_{part}"
        for k in ("key", "denominator_key"):
            if k in gate:
                gate[k] = f"{k}_{gate[k]}"
        for p in gate.get("where", []):
            if "column" in p:
                p["column"] = f"col_{p['column']}"
            if "coalesce" in p:
                p["coalesce"] = [f"col_{c}" for c in p["coalesce"]]
        for s in gate.get("sources", []):
            s["game_id_column"], s["date_column"] = f"gid_{s['name']}", f"dt_{name}_{s['name']}"
    games = data["games"]
    for k in list(games):
        if k.startswith("schedule_") and k.endswith("_column"):
            games[k] = f"sch_{k}"
    for s in games["boxscore_sources"]:
        s["game_id_column"], s["date_column"] = f"gid_chain_{s['name']}", f"dt_chain_{s['name']}"
    return data


RENAMED = parse_definition(renamed_toml(), "renamed")
DEFINITIONS = {"packaged": D, "renamed": RENAMED}


def gate_sql(q: BigQueryGateQueries, gate: Gate) -> tuple[str, list[tuple[str, str, Any]]]:
    if isinstance(gate, RowsPresentGate):
        return q.rows_present_sql(gate), []
    if isinstance(gate, RatioGate):
        return q.ratio_sql(gate)
    if isinstance(gate, NullRateGate):
        return q.null_rate_sql(gate), []
    assert isinstance(gate, GameCoverageGate)
    return q.coverage_sql(gate), []


def date_columns(q: BigQueryGateQueries, definition: PipelineDefinition, gate: Gate) -> dict[str, str]:
    """table ref → the date column the definition gives it, for every table the gate's SQL reads."""
    if isinstance(gate, GameCoverageGate):
        g = definition.games
        out = {g.schedule_table: g.schedule_date_column, g.unavailable_table: UNAVAILABLE_DATE_COLUMN}
        out.update({s.table: s.date_column for s in q.coverage_sources(gate)})
        return out
    return {t.table: t.date_column for t in gate.read_tables()}


def identifiers(q: BigQueryGateQueries, definition: PipelineDefinition, gate: Gate) -> set[str]:
    """Every column name the definition gives this gate."""
    names = set(date_columns(q, definition, gate).values())
    if isinstance(gate, NullRateGate):
        names |= {c for t in gate.tables for c in t.columns}
    if isinstance(gate, RatioGate):
        names |= {k for k in (gate.key, gate.denominator_key) if k}
        names |= {c for p in gate.where for c in (*p.coalesce, *((p.column,) if p.column else ()))}
    if isinstance(gate, GameCoverageGate):
        g = definition.games
        names |= {v for k, v in g.model_dump().items() if k.startswith("schedule_") and k.endswith("_column") and v}
        names |= {s.game_id_column for s in q.coverage_sources(gate)}
    return names


def literals(q: BigQueryGateQueries, gate: Gate) -> set[str]:
    """The string labels a gate's SQL may carry (table refs, column names, branch names)."""
    out = {"numerator", "denominator", "schedule", "later", "unavailable"}  # later: the same ids on later dates
    out |= {t.table for t in gate.read_tables()}
    if isinstance(gate, NullRateGate):
        out |= {c for t in gate.tables for c in t.columns}
    if isinstance(gate, GameCoverageGate):
        out |= {f"source:{s.name}" for s in q.coverage_sources(gate)}
    return out


QUERY_GATES = sorted(n for n, g in D.gates.items() if not isinstance(g, ServiceHealthGate))


def test_every_query_gate_is_covered() -> None:
    assert QUERY_GATES == sorted(
        [
            "game_coverage",
            "phase3_rows_present",
            "analytics_game_coverage",
            "minutes_coverage",
            "phase3_null_rates",
            "phase3_context_rows_present",
            "phase4_rows_present",
            "feature_store_coverage",
        ]
    )


@pytest.mark.parametrize("which", sorted(DEFINITIONS))
@pytest.mark.parametrize("name", QUERY_GATES)
def test_every_branch_filters_on_its_own_tables_date_column(name: str, which: str) -> None:
    definition = DEFINITIONS[which]
    q = queries(definition)
    gate = definition.gates[name]
    sql, _ = gate_sql(q, gate)
    expected = date_columns(q, definition, gate)
    seen = set()
    for branch in sql.split("\nUNION ALL\n"):
        refs = BACKTICKED.findall(branch)
        # one table per branch; the coverage gate's fallback chain is one branch reading every source
        assert len(refs) == 1 or isinstance(gate, GameCoverageGate), branch
        if branch.startswith("(SELECT 'later'"):  # the same game ids on the next days: a bounded date range
            table = refs[0].partition(".")[2]
            column = expected[table]
            assert f"`{refs[0]}` WHERE {column} > @game_date AND {column} <= DATE_ADD(@game_date, INTERVAL" in branch
            assert f"`{refs[1]}` WHERE {column} = @game_date" in branch, branch
            continue
        assert branch.count("@game_date") == len(refs)
        for ref in refs:
            project, _, table = ref.partition(".")
            assert project == "p" and table in expected, branch
            assert f"`{ref}` WHERE {expected[table]} = @game_date" in branch, branch  # each read, its own filter
            seen.add(table)
    assert seen == set(expected)


@pytest.mark.parametrize("which", sorted(DEFINITIONS))
@pytest.mark.parametrize("name", QUERY_GATES)
def test_sql_names_only_identifiers_from_the_definition(name: str, which: str) -> None:
    definition = DEFINITIONS[which]
    q = queries(definition)
    gate = definition.gates[name]
    sql, params = gate_sql(q, gate)
    tables = set(date_columns(q, definition, gate))
    for ref in BACKTICKED.findall(sql):
        assert re.fullmatch(r"p\.[A-Za-z_][A-Za-z0-9_]*\.[A-Za-z_][A-Za-z0-9_]*", ref), ref
        assert ref.removeprefix("p.") in tables
    assert set(LITERAL.findall(sql)) <= literals(q, gate)
    assert set(PARAM.findall(sql)) == {"game_date"} | {p[0] for p in params}
    rest = PARAM.sub(" ", LITERAL.sub(" ", BACKTICKED.sub(" ", sql)))
    unknown = set(WORD.findall(rest)) - SQL_KEYWORDS - SQL_ALIASES - identifiers(q, definition, gate)
    assert unknown <= UNAVAILABLE_COLUMNS, unknown
    schema = json.loads((Path(__file__).parents[3] / "deploy" / "bigquery" / "game_unavailable.json").read_text())
    assert UNAVAILABLE_COLUMNS <= {f["name"] for f in schema["schema"]}  # columns the table has


def test_renamed_columns_reach_the_sql() -> None:
    """The renamed definition's column names are the ones the SQL reads (not the defaults)."""
    q = queries(RENAMED)
    rows_sql = q.rows_present_sql(gate_of("phase4_rows_present", RowsPresentGate, RENAMED))
    assert [f"dt_phase4_rows_present_{i} = @game_date" in rows_sql for i in range(5)] == [True] * 5
    assert "game_date =" not in rows_sql
    null_sql = q.null_rate_sql(gate_of("phase3_null_rates", NullRateGate, RENAMED))
    assert "COUNTIF(col_points IS NULL)" in null_sql and "COUNTIF(points" not in null_sql
    ratio_sql, _ = q.ratio_sql(gate_of("feature_store_coverage", RatioGate, RENAMED))
    assert "COUNT(DISTINCT key_player_lookup)" in ratio_sql
    assert "COUNT(DISTINCT denominator_key_player_lookup)" in ratio_sql
    assert "COALESCE(col_required_default_count, col_default_feature_count, @d0)" in ratio_sql


def test_phase4_tables_use_their_own_date_columns() -> None:
    sql = queries().rows_present_sql(PHASE4_ROWS)
    branches = sql.split("\nUNION ALL\n")
    assert branches == [
        f"(SELECT '{table}' AS table_ref, COUNT(*) AS n FROM `p.{table}` WHERE {column} = @game_date)"
        for table, column in [
            (MLFS, "game_date"),
            (PDC, "cache_date"),
            (PCF, "game_date"),
            (PSZA, "analysis_date"),
            (TDZA, "analysis_date"),
        ]
    ]


def test_null_rate_sql_one_branch_per_column() -> None:
    sql = queries().null_rate_sql(NULL_RATES)
    branches = sql.split("\nUNION ALL\n")
    assert len(branches) == 17
    assert branches[4] == (
        f"(SELECT '{PGS}' AS table_ref, 'points' AS column_name, COUNT(*) AS n, "
        f"COUNTIF(points IS NULL) AS nulls FROM `p.{PGS}` WHERE game_date = @game_date)"
    )


def test_ratio_sql_without_denominator_counts_rows_of_the_same_table() -> None:
    sql, params = queries().ratio_sql(MINUTES)
    assert sql == (
        f"(SELECT 'numerator' AS part, n FROM (SELECT COUNT(*) AS n FROM `p.{PGS}` "
        "WHERE game_date = @game_date AND (minutes_played > @v0)))\nUNION ALL\n"
        f"(SELECT 'denominator' AS part, n FROM (SELECT COUNT(*) AS n FROM `p.{PGS}` WHERE game_date = @game_date))"
    )
    assert params == [("v0", "INT64", 0)]


def test_ratio_sql_with_denominator_counts_distinct_keys_of_the_other_table() -> None:
    sql, params = queries().ratio_sql(FEATURE_STORE)
    numerator, denominator = sql.split("\nUNION ALL\n")
    assert numerator == (
        f"(SELECT 'numerator' AS part, n FROM (SELECT COUNT(DISTINCT player_lookup) AS n FROM `p.{MLFS}` "
        "WHERE game_date = @game_date AND (COALESCE(required_default_count, default_feature_count, @d0) = @v0)))"
    )
    assert denominator == (
        f"(SELECT 'denominator' AS part, n FROM (SELECT COUNT(DISTINCT player_lookup) AS n FROM `p.{UPGC}` "
        "WHERE game_date = @game_date))"
    )
    assert params == [("d0", "INT64", 0), ("v0", "INT64", 0)]


def ratio_gate(**fields: Any) -> RatioGate:
    base: dict[str, Any] = {
        "kind": "ratio",
        "block_below": 50.0,
        "table": {"table": "ds.facts", "date_column": "fact_date"},
        "where": [{"column": "ok", "op": "is_true"}],
    }
    return RatioGate.model_validate({**base, **fields})


def test_ratio_sql_key_gives_count_distinct_on_both_sides() -> None:
    sql, params = queries().ratio_sql(ratio_gate(key="player"))
    numerator, denominator = sql.split("\nUNION ALL\n")
    assert "COUNT(DISTINCT player) AS n FROM `p.ds.facts` WHERE fact_date = @game_date AND (ok IS TRUE)" in numerator
    assert "COUNT(DISTINCT player) AS n FROM `p.ds.facts` WHERE fact_date = @game_date)" in denominator
    assert "COUNT(*)" not in sql and params == []


def test_ratio_sql_denominator_key_and_date_column() -> None:
    gate = ratio_gate(
        key="player", denominator={"table": "ds.roster", "date_column": "roster_date"}, denominator_key="pid"
    )
    numerator, denominator = queries().ratio_sql(gate)[0].split("\nUNION ALL\n")
    assert "COUNT(DISTINCT player) AS n FROM `p.ds.facts` WHERE fact_date = @game_date AND (ok IS TRUE)" in numerator
    assert "COUNT(DISTINCT pid) AS n FROM `p.ds.roster` WHERE roster_date = @game_date)" in denominator
    # without denominator_key the denominator counts the gate's key
    keyed = ratio_gate(key="player", denominator={"table": "ds.roster", "date_column": "roster_date"})
    assert "COUNT(DISTINCT player) AS n FROM `p.ds.roster`" in queries().ratio_sql(keyed)[0]


# ============================================================================ definition validation


def rejected(data: dict[str, Any]) -> str:
    with pytest.raises(DefinitionError) as info:
        parse_definition(data, "test.toml")
    return str(info.value)


def test_the_packaged_definition_is_valid() -> None:
    assert parse_definition(packaged_toml()).gates.keys() == D.gates.keys()


def test_a_denominator_key_without_a_key_or_a_denominator_is_rejected() -> None:
    data = packaged_toml()
    del data["gates"]["feature_store_coverage"]["key"]
    assert "denominator_key needs `key`" in rejected(data)
    data = packaged_toml()
    del data["gates"]["feature_store_coverage"]["denominator"]
    assert "denominator_key needs a `denominator` table" in rejected(data)


def test_a_predicate_default_without_coalesce_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["minutes_coverage"]["where"][0]["default"] = 0
    assert "`default` is the last COALESCE argument" in rejected(data)


def test_null_rate_with_block_below_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["phase3_null_rates"]["block_below"] = 10.0
    message = rejected(data)
    assert "gates.phase3_null_rates" in message and "takes block_above/alert_above" in message


def test_null_rate_without_any_line_is_rejected() -> None:
    data = packaged_toml()
    del data["gates"]["phase3_null_rates"]["block_above"], data["gates"]["phase3_null_rates"]["alert_above"]
    assert "give block_above and/or alert_above" in rejected(data)


def test_rows_present_with_block_above_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["phase4_rows_present"]["block_above"] = 10.0
    message = rejected(data)
    assert "gates.phase4_rows_present" in message and "takes block_below/alert_below" in message


def test_alert_below_under_block_below_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["minutes_coverage"]["alert_below"] = 70.0  # block_below is 80
    assert "alert_below must be ≥ block_below" in rejected(data)


def test_alert_above_over_block_above_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["phase3_null_rates"]["alert_above"] = 60.0  # block_above is 50
    assert "alert_above must be ≤ block_above" in rejected(data)


@pytest.mark.parametrize(
    ("predicate", "message"),
    [
        ({"column": "a", "coalesce": ["b"], "op": "eq", "value": 1}, "exactly one of `column` or `coalesce`"),
        ({"op": "eq", "value": 1}, "exactly one of `column` or `coalesce`"),
        ({"column": "a", "op": "is_null", "value": 0}, "op 'is_null' takes no `value`"),
        ({"column": "a", "op": "not_null", "value": False}, "op 'not_null' takes no `value`"),
        ({"column": "a", "op": "gt"}, "op 'gt' needs a `value`"),
        ({"coalesce": ["a"], "default": 0, "op": "eq"}, "op 'eq' needs a `value`"),
        ({"column": "a", "op": "like", "value": "x"}, "gates.minutes_coverage"),
        ({"column": "a; DROP TABLE x", "op": "eq", "value": 1}, "gates.minutes_coverage"),
    ],
)
def test_malformed_predicates_are_rejected(predicate: dict[str, Any], message: str) -> None:
    data = packaged_toml()
    data["gates"]["minutes_coverage"]["where"] = [predicate]
    assert message in rejected(data)


def test_a_gate_mode_that_is_not_a_mode_of_its_transition_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["phase3_rows_present"]["modes"] = ["overnight", "weekend"]
    message = rejected(data)
    assert "gates.phase3_rows_present.modes: ['weekend'] are not modes of phase3_to_phase4" in message
    assert "known: ['overnight', 'same_day', 'tomorrow']" in message


def test_a_mode_limited_gate_on_a_transition_without_modes_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["feature_store_coverage"]["modes"] = ["overnight"]
    message = rejected(data)
    assert "gates.feature_store_coverage.modes: ['overnight'] are not modes of phase4_to_phase5" in message
    assert "known: none" in message


def test_a_required_table_not_among_the_tables_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["phase4_rows_present"]["required"].append("nba_precompute.not_listed")
    assert "required ['nba_precompute.not_listed'] are not among the gate's tables" in rejected(data)


def test_an_unknown_kind_is_rejected() -> None:
    data = packaged_toml()
    data["gates"]["minutes_coverage"]["kind"] = "row_ratio"
    message = rejected(data)
    assert "gates.minutes_coverage" in message and "rows_present" in message  # names the known kinds


def test_an_unknown_gate_of_a_transition_is_rejected() -> None:
    data = packaged_toml()
    data["transitions"][2]["gates"].append("no_such_gate")
    assert "unknown gate 'no_such_gate'" in rejected(data)


def test_gate_tables_lists_the_ten_phase_3_4_5_tables() -> None:
    assert D.gate_tables() == (
        "nba_analytics.player_game_summary",
        "nba_analytics.team_defense_game_summary",
        "nba_analytics.team_offense_game_summary",
        "nba_analytics.upcoming_player_game_context",
        "nba_analytics.upcoming_team_game_context",
        "nba_precompute.player_composite_factors",
        "nba_precompute.player_daily_cache",
        "nba_precompute.player_shot_zone_analysis",
        "nba_precompute.team_defense_zone_analysis",
        "nba_predictions.ml_feature_store_v2",
    )


# ============================================================================ GateRunner

Answer = Callable[[], Any]


def const(value: T) -> Callable[[], T]:
    return lambda: value


def passing_answers(definition: PipelineDefinition) -> dict[str, Answer]:
    """A canned, passing answer for every query gate of ``definition``."""
    out: dict[str, Answer] = {}
    for name, gate in definition.gates.items():
        if isinstance(gate, RowsPresentGate):
            out[name] = const({t.table: 10 for t in gate.tables})
        elif isinstance(gate, RatioGate):
            out[name] = const(RatioCounts(100, 100))
        elif isinstance(gate, NullRateGate):
            out[name] = const([NullCount(t.table, c, 10, 0) for t in gate.tables for c in t.columns])
        elif isinstance(gate, GameCoverageGate):
            out[name] = const(CoverageInputs((), {s.name: () for s in gate.sources}))
    return out


class FakeQueries:
    """Our own query adapter's four methods, answering per gate from canned callables."""

    def __init__(self, answers: Mapping[str, Answer] | None = None, definition: PipelineDefinition = D) -> None:
        self._names = {id(g): n for n, g in definition.gates.items()}
        self._answers = {**passing_answers(definition), **(answers or {})}
        self._lock = threading.Lock()
        self.started: list[str] = []
        self.finished: list[str] = []
        self.deadlines: dict[str, float | None] = {}

    def _answer(self, gate: Gate, deadline: float | None) -> Any:
        name = self._names[id(gate)]
        with self._lock:
            self.started.append(name)
            self.deadlines[name] = deadline
        value = self._answers[name]()
        with self._lock:
            self.finished.append(name)
        return value

    def rows_present(self, gate: RowsPresentGate, game_date: date, deadline: float | None = None) -> dict[str, int]:
        return cast(dict[str, int], self._answer(gate, deadline))

    def ratio(self, gate: RatioGate, game_date: date, deadline: float | None = None) -> RatioCounts:
        return cast(RatioCounts, self._answer(gate, deadline))

    def null_rate(self, gate: NullRateGate, game_date: date, deadline: float | None = None) -> list[NullCount]:
        return cast(list[NullCount], self._answer(gate, deadline))

    def coverage(self, gate: GameCoverageGate | None, game_date: date, deadline: float | None = None) -> CoverageInputs:
        assert gate is not None
        return cast(CoverageInputs, self._answer(gate, deadline))


def runner(
    fake: FakeQueries | None, definition: PipelineDefinition = D, env: Mapping[str, str] | None = None
) -> GateRunner:
    return GateRunner(definition, cast(BigQueryGateQueries, fake), HealthProbe(env or {}))


def raising(exc: BaseException) -> Answer:
    def answer() -> Any:
        raise exc

    return answer


class ApiError(Exception):
    """Shaped like google.api_core's errors: an HTTP ``code`` and ``errors`` with reasons."""

    def __init__(self, message: str, code: int, reasons: tuple[str, ...] = ()) -> None:
        super().__init__(message)
        self.code = code
        self.errors = [{"reason": r, "message": message} for r in reasons]


P3 = D.transition("phase3_to_phase4")
P4 = D.transition("phase4_to_phase5")
P2 = D.transition("phase2_to_phase3")
OVERNIGHT = [
    "phase3_rows_present",
    "analytics_game_coverage",
    "minutes_coverage",
    "phase3_null_rates",
    "analytics_service_health",
    "precompute_service_health",
]
SAME_DAY = ["analytics_service_health", "precompute_service_health", "phase3_context_rows_present"]
P4_GATES = ["phase4_rows_present", "feature_store_coverage", "coordinator_health"]


# ---------------------------------------------------------------------------- modes


def test_overnight_runs_the_overnight_gates_only() -> None:
    fake = FakeQueries()
    results = runner(fake).run(P3, GAME_DATE, mode="overnight", deadline_seconds=30)
    assert [r.gate for r in results] == OVERNIGHT
    assert [r.verdict for r in results] == ["pass"] * 6
    assert sorted(fake.started) == sorted(OVERNIGHT[:4])
    assert "phase3_context_rows_present" not in fake.started
    assert fake.deadlines == dict.fromkeys(OVERNIGHT[:4], 30)  # each query gets the deadline


@pytest.mark.parametrize("mode", ["same_day", "tomorrow"])
def test_same_day_and_tomorrow_run_the_context_gate_and_health_only(mode: str) -> None:
    fake = FakeQueries()
    results = runner(fake).run(P3, GAME_DATE, mode=mode)
    assert [r.gate for r in results] == SAME_DAY
    assert fake.started == ["phase3_context_rows_present"]


def test_gates_for_without_mode_skips_mode_limited_gates() -> None:
    assert [n for n, _ in runner(FakeQueries()).gates_for(P3, None)] == [
        "analytics_service_health",
        "precompute_service_health",
    ]
    assert [n for n, _ in runner(FakeQueries()).gates_for(P4, None)] == P4_GATES


def test_a_transition_without_gates_runs_nothing() -> None:
    fake = FakeQueries()
    assert runner(fake).run(D.transition("phase5_to_phase6"), GAME_DATE) == []
    assert fake.started == []


# ---------------------------------------------------------------------------- concurrency


def test_query_gates_run_concurrently() -> None:
    """Every query waits for all the others: a sequential runner would break the barrier."""
    barrier = threading.Barrier(parties=4, timeout=5)

    def meet(value: Any) -> Answer:
        def answer() -> Any:
            barrier.wait()
            return value

        return answer

    fake = FakeQueries({n: meet(a()) for n, a in passing_answers(D).items() if n in OVERNIGHT})
    results = runner(fake).run(P3, GAME_DATE, mode="overnight", deadline_seconds=30)
    assert [r.verdict for r in results] == ["pass"] * 6
    assert not barrier.broken


def _join_gate_threads() -> None:
    for thread in threading.enumerate():
        if thread.name.startswith("gate"):
            thread.join(5)
            assert not thread.is_alive(), f"{thread.name} leaked"


def test_a_gate_hanging_past_the_deadline_is_transient() -> None:
    release = threading.Event()

    def hang() -> RatioCounts:
        release.wait(30)
        return RatioCounts(1, 1)

    fake = FakeQueries({"feature_store_coverage": hang})
    try:
        with pytest.raises(TransientError, match="'feature_store_coverage' did not finish within the claim's deadline"):
            runner(fake).run(P4, GAME_DATE, deadline_seconds=0.2)
    finally:
        release.set()
        _join_gate_threads()
    assert fake.deadlines["feature_store_coverage"] == 0.2


def test_a_lone_gate_hanging_past_the_deadline_is_transient() -> None:
    release = threading.Event()

    def hang() -> CoverageInputs:
        release.wait(30)
        return CoverageInputs((), {})

    fake = FakeQueries({"game_coverage": hang})
    outcome: list[BaseException | list[GateResult]] = []

    def run() -> None:
        try:
            outcome.append(runner(fake).run(P2, GAME_DATE, deadline_seconds=0.2))
        except BaseException as exc:  # noqa: BLE001 - handed to the test thread
            outcome.append(exc)

    thread = threading.Thread(target=run, daemon=True)
    thread.start()
    try:
        thread.join(0.2 + 5 + 1)  # the multi-gate path gives up after deadline + 5 s
        assert outcome and isinstance(outcome[0], TransientError)
    finally:
        release.set()
        thread.join(5)


def test_results_come_in_definition_order_whatever_the_completion_order() -> None:
    """Each of the first four gates answers only once the next one has finished (the fourth at once), so
    they finish in reverse order whatever the machine's load; the results still come in definition order."""
    order = OVERNIGHT[:4]
    answers = passing_answers(D)

    def after(name: str, successor: str | None) -> Answer:
        def answer() -> Any:
            hang_guard = time.monotonic() + 30  # not a timing assertion: a runner that ran them one by one
            while successor is not None and successor not in fake.finished:
                assert time.monotonic() < hang_guard, f"{successor} never finished: the gates did not run at once"
                time.sleep(0.005)
            if name == "phase3_rows_present":
                time.sleep(0.3)  # at least 0.3 s in this gate: its own duration is measured
            return answers[name]()

        return answer

    fake = FakeQueries({n: after(n, order[i + 1] if i + 1 < len(order) else None) for i, n in enumerate(order)})
    results = runner(fake).run(P3, GAME_DATE, mode="overnight", deadline_seconds=30)
    assert fake.finished == list(reversed(order))  # they did finish out of order
    assert [r.gate for r in results] == OVERNIGHT
    assert all(r.seconds is not None for r in results)
    assert next(r for r in results if r.gate == "phase3_rows_present").seconds >= 0.3  # type: ignore[operator]


# ---------------------------------------------------------------------------- classification

BLOCKING_ROWS = {MLFS: 5, PDC: 5}  # 2/5 phase 4 tables: blocked


def test_a_block_wins_over_another_gates_error() -> None:
    fake = FakeQueries(
        {"phase4_rows_present": const(BLOCKING_ROWS), "feature_store_coverage": raising(RuntimeError("boom"))}
    )
    results = runner(fake).run(P4, GAME_DATE, deadline_seconds=30)
    assert [(r.gate, r.verdict) for r in results] == [
        ("phase4_rows_present", "blocked"),
        ("coordinator_health", "pass"),
    ]


def test_a_block_wins_over_a_configuration_error() -> None:
    fake = FakeQueries(
        {"phase4_rows_present": const(BLOCKING_ROWS), "feature_store_coverage": raising(ApiError("bad", 400))}
    )
    results = runner(fake).run(P4, GAME_DATE, deadline_seconds=30)
    assert [r.gate for r in results] == ["phase4_rows_present", "coordinator_health"]


@pytest.mark.parametrize(
    "error",
    [
        ApiError("Unrecognized name: required_default_count at [1:80]", 400, ("invalidQuery",)),
        ApiError("Not found: Table p:nba_predictions.ml_feature_store_v2", 404, ("notFound",)),
        ApiError("Access Denied: Table p:nba_predictions.ml_feature_store_v2", 403, ("accessDenied",)),
        ApiError("Request had invalid authentication credentials", 401),
    ],
    ids=["400", "404", "403-denied", "401"],
)
def test_a_configuration_error_raises_gate_config_error_naming_the_gate(error: ApiError) -> None:
    fake = FakeQueries({"feature_store_coverage": raising(error)})
    with pytest.raises(GateConfigError) as info:
        runner(fake).run(P4, GAME_DATE, deadline_seconds=30)
    assert info.value.gate == "feature_store_coverage"
    assert "gate 'feature_store_coverage' cannot run as configured: ApiError: " in str(info.value)
    assert info.value.context["transition"] == "phase4_to_phase5"
    assert info.value.context["game_date"] == "2026-01-24"
    assert info.value.__cause__ is error


@pytest.mark.parametrize("reason", ["rateLimitExceeded", "quotaExceeded", "backendError", "userRateLimitExceeded"])
def test_a_403_rate_or_quota_limit_is_transient(reason: str) -> None:
    error = ApiError("Exceeded rate limits", 403, (reason,))
    fake = FakeQueries({"feature_store_coverage": raising(error)})
    with pytest.raises(TransientError, match="gate 'feature_store_coverage' could not be evaluated") as info:
        runner(fake).run(P4, GAME_DATE, deadline_seconds=30)
    assert not isinstance(info.value, GateConfigError)
    assert info.value.__cause__ is error


@pytest.mark.parametrize("error", [RuntimeError("connection reset"), ApiError("backend", 503), ApiError("x", 500)])
def test_other_errors_are_transient(error: Exception) -> None:
    fake = FakeQueries({"phase4_rows_present": raising(error)})
    with pytest.raises(TransientError) as info:
        runner(fake).run(P4, GAME_DATE, deadline_seconds=30)
    assert f"gate 'phase4_rows_present' could not be evaluated: {type(error).__name__}: " in str(info.value)
    assert info.value.__cause__ is error


def test_a_transient_error_of_a_gate_is_raised_as_is() -> None:
    error = TransientError("bigquery busy")
    fake = FakeQueries({"phase4_rows_present": raising(error)})
    with pytest.raises(TransientError) as info:
        runner(fake).run(P4, GAME_DATE, deadline_seconds=30)
    assert info.value is error


def test_a_configuration_error_wins_over_a_transient_one() -> None:
    fake = FakeQueries(
        {"phase4_rows_present": raising(RuntimeError("flaky")), "feature_store_coverage": raising(ApiError("bad", 400))}
    )
    with pytest.raises(GateConfigError) as info:
        runner(fake).run(P4, GAME_DATE, deadline_seconds=30)
    assert info.value.gate == "feature_store_coverage"


def test_an_advisory_gate_that_raises_is_an_alert() -> None:
    data = packaged_toml()
    data["gates"]["feature_store_coverage"]["advisory"] = True
    definition = parse_definition(data)
    error = ApiError("Not found: Table p:nba_predictions.ml_feature_store_v2\n\nLocation: US\nJob ID: abc-123", 404)
    fake = FakeQueries({"feature_store_coverage": raising(error)}, definition)
    results = runner(fake, definition).run(definition.transition("phase4_to_phase5"), GAME_DATE, deadline_seconds=30)
    assert [(r.gate, r.verdict) for r in results] == [
        ("phase4_rows_present", "pass"),
        ("feature_store_coverage", "alert"),
        ("coordinator_health", "pass"),
    ]
    alert = results[1]
    assert alert.advisory and alert.value is None and alert.kind == "ratio"
    # the per-call job id is dropped, so a repeat of the same error compares equal
    assert alert.advisory_error == "ApiError: Not found: Table p:nba_predictions.ml_feature_store_v2"
    assert alert.reason == f"advisory gate could not be evaluated: {alert.advisory_error}"
    assert alert.thresholds == {"block_below": 60.0}


def test_without_a_query_client_a_query_gate_is_transient() -> None:
    with pytest.raises(TransientError, match="no BigQuery client configured"):
        runner(None).run(P4, GAME_DATE, deadline_seconds=30)


def test_without_a_query_client_health_only_gates_still_run() -> None:
    results = runner(None).run(P3, GAME_DATE, mode=None)
    assert [(r.gate, r.verdict) for r in results] == [
        ("analytics_service_health", "pass"),
        ("precompute_service_health", "pass"),
    ]


def test_a_lone_gate_error_is_classified_too() -> None:
    fake = FakeQueries({"game_coverage": raising(ApiError("bad", 400))})
    with pytest.raises(GateConfigError) as info:
        runner(fake).run(P2, GAME_DATE, deadline_seconds=30)
    assert info.value.gate == "game_coverage"


# ============================================================================ HealthProbe (loopback)


class _Handler(BaseHTTPRequestHandler):
    server: _HealthServer

    def do_GET(self) -> None:
        self.server.seen.append((self.path, dict(self.headers)))
        if self.path in self.server.redirects:
            self.send_response(302)
            self.send_header("Location", self.server.redirects[self.path])
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        status, body, delay = self.server.routes.get(self.path, (404, b'{"error": "no route"}', 0.0))
        if delay:
            self.server.release.wait(delay)
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _HealthServer(ThreadingHTTPServer):
    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.routes: dict[str, tuple[int, bytes, float]] = {}
        self.seen: list[tuple[str, dict[str, str]]] = []
        self.redirects: dict[str, str] = {}  # path → Location of a 302
        self.release = threading.Event()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"

    def handle_error(self, request: Any, client_address: Any) -> None:
        pass  # the slow route writes to a client that gave up


def _serving() -> Iterator[_HealthServer]:
    server = _HealthServer()
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.release.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def service() -> Iterator[_HealthServer]:
    yield from _serving()


@pytest.fixture
def other_service() -> Iterator[_HealthServer]:
    """A second server, reached as ``localhost`` (another origin than ``127.0.0.1``)."""
    yield from _serving()


def health_gate(**fields: Any) -> ServiceHealthGate:
    return ServiceHealthGate.model_validate({"kind": "service_health", "url_env": "SVC_URL", "auth": "none", **fields})


def probe(server: _HealthServer, gate: ServiceHealthGate, **kw: Any) -> HealthProbeResult:
    return HealthProbe({"SVC_URL": server.url}, **kw).check(gate)


def test_probe_ready(service: _HealthServer) -> None:
    service.routes["/ready"] = (200, b'{"status": "ready", "checks": {}}', 0.0)
    result = probe(service, health_gate())
    assert result == HealthProbeResult(f"{service.url}/ready", 200, "ready", None)
    assert health_verdict("svc", health_gate(), result).verdict == "pass"
    assert service.seen[0][0] == "/ready"
    assert "Authorization" not in service.seen[0][1]


def test_probe_unhealthy_status(service: _HealthServer) -> None:
    service.routes["/ready"] = (200, b'{"status": "unhealthy"}', 0.0)
    result = probe(service, health_gate())
    assert (result.http_status, result.status, result.error) == (200, "unhealthy", None)
    assert health_verdict("svc", health_gate(), result).verdict == "alert"
    assert health_verdict("svc", health_gate(advisory=False), result).verdict == "blocked"


def test_probe_503(service: _HealthServer) -> None:
    service.routes["/ready"] = (503, b'{"status": "ready"}', 0.0)  # the status code decides, not the body
    result = probe(service, health_gate())
    assert (result.http_status, result.status, result.error) == (503, None, "answered 503")
    assert health_verdict("svc", health_gate(advisory=False), result).verdict == "blocked"


@pytest.mark.parametrize("body", [b"<html>ok</html>", b"ready", b"\xff\xfe"])
def test_probe_body_that_is_not_json(service: _HealthServer, body: bytes) -> None:
    service.routes["/ready"] = (200, body, 0.0)
    result = probe(service, health_gate())
    assert (result.http_status, result.status) == (200, None)
    assert result.error == "answered with a body that is not JSON"
    assert health_verdict("svc", health_gate(), result).verdict == "alert"


def test_probe_json_that_is_not_an_object(service: _HealthServer) -> None:
    service.routes["/ready"] = (200, b'["ready"]', 0.0)
    result = probe(service, health_gate())
    assert (result.http_status, result.status, result.error) == (200, None, None)
    assert health_verdict("svc", health_gate(), result).verdict == "alert"


def test_probe_connection_refused() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    # the port is closed now: nothing listens
    result = HealthProbe({"SVC_URL": f"http://127.0.0.1:{port}"}).check(health_gate())
    assert result.url == f"http://127.0.0.1:{port}/ready"
    assert result.http_status is None and result.status is None
    assert result.error is not None and result.error.startswith("URLError") and "refused" in result.error
    assert health_verdict("svc", health_gate(), result).verdict == "alert"


def test_probe_timeout(service: _HealthServer) -> None:
    """The server holds its answer for 10 s: a probe that did not give up after the gate's 0.3 s would
    get the 200 and no error."""
    service.routes["/ready"] = (200, b'{"status": "ready"}', 10.0)  # held until the fixture releases it
    result = probe(service, health_gate(timeout_seconds=0.3))
    assert result.http_status is None
    assert result.error is not None and "timed out" in result.error
    assert health_verdict("svc", health_gate(), result).verdict == "alert"


def test_probe_deadline_shortens_the_timeout(service: _HealthServer) -> None:
    # held 10 s: with the gate's own 30 s timeout the probe would get the 200; the 0.3 s deadline wins
    service.routes["/ready"] = (200, b'{"status": "ready"}', 10.0)
    result = HealthProbe({"SVC_URL": service.url}).check(health_gate(timeout_seconds=30), deadline=0.3)
    assert result.http_status is None
    assert result.error is not None and "timed out" in result.error


def test_probe_id_token(service: _HealthServer) -> None:
    service.routes["/healthz"] = (200, b'{"status": "degraded"}', 0.0)
    audiences: list[str] = []

    def token(audience: str) -> str:
        audiences.append(audience)
        return "tok"

    gate = health_gate(auth="id_token", path="/healthz")
    result = HealthProbe({"SVC_URL": service.url + "/"}, token=token).check(gate)
    assert result == HealthProbeResult(f"{service.url}/healthz", 200, "degraded", None)
    assert audiences == [service.url]  # the base URL, trailing slash stripped
    path, headers = service.seen[0]
    assert path == "/healthz"
    assert headers["Authorization"] == "Bearer tok"


def test_probe_does_not_send_the_id_token_to_a_redirect_target(
    service: _HealthServer, other_service: _HealthServer
) -> None:
    other_service.routes["/elsewhere"] = (200, b'{"status": "ready"}', 0.0)
    service.redirects["/ready"] = f"http://localhost:{other_service.server_address[1]}/elsewhere"
    result = HealthProbe({"SVC_URL": service.url}, token=lambda audience: "tok").check(health_gate(auth="id_token"))
    assert service.seen[0][1]["Authorization"] == "Bearer tok"  # the service itself gets the token
    assert all("Authorization" not in headers for _, headers in other_service.seen), result


def test_probe_token_failure_is_unhealthy_not_raised(service: _HealthServer) -> None:
    def token(audience: str) -> str:
        raise RuntimeError("no metadata server")

    result = HealthProbe({"SVC_URL": service.url}, token=token).check(health_gate(auth="id_token"))
    assert result.url == f"{service.url}/ready"
    assert result.error == "RuntimeError: no metadata server"
    assert service.seen == []  # no request without a token


def test_probe_url_from_env_with_trailing_slash_stripped(service: _HealthServer) -> None:
    service.routes["/ready"] = (200, b'{"status": "ready"}', 0.0)
    result = HealthProbe({"SVC_URL": service.url + "///"}).check(health_gate())
    assert result.url == f"{service.url}/ready"
    assert service.seen[0][0] == "/ready"
    assert HealthProbe({"OTHER_URL": service.url}).check(health_gate()) == HealthProbeResult(None)
    assert HealthProbe({"SVC_URL": ""}).check(health_gate()) == HealthProbeResult(None)


def test_runner_probes_the_coordinator_from_its_env(service: _HealthServer) -> None:
    service.routes["/ready"] = (503, b"", 0.0)
    env = {"PREDICTION_COORDINATOR_URL": service.url}
    definition = parse_definition(_no_auth(packaged_toml()))
    results = runner(FakeQueries(None, definition), definition, env).run(
        definition.transition("phase4_to_phase5"), GAME_DATE, deadline_seconds=30
    )
    health = results[-1]
    assert (health.gate, health.verdict, health.value) == ("coordinator_health", "alert", 0.0)
    assert health.details["http_status"] == 503
    assert health.reason == f"{service.url}/ready not healthy: answered 503 (advisory: triggering anyway)"
    assert [r.verdict for r in results[:-1]] == ["pass", "pass"]


def _no_auth(data: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(data)
    out["gates"]["coordinator_health"]["auth"] = "none"
    return out
