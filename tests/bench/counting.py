"""Counts every backend operation a local-cloud function process makes, at the client boundary.

Two halves in one file:

- ``install()`` runs inside each function process (``functions-framework`` serving a bundle). The
  benchmark copies this file into every bundle it builds as ``phasechain_bench_counting.py`` next to a
  two-line ``sitecustomize.py`` (``instrumented_bundles``): Python imports ``sitecustomize`` from the
  bundle directory (on ``PYTHONPATH``) at start-up, and it calls ``install()`` when
  ``$PHASECHAIN_BENCH_COUNT_DIR`` is set. Nothing in ``shared/``, ``functions/`` or ``deploy/`` changes:
  the bundle on disk is the deploy bundle plus these two files, in the stack's scratch directory.
  It wraps, at class level:

  * gRPC (``grpc._channel`` multi-callables): every Firestore and Pub/Sub call, with what billing
    counts — Firestore documents read (``BatchGetDocuments``: each found or missing document;
    ``RunQuery``: each document returned, at least 1 per query; ``RunAggregationQuery``: 1 per
    query), written (each ``update``/``transform`` write of a ``Commit``/``BatchWrite``) and deleted
    (each ``delete`` write); Pub/Sub ``Publish`` requests and their messages' bytes (data + attribute
    keys and values + 20 bytes of timestamp + the message id);
  * BigQuery REST (``google.cloud._http.JSONConnection.api_request``): every call by method and path;
    for a query job its SQL's statement kind and the tables it references (backquoted names);
    for ``insertAll`` its rows and bytes;
  * the WSGI app (``flask.Flask.__call__``): every HTTP request the function answers (a Pub/Sub push
    delivery), its status, its wall time, the handling thread's CPU time and its body size.

  Each operation is one JSON line in ``$PHASECHAIN_BENCH_COUNT_DIR/<function>-<pid>.jsonl``.

- ``Tally`` (benchmark side) reads those files back and sums them by function and by kind.

The first half imports only the standard library at module level: it runs before anything else in
the function process.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import threading
import time
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

COUNT_DIR_ENV = "PHASECHAIN_BENCH_COUNT_DIR"
MODULE_NAME = "phasechain_bench_counting"
SITECUSTOMIZE = f"""import os
if os.environ.get({COUNT_DIR_ENV!r}):
    import {MODULE_NAME}
    {MODULE_NAME}.install()
"""

_lock = threading.Lock()
_out: Any = None
_function = ""
_TABLE = re.compile(r"`([A-Za-z0-9_.$-]+)`")
_STATEMENT = re.compile(r"^\s*(?:WITH\b.*?\)\s*)?(SELECT|MERGE|UPDATE|DELETE|INSERT)\b", re.IGNORECASE | re.DOTALL)


# ----------------------------------------------------------------------------- in the function process


def _emit(record: dict[str, Any]) -> None:
    record["fn"] = _function
    record["t"] = time.time()
    line = json.dumps(record, default=str) + "\n"
    with _lock:
        _out.write(line)
        _out.flush()


def _pb(message: Any) -> Any:
    """The protobuf under a proto-plus message (or the message itself)."""
    kind = type(message)
    return kind.pb(message) if hasattr(kind, "pb") and hasattr(kind, "meta") else message


def _service_method(raw: bytes | str) -> tuple[str, str]:
    text = raw.decode() if isinstance(raw, bytes) else raw
    service, _, method = text.strip("/").partition("/")
    short = {
        "google.firestore.v1.Firestore": "firestore",
        "google.pubsub.v1.Publisher": "pubsub",
        "google.pubsub.v1.Subscriber": "pubsub-sub",
    }.get(service, service)
    return short, method


def _request_record(service: str, method: str, request: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"svc": service, "op": method}
    try:
        pb = _pb(request)
        if service == "firestore" and method in ("Commit", "BatchWrite"):
            writes = deletes = 0
            docs = []
            for write in pb.writes:
                operation = write.WhichOneof("operation")
                if operation == "delete":
                    deletes += 1
                else:
                    writes += 1
                    docs.append(write.update.name if operation == "update" else write.transform.document)
            record.update(writes=writes, deletes=deletes, docs=docs)
        elif service == "pubsub" and method == "Publish":
            size = 0
            for message in pb.messages:
                size += len(message.data) + 20 + len(message.message_id or "") + len(message.ordering_key or "")
                size += sum(len(k) + len(v) for k, v in message.attributes.items())
            record.update(messages=len(pb.messages), bytes=size)
    except Exception as exc:  # noqa: BLE001 - counting must never break the function
        record["count_error"] = repr(exc)[:200]
    return record


class _CountedStream:
    """A response stream that counts the documents it yields (billing: at least 1 read per query)."""

    def __init__(self, inner: Any, record: dict[str, Any]) -> None:
        self._inner = inner
        self._record = record
        self._reads = 0
        self._done = False

    def __iter__(self) -> _CountedStream:
        return self

    def __next__(self) -> Any:
        try:
            item = next(self._inner)
        except StopIteration:
            self._finish()
            raise
        try:
            pb = _pb(item)
            op = self._record["op"]
            if op == "BatchGetDocuments":
                self._reads += 1 if pb.WhichOneof("result") else 0
            elif op == "RunQuery":
                self._reads += 1 if pb.HasField("document") else 0
        except Exception as exc:  # noqa: BLE001
            self._record["count_error"] = repr(exc)[:200]
        return item

    def _finish(self) -> None:
        if self._done:
            return
        self._done = True
        op = self._record["op"]
        minimum = 1 if op in ("RunQuery", "RunAggregationQuery") else 0
        self._record["reads"] = max(self._reads, minimum)
        _emit(self._record)

    def __del__(self) -> None:
        with contextlib.suppress(Exception):  # at interpreter exit the file may be gone
            self._finish()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._inner, name)


def _patch_grpc() -> None:
    from grpc import _channel  # type: ignore[import-untyped]

    def unary(original: Any) -> Any:
        def call(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            service, method = _service_method(self._method)
            record = _request_record(service, method, request)
            t0 = time.perf_counter()
            try:
                return original(self, request, *args, **kwargs)
            except BaseException as exc:
                record["error"] = type(exc).__name__
                raise
            finally:
                record["seconds"] = round(time.perf_counter() - t0, 4)
                _emit(record)

        return call

    def unary_stream(original: Any) -> Any:
        def call(self: Any, request: Any, *args: Any, **kwargs: Any) -> Any:
            service, method = _service_method(self._method)
            record = _request_record(service, method, request)
            return _CountedStream(original(self, request, *args, **kwargs), record)

        return call

    for cls in (_channel._UnaryUnaryMultiCallable,):
        for name in ("__call__", "with_call", "future"):
            setattr(cls, name, unary(getattr(cls, name)))
    for cls in (_channel._UnaryStreamMultiCallable, _channel._SingleThreadedUnaryStreamMultiCallable):
        cls.__call__ = unary_stream(cls.__call__)


def _bigquery_record(method: str, path: str, data: Any) -> dict[str, Any]:
    record: dict[str, Any] = {"svc": "bigquery", "op": f"{method} {_bq_path(path)}"}
    body = data if isinstance(data, dict) else {}
    sql = body.get("query") or ((body.get("configuration") or {}).get("query") or {}).get("query")
    if sql:
        found = _STATEMENT.search(sql)
        record["statement"] = found.group(1).upper() if found else "OTHER"
        record["tables"] = sorted({name for name in _TABLE.findall(sql) if name.count(".") >= 1})
    if path.endswith("/insertAll"):
        rows = body.get("rows") or []
        record["rows"] = len(rows)
        record["bytes"] = sum(len(json.dumps(r.get("json", r))) for r in rows)
        record["table"] = "/".join(path.split("/")[-4:-1:2])
    return record


def _bq_path(path: str) -> str:
    """The REST method's shape: ids replaced by placeholders (``/projects/*/queries/*``)."""
    parts = path.split("?")[0].strip("/").split("/")
    shape = [p if i % 2 == 0 or p in ("insertAll", "data") else "*" for i, p in enumerate(parts)]
    return "/" + "/".join(shape)


def _patch_bigquery() -> None:
    try:
        from google.cloud import _http
    except ImportError:  # a bundle without the BigQuery client (a gateless transition)
        return
    original: Any = _http.JSONConnection.api_request

    def api_request(self: Any, method: str, path: str, *args: Any, **kwargs: Any) -> Any:
        record = _bigquery_record(method, path, kwargs.get("data"))
        t0 = time.perf_counter()
        try:
            return original(self, method, path, *args, **kwargs)
        except BaseException as exc:
            record["error"] = type(exc).__name__
            raise
        finally:
            record["seconds"] = round(time.perf_counter() - t0, 4)
            _emit(record)

    _http.JSONConnection.api_request = api_request  # type: ignore[method-assign]


def _patch_wsgi() -> None:
    import flask

    original = flask.Flask.__call__

    def call(self: Any, environ: dict[str, Any], start_response: Any) -> Any:
        seen: dict[str, Any] = {}

        def capture(status: str, headers: Any, exc_info: Any = None) -> Any:
            seen["status"] = int(status.split()[0])
            return start_response(status, headers, exc_info) if exc_info else start_response(status, headers)

        t0, cpu0 = time.perf_counter(), time.thread_time()
        try:
            return original(self, environ, capture)
        finally:
            _emit(
                {
                    "svc": "function",
                    "op": "request",
                    "status": seen.get("status", 0),
                    "seconds": round(time.perf_counter() - t0, 4),
                    "cpu": round(time.thread_time() - cpu0, 4),  # the handling thread's CPU time
                    "bytes": int(environ.get("CONTENT_LENGTH") or 0),
                }
            )

    flask.Flask.__call__ = call  # type: ignore[method-assign]


def install() -> None:
    """Wrap the clients' transports and the WSGI app of this process (idempotent)."""
    global _out, _function
    if _out is not None:
        return
    directory = Path(os.environ[COUNT_DIR_ENV])
    directory.mkdir(parents=True, exist_ok=True)
    _function = Path.cwd().name
    _out = open(directory / f"{_function}-{os.getpid()}.jsonl", "a", buffering=1)
    _patch_grpc()
    _patch_bigquery()
    _patch_wsgi()


# ----------------------------------------------------------------------------- benchmark side


@contextmanager
def instrumented_bundles() -> Iterator[None]:
    """While open, every bundle ``deploy.bundle.build_function`` builds also carries the counting
    module and a ``sitecustomize.py`` that installs it (only when ``$PHASECHAIN_BENCH_COUNT_DIR`` is
    set in the function's environment)."""
    import deploy.bundle as bundle

    original = bundle.build_function

    def build_function(name: str, out_dir: Path, *args: Any, **kwargs: Any) -> Any:
        result = original(name, out_dir, *args, **kwargs)
        target = Path(out_dir) / name
        shutil.copyfile(__file__, target / f"{MODULE_NAME}.py")
        (target / "sitecustomize.py").write_text(SITECUSTOMIZE)
        return result

    bundle.build_function = build_function  # type: ignore[assignment]
    try:
        yield
    finally:
        bundle.build_function = original


@dataclass
class Tally:
    """The operations of a set of count files, summed by (function, service, operation)."""

    records: list[dict[str, Any]] = field(default_factory=list)

    @classmethod
    def read(cls, directory: Path, since: float = 0.0, until: float = float("inf")) -> Tally:
        records = []
        for path in sorted(directory.glob("*.jsonl")):
            for line in path.read_text().splitlines():
                try:
                    record = json.loads(line)
                except ValueError:
                    continue  # a line cut by a process stopped mid-write
                if since <= record.get("t", 0.0) < until:
                    records.append(record)
        return cls(records)

    def where(self, **match: Any) -> list[dict[str, Any]]:
        return [r for r in self.records if all(r.get(k) == v for k, v in match.items())]

    def requests(self) -> list[dict[str, Any]]:
        return self.where(svc="function")

    def non_2xx(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if not 200 <= int(r.get("status") or 0) < 300]

    def firestore(self, fn: str | None = None) -> dict[str, int]:
        out = {"reads": 0, "writes": 0, "deletes": 0, "rpcs": 0}
        for r in self.where(svc="firestore"):
            if fn is not None and r["fn"] != fn:
                continue
            out["rpcs"] += 1
            for key in ("reads", "writes", "deletes"):
                out[key] += int(r.get(key) or 0)
        return out

    def by(self, *keys: str) -> dict[tuple[Any, ...], list[dict[str, Any]]]:
        groups: dict[tuple[Any, ...], list[dict[str, Any]]] = defaultdict(list)
        for r in self.records:
            groups[tuple(r.get(k) for k in keys)].append(r)
        return dict(groups)

    def functions(self) -> list[str]:
        return sorted({r["fn"] for r in self.records})
