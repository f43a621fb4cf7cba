"""The bulk path (``neo4j-admin database import full``) gives the same graph as the transactional load.

These tests start their own local Neo4j (the bulk path stops and starts it), beside the session's.
"""

from __future__ import annotations

import json
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sitegraph import workers as workers_mod
from sitegraph.cli import app
from sitegraph.graph import neo4j_import
from sitegraph.graph.localserver import LocalNeo4j
from sitegraph.graph.neo4j_store import Neo4jStore
from sitegraph.graph.store import GraphBatch
from sitegraph.loaders.csvfiles import read_csv_folder
from sitegraph.settings import get_settings
from tests.conftest import unavailable

pytestmark = pytest.mark.neo4j

CSV_SMALL = Path(__file__).parent / "data" / "csv_small"
runner = CliRunner()


@pytest.fixture(scope="module")
def own_server(tmp_path_factory: pytest.TempPathFactory, neo4j_server: object) -> Iterator[LocalNeo4j]:
    """A second local Neo4j that these tests may stop and start (``neo4j_server`` decides skip/fail)."""
    from sitegraph.graph.localserver import temporary_instance

    base = tmp_path_factory.mktemp("bulk")
    with temporary_instance(base, heap="512m", pagecache="128m") as server:
        yield server


@pytest.fixture
def bulk_store(own_server: LocalNeo4j) -> Iterator[Neo4jStore]:
    store = Neo4jStore(own_server.uri, "neo4j", own_server.password)
    store.clear(confirm=True)
    store.ensure_schema()
    yield store
    store.close()


@pytest.fixture
def tx_store(neo4j_session_store: Neo4jStore) -> Neo4jStore:
    neo4j_session_store.clear(confirm=True)
    return neo4j_session_store


def _typed(value: Any) -> Any:
    """The value with its type, so that 1 != 1.0, "1" != 1 and a list never equals a string."""
    if isinstance(value, list):
        return ("list", tuple(_typed(v) for v in value))
    return (type(value).__name__, repr(value))


def schema(store: Neo4jStore) -> tuple[list[Any], list[Any]]:
    """Every index and constraint: name, kind, what it covers, online."""
    indexes = store.read(
        "SHOW INDEXES YIELD name, type, entityType, labelsOrTypes, properties, owningConstraint, state "
        "RETURN name, type, entityType, labelsOrTypes, properties, owningConstraint, state"
    )
    constraints = store.read(
        "SHOW CONSTRAINTS YIELD name, type, labelsOrTypes, properties RETURN name, type, labelsOrTypes, properties"
    )
    return sorted(map(repr, indexes)), sorted(map(repr, constraints))


def dump(store: Neo4jStore) -> tuple[list[Any], list[Any]]:
    """Every node (labels, properties with types; the data version left out) and every relationship."""
    nodes = []
    for r in store.read("MATCH (n) RETURN labels(n) AS l, properties(n) AS p"):
        props = dict(r["p"])
        if r["l"] == ["SitegraphMeta"]:
            props.pop("version", None)
        nodes.append((tuple(r["l"]), tuple(sorted((k, _typed(v)) for k, v in props.items()))))
    rels = []
    query = (
        "MATCH (a)-[r]->(b) RETURN labels(a) AS sl, coalesce(a.id, a.iri) AS s, type(r) AS t, labels(b) AS el, "
        "coalesce(b.id, b.iri) AS e, properties(r) AS p"
    )
    for r in store.read(query):
        rprops = tuple(sorted((k, _typed(v)) for k, v in dict(r["p"]).items()))
        rels.append((tuple(r["sl"]), r["s"], r["t"], tuple(r["el"]), r["e"], rprops))
    return sorted(nodes), sorted(rels)


def _first() -> GraphBatch:
    """What the database holds before the load (the bulk path copies it into the import)."""
    b = GraphBatch()
    b.add_node("Site", "site:old", {"name": "Old Site", "country": "Japan", "lat": 35.0, "aliases": ["Old"]})
    b.add_node("Site", "site:alpha-boston-us", {"name": "Alpha (old name)", "city": "Old City", "zip": "0"})
    b.add_node("Tactic", "https://w3id.org/sitegraph/tactic/t1", {"id": "t1", "label": "A tactic", "evidence": 2})
    b.add_node("Barrier", "https://w3id.org/sitegraph/barrier/b1", {"id": "b1", "label": "A barrier"})
    b.add_rel(
        "MITIGATES",
        "Tactic",
        "https://w3id.org/sitegraph/tactic/t1",
        "Barrier",
        "https://w3id.org/sitegraph/barrier/b1",
        {"evidence_level": "B", "effect": 0.25},
    )
    b.add_rel("WORKS_AT", "Investigator", "inv:old", "Site", "site:old")
    b.add_node("Investigator", "inv:old", {"name": "Old Investigator", "degrees": ["MD"]})
    return b


def _tricky() -> GraphBatch:
    """Values that a CSV writer could get wrong: quotes, separators, line breaks, types, None, updates."""
    b = GraphBatch()
    b.add_node(
        "Site",
        'site:tricky, "quoted"',
        {
            "name": 'He said "hi", then left;\nsecond line\r\nthird',
            "aliases": ["a;b", "c,d", 'e"f', "g|h", " spaced "],
            "lat": -0.0,
            "lon": 1e-05,
            "zip": "",
            "city": "Zürich ✓",
            "state": None,
        },
    )
    b.add_node("Site", "site:old", {"name": "Old Site renamed", "lat": None, "beds": 12, "flags": [True, False]})
    b.add_node("Study", "NCT00000009", {"enrollment": 2**62, "scores": [1.5, -2.0, 3e300], "counts": [1, 2, 3]})
    b.add_node("Interaction", "int:x", {"occurred_at": "2024-06-03T08:30:00+02:00", "sentiment": -0.3, "channel": "email"})
    b.add_rel("WITH_SITE", "Interaction", "int:x", "Site", 'site:tricky, "quoted"')
    b.add_rel("INVESTIGATOR_ON", "Investigator", "inv:old", "Study", "NCT00000009", {"role": "PRINCIPAL_INVESTIGATOR"})
    b.add_rel(
        "INVESTIGATOR_ON", "Investigator", "inv:old", "Study", "NCT00000009", {"role": "SUB_INVESTIGATOR", "site_id": "site:old"}
    )
    b.add_rel(
        "MITIGATES",
        "Tactic",
        "https://w3id.org/sitegraph/tactic/t1",
        "Barrier",
        "https://w3id.org/sitegraph/barrier/b1",
        {"effect": 0.5, "note": None, "source": "trial"},
    )
    b.add_rel("WORKS_AT", "Investigator", "inv:old", "Site", 'site:tricky, "quoted"')
    return b


def _load(path: str, store: Neo4jStore, server: LocalNeo4j | None) -> str:
    res = read_csv_folder(CSV_SMALL)
    assert not res.problems
    batch = res.batch
    batch.extend(_tricky())
    store.write(_first())
    how, report = neo4j_import.write_load(store, batch, bulk=path, server=server)
    if report is not None:  # the importer's own time is read from its output, and is part of the run's
        assert 0 < report.importer_work_seconds <= report.import_seconds
    return how


def test_bulk_load_equals_transactional_load(bulk_store: Neo4jStore, tx_store: Neo4jStore, own_server: LocalNeo4j) -> None:
    assert _load("never", tx_store, None) == "transactional"
    before = bulk_store.version()
    assert _load("always", bulk_store, own_server) == "bulk"
    tx_nodes, tx_rels = dump(tx_store)
    bulk_nodes, bulk_rels = dump(bulk_store)
    assert len(bulk_nodes) > 15 and len(bulk_rels) > 20
    assert bulk_nodes == tx_nodes
    assert bulk_rels == tx_rels
    assert bulk_store.version() > before
    site = bulk_store.get_node("Site", 'site:tricky, "quoted"')
    assert site is not None and site["aliases"][1] == "c,d" and site["zip"] == "" and "state" not in site
    # the schema is back, and the database takes transactional writes afterwards
    names = {r["name"] for r in bulk_store.read("SHOW CONSTRAINTS YIELD name RETURN name")}
    assert "site_id_unique" in names and "interaction_id_unique" in names
    assert {r["name"] for r in bulk_store.read("SHOW INDEXES YIELD name RETURN name")} >= {"site_fulltext", "site_name"}
    # the same constraints and indexes as the transactional load's ensure_schema (built in parallel here)
    assert schema(bulk_store) == schema(tx_store)
    again = read_csv_folder(CSV_SMALL).batch
    bulk_store.write(again)
    assert dump(bulk_store)[0] == bulk_nodes  # idempotent: loading the same rows again changes nothing


@pytest.fixture
def loaded_first(bulk_store: Neo4jStore) -> tuple[Any, int, GraphBatch]:
    """The database holding ``_first()``: what it holds, its data version, and the CSV batch to load on top."""
    bulk_store.write(_first())
    return dump(bulk_store), bulk_store.version(), read_csv_folder(CSV_SMALL).batch


def test_failed_import_puts_the_database_back(
    bulk_store: Neo4jStore, own_server: LocalNeo4j, monkeypatch: pytest.MonkeyPatch, loaded_first: tuple[Any, int, GraphBatch]
) -> None:
    before, version, batch = loaded_first
    real = neo4j_import._importer_command
    monkeypatch.setattr(neo4j_import, "_importer_command", lambda *a: [*real(*a), "--no-such-option"])
    with pytest.raises(neo4j_import.BulkFailed, match="put back as it was"):
        neo4j_import.write_load(bulk_store, batch, bulk="always", server=own_server)
    assert dump(bulk_store) == before
    assert bulk_store.version() == version
    # auto tries the importer (it fails again), puts the database back and writes transactions instead
    monkeypatch.setattr(neo4j_import, "MIN_ITEMS", 0)
    how, _ = neo4j_import.write_load(bulk_store, batch, bulk="auto", server=own_server)
    assert how == "transactional"
    assert bulk_store.stats().nodes["Site"] == 4


def test_refuses_a_database_that_holds_more(
    bulk_store: Neo4jStore, own_server: LocalNeo4j, monkeypatch: pytest.MonkeyPatch, loaded_first: tuple[Any, int, GraphBatch]
) -> None:
    before, _, batch = loaded_first
    monkeypatch.setattr(neo4j_import, "MAX_EXISTING", 3)
    with pytest.raises(neo4j_import.BulkRefused, match="already holds"):
        neo4j_import.write_load(bulk_store, batch, bulk="always", server=own_server)
    assert dump(bulk_store) == before
    monkeypatch.setattr(neo4j_import, "MIN_ITEMS", 0)
    how, _ = neo4j_import.write_load(bulk_store, batch, bulk="auto", server=own_server)
    assert how == "transactional"


def test_refusals_without_the_local_server(bulk_store: Neo4jStore, own_server: LocalNeo4j, tx_store: Neo4jStore) -> None:
    batch = read_csv_folder(CSV_SMALL).batch
    assert "not the local server" in (neo4j_import.refusal(bulk_store, batch, None) or "")
    assert "not the local server" in (neo4j_import.refusal(tx_store, batch, own_server) or "")
    assert "small" in (neo4j_import.refusal(bulk_store, batch, own_server, bulk="auto") or "")
    assert neo4j_import.refusal(bulk_store, batch, own_server, bulk="always") is None
    with pytest.raises(neo4j_import.BulkRefused):
        neo4j_import.write_load(tx_store, batch, bulk="always", server=own_server)


def test_cli_load_bulk(bulk_store: Neo4jStore, own_server: LocalNeo4j, monkeypatch: pytest.MonkeyPatch) -> None:
    # the CLI finds the managed server under SITEGRAPH_HOME/neo4j (temporary_instance puts it there)
    monkeypatch.setenv("SITEGRAPH_HOME", str(own_server.home.parent))
    monkeypatch.setenv("SITEGRAPH_STORE", "neo4j")
    monkeypatch.setenv("NEO4J_URI", own_server.uri)
    monkeypatch.setenv("NEO4J_PASSWORD", own_server.password)
    get_settings.cache_clear()
    try:
        result = runner.invoke(app, ["load", str(CSV_SMALL), "--bulk", "always"])
        assert result.exit_code == 0, result.output
        assert "neo4j-admin database import" in result.stdout
        stats = json.loads(runner.invoke(app, ["stats", "--json"]).stdout)
        assert stats["nodes"]["Site"] == 3 and stats["relationships"]["PARTICIPATES_IN"] == 4
        result = runner.invoke(app, ["load", str(CSV_SMALL), "--bulk", "sometimes"])
        assert result.exit_code == 2
    finally:
        get_settings.cache_clear()


def test_from_home_reads_back_the_configuration(tmp_path: Path) -> None:
    server = LocalNeo4j(
        tmp_path / "n",
        bolt_port=17001,
        http_port=17002,
        heap="1g",
        pagecache="300m",
        extra_config={"db.tx_log.rotation.size": "64m"},
    )
    server.write_config()
    again = LocalNeo4j.from_home(tmp_path / "n")
    assert again is not None
    assert again.config() == server.config()
    assert (again.bolt_port, again.http_port, again.heap, again.pagecache) == (17001, 17002, "1g", "300m")
    assert LocalNeo4j.from_home(tmp_path / "missing") is None


def test_import_files_use_node_ids_ascending_across_files(tmp_path: Path) -> None:
    """``--id-type=actual``: node ids 0..n-1 ascending over the node files in argument order, and every
    relationship row names the ids of its ends."""
    import csv

    batch = read_csv_folder(CSV_SMALL).batch
    batch.extend(_tricky())
    existing = neo4j_import._Existing(0, _first().nodes, {})
    files = neo4j_import.write_import_files(tmp_path, batch, existing, 1)
    seen: dict[int, tuple[str, str]] = {}
    for arg in files.node_args:
        label, path = arg.removeprefix("--nodes=").split("=", 1)
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert rows[0][0] == ":ID" and rows[0][1].endswith(":string")
        ids = [int(r[0]) for r in rows[1:]]
        assert ids == list(range(len(seen), len(seen) + len(ids)))
        seen.update((i, (label, r[1])) for i, r in zip(ids, rows[1:], strict=True))
    assert (("Site", 'site:tricky, "quoted"')) in seen.values()
    ends = {(rk.type, (rk.start_label, rk.start), (rk.end_label, rk.end)) for rk in batch.rels}
    found: set[Any] = set()
    for arg in files.rel_args:
        rtype, path = arg.removeprefix("--relationships=").split("=", 1)
        with open(path, newline="", encoding="utf-8") as f:
            rows = list(csv.reader(f))
        assert rows[0][:2] == [":START_ID", ":END_ID"]
        found.update((rtype, seen[int(r[0])], seen[int(r[1])]) for r in rows[1:])
    assert found == ends


def _rows(files: Any) -> dict[tuple[str, str], list[str]]:
    """Every file's rows, sorted, per importer argument (label or type) and header."""
    rows: dict[tuple[str, str], list[str]] = {}
    for arg in files.node_args + files.rel_args:
        kind, path = arg.rsplit("=", 1)
        with open(path, encoding="utf-8", newline="") as f:
            header = f.readline()
            rows.setdefault((kind, header), []).extend(f.read().splitlines(keepends=True))
    return {k: sorted(v) for k, v in rows.items()}


def test_import_files_split_with_a_forked_worker_hold_the_same_rows(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = read_csv_folder(CSV_SMALL).batch
    batch.extend(_tricky())
    first = _first()
    existing = neo4j_import._Existing(0, first.nodes, {rk: [props] for rk, props in first.rels.items()})
    (tmp_path / "alone").mkdir()
    (tmp_path / "split").mkdir()
    alone = neo4j_import.write_import_files(tmp_path / "alone", batch, existing, 1)
    monkeypatch.setattr(neo4j_import, "FORK_RELS", 0)
    monkeypatch.setattr(workers_mod, "SPARE", -10.0)  # whatever else the machine runs
    split = neo4j_import.write_import_files(tmp_path / "split", batch, existing, 1)
    assert any("/w" in arg for arg in split.rel_args)  # the worker wrote some
    assert split.count == len(split.node_args) + len(split.rel_args)
    assert _rows(split) == _rows(alone)
    assert sorted(Path(p).name for p in split.multiline) == sorted(Path(p).name for p in alone.multiline) != []


def test_an_error_in_the_forked_worker_fails_the_import_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    batch = read_csv_folder(CSV_SMALL).batch
    batch.add_rel("WORKS_AT", "Investigator", "inv:old", "Site", "site:old", {"bad name": 1})  # the last: the worker's
    existing = neo4j_import._Existing(0, _first().nodes, {})
    monkeypatch.setattr(neo4j_import, "FORK_RELS", 0)
    monkeypatch.setattr(workers_mod, "SPARE", -10.0)  # whatever else the machine runs
    with pytest.raises(neo4j_import.BulkRefused, match="bad name"):
        neo4j_import.write_import_files(tmp_path, batch, existing, 1)


def test_importer_done_seconds_reads_the_importers_own_time() -> None:
    done = neo4j_import.importer_done_seconds
    assert done("Post processing COMPLETED in 2s 52ms\n\n\nIMPORT DONE in 16s 328ms. \nImported:\n  1 nodes") == 16.328
    assert done("IMPORT DONE in 1h 2m 3s 4ms. ") == 3723.004
    assert done("IMPORT DONE in 594ms.") == 0.594
    assert done("Relationship linking COMPLETED in 1s 415ms\n") == 0.0  # no IMPORT DONE line


def test_class_archive_is_made_checked_and_optional(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JVMs' class-data sharing archive: written at exit while there is none, used once checked,
    a broken one never becomes the archive (a truncated archive crashes a JVM), and it can be turned off."""
    import shutil

    from sitegraph.graph.localserver import ClassArchive, find_java

    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        unavailable("there is no Java for the class archive test")
    java = find_java()
    lib = tmp_path / "lib"
    lib.mkdir()
    archive = ClassArchive(lib, java, "server")
    dump_to = tmp_path / "dump.jsa"
    assert archive.flags(dump_to)[0] == f"-XX:ArchiveClassesAtExit={dump_to}"
    dump_to.write_bytes(b"not an archive" * 1000)
    assert not archive.promote(dump_to)
    assert not dump_to.exists() and not archive.path.exists()
    # a real one, made by a JVM at its exit, becomes the archive and is used from then on
    assert subprocess.run([java, *archive.flags(dump_to), "-cp", str(lib / "*"), "-version"], capture_output=True).returncode == 0
    assert archive.promote(dump_to) and archive.path.is_file() and not dump_to.exists()
    assert archive.flags(dump_to)[0] == f"-XX:SharedArchiveFile={archive.path}"
    monkeypatch.setenv("SITEGRAPH_NEO4J_CDS", "0")
    assert archive.flags(dump_to) == []
