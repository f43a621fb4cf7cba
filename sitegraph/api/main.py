"""The FastAPI app: :func:`create_app` gathers the routers, error handlers, CORS and request logging.

Run it with ``sitegraph serve`` or ``uvicorn --factory sitegraph.api.main:create_app``;
``sitegraph.api.main:app`` is also there for plain ``uvicorn`` (built on first access, so settings are
not read at import). The store is opened once in the lifespan and closed on shutdown; a store handed
to :func:`create_app` is used as is and left for its owner to close.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from starlette.concurrency import run_in_threadpool

from sitegraph import __version__
from sitegraph.api.deps import Reader, SnapshotGate
from sitegraph.api.errors import install_error_handlers
from sitegraph.api.middleware import BodySizeLimitMiddleware, RequestLogMiddleware
from sitegraph.api.precompute import Precomputer
from sitegraph.api.routes import health, interactions, investigators, ontology, sites
from sitegraph.api.state import QUERY_THREADS, StoreHolder, ensure_warm
from sitegraph.graph.store import GraphStore
from sitegraph.settings import Settings, get_settings

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
"""Largest request body accepted (a note is at most 4000 characters); larger ones get 413."""

DESCRIPTION = """
A knowledge graph of clinical-trial sites, investigators, studies, the barriers sites face and the
tactics that remove them.

* **Reads** (`GET`) need no key.
* **Writes** (`POST /interactions`) need `Authorization: Bearer <key>` or `X-API-Key: <key>`, a key
  from the `SITEGRAPH_API_KEYS` setting (comma-separated). With no keys configured writes are refused.
* **Errors** all share one shape: `{"error": {"status", "code", "message", "details": [...]}}`.
* Site ids contain `:` (`site:massachusetts-general-hospital-boston-massachusetts-unitedstates`);
  ontology ids are IRIs (percent-encoded or as they are) or compact ids (`stalled-ethics-approval`).
"""

TAGS = [
    {"name": "health", "description": "Liveness and readiness."},
    {"name": "sites", "description": "Search, Site 360 profile, related sites and next-best tactics."},
    {"name": "investigators", "description": "Investigator profiles."},
    {"name": "ontology", "description": "Barriers and tactics: hierarchy and mitigation links with evidence."},
    {"name": "interactions", "description": "Log interactions with sites (needs an API key)."},
]


def cors_origins(settings: Settings) -> list[str]:
    raw = settings.sitegraph_cors_origins.strip()
    if not raw:
        return []
    return ["*"] if raw == "*" else [o.strip() for o in raw.split(",") if o.strip()]


def precompute_default(holder: StoreHolder, settings: Settings) -> bool:
    """Answer every site ahead when serving for real (the app opened its store), unless
    ``SITEGRAPH_API_PRECOMPUTE`` is false (see :mod:`sitegraph.api.precompute`)."""
    return holder.owned and settings.sitegraph_api_precompute


def create_app(store: GraphStore | None = None, settings: Settings | None = None, *, precompute: bool | None = None) -> FastAPI:
    """Build the app. Without ``store`` it opens the store named by the settings in its lifespan.

    ``precompute`` runs the background thread of :mod:`sitegraph.api.precompute` (default: when the app
    opens its own store, unless ``SITEGRAPH_API_PRECOMPUTE=0``); it also builds the first snapshot.
    """
    settings = settings or get_settings()
    holder = StoreHolder(settings, store)
    precomputer: Precomputer | None = None
    if precompute if precompute is not None else precompute_default(holder, settings):
        from sitegraph.api.routes.sites import PER_SITE

        precomputer = Precomputer(
            PER_SITE,
            holder.current_snapshot,
            version=holder.data_version,
            warm_up=ensure_warm,
            requests=lambda: app.state.reader.requests,
        )

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        await run_in_threadpool(holder.open)
        if precomputer is not None:  # builds the snapshot and its indexes first, then every site's answers
            precomputer.start()
        elif holder.owned:  # serving for real: build the snapshot in the background, not on the first request
            app.state.warm_up = asyncio.get_running_loop().run_in_executor(app.state.query_executor, holder.warm_up)
        if not settings.api_keys():
            log.warning("SITEGRAPH_API_KEYS is not set: POST /interactions will refuse writes")
        try:
            yield
        finally:
            if precomputer is not None:
                await run_in_threadpool(precomputer.stop)
            await run_in_threadpool(holder.close)

    app = FastAPI(
        title="sitegraph API",
        version=__version__,
        description=DESCRIPTION,
        openapi_tags=TAGS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.store_holder = holder
    app.state.query_executor = ThreadPoolExecutor(max_workers=QUERY_THREADS, thread_name_prefix="sitegraph-query")
    # one version check at a time (see SnapshotGate); a thread of its own, so it never waits behind queries
    app.state.snapshot_executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="sitegraph-snapshot")
    app.state.precomputer = precomputer
    listener = precomputer.offer if precomputer is not None else None
    app.state.reader = Reader(SnapshotGate(holder, app.state.snapshot_executor, listener), app.state.query_executor)
    install_error_handlers(app)
    for module in (health, sites, investigators, ontology, interactions):
        app.include_router(module.router)
    app.add_middleware(BodySizeLimitMiddleware, max_bytes=MAX_BODY_BYTES)
    app.add_middleware(RequestLogMiddleware)
    origins = cors_origins(settings)
    if origins:
        app.add_middleware(
            CORSMiddleware,
            allow_origins=origins,
            allow_methods=["GET", "POST", "OPTIONS"],
            allow_headers=["Authorization", "X-API-Key", "Content-Type"],
            expose_headers=["Location", "Retry-After"],
        )
    return app


_app: FastAPI | None = None


def __getattr__(name: str) -> FastAPI:
    """``sitegraph.api.main:app``: the app built from the settings on first access."""
    global _app
    if name == "app":
        if _app is None:
            _app = create_app()
        return _app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
