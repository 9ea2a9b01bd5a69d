"""``phasectl status --serve [--port N]``: the status page, live, read-only, on localhost.

A stdlib ``ThreadingHTTPServer`` bound to exactly the host given (``127.0.0.1`` by default;
never a wildcard unless asked for). ``GET /`` (and ``HEAD /``) answers a fresh ``render()``
that reloads itself every ``refresh_seconds`` (``<meta http-equiv="refresh">``: the page keeps
its no-script Content-Security-Policy). Every other path is 404, every other method 405: the
server changes nothing. A render that raises answers 500 with an error page naming the error,
and the server keeps serving. Renders run one at a time (each reads Firestore and BigQuery),
requests time out after ``REQUEST_TIMEOUT`` seconds, and on a loopback address the ``Host``
header must name it (a DNS-rebinding page cannot read the status through a browser). A backend
that is down never fails the render (``phasectl status`` reads each on its own and the page says
"not read: <backend>"); a render that fails anyway is one line on stderr, never a traceback.

``serve_status`` runs until Ctrl-C; ``start_in_thread`` returns the running server (tests),
whose ``close()`` stops it and releases the port.
"""

from __future__ import annotations

import html
import ipaddress
import socket
import sys
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any, TextIO
from urllib.parse import urlsplit

from phasectl.core import STATUS_PORT_DEFAULT
from shared.printable import one_line

__all__ = [
    "DEFAULT_HOST",
    "DEFAULT_REFRESH_SECONDS",
    "StatusServer",
    "make_server",
    "serve_status",
    "start_in_thread",
    "with_refresh",
]

DEFAULT_HOST = "127.0.0.1"
DEFAULT_REFRESH_SECONDS = 30
REQUEST_TIMEOUT = 30  # seconds a client may take to send its request
ALLOWED_METHODS = "GET, HEAD"
CSP = "default-src 'none'; style-src 'unsafe-inline'"
_LOOPBACK_NAMES = ("localhost", "127.0.0.1", "[::1]")


def with_refresh(page: str, refresh_seconds: int) -> str:
    """``page`` with a ``<meta http-equiv="refresh">`` in its head (unless it has one already)."""
    if refresh_seconds <= 0 or 'http-equiv="refresh"' in page:
        return page
    meta = f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">'
    head = page.find("<head>")
    if head < 0:
        return meta + "\n" + page
    cut = head + len("<head>")
    return page[:cut] + "\n" + meta + page[cut:]


def error_page(message: str, refresh_seconds: int) -> str:
    """The page a failed render answers with (HTML-escaped; it reloads too: the next one may work)."""
    refresh = f'<meta http-equiv="refresh" content="{int(refresh_seconds)}">\n' if refresh_seconds > 0 else ""
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">\n{refresh}'
        "<title>phasechain status: error</title>\n</head>\n<body>\n"
        "<h1>phasechain status: the page could not be built</h1>\n"
        f'<pre id="error">{html.escape(message, quote=True)}</pre>\n'
        "<p>The server keeps running; this page tries again at its next reload.</p>\n</body>\n</html>\n"
    )


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


class StatusServer(ThreadingHTTPServer):
    """The page's server: ``render`` per ``GET /``; ``url``; ``close()`` stops it and frees the port."""

    daemon_threads = True
    allow_reuse_address = True

    def __init__(
        self,
        host: str,
        port: int,
        render: Callable[[], str],
        refresh_seconds: int,
        log: TextIO | None = None,
    ) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.render = render
        self.refresh_seconds = refresh_seconds
        self.log = log
        self.render_lock = threading.Lock()
        self._thread: threading.Thread | None = None
        super().__init__((host.strip("[]"), port), _Handler)

    @property
    def host(self) -> str:
        return str(self.server_address[0])

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def allowed_hosts(self) -> frozenset[str] | None:
        """The ``Host`` headers accepted (``None``: any, when bound to a non-loopback address)."""
        if not _is_loopback(self.host):
            return None
        bound = f"[{self.host}]" if ":" in self.host else self.host
        return frozenset(f"{name}:{self.port}" for name in (*_LOOPBACK_NAMES, bound)) | frozenset(
            (*_LOOPBACK_NAMES, bound)
        )

    def page(self) -> tuple[HTTPStatus, str]:
        """A fresh render (one at a time), or the error page."""
        try:
            with self.render_lock:
                body = self.render()
            return HTTPStatus.OK, with_refresh(body, self.refresh_seconds)
        except Exception as exc:  # noqa: BLE001 — a failed render is an error page, never a dead server
            message = one_line(f"{type(exc).__name__}: {exc}".strip(), 500)
            if self.log is not None:  # one line, no traceback (a backend that is down is not even this:
                self.log.write(f"status page render failed: {message}\n")  # the page says "not read")
                self.log.flush()
            return HTTPStatus.INTERNAL_SERVER_ERROR, error_page(message, self.refresh_seconds)

    def start(self) -> StatusServer:
        """Serve on a daemon thread; ``close()`` stops it."""
        self._thread = threading.Thread(
            target=self.serve_forever, kwargs={"poll_interval": 0.05}, name="phasectl-status", daemon=True
        )
        self._thread.start()
        return self

    def close(self) -> None:
        """Stop serving (if running on a thread), wait for it, close the socket."""
        if self._thread is not None:
            self.shutdown()
            self._thread.join(timeout=10)
            self._thread = None
        self.server_close()

    def __exit__(self, *args: Any) -> None:
        self.close()


class _Handler(BaseHTTPRequestHandler):
    server: StatusServer
    server_version = "phasectl-status"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = REQUEST_TIMEOUT

    def _send(self, status: HTTPStatus, body: str, *, head_only: bool = False, allow: bool = False) -> None:
        data = body.encode("utf-8")
        self.send_response(status)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-store")
        self.send_header("Content-Security-Policy", CSP)
        self.send_header("X-Content-Type-Options", "nosniff")
        self.send_header("X-Frame-Options", "DENY")
        self.send_header("Referrer-Policy", "no-referrer")
        if allow:
            self.send_header("Allow", ALLOWED_METHODS)
        self.end_headers()
        if not head_only:
            self.wfile.write(data)

    def _plain(self, status: HTTPStatus, text: str, *, head_only: bool = False, allow: bool = False) -> None:
        page = f"<!DOCTYPE html>\n<title>{status.value} {status.phrase}</title>\n<p>{html.escape(text)}</p>\n"
        self._send(status, page, head_only=head_only, allow=allow)

    def _serve(self, head_only: bool) -> None:
        allowed = self.server.allowed_hosts()
        if allowed is not None and (self.headers.get("Host") or "").lower() not in allowed:
            self._plain(HTTPStatus.FORBIDDEN, "unexpected Host header", head_only=head_only)
            return
        if urlsplit(self.path).path != "/":
            self._plain(HTTPStatus.NOT_FOUND, "not found: the status page is at /", head_only=head_only)
            return
        status, page = self.server.page()
        self._send(status, page, head_only=head_only)

    def do_GET(self) -> None:
        self._serve(head_only=False)

    def do_HEAD(self) -> None:
        self._serve(head_only=True)

    def _refuse(self) -> None:
        self.close_connection = True  # any request body is not read
        self._plain(HTTPStatus.METHOD_NOT_ALLOWED, "read-only: GET / only", allow=True)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("do_"):  # POST, PUT, DELETE, PATCH, OPTIONS, TRACE, any other method: 405
            return self._refuse
        raise AttributeError(name)

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: a page reloading every 30 s would flood the terminal (render errors are logged)."""


def make_server(
    render: Callable[[], str],
    *,
    host: str = DEFAULT_HOST,
    port: int = STATUS_PORT_DEFAULT,
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
    log: TextIO | None = None,
) -> StatusServer:
    """A bound, not yet serving server (``OSError`` when the port is taken)."""
    if not 0 <= port <= 65535:
        raise ValueError(f"port {port} is not in 0..65535")
    if refresh_seconds < 0:
        raise ValueError(f"refresh_seconds {refresh_seconds} is negative")
    return StatusServer(host, port, render, refresh_seconds, log)


def start_in_thread(
    render: Callable[[], str],
    *,
    host: str = DEFAULT_HOST,
    port: int = 0,
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
    log: TextIO | None = None,
) -> StatusServer:
    """The server, serving on a daemon thread (port 0: any free port; see ``.url``). ``close()`` stops it."""
    return make_server(render, host=host, port=port, refresh_seconds=refresh_seconds, log=log).start()


def serve_status(
    render: Callable[[], str],
    *,
    host: str = DEFAULT_HOST,
    port: int = STATUS_PORT_DEFAULT,
    refresh_seconds: int = DEFAULT_REFRESH_SECONDS,
    out: TextIO | None = None,
    err: TextIO | None = None,
) -> None:
    """Serve the page until Ctrl-C (then return). Prints the URL to ``out``; render errors go to ``err``."""
    out = out if out is not None else sys.stdout
    server = make_server(
        render, host=host, port=port, refresh_seconds=refresh_seconds, log=err if err is not None else sys.stderr
    )
    try:
        reload = f"reloads every {refresh_seconds} s" if refresh_seconds else "no reload"
        out.write(f"serving the status page at {server.url} (read-only, {reload}); Ctrl-C stops\n")
        out.flush()
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
