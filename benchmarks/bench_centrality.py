"""Centrality benchmark: the fast path against networkx and a plain sparse power iteration.

:func:`run_on_store` measures on a loaded store's own projections (what ``sitegraph analyze``
computes on that data: the benchmark suite's ``analyze-baseline`` step). :func:`run` builds a
synthetic site-investigator-study network straight into arrays (``from_edges``), shaped like a
sponsor's network: each investigator works at 1-3 sites, each site takes part in ~10 studies
(mildly skewed study sizes), one principal investigator per (site, study). Then measures, at one
scale:

* the whole analyze computation (both projections, every measure, default pivots) and its peak RSS;
* PageRank on the fast path, in networkx (on a prebuilt ``nx.Graph``: conversion not counted) and
  as the plain sparse-matrix power iteration (the lower bound), with the L1 difference;
* degree, strength, betweenness and harmonic closeness, fast against networkx on the same pivots;
* optionally (``--store``) the real ``analyze`` through the embedded store: the read of the keys,
  projections, measures, and the write-back of every property.

``run(scale)`` returns measurements shaped ``{"name", "scale", "value", "unit", "baseline",
"baseline_value", "ratio"}``; ``python -m benchmarks.bench_centrality --scale small`` prints them
as JSON.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import resource
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import networkx as nx
import numpy as np

from sitegraph.graph import centrality as c
from sitegraph.graph.projections import (
    NodeId,
    Projection,
    collaboration_from_incidence,
    from_edges,
    investigator_collaboration,
    read_edges,
    site_investigator_study,
)
from sitegraph.graph.store import GraphStore

log = logging.getLogger(__name__)

SCALES: dict[str, tuple[int, int, int]] = {
    # sites, investigators, studies
    "small": (2_000, 6_000, 400),
    "medium": (10_000, 30_000, 2_000),
    "large": (50_000, 150_000, 10_000),
}
STUDIES_PER_SITE = 10
# networkx reference runs only where it fits in time and memory (about 1 KB per edge).
NX_MAX_EDGES = 3_000_000
# pivots used to time networkx betweenness against the fast path (per pivot) at every scale.
CHECK_PIVOTS = 4

Measurement = dict[str, Any]


@dataclass
class Network:
    """The synthetic network as index arrays (rows into ``nodes``)."""

    nodes: list[NodeId]
    investigators: list[NodeId]
    n_studies: int
    src: np.ndarray
    dst: np.ndarray
    on_inv: np.ndarray  # INVESTIGATOR_ON: investigator row (0-based among investigators)
    on_study: np.ndarray  # INVESTIGATOR_ON: study column (0-based among studies)
    on_site: np.ndarray  # INVESTIGATOR_ON: the site it is at (identity)
    works: tuple[np.ndarray, np.ndarray]  # (investigator, site)
    participates: tuple[np.ndarray, np.ndarray]  # (site, study)


def synthetic_network(n_sites: int, n_inv: int, n_studies: int, seed: int = 0) -> Network:
    """A seeded network of the stated shape, without per-edge Python objects."""
    rng = np.random.default_rng(seed)
    # WORKS_AT: 1-3 sites per investigator (60/30/10 %), distinct pairs.
    k_sites = rng.choice(np.array([1, 2, 3]), size=n_inv, p=[0.6, 0.3, 0.1])
    w_inv = np.repeat(np.arange(n_inv), k_sites)
    w_site = rng.integers(0, n_sites, size=w_inv.size)
    w_inv, w_site = _unique_pairs(w_inv, w_site, n_sites)
    # PARTICIPATES_IN: ~10 studies per site, study popularity lognormal(0, 0.5), distinct pairs.
    k_studies = np.maximum(1, rng.poisson(STUDIES_PER_SITE, size=n_sites))
    p_site = np.repeat(np.arange(n_sites), k_studies)
    popularity = rng.lognormal(0.0, 0.5, size=n_studies)
    p_study = rng.choice(n_studies, size=p_site.size, p=popularity / popularity.sum())
    p_site, p_study = _unique_pairs(p_site, p_study, n_studies)
    # INVESTIGATOR_ON: one principal investigator per (site, study), drawn among the site's investigators.
    order = np.argsort(w_site, kind="stable")
    site_inv = w_inv[order]
    ptr = np.zeros(n_sites + 1, dtype=np.int64)
    np.add.at(ptr, w_site + 1, 1)
    ptr = np.cumsum(ptr)
    count = ptr[p_site + 1] - ptr[p_site]
    staffed = count > 0
    pick = ptr[p_site[staffed]] + (rng.random(int(staffed.sum())) * count[staffed]).astype(np.int64)
    on_inv, on_study, on_site = site_inv[pick], p_study[staffed], p_site[staffed]
    # Node rows sorted by (label, key) as the projections order them: Investigator, Site, Study.
    investigators = [("Investigator", f"inv-{i:07d}") for i in range(n_inv)]
    sites = [("Site", f"site-{i:07d}") for i in range(n_sites)]
    nodes = investigators + sites + [("Study", f"NCT{i:08d}") for i in range(n_studies)]
    site0, study0 = n_inv, n_inv + n_sites
    src = np.concatenate([w_inv, p_site + site0, on_inv])
    dst = np.concatenate([w_site + site0, p_study + study0, on_study + study0])
    return Network(nodes, investigators, n_studies, src, dst, on_inv, on_study, on_site, (w_inv, w_site), (p_site, p_study))


def _unique_pairs(a: np.ndarray, b: np.ndarray, nb: int) -> tuple[np.ndarray, np.ndarray]:
    codes = np.unique(a.astype(np.int64) * nb + b)
    return codes // nb, codes % nb


def projections(net: Network) -> tuple[Projection, Projection]:
    sis = from_edges(net.nodes, net.src, net.dst, None, name="site_investigator_study")
    collab = collaboration_from_incidence(net.investigators, net.on_inv, net.on_study, net.n_studies)
    return sis, collab


def peak_rss_mib() -> float:
    """Peak resident set size of this process so far, MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


@dataclass(frozen=True)
class Timing:
    """Wall and CPU seconds of one run. A busy shared machine stretches wall time; the kernels are
    single-threaded, so on an idle machine the two agree."""

    wall: float
    cpu: float

    def __truediv__(self, k: float) -> Timing:
        return Timing(self.wall / k, self.cpu / k)

    def __add__(self, other: Timing) -> Timing:
        return Timing(self.wall + other.wall, self.cpu + other.cpu)


def _timed(fn: Callable[[], Any]) -> tuple[Any, Timing]:
    started, cpu = time.perf_counter(), time.process_time()
    out = fn()
    return out, Timing(time.perf_counter() - started, time.process_time() - cpu)


def _m(
    name: str,
    scale: str,
    value: float | Timing,
    unit: str,
    baseline: str | None = None,
    baseline_value: float | Timing | None = None,
) -> Measurement:
    """One measurement. For times, ``value`` is wall seconds, ``ratio`` is baseline / value (times
    faster), and ``cpu_value``, ``cpu_baseline_value``, ``cpu_ratio`` give the same in CPU seconds."""
    v = value.wall if isinstance(value, Timing) else float(value)
    bv = baseline_value.wall if isinstance(baseline_value, Timing) else baseline_value
    ratio = None
    if bv is not None and v:
        ratio = bv / v if unit == "s" else v / bv
    out: Measurement = {"name": name, "scale": scale, "value": v, "unit": unit}
    out.update(baseline=baseline, baseline_value=bv, ratio=ratio)
    if isinstance(value, Timing):
        out["cpu_value"] = value.cpu
        if isinstance(baseline_value, Timing):
            out["cpu_baseline_value"] = baseline_value.cpu
            out["cpu_ratio"] = baseline_value.cpu / value.cpu if value.cpu else None
    return out


def _diff(p: Projection, a: dict[NodeId, float], b: dict[NodeId, float]) -> tuple[float, float]:
    x = np.array([a[v] for v in p.nodes])
    y = np.array([b[v] for v in p.nodes])
    d = np.abs(x - y)
    return float(d.sum()), float(d.max()) if d.size else 0.0


def run(scale: str, *, seed: int = 0, with_store: bool = False) -> list[Measurement]:
    """Every measurement at one scale (see the module docstring). Ratios are 'times faster' for seconds."""
    n_sites, n_inv, n_studies = SCALES[scale]
    out: list[Measurement] = []
    net, t_gen = _timed(partial(synthetic_network, n_sites, n_inv, n_studies, seed))
    log.info("synthetic %s network in %.1fs", scale, t_gen.wall)
    (sis, collab), t_proj = _timed(partial(projections, net))
    out.append(_m("projections_build", scale, t_proj, "s"))
    out.append(_m("sis_nodes", scale, sis.n_nodes, "nodes"))
    out.append(_m("sis_edges", scale, sis.n_edges, "edges"))
    out.append(_m("collab_nodes", scale, collab.n_nodes, "nodes"))
    out.append(_m("collab_edges", scale, collab.n_edges, "edges"))

    # What `sitegraph analyze` computes: both projections, every measure, default pivots.
    total = t_proj
    for proj in (sis, collab):
        _, t = _timed(partial(_all_measures, proj))
        out.append(_m(f"{proj.name}_analyze_compute", scale, t, "s"))
        total = total + t
        k = c.pivots_for(proj)
        out.append(_m(f"{proj.name}_pivots", scale, k if k is not None else proj.n_nodes, "pivots"))
        out.append(_m(f"{proj.name}_betweenness_bound", scale, c.error_bound(proj.n_nodes, k), f"abs error (p={1 - c.DELTA:g})"))
    out.append(_m("analyze_compute_total", scale, total, "s"))
    out.append(_m("analyze_compute_peak_rss", scale, peak_rss_mib(), "MiB"))
    gc.collect()

    for proj in (sis, collab):
        out += _against_references(proj, scale, seed)
        gc.collect()
    out.append(_m("bench_peak_rss", scale, peak_rss_mib(), "MiB"))
    if with_store:
        out += run_store(net, scale)
    return out


def _all_measures(p: Projection) -> None:
    c.pagerank(p)
    c.degree(p)
    c.strength(p)
    c.betweenness_and_harmonic(p)


def run_on_store(store: GraphStore, scale: str, *, seed: int = 0) -> list[Measurement]:
    """The references on the store's own projections, read as ``analyze`` reads them (names ``store_*``).

    Each projection: its size, and PageRank, degree, betweenness and harmonic closeness against
    networkx on the same projection (PageRank also against the plain sparse power iteration, the
    lower bound). The product's own timings (every measure as ``analyze`` runs it, end to end) are
    the ``analyze`` step's, in a process of their own.
    """
    out: list[Measurement] = []
    (_, edges), t_read = _timed(partial(read_edges, store))
    out.append(_m("store_read_edges", scale, t_read, "s"))
    for build in (site_investigator_study, investigator_collaboration):
        proj, t_build = _timed(partial(build, edges))
        prefix = f"store_{proj.name}"
        out.append(_m(f"{prefix}_build", scale, t_build, "s"))
        out.append(_m(f"{prefix}_nodes", scale, proj.n_nodes, "nodes"))
        out.append(_m(f"{prefix}_edges", scale, proj.n_edges, "edges"))
        out += _against_references(proj, scale, seed, prefix=prefix)
        del proj
        gc.collect()
        out.append(_m(f"{prefix}_peak_rss_so_far", scale, peak_rss_mib(), "MiB"))
    return out


PAGERANK_RUNS = 3
"""PageRank is timed this many times on each side (fast path, scipy bound, networkx; same graph, a full
collection before each run) and the fastest run of each side is compared: one run on a shared machine
measures the load as much as the code."""


def _wall(t: Timing) -> float:
    return t.wall


def _best_of(fn: Callable[[], Any], runs: int) -> tuple[Any, list[Timing]]:
    """``fn()``'s result and the timing of each of ``runs`` runs (a full collection before each)."""
    timings: list[Timing] = []
    out: Any = None
    for _ in range(runs):
        out = None
        gc.collect()
        out, t = _timed(fn)
        timings.append(t)
    return out, timings


def _runs(m: Measurement, runs: list[Timing], baseline_runs: list[Timing]) -> Measurement:
    """``m`` (timed as the best of several runs) with every run's wall seconds, both sides."""
    m["runs"] = [round(t.wall, 4) for t in runs]
    m["baseline_runs"] = [round(t.wall, 4) for t in baseline_runs]
    return m


def _pagerank_as_dict(proj: Projection) -> dict[NodeId, float]:
    scores = c.pagerank(proj)
    return scores.as_dict() if isinstance(scores, c.NodeScores) else dict(scores)


def _against_references(proj: Projection, scale: str, seed: int, prefix: str | None = None) -> list[Measurement]:
    """PageRank against the sparse lower bound and networkx; the other measures against networkx."""
    out: list[Measurement] = []
    name = prefix or proj.name
    fast, fast_runs = _best_of(partial(c.pagerank, proj), PAGERANK_RUNS)
    base, base_runs = _best_of(partial(c.pagerank_scipy_baseline, proj), PAGERANK_RUNS)
    t_fast, t_base = min(fast_runs, key=_wall), min(base_runs, key=_wall)
    out.append(
        _runs(
            _m(f"{name}_pagerank_fast", scale, t_fast, "s", "scipy sparse power iteration (lower bound)", t_base),
            fast_runs,
            base_runs,
        )
    )
    if proj.n_edges > NX_MAX_EDGES:
        out.append(_m(f"{name}_networkx_skipped", scale, proj.n_edges, "edges", "networkx edge limit", NX_MAX_EDGES))
        return out
    g, t_conv = _timed(proj.to_networkx)
    out.append(_m(f"{name}_to_networkx", scale, t_conv, "s"))
    nx_pagerank = partial(nx.pagerank, g, tol=c.PAGERANK_TOL, max_iter=1000)

    def vs_networkx(suffix: str, baseline: str, ours: list[Timing], theirs: list[Timing]) -> Measurement:
        fastest = min(ours, key=_wall), min(theirs, key=_wall)
        return _runs(_m(f"{name}_pagerank_fast_vs_networkx{suffix}", scale, fastest[0], "s", baseline, fastest[1]), ours, theirs)

    ref, nx_runs = _best_of(nx_pagerank, PAGERANK_RUNS)
    out.append(vs_networkx("", "networkx pagerank", fast_runs, nx_runs))
    # The fast path returns its scores as a read-only mapping over an array in node order (what
    # analyze writes from); networkx returns a dict. The same comparison with ours turned into a
    # plain dict as well (one entry per node), for a reader who needs one.
    _, dict_runs = _best_of(partial(_pagerank_as_dict, proj), PAGERANK_RUNS)
    out.append(vs_networkx("_as_dict", "networkx pagerank (both return a dict)", dict_runs, nx_runs))
    # nx.pagerank allocates enough to trigger full collections, which walk every live object (its own
    # graph, and whatever else the process holds). The same comparison with every object that exists
    # before the call frozen out of the collector, on both sides: networkx's own cost, without the
    # collector's.
    gc.collect()
    gc.freeze()
    try:
        _, fast_frozen = _best_of(partial(c.pagerank, proj), PAGERANK_RUNS)
        _, nx_frozen = _best_of(nx_pagerank, PAGERANK_RUNS)
    finally:
        gc.unfreeze()
    out.append(
        vs_networkx("_gc_frozen", "networkx pagerank, existing objects frozen out of the collector", fast_frozen, nx_frozen)
    )
    out.append(_m(f"{name}_pagerank_l1_vs_networkx", scale, _diff(proj, fast, ref)[0], "L1"))
    out.append(_m(f"{name}_pagerank_baseline_l1_vs_networkx", scale, _diff(proj, base, ref)[0], "L1"))
    d_fast, t_df = _timed(partial(c.degree, proj))
    d_ref, t_dn = _timed(partial(nx.degree_centrality, g))
    out.append(_m(f"{name}_degree_fast_vs_networkx", scale, t_df, "s", "networkx degree_centrality", t_dn))
    out.append(_m(f"{name}_degree_max_abs_vs_networkx", scale, _diff(proj, d_fast, d_ref)[1], "abs"))
    # Betweenness and harmonic closeness from the same CHECK_PIVOTS pivots, per pivot.
    k = min(CHECK_PIVOTS, proj.n_nodes)
    (b_fast, h_fast), t_bf = _timed(partial(c.betweenness_and_harmonic, proj, k=k, seed=seed))
    pivots = c.sample_pivots(proj, k, seed)
    b_ref, t_bn = _timed(partial(nx.betweenness_centrality, g, k=k, seed=seed))
    h_ref, t_hn = _timed(partial(nx.harmonic_centrality, g, sources=pivots))
    out.append(_m(f"{name}_sweep_per_pivot_fast_vs_networkx", scale, t_bf / k, "s", "networkx (same pivots)", (t_bn + t_hn) / k))
    out.append(_m(f"{name}_betweenness_max_abs_vs_networkx", scale, _diff(proj, b_fast, b_ref)[1], "abs"))
    on_pivot = set(pivots)
    h_scaled = {v: h_ref[v] / (k - 1 if v in on_pivot else k) for v in proj.nodes}
    out.append(_m(f"{name}_harmonic_max_abs_vs_networkx", scale, _diff(proj, h_fast, h_scaled)[1], "abs"))
    return out


def run_store(net: Network, scale: str) -> list[Measurement]:
    """The real ``analyze`` on the embedded store: key read, projections, measures, write-back."""
    from sitegraph.graph.analyze import analyze
    from sitegraph.graph.memory import MemoryStore
    from sitegraph.graph.store import GraphBatch

    out: list[Measurement] = []
    with tempfile.TemporaryDirectory() as tmp:
        store = MemoryStore(Path(tmp))
        batch = GraphBatch()
        for label, key in net.nodes:
            batch.add_node(label, key, {"name": key})
        inv, site = net.works
        sites = [v for v in net.nodes if v[0] == "Site"]
        studies = [v for v in net.nodes if v[0] == "Study"]
        for i, s in zip(inv.tolist(), site.tolist(), strict=True):
            batch.add_rel("WORKS_AT", "Investigator", net.investigators[i][1], "Site", sites[s][1])
        for s, t in zip(*(a.tolist() for a in net.participates), strict=True):
            batch.add_rel("PARTICIPATES_IN", "Site", sites[s][1], "Study", studies[t][1])
        for i, t, s in zip(net.on_inv.tolist(), net.on_study.tolist(), net.on_site.tolist(), strict=True):
            props = {"site_id": sites[s][1], "role": "PI"}
            batch.add_rel("INVESTIGATOR_ON", "Investigator", net.investigators[i][1], "Study", studies[t][1], props)
        _, t_load = _timed(partial(store.write, batch))
        out.append(_m("store_load_for_analyze", scale, t_load, "s"))
        del batch
        gc.collect()
        report, t_an = _timed(partial(analyze, store))
        out.append(_m("analyze_store_total", scale, t_an, "s"))
        out.append(_m("analyze_store_read", scale, report.snapshot_seconds, "s"))
        for run in report.measures:
            if run.measure == "projection":
                out.append(_m(f"analyze_store_{run.projection}_build", scale, run.seconds, "s"))
        compute_secs = sum(run.seconds for run in report.measures if run.measure != "projection")
        out.append(_m("analyze_store_measures", scale, compute_secs, "s"))
        out.append(_m("analyze_store_batch", scale, report.batch_seconds, "s"))
        out.append(_m("analyze_store_write", scale, report.write_seconds, "s"))
        out.append(_m("analyze_store_peak_rss", scale, peak_rss_mib(), "MiB"))
        store.close()
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--scale", choices=sorted(SCALES), default="small")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--store", action="store_true", help="also run analyze end to end on the embedded store")
    parser.add_argument("--out", type=Path, help="write the JSON here as well")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(message)s", stream=sys.stderr)
    results = run(args.scale, seed=args.seed, with_store=args.store)
    text = json.dumps(results, indent=2)
    if args.out:
        args.out.write_text(text + "\n")
    sys.stdout.write(text + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
