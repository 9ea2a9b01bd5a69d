"""A monitor pass reports the postponed game the coverage gates found (lesson L29), on the emulators.

The gate results are produced by the real evaluations of the seeded 2026-01-24 slate
(``tests.support.slate``: GSW@MIN Final with NULL scores, Scheduled again on 2026-01-25), never
written by hand; the monitor is built as deployed (``build_monitor``) and reads them from Firestore.
"""

from __future__ import annotations

import pytest

from deploy.local.emulators import LocalCloud
from shared.contracts.messages import MonitorTick
from shared.monitor.runtime import build_monitor
from tests.support.postponed_night import seed_night
from tests.support.rig import PHASE2, Rig
from tests.support.slate import GSW_MIN_ID, NIGHT, PLAYED

pytestmark = pytest.mark.integration


def test_a_monitor_pass_reports_game_postponed_once_from_the_stored_gate_results(
    cloud: LocalCloud, unique: str
) -> None:
    rig = Rig.create(cloud, unique)  # 2026-01-25 09:00 ET: the night is in the monitor's window
    seed_night(rig)
    p23, p34 = rig.services["phase2_to_phase3"], rig.services["phase3_to_phase4"]
    for name in PHASE2:
        p23.handle_event(rig.event(rig.completion(name, 2, game_date=NIGHT)))
    assert p23.state.load(NIGHT).status == "triggered"
    # phase 3 ran for the six played games: the 3→4 analytics coverage finds the same postponement
    rig.seed_outputs(game_date=NIGHT, games=PLAYED)
    (mode,) = [m for m in p34.transition.modes if m.name == "overnight"]
    for name in mode.expected:
        p34.handle_event(rig.event(rig.completion(name, 3, game_date=NIGHT)))
    stored = {
        t: {g: [p["game_id"] for p in r.get("postponed") or ()] for g, r in (s.load(NIGHT).last_gate or {}).items()}
        for t, s in (("phase2_to_phase3", p23.state), ("phase3_to_phase4", p34.state))
    }
    assert stored["phase2_to_phase3"]["game_coverage"] == [GSW_MIN_ID]
    assert stored["phase3_to_phase4"]["analytics_game_coverage"] == [GSW_MIN_ID]

    monitor = build_monitor(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env())
    result, alerts = monitor.run(MonitorTick())

    (finding,) = [f for f in result.findings if f.kind == "game_postponed"]  # one, though two transitions saw it
    assert (finding.severity, finding.transition, finding.game_date, finding.subject) == (
        "WARNING",
        "phase2_to_phase3",
        NIGHT,
        GSW_MIN_ID,
    )
    assert finding.message.startswith(
        "GSW@MIN (0022500644) on 2026-01-24 is postponed, rescheduled to 2026-01-25 (found in the schedule): "
        "schedule says Final with NULL scores; the same game id is on the schedule again on 2026-01-25 (Scheduled)."
    )
    assert f"phasectl games postpone {GSW_MIN_ID}" in finding.message
    assert f"phasectl games restore {GSW_MIN_ID}" in finding.message
    assert finding.details["new_date"] == "2026-01-25"
    assert [f for f in result.findings if f.kind == "schedule_anomaly"] == []
    assert alerts is not None and finding.key in alerts.alerted
