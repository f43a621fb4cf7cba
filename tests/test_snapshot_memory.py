"""The compact snapshot graph: same content as plain networkx, copy on write, no cycles, freed when dropped."""

from __future__ import annotations

import copy
import gc
import json
import weakref
from pathlib import Path
from typing import Any

import networkx as nx
import orjson
import pytest

from sitegraph.graph.memory import MemoryStore, apply_to_graph
from sitegraph.graph.nxgraph import EMPTY_PROPS, GraphBuilder, SnapshotGraph, cow_copy, remove_edge, remove_nodes
from sitegraph.graph.store import GraphBatch, GraphStore, RelKey
from sitegraph.queries.snapshot import build_snapshot, get_snapshot, write_through
from tests.test_store import small_batch


def _content(g: nx.MultiDiGraph) -> tuple[dict[Any, Any], dict[Any, Any]]:
    return (
        {n: copy.deepcopy(dict(d)) for n, d in g.nodes(data=True)},
        {(u, v, k): dict(d) for u, v, k, d in g.edges(keys=True, data=True)},
    )


def _plain(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """The same graph built the straightforward way (add_node / add_edge)."""
    h = nx.MultiDiGraph()
    for n, d in g.nodes(data=True):
        h.add_node(n, **copy.deepcopy(dict(d)))
    for u, v, k, d in g.edges(keys=True, data=True):
        h.add_edge(u, v, key=k, **dict(d))
    return h


def _changes() -> GraphBatch:
    b = GraphBatch()
    b.add_node("Site", "site:a", {"city": None, "country": "US"})  # update: one removed, one added
    b.add_node("Site", "site:n", {"name": "New", "lat": None})  # new
    b.add_rel("PARTICIPATES_IN", "Site", "site:a", "Study", "NCT00000001", {"enrolled": None, "target": 9})  # merged
    b.add_rel("PARTICIPATES_IN", "Site", "site:n", "Study", "NCT00000001", {"status": "X"})  # new
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:n")  # new, no properties
    return b


def test_empty_props_are_shared_read_only_and_serialise_as_a_dict() -> None:
    assert EMPTY_PROPS == {} and isinstance(EMPTY_PROPS, dict) and not EMPTY_PROPS
    for change in (
        lambda d: d.__setitem__("a", 1),
        lambda d: d.update(a=1),
        lambda d: d.setdefault("a", 1),
        lambda d: d.pop("a", None),
        lambda d: d.clear(),
    ):
        with pytest.raises(TypeError):
            change(EMPTY_PROPS)
    EMPTY_PROPS.update()  # nothing to add: allowed (networkx's add_edge does this)
    assert EMPTY_PROPS == {}
    assert json.dumps(EMPTY_PROPS) == "{}" and orjson.dumps(EMPTY_PROPS) == b"{}"
    assert dict(EMPTY_PROPS) == {} and type(EMPTY_PROPS.copy()) is dict
    assert copy.deepcopy(EMPTY_PROPS) == {}


def test_loaded_graph_is_compact_and_equals_plain_networkx(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.write(small_batch())
    g = store.graph()
    assert isinstance(g, SnapshotGraph) and isinstance(g, nx.MultiDiGraph)
    assert _content(g) == _content(_plain(g))
    own = {n: n for n in g._node}
    for u, nbrs in g._succ.items():
        assert u is own[u]
        for v, keydict in nbrs.items():
            assert v is own[v]  # an edge end is the node's own id tuple, not a copy
            assert g._pred[v][u] is keydict
            for ek, d in keydict.items():
                if not d:
                    assert d is EMPTY_PROPS
                if ek[1] == "{}":
                    assert ek is next(k for k in keydict if k == ek)
    works_at = [ek for _, _, ek in g.edges(keys=True) if ek[0] == "WORKS_AT"]
    assert len(works_at) == 2 and works_at[0] is works_at[1]  # one key tuple per type without identity
    store.close()


def test_builder_interns_repeated_values_only() -> None:
    b = GraphBuilder()
    for i in range(10_000):
        attrs = b.props("Interaction", {"channel": "ca" + "ll", "occurred_at": f"2025-01-01T00:00:{i:05d}"})
        b.add_node("Interaction", f"ix{i}", attrs)
    g = b.finish()
    channels = {id(d["channel"]) for _, d in g.nodes(data=True)}
    assert len(channels) == 1
    assert len({d["occurred_at"] for _, d in g.nodes(data=True)}) == 10_000


def test_cow_copy_leaves_the_original_unchanged_and_equals_a_plain_write() -> None:
    b = GraphBuilder()
    for label, rows in small_batch().nodes.items():
        for key, props in rows.items():
            b.add_node(label, key, b.props(label, props, {"_label": label, "id": key}))
    for rk, props in small_batch().rels.items():
        b.add_edge(
            b.node_id(rk.start_label, rk.start),
            b.node_id(rk.end_label, rk.end),
            b.edge_key(rk.type, rk.ident_json()),
            b.edge_props(rk.type, props),
        )
    g = b.finish()
    before = _content(g)
    plain = _plain(g)

    h = cow_copy(g)
    apply_to_graph(h, _changes())
    apply_to_graph(h, _changes())  # a second write to the same copy: its own dicts change in place
    assert _content(g) == before
    apply_to_graph(plain, _changes())
    assert _content(h) == _content(plain)
    assert h.nodes[("Site", "site:a")]["country"] == "US" and "city" not in h.nodes[("Site", "site:a")]
    assert "country" not in g.nodes[("Site", "site:a")]

    k = cow_copy(h)
    remove_edge(k, ("Investigator", "inv:jane-doe"), ("Site", "site:a"), ("WORKS_AT", "{}"))
    remove_nodes(k, [("Site", "site:b"), ("Site", "nowhere")])
    assert _content(g) == before
    assert _content(h) == _content(plain)
    plain.remove_edge(("Investigator", "inv:jane-doe"), ("Site", "site:a"), key=("WORKS_AT", "{}"))
    plain.remove_node(("Site", "site:b"))
    assert _content(k) == _content(plain)
    assert sorted(k._pred) == sorted(k._succ) == sorted(k._node)


def test_memory_store_write_while_a_snapshot_is_held(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.write(small_batch())
    held = get_snapshot(store)
    before = _content(held.graph)
    store.write(_changes())
    store.delete_relationships([RelKey("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:b")])
    after = get_snapshot(store)
    store.delete_nodes("Site", ["site:a"])
    assert _content(held.graph) == before  # nothing a later write did reached the held snapshot
    assert after.node("Site", "site:n") == {"id": "site:n", "name": "New"}
    assert ("Site", "site:a") in after.graph and ("Site", "site:a") not in get_snapshot(store).graph
    reloaded = MemoryStore(tmp_path)
    assert _content(store.graph()) == _content(reloaded.graph())
    store.close()
    reloaded.close()


def test_write_through_never_changes_a_held_snapshot(store: GraphStore) -> None:
    """On Neo4j the new snapshot is a copy on write of the old one with the batch applied."""
    store.write(small_batch())
    held = get_snapshot(store)
    before = _content(held.graph)
    write_through(store, _changes())
    write_through(store, _changes())
    after = get_snapshot(store)
    assert after is not held and after.version == store.version()
    assert _content(held.graph) == before
    site_a = after.node("Site", "site:a")
    assert site_a is not None and site_a["country"] == "US" and "city" not in site_a
    assert _content(after.graph) == _content(build_snapshot(store).graph)


def test_a_dropped_snapshot_graph_is_freed_without_the_cyclic_collector(tmp_path: Path) -> None:
    store = MemoryStore(tmp_path)
    store.write(small_batch())
    snap = build_snapshot(store)
    g = snap.graph
    list(g.edges(keys=True, data=True))  # networkx would cache a view holding the graph: a cycle
    list(g.out_edges(("Site", "site:a")))
    list(g.in_degree())
    ref = weakref.ref(g)
    was = gc.isenabled()
    gc.disable()
    try:
        del g, snap
        store.close()
        store._graph = None
        del store
        assert ref() is None  # freed by reference counting alone, although build_snapshot froze it
    finally:
        if was:
            gc.enable()


def test_readers_do_not_wait_for_a_write_under_way(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """While a write is under way (held here before its commit), the version and the snapshot are the
    previous ones, at once; once it commits, the next read sees it."""
    import threading

    store = MemoryStore(tmp_path / "m")
    store.write(small_batch())
    before = get_snapshot(store)
    inside, release = threading.Event(), threading.Event()
    bump = MemoryStore._bump_version

    def held(self: MemoryStore) -> None:
        inside.set()
        assert release.wait(10)
        bump(self)

    monkeypatch.setattr(MemoryStore, "_bump_version", held)
    writer = threading.Thread(target=write_through, args=(store, _changes()))
    writer.start()
    try:
        assert inside.wait(10)
        got: list[object] = []
        reader = threading.Thread(target=lambda: got.extend([store.version(), get_snapshot(store)]))
        reader.start()
        reader.join(5)
        assert not reader.is_alive(), "a reader waited for the write"
        assert got == [before.version, before]
    finally:
        release.set()
        writer.join(10)
    after = get_snapshot(store)
    assert after.version == before.version + 1 and after is not before
    assert _content(after.graph) != _content(before.graph)
    store.close()
