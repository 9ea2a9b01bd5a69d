"""Factories for the official Google Cloud clients.

The Pub/Sub and Firestore clients honour ``PUBSUB_EMULATOR_HOST`` and
``FIRESTORE_EMULATOR_HOST`` themselves. The BigQuery factory lives in ``shared.gcp_bigquery``
so that a function whose code never asks for BigQuery does not ship google-cloud-bigquery
(the bundle build follows imports). Each factory imports its library on call, so a function
that never touches a client never loads it (lesson L16: a function loads only what it uses).
A client built on first use is passed as ``shared.deferred.Deferred(lambda: ...)``.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar, cast

from shared.env import project_id

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1
    from google.cloud import firestore

T = TypeVar("T")

_clients: dict[tuple[str, ...], object] = {}
_clients_lock = threading.Lock()


def shared_client(key: tuple[str, ...], make: Callable[[], T]) -> T:
    """One client per (kind, project, endpoint) per process: a function's transition service, retry
    queue and log writer share it instead of each paying a client construction on the cold path."""
    with _clients_lock:
        if key not in _clients:
            _clients[key] = make()
        return cast(T, _clients[key])


def firestore_client(project: str | None = None) -> firestore.Client:
    """A Firestore client (the emulator when ``FIRESTORE_EMULATOR_HOST`` is set), shared per process."""
    from google.cloud import firestore

    project = project or project_id(os.environ)
    host = os.environ.get("FIRESTORE_EMULATOR_HOST", "")
    return shared_client(("firestore", project, host), lambda: firestore.Client(project=project))


def publisher_client() -> pubsub_v1.PublisherClient:
    """A Pub/Sub publisher (the emulator when ``PUBSUB_EMULATOR_HOST`` is set), shared per process."""
    import google.cloud.pubsub_v1 as pubsub_v1

    return shared_client(("publisher", os.environ.get("PUBSUB_EMULATOR_HOST", "")), pubsub_v1.PublisherClient)


def subscriber_client() -> pubsub_v1.SubscriberClient:
    """A Pub/Sub subscriber (the emulator when ``PUBSUB_EMULATOR_HOST`` is set)."""
    import google.cloud.pubsub_v1 as pubsub_v1

    return pubsub_v1.SubscriberClient()


def id_token(audience: str) -> str:
    """A Google-signed ID token for ``audience`` (Cloud Run / Functions invoker auth).

    Raises:
        TransientError: no token could be minted (metadata server or credentials unavailable).
    """
    import google.auth.transport.requests
    import google.oauth2.id_token

    from shared.errors import TransientError

    try:
        token = google.oauth2.id_token.fetch_id_token(  # type: ignore[no-untyped-call]
            google.auth.transport.requests.Request(), audience
        )
    except Exception as exc:
        raise TransientError(f"could not mint an ID token for {audience}: {exc}") from exc
    return str(token)
