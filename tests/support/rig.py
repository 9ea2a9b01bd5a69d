"""A test rig on the real emulators: an isolated definition, real services, real topics.

Each rig renames the definition's topics, datasets and collections with a unique
suffix, so tests never see each other's state even on one emulator stack.
"""

from __future__ import annotations

import base64
import json
import tomllib
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from typing import TYPE_CHECKING, Any

from deploy.local.emulators import LocalCloud
from deploy.local.topology import ensure_subscription, ensure_tables, ensure_topics
from shared.clock import FixedClock
from shared.contracts.messages import PhaseTrigger
from shared.gcp import firestore_client, publisher_client, subscriber_client
from shared.gcp_bigquery import bigquery_client
from shared.orchestration.runtime import build_service
from shared.orchestration.transition import TransitionService
from shared.pipeline.definition import DEFAULT_DEFINITION_PATH, PipelineDefinition, parse_definition

# Datasets created by rigs, in order; tests/conftest.py drops those a test created when it ends,
# so the session's local-bigquery does not slow down as the suite runs.
CREATED_DATASETS: list[tuple[str, str]] = []

GAME_DATE = date(2026, 1, 24)
# 2026-01-25 09:00 ET: the morning after the 2026-01-24 games (overnight mode).
MORNING_AFTER = datetime(2026, 1, 25, 14, 0, tzinfo=UTC)

# Five Final games on 2026-01-24 (numeric NBA id, away, home). 0022500644 is GSW@MIN.
GAMES = [
    ("0022500644", "GSW", "MIN"),
    ("0022500645", "BOS", "NYK"),
    ("0022500646", "LAL", "DEN"),
    ("0022500647", "MIA", "CHI"),
    ("0022500648", "PHX", "DAL"),
]

# The phase-2 processors the 2→3 transition expects, from the packaged definition, optional ones
# first: the date becomes ready (all expected: complete) only with the last of them.
_PACKAGED = parse_definition(tomllib.loads(DEFAULT_DEFINITION_PATH.read_text()))
_P23 = _PACKAGED.transition("phase2_to_phase3")
PHASE2 = [*(p for p in _P23.expected if p not in _P23.critical), *(p for p in _P23.expected if p in _P23.critical)]

# The seven Final games of the 2026-01-24 night (the demo's and the reference night).
SEVEN = [*GAMES, ("0022500649", "SAC", "LAC"), ("0022500650", "TOR", "ATL")]


def short_retry_publisher() -> Any:
    """A Pub/Sub publisher whose retries give up in ~2 s (the default retries for 60 s): for tests
    that point ``PUBSUB_EMULATOR_HOST`` at a port nothing listens on, so the failure surfaces fast."""
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.api_core.retry import Retry

    return pubsub_v1.PublisherClient(
        publisher_options=pubsub_v1.types.PublisherOptions(
            retry=Retry(initial=0.1, maximum=0.5, multiplier=2.0, timeout=2.0), timeout=2.0
        )
    )


def date_teams(game: tuple[str, str, str], day: date = GAME_DATE) -> str:
    return f"{day:%Y%m%d}_{game[1]}_{game[2]}"


# The processors' datasets the phase 3→4 and 4→5 gates read, and their per-rig names.
GATE_DATASETS = {"nba_analytics": "ana", "nba_precompute": "pre", "nba_predictions": "prd"}


def _rename_gate_tables(node: Any, suffix: str) -> Any:
    """Every ``dataset.table`` string of a gate dataset, renamed to the rig's dataset."""
    if isinstance(node, dict):
        return {k: _rename_gate_tables(v, suffix) for k, v in node.items()}
    if isinstance(node, list):
        return [_rename_gate_tables(v, suffix) for v in node]
    if isinstance(node, str) and "." in node and node.split(".")[0] in GATE_DATASETS:
        dataset, table = node.split(".", 1)
        return f"{GATE_DATASETS[dataset]}_{suffix}.{table}"
    return node


def isolated_definition(suffix: str, mutate: Any = None) -> PipelineDefinition:
    data = tomllib.loads(DEFAULT_DEFINITION_PATH.read_text())
    data["pipeline"]["dataset"] = f"orch_{suffix}"
    data["pipeline"]["state_collection"] = f"transitions_{suffix}"
    data["pipeline"]["quarantine_collection"] = f"quarantine_{suffix}"
    data["pipeline"]["outbox_collection"] = f"outbox_{suffix}"
    for key in ("heartbeat_collection", "alert_collection"):
        data["monitor"][key] = f"{data['monitor'][key]}_{suffix}"
    for phase in data["phases"]:
        for key in ("completion_topic", "trigger_topic", "retry_topic"):
            if key in phase:
                phase[key] = f"{phase[key]}-{suffix}"
    for schedule in data["schedules"].values():
        schedule["topic"] = f"{schedule['topic']}-{suffix}"
    games = data["games"]
    games["schedule_table"] = f"raw_{suffix}.nbac_schedule"
    games["unavailable_table"] = f"orch_{suffix}.game_unavailable"
    for source in games["boxscore_sources"]:
        source["table"] = f"raw_{suffix}.{source['table'].split('.')[1]}"
    data["gates"] = _rename_gate_tables(data["gates"], suffix)
    data["sensors"] = _rename_gate_tables(data.get("sensors", []), suffix)
    if "heal" in data:  # [heal] targets' and gap outputs' tables, as the gates' (definition_files renames them too)
        data["heal"] = _rename_gate_tables(data["heal"], suffix)
        for out in data["heal"].get("gaps", {}).get("outputs", []):  # phase 2's raw tables: the rig's raw dataset
            if str(out.get("table", "")).startswith("nba_raw."):
                out["table"] = f"raw_{suffix}.{out['table'].split('.', 1)[1]}"
    for timed in data["sensors"]:
        timed["topic"] = f"{timed['topic']}-{suffix}"
        timed["tick_topic"] = f"{timed['tick_topic']}-{suffix}"
    for job in data.get("jobs", []):  # [[jobs]] Pub/Sub targets (the scheduled triggers' topics before)
        if "pubsub" in job:
            job["pubsub"]["topic"] = f"{job['pubsub']['topic']}-{suffix}"
    if mutate is not None:
        mutate(data)
    return parse_definition(data, f"<isolated {suffix}>")


def push_body(
    payload: dict[str, Any] | bytes,
    attributes: dict[str, str] | None = None,
    message_id: str | None = None,
    publish_time: datetime | None = None,
) -> dict[str, Any]:
    data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
    message: dict[str, Any] = {
        "data": base64.b64encode(data).decode(),
        "messageId": message_id or uuid.uuid4().hex,
        "publishTime": (publish_time or datetime.now(UTC)).isoformat().replace("+00:00", "Z"),
    }
    if attributes is not None:
        message["attributes"] = attributes
    return {"message": message, "subscription": "projects/test-project/subscriptions/test"}


if TYPE_CHECKING:
    from shared.orchestration.outbox import DeliveryReport
    from shared.retry.queue import QueueRow
    from shared.retry.service import RetryService


@dataclass
class Rig:
    cloud: LocalCloud
    suffix: str
    definition: PipelineDefinition
    clock: FixedClock
    services: dict[str, TransitionService] = field(default_factory=dict)
    trigger_subscriptions: dict[str, str] = field(default_factory=dict)
    gate_tables_created: bool = False
    output_dates: set[date] = field(default_factory=set)

    @classmethod
    def create(cls, cloud: LocalCloud, suffix: str, *, now: datetime = MORNING_AFTER, mutate: Any = None) -> Rig:
        definition = isolated_definition(suffix, mutate)
        rig = cls(cloud, suffix, definition, FixedClock(now))
        project = cloud.project
        ensure_topics(publisher_client(), project, definition)
        # the phase 3-5 tables the 3→4 and 4→5 gates read are created by the first seed_outputs: a
        # test that drives those transitions seeds them (without them a gate answers gate_error)
        ensure_tables(bigquery_client(project), project, definition, gate_tables=False)
        CREATED_DATASETS.extend((project, d) for d in rig.datasets())
        subscriber = subscriber_client()
        for t in definition.transitions:
            topic = definition.target_topic(t)
            rig.trigger_subscriptions[t.name] = ensure_subscription(
                subscriber, project, topic, f"capture-{topic}", ack_deadline_seconds=10
            )
            rig.services[t.name] = build_service(t.name, definition=definition, clock=rig.clock, environ=cloud.env())
        return rig

    def datasets(self) -> list[str]:
        """The BigQuery datasets this rig's definition names (all unique to the rig)."""
        games = self.definition.games
        refs = [
            games.schedule_table,
            games.unavailable_table,
            *(s.table for s in games.boxscore_sources),
            *self.definition.gate_tables(),
            *self.definition.condition_tables(),
        ]
        return sorted({self.definition.pipeline.dataset, *(ref.split(".")[0] for ref in refs)})

    # -- inputs ---------------------------------------------------------------------------
    def completion(
        self,
        processor: str,
        phase: int,
        *,
        game_date: date = GAME_DATE,
        status: str = "success",
        execution_id: str | None = None,
        **extra: Any,
    ) -> dict[str, Any]:
        return {
            "processor_name": processor,
            "phase": phase,
            "execution_id": execution_id or uuid.uuid4().hex,
            "correlation_id": f"night-{game_date}",
            "game_date": game_date.isoformat(),
            "status": status,
            "record_count": extra.pop("record_count", 100),
            "timestamp": self.clock.now().isoformat(),
            **extra,
        }

    def event(
        self,
        payload: dict[str, Any] | bytes,
        *,
        message_id: str | None = None,
        attributes: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        return push_body(payload, attributes if attributes is not None else {}, message_id, self.clock.now())

    def seed_games(
        self,
        *,
        final: list[tuple[str, str, str]] | None = None,
        sources: dict[str, list[str]] | None = None,
        unavailable: list[str] | None = None,
        game_date: date = GAME_DATE,
        status_texts: dict[str, str] | None = None,
        schedule_columns: dict[str, dict[str, Any]] | None = None,
        marks: dict[str, str] | None = None,
    ) -> None:
        """Schedule rows (Final: game_status 3), boxscore rows per source name, unavailable game ids.

        Rows have the replaced system's real columns (``deploy.local.raw_tables``). A source
        id of a scheduled game (NBA id or date-teams id) is written in that table's own format
        (ESPN's with ESPN team codes); any other id is written as given. ``status_texts`` sets
        ``game_status_text`` per NBA id (e.g. "Postponed"); ``schedule_columns`` any other schedule
        columns per NBA id (e.g. ``home_team_score: None``, or ``game_status: 1`` for the row of a
        game moved to ``game_date``). ``marks``: operators' marks, game id → ``kind`` ("postponed",
        "restored"; ``unavailable`` writes kind NULL).
        """
        from deploy.local.raw_tables import upstream_table

        bq = bigquery_client(self.cloud.project)
        g = self.definition.games
        p = self.cloud.project
        games = final if final is not None else GAMES
        schedule = upstream_table(g.schedule_table)
        rows = [
            schedule.row(
                nba,
                game_date,
                away,
                home,
                **{
                    "game_status": 3,
                    "game_status_text": (status_texts or {}).get(nba, "Final"),
                    **(schedule_columns or {}).get(nba, {}),
                },
            )
            for nba, away, home in games
        ]
        if rows:
            assert bq.insert_rows_json(f"{p}.{g.schedule_table}", rows) == []
        known = {key: game for game in games for key in (game[0], date_teams(game, game_date))}
        tables = {s.name: s.table for s in g.boxscore_sources}
        for source, ids in (sources or {}).items():
            table = upstream_table(tables[source])
            batch = []
            for raw in ids:
                game = known.get(raw)
                if game is None:
                    batch.append(table.row("0000000000", game_date, "AAA", "BBB", game_id=raw))
                else:
                    batch.append(table.row(game[0], game_date, game[1], game[2]))
            if batch:
                assert bq.insert_rows_json(f"{p}.{tables[source]}", batch) == []
        if unavailable:
            now = self.clock.now().isoformat()
            assert (
                bq.insert_rows_json(
                    f"{p}.{g.unavailable_table}",
                    [
                        {"game_id": i, "game_date": game_date.isoformat(), "reason": "postponed", "marked_at": now}
                        for i in unavailable
                    ],
                )
                == []
            )
        if marks:
            now = self.clock.now().isoformat()
            rows = [
                {
                    "game_id": i,
                    "game_date": game_date.isoformat(),
                    "reason": f"test: {kind}",
                    "marked_at": now,
                    "kind": kind,
                    "marked_by": "rig",
                }
                for i, kind in marks.items()
            ]
            assert bq.insert_rows_json(f"{p}.{g.unavailable_table}", rows) == []

    def gate_table(self, name: str) -> str:
        """The rig's reference of a gate's or sensor's table, by table name (e.g. ``player_game_summary``)."""
        read = (*self.definition.gate_tables(), *self.definition.condition_tables())
        refs = [ref for ref in read if ref.split(".")[1] == name]
        assert refs, f"no gate reads a table named {name!r}"
        return refs[0]

    def seed_outputs(
        self,
        *,
        game_date: date = GAME_DATE,
        games: list[tuple[str, str, str]] | None = None,
        tables: list[str] | None = None,
        dnp_share: float = 0.0,
        players_per_game: int = 10,
    ) -> None:
        """The phase 3 and 4 processors' rows (real schemas) in the tables the gates read: all of
        them, or ``tables`` (names or references). ``dnp_share`` of player rows have 0 minutes."""
        from deploy.local.outputs import write_outputs
        from deploy.local.raw_tables import create_upstream_table

        client = bigquery_client(self.cloud.project)
        if not self.gate_tables_created:
            from concurrent.futures import ThreadPoolExecutor

            project = self.cloud.project
            read = (*self.definition.gate_tables(), *self.definition.condition_tables())
            datasets = sorted({ref.split(".")[0] for ref in read})
            with ThreadPoolExecutor(max_workers=8) as pool:
                list(pool.map(lambda d: client.create_dataset(f"{project}.{d}", exists_ok=True), datasets))
                list(pool.map(lambda ref: create_upstream_table(client, project, ref), read))
            self.gate_tables_created = True
        refs = list(self.definition.gate_tables())  # the sensors' tables only when named in `tables`
        if tables is not None:
            refs = [ref if "." in ref else self.gate_table(ref) for ref in tables]
        write_outputs(
            client,
            self.cloud.project,
            refs,
            game_date,
            games if games is not None else GAMES,
            players_per_game=players_per_game,
            dnp_share=dnp_share,
        )

    def ensure_outputs(self, game_date: date = GAME_DATE) -> None:
        """``seed_outputs`` for ``game_date`` once (complete data: every 3→4 and 4→5 gate passes)."""
        if game_date not in self.output_dates:
            self.seed_outputs(game_date=game_date)
            self.output_dates.add(game_date)

    # -- observations -----------------------------------------------------------------------
    def pull_messages(self, transition: str, max_messages: int = 20) -> list[PhaseTrigger]:
        """Every message on the transition's trigger topic right now (all parts of each trigger)."""
        subscriber = subscriber_client()
        sub = self.trigger_subscriptions[transition]
        out: list[PhaseTrigger] = []
        while True:
            response = subscriber.pull(subscription=sub, max_messages=max_messages, timeout=10, return_immediately=True)
            if not response.received_messages:
                return out
            for received in response.received_messages:
                trigger = PhaseTrigger.model_validate_json(received.message.data)
                assert received.message.attributes["trigger_id"] == trigger.trigger_id
                out.append(trigger)
            subscriber.acknowledge(subscription=sub, ack_ids=[m.ack_id for m in response.received_messages])

    def pull_triggers(self, transition: str, max_messages: int = 20) -> list[PhaseTrigger]:
        """The triggers published: the first message of each (a per-source-table trigger has ``parts``);
        checks that every part of each trigger arrived."""
        messages = self.pull_messages(transition, max_messages)
        firsts = [m for m in messages if m.part == 1]
        for first in firsts:
            parts = sorted(m.part for m in messages if m.trigger_id == first.trigger_id)
            assert set(parts) == set(range(1, first.parts + 1)), (first.trigger_id, parts)
        return firsts

    def retry_service(self) -> RetryService:
        """The auto-retry service of this rig (no dispatcher), which owns the outbox delivery."""
        from shared.retry.runtime import build_retry_service

        return build_retry_service(
            definition=self.definition, clock=self.clock, environ=self.cloud.env(), with_dispatcher=False
        )

    def deliver_outbox(self) -> DeliveryReport:
        """What auto-retry does on a transition's nudge: the outbox's log rows to phase_execution_log,
        its hand-offs to the retry queue (in-process tests run no auto-retry function)."""
        service = self.retry_service()
        assert service.outbox is not None
        return service.outbox.deliver()

    def retry_rows(self) -> list[QueueRow]:
        """The retry queue once the outbox is delivered."""
        self.deliver_outbox()
        return list(self.retry_service().queue.rows())

    def log_rows(self, *, deliver: bool = True) -> list[dict[str, Any]]:
        """phase_execution_log, after delivering the outbox as auto-retry would (``deliver=False``: as is)."""
        if deliver:
            self.deliver_outbox()
        bq = bigquery_client(self.cloud.project)
        s = self.definition.pipeline
        table = f"`{self.cloud.project}.{s.dataset}.{s.phase_execution_log_table}`"
        return [dict(r) for r in bq.query(f"SELECT * FROM {table} ORDER BY execution_timestamp").result()]

    def completion_docs(self, transition: str, game_date: date = GAME_DATE) -> list[dict[str, Any]]:
        """The recorded completion documents of one transition and date."""
        fs = firestore_client(self.cloud.project)
        ref = fs.collection(self.definition.pipeline.state_collection).document(f"{transition}__{game_date}")
        return [d.to_dict() or {} for d in ref.collection("completions").stream()]

    def quarantined(self) -> list[dict[str, Any]]:
        fs = firestore_client(self.cloud.project)
        return [d.to_dict() or {} for d in fs.collection(self.definition.pipeline.quarantine_collection).stream()]
