"""``phasectl games postpone|restore`` and ``mark-unavailable`` as an operator runs them (lesson L29).

``python -m phasectl`` in a subprocess against an isolated rig on the real emulators (the
definition file from ``tests.support.phasectl_run``). The night is the real 2026-01-24 slate
(``tests.support.slate``). Each command must: write its mark, be audited, end the date's open retry
rows that only chase the game (``skipped``, with the reason), re-evaluate the date, and print what
changed.
"""

from __future__ import annotations

import os
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from deploy.local.emulators import LocalCloud
from shared.contracts.messages import RetryTick
from shared.gcp import firestore_client
from shared.gcp_bigquery import bigquery_client
from shared.retry.not_played import excluded_from_bigquery
from shared.retry.queue import QueueRow
from shared.retry.runtime import build_retry_service
from tests.shared.retry.test_retry_emulators import pull_requests, retry_subscription
from tests.support.phasectl_run import Run, phasectl_runner, runner
from tests.support.postponed_night import marks, seed_night
from tests.support.rig import PHASE2, Rig
from tests.support.slate import GSW_MIN, GSW_MIN_ID, NIGHT, SLATE, canonical

pytestmark = pytest.mark.integration

NOW = "2026-01-25T15:00:00Z"  # 10:00 ET the morning after; the rig's clock is 14:00Z
P23 = "phase2_to_phase3"
BDL, ESPN = "bdl_player_boxscores", "espn_boxscores"
BOS_CHI_GAME, CLE_ORL_GAME = SLATE[0], SLATE[1]
BOS_CHI, CLE_ORL = canonical(BOS_CHI_GAME), canonical(CLE_ORL_GAME)
GSW_LABEL = f"{GSW_MIN_ID} (GSW@MIN, 0022500644) on 2026-01-24"


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


@pytest.fixture
def phasectl(rig: Rig, tmp_path: Path) -> Run:
    return phasectl_runner(rig, tmp_path, NOW)


def phase2_reports(rig: Rig) -> str:
    """Every phase-2 processor reports for the night; the date's status after the last."""
    service = rig.services[P23]
    for name in PHASE2:
        service.handle_event(rig.event(rig.completion(name, 2, game_date=NIGHT)))
    return service.state.load(NIGHT).status


def enqueue_missing(rig: Rig, processor: str, *games: str) -> None:
    result = rig.retry_service().enqueue_failure(
        game_date=NIGHT,
        phase=2,
        processor=processor,
        error_message="missing games",
        error_type="missing_games",
        game_ids=games,
    )
    assert result == "inserted", result


def queue_rows(rig: Rig) -> dict[str, QueueRow]:
    rows = rig.retry_service().queue.rows(game_date=NIGHT)
    return {r.processor_name: r for r in rows}


def audit(rig: Rig) -> list[dict[str, Any]]:
    col = firestore_client(rig.cloud.project).collection(rig.definition.pipeline.audit_collection)
    return [d.to_dict() or {} for d in col.stream()]


def ok(proc: Any) -> str:
    assert proc.returncode == 0, proc.stdout + proc.stderr
    text: str = proc.stdout
    return text


# ---------------------------------------------------------------------------------------
# games postpone
# ---------------------------------------------------------------------------------------
def test_games_postpone_a_game_the_schedule_shows_played_ends_its_retry_rows_and_unblocks_the_date(
    rig: Rig, phasectl: Run
) -> None:
    """Three Final games, GSW@MIN and CLE@ORL in no source: the circuit breaker blocks (1/3). The
    operator knows GSW@MIN was postponed before the schedule does: postponed, its retry row ends, the
    date is evaluated again (1/2: partial) and triggered at once, the trigger naming the postponed game."""
    seed_night(rig, games=[BOS_CHI_GAME, CLE_ORL_GAME, GSW_MIN], covered=[BOS_CHI_GAME], postponed=False)
    assert phase2_reports(rig) == "blocked"
    assert rig.pull_triggers(P23) == []
    enqueue_missing(rig, BDL, GSW_MIN_ID)
    enqueue_missing(rig, ESPN, GSW_MIN_ID, CLE_ORL)
    bdl_id = queue_rows(rig)[BDL].id

    out = ok(phasectl("games", "postpone", "0022500644", "--reason", "postponed ~2 h before tip-off"))

    lines = out.splitlines()
    assert lines[0] == (
        f"{GSW_LABEL} marked postponed (postponed ~2 h before tip-off): not expected, never retried; "
        "the schedule does not show it (yet)"
    )
    reason = "postponed ~2 h before tip-off"
    note = f"skipped: not retried, {GSW_MIN_ID} postponed: marked postponed by an operator: {reason}"
    assert f"  retry row {bdl_id[:8]} ({BDL}, pending) ended: {note}" in lines
    (p23,) = [line for line in lines if line.startswith(f"  {P23}: ")]
    assert p23.startswith(f"  {P23}: gate game_coverage now alert: 1/2 Final games covered, 1 postponed (50.0%")
    assert f"missing {CLE_ORL}; re-evaluated (was blocked: circuit breaker: 2/3 games" in p23
    assert p23.endswith(f": triggered {P23}:2026-01-24:g1")

    (mark,) = marks(rig)
    assert (mark["game_id"], mark["kind"], mark["marked_by"], mark["reason"]) == (
        GSW_MIN_ID,
        "postponed",
        "ops-tester",
        "postponed ~2 h before tip-off",
    )
    (record,) = audit(rig)
    assert (record["who"], record["command"]) == ("ops-tester", "games postpone")
    assert record["args"] == {
        "game_id": GSW_MIN_ID,
        "nba_game_id": "0022500644",
        "date": "2026-01-24",
        "reason": "postponed ~2 h before tip-off",
    }
    assert "ended" in record["result"] and "re-evaluated" in record["result"]
    rows = queue_rows(rig)
    assert (rows[BDL].status, rows[BDL].resolution_notes) == ("skipped", note)
    assert rows[ESPN].status == "pending"  # CLE@ORL is still missing: the tick drops GSW@MIN from it
    (trigger,) = rig.pull_triggers(P23)
    assert (trigger.postponed_games, trigger.missing_games) == ([GSW_MIN_ID], [CLE_ORL])
    assert rig.services[P23].state.load(NIGHT).status == "triggered"

    # twice: nothing new; undone by restore (the operator's mark goes, nothing else overridden)
    again = ok(phasectl("games", "postpone", GSW_MIN_ID, "--reason", "twice"))
    assert again.strip() == f"{GSW_LABEL} is already marked postponed"
    undo = ok(phasectl("games", "restore", GSW_MIN_ID, "--reason", "it was played after all"))
    assert undo.splitlines()[0] == (
        f"{GSW_LABEL} restored (it was played after all): counts again toward coverage; 1 postponed mark(s) removed"
    )
    assert "generation 1 already triggered" in undo and f"--transition {P23} --date 2026-01-24 --force" in undo
    assert marks(rig) == []
    assert sorted(a["command"] for a in audit(rig)) == ["games postpone", "games restore"]  # same fixed "now"


# ---------------------------------------------------------------------------------------
# games restore
# ---------------------------------------------------------------------------------------
def test_games_restore_overrides_a_detected_postponement_and_the_game_counts_again(rig: Rig, phasectl: Run) -> None:
    seed_night(rig)  # GSW@MIN Final with NULL scores, Scheduled again on 2026-01-25; the six others covered
    assert phase2_reports(rig) == "triggered"
    (trigger,) = rig.pull_triggers(P23)
    assert (trigger.postponed_games, trigger.missing_games) == ([GSW_MIN_ID], [])
    excluded = excluded_from_bigquery(rig.definition, bigquery_client(rig.cloud.project), rig.cloud.project, rig.clock)
    assert list(excluded(NIGHT)) == [GSW_MIN_ID]

    out = ok(phasectl("games", "restore", GSW_MIN_ID, "--reason", "boxscores arrived: it was played"))

    lines = out.splitlines()
    assert lines[0] == (
        f"{GSW_LABEL} restored (boxscores arrived: it was played): counts again toward coverage; the schedule's "
        "evidence overridden (schedule says Final with NULL scores; the same game id is on the schedule again on "
        "2026-01-25 (Scheduled))"
    )
    (p23,) = [line for line in lines if line.startswith(f"  {P23}: ")]
    assert p23.startswith(f"  {P23}: gate game_coverage now alert: 6/7 Final games covered (85.7%")
    assert f"missing {GSW_MIN_ID}; generation 1 already triggered" in p23
    assert p23.endswith(f"phasectl trigger --transition {P23} --date 2026-01-24 --force re-runs it with this verdict")
    (mark,) = marks(rig)
    assert (mark["game_id"], mark["kind"], mark["marked_by"]) == (GSW_MIN_ID, "restored", "ops-tester")
    (record,) = audit(rig)
    assert record["command"] == "games restore" and record["args"]["reason"] == "boxscores arrived: it was played"

    # the coverage gate counts it again (missing), and auto-retry would chase it again
    reconcile = phasectl("reconcile", "--date", "2026-01-24", "--detailed")
    assert reconcile.returncode == 1, reconcile.stdout + reconcile.stderr
    assert "6/7 Final games covered" in reconcile.stdout
    assert f"{GSW_MIN_ID} (GSW@MIN, 0022500644)" in reconcile.stdout
    assert dict(excluded(NIGHT)) == {}


def test_games_restore_of_a_game_that_is_not_postponed_exits_1_and_changes_nothing(rig: Rig, phasectl: Run) -> None:
    seed_night(rig)
    proc = phasectl("games", "restore", BOS_CHI, "--reason", "x")
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert proc.stdout.strip() == (
        f"{BOS_CHI} (BOS@CHI, 0022500647) on 2026-01-24 is not postponed (no mark, no evidence in the "
        "schedule): nothing to restore"
    )
    assert marks(rig) == [] and audit(rig) == []


# ---------------------------------------------------------------------------------------
# mark-unavailable
# ---------------------------------------------------------------------------------------
def test_mark_unavailable_ends_the_games_pending_retry_rows(cloud: LocalCloud, unique: str, tmp_path: Path) -> None:
    """Found by a new user: ``mark-unavailable`` at 01:05, and auto-retry re-ran the excluded game at 01:15.
    The retry row comes from the real hand-off (the partial trigger's missing games, via the outbox)."""
    rig = Rig.create(cloud, unique, now=datetime(2026, 1, 25, 6, 0, tzinfo=UTC))  # 01:00 ET
    phasectl = phasectl_runner(rig, tmp_path, "2026-01-25T06:05:00Z")  # 01:05 ET
    seed_night(rig, postponed=False)  # GSW@MIN looks played; no source has it
    assert phase2_reports(rig) == "triggered"  # 6/7: partial, GSW@MIN handed to auto-retry
    rig.deliver_outbox()
    (row,) = rig.retry_service().queue.rows(game_date=NIGHT)
    assert (row.processor_name, row.status, row.game_ids) == (BDL, "pending", (GSW_MIN_ID,))

    out = ok(phasectl("mark-unavailable", "0022500644", "--reason", "no vendor will ever have it"))

    assert out.splitlines()[0].startswith(f"{GSW_LABEL} marked unavailable (no vendor will ever have it)")
    note = f"skipped: not retried, {GSW_MIN_ID} marked unavailable"
    assert f"  retry row {row.id[:8]} ({BDL}, pending) ended: {note}" in out.splitlines()
    assert f"  {P23}: gate game_coverage now pass: 6/6 Final games covered, 1 marked unavailable" in out
    assert "generation 1 already triggered (partial)" in out
    (ended,) = rig.retry_service().queue.rows(game_date=NIGHT)  # ended by the command, before any tick
    assert (ended.status, ended.resolution_notes, ended.retry_count) == ("skipped", note, 0)
    (mark,) = marks(rig)
    assert (mark["game_id"], mark["kind"]) == (GSW_MIN_ID, None)
    (record,) = audit(rig)
    assert record["command"] == "mark-unavailable" and note in record["result"]

    # 01:20 ET: the auto-retry tick finds nothing to do for the game
    rig.clock.set(datetime(2026, 1, 25, 6, 20, tzinfo=UTC))
    svc = build_retry_service(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env(), rng=random.Random(1))
    sub = retry_subscription(rig)
    report = svc.tick(RetryTick())
    assert report.dispatched == [] and report.not_played == [] and report.permanent == [], report.summary()
    assert pull_requests(sub) == []
    (still,) = svc.queue.rows(game_date=NIGHT)
    assert still.status == "skipped"
    assert rig.clock.now() - row.first_failure_at > timedelta(minutes=17)  # it was due (15 min ± 10 %)


# ---------------------------------------------------------------------------------------
# bad input (no backend is reached)
# ---------------------------------------------------------------------------------------
@pytest.fixture
def offline_phasectl() -> Run:
    env = {
        **{k: v for k, v in os.environ.items() if not k.endswith("_EMULATOR_HOST") and k != "PIPELINE_DEFINITION"},
        "GOOGLE_CLOUD_PROJECT": "no-such-project",
        "PHASECTL_NOW": NOW,
    }
    return runner(env, timeout=60)


def test_games_without_a_command_is_a_usage_error_listing_the_commands(offline_phasectl: Run) -> None:
    proc = offline_phasectl("games")
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.rstrip().endswith("error: give a command (listed above)")
    assert "postpone" in proc.stderr and "restore" in proc.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["games", "postpone", "GSW/MIN", "--reason", "x"], "invalid game 'GSW/MIN': not a game id or a matchup"),
        (["games", "restore", "20260124-GSW-MIN", "--reason", "x"], "invalid game '20260124-GSW-MIN'"),
        (["games", "postpone", "GSW@XYZ", "--reason", "x"], "unknown NBA team tricode(s) XYZ; accepted: "),
        (["games", "postpone", "0022500644"], "the following arguments are required: --reason"),
        (["games", "postpone", "0022500644", "--reason", "  "], "--reason must not be empty"),
        (
            ["games", "restore", GSW_MIN_ID, "--date", "2026-01-25", "--reason", "x"],
            f"game {GSW_MIN_ID} is on 2026-01-24, not 2026-01-25",
        ),
        (["games", "cancel", GSW_MIN_ID], "invalid choice: 'cancel'"),
    ],
)
def test_bad_games_input_is_one_line_and_exit_2(offline_phasectl: Run, args: list[str], message: str) -> None:
    proc = offline_phasectl(*args)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    (line,) = proc.stderr.strip().splitlines()
    assert line.startswith("phasectl") and message in line, line
