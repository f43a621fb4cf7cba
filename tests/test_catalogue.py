"""The Cypher query catalogue: its files, the CLI, the Browser guide and style, and every query on the real Neo4j.

The unit tests need no database. The ``neo4j`` tests load the demo data (real ClinicalTrials.gov
records, the ontology, a seeded engagement history and centrality scores) into the session's Neo4j
once, run every catalogue query with its example parameters, and check the rows against facts read
independently from the store.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Callable, Iterator
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

from sitegraph.demo import build_demo
from sitegraph.errors import StoreError, UsageError
from sitegraph.graph.schema import NODES, RELATIONSHIPS, USER_LABELS
from sitegraph.graph.store import GraphStore
from sitegraph.queries.browser.guide import grass, packaged_guide, render_guide, runnable_blocks
from sitegraph.queries.catalogue import (
    CatalogueError,
    CatalogueQuery,
    Parameter,
    check_read_only,
    load_catalogue,
    markdown_table,
    parse_query,
    run_query,
    strip_literals,
    write_clauses,
)

ROOT = Path(__file__).resolve().parents[1]
runner = CliRunner()

CATALOGUE = load_catalogue()

# Real ClinicalTrials.gov facts in the packaged demo records.
HUNAN = "site:hunan-cancer-hospital-changsha-china"
SUN_YAT_SEN = "site:sun-yat-sen-cancer-center-guangzhou-china"
LIN_WU = "inv:lin-wu"


def cli_app() -> typer.Typer:
    """The catalogue commands on an app of their own (the real CLI registers the same functions)."""
    from sitegraph.cli.query_cmd import browser, query

    app = typer.Typer()
    app.command("query")(query)
    app.command("browser")(browser)
    return app


# --- the catalogue files ---------------------------------------------------------------------------------------


def test_catalogue_has_at_least_15_documented_queries() -> None:
    assert len(CATALOGUE) >= 15
    for q in CATALOGUE.values():
        assert re.fullmatch(r"[a-z0-9-]+", q.name)
        assert q.title and len(q.description) > 40, q.name
        assert q.labels, q.name
        for p in q.parameters:
            assert p.description and p.example is not None, (q.name, p.name)
            assert p.required or p.check(p.default) == p.default


def test_every_query_is_read_only() -> None:
    for q in CATALOGUE.values():
        assert write_clauses(q.cypher) == [], q.name
        check_read_only(q.cypher)


@pytest.mark.parametrize(
    "cypher",
    [
        "CREATE (n:Site {id: $id})",
        "MATCH (n:Site) SET n.name = $name",
        "MATCH (n:Site) DETACH DELETE n",
        "MATCH (n:Site) REMOVE n.name",
        "MERGE (n:Site {id: $id})",
        "LOAD CSV FROM $url AS row RETURN row",
        "MATCH (n:Site) FOREACH (x IN [1] | SET n.x = x)",
        "CALL apoc.create.node(['Site'], {}) YIELD node RETURN node",
        "MATCH (n) CALL (n) { DELETE n } IN TRANSACTIONS",
        "match (n:Site) delete n",
        "DROP INDEX site_name",
    ],
)
def test_write_clauses_are_rejected(cypher: str) -> None:
    assert write_clauses(cypher)
    with pytest.raises(CatalogueError):
        check_read_only(cypher)


def test_keywords_inside_strings_and_comments_are_not_writes() -> None:
    cypher = "// CREATE nothing here\nMATCH (n:Site) WHERE n.name <> 'DELETE me' RETURN n.created_at /* SET */"
    assert write_clauses(cypher) == []
    assert "DELETE" not in strip_literals(cypher)


def test_labels_and_types_come_from_the_schema() -> None:
    for q in CATALOGUE.values():
        assert set(q.labels) <= set(NODES), q.name
        assert set(q.relationships) <= set(RELATIONSHIPS), q.name


def test_every_value_is_a_parameter() -> None:
    """String literals in catalogue queries are formatting only; values come in as $parameters."""
    for q in CATALOGUE.values():
        text = re.sub(r"//[^\n]*", "", q.cypher)
        for literal in re.findall(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"", text):
            assert re.fullmatch(r"""['"][\W_]*['"]""", literal), (q.name, literal)
        declared = {p.name for p in q.parameters}
        assert set(re.findall(r"\$(\w+)", text)) == declared, q.name


HEADER = """\
// name: demo-query
// group: Sites
// title: A demo
// description: Long enough to say what it does and why
//   on two lines.
// param site_id: string, required, example "site:x" -- the site
// param limit: integer = 5, example 3 -- how many
// returns: table
"""


def test_parse_query_reads_the_header() -> None:
    q = parse_query(
        HEADER + "MATCH (s:Site {id: $site_id})-[:WORKS_AT]-(i:Investigator) RETURN i LIMIT toInteger($limit)", "x.cypher"
    )
    assert q.name == "demo-query"
    assert q.description == "Long enough to say what it does and why on two lines."
    assert [p.name for p in q.parameters] == ["site_id", "limit"]
    assert q.parameters[0].required and q.parameters[1].default == 5 and q.parameters[1].example == 3
    assert q.labels == ("Investigator", "Site") and q.relationships == ("WORKS_AT",)
    assert q.example_params() == {"site_id": "site:x", "limit": 3}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ("MATCH (s:Site {id: $site_id}) SET s.x = 1 RETURN s LIMIT toInteger($limit)", "read-only"),
        ("MATCH (s:Hospital {id: $site_id}) RETURN s LIMIT toInteger($limit)", "Hospital"),
        ("MATCH (s:Site {id: $site_id})-[:KNOWS]->(x) RETURN s LIMIT toInteger($limit)", "KNOWS"),
        ("MATCH (s:Site {id: $site_id}) RETURN s LIMIT toInteger($other)", "undeclared"),
        ("MATCH (s:Site {id: $site_id}) RETURN s", "unused"),
    ],
)
def test_parse_query_rejects_bad_queries(body: str, message: str) -> None:
    with pytest.raises(CatalogueError, match=message):
        parse_query(HEADER + body, "bad.cypher")


@pytest.mark.parametrize(
    "header",
    [
        HEADER.replace("// group: Sites\n", ""),
        HEADER.replace("Sites", "Elsewhere"),
        HEADER.replace("// returns: table", "// returns: chart"),
        HEADER.replace(', example "site:x"', ""),
        HEADER.replace(" -- how many", ""),
        HEADER.replace("integer = 5", "integer = 'five'"),
        HEADER.replace("integer = 5", "number = 5"),
        HEADER + "// colour: blue\n",
    ],
)
def test_parse_query_rejects_bad_headers(header: str) -> None:
    with pytest.raises(CatalogueError):
        parse_query(header + "MATCH (s:Site {id: $site_id}) RETURN s LIMIT toInteger($limit)", "bad.cypher")


# --- parameters ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("ptype", "raw", "value"),
    [
        ("string", " a b ", " a b "),
        ("integer", "42", 42),
        ("integer", "-3", -3),
        ("float", "1.5", 1.5),
        ("float", "2", 2.0),
        ("boolean", "true", True),
        ("boolean", "No", False),
        ("list<string>", "resolved, improved", ["resolved", "improved"]),
        ("list<string>", '["a,b", "c"]', ["a,b", "c"]),
    ],
)
def test_parameters_coerce_command_line_strings(ptype: Any, raw: str, value: Any) -> None:
    assert Parameter("x", ptype, "x").parse(raw) == value


@pytest.mark.parametrize(
    ("ptype", "raw"),
    [("integer", "ten"), ("integer", "1.5"), ("float", "nan"), ("float", "x"), ("boolean", "maybe"), ("list<string>", "[1, 2]")],
)
def test_bad_parameter_strings_are_usage_errors(ptype: Any, raw: str) -> None:
    with pytest.raises(UsageError):
        Parameter("x", ptype, "x").parse(raw)


def test_bind_fills_defaults_and_rejects_unknown_or_missing() -> None:
    q = CATALOGUE["site-timeline"]
    assert q.bind({"site_id": "s"}) == {"site_id": "s", "since": None, "limit": 50}
    with pytest.raises(UsageError, match="no parameter 'site'"):
        q.bind({"site": "s"})
    with pytest.raises(UsageError, match="required"):
        q.bind({})
    with pytest.raises(UsageError, match="must be integer"):
        q.bind({"site_id": "s", "limit": "5"})
    with pytest.raises(UsageError, match="given twice"):
        q.parse_args(["limit=1", "limit=2"])


# --- CLI -------------------------------------------------------------------------------------------------------


def test_cli_list_json_shape() -> None:
    result = runner.invoke(cli_app(), ["query", "--list", "--json"])
    assert result.exit_code == 0, result.output
    listed = json.loads(result.stdout)
    assert [entry["name"] for entry in listed] == list(CATALOGUE)
    for entry in listed:
        assert set(entry) == {"name", "description", "parameters"}
        for p in entry["parameters"]:
            assert set(p) >= {"name", "type", "required", "default", "example", "description"}
    timeline = next(e for e in listed if e["name"] == "site-timeline")
    assert timeline["parameters"][0] == {
        "name": "site_id",
        "type": "string",
        "required": True,
        "default": None,
        "example": CATALOGUE["site-timeline"].example_params()["site_id"],
        "description": "id of the site",
    }


def test_cli_list_table() -> None:
    result = runner.invoke(cli_app(), ["query", "--list"])
    assert result.exit_code == 0, result.output
    for name in CATALOGUE:
        assert name in result.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["query"],
        ["query", "no-such-query"],
        ["query", "site-timeline"],  # missing required site_id
        ["query", "site-timeline", "--param", "site_id=x", "--param", "colour=blue"],
        ["query", "site-timeline", "--param", "site_id=x", "--param", "limit=many"],
        ["query", "site-timeline", "--param", "site_id"],
        ["query", "screen-failure-outliers", "--param", "factor=inf"],
        ["query", "site-timeline", "--param", "site_id=x", "--store", "memory"],
        ["query", "site-timeline", "--list"],
        ["browser", "--port", "0"],
    ],
)
def test_cli_usage_errors_exit_2(args: list[str]) -> None:
    result = runner.invoke(cli_app(), args)
    assert result.exit_code == 2, result.output


def test_cli_browser_prints_the_play_and_style_commands(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sitegraph.settings import get_settings

    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path / "home"))
    get_settings.cache_clear()
    try:
        result = runner.invoke(cli_app(), ["browser", "--port", "8799", "--write", str(tmp_path / "out")])
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    out = " ".join(result.stdout.split())
    assert ":play http://localhost:8799/sitegraph-guide.html" in out
    assert ":style http://localhost:8799/sitegraph.grass" in out
    assert "/browser/?cmd=play&arg=http%3A%2F%2Flocalhost%3A8799%2Fsitegraph-guide.html" in out
    assert (tmp_path / "out" / "sitegraph-guide.html").read_text(encoding="utf-8") == render_guide()
    assert (tmp_path / "out" / "sitegraph.grass").read_text(encoding="utf-8") == grass()


# --- guide, style, docs -------------------------------------------------------------------------------------------


def test_guide_cypher_blocks_are_exactly_the_catalogue() -> None:
    blocks = runnable_blocks(render_guide())
    assert blocks[0].startswith(":style ") and "node.Site" in blocks[0]
    cypher_blocks = [b for b in blocks if not b.startswith(":")]
    assert cypher_blocks == [q.cypher for q in CATALOGUE.values()]
    params_blocks = [b for b in blocks if b.startswith(":params ")]
    with_params = [q for q in CATALOGUE.values() if q.parameters]
    assert [json.loads(b[len(":params ") :]) for b in params_blocks] == [q.example_params() for q in with_params]
    # every query's :params block comes right before it
    for q in with_params:
        i = blocks.index(q.cypher)
        assert blocks[i - 1] == q.params_command()


def test_packaged_guide_is_current() -> None:
    """``python -m sitegraph.queries.browser.guide`` regenerates it after a catalogue change."""
    assert packaged_guide() == render_guide()


def test_guide_is_untouched_by_browsers_sanitiser() -> None:
    """Neo4j Browser strips on* attributes, scripts and javascript: links from remote guides (its cleanHtml)."""
    html = render_guide()
    cleaned = re.sub(r"(\s+(on[^\s=]+)[^\s=]*\s*=\s*(\"[^\"]*\"|'[^']*'|[\w\-.:]+\s*))", "", html, flags=re.I)
    cleaned = re.sub(r"<script\b[^<]*(?:(?!</script>)<[^<]*)*(</script>)?", "", cleaned, flags=re.I)
    assert cleaned == html
    assert "<title>" in html and html.count("<slide") == len(CATALOGUE) + 1


def _grass_rules(style: str) -> dict[str, str]:
    return {m.group(1): m.group(2) for m in re.finditer(r"^(\S+) \{\n(.*?)\n\}$", style, flags=re.M | re.S)}


def test_grass_styles_every_label() -> None:
    rules = _grass_rules(grass())
    for label in USER_LABELS:
        rule = rules[f"node.{label}"]
        for prop in ("color:", "diameter:", "caption:"):
            assert prop in rule, (label, prop)
    captions = {
        "Site": "{name}",
        "Investigator": "{name}",
        "Study": "{id}",
        "Barrier": "{label}",
        "Tactic": "{label}",
        "Interaction": "{channel}",
    }
    for label, caption in captions.items():
        assert f'caption: "{caption}";' in rules[f"node.{label}"], label


def test_docs_table_matches_the_catalogue() -> None:
    doc = (ROOT / "docs" / "exploring.md").read_text(encoding="utf-8")
    start, end = "<!-- catalogue-table:start -->\n", "<!-- catalogue-table:end -->"
    assert start in doc and end in doc
    table = doc.split(start, 1)[1].split(end, 1)[0]
    assert table == markdown_table(), (
        "regenerate the table with sitegraph.queries.catalogue.markdown_table() (docs/exploring.md §5)"
    )


# --- every query on the real Neo4j, with the demo data --------------------------------------------------------------


@pytest.fixture(scope="module")
def demo(neo4j_session_store: GraphStore) -> Iterator[GraphStore]:
    neo4j_session_store.clear(confirm=True)
    build_demo(neo4j_session_store)  # what `sitegraph demo` loads; the catalogue's examples come from it
    yield neo4j_session_store


class Facts:
    """What the store holds, read through the store interface (not through the catalogue's Cypher)."""

    def __init__(self, store: GraphStore) -> None:
        self.store = store
        self.nodes = {label: {str(p[NODES[label].key]): p for p in store.iter_nodes(label)} for label in USER_LABELS}
        self.rels = {t: list(store.iter_relationships(t)) for t in RELATIONSHIPS}

    def out(self, rel: str, start: str) -> list[str]:
        return [r.end for r in self.rels[rel] if r.start == start]

    def into(self, rel: str, end: str) -> list[str]:
        return [r.start for r in self.rels[rel] if r.end == end]

    def per_site(self, prop: str) -> dict[str, list[Any]]:
        out: dict[str, list[Any]] = defaultdict(list)
        for r in self.rels["PARTICIPATES_IN"]:
            if r.props.get(prop) is not None:
                out[r.start].append(r.props[prop])
        return out

    def barrier(self, ref: str) -> str:
        return next(iri for iri, p in self.nodes["Barrier"].items() if ref in (iri, p.get("id"), p.get("label")))

    def narrower_or_self(self, iri: str) -> set[str]:
        seen, todo = {iri}, [iri]
        while todo:
            cur = todo.pop()
            for r in self.rels["BROADER"]:
                if r.end == cur and r.start not in seen:
                    seen.add(r.start)
                    todo.append(r.start)
        return seen

    def broader_or_self(self, iri: str) -> set[str]:
        seen, todo = {iri}, [iri]
        while todo:
            cur = todo.pop()
            for r in self.rels["BROADER"]:
                if r.start == cur and r.end not in seen:
                    seen.add(r.end)
                    todo.append(r.end)
        return seen


@pytest.fixture(scope="module")
def facts(demo: GraphStore) -> Facts:
    return Facts(demo)


def _sorted_desc(values: list[Any]) -> bool:
    return all(a >= b for a, b in pairwise(values))


def check_site_360(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    site = q.example_params()["site_id"]
    assert all(r["path"][0]["id"] == site for r in rows)
    investigators = {r["key"] for r in rows if r["via"] == "WORKS_AT"}
    assert investigators == set(f.into("WORKS_AT", site)) and len(investigators) >= 5
    studies = {r["path"][2]["id"] for r in rows if r["via"] == "STUDIES"}
    assert studies == set(f.out("PARTICIPATES_IN", site))
    assert {r["neighbour"] for r in rows} >= {"Investigator", "Condition", "Sponsor"}


def check_sites_by_pagerank(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    country = q.example_params()["country"]
    ranks = sorted(
        (p["pagerank"] for p in f.nodes["Site"].values() if p.get("country") == country and p.get("pagerank") is not None),
        reverse=True,
    )
    assert len(rows) == min(10, len(ranks))
    assert all(r["country"] == country for r in rows)
    assert _sorted_desc([r["pagerank"] for r in rows])
    assert rows[0]["pagerank"] == round(ranks[0], 6)


def check_study_sites(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    study = q.example_params()["study_id"]
    sites = set(f.into("PARTICIPATES_IN", study))
    assert len(rows) == min(25, len(sites)) and {r["site_id"] for r in rows} <= sites


def check_contract_revisions(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    per_site = {s: v for s, v in f.per_site("contract_revisions").items() if len(v) >= 2}
    best = max(round(sum(v) / len(v), 2) for v in per_site.values())
    assert rows[0]["revisions_per_study"] == best
    assert all(r["studies"] >= 2 for r in rows)
    assert rows[0]["revisions"] == sum(per_site[rows[0]["site_id"]])


def check_activated_not_enrolling(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    before = q.example_params()["activated_before"]
    for r in rows:
        links = [x for x in f.rels["PARTICIPATES_IN"] if x.start == r["site_id"] and x.props.get("activation_date")]
        links = [x for x in links if x.props["activation_date"] <= before]
        assert len(links) == r["activated_studies"] >= 1
        assert all(not x.props.get("enrolled") for x in links)


def check_screen_failure_outliers(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    links = [
        r for r in f.rels["PARTICIPATES_IN"] if (r.props.get("screened") or 0) > 0 and r.props.get("screen_failures") is not None
    ]
    overall = sum(r.props["screen_failures"] for r in links) / sum(r.props["screened"] for r in links)
    for r in rows:
        assert r["overall_rate"] == round(overall, 3)
        assert r["screened"] >= 20 and r["screen_failures"] / r["screened"] >= overall * 1.5


def check_query_backlog(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    totals = {s: sum(v) for s, v in f.per_site("open_queries").items()}
    assert rows[0]["open_queries"] == max(totals.values())
    assert all(totals[r["site_id"]] == r["open_queries"] >= 5 for r in rows)


def check_survey_fatigue(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    totals = {s: sum(v) for s, v in f.per_site("surveys_received").items()}
    assert rows[0]["surveys"] == max(totals.values())
    assert _sorted_desc([r["surveys"] for r in rows])


def check_shared_investigators(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    assert q.example_params() == {"site_a": HUNAN, "site_b": SUN_YAT_SEN}
    assert [r["investigator_id"] for r in rows] == [LIN_WU]
    assert rows[0]["investigator"] == "Lin Wu" and rows[0]["studies"]


def check_central_investigators(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    term = q.example_params()["condition"].lower()
    conditions = {c for c, p in f.nodes["Condition"].items() if term in str(p.get("name", "")).lower()}
    studies = {r.start for r in f.rels["STUDIES"] if r.end in conditions}
    on_condition = {r.start for r in f.rels["INVESTIGATOR_ON"] if r.end in studies}
    assert len(rows) == min(10, len(on_condition)) and {r["investigator_id"] for r in rows} <= on_condition
    assert _sorted_desc([r["pagerank"] or 0.0 for r in rows])
    assert LIN_WU in {r["investigator_id"] for r in rows}


def check_site_collaborators(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    site = q.example_params()["site_id"]
    assert {r["investigator_id"] for r in rows} <= set(f.into("WORKS_AT", site))
    assert all(r["investigator_id"] != r["collaborator_id"] and r["shared_studies"] == len(r["studies"]) for r in rows)


def _country_counts(f: Facts) -> dict[tuple[Any, str], set[str]]:
    site_of = {r.start: r.end for r in f.rels["WITH_SITE"]}
    out: dict[tuple[Any, str], set[str]] = defaultdict(set)
    for r in f.rels["CONCERNS"]:
        site = f.nodes["Site"][site_of[r.start]]
        out[(site.get("country"), r.end)].add(r.start)
    return out


def check_barrier_hotspots_by_country(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    since = q.example_params()["since"]
    counts = _country_counts(f)
    occurred = {k: p["occurred_at"] for k, p in f.nodes["Interaction"].items()}
    top = rows[0]
    iri = f.barrier(top["barrier_id"])
    assert top["interactions"] == len({i for i in counts[(top["country"], iri)] if occurred[i] >= since})
    assert _sorted_desc([r["interactions"] for r in rows]) and all(r["interactions"] >= 2 for r in rows)


def check_barrier_hotspots_by_condition(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    assert _sorted_desc([r["interactions"] for r in rows]) and all(r["interactions"] >= 2 for r in rows)
    names = {p.get("name") for p in f.nodes["Condition"].values()}
    assert {r["condition"] for r in rows} <= names


def check_tactic_path(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    params = q.example_params()
    tactic = next(p for p in f.nodes["Tactic"].values() if p.get("id") == params["tactic"])
    assert {r["tactic"] for r in rows} == {tactic["label"]}
    for r in rows:
        assert r["evidence_level"] and 0 <= r["levels_up"] <= 3
        path = r["path"]
        assert path[0]["id"] == params["site_id"] and path[-1]["id"] == params["tactic"]
        assert path[1::2][:2] == ["WITH_SITE", "CONCERNS"] and path[-2] == "MITIGATES"


def check_tactics_resolved(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    params = q.example_params()
    assert all(r["sites"] >= 1 and set(r["outcomes"]) <= set(params["outcomes"]) for r in rows)
    assert _sorted_desc([r["sites"] for r in rows])
    target = f.barrier(params["barrier"])
    mitigating = {r.start for r in f.rels["MITIGATES"] if r.end in f.broader_or_self(target)}
    tactic_ids = {iri: p.get("id") for iri, p in f.nodes["Tactic"].items()}
    for r in rows:
        assert bool(r["evidence_levels"]) == (r["tactic_id"] in {tactic_ids[t] for t in mitigating})


def check_barrier_mitigations(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    iri = f.barrier(q.example_params()["barrier"])
    expected = {(r.start, r.end) for r in f.rels["MITIGATES"] if r.end in f.broader_or_self(iri)}
    tactic_ids = {iri_: str(p.get("id")) for iri_, p in f.nodes["Tactic"].items()}
    assert sorted(r["tactic_id"] for r in rows) == sorted(tactic_ids[t] for t, _ in expected)
    assert rows[0]["levels_up"] == 0


def check_ontology_hierarchy(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    params = q.example_params()
    top = f.barrier(params["concept"])
    assert rows[0]["depth"] == 0 and rows[0]["concept_id"] == params["concept"]
    assert all(r["depth"] <= params["max_depth"] for r in rows)
    assert {f.barrier(r["concept_id"]) for r in rows} == f.narrower_or_self(top)


def check_site_timeline(rows: list[dict[str, Any]], q: CatalogueQuery, f: Facts) -> None:
    params = q.example_params()
    mine = [i for i, s in ((r.start, r.end) for r in f.rels["WITH_SITE"]) if s == params["site_id"]]
    recent = [i for i in mine if f.nodes["Interaction"][i]["occurred_at"] >= params["since"]]
    assert len(rows) == min(params["limit"], len(recent))
    assert _sorted_desc([r["occurred_at"] for r in rows])
    assert any(r["barriers"] for r in rows)


CHECKS: dict[str, Callable[[list[dict[str, Any]], CatalogueQuery, Facts], None]] = {
    "site-360": check_site_360,
    "sites-by-pagerank": check_sites_by_pagerank,
    "study-sites": check_study_sites,
    "contract-revisions": check_contract_revisions,
    "activated-not-enrolling": check_activated_not_enrolling,
    "screen-failure-outliers": check_screen_failure_outliers,
    "query-backlog": check_query_backlog,
    "survey-fatigue": check_survey_fatigue,
    "shared-investigators": check_shared_investigators,
    "central-investigators": check_central_investigators,
    "site-collaborators": check_site_collaborators,
    "barrier-hotspots-by-country": check_barrier_hotspots_by_country,
    "barrier-hotspots-by-condition": check_barrier_hotspots_by_condition,
    "tactic-path": check_tactic_path,
    "tactics-resolved-at-similar-sites": check_tactics_resolved,
    "barrier-mitigations": check_barrier_mitigations,
    "ontology-hierarchy": check_ontology_hierarchy,
    "site-timeline": check_site_timeline,
}


def test_every_query_has_a_check() -> None:
    assert set(CHECKS) == set(CATALOGUE)


@pytest.mark.neo4j
@pytest.mark.parametrize("name", list(CATALOGUE))
def test_query_on_neo4j_with_example_parameters(name: str, demo: GraphStore, facts: Facts) -> None:
    from sitegraph.graph.neo4j_store import Neo4jStore

    assert isinstance(demo, Neo4jStore)
    q = CATALOGUE[name]
    rows = run_query(demo, q, q.example_params())
    assert rows, f"{name} returned no rows on the demo data"
    if q.returns == "graph":
        assert all("path" in r for r in rows)
    CHECKS[name](rows, q, facts)


@pytest.mark.neo4j
def test_read_access_refuses_writes(demo: GraphStore) -> None:
    """Catalogue queries run in read transactions: the server itself refuses a write there."""
    from sitegraph.graph.neo4j_store import Neo4jStore

    assert isinstance(demo, Neo4jStore)
    with pytest.raises(StoreError, match="read access mode"):
        demo.read("CREATE (n:Site {id: $id}) RETURN n.id AS id", {"id": "site:should-not-exist"})
    assert demo.get_node("Site", "site:should-not-exist") is None


@pytest.mark.neo4j
def test_cli_runs_a_query_on_neo4j(demo: GraphStore, neo4j_server: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from sitegraph.settings import get_settings

    monkeypatch.setenv("SITEGRAPH_HOME", str(tmp_path))
    monkeypatch.setenv("NEO4J_URI", neo4j_server.uri)
    monkeypatch.setenv("NEO4J_PASSWORD", neo4j_server.password)
    get_settings.cache_clear()
    try:
        args = ["query", "shared-investigators", "--param", f"site_a={HUNAN}", "--param", f"site_b={SUN_YAT_SEN}"]
        result = runner.invoke(cli_app(), [*args, "--json"])
        assert result.exit_code == 0, result.output
        rows = json.loads(result.stdout)
        assert [r["investigator_id"] for r in rows] == [LIN_WU]
        table = runner.invoke(cli_app(), args)
        assert table.exit_code == 0, table.output
        assert "Lin Wu" in table.stdout and "WORKS_AT" in table.stdout
        limited = runner.invoke(cli_app(), ["query", "sites-by-pagerank", "-p", "limit=3", "--json"])
        assert limited.exit_code == 0, limited.output
        assert len(json.loads(limited.stdout)) == 3
    finally:
        get_settings.cache_clear()
