"""A deadline on every backend call, by construction of the clients (lesson L26: a hang is not an error).

A server that accepts the connection and never answers raises nothing: the call just waits, and
error handling never runs. So every Google Cloud client the package builds is bounded where it is
built (``shared.gcp`` / ``shared.gcp_bigquery`` for the functions, ``phasectl.core`` re-binds the
same shared clients with ``--timeout``); the services take no timeout of their own:

* Firestore and Pub/Sub (gRPC, generated clients): each method's default retry is cut to the
  deadline and its default timeout set to it (a smaller one a caller passes is kept). A server
  that accepts the connection but never answers fails with DeadlineExceeded/RetryError after the
  deadline instead of the methods' 60-300 s of retries. The generated transports keep their
  methods, wrapped with their defaults, in ``_wrapped_methods``: wrapped here in turn.
  ``streams=False`` leaves the bidirectional streams (Firestore ``Listen``/``Write``, Pub/Sub
  ``StreamingPull``) alone: they are meant to stay open.
* BigQuery (HTTP): every request of the client's session gets at most the deadline as its
  connect and read timeouts; a timeout becomes a DeadlineExceeded, which the client does not
  retry (it retries ``requests`` timeouts for up to 10 minutes). A long poll (``timeoutMs`` of
  ``jobs.query`` / ``getQueryResults``: the server holds the request while the query runs) is
  asked to answer within ``LONG_POLL_SHARE`` of the deadline, so a healthy slow query answers
  "not done yet" in time and the client polls again. A refused or dropped connection is retried
  by the client (a server closing an idle keep-alive connection is normal) until this thread has
  met nothing but refusals for the deadline; on an emulator given ``unreachable``, at once.

An error a bounded call raises carries ``BACKEND_ATTRIBUTE`` (which backend, where: the label
given here) for the one-line report of ``phasectl`` (``phasectl.connect.failure_line``). Every
call in flight is known (``in_flight``): a caller that stops waiting for work done on another
thread (``run_within``, the monitor's checks) can say which backend it was waiting on.
``bind_*`` return how to undo them: ``phasectl`` gives an in-process caller its shared clients
back as they were.

The default deadline of the functions is ``DEFAULT_CALL_TIMEOUT`` on Google Cloud and
``EMULATOR_CALL_TIMEOUT`` on the local emulators (``$PHASECHAIN_CALL_TIMEOUT`` overrides both: the
fault tests use a few seconds). Standard library only at import (``phasectl`` imports the attribute
names before any client library).
"""

from __future__ import annotations

import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Generic, TypeVar

from shared.errors import ConfigError

T = TypeVar("T")
Undo = Callable[[], None]

CALL_TIMEOUT_ENV = "PHASECHAIN_CALL_TIMEOUT"
# Seconds of every backend call a function makes. The longest healthy single call is a BigQuery
# long poll, held by the server for at most 10 s (``getQueryResults``; a longer ``jobs.query``
# wait is cut to ``LONG_POLL_SHARE`` of this); Firestore and Pub/Sub calls answer in well under a
# second. 20 s leaves twice that, and a hung call fails well before the function timeouts: a
# transition (120 s) meets at most two in a row on its failure path (a transaction call and its
# rollback, or a publish and the claim's release): 40 s; the monitor (300 s) splits its pass over
# its checks (``shared.monitor.checks``).
DEFAULT_CALL_TIMEOUT = 20.0
# Seconds of every call to a local emulator: no Cloud Functions timeout to stay under there, and the
# emulators are slower than the services (local-bigquery is a SQL engine in one Python process),
# the more so on a loaded machine (a table creation took over 20 s on a test run at load 40). A
# hung emulator still fails the call instead of hanging it.
EMULATOR_CALL_TIMEOUT = 60.0
MAX_CALL_TIMEOUT = 600.0
LONG_POLL_SHARE = 0.75  # a long poll's server-side wait, as a share of the deadline
BACKEND_ATTRIBUTE = "phasechain_backend"  # set on an exception a bounded call raised: which backend
UNREACHABLE_ATTRIBUTE = "phasechain_unreachable"  # set when an emulator went away: the one line


def call_timeout(environ: Mapping[str, str] | None = None, *, emulator: bool = False) -> float:
    """The functions' per-call deadline: ``$PHASECHAIN_CALL_TIMEOUT`` seconds, else
    ``DEFAULT_CALL_TIMEOUT`` (``EMULATOR_CALL_TIMEOUT`` for a local emulator).

    Raises:
        ConfigError: the variable is set but is not a number of seconds in (0, 600].
    """
    raw = ((os.environ if environ is None else environ).get(CALL_TIMEOUT_ENV) or "").strip()
    if not raw:
        return EMULATOR_CALL_TIMEOUT if emulator else DEFAULT_CALL_TIMEOUT
    try:
        seconds = float(raw)
    except ValueError:
        seconds = float("nan")
    if not 0 < seconds <= MAX_CALL_TIMEOUT:  # also false for nan
        raise ConfigError(f"{CALL_TIMEOUT_ENV}={raw!r} is not a number of seconds in (0, {MAX_CALL_TIMEOUT:g}]")
    return seconds


def backend_label(title: str, emulator: str | None) -> str:
    """How a backend is named in errors and findings: ``the BigQuery emulator at http://...`` or
    ``BigQuery (Google Cloud)`` (the way ``phasectl`` names them)."""
    return f"the {title} emulator at {emulator}" if emulator else f"{title} (Google Cloud)"


# -- the calls in flight -----------------------------------------------------------------------
_calls: dict[int, tuple[str, float]] = {}  # token → (backend label, when the call started)
_tokens = itertools.count()


def _enter(label: str) -> int:
    token = next(_tokens)  # itertools.count is atomic under the GIL
    _calls[token] = (label, time.monotonic())
    return token


def _leave(token: int) -> None:
    _calls.pop(token, None)


def in_flight(since: float | None = None) -> list[str]:
    """The backends of the bounded calls in flight now (started at or after ``since``, a
    ``time.monotonic()`` value), each once, oldest call first."""
    calls = sorted(list(_calls.values()), key=lambda c: c[1])  # a copy: other threads add and remove
    return list(dict.fromkeys(label for label, started in calls if since is None or started >= since))


# -- errors ------------------------------------------------------------------------------------
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


# -- gRPC: the generated clients ---------------------------------------------------------------
class DeadlineCall:
    """A generated client's method with ``seconds`` as its default timeout and retry deadline."""

    def __init__(self, method: Any, seconds: float, label: str) -> None:
        from google.api_core import gapic_v1

        self.method = method
        self.seconds = seconds
        self.label = label
        self._default = gapic_v1.method.DEFAULT

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        from google.api_core import exceptions as gexc

        seconds = self.seconds
        retry = kwargs.pop("retry", self._default)
        if retry is self._default:
            retry = getattr(self.method, "_retry", self._default)  # the method's own default (predicate, backoff)
        if retry is not None and retry is not self._default and hasattr(retry, "with_timeout"):
            if retry.timeout is None or retry.timeout > seconds:
                retry = retry.with_timeout(seconds)
        timeout = _call_timeout(kwargs.pop("timeout", self._default), seconds)
        token = _enter(self.label)
        try:
            return self.method(*args, timeout=timeout, retry=retry, **kwargs)
        except (gexc.RetryError, gexc.DeadlineExceeded, gexc.ServiceUnavailable) as exc:
            _mark(exc, self.label)
            raise
        finally:
            _leave(token)


def _is_bidi_stream(stub: Any) -> bool:
    return "StreamStream" in type(stub).__name__  # grpc's _StreamStreamMultiCallable (Listen, Write, StreamingPull)


def bind_transport(transport: Any, seconds: float, label: str, *, streams: bool = True) -> Undo:
    """Bound every method of a generated gRPC transport (``streams=False``: not the bidirectional
    streams); returns how to undo it (a method bound before gets its earlier deadline back)."""
    methods = getattr(transport, "_wrapped_methods", None)
    if not isinstance(methods, dict) or not methods:
        raise RuntimeError(f"cannot bound the calls of {type(transport).__name__}: no wrapped methods")
    originals: dict[Any, Any] = {}
    earlier: list[tuple[DeadlineCall, float, str]] = []
    for key, method in list(methods.items()):
        if isinstance(method, DeadlineCall):
            earlier.append((method, method.seconds, method.label))
            method.seconds, method.label = seconds, label
            continue
        if not streams and _is_bidi_stream(key):
            continue
        originals[key] = method
        methods[key] = DeadlineCall(method, seconds, label)

    def undo() -> None:
        for key, method in originals.items():
            if isinstance(methods.get(key), DeadlineCall):
                methods[key] = method
        for call, before, before_label in earlier:
            call.seconds, call.label = before, before_label

    return undo


def bind_firestore(client: Any, seconds: float, label: str, *, streams: bool = True) -> Undo:
    """A ``google.cloud.firestore.Client``: its generated API client's transport."""
    return bind_transport(client._firestore_api._transport, seconds, label, streams=streams)


def bind_publisher(client: Any, seconds: float, label: str, *, streams: bool = True) -> Undo:
    """A ``google.cloud.pubsub_v1.PublisherClient`` (a generated client itself)."""
    return bind_transport(client._transport, seconds, label, streams=streams)


def bind_subscriber(client: Any, seconds: float, label: str, *, streams: bool = True) -> Undo:
    """A ``google.cloud.pubsub_v1.SubscriberClient`` (its generated client's transport)."""
    return bind_transport(client._transport, seconds, label, streams=streams)


# -- HTTP: BigQuery's requests session ---------------------------------------------------------
def _request_timeout(value: Any, seconds: float) -> Any:
    if isinstance(value, tuple):
        return tuple(_at_most(v, seconds) for v in value)
    if value is None or isinstance(value, int | float):
        return _at_most(value, seconds)
    return seconds


_TIMEOUT_MS_PARAM = re.compile(r"([?&]timeoutMs=)([0-9]+)")


def _shorten_long_poll(kwargs: dict[str, Any], limit_ms: int) -> None:
    """A long poll's ``timeoutMs`` (query parameter or JSON body) at most ``limit_ms``."""
    url = kwargs.get("url")
    if isinstance(url, str) and "timeoutMs=" in url:
        kwargs["url"] = _TIMEOUT_MS_PARAM.sub(lambda m: f"{m.group(1)}{min(int(m.group(2)), limit_ms)}", url)
    data = kwargs.get("data")
    if isinstance(data, str) and '"timeoutMs"' in data:
        try:
            body = json.loads(data)
        except ValueError:
            return
        wait = body.get("timeoutMs") if isinstance(body, dict) else None
        if isinstance(wait, int | float) and wait > limit_ms:
            body["timeoutMs"] = limit_ms
            kwargs["data"] = json.dumps(body)


class DeadlineRequest:
    """A ``requests`` session's ``request`` with at most ``seconds`` to connect and to read."""

    def __init__(self, request: Callable[..., Any], seconds: float, label: str, unreachable: str | None) -> None:
        self.request = request
        self.seconds = seconds
        self.label = label
        self.unreachable = unreachable  # the one line when an emulator refuses (None: retried, bounded)
        self._refused = threading.local()  # since when this thread met nothing but refused connections

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        import requests
        from google.api_core import exceptions as gexc

        seconds = self.seconds
        kwargs["timeout"] = _request_timeout(kwargs.get("timeout"), seconds)
        _shorten_long_poll(kwargs, int(seconds * LONG_POLL_SHARE * 1000))
        token = _enter(self.label)
        try:
            response = self.request(*args, **kwargs)
        except requests.exceptions.Timeout as exc:
            self._refused.since = None
            late = gexc.DeadlineExceeded(f"no answer within {seconds:g} s: {exc}")  # type: ignore[no-untyped-call]
            _mark(late, self.label)
            raise late from exc
        except requests.exceptions.ConnectionError as exc:
            if self.unreachable is not None:  # an emulator that refuses has gone away: not retried
                gone = gexc.GoogleAPICallError(self.unreachable)  # type: ignore[no-untyped-call]
                _mark(gone, self.label)
                setattr(gone, UNREACHABLE_ATTRIBUTE, self.unreachable)
                raise gone from exc
            since = getattr(self._refused, "since", None)
            now = time.monotonic()
            if since is None:
                self._refused.since = since = now
            if now - since < seconds:
                raise  # the client retries a dropped connection (backoff), for at most the deadline
            self._refused.since = None
            lost = gexc.DeadlineExceeded(f"no connection within {seconds:g} s: {exc}")  # type: ignore[no-untyped-call]
            _mark(lost, self.label)
            raise lost from exc
        finally:
            _leave(token)
        self._refused.since = None
        return response


def bind_http(client: Any, seconds: float, label: str, unreachable: str | None = None) -> Undo:
    """A ``google.cloud.bigquery.Client``: the requests session its connection uses; returns how to
    undo it (a session bound before gets its earlier deadline back)."""
    session = client._http
    current = session.__dict__.get("request")
    if isinstance(current, DeadlineRequest):
        before = (current.seconds, current.label, current.unreachable)
        current.seconds, current.label, current.unreachable = seconds, label, unreachable

        def restore() -> None:
            current.seconds, current.label, current.unreachable = before

        return restore
    session.request = DeadlineRequest(session.request, seconds, label, unreachable)

    def undo() -> None:
        if isinstance(session.__dict__.get("request"), DeadlineRequest):
            del session.request

    return undo


# -- work on another thread, waited for at most a deadline -------------------------------------
@dataclass
class Within(Generic[T]):
    """What ``run_within`` saw: the value or error when the work finished in time; else
    ``done=False`` and the backends of the bounded calls it left in flight (``waiting_on``)."""

    done: bool
    seconds: float  # how long it was waited for at most
    value: T | None = None
    error: BaseException | None = None
    waiting_on: list[str] = field(default_factory=list)


def run_within(seconds: float, work: Callable[[], T], *, name: str) -> Within[T]:
    """``work()`` on a daemon thread, waited for at most ``seconds``.

    The thread is never joined past the deadline: a call it is stuck in cannot keep the caller from
    returning (the call's own deadline ends it later). Exceptions are returned, not raised. The
    backends named when it is late are those of the bounded calls in flight that started while it
    was waited for (its own, and those of threads it started: gates, a publisher's batch).
    """
    finished = threading.Event()
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = work()
        except BaseException as exc:  # noqa: BLE001 - handed to the caller, who decides
            outcome["error"] = exc
        finally:
            finished.set()

    started = time.monotonic()
    thread = threading.Thread(target=target, name=name, daemon=True)
    thread.start()
    if finished.wait(max(0.0, seconds)):
        return Within(True, seconds, outcome.get("value"), outcome.get("error"))
    return Within(False, seconds, waiting_on=in_flight(started))
