"""An in-memory snapshot of a store's graph, cached against the store's data version.

Traversals, recommendations and profiles read the snapshot, so both stores give identical answers,
and the snapshot is rebuilt as soon as the store's :meth:`~GraphStore.version` changes (a write
through the API is never answered from a stale cache).

The snapshot is a networkx ``MultiDiGraph`` of the same shape as the embedded store's graph: nodes
are ``(label, key)`` tuples whose attributes are the node's properties (plus ``_label``); edges are
keyed by ``(type, identity-json)`` and carry the relationship's properties.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

import networkx as nx

from sitegraph.graph.schema import NODES, RELATIONSHIPS, node_spec
from sitegraph.graph.store import GraphBatch, GraphStore

log = logging.getLogger(__name__)

NodeId = tuple[str, str]


@dataclass
class Snapshot:
    """A read-only view of the whole graph at one data version."""

    graph: nx.MultiDiGraph
    version: int
    built_at: float = field(default_factory=time.time)
    cache: dict[str, Any] = field(default_factory=dict)  # derived results valid for this version

    def node(self, label: str, key: str) -> dict[str, Any] | None:
        data = self.graph.nodes.get((label, key))
        if data is None:
            return None
        return {k: v for k, v in data.items() if k != "_label"}

    def nodes(self, label: str) -> Iterator[tuple[str, dict[str, Any]]]:
        """(key, props) of every node of the label, in key order."""
        node_spec(label)
        for nid in sorted(n for n in self.graph.nodes if n[0] == label):
            yield nid[1], {k: v for k, v in self.graph.nodes[nid].items() if k != "_label"}

    def out(self, label: str, key: str, rel_type: str) -> list[tuple[NodeId, dict[str, Any]]]:
        """(target node id, relationship props) of outgoing relationships of the type, sorted."""
        nid = (label, key)
        if nid not in self.graph:
            return []
        rows = [(v, d) for _, v, ek, d in self.graph.out_edges(nid, keys=True, data=True) if ek[0] == rel_type]
        rows.sort(key=lambda r: (r[0], json.dumps(r[1], sort_keys=True, default=str)))
        return rows

    def into(self, label: str, key: str, rel_type: str) -> list[tuple[NodeId, dict[str, Any]]]:
        """(source node id, relationship props) of incoming relationships of the type, sorted."""
        nid = (label, key)
        if nid not in self.graph:
            return []
        rows = [(u, d) for u, _, ek, d in self.graph.in_edges(nid, keys=True, data=True) if ek[0] == rel_type]
        rows.sort(key=lambda r: (r[0], json.dumps(r[1], sort_keys=True, default=str)))
        return rows


def build_snapshot(store: GraphStore) -> Snapshot:
    """Read every node and relationship of the store into a networkx graph."""
    started = time.perf_counter()
    version = store.version()
    from sitegraph.graph.memory import MemoryStore

    if isinstance(store, MemoryStore):
        g = store.shared_graph()  # no copy: the store copies on its next write instead
    else:
        g = nx.MultiDiGraph()
        for label in NODES:
            if label == "SitegraphMeta":
                continue
            key_name = node_spec(label).key
            for props in store.iter_nodes(label):
                g.add_node((label, props[key_name]), _label=label, **props)
        for rtype, spec in RELATIONSHIPS.items():
            for rel in store.iter_relationships(rtype):
                ident = json.dumps({name: rel.props.get(name, "") for name in spec.identity}, sort_keys=True)
                g.add_edge((rel.start_label, rel.start), (rel.end_label, rel.end), key=(rtype, ident), **rel.props)
    log.info(
        "snapshot of the %s store at version %d: %d nodes, %d relationships in %.2fs",
        store.kind,
        version,
        g.number_of_nodes(),
        g.number_of_edges(),
        time.perf_counter() - started,
    )
    return Snapshot(graph=g, version=version)


def apply_batch(graph: nx.MultiDiGraph, batch: GraphBatch) -> None:
    """Apply a batch to a snapshot graph with the stores' write semantics (merge; None removes)."""
    for label, rows in batch.nodes.items():
        key_name = node_spec(label).key
        for key, props in rows.items():
            nid = (label, key)
            if nid not in graph:
                graph.add_node(nid, _label=label, **{key_name: key})
            data = graph.nodes[nid]
            for name, value in props.items():
                if value is None:
                    data.pop(name, None)
                else:
                    data[name] = value
    for rk, props in batch.rels.items():
        u, v, ek = (rk.start_label, rk.start), (rk.end_label, rk.end), (rk.type, rk.ident_json())
        if not graph.has_edge(u, v, key=ek):
            graph.add_edge(u, v, key=ek)
        data = graph.edges[u, v, ek]
        for name, value in props.items():
            if value is None:
                data.pop(name, None)
            else:
                data[name] = value


class SnapshotCache:
    """Holds the latest snapshot of one store; rebuilds it when the store's version moves."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()

    def get(self) -> Snapshot:
        version = self.store.version()
        snap = self._snapshot
        if snap is not None and snap.version == version:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is None or snap.version != self.store.version():
                snap = build_snapshot(self.store)
                self._snapshot = snap
            return snap

    def write_through(self, batch: GraphBatch) -> None:
        """Write the batch to the store and move the cached snapshot forward without a full rebuild.

        The new snapshot is a copy of the old graph with the batch applied, used only when nothing
        else wrote in between (the store's version moved by exactly one); otherwise the next read
        rebuilds as usual.
        """
        with self._lock:
            before = self.store.version()
            self.store.write(batch)
            after = self.store.version()
            snap = self._snapshot
            if snap is None or snap.version != before or after != before + 1:
                return
            from sitegraph.graph.memory import MemoryStore

            if isinstance(self.store, MemoryStore):
                return  # the embedded store's own graph is already current: the next read shares it
            graph = snap.graph.copy()
            apply_batch(graph, batch)
            self._snapshot = Snapshot(graph=graph, version=after)


_caches: dict[int, SnapshotCache] = {}
_caches_lock = threading.Lock()


def snapshot_cache(store: GraphStore) -> SnapshotCache:
    """The snapshot cache of ``store`` (one per store object)."""
    with _caches_lock:
        cache = _caches.get(id(store))
        if cache is None or cache.store is not store:
            cache = SnapshotCache(store)
            _caches[id(store)] = cache
    return cache


def get_snapshot(store: GraphStore) -> Snapshot:
    """The current snapshot of ``store`` (cached per store object, rebuilt when data changes)."""
    return snapshot_cache(store).get()


def write_through(store: GraphStore, batch: GraphBatch) -> None:
    """Write a batch and keep the store's cached snapshot current (see :meth:`SnapshotCache.write_through`)."""
    snapshot_cache(store).write_through(batch)
