"""Rows the phase 3 and 4 processors write, for the local cloud, the demo and tests.

The 3→4 and 4→5 gates read the processors' output tables (``[gates.*]``), so a stand-in
processor that reports success must also have written its rows, as the real one does. Rows are
built from the real schemas (``deploy/bigquery/upstream/``, via ``raw_tables``): player tables
get ``players_per_game`` rows per game, team tables one row per team. ``dnp_share`` of the
player rows get ``minutes_played = 0`` (did not play: the minutes-coverage gate counts them as
without minutes, phase3_to_phase4/main.py:563-566).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from deploy.local.raw_tables import upstream_table

if TYPE_CHECKING:
    from google.cloud import bigquery

Game = tuple[str, str, str]  # numeric NBA id, away, home


def player_lookup(team: str, i: int) -> str:
    return f"{team.lower()}player{i:02d}"


def output_rows(
    ref: str, game_date: date, games: Sequence[Game], *, players_per_game: int = 10, dnp_share: float = 0.0
) -> list[dict[str, Any]]:
    """Rows of table ``ref`` (any dataset; its real schema by table name) for ``games``."""
    table = upstream_table(ref)
    columns = set(table.columns())
    rows: list[dict[str, Any]] = []
    if "player_lookup" in columns:
        total = len(games) * players_per_game
        dnp = round(total * dnp_share)
        for g, (nba, away, home) in enumerate(games):
            for i in range(players_per_game):
                team, opponent = (home, away) if i % 2 == 0 else (away, home)
                n = g * players_per_game + i
                values = {
                    "player_lookup": player_lookup(team, i // 2),
                    "team_abbr": team,
                    "opponent_team_abbr": opponent,
                    "minutes_played": 0 if n < dnp else 24 + i,
                    "required_default_count": 0,
                    "default_feature_count": 0,
                    "is_quality_ready": True,
                }
                rows.append(table.row(nba, game_date, away, home, **{k: v for k, v in values.items() if k in columns}))
        return rows
    for nba, away, home in games:
        for team, opponent in ((home, away), (away, home)):
            values = {"team_abbr": team, "defending_team_abbr": team, "opponent_team_abbr": opponent}
            rows.append(table.row(nba, game_date, away, home, **{k: v for k, v in values.items() if k in columns}))
    return rows


def write_outputs(
    client: bigquery.Client,
    project: str,
    refs: Sequence[str],
    game_date: date,
    games: Sequence[Game],
    *,
    players_per_game: int = 10,
    dnp_share: float = 0.0,
) -> int:
    """Insert the rows of every table in ``refs``; the number of rows written."""
    written = 0
    for ref in refs:
        rows = output_rows(ref, game_date, games, players_per_game=players_per_game, dnp_share=dnp_share)
        if not rows:
            continue
        errors = client.insert_rows_json(f"{project}.{ref}", rows)
        if errors:
            raise RuntimeError(f"writing {ref} failed: {errors[:3]}")
        written += len(rows)
    return written
