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


def _two_sites(*interactions: tuple[str, str, str]) -> Snapshot:
    """Sites a and b; each interaction (id, site, occurred_at) an observed mention of one barrier."""
    g = nx.MultiDiGraph()
    iri = BARRIER + "b-cost"
    g.add_node(("Barrier", iri), _label="Barrier", iri=iri, id="b-cost", label="Cost overrun", severity=0.8)
    for site in ("site:a", "site:b"):
        g.add_node(("Site", site), _label="Site", site_id=site)
    for iid, site, at in interactions:
        nid = ("Interaction", iid)
        g.add_node(nid, _label="Interaction", interaction_id=iid, occurred_at=at, note="")
        g.add_edge(nid, ("Site", site), key=("WITH_SITE", "{}"))
        g.add_edge(nid, ("Barrier", iri), key=("CONCERNS", "{}"), source="observed")
    return Snapshot(graph=g, version=len(interactions))


def test_reference_date_is_the_end_of_the_latest_interactions_utc_day() -> None:
    """Ages are measured from the next midnight UTC after the latest interaction: a later write the
    same UTC day keeps the reference date, and the activity of the sites it does not touch; one the
    next day moves it."""
    # int:b is on 3 March in its own time zone, 4 March 00:30 in UTC: the reference date is the end of 4 March UTC
    base = [("int:a", "site:a", "2025-03-01T09:00:00Z"), ("int:b", "site:b", "2025-03-03T22:30:00-02:00")]
    snap = _two_sites(*base)
    eng = signals.engagement_index(snap)
    assert eng.reference_date == "2025-03-05T00:00:00+00:00" == signals.reference_date(snap)
    before = signals.site_barrier_activity(snap, "site:a")
    age = 3 + 15 / 24  # int:a from 1 March 09:00 to 5 March 00:00 (not to int:b, 4 March 00:30)
    assert before[0].activity == round(0.8 * 0.5 ** (age / signals.HALF_LIFE_DAYS), 6)

    for at, reference in (
        ("2025-03-04T23:59:59Z", "2025-03-05T00:00:00+00:00"),  # later the same UTC day
        ("2025-03-05T00:00:00Z", "2025-03-05T00:00:00+00:00"),  # exactly at the reference date: it stays
        ("2025-03-05T00:00:01Z", "2025-03-06T00:00:00+00:00"),  # the next UTC day
    ):
        after = _two_sites(*base, ("int:c", "site:b", at))
        assert signals.engagement_index(after).reference_date == reference, at
        carried = signals._extended_engagement_index(after, eng, ["int:c"])  # what a write through the API builds
        assert carried.reference_day == signals.engagement_index(after).reference_day, at
        activity = signals.site_barrier_activity(after, "site:a")
        if reference == eng.reference_date:
            assert activity == before, at
        else:
            assert activity[0].activity == round(0.8 * 0.5 ** ((age + 1) / signals.HALF_LIFE_DAYS), 6) < before[0].activity
