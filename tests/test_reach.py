"""The reach of a write of interactions (sitegraph/queries/reach.py): the answers the API keeps across a
write must be exactly what a full computation on fresh indexes gives, on both stores."""

from __future__ import annotations

import random
from typing import Any

import numpy as np
import pytest

from sitegraph.api.precompute import Answers, Precomputer, answers_of, restamp, site_ids
from sitegraph.api.record import log_interaction
from sitegraph.api.routes.sites import PER_SITE
from sitegraph.api.schemas import InteractionCreate
from sitegraph.api.state import ensure_warm, warm_up_snapshot
from sitegraph.graph.store import GraphStore
from sitegraph.queries import reach as reach_module
from sitegraph.queries.reach import reach
from sitegraph.queries.signals import day_to_iso, engagement_index
from sitegraph.queries.snapshot import Snapshot, build_snapshot, get_snapshot
from tests.conftest import site_answers
from tests.test_generate import build_graph

NOTES = [
    "Budget negotiation stalled again; the PI is frustrated with the delay.",
    "Screen failures on eligibility keep piling up.",
    "The contract is stuck in legal review.",
    "Data queries backlog is growing and the coordinator is overwhelmed.",
    "Good call, nothing new to report.",
]


def _kept(answers: Answers, sites: list[str]) -> dict[tuple[str, str], bytes]:
    out = {}
    for spec in PER_SITE:
        for s in sites:
            body = answers.get(spec.fn, spec.model, spec.args(s), {})
            if body is not None:
                out[(spec.name, s)] = body
    return out


def _precompute(store: GraphStore, snapshot: Snapshot) -> Answers:
    pre = Precomputer(PER_SITE, lambda: snapshot, version=store.version, warm_up=ensure_warm, freeze=False)
    pre.offer(snapshot)
    answers = pre.run(snapshot)
    assert answers.finished is not None and not answers.abandoned
    return answers


@pytest.fixture
def generated(store: GraphStore) -> GraphStore:
    build_graph(store, seed=11, sites=150, per_site=30)
    return store


def test_answers_kept_across_writes_equal_a_full_computation(generated: GraphStore) -> None:
    """Notes and tactic applications at random sites, one after the other: after each, the answers the new
    snapshot kept and the ones computed again are byte for byte what a full computation on a snapshot built
    from scratch gives (the Site 360's data_version included); the written site's answers are never kept;
    a write that moves the reference date keeps nothing."""
    store = generated
    rng = random.Random(3)
    first = get_snapshot(store)
    _precompute(store, first)
    sites = site_ids(first)
    tactics = sorted(k for k, _ in first.nodes("Tactic"))[:8]
    ref = engagement_index(first).reference_day
    assert ref is not None
    plan: list[tuple[str, float, bool]] = []  # (site, day, with a tactic)
    for n in range(7):
        plan.append((rng.choice(sites), ref - rng.random() * (0.9 if n % 2 else 40), n in (2, 5)))
    plan.append((rng.choice(sites), ref + 2.5, False))  # moves the reference date
    plan += [(rng.choice(sites), ref + 2.2, n == 1) for n in range(3)]
    plan.append((plan[-1][0], ref + 2.1, False))  # the same site again
    kept_total = kept_tactics = 0
    for n, (site, day, with_tactic) in enumerate(plan):
        before = get_snapshot(store)
        extra: dict[str, Any] = {}
        if with_tactic:
            extra = {"tactic_id": rng.choice(tactics), "outcome": rng.choice(["improved", "resolved", "no_change", "worse"])}
        body = InteractionCreate(site_id=site, channel="call", occurred_at=day_to_iso(day), note=rng.choice(NOTES), **extra)
        log_interaction(store, body, recorded_by="test")
        after = get_snapshot(store)
        assert after is not before and after.version == before.version + 1
        ensure_warm(after)
        want = site_answers(build_snapshot(store), sites)  # no lineage: every index built from scratch
        found = reach(after)
        kept = answers_of(after)
        if n == 7:
            assert found is None and kept is None, "a write that moves the reference date keeps nothing"
        else:
            assert found is not None and kept is not None, n
            assert found.written == {site} and site in found.sites and found.sites <= found.tactic_sites
            got = _kept(kept, sites)
            assert len(got) == kept.carried and kept.done == kept.carried, n
            assert kept.kept_bytes > 0 and kept.status()["carried"] == kept.carried  # what /ready reports
            assert not any(s == site for _, s in got), "the written site's answers are computed again"
            kept_tactics += sum(ep == "tactics" for ep, _ in got) if with_tactic else 0
            for key, value in got.items():
                assert value == want[key], (n, key)
            kept_total += kept.carried
        done = _precompute(store, after)
        assert _kept(done, sites) == want, n
    # the writes reached a part of the sites only: most answers were kept
    same_day = len(plan) - 1
    assert kept_total > 0.5 * same_day * 3 * len(sites), kept_total
    assert kept_tactics > 0  # an application keeps the tactics it cannot reach


def test_a_note_dated_before_an_application_reaches_what_a_note_reaches(generated: GraphStore) -> None:
    """A note dated before an application at its site changes when that application's episode began (the
    effectiveness index is built again), which the tactics do not read: the answers kept still equal a
    full computation."""
    from sitegraph.queries.signals import engagement_delta

    store = generated
    first = get_snapshot(store)
    _precompute(store, first)
    sites = site_ids(first)
    eng = engagement_index(first)
    site, day = next((s, r.day) for s in sites for r in eng.records(s) if r.tactic and r.mentions)
    body = InteractionCreate(site_id=site, channel="call", occurred_at=day_to_iso(day - 1.5), note=NOTES[0])
    log_interaction(store, body, recorded_by="test")
    after = get_snapshot(store)
    ensure_warm(after)
    delta = engagement_delta(after)
    assert delta is not None and delta.back_dated and not delta.applied and delta.same_reference
    found, kept = reach(after), answers_of(after)
    assert found is not None and kept is not None and found.tactic_sites == found.sites
    got = _kept(kept, sites)
    assert sum(ep == "tactics" for ep, _ in got) > len(sites) // 2
    want = site_answers(build_snapshot(store), sites)
    for key, value in got.items():
        assert value == want[key], key


def test_a_site_whose_lists_are_unknown_is_reached(generated: GraphStore) -> None:
    """Answers computed only in part before a write: the sites whose neighbour lists were not recorded count
    as reached, so nothing unknown is kept."""
    store = generated
    first = get_snapshot(store)
    ensure_warm(first)
    sites = site_ids(first)
    half = sites[: len(sites) // 2]
    pre = Precomputer(PER_SITE, lambda: first, version=store.version, warm_up=ensure_warm, freeze=False)
    answers = first.cache["api.precomputed"] = Answers(first.version, PER_SITE, len(sites))
    for spec in PER_SITE:
        pre._compute_block(first, answers, spec, half)
    ref = engagement_index(first).reference_day
    assert ref is not None
    log_interaction(
        store,
        InteractionCreate(site_id=half[0], channel="email", occurred_at=day_to_iso(ref - 0.2), note=NOTES[1]),
        recorded_by="t",
    )
    after = get_snapshot(store)
    ensure_warm(after)
    found = reach(after)
    assert found is not None and set(sites[len(sites) // 2 :]) <= found.sites
    kept = answers_of(after)
    assert kept is not None
    got = _kept(kept, sites)
    assert got and {s for _, s in got} <= set(half)
    want = site_answers(build_snapshot(store), sites)
    for key, value in got.items():
        assert value == want[key], key


def test_the_reach_holds_every_site_whose_lists_the_write_changes(generated: GraphStore) -> None:
    """For each of a few writes: every site whose 30 most similar or 20 most related sites hold the written
    site before or after the write (computed site by site, on snapshots built from scratch) is in the reach,
    and the scores the reach computes from the written site's side are each site's own related score of it."""
    from sitegraph.queries.recommend import INFER_NEIGHBOURS, NEIGHBOURS, similar_sites
    from sitegraph.queries.related import related_scores, site_structure, top_positive

    store = generated
    rng = random.Random(9)

    def lists(snapshot: Snapshot) -> dict[str, tuple[set[str], set[str]]]:
        st = site_structure(snapshot)
        out = {}
        for t in st.sites:
            _sites, _features, total = related_scores(snapshot, t)
            related = {st.sites[j] for j in top_positive(total, INFER_NEIGHBOURS)}
            out[t] = ({s for s, _ in similar_sites(snapshot, t, NEIGHBOURS)}, related)
        return out

    first = get_snapshot(store)
    _precompute(store, first)
    sites = site_ids(first)
    ref = engagement_index(first).reference_day
    assert ref is not None
    old = lists(build_snapshot(store))
    entered = 0
    for n in range(4):
        site = rng.choice(sites)
        note = NOTES[n % 4]
        log_interaction(
            store,
            InteractionCreate(site_id=site, channel="visit", occurred_at=day_to_iso(ref - 0.1 * n), note=note),
            recorded_by="t",
        )
        after = get_snapshot(store)
        ensure_warm(after)
        found = reach(after)
        assert found is not None
        fresh = build_snapshot(store)
        new = lists(fresh)
        for t in sites:
            if site in old[t][0] | old[t][1] | new[t][0] | new[t][1]:
                assert t in found.sites, (n, t)
            entered += site in (new[t][1] - old[t][1])
        st = site_structure(fresh)
        i = st.index[site]
        similarity, score = reach_module.new_scores(after, i)
        own = related_scores(fresh, site)[1]["similar_barriers"]
        for t in rng.sample(range(len(sites)), 30):
            if t == i:
                continue
            total = related_scores(fresh, st.sites[t])[2]
            assert total[i] - 1e-9 <= score[t] <= total[i] + 1e-6, (n, t)
            assert similarity[t] == pytest.approx(own[t], abs=1e-8)
        _precompute(store, after)
        old = new
    assert entered > 0  # some writes moved a site into other sites' lists


def test_the_walk_toward_a_site_comes_from_its_own_walk(generated: GraphStore) -> None:
    """``x_T(S) × strength(T) = x_S(T) × strength(S)``: what the reach reads of every walk from one walk."""
    from sitegraph.queries.related import _proximity, proximity_vector, site_structure

    snapshot = get_snapshot(generated)
    warm_up_snapshot(snapshot)
    st = site_structure(snapshot)
    prox = _proximity(snapshot)
    strength = reach_module._strength(snapshot)
    rng = random.Random(1)
    compared = 0
    for s in rng.sample(range(len(st.sites)), 5):
        from_s = proximity_vector(snapshot, st.sites[s])
        for t in np.flatnonzero(from_s > 0)[:40].tolist():
            if t == s:
                continue
            from_t = proximity_vector(snapshot, st.sites[t])
            ds, dt = strength[prox.site_rows[s]], strength[prox.site_rows[t]]
            assert from_t[s] * dt == pytest.approx(from_s[t] * ds, rel=1e-9, abs=1e-15)
            compared += 1
    assert compared > 20


def test_restamp_sets_the_data_version() -> None:
    assert restamp(b'{"a":{"data_version":1},"data_version":41}', 42) == b'{"a":{"data_version":1},"data_version":42}'
    with pytest.raises(ValueError):
        restamp(b'{"a":1}', 42)
