"""The Neo4j Browser guide, generated from the query catalogue so that it cannot drift from it.

The guide is classic Browser guide HTML: ``<slide>`` elements inside an ``<article class="guide">``.
Neo4j Browser 5 shows it in a frame with ``:play <url>`` and in the sidebar with ``:guide <url>``;
clicking a ``<pre class="code runnable">`` block copies it into the editor. The first slide explains the
graph model (from :mod:`sitegraph.graph.schema`) and holds a ``:style`` block with the whole
``sitegraph.grass`` inline; then each catalogue query gets a slide, group by group, with a ``:params``
block setting its example parameters and a block holding exactly the catalogue's Cypher.

``python -m sitegraph.queries.browser.guide [DIR]`` rewrites the packaged copy (or writes the guide and
the style into DIR).
"""

from __future__ import annotations

import html
import sys
from collections.abc import Sequence
from html.parser import HTMLParser
from importlib.resources import files
from pathlib import Path

from sitegraph.graph.schema import NODES, RELATIONSHIPS, USER_LABELS
from sitegraph.queries.catalogue import Catalogue, CatalogueQuery, cypher_literal, load_catalogue

GUIDE_FILE = "sitegraph-guide.html"
STYLE_FILE = "sitegraph.grass"
TITLE = "sitegraph: clinical-trial sites, barriers and tactics"
_PACKAGE = "sitegraph.queries.browser"

_MODEL_TEXT = """\
 (Investigator)-[:WORKS_AT]->(Site)-[:PARTICIPATES_IN {facts}]->(Study)-[:SPONSORED_BY]->(Sponsor)
       |                                                       ^   |
       +-------------[:INVESTIGATOR_ON {role, site_id}]--------+   +-[:STUDIES]->(Condition)
 (Interaction)-[:WITH_SITE]->(Site)      (Interaction)-[:WITH_INVESTIGATOR]->(Investigator)
 (Interaction)-[:CONCERNS]->(Barrier)<-[:MITIGATES]-(Tactic)<-[:APPLIED {outcome}]-(Interaction)
 (Barrier)-[:BROADER]->(Barrier)          (Tactic)-[:BROADER]->(Tactic)"""


def grass() -> str:
    """The packaged ``sitegraph.grass`` style."""
    return (files(_PACKAGE) / STYLE_FILE).read_text(encoding="utf-8")


def packaged_guide() -> str:
    """The guide as written into the package (``sitegraph-guide.html``)."""
    return (files(_PACKAGE) / GUIDE_FILE).read_text(encoding="utf-8")


def _e(text: str) -> str:
    return html.escape(text, quote=False)


def _runnable(text: str) -> str:
    return f'<pre class="pre-scrollable code runnable">{_e(text)}</pre>'


def _row(*cells: str) -> str:
    return "      <tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>"


def _slide(heading: str, kicker: str, body: str) -> str:
    return (
        '<slide class="row-fluid">\n'
        '  <div class="col-sm-12">\n'
        f"    <h3>{_e(heading)}</h3>\n"
        f'    <p class="lead">{_e(kicker)}</p>\n'
        f"{body}"
        "  </div>\n"
        "</slide>\n"
    )


def _intro_slide(catalogue: Catalogue) -> str:
    labels = "\n".join(
        _row(f"<code>{_e(label)}</code>", f"<code>{_e(NODES[label].key)}</code>", _e(NODES[label].description))
        for label in USER_LABELS
    )
    rels = "\n".join(
        _row(f"<code>{_e(spec.type)}</code>", _e(", ".join(f"{a} → {b}" for a, b in spec.endpoints)), _e(spec.description))
        for spec in RELATIONSHIPS.values()
    )
    contents = "\n".join(
        f"      <li><b>{_e(group)}</b>: {_e(', '.join(q.title for q in queries))}</li>" for group, queries in catalogue.groups()
    )
    body = f"""\
    <p>A knowledge graph of clinical-trial <b>sites</b>, the <b>investigators</b> who work there, the
    <b>studies</b> they run, the <b>barriers</b> our <b>interactions</b> with them raise, and the
    <b>tactics</b> that remove those barriers, with the evidence behind each tactic.</p>
    <pre style="white-space: pre; overflow-x: auto; word-break: normal">{_e(_MODEL_TEXT)}</pre>
    <h4>Nodes</h4>
    <table class="table-condensed">
      <tr><th>label</th><th>key</th><th>what it is</th></tr>
{labels}
    </table>
    <h4>Relationships</h4>
    <table class="table-condensed">
      <tr><th>type</th><th>from → to</th><th>meaning</th></tr>
{rels}
    </table>
    <h4>Style</h4>
    <p>Click the block below, then run it (Ctrl+Enter): it applies the sitegraph style (a colour, size
    and caption per label) to every graph you draw.</p>
    {_runnable(":style " + grass().strip())}
    <h4>How to use the queries</h4>
    <p>Each of the next slides holds one query of the catalogue ({len(catalogue)} in all, also available as
    <code>sitegraph query NAME --param name=value</code>). Click its <code>:params</code> block and run it to set
    example parameters, then click the query and run it. Change the parameters with <code>:param name =&gt; value</code>.</p>
    <ul>
{contents}
    </ul>
"""
    return _slide("The sitegraph knowledge graph", "Sites, investigators, studies, barriers and tactics", body)


def _param_rows(query: CatalogueQuery) -> str:
    rows = []
    for p in query.parameters:
        default = "required" if p.required else f"<code>{_e(cypher_literal(p.default))}</code>"
        rows.append(_row(f"<code>${_e(p.name)}</code>", _e(p.type), default, _e(p.description)))
    return "\n".join(rows)


def _query_slide(query: CatalogueQuery, position: str) -> str:
    involves = ", ".join([f":{label}" for label in query.labels] + [f"[:{t}]" for t in query.relationships])
    params = ""
    if query.parameters:
        params = f"""\
    <table class="table-condensed">
      <tr><th>parameter</th><th>type</th><th>default</th><th>meaning</th></tr>
{_param_rows(query)}
    </table>
    <p>Example parameters:</p>
    {_runnable(query.params_command())}
"""
    body = f"""\
    <p>{_e(query.description)}</p>
    <p><small>Query <code>{_e(query.name)}</code> · returns a {_e(query.returns)} · involves {_e(involves)}</small></p>
{params}    <p>The query:</p>
    {_runnable(query.cypher)}
"""
    return _slide(query.title, f"{query.group} · {position}", body)


def render_guide(catalogue: Catalogue | None = None) -> str:
    """The whole guide as an HTML document (deterministic: the same catalogue gives the same bytes)."""
    catalogue = catalogue or load_catalogue()
    slides = [_intro_slide(catalogue)]
    for group, queries in catalogue.groups():
        for i, query in enumerate(queries, 1):
            slides.append(_query_slide(query, f"{i} of {len(queries)} in {group}"))
    return (
        "<!DOCTYPE html>\n"
        "<!-- Generated from sitegraph/queries/cypher by sitegraph.queries.browser.guide; do not edit. -->\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{_e(TITLE)}</title>\n"
        "</head>\n<body>\n"
        '<article class="guide">\n<carousel class="deck container-fluid">\n'
        + "".join(slides)
        + "</carousel>\n</article>\n</body>\n</html>\n"
    )


class _RunnableBlocks(HTMLParser):
    """Collects the text of ``<pre>`` elements whose class list has ``runnable``."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.blocks: list[str] = []
        self._depth = 0
        self._buffer: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "pre" and "runnable" in (dict(attrs).get("class") or "").split():
            self._depth = 1
            self._buffer = []

    def handle_endtag(self, tag: str) -> None:
        if tag == "pre" and self._depth:
            self._depth = 0
            self.blocks.append("".join(self._buffer).strip())

    def handle_data(self, data: str) -> None:
        if self._depth:
            self._buffer.append(data)


def runnable_blocks(document: str) -> list[str]:
    """The text of every runnable block, in order, as Browser puts it into the editor (trimmed)."""
    parser = _RunnableBlocks()
    parser.feed(document)
    parser.close()
    return parser.blocks


def write_browser_files(directory: Path) -> list[Path]:
    """Write the guide and the style into ``directory`` (created if needed); return the two paths."""
    directory.mkdir(parents=True, exist_ok=True)
    guide_path = directory / GUIDE_FILE
    style_path = directory / STYLE_FILE
    guide_path.write_text(render_guide(), encoding="utf-8")
    style_path.write_text(grass(), encoding="utf-8")
    return [guide_path, style_path]


def main(argv: Sequence[str] | None = None) -> int:
    """Regenerate the packaged guide, or write guide and style into the folder given."""
    args = list(sys.argv[1:] if argv is None else argv)
    if args:
        for path in write_browser_files(Path(args[0])):
            print(path)
        return 0
    target = Path(__file__).with_name(GUIDE_FILE)
    target.write_text(render_guide(), encoding="utf-8")
    print(target)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
