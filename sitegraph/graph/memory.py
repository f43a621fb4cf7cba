"""The embedded store: a networkx graph in this process, persisted in SQLite.

Every write is one SQLite transaction, so a crash mid-write leaves the previous state intact; the
in-memory graph is updated only after the commit (or, after a write at least as large as the graph,
dropped and read back from SQLite on the next read). Another process (a later ``sitegraph stats``, or
the API while ``sitegraph load`` runs elsewhere) sees committed writes: before each read the store
checks SQLite's ``data_version`` and reloads when someone else changed the file.
"""

from __future__ import annotations

import gc
import json
import logging
import sqlite3
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import networkx as nx
import orjson

from sitegraph.errors import StoreError, StoreUnavailableError
from sitegraph.graph.nxgraph import (
    EMPTY_PROPS,
    GraphBuilder,
    clear_nx_cache,
    cow_copy,
    remove_edge,
    remove_nodes,
    upsert_edge,
    upsert_node,
)
from sitegraph.graph.schema import NODES, node_spec, rel_spec
from sitegraph.graph.store import (
    Direction,
    GraphBatch,
    GraphStats,
    GraphStore,
    Props,
    Rel,
    RelKey,
    empty_stats,
    gc_paused,
)

log = logging.getLogger(__name__)

NodeId = tuple[str, str]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS nodes (
    label TEXT NOT NULL,
    key   TEXT NOT NULL,
    props TEXT NOT NULL,
    PRIMARY KEY (label, key)
) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS rels (
    type        TEXT NOT NULL,
    start_label TEXT NOT NULL,
    start_key   TEXT NOT NULL,
    end_label   TEXT NOT NULL,
    end_key     TEXT NOT NULL,
    ident       TEXT NOT NULL,
    props       TEXT NOT NULL,
    PRIMARY KEY (type, start_label, start_key, end_label, end_key, ident)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS rels_by_end ON rels (end_label, end_key, type);
CREATE INDEX IF NOT EXISTS rels_by_start ON rels (start_label, start_key, type);
CREATE TABLE IF NOT EXISTS meta (name TEXT PRIMARY KEY, value INTEGER NOT NULL);
"""

# A new row stores its properties without nulls; an existing one is patched (a null removes a property).
_UPSERT_NODE = (
    "INSERT INTO nodes (label, key, props) VALUES (?, ?, ?) "
    "ON CONFLICT (label, key) DO UPDATE SET props = json_patch(nodes.props, ?)"
)
_UPSERT_REL = (
    "INSERT INTO rels (type, start_label, start_key, end_label, end_key, ident, props) VALUES (?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (type, start_label, start_key, end_label, end_key, ident) "
    "DO UPDATE SET props = json_patch(rels.props, ?)"
)
# The secondary indexes of rels, dropped and rebuilt around a write that adds many rows.
_REL_INDEXES = {
    "rels_by_end": "CREATE INDEX IF NOT EXISTS rels_by_end ON rels (end_label, end_key, type)",
    "rels_by_start": "CREATE INDEX IF NOT EXISTS rels_by_start ON rels (start_label, start_key, type)",
}
_REINDEX_MIN_ROWS = 100_000
# A committed write at least this big, and at least as big as the loaded graph, drops the graph
# (it reloads on the next read) instead of mirroring into it. A first load after the ontology sync:
# the bulk read of the whole graph costs a little more CPU than the mirror would (about 3.9 against
# 3 s on medium data), but only a later read pays it, ``sitegraph load`` never reads the graph
# again, and the loading process does not hold the graph (peak RSS 700 instead of 1,100 MiB).
_RELOAD_MIN_ROWS = 100_000

_CHUNK = 20_000
# SQLite page cache (KiB) while a large batch is written: B-tree inserts with random keys need it.
_BULK_CACHE_KIB = 64 * 1024


def _dumps(props: Props) -> str:
    return orjson.dumps(props).decode()


def _json_pair(props: Props) -> tuple[str, str]:
    """(JSON of a new row: no nulls, JSON patch for an existing row)."""
    patch = _dumps(props)
    if None in props.values():
        return _dumps({k: v for k, v in props.items() if v is not None}), patch
    return patch, patch


def _node_rows(label: str, items: list[tuple[str, Props]]) -> list[tuple[str, str, str, str]]:
    """Parameters of :data:`_UPSERT_NODE` for one label: what :func:`_json_pair` gives, inlined (a
    bulk load builds a million of these)."""
    dumps = orjson.dumps
    out: list[tuple[str, str, str, str]] = []
    add = out.append
    for key, props in items:
        if not props:
            add((label, key, "{}", "{}"))
            continue
        patch = dumps(props).decode()
        if None in props.values():
            add((label, key, dumps({k: v for k, v in props.items() if v is not None}).decode(), patch))
        else:
            add((label, key, patch, patch))
    return out


def _rel_rows(items: list[tuple[RelKey, Props]]) -> list[tuple[str, ...]]:
    """Parameters of :data:`_UPSERT_REL`: what :func:`_json_pair` and :meth:`RelKey.ident_json`
    give, inlined."""
    dumps = orjson.dumps
    out: list[tuple[str, ...]] = []
    add = out.append
    for rk, props in items:
        ident = rk.ident_json() if rk[5] else "{}"
        if not props:
            add((rk[0], rk[1], rk[2], rk[3], rk[4], ident, "{}", "{}"))
            continue
        patch = dumps(props).decode()
        new = patch
        if None in props.values():
            new = dumps({k: v for k, v in props.items() if v is not None}).decode()
        add((rk[0], rk[1], rk[2], rk[3], rk[4], ident, new, patch))
    return out


def apply_to_graph(g: nx.MultiDiGraph, batch: GraphBatch, rels: Iterable[tuple[RelKey, Props]] | None = None) -> None:
    """Apply a batch to an in-memory graph with the stores' write semantics (merge; None removes).

    Through the copy-on-write helpers of :mod:`sitegraph.graph.nxgraph`, so a graph made by
    :func:`~sitegraph.graph.nxgraph.cow_copy` changes without changing the graph it was copied from.
    """
    for label, rows in batch.nodes.items():
        key_name = node_spec(label).key
        for key, props in rows.items():
            upsert_node(g, (label, key), {"_label": label, key_name: key}, props)
    for rk, props in batch.rels.items() if rels is None else rels:
        upsert_edge(g, (rk.start_label, rk.start), (rk.end_label, rk.end), (rk.type, rk.ident_json()), props)
    clear_nx_cache(g)


class MemoryStore(GraphStore):
    """networkx in-process, persisted to ``<home>/graph.sqlite``."""

    kind = "memory"

    def __init__(self, home: Path) -> None:
        self.home = Path(home)
        self.path = self.home / "graph.sqlite"
        try:
            self.home.mkdir(parents=True, exist_ok=True)
            self._db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute("PRAGMA synchronous=NORMAL")
            self._db.executescript(_SCHEMA)
        except (OSError, sqlite3.Error) as e:
            raise StoreUnavailableError(f"cannot open the embedded store at {self.path}: {e}") from e
        self._lock = threading.RLock()
        self._version_lock = threading.Lock()
        self._version_db: sqlite3.Connection | None = None
        self._closed = False
        self._graph: nx.MultiDiGraph | None = None
        self._data_version: int | None = None
        self._shared = False  # a snapshot holds the current graph object: copy before mutating it
        self.loads = 0  # full reads of the graph from SQLite so far
        self.frozen_load = 0  # the load last frozen out of the garbage collector (sitegraph.queries.snapshot)

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        with self._lock:
            self._db.close()
        with self._version_lock:
            self._closed = True
            if self._version_db is not None:
                self._version_db.close()
                self._version_db = None

    def ping(self) -> None:
        try:
            self._db.execute("SELECT 1").fetchone()
        except sqlite3.Error as e:
            raise StoreUnavailableError(f"embedded store at {self.path} does not answer: {e}") from e

    def ensure_schema(self) -> None:
        """SQLite tables are created on open; keys are enforced by primary keys."""

    # --- loading the in-memory graph ---------------------------------------------------------
    def _current_data_version(self) -> int:
        row = self._db.execute("PRAGMA data_version").fetchone()
        return int(row[0])

    def graph(self) -> nx.MultiDiGraph:
        """The whole graph as networkx: nodes ``(label, key)`` with their props; edges keyed by type."""
        with self._lock:
            dv = self._current_data_version()
            if self._graph is None or dv != self._data_version:
                self._graph = self._load()
                self._data_version = dv
                self._shared = False
            return self._graph

    def graph_is_current(self) -> bool:
        """Whether the in-memory graph is loaded and current (:meth:`graph` would not read SQLite)."""
        with self._lock:
            return self._graph is not None and self._data_version == self._current_data_version()

    def shared_graph(self) -> nx.MultiDiGraph:
        """The current graph, handed out read-only: later writes copy it first instead of changing it."""
        with self._lock:
            g = self.graph()
            self._shared = True
            return g

    def _writable_graph(self) -> nx.MultiDiGraph | None:
        """The loaded graph, ready to change: while a snapshot holds it, a copy on write of it
        (:func:`~sitegraph.graph.nxgraph.cow_copy`: shares every inner dict, and the write helpers
        copy only what they change), so the snapshot never sees the write."""
        g = self._graph
        if g is not None and self._shared:
            g = self._graph = cow_copy(g)
            self._shared = False
        return g

    def _load(self) -> nx.MultiDiGraph:
        b = GraphBuilder()
        with gc_paused():
            keys = {label: sys.intern(spec.key) for label, spec in NODES.items()}
            loads = orjson.loads
            node_attrs = b.graph._node
            for label, key, props in self._db.execute("SELECT label, key, props FROM nodes"):
                nid = b.node_id(label, key)  # new: nodes come first, each once (the table's key)
                attrs = b.props(label, loads(props), {"_label": nid[0]})
                attrs[keys[label]] = nid[1]
                node_attrs[nid] = attrs
            node_id, edge_key, edge_props, add_edge = b.node_id, b.edge_key, b.edge_props, b.add_edge
            ids = b.ids  # {label: {key: id}}: looked up inline, the builder's methods only for what is new
            edge_keys = b.edge_keys  # {type: {identity json: key}}
            for rtype, sl, sk, el, ek, ident, props in self._db.execute(
                "SELECT type, start_label, start_key, end_label, end_key, ident, props FROM rels"
            ):
                data = EMPTY_PROPS if props == "{}" else edge_props(rtype, loads(props))
                try:
                    u = ids[sl][sk]
                except KeyError:
                    u = node_id(sl, sk)
                try:
                    v = ids[el][ek]
                except KeyError:
                    v = node_id(el, ek)
                try:
                    key = edge_keys[rtype][ident]
                except KeyError:
                    key = edge_key(rtype, ident)
                add_edge(u, v, key, data)
            g = b.finish()
            # Long-lived and free of cycles: out of the collector's passes now (what build_snapshot does
            # after a full read), before re-enabling it would start one pass over every object made here.
            gc.freeze()
        self.loads += 1
        if log.isEnabledFor(logging.DEBUG):  # counting the edges walks them all
            log.debug("loaded embedded graph: %d nodes, %d relationships", g.number_of_nodes(), g.number_of_edges())
        return g

    # --- writes ------------------------------------------------------------------------------
    def write(self, batch: GraphBatch, *, progress: Callable[[int], None] | None = None) -> None:
        with self._lock, gc_paused():
            self.check_endpoints_exist(batch)
            dv_before = self._current_data_version()
            started = time.perf_counter()
            # the in-memory graph follows the write (mirror) unless a reload is as good: its copy on write
            # is made before the commit, while version() (another connection) still reads the old version
            # and readers keep answering from the old snapshot without waiting for this write
            mirror = not (self._graph is None or self._data_version != dv_before or self._reload_is_cheaper(len(batch)))
            g = self._writable_graph() if mirror else None
            rels = list(batch.rels.items())
            bulk = len(batch) >= _REINDEX_MIN_ROWS
            try:
                self._db.execute("BEGIN IMMEDIATE")
                if bulk:
                    self._db.execute(f"PRAGMA cache_size = -{_BULK_CACHE_KIB}")
                # Many new relationships: build the secondary indexes once at the end (a sort)
                # instead of inserting into them row by row. Same transaction, so all or nothing.
                reindex = len(rels) >= _REINDEX_MIN_ROWS and len(rels) >= self._rel_count_estimate()
                if reindex:
                    for name in _REL_INDEXES:
                        self._db.execute(f"DROP INDEX IF EXISTS {name}")
                for label, rows in batch.nodes.items():
                    items = list(rows.items())
                    for i in range(0, len(items), _CHUNK):
                        chunk = items[i : i + _CHUNK]
                        self._db.executemany(_UPSERT_NODE, _node_rows(label, chunk))
                        if progress:
                            progress(len(chunk))
                for i in range(0, len(rels), _CHUNK):
                    chunk_r = rels[i : i + _CHUNK]
                    self._db.executemany(_UPSERT_REL, _rel_rows(chunk_r))
                    if progress:
                        progress(len(chunk_r))
                t_rows = time.perf_counter()
                if reindex:
                    for ddl in _REL_INDEXES.values():
                        self._db.execute(ddl)
                t_index = time.perf_counter()
                self._bump_version()
                self._db.execute("COMMIT")
                log.debug(
                    "embedded write: %d items, rows %.1fs, indexes %.1fs (rebuilt: %s), commit %.1fs",
                    len(batch),
                    t_rows - started,
                    t_index - t_rows,
                    reindex,
                    time.perf_counter() - t_index,
                )
            except BaseException as e:
                self._db.execute("ROLLBACK")
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"embedded store write failed, nothing stored: {e}") from e
                raise
            finally:
                if bulk:
                    self._db.execute("PRAGMA cache_size = -2000")  # SQLite's default: give the memory back
            # Committed: mirror into the in-memory graph, if it is loaded (else it loads on first read).
            if g is None:
                self._graph = None  # stale, never loaded or big beside the graph: reload on the next read
                self._shared = False  # a snapshot keeps the graph object it holds
                return
            t_mirror = time.perf_counter()
            self._mirror(g, batch, rels)
            log.debug("embedded write: in-memory graph updated in %.1fs", time.perf_counter() - t_mirror)
            self._data_version = dv_before  # our own commit does not move data_version

    def _reload_is_cheaper(self, batch_items: int) -> bool:
        """Whether a write of ``batch_items`` items should drop the loaded graph rather than mirror
        into it: a big batch, at least as big as the graph (a first load after the ontology sync)."""
        g = self._graph
        if g is None or batch_items < _RELOAD_MIN_ROWS:
            return False
        return batch_items >= g.number_of_nodes() + g.number_of_edges()

    def _rel_count_estimate(self) -> int:
        """Rows in rels (a count over the smallest index: about a second for millions of rows)."""
        row = self._db.execute("SELECT count(*) FROM rels").fetchone()
        return int(row[0])

    @staticmethod
    def _mirror(g: nx.MultiDiGraph, batch: GraphBatch, rels: list[tuple[RelKey, Props]]) -> None:
        """Apply a committed batch to the loaded graph: what the SQLite upserts did, in memory."""
        apply_to_graph(g, batch, rels)

    def _bump_version(self) -> None:
        self._db.execute(
            "INSERT INTO meta (name, value) VALUES ('version', 1) ON CONFLICT (name) DO UPDATE SET value = value + 1"
        )

    def delete_nodes(self, label: str, keys: Iterable[str]) -> int:
        node_spec(label)
        keys = list(keys)
        with self._lock:
            g = self.graph()
            present = [k for k in keys if (label, k) in g]
            if not present:
                return 0
            try:
                self._db.execute("BEGIN IMMEDIATE")
                for k in present:
                    self._db.execute("DELETE FROM rels WHERE start_label = ? AND start_key = ?", (label, k))
                    self._db.execute("DELETE FROM rels WHERE end_label = ? AND end_key = ?", (label, k))
                    self._db.execute("DELETE FROM nodes WHERE label = ? AND key = ?", (label, k))
                self._bump_version()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            g = self._writable_graph() or g
            remove_nodes(g, [(label, k) for k in present])
            return len(present)

    def delete_relationships(self, keys: Iterable[RelKey]) -> int:
        keys = list(keys)
        with self._lock:
            g = self.graph()
            present = [
                rk
                for rk in keys
                if g.has_edge((rk.start_label, rk.start), (rk.end_label, rk.end), key=(rel_spec(rk.type).type, rk.ident_json()))
            ]
            if not present:
                return 0
            try:
                self._db.execute("BEGIN IMMEDIATE")
                self._db.executemany(
                    "DELETE FROM rels WHERE type = ? AND start_label = ? AND start_key = ? "
                    "AND end_label = ? AND end_key = ? AND ident = ?",
                    [(rk.type, rk.start_label, rk.start, rk.end_label, rk.end, rk.ident_json()) for rk in present],
                )
                self._bump_version()
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            g = self._writable_graph() or g
            for rk in present:
                remove_edge(g, (rk.start_label, rk.start), (rk.end_label, rk.end), (rk.type, rk.ident_json()))
            clear_nx_cache(g)
            return len(present)

    def clear(self, *, confirm: bool = False) -> None:
        if not confirm:
            raise StoreError("refusing to delete everything without confirm=True")
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM rels")
            self._db.execute("DELETE FROM nodes")
            self._bump_version()
            self._db.execute("COMMIT")
            self._graph = None
            self._shared = False

    # --- reads -------------------------------------------------------------------------------
    def stats(self) -> GraphStats:
        out = empty_stats()
        with self._lock:
            for label, n in self._db.execute("SELECT label, count(*) FROM nodes GROUP BY label"):
                if label in out.nodes:
                    out.nodes[label] = int(n)
            for rtype, n in self._db.execute("SELECT type, count(*) FROM rels GROUP BY type"):
                out.relationships[rtype] = int(n)
        return out

    def version(self) -> int:
        """The data version, read on a connection of its own: it does not wait for a write of this
        process under way (WAL: it reads the last commit), so readers keep answering from the snapshot
        they have until the write commits."""
        with self._version_lock:
            if self._closed:
                raise StoreUnavailableError(f"the embedded store at {self.path} is closed")
            if self._version_db is None:
                self._version_db = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            row = self._version_db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
        return int(row[0]) if row else 0

    def get_node(self, label: str, key: str) -> Props | None:
        node_spec(label)
        g = self.graph()
        data = g.nodes.get((label, key))
        if data is None:
            return None
        return {k: v for k, v in data.items() if k != "_label"}

    def existing_keys(self, label: str, keys: Iterable[str]) -> set[str]:
        node_spec(label)
        with self._lock:
            if self._graph is not None and self._data_version == self._current_data_version():
                g = self._graph
                return {k for k in keys if (label, k) in g}
            wanted = list(keys)
            found: set[str] = set()
            for i in range(0, len(wanted), 500):
                chunk = wanted[i : i + 500]
                marks = ",".join("?" * len(chunk))
                rows = self._db.execute(f"SELECT key FROM nodes WHERE label = ? AND key IN ({marks})", (label, *chunk))  # noqa: S608
                found.update(r[0] for r in rows)
            return found

    def iter_nodes(self, label: str) -> Iterator[Props]:
        node_spec(label)
        g = self.graph()
        nodes = sorted(n for n in g.nodes if n[0] == label)
        for nid in nodes:
            yield {k: v for k, v in g.nodes[nid].items() if k != "_label"}

    def iter_relationships(self, rel_type: str) -> Iterator[Rel]:
        rel_spec(rel_type)
        g = self.graph()
        rows = [(u, v, ek, d) for u, v, ek, d in g.edges(keys=True, data=True) if ek[0] == rel_type]
        rows.sort(key=lambda r: (r[0][1], r[1][1], r[2][1]))
        for u, v, _ek, d in rows:
            yield Rel(rel_type, u[0], u[1], v[0], v[1], dict(d))

    def neighbors(self, label: str, key: str, rel_type: str, direction: Direction = "out") -> list[tuple[str, Props, Props]]:
        node_spec(label)
        rel_spec(rel_type)
        g = self.graph()
        nid = (label, key)
        if nid not in g:
            return []
        out: list[tuple[str, Props, Props]] = []
        edges = g.out_edges(nid, keys=True, data=True) if direction == "out" else g.in_edges(nid, keys=True, data=True)
        for u, v, ek, d in edges:
            if ek[0] != rel_type:
                continue
            other = v if direction == "out" else u
            props = {k: val for k, val in g.nodes[other].items() if k != "_label"}
            out.append((other[0], props, dict(d)))
        out.sort(key=lambda t: (t[0], str(t[1].get(node_spec(t[0]).key)), json.dumps(t[2], sort_keys=True, default=str)))
        return out

    # --- bulk key reads for analytics: straight from SQLite (no networkx graph, no JSON) -----------
    def _select_node_keys(self, label: str) -> list[str]:
        rows = self._db.execute("SELECT key FROM nodes WHERE label = ?", (label,)).fetchall()
        return sorted([r[0] for r in rows])  # already in key order (the primary key): sorting is one pass

    def _select_endpoints(self, rel_type: str, start_label: str, end_label: str) -> tuple[list[str], list[str]]:
        rows = self._db.execute(
            "SELECT start_key, end_key FROM rels WHERE type = ? AND start_label = ? AND end_label = ?",
            (rel_type, start_label, end_label),
        ).fetchall()
        return [r[0] for r in rows], [r[1] for r in rows]

    def node_keys(self, label: str) -> list[str]:
        node_spec(label)
        with self._lock:
            return self._select_node_keys(label)

    def relationship_endpoints(self, rel_type: str, start_label: str, end_label: str) -> tuple[list[str], list[str]]:
        from sitegraph.graph.schema import check_endpoints

        check_endpoints(rel_type, start_label, end_label)
        with self._lock:
            return self._select_endpoints(rel_type, start_label, end_label)

    def graph_keys(
        self, labels: Iterable[str], relationships: Iterable[tuple[str, str, str]]
    ) -> tuple[int, dict[str, list[str]], dict[tuple[str, str, str], tuple[list[str], list[str]]]]:
        """One SQLite read transaction (a consistent view in WAL mode); never loads the networkx graph."""
        from sitegraph.graph.schema import check_endpoints

        wanted = [node_spec(label).label for label in labels]
        pairs = [(check_endpoints(t, sl, el).type, sl, el) for t, sl, el in relationships]
        with self._lock:
            self._db.execute("BEGIN")
            try:
                row = self._db.execute("SELECT value FROM meta WHERE name = 'version'").fetchone()
                keys = {label: self._select_node_keys(label) for label in wanted}
                rels = {pair: self._select_endpoints(*pair) for pair in pairs}
            finally:
                self._db.execute("COMMIT")
        return (int(row[0]) if row else 0), keys, rels
