"""What a job calls: the request built once per slot (stored with the run, so every attempt sends the
same bytes) and one attempt at sending it.

HTTP: the service's URL (``url_env`` when set, else Cloud Run's ``https://{service}-{project
number}.{region}.run.app``), the job's path and query, a JSON body rendered from the template, and
an OIDC ID token whose audience is the service's base URL. Pub/Sub: the topic, and either a
``TimedTriggerMessage`` (phase 6 export reads ``target_date``/``export_types``/``update_latest``)
or the rendered JSON body.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from shared.gcp import local_id_token as local_id_token  # re-exported: the local cloud's unsigned tokens
from shared.pipeline.definition import Job, PipelineDefinition, Season
from shared.schedules.plan import Slot, Verdict, body_bytes, classify_status, excerpt, render, template_values

if TYPE_CHECKING:
    from google.cloud import pubsub_v1

PROJECT_NUMBER_ENV = "GOOGLE_CLOUD_PROJECT_NUMBER"


@dataclass(frozen=True)
class Attempt:
    """One attempt's result."""

    verdict: Verdict
    http_status: int | None = None
    duration_ms: int = 0
    response: str = ""
    error: str = ""
    details: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {
            "verdict": self.verdict,
            "http_status": self.http_status,
            "duration_ms": self.duration_ms,
            "response": self.response,
            "error": self.error,
            **self.details,
        }


class Targets:
    """Builds and sends job requests. ``publisher`` is called on first Pub/Sub use; ``token(audience)``
    mints ID tokens (default ``shared.gcp.id_token``); ``opener`` sends HTTP (default urllib)."""

    def __init__(
        self,
        definition: PipelineDefinition,
        project: str,
        *,
        publisher: Callable[[], pubsub_v1.PublisherClient],
        environ: Mapping[str, str] | None = None,
        token: Callable[[str], str] | None = None,
        opener: Callable[..., Any] | None = None,
    ) -> None:
        self.definition = definition
        self.project = project
        self._publisher = publisher
        self.env = environ if environ is not None else os.environ
        self._token = token
        self._opener = opener
        self.excerpt_chars = definition.dispatcher.response_excerpt_chars

    # -- the request ---------------------------------------------------------------------
    def base_url(self, service: str) -> str | None:
        """The service's base URL, or None when neither its env variable nor the project number is set."""
        spec = self.definition.services[service]
        if spec.url_env and self.env.get(spec.url_env):
            return self.env[spec.url_env].rstrip("/")
        number = self.env.get(PROJECT_NUMBER_ENV, "")
        if number.isdigit():
            return f"https://{service}-{number}.{self.definition.deploy.region}.run.app"
        return None

    def request(self, job: Job, slot: Slot, season: Season | None) -> dict[str, Any]:
        """The slot's request as a storable document (bodies as text)."""
        values = template_values(slot, job, season)
        if job.http is not None:
            h = job.http
            base = self.base_url(h.service)
            spec = self.definition.services[h.service]
            if base is None:
                how = f"${spec.url_env} or ${PROJECT_NUMBER_ENV}" if spec.url_env else f"${PROJECT_NUMBER_ENV}"
                return {"kind": "http", "error": f"the URL of service {h.service!r} is not known: set {how}"}
            query = render(h.query, values)
            from urllib.parse import urlencode

            url = base + h.path + (("?" + urlencode(sorted(query.items()))) if query else "")
            body = body_bytes(render(h.body, values)).decode() if h.body is not None else None
            return {
                "kind": "http",
                "method": h.method,
                "url": url,
                "audience": base,
                "auth": h.auth,
                "body": body,
                "timeout_seconds": h.timeout_seconds,
            }
        assert job.pubsub is not None
        p = job.pubsub
        attributes = {"scheduler_job": job.name, "scheduled_time": slot.at.isoformat().replace("+00:00", "Z")}
        if p.message == "trigger":
            data, extra = _trigger_message(job, slot, values)
            attributes.update(extra)
        else:
            data = body_bytes(render(p.body, values)).decode()
        return {"kind": "pubsub", "topic": p.topic, "data": data, "attributes": attributes}

    # -- one attempt ---------------------------------------------------------------------
    def send(self, request: Mapping[str, Any], timeout: float) -> Attempt:
        if request.get("error"):
            return Attempt("config_error", error=str(request["error"]))
        start = time.monotonic()
        if request["kind"] == "http":
            result = self._http(request, timeout)
        else:
            result = self._pubsub(request, timeout)
        ms = int((time.monotonic() - start) * 1000)
        return Attempt(result.verdict, result.http_status, ms, result.response, result.error, result.details)

    def _http(self, request: Mapping[str, Any], timeout: float) -> Attempt:
        import urllib.error
        import urllib.request

        headers = {"Content-Type": "application/json", "User-Agent": "phasechain-schedule-dispatcher"}
        if request.get("auth") == "id_token":
            from shared.errors import TransientError

            mint = self._token or _default_token
            try:
                headers["Authorization"] = f"Bearer {mint(str(request['audience']))}"
            except TransientError as exc:
                return Attempt("retry", error=f"no ID token: {exc}")
        data = request["body"].encode() if request.get("body") is not None else None
        req = urllib.request.Request(str(request["url"]), data=data, method=str(request["method"]), headers=headers)
        opener = self._opener or urllib.request.urlopen
        try:
            with opener(req, timeout=timeout) as resp:
                status = int(resp.status)
                text = resp.read(4096).decode("utf-8", "replace")
        except urllib.error.HTTPError as exc:
            status = int(exc.code)
            text = exc.read(4096).decode("utf-8", "replace") if exc.fp is not None else str(exc.reason)
        except TimeoutError as exc:
            return Attempt("retry", error=f"timed out after {timeout:.0f} s: {exc}")
        except (urllib.error.URLError, OSError) as exc:
            return Attempt("retry", error=f"{type(exc).__name__}: {getattr(exc, 'reason', exc)}")
        verdict = classify_status(status)
        error = "" if verdict == "succeeded" else f"HTTP {status}"
        return Attempt(verdict, status, 0, excerpt(text, self.excerpt_chars), error)

    def _pubsub(self, request: Mapping[str, Any], timeout: float) -> Attempt:
        from google.api_core import exceptions as gexc

        client = self._publisher()
        topic = client.topic_path(self.project, str(request["topic"]))
        try:
            future = client.publish(topic, str(request["data"]).encode(), **dict(request.get("attributes") or {}))
            message_id = str(future.result(timeout=timeout))
        except gexc.NotFound as exc:
            return Attempt("config_error", error=f"topic {request['topic']!r} does not exist: {exc.message}")
        except (gexc.PermissionDenied, gexc.InvalidArgument) as exc:
            return Attempt("client_error", error=f"{type(exc).__name__}: {exc.message}")
        except Exception as exc:  # noqa: BLE001 - any other publish failure is retried, bounded by max_attempts
            return Attempt("retry", error=f"{type(exc).__name__}: {exc}")
        return Attempt("succeeded", details={"message_id": message_id})


def _trigger_message(job: Job, slot: Slot, values: Mapping[str, str]) -> tuple[str, dict[str, str]]:
    """A ``TimedTriggerMessage`` for a Pub/Sub job: deterministic (its time is the slot's), so a
    retried attempt sends the same bytes under the same ``trigger_id``."""
    from datetime import date

    from shared.contracts.messages import TimedTriggerMessage, make_trigger_id

    assert job.pubsub is not None
    target = date.fromisoformat(values[job.pubsub.date])
    message = TimedTriggerMessage(
        trigger_id=make_trigger_id(job.name, target, 1 + slot.manual, slot.key),
        name=job.name,
        slot=slot.key,
        mode=slot.key,
        game_date=target,
        target_date=target,
        generation=1 + slot.manual,
        trigger_source="scheduler" if not slot.manual else "manual",
        triggered_by=f"phasechain:schedule:{job.name}",
        triggered_at=slot.at,
        reason=f"scheduled run {job.name} at {slot.local.isoformat()}",
        correlation_id=f"{job.name}-{target.isoformat()}",
        export_types=list(job.pubsub.export_types),
        update_latest=job.pubsub.update_latest,
    )
    return message.to_json_bytes().decode(), message.attributes()


def _default_token(audience: str) -> str:
    from shared.gcp import id_token

    return id_token(audience)
