"""The engagement-history generator: reproducible, realistic, and its CSV equals its store writes (both stores)."""

from __future__ import annotations

import csv
import json
import statistics
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sitegraph.errors import UsageError
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.loaders.csvfiles import read_csv_folder
from sitegraph.loaders.generate import SCALES, GeneratorConfig, generate

SITES = 60
PER_SITE = 25


def sync_ontology(store: GraphStore) -> None:
    """The shipped ontology when its sync is available, else a tiny hand-made barrier–tactic set."""
    try:
        from sitegraph.ontology import sync
    except ImportError:  # pragma: no cover - the ontology package ships with sitegraph
        store.write(tiny_ontology())
        return
    sync(store)


def tiny_ontology() -> GraphBatch:
    b = GraphBatch()
    bns, tns = "https://w3id.org/sitegraph/barrier/", "https://w3id.org/sitegraph/tactic/"
    b.add_node("Barrier", bns + "contracting", {"id": "contracting", "label": "Contracting and budget", "kind": "category"})
    b.add_node(
        "Barrier",
        bns + "contract-revisions",
        {
            "id": "contract-revisions",
            "label": "Repeated contract revisions",
            "alt_labels": ["another round of redlines", "contract back and forth"],
            "severity": 0.7,
            "category": "contracting",
        },
    )
    b.add_node("Barrier", bns + "ethics", {"id": "ethics", "label": "Ethics and regulatory", "kind": "category"})
    b.add_node(
        "Barrier",
        bns + "stalled-ethics",
        {
            "id": "stalled-ethics",
            "label": "Stalled ethics approval",
            "alt_labels": ["still waiting for the ethics committee"],
            "severity": 0.8,
            "category": "ethics",
        },
    )
    b.add_rel("BROADER", "Barrier", bns + "contract-revisions", "Barrier", bns + "contracting")
    b.add_rel("BROADER", "Barrier", bns + "stalled-ethics", "Barrier", bns + "ethics")
    for tid, label, barrier in (
        ("contract-template", "Contract template", "contract-revisions"),
        ("master-agreement", "Master agreement", "contracting"),
        ("ethics-liaison", "Ethics liaison", "stalled-ethics"),
        ("single-review", "Single ethics review", "ethics"),
    ):
        b.add_node("Tactic", tns + tid, {"id": tid, "label": label, "effort": "low", "channel": "email"})
        b.add_rel("MITIGATES", "Tactic", tns + tid, "Barrier", bns + barrier, {"evidence_level": "expert-consensus"})
    return b


def build_graph(
    store: GraphStore,
    seed: int = 5,
    *,
    sites: int = SITES,
    per_site: float = PER_SITE,
    out: Path | None = None,
    truth: Path | None = None,
) -> Any:
    """Ontology + a seeded synthetic history with synthesised sites, investigators and studies."""
    sync_ontology(store)
    config = GeneratorConfig(seed=seed, scale="small", synthesize_sites=sites, per_site=per_site)
    return generate(store, config, out=out, truth=truth)


def dump(store: GraphStore) -> dict[str, Any]:
    """Every node and relationship of the store, comparable across stores."""
    from sitegraph.graph.schema import NODES, RELATIONSHIPS

    nodes = {
        label: sorted(json.dumps(p, sort_keys=True) for p in store.iter_nodes(label))
        for label in NODES
        if label != "SitegraphMeta"
    }
    rels = {
        t: sorted(json.dumps([r.start, r.end, r.props], sort_keys=True) for r in store.iter_relationships(t))
        for t in RELATIONSHIPS
    }
    return {"nodes": nodes, "rels": rels}


def test_same_seed_same_data_on_both_stores(store: GraphStore, tmp_path: Path) -> None:
    report = build_graph(store, seed=5)
    assert report.interactions == SITES * PER_SITE
    assert report.synthetic_sites == SITES and report.observations > 0 and report.tags > 0 and report.applications > 0
    reference = MemoryStore(tmp_path / "reference")
    build_graph(reference, seed=5)
    assert dump(store) == dump(reference)  # same seed, same graph, whichever store holds it
    reference.close()


def test_different_seed_different_data(tmp_path: Path) -> None:
    a, b = MemoryStore(tmp_path / "a"), MemoryStore(tmp_path / "b")
    build_graph(a, seed=5)
    build_graph(b, seed=6)
    da, db = dump(a), dump(b)
    assert da["nodes"]["Interaction"] != db["nodes"]["Interaction"]
    assert da["rels"]["PARTICIPATES_IN"] != db["rels"]["PARTICIPATES_IN"]


def test_generate_twice_changes_nothing(tmp_path: Path) -> None:
    st = MemoryStore(tmp_path / "m")
    build_graph(st, seed=5)
    first = dump(st)
    generate(st, GeneratorConfig(seed=5, scale="small", synthesize_sites=SITES, per_site=PER_SITE))
    assert dump(st) == first


def test_csv_out_loads_to_the_same_graph(store: GraphStore, tmp_path: Path) -> None:
    out = tmp_path / "csv"
    reference = MemoryStore(tmp_path / "reference")
    build_graph(reference, seed=9, out=out)
    names = sorted(p.name for p in out.glob("*.csv"))
    assert {
        "sites.csv",
        "investigators.csv",
        "studies.csv",
        "site_studies.csv",
        "interactions.csv",
        "interaction_barriers.csv",
    } <= set(names)
    sync_ontology(store)
    result = read_csv_folder(out)
    assert result.problems == []
    store.write(result.batch)
    assert dump(store) == dump(reference)
    reference.close()


def test_chunk_size_does_not_change_the_data(tmp_path: Path) -> None:
    a, b = MemoryStore(tmp_path / "a"), MemoryStore(tmp_path / "b")
    for st, chunk in ((a, 20_000), (b, 97)):
        sync_ontology(st)
        generate(
            st,
            GeneratorConfig(seed=3, scale="small", synthesize_sites=20, per_site=10, chunk_size=chunk),
            out=tmp_path / f"csv{chunk}",
        )
    assert dump(a) == dump(b)
    assert (tmp_path / "csv20000" / "interactions.csv").read_bytes() == (tmp_path / "csv97" / "interactions.csv").read_bytes()


def test_truth_file(tmp_path: Path) -> None:
    st = MemoryStore(tmp_path / "m")
    truth = tmp_path / "truth.json"
    build_graph(st, seed=5, truth=truth)
    doc = json.loads(truth.read_text())
    assert doc["seed"] == 5 and len(doc["sites"]) == SITES
    tactics = {t["iri"] for t in st.iter_nodes("Tactic")}
    barriers = {b["iri"] for b in st.iter_nodes("Barrier")}
    clusters = {s["cluster"] for s in doc["sites"].values()}
    assert len(clusters) > 1
    for site in doc["sites"].values():
        assert site["barriers"] and set(site["barriers"]) <= barriers
        assert set(site["works"]) <= tactics
        assert all(site["tactic_success"][t] >= doc["works_threshold"] for t in site["works"])
        assert site["preferred_channel"] in ("call", "email", "visit", "fax", "portal")
    # the truth is not in the graph
    assert all("cluster" not in s for s in st.iter_nodes("Site"))


def test_site_study_facts_follow_the_published_figures(tmp_path: Path) -> None:
    st = MemoryStore(tmp_path / "m")
    sync_ontology(st)
    generate(st, GeneratorConfig(seed=2, scale="small", synthesize_sites=400, per_site=2))
    facts = [r.props for r in st.iter_relationships("PARTICIPATES_IN")]
    assert len(facts) >= 400
    never = sum(1 for f in facts if "activation_days" not in f) / len(facts)
    assert 0.05 < never < 0.2  # 11% of initiated sites never activate
    zero = sum(1 for f in facts if f["enrolled"] == 0) / len(facts)
    assert 0.11 <= zero <= 0.4  # 11% (Tufts) to about a third (Medidata) enrol no one
    ethics = statistics.median(f["ethics_approval_days"] for f in facts)
    assert 90 < ethics < 200  # median 114 days, longer at sites with ethics barriers
    screened = [f for f in facts if f["screened"] > 0]
    sf = sum(f["screen_failures"] for f in screened) / sum(f["screened"] for f in screened)
    assert 0.15 < sf < 0.55  # 19-51%
    assert all(f["screened"] == f["enrolled"] + f["screen_failures"] for f in facts)
    assert all(f["contract_revisions"] >= 1 for f in facts)


def test_notes_are_tagged_and_scored(tmp_path: Path) -> None:
    st = MemoryStore(tmp_path / "m")
    out = tmp_path / "csv"
    build_graph(st, seed=4, out=out)
    with (out / "interactions.csv").open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    assert all(r["note"] and -1 <= float(r["sentiment"]) <= 1 for r in rows)
    assert any(r["tactic_id"] and r["outcome"] for r in rows)
    with (out / "interaction_barriers.csv").open(encoding="utf-8") as f:
        sources = {r["source"] for r in csv.DictReader(f)}
    assert sources == {"observed", "tagged"}
    times = [r["occurred_at"] for r in rows]
    assert all(t.endswith("+00:00") for t in times) and max(times) <= "2025-07-01"


def test_usage_errors(tmp_path: Path) -> None:
    st = MemoryStore(tmp_path / "m")
    with pytest.raises(UsageError, match="ontology"):
        generate(st, GeneratorConfig(seed=1, scale="small", synthesize_sites=5))
    sync_ontology(st)
    with pytest.raises(UsageError, match="scale"):
        generate(st, GeneratorConfig(scale="huge"))
    with pytest.raises(UsageError, match="no sites"):
        generate(st, GeneratorConfig(scale="demo"))
    assert set(SCALES) == {"demo", "small", "medium", "large"}


def cli_app() -> typer.Typer:
    """The sitegraph app, with this module's commands registered if the lead has not yet."""
    from sitegraph.cli import app, recommend_cmd

    names = {c.name or (c.callback.__name__ if c.callback else "") for c in app.registered_commands}
    if "recommend" in names:
        return app
    local = typer.Typer()
    for fn in (
        recommend_cmd.generate,
        recommend_cmd.related,
        recommend_cmd.recommend,
        recommend_cmd.effectiveness,
        recommend_cmd.evaluate,
    ):
        local.command()(fn)
    return local


def test_generate_cli(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sitegraph.settings import get_settings

    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SITEGRAPH_STORE", "memory")
    get_settings.cache_clear()
    try:
        home_store = MemoryStore(tmp_path / "home" / "memory")
        sync_ontology(home_store)
        home_store.close()
        runner = CliRunner()
        args = [
            "generate",
            "--scale",
            "small",
            "--synthesize-sites",
            "12",
            "--per-site",
            "5",
            "--seed",
            "1",
            "--json",
            "--out",
            str(tmp_path / "csv"),
            "--truth",
            str(tmp_path / "truth.json"),
        ]
        result = runner.invoke(cli_app(), args)
        assert result.exit_code == 0, result.output
        report = json.loads(result.stdout)
        assert report["interactions"] == 60 and report["synthetic_sites"] == 12
        assert (tmp_path / "truth.json").exists() and (tmp_path / "csv" / "interactions.csv").exists()
        bad = runner.invoke(cli_app(), ["generate", "--scale", "enormous"])
        assert bad.exit_code == 2
        csv_only = runner.invoke(cli_app(), ["generate", "--csv-only"])
        assert csv_only.exit_code == 2
    finally:
        get_settings.cache_clear()


@pytest.mark.slow
def test_generate_at_scale_csv_only(tmp_path: Path) -> None:
    """A quarter of a million interactions streamed to CSV without touching the store (run by make bench)."""
    st = MemoryStore(tmp_path / "m")
    sync_ontology(st)
    before = st.stats()
    config = GeneratorConfig(seed=8, scale="large", synthesize_sites=5_000, interactions=250_000, write_store=False)
    report = generate(st, config, out=tmp_path / "csv")
    assert report.interactions == 250_000
    assert st.stats() == before
    with (tmp_path / "csv" / "interactions.csv").open(encoding="utf-8") as f:
        assert sum(1 for _ in f) == 250_001
