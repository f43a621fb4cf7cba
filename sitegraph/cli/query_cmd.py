"""``sitegraph query``: run a named catalogue query on Neo4j; ``--list`` shows the catalogue.

Also :func:`browser`: how to open Neo4j Browser on the sitegraph data with the guide and the style,
optionally writing them to a folder or serving them on 127.0.0.1 for ``:play``/``:style``.

Both are plain functions; ``sitegraph.cli.main`` registers them as commands.
"""

from __future__ import annotations

import contextlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.markup import escape
from rich.table import Table

from sitegraph.cli.common import JsonOption, StoreOption, console, err_console, fail, store_from
from sitegraph.errors import SitegraphError, StoreError, UsageError
from sitegraph.queries.catalogue import Catalogue, CatalogueQuery, load_catalogue, run_query

log = logging.getLogger(__name__)

ParamOption = Annotated[
    Optional[list[str]],  # noqa: UP045 - typer needs Optional here
    typer.Option("--param", "-p", help="A query parameter as name=value; repeat for several. Lists: a,b,c.", show_default=False),
]
ListOption = Annotated[
    bool, typer.Option("--list", help="List the catalogue's queries and their parameters instead of running one.")
]
QueryName = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional here
    typer.Argument(help="Name of a catalogue query (see --list).", show_default=False),
]

_CELL_WIDTH = 60


@contextlib.contextmanager
def _quiet_driver_notifications() -> Iterator[None]:
    """Keep the driver's query notifications (e.g. 'property key does not exist') off the terminal."""
    logger = logging.getLogger("neo4j.notifications")
    level = logger.level
    logger.setLevel(logging.ERROR)
    try:
        yield
    finally:
        logger.setLevel(level)


def _json_default(value: Any) -> Any:
    if hasattr(value, "iso_format"):  # neo4j temporal types
        return value.iso_format()
    return str(value)


def _node_text(props: dict[str, Any]) -> str:
    for key in ("name", "label", "title", "channel", "id", "iri"):
        if props.get(key) is not None:
            return str(props[key])
    return "{}"


def format_cell(value: Any) -> str:
    """A result value as one table cell: nodes by name, paths as (a)-[TYPE]-(b), lists comma-separated."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return f"{value:.6g}"
    if isinstance(value, dict):
        return _node_text(value)
    if isinstance(value, (list, tuple)):
        items = list(value)
        # A path from Record.data(): node, type, node, type, node, ...
        nodes, types = items[::2], items[1::2]
        if (
            len(items) >= 3
            and len(items) % 2 == 1
            and all(isinstance(v, dict) for v in nodes)
            and all(isinstance(v, str) for v in types)
        ):
            parts = [f"({_node_text(items[0])})"]
            for i in range(1, len(items), 2):
                parts.append(f"-[{items[i]}]-({_node_text(items[i + 1])})")
            return "".join(parts)
        if len(items) == 3 and isinstance(items[0], dict) and isinstance(items[1], str) and isinstance(items[2], dict):
            return f"({_node_text(items[0])})-[{items[1]}]-({_node_text(items[2])})"
        return ", ".join(format_cell(v) for v in items)
    text = str(value)
    return text if len(text) <= _CELL_WIDTH else text[: _CELL_WIDTH - 1] + "…"


def _print_catalogue(catalogue: Catalogue, *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps([q.as_dict() for q in catalogue.values()], indent=2, ensure_ascii=False))
        return
    table = Table(title=f"sitegraph query catalogue ({len(catalogue)} queries)")
    table.add_column("name", no_wrap=True)
    table.add_column("group")
    table.add_column("what it answers")
    table.add_column("parameters (* required)")
    for q in catalogue.values():
        params = ", ".join(f"{p.name}{'*' if p.required else ''}: {p.type}" for p in q.parameters)
        table.add_row(q.name, q.group, q.title, params)
    console.print(table)
    console.print("Run one with [bold]sitegraph query NAME --param name=value[/]; [bold]--json[/] for rows as JSON.")


def _print_rows(query: CatalogueQuery, rows: list[dict[str, Any]], *, as_json: bool) -> None:
    if as_json:
        typer.echo(json.dumps(rows, indent=2, ensure_ascii=False, default=_json_default))
        return
    if not rows:
        console.print(f"{escape(query.name)}: no rows")
        return
    table = Table(title=f"{query.title} ({len(rows)} row{'s' if len(rows) != 1 else ''})")
    columns = list(rows[0])
    for col in columns:
        table.add_column(col, overflow="fold")
    for row in rows:
        table.add_row(*(escape(format_cell(row.get(col))) for col in columns))
    console.print(table)


def _say(text: str) -> None:
    """One line of instructions; never wrapped, so URLs and commands stay copyable."""
    console.print(text, soft_wrap=True, highlight=False)


def query(
    name: QueryName = None,
    param: ParamOption = None,
    list_: ListOption = False,
    as_json: JsonOption = False,
    store: StoreOption = None,
) -> None:
    """Run a named, parameterised Cypher query from the catalogue against Neo4j (read-only)."""
    try:
        catalogue = load_catalogue()
        if list_:
            if name or param:
                raise UsageError("--list takes no query name or --param")
            _print_catalogue(catalogue, as_json=as_json)
            return
        if not name:
            raise UsageError("name a catalogue query (sitegraph query --list shows them)")
        q = catalogue.get_query(name)
        values = q.bind(q.parse_args(list(param or [])))
        if (store or "neo4j") != "neo4j":
            raise UsageError("catalogue queries are Cypher and run on Neo4j only: use --store neo4j (the default here)")
    except SitegraphError as e:
        raise fail(e) from e
    with store_from("neo4j") as st:
        from sitegraph.graph.neo4j_store import Neo4jStore

        if not isinstance(st, Neo4jStore):  # pragma: no cover - open_store('neo4j') always gives one
            raise fail(StoreError("catalogue queries need the Neo4j store"))
        with _quiet_driver_notifications():
            rows = run_query(st, q, values)
    _print_rows(q, rows, as_json=as_json)


def browser(
    serve: Annotated[bool, typer.Option("--serve", help="Serve the guide and the style on 127.0.0.1 until Ctrl-C.")] = False,
    port: Annotated[int, typer.Option("--port", help="Port of the guide server on 127.0.0.1.")] = 8765,
    write: Annotated[
        Optional[Path],  # noqa: UP045 - typer needs Optional here
        typer.Option("--write", help="Also write sitegraph-guide.html and sitegraph.grass into this folder.", show_default=False),
    ] = None,
) -> None:
    """How to open Neo4j Browser with the sitegraph guide and style (and serve them with --serve)."""
    from sitegraph.graph.factory import LOCAL_NEO4J_DIR, local_password_file
    from sitegraph.queries.browser.guide import write_browser_files
    from sitegraph.queries.browser.server import DEFAULT_HOST, GuideServer, browser_link
    from sitegraph.settings import get_settings

    if not 0 < port < 65536:
        raise fail(UsageError(f"--port must be between 1 and 65535, not {port}"))
    settings = get_settings()
    http_file = settings.home / LOCAL_NEO4J_DIR / "http_port"
    http_port = http_file.read_text().strip() if http_file.exists() else "7474"
    browser_url = f"http://127.0.0.1:{http_port}/browser/"
    server = GuideServer(DEFAULT_HOST, port)

    if write is not None:
        for path in write_browser_files(write):
            _say(f"wrote {escape(str(path))}")
    _say(f"[bold]Neo4j Browser[/]: {browser_url}")
    password_file = local_password_file(settings.home)
    _say(f"  log in as [bold]neo4j[/] with the password in {password_file} (local server: `sitegraph neo4j start`)")
    _say(f"[bold]Guide[/] (run in Browser's editor): :play {server.guide_url}   (or :guide … for the sidebar)")
    _say(f"[bold]Style[/]: :style {server.style_url}   (the guide's first slide also has a :style block)")
    _say(f"[bold]One link[/] (opens the guide after login): {browser_link(browser_url, server.guide_url)}")
    _say(
        "Browser fetches only from hosts on the server's browser.remote_content_hostname_whitelist (Neo4j 5.26; later: "
        "..._allowlist); its default, guides.neo4j.com,localhost, accepts these localhost URLs, and so does the local server's *."
    )
    if not serve:
        _say("Add --serve to serve the guide and the style there (until Ctrl-C).")
        return
    try:
        with contextlib.suppress(KeyboardInterrupt):
            _say(f"serving {server.guide_url} and {server.style_url}; Ctrl-C stops")
            server.serve_forever()
    except OSError as e:
        err_console.print(f"[bold red]error:[/] cannot serve on {DEFAULT_HOST}:{port}: {escape(str(e))}", soft_wrap=True)
        raise typer.Exit(code=UsageError.exit_code) from e
