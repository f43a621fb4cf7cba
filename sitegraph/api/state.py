"""The store the API serves, opened once and shared by every request.

:class:`StoreHolder` opens the store from settings in the app's lifespan (or takes one it is given,
which its owner closes). If the store cannot be opened at start-up the API still starts and answers
503; each later request retries the opening (at most once per :data:`RETRY_INTERVAL`), so the service
recovers by itself when the store comes back. Once open, the Neo4j driver reconnects on its own and
nothing broken is cached: snapshots are only kept when they were read completely.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, TypeVar

from sitegraph.errors import StoreUnavailableError
from sitegraph.graph.factory import open_store
from sitegraph.graph.store import GraphStore
from sitegraph.queries.snapshot import LINEAGE_KEY, Snapshot
from sitegraph.settings import Settings

log = logging.getLogger(__name__)

F = TypeVar("F", bound=Callable[..., Any])

RETRY_INTERVAL = 1.0
QUERY_THREADS = 2
"""Threads that run read queries (see :class:`sitegraph.api.deps.Reader`)."""


class StoreHolder:
    """Owns (or borrows) the store of one app."""

    def __init__(self, settings: Settings, store: GraphStore | None = None) -> None:
        self.settings = settings
        self._store = store
        self._owned = store is None
        self._lock = threading.Lock()
        self._last_attempt = float("-inf")
        self._last_error: str | None = None

    @property
    def kind(self) -> str:
        return self._store.kind if self._store is not None else self.settings.sitegraph_store

    def open(self) -> None:
        """Open the store now if it is not open; log (do not raise) when it is unavailable."""
        try:
            self.get()
        except StoreUnavailableError as e:
            log.warning("the %s store is not available yet (the API answers 503 until it is): %s", self.kind, e)

    def get(self) -> GraphStore:
        """The open store; :class:`StoreUnavailableError` if it cannot be opened right now."""
        store = self._store
        if store is not None:
            return store
        with self._lock:
            if self._store is not None:
                return self._store
            now = time.monotonic()
            if self._last_error is not None and now - self._last_attempt < RETRY_INTERVAL:
                raise StoreUnavailableError(self._last_error)
            self._last_attempt = now
            try:
                self._store = open_store(self.settings.sitegraph_store, self.settings)
            except StoreUnavailableError as e:
                self._last_error = str(e)
                raise
            self._last_error = None
            log.info("opened the %s store", self._store.kind)
            return self._store

    @property
    def owned(self) -> bool:
        return self._owned

    def warm_up(self) -> None:
        """Build the snapshot and the per-version indexes now, so that the first requests are fast.

        Best effort: a store that is down is reported and left for the requests to retry.
        """
        from sitegraph.queries.snapshot import get_snapshot

        try:
            ensure_warm(get_snapshot(self.get()))
        except Exception as e:
            log.warning("warm-up of the %s store skipped: %s", self.kind, e)

    def current_snapshot(self) -> Snapshot:
        """The store's current snapshot (built now if the data moved)."""
        from sitegraph.queries.snapshot import get_snapshot

        return get_snapshot(self.get())

    def data_version(self) -> int:
        return self.get().version()

    def close(self) -> None:
        """Close the store if this holder opened it."""
        with self._lock:
            store, self._store = self._store, (None if self._owned else self._store)
        if store is not None and self._owned:
            store.close()
            log.info("closed the %s store", store.kind)


def warm_up_snapshot(snapshot: Snapshot) -> None:
    """Build every index recommendations, related sites, profiles and search read on ``snapshot``."""
    from sitegraph.queries.recommend import warm_up as warm_up_indexes
    from sitegraph.queries.search import search_index

    started = time.perf_counter()
    warm_up_indexes(snapshot)
    search_index(snapshot)
    log.info("warmed up data version %d in %.1fs", snapshot.version, time.perf_counter() - started)


NO_WARM_UP: set[Callable[..., Any]] = set()
"""Read functions that need none of the indexes :func:`ensure_warm` builds (they answer at once after a write)."""


def no_warm_up(fn: F) -> F:
    """Mark a read function as needing none of the snapshot's derived indexes (:data:`NO_WARM_UP`)."""
    NO_WARM_UP.add(fn)
    return fn


WARMED_KEY = "api.warmed"
"""Set in :attr:`Snapshot.cache` once :func:`ensure_warm` has built the snapshot's indexes."""
_WARM_LOCK_KEY = "api.warm_lock"


def ensure_warm(snapshot: Snapshot) -> None:
    """:func:`warm_up_snapshot` once per snapshot, however many threads ask at the same time.

    After a write every query thread and the precompute thread need the new snapshot's indexes at
    once; each would build them itself (the indexes are built on first use, without locks), and at
    sponsor scale each build holds the GIL for seconds. Here the first caller builds them and the
    others wait for it. A build that fails is logged and not retried: the queries then build what
    they need themselves and report their own errors.
    """
    if snapshot.cache.get(WARMED_KEY):
        return
    lock = snapshot.cache.setdefault(_WARM_LOCK_KEY, threading.Lock())  # one dict operation: atomic
    with lock:
        if snapshot.cache.get(WARMED_KEY):
            return
        try:
            warm_up_snapshot(snapshot)
            # the answers the write before this snapshot cannot have changed (while its lineage is at hand)
            from sitegraph.api.precompute import carry_answers
            from sitegraph.api.routes.sites import PER_SITE

            carry_answers(snapshot, PER_SITE)
        except Exception as e:
            log.warning("warm-up of data version %d failed (queries build their own indexes): %s", snapshot.version, e)
        # what the indexes took from the previous snapshot is in them now: let the rest of it go
        snapshot.cache.pop(LINEAGE_KEY, None)
        snapshot.cache[WARMED_KEY] = True
