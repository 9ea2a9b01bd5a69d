"""``phasectl status --serve``'s server (``phasectl.status_serve``): read-only, localhost, fresh renders."""

from __future__ import annotations

import http.client
import inspect
import io
import itertools
import socket
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import pytest

from phasectl.status_serve import (
    DEFAULT_HOST,
    StatusServer,
    make_server,
    serve_status,
    start_in_thread,
    with_refresh,
)

PAGE = (
    '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n</head>\n'
    '<body><p id="n">{n}</p></body>\n</html>\n'
)


def counting_render() -> Callable[[], str]:
    counter = itertools.count(1)
    return lambda: PAGE.format(n=next(counter))


@contextmanager
def serving(render: Callable[[], str], **kwargs: object) -> Iterator[StatusServer]:
    server = start_in_thread(render, **kwargs)  # type: ignore[arg-type]
    try:
        yield server
    finally:
        server.close()


def request(
    server: StatusServer, method: str = "GET", path: str = "/", headers: dict[str, str] | None = None
) -> tuple[int, dict[str, str], str]:
    conn = http.client.HTTPConnection(server.host, server.port, timeout=10)
    try:
        conn.request(method, path, body=b"x=1" if method in ("POST", "PUT", "PATCH") else None, headers=headers or {})
        response = conn.getresponse()
        body = response.read().decode("utf-8")
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        conn.close()


def test_get_root_answers_a_fresh_render_that_reloads_itself() -> None:
    with serving(counting_render(), refresh_seconds=15) as server:
        status, headers, body = request(server)
        assert status == 200
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert headers["cache-control"] == "no-store"
        assert headers["content-security-policy"] == "default-src 'none'; style-src 'unsafe-inline'"
        assert headers["x-content-type-options"] == "nosniff"
        assert int(headers["content-length"]) == len(body.encode())
        assert '<p id="n">1</p>' in body
        assert body.index('<meta http-equiv="refresh" content="15">') < body.index("</head>")
        assert '<p id="n">2</p>' in request(server)[2]  # rendered again for every request
        assert '<p id="n">3</p>' in request(server, path="/?date=2026-01-24")[2]  # a query string is ignored


def test_head_root_has_the_headers_and_no_body() -> None:
    with serving(counting_render()) as server:
        status, headers, body = request(server, "HEAD")
        assert status == 200 and body == "" and int(headers["content-length"]) > 0


@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PURGE"])
def test_every_other_method_is_405_and_nothing_is_rendered(method: str) -> None:
    calls: list[int] = []

    def render() -> str:
        calls.append(1)
        return PAGE.format(n=1)

    with serving(render) as server:
        status, headers, body = request(server, method)
        assert status == 405
        assert headers["allow"] == "GET, HEAD"
        assert "read-only" in body
        assert calls == []
        assert request(server)[0] == 200  # still serving


@pytest.mark.parametrize("path", ["/index.html", "/favicon.ico", "/status", "/../etc/passwd", "/%2F"])
def test_other_paths_are_404(path: str) -> None:
    with serving(counting_render()) as server:
        status, _, body = request(server, path=path)
        assert status == 404 and "the status page is at /" in body


def test_a_render_error_is_a_500_page_with_the_message_and_the_server_keeps_serving() -> None:
    state = {"fail": True}

    def render() -> str:
        if state["fail"]:
            raise RuntimeError("firestore unavailable <script>alert(1)</script>")
        return PAGE.format(n="ok")

    log = io.StringIO()
    with serving(render, refresh_seconds=5, log=log) as server:
        status, headers, body = request(server)
        assert status == 500
        assert headers["content-type"] == "text/html; charset=utf-8"
        assert "RuntimeError: firestore unavailable &lt;script&gt;alert(1)&lt;/script&gt;" in body
        assert "<script" not in body
        assert '<meta http-equiv="refresh" content="5">' in body  # it tries again by itself
        assert "status page render failed" in log.getvalue() and "RuntimeError" in log.getvalue()
        state["fail"] = False
        status, _, body = request(server)
        assert status == 200 and '<p id="n">ok</p>' in body


def test_it_binds_127_0_0_1_by_default_and_nothing_else() -> None:
    for fn in (serve_status, start_in_thread, make_server):
        assert inspect.signature(fn).parameters["host"].default == "127.0.0.1" == DEFAULT_HOST
    assert inspect.signature(serve_status).parameters["port"].default == 8765
    assert inspect.signature(serve_status).parameters["refresh_seconds"].default == 30
    with serving(counting_render()) as server:
        assert server.socket.getsockname()[0] == "127.0.0.1"
        assert server.url == f"http://127.0.0.1:{server.port}/"
        assert server.port != 0
        assert request(server)[0] == 200


def test_a_foreign_host_header_is_refused_on_localhost() -> None:
    """A DNS-rebinding page reaches 127.0.0.1 under its own name: the Host header gives it away."""
    with serving(counting_render()) as server:
        assert request(server, headers={"Host": "evil.example:80"})[0] == 403
        assert request(server, headers={"Host": f"evil.example:{server.port}"})[0] == 403
        assert request(server, headers={"Host": f"localhost:{server.port}"})[0] == 200
        assert request(server, headers={"Host": f"127.0.0.1:{server.port}"})[0] == 200


def test_close_stops_serving_and_frees_the_port() -> None:
    server = start_in_thread(counting_render())
    port = server.port
    assert request(server)[0] == 200
    server.close()
    with pytest.raises(OSError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()
    again = make_server(counting_render(), port=port)  # the port is free again
    again.server_close()


def test_a_taken_port_is_an_oserror_at_once() -> None:
    with serving(counting_render()) as server, pytest.raises(OSError):
        make_server(counting_render(), port=server.port)


def test_serve_status_prints_the_url_and_returns_on_ctrl_c(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[StatusServer] = []

    def interrupted(self: StatusServer, poll_interval: float = 0.5) -> None:
        seen.append(self)
        raise KeyboardInterrupt

    monkeypatch.setattr(StatusServer, "serve_forever", interrupted)
    out = io.StringIO()
    serve_status(counting_render(), port=0, refresh_seconds=20, out=out)
    (server,) = seen
    assert out.getvalue() == (
        f"serving the status page at http://127.0.0.1:{server.port}/ (read-only, reloads every 20 s); Ctrl-C stops\n"
    )
    assert server.socket.fileno() == -1  # closed


def test_with_refresh() -> None:
    assert with_refresh("<html><head><title>t</title></head></html>", 30) == (
        '<html><head>\n<meta http-equiv="refresh" content="30"><title>t</title></head></html>'
    )
    already = '<head><meta http-equiv="refresh" content="10"></head>'
    assert with_refresh(already, 30) == already
    assert with_refresh("<p>bare</p>", 7) == '<meta http-equiv="refresh" content="7">\n<p>bare</p>'
    assert with_refresh("<head></head>", 0) == "<head></head>"


def test_bad_arguments() -> None:
    with pytest.raises(ValueError, match="port 70000"):
        make_server(counting_render(), port=70000)
    with pytest.raises(ValueError, match="refresh_seconds -1"):
        make_server(counting_render(), port=0, refresh_seconds=-1)


def test_the_real_status_page_is_served() -> None:
    from datetime import UTC, date, datetime

    from phasectl.status_html import render_status_html

    now = datetime(2026, 1, 25, 15, 0, tzinfo=UTC)
    with serving(lambda: render_status_html(now, [date(2026, 1, 24)], {}, (), ()), refresh_seconds=30) as server:
        status, _, body = request(server)
    assert status == 200
    assert body.count('http-equiv="refresh"') == 1
    assert 'id="grid"' in body and "times in ET (UTC\N{MINUS SIGN}05:00)" in body


def test_a_failed_render_is_one_line_on_stderr_not_a_traceback() -> None:
    def render() -> str:
        raise RuntimeError("boom\nsecond line")

    log = io.StringIO()
    with serving(render, log=log) as server:
        assert request(server)[0] == 500
    assert log.getvalue() == "status page render failed: RuntimeError: boom second line\n"


# -- phasectl status --serve with a backend down: 200, the page, one line naming the backend ----------
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _closed_port() -> int:
    return _free_port()  # nothing listens there once the probe socket is closed


@pytest.mark.parametrize("firestore", ["hung", "closed"])
def test_serve_with_a_backend_down_answers_200_with_the_page_and_one_line_naming_it(
    firestore: str, tmp_path: object
) -> None:
    """Firestore accepts and never answers (or refuses); Pub/Sub and BigQuery refuse: the live page is
    200 with its header, each backend named once at the top, no traceback anywhere, within the timeout."""
    import os
    import subprocess
    import sys
    import time

    from tests.support.hung_listener import HungListener

    port, closed = _free_port(), _closed_port()
    with HungListener() as hung:
        fs_host = hung.host if firestore == "hung" else f"127.0.0.1:{closed}"
        env = {
            **os.environ,
            "FIRESTORE_EMULATOR_HOST": fs_host,
            "PUBSUB_EMULATOR_HOST": f"127.0.0.1:{closed}",
            "BIGQUERY_EMULATOR_HOST": f"http://127.0.0.1:{closed}",
            "GOOGLE_CLOUD_PROJECT": "demo-serve",
            "PHASECTL_NOW": "2026-01-25T15:00:00Z",
        }
        cmd = [sys.executable, "-m", "phasectl", "status", "--date", "2026-01-24", "--serve", "--port", str(port)]
        proc = subprocess.Popen(
            [*cmd, "--timeout", "2"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        try:
            deadline = time.monotonic() + 60
            while True:  # until the server listens (the process imports the clients first)
                try:
                    socket.create_connection(("127.0.0.1", port), timeout=1).close()
                    break
                except OSError:
                    assert proc.poll() is None, proc.communicate()
                    assert time.monotonic() < deadline, "the server never listened"
                    time.sleep(0.2)
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            try:
                conn.request("GET", "/")
                response = conn.getresponse()
                status, body = response.status, response.read().decode("utf-8")
            finally:
                conn.close()
        finally:
            proc.terminate()
            out, err = proc.communicate(timeout=30)
    assert status == 200, body
    assert "<h1>phasechain status — 2026-01-18 … 2026-01-24</h1>" in body
    top = body[body.index('<div id="unread">') : body.index("</div>")]
    fs_line = (
        f"not read: the Firestore emulator at {fs_host} gave no answer within the 2 s deadline"
        if firestore == "hung"
        else f"not read: cannot reach the Firestore emulator at {fs_host} (FIRESTORE_EMULATOR_HOST: connection refused)"
    )
    assert top.count(fs_line) == 1, top
    assert "(missing below: the active findings, the grid and the nights, the heartbeats)" in top, top
    assert f"cannot reach the Pub/Sub emulator at 127.0.0.1:{closed}" in top
    assert f"cannot reach the BigQuery emulator at http://127.0.0.1:{closed}" in top
    assert '<h2>Grid</h2>\n<p class="unread" title="' in body
    grid = body[body.index("<h2>Grid</h2>") : body.index("</p>", body.index("<h2>Grid</h2>"))]
    assert fs_line.removeprefix("not read: ") in grid  # its tooltip; the text says: see the line at the top
    for text in (body, out, err):
        assert "Traceback" not in text, text
    assert out.startswith(f"serving the status page at http://127.0.0.1:{port}/")
