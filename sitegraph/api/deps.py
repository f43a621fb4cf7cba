"""Dependencies of the routes, as ``Annotated`` aliases: the settings, the store, the API key, and the
:class:`Reader` that runs read queries on the store's current snapshot.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import partial
from typing import Annotated, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from starlette.concurrency import run_in_threadpool

from sitegraph.api.errors import ApiError
from sitegraph.api.state import StoreHolder
from sitegraph.graph.store import GraphStore
from sitegraph.queries.snapshot import Snapshot, get_snapshot
from sitegraph.settings import Settings


def get_app_settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def get_store(request: Request) -> GraphStore:
    """The app's store; raises StoreUnavailableError (→ 503) while it cannot be opened."""
    holder: StoreHolder = request.app.state.store_holder
    return holder.get()


SettingsDep = Annotated[Settings, Depends(get_app_settings)]
StoreDep = Annotated[GraphStore, Depends(get_store)]


P = ParamSpec("P")
T = TypeVar("T")


class Reader:
    """Runs a read query on the store's current snapshot in the app's small pool of query threads.

    Queries are CPU-bound Python: many threads running them at once only fight over the GIL (under
    32 concurrent requests, throughput fell to a third). A pool of :data:`sitegraph.api.state.QUERY_THREADS`
    threads keeps the CPU busy while the event loop queues the rest.
    """

    def __init__(self, holder: StoreHolder, executor: ThreadPoolExecutor) -> None:
        self.holder = holder
        self.executor = executor

    async def __call__(self, fn: Callable[Concatenate[Snapshot, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        # The version check is I/O on Neo4j: done on the shared thread pool, so the query threads only compute.
        snapshot = await run_in_threadpool(self.snapshot)
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(fn, snapshot, *args, **kwargs))

    def snapshot(self) -> Snapshot:
        return get_snapshot(self.holder.get())


async def get_reader(request: Request) -> Reader:
    return Reader(request.app.state.store_holder, request.app.state.query_executor)


ReaderDep = Annotated[Reader, Depends(get_reader)]

_bearer = HTTPBearer(
    auto_error=False, scheme_name="bearer", description="`Authorization: Bearer <key>`, a key from SITEGRAPH_API_KEYS."
)
_api_key_header = APIKeyHeader(
    name="X-API-Key", auto_error=False, scheme_name="apiKey", description="`X-API-Key: <key>`, a key from SITEGRAPH_API_KEYS."
)


def _digest(value: str) -> bytes:
    return hashlib.sha256(value.encode("utf-8")).digest()


def key_fingerprint(key: str) -> str:
    """A short, non-reversible name for a key (what the stored records and logs show)."""
    return hashlib.sha256(key.encode("utf-8")).hexdigest()[:12]


def matching_key(presented: list[str], keys: frozenset[str]) -> str | None:
    """The configured key equal to one of the presented ones, compared in constant time."""
    found: str | None = None
    for candidate in presented:
        cand = _digest(candidate)
        for key in sorted(keys):
            # compare every pair (no early exit) on fixed-length digests
            if hmac.compare_digest(cand, _digest(key)) and found is None:
                found = key
    return found


def require_api_key(
    settings: SettingsDep,
    bearer: Annotated[HTTPAuthorizationCredentials | None, Security(_bearer)],
    header_key: Annotated[str | None, Security(_api_key_header)],
) -> str:
    """Accept the request only with a configured API key; returns the key's fingerprint.

    With no keys configured, writes are refused (503) instead of being open to anyone.
    """
    keys = settings.api_keys()
    if not keys:
        raise ApiError(
            503,
            "writes_disabled",
            "writes are disabled: no API keys are configured; set SITEGRAPH_API_KEYS (comma-separated) and restart",
        )
    presented = [v for v in (bearer.credentials if bearer else None, header_key) if v]
    challenge = {"WWW-Authenticate": 'Bearer realm="sitegraph"'}
    if not presented:
        raise ApiError(
            401,
            "unauthorized",
            "an API key is required: send 'Authorization: Bearer <key>' or 'X-API-Key: <key>'",
            headers=challenge,
        )
    key = matching_key(presented, keys)
    if key is None:
        raise ApiError(
            401,
            "unauthorized",
            "invalid API key",
            headers={**challenge, "WWW-Authenticate": 'Bearer realm="sitegraph", error="invalid_token"'},
        )
    return key_fingerprint(key)


ApiKeyDep = Annotated[str, Depends(require_api_key)]
