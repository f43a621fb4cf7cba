"""Behavioural tests of the store interface, run against the embedded store and a real Neo4j."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegraph import workers as workers_mod
from sitegraph.errors import SchemaError, StoreError
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch, GraphStore, RelKey
from sitegraph.loaders import csvfiles


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


def _mixed_batch() -> GraphBatch:
    """New nodes beside existing ones, relationships between new, new-old and old-old nodes."""
    b = GraphBatch()
    b.add_node("Site", "site:a", {"city": "Cambridge"})  # exists
    b.add_node("Site", "site:c", {"name": "Gamma", "city": None})  # new (a null sets nothing)
    b.add_node("Study", "NCT00000002", {"title": "Second"})  # new
    b.add_rel("PARTICIPATES_IN", "Site", "site:a", "Study", "NCT00000001", {"enrolled": 5})  # exists: merged
    b.add_rel("PARTICIPATES_IN", "Site", "site:c", "Study", "NCT00000001", {"status": "X", "enrolled": None})  # new end
    b.add_rel("PARTICIPATES_IN", "Site", "site:a", "Study", "NCT00000002")  # old start, new end
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:a")  # exists
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:c")
    b.add_rel(
        "INVESTIGATOR_ON", "Investigator", "inv:jane-doe", "Study", "NCT00000001", {"role": "STUDY_CHAIR", "site_id": "site:a"}
    )
    b.add_rel("INVESTIGATOR_ON", "Investigator", "inv:jane-doe", "Study", "NCT00000002", {"role": "STUDY_CHAIR", "site_id": ""})
    return b


def _check_mixed(store: GraphStore) -> None:
    stats = store.stats()
    assert stats.nodes["Site"] == 3 and stats.nodes["Study"] == 2
    assert stats.relationships["PARTICIPATES_IN"] == 4
    assert stats.relationships["WORKS_AT"] == 3
    assert stats.relationships["INVESTIGATOR_ON"] == 3
    assert store.get_node("Site", "site:a") == {
        "id": "site:a",
        "name": "Alpha Hospital",
        "city": "Cambridge",
        "aliases": ["Alpha", "Alpha Hosp."],
    }
    assert store.get_node("Site", "site:c") == {"id": "site:c", "name": "Gamma"}
    facts = {(r.start, r.end): r.props for r in store.iter_relationships("PARTICIPATES_IN")}
    assert facts[("site:a", "NCT00000001")] == {"status": "RECRUITING", "enrolled": 5}
    assert facts[("site:c", "NCT00000001")] == {"status": "X"}
    assert facts[("site:a", "NCT00000002")] == {}
    roles = {(r.end, r.props["site_id"]): r.props["role"] for r in store.iter_relationships("INVESTIGATOR_ON")}
    assert roles == {
        ("NCT00000001", "site:a"): "STUDY_CHAIR",
        ("NCT00000001", "site:b"): "SUB_INVESTIGATOR",
        ("NCT00000002", ""): "STUDY_CHAIR",
    }


def test_write_mixes_new_and_existing_nodes(store: GraphStore) -> None:
    store.write(small_batch())
    store.write(_mixed_batch())
    _check_mixed(store)
    store.write(_mixed_batch())  # again: nothing changes
    _check_mixed(store)


def test_neo4j_write_in_many_transactions(store: GraphStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Batches above the single-transaction limit: one statement per transaction, same result."""
    import sitegraph.graph.neo4j_store as neo4j_store

    monkeypatch.setattr(neo4j_store, "SINGLE_TX_LIMIT", 3)
    monkeypatch.setattr(neo4j_store, "CHUNK", 2)
    store.write(small_batch())
    store.write(_mixed_batch())
    _check_mixed(store)


@pytest.mark.neo4j
def test_neo4j_node_created_meanwhile_falls_back_to_merge(
    neo4j_session_store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """If a node thought new exists by the time it is created (another writer), the write merges instead."""
    store = neo4j_session_store
    store.clear(confirm=True)
    store.write(small_batch())
    real = store._new_keys  # type: ignore[attr-defined]

    def stale(batch: GraphBatch) -> dict[str, set[str]]:
        out: dict[str, set[str]] = real(batch)
        out["Site"].add("site:a")  # claims an existing node is new: its CREATE breaks the unique constraint
        return out

    monkeypatch.setattr(store, "_new_keys", stale)
    store.write(_mixed_batch())
    _check_mixed(store)


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


def _graph_content(store: MemoryStore) -> tuple[dict[object, dict[str, object]], dict[object, dict[str, object]]]:
    g = store.graph()
    return {n: dict(d) for n, d in g.nodes(data=True)}, {(u, v, k): dict(d) for u, v, k, d in g.edges(keys=True, data=True)}


@pytest.mark.parametrize("rebuild_indexes", [False, True])
def test_memory_store_in_memory_graph_matches_a_reload(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rebuild_indexes: bool
) -> None:
    """Writes update the loaded graph in place; it must equal what a fresh process reads from SQLite."""
    import sitegraph.graph.memory as memory

    if rebuild_indexes:  # the bulk path: secondary indexes dropped and rebuilt inside the transaction
        monkeypatch.setattr(memory, "_REINDEX_MIN_ROWS", 1)
    store = MemoryStore(tmp_path)
    store.write(small_batch())
    store.graph()  # loaded: later writes are mirrored into it
    b = GraphBatch()
    b.add_node("Site", "site:a", {"city": None, "country": "US"})  # update: one removed, one added
    b.add_node("Site", "site:n", {"name": "New", "lat": None})  # new, with a null that stores nothing
    b.add_rel("PARTICIPATES_IN", "Site", "site:a", "Study", "NCT00000001", {"enrolled": None, "target": 9})
    b.add_rel("PARTICIPATES_IN", "Site", "site:n", "Study", "NCT00000001", {"status": "X", "enrolled": None})
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:n")
    store.write(b)
    mirrored = _graph_content(store)
    assert mirrored == _graph_content(MemoryStore(tmp_path))
    assert store.get_node("Site", "site:n") == {"id": "site:n", "name": "New"}
    rels = {(r.start, r.end): r.props for r in store.iter_relationships("PARTICIPATES_IN")}
    assert rels[("site:a", "NCT00000001")] == {"status": "RECRUITING", "target": 9}
    assert rels[("site:n", "NCT00000001")] == {"status": "X"}
    indexes = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rels'")}
    assert {"rels_by_end", "rels_by_start"} <= indexes
    store.close()


def test_memory_store_failed_bulk_write_keeps_indexes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import sitegraph.graph.memory as memory

    monkeypatch.setattr(memory, "_REINDEX_MIN_ROWS", 1)
    store = MemoryStore(tmp_path)
    store.write(small_batch())
    before = store.stats()

    def boom() -> None:
        raise RuntimeError("simulated crash after the rows were written")

    monkeypatch.setattr(store, "_bump_version", boom)
    b = GraphBatch()
    b.add_node("Site", "site:n", {"name": "New"})
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:n")
    with pytest.raises(RuntimeError):
        store.write(b)
    assert store.stats() == before
    indexes = {r[0] for r in store._db.execute("SELECT name FROM sqlite_master WHERE type = 'index' AND tbl_name = 'rels'")}
    assert {"rels_by_end", "rels_by_start"} <= indexes
    store.close()


# --- the CSV reader's fast path agrees with the pydantic models -------------------------------------

_TRICKY = [
    "",
    " ",
    "a",
    " a",
    "a ",
    "a\nb",
    "a\rb",
    "a\tb",
    "\x1cx",
    "x\x1c",
    "\u00a0x",
    "x\u00a0",
    "ñ",
    "日本",
    "x" * 1000,
    "x" * 1001,
    "0",
    "007",
    "12",
    "-1",
    "+1",
    "1.0",
    "12.5",
    "1e3",
    "1_000",
    "-0",
    "-0.0",
    "0.5",
    "1",
    "-1.0",
    "90",
    "90.0000000000001",
    "-90",
    "180",
    "inf",
    "nan",
    "99999999999999999999",
    "2024-02-29",
    "2023-02-29",
    "2024-13-01",
    "2024-01-31",
    "2024-01-31T01:50:41",
    "2024-01-31T01:50:41Z",
    "2024-01-31T01:50:41+00:00",
    "2024-01-31T01:50:41-05:30",
    "2024-01-31T01:50:41+14:59",
    "2024-01-31T01:50:41+24:00",
    "2024-01-31T01:50:41.123456+02:00",
    "2024-01-31T01:50:41.000000",
    "2024-01-31T23:59:60",
    "2024-01-31 01:50:41",
    "1700000000",
    "call",
    "Call",
    " call",
    "email",
    "inbound",
    "lead",
    "collaborator",
    "tagged",
    "observed",
    "resolved",
    "no_change",
    "PRINCIPAL_INVESTIGATOR",
    "a|b",
    "|a| |b|",
    " | ",
    "MD|PhD",
    "NCT0001",
    "NCT 1",
    "nct-1.2:3_x",
    "-NCT",
    "site:a",
    "inv:b",
]


@pytest.mark.parametrize("name", [spec.name for spec in csvfiles.FILES])
def test_csv_fast_path_agrees_with_the_models(name: str) -> None:
    """Whatever the fast cell checks accept, the pydantic model accepts with the same values."""
    import math
    import random

    from pydantic import ValidationError

    spec = csvfiles.FILES_BY_NAME[name]
    fields = list(spec.model.model_fields)
    assert set(spec.cells) == set(fields)
    rng = random.Random(name)
    # Mostly cells the fast check takes (so that whole rows reach it), now and then any cell.
    taken = {f: [v for v in _TRICKY if spec.cells[f](v) is not csvfiles._SLOW] or _TRICKY for f in fields}
    accepted = 0
    for _ in range(4000):
        raw = {f: rng.choice(taken[f] if rng.random() < 0.9 else _TRICKY) for f in fields}
        fast: dict[str, object] = {}
        for f in fields:
            x = spec.cells[f](raw[f])
            if x is csvfiles._SLOW:
                break
            if x is not None:
                fast[f] = x
        else:
            try:
                slow = csvfiles._values(spec.model.model_validate(raw))
            except ValidationError as e:
                pytest.fail(f"fast path accepted {raw!r}, the model refused it: {e}")
            assert fast.keys() == slow.keys(), raw
            for f, value in fast.items():
                assert type(value) is type(slow[f]), (f, raw)
                if isinstance(value, float):
                    assert math.copysign(1, value) == math.copysign(1, slow[f]) and value == slow[f], (f, raw)
                else:
                    assert value == slow[f], (f, raw)
            accepted += 1
    assert accepted > 0  # the pool reaches the fast path for every file


def test_csv_reader_reports_like_the_model(tmp_path: Path) -> None:
    """Rows the fast path cannot take go through the model: the same values, the same problems."""
    from sitegraph.loaders.csvfiles import read_csv_folder

    (tmp_path / "sites.csv").write_text(
        "id,name,city,lat,aliases\n"
        "site:a,Alpha, Boston ,45.0, A | B |\n"  # spaces: taken by the model, stripped
        "site:b,Beta,,1e1,\n"  # an exponent: taken by the model
        "site:c,,Lyon,,\n"  # a missing name
        "site:d,Delta,Paris,95,\n"  # latitude out of range
        "site:e,Echo\n"  # a short row: lat and the rest missing
        "site:f,Foxtrot,Rome,1,x,extra\n"  # one value too many
        "\n"
        "site:g,Golf,Oslo,-0.5,G\n",
        encoding="utf-8",
    )
    res = read_csv_folder(tmp_path)
    sites = res.batch.nodes["Site"]
    assert sites["site:a"] == {"name": "Alpha", "city": "Boston", "lat": 45.0, "aliases": ["A", "B"]}
    assert sites["site:b"] == {"name": "Beta", "lat": 10.0}
    assert sites["site:e"] == {"name": "Echo"}
    assert sites["site:g"] == {"name": "Golf", "city": "Oslo", "lat": -0.5, "aliases": ["G"]}
    assert set(sites) == {"site:a", "site:b", "site:e", "site:g"}
    found = {(p.line, p.field) for p in res.problems}
    assert found == {(4, "name"), (5, "lat"), (7, None)}, res.problems
    assert res.rows == 6 and res.skipped == 2


def test_csv_reader_with_a_forked_worker_gives_the_same_result(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The files besides the largest read by a forked worker: the same batch (in the same order), problems, counts."""
    import shutil

    from sitegraph.loaders import csvfiles

    folder = tmp_path / "csv"
    shutil.copytree(Path(__file__).parent / "data" / "csv_small", folder)
    with (folder / "sites.csv").open("a", encoding="utf-8") as f:
        f.write("site:bad,,Lyon,,\nsite:new,New,, Oslo ,95\n")
    with (folder / "interactions.csv").open("a", encoding="utf-8") as f:  # the largest: this process's
        f.write("int:bad,site:alpha-boston-us,,,shout,,not a time,,,,\n")
    with (folder / "study_conditions.csv").open("a", encoding="utf-8") as f:
        f.write("NCT00000001,\n")
    (folder / "extra.csv").write_text("a\n1\n", encoding="utf-8")
    alone = csvfiles.read_csv_folder(folder)
    monkeypatch.setattr(csvfiles, "FORK_BYTES", 0)
    monkeypatch.setattr(workers_mod, "SPARE", -10.0)  # whatever else the machine runs
    counted: list[int] = []
    split = csvfiles.read_csv_folder(folder, progress=counted.append)
    sources = [Path(p.source).name for p in split.problems]
    assert sources[0] == "extra.csv" and {"sites.csv", "interactions.csv", "study_conditions.csv"} <= set(sources)
    order = [spec.name for spec in csvfiles.FILES]
    assert sources[1:] == sorted(sources[1:], key=order.index)  # the files' order, whoever read them
    assert split.problems == alone.problems
    assert (split.rows, split.skipped, split.files) == (alone.rows, alone.skipped, alone.files)
    assert sum(counted) == alone.rows - alone.skipped
    assert list(split.batch.nodes) == list(alone.batch.nodes)
    for label, rows in alone.batch.nodes.items():
        assert list(split.batch.nodes[label].items()) == list(rows.items())
    assert list(split.batch.rels.items()) == list(alone.batch.rels.items())
    assert {type(rk) for rk in split.batch.rels} == {RelKey}


@pytest.mark.neo4j
def test_neo4j_failed_many_transaction_write_says_how_to_finish(
    neo4j_session_store: GraphStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A load too big for one transaction that fails part way says so; running it again completes it."""
    import sitegraph.graph.neo4j_store as neo4j_store

    store = neo4j_session_store
    store.clear(confirm=True)
    store.write(small_batch())
    monkeypatch.setattr(neo4j_store, "SINGLE_TX_LIMIT", 3)
    monkeypatch.setattr(neo4j_store, "CHUNK", 1)
    monkeypatch.setattr(neo4j_store, "WRITERS", 1)
    monkeypatch.setattr(neo4j_store, "REL_WRITERS", 1)
    real = store._run_write  # type: ignore[attr-defined]
    calls = [0]

    def flaky(work: object) -> object:
        calls[0] += 1
        if calls[0] == 4:
            raise StoreError("simulated: the server went away")
        return real(work)

    monkeypatch.setattr(store, "_run_write", flaky)
    with pytest.raises(StoreError, match=r"transactions of this load were committed .* run the same load again"):
        store.write(_mixed_batch())
    monkeypatch.setattr(store, "_run_write", real)
    store.write(_mixed_batch())
    _check_mixed(store)


def test_node_writes_by_property_set_give_the_same_nodes(store: GraphStore) -> None:
    """Node rows go by property-name set (lists) or as maps (odd names, many sets): same nodes either way."""
    store.write(small_batch())
    b = GraphBatch()
    expected: dict[str, dict[str, object]] = {}
    for i in range(60):
        props: dict[str, object] = {"name": f"Site {i}", "rank": i / 7}
        if i % 2:
            props["city"] = "Lyon"
        if i % 5 == 0:
            props["aliases"] = [f"S{i}", f"Site-{i}"]
        expected[f"site:n{i}"] = props  # four sets of names: lists
    people = {f"inv:p{i}": {"name": f"P{i}", f"extra_{i}": i} for i in range(30)}  # 30 sets of names: maps
    b.add_node("Site", "site:a", {"city": None, "score": 1.5})  # an existing node: city removed, score added
    for key, props in expected.items():
        b.add_node("Site", key, props)
    for key, props in people.items():
        b.add_node("Investigator", key, props)
    b.add_node("Study", "NCT00000001", {"odd name": 1, "back`tick": "x", "enrollment": 121})  # names that are not identifiers
    b.add_node("Study", "NCT00000002", {"title": "Another"})
    store.write(b)  # nodes only
    for key, props in expected.items():
        assert store.get_node("Site", key) == {"id": key, **props}
    for key, props in people.items():
        assert store.get_node("Investigator", key) == {"id": key, **props}
    alpha = store.get_node("Site", "site:a")
    assert alpha is not None and "city" not in alpha and alpha["score"] == 1.5 and alpha["name"] == "Alpha Hospital"
    study = store.get_node("Study", "NCT00000001")
    assert study is not None and study["odd name"] == 1 and study["back`tick"] == "x" and study["enrollment"] == 121
    assert store.get_node("Study", "NCT00000002") == {"id": "NCT00000002", "title": "Another"}
    # With a relationship in the batch (the path that reads which nodes exist first), the same.
    b2 = GraphBatch()
    b2.add_node("Site", "site:n1", {"city": "Paris"})
    b2.add_node("Site", "site:new", {"name": "New"})
    b2.add_rel("PARTICIPATES_IN", "Site", "site:new", "Study", "NCT00000002")
    store.write(b2)
    assert store.get_node("Site", "site:n1") == {"id": "site:n1", **expected["site:n1"], "city": "Paris"}
    assert store.get_node("Site", "site:new") == {"id": "site:new", "name": "New"}


def test_memory_store_big_write_drops_the_loaded_graph_and_reloads_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A write bigger than the loaded graph drops it instead of mirroring; the next read loads from
    SQLite the same graph the mirror gives, and a snapshot taken before keeps its own graph."""
    import sitegraph.graph.memory as memory

    def second_batch() -> GraphBatch:
        b = GraphBatch()
        b.add_node("Site", "site:a", {"city": None, "country": "US"})
        for i in range(5):
            b.add_node("Site", f"site:n{i}", {"name": f"New {i}", "lat": None})
            b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", f"site:n{i}")
        b.add_rel("PARTICIPATES_IN", "Site", "site:a", "Study", "NCT00000001", {"enrolled": None, "target": 9})
        return b

    mirrored_store = MemoryStore(tmp_path / "mirror")
    mirrored_store.write(small_batch())
    mirrored_store.graph()
    mirrored_store.write(second_batch())  # small beside the default threshold: mirrored
    assert mirrored_store.loads == 1

    monkeypatch.setattr(memory, "_RELOAD_MIN_ROWS", 1)
    store = MemoryStore(tmp_path / "drop")
    store.write(small_batch())
    held = store.shared_graph()  # loaded and handed out, as a snapshot holds it
    before = _graph_content(store)
    big = second_batch()
    assert len(big) >= held.number_of_nodes() + held.number_of_edges()
    store.write(big)
    assert not store.graph_is_current()
    assert store.loads == 1
    assert _graph_content(store) == _graph_content(mirrored_store)
    assert store.loads == 2
    assert {n: dict(d) for n, d in held.nodes(data=True)} == before[0]  # the snapshot's graph is untouched
    # a write smaller than the graph is still mirrored
    small = GraphBatch()
    small.add_node("Site", "site:n0", {"city": "Oslo"})
    store.write(small)
    mirrored_store.write(small)
    assert store.graph_is_current() and store.loads == 2
    assert _graph_content(store) == _graph_content(mirrored_store) == _graph_content(MemoryStore(tmp_path / "drop"))
    store.close()
    mirrored_store.close()


def test_memory_store_row_parameters_match_json_pair() -> None:
    """The inlined parameter builders of the bulk write give what ``_json_pair`` and ``ident_json`` give."""
    from sitegraph.graph import memory
    from sitegraph.graph.store import RelKey

    props: list[dict[str, object]] = [
        {},
        {"a": None},
        {"name": "X", "lat": None, "aliases": ["a", "b"]},
        {"n": 1, "f": 0.5, "s": 'é"q', "l": [], "d": {"x": None}},
    ]
    nodes = [(f"k{i}", p) for i, p in enumerate(props)]
    assert memory._node_rows("Site", nodes) == [("Site", k, *memory._json_pair(p)) for k, p in nodes]
    keys = [
        RelKey("WORKS_AT", "Investigator", "i", "Site", "s"),
        RelKey("INVESTIGATOR_ON", "Investigator", "i", "Study", "t", (("role", "PI"), ("site_id", "s"))),
        RelKey("INVESTIGATOR_ON", "Investigator", "i", "Study", "t", (("site_id", "s"), ("role", ""))),
        RelKey("PARTICIPATES_IN", "Site", "s", "Study", "t"),
    ]
    rels = list(zip(keys, props, strict=True))
    assert memory._rel_rows(rels) == [
        (rk.type, rk.start_label, rk.start, rk.end_label, rk.end, rk.ident_json(), *memory._json_pair(p)) for rk, p in rels
    ]


def test_batch_endpoint_keys_are_the_ends_the_batch_does_not_create() -> None:
    b = small_batch()
    assert b.endpoint_keys() == {}
    b.add_rel("WORKS_AT", "Investigator", "inv:new", "Site", "site:a")
    b.add_rel("WORKS_AT", "Investigator", "inv:new", "Site", "site:zz")
    b.add_rel("PARTICIPATES_IN", "Site", "site:zz", "Study", "NCT00000009", {"status": "X"})
    b.add_rel("WORKS_AT", "Investigator", "inv:jane-doe", "Site", "site:b")
    assert b.endpoint_keys() == {"Investigator": {"inv:new"}, "Site": {"site:zz"}, "Study": {"NCT00000009"}}
