"""Creates the topics, tables and subscriptions a definition needs, on the local emulators.

Used by the demo and the integration tests (and later ``phasectl local up``). The raw
source tables (schedule, boxscores) belong to phase-2 processors in production; here
they get the minimal schemas the coverage gate reads.
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc

from shared.orchestration.execution_log import ensure_table
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import bigquery

SCHEDULE_SCHEMA = (
    ("game_id", "STRING"),
    ("game_date", "DATE"),
    ("away_team_tricode", "STRING"),
    ("home_team_tricode", "STRING"),
    ("game_status", "STRING"),
    ("updated_at", "TIMESTAMP"),
)
BOXSCORE_SCHEMA = (("game_id", "STRING"), ("game_date", "DATE"), ("player_name", "STRING"), ("points", "INTEGER"))
UNAVAILABLE_SCHEMA = (("game_id", "STRING"), ("game_date", "DATE"), ("reason", "STRING"), ("marked_at", "TIMESTAMP"))


def all_topics(definition: PipelineDefinition) -> list[str]:
    topics = []
    for phase in definition.phases:
        topics.append(phase.completion_topic)
        if phase.trigger_topic:
            topics.append(phase.trigger_topic)
    topics += [s.topic for s in definition.schedules.values()]
    return topics


def ensure_topics(publisher: pubsub_v1.PublisherClient, project: str, definition: PipelineDefinition) -> list[str]:
    paths = []
    for topic in all_topics(definition):
        path = publisher.topic_path(project, topic)
        with contextlib.suppress(gexc.AlreadyExists):  # idempotent: the topic is what we want
            publisher.create_topic(name=path)
        paths.append(path)
    return paths


def ensure_subscription(
    subscriber: pubsub_v1.SubscriberClient,
    project: str,
    topic: str,
    name: str,
    push_endpoint: str | None = None,
    ack_deadline_seconds: int = 60,
) -> str:
    from google.cloud.pubsub_v1.types import PushConfig

    path = subscriber.subscription_path(project, name)
    request: dict[str, object] = {
        "name": path,
        "topic": subscriber.topic_path(project, topic),
        "ack_deadline_seconds": ack_deadline_seconds,
    }
    if push_endpoint:
        request["push_config"] = PushConfig(push_endpoint=push_endpoint)
    with contextlib.suppress(gexc.AlreadyExists):  # idempotent
        subscriber.create_subscription(request=request)
    return str(path)


def _create(client: bigquery.Client, table_id: str, columns: tuple[tuple[str, str], ...]) -> None:
    from google.cloud import bigquery

    table = bigquery.Table(table_id, schema=[bigquery.SchemaField(n, t) for n, t in columns])
    table.time_partitioning = bigquery.TimePartitioning(field="game_date")
    client.create_table(table, exists_ok=True)


def ensure_tables(client: bigquery.Client, project: str, definition: PipelineDefinition) -> dict[str, str]:
    """Datasets and tables for the log, schedule, boxscore sources and unavailable games."""
    settings, games = definition.pipeline, definition.games
    tables = {
        "phase_execution_log": ensure_table(client, project, settings.dataset, settings.phase_execution_log_table)
    }
    wanted = [(games.schedule_table, SCHEDULE_SCHEMA), (games.unavailable_table, UNAVAILABLE_SCHEMA)]
    wanted += [(s.table, BOXSCORE_SCHEMA) for s in games.boxscore_sources]
    for ref, columns in wanted:
        dataset = ref.split(".")[0]
        client.create_dataset(f"{project}.{dataset}", exists_ok=True)
        _create(client, f"{project}.{ref}", columns)
        tables[ref] = f"{project}.{ref}"
    return tables
