"""The reads behind the SLO history (``shared.monitor.slo``): two queries for any number of nights.

- ``phase_execution_log``: the trigger rows of the SLO transitions, ``game_date BETWEEN @start AND
  @end`` (the partition column: one bounded scan, never one query per date);
- the schedule (``[games] schedule_table``): games and the first tip-off (``[slo] tipoff_column``)
  per date of ``[start, end + max day]`` (a tip-off SLO looks at the day after the game date).
"""

from __future__ import annotations

from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.monitor.slo import TRIGGER_STATUSES, TransitionHistory, build_history
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


def schedule_sql(project: str, definition: PipelineDefinition) -> str:
    g = definition.games
    return (
        f"SELECT {g.schedule_date_column} AS game_date, COUNT(DISTINCT CAST({g.schedule_game_id_column} AS STRING)) "
        f"AS games, MIN({definition.slo.tipoff_column}) AS first_tipoff FROM `{project}.{g.schedule_table}` "
        f"WHERE {g.schedule_date_column} BETWEEN @start AND @end GROUP BY 1"
    )


def _run(bq: bigquery.Client, sql: str, params: list[Any], timeout: float, retry: Any = None) -> list[dict[str, Any]]:
    from google.cloud import bigquery as bqmod

    config = bqmod.QueryJobConfig(query_parameters=params)
    kwargs: dict[str, Any] = {"timeout": timeout}
    if retry is not None:
        kwargs["retry"] = retry
    job = bq.query(sql, job_config=config, **kwargs)
    return [dict(r.items()) for r in job.result(**kwargs)]


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
    return _run(bq, log_sql(project, definition), params, timeout, retry)


def read_schedule(
    bq: bigquery.Client,
    project: str,
    definition: PipelineDefinition,
    start: date,
    end: date,
    *,
    timeout: float = 60.0,
    retry: Any = None,
) -> tuple[dict[date, int], dict[date, datetime]]:
    """Games and the first tip-off per date of ``[start, end]``: one query."""
    from google.cloud import bigquery as bqmod

    params = [bqmod.ScalarQueryParameter("start", "DATE", start), bqmod.ScalarQueryParameter("end", "DATE", end)]
    games: dict[date, int] = {}
    tipoffs: dict[date, datetime] = {}
    for row in _run(bq, schedule_sql(project, definition), params, timeout, retry):
        day = row["game_date"]
        games[day] = int(row["games"] or 0)
        if isinstance(row.get("first_tipoff"), datetime):
            tipoffs[day] = row["first_tipoff"]
    return games, tipoffs


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
