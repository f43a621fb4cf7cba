"""Centrality: the fast path against networkx, projections from a store, and analyze's write-back.

networkx is the reference throughout: every fast-path number is checked against networkx computed
independently (on a graph built here by hand, not through the code under test). No timings: speed
belongs in ``benchmarks/bench_centrality.py``.
"""

from __future__ import annotations

import dataclasses
import itertools
import json
import math
from collections import Counter
from collections.abc import Callable, Iterator, Mapping
from pathlib import Path

import networkx as nx
import numpy as np
import pytest
import typer
from typer.testing import CliRunner

from sitegraph.errors import SchemaError
from sitegraph.graph import centrality as c
from sitegraph.graph.analyze import (
    PAGERANK_L1_TOLERANCE,
    TIME_PROPERTY,
    VERSION_PROPERTY,
    analyze,
    compare,
    compute,
    property_names,
)
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.projections import (
    COLLABORATION,
    SIS,
    SIS_ENDPOINTS,
    SIS_LABELS,
    NodeId,
    Projection,
    collaboration_from_incidence,
    from_edges,
    investigator_collaboration,
    read_edges,
    site_investigator_study,
)
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.queries.snapshot import get_snapshot
from sitegraph.settings import get_settings

# --- helpers ----------------------------------------------------------------------------------------


def as_projection(g: nx.Graph, name: str = "test") -> Projection:
    """A projection of a networkx graph with integer nodes, keeping its ``weight`` attributes."""
    nodes: list[NodeId] = [("Site", f"n{v:05d}") for v in g.nodes]
    pos = {v: i for i, v in enumerate(g.nodes)}
    edges = list(g.edges(data="weight", default=1.0))
    src = [pos[u] for u, _, _ in edges]
    dst = [pos[v] for _, v, _ in edges]
    return from_edges(nodes, src, dst, [w for _, _, w in edges], name=name)


def relabel(p: Projection, g: nx.Graph) -> nx.Graph:
    """``g`` with its integer nodes renamed to the projection's node ids (same order)."""
    return nx.relabel_nodes(g, dict(zip(g.nodes, p.nodes, strict=True)))


def l1(a: Mapping[NodeId, float], b: Mapping[NodeId, float]) -> float:
    assert a.keys() == b.keys()
    return sum(abs(a[v] - b[v]) for v in a)


def max_abs(a: Mapping[NodeId, float], b: Mapping[NodeId, float]) -> float:
    assert a.keys() == b.keys()
    return max((abs(a[v] - b[v]) for v in a), default=0.0)


def _weighted(g: nx.Graph, seed: int) -> nx.Graph:
    rng = np.random.default_rng(seed)
    for u, v in g.edges:
        g.edges[u, v]["weight"] = float(rng.integers(1, 5))
    return g


def _with_isolates(g: nx.Graph, k: int) -> nx.Graph:
    start = max(g.nodes, default=-1) + 1
    g.add_nodes_from(range(start, start + k))
    return g


GRAPHS: dict[str, Callable[[], nx.Graph]] = {
    "gnm+isolates": lambda: _with_isolates(nx.gnm_random_graph(120, 300, seed=1), 7),
    "barabasi-weighted": lambda: _weighted(nx.barabasi_albert_graph(150, 2, seed=2), 3),
    "two-components+isolates": lambda: _with_isolates(
        nx.disjoint_union(nx.gnp_random_graph(40, 0.1, seed=3), _weighted(nx.gnm_random_graph(30, 60, seed=4), 5)), 4
    ),
    "bipartite-path": lambda: nx.path_graph(25),
    "star": lambda: nx.star_graph(30),
    "no-edges": lambda: nx.empty_graph(6),
    "tripartite-weighted": lambda: _weighted(nx.complete_multipartite_graph(4, 5, 6), 6),
}


@pytest.fixture(params=sorted(GRAPHS))
def graph(request: pytest.FixtureRequest) -> tuple[Projection, nx.Graph]:
    g = GRAPHS[request.param]()
    p = as_projection(g)
    return p, relabel(p, g)


# --- fast path against networkx on random graphs ------------------------------------------------------


def test_pagerank_matches_networkx(graph: tuple[Projection, nx.Graph]) -> None:
    p, g = graph
    fast = c.pagerank(p)
    ref = nx.pagerank(g, tol=c.PAGERANK_TOL, max_iter=1000)
    assert l1(fast, ref) <= 1e-6
    assert math.isclose(sum(fast.values()), 1.0, abs_tol=1e-9)
    assert l1(c.pagerank(p, method="networkx"), ref) == 0.0


def test_fast_scores_are_a_read_only_mapping_equal_to_a_dict(graph: tuple[Projection, nx.Graph]) -> None:
    """The fast path's scores (an array behind a mapping) read like networkx's dict, both ways."""
    p, g = graph
    for scores in (c.pagerank(p), c.degree(p), c.strength(p), c.harmonic(p)):
        assert isinstance(scores, c.NodeScores)
        fast: c.NodeScores = scores
        assert list(fast) == list(fast.keys()) == p.nodes and len(fast) == p.n_nodes
        plain = fast.as_dict()
        assert plain == dict(fast) == dict(fast.items()) and list(plain) == p.nodes
        assert all(type(v) is float for v in plain.values())
        assert fast == plain and plain == fast
        assert fast.tolist() == [plain[v] for v in p.nodes] == list(fast.values())
        stranger: NodeId = ("Site", "not-in-the-projection")
        assert stranger not in fast and fast.get(stranger) is None
        with pytest.raises(KeyError):
            fast[stranger]
        changed = dict(plain)
        changed[p.nodes[0]] += 1.0
        assert fast != changed and changed != fast
        assert fast != {**plain, stranger: 0.0}
        with pytest.raises(ValueError):
            fast.array[0] = 1.0
    assert l1(c.pagerank(p), nx.pagerank(g, tol=c.PAGERANK_TOL, max_iter=1000)) <= 1e-6


def test_unweighted_pagerank_matches_networkx(graph: tuple[Projection, nx.Graph]) -> None:
    p, g = graph
    assert l1(c.pagerank(p, weighted=False), nx.pagerank(g, weight=None, tol=c.PAGERANK_TOL, max_iter=1000)) <= 1e-6


def test_personalized_pagerank_matches_networkx(graph: tuple[Projection, nx.Graph]) -> None:
    p, g = graph
    chosen = {p.nodes[0]: 1.0, p.nodes[len(p.nodes) // 2]: 3.0}
    fast = c.pagerank(p, personalization=chosen, alpha=0.7)
    ref = nx.pagerank(g, personalization=chosen, alpha=0.7, tol=c.PAGERANK_TOL, max_iter=1000)
    assert l1(fast, ref) <= 1e-6


def test_degree_ordered_pagerank_gives_the_same_values(
    graph: tuple[Projection, nx.Graph], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The reordered iteration (large projections) against the plain one and networkx, every variant."""
    p, g = graph
    chosen = {p.nodes[0]: 1.0, p.nodes[len(p.nodes) // 2]: 3.0}
    variants: list[dict[str, object]] = [{}, {"weighted": False}, {"personalization": chosen, "alpha": 0.7}]
    plain = [c.pagerank(p, **kw) for kw in variants]  # type: ignore[arg-type]
    monkeypatch.setattr(c, "REORDER_MIN_NODES", 1)
    for kw, before in zip(variants, plain, strict=True):
        after = c.pagerank(p, **kw)  # type: ignore[arg-type]
        assert list(after) == p.nodes
        assert l1(after, before) <= 1e-12
        ref = nx.pagerank(
            g,
            alpha=float(kw.get("alpha", 0.85)),  # type: ignore[arg-type]
            personalization=kw.get("personalization"),
            weight=None if kw.get("weighted") is False else "weight",
            tol=c.PAGERANK_TOL,
            max_iter=1000,
        )
        assert l1(after, ref) <= 1e-6


def test_degree_order_keeps_each_row() -> None:
    p = as_projection(_with_isolates(_weighted(nx.barabasi_albert_graph(60, 2, seed=7), 8), 3))
    m, order = c._degree_order(p.adjacency)
    lengths = np.diff(m.indptr)
    assert np.all(lengths[:-1] >= lengths[1:])
    back = np.empty_like(order)
    back[order] = np.arange(len(order))
    assert (m[back][:, back] != p.adjacency).nnz == 0


def test_scipy_baseline_matches_networkx(graph: tuple[Projection, nx.Graph]) -> None:
    p, g = graph
    assert l1(c.pagerank_scipy_baseline(p), nx.pagerank(g, tol=c.PAGERANK_TOL, max_iter=1000)) <= 1e-6


def test_degree_and_strength_are_exact(graph: tuple[Projection, nx.Graph]) -> None:
    p, g = graph
    assert c.degree(p) == nx.degree_centrality(g)
    assert c.strength(p) == {v: float(d) for v, d in g.degree(weight="weight")}
    assert c.degree(p, method="networkx") == c.degree(p)


def test_exact_betweenness_and_harmonic_match_networkx(graph: tuple[Projection, nx.Graph]) -> None:
    p, g = graph
    assert c.pivots_for(p) is None  # small: exact
    btw, harm = c.betweenness_and_harmonic(p)
    assert max_abs(btw, nx.betweenness_centrality(g)) <= 1e-12
    n = g.number_of_nodes()
    ref_h = {v: h / (n - 1) for v, h in nx.harmonic_centrality(g).items()}
    assert max_abs(harm, ref_h) <= 1e-12


@pytest.mark.parametrize("k", [2, 5, 17])
def test_sampled_betweenness_uses_networkx_pivots(graph: tuple[Projection, nx.Graph], k: int) -> None:
    p, g = graph
    k = min(k, len(p) - 1)  # fewer pivots than nodes, so the sampled path runs on the small graphs too
    btw, harm = c.betweenness_and_harmonic(p, k=k, seed=11)
    assert max_abs(btw, nx.betweenness_centrality(g, k=k, seed=11)) <= 1e-12
    pivots = c.sample_pivots(p, k, 11)
    raw = nx.harmonic_centrality(g, sources=pivots)
    assert max_abs(harm, {v: raw[v] / (k - 1 if v in pivots else k) for v in g}) <= 1e-12
    assert c.betweenness_and_harmonic(p, k=k, seed=11, method="networkx") == (pytest.approx(btw, abs=1e-12), pytest.approx(harm))


def test_sampled_error_is_within_the_stated_bound() -> None:
    """Brandes-Pich estimates on a mid-size graph stay within the Hoeffding bound, and shrink with k."""
    g = _with_isolates(nx.barabasi_albert_graph(1500, 2, seed=5), 10)
    p = as_projection(g)
    exact_b, exact_h = c.betweenness_and_harmonic(p)
    mean_err: dict[int, float] = {}
    for k in (20, 200):
        bound = c.error_bound(p.n_nodes, k)
        assert bound == pytest.approx(math.sqrt(math.log(2 * p.n_nodes / c.DELTA) / (2 * (k - 1))))
        errs = []
        for seed in range(5):
            est_b, est_h = c.betweenness_and_harmonic(p, k=k, seed=seed)
            assert max_abs(est_b, exact_b) <= bound
            assert max_abs(est_h, exact_h) <= bound
            errs.append(float(np.mean([abs(est_b[v] - exact_b[v]) for v in p.nodes])))
        mean_err[k] = float(np.mean(errs))
    assert mean_err[200] < mean_err[20] / 2


def test_default_pivots_by_size() -> None:
    small = as_projection(nx.path_graph(10))
    assert c.pivots_for(small) is None
    assert c.pivots_for(small, 3) == 3
    assert c.pivots_for(small, 50) is None  # k >= n: exact
    big = as_projection(nx.empty_graph(c.EXACT_MAX_NODES + 1))
    k = c.pivots_for(big)
    assert k is not None and c.MIN_PIVOTS <= k <= c.MAX_PIVOTS
    assert c.error_bound(100, None) == 0.0


def test_errors_name_the_problem() -> None:
    p = as_projection(nx.path_graph(5))
    stranger = ("Site", "nowhere")
    with pytest.raises(KeyError, match="nowhere"):
        c.pagerank(p, personalization={stranger: 1.0})
    with pytest.raises(KeyError, match="nowhere"):
        c.pagerank(p, personalization={stranger: 1.0}, method="networkx")
    with pytest.raises(ValueError, match="n00001"):
        c.pagerank(p, personalization={p.nodes[1]: -1.0})
    with pytest.raises(ValueError, match="positive"):
        c.pagerank(p, personalization={p.nodes[1]: 0.0})
    with pytest.raises(ValueError, match="alpha"):
        c.pagerank(p, alpha=1.0)
    with pytest.raises(ValueError, match="at least 2"):
        c.betweenness(p, k=1)
    with pytest.raises(ValueError, match="method"):
        c.degree(p, method="igraph")  # type: ignore[arg-type]
    with pytest.raises(c.ConvergenceError):
        c.pagerank(as_projection(nx.gnm_random_graph(50, 100, seed=1)), max_iter=2)


def test_empty_and_tiny_projections() -> None:
    empty = from_edges([], [], [])
    assert c.pagerank(empty) == {} and c.degree(empty) == {} and c.betweenness(empty) == {}
    one = from_edges([("Site", "a")], [], [])
    assert c.pagerank(one) == {("Site", "a"): pytest.approx(1.0)}
    assert c.degree(one) == nx.degree_centrality(one.to_networkx())
    assert c.betweenness(one) == {("Site", "a"): 0.0} and c.harmonic(one) == {("Site", "a"): 0.0}


def test_from_edges_sums_repeats_and_drops_self_loops() -> None:
    nodes = [("Site", "a"), ("Site", "b"), ("Site", "c")]
    p = from_edges(nodes, [0, 1, 0, 2], [1, 0, 0, 1], [1.0, 2.0, 5.0, 1.0])
    g = p.to_networkx()
    assert list(g.nodes) == nodes
    assert dict(g.edges) == {(nodes[0], nodes[1]): {"weight": 3.0}, (nodes[1], nodes[2]): {"weight": 1.0}}
    assert p.n_edges == 2
    with pytest.raises(ValueError):
        from_edges(nodes, [0], [3])


# --- a small real-shaped graph in the store -------------------------------------------------------------

WORKS_AT = [("I1", "S1"), ("I2", "S1"), ("I2", "S2"), ("I3", "S2"), ("I4", "S3"), ("I5", "S3"), ("I6", "S5")]
PARTICIPATES_IN = [("S1", "T1"), ("S1", "T2"), ("S2", "T2"), ("S2", "T3"), ("S3", "T3"), ("S5", "T4")]
INVESTIGATOR_ON = [  # (investigator, study, site_id): I2 leads T2 at two sites; I3 is on T2 overall
    ("I1", "T1", "S1"),
    ("I1", "T2", "S1"),
    ("I2", "T1", "S1"),
    ("I2", "T2", "S1"),
    ("I2", "T2", "S2"),
    ("I3", "T3", "S2"),
    ("I3", "T2", ""),
    ("I4", "T3", "S3"),
    ("I6", "T4", "S5"),
]
SITES = ["S1", "S2", "S3", "S4", "S5"]  # S4 takes part in nothing
INVESTIGATORS = ["I1", "I2", "I3", "I4", "I5", "I6"]  # I5 is on no study
STUDIES = ["T1", "T2", "T3", "T4"]


def real_shaped_batch() -> GraphBatch:
    b = GraphBatch()
    for s in SITES:
        b.add_node("Site", s, {"name": f"Site {s}"})
    for i in INVESTIGATORS:
        b.add_node("Investigator", i, {"name": f"Dr {i}"})
    for t in STUDIES:
        b.add_node("Study", t, {"phase": "PHASE2"})
    for i, s in WORKS_AT:
        b.add_rel("WORKS_AT", "Investigator", i, "Site", s)
    for s, t in PARTICIPATES_IN:
        b.add_rel("PARTICIPATES_IN", "Site", s, "Study", t, {"status": "ACTIVE"})
    for i, t, s in INVESTIGATOR_ON:
        b.add_rel("INVESTIGATOR_ON", "Investigator", i, "Study", t, {"site_id": s, "role": "PRINCIPAL_INVESTIGATOR"})
    # Things the projections must ignore.
    b.add_node("Sponsor", "SP1", {"name": "Acme"})
    b.add_rel("SPONSORED_BY", "Study", "T1", "Sponsor", "SP1")
    b.add_node("Interaction", "X1", {"channel": "call"})
    b.add_rel("WITH_SITE", "Interaction", "X1", "Site", "S1")
    b.add_rel("WITH_INVESTIGATOR", "Interaction", "X1", "Investigator", "I1")
    b.add_rel("ABOUT_STUDY", "Interaction", "X1", "Study", "T2")
    return b


def expected_sis() -> nx.Graph:
    """The site-investigator-study projection, by hand."""
    g = nx.Graph()
    nodes = [("Site", s) for s in SITES] + [("Investigator", i) for i in INVESTIGATORS] + [("Study", t) for t in STUDIES]
    g.add_nodes_from(sorted(nodes))
    for i, s in WORKS_AT:
        g.add_edge(("Investigator", i), ("Site", s), weight=1.0)
    for s, t in PARTICIPATES_IN:
        g.add_edge(("Site", s), ("Study", t), weight=1.0)
    for i, t, _ in INVESTIGATOR_ON:
        u, v = ("Investigator", i), ("Study", t)
        g.add_edge(u, v, weight=g.edges[u, v]["weight"] + 1.0 if g.has_edge(u, v) else 1.0)
    return g


def expected_collaboration() -> nx.Graph:
    g = nx.Graph()
    g.add_nodes_from(("Investigator", i) for i in INVESTIGATORS)
    on: dict[str, set[str]] = {}
    for i, t, _ in INVESTIGATOR_ON:
        on.setdefault(t, set()).add(i)
    for members in on.values():
        for a in members:
            for b in members:
                if a < b:
                    u, v = ("Investigator", a), ("Investigator", b)
                    g.add_edge(u, v, weight=g.edges[u, v]["weight"] + 1.0 if g.has_edge(u, v) else 1.0)
    return g


@pytest.fixture
def loaded(store: GraphStore) -> GraphStore:
    store.ensure_schema()
    store.write(real_shaped_batch())
    return store


def _same_graph(a: nx.Graph, b: nx.Graph) -> None:
    assert list(a.nodes) == list(b.nodes)
    assert {frozenset(e): w for *e, w in a.edges(data="weight")} == {frozenset(e): w for *e, w in b.edges(data="weight")}


def test_projections_from_the_store(loaded: GraphStore) -> None:
    snap = get_snapshot(loaded)
    sis = site_investigator_study(snap)
    assert sis.name == SIS
    _same_graph(sis.to_networkx(), expected_sis())
    assert sis.to_networkx().edges[("Investigator", "I2"), ("Study", "T2")]["weight"] == 2.0
    collab = investigator_collaboration(snap)
    assert collab.name == COLLABORATION
    _same_graph(collab.to_networkx(), expected_collaboration())
    assert collab.to_networkx().edges[("Investigator", "I1"), ("Investigator", "I2")]["weight"] == 2.0
    assert collab.adjacency.getrow(collab.index[("Investigator", "I5")]).nnz == 0


def _same_matrix(a: object, b: object) -> None:
    for name in ("indptr", "indices", "data"):
        assert np.array_equal(getattr(a, name), getattr(b, name)), name


def test_projections_read_straight_from_the_store_equal_the_snapshot_ones(loaded: GraphStore) -> None:
    snap = get_snapshot(loaded)
    version, edges = read_edges(loaded)
    assert version == snap.version == loaded.version()
    for build in (site_investigator_study, investigator_collaboration):
        direct, via_snapshot = build(edges), build(snap)
        assert direct.nodes == via_snapshot.nodes
        _same_matrix(direct.adjacency, via_snapshot.adjacency)
        if via_snapshot.factor is not None:
            _same_matrix(direct.factor, via_snapshot.factor)
    _same_graph(site_investigator_study(edges).to_networkx(), expected_sis())
    _same_graph(investigator_collaboration(edges).to_networkx(), expected_collaboration())
    # No cache: a later write is read at once.
    loaded.write(_one_rel("WORKS_AT", "Investigator", "I5", "Site", "S4"))
    version2, edges2 = read_edges(loaded)
    assert version2 == loaded.version() > version
    assert site_investigator_study(edges2).n_edges == site_investigator_study(edges).n_edges + 1


def _one_rel(rel_type: str, sl: str, s: str, el: str, e: str) -> GraphBatch:
    b = GraphBatch()
    b.add_rel(rel_type, sl, s, el, e)
    return b


def test_key_reads_match_the_generic_reads(loaded: GraphStore) -> None:
    assert loaded.node_keys("Site") == SITES
    assert loaded.node_keys("Sponsor") == ["SP1"]
    starts, ends = loaded.relationship_endpoints("INVESTIGATOR_ON", "Investigator", "Study")
    assert Counter(zip(starts, ends, strict=True)) == Counter((i, t) for i, t, _ in INVESTIGATOR_ON)  # I2-T2 twice
    assert loaded.relationship_endpoints("BROADER", "Tactic", "Tactic") == ([], [])
    # The store's own reads give what the default implementation (built on iter_nodes and
    # iter_relationships) gives.
    version, keys, rels = loaded.graph_keys(SIS_LABELS, SIS_ENDPOINTS)
    g_version, g_keys, g_rels = GraphStore.graph_keys(loaded, SIS_LABELS, SIS_ENDPOINTS)
    assert version == g_version == loaded.version()
    assert keys == g_keys == {"Site": SITES, "Investigator": INVESTIGATORS, "Study": STUDIES}
    assert rels.keys() == g_rels.keys() == set(SIS_ENDPOINTS)
    for pair, (s, e) in rels.items():
        assert Counter(zip(s, e, strict=True)) == Counter(zip(*g_rels[pair], strict=True)), pair
    with pytest.raises(SchemaError):
        loaded.node_keys("Nope")
    with pytest.raises(SchemaError):
        loaded.relationship_endpoints("WORKS_AT", "Site", "Investigator")
    with pytest.raises(SchemaError):
        loaded.graph_keys(["Site"], [("NOPE", "Site", "Study")])


def test_analyze_leaves_the_embedded_graph_unloaded(tmp_path: Path) -> None:
    """analyze reads keys from SQLite and writes properties to SQLite: no networkx graph is built."""
    home = tmp_path / "memory"
    with MemoryStore(home) as writer:
        writer.write(real_shaped_batch())
    store = MemoryStore(home)
    try:
        report = analyze(store)
        assert store._graph is None
        assert report.nodes_written == len(SITES) + len(INVESTIGATORS) + len(STUDIES)
    finally:
        store.close()
    with MemoryStore(home) as reader:
        stored = reader.get_node("Investigator", "I2") or {}
        computed, _ = compute(get_snapshot(reader))
        assert {k: stored[k] for k in computed[("Investigator", "I2")]} == computed[("Investigator", "I2")]
        assert stored[VERSION_PROPERTY] == report.data_version == reader.version() - 1


def _reference_scores(g: nx.Graph, prefix: str) -> dict[NodeId, dict[str, float]]:
    """Every measure by networkx on the hand-built graph (exact betweenness: the graph is small)."""
    n = g.number_of_nodes()
    measures = {
        "pagerank": nx.pagerank(g, tol=c.PAGERANK_TOL, max_iter=1000),
        "degree": nx.degree_centrality(g),
        "strength": dict(g.degree(weight="weight")),
        "betweenness": nx.betweenness_centrality(g),
        "harmonic": {v: h / (n - 1) for v, h in nx.harmonic_centrality(g).items()},
    }
    out: dict[NodeId, dict[str, float]] = {}
    for measure, scores in measures.items():
        for v, value in scores.items():
            out.setdefault(v, {})[prefix + measure] = float(value)
    return out


def test_analyze_writes_scores_that_match_networkx(loaded: GraphStore) -> None:
    version = loaded.version()
    computed, _ = compute(get_snapshot(loaded))
    report = analyze(loaded)
    assert report.data_version == version and report.store == loaded.kind
    assert report.nodes_written == len(SITES) + len(INVESTIGATORS) + len(STUDIES)
    assert loaded.version() != version  # the write moved the data on
    assert all(run.exact for run in report.measures if run.measure != "pagerank")

    expected: dict[NodeId, dict[str, float]] = {}
    for g, prefix in ((expected_sis(), ""), (expected_collaboration(), "collab_")):
        for v, props in _reference_scores(g, prefix).items():
            expected.setdefault(v, {}).update(props)
    pr_fast: dict[str, dict[NodeId, float]] = {"pagerank": {}, "collab_pagerank": {}}
    pr_ref: dict[str, dict[NodeId, float]] = {"pagerank": {}, "collab_pagerank": {}}
    for (label, key), props in expected.items():
        stored = loaded.get_node(label, key)
        assert stored is not None
        assert stored[VERSION_PROPERTY] == version
        assert isinstance(stored[TIME_PROPERTY], str) and stored[TIME_PROPERTY] == report.computed_at
        for prop, ref in props.items():
            # read back identically what was computed ...
            assert stored[prop] == computed[(label, key)][prop], prop
            # ... and it is networkx's number
            if prop.endswith("pagerank"):
                pr_fast[prop][(label, key)], pr_ref[prop][(label, key)] = stored[prop], ref
            else:
                assert stored[prop] == pytest.approx(ref, abs=1e-12), (label, key, prop)
    for prop in pr_fast:
        assert l1(pr_fast[prop], pr_ref[prop]) <= PAGERANK_L1_TOLERANCE
    # Nodes outside the projections are left alone.
    assert "pagerank" not in (loaded.get_node("Sponsor", "SP1") or {})
    assert "collab_pagerank" not in (loaded.get_node("Site", "S1") or {})
    # Sorting sites by the stored property gives networkx's ranking.
    stored_order = [p["id"] for p in sorted(loaded.iter_nodes("Site"), key=lambda p: (-p["pagerank"], p["id"]))]
    ref_order = sorted(SITES, key=lambda s: (-pr_ref["pagerank"][("Site", s)], s))
    assert stored_order == ref_order


def test_analyze_with_networkx_method_and_compare(loaded: GraphStore) -> None:
    report = analyze(loaded, method="networkx")
    assert report.method == "networkx"
    by_fast, _ = compute(get_snapshot(loaded))
    for (label, key), props in by_fast.items():
        stored = loaded.get_node(label, key) or {}
        for prop, value in props.items():
            assert stored[prop] == pytest.approx(value, abs=1e-9), (label, key, prop)
    diffs = compare(get_snapshot(loaded))
    assert {(d.projection, d.measure) for d in diffs} == {(p, m) for p in (SIS, COLLABORATION) for m in property_names(p)}
    assert all(d.ok for d in diffs), [d for d in diffs if not d.ok]


def test_progress_is_reported(memory_store: MemoryStore) -> None:
    memory_store.write(real_shaped_batch())
    seen: list[tuple[str, int, int]] = []
    analyze(memory_store, progress=lambda what, done, total: seen.append((what, done, total)))
    assert seen[-1][1] == seen[-1][2]
    assert [done for _, done, _ in seen] == sorted(done for _, done, _ in seen)


# --- the command --------------------------------------------------------------------------------------


@pytest.fixture
def cli_home(memory_store: MemoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MemoryStore]:
    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path))
    monkeypatch.setenv("SITEGRAPH_STORE", "memory")
    get_settings.cache_clear()
    memory_store.write(real_shaped_batch())
    yield memory_store
    get_settings.cache_clear()


def _cli() -> typer.Typer:
    from sitegraph.cli.analyze_cmd import analyze as analyze_command

    app = typer.Typer()
    app.command()(analyze_command)
    return app


def test_cli_analyze_json_and_compare(cli_home: MemoryStore) -> None:
    runner = CliRunner()
    app = _cli()
    result = runner.invoke(app, ["--json"])
    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert report["nodes_written"] == len(SITES) + len(INVESTIGATORS) + len(STUDIES)
    assert {m["measure"] for m in report["measures"]} >= {"pagerank", "degree", "strength", "betweenness+harmonic"}
    result = runner.invoke(app, ["--compare", "--json"])
    assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["ok"] is True
    result = runner.invoke(app, ["--samples", "3"])
    assert result.exit_code == 0, result.output
    assert "pivots" in result.stdout
    result = runner.invoke(app, ["--method", "igraph"])
    assert result.exit_code == 2


# --- the collaboration projection's factored kernels ----------------------------------------------------


@pytest.fixture(scope="module")
def collaboration() -> Projection:
    """A collaboration network from a random incidence, with pairs that share several studies."""
    rng = np.random.default_rng(7)
    n_inv, n_studies = 150, 30
    inv = rng.integers(0, n_inv, 300)
    study = rng.integers(0, n_studies, 300)
    investigators: list[NodeId] = [("Investigator", f"i{k:04d}") for k in range(n_inv)]
    p = collaboration_from_incidence(investigators, inv, study, n_studies)
    assert p.factor is not None and p.adjacency.max() > 1  # some pairs share more than one study
    return p


@pytest.mark.parametrize("dense_ratio", [0, 6, 10**9], ids=["sparse-only", "default", "dense-only"])
def test_factored_kernels_match_networkx(collaboration: Projection, dense_ratio: int, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(c, "_DENSE_RATIO", dense_ratio)
    p = collaboration
    plain = dataclasses.replace(p, factor=None)
    g = p.to_networkx()
    assert l1(c.pagerank(p), nx.pagerank(g, tol=c.PAGERANK_TOL, max_iter=1000)) <= 1e-6
    assert l1(c.pagerank(p, weighted=False), c.pagerank(plain, weighted=False)) <= 1e-12
    for k in (None, 20):
        btw, harm = c.betweenness_and_harmonic(p, k=k, seed=3)
        assert max_abs(btw, nx.betweenness_centrality(g, k=k, seed=3)) <= 1e-12
        plain_btw, plain_harm = c.betweenness_and_harmonic(plain, k=k, seed=3)
        assert max_abs(btw, plain_btw) <= 1e-12 and max_abs(harm, plain_harm) <= 1e-12


# --- the PageRank product: in place, on row blocks in parallel, or scipy's public product ----------------


@pytest.mark.parametrize("workers", [1, 2, 3, 7])
def test_matvec_in_row_blocks_is_the_serial_product(workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Each row is summed by one thread in the serial order, so the blocks change no bit of the result."""
    p = as_projection(nx.barabasi_albert_graph(3_000, 4, seed=5))
    rng = np.random.default_rng(0)
    x = rng.random(p.n_nodes)
    start = rng.random(p.n_nodes)
    serial = start.copy()
    c._csr_matvec_add(p.adjacency, x, serial)  # below PARALLEL_MIN_NNZ: one call of the kernel
    assert np.allclose(serial, start + p.adjacency @ x, rtol=1e-14, atol=0)
    monkeypatch.setattr(c, "PARALLEL_MIN_NNZ", 1)
    monkeypatch.setattr(c, "_workers", lambda: workers)
    blocks = c._row_blocks(p.adjacency, workers)
    assert blocks[0][0] == 0 and blocks[-1][1] == p.n_nodes
    assert all(a < b == a2 for (a, b), (a2, _) in itertools.pairwise(blocks))
    out = start.copy()
    c._csr_matvec_add(p.adjacency, x, out)
    assert np.array_equal(out, serial)


@pytest.mark.parametrize("path", ["serial", "parallel", "public-product"])
def test_pagerank_product_paths_agree_with_networkx(path: str, monkeypatch: pytest.MonkeyPatch) -> None:
    g = nx.barabasi_albert_graph(2_000, 3, seed=2)
    for u, v, d in g.edges(data=True):
        d["weight"] = 1.0 + (u * 7 + v) % 5
    g.add_nodes_from([5_000, 5_001])  # dangling nodes
    p = as_projection(g)
    ref = nx.pagerank(p.to_networkx(), tol=c.PAGERANK_TOL, max_iter=1000)
    serial = c.pagerank(p)
    if path == "parallel":
        monkeypatch.setattr(c, "PARALLEL_MIN_NNZ", 1)
        monkeypatch.setattr(c, "_workers", lambda: 2)
    elif path == "public-product":
        monkeypatch.setattr(c, "_csr_matvec", None)
    fast = c.pagerank(p)
    assert l1(fast, ref) <= 1e-6
    if path == "parallel":
        assert fast == serial  # bit for bit
    else:
        assert l1(fast, serial) <= 1e-14
    assert l1(c.pagerank(p, weighted=False), nx.pagerank(p.to_networkx(), weight=None, tol=c.PAGERANK_TOL)) <= 1e-6
    chosen = {p.nodes[0]: 1.0, p.nodes[10]: 3.0}
    ref_chosen = nx.pagerank(p.to_networkx(), personalization=chosen, tol=c.PAGERANK_TOL)
    assert l1(c.pagerank(p, personalization=chosen), ref_chosen) <= 1e-6
