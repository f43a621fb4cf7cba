"""Serialised responses of the read endpoints, cached per snapshot.

A read endpoint's answer is a pure function of the snapshot it reads and of its parameters (the
queries read nothing else: no clock, no randomness), so its JSON body can be kept with the snapshot
and served again until the data changes. The cache lives in the snapshot's ``cache`` dict, so it is
dropped with the snapshot: the next request after any write (through the API, whose write-through
installs a new snapshot, or from outside, which moves the store's data version) reads a new snapshot
with an empty cache, and is never answered from an older one.

Each worker process keeps at most :data:`MAX_BYTES` of bodies (least recently used first out), and
bodies over :data:`MAX_ENTRY_BYTES` are not kept.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

from sitegraph.queries.snapshot import Snapshot, carried, carry

F = TypeVar("F", bound=Callable[..., Any])

MAX_BYTES = 64 * 2**20
"""Largest total size of the bodies kept for one snapshot (per worker process)."""
MAX_ENTRY_BYTES = 2**20
"""Bodies larger than this are served but not kept."""
CACHE_KEY = carry("api.responses")
"""The key of the response cache in :attr:`Snapshot.cache`."""


class ResponseCache:
    """A thread-safe LRU of JSON bodies bounded by their total size in bytes."""

    def __init__(self, max_bytes: int = MAX_BYTES, max_entry_bytes: int = MAX_ENTRY_BYTES) -> None:
        self.max_bytes = max_bytes
        self.max_entry_bytes = max_entry_bytes
        self._items: OrderedDict[Hashable, bytes] = OrderedDict()
        self._size = 0
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, key: Hashable) -> bytes | None:
        with self._lock:
            body = self._items.get(key)
            if body is None:
                self.misses += 1
                return None
            self._items.move_to_end(key)
            self.hits += 1
            return body

    def put(self, key: Hashable, body: bytes) -> None:
        if len(body) > self.max_entry_bytes:
            return
        with self._lock:
            old = self._items.pop(key, None)
            if old is not None:
                self._size -= len(old)
            self._items[key] = body
            self._size += len(body)
            while self._size > self.max_bytes and self._items:
                _, dropped = self._items.popitem(last=False)
                self._size -= len(dropped)

    @property
    def size(self) -> int:
        return self._size

    def __len__(self) -> int:
        return len(self._items)

    def copy_of(self, keep: Callable[[Hashable], bool]) -> ResponseCache:
        """A new cache with the entries whose key ``keep`` accepts (least recently used first, as here)."""
        out = ResponseCache(self.max_bytes, self.max_entry_bytes)
        with self._lock:
            items = [(k, v) for k, v in self._items.items() if keep(k)]
        for k, v in items:
            out.put(k, v)
        return out


INTERACTION_FREE: set[Callable[..., Any]] = set()
"""Read functions whose answers read no interaction (site search, the ontology lookups): a write of
interactions only leaves them as they were, so the next snapshot keeps their cached bodies."""


def reads_no_interactions(fn: F) -> F:
    """Mark a read function as :data:`INTERACTION_FREE`."""
    INTERACTION_FREE.add(fn)
    return fn


_create_lock = threading.Lock()


def response_cache(snapshot: Snapshot) -> ResponseCache:
    """The response cache of ``snapshot`` (created on first use: after a write of interactions only, with
    the previous snapshot's bodies of the :data:`INTERACTION_FREE` functions)."""
    cache = snapshot.cache.get(CACHE_KEY)
    if cache is None:
        with _create_lock:
            cache = snapshot.cache.get(CACHE_KEY)
            if cache is None:
                previous = carried(snapshot, CACHE_KEY)
                if isinstance(previous, ResponseCache):
                    cache = previous.copy_of(lambda key: isinstance(key, tuple) and bool(key) and key[0] in INTERACTION_FREE)
                else:
                    cache = ResponseCache()
                snapshot.cache[CACHE_KEY] = cache
    assert isinstance(cache, ResponseCache)
    return cache
