"""A backend that accepts connections and never answers (lesson L26: a hang is not an error).

``HungListener`` listens on a free local port, accepts every connection and reads (and drops)
whatever the client sends, but never writes a byte: to an HTTP client (BigQuery) a request that
was sent and is never answered; to a gRPC client (Firestore, Pub/Sub) an HTTP/2 connection whose
server never sends its settings. Nothing is refused and nothing raises: only a deadline ends the
call. Point a client at it with its address (``host`` for ``FIRESTORE_EMULATOR_HOST`` /
``PUBSUB_EMULATOR_HOST``, ``url`` for ``BIGQUERY_EMULATOR_HOST``); ``connections`` and ``received``
show that the client did ask.
"""

from __future__ import annotations

import selectors
import socket
import threading
from types import TracebackType


class HungListener:
    def __init__(self) -> None:
        self._server = socket.create_server(("127.0.0.1", 0), backlog=128)
        self._server.setblocking(False)
        self.port: int = self._server.getsockname()[1]
        self.connections = 0  # accepted so far
        self.received = 0  # bytes read so far (requests sent to it)
        self._open: list[socket.socket] = []
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._server, selectors.EVENT_READ)
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._serve, name=f"hung-listener-{self.port}", daemon=True)
        self._thread.start()

    @property
    def host(self) -> str:
        """``127.0.0.1:<port>``: a gRPC emulator address."""
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        """``http://127.0.0.1:<port>``: an HTTP endpoint (BigQuery)."""
        return f"http://{self.host}"

    def _serve(self) -> None:
        while not self._stopping.is_set():
            for key, _ in self._selector.select(timeout=0.1):
                sock = key.fileobj
                assert isinstance(sock, socket.socket)
                if sock is self._server:
                    try:
                        conn, _ = self._server.accept()
                    except BlockingIOError:
                        continue
                    conn.setblocking(False)
                    self._open.append(conn)
                    self._selector.register(conn, selectors.EVENT_READ)
                    self.connections += 1
                    continue
                try:
                    data = sock.recv(65536)
                except (BlockingIOError, InterruptedError):
                    continue
                except OSError:
                    data = b""
                if data:
                    self.received += len(data)  # read and dropped: the client never hears back
                    continue
                self._selector.unregister(sock)  # the client gave up and closed its end
                sock.close()
                self._open.remove(sock)

    def close(self) -> None:
        self._stopping.set()
        self._thread.join(timeout=5)
        for sock in self._open:
            sock.close()
        self._selector.close()
        self._server.close()

    def __enter__(self) -> HungListener:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, traceback: TracebackType | None
    ) -> None:
        self.close()
