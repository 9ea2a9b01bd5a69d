"""The schedule read behind the SLOs: games and the first tip-off (``[slo] tipoff_column``) per date,
one query over a date range of ``[games] schedule_table`` (its partition column). The monitor's
``slo_breach`` check uses it for a tip-off SLO; ``shared.monitor.slo_log`` adds the log's rows for
``phasectl slo`` and the page (a module of its own: no function reads ``phase_execution_log``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import TYPE_CHECKING, Any

from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    from google.cloud import bigquery


def schedule_sql(project: str, definition: PipelineDefinition) -> str:
    g = definition.games
    return (
        f"SELECT {g.schedule_date_column} AS game_date, COUNT(DISTINCT CAST({g.schedule_game_id_column} AS STRING)) "
        f"AS games, MIN({definition.slo.tipoff_column}) AS first_tipoff FROM `{project}.{g.schedule_table}` "
        f"WHERE {g.schedule_date_column} BETWEEN @start AND @end GROUP BY 1"
    )


def run_query(
    bq: bigquery.Client, sql: str, params: list[Any], timeout: float, retry: Any = None
) -> list[dict[str, Any]]:
    from google.cloud import bigquery as bqmod

    config = bqmod.QueryJobConfig(query_parameters=params)
    kwargs: dict[str, Any] = {"timeout": timeout}
    if retry is not None:
        kwargs["retry"] = retry
    job = bq.query(sql, job_config=config, **kwargs)
    return [dict(r.items()) for r in job.result(**kwargs)]


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
    for row in run_query(bq, schedule_sql(project, definition), params, timeout, retry):
        day = row["game_date"]
        games[day] = int(row["games"] or 0)
        if isinstance(row.get("first_tipoff"), datetime):
            tipoffs[day] = row["first_tipoff"]
    return games, tipoffs
