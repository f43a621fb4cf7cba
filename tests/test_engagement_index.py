"""The engagement index reads each interaction's edges in one unsorted pass: same records as the sorted read."""

from __future__ import annotations

import networkx as nx

from sitegraph.queries import signals
from sitegraph.queries.snapshot import Snapshot

BARRIER = "https://w3id.org/sitegraph/barrier/"


def _graph() -> nx.MultiDiGraph:
    g = nx.MultiDiGraph()
    for name, label, sev in (
        ("b-cost", "Cost overrun", 0.4),
        ("a-staff", "Staffing shortage", 0.9),
        ("c-slow", "Slow start", None),
    ):
        g.add_node(("Barrier", BARRIER + name), _label="Barrier", iri=BARRIER + name, id=name, label=label, severity=sev)
    g.add_node(("Site", "site:z"), _label="Site", site_id="site:z")
    g.add_node(("Site", "site:a"), _label="Site", site_id="site:a")
    for t in ("tac:b", "tac:a", "tac:c"):
        g.add_node(("Tactic", t), _label="Tactic", tactic_id=t)
    note = "Coordinator reports staffing shortage. Budget is fine."
    for i, day in enumerate(("2025-03-02T10:00:00Z", "2025-03-01", "2025-03-03T08:00:00+02:00")):
        nid = ("Interaction", f"int:{i}")
        g.add_node(nid, _label="Interaction", interaction_id=nid[1], occurred_at=day, outcome="pending", note=note)
        # inserted against sorted order on purpose: storage order differs from sorted order
        g.add_edge(nid, ("Tactic", "tac:b"), key=("APPLIED", "{}"), outcome="resolved")
        g.add_edge(nid, ("Barrier", BARRIER + "c-slow"), key=("CONCERNS", "{}"), source="tagged", confidence=0.5)
        g.add_edge(nid, ("Site", "site:z"), key=("WITH_SITE", "{}"))
        g.add_edge(nid, ("Barrier", BARRIER + "b-cost"), key=("CONCERNS", "{}"), source="observed")
        g.add_edge(nid, ("Site", "site:a"), key=("WITH_SITE", "{}"))
        if i != 1:
            g.add_edge(nid, ("Tactic", "tac:a"), key=("APPLIED", "{}"), outcome="failed")
        if i == 2:
            g.add_edge(nid, ("Tactic", "tac:c"), key=("APPLIED", "{}"), outcome="")
    return g


def test_records_equal_the_sorted_read() -> None:
    g = _graph()
    eng = signals.engagement_index(Snapshot(graph=g, version=1))
    meta = eng.barrier_meta
    assert list(eng.by_site) == ["site:a"]  # the least site key
    recs = eng.by_site["site:a"]
    assert [r.id for r in recs] == ["int:1", "int:0", "int:2"]  # by day
    for r in recs:
        nid = ("Interaction", r.id)
        outcome, stored = signals._ordered_edge_fields(g.nodes[nid], g._succ[nid], meta)
        assert r.outcome == outcome
        assert r.tactic == "tac:a" if r.id != "int:1" else r.tactic == "tac:b"
        assert list(r.mentions)[: len(stored)] == list(stored) == [BARRIER + "b-cost", BARRIER + "c-slow"]
        assert all(r.mentions[k] == m for k, m in stored.items())
        assert BARRIER + "a-staff" in r.mentions and not r.mentions[BARRIER + "a-staff"].stored  # found in the note
    # two APPLIED outcomes: the last in sorted edge order (tac:b) wins; one: that one
    assert [r.outcome for r in recs] == ["resolved", "resolved", "resolved"]
    assert recs[0].mentions[BARRIER + "b-cost"] == signals.Mention("observed", 0.4, 1.0, True)
    assert recs[0].mentions[BARRIER + "c-slow"] == signals.Mention("tagged", signals.DEFAULT_SEVERITY, 0.5, True)


def test_one_applied_outcome_is_kept() -> None:
    g = _graph()
    nid = ("Interaction", "int:0")
    g.remove_edge(nid, ("Tactic", "tac:b"), key=("APPLIED", "{}"))
    eng = signals.engagement_index(Snapshot(graph=g, version=1))
    rec = next(r for r in eng.by_site["site:a"] if r.id == "int:0")
    assert rec.outcome == "failed" and rec.tactic == "tac:a"
