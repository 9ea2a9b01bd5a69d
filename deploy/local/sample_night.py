"""The sample night the demo replays and ``phasectl local up`` seeds: 2026-01-24 and a breaker night.

2026-01-24: 7 Final games; GSW@MIN (``0022500644``) is missing from every boxscore source.
2026-01-23: 4 of 7 games missing everywhere, so the circuit breaker blocks the date. ``seed``
loads a night's schedule and boxscores into the BigQuery emulator, each table in its own id
format, as the scrapers would have.
"""

from __future__ import annotations

from datetime import date
from typing import Any

from shared.pipeline.definition import PipelineDefinition

GAME_DATE = date(2026, 1, 24)
BREAKER_DATE = date(2026, 1, 23)
MISSING_GAME = "0022500644"  # GSW@MIN
GAMES = {  # 7 Final games per night: numeric NBA id, away, home
    GAME_DATE: [
        ("0022500644", "GSW", "MIN"),
        ("0022500645", "BOS", "NYK"),
        ("0022500646", "LAL", "DEN"),
        ("0022500647", "MIA", "CHI"),
        ("0022500648", "PHX", "DAL"),
        ("0022500649", "SAC", "POR"),
        ("0022500650", "ATL", "ORL"),
    ],
    BREAKER_DATE: [
        ("0022500630", "UTA", "HOU"),
        ("0022500631", "MEM", "OKC"),
        ("0022500632", "NOP", "SAS"),
        ("0022500633", "CLE", "DET"),
        ("0022500634", "IND", "MIL"),
        ("0022500635", "TOR", "WAS"),
        ("0022500636", "CHA", "BKN"),
    ],
}
BREAKER_COVERED = 3  # games with a boxscore on the breaker night (4 of 7 missing: 57 % > 50 %)


def seed(project: str, definition: PipelineDefinition, day: date) -> None:
    """The night's schedule and boxscores into the BigQuery emulator (what the scrapers would have loaded)."""
    from deploy.local.raw_tables import upstream_table
    from shared.gcp_bigquery import bigquery_client

    bq, games = bigquery_client(project), definition.games
    tables = {s.name: s.table for s in games.boxscore_sources}
    rows: dict[str, list[dict[str, Any]]] = {games.schedule_table: [], **{t: [] for t in tables.values()}}
    night = GAMES[day]
    covered = [g for g in night if g[0] != MISSING_GAME] if day == GAME_DATE else night[:BREAKER_COVERED]
    schedule = upstream_table(games.schedule_table)
    for nba, away, home in night:  # the real schedule: numeric NBA ids, game_status 3 = Final
        rows[games.schedule_table].append(schedule.row(nba, day, away, home, game_status=3, game_status_text="Final"))
    for table in tables.values():  # each boxscore table in its own id format (ESPN: its own team codes)
        source = upstream_table(table)
        rows[table] += [source.row(nba, day, away, home) for nba, away, home in covered]
    for table, batch in rows.items():
        errors = bq.insert_rows_json(f"{project}.{table}", batch)
        if errors:
            raise RuntimeError(f"seeding {table} failed: {errors[:3]}")
