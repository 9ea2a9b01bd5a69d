"""The reads behind the SLO history (``shared.monitor.slo``): two queries for any number of nights.

- ``phase_execution_log``: the trigger rows of the SLO transitions, ``game_date BETWEEN @start AND
  @end`` (the partition column: one bounded scan, never one query per date);
- the schedule (``shared.monitor.slo_read``): games and the first tip-off per date of
  ``[start, end + max day]`` (a tip-off SLO looks at the day after the game date).

Read by ``phasectl slo`` and the status page's history section (no function ships this module).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.monitor.slo import TRIGGER_STATUSES, TransitionHistory, build_history
from shared.monitor.slo_read import read_schedule, run_query
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    from google.cloud import bigquery


def log_sql(project: str, definition: PipelineDefinition) -> str:
    s = definition.pipeline
    return (
        "SELECT phase_name, game_date, status, trigger_id, execution_timestamp, duration_seconds "
        f"FROM `{project}.{s.dataset}.{s.phase_execution_log_table}` "
        "WHERE game_date BETWEEN @start AND @end AND phase_name IN UNNEST(@transitions) "
        "AND status IN UNNEST(@statuses) ORDER BY game_date, execution_timestamp"
    )


def read_log_rows(
    bq: bigquery.Client,
    project: str,
    definition: PipelineDefinition,
    start: date,
    end: date,
    *,
    timeout: float = 60.0,
    retry: Any = None,
) -> list[dict[str, Any]]:
    """The trigger rows of the SLO transitions for ``[start, end]``: one query."""
    from google.cloud import bigquery as bqmod

    params = [
        bqmod.ScalarQueryParameter("start", "DATE", start),
        bqmod.ScalarQueryParameter("end", "DATE", end),
        bqmod.ArrayQueryParameter("transitions", "STRING", [t.transition for t in definition.slo.targets]),
        bqmod.ArrayQueryParameter("statuses", "STRING", sorted(TRIGGER_STATUSES)),
    ]
    return run_query(bq, log_sql(project, definition), params, timeout, retry)


def read_history(
    bq: bigquery.Client,
    project: str,
    definition: PipelineDefinition,
    start: date,
    end: date,
    now: datetime,
    *,
    timeout: float = 60.0,
    retry: Any = None,
) -> list[TransitionHistory]:
    """Every SLO transition's nights ``[start, end]`` (``shared.monitor.slo.build_history``)."""
    if not definition.slo.targets:
        return []
    rows = read_log_rows(bq, project, definition, start, end, timeout=timeout, retry=retry)
    ahead = max(t.day for t in definition.slo.targets)
    games, tipoffs = read_schedule(
        bq, project, definition, start, end + timedelta(days=ahead), timeout=timeout, retry=retry
    )
    return build_history(definition, rows, start, end, now, games=games, tipoffs=tipoffs)
