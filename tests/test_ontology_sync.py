"""Sync into a store and export back: runs on every store the ``store`` fixture provides."""

from __future__ import annotations

from pathlib import Path

import pytest
from rdflib import Graph
from typer.testing import CliRunner

from sitegraph.errors import InvalidInputError
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.ontology import BARRIER, TACTIC, Ontology, export, export_graph, load_ontology, same_content, sync

BROKEN = Path(__file__).parent / "data" / "ontology_broken"
BASE = BROKEN / "valid-base.ttl"


@pytest.fixture(scope="module")
def onto() -> Ontology:
    return load_ontology()


def _snapshot(store: GraphStore) -> tuple[object, ...]:
    return (
        store.stats().as_dict(),
        [sorted(p.items()) for label in ("Barrier", "Tactic") for p in store.iter_nodes(label)],
        [(r.start, r.end, sorted(r.props.items())) for t in ("BROADER", "MITIGATES") for r in store.iter_relationships(t)],
    )


def test_sync_creates_nodes_and_relationships(store: GraphStore, onto: Ontology) -> None:
    report = sync(store, onto)
    stats = store.stats()
    assert stats.nodes["Barrier"] == len(onto.categories) + len(onto.barriers)
    assert stats.nodes["Tactic"] == len(onto.groups) + len(onto.tactics)
    assert stats.relationships["BROADER"] == sum(len(c.broader) for c in onto.concepts().values())
    assert stats.relationships["MITIGATES"] == len(onto.links)
    assert len(report.created["Barrier"]) == stats.nodes["Barrier"]
    node = store.get_node("Barrier", str(BARRIER) + "stalled-ethics-approval")
    assert node is not None
    assert node["id"] == "stalled-ethics-approval" and node["category"] == "ethics-and-regulatory-approval"
    assert "IRB still hasn't approved" in node["alt_labels"] and node["deprecated"] is False
    assert isinstance(node["severity"], float)
    tactic = store.get_node("Tactic", str(TACTIC) + "telephone-reminders-to-non-responders")
    assert tactic is not None
    assert (tactic["role"], tactic["channel"], tactic["effort"]) == ("study-coordinator", "phone", "medium")
    mitigations = store.neighbors("Barrier", str(BARRIER) + "low-response-to-invitations", "MITIGATES", "in")
    evidence = {props["evidence_level"] for _label, _node, props in mitigations}
    assert "published-trial-evidence" in evidence
    assert all(props["source"] and props["iri"] for _label, _node, props in mitigations)


def test_sync_twice_changes_nothing(store: GraphStore, onto: Ontology) -> None:
    sync(store, onto)
    before, version = _snapshot(store), store.version()
    report = sync(store, onto)
    assert not report.changed, report.render()
    assert _snapshot(store) == before
    assert store.version() == version


def test_sync_of_an_invalid_ontology_changes_nothing(store: GraphStore) -> None:
    sync(store, BASE)
    before = _snapshot(store)
    broken = ("broader-cycle.ttl", "undefined-reference--link-to-undefined-tactic.ttl", "shacl--evidence-level-outside-list.ttl")
    for name in broken:
        with pytest.raises(InvalidInputError) as err:
            sync(store, BROKEN / name)
        assert "nothing was written" in str(err.value)
    assert _snapshot(store) == before


def _without_barrier(tmp_path: Path, barrier_id: str) -> Path:
    """The valid base with one barrier and its links removed."""
    text = BASE.read_text()
    blocks = text.split("\n\n")
    kept = [b for b in blocks if f"sgb:{barrier_id} a" not in b and f"sg:barrier sgb:{barrier_id}" not in b]
    out = tmp_path / "smaller.ttl"
    out.write_text("\n\n".join(kept))
    return out


def test_removed_concept_is_deprecated_while_referenced_and_deleted_otherwise(store: GraphStore, tmp_path: Path) -> None:
    sync(store, BASE)
    kept_iri = str(BARRIER) + "budget-negotiation-stalled"
    batch = GraphBatch()
    batch.add_node("Interaction", "call-1", {"channel": "phone", "note": "budget not agreed"})
    batch.add_rel("CONCERNS", "Interaction", "call-1", "Barrier", kept_iri, {"source": "test"})
    store.write(batch)

    smaller = _without_barrier(tmp_path, "budget-negotiation-stalled")
    report = sync(store, smaller)
    assert report.deprecated["Barrier"] == [kept_iri]
    assert report.rels_deleted["MITIGATES"] == 1 and report.rels_deleted["BROADER"] == 1
    node = store.get_node("Barrier", kept_iri)
    assert node is not None and node["deprecated"] is True and node["removed_from_ontology"] is True
    assert store.neighbors("Barrier", kept_iri, "CONCERNS", "in")
    assert not sync(store, smaller).changed  # idempotent with a kept concept too

    store.delete_nodes("Interaction", ["call-1"])
    report = sync(store, smaller)
    assert report.deleted["Barrier"] == [kept_iri]
    assert store.get_node("Barrier", kept_iri) is None

    report = sync(store, BASE)  # brought back: live again
    assert report.created["Barrier"] == [kept_iri]
    node = store.get_node("Barrier", kept_iri)
    assert node is not None and node["deprecated"] is False and "removed_from_ontology" not in node


def test_changed_property_is_updated_and_dropped_property_removed(store: GraphStore, tmp_path: Path) -> None:
    sync(store, BASE)
    changed = tmp_path / "changed.ttl"
    changed.write_text(BASE.read_text().replace('    skos:altLabel "budget negotiation stalled again"@en ;\n', "", 1))
    report = sync(store, changed)
    assert report.updated["Barrier"] == [str(BARRIER) + "budget-negotiation-stalled"]
    node = store.get_node("Barrier", str(BARRIER) + "budget-negotiation-stalled")
    assert node is not None and "alt_labels" not in node


def test_export_round_trips(store: GraphStore, onto: Ontology) -> None:
    sync(store, onto)
    assert same_content(export_graph(store), onto.content_graph())
    turtle = Graph().parse(data=export(store, "turtle"), format="turtle")
    assert same_content(turtle, onto.content_graph())
    jsonld = Graph().parse(data=export(store, "json-ld"), format="json-ld")
    assert same_content(jsonld, onto.content_graph())


def test_content_graph_is_the_content_files(onto: Ontology) -> None:
    files = Graph()
    for name in ("barriers.ttl", "tactics.ttl", "mitigations.ttl"):
        files.parse(Path(onto.files[0]).parent / name, format="turtle")
    assert same_content(files, onto.content_graph())


def test_cli_sync_and_export(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    from sitegraph.cli.ontology_cmd import app
    from sitegraph.settings import get_settings

    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path / "home"))
    monkeypatch.setenv("SITEGRAPH_STORE", "memory")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        result = runner.invoke(app, ["sync", "--path", str(BASE)])
        assert result.exit_code == 0, result.output
        assert "Barrier nodes: 3 created" in result.output
        again = runner.invoke(app, ["sync", "--path", str(BASE)])
        assert "nothing changed" in again.output
        bad = runner.invoke(app, ["sync", "--path", str(BROKEN / "broader-cycle.ttl")])
        assert bad.exit_code == 1 and "broader-cycle" in bad.output
        out = tmp_path / "export.ttl"
        exported = runner.invoke(app, ["export", "--format", "turtle", "--out", str(out)])
        assert exported.exit_code == 0, exported.output
        assert same_content(Graph().parse(out, format="turtle"), load_ontology(BASE).content_graph())
        wrong = runner.invoke(app, ["export", "--format", "xml"])
        assert wrong.exit_code == 2
    finally:
        get_settings.cache_clear()
