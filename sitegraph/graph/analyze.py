"""``sitegraph analyze``: every centrality measure on every projection, written back as node properties.

:func:`compute` is pure (a snapshot, or the edges read from a store, in; scores and timings out);
:func:`analyze` adds the store: it reads only what the projections need straight from the store
(:func:`~sitegraph.graph.projections.read_edges`: node keys and relationship endpoint keys, no
snapshot of the whole graph), computes, and writes all scores in one :class:`GraphBatch`, so Neo4j
Browser users can sort by them::

    MATCH (s:Site) RETURN s.name, s.pagerank ORDER BY s.pagerank DESC LIMIT 20

Properties (``docs/centrality.md`` explains each): on Site, Investigator and Study, from the
site-investigator-study projection, ``pagerank``, ``degree``, ``strength``, ``betweenness`` and
``harmonic``; on Investigator also ``collab_pagerank``, ``collab_degree``, ``collab_strength``,
``collab_betweenness`` and ``collab_harmonic`` from the collaboration network. Every analysed node
also gets ``centrality_version`` (the data version the scores were computed from; the write itself
moves the store one version on) and ``centrality_at`` (UTC, ISO 8601). :func:`compare` runs the
fast path and the networkx reference side by side and checks the stated tolerances.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from functools import partial
from typing import Any

import numpy as np

from sitegraph.graph import centrality as c
from sitegraph.graph.projections import (
    COLLABORATION,
    SIS,
    NodeId,
    Projection,
    ProjectionEdges,
    investigator_collaboration,
    read_edges,
    site_investigator_study,
)
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.queries.snapshot import Snapshot

log = logging.getLogger(__name__)

Progress = Callable[[str, int, int], None]
"""Called before each step with (what, steps done, steps in all)."""

PREFIX = {SIS: "", COLLABORATION: "collab_"}
BUILDERS: dict[str, Callable[[Snapshot | ProjectionEdges], Projection]] = {
    SIS: site_investigator_study,
    COLLABORATION: investigator_collaboration,
}
MEASURES = ("pagerank", "degree", "strength", "betweenness", "harmonic")
VERSION_PROPERTY = "centrality_version"
TIME_PROPERTY = "centrality_at"

# What the fast path must match networkx to (checked by compare() and the tests).
PAGERANK_L1_TOLERANCE = 1e-6
EXACT_TOLERANCE = 1e-12  # degree, strength: the same arithmetic
SWEEP_TOLERANCE = 1e-9  # betweenness, harmonic: same pivots, summation order differs

_STEPS_PER_PROJECTION = 4  # build, pagerank, degree + strength, betweenness + harmonic


def property_names(projection: str) -> dict[str, str]:
    """Measure -> node property for one projection, e.g. ``pagerank -> collab_pagerank``."""
    return {m: PREFIX[projection] + m for m in MEASURES}


@dataclass(frozen=True)
class MeasureRun:
    """One measure (or two sharing a computation) on one projection."""

    projection: str
    measure: str
    properties: tuple[str, ...]
    nodes: int
    edges: int
    seconds: float
    method: str
    exact: bool
    pivots: int | None = None
    error_bound: float = 0.0
    bound: str = ""


@dataclass
class AnalysisReport:
    """What analyze computed, how exactly, how long it took, and what it wrote."""

    store: str
    data_version: int
    computed_at: str
    method: str
    measures: list[MeasureRun] = field(default_factory=list)
    nodes_written: int = 0
    properties_written: int = 0
    seconds: float = 0.0
    snapshot_seconds: float = 0.0  # reading the store (keys only, no snapshot since the direct read)
    write_seconds: float = 0.0  # the store's write of the batch
    batch_seconds: float = 0.0  # building the batch of properties

    def as_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["measures"] = [{**asdict(m), "properties": list(m.properties)} for m in self.measures]
        return out


@dataclass(frozen=True)
class Difference:
    """Fast path against the networkx reference for one measure on one projection."""

    projection: str
    measure: str
    property_name: str
    nodes: int
    max_abs: float
    l1: float
    tolerance: float
    tolerance_on: str  # "l1" or "max_abs"
    seconds_fast: float
    seconds_networkx: float

    @property
    def ok(self) -> bool:
        value = self.l1 if self.tolerance_on == "l1" else self.max_abs
        return value <= self.tolerance

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "ok": self.ok}


def _timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    started = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - started


def _compute_projection(
    proj: Projection,
    *,
    method: c.Method,
    samples: int | None,
    seed: int,
    step: Callable[[str], None],
) -> tuple[dict[str, c.Scores], list[MeasureRun]]:
    n, m = proj.n_nodes, proj.n_edges
    names = property_names(proj.name)
    scores: dict[str, c.Scores] = {}
    runs: list[MeasureRun] = []

    step(f"{proj.name}: pagerank")
    scores["pagerank"], secs = _timed(lambda: c.pagerank(proj, method=method))
    runs.append(
        MeasureRun(
            proj.name,
            "pagerank",
            (names["pagerank"],),
            n,
            m,
            secs,
            method,
            exact=False,
            error_bound=c.pagerank_error_bound(n),
            bound="L1 distance from the exact PageRank, at most",
        )
    )

    step(f"{proj.name}: degree, strength")
    scores["degree"], secs = _timed(lambda: c.degree(proj, method=method))
    runs.append(MeasureRun(proj.name, "degree", (names["degree"],), n, m, secs, method, exact=True))
    scores["strength"], secs = _timed(lambda: c.strength(proj, method=method))
    runs.append(MeasureRun(proj.name, "strength", (names["strength"],), n, m, secs, method, exact=True))

    pivots = c.pivots_for(proj, samples)
    step(f"{proj.name}: betweenness, harmonic ({'exact' if pivots is None else f'{pivots} pivots'})")
    (scores["betweenness"], scores["harmonic"]), secs = _timed(
        lambda: c.betweenness_and_harmonic(proj, k=pivots, seed=seed, method=method)
    )
    runs.append(
        MeasureRun(
            proj.name,
            "betweenness+harmonic",
            (names["betweenness"], names["harmonic"]),
            n,
            m,
            secs,
            method,
            exact=pivots is None,
            pivots=pivots,
            error_bound=c.error_bound(n, pivots),
            bound="" if pivots is None else f"max abs error of every node, with probability {1 - c.DELTA:g} (Hoeffding)",
        )
    )
    return scores, runs


def _in_node_order(proj: Projection, scores: c.Scores) -> list[float]:
    """The scores of ``proj``'s nodes, in its node order (the fast path's scores are already an array in it)."""
    if isinstance(scores, c.NodeScores) and scores.nodes is proj.nodes:
        return scores.tolist()
    return [scores[v] for v in proj.nodes]


def compute(
    source: Snapshot | ProjectionEdges,
    *,
    method: c.Method = "fast",
    betweenness_samples: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> tuple[dict[NodeId, dict[str, float]], list[MeasureRun]]:
    """Every measure on every projection: ``{node: {property: value}}`` and timings.

    ``source`` is a snapshot or the edges :func:`~sitegraph.graph.projections.read_edges` read from
    a store; both give the same projections. Pure: reads nothing else, writes nothing. ``betweenness_samples`` is ``k`` for
    :func:`~sitegraph.graph.centrality.pivots_for` (None chooses by graph size).
    """
    c.check_method(method)
    total = len(BUILDERS) * _STEPS_PER_PROJECTION
    done = 0

    def step(what: str) -> None:
        nonlocal done
        if progress is not None:
            progress(what, done, total)
        done += 1

    props: dict[NodeId, dict[str, float]] = {}
    runs: list[MeasureRun] = []
    for name, build in BUILDERS.items():
        step(f"{name}: projection")
        proj, secs = _timed(partial(build, source))
        runs.append(MeasureRun(name, "projection", (), proj.n_nodes, proj.n_edges, secs, "fast", exact=True))
        scores, proj_runs = _compute_projection(proj, method=method, samples=betweenness_samples, seed=seed, step=step)
        runs += proj_runs
        names = property_names(name)
        columns = list(scores)
        prop_names = [names[measure] for measure in columns]
        values = [_in_node_order(proj, scores[measure]) for measure in columns]
        del scores
        for node, *row in zip(proj.nodes, *values, strict=True):  # one pass per node, not per (node, measure)
            existing = props.get(node)
            if existing is None:
                props[node] = dict(zip(prop_names, row, strict=True))
            else:
                existing.update(zip(prop_names, row, strict=True))
    if progress is not None:
        progress("done", total, total)
    return props, runs


def analyze(
    store: GraphStore,
    *,
    method: c.Method = "fast",
    betweenness_samples: int | None = None,
    seed: int = 0,
    progress: Progress | None = None,
) -> AnalysisReport:
    """Compute every measure on the store's current data and write the scores as node properties.

    Reads only the keys the projections need (:func:`~sitegraph.graph.projections.read_edges`), so
    neither the embedded store's networkx graph nor a snapshot is built; the write-back is one
    batch of node properties.
    """
    started = time.perf_counter()
    version, edges = read_edges(store)
    read_secs = time.perf_counter() - started
    computed_at = datetime.now(UTC).isoformat(timespec="seconds")
    props, runs = compute(edges, method=method, betweenness_samples=betweenness_samples, seed=seed, progress=progress)
    del edges
    batch_started = time.perf_counter()
    batch = GraphBatch()
    written = 0
    for (label, key), values in props.items():
        row: dict[str, Any] = values
        row[VERSION_PROPERTY] = version
        row[TIME_PROPERTY] = computed_at
        written += len(row)
        batch.merge_node(label, key, row)  # numbers and strings: nothing to check, and the batch keeps the dict
    del props
    batch_secs = time.perf_counter() - batch_started
    _, write_secs = _timed(lambda: store.write(batch) if len(batch) else None)
    report = AnalysisReport(
        store=store.kind,
        data_version=version,
        computed_at=computed_at,
        method=method,
        measures=runs,
        nodes_written=batch.node_count(),
        properties_written=written,
        seconds=time.perf_counter() - started,
        snapshot_seconds=read_secs,
        write_seconds=write_secs,
        batch_seconds=batch_secs,
    )
    log.info(
        "analyze (%s) on the %s store at version %d: %d node(s), %d propert(ies) in %.2fs",
        method,
        store.kind,
        version,
        report.nodes_written,
        written,
        report.seconds,
    )
    return report


def _difference(proj: Projection, measure: str, fast: c.Scores, ref: c.Scores, secs: tuple[float, float]) -> Difference:
    a = np.array([fast[v] for v in proj.nodes], dtype=np.float64)
    b = np.array([ref[v] for v in proj.nodes], dtype=np.float64)
    diff = np.abs(a - b)
    if measure == "pagerank":
        tol, on = PAGERANK_L1_TOLERANCE, "l1"
    elif measure in ("degree", "strength"):
        tol, on = EXACT_TOLERANCE, "max_abs"
    else:
        tol, on = SWEEP_TOLERANCE, "max_abs"
    return Difference(
        proj.name,
        measure,
        property_names(proj.name)[measure],
        proj.n_nodes,
        float(diff.max()) if diff.size else 0.0,
        float(diff.sum()),
        tol,
        on,
        secs[0],
        secs[1],
    )


def _pagerank_only(proj: Projection, method: c.Method) -> tuple[c.Scores, ...]:
    return (c.pagerank(proj, method=method),)


def _degree_and_strength(proj: Projection, method: c.Method) -> tuple[c.Scores, ...]:
    return c.degree(proj, method=method), c.strength(proj, method=method)


def _sweep_measures(proj: Projection, pivots: int | None, seed: int, method: c.Method) -> tuple[c.Scores, ...]:
    return c.betweenness_and_harmonic(proj, k=pivots, seed=seed, method=method)


def compare(
    source: Snapshot | ProjectionEdges, *, betweenness_samples: int | None = None, seed: int = 0, progress: Progress | None = None
) -> list[Difference]:
    """Run the fast path and the networkx reference on each projection of ``source``; writes nothing."""
    total = len(BUILDERS) * _STEPS_PER_PROJECTION
    done = 0
    out: list[Difference] = []
    for name, build in BUILDERS.items():
        if progress is not None:
            progress(f"{name}: projection", done, total)
        proj = build(source)
        done += 1
        pivots = c.pivots_for(proj, betweenness_samples)
        steps: list[tuple[str, tuple[str, ...], Callable[[c.Method], tuple[c.Scores, ...]]]] = [
            ("pagerank", ("pagerank",), partial(_pagerank_only, proj)),
            ("degree, strength", ("degree", "strength"), partial(_degree_and_strength, proj)),
            ("betweenness, harmonic", ("betweenness", "harmonic"), partial(_sweep_measures, proj, pivots, seed)),
        ]
        for label, measures, job in steps:
            if progress is not None:
                progress(f"{name}: {label} (fast and networkx)", done, total)
            fast, t_fast = _timed(partial(job, "fast"))
            ref, t_ref = _timed(partial(job, "networkx"))
            done += 1
            for measure, f_scores, r_scores in zip(measures, fast, ref, strict=True):
                out.append(_difference(proj, measure, f_scores, r_scores, (t_fast, t_ref)))
    if progress is not None:
        progress("done", total, total)
    return out
