"""`sitegraph recommend --all`: every site's recommendations as JSON lines, exactly the per-site answers."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from sitegraph.errors import NotFoundError
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch
from sitegraph.queries import related as related_mod
from sitegraph.queries.recommend import rank_candidates, recommend_all, recommend_all_json, recommend_tactics
from sitegraph.queries.related import related_all, related_sites
from sitegraph.queries.snapshot import build_snapshot, get_snapshot
from sitegraph.settings import get_settings
from tests.test_generate import build_graph, cli_app


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("recommend-all")
    st = MemoryStore(root / "memory")
    build_graph(st, seed=5, sites=40, per_site=12)
    st.close()
    return root


@pytest.fixture
def cli_home(home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    copy = tmp_path / "home"
    shutil.copytree(home, copy)
    monkeypatch.setenv("SITEGRAPH_HOME", str(copy))
    monkeypatch.setenv("SITEGRAPH_STORE", "memory")
    get_settings.cache_clear()
    yield copy
    get_settings.cache_clear()


def _per_site(home: Path, limit: int) -> dict[str, list[dict[str, object]]]:
    st = MemoryStore(home / "memory")
    try:
        snap = get_snapshot(st)
        return {k: [r.model_dump(mode="json") for r in recommend_tactics(snap, k, limit)] for k, _ in snap.nodes("Site")}
    finally:
        st.close()


def test_recommend_all_to_a_file(cli_home: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "all.jsonl"
    res = CliRunner().invoke(cli_app(), ["recommend", "--all", "--limit", "3", "--out", str(out_file)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    want = _per_site(cli_home, 3)
    assert [row["site_id"] for row in lines] == list(want)  # every site, in id order
    assert {row["site_id"]: row["recommendations"] for row in lines} == want
    assert any(row["recommendations"] for row in lines) and all(len(row["recommendations"]) <= 3 for row in lines)


def test_recommend_all_to_stdout(cli_home: Path) -> None:
    res = CliRunner().invoke(cli_app(), ["recommend", "--all", "-n", "1"])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in res.stdout.splitlines()]
    assert {row["site_id"]: row["recommendations"] for row in lines} == _per_site(cli_home, 1)


@pytest.mark.parametrize(
    "args",
    [["recommend"], ["recommend", "site:x", "--all"], ["recommend", "--all", "--cypher"], ["recommend", "site:x", "--out", "f"]],
)
def test_recommend_all_usage_errors(cli_home: Path, args: list[str]) -> None:
    res = CliRunner().invoke(cli_app(), args)
    assert res.exit_code != 0 and "error" in res.output


def _json(items: list[Any]) -> str:
    return "[" + ",".join(x.model_dump_json() for x in items) + "]"


@pytest.mark.parametrize("limit", [1, 10, 50])
def test_related_all_is_related_sites(home: Path, limit: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every site's batch answer is byte for byte the per-site one (small blocks: several blocks)."""
    monkeypatch.setattr(related_mod, "BLOCK_CELLS", 1)  # blocks of 8 sites
    st = MemoryStore(home / "memory")
    try:
        snap = get_snapshot(st)
        ids = [k for k, _ in snap.nodes("Site")]
        got = dict(related_all(snap, ids, limit))
        assert list(got) == ids
        fresh = build_snapshot(st)  # per-site answers on a snapshot the batch did not touch
        for k in ids:
            assert _json(got[k]) == _json(related_sites(fresh, k, limit)), k
        assert any(got[k] for k in ids) and all(len(v) <= limit for v in got.values())
        # a subset, in a given order, and the default of every site
        some = ids[::-3]
        assert [s for s, _ in related_all(snap, some, limit)] == some
        assert [s for s, _ in related_all(snap, limit=limit)] == ids
    finally:
        st.close()


def test_related_all_unknown_site(home: Path) -> None:
    st = MemoryStore(home / "memory")
    try:
        snap = get_snapshot(st)
        with pytest.raises(NotFoundError):
            list(related_all(snap, ["site:nope"]))
    finally:
        st.close()


def _rec_json(items: list[Any]) -> str:
    return "[" + ",".join(x.model_dump_json() for x in items) + "]"


@pytest.mark.parametrize("limit", [0, 1, 5, 50])
def test_recommend_all_is_recommend_tactics_byte_for_byte(
    home: Path, tmp_path: Path, limit: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every site's batch answer, serialised, is the per-site answer on a snapshot the batch never touched:
    in blocks of 8 (several blocks), with a site that has no barrier (nor investigator, nor interaction),
    and with limits that cut the ranking (1, 5) or keep all of it (50)."""
    shutil.copytree(home, tmp_path / "h")
    st = MemoryStore(tmp_path / "h" / "memory")
    try:
        b = GraphBatch()
        b.add_node("Site", "site:zz-quiet", {"name": "Quiet site", "country": "Nowhere"})
        st.write(b)
        monkeypatch.setattr(related_mod, "BLOCK_CELLS", 1)  # blocks of 8 sites
        snap = get_snapshot(st)
        ids = [k for k, _ in snap.nodes("Site")]
        got = dict(recommend_all(snap, ids, limit))
        assert list(got) == ids
        fresh = build_snapshot(st)
        want = {k: recommend_tactics(fresh, k, limit) for k in ids}
        for k in ids:
            assert _rec_json(got[k]) == _rec_json(want[k]), k
        assert got["site:zz-quiet"] == []
        if limit:
            assert any(got.values()) and all(len(v) <= limit for v in got.values())
            assert any(r.inferred_barriers for v in got.values() for r in v)  # barriers inferred from related sites
        if limit == 1:
            assert any(len(rank_candidates(fresh, k)) > 1 for k in ids)  # the limit cut a longer ranking
        # a subset in a given order, then an unknown site when its block is reached
        some = ids[::-3]
        assert [s for s, _ in recommend_all(snap, some, limit)] == some
        with pytest.raises(NotFoundError):
            list(recommend_all(snap, [*ids[:3], "site:nope"], limit))
    finally:
        st.close()


@pytest.mark.parametrize("workers", [1, 2])
def test_recommend_all_json_is_recommend_all_serialised(home: Path, workers: int, monkeypatch: pytest.MonkeyPatch) -> None:
    """The JSON batch, in one process or in forked workers, is each site's answer serialised, in order;
    an unknown site fails after the sites of the blocks before it."""
    monkeypatch.setattr(related_mod, "BLOCK_CELLS", 1)  # blocks of 8 sites: several blocks per worker
    st = MemoryStore(home / "memory")
    try:
        snap = get_snapshot(st)
        ids = [k for k, _ in snap.nodes("Site")]
        ticks: list[int] = []
        got = list(recommend_all_json(snap, ids, 4, progress=ticks.append, workers=workers))
        assert [s for s, _ in got] == ids and ticks == [1] * len(ids)
        fresh = build_snapshot(st)
        for site, text in got:
            assert text == _rec_json(recommend_tactics(fresh, site, 4)), site
        assert any(json.loads(text) for _, text in got)
        seen = []
        with pytest.raises(NotFoundError, match="site:nope"):
            for site, _ in recommend_all_json(snap, [*ids[:20], "site:nope", *ids[20:]], 4, workers=workers):
                seen.append(site)
        assert seen == ids[:16]  # the two whole blocks before the unknown site's block
    finally:
        st.close()


def test_recommend_all_with_workers_on_the_cli(cli_home: Path, tmp_path: Path) -> None:
    out_file = tmp_path / "all.jsonl"
    res = CliRunner().invoke(cli_app(), ["recommend", "--all", "-n", "2", "--workers", "2", "--out", str(out_file)])
    assert res.exit_code == 0, res.output
    lines = [json.loads(line) for line in out_file.read_text(encoding="utf-8").splitlines()]
    assert {row["site_id"]: row["recommendations"] for row in lines} == _per_site(cli_home, 2)
    assert [row["site_id"] for row in lines] == list(_per_site(cli_home, 2))
    res = CliRunner().invoke(cli_app(), ["recommend", "site:x", "--workers", "2"])
    assert res.exit_code != 0 and "--workers goes with --all" in res.output
