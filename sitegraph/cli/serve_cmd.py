"""`sitegraph serve`: run the HTTP API with uvicorn and print where to find it.

Registered by the CLI with ``app.command()(serve)``; ``sitegraph demo --serve`` calls it too.
"""

from __future__ import annotations

import copy
import inspect
import ipaddress
import logging
import os
from typing import Annotated, Any

import typer
from rich.markup import escape

from sitegraph.cli.common import StoreOption, console, err_console, fail
from sitegraph.errors import SitegraphError, UsageError
from sitegraph.settings import get_settings

log = logging.getLogger(__name__)

LOG_LEVELS = ("critical", "error", "warning", "info", "debug")


def _display_host(host: str) -> str:
    """The host to put in printed URLs (a wildcard bind is reachable on loopback)."""
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only for display
        return "127.0.0.1"
    return f"[{host}]" if ":" in host else host


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


WORKER_HEALTHCHECK_SECONDS = 60


def worker_options() -> dict[str, Any]:
    """Give worker processes time to start: importing the app takes seconds on a busy machine, and
    uvicorn (0.36+) kills a worker that does not answer its health check within 5 s by default."""
    import uvicorn

    if "timeout_worker_healthcheck" in inspect.signature(uvicorn.Config).parameters:
        return {"timeout_worker_healthcheck": WORKER_HEALTHCHECK_SECONDS}
    return {}


def log_config(level: str, *, access_log: bool) -> dict[str, Any]:
    """uvicorn's logging configuration plus sitegraph's loggers (applied in every worker process)."""
    from uvicorn.config import LOGGING_CONFIG

    config = copy.deepcopy(LOGGING_CONFIG)
    config["loggers"]["sitegraph"] = {"handlers": ["default"], "level": level.upper(), "propagate": False}
    if not access_log:
        config["loggers"]["sitegraph.api.access"] = {"level": "WARNING"}
    return config


def example_site(kind: str | None) -> str | None:
    """A site worth opening first (the one in the most studies), or None if the store is empty or down."""
    from sitegraph.demo import busiest_site
    from sitegraph.graph.factory import open_store

    try:
        with open_store(kind) as store:
            return busiest_site(store)
    except SitegraphError as e:
        text = f"the store is not available yet ({escape(str(e))}); the API answers 503 until it is"
        err_console.print(f"[yellow]warning:[/] {text}", soft_wrap=True)
        return None


def serve(
    host: Annotated[str, typer.Option(help="Interface to listen on (default: loopback only).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(min=1, max=65535, help="TCP port.")] = 8000,
    store: StoreOption = None,
    reload: Annotated[bool, typer.Option("--reload", help="Restart on code changes (development).")] = False,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (more cores, more throughput).")] = 1,
    log_level: Annotated[str, typer.Option(help="uvicorn log level: critical, error, warning, info or debug.")] = "info",
    access_log: Annotated[bool, typer.Option(help="Log every request with its status and duration.")] = True,
    precompute: Annotated[
        bool | None,
        typer.Option(
            "--precompute/--no-precompute",
            help="Answer every site ahead in the background after each data change (default: on; env SITEGRAPH_API_PRECOMPUTE).",
            show_default=False,
        ),
    ] = None,
) -> None:
    """Serve the HTTP API (OpenAPI docs at /docs). Writes need a key from SITEGRAPH_API_KEYS."""
    import uvicorn

    if log_level not in LOG_LEVELS:
        raise fail(UsageError(f"--log-level must be one of {', '.join(LOG_LEVELS)}, not {log_level!r}"))
    if store is not None:
        if store not in ("memory", "neo4j"):
            raise fail(UsageError(f"unknown store {store!r}: use 'memory' or 'neo4j'"))
        os.environ["SITEGRAPH_STORE"] = store  # read by the app's settings (also in --reload workers)
        get_settings.cache_clear()
    if precompute is not None:
        os.environ["SITEGRAPH_API_PRECOMPUTE"] = "1" if precompute else "0"  # read by the app's settings
        get_settings.cache_clear()
    settings = get_settings()
    kind = settings.sitegraph_store
    base = f"http://{_display_host(host)}:{port}"
    site = example_site(kind)
    console.print(f"[bold]sitegraph API[/] on the {kind} store")
    console.print(f"  docs     {base}/docs", soft_wrap=True)
    console.print(f"  health   {base}/health   (ready: {base}/ready)", soft_wrap=True)
    if site:
        console.print(f"  example  {base}/sites/{site}", soft_wrap=True)
        console.print(f"           {base}/sites/{site}/tactics", soft_wrap=True)
    if not settings.api_keys():
        hint = "set SITEGRAPH_API_KEYS (comma-separated keys) to enable POST /interactions"
        console.print(f"  [yellow]writes disabled:[/] {hint}", soft_wrap=True)
    if not _is_loopback(host):
        console.print(f"  [yellow]listening on {host}:[/] reachable from other machines", soft_wrap=True)
    uvicorn.run(
        "sitegraph.api.main:create_app",
        factory=True,
        host=host,
        port=port,
        reload=reload,
        workers=None if reload else workers,
        log_level=log_level,
        log_config=log_config(log_level, access_log=access_log),
        access_log=False,  # the app logs each request with its duration
        **worker_options(),
    )
