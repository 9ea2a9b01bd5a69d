"""The consumer's HTTP start call of a trigger (``[transitions.delivery.http]``), thin adapter.

The replaced phase 4→5 orchestrator POSTs the prediction coordinator's ``/start`` with a Google
ID token (audience: the base URL) after publishing (phase4_to_phase5/main.py:1660-1705 at
najicham/nba-stats-scraper@18f6ecfe), and only logs a failure. Here the outcome is classified:

* a status in ``delivered_statuses`` (the coordinator answers 202, or 409 when a batch for the
  date is already running) → delivered;
* 5xx, 408, 429, a timeout, a refused connection, no ID token → ``TransientError``: the caller
  releases its claim and raises, Pub/Sub redelivers, the trigger is re-published with the same
  ``trigger_id`` and the call is made again;
* any other 4xx, or no URL configured → ``HttpDeliveryRejected``: a retry cannot help, so the
  trigger stands, the failure is recorded with the latch and alerted.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from shared.errors import PermanentError, TransientError
from shared.pipeline.definition import HttpDelivery

_RETRYABLE_CLIENT_STATUSES = frozenset({408, 425, 429})


class HttpDeliveryRejected(PermanentError):
    """The consumer's endpoint refused the call, or none is configured: retrying cannot help."""


@dataclass(frozen=True)
class HttpResult:
    url: str
    status: int

    def as_dict(self) -> dict[str, Any]:
        return {"url": self.url, "status": self.status}


class HttpDeliverer:
    """POSTs a JSON body to ``delivery``'s URL (from ``url_env``, else ``url``) + ``path``."""

    def __init__(
        self,
        delivery: HttpDelivery,
        environ: Mapping[str, str],
        *,
        token: Callable[[str], str] | None = None,
    ) -> None:
        self.delivery = delivery
        self.base_url = (environ.get(delivery.url_env) or delivery.url or "").rstrip("/")
        self._token = token

    @property
    def url(self) -> str | None:
        return f"{self.base_url}{self.delivery.path}" if self.base_url else None

    def deliver(self, body: Mapping[str, Any]) -> HttpResult:
        url = self.url
        if url is None:
            raise HttpDeliveryRejected(
                f"no URL for the consumer: set {self.delivery.url_env} (or `url` in the definition)"
            )
        headers = {"Content-Type": "application/json"}
        if self.delivery.auth == "id_token":
            from shared.gcp import id_token

            mint = self._token or id_token
            headers["Authorization"] = f"Bearer {mint(self.base_url)}"  # audience: the service URL
        import urllib.error  # only the transition that calls a consumer pays for urllib, and only then
        import urllib.request

        request = urllib.request.Request(url, data=json.dumps(body).encode(), headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.delivery.timeout_seconds) as response:
                status = int(response.status)
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            detail = exc.read(300).decode("utf-8", "replace")
            if status in self.delivery.delivered_statuses:
                return HttpResult(url, status)
            if status >= 500 or status in _RETRYABLE_CLIENT_STATUSES:
                raise TransientError(f"POST {url} answered {status}: {detail}") from exc
            raise HttpDeliveryRejected(f"POST {url} answered {status}: {detail}") from exc
        except (urllib.error.URLError, TimeoutError, OSError) as exc:
            raise TransientError(f"POST {url} failed: {exc}") from exc
        if status not in self.delivery.delivered_statuses:
            raise HttpDeliveryRejected(f"POST {url} answered {status}, not one of {self.delivery.delivered_statuses}")
        return HttpResult(url, status)
