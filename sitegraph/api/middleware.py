"""Request logging: method, path, status and duration of every request, through ``logging``."""

from __future__ import annotations

import logging
import time

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
