"""Dispatches a ``RetryRequest`` to a processor: Pub/Sub topic or authenticated HTTP POST."""

from __future__ import annotations

import urllib.error
import urllib.request
from typing import TYPE_CHECKING

from google.api_core import exceptions as gexc

from shared.contracts.messages import RetryRequest
from shared.errors import PermanentError, TransientError
from shared.gcp import id_token
from shared.retry.policy import is_client_error

if TYPE_CHECKING:
    import google.cloud.pubsub_v1 as pubsub_v1


class DispatchRejectedError(PermanentError):
    """The processor's endpoint refused the request with a client error (4xx): never retried."""


class RetryDispatcher:
    def __init__(
        self, publisher: pubsub_v1.PublisherClient, project: str, *, auth: str = "id_token", timeout: float = 30.0
    ) -> None:
        self.publisher = publisher
        self.project = project
        self.auth = auth
        self.timeout = timeout

    def dispatch(self, route: tuple[str, str], request: RetryRequest) -> str:
        """Send ``request``; returns a message id or HTTP status. Raises Transient or DispatchRejected."""
        kind, target = route
        if kind == "topic":
            return self._publish(target, request)
        return self._post(target, request)

    def _publish(self, topic: str, request: RetryRequest) -> str:
        path = self.publisher.topic_path(self.project, topic)
        attributes = {
            "processor_name": request.processor_name,
            "game_date": request.game_date.isoformat(),
            "attempt": str(request.attempt),
            "queue_id": request.queue_id,
            "request_id": request.request_id,
        }
        if request.fallback_for:
            attributes["fallback_for"] = request.fallback_for
        try:
            return str(self.publisher.publish(path, request.to_json_bytes(), **attributes).result(timeout=self.timeout))
        except (gexc.GoogleAPIError, TimeoutError, OSError) as exc:
            raise TransientError(f"publishing retry of {request.processor_name} to {path} failed: {exc}") from exc

    def _post(self, url: str, request: RetryRequest) -> str:
        headers = {"Content-Type": "application/json"}
        if self.auth == "id_token":
            headers["Authorization"] = f"Bearer {id_token(url)}"
        req = urllib.request.Request(url, data=request.to_json_bytes(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(req, timeout=self.timeout) as resp:
                return f"HTTP {resp.status}"
        except urllib.error.HTTPError as exc:
            body = exc.read(500).decode("utf-8", "replace")
            if is_client_error(exc.code):
                raise DispatchRejectedError(f"{url} answered {exc.code}: {body}") from exc
            raise TransientError(f"{url} answered {exc.code}: {body}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TransientError(f"POST {url} failed: {exc}") from exc
