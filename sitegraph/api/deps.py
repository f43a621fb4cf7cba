"""Dependencies of the routes, as ``Annotated`` aliases: the settings, the store, the API key, and the
:class:`Reader` that runs read queries on the store's current snapshot (and serves their JSON from the
snapshot's response cache, see :mod:`sitegraph.api.cache`).
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import cache, partial
from typing import Annotated, Any, Concatenate, ParamSpec, TypeVar

from fastapi import Depends, Request, Response, Security
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer
from pydantic import TypeAdapter

from sitegraph.api.cache import response_cache
from sitegraph.api.errors import ApiError
from sitegraph.api.precompute import answers_of
from sitegraph.api.state import NO_WARM_UP, StoreHolder, ensure_warm
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


@cache
def json_adapter(model: Any) -> TypeAdapter[Any]:
    """The pydantic adapter that validates and serialises a response model, as FastAPI does."""
    return TypeAdapter(model)


def to_json(model: Any, value: Any) -> bytes:
    """``value`` validated as ``model`` and serialised to JSON, byte for byte what FastAPI sends for a
    route with ``response_model=model`` (it validates, then dumps by alias with pydantic's serialiser)."""
    adapter = json_adapter(model)
    return adapter.dump_json(adapter.validate_python(value), by_alias=True)


class SnapshotGate:
    """The current snapshot for the requests of one event loop, one version check for many requests.

    Checking the store's version needs a thread (I/O on Neo4j, the store's lock on the embedded
    store), and a thread hop costs more CPU than answering from the response cache. Requests that
    arrive while a check is under way wait for the *next* check, which starts when that one ends and
    serves all of them: every request still gets a check that started after it arrived (no answer is
    older than a check of its own would give), but under load one hop serves many requests.
    """

    def __init__(
        self, holder: StoreHolder, executor: ThreadPoolExecutor, listener: Callable[[Snapshot], None] | None = None
    ) -> None:
        self.holder = holder
        self.executor = executor
        self.listener = listener  # told of every snapshot a check gives (the precompute thread's offer)
        self._loop: asyncio.AbstractEventLoop | None = None
        self._running: asyncio.Future[Snapshot] | None = None
        self._queued: asyncio.Future[Snapshot] | None = None
        self.checks = 0

    async def snapshot(self) -> Snapshot:
        loop = asyncio.get_running_loop()
        if loop is not self._loop:  # a new loop (tests run each client on its own): nothing carries over
            self._loop, self._running, self._queued = loop, None, None
        if self._running is None:
            fut: asyncio.Future[Snapshot] = loop.create_future()
            self._launch(loop, fut)
        else:
            if self._queued is None:
                self._queued = loop.create_future()
            fut = self._queued
        return await asyncio.shield(fut)

    def _check(self) -> Snapshot:
        snapshot = get_snapshot(self.holder.get())
        if self.listener is not None:
            self.listener(snapshot)
        return snapshot

    def _launch(self, loop: asyncio.AbstractEventLoop, target: asyncio.Future[Snapshot]) -> None:
        self._running = target
        self.checks += 1
        inner = loop.run_in_executor(self.executor, self._check)

        def done(f: asyncio.Future[Snapshot]) -> None:
            if self._loop is loop:
                self._running = None
            if not target.done():
                if f.cancelled():
                    target.cancel()
                elif (e := f.exception()) is not None:
                    target.set_exception(e)
                else:
                    target.set_result(f.result())
            if self._loop is loop and self._queued is not None:
                queued, self._queued = self._queued, None
                self._launch(loop, queued)

        inner.add_done_callback(done)


class Reader:
    """Runs a read query on the store's current snapshot in the app's small pool of query threads.

    Queries are CPU-bound Python: many threads running them at once only fight over the GIL (under
    32 concurrent requests, throughput fell to a third). A pool of :data:`sitegraph.api.state.QUERY_THREADS`
    threads keeps the CPU busy while the event loop queues the rest.

    :meth:`json` also serves the answer from the snapshot's response cache, or from the answers
    computed ahead for that snapshot (:mod:`sitegraph.api.precompute`): such a request costs the
    version check and a dict lookup, and does not queue behind the computations.
    """

    def __init__(self, gate: SnapshotGate, executor: ThreadPoolExecutor) -> None:
        self.gate = gate
        self.executor = executor
        self.requests = 0  # read requests so far (the precompute thread rests while they come in)

    async def __call__(self, fn: Callable[Concatenate[Snapshot, P], T], *args: P.args, **kwargs: P.kwargs) -> T:
        # The version check is I/O on Neo4j: done on its own thread, so the query threads only compute.
        snapshot = await self.gate.snapshot()
        return await asyncio.get_running_loop().run_in_executor(self.executor, partial(_warm_then, fn, snapshot, *args, **kwargs))

    async def json(self, model: Any, fn: Callable[Concatenate[Snapshot, P], Any], *args: P.args, **kwargs: P.kwargs) -> Response:
        """``fn(snapshot, *args, **kwargs)`` as a JSON response of the route's ``response_model``.

        ``fn`` must be a pure function of the snapshot and its (hashable) arguments: its body is kept in
        the snapshot's response cache and served again until the data version moves. Errors (404, ...)
        are raised as usual and not cached.
        """
        self.requests += 1
        snapshot = await self.gate.snapshot()
        answers = answers_of(snapshot)
        # computed ahead for this very snapshot: served as is, not copied into the LRU
        body = answers.get(fn, model, args, kwargs) if answers is not None else None
        if body is None:
            cache = response_cache(snapshot)
            key = (fn, model, args, tuple(sorted(kwargs.items())))
            body = cache.get(key)
            if body is None:
                work = partial(_compute_json, model, fn, snapshot, args, kwargs)
                body = await asyncio.get_running_loop().run_in_executor(self.executor, work)
                cache.put(key, body)
        return Response(content=body, media_type="application/json")


def _warm_then(fn: Callable[..., T], snapshot: Snapshot, *args: Any, **kwargs: Any) -> T:
    """``fn(snapshot, ...)`` once the snapshot's indexes are built (by this thread or another: see
    :func:`~sitegraph.api.state.ensure_warm`), unless ``fn`` reads none of them (the ontology lookups)."""
    if fn not in NO_WARM_UP:
        ensure_warm(snapshot)
    return fn(snapshot, *args, **kwargs)


def _compute_json(model: Any, fn: Callable[..., Any], snapshot: Snapshot, args: tuple[Any, ...], kwargs: dict[str, Any]) -> bytes:
    if fn not in NO_WARM_UP:
        ensure_warm(snapshot)
        # the warm-up may have carried this answer over from the previous snapshot (a write that cannot reach it)
        answers = answers_of(snapshot)
        body = answers.get(fn, model, args, kwargs) if answers is not None else None
        if body is not None:
            return body
    return to_json(model, fn(snapshot, *args, **kwargs))


async def get_reader(request: Request) -> Reader:
    reader: Reader = request.app.state.reader
    return reader


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
