"""The replaced system's raw tables (schedule, boxscores), for the local cloud, the demo and tests.

Their schemas are the real ones, checked in with provenance under ``deploy/bigquery/upstream/``
(from ``schemas/bigquery/raw/`` at najicham/nba-stats-scraper@18f6ecfe): every column, mode,
partitioning (with ``require_partition_filter``) and clustering. Rows are built from each
file's example row, so every REQUIRED column is filled and game ids come in the format that
table really uses: the numeric NBA id in the schedule, ``YYYYMMDD_AWAY_HOME`` in the BDL and
gamebook tables, and the same with ESPN's own team codes (``20260124_GS_MIN``) in ESPN's.
In production these tables belong to the phase-2 processors; the package never creates them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING, Any

from deploy.spec import TABLE_SPEC_DIR
from shared.game_ids import TEAM_CODE_ALIASES

if TYPE_CHECKING:
    from google.cloud import bigquery

UPSTREAM_DIR = TABLE_SPEC_DIR / "upstream"
_NBA_TO_ESPN = {nba: espn for espn, nba in TEAM_CODE_ALIASES.items()}


@dataclass(frozen=True)
class UpstreamTable:
    """One real table: its schema file's content."""

    name: str  # the table name without dataset, e.g. "nbac_schedule"
    spec: dict[str, Any]

    @property
    def game_id_format(self) -> str:
        return str(self.spec["game_id_format"])

    @property
    def source(self) -> str:
        return str(self.spec["provenance"]["schema"])

    def schema(self) -> list[bigquery.SchemaField]:
        from google.cloud import bigquery

        def field(f: dict[str, Any]) -> bigquery.SchemaField:
            return bigquery.SchemaField(
                f["name"], f["type"], mode=f.get("mode", "NULLABLE"), fields=[field(x) for x in f.get("fields", [])]
            )

        return [field(f) for f in self.spec["schema"]]

    def columns(self) -> list[str]:
        return [str(f["name"]) for f in self.spec["schema"]]

    def game_id(self, nba_id: str, day: date, away: str, home: str) -> str:
        """A game's id in this table's own format."""
        if self.game_id_format == "nba_numeric":
            return nba_id
        if self.game_id_format == "date_teams_espn":
            away, home = _NBA_TO_ESPN.get(away, away), _NBA_TO_ESPN.get(home, home)
        return f"{day:%Y%m%d}_{away}_{home}"

    def row(self, nba_id: str, day: date, away: str, home: str, **overrides: Any) -> dict[str, Any]:
        """A full row for one game (the example row with the game's ids, date and teams)."""
        row = dict(self.spec["example_rows"][0])
        game_id = self.game_id(nba_id, day, away, home)
        espn = self.game_id_format == "date_teams_espn"
        team = (lambda code: _NBA_TO_ESPN.get(code, code)) if espn else (lambda code: code)
        stamp = datetime.now(UTC).isoformat()
        updates: dict[str, Any] = {
            "game_id": game_id,
            "game_date": day.isoformat(),
            "cache_date": day.isoformat(),
            "analysis_date": day.isoformat(),
            "game_code": f"{day:%Y%m%d}/{away}{home}",
            "away_team_tricode": away,
            "home_team_tricode": home,
            "away_team_abbr": team(away),
            "home_team_abbr": team(home),
            "team_abbr": team(home),
            "created_at": stamp,
            "processed_at": stamp,
        }
        if row.get("game_date_est") and row.get("game_date"):
            # the tip-off moves with the date (same time of day after the example's date): a game
            # rescheduled to the 25th tips off on the 25th, not at the example's instant
            example_day = date.fromisoformat(str(row["game_date"])[:10])
            tipoff = datetime.fromisoformat(str(row["game_date_est"]).replace("Z", "+00:00"))
            updates["game_date_est"] = (tipoff + (day - example_day)).isoformat()
        row.update({k: v for k, v in updates.items() if k in row})
        unknown = set(overrides) - set(self.columns())
        if unknown:
            raise KeyError(f"{self.name} has no column(s) {sorted(unknown)} ({self.source})")
        row.update(overrides)
        return row


@cache
def upstream_tables() -> dict[str, UpstreamTable]:
    """Every checked-in real table, by table name."""
    out = {}
    for path in sorted(Path(UPSTREAM_DIR).glob("*.json")):
        spec = json.loads(path.read_text())
        name = str(spec["table"]).split(".")[-1]
        out[name] = UpstreamTable(name, spec)
    return out


def upstream_table(ref: str) -> UpstreamTable:
    """The real table a definition's table reference names (by table name, any dataset)."""
    name = ref.split(".")[-1]
    try:
        return upstream_tables()[name]
    except KeyError:
        known = ", ".join(sorted(upstream_tables()))
        raise KeyError(f"no checked-in schema for table {name!r} under {UPSTREAM_DIR} (known: {known})") from None


def create_upstream_table(client: bigquery.Client, project: str, ref: str) -> str:
    """Create ``ref`` with the real schema of its table (idempotent); its id."""
    from google.cloud import bigquery

    table = upstream_table(ref)
    table_id = f"{project}.{ref}"
    bq_table = bigquery.Table(table_id, schema=table.schema())
    partitioning = table.spec.get("time_partitioning")
    if partitioning:
        bq_table.time_partitioning = bigquery.TimePartitioning(field=partitioning["field"])
        bq_table.require_partition_filter = bool(partitioning.get("require_partition_filter"))
    bq_table.clustering_fields = list(table.spec.get("clustering_fields") or []) or None
    create_table_retrying(client, bq_table)
    return table_id


# local-bigquery's catalog (DuckLake) refuses a table creation that races another commit with a 400
# "Failed to commit DuckLake transaction"; it is a conflict, not a bad request: retried a few times
DUCKLAKE_CONFLICT = "Failed to commit DuckLake transaction"


def create_table_retrying(client: bigquery.Client, table: Any, attempts: int = 4) -> None:
    """``create_table(exists_ok=True)``, retried (bounded) on local-bigquery's catalog commit conflict."""
    import time

    from google.api_core import exceptions as gexc

    for attempt in range(attempts):
        try:
            client.create_table(table, exists_ok=True)
            return
        except gexc.BadRequest as exc:
            if DUCKLAKE_CONFLICT not in str(exc) or attempt == attempts - 1:
                raise
            time.sleep(0.2 * 2**attempt)
