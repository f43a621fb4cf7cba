"""A tiny HTTP server on 127.0.0.1 that serves the guide and the style to Neo4j Browser.

Browser fetches ``:play``/``:guide``/``:style`` URLs from the page itself (a cross-origin request from
``http://127.0.0.1:7474``, with ``pragma``/``cache-control`` request headers, so preceded by a CORS
preflight). This server answers the preflight and sends ``Access-Control-Allow-Origin: *``.

Browser also checks the URL's host against the server setting ``browser.remote_content_hostname_whitelist``
(Neo4j 5.26's name; later versions call it ``..._allowlist``), whose default is
``guides.neo4j.com,localhost``. The server listens on 127.0.0.1 but its URLs say ``localhost``, so any
Neo4j with the default setting accepts them, and so does Browser before it has read the server's
setting (a ``?cmd=play&arg=...`` link runs before login, against the default).

Usage::

    with GuideServer(port=8765) as server:
        print(server.play_command)   # :play http://localhost:8765/sitegraph-guide.html
"""

from __future__ import annotations

import logging
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import quote, urlsplit

from sitegraph.queries.browser.guide import GUIDE_FILE, STYLE_FILE, grass, render_guide

log = logging.getLogger(__name__)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 8765
#: Host name in the URLs handed to Browser: on Neo4j's default allow-list, and it reaches 127.0.0.1.
URL_HOST = "localhost"


def browser_link(browser_url: str, guide_url: str, *, sidebar: bool = False) -> str:
    """A Neo4j Browser URL that opens the guide after login (``?cmd=play&arg=<guide url>``)."""
    sep = "&" if "?" in browser_url else "?"
    cmd = "guide" if sidebar else "play"
    return f"{browser_url}{sep}cmd={cmd}&arg={quote(guide_url, safe='')}"


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def _cors(self) -> None:
        self.send_header("Access-Control-Allow-Origin", "*")
        self.send_header("Access-Control-Allow-Methods", "GET, HEAD, OPTIONS")
        requested = self.headers.get("Access-Control-Request-Headers")
        self.send_header("Access-Control-Allow-Headers", requested or "*")
        self.send_header("Access-Control-Max-Age", "600")

    def do_OPTIONS(self) -> None:  # CORS preflight
        self.send_response(204)
        self._cors()
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _answer(self, body: bool) -> None:
        path = urlsplit(self.path).path
        entry = self.server.content.get(path)
        if entry is None:
            payload = b"not found\n"
            self.send_response(404)
            self._cors()
            self.send_header("Content-Type", "text/plain; charset=utf-8")
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            if body:
                self.wfile.write(payload)
            return
        data, content_type = entry
        self.send_response(200)
        self._cors()
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Cache-Control", "no-cache")
        self.end_headers()
        if body:
            self.wfile.write(data)

    def do_GET(self) -> None:
        self._answer(body=True)

    def do_HEAD(self) -> None:
        self._answer(body=False)

    def log_message(self, format: str, *args: Any) -> None:
        log.debug("guide server: " + format, *args)


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    content: dict[str, tuple[bytes, str]]


class GuideServer:
    """Serve ``/sitegraph-guide.html`` and ``/sitegraph.grass`` (rendered now) on ``host:port``.

    ``port=0`` picks a free port. URLs name ``url_host`` (``localhost``) rather than ``host``.
    :meth:`start` returns at once (a daemon thread serves); :meth:`serve_forever` blocks instead.
    """

    def __init__(self, host: str = DEFAULT_HOST, port: int = DEFAULT_PORT, *, url_host: str = URL_HOST) -> None:
        self.host = host
        self.port = port
        self.url_host = url_host
        self._httpd: _Server | None = None
        self._thread: threading.Thread | None = None

    def _bind(self) -> _Server:
        if self._httpd is None:
            httpd = _Server((self.host, self.port), _Handler)
            guide = render_guide().encode("utf-8")
            httpd.content = {
                "/": (guide, "text/html; charset=utf-8"),
                f"/{GUIDE_FILE}": (guide, "text/html; charset=utf-8"),
                f"/{STYLE_FILE}": (grass().encode("utf-8"), "text/plain; charset=utf-8"),
            }
            self.port = int(httpd.server_address[1])
            self._httpd = httpd
            log.info("serving the Browser guide at %s", self.guide_url)
        return self._httpd

    @property
    def base_url(self) -> str:
        return f"http://{self.url_host}:{self.port}"

    @property
    def guide_url(self) -> str:
        return f"{self.base_url}/{GUIDE_FILE}"

    @property
    def style_url(self) -> str:
        return f"{self.base_url}/{STYLE_FILE}"

    @property
    def play_command(self) -> str:
        return f":play {self.guide_url}"

    @property
    def guide_command(self) -> str:
        return f":guide {self.guide_url}"

    @property
    def style_command(self) -> str:
        return f":style {self.style_url}"

    def start(self) -> GuideServer:
        """Serve in a background thread; returns self."""
        httpd = self._bind()
        if self._thread is None:
            self._thread = threading.Thread(target=httpd.serve_forever, name="sitegraph-guide-server", daemon=True)
            self._thread.start()
        return self

    def serve_forever(self) -> None:
        """Serve in this thread until interrupted (Ctrl-C) or :meth:`stop` is called from another."""
        httpd = self._bind()
        try:
            httpd.serve_forever()
        finally:
            httpd.server_close()
            self._httpd = None

    def stop(self) -> None:
        if self._httpd is not None:
            self._httpd.shutdown()
            self._httpd.server_close()
            self._httpd = None
        if self._thread is not None:
            self._thread.join(timeout=5)
            self._thread = None

    def __enter__(self) -> GuideServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()
