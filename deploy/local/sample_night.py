"""The sample night the demo replays and ``phasectl local up`` seeds: 2026-01-24 and a breaker night.

2026-01-24, the real slate (najicham/nba-stats-scraper@18f6ecfe): seven games scheduled, six played.
GSW@MIN (``0022500644``) was postponed about two hours before tip-off; the schedule kept it Final
(``game_status`` 3) with NULL scores and listed the same id again on 2026-01-25 as Scheduled, and no
boxscore source ever had it (docs/08-projects/current/postponement-handling/
POSTPONEMENT-HANDLING-DESIGN.md:11-38). The matchups: docs/09-handoff/
2026-01-25-COMPREHENSIVE-SYSTEM-ANALYSIS.md:105-113 (canonical ids) and
2026-01-24-FINAL-RESILIENCE-SESSION-HANDOFF.md:153-161 (away@home; BOS@CHI is ``0022500647``: :48);
the other five NBA ids are illustrative, from the night's range. A postponed game is not a missing
game (lesson L29): the gate counts 6 of 6, nothing is retried.
2026-01-23: 4 of 7 games missing everywhere, so the circuit breaker blocks the date.
2026-01-10 and 2026-01-19 (illustrative games): nights whose phase 3 never ran (the 2→3 trigger
went out, the analytics service never acted on it): self-heal and the backfill queue heal them. ``seed``
loads a night's schedule and boxscores into the BigQuery emulator, each table in its own id
format, as the scrapers would have.
"""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

from shared.pipeline.definition import PipelineDefinition

GAME_DATE = date(2026, 1, 24)
BREAKER_DATE = date(2026, 1, 23)
POSTPONED_GAME = "0022500644"  # GSW@MIN: Final with NULL scores on 2026-01-24, Scheduled again on 2026-01-25
RESCHEDULED_TO = GAME_DATE + timedelta(days=1)
HEAL_DATE = date(2026, 1, 10)  # healed by a self-heal checkpoint (its yesterday), outside the gap window
BACKFILL_DATE = date(2026, 1, 19)  # a gap of the 14-day window, re-triggered by the backfill queue
# where ``phasectl local up`` starts its simulated clock (``--at`` chooses another instant): 02:30 ET the
# morning after the games. 2026-01-24 is then yesterday, so the 3→4 transition is in its "overnight" mode
# (when = "before_today") and the date is inside the monitor's lookback ([monitor] lookback_days = 3);
# 02:30 is past the first transition's silent line (midnight + its stuck_after_minutes, 120: 02:00 ET), so the
# monitor's first pass at ``up`` already reports the night: 7 Final games and no phase-2 completion yet
# (``silent``). Reporting phase 2 (the next steps) settles it; the night's SLOs (2→3 at 06:00 ET) are not due.
NIGHT_START = datetime(2026, 1, 25, 7, 30, tzinfo=UTC)  # 2026-01-25 02:30 ET (UTC-05:00)
GAMES = {  # 7 Final games per night: numeric NBA id, away, home
    GAME_DATE: [
        ("0022500647", "BOS", "CHI"),  # the cited id
        ("0022500641", "CLE", "ORL"),
        ("0022500642", "LAL", "DAL"),  # LAL away at DAL
        ("0022500644", "GSW", "MIN"),  # postponed
        ("0022500643", "MIA", "UTA"),
        ("0022500645", "NYK", "PHI"),
        ("0022500646", "WAS", "CHA"),
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
    HEAL_DATE: [
        ("0022500560", "BOS", "ATL"),
        ("0022500561", "DEN", "PHX"),
        ("0022500562", "SAC", "LAC"),
        ("0022500563", "POR", "UTA"),
    ],
    BACKFILL_DATE: [
        ("0022500610", "NYK", "MIA"),
        ("0022500611", "HOU", "DAL"),
        ("0022500612", "OKC", "MEM"),
        ("0022500613", "LAL", "GSW"),
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
    covered = played(day) if day == GAME_DATE else night[:BREAKER_COVERED] if day == BREAKER_DATE else night
    schedule = upstream_table(games.schedule_table)
    for i, (nba, away, home) in enumerate(night):  # the real schedule: numeric NBA ids, game_status 3 = Final
        if nba == POSTPONED_GAME:
            rows[games.schedule_table] += postponed_rows(nba, day, away, home, RESCHEDULED_TO, games.schedule_table)
            continue
        scores = {"home_team_score": 100 + i, "away_team_score": 104 + i}
        rows[games.schedule_table].append(
            schedule.row(nba, day, away, home, game_status=3, game_status_text="Final", **scores)
        )
    for table in tables.values():  # each boxscore table in its own id format (ESPN: its own team codes)
        source = upstream_table(table)
        rows[table] += [source.row(nba, day, away, home) for nba, away, home in covered]
    for table, batch in rows.items():
        errors = bq.insert_rows_json(f"{project}.{table}", batch)
        if errors:
            raise RuntimeError(f"seeding {table} failed: {errors[:3]}")


def played(day: date) -> list[tuple[str, str, str]]:
    """The night's games that were played (all but the postponed one)."""
    return [g for g in GAMES[day] if g[0] != POSTPONED_GAME]


def postponed_label() -> str:
    """``GSW@MIN (0022500644)``."""
    away, home = next((a, h) for n, a, h in GAMES[GAME_DATE] if n == POSTPONED_GAME)
    return f"{away}@{home} ({POSTPONED_GAME})"


def postponed_rows(nba: str, day: date, away: str, home: str, to: date, table: str) -> list[dict[str, Any]]:
    """A postponed game's schedule rows as the replaced system's schedule held GSW@MIN: Final
    (``game_status`` 3) with NULL scores on ``day``, and the same id again on ``to`` as Scheduled."""
    from deploy.local.raw_tables import upstream_table

    schedule, unscored = upstream_table(table), {"home_team_score": None, "away_team_score": None}
    return [
        schedule.row(nba, day, away, home, game_status=3, game_status_text="Final", **unscored),
        schedule.row(nba, to, away, home, game_status=1, game_status_text="Scheduled", **unscored),
    ]
