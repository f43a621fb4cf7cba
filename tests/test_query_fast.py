"""The per-snapshot fast paths of the per-site queries against straightforward references.

``tests/test_query_golden.py`` pins whole outputs; these check the pieces: top-k selection, the batch
recommender, the search index, the activity tables, and that every cache follows a write.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from sitegraph.errors import NotFoundError
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch
from sitegraph.queries.recommend import recommend_all, recommend_tactics, similar_sites, warm_up
from sitegraph.queries.related import block_top, related_scores, related_sites, site_structure, top_positive
from sitegraph.queries.search import _index, _rank, normalize, search_sites
from sitegraph.queries.signals import activity_table, engagement_index, site_barrier_activity
from sitegraph.queries.snapshot import get_snapshot
from tests.test_generate import build_graph


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> MemoryStore:
    st = MemoryStore(tmp_path_factory.mktemp("fast"))
    build_graph(st, seed=7)
    return st


def _top_positive_reference(scores: np.ndarray, k: int) -> list[int]:
    pos = np.flatnonzero(scores > 0)
    if not len(pos) or k <= 0:
        return []
    return [int(j) for j in pos[np.lexsort((pos, -scores[pos]))][:k]]


@pytest.mark.parametrize("seed", range(20))
def test_top_positive_matches_a_full_sort(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n = int(rng.integers(1, 400))
    scores = np.round(rng.choice([0.0, -0.1, 0.25, 0.5, 0.75, 1.0], size=n) * rng.random(n).round(1), 9)  # many ties
    for k in (0, 1, 5, 20, 30, n, n + 5):
        assert top_positive(scores, k) == _top_positive_reference(scores, k)


def test_recommend_all_is_recommend_tactics(generated: MemoryStore) -> None:
    snap = warm_up(generated)
    sites = [k for k, _ in snap.nodes("Site")][::7]
    seen: list[int] = []
    stream = recommend_all(snap, sites, 3, progress=seen.append)
    assert isinstance(stream, Iterator)  # streamed, not held
    batch = dict(stream)
    assert list(batch) == sites and any(batch.values()) and seen == [1] * len(sites)
    for site in sites:
        assert [r.model_dump() for r in batch[site]] == [r.model_dump() for r in recommend_tactics(snap, site, 3)]
    with pytest.raises(NotFoundError):
        list(recommend_all(snap, ["site:nope"]))


def test_recommend_all_small_blocks_every_site(generated: MemoryStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every site, in blocks of 8 (several blocks), in the store's order by default."""
    import sitegraph.queries.related as related_mod

    snap = warm_up(generated)
    monkeypatch.setattr(related_mod, "BLOCK_CELLS", 1)
    got = list(recommend_all(snap, limit=5))
    assert [s for s, _ in got] == [k for k, _ in snap.nodes("Site")]
    for site, recs in got[::5]:
        assert [r.model_dump() for r in recs] == [r.model_dump() for r in recommend_tactics(snap, site, 5)]


def test_block_top_is_the_per_site_top(generated: MemoryStore) -> None:
    """Similar and related sites of a block: exactly the per-site vectors' top k, whichever path finds them."""
    snap = warm_up(generated)
    st = site_structure(snap)
    rows = np.arange(len(st.sites))
    for k_similar, k_related in ((30, 20), (3, 2), (200, 150)):
        for start in range(0, len(rows), 64):
            block = rows[start : start + 64]
            for i, (sim_rows, sims, rel_rows, rels) in zip(block, block_top(snap, block, k_similar, k_related), strict=True):
                site = st.sites[i]
                assert [(st.sites[j], v) for j, v in zip(sim_rows.tolist(), sims.tolist(), strict=True)] == similar_sites(
                    snap, site, k_similar
                )
                _, _, total = related_scores(snap, site)
                order = top_positive(total, k_related)
                assert rel_rows.tolist() == order and rels.tolist() == total[order].tolist()


@pytest.mark.parametrize("share", [0.0, 0.06, 1e9])
@pytest.mark.parametrize("contiguous", [True, False])
def test_proximity_block_is_proximity_vector(
    generated: MemoryStore, monkeypatch: pytest.MonkeyPatch, share: float, contiguous: bool
) -> None:
    """The block walk equals the per-site walk exactly, stepped from the walks' side, the matrix's side or
    both, with the sites' rows as a slice or as an index array."""
    import sitegraph.queries.related as related_mod

    snap = warm_up(generated)
    st = site_structure(snap)
    ops = related_mod._block_operands(snap)
    monkeypatch.setattr(related_mod, "WALK_ROWS_SHARE", share)
    if not contiguous:
        monkeypatch.setattr(ops, "at_sites", ops.site_nodes)
    rows = np.arange(len(st.sites))
    for start in range(0, len(rows), 48):
        block = rows[start : start + 48]
        got = related_mod._proximity_block(snap, block).toarray()
        for b, i in enumerate(block.tolist()):
            want = related_mod.proximity_vector(snap, st.sites[i])
            assert got[b].tolist() == want.tolist(), st.sites[i]


def _most_similar_reference(cols: np.ndarray, vals: np.ndarray, i: int, k: int) -> np.ndarray:
    cand = np.flatnonzero((cols != i) & (vals > 0))
    if k <= 0:
        return cand[:0]
    if len(cand) > k:
        v = vals[cand]
        kth = np.sort(v)[len(v) - k]
        cand = cand[v >= kth - 1e-9]
    return cand


@pytest.mark.parametrize("seed", range(20))
def test_most_similar_and_reaching_match_a_full_pass(seed: int) -> None:
    """The sampled bound of the similar sites' top and the threshold of the sites that can still count give
    the full pass's positions, with ties, near-ties within 1e-9, the site itself and rows of any length."""
    from sitegraph.queries.related import _most_similar, _reaching

    rng = np.random.default_rng(seed)
    n = int(rng.integers(0, 3000))
    cols = rng.permutation(4 * n + 1)[:n].astype(np.int32)
    vals = rng.choice([0.0, 0.3, 0.5, 0.9, 0.95, 1.0], size=n) * rng.random(n).round(int(rng.integers(1, 4)))
    vals[rng.random(n) < 0.1] += 1e-10  # within rounding of a tie
    i = int(cols[n // 2]) if n else 0
    for k in (0, 1, 5, 30, 200, n + 1):
        assert _most_similar(cols, vals, i, k).tolist() == _most_similar_reference(cols, vals, i, k).tolist()
    for bound in (0.1, 0.3, 0.4600000001, 0.5):
        want = np.flatnonzero(0.1 + 0.4 * vals + 1e-6 >= bound)
        assert _reaching(vals, 0.1, 0.4, bound).tolist() == want.tolist()
        assert _reaching(vals, 0.1, 0.0, bound).tolist() == np.flatnonzero(0.1 + 0.0 * vals + 1e-6 >= bound).tolist()


def test_activity_table_is_site_barrier_activity(generated: MemoryStore) -> None:
    snap = get_snapshot(generated)
    eng = engagement_index(snap)
    for half_life in (90.0, 365.0):
        table = activity_table(snap, half_life_days=half_life)
        for i, site in enumerate(table.sites):
            lo, hi = table.indptr[i], table.indptr[i + 1]
            got = {table.barriers[c]: v for c, v in zip(table.cols[lo:hi], table.values[lo:hi], strict=True)}
            want = {a.iri: a.activity for a in site_barrier_activity(snap, site, half_life_days=half_life)}
            assert got == want, site
            assert bool(got) == bool(eng.records(site)) or not any(r.mentions for r in eng.records(site))


def _search_reference(snap: object, q: str, country: str | None) -> list[str]:
    """The original scan: every entry, each test in turn."""
    qn = normalize(q) if q else ""
    tokens = qn.split()
    country_n = normalize(country) if country else ""
    hits = []
    for e in _index(snap).entries:  # type: ignore[arg-type]
        if country_n and e.country != country_n:
            continue
        if tokens and not all(t in e.haystack for t in tokens):
            continue
        rank = _rank(e, qn, tokens) if tokens else 0
        if rank is not None:
            hits.append((rank, e.name, e.summary.id))
    return [h[2] for h in sorted(hits)]


def test_search_index_finds_what_a_scan_finds(generated: MemoryStore) -> None:
    snap = get_snapshot(generated)
    names = [str(p.get("name") or k) for k, p in snap.nodes("Site")]
    countries = sorted({str(p.get("country")) for _, p in snap.nodes("Site") if p.get("country")})
    queries = ["", "a", "e", "Hospital", "hosp", "ital cent", "zzz", "\x00", "a\x00b", "  ", *(n[:5] for n in names[:10])]
    queries += [" ".join(n.split()[:2]) for n in names[10:20]] + [n.split()[-1].upper() for n in names[20:25]]
    for q in queries:
        for country in (None, *countries[:3]):
            res = search_sites(snap, q, country=country, limit=100)
            want = _search_reference(snap, q, country)
            assert res.total == len(want), (q, country)
            assert [s.id for s in res.items] == want[:100], (q, country)


def test_caches_follow_a_write(tmp_path: Path) -> None:
    """A write moves the data version: every per-snapshot index is rebuilt, none answers from the old data."""
    st = MemoryStore(tmp_path / "m")
    build_graph(st, seed=7, sites=30, per_site=10)
    snap = warm_up(st)
    site = next(k for k, _ in snap.nodes("Site"))
    before_rel = [r.model_dump() for r in related_sites(snap, site, 5)]
    before_rec = recommend_tactics(snap, site, 5)
    barriers = sorted(engagement_index(snap).barrier_meta)
    b = GraphBatch()
    for n in range(6):
        iid = f"ix-new-{n}"
        b.add_node("Interaction", iid, {"occurred_at": f"2030-01-0{n + 1}T10:00:00+00:00", "channel": "call", "note": ""})
        b.add_rel("WITH_SITE", "Interaction", iid, "Site", site)
        b.add_rel("CONCERNS", "Interaction", iid, "Barrier", barriers[n % len(barriers)], {"source": "observed", "severity": 0.9})
    st.write(b)
    snap2 = get_snapshot(st)
    assert snap2.version != snap.version and snap2 is not snap
    acts = {a.iri for a in site_barrier_activity(snap2, site) if a.active}
    assert acts == set(barriers[:6])  # the reference date moved to 2030: only the new mentions are recent
    table = activity_table(snap2)
    i = table.sites.index(site)
    assert {table.barriers[c] for c in table.cols[table.indptr[i] : table.indptr[i + 1]]} >= set(barriers[:6])
    after_rec = recommend_tactics(snap2, site, 5)
    assert [r.model_dump() for r in after_rec] != [r.model_dump() for r in before_rec]
    assert [r.model_dump() for r in related_sites(snap2, site, 5)] != before_rel
    st.close()


def test_profile_rows_keep_the_snapshot_order(generated: MemoryStore) -> None:
    from sitegraph.queries.profile import _into, _out

    snap = get_snapshot(generated)
    checks = [
        ("Site", "PARTICIPATES_IN", "WITH_SITE"),
        ("Site", "PARTICIPATES_IN", "WORKS_AT"),
        ("Investigator", "INVESTIGATOR_ON", "WITH_INVESTIGATOR"),
        ("Investigator", "WORKS_AT", "WITH_INVESTIGATOR"),
        ("Study", "STUDIES", "ABOUT_STUDY"),
        ("Study", "SPONSORED_BY", "INVESTIGATOR_ON"),
    ]
    for label, out_type, in_type in checks:
        for key, _ in list(snap.nodes(label))[:200]:
            assert _out(snap, label, key, out_type) == snap.out(label, key, out_type)
            assert _into(snap, label, key, in_type) == snap.into(label, key, in_type)
    for key, _ in list(snap.nodes("Interaction"))[:300]:
        for t in ("WITH_INVESTIGATOR", "APPLIED", "CONCERNS", "WITH_SITE"):
            assert _out(snap, "Interaction", key, t) == snap.out("Interaction", key, t)
    assert _out(snap, "Site", "site:nope", "WORKS_AT") == [] == _into(snap, "Site", "site:nope", "WORKS_AT")
    # several relationships with one node: ordered by their properties, as the snapshot orders them
    ties: list[tuple[tuple[str, str], dict[str, Any]]] = [
        (("Study", "s1"), {"role": "b"}),
        (("Study", "s0"), {"x": 1}),
        (("Study", "s1"), {"role": "a"}),
    ]
    from sitegraph.queries.profile import _ordered

    assert [d for _, d in _ordered(list(ties))] == [{"x": 1}, {"role": "a"}, {"role": "b"}]
