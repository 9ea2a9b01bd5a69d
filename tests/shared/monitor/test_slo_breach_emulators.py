"""The monitor's ``slo_breach`` on the emulators: a night with Final games whose 2→3 trigger went out
at 06:30 ET (SLO 06:00: late, WARNING) and whose 3→4 never did (SLO 08:00: missing, ERROR; 5→6,
due 10:00, waits for it and is named in the same finding); a night without games says nothing."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from deploy.local.emulators import LocalCloud
from shared.monitor.findings import Finding
from shared.monitor.runtime import build_monitor
from tests.support.rig import GAME_DATE, GAMES, PHASE2, Rig

pytestmark = pytest.mark.integration

LATE_TRIGGER = datetime(2026, 1, 25, 11, 30, tzinfo=UTC)  # 06:30 ET the morning after GAME_DATE
PASS_AT = datetime(2026, 1, 25, 15, 30, tzinfo=UTC)  # 10:30 ET


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    rig = Rig.create(cloud, unique, now=LATE_TRIGGER)
    rig.seed_outputs(tables=[])
    ids = [g[0] for g in GAMES]
    rig.seed_games(sources={"bdl": ids, "gamebook": ids}, game_date=GAME_DATE)
    return rig


def slo_breaches(rig: Rig) -> list[Finding]:
    monitor = build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())
    report = monitor.checks.run(dry_run=True)
    assert not [f for f in report.findings if f.kind in ("check_error", "check_timeout")], report.findings
    return sorted((f for f in report.findings if f.kind == "slo_breach"), key=lambda f: f.key)


def test_a_late_trigger_is_a_warning_and_a_missing_one_an_error_once_per_night(rig: Rig) -> None:
    service = rig.services["phase2_to_phase3"]
    kinds = [service.handle_event(rig.event(rig.completion(p, 2, game_date=GAME_DATE))).kind for p in PHASE2]
    assert kinds.count("triggered") == 1, kinds

    assert slo_breaches(rig) == [
        Finding(
            "slo_breach",
            "WARNING",
            "phase2_to_phase3 2026-01-24: first trigger (g1 complete) at 2026-01-25 06:30 ET, 30 min after its "
            "SLO (06:00 ET the morning after); see `phasectl slo --date 2026-01-24`",
            "phase2_to_phase3",
            GAME_DATE,
            {
                "due": "2026-01-25T06:00:00-05:00",
                "slo": "06:00 ET the morning after",
                "verdict": "late",
                "trigger_at": "2026-01-25T11:30:00+00:00",
                "generation": 1,
            },
        )
    ]  # 06:30 ET: 3→4 is not due before 08:00

    rig.clock.set(PASS_AT)
    found = slo_breaches(rig)
    assert [(f.key, f.severity) for f in found] == [
        ("slo_breach__phase2_to_phase3__2026-01-24", "WARNING"),
        ("slo_breach__phase3_to_phase4__2026-01-24", "ERROR"),  # one finding for the night's missing triggers
    ]
    missing = found[1]
    assert missing.details["verdict"] == "missing" and missing.details["due"] == "2026-01-25T08:00:00-05:00"
    assert "also_due" not in missing.details  # named in the message only: the fingerprint stays put
    assert "no trigger yet, due 2026-01-25 08:00 ET" in missing.message
    assert "also due and waiting for it: phase5_to_phase6 2026-01-25 10:00 ET" in missing.message
    rig.clock.set(PASS_AT - timedelta(hours=1))  # 09:30 ET: 5→6 (10:00) not due yet, the same finding
    earlier = slo_breaches(rig)
    assert [(f.key, f.fingerprint) for f in earlier] == [(f.key, f.fingerprint) for f in found]
    assert "also due" not in earlier[1].message  # 4→5 is due 18:00 ET (no tip-off on the 25th: 19:00 - 1 h)


def test_a_night_without_games_has_no_slo_breach(cloud: LocalCloud, unique: str) -> None:
    rig = Rig.create(cloud, unique, now=PASS_AT)
    rig.seed_games(final=[], game_date=date(2026, 1, 24))
    assert slo_breaches(rig) == []
