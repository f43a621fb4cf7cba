"""Signals, related sites, next-best tactics and effectiveness: behaviour on both stores, identical rankings."""

from __future__ import annotations

from pathlib import Path

import pytest

from sitegraph.errors import NotFoundError
from sitegraph.graph.memory import MemoryStore
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.queries.effectiveness import tactic_effectiveness, wilson_interval
from sitegraph.queries.recommend import recommend_tactics
from sitegraph.queries.related import WEIGHTS, network_proximity, related_sites
from sitegraph.queries.signals import (
    HALF_LIFE_DAYS,
    build_barrier_index,
    score_interaction,
    sentiment,
    site_barrier_activity,
    site_friction_summary,
    tag_note,
)
from sitegraph.queries.snapshot import build_snapshot, get_snapshot
from tests.test_generate import build_graph, tiny_ontology

B = "https://w3id.org/sitegraph/barrier/"
T = "https://w3id.org/sitegraph/tactic/"

# --- tagging and sentiment (pure functions) ------------------------------------------------------------

INDEX = build_barrier_index(
    [
        {
            "iri": B + "contract-revisions",
            "id": "contract-revisions",
            "label": "Repeated contract revisions",
            "alt_labels": ["another round of redlines", "contract back and forth", "CTA still in negotiation"],
        },
        {
            "iri": B + "survey-fatigue",
            "id": "survey-fatigue",
            "label": "Repeated feasibility questionnaires",
            "alt_labels": ["survey overload", "yet another feasibility survey"],
        },
        {"iri": B + "old", "id": "old", "label": "Fax machine broken", "deprecated": True},
    ]
)


@pytest.mark.parametrize(
    ("note", "expected"),
    [
        ("Coordinator says: another round of redlines on the CTA.", {"contract-revisions"}),
        ("ANOTHER ROUND OF REDLINES again!", {"contract-revisions"}),
        ("Another rounds of redline", {"contract-revisions"}),  # plural/singular folded
        ("Survey overload, and the CTA still in negotiation.", {"contract-revisions", "survey-fatigue"}),
        ("Repeated contract revisions", {"contract-revisions"}),  # the prefLabel too
        ("No issues with the contract back and forth this time.", set()),
        ("Not seeing any survey overload anymore.", set()),
        ("Contract back and forth resolved after the call.", set()),
        ("Contract back and forth is no longer a problem.", set()),
        ("Contract back and forth not yet resolved.", {"contract-revisions"}),  # the resolution is negated
        ("No progress on the contract back and forth.", {"contract-revisions"}),  # pseudo-negation
        ("No reply yet; another round of redlines expected.", {"contract-revisions"}),  # the negation is in another clause
        ("The fax machine broken again", set()),  # deprecated concepts are not tagged
        ("redlines", set()),  # whole phrases only
        ("anotherround of redlines", set()),
    ],
)
def test_tag_note(note: str, expected: set[str]) -> None:
    assert {t.id for t in tag_note(note, INDEX)} == expected


def test_tag_positions_and_negated_tags() -> None:
    note = "Update: survey overload. No issues with another round of redlines."
    tags = tag_note(note, INDEX, include_negated=True)
    by_id = {t.id: t for t in tags}
    assert note[by_id["survey-fatigue"].start : by_id["survey-fatigue"].end] == "survey overload"
    assert by_id["survey-fatigue"].negated is False and by_id["contract-revisions"].negated is True
    assert by_id["survey-fatigue"].confidence == 0.9


def test_sentiment() -> None:
    assert sentiment("Great call, the coordinator is very happy with the support.") > 0.3
    assert sentiment("Coordinator frustrated and angry about the delays.") < -0.3
    assert sentiment("") == 0.0
    assert -1 <= sentiment("Terrible. Awful. Horrible!!!") <= 1


# --- barrier activity on a hand-made graph -----------------------------------------------------------------


def small_graph() -> GraphBatch:
    b = tiny_ontology()
    b.add_node("Site", "site:a", {"name": "Alpha Hospital", "country": "France"})
    b.add_node("Site", "site:b", {"name": "Beta Clinic", "country": "France"})
    b.add_node("Investigator", "inv:x", {"name": "Xavier Dupont"})
    b.add_rel("WORKS_AT", "Investigator", "inv:x", "Site", "site:a")
    rows = [
        ("ix1", "site:a", "2025-01-01T10:00:00+00:00", "email", "Contract delays.", None, None),
        ("ix2", "site:a", "2025-03-31T10:00:00+00:00", "call", "They sent another round of redlines, frustrating.", None, None),
        (
            "ix3",
            "site:a",
            "2025-03-01T10:00:00+00:00",
            "email",
            "No issues with the contract back and forth this time.",
            None,
            None,
        ),
        ("ix4", "site:b", "2025-02-01T10:00:00+00:00", "visit", "Used the template.", T + "contract-template", "resolved"),
        ("ix5", "site:b", "2024-12-01T10:00:00+00:00", "visit", "Still waiting for the ethics committee.", None, None),
    ]
    for iid, site, at, channel, note, tactic, outcome in rows:
        props = {"occurred_at": at, "channel": channel, "note": note}
        if outcome:
            props["outcome"] = outcome
        b.add_node("Interaction", iid, props)
        b.add_rel("WITH_SITE", "Interaction", iid, "Site", site)
        if tactic:
            b.add_rel("APPLIED", "Interaction", iid, "Tactic", tactic, {"outcome": outcome})
    b.add_rel("WITH_INVESTIGATOR", "Interaction", "ix2", "Investigator", "inv:x")
    b.add_rel("CONCERNS", "Interaction", "ix1", "Barrier", B + "contract-revisions", {"source": "observed", "severity": 0.8})
    b.add_rel("CONCERNS", "Interaction", "ix4", "Barrier", B + "contract-revisions", {"source": "observed", "severity": 0.6})
    return b


def test_barrier_activity_formula(store: GraphStore) -> None:
    store.write(small_graph())
    snap = build_snapshot(store)
    acts = site_barrier_activity(snap, "site:a")
    assert [a.id for a in acts] == ["contract-revisions"]
    a = acts[0]
    # the reference date is the end of the UTC day of ix2 (the latest interaction, 10:00): 14 hours later
    # ix1: observed, severity 0.8, 89 days and 14 hours before the reference date
    # ix2: tagged from the note ("another round of redlines"), barrier severity 0.7, confidence 0.9, 14 hours old
    # ix3: negated mention: nothing
    late = 14 / 24
    expected = 0.8 * 0.5 ** ((89 + late) / HALF_LIFE_DAYS) + 0.7 * 0.9 * 0.5 ** (late / HALF_LIFE_DAYS)
    assert a.activity == pytest.approx(expected, abs=1e-6)
    assert (a.mentions, a.observations, a.tags) == (2, 1, 1)
    assert a.active and a.last_seen == "2025-03-31T10:00:00+00:00" and a.last_interaction_id == "ix2"
    # a resolved application adds nothing
    b_acts = {x.id: x for x in site_barrier_activity(snap, "site:b")}
    assert b_acts["contract-revisions"].activity == 0.0
    # ix5: tagged from the note, severity 0.8, confidence 0.9, 120 days and 14 hours old: below the active threshold
    assert b_acts["stalled-ethics"].activity == pytest.approx(0.8 * 0.9 * 0.5 ** ((120 + late) / HALF_LIFE_DAYS), abs=1e-6)
    assert site_barrier_activity(snap, "site:b", active_only=True) == []
    with pytest.raises(NotFoundError):
        site_barrier_activity(snap, "site:nope")


def test_friction_summary_and_scoring(store: GraphStore) -> None:
    store.write(small_graph())
    snap = build_snapshot(store)
    s = site_friction_summary(snap, "site:a")
    assert s.reference_date == "2025-04-01T00:00:00+00:00"  # the end of the UTC day of ix2, the latest interaction
    assert s.last_contact == "2025-03-31T10:00:00+00:00" and s.last_channel == "call"
    assert [b.id for b in s.top_barriers] == ["contract-revisions"]
    assert s.interactions == 3 and s.interactions_90d == 3 and s.trend == "rising"  # ix1 is 89 days 14 hours old
    assert s.sentiment_avg is not None and "Repeated contract revisions" in s.text
    tags, score = score_interaction(
        snap, "Another round of redlines, and still waiting for the ethics committee. Great call though!"
    )
    assert {t.id for t in tags} == {"contract-revisions", "stalled-ethics"}
    assert -1 <= score <= 1


def test_recommend_walks_broader_concepts(store: GraphStore) -> None:
    store.write(small_graph())
    snap = build_snapshot(store)
    recs = recommend_tactics(snap, "site:a")
    by_id = {r.tactic_id: r for r in recs}
    assert {"contract-template", "master-agreement"} <= set(by_id)  # master-agreement mitigates the broader "contracting"
    assert [r.rank for r in recs] == list(range(1, len(recs) + 1))
    assert all(recs[i].score >= recs[i + 1].score for i in range(len(recs) - 1))
    broader = by_id["master-agreement"].explanations[0]
    assert broader.relationships == ["WITH_SITE", "CONCERNS", "BROADER", "MITIGATES"]
    assert [n.label for n in broader.nodes] == ["Site", "Interaction", "Barrier", "Barrier", "Tactic"]
    assert by_id["contract-template"].engage.investigator_id == "inv:x"
    assert recommend_tactics(snap, "site:b", limit=1)[0].rank == 1
    with pytest.raises(NotFoundError):
        recommend_tactics(snap, "site:nope")


# --- generated data on both stores ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory) -> MemoryStore:
    """The generated test graph in an embedded store, built once for this module."""
    st = MemoryStore(tmp_path_factory.mktemp("reference"))
    build_graph(st, seed=7)
    return st


def busy_sites(snap: object, n: int = 4) -> list[str]:
    from sitegraph.queries.signals import engagement_index

    eng = engagement_index(snap)  # type: ignore[arg-type]
    return sorted(eng.by_site, key=lambda s: (-len(eng.by_site[s]), s))[:n]


def test_recommend_and_related_on_generated_data(reference: MemoryStore) -> None:
    snap = get_snapshot(reference)
    for site in busy_sites(snap):
        recs = recommend_tactics(snap, site, limit=5)
        assert recs and len(recs) <= 5
        for r in recs:
            assert (r.barriers or r.inferred_barriers) and r.evidence and r.explanations
            assert all(e.cypher.startswith(("MATCH", "CALL")) and "$" in e.cypher for e in r.explanations)
            assert set(r.score_parts) >= {"evidence", "effectiveness", "barrier_weight", "cost", "recent_failures"}
            assert r.engage.channel is None or r.engage.channel in ("call", "email", "visit", "fax", "portal")
        rel = related_sites(snap, site, limit=5)
        assert rel and rel[0].rank == 1 and all(x.site_id != site for x in rel)
        assert all(rel[i].score >= rel[i + 1].score for i in range(len(rel) - 1))
        for r in rel:
            assert r.reasons and r.cypher and r.params["site"] == site and r.params["other"] == r.site_id
            assert {reason.kind for reason in r.reasons} <= set(WEIGHTS)
            assert r.score == pytest.approx(sum(r.score_parts.values()), abs=1e-5)
    with pytest.raises(NotFoundError):
        related_sites(snap, "site:nope")
    prox = network_proximity(snap, busy_sites(snap)[0])
    assert prox and all(v >= 0 for v in prox.values())


def test_both_stores_rank_identically(store: GraphStore, reference: MemoryStore) -> None:
    build_graph(store, seed=7)
    ours, theirs = get_snapshot(store), get_snapshot(reference)
    for site in busy_sites(theirs):
        assert [r.model_dump() for r in recommend_tactics(ours, site)] == [
            r.model_dump() for r in recommend_tactics(theirs, site)
        ]
        assert [r.model_dump() for r in related_sites(ours, site)] == [r.model_dump() for r in related_sites(theirs, site)]
        assert site_friction_summary(ours, site) == site_friction_summary(theirs, site)
    assert tactic_effectiveness(ours) == tactic_effectiveness(theirs)


@pytest.mark.neo4j
def test_cypher_returns_the_paths_on_neo4j(request: pytest.FixtureRequest) -> None:
    store = request.getfixturevalue("neo4j_session_store")
    store.clear(confirm=True)
    build_graph(store, seed=7)
    snap = get_snapshot(store)
    for site in busy_sites(snap, 2):
        for rec in recommend_tactics(snap, site, limit=3):
            for e in rec.explanations:
                rows = store.read(e.cypher, dict(e.params))
                assert rows, e.cypher
        for r in related_sites(snap, site, limit=3):
            rows = store.read(r.cypher, dict(r.params))
            assert rows, r.cypher
            assert all(row["p"] is not None for row in rows)


# --- effectiveness --------------------------------------------------------------------------------------------


def test_wilson_interval() -> None:
    assert wilson_interval(0, 0) is None
    low, high = wilson_interval(2, 2)  # type: ignore[misc]
    assert low < 0.5 < high == 1.0  # two successes prove little
    low2, high2 = wilson_interval(80, 100)  # type: ignore[misc]
    assert 0.7 < low2 < 0.8 < high2 < 0.9


def test_effectiveness(reference: MemoryStore) -> None:
    snap = get_snapshot(reference)
    rows = tactic_effectiveness(snap)
    assert rows and all(r.tries >= r.successes >= 0 and r.tries >= 1 for r in rows)
    assert all(r.interval is not None and r.interval[0] <= (r.success_rate or 0) <= r.interval[1] for r in rows)
    assert [r.tries for r in rows] == sorted((r.tries for r in rows), reverse=True)
    top = rows[0]
    only = tactic_effectiveness(snap, tactic=top.tactic_id, barrier=top.barrier_label)
    assert [(r.tactic_iri, r.barrier_iri) for r in only] == [(top.tactic_iri, top.barrier_iri)]
    by_country = tactic_effectiveness(snap, tactic=top.tactic_iri, barrier=top.barrier_iri, group_by="country")
    assert sum(r.tries for r in by_country) == top.tries and all(r.group for r in by_country)
    by_size = tactic_effectiveness(snap, group_by="size")
    assert {r.group for r in by_size} <= {"1 study", "2-4 studies", "5+ studies"}
    with pytest.raises(NotFoundError):
        tactic_effectiveness(snap, tactic="no-such-tactic")


def test_cli_json_shapes(reference: MemoryStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import json
    import shutil

    from typer.testing import CliRunner

    from sitegraph.settings import get_settings
    from tests.test_generate import cli_app

    home = tmp_path / "home"
    shutil.copytree(reference.home, home / "memory")
    monkeypatch.setenv("SITEGRAPH_HOME", str(home))
    monkeypatch.setenv("SITEGRAPH_STORE", "memory")
    get_settings.cache_clear()
    try:
        runner = CliRunner()
        site = busy_sites(get_snapshot(reference), 1)[0]
        out = runner.invoke(cli_app(), ["recommend", site, "--json", "--limit", "3"])
        assert out.exit_code == 0, out.output
        recs = json.loads(out.stdout)
        assert len(recs) == 3 and {"rank", "tactic_iri", "score", "engage", "evidence", "explanations"} <= set(recs[0])
        out = runner.invoke(cli_app(), ["related", site, "--json", "-n", "2"])
        assert out.exit_code == 0, out.output
        rel = json.loads(out.stdout)
        assert len(rel) == 2 and {"rank", "site_id", "score", "reasons", "cypher", "params"} <= set(rel[0])
        out = runner.invoke(cli_app(), ["effectiveness", "--json", "--min-tries", "2"])
        assert out.exit_code == 0 and all(r["tries"] >= 2 for r in json.loads(out.stdout))
        assert runner.invoke(cli_app(), ["recommend", site]).exit_code == 0
        assert runner.invoke(cli_app(), ["related", site, "--cypher"]).exit_code == 0
        assert runner.invoke(cli_app(), ["recommend", "site:nope"]).exit_code == 1
    finally:
        get_settings.cache_clear()


def test_real_clinicaltrials_gov_sites(store: GraphStore) -> None:
    """recommend and related on ClinicalTrials.gov sites; on Neo4j their Cypher returns the paths."""
    from sitegraph.loaders.ctgov import read_ctgov
    from sitegraph.loaders.generate import GeneratorConfig, generate
    from tests.test_generate import sync_ontology

    result = read_ctgov([Path(__file__).parent / "data" / "ctgov" / "valid"])
    assert not result.problems
    store.write(result.batch)
    sync_ontology(store)
    report = generate(store, GeneratorConfig(seed=3, scale="demo", per_site=30))
    assert report.synthetic_sites == 0 and report.sites == len(result.batch.nodes["Site"])
    snap = get_snapshot(store)
    site = busy_sites(snap, 1)[0]
    assert not site.startswith("site:synth-")
    recs = recommend_tactics(snap, site, limit=3)
    rel = related_sites(snap, site, limit=3)
    assert recs and rel
    assert all(r.explanations and r.evidence for r in recs)
    assert all(r.reasons and r.cypher for r in rel)
    if store.kind == "neo4j":
        for r in rel:
            assert store.read(r.cypher, dict(r.params)), r.cypher  # type: ignore[attr-defined]
        for rec in recs:
            for e in rec.explanations:
                assert store.read(e.cypher, dict(e.params)), e.cypher  # type: ignore[attr-defined]


def test_network_proximity_is_the_truncated_walk_with_restart(reference: MemoryStore) -> None:
    """proximity = (1 - a) * sum_{k=0..4} a^k e_s M^k on the site-investigator-study projection, computed densely here."""
    import numpy as np

    from sitegraph.graph.projections import site_investigator_study
    from sitegraph.queries.related import PAGERANK_ALPHA, PROXIMITY_HOPS

    build_graph(reference, seed=5)
    snap = get_snapshot(reference)
    proj = site_investigator_study(snap)
    a = proj.adjacency.toarray().astype(float)
    strength = a.sum(axis=1)
    m = np.divide(a, strength[:, None], out=np.zeros_like(a), where=strength[:, None] > 0)
    sites = busy_sites(snap)
    assert PROXIMITY_HOPS == 4 and sites
    for site in sites:
        e = np.zeros(proj.n_nodes)
        e[proj.index[("Site", site)]] = 1.0
        expected = np.zeros(proj.n_nodes)
        term = e
        for k in range(PROXIMITY_HOPS + 1):
            expected += (1 - PAGERANK_ALPHA) * PAGERANK_ALPHA**k * term
            term = term @ m
        got = network_proximity(snap, site)
        want = {nid[1]: float(expected[i]) for i, nid in enumerate(proj.nodes) if nid[0] == "Site" and expected[i] > 0}
        assert got.keys() == want.keys()
        assert max(abs(got[s] - want[s]) for s in want) < 1e-12
        # more than the site's direct neighbours are reached: the walk goes beyond shared studies
        assert len(got) > 1
