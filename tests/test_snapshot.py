"""Snapshots: never stale after a write, never changed under a reader, identical on both stores."""

from __future__ import annotations

import threading
import time

import pytest

from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.queries.snapshot import VersionProbe, _read_graph, build_snapshot, get_snapshot, write_through
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


def test_snapshot_reader_equals_the_generic_iterators(store: GraphStore) -> None:
    """The fast reader (streamed over Bolt for Neo4j) reads exactly what the store's iterators give."""
    store.write(small_batch())
    store.write(_interaction(3))
    fast = build_snapshot(store).graph
    generic = _read_graph(store)
    assert sorted(fast.nodes(data=True)) == sorted(generic.nodes(data=True))
    assert sorted(fast.edges(keys=True, data=True)) == sorted(generic.edges(keys=True, data=True))


def test_version_probe_shares_reads_and_is_never_older_than_the_call() -> None:
    value = [1]
    reads: list[float] = []
    gate = threading.Event()

    def read() -> int:
        reads.append(time.monotonic())
        seen = value[0]
        gate.wait(5)
        return seen

    probe = VersionProbe(read)
    results: list[int] = []
    first = threading.Thread(target=lambda: results.append(probe.current()))
    first.start()
    while not reads:
        time.sleep(0.001)
    value[0] = 2  # a write lands while the first read is under way
    waiters = [threading.Thread(target=lambda: results.append(probe.current())) for _ in range(8)]
    for t in waiters:
        t.start()
    time.sleep(0.05)
    gate.set()
    first.join()
    for t in waiters:
        t.join()
    # the late callers did not take the first read's (older) value: one more read served all eight
    assert sorted(results) == [1, 2, 2, 2, 2, 2, 2, 2, 2]
    assert len(reads) == 2 and probe.reads == 2


def test_version_probe_failure_lets_waiters_retry() -> None:
    calls = [0]

    def read() -> int:
        calls[0] += 1
        if calls[0] == 1:
            raise OSError("down")
        return 7

    probe = VersionProbe(read)
    with pytest.raises(OSError):
        probe.current()
    assert probe.current() == 7
