"""Postponed games are not missing games (lesson L29): recognised from the schedule, pure (no I/O).

The real night of 2026-01-24: GSW@MIN (``0022500644``) was postponed about two hours before
tip-off. The schedule row stayed Final (``game_status`` 3) with NULL scores, the same game id
appeared again on 2026-01-25 as Scheduled, and no boxscore source ever had it
(docs/08-projects/current/postponement-handling/POSTPONEMENT-HANDLING-DESIGN.md:11-38 at
najicham/nba-stats-scraper@18f6ecfe). Treated as missing, it went down the BDL → ESPN → gamebook
retry chain for a game that was never played.

A game of the date is postponed when (any of, each an item of its ``evidence``):

* its schedule status text starts with one of ``[games] excluded_status_texts`` (the replaced
  system's operators set "Postponed" and leave the game Final: bin/fixes/fix_postponed_game.py:183-200);
* the schedule says Final with a NULL score (the design's first missed signal, :34; a played game
  always has both scores);
* its game id is on the schedule again on a later date within ``reschedule_lookahead_days`` (the
  fourth signal, :37; the NBA reuses the id on the new date) — unless the row of the date is Final
  *with scores*: a game with scores was played, so a second row is a schedule error (an *anomaly*,
  reported with its rows), and the game still counts;
* optionally (``postponed_after_empty_hours``) it is Final, no boxscore source has a row for it
  that many hours after its date ended, and its schedule row was rewritten on or after its date;
* an operator said so (``phasectl games postpone``).

An operator's ``phasectl games restore`` overrides every detected signal (the game counts again).
Postponed games leave the coverage denominators like unavailable games, are never handed to
auto-retry, and are carried by the trigger messages as ``postponed_games``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from shared.game_ids import GameIdConverter, ScheduleEntry
from shared.pipeline.definition import GamesSources

POSTPONED = "postponed"  # game_unavailable.kind of an operator's postponement
RESTORED = "restored"  # game_unavailable.kind of an operator's "it was played: count it"


@dataclass(frozen=True)
class Postponed:
    """One postponed game of the date, with why we think so and where it went."""

    game_id: str  # canonical YYYYMMDD_AWAY_HOME
    nba_game_id: str
    matchup: str  # AWAY@HOME
    evidence: tuple[str, ...]
    new_date: date | None = None
    by_operator: bool = False

    def as_doc(self) -> dict[str, Any]:
        return {
            "game_id": self.game_id,
            "nba_game_id": self.nba_game_id,
            "matchup": self.matchup,
            "evidence": list(self.evidence),
            "new_date": self.new_date.isoformat() if self.new_date else None,
            "by_operator": self.by_operator,
        }

    def describe(self) -> str:
        """One line for a reason, an alert or a CLI: the game, the evidence, the new date."""
        moved = f" (rescheduled to {self.new_date})" if self.new_date else ""
        return f"{self.matchup} {self.nba_game_id} postponed{moved}: {'; '.join(self.evidence)}"


@dataclass(frozen=True)
class ScheduleAnomaly:
    """A schedule row that is wrong in a way that is not a postponement: reported, never excluded."""

    game_id: str
    nba_game_id: str
    problem: str
    rows: tuple[Mapping[str, Any], ...] = ()

    def as_doc(self) -> dict[str, Any]:
        return {
            "game_id": self.game_id,
            "nba_game_id": self.nba_game_id,
            "problem": self.problem,
            "rows": list(self.rows),
        }


@dataclass(frozen=True)
class PostponementCheck:
    postponed: tuple[Postponed, ...] = ()
    anomalies: tuple[ScheduleAnomaly, ...] = ()

    @property
    def game_ids(self) -> frozenset[str]:
        return frozenset(p.game_id for p in self.postponed)


@dataclass(frozen=True)
class OperatorMarks:
    """What operators recorded for the date (``phasectl games``; canonical or raw ids)."""

    postponed: Mapping[str, str] = field(default_factory=dict)  # id → reason
    restored: frozenset[str] = frozenset()


def _row(entry: ScheduleEntry) -> dict[str, Any]:
    return {
        "game_date": entry.game_date.isoformat(),
        "game_status": entry.status,
        "game_status_text": entry.status_text,
        "scored": entry.scored,
    }


def detect_postponed(
    games: GamesSources,
    schedule: Iterable[ScheduleEntry],
    later: Iterable[ScheduleEntry] = (),
    *,
    covered: Iterable[str] = (),
    marks: OperatorMarks | None = None,
    now: datetime | None = None,
    timezone: str = "America/New_York",
) -> PostponementCheck:
    """The postponed games of one date and the schedule anomalies found on the way.

    ``schedule``: the date's rows (duplicates collapse to the latest, lesson L15); ``later``: rows of
    the same game ids on later dates; ``covered``: canonical ids some boxscore source has (for the
    optional no-rows rule, with ``now``); ``marks``: the operators' postpone/restore records.
    """
    converter = GameIdConverter.from_schedule(schedule)
    marks = marks or OperatorMarks()
    restored = _canonical(converter, marks.restored)
    by_operator = {_canon(converter, raw): reason for raw, reason in marks.postponed.items()}
    covered_ids = set(covered)
    later_by_id: dict[str, list[ScheduleEntry]] = {}
    for row in later:
        later_by_id.setdefault(row.nba_game_id, []).append(row)
    postponed: list[Postponed] = []
    anomalies: list[ScheduleAnomaly] = []
    for entry in converter.games():
        gid = entry.date_teams_game_id
        final = games.is_final(entry.status)
        evidence: list[str] = []
        new_date: date | None = None
        prefix = games.excluded_by_text(entry.status_text)
        if prefix:
            evidence.append(f"schedule status text {entry.status_text!r}")
        if final and entry.scored is False:
            evidence.append("schedule says Final with NULL scores")
        moved = sorted(
            (r for r in later_by_id.get(entry.nba_game_id, ()) if r.game_date > entry.game_date),
            key=lambda r: r.game_date,
        )
        if moved:
            if final and entry.scored:  # its scores say it was played here: never excluded, reported
                again = ", ".join(f"{r.game_date} ({r.status_text or f'status {r.status}'})" for r in moved)
                anomalies.append(
                    ScheduleAnomaly(
                        gid,
                        entry.nba_game_id,
                        f"game {entry.nba_game_id} is Final with scores on {entry.game_date} and on the schedule "
                        f"again on {again}: a schedule error, not a postponement (the game still counts)",
                        (_row(entry), *(_row(r) for r in moved)),
                    )
                )
            else:
                new_date = moved[-1].game_date
                status = moved[-1].status_text or f"status {moved[-1].status}"
                evidence.append(f"the same game id is on the schedule again on {new_date} ({status})")
        hours = games.postponed_after_empty_hours
        if hours is not None and final and gid not in covered_ids and now is not None and entry.updated_at:
            day_start = datetime.combine(entry.game_date, time(0), ZoneInfo(timezone))
            waited = now - (day_start + timedelta(days=1))
            if waited >= timedelta(hours=hours) and entry.updated_at >= day_start:
                evidence.append(
                    f"Final with no row in any boxscore source {waited.total_seconds() / 3600:.0f} h after its date "
                    f"ended (schedule row rewritten {entry.updated_at.isoformat(timespec='minutes')})"
                )
        if gid in by_operator:
            evidence.append(f"marked postponed by an operator: {by_operator[gid]}")
        if not evidence or gid in restored:
            continue
        postponed.append(
            Postponed(
                gid,
                entry.nba_game_id,
                f"{entry.away}@{entry.home}",
                tuple(evidence),
                new_date,
                by_operator=gid in by_operator,
            )
        )
    return PostponementCheck(tuple(postponed), tuple(anomalies))


def _canon(converter: GameIdConverter, raw: str) -> str:
    from shared.errors import InvalidGameIdError

    try:
        return converter.canonical(raw)
    except InvalidGameIdError:
        return raw


def _canonical(converter: GameIdConverter, raw_ids: Iterable[str]) -> set[str]:
    return {_canon(converter, raw) for raw in raw_ids}
