"""Golden outputs of the per-site queries: the fast paths must answer exactly as the original code did.

``tests/data/golden_queries/*.json.gz`` hold, for a sample of sites of the demo graph and of a small
generated graph, what the original per-site implementation returned (before the per-snapshot
array indexes): ranked tactics with scores, explanations and whom to engage; related sites with
scores and reasons; the Site 360 profile, barrier activity and friction summary; a few searches and
the effectiveness table. The test rebuilds the same data on each store, recomputes everything with
the current code and compares; floats to 9 decimals.

Regenerate only when a change of behaviour is intended (and documented)::

    .venv/bin/python -m tests.test_query_golden --write
"""

from __future__ import annotations

import argparse
import gzip
import json
import math
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.schema import NODES, RELATIONSHIPS, node_spec
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.queries.effectiveness import tactic_effectiveness
from sitegraph.queries.profile import site_360
from sitegraph.queries.recommend import recommend_tactics
from sitegraph.queries.related import related_sites
from sitegraph.queries.search import search_sites
from sitegraph.queries.signals import engagement_index, site_barrier_activity, site_friction_summary
from sitegraph.queries.snapshot import Snapshot, get_snapshot

GOLDEN = Path(__file__).parent / "data" / "golden_queries"
DATASETS = ("demo", "small")
SAMPLE = 14
DECIMALS = 9


def build_dataset(name: str, store: GraphStore) -> None:
    """The graph a dataset's golden file was computed on (seeded, so the same on every run)."""
    if name == "demo":
        from sitegraph.demo import build_demo

        build_demo(store, seed=42)  # ClinicalTrials.gov demo records, ontology, history, centrality
    elif name == "small":
        from sitegraph.graph.analyze import analyze
        from tests.test_generate import build_graph

        build_graph(store, seed=11, sites=150, per_site=30)
        analyze(store)
    else:  # pragma: no cover
        raise ValueError(name)


def copy_store(src: GraphStore, dst: GraphStore) -> None:
    """Every node and relationship of ``src`` into ``dst`` (one batch)."""
    batch = GraphBatch()
    for label in NODES:
        if label == "SitegraphMeta":
            continue
        key = node_spec(label).key
        for props in src.iter_nodes(label):
            batch.add_node(label, props[key], {k: v for k, v in props.items() if k != key})
    for rtype in RELATIONSHIPS:
        for rel in src.iter_relationships(rtype):
            batch.add_rel(rtype, rel.start_label, rel.start, rel.end_label, rel.end, rel.props)
    dst.write(batch)


def sample_sites(snap: Snapshot, n: int = SAMPLE) -> list[str]:
    """The busiest sites, sites with few interactions, evenly spaced ones and one without any."""
    eng = engagement_index(snap)
    sites = [k for k, _ in snap.nodes("Site")]
    busy = sorted(eng.by_site, key=lambda s: (-len(eng.by_site[s]), s))
    quiet = sorted(eng.by_site, key=lambda s: (len(eng.by_site[s]), s))
    chosen: list[str] = []
    for s in busy[:4] + quiet[:3] + [s for s in sites if s not in eng.by_site][:1] + sites[:: max(1, len(sites) // n)]:
        if s not in chosen:
            chosen.append(s)
    return chosen[: n + 4]


def compute(snap: Snapshot, sites: list[str]) -> dict[str, Any]:
    """Everything the golden file records, as plain JSON data."""
    out: dict[str, Any] = {"sample": list(sites), "sites": {}}
    for s in sites:
        profile = site_360(snap, s).model_dump(mode="json")
        profile.pop("data_version")  # differs between stores by design
        out["sites"][s] = {
            "tactics": [r.model_dump(mode="json") for r in recommend_tactics(snap, s, 5)],
            "tactics_all": [r.model_dump(mode="json") for r in recommend_tactics(snap, s, 20)][5:],
            "related": [r.model_dump(mode="json") for r in related_sites(snap, s, 10)],
            "profile": profile,
            "activity_365": [a.model_dump(mode="json") for a in site_barrier_activity(snap, s, half_life_days=365.0)],
            "friction": site_friction_summary(snap, s).model_dump(mode="json"),
        }
    first = snap.node("Site", sites[0]) or {}
    word = str(first.get("name") or "a").split()[0]
    out["search"] = {
        "word": search_sites(snap, word, limit=20).model_dump(mode="json"),
        "country": search_sites(snap, country=str(first.get("country") or ""), limit=20, offset=3).model_dump(mode="json"),
        "all": search_sites(snap, limit=15).model_dump(mode="json"),
    }
    out["effectiveness"] = [e.model_dump(mode="json") for e in tactic_effectiveness(snap, min_tries=3)]
    return out


def assert_same(got: Any, want: Any, path: str = "$") -> None:
    """Equal JSON data; floats equal to :data:`DECIMALS` decimals."""
    if isinstance(want, float) or isinstance(got, float):
        assert isinstance(got, (int, float)) and isinstance(want, (int, float)), f"{path}: {got!r} != {want!r}"
        assert math.isclose(got, want, rel_tol=0, abs_tol=1.01 * 10**-DECIMALS), f"{path}: {got!r} != {want!r}"
    elif isinstance(want, dict):
        assert isinstance(got, dict) and sorted(got) == sorted(want), f"{path}: keys {sorted(got)} != {sorted(want)}"
        for k in want:
            assert_same(got[k], want[k], f"{path}.{k}")
    elif isinstance(want, list):
        assert isinstance(got, list) and len(got) == len(want), f"{path}: {len(got)} items, want {len(want)}"
        for i, (g, w) in enumerate(zip(got, want, strict=True)):
            assert_same(g, w, f"{path}[{i}]")
    else:
        assert got == want, f"{path}: {got!r} != {want!r}"


def golden_path(name: str) -> Path:
    return GOLDEN / f"{name}.json.gz"


def load_golden(name: str) -> dict[str, Any]:
    with gzip.open(golden_path(name), "rt", encoding="utf-8") as f:
        doc: dict[str, Any] = json.load(f)
    return doc


@pytest.fixture(scope="module")
def references(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, MemoryStore]]:
    """Each dataset built once in an embedded store."""
    stores = {}
    for name in DATASETS:
        st = MemoryStore(tmp_path_factory.mktemp(f"golden-{name}"))
        build_dataset(name, st)
        stores[name] = st
    yield stores
    for st in stores.values():
        st.close()


@pytest.mark.parametrize("dataset", DATASETS)
def test_queries_match_golden(dataset: str, store: GraphStore, references: dict[str, MemoryStore]) -> None:
    copy_store(references[dataset], store)
    golden = load_golden(dataset)
    snap = get_snapshot(store)
    sites = golden["sample"]
    assert sites == sample_sites(snap)  # the same data: the same sample
    assert any(golden["sites"][s]["tactics"] for s in sites) and any(golden["sites"][s]["related"] for s in sites)
    assert_same(compute(snap, sites), golden)


def test_the_comparison_can_fail() -> None:
    want = {"a": [{"score": 0.123456789}], "b": "x"}
    assert_same({"a": [{"score": 0.1234567894}], "b": "x"}, want)
    for bad in ({"a": [{"score": 0.123456791}], "b": "x"}, {"a": [], "b": "x"}, {"a": [{"score": 0.123456789}], "b": "y"}):
        with pytest.raises(AssertionError):
            assert_same(bad, want)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description="Write the golden query outputs from the current code.")
    p.add_argument("--write", action="store_true", help="write tests/data/golden_queries/*.json.gz")
    p.add_argument("datasets", nargs="*", default=list(DATASETS))
    args = p.parse_args(argv)
    GOLDEN.mkdir(parents=True, exist_ok=True)
    for name in args.datasets:
        with tempfile.TemporaryDirectory() as tmp:
            st = MemoryStore(Path(tmp))
            build_dataset(name, st)
            snap = get_snapshot(st)
            doc = compute(snap, sample_sites(snap))
            st.close()
        text = json.dumps(doc, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
        print(f"{name}: {len(doc['sites'])} sites, {len(text):,} characters of JSON")
        if args.write:
            golden_path(name).write_bytes(gzip.compress(text.encode("utf-8"), compresslevel=9, mtime=0))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
