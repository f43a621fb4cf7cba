"""Snapshots: never stale after a write, never changed under a reader, identical on both stores."""

from __future__ import annotations

from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.queries.snapshot import build_snapshot, get_snapshot, write_through
from tests.test_store import small_batch


def _interaction(i: int) -> GraphBatch:
    b = GraphBatch()
    b.add_node("Interaction", f"int:{i}", {"channel": "call", "note": "hello", "occurred_at": "2025-01-01T00:00:00+00:00"})
    b.add_rel("WITH_SITE", "Interaction", f"int:{i}", "Site", "site:a")
    return b


def test_snapshot_follows_writes_and_old_ones_stay_put(store: GraphStore) -> None:
    store.write(small_batch())
    first = get_snapshot(store)
    assert get_snapshot(store) is first  # cached while nothing changes
    n_before = first.graph.number_of_nodes()
    store.write(_interaction(1))
    second = get_snapshot(store)
    assert second is not first
    assert second.node("Interaction", "int:1") is not None
    # the snapshot a reader already held did not change under it
    assert first.graph.number_of_nodes() == n_before
    assert first.node("Interaction", "int:1") is None


def test_write_through_equals_a_full_rebuild(store: GraphStore) -> None:
    store.write(small_batch())
    before = get_snapshot(store)
    write_through(store, _interaction(2))
    after = get_snapshot(store)
    assert after.version == store.version()
    assert before.node("Interaction", "int:2") is None
    rebuilt = build_snapshot(store)
    assert sorted(after.graph.nodes(data=True)) == sorted(rebuilt.graph.nodes(data=True))
    assert sorted(after.graph.edges(keys=True, data=True)) == sorted(rebuilt.graph.edges(keys=True, data=True))


def test_snapshots_are_identical_on_both_stores_shape(store: GraphStore) -> None:
    store.write(small_batch())
    snap = get_snapshot(store)
    assert [k for k, _ in snap.nodes("Site")] == ["site:a", "site:b"]
    assert [(v, d["site_id"]) for v, d in snap.out("Investigator", "inv:jane-doe", "INVESTIGATOR_ON")] == [
        (("Study", "NCT00000001"), "site:a"),
        (("Study", "NCT00000001"), "site:b"),
    ]
