"""The grading safety net after the trigger (issue 27, item 4): regrade low coverage, report grading gaps.

Run by the monitor's ``sensors`` check for a sensor with ``[sensors.regrade]`` (the grading sensor),
one BigQuery query per pass: gradable and graded rows per date over the last ``gap_days``
(``GROUP BY`` date, each table filtered on its partition column), as the replaced
``grading_coverage_monitor`` measures them (orchestration/cloud_functions/grading_coverage_monitor/
main.py:140-157 at najicham/nba-stats-scraper@18f6ecfe; no gradable rows count as 100 % when nothing
is graded, :168-172). Then:

* **Regrade** (per date of the monitor's window whose current generation triggered at least
  ``settle_minutes`` ago): graded / gradable below ``below_pct`` (70 %, :68-69) re-opens the date as
  a new generation (``trigger_source = "coverage-monitor-regrade"``, :302) only while it is still in
  the generation that was measured (``TransitionState.reopen(only_from=...)``: two passes cannot
  both regrade), then evaluates it through the sensor's claim → conditions → publish → latch with the
  ``REDO`` slot (every condition a fallback checks, without ``not_done``: the date has graded rows);
  the trigger writes its ``phase_execution_log`` row (status ``regrade``). At most ``max_regrades``
  (2: MAX_REGRADE_ATTEMPTS, :72) per date, counted from the latched triggers of the ``regrade`` slot;
  after that a ``grading_coverage_low`` finding (ERROR, :579-600: "manual investigation"). A regrade
  still waiting for its conditions is evaluated again each pass (a WARNING meanwhile).
* **Gaps** (``grading_gaps``): dates of the last ``gap_days`` (14: bin/monitoring/grading_gap_detector.py:59,
  grading-gap-detector/main.py:227) past their ``overdue_after`` with Final games and gradable rows but
  not one graded row (the detector's ``missing`` status, grading_gap_detector.py:140-142): one
  ``grading_gap`` finding naming the dates and counts. 2,608 predictions of 2026-01-17..19 stayed
  ungraded for three days because nothing looked
  (docs/08-projects/current/week-0-deployment/INCIDENT-REPORT-JAN-13-19-2026.md:29-41, :134-139).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.clock import Clock, today_et
from shared.monitor.findings import Finding
from shared.pipeline._timed import Regrade
from shared.pipeline.definition import GateValue, TriggerSlot
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from shared.orchestration.timed import TimedTriggerService

_log = get_logger("shared.monitor.grading_net")

# the slot a regrade evaluates: what a fallback checks (all_final does not hold it back; actuals at
# the fallback floors), without `not_done`
REDO = TriggerSlot(name="regrade", cron="0 0 1 1 *", job="coverage-regrade", fallback=True, redo=True)


@dataclass(frozen=True)
class DayCounts:
    gradable: int = 0
    graded: int = 0

    @property
    def pct(self) -> float:
        if not self.gradable:
            return 100.0 if self.graded == 0 else 0.0  # grading_coverage_monitor/main.py:168-172
        return 100.0 * self.graded / self.gradable


def counts_sql(r: Regrade, table: Callable[[str], str]) -> tuple[str, list[tuple[str, str, GateValue]]]:
    """Gradable and graded rows per date of ``[@start, @game_date]``: one query, two branches."""
    from shared.orchestration.timed_actuals import _where

    w1, p1 = _where(r.gradable_where, "ga")
    w2, p2 = _where(r.graded_where, "gd")
    sql = (
        f"(SELECT 'gradable' AS kind, {r.gradable.date_column} AS day, COUNT(*) AS n "
        f"FROM {table(r.gradable.table)} "
        f"WHERE {r.gradable.date_column} BETWEEN @start AND @game_date AND {w1} GROUP BY day)"
        "\nUNION ALL\n"
        f"(SELECT 'graded' AS kind, {r.graded.date_column} AS day, COUNT(*) AS n "
        f"FROM {table(r.graded.table)} "
        f"WHERE {r.graded.date_column} BETWEEN @start AND @game_date AND {w2} GROUP BY day)"
    )
    return sql, [*p1, *p2]


def read_counts(service: TimedTriggerService, r: Regrade, start: date, end: date) -> dict[date, DayCounts]:
    queries = service.queries
    if queries is None:
        raise RuntimeError(f"{service.trigger.name}: no BigQuery client for its coverage check")
    sql, params = counts_sql(r, queries._table)
    raw: dict[date, dict[str, int]] = {}
    for row in queries.rows(sql, end, [("start", "DATE", start.isoformat()), *params]):
        day = row["day"] if isinstance(row["day"], date) else date.fromisoformat(str(row["day"]))
        raw.setdefault(day, {})[str(row["kind"])] = int(row["n"] or 0)
    return {d: DayCounts(v.get("gradable", 0), v.get("graded", 0)) for d, v in raw.items()}


# -- gaps (pure) ----------------------------------------------------------------------------------
def gap_window(service: TimedTriggerService, r: Regrade, now: datetime) -> tuple[date, date]:
    """``[start, end]``: the last ``gap_days``, up to the latest date past its ``overdue_after``
    (without one: the day before yesterday)."""
    from shared.orchestration.timed import overdue_at

    today = now.astimezone(service.tz).date()
    end = today - timedelta(days=1)
    due = overdue_at(service.trigger, end)
    if due is None or now < due:
        end -= timedelta(days=1)
    return today - timedelta(days=r.gap_days), end


def grading_gaps(
    counts: Mapping[date, DayCounts], final_games: Mapping[date, int], start: date, end: date
) -> list[date]:
    """Dates of ``[start, end]`` with Final games and gradable rows but no graded row, oldest first.
    (What a backfill queue can take: re-grade each with the sensor as the target.)"""
    return sorted(
        d
        for d, games in final_games.items()
        if start <= d <= end and games and counts.get(d, DayCounts()).gradable > 0 and counts[d].graded == 0
    )


def gap_finding(name: str, r: Regrade, gaps: list[date], counts: Mapping[date, DayCounts]) -> list[Finding]:
    if not gaps:
        return []
    listed = ", ".join(f"{d} ({counts[d].gradable} gradable)" for d in gaps)
    total = sum(counts[d].gradable for d in gaps)
    return [
        Finding(
            r.gap_finding,
            "ERROR",
            f"{name}: {len(gaps)} date(s) of the last {r.gap_days} days have Final games and {total} gradable "
            f"predictions but no graded row: {listed}; re-grade each (phasectl trigger --transition {name} "
            "--date D --force)",
            name,
            None,
            {"dates": [d.isoformat() for d in gaps], "gradable": {d.isoformat(): counts[d].gradable for d in gaps}},
        )
    ]


# -- regrade ------------------------------------------------------------------------------------------
def regrades_done(state: Any) -> int:
    """How many regrade generations of the date have triggered (their latches name the ``regrade`` slot)."""
    return sum(1 for v in state.triggered.values() if isinstance(v, dict) and v.get("slot") == REDO.name)


def regrade(
    name: str, service: TimedTriggerService, r: Regrade, day: date, counts: DayCounts, now: datetime
) -> list[Finding]:
    """One date's coverage after its trigger: nothing, a regrade (logged), or a finding."""
    state = service.state.load(day)
    done, count = state.triggered_current, regrades_done(state)
    if done is None and state.trigger_source == r.trigger_source:  # a regrade reopened, not triggered yet
        outcome = service.evaluate(day, REDO, owner="regrade")
        if outcome.kind == "triggered":
            return []
        return [
            Finding(
                r.finding,
                "WARNING",
                f"{name} {day}: regrade {count + 1} of {r.max_regrades} not sent yet "
                f"({outcome.kind}: {outcome.detail})",
                name,
                day,
                {"outcome": outcome.kind},
            )
        ]
    at = (done or {}).get("at")
    if done is None or not isinstance(at, datetime) or now - at < timedelta(minutes=r.settle_minutes):
        return []  # not triggered (grading_overdue's business) or still grading
    if counts.pct >= r.below_pct:
        return []
    measured = f"{counts.graded}/{counts.gradable} gradable predictions graded ({counts.pct:.1f} %)"
    if count >= r.max_regrades:
        return [
            Finding(
                r.finding,
                "ERROR",
                f"{name} {day}: {measured}, below {r.below_pct:g} % after {count} regrade(s) (the cap): "
                "look at the actuals (player_game_summary) and the grading function's logs",
                name,
                day,
                {"graded": counts.graded, "gradable": counts.gradable, "regrades": count},
            )
        ]
    why = f"coverage regrade {count + 1} of {r.max_regrades}: {measured}, below {r.below_pct:g} %"
    generation = service.state.reopen(day, now, why, trigger_source=r.trigger_source, only_from=state.generation)
    if not generation:
        return []  # another pass (or an operator) moved the date on
    outcome = service.evaluate(day, REDO, owner="regrade")
    _log.warning(
        "%s %s: %s -> generation %s %s (%s)",
        name,
        day,
        why,
        generation,
        outcome.kind,
        outcome.detail,
        extra={"labels": {"alert": "grading_regrade", "trigger": name}},
    )
    return []


@dataclass(frozen=True)
class NetChecks:
    """One pass's grading net for a sensor: ``date(day)`` (the regrade) per date, ``gaps()`` once."""

    date: Callable[[date], list[Finding]]
    gaps: Callable[[], list[Finding]]


def net_checks(
    name: str, service: TimedTriggerService, window: list[date], final_games: Mapping[date, int], clock: Clock
) -> NetChecks | None:
    """The grading net of a sensor with ``[sensors.regrade]`` (else ``None``). One counts query, read by
    the first check that needs it."""
    r = getattr(service.trigger, "regrade", None)
    if r is None:
        return None
    now = clock.now()
    start, end = gap_window(service, r, now)
    read: dict[str, dict[date, DayCounts]] = {}

    def counts() -> dict[date, DayCounts]:
        if "c" not in read:
            read["c"] = read_counts(service, r, min(start, *window), today_et(clock, service.tz))
        return read["c"]

    def check(day: date) -> list[Finding]:
        return regrade(name, service, r, day, counts().get(day, DayCounts()), now)

    def gaps() -> list[Finding]:
        if not any(n and start <= d <= end for d, n in final_games.items()):
            return []  # no Final games in the window (off season, or the schedule read failed): no query
        return gap_finding(name, r, grading_gaps(counts(), final_games, start, end), counts())

    return NetChecks(check, gaps)
