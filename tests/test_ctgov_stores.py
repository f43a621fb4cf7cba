"""ClinicalTrials.gov records through `sitegraph load`, identical on both stores."""

from __future__ import annotations

import json
from pathlib import Path

from typer.testing import CliRunner

from sitegraph.cli import app
from sitegraph.graph.neo4j_store import Neo4jStore
from sitegraph.graph.store import GraphStore
from sitegraph.loaders.ctgov import DEMO_CTGOV_DIR, read_ctgov
from tests.conftest import SHARED_CTGOV, needs_shared_ctgov
from tests.test_cli_load import cli_store  # noqa: F401 - fixture

runner = CliRunner()

# Counted independently of the loader: distinct NCT ids in the shared records (SOURCES.md).
SHARED_DISTINCT_NCT_IDS = 682


def _stats() -> dict[str, dict[str, int]]:
    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


@needs_shared_ctgov
def test_shared_records_load_once_and_only_once(cli_store: GraphStore) -> None:  # noqa: F811
    result = runner.invoke(app, ["load", str(SHARED_CTGOV)])
    assert result.exit_code == 0, result.output
    first = _stats()
    assert first["nodes"]["Study"] == SHARED_DISTINCT_NCT_IDS
    assert 5_000 < first["nodes"]["Site"] < 13_407  # fewer than location rows: the same facility recurs
    assert first["nodes"]["Investigator"] > 500
    assert first["relationships"]["PARTICIPATES_IN"] > first["nodes"]["Site"]
    again = runner.invoke(app, ["load", str(SHARED_CTGOV)])
    assert again.exit_code == 0, again.output
    assert _stats() == first


def test_demo_records_give_the_same_graph_on_both_stores(store: GraphStore) -> None:
    """The graph read back equals the batch written, so both stores hold the same thing."""
    res = read_ctgov([DEMO_CTGOV_DIR])
    assert not res.problems
    store.write(res.batch)
    stats = store.stats()
    assert stats.nodes["Study"] == len(res.batch.nodes["Study"])
    assert stats.nodes["Site"] == len(res.batch.nodes["Site"])
    sites = {n["id"]: n for n in store.iter_nodes("Site")}
    for key, props in res.batch.nodes["Site"].items():
        assert sites[key] == {"id": key, **props}
    if isinstance(store, Neo4jStore):  # what a Browser user runs first, over Bolt
        rows = store.read("MATCH (s:Site)-[r]->(st:Study) RETURN s, r, st LIMIT 25")
        assert len(rows) == 25
    rels = {(r.type, r.start, r.end, r.props.get("site_id", "")) for r in store.iter_relationships("INVESTIGATOR_ON")}
    assert rels == {
        (k.type, k.start, k.end, dict(k.ident).get("site_id", "")) for k in res.batch.rels if k.type == "INVESTIGATOR_ON"
    }


def test_broken_file_in_a_folder_loads_nothing(cli_store: GraphStore, tmp_path: Path) -> None:  # noqa: F811
    folder = tmp_path / "records"
    folder.mkdir()
    good = sorted(DEMO_CTGOV_DIR.rglob("*.json"))[0]
    (folder / good.name).write_bytes(good.read_bytes())
    (folder / "truncated.json").write_text('{"protocolSection": {"identificationModule": {"nctId": "NCT01234567"')
    result = runner.invoke(app, ["load", str(folder)])
    assert result.exit_code == 1, result.output
    assert "truncated.json" in result.stderr
    assert _stats()["nodes"]["Study"] == 0
