"""``sitegraph analyze``: centrality on the graph's projections, written back as node properties.

Registered by the CLI as ``app.command()(analyze)``. ``--compare`` runs the fast path and the
networkx reference side by side instead, writes nothing, and exits 1 if any measure differs by more
than its stated tolerance (``docs/centrality.md``).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Annotated, Optional

import typer
from rich.table import Table

from sitegraph.cli.common import JsonOption, StoreOption, console, err_console, fail, progress_bar, store_from
from sitegraph.errors import UsageError
from sitegraph.graph import analyze as analysis
from sitegraph.graph.centrality import DELTA, METHODS, Method
from sitegraph.graph.projections import read_edges

MethodOption = Annotated[
    str, typer.Option("--method", "-m", help="'fast' (vectorised numpy/scipy) or 'networkx' (the reference implementation).")
]
SamplesOption = Annotated[
    Optional[int],  # noqa: UP045 - typer needs Optional here
    typer.Option(
        "--samples",
        "-k",
        min=2,
        help="Pivots for betweenness and harmonic closeness. Default: exact on small graphs, else chosen by graph size.",
        show_default=False,
    ),
]
CompareOption = Annotated[
    bool, typer.Option("--compare", help="Run the fast path and networkx side by side, print their differences, write nothing.")
]
SeedOption = Annotated[int, typer.Option("--seed", help="Seed for the sampled pivots (the same seed gives the same pivots).")]


@contextmanager
def _progress() -> Iterator[analysis.Progress]:
    """A progress display on stderr, as a callback for :func:`analysis.compute`."""
    bar = progress_bar(transient=True)
    with bar:
        task = bar.add_task("reading the graph", total=None)

        def update(what: str, done: int, total: int) -> None:
            bar.update(task, description=what, completed=done, total=total)

        yield update


def _exactness(run: analysis.MeasureRun) -> str:
    if run.measure == "pagerank":
        return f"L1 ≤ {run.error_bound:.1e} from exact"
    if run.exact:
        return "exact"
    return f"{run.pivots} pivots, |error| ≤ {run.error_bound:.3f} (p={1 - DELTA:g})"


def print_report(report: analysis.AnalysisReport) -> None:
    table = Table(title=f"sitegraph analyze ({report.store} store, data version {report.data_version}, method {report.method})")
    for name in ("projection", "measure", "properties", "nodes", "edges", "seconds", "exactness"):
        table.add_column(name, justify="right" if name in ("nodes", "edges", "seconds") else "left")
    for run in report.measures:
        table.add_row(
            run.projection,
            run.measure,
            ", ".join(run.properties),
            f"{run.nodes:,}",
            f"{run.edges:,}",
            f"{run.seconds:.2f}",
            "" if run.measure == "projection" else _exactness(run),
        )
    console.print(table)
    console.print(
        f"wrote {report.properties_written:,} properties on {report.nodes_written:,} nodes in {report.write_seconds:.2f}s "
        f"(read {report.snapshot_seconds:.2f}s, total {report.seconds:.2f}s); "
        f"computed at {report.computed_at} from data version {report.data_version}",
        highlight=False,
    )


def print_differences(diffs: list[analysis.Difference], data_version: int) -> None:
    table = Table(title=f"fast path against networkx (data version {data_version})")
    for name in ("projection", "measure", "nodes", "max abs", "L1", "tolerance", "fast s", "networkx s", "ok"):
        table.add_column(name, justify="left" if name in ("projection", "measure") else "right")
    for d in diffs:
        table.add_row(
            d.projection,
            d.measure,
            f"{d.nodes:,}",
            f"{d.max_abs:.2e}",
            f"{d.l1:.2e}",
            f"{'L1' if d.tolerance_on == 'l1' else 'max'} ≤ {d.tolerance:g}",
            f"{d.seconds_fast:.2f}",
            f"{d.seconds_networkx:.2f}",
            "[green]yes[/]" if d.ok else "[red]NO[/]",
        )
    console.print(table)


def analyze(
    store: StoreOption = None,
    method: MethodOption = "fast",
    samples: SamplesOption = None,
    compare: CompareOption = False,
    seed: SeedOption = 0,
    as_json: JsonOption = False,
) -> None:
    """Compute PageRank, degree, strength, betweenness and harmonic closeness and store them on the nodes.

    Site, Investigator and Study get pagerank, degree, strength, betweenness and harmonic (site-investigator-study graph).

    Investigator also gets collab_pagerank, collab_degree, collab_strength, collab_betweenness and collab_harmonic.

    Sort by them in Neo4j Browser: MATCH (s:Site) RETURN s.name, s.pagerank ORDER BY s.pagerank DESC. See docs/centrality.md.
    """
    if method not in METHODS:
        raise fail(UsageError(f"--method must be one of {', '.join(METHODS)}, not {method!r}"))
    chosen: Method = "networkx" if method == "networkx" else "fast"
    with store_from(store) as st:
        if compare:
            version, edges = read_edges(st)  # only the projected keys: no snapshot of the whole graph
            with _progress() as progress:
                diffs = analysis.compare(edges, betweenness_samples=samples, seed=seed, progress=progress)
            ok = all(d.ok for d in diffs)
            if as_json:
                payload = {"data_version": version, "ok": ok, "differences": [d.as_dict() for d in diffs]}
                console.print_json(json.dumps(payload))
            else:
                print_differences(diffs, version)
            if not ok:
                bad = ", ".join(f"{d.projection}/{d.measure}" for d in diffs if not d.ok)
                err_console.print(f"[bold red]error:[/] fast path and networkx differ beyond tolerance: {bad}", highlight=False)
                raise typer.Exit(code=1)
            return
        with _progress() as progress:
            report = analysis.analyze(st, method=chosen, betweenness_samples=samples, seed=seed, progress=progress)
        if as_json:
            console.print_json(json.dumps(report.as_dict()))
        else:
            print_report(report)
