"""Gates run after the claim and before the publish: declarative data checks, one query each.

Kinds (``[gates.*]`` in the definition): ``rows_present`` (each listed table has rows for the
date), ``game_coverage_pct`` (distinct games in a table vs the schedule's Final games, ids
normalised, L15; over the ``[games]`` fallback chain a game is covered when any source has it,
L13), ``ratio`` (share of rows meeting declared predicates), ``null_rate`` (largest NULL share
of listed columns) and ``service_health`` (an ID-token GET; advisory by default).

Each gate yields one value in percent and compares it with its thresholds: below
``block_below`` (above ``block_above``) blocks, below ``alert_below`` (above ``alert_above``)
triggers with a warning. An advisory gate never blocks. The gates of one transition run
concurrently, each one query, under the claim's deadline.

Errors (a gate that could not be evaluated) are transient — raise, Pub/Sub redelivers —
unless the gate is advisory (L17: an alert with the error text) or the error says the gate
cannot run as configured: a 400 (unknown column or table, bad SQL), 401/403 other than a
rate or quota limit, or 404 (dataset or table missing) raises ``GateConfigError``.
Redelivering cannot fix that, and the completion is already recorded, so the transition
acks, alerts and records ``gate_error``; the monitor re-evaluates the date every pass, so it
triggers once the configuration is fixed. A blocking verdict of another gate wins over an
error: the date cannot trigger either way, and the block says why in data terms.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import replace
from datetime import date
from typing import TYPE_CHECKING, Any

from shared.errors import PermanentError, TransientError
from shared.orchestration.coverage import coverage_verdict
from shared.orchestration.gate_result import GateResult, GateVerdict, threshold_verdict
from shared.pipeline.definition import (
    Gate,
    NullRateGate,
    PipelineDefinition,
    RatioGate,
    RowsPresentGate,
    ServiceHealthGate,
    Transition,
)

if TYPE_CHECKING:
    from concurrent.futures import Future

    # the backend is injected (shared.orchestration.runtime): this module stays free of BigQuery,
    # so a gateless transition's bundle ships it without google-cloud-bigquery
    from shared.orchestration.gate_queries import (
        BigQueryGateQueries,
        HealthProbe,
        HealthProbeResult,
        NullCount,
        RatioCounts,
    )


__all__ = [
    "GateConfigError",
    "GateResult",
    "GateRunner",
    "coverage_verdict",
    "health_verdict",
    "null_rate_verdict",
    "ratio_verdict",
    "rows_present_verdict",
    "threshold_verdict",
]


def _pct(part: int, whole: int) -> float | None:
    return None if whole <= 0 else 100.0 * part / whole


def _result(name: str, gate: Gate, value: float | None, summary: str, **extra: Any) -> GateResult:
    verdict, line = threshold_verdict(gate, value)
    shown = f"{summary}: {value:.1f}%" if value is not None else f"{summary}: nothing to measure"
    reason = shown if verdict == "pass" else f"{shown}, {line}"
    return GateResult(name, verdict, reason, gate.kind, value, gate.thresholds(), gate.advisory, **extra)


def rows_present_verdict(name: str, gate: RowsPresentGate, counts: Mapping[str, int]) -> GateResult:
    """R-008 / R-006: the share of listed tables with rows; a required table without rows blocks."""
    tables = [t.table for t in gate.tables]
    present = [t for t in tables if counts.get(t, 0) > 0]
    missing = [t for t in tables if t not in present]
    value = _pct(len(present), len(tables))
    summary = f"{len(present)}/{len(tables)} tables have rows"
    if missing:
        summary += f" (none in {', '.join(missing)})"
    details = {"row_counts": {t: counts.get(t, 0) for t in tables}, "missing_tables": missing}
    result = _result(name, gate, value, summary, details=details)
    required_missing = [t for t in gate.required if t in missing]
    if required_missing and result.verdict != "blocked":
        verdict: GateVerdict = "alert" if gate.advisory else "blocked"
        result = replace(result, verdict=verdict, reason=f"{summary}; required {', '.join(required_missing)} empty")
    return result


def ratio_verdict(name: str, gate: RatioGate, counts: RatioCounts) -> GateResult:
    what = f"distinct {gate.key}" if gate.key else "rows"
    summary = f"{counts.numerator}/{counts.denominator} {what} meet the condition"
    details = {"numerator": counts.numerator, "denominator": counts.denominator}
    return _result(name, gate, _pct(counts.numerator, counts.denominator), summary, details=details)


def null_rate_verdict(name: str, gate: NullRateGate, counts: Iterable[NullCount]) -> GateResult:
    """The worst column's NULL share (tables without rows are the ``rows_present`` gate's)."""
    measured = [c for c in counts if c.rows > 0]
    rates = {f"{c.table}.{c.column}": round(100.0 * c.nulls / c.rows, 2) for c in measured}
    if not measured:
        return _result(name, gate, None, "no rows to measure", details={"null_pct": rates})
    worst = max(measured, key=lambda c: (c.nulls / c.rows, c.table, c.column))
    value = 100.0 * worst.nulls / worst.rows
    summary = (
        f"worst NULL share {worst.table}.{worst.column} ({worst.nulls}/{worst.rows} rows)"
        if worst.nulls
        else f"no NULL in {len(measured)} column(s) of {len({c.table for c in measured})} table(s)"
    )
    return _result(name, gate, value, summary, details={"null_pct": rates})


def health_verdict(name: str, gate: ServiceHealthGate, probe: HealthProbeResult) -> GateResult:
    """Healthy: 2xx with a JSON status in ``healthy_statuses`` (the replaced system counts
    "degraded" as healthy). No URL configured: not checked, passes."""
    details: dict[str, Any] = {"url": probe.url, "http_status": probe.http_status, "status": probe.status}
    if probe.url is None:
        return GateResult(
            name, "pass", f"{gate.url_env} not set; not checked", gate.kind, None, {}, gate.advisory, details
        )
    healthy = (
        probe.error is None
        and probe.http_status is not None
        and 200 <= probe.http_status < 300
        and (probe.status or "").lower() in {s.lower() for s in gate.healthy_statuses}
    )
    if healthy:
        return GateResult(name, "pass", f"{probe.url} is {probe.status}", gate.kind, 100.0, {}, gate.advisory, details)
    what = probe.error or f"status {probe.status!r}"
    verdict: GateVerdict = "alert" if gate.advisory else "blocked"
    note = " (advisory: triggering anyway)" if gate.advisory else ""
    return GateResult(
        name, verdict, f"{probe.url} not healthy: {what}{note}", gate.kind, 0.0, {}, gate.advisory, details
    )


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


def stable_error_text(exc: BaseException) -> str:
    """An error's text without the per-call job id BigQuery appends (so a repeat compares equal)."""
    return _JOB_DEBUG.sub(" ", str(exc)).strip()[:500]


class GateRunner:
    """Runs a transition's gates concurrently (one query each), under a deadline.

    ``queries`` reads BigQuery (``None``: no query gate can run, a transient error); ``health``
    probes services. Results come back in the definition's order.
    """

    def __init__(
        self,
        definition: PipelineDefinition,
        queries: BigQueryGateQueries | None,
        health: HealthProbe | None = None,
        *,
        max_workers: int = 8,
    ) -> None:
        self.definition = definition
        self.queries = queries
        self.health = health
        self.max_workers = max_workers

    def gates_for(self, transition: Transition, mode: str | None) -> list[tuple[str, Gate]]:
        """The gates that apply to this transition in this mode, in definition order."""
        out = []
        for name in transition.gates:
            gate = self.definition.gates[name]
            if gate.applies_to(mode):
                out.append((name, gate))
        return out

    def evaluate(self, name: str, gate: Gate, game_date: date, deadline: float | None = None) -> GateResult:
        """One gate, errors raised as they are (the runner classifies them)."""
        started = time.perf_counter()
        if isinstance(gate, ServiceHealthGate):
            if self.health is None:
                raise TransientError("no health probe configured for the service health gates")
            probe = self.health.check(gate, deadline)
            result = health_verdict(name, gate, probe)
        else:
            if self.queries is None:
                raise TransientError("no BigQuery client configured for the data gates")
            q = self.queries
            if isinstance(gate, RowsPresentGate):
                result = rows_present_verdict(name, gate, q.rows_present(gate, game_date, deadline))
            elif isinstance(gate, RatioGate):
                result = ratio_verdict(name, gate, q.ratio(gate, game_date, deadline))
            elif isinstance(gate, NullRateGate):
                result = null_rate_verdict(name, gate, q.null_rate(gate, game_date, deadline))
            else:
                inputs = q.coverage(gate, game_date, deadline)
                tz = self.definition.pipeline.timezone
                result = coverage_verdict(name, gate, self.definition.games, inputs, timezone=tz)
        return replace(result, seconds=time.perf_counter() - started)

    def run(
        self,
        transition: Transition,
        game_date: date,
        *,
        mode: str | None = None,
        deadline_seconds: float | None = None,
    ) -> list[GateResult]:
        """Every applicable gate's result, or raise (``GateConfigError``, ``TransientError``)."""
        gates = self.gates_for(transition, mode)
        if not gates:
            return []
        outcomes: dict[str, GateResult | BaseException] = {}
        # every gate on a worker, a lone one too: the wait below is what bounds a hanging query
        from concurrent.futures import ThreadPoolExecutor, wait  # the gate path only, not a wait event's

        pool = ThreadPoolExecutor(max_workers=min(self.max_workers, len(gates)), thread_name_prefix="gate")
        futures: dict[Future[GateResult], str] = {
            pool.submit(self.evaluate, name, gate, game_date, deadline_seconds): name for name, gate in gates
        }
        _done, pending = wait(futures, timeout=deadline_seconds)
        pool.shutdown(wait=False, cancel_futures=True)
        for future, name in futures.items():
            if future in pending:
                outcomes[name] = TransientError(f"gate {name!r} did not finish within the claim's deadline")
                continue
            error = future.exception()
            outcomes[name] = error if error is not None else future.result()
        return self._classify(transition, game_date, gates, outcomes)

    def _classify(
        self,
        transition: Transition,
        game_date: date,
        gates: list[tuple[str, Gate]],
        outcomes: Mapping[str, GateResult | BaseException],
    ) -> list[GateResult]:
        results: list[GateResult] = []
        config_error: GateConfigError | None = None
        transient: TransientError | None = None
        for name, gate in gates:
            outcome = outcomes[name]
            if isinstance(outcome, GateResult):
                results.append(outcome)
                continue
            exc = outcome
            text = f"{type(exc).__name__}: {stable_error_text(exc)}"
            if gate.advisory:
                results.append(
                    GateResult(
                        name,
                        "alert",
                        f"advisory gate could not be evaluated: {text}",
                        gate.kind,
                        None,
                        gate.thresholds(),
                        True,
                        advisory_error=text,
                    )
                )
                continue
            if is_configuration_error(exc):
                config_error = config_error or GateConfigError(
                    f"gate {name!r} cannot run as configured: {text}",
                    gate=name,
                    transition=transition.name,
                    game_date=str(game_date),
                )
                config_error.__cause__ = config_error.__cause__ or exc
            elif isinstance(exc, TransientError):
                transient = transient or exc
            else:
                transient = transient or TransientError(
                    f"gate {name!r} could not be evaluated: {type(exc).__name__}: {exc}",
                    transition=transition.name,
                    game_date=str(game_date),
                )
                transient.__cause__ = transient.__cause__ or exc
        if any(r.verdict == "blocked" for r in results):
            return results  # data says no either way; the errors are retried with the re-check
        if config_error is not None:
            raise config_error
        if transient is not None:
            raise transient
        return results


