"""`sitegraph ontology ...`: validate, diff, sync, export and inspect the barrier–tactic ontology.

Exit codes: 0 ok, 1 invalid ontology (every problem listed), 2 usage error, 3 store unavailable.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated, Optional

import typer
from rich.markup import escape

from sitegraph.cli.common import JsonOption, StoreOption, console, err_console, fail, store_from
from sitegraph.errors import SitegraphError, UsageError
from sitegraph.ontology import FORMATS, LabelIndex, diff, export, load_ontology, sync, validate, validate_ontology

app = typer.Typer(
    help="The barrier–tactic ontology: validate the Turtle files, see what a change does, sync it into the graph, export it.",
    no_args_is_help=True,
)

PathArg = Annotated[
    Optional[str],  # noqa: UP045 - typer needs Optional here
    typer.Argument(
        help="Folder or .ttl file, or a git revision (HEAD~1, or REV:path). Default: the packaged ontology.", show_default=False
    ),
]
PathOption = Annotated[
    Optional[str],  # noqa: UP045
    typer.Option(
        "--path", "-p", help="Folder or .ttl file, or a git revision. Default: the packaged ontology.", show_default=False
    ),
]


@app.command("validate")
def validate_cmd(path: PathArg = None, as_json: JsonOption = False) -> None:
    """Check Turtle syntax, the SHACL shapes and the structural checks; exit 1 listing every problem."""
    try:
        report = validate(path)
    except SitegraphError as e:
        raise fail(e) from e
    if as_json:
        console.print_json(
            json.dumps(
                {
                    "valid": report.ok,
                    "counts": report.counts,
                    "problems": [
                        {
                            "check": p.check,
                            "severity": p.severity,
                            "file": p.file,
                            "line": p.line,
                            "iri": p.iri,
                            "message": p.message,
                        }
                        for p in report.problems
                    ],
                }
            )
        )
    else:
        for p in report.problems:
            style = "red" if p.severity == "error" else "yellow"
            err_console.print(f"[{style}]{escape(str(p))}[/]", highlight=False, soft_wrap=True)
        summary = report.render().splitlines()[-1]
        (console if report.ok else err_console).print(escape(summary), highlight=False, soft_wrap=True)
    if not report.ok:
        raise typer.Exit(code=1)


@app.command("diff")
def diff_cmd(
    old: Annotated[str, typer.Argument(help="The old version: a folder, a .ttl file, or a git revision (HEAD~1, REV:path).")],
    new: PathArg = None,
    as_json: JsonOption = False,
) -> None:
    """What changed between two versions: concepts and links added, removed and changed."""
    try:
        result = diff(old, new)
    except SitegraphError as e:
        raise fail(e) from e
    if as_json:
        console.print_json(json.dumps(result.as_dict()))
    else:
        console.print(escape(result.render()), highlight=False, soft_wrap=True)


@app.command("sync")
def sync_cmd(store: StoreOption = None, path: PathOption = None, as_json: JsonOption = False) -> None:
    """Validate the ontology, then make the graph's Barrier/Tactic nodes and BROADER/MITIGATES match it."""
    try:
        onto = load_ontology(path)
        validate_ontology(onto).raise_if_invalid("the ontology is invalid; nothing was written to the graph")
    except SitegraphError as e:
        raise fail(e) from e
    with store_from(store) as graph:
        report = sync(graph, onto)
    if as_json:
        console.print_json(json.dumps(report.as_dict()))
    else:
        console.print(escape(report.render()), highlight=False, soft_wrap=True)


@app.command("export")
def export_cmd(
    store: StoreOption = None,
    fmt: Annotated[str, typer.Option("--format", "-f", help="turtle or json-ld.")] = "turtle",
    out: Annotated[Optional[Path], typer.Option("--out", "-o", help="Write to this file instead of standard output.")] = None,  # noqa: UP045
    with_vocabulary: Annotated[
        bool, typer.Option("--with-vocabulary", help="Add the packaged core vocabulary (classes, roles, channels ...).")
    ] = False,
) -> None:
    """Export the ontology part of the graph as Turtle or JSON-LD."""
    if fmt not in FORMATS:
        raise fail(UsageError(f"unknown format {fmt!r}: use {' or '.join(FORMATS)}"))
    with store_from(store) as graph:
        text = export(graph, fmt, with_vocabulary=with_vocabulary)
    if out is None:
        typer.echo(text, nl=False)
    else:
        out.write_text(text, encoding="utf-8")
        err_console.print(f"wrote {escape(str(out))}", highlight=False)


@app.command("stats")
def stats_cmd(path: PathArg = None, as_json: JsonOption = False) -> None:
    """Count categories, barriers, tactic groups, tactics, links and labels."""
    try:
        onto = load_ontology(path)
    except SitegraphError as e:
        raise fail(e) from e
    counts = onto.counts()
    levels: dict[str, int] = {}
    for link in onto.links.values():
        levels[link.evidence_level or "none"] = levels.get(link.evidence_level or "none", 0) + 1
    if as_json:
        console.print_json(json.dumps({"counts": counts, "links_by_evidence_level": levels}))
        return
    for name, value in counts.items():
        console.print(f"{name.replace('_', ' ')}: {value}", highlight=False)
    for level, n in sorted(levels.items()):
        console.print(f"links with {level.replace('-', ' ')}: {n}", highlight=False)


@app.command("tag")
def tag_cmd(
    text: Annotated[str, typer.Argument(help="Free text, such as an interaction note.")],
    path: PathOption = None,
    tactics: Annotated[bool, typer.Option("--tactics", help="Tag tactics instead of barriers.")] = False,
) -> None:
    """Show which barriers (or tactics) a text names through their labels and altLabels."""
    try:
        onto = load_ontology(path)
    except SitegraphError as e:
        raise fail(e) from e
    index = LabelIndex.from_ontology(onto, ("tactic",) if tactics else ("barrier",))
    matches = index.match(text)
    if not matches:
        console.print("no concept named in the text")
    for m in matches:
        console.print(f'{escape(m.id)}  "{escape(m.label)}"  matched "{escape(m.matched)}"', highlight=False)
