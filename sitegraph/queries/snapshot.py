"""An in-memory snapshot of a store's graph, cached against the store's data version.

Traversals, recommendations and profiles read the snapshot, so both stores give identical answers,
and the snapshot is rebuilt as soon as the store's :meth:`~GraphStore.version` changes (a write
through the API is never answered from a stale cache).

The snapshot is a networkx ``MultiDiGraph`` of the same shape as the embedded store's graph: nodes
are ``(label, key)`` tuples whose attributes are the node's properties (plus ``_label``); edges are
keyed by ``(type, identity-json)`` and carry the relationship's properties.

Every read checks the store's version (a round trip to Neo4j). Concurrent readers share one check
(:class:`VersionProbe`): a reader waits for a check that *started after it arrived*, so no answer is
older than a check made for that reader alone would give, but 32 concurrent requests cost one or two
round trips instead of 32.
"""

from __future__ import annotations

import gc
import json
import logging
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import networkx as nx

from sitegraph.graph.nxgraph import GraphBuilder, cow_copy
from sitegraph.graph.schema import NODES, RELATIONSHIPS, node_spec
from sitegraph.graph.store import GraphBatch, GraphStore

if TYPE_CHECKING:
    from sitegraph.graph.neo4j_store import Neo4jStore

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
        data = self.graph._node.get((label, key))  # the node's own dict (a plain read, not the NodeView's)
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


LINEAGE_KEY = "snapshot.lineage"
"""The key of a snapshot's :class:`Lineage` in :attr:`Snapshot.cache` (when it has one)."""
CARRIED_KEYS: set[str] = {
    "signals.engagement",
    "signals.barrier_index",
    "signals.activity_table.90.0",
    "signals.activity_table.365.0",
    "effectiveness.index",
    "search.sites.v1",
    "related.sis_projection",
    "related.proximity",
    "related.structure",
    "related.block_operands",
    "related.neighbours",
    "reach.strength",
    "reach.countries",
    "recommend.ontology",
    "recommend.country_rates",
    "recommend.pair_counts",
}
"""Indexes of a snapshot that the next one may extend or reuse after a write of interactions only (each
builder decides whether what it finds still holds; other layers add their keys with :func:`carry`)."""


def carry(key: str) -> str:
    """Add ``key`` to :data:`CARRIED_KEYS` (for caches kept outside the query modules); returns it."""
    CARRIED_KEYS.add(key)
    return key


@dataclass(frozen=True)
class Lineage:
    """How a snapshot follows the one before it, when a write through :func:`write_through` made it:
    the previous snapshot's graph with ``batch`` applied, and nothing else.

    ``interactions_only``: the batch adds new ``Interaction`` nodes and relationships from them to nodes
    that already existed, nothing more (what ``POST /interactions`` writes). Indexes that do not read
    interactions are then the same as the previous snapshot's, and the engagement index differs only
    by the new interactions: ``previous`` holds those indexes of the previous snapshot (the ones of
    :data:`CARRIED_KEYS` it had built), for the builders to reuse or extend instead of starting over.
    """

    batch: GraphBatch
    interactions_only: bool
    previous: dict[str, Any]

    def new_interactions(self) -> list[str]:
        return sorted(self.batch.nodes.get("Interaction", {}))


def interactions_only(graph: nx.MultiDiGraph, batch: GraphBatch) -> bool:
    """Whether ``batch`` only adds new interactions to ``graph``: new ``Interaction`` nodes and
    relationships from them to existing nodes (no other node, no relationship from anything else)."""
    if set(batch.nodes) != {"Interaction"}:
        return False
    new = batch.nodes["Interaction"]
    if any(("Interaction", key) in graph for key in new):
        return False
    return all(rel.start_label == "Interaction" and rel.start in new and (rel.end_label, rel.end) in graph for rel in batch.rels)


def carried(snapshot: Snapshot, key: str) -> Any | None:
    """The previous snapshot's index ``key`` when it is still valid for ``snapshot`` (the write between
    them only added interactions, and the index reads none), else None."""
    lineage = snapshot.cache.get(LINEAGE_KEY)
    if not isinstance(lineage, Lineage) or not lineage.interactions_only:
        return None
    return lineage.previous.get(key)


SNAPSHOT_FETCH_SIZE = 20_000
"""Records per Bolt pull while streaming a Neo4j graph into a snapshot."""


def _ident_json(identity: tuple[str, ...], props: dict[str, Any]) -> str:
    """The identity JSON of a relationship (as :meth:`RelKey.ident_json` and the stores make it)."""
    if not identity:
        return "{}"
    return json.dumps({name: props.get(name, "") for name in identity}, sort_keys=True)


def _read_graph(store: GraphStore) -> nx.MultiDiGraph:
    """Any store's graph through its generic iterators (sorted, so slow on big graphs)."""
    b = GraphBuilder()
    for label in NODES:
        if label == "SitegraphMeta":
            continue
        key_name = node_spec(label).key
        for props in store.iter_nodes(label):
            b.add_node(label, props[key_name], b.props(label, props, {"_label": label}))
    for rtype, spec in RELATIONSHIPS.items():
        for rel in store.iter_relationships(rtype):
            ident = _ident_json(spec.identity, rel.props)
            b.add_edge(
                b.node_id(rel.start_label, rel.start),
                b.node_id(rel.end_label, rel.end),
                b.edge_key(rtype, ident),
                b.edge_props(rtype, rel.props),
            )
    return b.finish()


def _neo4j_node_query(label: str) -> tuple[str, list[tuple[str, str, tuple[str, ...]]]]:
    """One query for a label: each node's key and properties, and for every relationship type that
    starts at the label (per end label), the list of ``[end key, relationship properties]``.

    Labels, types and keys come from the schema allow-list. One record per node instead of one per
    relationship: a third of the records, and each node is visited once.
    """
    key_name = node_spec(label).key
    columns: list[str] = []
    rels: list[tuple[str, str, tuple[str, ...]]] = []  # (type, end label, identity) per column
    for rtype, spec in RELATIONSHIPS.items():
        for sl, el in spec.endpoints:
            if sl != label:
                continue
            columns.append(f"[(n)-[r:{spec.type}]->(b:{el}) | [b.{node_spec(el).key}, properties(r)]]")
            rels.append((rtype, el, spec.identity))
    query = f"MATCH (n:{label}) RETURN n.{key_name}, properties(n)" + "".join(f", {c}" for c in columns)
    return query, rels


def _read_neo4j_graph(store: Neo4jStore) -> nx.MultiDiGraph:
    """A Neo4j store's graph, streamed over Bolt into networkx as the records arrive.

    One query per label (:func:`_neo4j_node_query`) gives the nodes with their outgoing relationships,
    so the records are one per node, nothing is sorted and nothing is held in between.
    """
    labels = [label for label in NODES if label != "SitegraphMeta"]

    def read_all(tx: Any) -> nx.MultiDiGraph:
        # One managed read transaction: every label is read at the same point in time, and a transient
        # failure (a leader switch in a cluster) retries the whole read from an empty graph.
        b = GraphBuilder()
        node_id, edge_key, edge_props, add_edge = b.node_id, b.edge_key, b.edge_props, b.add_edge
        for label in labels:
            key_name = node_spec(label).key
            query, rels = _neo4j_node_query(label)
            for record in tx.run(query):
                key = record[0]
                start = node_id(label, key)  # end nodes not read yet are added bare, filled in later
                attrs = b.props(label, record[1])
                if key_name in attrs:
                    attrs[key_name] = start[1]  # the id's own string, not Bolt's second copy
                attrs["_label"] = start[0]
                b.add_node(label, key, attrs)
                for (rtype, end_label, identity), items in zip(rels, record[2:], strict=True):
                    for end, rprops in items:
                        add_edge(
                            start,
                            node_id(end_label, end),
                            edge_key(rtype, _ident_json(identity, rprops)),
                            edge_props(rtype, rprops),
                        )
        return b.finish()

    graph: nx.MultiDiGraph = store.run_read(read_all, fetch_size=SNAPSHOT_FETCH_SIZE)
    return graph


def build_snapshot(store: GraphStore, *, version: int | None = None) -> Snapshot:
    """Read every node and relationship of the store into a networkx graph.

    ``version`` is the store's version read just before (read here when not given). A write landing
    while the graph is read leaves the snapshot tagged with the older version, so the next read
    rebuilds it. A graph read in full (not the embedded store's graph shared again) is then frozen
    out of the cyclic garbage collector (:func:`collect_garbage`).
    """
    started = time.perf_counter()
    if version is None:
        version = store.version()
    from sitegraph.graph.memory import MemoryStore
    from sitegraph.graph.neo4j_store import Neo4jStore

    if isinstance(store, MemoryStore):
        collected = 0.0 if store.graph_is_current() else collect_garbage()
        g = store.shared_graph()  # no copy: the store copies on write on its next write instead
        fresh = store.loads != store.frozen_load  # a graph (re)loaded since the last freeze
        store.frozen_load = store.loads
    else:
        collected = collect_garbage()
        g = _read_neo4j_graph(store) if isinstance(store, Neo4jStore) else _read_graph(store)
        fresh = True
    if fresh:
        gc.freeze()
    read = time.perf_counter() - started - collected
    if fresh and log.isEnabledFor(logging.INFO):  # counting edges walks them all: only after a full read
        log.info(
            "snapshot of the %s store at version %d: %d nodes, %d relationships in %.2fs (+%.2fs garbage collection)",
            store.kind,
            version,
            g.number_of_nodes(),
            g.number_of_edges(),
            read,
            collected,
        )
    return Snapshot(graph=g, version=version)


def collect_garbage() -> float:
    """Before a graph is read in full: hand what earlier reads froze back to the collector, and collect.

    A snapshot is millions of long-lived dicts and tuples; :func:`build_snapshot` freezes a graph it read
    in full (``gc.freeze()``), so full collections no longer walk it (seconds of pause at a million
    interactions). A frozen graph is still freed by reference counting when dropped (a snapshot graph
    holds no reference cycle: :class:`~sitegraph.graph.nxgraph.SnapshotGraph`); cyclic garbage frozen
    with it (anything that was alive at the freeze and dropped later) is reclaimed here, at the next full
    read, when the replaced snapshot is no longer in the cache. Returns the seconds it took.
    """
    started = time.perf_counter()
    gc.unfreeze()
    gc.collect()
    return time.perf_counter() - started


def apply_batch(graph: nx.MultiDiGraph, batch: GraphBatch) -> None:
    """Apply a batch to a snapshot graph with the stores' write semantics (merge; None removes).

    Copy on write on a graph made by :func:`~sitegraph.graph.nxgraph.cow_copy`.
    """
    from sitegraph.graph.memory import apply_to_graph

    apply_to_graph(graph, batch)


class VersionProbe:
    """Reads a store's version for many threads at once, one read at a time.

    :meth:`current` returns the value of a read that started after the call began: a caller that
    arrives while a read is under way waits for it to end and for the next one (which one of the
    waiters starts, for all of them). Answers are never older than a read of its own would be, and
    concurrent callers share round trips. A failed read raises in the thread that made it; the
    waiters try again themselves.
    """

    def __init__(self, read: Callable[[], int]) -> None:
        self._read = read
        self._cond = threading.Condition()
        self._started = 0  # reads started so far (the sequence number of the latest)
        self._done = 0  # sequence number of the latest read that finished
        self._value = 0
        self._reading = False
        self.reads = 0

    def current(self) -> int:
        with self._cond:
            needed = self._started + 1  # the first read to start from now on
            while True:
                if self._done >= needed:
                    return self._value
                if not self._reading:
                    self._reading = True
                    self._started += 1
                    seq = self._started
                    break
                self._cond.wait()
        try:
            value = self._read()
        except BaseException:
            with self._cond:
                self._reading = False
                self._cond.notify_all()
            raise
        with self._cond:
            self._reading = False
            self.reads += 1
            if seq > self._done:
                self._done, self._value = seq, value
            self._cond.notify_all()
        return value


class SnapshotCache:
    """Holds the latest snapshot of one store; rebuilds it when the store's version moves."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self._snapshot: Snapshot | None = None
        self._lock = threading.Lock()
        self.probe = VersionProbe(lambda: self.store.version())  # looked up per call (tests patch it)
        self._lineage: tuple[int, Lineage] | None = None  # for the embedded store's next snapshot (see write_through)

    def get(self) -> Snapshot:
        version = self.probe.current()
        snap = self._snapshot
        if snap is not None and snap.version == version:
            return snap
        with self._lock:
            snap = self._snapshot
            if snap is not None and snap.version == version:
                return snap  # built by another reader meanwhile
            version = self.probe.current()  # a write may have landed while this reader waited
            if snap is None or snap.version != version:
                self._snapshot = snap = None  # the old one is garbage while the new one is read (unless in use)
                snap = build_snapshot(self.store, version=version)
                lineage, self._lineage = self._lineage, None
                if lineage is not None and lineage[0] == version:
                    snap.cache[LINEAGE_KEY] = lineage[1]
                self._snapshot = snap
            return snap

    def latest(self) -> Snapshot | None:
        """The snapshot in hand, without looking at the store's version (it may be behind)."""
        return self._snapshot

    def write_through(self, batch: GraphBatch) -> None:
        """Write the batch to the store and move the cached snapshot forward without a full rebuild.

        The new snapshot is a copy of the old graph with the batch applied, used only when nothing
        else wrote in between (the store's version moved by exactly one); otherwise the next read
        rebuilds as usual.
        """
        from sitegraph.graph.memory import MemoryStore

        with self._lock:
            before = self.store.version()
            snap = self._snapshot
            only = snap is not None and snap.version == before and interactions_only(snap.graph, batch)
            # the copy of the graph the new snapshot gets (sharing what the batch does not change), made
            # before the write: readers see the old version until the write commits, and then wait only
            # for the batch to be applied to it (the embedded store's own graph is already current)
            graph = None
            if snap is not None and snap.version == before and not isinstance(self.store, MemoryStore):
                graph = cow_copy(snap.graph)
            self.store.write(batch)
            after = self.store.version()
            self._lineage = None
            if snap is None or snap.version != before or after != before + 1:
                return
            lineage = Lineage(batch, only, {k: snap.cache[k] for k in CARRIED_KEYS if k in snap.cache} if only else {})
            if graph is None:
                # the embedded store's own graph is already current: the next read shares it (and gets the lineage)
                self._lineage = (after, lineage)
                return
            apply_batch(graph, batch)
            self._snapshot = Snapshot(graph=graph, version=after, cache={LINEAGE_KEY: lineage})


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
