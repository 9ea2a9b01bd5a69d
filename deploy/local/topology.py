"""Creates the topics, tables and subscriptions a definition needs, on the local emulators.

Used by the demo, the integration tests and ``phasectl local up``. The raw source tables
(schedule, boxscores) belong to phase-2 processors in production; here they get the real
schemas (``deploy.local.raw_tables``).
"""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc

from deploy.local.raw_tables import create_table_retrying
from deploy.spec import TableSpec, table_specs
from shared.pipeline.definition import PipelineDefinition

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import bigquery

def ensure_table(client: bigquery.Client, project: str, spec: TableSpec) -> str:
    """Create the dataset and the table ``spec`` describes (the same spec ``phasectl deploy`` creates); its id."""
    from google.cloud import bigquery

    client.create_dataset(f"{project}.{spec.dataset}", exists_ok=True)
    table_id = f"{project}.{spec.ref}"
    ref = bigquery.Table(
        table_id, schema=[bigquery.SchemaField(f["name"], f["type"], mode=f["mode"]) for f in spec.schema]
    )
    expiration = spec.partition_expiration_days
    ref.time_partitioning = bigquery.TimePartitioning(
        field=spec.partition_field, expiration_ms=expiration * 86_400_000 if expiration else None
    )
    ref.clustering_fields = list(spec.clustering_fields) or None
    create_table_retrying(client, ref)
    return table_id


def all_topics(definition: PipelineDefinition) -> list[str]:
    topics = []
    for phase in definition.phases:
        topics += [t for t in (phase.completion_topic, phase.trigger_topic, phase.retry_topic) if t]
    # the Cloud Scheduler jobs' topics: [schedules] and the schedule dispatcher's tick
    topics += [s.topic for s in definition.schedule_entries().values() if s.topic not in topics]
    for t in definition.timed_triggers():  # their tick topics, and a sensor's own target topic
        topics += [x for x in (t.tick_topic, t.topic) if x not in topics]
    for job in definition.all_jobs():  # what the dispatcher's Pub/Sub jobs publish to
        if job.pubsub is not None and job.pubsub.topic not in topics:
            topics.append(job.pubsub.topic)
    return topics


def ensure_topic(publisher: pubsub_v1.PublisherClient, project: str, topic: str) -> str:
    path = str(publisher.topic_path(project, topic))
    with contextlib.suppress(gexc.AlreadyExists):  # idempotent: the topic is what we want
        publisher.create_topic(name=path)
    return path


def ensure_topics(publisher: pubsub_v1.PublisherClient, project: str, definition: PipelineDefinition) -> list[str]:
    return [ensure_topic(publisher, project, topic) for topic in all_topics(definition)]


def pull_now(subscriber: pubsub_v1.SubscriberClient, subscription: str, max_messages: int = 20) -> list[bytes]:
    """What is waiting on ``subscription`` right now (no waiting), acknowledged."""
    response = subscriber.pull(
        subscription=subscription, max_messages=max_messages, timeout=10, return_immediately=True
    )
    if not response.received_messages:
        return []
    subscriber.acknowledge(subscription=subscription, ack_ids=[m.ack_id for m in response.received_messages])
    return [m.message.data for m in response.received_messages]


def ensure_subscription(
    subscriber: pubsub_v1.SubscriberClient,
    project: str,
    topic: str,
    name: str,
    push_endpoint: str | None = None,
    ack_deadline_seconds: int = 60,
    dead_letter_topic: str | None = None,
    max_delivery_attempts: int = 10,
) -> str:
    from google.cloud.pubsub_v1.types import DeadLetterPolicy, PushConfig, RetryPolicy

    path = subscriber.subscription_path(project, name)
    request: dict[str, object] = {
        "name": path,
        "topic": subscriber.topic_path(project, topic),
        "ack_deadline_seconds": ack_deadline_seconds,
    }
    if push_endpoint:
        request["push_config"] = PushConfig(push_endpoint=push_endpoint)
        # as Eventarc configures a function's trigger: exponential backoff between redeliveries
        request["retry_policy"] = RetryPolicy(minimum_backoff={"seconds": 1}, maximum_backoff={"seconds": 60})
    if dead_letter_topic:
        request["dead_letter_policy"] = DeadLetterPolicy(
            dead_letter_topic=subscriber.topic_path(project, dead_letter_topic),
            max_delivery_attempts=max_delivery_attempts,
        )
    with contextlib.suppress(gexc.AlreadyExists):  # idempotent
        subscriber.create_subscription(request=request)
    return str(path)


def ensure_tables(
    client: bigquery.Client, project: str, definition: PipelineDefinition, *, gate_tables: bool = True
) -> dict[str, str]:
    """Datasets and tables for the log, retry queue, conflict log, schedule, boxscores, unavailable games,
    and (``gate_tables``) the phase 3-5 tables the gates read.

    Datasets first, then every table concurrently (each API call is a round trip).
    """
    from concurrent.futures import ThreadPoolExecutor

    from deploy.local.raw_tables import create_upstream_table

    settings, games = definition.pipeline, definition.games
    specs = table_specs(definition)  # what the package writes: the tables deploy.spec creates in the cloud
    # the real schemas: the schedule, the boxscore chain, and the phase 3-5 tables the gates read
    gated = (*definition.gate_tables(), *definition.condition_tables()) if gate_tables else ()
    raw = sorted({games.schedule_table, *(s.table for s in games.boxscore_sources), *gated})
    datasets = sorted({settings.dataset, *(t.dataset for t in specs), *(ref.split(".")[0] for ref in raw)})
    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(lambda d: client.create_dataset(f"{project}.{d}", exists_ok=True), datasets))
        spec_ids = list(pool.map(lambda spec: ensure_table(client, project, spec), specs))
        list(pool.map(lambda ref: create_upstream_table(client, project, ref), raw))
    tables = {spec.spec_file.stem: table_id for spec, table_id in zip(specs, spec_ids, strict=True)}
    tables[games.unavailable_table] = tables["game_unavailable"]
    tables.update({ref: f"{project}.{ref}" for ref in raw})
    return tables
