"""`sitegraph load` and `sitegraph stats` through the CLI, on both stores."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitegraph.cli import app
from sitegraph.graph.store import GraphStore
from sitegraph.settings import get_settings

DATA = Path(__file__).parent / "data"
CSV_SMALL = DATA / "csv_small"
runner = CliRunner()


@pytest.fixture
def cli_store(
    store: GraphStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> Iterator[GraphStore]:
    """Point the CLI's settings at the fixture's store."""
    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path))
    monkeypatch.setenv("SITEGRAPH_STORE", store.kind)
    if store.kind == "neo4j":
        server = request.getfixturevalue("neo4j_server")
        monkeypatch.setenv("NEO4J_URI", server.uri)
        monkeypatch.setenv("NEO4J_PASSWORD", server.password)
    get_settings.cache_clear()
    yield store
    get_settings.cache_clear()


def stats_json() -> dict[str, dict[str, int]]:
    result = runner.invoke(app, ["stats", "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def test_load_csv_folder(cli_store: GraphStore) -> None:
    result = runner.invoke(app, ["load", str(CSV_SMALL)])
    assert result.exit_code == 0, result.output
    stats = stats_json()
    assert stats["nodes"]["Site"] == 3
    assert stats["nodes"]["Investigator"] == 2
    assert stats["nodes"]["Study"] == 2
    assert stats["nodes"]["Interaction"] == 2
    assert stats["relationships"]["PARTICIPATES_IN"] == 4
    assert stats["relationships"]["INVESTIGATOR_ON"] == 3
    facts = {(r.start, r.end): r.props for r in cli_store.iter_relationships("PARTICIPATES_IN")}
    assert facts[("site:alpha-boston-us", "NCT00000001")]["screen_failures"] == 6
    assert facts[("site:alpha-boston-us", "NCT00000001")]["activation_date"] == "2024-03-01"
    assert "enrolled" not in facts[("site:gamma-osaka-jp", "NCT00000002")]
    site = cli_store.get_node("Site", "site:alpha-boston-us")
    assert site is not None and site["aliases"] == ["Alpha Hospital", "Alpha Hosp."]


def test_second_load_changes_nothing(cli_store: GraphStore) -> None:
    assert runner.invoke(app, ["load", str(CSV_SMALL)]).exit_code == 0
    first = stats_json()
    version = cli_store.version()
    result = runner.invoke(app, ["load", str(CSV_SMALL)])
    assert result.exit_code == 0, result.output
    assert "no counts changed" in result.stdout
    assert stats_json() == first
    assert cli_store.version() >= version


@pytest.mark.parametrize(
    ("filename", "line", "bad_line", "field"),
    [
        ("site_studies.csv", 3, "site:beta-lyon-fr,NCT00000001,RECRUITING,2024-13-45,160,0,15,4,4,5,140,3,12", "activation_date"),
        ("site_studies.csv", 4, "site:beta-lyon-fr,NCT00000002,COMPLETED,2021-08-01,,-4,40,55,15,1,90,0,4", "enrolled"),
        ("interactions.csv", 2, 'int:1,site:alpha-boston-us,,,carrier-pigeon,,2024-06-01T10:00:00,"x",,,', "channel"),
        ("investigator_studies.csv", 2, "inv:jane-doe,NCT00000001,JANITOR,site:alpha-boston-us", "role"),
    ],
)
def test_bad_row_loads_nothing(
    cli_store: GraphStore, tmp_path: Path, filename: str, line: int, bad_line: str, field: str
) -> None:
    assert runner.invoke(app, ["load", str(CSV_SMALL)]).exit_code == 0
    before = stats_json()
    folder = tmp_path / "bad"
    shutil.copytree(CSV_SMALL, folder)
    # also add a new site, which must not appear
    with (folder / "sites.csv").open("a") as f:
        f.write("site:new-one,New One,Paris,,,France,,,\n")
    lines = (folder / filename).read_text().splitlines()
    lines[line - 1] = bad_line
    (folder / filename).write_text("\n".join(lines) + "\n")
    result = runner.invoke(app, ["load", str(folder)])
    assert result.exit_code == 1, result.output
    assert f"{filename}:{line} [{field}]" in result.stderr
    assert stats_json() == before
    assert cli_store.get_node("Site", "site:new-one") is None


def test_skip_invalid_loads_the_rest(cli_store: GraphStore, tmp_path: Path) -> None:
    folder = tmp_path / "bad"
    shutil.copytree(CSV_SMALL, folder)
    with (folder / "sites.csv").open("a") as f:
        f.write("site:bad,Bad Site,Paris,,,France,123.0,,\n")
    result = runner.invoke(app, ["load", "--skip-invalid", str(folder)])
    assert result.exit_code == 0, result.output
    assert "sites.csv:5 [lat]" in result.stderr
    assert stats_json()["nodes"]["Site"] == 3


def test_relationship_to_unknown_node_is_refused(cli_store: GraphStore, tmp_path: Path) -> None:
    folder = tmp_path / "dangling"
    folder.mkdir()
    shutil.copy(CSV_SMALL / "sites.csv", folder / "sites.csv")
    (folder / "site_studies.csv").write_text("site_id,study_id\nsite:alpha-boston-us,NCT12345678\n")
    result = runner.invoke(app, ["load", str(folder)])
    assert result.exit_code == 1, result.output
    assert "NCT12345678" in result.stderr
    assert stats_json()["nodes"]["Site"] == 0


def test_unknown_store_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path))
    get_settings.cache_clear()
    result = runner.invoke(app, ["stats", "--store", "oracle"])
    assert result.exit_code == 2
    get_settings.cache_clear()


def test_missing_path_is_a_usage_error(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path))
    get_settings.cache_clear()
    result = runner.invoke(app, ["load", str(tmp_path / "nope")])
    assert result.exit_code == 2
    assert "no such file" in result.stderr
    get_settings.cache_clear()


def test_neo4j_down_is_exit_3(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path))
    monkeypatch.setenv("NEO4J_URI", "neo4j://127.0.0.1:1")
    monkeypatch.setenv("NEO4J_PASSWORD", "x")
    get_settings.cache_clear()
    result = runner.invoke(app, ["stats", "--store", "neo4j"])
    assert result.exit_code == 3, result.output
    get_settings.cache_clear()
