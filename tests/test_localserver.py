"""A real Neo4j Community server assembled from Maven Central: Bolt with auth, routing URI, Browser.

Needs Java 17+ and Maven (the first run downloads ~140 MB of jars into the shared cache).
Without them the test is skipped locally; under ``CI=true`` it fails instead.
"""

from __future__ import annotations

import shutil
import urllib.request
from pathlib import Path

import pytest

from tests.conftest import unavailable


def _missing_tools() -> str | None:
    from sitegraph.graph.localserver import (
        MIN_JAVA_VERSION,
        LocalServerError,
        default_lib_dir,
        find_java,
        java_major_version,
    )

    try:
        java = find_java()
        major = java_major_version(java)
    except LocalServerError as e:
        return str(e)
    if major < MIN_JAVA_VERSION:
        return f"{java} is Java {major}; Neo4j 5.26 needs Java {MIN_JAVA_VERSION}+ (apt-get install openjdk-17-jre-headless)"
    marker = default_lib_dir() / ".sitegraph-complete"
    if not marker.exists() and shutil.which("mvn") is None:
        return "mvn not found and the Neo4j jars are not cached (apt-get install maven)"
    return None


@pytest.mark.neo4j
def test_local_neo4j_bolt_auth_and_browser(tmp_path: Path) -> None:
    reason = _missing_tools()
    if reason:
        unavailable(f"the local Neo4j cannot run: {reason}")

    import neo4j
    from neo4j.exceptions import AuthError

    from sitegraph.graph.localserver import NEO4J_VERSION, temporary_instance

    with temporary_instance(tmp_path, heap="384m", pagecache="64m") as server:
        assert server.uri == f"neo4j://127.0.0.1:{server.bolt_port}"
        status = server.status()
        assert status.running and status.pid
        assert status.version == NEO4J_VERSION
        assert status.bolt_uri == server.uri
        assert status.browser_url == f"http://127.0.0.1:{server.http_port}/browser/"
        assert status.user == "neo4j"

        # The generated password lives in a private file.
        assert (server.password_file.stat().st_mode & 0o777) == 0o600
        assert len(server.password) >= 16

        # Routing URI with auth against the single instance.
        with neo4j.GraphDatabase.driver(server.uri, auth=("neo4j", server.password)) as driver:
            driver.verify_connectivity()
            records, _, _ = driver.execute_query("RETURN 1 AS one")
            assert records[0]["one"] == 1
            info = driver.get_server_info()
            assert info.agent == f"Neo4j/{NEO4J_VERSION}"

        # Wrong password is rejected: authentication is on.
        bad = neo4j.GraphDatabase.driver(server.uri, auth=("neo4j", "not-the-password"))
        try:
            with pytest.raises(AuthError):
                bad.verify_connectivity()
        finally:
            bad.close()

        # Neo4j Browser is served at /browser/.
        with urllib.request.urlopen(status.browser_url, timeout=30) as resp:
            assert resp.status == 200
            html = resp.read().decode("utf-8", "replace")
        assert "<title>Neo4j Browser</title>" in html

        # Starting again is a no-op on the same process.
        pid = status.pid
        server.start(timeout=60)
        assert server.status().pid == pid

    assert not server.status().running
    assert not server.pid_file.exists()

    # The server's class-data sharing archive: made at its exit if there was none, checked and kept
    # for the next starts (the JVM's own dump is not left behind).
    from sitegraph.graph.localserver import ClassArchive, find_java

    if ClassArchive.enabled():
        assert ClassArchive(server.lib_dir, find_java(), "server").path.is_file()
        assert not (server.run_dir / "server-classes.jsa").exists()
