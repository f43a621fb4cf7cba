"""What every command shares: the store option, the console, error-to-exit-code mapping."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from typing import Annotated, Optional

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape
from rich.progress import BarColumn, MofNCompleteColumn, Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

from sitegraph.errors import SitegraphError
from sitegraph.graph.factory import open_store
from sitegraph.graph.store import GraphStore

console = Console()
err_console = Console(stderr=True)

StoreOption = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional here
    typer.Option(
        "--store", "-s", help="Store to use: 'memory' (embedded, default) or 'neo4j'. Env: SITEGRAPH_STORE.", show_default=False
    ),
]
JsonOption = Annotated[bool, typer.Option("--json", help="Print machine-readable JSON instead of a table.")]


def progress_bar(*, transient: bool = False) -> Progress:
    """The progress display every long command uses: on stderr, and off when stderr is not a terminal."""
    return Progress(
        SpinnerColumn(),
        TextColumn("[progress.description]{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=err_console,
        transient=transient,
        disable=not err_console.is_terminal,
    )


def setup_logging(verbose: int) -> None:
    level = logging.WARNING if verbose <= 0 else logging.INFO if verbose == 1 else logging.DEBUG
    logging.basicConfig(
        level=level, format="%(message)s", handlers=[RichHandler(console=err_console, show_path=False)], force=True
    )


def fail(error: SitegraphError) -> typer.Exit:
    """Print the error and return the Exit to raise, with the error's exit code."""
    err_console.print(f"[bold red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
    return typer.Exit(code=error.exit_code)


@contextlib.contextmanager
def store_from(kind: str | None) -> Iterator[GraphStore]:
    """Open the store for a command; map sitegraph errors to exit codes."""
    try:
        store = open_store(kind)
    except SitegraphError as e:
        raise fail(e) from e
    try:
        yield store
    except SitegraphError as e:
        raise fail(e) from e
    finally:
        store.close()
