"""Centrality measures over a :class:`~sitegraph.graph.projections.Projection`: pure functions, no I/O.

Each measure returns ``{node id: score}`` and takes ``method="fast"`` (vectorised numpy/scipy
kernels on the projection's sparse matrix) or ``method="networkx"`` (the reference: networkx on
:meth:`Projection.to_networkx`). The fast path computes the same quantity the same way, so the two
agree to rounding; ``docs/centrality.md`` states the tolerances and tests check them.

* :func:`pagerank` - networkx's power iteration (same start vector, same dangling-node rule, same
  stopping test), on the symmetric matrix without building the transition matrix.
* :func:`degree` - ``nx.degree_centrality``; :func:`strength` - weighted degree.
* :func:`betweenness` and :func:`harmonic` - shortest paths by hop count (edge weights are tie
  strengths, not distances). Exact when the graph is small (:func:`pivots_for`), otherwise estimated
  from ``k`` random source pivots drawn exactly as networkx draws them (Brandes & Pich 2007), with
  the Hoeffding bound of :func:`error_bound`. Both come from one breadth-first sweep per pivot,
  batched over pivots, in :func:`betweenness_and_harmonic`.

A projection with a ``factor`` (the collaboration network, ``A = B B^T - diag``) is multiplied
through ``B``, which for a network made of study cliques is tens of times less work.
"""

from __future__ import annotations

import itertools
import math
import os
import random
import threading
from collections.abc import Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from functools import cached_property
from typing import Literal

import networkx as nx
import numpy as np
import numpy.typing as npt
import scipy.sparse as sp

from sitegraph.errors import NotFoundError, SitegraphError, UsageError
from sitegraph.graph.projections import NodeId, Projection

Method = Literal["fast", "networkx"]
Scores = Mapping[NodeId, float]
FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

METHODS: tuple[Method, ...] = ("fast", "networkx")

# Betweenness and harmonic closeness are exact up to this many nodes, if the work (one sweep of
# 2m + n entries per source) also stays under EXACT_WORK; beyond it they are sampled.
EXACT_MAX_NODES = 5_000
EXACT_WORK = 1_000_000_000
# Default pivots when sampling: about PIVOT_WORK units of (2m + n) in all, within these limits.
PIVOT_WORK = 150_000_000
MIN_PIVOTS = 32
MAX_PIVOTS = 1_000
# Confidence of the stated error bound: it holds for every node at once with probability 1 - DELTA.
DELTA = 0.01

# Sources swept together: at most this many (source, node) cells, and at most _MAX_BATCH sources.
_BATCH_CELLS = 1_000_000
_MAX_BATCH = 32
# A BFS level switches from the sparse frontier product to the dense one when its adjacency rows
# exceed 1/_DENSE_RATIO of the matrix per source (measured: the dense product costs ~1/7 per entry).
_DENSE_RATIO = 6


class UnknownNodeError(NotFoundError, KeyError):
    """A node named in an argument is not in the projection."""

    def __str__(self) -> str:
        return str(self.args[0]) if self.args else "unknown node"


class CentralityParameterError(UsageError, ValueError):
    """An argument of a centrality function is out of range."""


class ConvergenceError(SitegraphError):
    """An iterative method did not converge within its iteration limit."""


# --- helpers -------------------------------------------------------------------------------------
def check_method(method: str) -> Method:
    """``method`` as a :data:`Method`; :class:`CentralityParameterError` if it is not one."""
    if method not in METHODS:
        raise CentralityParameterError(f"method must be one of {', '.join(METHODS)}, not {method!r}")
    return method


class NodeScores(Mapping[NodeId, float]):
    """``{node id: score}`` over a projection's nodes, read-only, held as one array in node order.

    What the fast path returns: a mapping like networkx's dict (same keys in the same order, the
    same Python floats, equal to the dict), without building a dict of one entry per node - for
    210,000 nodes that alone cost about a third of a PageRank. A lookup goes through the
    projection's node index; :meth:`tolist` gives every score in node order (what ``analyze``
    writes); ``dict(scores)`` builds the plain dict.
    """

    __slots__ = ("_floats", "_index", "_nodes", "_values")

    def __init__(self, p: Projection, values: FloatArray) -> None:
        if values.shape != (p.n_nodes,):
            raise ValueError(f"{values.shape[0]} scores for {p.n_nodes} nodes")
        self._nodes = p.nodes
        self._index = p.index
        self._values = values
        self._values.flags.writeable = False
        self._floats: list[float] | None = None

    @property
    def nodes(self) -> list[NodeId]:
        """The projection's nodes: the keys, in order."""
        return self._nodes

    @property
    def array(self) -> FloatArray:
        """Every score in node order (read-only)."""
        return self._values

    def as_dict(self) -> dict[NodeId, float]:
        """The same scores as a plain dict (what ``dict(scores)`` gives, built faster)."""
        return dict(zip(self._nodes, self._list(), strict=True))

    def tolist(self) -> list[float]:
        """Every score in node order, as Python floats (a new list)."""
        return list(self._list())

    def _list(self) -> list[float]:
        if self._floats is None:
            self._floats = self._values.tolist()
        return self._floats

    def __getitem__(self, node: NodeId) -> float:
        return self._list()[self._index[node]]

    def __contains__(self, node: object) -> bool:
        return node in self._index

    def __iter__(self) -> Iterator[NodeId]:
        return iter(self._nodes)

    def __len__(self) -> int:
        return len(self._nodes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, NodeScores) and other._nodes == self._nodes:
            return bool(np.array_equal(self._values, other._values))
        if isinstance(other, Mapping):
            pairs = zip(self._nodes, self._list(), strict=True)
            return len(other) == len(self) and all(k in other and other[k] == v for k, v in pairs)
        return NotImplemented

    __hash__ = None  # type: ignore[assignment]  # mutable-looking mapping semantics, like dict

    def __repr__(self) -> str:
        head = ", ".join(f"{k!r}: {v!r}" for k, v in itertools.islice(zip(self._nodes, self._list(), strict=True), 3))
        return f"NodeScores({{{head}{', ...' if len(self) > 3 else ''}}}, {len(self)} nodes)"


def _scores(p: Projection, values: FloatArray) -> NodeScores:
    return NodeScores(p, values)


def _personalization_vector(p: Projection, personalization: Mapping[NodeId, float]) -> FloatArray:
    vec = np.zeros(p.n_nodes, dtype=np.float64)
    for node, value in personalization.items():
        i = p.index.get(node)
        if i is None:
            raise UnknownNodeError(f"personalization names {node!r}, which is not in the {p.name} projection")
        v = float(value)
        if not math.isfinite(v) or v < 0:
            raise CentralityParameterError(f"personalization of {node!r} must be a finite non-negative number, not {value!r}")
        vec[i] = v
    total = vec.sum()
    if total <= 0:
        raise CentralityParameterError("personalization must give a positive weight to at least one node")
    return vec / total


# scipy's C kernel for ``y += A @ x`` on CSR arrays (what ``A @ x`` calls after allocating ``y``);
# it releases the GIL, so row blocks can run on several threads. Private to scipy: if a release
# drops it, the public product is used instead.
try:
    from scipy.sparse._sparsetools import csr_matvec as _csr_matvec
except ImportError:  # pragma: no cover - depends on the scipy release
    _csr_matvec = None

# Products with at least this many non-zeros are split in row blocks over the machine's cores; None:
# never. Off by default: on the shared 2-core benchmark machine (load 3) the split was no faster at
# 780,000 non-zeros (0.195 s against 0.181 s per PageRank), as the other core is rarely free.
PARALLEL_MIN_NNZ: int | None = None
_pool: ThreadPoolExecutor | None = None
_pool_lock = threading.Lock()


def _workers() -> int:
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        return os.cpu_count() or 1


def _thread_pool() -> ThreadPoolExecutor:
    global _pool
    with _pool_lock:
        if _pool is None:
            _pool = ThreadPoolExecutor(max_workers=max(1, _workers() - 1), thread_name_prefix="sitegraph-matvec")
        return _pool


def _row_blocks(m: sp.csr_matrix, parts: int) -> list[tuple[int, int]]:
    """``parts`` row ranges of ``m`` holding about the same number of non-zeros each."""
    bounds = np.searchsorted(m.indptr, np.linspace(0, m.nnz, parts + 1)[1:-1]).tolist()
    edges = [0, *bounds, m.shape[0]]
    return [(a, b) for a, b in itertools.pairwise(edges) if b > a]


def _csr_matvec_add(m: sp.csr_matrix, x: FloatArray, out: FloatArray) -> None:
    """``out += m @ x`` without allocating: scipy's kernel, on row blocks in parallel when large.

    Each row is summed by one thread in the same order as the serial kernel, so the result does not
    depend on the number of threads.
    """
    if _csr_matvec is None or m.indices.dtype != m.indptr.dtype:
        out += m @ x
        return
    rows, cols = m.shape
    parts = _workers() if PARALLEL_MIN_NNZ is not None and m.nnz >= PARALLEL_MIN_NNZ else 1
    if parts <= 1:
        _csr_matvec(rows, cols, m.indptr, m.indices, m.data, x, out)
        return
    blocks = _row_blocks(m, parts)
    futures = [
        _thread_pool().submit(_csr_matvec, b - a, cols, m.indptr[a : b + 1], m.indices, m.data, x, out[a:b])
        for a, b in blocks[1:]
    ]
    a, b = blocks[0]
    _csr_matvec(b - a, cols, m.indptr[a : b + 1], m.indices, m.data, x, out[a:b])
    for f in futures:
        f.result()


class _Adjacency:
    """Products with a projection's adjacency ``A`` (weighted) and with its 0/1 pattern ``P``.

    With a factor ``B`` (``A = B B^T - diag``), dense products go through ``B``:
    ``A x = B (B^T x) - d x`` and ``P X = A X - E X``, where ``d`` is the diagonal of ``B B^T`` and
    ``E = A - P`` holds the excess weight of pairs that share more than one study (few). The
    pattern and the excess are built on first use (PageRank needs neither).
    """

    def __init__(self, p: Projection) -> None:
        self.n = p.adjacency.shape[0]
        self.weights = p.adjacency
        self.degree = np.diff(p.adjacency.indptr)
        self.factor = p.factor
        if self.factor is not None:
            self.factor_t = sp.csr_matrix(self.factor.T)
            self.self_weight = np.asarray(self.factor.sum(axis=1), dtype=np.float64).ravel()

    @cached_property
    def pattern(self) -> sp.csr_matrix:
        a = self.weights
        return sp.csr_matrix((np.ones_like(a.data), a.indices, a.indptr), shape=a.shape)

    @cached_property
    def excess(self) -> sp.csr_matrix:
        excess = sp.csr_matrix(self.weights, copy=True)  # a copy: eliminate_zeros() compacts in place
        excess.data -= 1.0
        excess.eliminate_zeros()
        return excess

    @cached_property
    def dense_cost(self) -> int:
        """Work of one dense product per column, in matrix entries."""
        if self.factor is None:
            return max(int(self.weights.nnz), 1)
        return max(2 * int(self.factor.nnz) + int(self.excess.nnz) + self.n, 1)

    def strength(self) -> FloatArray:
        """Row sums of ``A``."""
        if self.factor is None:
            return np.asarray(self.weights.sum(axis=1), dtype=np.float64).ravel()
        return self.weighted_dot(np.ones(self.n, dtype=np.float64))

    def weighted_dot(self, x: FloatArray) -> FloatArray:
        """``A @ x``."""
        if self.factor is None:
            return np.asarray(self.weights @ x, dtype=np.float64)
        return np.asarray(self.factor @ (self.factor_t @ x) - self.self_weight * x, dtype=np.float64)

    def weighted_dot_add(self, x: FloatArray, out: FloatArray) -> None:
        """``out += A @ x``, in place."""
        if self.factor is None:
            _csr_matvec_add(self.weights, x, out)
        else:
            out += self.weighted_dot(x)

    def pattern_dot_add(self, x: FloatArray, out: FloatArray) -> None:
        """``out += P @ x``, in place (``x`` a vector)."""
        if self.factor is None:
            _csr_matvec_add(self.pattern, x, out)
        else:
            out += self.pattern_dot(x)

    def pattern_dot(self, x: FloatArray) -> FloatArray:
        """``P @ x`` for a vector or an (n, b) block."""
        if self.factor is None:
            return np.asarray(self.pattern @ x, dtype=np.float64)
        d = self.self_weight if x.ndim == 1 else self.self_weight[:, None]
        return np.asarray(self.factor @ (self.factor_t @ x) - d * x - self.excess @ x, dtype=np.float64)


# --- PageRank ------------------------------------------------------------------------------------
PAGERANK_ALPHA = 0.85
PAGERANK_TOL = 1e-10


def pagerank_error_bound(n: int, alpha: float = PAGERANK_ALPHA, tol: float = PAGERANK_TOL) -> float:
    """L1 distance from the exact PageRank vector at most, when the iteration stops (``n * tol`` test).

    The update is an L1 contraction by ``alpha``, so ``|x_k - x*| <= alpha / (1 - alpha) |x_k - x_(k-1)|``.

    >>> f"{pagerank_error_bound(1_000):.3g}"
    '5.67e-07'
    """
    return alpha / (1 - alpha) * n * tol


def pagerank(
    p: Projection,
    *,
    alpha: float = PAGERANK_ALPHA,
    tol: float = PAGERANK_TOL,
    max_iter: int = 1000,
    personalization: Mapping[NodeId, float] | None = None,
    weighted: bool = True,
    method: Method = "fast",
) -> Scores:
    """PageRank of every node, summing to 1; networkx's ``nx.pagerank`` is the reference.

    Iteration stops when the L1 change of the vector falls below ``n * tol`` (networkx's test), so
    the result is within ``alpha / (1 - alpha) * n * tol`` (L1) of the exact PageRank. Dangling
    (isolated) nodes hand their rank out like the teleport, by ``personalization`` (uniform if
    None), as networkx does. Nodes missing from ``personalization`` get 0; a node not in the
    projection raises :class:`UnknownNodeError`.
    """
    check_method(method)
    if not 0 < alpha < 1:
        raise CentralityParameterError(f"alpha must be in (0, 1), not {alpha}")
    pvec = _personalization_vector(p, personalization) if personalization is not None else None
    n = p.n_nodes
    if n == 0:
        return {}
    if method == "networkx":
        g = p.to_networkx()
        try:
            return nx.pagerank(
                g,
                alpha=alpha,
                personalization=dict(personalization) if personalization is not None else None,
                max_iter=max_iter,
                tol=tol,
                weight="weight" if weighted else None,
            )
        except nx.PowerIterationFailedConvergence as e:
            raise ConvergenceError(f"PageRank on {p.name} did not converge in {max_iter} iterations") from e
    return _scores(
        p, _pagerank_vector(_Adjacency(p), alpha=alpha, tol=tol, max_iter=max_iter, pvec=pvec, weighted=weighted, name=p.name)
    )


# PageRank on at least this many nodes iterates on a copy of the matrix with rows and columns in order
# of decreasing degree: the entries of ``x`` that most rows read are then close together, which made
# the product 1.5-1.9x faster on the store's site-investigator-study projection at large scale (210,000
# nodes, 780,000 entries: 1.9-2.2 ms against 3.1-3.9 ms); the reordering costs about one product's
# worth of gathers per entry (~30 ms there), so it pays from a few steps on.
REORDER_MIN_NODES = 50_000


def _degree_order(m: sp.csr_matrix) -> tuple[sp.csr_matrix, IntArray]:
    """``m`` (square) with rows and columns permuted to decreasing row length, and the order used.

    Row ``r`` of the result is row ``order[r]`` of ``m`` with its entries in the same order (column
    numbers renamed), so each row of a product is summed exactly as before.
    """
    n = m.shape[0]
    lengths = np.diff(m.indptr)
    key = np.minimum(lengths, np.iinfo(np.int16).max).astype(np.int16)
    np.negative(key, out=key)
    order = np.argsort(key, kind="stable").astype(m.indices.dtype, copy=False)  # radix sort on int16
    rename = np.empty(n, dtype=m.indices.dtype)
    rename[order] = np.arange(n, dtype=m.indices.dtype)
    new_lengths = lengths[order]
    indptr = np.empty(n + 1, dtype=m.indptr.dtype)
    indptr[0] = 0
    np.cumsum(new_lengths, out=indptr[1:])
    pos = np.repeat(m.indptr[:-1][order] - indptr[:-1], new_lengths)
    pos += np.arange(m.nnz, dtype=pos.dtype)
    out = sp.csr_matrix((m.data[pos], rename[m.indices[pos]], indptr), shape=m.shape)
    return out, order.astype(np.int64)


def _pagerank_vector(
    adj: _Adjacency, *, alpha: float, tol: float, max_iter: int, pvec: FloatArray | None, weighted: bool, name: str
) -> FloatArray:
    """The power iteration ``x <- alpha (M^T x + dangling(x) p) + (1 - alpha) p``, networkx's.

    With ``M = D^-1 A`` and ``A`` symmetric, ``M^T x = A (x / d)``: one symmetric sparse
    matrix-vector product per step and no transition matrix to build. ``alpha / d`` is folded into
    one vector, the product accumulates into the buffer that already holds the teleport term, and
    every step reuses the same four buffers (no allocation per step). Same start vector, same
    dangling-node rule and same stopping test as networkx, so the same number of steps. A large
    matrix (without a factor) is iterated in order of decreasing degree (:data:`REORDER_MIN_NODES`);
    each row is summed in the same order, so the values are the same.
    """
    n = adj.n
    order: IntArray | None = None
    if adj.factor is None and n >= REORDER_MIN_NODES:
        matrix, order = _degree_order(adj.weights if weighted else adj.pattern)
        # Row sums of the reordered matrix: each row summed in its own order, as adj.strength() does.
        out_weight = np.zeros(n, dtype=np.float64)
        _csr_matvec_add(matrix, np.ones(n, dtype=np.float64), out_weight)
        if pvec is not None:
            pvec = pvec[order]

        def add_dot(x: FloatArray, out: FloatArray) -> None:
            _csr_matvec_add(matrix, x, out)

    else:
        out_weight = adj.strength() if weighted else adj.degree.astype(np.float64)
        add_dot = adj.weighted_dot_add if weighted else adj.pattern_dot_add
    step = np.zeros(n, dtype=np.float64)  # alpha / out-weight, 0 for dangling nodes
    nonzero = out_weight != 0
    np.divide(alpha, out_weight, out=step, where=nonzero)
    dangling = np.flatnonzero(~nonzero)
    x = np.full(n, 1.0 / n)
    nxt = np.empty(n, dtype=np.float64)
    scaled = np.empty(n, dtype=np.float64)
    diff = np.empty(n, dtype=np.float64)
    limit = n * tol
    for _ in range(max_iter):
        np.multiply(x, step, out=scaled)
        lost = float(x[dangling].sum()) if dangling.size else 0.0
        base = alpha * lost + (1.0 - alpha)
        if pvec is None:
            nxt.fill(base / n)
        else:
            np.multiply(pvec, base, out=nxt)
        add_dot(scaled, nxt)
        np.subtract(nxt, x, out=diff)
        np.abs(diff, out=diff)
        err = float(diff.sum())
        x, nxt = nxt, x
        if err < limit:
            if order is None:
                return x
            back = np.empty(n, dtype=np.float64)
            back[order] = x
            return back
    raise ConvergenceError(f"PageRank on {name} did not converge in {max_iter} iterations")


def pagerank_scipy_baseline(p: Projection, *, alpha: float = 0.85, tol: float = 1e-10, max_iter: int = 1000) -> Scores:
    """The plain sparse-matrix power iteration: networkx's ``_pagerank_scipy`` minus its graph conversion.

    It builds the row-stochastic matrix ``Q @ A`` and iterates ``x @ M`` as networkx does, starting
    from the projection's matrix instead of a networkx graph. The lower bound PageRank is timed
    against in ``benchmarks/bench_centrality.py``.
    """
    n = p.n_nodes
    if n == 0:
        return {}
    a = sp.csr_array(p.adjacency)
    s = np.asarray(a.sum(axis=1), dtype=np.float64)
    s[s != 0] = 1.0 / s[s != 0]
    q = sp.dia_array((s.reshape(1, -1), np.array([0])), shape=a.shape).tocsr()
    m = q @ a
    x = np.repeat(1.0 / n, n)
    pv = np.repeat(1.0 / n, n)
    is_dangling = np.where(s == 0)[0]
    for _ in range(max_iter):
        xlast = x
        x = alpha * (x @ m + x[is_dangling].sum() * pv) + (1 - alpha) * pv
        if np.absolute(x - xlast).sum() < n * tol:
            return _scores(p, np.asarray(x, dtype=np.float64))
    raise ConvergenceError(f"PageRank on {p.name} did not converge in {max_iter} iterations")


# --- degree ----------------------------------------------------------------------------------------
def degree(p: Projection, *, method: Method = "fast") -> Scores:
    """Neighbours / (n - 1), as ``nx.degree_centrality`` (1.0 for a one-node graph)."""
    check_method(method)
    if method == "networkx":
        return nx.degree_centrality(p.to_networkx())
    n = p.n_nodes
    if n <= 1:
        return dict.fromkeys(p.nodes, 1.0)
    counts = np.diff(p.adjacency.indptr).astype(np.float64)
    return _scores(p, counts * (1.0 / (n - 1.0)))


def strength(p: Projection, *, method: Method = "fast") -> Scores:
    """Weighted degree: the sum of edge weights at each node (``G.degree(weight="weight")``)."""
    check_method(method)
    if method == "networkx":
        return {v: float(d) for v, d in p.to_networkx().degree(weight="weight")}
    return _scores(p, np.asarray(p.adjacency.sum(axis=1), dtype=np.float64).ravel())


# --- betweenness and harmonic closeness --------------------------------------------------------------
def pivots_for(p: Projection, k: int | None = None) -> int | None:
    """How many source pivots a shortest-path measure uses on ``p``: None means exact (every node).

    ``k=None`` chooses: exact when ``n <= EXACT_MAX_NODES`` and ``n * (2m + n) <= EXACT_WORK``,
    else ``PIVOT_WORK / (2m + n)`` pivots clamped to ``[MIN_PIVOTS, MAX_PIVOTS]``. An explicit ``k``
    is used as given (``k >= n`` is exact).
    """
    n = p.n_nodes
    if k is not None:
        if k < 2:
            raise CentralityParameterError(f"k (pivots) must be at least 2, not {k}")
        return None if k >= n else k
    work = 2 * p.n_edges + n
    if n <= EXACT_MAX_NODES and n * work <= EXACT_WORK:
        return None
    chosen = max(MIN_PIVOTS, min(MAX_PIVOTS, PIVOT_WORK // max(work, 1)))
    return None if chosen >= n else int(chosen)


def error_bound(n: int, k: int | None, delta: float = DELTA) -> float:
    """Largest error of a sampled normalised betweenness or harmonic score, with probability 1 - delta.

    Each estimate is a mean of ``k - 1`` or more values in [0, 1] drawn without replacement
    (per-pivot dependency / (n - 2), or reciprocal distance), whose expectation is the exact score;
    Hoeffding's inequality and a union bound over the n nodes give
    ``P(any |error| >= eps) <= 2 n exp(-2 (k - 1) eps^2) = delta``. 0 when exact.

    >>> round(error_bound(210_000, 50), 3)
    0.423
    """
    if k is None or k >= n:
        return 0.0
    return math.sqrt(math.log(2 * n / delta) / (2 * (k - 1)))


def sample_pivots(p: Projection, k: int, seed: int = 0) -> list[NodeId]:
    """The ``k`` pivots networkx draws for ``seed``: ``random.Random(seed).sample(list(G), k)``."""
    return random.Random(seed).sample(p.nodes, k)


def betweenness_and_harmonic(
    p: Projection, *, k: int | None = None, seed: int = 0, method: Method = "fast"
) -> tuple[Scores, Scores]:
    """Normalised betweenness and harmonic closeness from one set of shortest-path sweeps.

    Betweenness is networkx's (``normalized=True``, endpoints excluded, its sampled rescaling).
    Harmonic closeness is ``sum(1 / d(u, v)) / (n - 1)`` over the other nodes (networkx's
    ``harmonic_centrality`` divided by ``n - 1``, so it lies in [0, 1]); sampled, it is the mean of
    ``1 / d(u, v)`` over the pivots ``u != v``. ``k`` as in :func:`pivots_for`.
    """
    check_method(method)
    n = p.n_nodes
    pivots = pivots_for(p, k)
    if n == 0:
        return {}, {}
    sources = sample_pivots(p, pivots, seed) if pivots is not None else None
    if method == "networkx":
        g = p.to_networkx()
        btw = nx.betweenness_centrality(g, k=pivots, seed=seed, normalized=True)
        harm_raw = nx.harmonic_centrality(g, sources=sources)
        raw = np.array([harm_raw[v] for v in p.nodes], dtype=np.float64)
        return {v: float(btw[v]) for v in p.nodes}, _scores(p, _rescale_harmonic(raw, n, p, sources))
    src_idx = np.arange(n, dtype=np.int64) if sources is None else np.array([p.index[v] for v in sources], dtype=np.int64)
    dep, harm = _sweep(_Adjacency(p), src_idx)
    return _scores(p, _rescale_betweenness(dep, n, src_idx if sources is not None else None)), _scores(
        p, _rescale_harmonic(harm, n, p, sources)
    )


def betweenness(p: Projection, *, k: int | None = None, seed: int = 0, method: Method = "fast") -> Scores:
    """Normalised betweenness (networkx's definition); exact or from ``k`` pivots, see :func:`pivots_for`."""
    return betweenness_and_harmonic(p, k=k, seed=seed, method=method)[0]


def harmonic(p: Projection, *, k: int | None = None, seed: int = 0, method: Method = "fast") -> Scores:
    """Normalised harmonic closeness in [0, 1]; exact or from ``k`` pivots, see :func:`pivots_for`."""
    return betweenness_and_harmonic(p, k=k, seed=seed, method=method)[1]


def _rescale_betweenness(dep: FloatArray, n: int, sources: IntArray | None) -> FloatArray:
    """networkx 3.6 ``_rescale`` for normalised, undirected, endpoints excluded."""
    big_n = n - 1
    if big_n < 2:
        return dep
    if sources is None:
        return dep * (1.0 / (big_n * (big_n - 1)))
    k = sources.size
    out = dep * (1.0 / (k * (big_n - 1)))
    out[sources] = dep[sources] * (1.0 / ((k - 1) * (big_n - 1)) if k > 1 else math.nan)
    return out


def _rescale_harmonic(raw: FloatArray, n: int, p: Projection, sources: list[NodeId] | None) -> FloatArray:
    if n < 2:
        return np.zeros_like(raw)
    if sources is None:
        return raw / (n - 1)
    k = len(sources)
    out = raw / k
    idx = np.array([p.index[v] for v in sources], dtype=np.int64)
    out[idx] = raw[idx] / (k - 1)
    return out


def _sweep(adj: _Adjacency, sources: IntArray) -> tuple[FloatArray, FloatArray]:
    """Brandes' dependency sums and reciprocal-distance sums from ``sources`` (unweighted BFS).

    Several sources are swept together: their (source, node) states live in flat arrays of
    ``batch * n`` cells, and each BFS level - forward (path counts) and backward (dependencies) - is
    one product of the frontier with the adjacency pattern in scipy's C code (:func:`_spread`) plus
    a few vectorised filters. Returns ``sum_s delta_s(v)`` and ``sum_s 1 / d(s, v)`` (both over
    sources ``s != v``).
    """
    n = adj.n
    dep = np.zeros(n, dtype=np.float64)
    harm = np.zeros(n, dtype=np.float64)
    batch = max(1, min(_MAX_BATCH, _BATCH_CELLS // max(n, 1)))
    for start in range(0, sources.size, batch):
        _sweep_batch(adj, sources[start : start + batch], dep, harm)
    return dep, harm


def _spread(adj: _Adjacency, b: int, cells: IntArray, values: FloatArray) -> tuple[IntArray, FloatArray]:
    """For each (source, node) cell, sum ``values`` over its neighbours among ``cells``.

    ``cells`` are flat indices ``source slot * n + node``, grouped by slot; so is the result: the
    cells with a neighbour among ``cells``, and the sums. A small frontier is pushed through
    ``F @ P`` (sparse, work ~ its adjacency rows); a large one through ``P @ X`` with ``X`` dense
    (n x b), which streams the whole matrix (or its factor) but costs several times less per entry.
    """
    n = adj.n
    slot = cells // n
    node = cells - slot * n
    touched = int(adj.degree[node].sum())
    if touched * _DENSE_RATIO > b * adj.dense_cost:
        dense = np.zeros((n, b), dtype=np.float64)
        dense[node, slot] = values
        # Back to the cells' (slot, node) layout, contiguous: its flat non-zero positions are the cells.
        summed = np.ascontiguousarray(adj.pattern_dot(dense).T).ravel()
        reached = np.flatnonzero(summed)
        return reached, summed[reached]
    indptr = np.zeros(b + 1, dtype=np.int64)
    np.cumsum(np.bincount(slot, minlength=b), out=indptr[1:])
    frontier = sp.csr_matrix((values, node, indptr), shape=(b, n))
    reached = sp.csr_matrix(frontier @ adj.pattern)
    rows = np.repeat(np.arange(b, dtype=np.int64), np.diff(reached.indptr))
    return rows * n + reached.indices, reached.data


def _sweep_batch(adj: _Adjacency, sources: IntArray, dep: FloatArray, harm: FloatArray) -> None:
    n, b = adj.n, sources.size
    flat_sources = np.arange(b, dtype=np.int64) * n + sources
    dist = np.full(b * n, -1, dtype=np.int32)
    sigma = np.zeros(b * n, dtype=np.float64)
    dist[flat_sources] = 0
    sigma[flat_sources] = 1.0
    levels = [flat_sources]
    # Forward: shortest-path counts, level by level. They are integers, so the factored product
    # is exact and a cell is reached exactly when its sum is non-zero.
    while True:
        cells, counts = _spread(adj, b, levels[-1], sigma[levels[-1]])
        fresh = dist[cells] < 0
        new = cells[fresh]
        if new.size == 0:
            break
        dist[new] = len(levels)
        sigma[new] = counts[fresh]
        levels.append(new)
    # Backward: dependencies, deepest level first; reciprocal distances on the way.
    delta = np.zeros(b * n, dtype=np.float64)
    for depth in range(len(levels) - 1, 0, -1):
        level = levels[depth]
        cells, sums = _spread(adj, b, level, (1.0 + delta[level]) / sigma[level])
        parent = dist[cells] == depth - 1
        target = cells[parent]
        delta[target] += sigma[target] * sums[parent]
        harm += np.bincount(level % n, minlength=n) * (1.0 / depth)
    delta[flat_sources] = 0.0
    dep += delta.reshape(b, n).sum(axis=0)
