"""The consumer's HTTP start call against a real HTTP server on loopback (no Google involved)."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from shared.errors import TransientError
from shared.localcloud.emulators import free_port
from shared.orchestration.http_delivery import HttpDeliverer, HttpDeliveryRejected
from shared.pipeline.definition import HttpDelivery

BODY = {"game_date": "2026-01-24", "trigger_id": "phase4_to_phase5:2026-01-24:g1"}


class Server:
    def __init__(self) -> None:
        self.statuses: list[int] = []
        self.received: list[tuple[str, dict[str, str], dict[str, Any]]] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                outer.received.append((self.path, dict(self.headers), body))
                self.send_response(outer.statuses.pop(0) if outer.statuses else 202)
                self.end_headers()
                self.wfile.write(b"{}")

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    s = Server()
    yield s
    s.httpd.shutdown()
    s.httpd.server_close()


def deliverer(url: str | None, *, auth: str = "none", token: Any = None) -> HttpDeliverer:
    delivery = HttpDelivery(
        url_env="COORDINATOR_URL", path="/start", auth=auth, timeout_seconds=5, delivered_statuses=(200, 202, 409)
    )  # type: ignore[arg-type]
    return HttpDeliverer(delivery, {"COORDINATOR_URL": url} if url else {}, token=token)


@pytest.mark.parametrize("status", [200, 202, 409])
def test_delivered_statuses(server: Server, status: int) -> None:
    server.statuses.append(status)
    result = deliverer(server.url).deliver(BODY)
    assert (result.status, result.url) == (status, f"{server.url}/start")
    path, headers, body = server.received[0]
    assert path == "/start" and body == BODY and "Authorization" not in headers
    assert headers["Content-Type"] == "application/json"


def test_id_token_for_the_service_url_is_sent(server: Server) -> None:
    audiences: list[str] = []

    def token(audience: str) -> str:
        audiences.append(audience)
        return "signed-token"

    deliverer(server.url + "/", auth="id_token", token=token).deliver(BODY)
    assert audiences == [server.url]  # the audience is the base URL without /start, as upstream
    assert server.received[0][1]["Authorization"] == "Bearer signed-token"


@pytest.mark.parametrize("status", [500, 503, 429, 408])
def test_server_errors_and_throttling_are_transient(server: Server, status: int) -> None:
    server.statuses.append(status)
    with pytest.raises(TransientError, match=str(status)):
        deliverer(server.url).deliver(BODY)


@pytest.mark.parametrize("status", [400, 401, 403, 404])
def test_client_errors_are_rejected_not_retried(server: Server, status: int) -> None:
    server.statuses.append(status)
    with pytest.raises(HttpDeliveryRejected, match=str(status)):
        deliverer(server.url).deliver(BODY)


def test_a_2xx_outside_the_delivered_statuses_is_rejected(server: Server) -> None:
    server.statuses.append(204)
    with pytest.raises(HttpDeliveryRejected, match="204"):
        deliverer(server.url).deliver(BODY)


def test_nothing_listening_is_transient() -> None:
    with pytest.raises(TransientError, match="failed"):
        deliverer(f"http://127.0.0.1:{free_port()}").deliver(BODY)


def test_no_url_configured_is_rejected_naming_the_variable() -> None:
    with pytest.raises(HttpDeliveryRejected, match="COORDINATOR_URL"):
        deliverer(None).deliver(BODY)


def test_a_token_that_cannot_be_minted_is_transient(server: Server) -> None:
    def no_token(audience: str) -> str:
        raise TransientError(f"could not mint an ID token for {audience}")

    with pytest.raises(TransientError, match="ID token"):
        deliverer(server.url, auth="id_token", token=no_token).deliver(BODY)
    assert server.received == []
