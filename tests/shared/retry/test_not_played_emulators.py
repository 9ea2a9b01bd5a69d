"""A game that was not played is never retried (lesson L29), on the real emulators.

The real night of 2026-01-24 (``tests.support.slate``): GSW@MIN (``0022500644``) Final with NULL
scores and Scheduled again on 2026-01-25. Auto-retry is built as it runs (``build_retry_service``:
the exclusions read from local-bigquery as the coverage gate reads them, a real ``RetryDispatcher``
publishing to the phase-2 retry topic); what it dispatched is pulled from a real subscription.
"""

from __future__ import annotations

import random

import pytest

from deploy.local.emulators import LocalCloud
from shared.contracts.messages import RetryTick
from shared.gcp_bigquery import bigquery_client
from shared.retry.queue import QueueRow
from shared.retry.runtime import build_retry_service
from shared.retry.service import RetryService
from tests.shared.retry.test_retry_emulators import pull_requests, retry_subscription
from tests.support.postponed_night import seed_night
from tests.support.rig import Rig
from tests.support.slate import GSW_MIN, GSW_MIN_ID, NIGHT, PLAYED, SLATE, canonical

pytestmark = pytest.mark.integration

BDL, ESPN = "bdl_player_boxscores", "espn_boxscores"
BOS_CHI = canonical(SLATE[0])  # 20260124_BOS_CHI
assert BOS_CHI == "20260124_BOS_CHI"


@pytest.fixture
def rig(cloud: LocalCloud, unique: str) -> Rig:
    return Rig.create(cloud, unique)


def auto_retry(rig: Rig) -> RetryService:
    """Auto-retry as deployed: dispatcher, exclusions from BigQuery, the rig's clock."""
    svc = build_retry_service(definition=rig.definition, clock=rig.clock, environ=rig.cloud.env(), rng=random.Random(7))
    assert svc.dispatcher is not None and svc.excluded is not None
    return svc


def missing(svc: RetryService, processor: str, *games: str) -> None:
    """A gate's missing games handed to auto-retry (the one enqueue path)."""
    result = svc.enqueue_failure(
        game_date=NIGHT,
        phase=2,
        processor=processor,
        error_message=f"{len(games)} game(s) missing after {processor}",
        error_type="missing_games",
        game_ids=games,
        correlation_id="night-2026-01-24",
    )
    assert result in ("inserted", "requeued"), result


def by_processor(svc: RetryService) -> dict[str, QueueRow]:
    rows = svc.queue.rows(game_date=NIGHT)
    out = {r.processor_name: r for r in rows}
    assert len(out) == len(rows), rows
    return out


def test_l29_pending_retry_row_for_a_postponed_game_ends_skipped(rig: Rig) -> None:
    """The night upstream re-ran GSW@MIN down BDL → ESPN → gamebook: here its row ends ``skipped`` with
    the schedule's evidence and nothing goes out for it; a row with a played game too is sent for that
    game alone."""
    seed_night(rig, covered=[g for g in PLAYED if canonical(g) != BOS_CHI])  # BOS@CHI missing as well
    svc, sub = auto_retry(rig), retry_subscription(rig)
    missing(svc, BDL, GSW_MIN_ID)
    missing(svc, ESPN, GSW_MIN_ID, BOS_CHI)
    rig.clock.advance(minutes=20)  # both due (15 min ± 10 %)

    report = svc.tick(RetryTick())

    bdl = by_processor(svc)[BDL]
    assert report.not_played == [f"{BDL}@{NIGHT}#{bdl.id[:8]}"], report.summary()
    assert bdl.status == "skipped" and bdl.retry_count == 0
    notes = bdl.resolution_notes or ""
    assert notes.startswith(f"skipped: not retried, {GSW_MIN_ID} postponed: ")
    assert "schedule says Final with NULL scores" in notes
    assert "the same game id is on the schedule again on 2026-01-25 (Scheduled)" in notes
    (request,) = pull_requests(sub)  # the ESPN row's; nothing for BDL's
    assert (request.processor_name, request.game_ids) == (ESPN, [BOS_CHI])
    espn = by_processor(svc)[ESPN]
    assert (espn.status, espn.retry_count, espn.game_ids) == ("retrying", 1, (GSW_MIN_ID, BOS_CHI))

    # the ESPN retry fails again; later ticks still never send GSW@MIN, and the skipped row stays ended
    missing(svc, ESPN, GSW_MIN_ID, BOS_CHI)
    rig.clock.advance(hours=1)
    again = svc.tick(RetryTick())
    assert [r.game_ids for r in pull_requests(sub)] == [[BOS_CHI]], again.summary()
    assert again.not_played == []
    assert by_processor(svc)[BDL].status == "skipped"


def test_a_game_marked_unavailable_is_skipped_the_same_way(rig: Rig) -> None:
    """GSW@MIN looks played (scores, no later date) and no source has it: retried, until an operator
    marks it unavailable (a row with ``kind`` NULL, here under its NBA id); from then on it is not."""
    seed_night(rig, covered=[g for g in PLAYED if canonical(g) != BOS_CHI], postponed=False)
    svc, sub = auto_retry(rig), retry_subscription(rig)
    missing(svc, BDL, GSW_MIN_ID)
    missing(svc, ESPN, GSW_MIN_ID, BOS_CHI)
    rig.clock.advance(minutes=20)

    first = svc.tick(RetryTick())  # nothing excluded yet: both rows go out with every game
    assert first.not_played == [] and len(first.dispatched) == 2, first.summary()
    assert sorted((r.processor_name, r.game_ids) for r in pull_requests(sub)) == [
        (BDL, [GSW_MIN_ID]),
        (ESPN, [GSW_MIN_ID, BOS_CHI]),
    ]

    g, project = rig.definition.games, rig.cloud.project
    mark = {
        "game_id": GSW_MIN[0],
        "game_date": NIGHT.isoformat(),
        "reason": "no vendor has it",
        "marked_at": rig.clock.now().isoformat(),
        "kind": None,
        "marked_by": "ops",
    }
    assert bigquery_client(project).insert_rows_json(f"{project}.{g.unavailable_table}", [mark]) == []
    missing(svc, BDL, GSW_MIN_ID)  # both retries failed: pending again
    missing(svc, ESPN, GSW_MIN_ID, BOS_CHI)
    rig.clock.advance(hours=1)

    second = svc.tick(RetryTick())

    bdl = by_processor(svc)[BDL]
    assert second.not_played == [f"{BDL}@{NIGHT}#{bdl.id[:8]}"], second.summary()
    assert (bdl.status, bdl.retry_count) == ("skipped", 1)
    assert bdl.resolution_notes == f"skipped: not retried, {GSW_MIN_ID} marked unavailable"
    (request,) = pull_requests(sub)
    assert (request.processor_name, request.game_ids, request.attempt) == (ESPN, [BOS_CHI], 2)
