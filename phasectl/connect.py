"""``phasectl``'s backends: reach each one before using it, and say in one line why not.

A command that needs Firestore, Pub/Sub or BigQuery checks them when it first asks for a client
(after its input is validated, before anything is read or written): every backend the command
needs at once, so a mutating command never stops half-way because its second backend is down.

* An emulator (``FIRESTORE_EMULATOR_HOST`` / ``PUBSUB_EMULATOR_HOST`` ``host:port``,
  ``BIGQUERY_EMULATOR_HOST`` an ``http://host:port`` URL): a TCP connect with a short timeout.
  A stale variable (the emulators stopped by ``phasectl local down`` while the exports are still
  set) is reported at once instead of after the client libraries' five minutes of retries.
* Google Cloud (the variable unset): Application Default Credentials, loaded and refreshed once
  (bounded by the deadline): "not logged in" instead of a client that retries an auth failure.

The deadline of every call once connected is ``shared.deadline``'s (the shared clients, re-bound
with ``--timeout`` by ``phasectl.core.Context``); ``failure_line`` turns what a call raised when it
ran out into phasectl's one line. Standard library only at import (``shared.deadline`` is too).
"""

from __future__ import annotations

import functools
import socket
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from shared.deadline import BACKEND_ATTRIBUTE as BACKEND_ATTRIBUTE  # re-exported: phasectl.commands use it
from shared.deadline import UNREACHABLE_ATTRIBUTE
from shared.printable import one_line

FIRESTORE = "firestore"
PUBSUB = "pubsub"
BIGQUERY = "bigquery"
DEFAULT_TIMEOUT = 15.0  # seconds: every backend call of a command (--timeout)
MAX_TIMEOUT = 3600.0
CONNECT_TIMEOUT = 2.0  # seconds: the TCP check of an emulator
CLOUD_PLATFORM_SCOPE = "https://www.googleapis.com/auth/cloud-platform"


@dataclass(frozen=True)
class Backend:
    key: str
    title: str
    env_var: str


BACKENDS: dict[str, Backend] = {
    FIRESTORE: Backend(FIRESTORE, "Firestore", "FIRESTORE_EMULATOR_HOST"),
    PUBSUB: Backend(PUBSUB, "Pub/Sub", "PUBSUB_EMULATOR_HOST"),
    BIGQUERY: Backend(BIGQUERY, "BigQuery", "BIGQUERY_EMULATOR_HOST"),
}
ORDER = (FIRESTORE, PUBSUB, BIGQUERY)


class BackendError(Exception):
    """A backend cannot be used (unreachable, not logged in): one line on stderr, exit 2."""


@dataclass(frozen=True)
class Emulator:
    backend: Backend
    raw: str  # the variable's value, as shown to the operator
    host: str
    port: int

    @property
    def label(self) -> str:
        return f"the {self.backend.title} emulator at {self.raw}"

    def unreachable(self, reason: str) -> str:
        """The one line for an emulator that does not accept connections."""
        return (
            f"cannot reach the {self.backend.title} emulator at {self.raw} ({self.backend.env_var}: {reason}): "
            "start it with `phasectl local up`, or unset the variable to use Google Cloud"
        )


def emulator(backend: Backend, env: Mapping[str, str]) -> Emulator | None:
    """The emulator ``env`` points ``backend`` at, or None (Google Cloud).

    Raises:
        BackendError: the variable is set but is not ``host:port`` (an ``http(s)://`` URL for BigQuery).
    """
    raw = (env.get(backend.env_var) or "").strip()
    if not raw:
        return None
    is_url = backend.key == BIGQUERY or "://" in raw
    target = raw if "://" in raw else (f"http://{raw}" if is_url else f"//{raw}")
    example = "http://127.0.0.1:9050" if backend.key == BIGQUERY else "127.0.0.1:8080"
    try:
        parts = urlsplit(target)
        port = parts.port
    except ValueError:
        parts, port = None, None
    if parts is None or not parts.hostname or (port is None and not is_url):
        raise BackendError(f"{backend.env_var}={raw!r} is not an address like {example}")
    if port is None:
        port = 443 if parts.scheme == "https" else 80
    return Emulator(backend, raw, parts.hostname, port)


def reach(host: str, port: int, timeout: float) -> str | None:
    """None when ``host:port`` accepts a TCP connection within ``timeout`` seconds, else why not."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return None
    except TimeoutError:
        return f"no answer within {timeout:g} s"
    except socket.gaierror as exc:
        return f"unknown host: {exc.strerror or exc}"
    except OSError as exc:
        return (exc.strerror or str(exc)).lower()


def _default_credentials() -> Any:
    import google.auth

    credentials, _ = google.auth.default(scopes=[CLOUD_PLATFORM_SCOPE])
    return credentials


def _refresh(credentials: Any, timeout: float) -> None:
    import google.auth.transport.requests

    # the request callable with a timeout (google-auth's default is 120 s; a caller's own wins)
    credentials.refresh(functools.partial(google.auth.transport.requests.Request(), timeout=timeout))


class Backends:
    """The backends of one ``phasectl`` command: each checked once, before its first use.

    Args:
        env: where the emulator variables are read (the client factories read ``os.environ``).
        needs: every backend the command uses; the first ``ensure`` checks them all.
        deadline: seconds; bounds the credential refresh as it bounds every backend call.
    """

    def __init__(
        self,
        env: Mapping[str, str],
        needs: Iterable[str] = (),
        *,
        deadline: float = DEFAULT_TIMEOUT,
        connect_timeout: float = CONNECT_TIMEOUT,
        credentials: Callable[[], Any] = _default_credentials,
        refresh: Callable[[Any, float], None] = _refresh,
    ) -> None:
        self.env = env
        self.needs = frozenset(needs)
        self.deadline = deadline
        self.connect_timeout = connect_timeout
        self._credentials = credentials
        self._refresh = refresh
        self._labels: dict[str, str] = {}
        self._logged_in = False

    def ensure(self, *keys: str) -> None:
        """Check ``keys`` and every backend the command needs (once each), in a fixed order.

        Raises:
            BackendError: one is unreachable, or Google Cloud credentials are missing or rejected.
        """
        wanted = self.needs | set(keys)
        for key in ORDER:
            if key in wanted and key not in self._labels:
                self._labels[key] = self._check(BACKENDS[key])

    def label(self, key: str) -> str:
        """How the operator knows the backend: ``the Firestore emulator at 127.0.0.1:8080``."""
        if key not in self._labels:
            found = emulator(BACKENDS[key], self.env)
            return found.label if found else f"{BACKENDS[key].title} (Google Cloud)"
        return self._labels[key]

    def emulator(self, key: str) -> Emulator | None:
        return emulator(BACKENDS[key], self.env)

    @property
    def reached(self) -> list[str]:
        """The labels of the backends checked so far (in the fixed order)."""
        return [self._labels[k] for k in ORDER if k in self._labels]

    def _check(self, backend: Backend) -> str:
        found = emulator(backend, self.env)
        if found is None:
            self._check_login(backend)
            return f"{backend.title} (Google Cloud)"
        problem = reach(found.host, found.port, self.connect_timeout)
        if problem is not None:
            raise BackendError(found.unreachable(problem))
        return found.label

    def _check_login(self, backend: Backend) -> None:
        if self._logged_in:
            return
        from google.auth import exceptions as auth_exceptions

        local = f"or set {backend.env_var} to use the local {backend.title} emulator"
        try:
            credentials = self._credentials()
        except auth_exceptions.DefaultCredentialsError:
            raise BackendError(
                f"not logged in to Google Cloud (no Application Default Credentials): "
                f"run `gcloud auth application-default login`, {local}"
            ) from None
        if not getattr(credentials, "valid", False):
            try:
                self._refresh(credentials, self.deadline)
            except auth_exceptions.RefreshError as exc:
                raise BackendError(
                    "not logged in: Google Cloud rejected your Application Default Credentials "
                    f"({one_line(exc, 200)}): "
                    "run `gcloud auth application-default login`"
                ) from None
            except auth_exceptions.TransportError as exc:
                raise BackendError(
                    f"cannot reach Google Cloud to check your credentials: {one_line(exc, 200)}; {local}"
                ) from None
        self._logged_in = True


# -- what a bounded call raised, as one line -------------------------------------------------------
def _chain(exc: BaseException) -> list[BaseException]:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and all(current is not s for s in seen) and len(seen) < 20:
        seen.append(current)
        current = current.__cause__ or current.__context__
    return seen


def failure_line(exc: BaseException, deadline: float, reached: Iterable[str] = ()) -> str | None:
    """The one line for a backend that gave no answer in time or became unavailable, else None.

    Looks through ``exc``'s causes (a service may wrap the client's error in its own). The backend
    is the one the bounded call named (``BACKEND_ATTRIBUTE``), else the command's backends.
    """
    try:
        from google.api_core import exceptions as gexc
    except ImportError:  # no Google client was ever used
        return None
    chain = _chain(exc)
    named = next((getattr(e, BACKEND_ATTRIBUTE) for e in chain if getattr(e, BACKEND_ATTRIBUTE, None)), None)
    labels = list(reached)
    who = named or (labels[0] if len(labels) == 1 else f"a backend ({', '.join(labels)})" if labels else "a backend")
    for e in chain:
        unreachable = getattr(e, UNREACHABLE_ATTRIBUTE, None)
        if unreachable:
            return str(unreachable)
        detail = one_line(e, 200) or type(e).__name__
        if isinstance(e, gexc.RetryError | gexc.DeadlineExceeded | TimeoutError):
            if named is None:  # a call phasectl did not bound (its own timeout ran out): no claim about --timeout
                return f"{who} gave no answer in time (is it up and healthy?): {detail}"
            return (
                f"{who} gave no answer within the {deadline:g} s deadline "
                f"(is it up and healthy? raise the deadline with --timeout SECONDS): {detail}"
            )
        if isinstance(e, gexc.ServiceUnavailable):
            return f"{who} is unavailable: {detail}"
    return None
