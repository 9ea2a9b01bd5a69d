"""The BigQuery client factory (``BIGQUERY_EMULATOR_HOST`` aware), apart from ``shared.gcp``.

BigQuery has no emulator switch in its client, so ``BIGQUERY_EMULATOR_HOST``
(``http://host:port``) is read here and turned into an anonymous client pointed at that
endpoint. Only modules that query or write BigQuery import this one, so the bundle build
(which follows imports) ships google-cloud-bigquery only with them (cold start: a function
that never queries BigQuery neither ships nor loads its library).

The client is bounded where it is built (``shared.deadline``, lesson L26): every request has at
most the call deadline to connect and to answer, and a request that runs out of it raises
DeadlineExceeded (not retried) instead of waiting on a server that never answers.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from shared.deadline import backend_label, bind_http, call_timeout
from shared.env import project_id
from shared.gcp import shared_client

if TYPE_CHECKING:
    from google.cloud import bigquery

BIGQUERY_EMULATOR_ENV = "BIGQUERY_EMULATOR_HOST"


def bigquery_client(project: str | None = None) -> bigquery.Client:
    """A BigQuery client for ``project`` (the emulator when ``BIGQUERY_EMULATOR_HOST`` is set), shared
    per process; every request bounded by the call deadline."""
    project = project or project_id(os.environ)
    endpoint = os.environ.get(BIGQUERY_EMULATOR_ENV, "")

    def make() -> bigquery.Client:
        client = _new_bigquery_client(project, endpoint)
        bind_http(client, call_timeout(emulator=bool(endpoint)), backend_label("BigQuery", endpoint))
        return client

    return shared_client(("bigquery", project, endpoint), make)


def _new_bigquery_client(project: str, endpoint: str) -> bigquery.Client:
    """A BigQuery client as the library builds it (not bounded: ``bigquery_client`` bounds it)."""
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
