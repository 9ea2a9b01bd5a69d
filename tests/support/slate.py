"""The real 2026-01-24 slate (lesson L29: the night GSW@MIN was postponed), for the postponement tests.

Seven games were scheduled, six were played (najicham/nba-stats-scraper@18f6ecfe):

* the seven matchups, away@home: docs/09-handoff/2026-01-25-COMPREHENSIVE-SYSTEM-ANALYSIS.md:105-113
  lists them as canonical ``YYYYMMDD_AWAY_HOME`` ids (20260124_BOS_CHI, _CLE_ORL, _GSW_MIN, _LAL_DAL,
  _MIA_UTA, _NYK_PHI, _WAS_CHA; GSW_MIN "0 (missing) ... No grading (expected)"), and
  docs/09-handoff/2026-01-24-FINAL-RESILIENCE-SESSION-HANDOFF.md:153-161 as away@home ("LAL@DAL").
  LAL was the away team at DAL: the player rows use AWAY_HOME ``20260124_LAL_DAL``, the team rows
  HOME_AWAY ``20260124_DAL_LAL`` (docs/08-projects/current/2026-01-28-system-validation/
  VALIDATION-REPORT.md:254-255; .../2026-01-27-data-quality-investigation/findings.md:479-494);
* GSW@MIN is ``0022500644``, postponed ~2 h before tip-off, left Final with NULL scores and listed
  again on 2026-01-25 as Scheduled (docs/08-projects/current/postponement-handling/
  POSTPONEMENT-HANDLING-DESIGN.md:11-38, IMPLEMENTATION-LOG.md:43-57);
* BOS@CHI is ``0022500647`` ("predictions use `20260124_BOS_CHI`, schedule uses `0022500647`":
  docs/09-handoff/2026-01-24-FINAL-RESILIENCE-SESSION-HANDOFF.md:48).

The other five NBA ids are not in the upstream docs: they are illustrative, chosen from the same
night's range (the 2026-01-25 games are 0022500650-0022500656: docs/08-projects/current/
2026-01-25-incident-remediation/COMPLETION-CHECKLIST.md:65-72).
"""

from __future__ import annotations

from datetime import date

from deploy.local.sample_night import GAME_DATE, GAMES, POSTPONED_GAME, RESCHEDULED_TO

# the demo's night is this slate (deploy.local.sample_night): one list, cited there and above
NIGHT = GAME_DATE
NEXT_DAY = RESCHEDULED_TO  # where the NBA listed 0022500644 again
SLATE = list(GAMES[NIGHT])  # BOS@CHI 0022500647 (cited), CLE@ORL, LAL@DAL, GSW@MIN, MIA@UTA, NYK@PHI, WAS@CHA
GSW_MIN = next(g for g in SLATE if g[0] == POSTPONED_GAME)  # postponed
PLAYED = [g for g in SLATE if g != GSW_MIN]  # the six games that were played


def canonical(game: tuple[str, str, str], day: date = NIGHT) -> str:
    return f"{day:%Y%m%d}_{game[1]}_{game[2]}"


GSW_MIN_ID = canonical(GSW_MIN)  # 20260124_GSW_MIN
