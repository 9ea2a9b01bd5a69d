"""The pure retry policy: backoff schedule, client-error table, DML conflict classes (L10, L11)."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest
from google.api_core import exceptions as gexc
from hypothesis import given
from hypothesis import strategies as st

from shared.pipeline.definition import RetryPolicy, load_definition
from shared.retry.policy import backoff_delay, classify_conflict, is_client_error

POLICY = RetryPolicy()  # the defaults: 15 min · 2ⁿ ± 10 %


def minutes(delta: timedelta) -> float:
    return delta.total_seconds() / 60


def test_the_shipped_definition_uses_the_documented_schedule() -> None:
    retry = load_definition().retry
    assert (retry.base_delay_minutes, retry.multiplier, retry.jitter_fraction) == (15, 2.0, 0.1)
    assert retry.max_retries == 3


@pytest.mark.parametrize(("retry_count", "nominal"), [(0, 15.0), (1, 30.0), (2, 60.0), (3, 120.0)])
def test_l10_backoff_schedule_doubles_from_15_minutes(retry_count: int, nominal: float) -> None:
    rng = random.Random(7)
    expected_jitter = nominal * 0.1 * (2.0 * random.Random(7).random() - 1.0)
    delay = minutes(backoff_delay(POLICY, retry_count, rng))
    assert delay == pytest.approx(nominal + expected_jitter)
    assert nominal * 0.9 <= delay <= nominal * 1.1


def test_l10_backoff_is_deterministic_for_a_seed_and_consumes_one_draw() -> None:
    a, b = random.Random(42), random.Random(42)
    assert [backoff_delay(POLICY, n, a) for n in range(4)] == [backoff_delay(POLICY, n, b) for n in range(4)]
    rng = random.Random(42)
    backoff_delay(POLICY, 0, rng)
    reference = random.Random(42)
    reference.random()
    assert rng.random() == reference.random()


def test_l10_backoff_without_jitter_is_exact() -> None:
    policy = RetryPolicy(jitter_fraction=0.0)
    rng = random.Random(1)
    assert [minutes(backoff_delay(policy, n, rng)) for n in range(4)] == [15.0, 30.0, 60.0, 120.0]


def test_l10_backoff_bounds_over_many_seeds() -> None:
    """Every seed stays inside ± 10 %, and the jitter really spreads both ways."""
    for retry_count, nominal in ((0, 15.0), (1, 30.0), (2, 60.0)):
        delays = [minutes(backoff_delay(POLICY, retry_count, random.Random(seed))) for seed in range(2000)]
        assert min(delays) >= nominal * 0.9
        assert max(delays) <= nominal * 1.1
        assert min(delays) < nominal * 0.92 and max(delays) > nominal * 1.08  # jitter is used, both ways
        assert sum(delays) / len(delays) == pytest.approx(nominal, rel=0.01)


@given(
    retry_count=st.integers(min_value=0, max_value=10),
    seed=st.integers(min_value=0, max_value=2**32),
    base=st.floats(min_value=0.5, max_value=120),
    multiplier=st.floats(min_value=1.0, max_value=4.0),
    jitter=st.floats(min_value=0.0, max_value=0.99),
)
def test_l10_backoff_is_bounded_for_any_policy(
    retry_count: int, seed: int, base: float, multiplier: float, jitter: float
) -> None:
    policy = RetryPolicy(base_delay_minutes=base, multiplier=multiplier, jitter_fraction=jitter)
    nominal = base * multiplier**retry_count
    delay = minutes(backoff_delay(policy, retry_count, random.Random(seed)))
    assert delay > 0
    assert nominal * (1 - jitter) - 1e-6 <= delay <= nominal * (1 + jitter) + 1e-6


def test_l10_backoff_grows_monotonically_beyond_the_jitter() -> None:
    """With ± 10 % jitter, attempt n+1 always waits longer than attempt n (twice the nominal)."""
    for seed in range(200):
        rng = random.Random(seed)
        delays = [backoff_delay(POLICY, n, rng) for n in range(5)]
        assert delays == sorted(delays)


@pytest.mark.parametrize(
    ("status", "client_error"),
    [
        (400, True),
        (401, True),
        (403, True),
        (404, True),
        (405, True),
        (409, True),
        (410, True),
        (413, True),
        (422, True),
        (499, True),
        (408, False),  # request timeout: transient
        (425, False),  # too early: transient
        (429, False),  # too many requests: transient
        (500, False),
        (502, False),
        (503, False),
        (504, False),
        (200, False),
        (204, False),
        (302, False),
        (399, False),
        (0, False),
    ],
)
def test_is_client_error_table(status: int, client_error: bool) -> None:
    assert is_client_error(status) is client_error


# Realistic BigQuery error texts, on the real google.api_core exception classes.
CONFLICTS = [
    (
        gexc.BadRequest(
            "UPDATE or DELETE statement over table p.d.t would affect rows in the streaming buffer, "
            "which is not supported"
        ),
        "streaming_buffer",
    ),
    (
        gexc.BadRequest(
            "MERGE statement over table proj.nba_orchestration.failed_processor_queue would affect rows in "
            "the streaming buffer, which is not supported"
        ),
        "streaming_buffer",
    ),
    (gexc.BadRequest("Could not serialize access to table p.d.t due to concurrent update"), "concurrent_dml"),
    (
        gexc.BadRequest("Transaction is aborted due to concurrent update against table p.d.t."),
        "concurrent_dml",
    ),
    (
        gexc.Forbidden("Quota exceeded: Your table exceeded quota for UPDATE, DELETE or MERGE queries per table"),
        "quota_exceeded",
    ),
    (
        gexc.Forbidden("Exceeded rate limits: too many table update operations for this table"),
        "quota_exceeded",
    ),
    (gexc.TooManyRequests("Too many DML statements outstanding against table p.d.t, limit is 20"), "quota_exceeded"),
]

NOT_CONFLICTS = [
    gexc.NotFound("Not found: Table p:d.failed_processor_queue was not found in location US"),
    gexc.BadRequest("Syntax error: Expected end of input but got keyword WHERE at [1:42]"),
    gexc.BadRequest("Query column 3 has type STRING which cannot be inserted into column retry_count"),
    gexc.Forbidden("Access Denied: Table p:d.t: User does not have permission to query table"),
    gexc.InternalServerError("An internal error occurred and the request could not be completed."),
    gexc.ServiceUnavailable("The service is currently unavailable."),
    TimeoutError("timed out"),
]


@pytest.mark.parametrize(("exc", "kind"), CONFLICTS, ids=[k for _, k in CONFLICTS])
def test_classify_conflict_on_real_bigquery_errors(exc: Exception, kind: str) -> None:
    assert classify_conflict(exc) == kind


@pytest.mark.parametrize("exc", NOT_CONFLICTS, ids=[type(e).__name__ for e in NOT_CONFLICTS])
def test_classify_conflict_is_none_for_other_errors(exc: Exception) -> None:
    assert classify_conflict(exc) is None


def test_classify_conflict_is_case_insensitive_and_survives_wrapping() -> None:
    exc = gexc.BadRequest("COULD NOT SERIALIZE ACCESS TO TABLE P.D.T DUE TO CONCURRENT UPDATE")
    assert classify_conflict(exc) == "concurrent_dml"
    wrapped = gexc.BadRequest(
        "400 POST https://bigquery.googleapis.com/bigquery/v2/projects/p/queries: "
        "UPDATE or DELETE statement over table p.d.t would affect rows in the streaming buffer, which is not supported"
    )
    assert classify_conflict(wrapped) == "streaming_buffer"
