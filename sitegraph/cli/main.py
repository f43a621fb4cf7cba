"""`sitegraph`: load, inspect and serve the site knowledge graph.

Exit codes: 0 ok, 1 invalid input, 2 usage error, 3 store unavailable.
"""

from __future__ import annotations

import json
import logging
from functools import partial
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape
from rich.progress import Progress, TaskID
from rich.table import Table

from sitegraph import __version__
from sitegraph.cli.common import JsonOption, StoreOption, console, err_console, fail, progress_bar, setup_logging, store_from
from sitegraph.errors import InvalidInputError, Problem, SitegraphError, UsageError
from sitegraph.graph.store import GraphBatch, GraphStats, GraphStore

log = logging.getLogger(__name__)

app = typer.Typer(
    name="sitegraph",
    help="A knowledge graph of clinical-trial sites, the barriers they face and the tactics that remove them.",
    no_args_is_help=True,
    rich_markup_mode="rich",
    pretty_exceptions_enable=False,
)


def _version(value: bool) -> None:
    if value:
        console.print(f"sitegraph {__version__}")
        raise typer.Exit()


@app.callback()
def _root(
    verbose: Annotated[int, typer.Option("--verbose", "-v", count=True, help="More logging (-v info, -vv debug).")] = 0,
    version: Annotated[
        bool, typer.Option("--version", callback=_version, is_eager=True, help="Print the version and exit.")
    ] = False,
) -> None:
    setup_logging(verbose)


def _advance(bar: Progress, task: TaskID, n: int) -> None:
    bar.advance(task, n)


def report_problems(problems: list[Problem], *, skipped: bool) -> None:
    title = "skipped (invalid)" if skipped else "invalid input"
    for p in problems:
        err_console.print(f"[yellow]{title}:[/] {escape(str(p))}", highlight=False, soft_wrap=True)


def is_csv_folder(path: Path) -> bool:
    from sitegraph.loaders.csvfiles import FILES_BY_NAME

    return path.is_dir() and any((path / name).exists() for name in FILES_BY_NAME)


def _combined(batch: GraphBatch, more: GraphBatch) -> GraphBatch:
    """``batch`` with ``more`` merged in; the first non-empty batch is taken as it is (no copy of millions of rows)."""
    if not len(batch):
        return more
    batch.extend(more)
    return batch


def read_inputs(paths: list[Path], store: GraphStore, *, fmt: str) -> tuple[GraphBatch, list[Problem], str]:
    """Parse and validate everything first; nothing is written here."""
    missing = [p for p in paths if not p.exists()]
    if missing:
        raise UsageError("no such file or folder: " + ", ".join(str(p) for p in missing))
    batch = GraphBatch()
    problems: list[Problem] = []
    summary: list[str] = []
    csv_dirs = [p for p in paths if fmt == "csv" or (fmt == "auto" and is_csv_folder(p))]
    ctgov_paths = [p for p in paths if p not in csv_dirs]
    if csv_dirs:
        from sitegraph.loaders.csvfiles import count_rows, read_csv_folder

        with progress_bar() as bar:
            for folder in csv_dirs:
                task = bar.add_task(f"reading {folder}", total=count_rows(folder) if folder.is_dir() else None)
                res = read_csv_folder(folder, progress=partial(_advance, bar, task))
                batch = _combined(batch, res.batch)
                problems += res.problems
                summary.append(f"{res.rows} CSV row(s) in {res.files} file(s) from {folder}")
    if ctgov_paths:
        from sitegraph.loaders.ctgov import iter_files, read_ctgov

        files = iter_files(ctgov_paths)
        existing = list(store.iter_nodes("Site"))
        with progress_bar() as bar:
            task = bar.add_task("reading ClinicalTrials.gov records", total=len(files))
            res2 = read_ctgov(ctgov_paths, existing_sites=existing, progress=lambda n: bar.advance(task, n))
        batch = _combined(batch, res2.batch)
        problems += res2.problems
        summary.append(f"{res2.studies} stud(ies) from {res2.files} file(s)")
    return batch, problems, "; ".join(summary)


def write_batch(store: GraphStore, batch: GraphBatch, *, bulk: str = "never") -> str:
    """Write a validated batch; returns how: "transactional" or "bulk" (``neo4j-admin database import``).

    ``bulk`` (auto, always, never) applies to Neo4j: see :mod:`sitegraph.graph.neo4j_import`.
    """
    if store.kind != "neo4j":
        if bulk == "always":
            raise UsageError(f"--bulk always is for the local Neo4j, not the {store.kind} store")
        bulk = "never"
    with progress_bar() as bar:
        task = bar.add_task(f"writing to {store.kind}", total=len(batch))
        advance = partial(_advance, bar, task)
        if bulk == "never":
            store.ensure_schema()
            store.write(batch, progress=advance)
            return "transactional"
        from sitegraph.graph.factory import LOCAL_NEO4J_DIR
        from sitegraph.graph.neo4j_import import local_server_for, write_load
        from sitegraph.settings import get_settings

        server = local_server_for(store, get_settings().home / LOCAL_NEO4J_DIR)  # type: ignore[arg-type]
        how, _ = write_load(store, batch, bulk=bulk, server=server, progress=advance)
        return how


def print_stats(stats: GraphStats, *, as_json: bool, title: str = "sitegraph") -> None:
    if as_json:
        console.print_json(json.dumps(stats.as_dict()))
        return
    table = Table(title=title)
    table.add_column("kind")
    table.add_column("name")
    table.add_column("count", justify="right")
    for label, n in stats.nodes.items():
        table.add_row("node", label, str(n))
    for rtype, n in stats.relationships.items():
        table.add_row("relationship", rtype, str(n))
    console.print(table)


@app.command()
def load(
    paths: Annotated[
        list[Path], typer.Argument(help="CSV folders (docs/data-format.md) or ClinicalTrials.gov files, folders or zips.")
    ],
    store: StoreOption = None,
    skip_invalid: Annotated[
        bool,
        typer.Option("--skip-invalid", help="Load the valid records and report each invalid one instead of loading nothing."),
    ] = False,
    fmt: Annotated[str, typer.Option("--format", help="auto, csv or ctgov.")] = "auto",
    bulk: Annotated[
        str,
        typer.Option(
            "--bulk",
            help="Neo4j only: write with the offline importer (neo4j-admin database import) instead of transactions. "
            "auto: for a large load into the (nearly) empty local server that `sitegraph neo4j start` runs; "
            "always: that or an error; never: transactions.",
        ),
    ] = "auto",
) -> None:
    """Load data into the store: all or nothing unless --skip-invalid. Loading the same input twice changes nothing."""
    if fmt not in ("auto", "csv", "ctgov"):
        raise fail(UsageError(f"--format must be auto, csv or ctgov, not {fmt!r}"))
    if bulk not in ("auto", "always", "never"):
        raise fail(UsageError(f"--bulk must be auto, always or never, not {bulk!r}"))
    with store_from(store) as st:
        try:
            batch, problems, summary = read_inputs(paths, st, fmt=fmt)
        except SitegraphError as e:
            raise fail(e) from e
        if problems and not skip_invalid:
            report_problems(problems, skipped=False)
            raise fail(InvalidInputError(problems, summary=f"nothing loaded: {len(problems)} problem(s) in the input"))
        if problems:
            report_problems(problems, skipped=True)
        before = st.stats()
        how = write_batch(st, batch, bulk=bulk)
        after = st.stats()
        via = " with neo4j-admin database import (the server was restarted)" if how == "bulk" else ""
        console.print(f"[green]loaded[/] {summary} into the {st.kind} store{via}")
        for label, n in after.nodes.items():
            if n != before.nodes[label]:
                console.print(f"  {label}: {before.nodes[label]} -> {n}")
        for rtype, n in after.relationships.items():
            if n != before.relationships[rtype]:
                console.print(f"  {rtype}: {before.relationships[rtype]} -> {n}")
        if after == before:
            console.print("  no counts changed (already loaded)")


@app.command()
def stats(store: StoreOption = None, as_json: JsonOption = False) -> None:
    """Count nodes per label and relationships per type."""
    with store_from(store) as st:
        print_stats(st.stats(), as_json=as_json, title=f"sitegraph ({st.kind} store)")


@app.command()
def demo(
    store: StoreOption = None,
    seed: Annotated[int, typer.Option(help="Seed of the synthetic engagement history.")] = 42,
    serve: Annotated[bool, typer.Option("--serve", help="Start the API on the demo data afterwards.")] = False,
    host: Annotated[str, typer.Option(help="API host (with --serve).")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="API port (with --serve).")] = 8000,
) -> None:
    """Build the demo graph: real ClinicalTrials.gov sites, the ontology, a seeded engagement history, centrality."""
    from sitegraph.demo import build_demo

    with store_from(store) as st:
        with console.status("building the demo graph...") as status:
            report = build_demo(st, seed=seed, on_step=lambda text: status.update(text))
        for text in report.steps:
            console.print(f"[green]✓[/] {text}")
        print_stats(st.stats(), as_json=False, title=f"demo graph ({st.kind} store)")
        kind = st.kind
        example = report.example_site or "SITE_ID"
    flag = "" if kind == "memory" else f" --store {kind}"
    console.print("\nNext:")
    console.print(f"  sitegraph related {example}{flag}      # sites most like it, and why")
    console.print(f"  sitegraph recommend {example}{flag}    # next-best tactics, whom to engage")
    console.print(f"  sitegraph serve{flag}                  # the HTTP API on http://127.0.0.1:8000/docs")
    if serve:
        from sitegraph.cli.serve_cmd import serve as run_server

        run_server(host=host, port=port, store=store)


def main() -> None:
    app()


def _register_subcommands() -> None:
    from sitegraph.cli import analyze_cmd, neo4j_cmd, ontology_cmd, query_cmd, recommend_cmd, serve_cmd

    app.add_typer(neo4j_cmd.app, name="neo4j")
    app.add_typer(ontology_cmd.app, name="ontology")
    app.command("generate")(recommend_cmd.generate)
    app.command("analyze")(analyze_cmd.analyze)
    app.command("related")(recommend_cmd.related)
    app.command("recommend")(recommend_cmd.recommend)
    app.command("effectiveness")(recommend_cmd.effectiveness)
    app.command("evaluate")(recommend_cmd.evaluate)
    app.command("query")(query_cmd.query)
    app.command("browser")(query_cmd.browser)
    app.command("serve")(serve_cmd.serve)


_register_subcommands()
