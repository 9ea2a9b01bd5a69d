"""Factories for the official Google Cloud clients.

The Pub/Sub and Firestore clients honour ``PUBSUB_EMULATOR_HOST`` and
``FIRESTORE_EMULATOR_HOST`` themselves. The BigQuery factory lives in ``shared.gcp_bigquery``
so that a function whose code never asks for BigQuery does not ship google-cloud-bigquery
(the bundle build follows imports). Each factory imports its library on call, so a function
that never touches a client never loads it (lesson L16: a function loads only what it uses).
A client built on first use is passed as ``shared.deferred.Deferred(lambda: ...)``.

Every client is bounded where it is built (lesson L26: a hang is not an error): each call has
``shared.deadline.call_timeout()`` seconds (``DEFAULT_CALL_TIMEOUT``, ``EMULATOR_CALL_TIMEOUT`` on
an emulator, or ``$PHASECHAIN_CALL_TIMEOUT``),
its retries included, so a backend that accepts the connection and never answers fails the call
well before the function's timeout instead of hanging it. The deadline is read when a client is
built (``phasectl`` re-binds the shared clients with its ``--timeout``).
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, TypeVar, cast

from shared.deadline import backend_label, bind_firestore, bind_publisher, bind_subscriber, call_timeout
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
    """A Firestore client (the emulator when ``FIRESTORE_EMULATOR_HOST`` is set), shared per process;
    every call bounded by the call deadline."""
    from google.cloud import firestore

    project = project or project_id(os.environ)
    host = os.environ.get("FIRESTORE_EMULATOR_HOST", "")

    def make() -> firestore.Client:
        client = firestore.Client(project=project)
        bind_firestore(client, call_timeout(emulator=bool(host)), backend_label("Firestore", host), streams=False)
        return client

    return shared_client(("firestore", project, host), make)


def publisher_client() -> pubsub_v1.PublisherClient:
    """A Pub/Sub publisher (the emulator when ``PUBSUB_EMULATOR_HOST`` is set), shared per process;
    every call (each batch's publish too) bounded by the call deadline."""
    import google.cloud.pubsub_v1 as pubsub_v1

    host = os.environ.get("PUBSUB_EMULATOR_HOST", "")

    def make() -> pubsub_v1.PublisherClient:
        client = pubsub_v1.PublisherClient()
        bind_publisher(client, call_timeout(emulator=bool(host)), backend_label("Pub/Sub", host), streams=False)
        return client

    return shared_client(("publisher", host), make)


def subscriber_client() -> pubsub_v1.SubscriberClient:
    """A Pub/Sub subscriber (the emulator when ``PUBSUB_EMULATOR_HOST`` is set), not shared; every
    call but the streaming pull bounded by the call deadline."""
    import google.cloud.pubsub_v1 as pubsub_v1

    host = os.environ.get("PUBSUB_EMULATOR_HOST", "")
    client = pubsub_v1.SubscriberClient()
    bind_subscriber(client, call_timeout(emulator=bool(host)), backend_label("Pub/Sub", host), streams=False)
    return client


LOCAL_TOKENS_ENV = "PHASECHAIN_LOCAL_ID_TOKENS"


def local_id_tokens(env: Mapping[str, str]) -> bool:
    """Whether ID tokens are the local cloud's unsigned ones: ``PHASECHAIN_LOCAL_ID_TOKENS=1`` with an
    emulator host set (never on Google: there the metadata server mints real tokens)."""
    emulated = bool(env.get("FIRESTORE_EMULATOR_HOST") or env.get("PUBSUB_EMULATOR_HOST"))
    return emulated and env.get(LOCAL_TOKENS_ENV) == "1"


def local_id_token(audience: str) -> str:
    """An unsigned token naming ``audience`` (the local cloud's stand-ins record it; never valid on Google)."""
    import base64
    import json

    def part(value: dict[str, str]) -> str:
        return base64.urlsafe_b64encode(json.dumps(value).encode()).rstrip(b"=").decode()

    return f"{part({'alg': 'none', 'typ': 'JWT'})}.{part({'aud': audience, 'iss': 'phasechain-local'})}."


def id_token(audience: str) -> str:
    """A Google-signed ID token for ``audience`` (Cloud Run / Functions invoker auth), each request
    for it bounded by the call deadline.

    Raises:
        TransientError: no token could be minted (metadata server or credentials unavailable).
    """
    if local_id_tokens(os.environ):
        return local_id_token(audience)
    import functools

    import google.auth.transport.requests
    import google.oauth2.id_token

    from shared.errors import TransientError

    # every request with the call deadline unless it sets its own (google-auth's default is 120 s;
    # the metadata server's reads set 3 s)
    request = functools.partial(google.auth.transport.requests.Request(), timeout=call_timeout())
    try:
        token = google.oauth2.id_token.fetch_id_token(request, audience)  # type: ignore[no-untyped-call]
    except Exception as exc:
        raise TransientError(f"could not mint an ID token for {audience}: {exc}") from exc
    return str(token)
