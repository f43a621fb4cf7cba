"""`sitegraph neo4j start|stop|status|install`: a real local Neo4j assembled from Maven Central."""

from __future__ import annotations

from typing import Annotated

import typer

from sitegraph.cli.common import console, fail
from sitegraph.errors import StoreUnavailableError
from sitegraph.graph.factory import LOCAL_NEO4J_DIR
from sitegraph.settings import get_settings

app = typer.Typer(
    help="Run a local Neo4j Community 5.26 server (no Docker): Bolt on 127.0.0.1:7687, Browser on :7474.", no_args_is_help=True
)

BoltPort = Annotated[int, typer.Option("--bolt-port", help="Bolt port on 127.0.0.1.")]
HttpPort = Annotated[int, typer.Option("--http-port", help="HTTP port on 127.0.0.1 (Neo4j Browser at /browser/).")]


def _server(bolt_port: int | None = None, http_port: int | None = None):  # type: ignore[no-untyped-def]
    from sitegraph.graph.localserver import LocalNeo4j

    home = get_settings().home / LOCAL_NEO4J_DIR
    port_file = home / "bolt_port"
    http_file = home / "http_port"
    if bolt_port is None:
        bolt_port = int(port_file.read_text()) if port_file.exists() else 7687
    if http_port is None:
        http_port = int(http_file.read_text()) if http_file.exists() else 7474
    return LocalNeo4j(home=home, bolt_port=bolt_port, http_port=http_port)


def _wrap(e: Exception) -> typer.Exit:
    return fail(StoreUnavailableError(str(e)))


@app.command()
def install() -> None:
    """Download the Neo4j server and Browser jars from Maven Central (needs Java 17+ and Maven)."""
    from sitegraph.graph.localserver import LocalServerError

    try:
        lib = _server().install()
    except LocalServerError as e:
        raise _wrap(e) from e
    console.print(f"Neo4j jars ready in {lib}")


@app.command()
def start(
    bolt_port: BoltPort = 7687,
    http_port: HttpPort = 7474,
    heap: Annotated[str, typer.Option(help="JVM heap size.")] = "1g",
    pagecache: Annotated[str, typer.Option(help="Page cache size.")] = "512m",
) -> None:
    """Start the local Neo4j (installing it first if needed) and wait until Bolt answers."""
    from sitegraph.graph.localserver import LocalNeo4j, LocalServerError

    home = get_settings().home / LOCAL_NEO4J_DIR
    server = LocalNeo4j(home=home, bolt_port=bolt_port, http_port=http_port, heap=heap, pagecache=pagecache)
    try:
        with console.status("starting Neo4j (the first start downloads it from Maven Central)..."):
            server.install()
            server.start()
    except LocalServerError as e:
        raise _wrap(e) from e
    home.mkdir(parents=True, exist_ok=True)
    (home / "bolt_port").write_text(str(bolt_port))
    (home / "http_port").write_text(str(http_port))
    _print_status(server)


@app.command()
def stop() -> None:
    """Stop the local Neo4j."""
    server = _server()
    was_running = server.stop()
    console.print("Neo4j stopped" if was_running else "Neo4j was not running")


@app.command()
def status() -> None:
    """Say whether the local Neo4j runs, where, and how to log in to Browser."""
    server = _server()
    st = _print_status(server)
    if not st.running:
        raise typer.Exit(code=3)


def _print_status(server):  # type: ignore[no-untyped-def]
    st = server.status()
    if st.running:
        console.print(f"[green]Neo4j is running[/] (pid {st.pid}, version {st.version})")
        console.print(f"  Bolt:    {st.bolt_uri}")
        console.print(f"  Browser: {st.browser_url}")
        console.print(f"  Log in as user [bold]{st.user}[/] with the password in {st.password_file}")
        console.print("  (`cat` that file; the sitegraph CLI and tests read it themselves)")
        console.print(f"  Data:    {st.home}")
    else:
        console.print(f"Neo4j is not running (home {st.home}); start it with `sitegraph neo4j start`")
    return st
