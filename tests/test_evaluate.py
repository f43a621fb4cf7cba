"""Offline evaluation: metrics, the documented JSON shape, and the recommender beating both baselines."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from typer.testing import CliRunner

from sitegraph.errors import InvalidInputError, UsageError
from sitegraph.graph.memory import MemoryStore
from sitegraph.queries.evaluate import evaluate, load_truth, ndcg_at_k, precision_at_k
from sitegraph.queries.snapshot import get_snapshot
from tests.test_generate import build_graph, cli_app


def test_precision_and_ndcg() -> None:
    assert precision_at_k(["a", "b", "c", "d", "e"], {"a", "c", "x"}, 5) == 0.4
    assert precision_at_k(["a"], {"a"}, 5) == 0.2  # fewer than k results still divide by k
    assert ndcg_at_k(["a", "b"], {"a", "b"}, 5) == pytest.approx(1.0)
    assert ndcg_at_k(["x", "a"], {"a"}, 5) == pytest.approx(1 / 1.5849625, rel=1e-6)
    assert ndcg_at_k(["x", "y"], {"a"}, 5) == 0.0
    assert ndcg_at_k([], set(), 5) == 0.0


@pytest.fixture(scope="module")
def evaluated(tmp_path_factory: pytest.TempPathFactory) -> tuple[MemoryStore, Path]:
    """A small generated graph (seed 21, never used for tuning) and its truth file."""
    home = tmp_path_factory.mktemp("eval")
    st = MemoryStore(home / "memory")
    build_graph(st, seed=21, sites=200, per_site=30, truth=home / "truth.json")
    return st, home / "truth.json"


def test_recommender_beats_both_baselines(evaluated: tuple[MemoryStore, Path]) -> None:
    st, truth = evaluated
    report = evaluate(get_snapshot(st), load_truth(truth), k=5, seed=0)
    t, r = report.tactics, report.related
    assert t.sites > 150 and r.sites > 150
    assert t.product.precision > 1.15 * max(t.random.precision, t.popular.precision)
    assert t.product.ndcg > max(t.random.ndcg, t.popular.ndcg)
    assert r.product.precision > 2 * max(r.random.precision, r.popular.precision)
    assert r.product.ndcg > max(r.random.ndcg, r.popular.ndcg)


def test_json_shape_and_cli(evaluated: tuple[MemoryStore, Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sitegraph.settings import get_settings

    st, truth = evaluated
    home = tmp_path / "home"
    shutil.copytree(st.home, home / "memory")
    monkeypatch.setenv("SITEGRAPH_HOME", str(home))
    monkeypatch.setenv("SITEGRAPH_STORE", "memory")
    get_settings.cache_clear()
    try:
        result = CliRunner().invoke(cli_app(), ["evaluate", "--truth", str(truth), "--json", "--k", "5", "--max-sites", "60"])
        assert result.exit_code == 0, result.output
        doc = json.loads(result.stdout)
        metric = {"precision_at_5", "ndcg_at_5"}
        assert set(doc) == {"tactics", "related"}
        for task in doc.values():
            assert set(task) == metric | {"baselines"}
            assert set(task["baselines"]) == {"random", "popular"}
            assert all(set(b) == metric for b in task["baselines"].values())
            assert all(0 <= v <= 1 for v in (task["precision_at_5"], task["ndcg_at_5"]))
        table = CliRunner().invoke(cli_app(), ["evaluate", "--truth", str(truth), "--max-sites", "20"])
        assert table.exit_code == 0 and "precision@5" in table.stdout
        missing = CliRunner().invoke(cli_app(), ["evaluate", "--truth", str(tmp_path / "nope.json")])
        assert missing.exit_code == 2
    finally:
        get_settings.cache_clear()


def test_same_inputs_same_numbers(evaluated: tuple[MemoryStore, Path]) -> None:
    st, truth = evaluated
    doc = load_truth(truth)
    a = evaluate(get_snapshot(st), doc, max_sites=50, seed=3)
    b = evaluate(get_snapshot(st), doc, max_sites=50, seed=3)
    assert a == b
    assert a.as_json()["tactics"]["baselines"]["random"] == b.as_json()["tactics"]["baselines"]["random"]


def test_bad_truth_files(evaluated: tuple[MemoryStore, Path], tmp_path: Path) -> None:
    st, _ = evaluated
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InvalidInputError):
        load_truth(bad)
    bad.write_text(json.dumps({"something": 1}))
    with pytest.raises(InvalidInputError):
        load_truth(bad)
    with pytest.raises(UsageError, match="none of the truth"):
        evaluate(get_snapshot(st), {"sites": {"site:elsewhere": {"cluster": 0, "works": []}}})
    with pytest.raises(UsageError):
        evaluate(get_snapshot(st), {"sites": {}}, k=0)
