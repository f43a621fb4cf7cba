"""Projections of the knowledge graph into compact, undirected, weighted graphs for centrality.

A :class:`Projection` is a node list plus a symmetric ``scipy.sparse.csr_matrix`` of float64 edge
weights: the form the vectorised kernels in :mod:`sitegraph.graph.centrality` work on, about 12
bytes per directed edge instead of the several hundred a networkx edge costs. Nodes are
``(label, key)`` ids sorted by label then key, so the same data gives the same matrix (and the same
sampled pivots) from either store. :meth:`Projection.to_networkx` gives the same graph as networkx
for the reference implementation.

Two builders read either a :class:`~sitegraph.queries.snapshot.Snapshot` or the
:class:`ProjectionEdges` that :func:`read_edges` reads straight from a store (only the keys of
Sites, Investigators and Studies and the endpoint keys of the three relationship types below: no
properties, no snapshot of the whole graph; what ``sitegraph analyze`` uses):

* :func:`site_investigator_study` - Sites, Investigators and Studies joined by ``WORKS_AT``,
  ``PARTICIPATES_IN`` and ``INVESTIGATOR_ON``. An edge's weight is the number of relationships
  between the pair: 1 for ``WORKS_AT`` and ``PARTICIPATES_IN`` (at most one per pair), and for
  ``INVESTIGATOR_ON`` the number of (site, role) records of the investigator on the study, so an
  investigator who leads a study at three sites is tied to it three times as strongly.
* :func:`investigator_collaboration` - Investigators linked when they share a study, weighted by the
  number of studies they share; built as ``B @ B.T`` of the binary investigator x study incidence
  matrix, so its cost is that of one sparse product, not of a loop over pairs.

:func:`from_edges` builds a projection from index arrays (benchmarks, tests).
"""

from __future__ import annotations

import logging
from array import array
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import networkx as nx
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from sitegraph.graph.store import GraphStore
from sitegraph.queries.snapshot import Snapshot

log = logging.getLogger(__name__)

NodeId = tuple[str, str]

SIS = "site_investigator_study"
COLLABORATION = "investigator_collaboration"

SIS_LABELS = ("Site", "Investigator", "Study")
SIS_RELATIONSHIPS = frozenset({"WORKS_AT", "PARTICIPATES_IN", "INVESTIGATOR_ON"})
# The same relationships with their (only) endpoint labels in the schema, for reading from a store.
SIS_ENDPOINTS: tuple[tuple[str, str, str], ...] = (
    ("WORKS_AT", "Investigator", "Site"),
    ("PARTICIPATES_IN", "Site", "Study"),
    ("INVESTIGATOR_ON", "Investigator", "Study"),
)


@dataclass(frozen=True, eq=False)
class Projection:
    """An undirected weighted graph over ``nodes``; ``adjacency[i, j]`` is the weight of edge i-j.

    The adjacency is symmetric with an empty diagonal (no self-loops); rows of isolated nodes are
    empty. ``index`` maps a node id to its row. ``factor``, when given, is a 0/1 incidence matrix
    ``B`` with ``adjacency == B @ B.T`` minus its diagonal (the collaboration projection): products
    with the adjacency then cost ``nnz(B)`` instead of ``nnz(adjacency)``, which for a network of
    study cliques is tens of times less.
    """

    name: str
    nodes: list[NodeId]
    index: dict[NodeId, int]
    adjacency: sp.csr_matrix
    factor: sp.csr_matrix | None = None

    def __post_init__(self) -> None:
        n = len(self.nodes)
        if self.adjacency.shape != (n, n):
            raise ValueError(f"projection {self.name!r}: adjacency is {self.adjacency.shape}, expected ({n}, {n})")
        if len(self.index) != n:
            raise ValueError(f"projection {self.name!r}: node ids are not unique")

    @property
    def n_nodes(self) -> int:
        return len(self.nodes)

    @property
    def n_edges(self) -> int:
        """Undirected edges (each stored twice in the symmetric matrix)."""
        return int(self.adjacency.nnz // 2)

    def __len__(self) -> int:
        return len(self.nodes)

    def to_networkx(self) -> nx.Graph:
        """The same graph as a networkx ``Graph``: same nodes in the same order, ``weight`` on edges."""
        g = nx.Graph(name=self.name)
        g.add_nodes_from(self.nodes)
        upper = sp.triu(self.adjacency, k=1, format="coo")
        nodes = self.nodes
        g.add_weighted_edges_from(
            (nodes[i], nodes[j], w) for i, j, w in zip(upper.row.tolist(), upper.col.tolist(), upper.data.tolist(), strict=True)
        )
        return g


def _index_dtype(n: int) -> type[np.signedinteger]:
    return np.int32 if n < 2**31 - 1 else np.int64


def from_edges(
    nodes: Sequence[NodeId],
    src_idx: npt.ArrayLike,
    dst_idx: npt.ArrayLike,
    weights: npt.ArrayLike | None = None,
    name: str = "custom",
) -> Projection:
    """A projection from parallel arrays of edge endpoints (row numbers into ``nodes``).

    Edges are undirected; repeated pairs (in either direction) add their weights; self-loops are
    dropped; ``weights=None`` means 1 per edge.
    """
    n = len(nodes)
    src = np.asarray(src_idx, dtype=np.int64).ravel()
    dst = np.asarray(dst_idx, dtype=np.int64).ravel()
    if src.shape != dst.shape:
        raise ValueError(f"src_idx and dst_idx differ in length: {src.size} != {dst.size}")
    w = np.ones(src.size, dtype=np.float64) if weights is None else np.asarray(weights, dtype=np.float64).ravel()
    if w.shape != src.shape:
        raise ValueError(f"weights has {w.size} entries for {src.size} edges")
    if src.size and (min(src.min(), dst.min()) < 0 or max(src.max(), dst.max()) >= n):
        raise ValueError(f"edge endpoints must be row numbers in [0, {n})")
    if np.any(w < 0) or not np.all(np.isfinite(w)):
        raise ValueError("edge weights must be finite and non-negative")
    keep = src != dst
    src, dst, w = src[keep], dst[keep], w[keep]
    idx_t = _index_dtype(n)
    rows = np.concatenate([src, dst]).astype(idx_t, copy=False)
    cols = np.concatenate([dst, src]).astype(idx_t, copy=False)
    adjacency = sp.csr_matrix((np.concatenate([w, w]), (rows, cols)), shape=(n, n), dtype=np.float64)
    adjacency.sum_duplicates()
    adjacency.eliminate_zeros()
    node_list = list(nodes)
    return Projection(name=name, nodes=node_list, index={v: i for i, v in enumerate(node_list)}, adjacency=adjacency)


def _sorted_nodes(snapshot: Snapshot, labels: Iterable[str]) -> list[NodeId]:
    wanted = frozenset(labels)
    return sorted(nid for nid in snapshot.graph.nodes if nid[0] in wanted)


@dataclass(frozen=True)
class ProjectionEdges:
    """Every projection-relevant relationship, as row numbers into ``nodes``."""

    nodes: list[NodeId]  # Site, Investigator and Study ids, sorted
    src: npt.NDArray[np.int64]  # one entry per WORKS_AT, PARTICIPATES_IN, INVESTIGATOR_ON
    dst: npt.NDArray[np.int64]
    on_investigator: npt.NDArray[np.int64]  # INVESTIGATOR_ON only
    on_study: npt.NDArray[np.int64]


_EDGES_CACHE_KEY = "sitegraph.graph.projections.edges"


def _edges(snapshot: Snapshot) -> ProjectionEdges:
    """One pass over the out-edges of Investigators and Sites (cached on the snapshot).

    Relationships into those nodes (interactions, which outnumber everything else) are never
    touched. Reads networkx's adjacency dicts directly: the public views cost more than the loop.
    """
    cached = snapshot.cache.get(_EDGES_CACHE_KEY)
    if isinstance(cached, ProjectionEdges):
        return cached
    nodes = _sorted_nodes(snapshot, SIS_LABELS)
    index = {v: i for i, v in enumerate(nodes)}
    succ = snapshot.graph._succ  # {u: {v: {(type, identity): props}}}
    src, dst, on_inv, on_study = array("q"), array("q"), array("q"), array("q")
    for u in nodes:
        if u[0] == "Study":
            continue
        i = index[u]
        for v, keyed in succ[u].items():
            j = index.get(v)
            if j is None:
                continue
            for rel_type, _ident in keyed:
                if rel_type in SIS_RELATIONSHIPS:
                    src.append(i)
                    dst.append(j)
                    if rel_type == "INVESTIGATOR_ON":
                        on_inv.append(i)
                        on_study.append(j)
    arrays = [np.frombuffer(a, dtype=np.int64) if len(a) else np.zeros(0, dtype=np.int64) for a in (src, dst, on_inv, on_study)]
    edges = ProjectionEdges(nodes, *arrays)
    snapshot.cache[_EDGES_CACHE_KEY] = edges
    return edges


def _key_rows(rows: dict[str, int], keys: list[str]) -> npt.NDArray[np.int64]:
    get = rows.get
    return np.fromiter((get(k, -1) for k in keys), dtype=np.int64, count=len(keys))


def read_edges(store: GraphStore) -> tuple[int, ProjectionEdges]:
    """The store's data version and its projection-relevant relationships, read straight from the store.

    Reads only keys (:meth:`~sitegraph.graph.store.GraphStore.graph_keys`): every Site,
    Investigator and Study key, and the (start key, end key) of every ``WORKS_AT``,
    ``PARTICIPATES_IN`` and ``INVESTIGATOR_ON`` relationship; interactions, properties and the rest
    of the graph are never read. Gives the same :class:`ProjectionEdges` (up to edge order, which
    the projections do not depend on) as a snapshot of the same data.
    """
    version, keys, rels = store.graph_keys(SIS_LABELS, SIS_ENDPOINTS)
    nodes: list[NodeId] = []
    rows: dict[str, dict[str, int]] = {}
    for label in sorted(SIS_LABELS):
        label_keys = sorted(keys.pop(label))
        offset = len(nodes)
        rows[label] = {k: offset + i for i, k in enumerate(label_keys)}
        nodes.extend([(label, k) for k in label_keys])
    src: list[npt.NDArray[np.int64]] = []
    dst: list[npt.NDArray[np.int64]] = []
    on_inv = on_study = np.zeros(0, dtype=np.int64)
    for rel_type, start_label, end_label in SIS_ENDPOINTS:
        starts, ends = rels.pop((rel_type, start_label, end_label))
        s, d = _key_rows(rows[start_label], starts), _key_rows(rows[end_label], ends)
        del starts, ends
        keep = (s >= 0) & (d >= 0)
        if not keep.all():  # the stores keep endpoints; a snapshot would skip these too
            log.warning("%s: %d relationship(s) with a missing endpoint ignored", rel_type, int((~keep).sum()))
            s, d = s[keep], d[keep]
        src.append(s)
        dst.append(d)
        if rel_type == "INVESTIGATOR_ON":
            on_inv, on_study = s, d
    edges = ProjectionEdges(nodes, np.concatenate(src), np.concatenate(dst), on_inv, on_study)
    log.debug("read %d nodes and %d relationships for the projections at version %d", len(nodes), edges.src.size, version)
    return version, edges


def _as_edges(source: Snapshot | ProjectionEdges) -> ProjectionEdges:
    return source if isinstance(source, ProjectionEdges) else _edges(source)


def site_investigator_study(source: Snapshot | ProjectionEdges) -> Projection:
    """Sites, Investigators and Studies, joined by WORKS_AT, PARTICIPATES_IN and INVESTIGATOR_ON.

    Edge weight = number of relationships between the pair (see the module docstring).
    """
    e = _as_edges(source)
    proj = from_edges(e.nodes, e.src, e.dst, None, name=SIS)
    log.debug("projection %s: %d nodes, %d edges", SIS, proj.n_nodes, proj.n_edges)
    return proj


def investigator_collaboration(source: Snapshot | ProjectionEdges) -> Projection:
    """Investigators, linked when they are on a common study; weight = number of shared studies.

    Every Investigator is a node, those on no study (or alone on theirs) as isolated nodes.
    """
    e = _as_edges(source)
    labels = np.array([label for label, _ in e.nodes], dtype=object)
    inv_rows = np.flatnonzero(labels == "Investigator")
    study_rows = np.flatnonzero(labels == "Study")
    position = np.full(len(e.nodes), -1, dtype=np.int64)
    position[inv_rows] = np.arange(inv_rows.size)
    position[study_rows] = np.arange(study_rows.size)
    investigators = [e.nodes[i] for i in inv_rows.tolist()]
    return collaboration_from_incidence(investigators, position[e.on_investigator], position[e.on_study], int(study_rows.size))


def collaboration_from_incidence(
    investigators: Sequence[NodeId], inv_rows: npt.ArrayLike, study_cols: npt.ArrayLike, n_studies: int
) -> Projection:
    """The collaboration projection from (investigator row, study column) pairs.

    Repeated pairs (several roles or sites on one study) count once: the weight of i-j is the
    number of distinct studies both are on, the off-diagonal of ``B @ B.T`` for the binary
    incidence matrix ``B``.
    """
    n = len(investigators)
    rows = np.asarray(inv_rows, dtype=np.int64)
    cols = np.asarray(study_cols, dtype=np.int64)
    idx_t = _index_dtype(max(n, n_studies))
    incidence = sp.csr_matrix(
        (np.ones(rows.size, dtype=np.float64), (rows.astype(idx_t), cols.astype(idx_t))), shape=(n, n_studies), dtype=np.float64
    )
    incidence.sum_duplicates()
    incidence.data[:] = 1.0
    shared = sp.csr_matrix(incidence @ incidence.T)
    shared = sp.csr_matrix(shared - sp.diags(shared.diagonal(), format="csr"))
    shared.eliminate_zeros()
    shared.sort_indices()
    node_list = list(investigators)
    proj = Projection(
        name=COLLABORATION, nodes=node_list, index={v: i for i, v in enumerate(node_list)}, adjacency=shared, factor=incidence
    )
    log.debug("projection %s: %d nodes, %d edges", COLLABORATION, proj.n_nodes, proj.n_edges)
    return proj
