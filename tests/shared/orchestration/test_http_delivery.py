"""The consumer's HTTP start call against a real HTTP server on loopback (no Google involved)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from deploy.local.emulators import free_port
from deploy.local.standins import StartEndpoint
from shared.errors import TransientError
from shared.orchestration.http_delivery import HttpDeliverer, HttpDeliveryRejected
from shared.pipeline.definition import HttpDelivery

BODY = {"game_date": "2026-01-24", "trigger_id": "phase4_to_phase5:2026-01-24:g1"}


@pytest.fixture
def server() -> Iterator[StartEndpoint]:
    endpoint = StartEndpoint()
    yield endpoint
    endpoint.close()


def deliverer(url: str | None, *, auth: str = "none", token: Any = None) -> HttpDeliverer:
    delivery = HttpDelivery(
        url_env="COORDINATOR_URL", path="/start", auth=auth, timeout_seconds=5, delivered_statuses=(200, 202, 409)
    )  # type: ignore[arg-type]
    return HttpDeliverer(delivery, {"COORDINATOR_URL": url} if url else {}, token=token)


@pytest.mark.parametrize("status", [200, 202, 409])
def test_delivered_statuses(server: StartEndpoint, status: int) -> None:
    server.statuses.append(status)
    result = deliverer(server.url).deliver(BODY)
    assert (result.status, result.url) == (status, f"{server.url}/start")
    request = server.received[0]
    assert request["path"] == "/start" and request["body"] == BODY and "Authorization" not in request["headers"]
    assert request["headers"]["Content-Type"] == "application/json"


def test_id_token_for_the_service_url_is_sent(server: StartEndpoint) -> None:
    audiences: list[str] = []

    def token(audience: str) -> str:
        audiences.append(audience)
        return "signed-token"

    deliverer(server.url + "/", auth="id_token", token=token).deliver(BODY)
    assert audiences == [server.url]  # the audience is the base URL without /start, as upstream
    assert server.received[0]["headers"]["Authorization"] == "Bearer signed-token"


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_server_errors_and_throttling_are_transient(server: StartEndpoint, status: int) -> None:
    server.statuses.append(status)
    with pytest.raises(TransientError, match=str(status)):
        deliverer(server.url).deliver(BODY)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_rejected_not_retried(server: StartEndpoint, status: int) -> None:
    server.statuses.append(status)
    with pytest.raises(HttpDeliveryRejected, match=str(status)):
        deliverer(server.url).deliver(BODY)


def test_a_2xx_outside_the_delivered_statuses_is_rejected(server: StartEndpoint) -> None:
    server.statuses.append(204)
    with pytest.raises(HttpDeliveryRejected, match="204"):
        deliverer(server.url).deliver(BODY)


def test_nothing_listening_is_transient() -> None:
    with pytest.raises(TransientError, match="failed"):
        deliverer(f"http://127.0.0.1:{free_port()}").deliver(BODY)


def test_no_url_configured_is_rejected_naming_the_variable() -> None:
    with pytest.raises(HttpDeliveryRejected, match="COORDINATOR_URL"):
        deliverer(None).deliver(BODY)


def test_a_token_that_cannot_be_minted_is_transient(server: StartEndpoint) -> None:
    def no_token(audience: str) -> str:
        raise TransientError(f"could not mint an ID token for {audience}")

    with pytest.raises(TransientError, match="ID token"):
        deliverer(server.url, auth="id_token", token=no_token).deliver(BODY)
    assert server.received == []
