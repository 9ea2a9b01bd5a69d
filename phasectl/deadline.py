"""A deadline on every call ``phasectl`` makes through the shared Google Cloud clients.

The CLI's clients are the process's shared ones (``shared.gcp`` / ``shared.gcp_bigquery``), so
the services it drives (transition state, retry queue, gate queries, trigger publisher) use the
same instances. Bounding the clients bounds those services' calls too, which take no timeout:

* Firestore and Pub/Sub (gRPC, generated clients): each method's default retry is cut to the
  deadline and its default timeout set to it (a smaller one a caller passes is kept). A server
  that accepts the connection but never answers fails with DeadlineExceeded/RetryError after the
  deadline instead of the methods' 60-300 s of retries. The generated transports keep their
  methods, wrapped with their defaults, in ``_wrapped_methods``: wrapped here in turn.
* BigQuery (HTTP): every request of the client's session gets at most the deadline as its
  connect and read timeouts; a timeout becomes a DeadlineExceeded, which the client does not
  retry (it retries ``requests`` timeouts for up to 10 minutes). On an emulator, a refused
  connection is not retried either: the emulator has gone away.

An error a bounded call raises carries ``phasectl_backend`` (which backend, where) for the
one-line report (``cli_connect.failure_line``). ``unbind`` restores a client: an in-process caller
of ``phasectl.main`` gets its shared clients back as they were.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from google.api_core import exceptions as gexc
from google.api_core import gapic_v1

from phasectl.connect import BACKEND_ATTRIBUTE, UNREACHABLE_ATTRIBUTE

DEFAULT = gapic_v1.method.DEFAULT
Undo = Callable[[], None]


def _mark(exc: BaseException, label: str) -> None:
    try:
        setattr(exc, BACKEND_ATTRIBUTE, label)
    except AttributeError:  # an exception type with slots: reported without its backend
        return


def _at_most(value: float | None, seconds: float) -> float:
    return seconds if value is None or value <= 0 else min(float(value), seconds)


def _call_timeout(value: Any, seconds: float) -> float:
    """A number of seconds, at most ``seconds``: a caller's number, or an api_core ``Timeout``'s
    (Pub/Sub's publisher passes ``ConstantTimeout(60)``), or none (the method's default)."""
    if isinstance(value, int | float):
        return _at_most(value, seconds)
    given = getattr(value, "_timeout", None)  # ConstantTimeout, TimeToDeadlineTimeout
    return _at_most(given, seconds) if isinstance(given, int | float) else seconds


class DeadlineCall:
    """A generated client's method with ``seconds`` as its default timeout and retry deadline."""

    def __init__(self, method: Any, seconds: float, label: str) -> None:
        self.method = method
        self.seconds = seconds
        self.label = label

    def __call__(self, *args: Any, timeout: Any = DEFAULT, retry: Any = DEFAULT, **kwargs: Any) -> Any:
        seconds = self.seconds
        if retry is DEFAULT:
            retry = getattr(self.method, "_retry", DEFAULT)  # the method's own default (predicate, backoff)
        if retry is not None and retry is not DEFAULT and hasattr(retry, "with_timeout"):
            if retry.timeout is None or retry.timeout > seconds:
                retry = retry.with_timeout(seconds)
        timeout = _call_timeout(timeout, seconds)
        try:
            return self.method(*args, timeout=timeout, retry=retry, **kwargs)
        except (gexc.RetryError, gexc.DeadlineExceeded, gexc.ServiceUnavailable) as exc:
            _mark(exc, self.label)
            raise


def bind_transport(transport: Any, seconds: float, label: str) -> Undo:
    """Bound every method of a generated gRPC transport; returns how to undo it."""
    methods = getattr(transport, "_wrapped_methods", None)
    if not isinstance(methods, dict) or not methods:
        raise RuntimeError(f"cannot bound the calls of {type(transport).__name__}: no wrapped methods")
    originals: dict[Any, Any] = {}
    for key, method in list(methods.items()):
        if isinstance(method, DeadlineCall):
            method.seconds, method.label = seconds, label
            continue
        originals[key] = method
        methods[key] = DeadlineCall(method, seconds, label)

    def undo() -> None:
        for key, method in originals.items():
            if isinstance(methods.get(key), DeadlineCall):
                methods[key] = method

    return undo


def bind_firestore(client: Any, seconds: float, label: str) -> Undo:
    """A ``google.cloud.firestore.Client``: its generated API client's transport."""
    return bind_transport(client._firestore_api._transport, seconds, label)


def bind_publisher(client: Any, seconds: float, label: str) -> Undo:
    """A ``google.cloud.pubsub_v1.PublisherClient`` (a generated client itself)."""
    return bind_transport(client._transport, seconds, label)


def _request_timeout(value: Any, seconds: float) -> Any:
    if isinstance(value, tuple):
        return tuple(_at_most(v, seconds) for v in value)
    if value is None or isinstance(value, int | float):
        return _at_most(value, seconds)
    return seconds


class DeadlineRequest:
    """A ``requests`` session's ``request`` with at most ``seconds`` to connect and to read."""

    def __init__(self, request: Callable[..., Any], seconds: float, label: str, unreachable: str | None) -> None:
        self.request = request
        self.seconds = seconds
        self.label = label
        self.unreachable = unreachable  # the one line when an emulator refuses (None: Google Cloud)

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import requests

        kwargs["timeout"] = _request_timeout(kwargs.get("timeout"), self.seconds)
        try:
            return self.request(*args, **kwargs)
        except requests.exceptions.Timeout as exc:
            late = gexc.DeadlineExceeded(f"no answer within {self.seconds:g} s: {exc}")  # type: ignore[no-untyped-call]
            _mark(late, self.label)
            raise late from exc
        except requests.exceptions.ConnectionError as exc:
            if self.unreachable is None:  # Google Cloud: the client retries a dropped connection
                raise
            gone = gexc.GoogleAPICallError(self.unreachable)  # type: ignore[no-untyped-call]  # not retried
            _mark(gone, self.label)
            setattr(gone, UNREACHABLE_ATTRIBUTE, self.unreachable)
            raise gone from exc


def bind_http(client: Any, seconds: float, label: str, unreachable: str | None = None) -> Undo:
    """A ``google.cloud.bigquery.Client``: the requests session its connection uses."""
    session = client._http
    current = session.__dict__.get("request")
    if isinstance(current, DeadlineRequest):
        current.seconds, current.label, current.unreachable = seconds, label, unreachable
        return lambda: None
    session.request = DeadlineRequest(session.request, seconds, label, unreachable)

    def undo() -> None:
        if isinstance(session.__dict__.get("request"), DeadlineRequest):
            del session.request

    return undo
