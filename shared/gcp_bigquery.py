"""The BigQuery client factory (``BIGQUERY_EMULATOR_HOST`` aware), apart from ``shared.gcp``.

BigQuery has no emulator switch in its client, so ``BIGQUERY_EMULATOR_HOST``
(``http://host:port``) is read here and turned into an anonymous client pointed at that
endpoint. Only modules that query or write BigQuery import this one, so the bundle build
(which follows imports) ships google-cloud-bigquery only with them (cold start: a function
that never queries BigQuery neither ships nor loads its library).
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shared.env import project_id
from shared.gcp import shared_client

if TYPE_CHECKING:
    from google.cloud import bigquery

BIGQUERY_EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"


def bigquery_client(project: str | None = None) -> bigquery.Client:
    """A BigQuery client for ``project`` (the emulator when ``BIGQUERY_EMULATOR_HOST`` is set)."""
    project = project or project_id(os.environ)
    endpoint = os.environ.get(BIGQUERY_EMULATOR_ENV, "")
    return shared_client(("bigquery", project, endpoint), lambda: _new_bigquery_client(project, endpoint))


def _new_bigquery_client(project: str, endpoint: str) -> bigquery.Client:
    from google.cloud import bigquery

    if endpoint:
        from google.api_core.client_options import ClientOptions
        from google.auth.credentials import AnonymousCredentials

        if "://" not in endpoint:
            endpoint = f"http://{endpoint}"
        return bigquery.Client(
            project=project,
            credentials=AnonymousCredentials(),  # type: ignore[no-untyped-call]
            client_options=ClientOptions(api_endpoint=endpoint),
        )
    return bigquery.Client(project=project)
