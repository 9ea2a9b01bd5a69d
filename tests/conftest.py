"""Session fixtures: one real local cloud (Pub/Sub + Firestore emulators, local-bigquery).

The stack starts lazily, only when a test asks for it, and is stopped by PID at the end
of the session. Per-test isolation: Firestore reset, unique topic/subscription names,
a unique BigQuery dataset per test.
"""

from __future__ import annotations

import io
import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from deploy.local.emulators import LocalCloud

TESTS_DIR = Path(__file__).parent
EVENTS_DIR = TESTS_DIR / "data" / "events"
PROJECT = "test-project"


@pytest.fixture(scope="session")
def local_cloud() -> Iterator[LocalCloud]:
    cloud = LocalCloud(project=PROJECT).start()
    saved = {k: os.environ.get(k) for k in cloud.env()}
    os.environ.update(cloud.env())
    try:
        yield cloud
    finally:
        cloud.stop()
        for key, old in saved.items():
            if old is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = old


@pytest.fixture
def cloud(local_cloud: LocalCloud) -> LocalCloud:
    """The session's local cloud with Firestore emptied for this test."""
    local_cloud.reset_firestore()
    return local_cloud


@pytest.fixture
def unique() -> str:
    """A short unique suffix for topic, subscription and dataset names."""
    return uuid.uuid4().hex[:10]


@pytest.fixture
def bq_dataset(cloud: LocalCloud, unique: str) -> Iterator[str]:
    """A fresh BigQuery dataset id on local-bigquery, deleted after the test."""
    from shared.gcp_bigquery import bigquery_client

    client = bigquery_client(cloud.project)
    dataset_id = f"test_{unique}"
    client.create_dataset(dataset_id)
    try:
        yield dataset_id
    finally:
        client.delete_dataset(dataset_id, delete_contents=True, not_found_ok=True)


@pytest.fixture(autouse=True)
def _drop_rig_datasets() -> Iterator[None]:
    """Drop the BigQuery datasets the test's own rigs created (module-scoped rigs are kept).

    Every rig makes three datasets and a dozen tables; left in place they make every later
    local-bigquery call slower, and the suite slower as it runs.
    """
    from tests.support.rig import CREATED_DATASETS

    start = len(CREATED_DATASETS)
    yield
    created = CREATED_DATASETS[start:]
    del CREATED_DATASETS[start:]
    if not created:
        return
    from shared.gcp_bigquery import bigquery_client

    for project, dataset in created:
        bigquery_client(project).delete_dataset(dataset, delete_contents=True, not_found_ok=True)


@pytest.fixture
def captured_log() -> Iterator[io.StringIO]:
    """The package's structured log lines of this test, as JSON lines in a string buffer."""
    from shared import structured_log

    stream = io.StringIO()
    structured_log.configure(stream=stream)
    try:
        yield stream
    finally:
        structured_log.reset_configuration()
