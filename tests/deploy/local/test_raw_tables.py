"""The local cloud's rows of the replaced system's tables (deploy/local/raw_tables.py)."""

from __future__ import annotations

from datetime import date, datetime

from deploy.local.raw_tables import upstream_table
from deploy.local.sample_night import postponed_rows


def test_a_rescheduled_game_tips_off_on_its_new_date() -> None:
    """The schedule row of GSW@MIN listed again on 2026-01-25 once kept the 24th's tip-off instant, so
    the SLO of predictions (1 h before the first tip-off of the next day) was due on the 24th and
    `phasectl slo` called the night MISSING at 02:30 the morning after."""
    table = upstream_table("nba_raw.nbac_schedule")
    example = table.spec["example_rows"][0]
    first, again = postponed_rows("0022500644", date(2026, 1, 24), "GSW", "MIN", date(2026, 1, 25), "nbac_schedule")
    tip_24 = datetime.fromisoformat(str(first["game_date_est"]))
    tip_25 = datetime.fromisoformat(str(again["game_date_est"]))
    assert str(first["game_date_est"]) == str(example["game_date_est"])  # the example's own date: unchanged
    assert (tip_25 - tip_24).days == 1 and tip_25.timetz() == tip_24.timetz()
    assert again["game_date"] == "2026-01-25"
