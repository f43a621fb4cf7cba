"""Fixtures: a ``store`` fixture parametrised over the embedded store and a real Neo4j.

The Neo4j instance is started once per test session on free ports, from the jars that
``sitegraph neo4j install`` put in the cache, and stopped at the end. Under ``CI=true`` a Neo4j that
cannot start fails the run; elsewhere the Neo4j tests are skipped with the reason.
``SITEGRAPH_TEST_STORES=memory`` limits a local run to the embedded store.
"""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path
from typing import Any, NoReturn

import pytest

from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphStore

IN_CI = os.environ.get("CI", "").lower() == "true"
STORES = [s for s in os.environ.get("SITEGRAPH_TEST_STORES", "memory,neo4j").split(",") if s]
SHARED = Path(__file__).resolve().parents[1].parent / "shared"
SHARED_CTGOV = SHARED / "data" / "ctgov"
needs_shared_ctgov = pytest.mark.skipif(
    not SHARED_CTGOV.is_dir() and not IN_CI,  # under CI the test runs (and fails if the records are missing)
    reason=f"{SHARED_CTGOV} is not beside the project",
)


def unavailable(reason: str) -> NoReturn:
    """A test that cannot run here: skipped with ``reason``, or failed under ``CI=true`` (where every
    test must run)."""
    if IN_CI:
        pytest.fail(f"CI=true but {reason}")
    pytest.skip(reason)


def _neo4j_unavailable_reason() -> str | None:
    if shutil.which("java") is None and not os.environ.get("JAVA_HOME"):
        return "java not found (install openjdk-17-jre-headless)"
    return None


@pytest.fixture(scope="session")
def neo4j_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[object]:
    """A real Neo4j for this test session."""
    if "neo4j" not in STORES and not IN_CI:
        pytest.skip("SITEGRAPH_TEST_STORES excludes neo4j")
    reason = _neo4j_unavailable_reason()
    if reason:
        unavailable(f"Neo4j cannot run: {reason}")
    from sitegraph.graph.localserver import temporary_instance

    base = tmp_path_factory.mktemp("neo4j")
    try:
        ctx = temporary_instance(base, heap="512m", pagecache="128m")
        server = ctx.__enter__()
    except Exception as e:
        unavailable(f"the local Neo4j did not start: {e}")
    try:
        yield server
    finally:
        ctx.__exit__(None, None, None)


@pytest.fixture(scope="session")
def neo4j_session_store(neo4j_server: object) -> Iterator[GraphStore]:
    from sitegraph.graph.neo4j_store import Neo4jStore

    store = Neo4jStore(neo4j_server.uri, "neo4j", neo4j_server.password)  # type: ignore[attr-defined]
    store.ensure_schema()
    yield store
    store.close()


def _store_params() -> list[object]:
    params: list[object] = []
    if "memory" in STORES or IN_CI:
        params.append(pytest.param("memory"))
    if "neo4j" in STORES or IN_CI:
        params.append(pytest.param("neo4j", marks=pytest.mark.neo4j))
    return params


@pytest.fixture(params=_store_params())
def store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[GraphStore]:
    """An empty store of each kind: the same behavioural test runs against both."""
    if request.param == "memory":
        mem = MemoryStore(tmp_path / "memory")
        yield mem
        mem.close()
        return
    neo = request.getfixturevalue("neo4j_session_store")
    neo.clear(confirm=True)
    yield neo


@pytest.fixture
def memory_store(tmp_path: Path) -> Iterator[MemoryStore]:
    mem = MemoryStore(tmp_path / "memory")
    yield mem
    mem.close()


def site_answers(snapshot: Any, sites: list[str]) -> dict[tuple[str, str], bytes]:
    """Every per-site answer the API computes ahead (:data:`sitegraph.api.routes.sites.PER_SITE`) for
    ``sites``, as the JSON bodies the routes send, keyed by (endpoint, site)."""
    from sitegraph.api.deps import to_json
    from sitegraph.api.routes.sites import PER_SITE

    out = {}
    for spec in PER_SITE:
        results = spec.batch(snapshot, sites, spec.limit)
        out.update({(spec.name, s): to_json(spec.model, results[s]) for s in sites})
    return out
