"""`sitegraph generate`, `related`, `recommend`, `effectiveness` and `evaluate`.

Plain functions; ``sitegraph.cli.main`` registers each with ``app.command()(fn)``. ``--json`` prints
the pydantic result models (a list for ``related``, ``recommend`` and ``effectiveness``) on stdout,
nothing else; tables and progress go to the terminal (progress to stderr).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date
from pathlib import Path
from typing import Annotated, Any, Optional

import typer
from rich.table import Table

from sitegraph.cli.common import JsonOption, StoreOption, console, err_console, fail, progress_bar, store_from
from sitegraph.errors import UsageError


def _echo_json(data: Any) -> None:
    """JSON for scripts: plain stdout, no wrapping or colour."""
    typer.echo(json.dumps(data, indent=2, ensure_ascii=False))


@contextmanager
def _progress() -> Iterator[Any]:
    """A callback ``(stage, advance, total)`` drawing one rich progress bar per stage on stderr."""
    bar = progress_bar()
    tasks: dict[str, Any] = {}

    def update(stage: str, advance: int, total: int) -> None:
        if stage not in tasks:
            tasks[stage] = bar.add_task(stage, total=total)
        bar.update(tasks[stage], advance=advance, total=total)

    with bar:
        yield update


# --- generate -------------------------------------------------------------------------------------------


def generate(
    store: StoreOption = None,
    seed: Annotated[int, typer.Option("--seed", help="Random seed: the same seed on the same graph gives the same data.")] = 0,
    scale: Annotated[
        str, typer.Option("--scale", help="demo (the sites in the store, ~8 interactions each), small, medium or large.")
    ] = "demo",
    interactions: Annotated[
        int | None, typer.Option("--interactions", help="Total interactions (overrides the scale's per-site rate).", min=0)
    ] = None,
    per_site: Annotated[
        float | None, typer.Option("--per-site", help="Mean interactions per site (overrides the scale).", min=0)
    ] = None,
    synthesize_sites: Annotated[
        int | None,
        typer.Option("--synthesize-sites", help="Synthesise N sites (small: 300, medium: 3,000, large: 20,000).", min=0),
    ] = None,
    synthesize_investigators: Annotated[
        int | None, typer.Option("--synthesize-investigators", help="Default 1.6 per synthetic site.", min=0)
    ] = None,
    synthesize_studies: Annotated[
        int | None, typer.Option("--synthesize-studies", help="Default one per 6 synthetic sites.", min=0)
    ] = None,
    real_sites: Annotated[
        bool, typer.Option("--real-sites/--no-real-sites", help="Also generate for the sites already in the store.")
    ] = True,
    months: Annotated[int, typer.Option("--months", help="Length of the history, ending at --end-date.", min=1)] = 24,
    end_date: Annotated[
        str, typer.Option("--end-date", help="Last day of the history (ISO date); fixed, not today, so runs reproduce.")
    ] = "2025-06-30",
    clusters: Annotated[int, typer.Option("--clusters", help="Latent barrier clusters of sites.", min=1)] = 8,
    out: Annotated[
        Path | None, typer.Option("--out", help="Also write the history as CSV files of the documented format here.")
    ] = None,
    truth: Annotated[
        Path | None,
        typer.Option("--truth", help="Write the latent ground truth (for `sitegraph evaluate`) to this JSON file."),
    ] = None,
    csv_only: Annotated[bool, typer.Option("--csv-only", help="Write only the CSV files (needs --out), not the store.")] = False,
    chunk_size: Annotated[int, typer.Option("--chunk-size", help="Interactions per store write.", min=1)] = 20_000,
    as_json: JsonOption = False,
) -> None:
    """Generate a seeded synthetic engagement history (interactions, barriers, tactics, study facts) for the store's sites."""
    from sitegraph.loaders.generate import GeneratorConfig
    from sitegraph.loaders.generate import generate as run

    if csv_only and out is None:
        raise fail(UsageError("--csv-only needs --out DIR"))
    try:
        end = date.fromisoformat(end_date)
    except ValueError as e:
        raise fail(UsageError(f"--end-date must be an ISO date (YYYY-MM-DD), not {end_date!r}")) from e
    config = GeneratorConfig(
        seed=seed,
        scale=scale,
        interactions=interactions,
        per_site=per_site,
        synthesize_sites=synthesize_sites,
        synthesize_investigators=synthesize_investigators,
        synthesize_studies=synthesize_studies,
        real_sites=real_sites,
        months=months,
        end_date=end,
        clusters=clusters,
        chunk_size=chunk_size,
        write_store=not csv_only,
    )
    with store_from(store) as st, _progress() as progress:
        report = run(st, config, out=out, truth=truth, progress=progress)
    if as_json:
        _echo_json(report.as_dict())
        return
    where = "CSV files" if csv_only else f"the {st.kind} store" + (" and CSV files" if out else "")
    console.print(
        f"[green]generated[/] {report.interactions:,} interactions for {report.sites:,} sites into {where} "
        f"in {report.seconds:.1f}s ({report.interactions_per_second:,.0f} interactions/s)"
    )
    console.print(
        f"  {report.observations:,} barrier observations, {report.tags:,} tags from notes, "
        f"{report.applications:,} tactic applications, "
        f"{report.site_studies:,} site-study fact rows"
    )
    if report.synthetic_sites:
        console.print(
            f"  synthesised {report.synthetic_sites:,} sites, {report.synthetic_investigators:,} investigators, "
            f"{report.synthetic_studies:,} studies"
        )
    if report.files:
        console.print(f"  CSV: {out} ({len(report.files)} files; `sitegraph load {out}` reproduces the same graph)")
    if report.truth:
        console.print(f"  ground truth: {report.truth} (read only by `sitegraph evaluate`)")


# --- related ---------------------------------------------------------------------------------------------


def related(
    site_id: Annotated[str, typer.Argument(help="The site's id.")],
    store: StoreOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many sites.", min=1, max=200)] = 10,
    cypher: Annotated[bool, typer.Option("--cypher", help="Print each result's Cypher query and parameters.")] = False,
    as_json: JsonOption = False,
) -> None:
    """The sites most like SITE_ID, with their reasons and the Cypher that shows them in Neo4j Browser."""
    from sitegraph.queries.related import related_sites
    from sitegraph.queries.snapshot import get_snapshot

    with store_from(store) as st:
        items = related_sites(get_snapshot(st), site_id, limit)
    if as_json:
        _echo_json([r.model_dump(mode="json") for r in items])
        return
    if not items:
        console.print(f"no site shares investigators, studies, conditions, barriers or a network path with {site_id}")
        return
    table = Table(title=f"Sites related to {site_id}")
    table.add_column("#", justify="right")
    table.add_column("site")
    table.add_column("country")
    table.add_column("score", justify="right")
    table.add_column("reasons")
    for r in items:
        reasons = "; ".join(
            f"{reason.kind.replace('_', ' ')}" + (f": {', '.join(i.name for i in reason.items[:3])}" if reason.items else "")
            for reason in r.reasons
        )
        table.add_row(str(r.rank), f"{r.name}\n[dim]{r.site_id}[/]", r.country or "", f"{r.score:.3f}", reasons)
    console.print(table)
    if cypher:
        for r in items:
            console.print(f"[bold]#{r.rank} {r.site_id}[/]  params: {json.dumps(r.params)}", highlight=False, soft_wrap=True)
            console.print(r.cypher, highlight=False, markup=False, soft_wrap=True)


# --- recommend -----------------------------------------------------------------------------------------


def recommend(
    site_id: Annotated[Optional[str], typer.Argument(help="The site's id (omit with --all).", show_default=False)] = None,  # noqa: UP045
    store: StoreOption = None,
    limit: Annotated[int, typer.Option("--limit", "-n", help="How many tactics.", min=1, max=50)] = 5,
    cypher: Annotated[bool, typer.Option("--cypher", help="Print each explanation's Cypher query and parameters.")] = False,
    every_site: Annotated[
        bool,
        typer.Option(
            "--all",
            help="Every site: one JSON line per site, {site_id, recommendations}, in site id order (to --out or stdout).",
        ),
    ] = False,
    out: Annotated[
        Optional[Path],  # noqa: UP045
        typer.Option("--out", "-o", help="With --all: write the JSON lines to this file instead of stdout."),
    ] = None,
    workers: Annotated[
        Optional[int],  # noqa: UP045
        typer.Option(
            "--workers",
            "-j",
            min=1,
            help="With --all: processes computing the sites (default: one per available core). Same answers; "
            "each worker forked from this process shares its graph's memory.",
            show_default=False,
        ),
    ] = None,
    as_json: JsonOption = False,
) -> None:
    """Next-best tactics for SITE_ID: for its active barriers, ranked, with whom to engage and why (--all: every site)."""
    from sitegraph.queries.recommend import recommend_tactics
    from sitegraph.queries.snapshot import get_snapshot

    if every_site:
        if site_id is not None:
            raise fail(UsageError("give a site id or --all, not both"))
        if cypher:
            raise fail(UsageError("--cypher shows one site's table; --all writes JSON lines (each has its Cypher)"))
        _recommend_every_site(store, limit, out, workers)
        return
    if out is not None or workers is not None:
        raise fail(UsageError(f"{'--out' if out is not None else '--workers'} goes with --all"))
    if site_id is None:
        raise fail(UsageError("give a site id, or --all for every site"))
    with store_from(store) as st:
        items = recommend_tactics(get_snapshot(st), site_id, limit)
    if as_json:
        _echo_json([r.model_dump(mode="json") for r in items])
        return
    if not items:
        console.print(f"no barrier has been raised or inferred for {site_id}: nothing to recommend yet")
        return
    table = Table(title=f"Next-best tactics for {site_id}")
    table.add_column("#", justify="right")
    table.add_column("tactic")
    table.add_column("score", justify="right")
    table.add_column("against")
    table.add_column("evidence / observed")
    table.add_column("effort")
    for r in items:
        ev = r.evidence[0] if r.evidence else None
        observed = (
            f"{ev.observed_success_rate:.0%} of {ev.observed_tries}"
            if ev and ev.observed_tries and ev.observed_success_rate is not None
            else "untried"
        )
        level = ev.evidence_level if ev and ev.evidence_level else "-"
        flag = " [yellow](tried recently)[/]" if r.recently_tried else ""
        table.add_row(
            str(r.rank),
            f"{r.tactic_label}{flag}\n[dim]{r.tactic_id}[/]",
            f"{r.score:.3f}",
            "\n".join(b.rsplit("/", 1)[-1] for b in r.barriers[:3]),
            f"{level}\n{observed}",
            r.effort or "",
        )
    console.print(table)
    engage = items[0].engage
    who = f"{engage.investigator_name} ({engage.investigator_id})" if engage.investigator_id else "nobody identified"
    console.print(f"[bold]Engage:[/] {who} - {engage.reason}", highlight=False, soft_wrap=True)
    console.print(
        f"[bold]Channel:[/] {engage.channel or 'no preference yet'} - {engage.channel_reason}", highlight=False, soft_wrap=True
    )
    for r in items:
        for e in r.explanations:
            console.print(f"  #{r.rank} {e.description}", highlight=False, soft_wrap=True)
            if cypher:
                console.print(f"    params: {json.dumps(e.params)}", highlight=False, markup=False, soft_wrap=True)
                console.print(f"    {e.cypher}", highlight=False, markup=False, soft_wrap=True)


def _recommend_every_site(store: str | None, limit: int, out: Path | None, workers: int | None) -> None:
    """``recommend --all``: stream every site's recommendations as JSON lines, with a progress bar on stderr."""
    import sys

    from sitegraph.queries.recommend import recommend_all_json
    from sitegraph.queries.snapshot import get_snapshot
    from sitegraph.workers import available_cores

    with store_from(store) as st:
        snapshot = get_snapshot(st)
        sites = [k for k, _ in snapshot.nodes("Site")]
        try:
            sink = out.open("w", encoding="utf-8") if out is not None else sys.stdout
        except OSError as e:
            raise fail(UsageError(f"cannot write {out}: {e.strerror}")) from e
        written = 0
        try:
            with _progress() as progress:
                progress("indexes", 0, 1)
                results = recommend_all_json(
                    snapshot,
                    sites,
                    limit,
                    progress=lambda n: progress("sites", n, len(sites)),
                    workers=available_cores() if workers is None else workers,
                )
                for site, recs in results:
                    if written == 0:
                        progress("indexes", 1, 1)
                    sink.write(f'{{"site_id":{json.dumps(site, ensure_ascii=False)},"recommendations":{recs}}}\n')
                    written += 1
        finally:
            if out is not None:
                sink.close()
    if out is not None:
        err_console.print(f"[green]wrote[/] recommendations for {written:,} sites to {out}", highlight=False)


# --- effectiveness --------------------------------------------------------------------------------------


def effectiveness(
    store: StoreOption = None,
    tactic: Annotated[Optional[str], typer.Option("--tactic", help="Only this tactic (IRI, id or label).")] = None,  # noqa: UP045
    barrier: Annotated[Optional[str], typer.Option("--barrier", help="Only this barrier (IRI, id or label).")] = None,  # noqa: UP045
    by: Annotated[Optional[str], typer.Option("--by", help="Split by kind of site: country or size.")] = None,  # noqa: UP045
    min_tries: Annotated[int, typer.Option("--min-tries", help="Hide pairs tried fewer times.", min=1)] = 1,
    limit: Annotated[int, typer.Option("--limit", "-n", help="Rows to show in the table (JSON has all).", min=1)] = 40,
    as_json: JsonOption = False,
) -> None:
    """How often each tactic resolved each barrier: tries, success rate with a 95% Wilson interval, time to resolution."""
    from sitegraph.queries.effectiveness import tactic_effectiveness
    from sitegraph.queries.snapshot import get_snapshot

    with store_from(store) as st:
        rows = tactic_effectiveness(get_snapshot(st), tactic=tactic, barrier=barrier, group_by=by, min_tries=min_tries)
    if as_json:
        _echo_json([r.model_dump(mode="json") for r in rows])
        return
    if not rows:
        console.print("no tactic application with a known outcome matches")
        return
    table = Table(title="Tactic effectiveness" + (f" by {by}" if by else ""))
    table.add_column("tactic")
    table.add_column("barrier")
    if by:
        table.add_column(by)
    table.add_column("tries", justify="right")
    table.add_column("success", justify="right")
    table.add_column("95% interval", justify="right")
    table.add_column("median days to resolve", justify="right")
    for r in rows[:limit]:
        interval = f"{r.interval[0]:.2f}-{r.interval[1]:.2f}" if r.interval else ""
        cells = [r.tactic_label, r.barrier_label] + ([r.group or ""] if by else [])
        cells += [
            str(r.tries),
            f"{r.success_rate:.0%}" if r.success_rate is not None else "",
            interval,
            f"{r.median_days_to_resolution:.0f}" if r.median_days_to_resolution is not None else "",
        ]
        table.add_row(*cells)
    console.print(table)
    if len(rows) > limit:
        console.print(f"[dim]{len(rows) - limit} more row(s); use --limit or --json[/]")


# --- evaluate --------------------------------------------------------------------------------------------


def evaluate(
    truth: Annotated[Path, typer.Option("--truth", help="The ground-truth file written by `sitegraph generate --truth`.")],
    store: StoreOption = None,
    k: Annotated[int, typer.Option("--k", help="Cut-off of precision@k and NDCG@k.", min=1, max=50)] = 5,
    seed: Annotated[int, typer.Option("--seed", help="Seed of the random baseline and of the site sample.")] = 0,
    max_sites: Annotated[
        int, typer.Option("--max-sites", help="Evaluate at most this many sites (a seeded sample).", min=1)
    ] = 500,
    as_json: JsonOption = False,
) -> None:
    """Precision@k and NDCG@k of next-best tactics and related sites against the truth, beside random and popular baselines."""
    from sitegraph.queries.evaluate import evaluate as run
    from sitegraph.queries.evaluate import load_truth
    from sitegraph.queries.snapshot import get_snapshot

    with store_from(store) as st:
        doc = load_truth(truth)
        with _progress() as progress:
            report = run(get_snapshot(st), doc, k=k, seed=seed, max_sites=max_sites, progress=progress)
    if as_json:
        _echo_json(report.as_json())
        return
    table = Table(title=f"Evaluation against {truth} (k = {k})")
    table.add_column("task")
    table.add_column("method")
    table.add_column(f"precision@{k}", justify="right")
    table.add_column(f"NDCG@{k}", justify="right")
    for name, task in (("next-best tactics", report.tactics), ("related sites", report.related)):
        for method, m in (("sitegraph", task.product), ("random", task.random), ("popular", task.popular)):
            table.add_row(
                f"{name} ({task.sites} sites)" if method == "sitegraph" else "", method, f"{m.precision:.3f}", f"{m.ndcg:.3f}"
            )
    console.print(table)
