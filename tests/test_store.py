"""Behavioural tests of the store interface, run against the embedded store and a real Neo4j."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegraph.errors import SchemaError, StoreError
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch, GraphStore, RelKey


def small_batch() -> GraphBatch:
    b = GraphBatch()
    b.add_node("Site", "site:a", {"name": "Alpha Hospital", "city": "Boston", "aliases": ["Alpha", "Alpha Hosp."]})
    b.add_node("Site", "site:b", {"name": "Beta Clinic", "city": "Lyon", "lat": 45.76})
    b.add_node("Study", "NCT00000001", {"title": "A study", "enrollment": 120})
    b.add_node("Investigator", "inv:jane-doe", {"name": "Jane Doe", "degrees": ["MD"]})
    b.add_rel("PARTICIPATES_IN", "Site", "site:a", "Study", "NCT00000001", {"status": "RECRUITING", "enrolled": 3})
    b.add_rel("PARTICIPATES_IN", "Site", "site:b", "Study", "NCT00000001", {"status": "COMPLETED"})
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:a")
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:b")
    b.add_rel(
        "INVESTIGATOR_ON",
        "Investigator",
        "inv:jane-doe",
        "Study",
        "NCT00000001",
        {"role": "PRINCIPAL_INVESTIGATOR", "site_id": "site:a"},
    )
    b.add_rel(
        "INVESTIGATOR_ON",
        "Investigator",
        "inv:jane-doe",
        "Study",
        "NCT00000001",
        {"role": "SUB_INVESTIGATOR", "site_id": "site:b"},
    )
    return b


def test_write_and_count(store: GraphStore) -> None:
    store.ensure_schema()
    store.write(small_batch())
    stats = store.stats()
    assert stats.nodes["Site"] == 2
    assert stats.nodes["Study"] == 1
    assert stats.nodes["Investigator"] == 1
    assert stats.relationships["PARTICIPATES_IN"] == 2
    assert stats.relationships["WORKS_AT"] == 2
    # identity property site_id makes two INVESTIGATOR_ON relationships between the same nodes
    assert stats.relationships["INVESTIGATOR_ON"] == 2
    assert "SitegraphMeta" not in stats.nodes


def test_second_write_changes_nothing(store: GraphStore) -> None:
    store.write(small_batch())
    first = store.stats()
    nodes_first = list(store.iter_nodes("Site"))
    store.write(small_batch())
    assert store.stats() == first
    assert list(store.iter_nodes("Site")) == nodes_first


def test_properties_merge_and_none_removes(store: GraphStore) -> None:
    store.write(small_batch())
    b = GraphBatch()
    b.add_node("Site", "site:a", {"country": "United States", "city": None})
    store.write(b)
    node = store.get_node("Site", "site:a")
    assert node is not None
    assert node["id"] == "site:a"
    assert node["name"] == "Alpha Hospital"
    assert node["country"] == "United States"
    assert "city" not in node
    assert node["aliases"] == ["Alpha", "Alpha Hosp."]


def test_relationship_to_missing_node_writes_nothing(store: GraphStore) -> None:
    store.write(small_batch())
    before = store.stats()
    b = GraphBatch()
    b.add_node("Site", "site:c", {"name": "Gamma"})
    b.add_rel("PARTICIPATES_IN", "Site", "site:c", "Study", "NCT99999999")
    with pytest.raises(StoreError, match="NCT99999999"):
        store.write(b)
    assert store.stats() == before
    assert store.get_node("Site", "site:c") is None


def test_reads_are_ordered_and_typed(store: GraphStore) -> None:
    store.write(small_batch())
    sites = list(store.iter_nodes("Site"))
    assert [s["id"] for s in sites] == ["site:a", "site:b"]
    assert sites[1]["lat"] == pytest.approx(45.76)
    rels = list(store.iter_relationships("INVESTIGATOR_ON"))
    assert [(r.start, r.end, r.props["site_id"], r.props["role"]) for r in rels] == [
        ("inv:jane-doe", "NCT00000001", "site:a", "PRINCIPAL_INVESTIGATOR"),
        ("inv:jane-doe", "NCT00000001", "site:b", "SUB_INVESTIGATOR"),
    ]
    study = store.get_node("Study", "NCT00000001")
    assert study is not None and study["enrollment"] == 120 and isinstance(study["enrollment"], int)


def test_neighbors_both_directions(store: GraphStore) -> None:
    store.write(small_batch())
    out = store.neighbors("Site", "site:a", "PARTICIPATES_IN", "out")
    assert [(lbl, p["id"], r["enrolled"]) for lbl, p, r in out] == [("Study", "NCT00000001", 3)]
    inbound = store.neighbors("Study", "NCT00000001", "PARTICIPATES_IN", "in")
    assert [p["id"] for _, p, _ in inbound] == ["site:a", "site:b"]
    assert store.neighbors("Site", "site:zzz", "PARTICIPATES_IN") == []


def test_delete_nodes_and_relationships(store: GraphStore) -> None:
    store.write(small_batch())
    removed = store.delete_relationships([RelKey("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:b")])
    assert removed == 1
    assert store.stats().relationships["WORKS_AT"] == 1
    assert store.delete_nodes("Site", ["site:b", "site:nope"]) == 1
    stats = store.stats()
    assert stats.nodes["Site"] == 1
    assert stats.relationships["PARTICIPATES_IN"] == 1


def test_version_changes_on_every_write(store: GraphStore) -> None:
    v0 = store.version()
    store.write(small_batch())
    v1 = store.version()
    assert v1 > v0
    b = GraphBatch()
    b.add_node("Site", "site:a", {"name": "Alpha General"})
    store.write(b)
    assert store.version() > v1


def test_existing_keys(store: GraphStore) -> None:
    store.write(small_batch())
    assert store.existing_keys("Site", ["site:a", "site:x"]) == {"site:a"}


def test_unknown_label_is_refused(store: GraphStore) -> None:
    with pytest.raises(SchemaError):
        store.get_node("Patient) DETACH DELETE (n", "x")
    with pytest.raises(SchemaError):
        GraphBatch().add_node("Robert'); DROP", "x")
    with pytest.raises(SchemaError):
        GraphBatch().add_rel("WORKS_AT", "Site", "a", "Investigator", "b")


def test_values_with_cypher_in_them_are_stored_verbatim(store: GraphStore) -> None:
    name = "x'}) MATCH (n) DETACH DELETE n //"
    b = GraphBatch()
    b.add_node("Site", "site:evil", {"name": name})
    store.write(b)
    node = store.get_node("Site", "site:evil")
    assert node is not None and node["name"] == name
    assert store.stats().nodes["Site"] == 1


def test_clear_needs_confirmation(store: GraphStore) -> None:
    store.write(small_batch())
    with pytest.raises(StoreError):
        store.clear()
    assert store.stats().nodes["Site"] == 2
    store.clear(confirm=True)
    assert sum(store.stats().nodes.values()) == 0


# --- embedded store specifics -------------------------------------------------------------------


def test_memory_store_persists_across_processes(tmp_path: Path) -> None:
    a = MemoryStore(tmp_path)
    a.write(small_batch())
    b = MemoryStore(tmp_path)  # a second connection, as another process would open
    assert b.stats() == a.stats()
    extra = GraphBatch()
    extra.add_node("Site", "site:z", {"name": "Zeta"})
    b.write(extra)
    # a sees b's committed write without reopening
    assert a.get_node("Site", "site:z") == {"id": "site:z", "name": "Zeta"}
    a.close()
    b.close()


def test_memory_store_failed_write_keeps_previous_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = MemoryStore(tmp_path)
    store.write(small_batch())
    before = store.stats()

    big = GraphBatch()
    for i in range(50_000):
        big.add_node("Site", f"site:n{i}", {"name": f"Site {i}"})

    def boom() -> None:
        raise RuntimeError("simulated crash after the rows were written")

    monkeypatch.setattr(store, "_bump_version", boom)
    with pytest.raises(RuntimeError):
        store.write(big)
    assert store.stats() == before
    reopened = MemoryStore(tmp_path)
    assert reopened.stats() == before
    assert reopened.get_node("Site", "site:n0") is None
    store.close()
    reopened.close()
