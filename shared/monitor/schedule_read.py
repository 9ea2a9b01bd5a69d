"""The monitor's schedule read: Final games per date of the grid window, one query, and re-used
while the schedule is quiet.

Cost (issue 25, "what a night costs"): the read is a BigQuery statement billed at its 10 MB minimum
on every pass (144 a day), yet out of season the answer does not change for months. So the query
also counts every scheduled game (any status) of the pass's lookback window and tomorrow; when there
is none, the schedule is *quiet* and the answer is stored (``{heartbeat_collection}/schedule_read``)
and re-used by the passes of the next ``QUIET_REUSE`` (an hour), on the same day. As soon as a game
is scheduled in that window (the season, a night with games, the morning after one) every pass
queries again: nothing that a pass decides on tonight's or last night's games waits for the hour.
A game added to a quiet schedule is seen within the hour, long before it can be Final; an old date
filled in later (a backfilled schedule) reaches the grid within the hour too.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from shared.orchestration.firestore_errors import TRANSIENT_ERRORS
from shared.pipeline.definition import PipelineDefinition
from shared.structured_log import get_logger

if TYPE_CHECKING:
    from google.cloud import bigquery, firestore

_log = get_logger("shared.monitor.schedule_read")
READ_DOC_ID = "schedule_read"
QUIET_REUSE = timedelta(hours=1)


@dataclass(frozen=True)
class ScheduleRead:
    """One answer of the schedule query and what it was asked."""

    final_games: dict[date, int]  # Final games per date of [start, today] with at least one
    window: tuple[date, date, date]  # (start, recent_from, today)
    quiet: bool  # no game at all (any status) scheduled in [recent_from, today + 1]
    as_of: datetime

    def reusable(self, window: tuple[date, date, date], now: datetime) -> bool:
        """A quiet answer to the same question, read less than ``QUIET_REUSE`` ago (and not ahead)."""
        fresh = self.as_of <= now < self.as_of + QUIET_REUSE
        return self.quiet and fresh and self.window == window

    def to_doc(self) -> dict[str, Any]:
        return {
            "final_games": {d.isoformat(): n for d, n in sorted(self.final_games.items())},
            "window": [d.isoformat() for d in self.window],
            "quiet": self.quiet,
            "as_of": self.as_of,
        }

    @classmethod
    def from_doc(cls, doc: dict[str, Any] | None) -> ScheduleRead | None:
        """``None`` for a missing or unreadable document (the pass queries)."""
        if not doc:
            return None
        try:
            games = {date.fromisoformat(d): int(n) for d, n in dict(doc["final_games"]).items()}
            as_of = doc["as_of"]
            if not isinstance(as_of, datetime):
                return None
            start, recent_from, today = (date.fromisoformat(d) for d in doc["window"])
            return cls(games, (start, recent_from, today), bool(doc["quiet"]), as_of)
        except (KeyError, TypeError, ValueError):
            return None


def read_final_games(
    bq: bigquery.Client,
    firestore_client: firestore.Client,
    project: str,
    definition: PipelineDefinition,
    window: tuple[date, date, date],
    now: datetime,
    *,
    save: bool = True,
) -> dict[date, int]:
    """Final games per date of ``[start, today]`` (``window = (start, recent_from, today)``): a quiet
    answer of the last hour, else one query (stored when ``save`` and the schedule is quiet)."""
    ref = firestore_client.collection(definition.monitor.heartbeat_collection).document(READ_DOC_ID)
    snapshot = ref.get()
    stored = ScheduleRead.from_doc(snapshot.to_dict() if snapshot.exists else None)
    if stored is not None and stored.reusable(window, now):
        return dict(stored.final_games)
    answer = query_schedule(bq, project, definition, window, now)
    if save and answer.quiet:
        try:  # a quiet answer to re-use: a failed write only costs the next pass a query
            ref.set(answer.to_doc())
        except TRANSIENT_ERRORS as exc:
            _log.warning("the schedule read could not be stored (the next pass queries): %s", exc)
    return answer.final_games


def query_schedule(
    bq: bigquery.Client, project: str, definition: PipelineDefinition, window: tuple[date, date, date], now: datetime
) -> ScheduleRead:
    """One query: Final games per date of ``[start, today]`` and whether any game (any status) is
    scheduled in ``[recent_from, today + 1]``."""
    from google.cloud import bigquery

    start, recent_from, today = window
    g = definition.games
    game_id = f"CAST({g.schedule_game_id_column} AS STRING)"
    sql = (
        f"SELECT {g.schedule_date_column} AS game_date, "
        f"COUNT(DISTINCT IF(CAST({g.schedule_status_column} AS STRING) = @final, {game_id}, NULL)) AS games, "
        f"COUNT(DISTINCT {game_id}) AS scheduled "
        f"FROM `{project}.{g.schedule_table}` "
        f"WHERE {g.schedule_date_column} BETWEEN @start AND @end GROUP BY 1"
    )
    config = bigquery.QueryJobConfig(
        query_parameters=[
            bigquery.ScalarQueryParameter("start", "DATE", min(start, recent_from)),
            bigquery.ScalarQueryParameter("end", "DATE", today + timedelta(days=1)),
            bigquery.ScalarQueryParameter("final", "STRING", g.final_status),
        ]
    )
    final: dict[date, int] = {}
    quiet = True
    for r in bq.query(sql, job_config=config).result(timeout=60):
        day = r["game_date"]
        if start <= day <= today and int(r["games"] or 0):
            final[day] = int(r["games"])
        if recent_from <= day <= today + timedelta(days=1) and int(r["scheduled"] or 0):
            quiet = False
    return ScheduleRead(final, window, quiet, now)
