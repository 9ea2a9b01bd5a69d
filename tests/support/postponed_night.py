"""Seeding the real 2026-01-24 slate (``tests.support.slate``) into a rig's raw tables, with GSW@MIN
postponed or not, for the "a game that was not played is never retried" tests (lesson L29).

The rows are the real tables' (``deploy.local.raw_tables``): the schedule with numeric NBA ids, each
boxscore table in its own id format. A postponed game is as the schedule really showed it: Final
(``game_status`` 3) with NULL scores on 2026-01-24 and the same id again on 2026-01-25 as Scheduled
(POSTPONEMENT-HANDLING-DESIGN.md:11-38 at najicham/nba-stats-scraper@18f6ecfe).
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from typing import Any

from deploy.local.raw_tables import upstream_table
from deploy.local.sample_night import postponed_rows
from shared.gcp_bigquery import bigquery_client
from tests.support.rig import Rig
from tests.support.slate import GSW_MIN, NEXT_DAY, NIGHT, PLAYED, SLATE

Game = tuple[str, str, str]


def seed_night(
    rig: Rig,
    *,
    games: Iterable[Game] = SLATE,
    covered: Iterable[Game] = PLAYED,
    source: str = "bdl",
    postponed: bool = True,
    day: date = NIGHT,
) -> None:
    """``games`` Final on ``day``, ``covered`` in ``source``'s table. With ``postponed``, GSW@MIN has NULL
    scores and is Scheduled again on 2026-01-25; without, it looks played (scores, no later row)."""
    bq, g, project = bigquery_client(rig.cloud.project), rig.definition.games, rig.cloud.project
    schedule = upstream_table(g.schedule_table)
    rows: list[dict[str, Any]] = []
    for nba, away, home in games:
        if postponed and (nba, away, home) == GSW_MIN:
            rows += postponed_rows(nba, day, away, home, NEXT_DAY, g.schedule_table)
        else:
            rows.append(schedule.row(nba, day, away, home, game_status=3, game_status_text="Final"))
    assert bq.insert_rows_json(f"{project}.{g.schedule_table}", rows) == []
    table = next(s.table for s in g.boxscore_sources if s.name == source)
    box = [upstream_table(table).row(nba, day, away, home) for nba, away, home in covered]
    if box:
        assert bq.insert_rows_json(f"{project}.{table}", box) == []


def marks(rig: Rig, day: date = NIGHT) -> list[dict[str, Any]]:
    """The rows of ``[games] unavailable_table`` for ``day`` (the operators' marks), oldest first."""
    table = f"`{rig.cloud.project}.{rig.definition.games.unavailable_table}`"
    job = bigquery_client(rig.cloud.project).query(
        f"SELECT game_id, game_date, reason, kind, marked_by FROM {table} WHERE game_date = '{day}' ORDER BY marked_at"
    )
    return [dict(r) for r in job.result()]
