"""ASGI middleware: request logging (method, path, status, duration) and a request body size limit."""

from __future__ import annotations

import logging
import time

from starlette.exceptions import HTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

log = logging.getLogger("sitegraph.api.access")


class RequestLogMiddleware:
    """A pure ASGI middleware (no body buffering), so streaming and errors are logged alike."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            elapsed_ms = (time.perf_counter() - started) * 1000
            level = logging.WARNING if status >= 500 else logging.INFO
            log.log(level, "%s %s %d %.1fms", scope.get("method", "-"), scope.get("path", "-"), status, elapsed_ms)


class BodySizeLimitMiddleware:
    """Refuse request bodies larger than ``max_bytes`` with 413, before anything parses them.

    A declared ``Content-Length`` over the limit is answered at once; a chunked body is counted as it
    arrives and stopped at the limit (the error goes through the app's handlers, so it has the usual shape).
    """

    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    def _too_large(self) -> HTTPException:
        return HTTPException(413, f"request body too large: at most {self.max_bytes} bytes")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = dict(scope.get("headers", ())).get(b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > self.max_bytes):
            from sitegraph.api.errors import error_response

            await error_response(413, self._too_large().detail)(scope, receive, send)
            return
        received = 0

        async def limited_receive() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    raise self._too_large()
            return message

        await self.app(scope, limited_receive, send)
