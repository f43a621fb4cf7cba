"""Open the store a command or the API asks for, from settings."""

from __future__ import annotations

from pathlib import Path

from sitegraph.errors import StoreUnavailableError, UsageError
from sitegraph.graph.store import GraphStore
from sitegraph.settings import Settings, get_settings

LOCAL_NEO4J_DIR = "neo4j"


def local_password_file(home: Path) -> Path:
    """Where `sitegraph neo4j start` keeps the generated password of the local server."""
    return home / LOCAL_NEO4J_DIR / "password"


def neo4j_connection(settings: Settings) -> tuple[str, str, str]:
    """(uri, user, password): from NEO4J_* settings, else the local server under SITEGRAPH_HOME."""
    uri = settings.neo4j_uri
    if uri is None:
        uri = "neo4j://127.0.0.1:7687"
        port_file = settings.home / LOCAL_NEO4J_DIR / "bolt_port"
        if port_file.exists():
            uri = f"neo4j://127.0.0.1:{port_file.read_text().strip()}"
    if settings.neo4j_password is not None:
        password = settings.neo4j_password.get_secret_value()
    else:
        pw_file = local_password_file(settings.home)
        if not pw_file.exists():
            raise StoreUnavailableError(
                "no Neo4j password: set NEO4J_PASSWORD, or start the local server with `sitegraph neo4j start` "
                f"(it keeps its password in {pw_file})"
            )
        password = pw_file.read_text().strip()
    return uri, settings.neo4j_user, password


def open_store(kind: str | None = None, settings: Settings | None = None) -> GraphStore:
    """Open the embedded (``memory``) or the ``neo4j`` store; the caller closes it."""
    settings = settings or get_settings()
    kind = kind or settings.sitegraph_store
    if kind == "memory":
        from sitegraph.graph.memory import MemoryStore

        return MemoryStore(settings.home / "memory")
    if kind == "neo4j":
        from sitegraph.graph.neo4j_store import Neo4jStore

        uri, user, password = neo4j_connection(settings)
        store = Neo4jStore(uri, user, password, settings.neo4j_database)
        try:
            store.ping()
        except StoreUnavailableError:
            store.close()
            raise
        return store
    raise UsageError(f"unknown store {kind!r}: use 'memory' or 'neo4j'")
