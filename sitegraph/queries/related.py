"""Related sites: the sites most like a given one, each with its reasons and a Cypher query that shows them.

The score of another site is a weighted sum of five features, each in [0, 1]
(weights in :data:`WEIGHTS`, documented in ``docs/recommendations.md``):

``shared_investigator`` (0.15)
    ``1 - exp(-n)`` for ``n`` investigators who work at both sites (``WORKS_AT``).
``shared_study`` (0.15)
    Salton (cosine) overlap of the two sites' studies (``PARTICIPATES_IN``): ``n / sqrt(n_a * n_b)``.
``shared_condition`` (0.10)
    Salton overlap of the conditions of their studies (``STUDIES``).
``similar_barriers`` (0.40)
    Cosine similarity of the two sites' long-run barrier profiles: barrier activity
    (:mod:`sitegraph.queries.signals`) with a 365-day half-life.
``network_proximity`` (0.20)
    Random walk with restart from the site (continue with probability 0.85) on the weighted
    site–investigator–study projection, truncated at 4 steps: the first terms of the personalised
    PageRank series, so it reaches the sites within 4 hops (through shared investigators and studies,
    and their investigators' other studies), divided by the largest value any other site gets.

Ties are broken by site id, and scores are rounded to 9 decimals before ranking, so both stores rank
identically. Everything is computed on the snapshot.
"""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from sitegraph.errors import NotFoundError
from sitegraph.graph.store import GraphStore
from sitegraph.queries.models import PathStep, RelatedReason, RelatedSite
from sitegraph.queries.signals import activity_vectors, as_snapshot, engagement_index
from sitegraph.queries.snapshot import Snapshot, carried

WEIGHTS: dict[str, float] = {
    "shared_investigator": 0.15,
    "shared_study": 0.15,
    "shared_condition": 0.10,
    "similar_barriers": 0.40,
    "network_proximity": 0.20,
}
PAGERANK_ALPHA = 0.85
PROXIMITY_HOPS = 4
"""Steps of the random walk with restart behind ``network_proximity`` (a site's 4-hop neighbourhood)."""
MAX_ITEMS = 5
SCORE_CACHE_SIZE = 64
_SCORES_LOCK = threading.Lock()
PROFILE_HALF_LIFE_DAYS = 365.0
"""Half-life of the barrier profiles compared by ``similar_barriers``: the long-run profile of a site."""


@dataclass
class SiteStructure:
    """Sparse incidence matrices of the sites (cached per snapshot)."""

    sites: list[str]
    index: dict[str, int]
    investigators: list[str]
    studies: list[str]
    conditions: list[str]
    site_inv: sparse.csr_matrix
    site_study: sparse.csr_matrix
    site_cond: sparse.csr_matrix
    barrier_unit: np.ndarray  # sites x barriers, rows scaled to unit length
    barriers: list[str]
    activity: np.ndarray
    inv_site: sparse.csr_matrix  # the transposes, for one site's shared counts by row lookups
    study_site: sparse.csr_matrix
    cond_site: sparse.csr_matrix
    n_std: np.ndarray  # studies per site
    n_cond: np.ndarray  # conditions per site
    barrier_unit_sparse: sparse.csr_matrix  # barrier_unit without its zeros: a product reads only the barriers raised

    def profile_similarity(self, i: int) -> np.ndarray:
        """Cosine similarity of every site's barrier profile with site ``i``'s (``barrier_unit @ barrier_unit[i]``)."""
        return np.asarray(self.barrier_unit_sparse @ self.barrier_unit[i], dtype=np.float64)


def _binary(rows: list[int], cols: list[int], shape: tuple[int, int]) -> sparse.csr_matrix:
    m = sparse.csr_matrix((np.ones(len(rows)), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))), shape=shape)
    m.data[:] = 1.0  # duplicates summed: back to 0/1
    return m


def _neighbour_keys(snapshot: Snapshot, label: str, key: str, rel_type: str, other: str, *, incoming: bool) -> list[str]:
    """Keys of the ``other``-labelled nodes linked to (label, key) by ``rel_type`` (as :meth:`Snapshot.out`/``into``)."""
    g = snapshot.graph
    nid = (label, key)
    if nid not in g:
        return []
    adj = g._pred[nid] if incoming else g._succ[nid]  # {neighbour: {(type, identity): props}}
    return [v[1] for v, edges in adj.items() if v[0] == other and any(ek[0] == rel_type for ek in edges)]


def site_structure(source: Snapshot | GraphStore) -> SiteStructure:
    snapshot = as_snapshot(source)
    cached = snapshot.cache.get("related.structure")
    if cached is not None:
        return cached
    sites, barriers, activity = activity_vectors(snapshot, half_life_days=PROFILE_HALF_LIFE_DAYS)
    norms = np.linalg.norm(activity, axis=1, keepdims=True)
    unit = np.divide(activity, norms, out=np.zeros_like(activity), where=norms > 0)
    previous = carried(snapshot, "related.structure")
    if isinstance(previous, SiteStructure) and previous.sites == sites:
        # a write of interactions only since the previous snapshot: the sites' investigators, studies and
        # conditions are the same; only the barrier profiles (from the interactions) are new
        built = dataclasses.replace(
            previous, barrier_unit=unit, barriers=barriers, activity=activity, barrier_unit_sparse=sparse.csr_matrix(unit)
        )
        snapshot.cache["related.structure"] = built
        return built
    index = {s: i for i, s in enumerate(sites)}
    investigators = [k for k, _ in snapshot.nodes("Investigator")]
    studies = [k for k, _ in snapshot.nodes("Study")]
    conditions = [k for k, _ in snapshot.nodes("Condition")]
    inv_i = {k: i for i, k in enumerate(investigators)}
    std_i = {k: i for i, k in enumerate(studies)}
    cond_i = {k: i for i, k in enumerate(conditions)}
    r, c = [], []
    for s in sites:
        for k in _neighbour_keys(snapshot, "Site", s, "WORKS_AT", "Investigator", incoming=True):
            if k in inv_i:
                r.append(index[s])
                c.append(inv_i[k])
    site_inv = _binary(r, c, (len(sites), len(investigators)))
    r, c = [], []
    for s in sites:
        for k in _neighbour_keys(snapshot, "Site", s, "PARTICIPATES_IN", "Study", incoming=False):
            if k in std_i:
                r.append(index[s])
                c.append(std_i[k])
    site_study = _binary(r, c, (len(sites), len(studies)))
    r, c = [], []
    for st in studies:
        for k in _neighbour_keys(snapshot, "Study", st, "STUDIES", "Condition", incoming=False):
            if k in cond_i:
                r.append(std_i[st])
                c.append(cond_i[k])
    study_cond = _binary(r, c, (len(studies), len(conditions)))
    site_cond = (site_study @ study_cond).tocsr()
    site_cond.data[:] = 1.0
    for m in (site_inv, site_study, site_cond):
        m.sort_indices()
    built = SiteStructure(
        sites=sites,
        index=index,
        investigators=investigators,
        studies=studies,
        conditions=conditions,
        site_inv=site_inv,
        site_study=site_study,
        site_cond=site_cond,
        barrier_unit=unit,
        barriers=barriers,
        activity=activity,
        inv_site=sparse.csr_matrix(site_inv.T),
        study_site=sparse.csr_matrix(site_study.T),
        cond_site=sparse.csr_matrix(site_cond.T),
        n_std=np.asarray(site_study.sum(axis=1)).ravel(),
        n_cond=np.asarray(site_cond.sum(axis=1)).ravel(),
        barrier_unit_sparse=sparse.csr_matrix(unit),
    )
    snapshot.cache["related.structure"] = built
    return built


@dataclass
class _Proximity:
    """The site–investigator–study projection as a random-walk transition matrix (CSR arrays)."""

    indptr: np.ndarray
    indices: np.ndarray
    data: np.ndarray  # row-stochastic: edge weight / the node's strength
    site_rows: np.ndarray  # row of each site of :class:`SiteStructure` in the projection (-1: absent)
    n: int


def _proximity(snapshot: Snapshot) -> _Proximity:
    cached = snapshot.cache.get("related.proximity")
    if cached is not None:
        return cached
    from sitegraph.graph.projections import site_investigator_study

    # a write of interactions only since the previous snapshot: sites, investigators, studies and the
    # relationships between them are the same, and so are the projection and the walk
    proj = snapshot.cache.get("related.sis_projection") or carried(snapshot, "related.sis_projection")
    previous = carried(snapshot, "related.proximity")
    if previous is not None and proj is not None:
        snapshot.cache["related.sis_projection"] = proj
        snapshot.cache["related.proximity"] = previous
        return previous
    if proj is None:
        proj = site_investigator_study(snapshot)
        snapshot.cache["related.sis_projection"] = proj
    st = site_structure(snapshot)
    rows = np.array([proj.index.get(("Site", s), -1) for s in st.sites], dtype=np.int64)
    a = sparse.csr_matrix(proj.adjacency, dtype=np.float64)
    a.sort_indices()
    strength = np.asarray(a.sum(axis=1), dtype=np.float64).ravel()
    inv = np.divide(1.0, strength, out=np.zeros_like(strength), where=strength > 0)
    walk = sparse.csr_matrix(sparse.diags(inv) @ a)
    built = _Proximity(walk.indptr.astype(np.int64), walk.indices.astype(np.int64), walk.data, rows, proj.n_nodes)
    snapshot.cache["related.proximity"] = built
    return built


def proximity_vector(snapshot: Snapshot, site_id: str) -> np.ndarray:
    """Random walk with restart from ``site_id``, truncated at :data:`PROXIMITY_HOPS` steps, for every site.

    ``x = (1 - a) * sum_{k=0..K} a^k e_s M^k`` with ``a`` = :data:`PAGERANK_ALPHA`, ``K`` =
    :data:`PROXIMITY_HOPS` and ``M`` the weighted transition matrix of the site–investigator–study
    projection (edge weight over the node's strength): the first ``K + 1`` terms of the personalised
    PageRank series from the site. Only the nodes the walk reaches are touched, so the cost grows with
    the site's 4-hop neighbourhood, not with the graph. Returned in :class:`SiteStructure` order (0 when
    not reached).
    """
    prox = _proximity(snapshot)
    row = int(prox.site_rows[site_structure(snapshot).index[site_id]])
    out = np.zeros(len(prox.site_rows))
    if row < 0 or prox.n == 0:
        return out
    indptr, indices, data = prox.indptr, prox.indices, prox.data
    total = np.zeros(prox.n, dtype=np.float64)
    frontier = np.array([row], dtype=np.int64)
    mass = np.array([1.0])
    total[row] = 1.0 - PAGERANK_ALPHA
    for _ in range(PROXIMITY_HOPS):
        starts, ends = indptr[frontier], indptr[frontier + 1]
        lengths = ends - starts
        count = int(lengths.sum())
        if count == 0:
            break
        # positions of every entry of the frontier's rows, without a Python loop
        offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(count)
        reached = indices[offsets]
        step = np.bincount(reached, weights=np.repeat(mass * PAGERANK_ALPHA, lengths) * data[offsets], minlength=prox.n)
        # the nodes reached: sorting the few reached is cheaper than scanning every node, until most are
        frontier = np.unique(reached) if count < prox.n // 8 else np.flatnonzero(step)
        mass = step[frontier]
        total[frontier] += (1.0 - PAGERANK_ALPHA) * mass
    present = prox.site_rows >= 0
    out[present] = total[prox.site_rows[present]]
    return out


def network_proximity(source: Snapshot | GraphStore, site_id: str) -> dict[str, float]:
    """Network proximity of every site reached from ``site_id`` (:func:`proximity_vector`), by site id.

    A random walk with restart at the site on :func:`sitegraph.graph.projections.site_investigator_study`
    (the projection ``sitegraph analyze`` uses), truncated at :data:`PROXIMITY_HOPS` steps.
    """
    snapshot = as_snapshot(source)
    if snapshot.node("Site", site_id) is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    st = site_structure(snapshot)
    vec = proximity_vector(snapshot, site_id)
    return {st.sites[j]: float(vec[j]) for j in np.flatnonzero(vec > 0)}


def _salton(shared: np.ndarray, n_self: float, n_other: np.ndarray) -> np.ndarray:
    denom = np.sqrt(n_self * n_other)
    return np.divide(shared, denom, out=np.zeros_like(shared, dtype=float), where=denom > 0)


def _shared_counts(site_x: sparse.csr_matrix, x_site: sparse.csr_matrix, i: int, n_sites: int) -> np.ndarray:
    """For every site, how many columns of ``site_x`` it shares with site ``i`` (``site_x @ site_x[i].T``, 0/1 matrices)."""
    cols = site_x.indices[site_x.indptr[i] : site_x.indptr[i + 1]]
    if not len(cols):
        return np.zeros(n_sites)
    starts, ends = x_site.indptr[cols], x_site.indptr[cols + 1]
    members = np.concatenate([x_site.indices[a:b] for a, b in zip(starts.tolist(), ends.tolist(), strict=True)])
    return np.bincount(members, minlength=n_sites).astype(np.float64)


def related_scores(
    source: Snapshot | GraphStore, site_id: str, weights: Mapping[str, float] | None = None
) -> tuple[list[str], dict[str, np.ndarray], np.ndarray]:
    """(site ids, feature arrays, total score array) of every site against ``site_id`` (itself scored 0)."""
    snapshot = as_snapshot(source)
    if snapshot.node("Site", site_id) is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    w = dict(WEIGHTS if weights is None else weights)
    cache: dict[Any, Any] = snapshot.cache.setdefault("related.scores", {})
    key = (site_id, tuple(sorted(w.items())))
    hit = cache.get(key)
    if hit is not None:
        return hit
    st = site_structure(snapshot)
    i = st.index[site_id]
    n = len(st.sites)
    features = {
        "shared_investigator": 1 - np.exp(-_shared_counts(st.site_inv, st.inv_site, i, n)),
        "shared_study": _salton(_shared_counts(st.site_study, st.study_site, i, n), st.n_std[i], st.n_std),
        "shared_condition": _salton(_shared_counts(st.site_cond, st.cond_site, i, n), st.n_cond[i], st.n_cond),
        "similar_barriers": np.clip(st.profile_similarity(i), 0.0, 1.0),
    }
    ppr = proximity_vector(snapshot, site_id)
    ppr[i] = 0.0
    top = ppr.max() if len(ppr) else 0.0
    features["network_proximity"] = ppr / top if top > 0 else np.zeros_like(ppr)
    for f in features.values():
        f[i] = 0.0
    total = np.zeros(n)
    for name, f in features.items():
        total += w.get(name, 0.0) * f
    result = (st.sites, features, np.round(total, 9))
    with _SCORES_LOCK:
        if len(cache) >= SCORE_CACHE_SIZE:
            cache.clear()
        cache[key] = result
    return result


@dataclass
class _BlockOperands:
    """What :func:`block_top` multiplies by, once per snapshot."""

    unit_t: sparse.csr_matrix  # barrier_unit_sparse transposed (barriers x sites)
    unit_cols: np.ndarray  # barrier_unit transposed, C order: one barrier's values at any sites read from one row
    walk: sparse.csr_matrix  # the proximity transition matrix (rows: from, ascending columns: to)
    walk_t: sparse.csr_matrix  # the proximity transition matrix transposed, rows with ascending columns
    walk_t_sites: sparse.csr_matrix  # its rows of the sites present in the projection (site_nodes)
    node_site: np.ndarray  # each projection node's SiteStructure row (-1: not a site)
    site_nodes: np.ndarray  # projection rows of the sites present in it
    site_present: np.ndarray  # their SiteStructure rows
    at_sites: slice | np.ndarray  # site_nodes, as a slice when they are consecutive ascending rows
    cond_bits: np.ndarray | None  # each site's conditions as a bit set, when there are at most 64


def _block_operands(snapshot: Snapshot) -> _BlockOperands:
    cached = snapshot.cache.get("related.block_operands")
    if cached is not None:
        return cached
    st = site_structure(snapshot)
    prox = _proximity(snapshot)
    previous = carried(snapshot, "related.block_operands")
    if isinstance(previous, _BlockOperands) and carried(snapshot, "related.proximity") is prox:
        # a write of interactions only: the same walk and conditions; only the barrier profiles are new
        unit_cols = _updated_columns(snapshot, previous.unit_cols, st)
        built = dataclasses.replace(previous, unit_t=_unit_t(st), unit_cols=unit_cols)
        snapshot.cache["related.block_operands"] = built
        return built
    present = np.flatnonzero(prox.site_rows >= 0)
    walk = sparse.csr_matrix((prox.data, prox.indices, prox.indptr), shape=(prox.n, prox.n))
    walk_t = sparse.csr_matrix(walk.T)
    walk_t.has_sorted_indices = False
    walk_t.sort_indices()
    node_site = np.full(prox.n, -1, dtype=np.int64)
    node_site[prox.site_rows[present]] = present
    unit_t = _unit_t(st)
    cond_bits = None
    if len(st.conditions) <= 64:
        owner = np.repeat(np.arange(len(st.sites)), np.diff(st.site_cond.indptr))
        cond_bits = np.zeros(len(st.sites), dtype=np.uint64)
        np.bitwise_or.at(cond_bits, owner, np.left_shift(np.uint64(1), st.site_cond.indices.astype(np.uint64)))
    unit_cols = np.ascontiguousarray(st.barrier_unit.T)
    site_nodes = prox.site_rows[present]
    at_sites: slice | np.ndarray = site_nodes
    if len(site_nodes) and bool(np.all(np.diff(site_nodes) == 1)):
        at_sites = slice(int(site_nodes[0]), int(site_nodes[-1]) + 1)
    built = _BlockOperands(
        unit_t, unit_cols, walk, walk_t, walk_t[site_nodes], node_site, site_nodes, present, at_sites, cond_bits
    )
    snapshot.cache["related.block_operands"] = built
    return built


def _updated_columns(snapshot: Snapshot, previous: np.ndarray, st: SiteStructure) -> np.ndarray:
    """``barrier_unit`` transposed (C order), from the previous snapshot's: only the written sites'
    profiles are new when the reference date stayed (a copy, not a strided transpose of every row)."""
    from sitegraph.queries.signals import engagement_delta

    delta = engagement_delta(snapshot)
    if delta is None or not delta.same_reference or previous.shape != (st.barrier_unit.shape[1], st.barrier_unit.shape[0]):
        return np.ascontiguousarray(st.barrier_unit.T)
    out = previous.copy()
    rows = [st.index[s] for s in delta.sites if s in st.index]
    out[:, rows] = st.barrier_unit[rows].T
    return out


def _unit_t(st: SiteStructure) -> sparse.csr_matrix:
    unit_t = sparse.csr_matrix(st.barrier_unit_sparse.T)
    unit_t.sort_indices()
    return unit_t


FEW_ROWS = 4
"""Up to this many sites, :func:`block_top` walks from each site instead of multiplying by the whole walk."""


WALK_ROWS_SHARE = 0.06
"""While a block's walks hold fewer entries than this share of the transition matrix's, :func:`_proximity_block`
steps them from the walks' side (reading only the rows they reach); then from the matrix's side."""


def _proximity_block(snapshot: Snapshot, rows: np.ndarray) -> sparse.csr_matrix:
    """:func:`proximity_vector` of the sites ``rows`` (SiteStructure order), one sparse row each, same values.

    The truncated series, first one row per site, ``X' = (a X) W``: the product reads only the rows of
    ``W`` the walks reach and, with each row of ``X`` in ascending node order, sums each entry's terms
    in ascending node order; once the walks have spread, on the transposed block, ``X' = Wᵀ (a X)``,
    whose rows of ``Wᵀ`` are in ascending node order too. Either way each entry sums the walk's terms
    in ascending node order, as :func:`proximity_vector` does, so the values are equal; the running
    total adds the steps in the same order.
    """
    prox = _proximity(snapshot)
    ops = _block_operands(snapshot)
    n_sites = len(prox.site_rows)
    if len(rows) <= FEW_ROWS:  # a walk touches only what it reaches; the product reads the whole matrix
        st = site_structure(snapshot)
        return sparse.csr_matrix(np.vstack([proximity_vector(snapshot, st.sites[i]) for i in rows.tolist()]))
    start = prox.site_rows[rows]
    present = np.flatnonzero(start >= 0)
    x = sparse.csr_matrix((np.ones(len(present)), (present, start[present])), shape=(len(rows), prox.n))
    total = x * (1.0 - PAGERANK_ALPHA)
    by_site = True  # x and total: one row per site of the block (else one row per node)
    at_sites = ops.at_sites  # only the sites' rows of the transposed running total are read
    if prox.n:
        for hop in range(PROXIMITY_HOPS):
            if by_site and x.nnz >= WALK_ROWS_SHARE * ops.walk.nnz:
                by_site = False
                x = sparse.csr_matrix(x.T)
                total = sparse.csr_matrix(sparse.csr_matrix(total.T)[at_sites])
            x.data *= PAGERANK_ALPHA  # x is this function's own: scaled in place, the same products
            if by_site:
                x = sparse.csr_matrix(x @ ops.walk)
                x.sort_indices()  # the next product adds each entry's terms in ascending node order
            elif hop + 1 == PROXIMITY_HOPS:  # the last step: only the sites' rows are read
                total = total + sparse.csr_matrix(ops.walk_t_sites @ x) * (1.0 - PAGERANK_ALPHA)
                break
            else:
                x = sparse.csr_matrix(ops.walk_t @ x)
            if not x.nnz:
                break
            total = total + (x if by_site else x[at_sites]) * (1.0 - PAGERANK_ALPHA)
    if by_site:
        total = sparse.csr_matrix(total)
        at = ops.node_site[total.indices]
        keep = at >= 0  # the sites' columns, as SiteStructure rows
        owner = np.repeat(np.arange(len(rows)), np.diff(total.indptr))
        indptr = np.zeros(len(rows) + 1, dtype=np.int64)
        np.cumsum(np.bincount(owner[keep], minlength=len(rows)), out=indptr[1:])
        out = sparse.csr_matrix((total.data[keep], at[keep], indptr), shape=(len(rows), n_sites))
        out.sort_indices()
        return out
    out = sparse.csr_matrix(sparse.csr_matrix(total).T)  # block rows x present sites
    return sparse.csr_matrix((out.data, ops.site_present[out.indices], out.indptr), shape=(len(rows), n_sites))


def _row_entries(m: sparse.csr_matrix, b: int) -> tuple[np.ndarray, np.ndarray]:
    lo, hi = int(m.indptr[b]), int(m.indptr[b + 1])
    return m.indices[lo:hi], m.data[lo:hi]


_MARGIN = 1e-6
_FEATURES = ("shared_investigator", "shared_study", "shared_condition", "similar_barriers", "network_proximity")


class _Lookup:
    """Dense per-site scratch vectors over every site, filled from a site's sparse rows and cleared after."""

    def __init__(self, n: int, n_cond: int, cond_bits: np.ndarray | None) -> None:
        # (similarities are not filled: a site's row holds thousands; :func:`_similarity_at` computes the few read)
        self.values = {name: np.zeros(n) for name in _FEATURES if name not in ("shared_condition", "similar_barriers")}
        self.conditions = np.zeros(n_cond, dtype=bool)
        self.cond_bits = cond_bits
        self.site = -1
        self.seen = np.zeros(n, dtype=bool)  # sites already scored
        self._filled: list[tuple[np.ndarray, np.ndarray]] = []

    def fill(self, name: str, cols: np.ndarray, vals: np.ndarray) -> None:
        target = self.values[name]
        target[cols] = vals
        self._filled.append((target, cols))

    def clear(self) -> None:
        for target, cols in self._filled:
            target[cols] = 0
        self._filled.clear()
        self.conditions[:] = False


def _distinct(values: np.ndarray) -> np.ndarray:
    """The distinct values, ascending (a sort: cheaper than hashing for these few thousand indexes)."""
    values = np.sort(values.astype(np.int64, copy=False))
    if len(values) > 1:
        values = values[np.concatenate(([True], values[1:] != values[:-1]))]
    return values


def _shared_conditions(st: SiteStructure, lookup: _Lookup, cols: np.ndarray) -> np.ndarray:
    """How many of the marked conditions each site of ``cols`` has (as :func:`_shared_counts`: exact counts)."""
    marked = lookup.conditions
    if lookup.cond_bits is not None:
        return np.bitwise_count(lookup.cond_bits[cols] & lookup.cond_bits[lookup.site]).astype(np.float64)
    m = st.site_cond
    starts, ends = m.indptr[cols], m.indptr[cols + 1]
    lengths = ends - starts
    offsets = np.repeat(starts - np.cumsum(lengths) + lengths, lengths) + np.arange(int(lengths.sum()))
    owner = np.repeat(np.arange(len(cols)), lengths)
    return np.bincount(owner[marked[m.indices[offsets]]], minlength=len(cols)).astype(np.float64)


def _similarity_at(st: SiteStructure, unit_cols: np.ndarray, i: int, cols: np.ndarray) -> np.ndarray:
    """``profile_similarity(i)[cols]``, the same values: the terms of site ``i``'s barriers, added in
    ascending barrier order (as the sparse products add them; a barrier the other site lacks adds 0).
    ``unit_cols``: ``barrier_unit`` transposed (:class:`_BlockOperands`)."""
    m = st.barrier_unit_sparse
    lo, hi = int(m.indptr[i]), int(m.indptr[i + 1])
    cols = cols.astype(np.intp, copy=False)
    out = np.zeros(len(cols))
    term = np.empty(len(cols))
    for k, u in zip(m.indices[lo:hi].tolist(), m.data[lo:hi].tolist(), strict=True):
        np.take(unit_cols[k], cols, out=term)
        term *= u
        out += term
    return out


def _features_at(
    st: SiteStructure, i: int, cols: np.ndarray, lookup: _Lookup, sims: np.ndarray, *, outside: bool = False
) -> tuple[np.ndarray | None, ...]:
    """The five features (:data:`_FEATURES` order) of site ``i`` with the sites ``cols`` (not ``i``):
    :func:`related_scores`'s feature arrays at those sites, the same operations on the same values
    (``lookup``: the site's shared investigator and study counts and normalised proximity, its conditions
    marked; ``sims``: the profile similarities at ``cols``). With ``outside`` (no site of ``cols`` shares
    an investigator or a study with ``i``), those two features, all zeros there, are None."""
    v = lookup.values
    return (
        None if outside else 1 - np.exp(-v["shared_investigator"][cols]),
        None if outside else _salton(v["shared_study"][cols], st.n_std[i], st.n_std[cols]),
        _salton(_shared_conditions(st, lookup, cols), st.n_cond[i], st.n_cond[cols]),
        np.clip(sims, 0.0, 1.0),
        v["network_proximity"][cols],
    )


def _totals_at(
    st: SiteStructure, i: int, cols: np.ndarray, lookup: _Lookup, sims: np.ndarray, *, outside: bool = False
) -> np.ndarray:
    """The related score of site ``i`` with the sites ``cols`` (not ``i``; ``sims``: the profile similarities
    there): :func:`related_scores`'s total at those sites (the weighted sum of :func:`_features_at`, added in
    the same order). ``outside``: as for :func:`_features_at`; a zero feature's term (``w × 0``, 0 or -0)
    leaves the zero total unchanged, so skipping it gives the same sums."""
    total = np.zeros(len(cols))
    for name, f in zip(_FEATURES, _features_at(st, i, cols, lookup, sims, outside=outside), strict=True):
        if f is None:
            continue
        total += WEIGHTS.get(name, 0.0) * f
    return np.round(total, 9)


SAMPLE_STEP = 16
""":func:`_most_similar` guesses a bound from every this-many-th similarity of a site's row."""


def _most_similar(s_cols: np.ndarray, s_vals: np.ndarray, i: int, k: int) -> np.ndarray:
    """Positions (ascending) in site ``i``'s similarity row of the positive similarities with other sites
    within 1e-9 of the ``k``-th highest of them (all of them when there are at most ``k``).

    A row holds thousands of similarities: a guessed bound (a high value of a sample of the row) picks
    the few above it first; when at least ``k`` are and the ``k``-th highest minus 1e-9 is still above
    the guess, no similarity below the guess can be among them, and the answer is the full pass's.
    """
    if k <= 0:
        return np.zeros(0, dtype=np.intp)
    sample = s_vals[::SAMPLE_STEP]
    r = 3 * k // SAMPLE_STEP + 1  # the sample's r-th highest: about 3 k values of the row above it
    if len(sample) > 2 * r:
        guess = np.partition(sample, len(sample) - r)[len(sample) - r]
        if guess > 0:
            cand = np.flatnonzero(s_vals >= guess)
            cand = cand[s_cols[cand] != i]
            if len(cand) >= k:
                v = s_vals[cand]
                kth = np.partition(v, len(v) - k)[len(v) - k]
                if kth - 1e-9 >= guess:
                    return cand[v >= kth - 1e-9]
    cand = np.flatnonzero((s_cols != i) & (s_vals > 0))
    if len(cand) > k:
        v = s_vals[cand]
        kth = np.partition(v, len(v) - k)[len(v) - k]
        cand = cand[v >= kth - 1e-9]
    return cand


def _reaching(s_vals: np.ndarray, base: float, w_sim: float, bound: float) -> np.ndarray:
    """Positions (ascending) of the similarities ``s`` with ``base + w_sim * s + _MARGIN >= bound``, the same
    test; first those within 1e-9 of the threshold it implies (``w_sim > 0``), then the test on those."""
    if w_sim > 0:
        pos = np.flatnonzero(s_vals >= (bound - base - _MARGIN) / w_sim - 1e-9)
        return pos[base + w_sim * s_vals[pos] + _MARGIN >= bound]
    return np.flatnonzero(base + w_sim * s_vals + _MARGIN >= bound)


NEIGHBOURS_KEY = "related.neighbours"
"""The key of a snapshot's :class:`NeighbourTable` in :attr:`Snapshot.cache`."""


@dataclass
class NeighbourTable:
    """What :func:`block_top` found for each site it was asked to record (the recommendations ask for every
    site's 30 most similar and 20 most related sites): those sites (SiteStructure rows, best first, -1
    after the last), the last one's similarity and score (0 when there are fewer), and the largest value
    of the site's walk at another site (what its network proximity is divided by).

    It is how far a write of interactions reaches (:mod:`sitegraph.queries.reach`): a site's answers read
    no other site's data than these sites', so a site whose lists a write leaves as they are keeps its
    answers. Rows not recorded (``known`` false) are unknown and count as reached. The recommendations
    also record the barriers each site's tactics address (``considered``, columns in
    :attr:`SiteStructure.barriers` order; ``considered_known``): the tactics whose success rates an
    application of a tactic moves are found from them.
    """

    similar: np.ndarray  # int32, sites x k_similar
    similar_last: np.ndarray  # float64
    related: np.ndarray  # int32, sites x k_related
    related_last: np.ndarray  # float64
    walk_top: np.ndarray  # float64
    known: np.ndarray  # bool
    considered: np.ndarray  # bool, sites x barriers
    considered_known: np.ndarray  # bool
    # records and copies one at a time: a copy never holds half a row (the precompute thread may still be
    # recording into the previous snapshot's table while the next snapshot copies it)
    _lock: threading.Lock = dataclasses.field(default_factory=threading.Lock, repr=False, compare=False)

    @classmethod
    def empty(cls, n: int, k_similar: int, k_related: int, n_barriers: int) -> NeighbourTable:
        return cls(
            np.full((n, k_similar), -1, dtype=np.int32),
            np.zeros(n),
            np.full((n, k_related), -1, dtype=np.int32),
            np.zeros(n),
            np.zeros(n),
            np.zeros(n, dtype=bool),
            np.zeros((n, n_barriers), dtype=bool),
            np.zeros(n, dtype=bool),
        )

    def record_considered(self, i: int, columns: list[int]) -> None:
        with self._lock:
            self.considered[i] = False
            self.considered[i, columns] = True
            self.considered_known[i] = True

    def record(
        self, i: int, similar: np.ndarray, similarities: np.ndarray, related: np.ndarray, scores: np.ndarray, walk_top: float
    ) -> None:
        k_s, k_r = self.similar.shape[1], self.related.shape[1]
        with self._lock:
            self.similar[i, : len(similar)] = similar
            self.similar_last[i] = similarities[-1] if len(similar) == k_s else 0.0
            self.related[i, : len(related)] = related
            self.related_last[i] = scores[-1] if len(related) == k_r else 0.0
            self.walk_top[i] = walk_top
            self.known[i] = True  # last: a reader in another thread sees a known row complete

    def without(self, rows: np.ndarray) -> NeighbourTable:
        """A copy with ``rows`` unknown (their lists are recorded again when they are computed again)."""
        with self._lock:
            out = NeighbourTable(
                self.similar.copy(), self.similar_last.copy(), self.related.copy(), self.related_last.copy(),
                self.walk_top.copy(), self.known.copy(), self.considered.copy(), self.considered_known.copy(),
            )  # fmt: skip
        out.known[rows] = False
        out.similar[rows] = -1
        out.related[rows] = -1
        out.considered_known[rows] = False
        return out


_TABLE_LOCK = threading.Lock()


def neighbour_table(snapshot: Snapshot, k_similar: int, k_related: int) -> NeighbourTable:
    """The snapshot's :class:`NeighbourTable`: after a write of interactions only, the previous snapshot's
    with the rows of the sites the write reaches made unknown; else an empty one."""
    table = snapshot.cache.get(NEIGHBOURS_KEY)
    if isinstance(table, NeighbourTable):
        return table
    from sitegraph.queries.reach import reach

    with _TABLE_LOCK:
        table = snapshot.cache.get(NEIGHBOURS_KEY)
        if isinstance(table, NeighbourTable):
            return table
        previous = carried(snapshot, NEIGHBOURS_KEY)
        found = reach(snapshot) if isinstance(previous, NeighbourTable) else None
        st = site_structure(snapshot)
        if (
            isinstance(previous, NeighbourTable)
            and found is not None
            and previous.similar.shape[1] == k_similar
            and previous.considered.shape[1] == len(st.barriers)
        ):
            table = previous.without(found.rows)
        else:
            table = NeighbourTable.empty(len(st.sites), k_similar, k_related, len(st.barriers))
        snapshot.cache[NEIGHBOURS_KEY] = table
        return table


def block_top(
    snapshot: Snapshot, rows: np.ndarray, k_similar: int, k_related: int, *, features: bool = False, record: bool = False
) -> list[tuple[np.ndarray, ...]]:
    """For each site of ``rows`` (SiteStructure order): its ``k_similar`` most similar sites by barrier
    profile and their similarities (:func:`sitegraph.queries.recommend.similar_sites`), and its
    ``k_related`` most related sites and their scores (``top_positive`` of :func:`related_scores`), as
    (similar rows, similarities, related rows, scores), best first, exactly the per-site values.

    The profile similarities of the whole block are one sparse product. A related score is computed
    exactly only where it can reach the ``k_related``-th best: at every site that shares an
    investigator or a study with the site or that its walk reaches, and at the most similar sites;
    elsewhere the score is ``0.1 × shared conditions + 0.4 × similarity`` (with the default weights; at
    most ``0.1 + 0.4 × similarity``), so a site whose bound stays below the ``k_related``-th best score
    found so far cannot enter the top.

    With ``features``, each tuple has a fifth item: the five features (:data:`_FEATURES` order, one
    row each) at the related rows, :func:`related_scores`'s feature values there. With ``record``, what
    was found goes to the snapshot's :class:`NeighbourTable` too.
    """
    # at a site sharing no investigator or study with the site and not reached by its walk, the score
    # is at most this much plus the similarity's weight times the similarity (every feature is in [0, 1])
    base = WEIGHTS.get("shared_condition", 0.0)
    w_sim = WEIGHTS.get("similar_barriers", 0.0)
    w_prox = WEIGHTS.get("network_proximity", 0.0)
    nonnegative = min(WEIGHTS.values()) >= 0
    st = site_structure(snapshot)
    ops = _block_operands(snapshot)
    rows = np.asarray(rows, dtype=np.int64)
    n = len(st.sites)
    sim = sparse.csr_matrix(st.barrier_unit_sparse[rows] @ ops.unit_t)
    inv = sparse.csr_matrix(st.site_inv[rows] @ st.inv_site)
    std = sparse.csr_matrix(st.site_study[rows] @ st.study_site)
    ppr = _proximity_block(snapshot, rows)
    lookup = _Lookup(n, len(st.conditions), ops.cond_bits)
    seen = lookup.seen
    table = neighbour_table(snapshot, k_similar, k_related) if record else None
    out: list[tuple[np.ndarray, ...]] = []
    for b, i in enumerate(rows.tolist()):
        s_cols, s_vals = _row_entries(sim, b)
        # similar sites: the top of the rounded similarities; rounding keeps the order, so only values
        # within rounding of the k-th highest can be among them
        cand = _most_similar(s_cols, s_vals, i, k_similar)
        rounded = np.round(s_vals[cand], 9)
        top = top_positive_sparse(s_cols[cand], rounded, k_similar)
        similar_rows, similar_vals = s_cols[cand][top], rounded[top]
        # proximity: normalised by the largest value at any other site
        p_cols, p_vals = _row_entries(ppr, b)
        keep = p_cols != i
        p_cols, p_vals = p_cols[keep], p_vals[keep]
        walk_top = float(p_vals.max()) if len(p_vals) else 0.0
        if len(p_vals):
            p_vals = p_vals / walk_top
        i_cols, i_vals = _row_entries(inv, b)
        t_cols, t_vals = _row_entries(std, b)
        lookup.fill("shared_investigator", i_cols, i_vals)
        lookup.fill("shared_study", t_cols, t_vals)
        lookup.fill("network_proximity", p_cols, p_vals)
        lookup.site = i
        lookup.conditions[st.site_cond.indices[st.site_cond.indptr[i] : st.site_cond.indptr[i + 1]]] = True
        # first the sites sharing an investigator or a study and the most similar ones; then, of the sites
        # only the walk reaches, those whose score can reach the k-th best of these (shared investigators
        # and studies 0 there, the condition overlap at most 1)
        core = _distinct(np.concatenate([i_cols, t_cols, similar_rows]))
        core = core[core != i]
        sims = _similarity_at(st, ops.unit_cols, i, core)
        totals = _totals_at(st, i, core, lookup, sims)
        seen[core] = True
        seen[i] = True
        walked = ~seen[p_cols]
        w_cols, w_vals = p_cols[walked], p_vals[walked]
        seen[core] = False
        seen[i] = False
        w_sims = _similarity_at(st, ops.unit_cols, i, w_cols)
        positive = totals[totals > 0]
        if len(positive) >= k_related and len(w_cols) and nonnegative:
            kth = np.partition(positive, len(positive) - k_related)[len(positive) - k_related]
            reach = base + w_sim * np.clip(w_sims, 0.0, 1.0) + w_prox * w_vals
            keep = reach + _MARGIN >= kth
            w_cols, w_sims = w_cols[keep], w_sims[keep]
        first = np.concatenate([core, w_cols])
        if len(w_cols):
            totals = np.concatenate([totals, _totals_at(st, i, w_cols, lookup, w_sims, outside=True)])
            sims = np.concatenate([sims, w_sims])
        positive = totals[totals > 0]
        cols = first
        if len(positive) >= k_related:
            bound = np.partition(positive, len(positive) - k_related)[len(positive) - k_related]
        else:
            bound = 0.0
        seen[first] = True
        seen[i] = True
        if bound > base + _MARGIN and nonnegative:
            pos = _reaching(s_vals, base, w_sim, bound)
            more, more_sims = s_cols[pos], s_vals[pos]
            fresh = ~seen[more]
            more, more_sims = more[fresh], more_sims[fresh]
        else:  # every site sharing a condition or a barrier may count
            mine = st.site_cond.indices[st.site_cond.indptr[i] : st.site_cond.indptr[i + 1]]
            sharing = [st.cond_site.indices[st.cond_site.indptr[c] : st.cond_site.indptr[c + 1]] for c in mine.tolist()]
            more = _distinct(np.concatenate([s_cols, *sharing]))
            more = more[~seen[more]]
            more_sims = _similarity_at(st, ops.unit_cols, i, more)
        seen[first] = False
        seen[i] = False
        if len(more):
            cols = np.concatenate([first, more])
            totals = np.concatenate([totals, _totals_at(st, i, more, lookup, more_sims, outside=True)])
            sims = np.concatenate([sims, more_sims])
        if bound > 0:  # the top is among the scores at least the k-th best of the first sites
            sel = np.flatnonzero(totals >= bound)
            top = sel[top_positive_sparse(cols[sel], totals[sel], k_related)]
        else:
            top = top_positive_sparse(cols, totals, k_related)
        if features:
            at = np.array(_features_at(st, i, cols[top], lookup, sims[top]), dtype=np.float64).reshape(len(_FEATURES), len(top))
            out.append((similar_rows, similar_vals, cols[top], totals[top], at))
        else:
            out.append((similar_rows, similar_vals, cols[top], totals[top]))
        if table is not None:
            table.record(i, similar_rows, similar_vals, cols[top], totals[top], walk_top)
        lookup.clear()
    return out


def top_positive_sparse(cols: np.ndarray, vals: np.ndarray, k: int) -> np.ndarray:
    """Positions in a sparse row (column indexes ``cols``, values ``vals``) of its ``k`` highest positive
    values, best first, ties by column: the columns :func:`top_positive` gives for the dense row."""
    pos = np.flatnonzero(vals > 0)
    if not len(pos) or k <= 0:
        return pos[:0]
    if len(pos) > 2 * k:
        v = vals[pos]
        kth = np.partition(v, len(v) - k)[len(v) - k]
        pos = pos[v >= kth]
    return pos[np.lexsort((cols[pos], -vals[pos]))[:k]]


def top_positive(scores: np.ndarray, k: int) -> list[int]:
    """Indexes of the ``k`` highest positive scores, ties by index (site ids are in index order)."""
    pos = np.flatnonzero(scores > 0)
    if not len(pos) or k <= 0:
        return []
    if len(pos) > 2 * k:  # keep only the scores >= the k-th highest (all of its ties), then sort those
        vals = scores[pos]
        kth = np.partition(vals, len(vals) - k)[len(vals) - k]
        pos = pos[vals >= kth]
    order = pos[np.lexsort((pos, -scores[pos]))]
    return [int(j) for j in order[:k]]


def related_sites(
    source: Snapshot | GraphStore, site_id: str, limit: int = 10, *, weights: Mapping[str, float] | None = None
) -> list[RelatedSite]:
    """The ``limit`` sites most related to ``site_id``, best first, each with reasons and Cypher.

    :class:`NotFoundError` for an unknown site.
    """
    snapshot = as_snapshot(source)
    _sites, features, total = related_scores(snapshot, site_id, weights)
    w = dict(WEIGHTS if weights is None else weights)
    order = top_positive(total, limit)
    st = site_structure(snapshot)
    names = list(features)
    return [
        _related_site(snapshot, st, site_id, rank, j, float(total[j]), [float(features[f][j]) for f in names], names, w)
        for rank, j in enumerate(order, start=1)
    ]


def _related_site(
    snapshot: Snapshot,
    st: SiteStructure,
    site_id: str,
    rank: int,
    j: int,
    total: float,
    values: list[float],
    names: list[str],
    w: Mapping[str, float],
) -> RelatedSite:
    """The ``rank``-th related site of ``site_id``: SiteStructure row ``j``, its total score and its
    feature ``values`` (named ``names``)."""
    other = st.sites[j]
    props = snapshot.graph._node.get(("Site", other)) or {}  # read only
    parts = {name: round(value * w.get(name, 0.0), 6) for name, value in zip(names, values, strict=True) if value > 0}
    reasons, cypher, params = _reasons(snapshot, st, site_id, other, parts)
    return RelatedSite(
        rank=rank,
        site_id=other,
        name=str(props.get("name") or other),
        city=props.get("city"),
        country=props.get("country"),
        score=round(total, 6),
        score_parts=parts,
        reasons=reasons,
        cypher=cypher,
        params=params,
    )


BLOCK_CELLS = 16_000_000
"""Sites per block of the batch functions (:func:`related_all`,
:func:`sitegraph.queries.recommend.recommend_all`): about this many site pairs, at most :data:`BLOCK_SITES`
(so 320 at 50,000 sites, 400 at 10,000). Each block's random walk reads the whole transition matrix
once per step, so larger blocks spread that over more sites (at 50,000 sites: 0.55–0.88 ms of walk per
site in blocks of 80, 0.24 in blocks of 320); past a few hundred sites the block's running sums fill up
and cost more than they save (10,000 sites: 0.35 ms per site in blocks of 400, 0.69 in blocks of 1,000)."""
BLOCK_SITES = 400


def site_blocks(snapshot: Snapshot, site_ids: Iterable[str] | None) -> Iterator[tuple[list[str], np.ndarray]]:
    """``site_ids`` (default: every site, in id order) in blocks of about :data:`BLOCK_CELLS` site pairs,
    each with its sites' SiteStructure rows. :class:`NotFoundError` for an unknown site (when its block
    is reached)."""
    st = site_structure(snapshot)
    ids = list(st.sites) if site_ids is None else list(site_ids)
    size = max(8, min(BLOCK_SITES, BLOCK_CELLS // max(1, len(st.sites))))
    for start in range(0, len(ids), size):
        block = ids[start : start + size]
        rows = []
        for site in block:
            row = st.index.get(site)
            if row is None:
                raise NotFoundError(f"no site with id {site!r}")
            rows.append(row)
        yield block, np.array(rows, dtype=np.int64)


def related_all(
    source: Snapshot | GraphStore, site_ids: Iterable[str] | None = None, limit: int = 10
) -> Iterator[tuple[str, list[RelatedSite]]]:
    """:func:`related_sites` (default weights) for many sites (default: every site, in id order), streamed.

    Yields ``(site id, related sites)`` in the order given, each exactly :func:`related_sites`'s answer.
    Sites are scored a block at a time through :func:`block_top` (a few sparse products per block, exact
    scores only where a site can reach the top ``limit``). :class:`NotFoundError` for an unknown site
    (when its block is reached).
    """
    snapshot = as_snapshot(source)
    st = site_structure(snapshot)
    names = list(_FEATURES)
    for block, rows in site_blocks(snapshot, site_ids):
        tops = block_top(snapshot, rows, 0, max(0, limit), features=True)
        for site, (_s, _v, related, totals, at) in zip(block, tops, strict=True):
            cols = at.T.tolist()
            yield (
                site,
                [
                    _related_site(snapshot, st, site, rank, j, t, values, names, WEIGHTS)
                    for rank, (j, t, values) in enumerate(zip(related.tolist(), totals.tolist(), cols, strict=True), start=1)
                ],
            )


def _item(snapshot: Snapshot, label: str, key: str, name_field: str) -> PathStep:
    """A reason's item: the node as a :class:`PathStep` named by ``name_field`` (else its key); one per node
    and snapshot, shared by the answers (it is immutable)."""
    items: dict[tuple[str, str, str], PathStep] | None = snapshot.cache.get("related.items")
    if items is None:
        items = snapshot.cache.setdefault("related.items", {})
    hit = items.get((label, key, name_field))
    if hit is None:
        props = snapshot.graph._node.get((label, key))
        hit = items[(label, key, name_field)] = PathStep(label=label, id=key, name=_name(props, key, name_field))
    return hit


def _name(props: Mapping[str, Any] | None, key: str, *fields: str) -> str:
    for f in fields:
        v = (props or {}).get(f)
        if isinstance(v, str) and v:
            return v
    return key


_SHARED_INVESTIGATORS = (
    "MATCH p = (a:Site {id: $site})<-[:WORKS_AT]-(i:Investigator)-[:WORKS_AT]->(b:Site {id: $other}) "
    "WHERE i.id IN $investigators RETURN p"
)
_SHARED_STUDIES = (
    "MATCH p = (a:Site {id: $site})-[:PARTICIPATES_IN]->(s:Study)<-[:PARTICIPATES_IN]-(b:Site {id: $other}) "
    "WHERE s.id IN $studies RETURN p"
)
_SHARED_CONDITIONS = (
    "CALL { MATCH p = (a:Site {id: $site})-[:PARTICIPATES_IN]->(:Study)-[:STUDIES]->(c:Condition)"
    "<-[:STUDIES]-(:Study)<-[:PARTICIPATES_IN]-(b:Site {id: $other}) WHERE c.id IN $conditions "
    "RETURN p LIMIT 25 } RETURN p"
)


def _reasons(
    snapshot: Snapshot, st: SiteStructure, site: str, other: str, parts: dict[str, float]
) -> tuple[list[RelatedReason], str, dict[str, str | int | float | list[str]]]:
    i, j = st.index[site], st.index[other]
    reasons: list[RelatedReason] = []
    queries: list[str] = []
    params: dict[str, str | int | float | list[str]] = {"site": site, "other": other}
    for kind, matrix, keys, label, name_field, param, query in (
        ("shared_investigator", st.site_inv, st.investigators, "Investigator", "name", "investigators", _SHARED_INVESTIGATORS),
        ("shared_study", st.site_study, st.studies, "Study", "title", "studies", _SHARED_STUDIES),
        ("shared_condition", st.site_cond, st.conditions, "Condition", "name", "conditions", _SHARED_CONDITIONS),
    ):
        if kind not in parts:
            continue
        shared_keys = sorted(keys[k] for k in _row(matrix, i) & _row(matrix, j))[:MAX_ITEMS]
        items = [_item(snapshot, label, k, name_field) for k in shared_keys]
        reasons.append(RelatedReason(kind=kind, weight=parts[kind], items=items))
        params[param] = shared_keys
        queries.append(query)
    if "similar_barriers" in parts:
        shared = [
            (min(st.activity[i, k], st.activity[j, k]), st.barriers[k])
            for k in np.flatnonzero((st.activity[i] > 0) & (st.activity[j] > 0))
        ]
        shared.sort(key=lambda t: (-t[0], t[1]))
        top = [iri for _, iri in shared[:3]]
        reasons.append(
            RelatedReason(
                kind="similar_barriers",
                weight=parts["similar_barriers"],
                items=[_item(snapshot, "Barrier", iri, "label") for iri in top],
            )
        )
        eng = engagement_index(snapshot)
        ids: list[str] = []
        shown: list[str] = []
        for iri in top:
            a = _latest_stored(eng.records(site), iri)
            b = _latest_stored(eng.records(other), iri)
            if a and b:
                ids += [a, b]
                shown.append(iri)
        if shown:
            params["barriers"] = shown
            params["interactions"] = ids
            queries.append(
                "MATCH p = (a:Site {id: $site})<-[:WITH_SITE]-(ia:Interaction)-[:CONCERNS]->(x:Barrier)"
                "<-[:CONCERNS]-(ib:Interaction)-[:WITH_SITE]->(b:Site {id: $other}) "
                "WHERE x.iri IN $barriers AND ia.id IN $interactions AND ib.id IN $interactions RETURN p"
            )
    if "network_proximity" in parts:
        reasons.append(RelatedReason(kind="network_proximity", weight=parts["network_proximity"], items=[]))
        queries.append(
            "MATCH p = shortestPath((a:Site {id: $site})-[:WORKS_AT|PARTICIPATES_IN|INVESTIGATOR_ON*..8]-(b:Site {id: $other})) "
            "RETURN p"
        )
    reasons.sort(key=lambda r: (-r.weight, r.kind))
    cypher = "\nUNION\n".join(queries) if queries else "MATCH (a:Site {id: $site}), (b:Site {id: $other}) RETURN a, b"
    return reasons, cypher, params


def _row(m: sparse.csr_matrix, i: int) -> set[int]:
    """The column indexes of row ``i`` of a CSR matrix."""
    return set(m.indices[m.indptr[i] : m.indptr[i + 1]].tolist())


def _latest_stored(records: list[Any], iri: str) -> str | None:
    for r in reversed(records):
        m = r.mentions.get(iri)
        if m is not None and m.stored:
            return str(r.id)
    return None


def degree_ranking(source: Snapshot | GraphStore) -> list[str]:
    """Sites by degree in the site–investigator–study graph (investigators + studies), highest first, ties by id."""
    st = site_structure(source)
    deg = np.asarray(st.site_inv.sum(axis=1)).ravel() + np.asarray(st.site_study.sum(axis=1)).ravel()
    return [st.sites[k] for k in sorted(range(len(st.sites)), key=lambda k: (-deg[k], st.sites[k]))]
