"""Next-best tactics for a site: its barriers → the ontology → the tactics that mitigate them, ranked.

The barriers addressed (:func:`considered_barriers`) are the site's own, weighted
``0.5 × activity / max activity + 0.5 × recurrence / max recurrence`` (recurrence: activity with a
365-day half-life), then barriers common at its most related sites (:func:`inferred_barriers`). For
each, every tactic ``t`` with a ``MITIGATES`` link to the barrier ``b`` or to a broader concept of it
(walking ``BROADER`` upwards, distance ``d``) is a candidate. A (tactic, barrier) pair scores::

    pair = (0.5 + 0.5 × w_b) × 0.8^d × (0.25 × evidence + 0.75 × effectiveness)

``w_b``
    the barrier's weight above (urgency: a barrier raised this month weighs more, but every barrier
    the site faces counts at least half).
``evidence``
    the link's evidence level: published trial evidence 1.0, observed in our data 0.7, expert
    consensus 0.5, anything else 0.3 (a published effect size adds 0.05).
``effectiveness``
    the 25th percentile of a Beta posterior of the tactic's success rate against ``b`` at *similar
    sites* (the 30 sites with the most similar barrier profile, weighted by cosine similarity, plus
    the site's own history counted twice). Its prior is centred on the tactic's success rate at those
    sites against any barrier, centred on its rate in the site's country, centred on the tactic ×
    barrier rate over all sites, centred on ``0.2 + 0.3 × evidence``; prior strengths 4, 3, 10 and 4
    pseudo-tries. A tactic tried twice stays close to its prior and its lower percentile stays low:
    it is not proven.

A tactic's score is its best pair plus 0.3 × the sum of its other pairs (it helps with several
barriers), minus its cost (effort low 0, medium 0.03, high 0.06) and minus 0.08 per failed
application at this site in the 180 days before the reference date (at most 0.2; none once it
succeeded there since).
Ties are broken by IRI after rounding to 9 decimals, so both stores rank identically.

Each recommendation says whom to engage (the site's investigator with the highest ``pagerank``
property, written by ``sitegraph analyze``, else the most connected one) and the channel the site
responds best to, and carries explanation paths (Site ← Interaction → Barrier → BROADER* ← Tactic)
with the Cypher that returns them in Neo4j Browser. See ``docs/recommendations.md``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from pydantic import TypeAdapter
from scipy import sparse
from scipy.special import betaincinv

from sitegraph.errors import NotFoundError
from sitegraph.graph.store import GraphStore, gc_paused
from sitegraph.queries.effectiveness import EffectivenessIndex, effectiveness_index, wilson_interval
from sitegraph.queries.models import EngageWith, Evidence, ExplanationPath, PathStep, TacticRecommendation
from sitegraph.queries.related import (
    _neighbour_keys,
    block_top,
    neighbour_table,
    site_blocks,
    site_structure,
    top_positive,
)
from sitegraph.queries.signals import (
    ACTIVE_THRESHOLD,
    FAILURE_OUTCOMES,
    HALF_LIFE_DAYS,
    SUCCESS_OUTCOMES,
    EngagementIndex,
    activity_table,
    as_snapshot,
    best_channel,
    engagement_index,
)
from sitegraph.queries.snapshot import Snapshot, carried
from sitegraph.workers import map_blocks

MAX_BARRIERS = 8
MIN_BARRIER_WEIGHT = 0.1
RECURRENCE_HALF_LIFE_DAYS = 365.0
DEPTH_DISCOUNT = 0.8
URGENCY_FLOOR = 0.5
EVIDENCE_WEIGHT = 0.25
EFFECTIVENESS_WEIGHT = 0.75
OTHER_BARRIERS_WEIGHT = 0.3
NEIGHBOURS = 30
OWN_HISTORY_WEIGHT = 2.0
PRIOR_GLOBAL = 4.0
PRIOR_TACTIC = 3.0
PRIOR_LOCAL = 4.0
INFER = True
INFER_NEIGHBOURS = 20
INFER_WEIGHT = 0.5
PRIOR_COUNTRY = 10.0
USE_COUNTRY = True
LOWER_QUANTILE = 0.25
RECENT_DAYS = 180.0
RECENT_FAILURE_PENALTY = 0.08
MAX_RECENT_PENALTY = 0.2
EFFORT_COST = {"low": 0.0, "medium": 0.03, "high": 0.06}
MAX_EXPLANATIONS = 3
SIMILAR_CACHE_SIZE = 4096


def evidence_score(level: Any, effect: Any = None) -> float:
    """The weight of a MITIGATES link's evidence level (IRI or compact id), plus 0.05 for a published effect."""
    text = str(level or "").lower()
    if "trial" in text or "published" in text:
        base = 1.0
    elif "observed" in text:
        base = 0.7
    elif "consensus" in text or "expert" in text:
        base = 0.5
    else:
        base = 0.3
    return base + (0.05 if isinstance(effect, str) and effect.strip() else 0.0)


def effort_cost(effort: Any) -> float:
    text = str(effort or "").lower().rsplit("/", 1)[-1]
    return EFFORT_COST.get(text, 0.03)


def _local(value: Any) -> str | None:
    return value.rsplit("/", 1)[-1] if isinstance(value, str) and value else None


@dataclass
class _Pair:
    tactic: str
    barrier: str  # the site's active barrier
    mitigated: str  # the barrier the MITIGATES link points at (the barrier or a broader one)
    depth: int
    link: dict[str, Any]
    evidence: float
    effectiveness: float = 0.0
    posterior_mean: float = 0.0
    score: float = 0.0
    similar_tries: int = 0
    similar_successes: int = 0
    # site-independent, from :func:`_template_columns`: the :class:`_PairCounts` columns of the tactic and of the
    # (tactic, barrier) pair (-1: none), and the prior centred on the pair's rate over all sites
    t_col: int = -1
    k_col: int = -1
    prior: float = 0.0


@dataclass
class _Candidate:
    tactic: str
    pairs: list[_Pair] = field(default_factory=list)
    score: float = 0.0
    parts: dict[str, float] = field(default_factory=dict)
    recently_tried: bool = False
    # what :func:`_fill_parts` makes ``parts`` of: the best pair's barrier weight, the other pairs' sum, cost, penalty
    terms: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)


@dataclass
class OntologyIndex:
    """BROADER parents of barriers and MITIGATES links into them (cached per snapshot)."""

    parents: dict[str, list[str]]
    mitigators: dict[str, list[tuple[str, dict[str, Any]]]]  # barrier -> [(tactic, link props)], live tactics only
    ancestors: dict[str, list[tuple[str, int, list[str]]]] = field(default_factory=dict)  # filled on demand
    tactics: dict[str, dict[str, Any]] = field(default_factory=dict)  # tactic IRI -> its properties
    # barrier -> [(tactic, mitigated concept, depth, link props, evidence)]: its candidate pairs, filled on demand
    templates: dict[str, list[tuple[str, str, int, dict[str, Any], float]]] = field(default_factory=dict)


def ontology_index(snapshot: Snapshot) -> OntologyIndex:
    cached = snapshot.cache.get("recommend.ontology")
    if cached is not None:
        return cached
    previous = carried(snapshot, "recommend.ontology")
    if isinstance(previous, OntologyIndex):  # a write of interactions only: the same barriers, tactics and links
        snapshot.cache["recommend.ontology"] = previous
        return previous
    g = snapshot.graph
    parents: dict[str, list[str]] = {}
    mitigators: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    tactics: dict[str, dict[str, Any]] = {}
    succ = g._succ  # {u: {v: {(type, identity): props}}}: only the out-edges of Barriers and Tactics are read
    for u in [n for n in g.nodes if n[0] in ("Barrier", "Tactic")]:
        if u[0] == "Tactic":
            tactics[u[1]] = {k: v for k, v in g.nodes[u].items() if k != "_label"}
        for v, edges in succ[u].items():
            if v[0] != "Barrier":
                continue
            for key, data in edges.items():
                if key[0] == "BROADER" and u[0] == "Barrier":
                    parents.setdefault(u[1], []).append(v[1])
                elif key[0] == "MITIGATES" and u[0] == "Tactic":
                    if g.nodes[u].get("deprecated") is True:
                        continue
                    mitigators.setdefault(v[1], []).append((u[1], dict(data)))
    for ps in parents.values():
        ps.sort()
    for ms in mitigators.values():
        ms.sort(key=lambda m: m[0])
    built = OntologyIndex(parents, mitigators, tactics=tactics)
    snapshot.cache["recommend.ontology"] = built
    return built


def _ancestors(snapshot: Snapshot, iri: str) -> list[tuple[str, int, list[str]]]:
    """(concept, depth, path from ``iri``) for the barrier and every broader concept, nearest first."""
    onto = ontology_index(snapshot)
    cached = onto.ancestors.get(iri)
    if cached is not None:
        return cached
    parents = onto.parents
    out = [(iri, 0, [iri])]
    seen = {iri}
    frontier = [(iri, [iri])]
    depth = 0
    while frontier:
        depth += 1
        nxt = []
        for b, path in frontier:
            for parent in parents.get(b, []):
                if parent not in seen:
                    seen.add(parent)
                    out.append((parent, depth, [*path, parent]))
                    nxt.append((parent, [*path, parent]))
        frontier = nxt
    onto.ancestors[iri] = out
    return out


@dataclass(frozen=True)
class ConsideredBarrier:
    """A barrier the recommendation addresses, and how much it weighs."""

    iri: str
    activity: float  # recent activity (90-day half-life)
    recurrence: float  # long-run activity (365-day half-life)
    weight: float  # in (0, 1]
    active: bool
    inferred_from: tuple[str, ...] = ()  # for a barrier not raised here: the similar sites where it is, most similar first


def considered_barriers(snapshot: Snapshot, site_id: str) -> list[ConsideredBarrier]:
    """The barriers a recommendation addresses: the site's active and its recurring barriers.

    weight = 0.5 × activity / the site's highest activity + 0.5 × recurrence / the highest
    recurrence, where recurrence is the same sum with a 365-day half-life (a barrier that keeps
    coming back over a year is structural even when quiet this month). Barriers of weight ≥ 0.1,
    at most 8, heaviest first (ties by IRI).
    """
    cache: dict[str, list[ConsideredBarrier]] = snapshot.cache.setdefault("recommend.considered", {})
    hit = cache.get(site_id)
    if hit is not None:
        return list(hit)
    out = _considered(snapshot, site_id, None)
    if len(cache) >= SIMILAR_CACHE_SIZE:
        cache.clear()
    cache[site_id] = out  # the snapshot's data version keys it: a write starts a new cache
    return list(out)


def _considered(snapshot: Snapshot, site_id: str, related: tuple[list[int], np.ndarray] | None) -> list[ConsideredBarrier]:
    """:func:`considered_barriers` without its cache; ``related``: the site's 20 most related sites
    (SiteStructure rows, best first) and their scores, when already known (else computed)."""
    recent, longrun = _own_activity(snapshot, site_id)
    top_r = max(recent.values(), default=0.0)
    top_l = max(longrun.values(), default=0.0)
    out = []
    for iri, act in recent.items():
        w = 0.5 * (act / top_r if top_r > 0 else 0.0) + 0.5 * (longrun.get(iri, 0.0) / top_l if top_l > 0 else 0.0)
        w = round(w, 9)
        if w >= MIN_BARRIER_WEIGHT:
            out.append(ConsideredBarrier(iri, act, round(longrun.get(iri, 0.0), 6), w, act >= ACTIVE_THRESHOLD))
    out.sort(key=lambda c: (-c.weight, c.iri))
    out = out[:MAX_BARRIERS]
    if INFER and len(out) < MAX_BARRIERS:
        known = {c.iri for c in out}
        if related is None:
            related = _related_top(snapshot, site_id)
        out += _inferred(snapshot, related[0], related[1], known, MAX_BARRIERS - len(out))
    return out


def _related_top(snapshot: Snapshot, site_id: str) -> tuple[list[int], np.ndarray]:
    """The site's :data:`INFER_NEIGHBOURS` most related sites (SiteStructure rows, best first) and their scores:
    ``top_positive`` of :func:`related_scores`, through :func:`block_top` (which scores only the sites that can
    be among them). Its similar sites, found on the way, go to :func:`similar_sites`' cache."""
    st = site_structure(snapshot)
    similar, similarity, related, scores = block_top(
        snapshot, np.array([st.index[site_id]], dtype=np.int64), NEIGHBOURS, INFER_NEIGHBOURS, record=True
    )[0]
    cache: dict[tuple[str, int], list[tuple[str, float]]] = snapshot.cache.setdefault("recommend.similar_sites", {})
    if (site_id, NEIGHBOURS) not in cache:
        if len(cache) >= SIMILAR_CACHE_SIZE:
            cache.clear()
        cache[(site_id, NEIGHBOURS)] = [(st.sites[j], v) for j, v in zip(similar.tolist(), similarity.tolist(), strict=True)]
    return related.tolist(), scores


def _own_activity(snapshot: Snapshot, site_id: str) -> tuple[dict[str, float], dict[str, float]]:
    """({barrier: activity}, {barrier: recurrence}) of the barriers mentioned at the site (from the activity tables).

    The values are :func:`site_barrier_activity`'s (rounded to 6 decimals) at the 90- and 365-day half-lives.
    """
    if snapshot.node("Site", site_id) is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    out = []
    i = site_structure(snapshot).index[site_id]
    for half_life in (HALF_LIFE_DAYS, RECURRENCE_HALF_LIFE_DAYS):
        table = activity_table(snapshot, half_life_days=half_life)
        lo, hi = int(table.indptr[i]), int(table.indptr[i + 1])
        names = table.barriers
        out.append({names[c]: v for c, v in zip(table.cols[lo:hi].tolist(), table.values[lo:hi].tolist(), strict=True)})
    return out[0], out[1]


def inferred_barriers(snapshot: Snapshot, site_id: str, known: set[str]) -> list[ConsideredBarrier]:
    """Barriers not raised at the site but common at its 20 most related sites (:mod:`sitegraph.queries.related`).

    weight = 0.5 × the barrier's share of the related sites' long-run profiles (weighted by
    relatedness, relative to the largest share); kept at weight ≥ 0.1, after the site's own barriers.
    """
    from sitegraph.queries.related import related_scores

    _sites, _features, total = related_scores(snapshot, site_id)
    order = top_positive(total, INFER_NEIGHBOURS)
    return _inferred(snapshot, order, total[order], known)


def _inferred(
    snapshot: Snapshot, order: list[int], sims: np.ndarray, known: set[str], limit: int | None = None
) -> list[ConsideredBarrier]:
    """:func:`inferred_barriers` from the related sites ``order`` (SiteStructure rows, best first) and their scores
    (the first ``limit`` of them when given)."""
    if not order:
        return []
    st = site_structure(snapshot)
    sims = np.asarray(sims, dtype=np.float64)
    profile = (sims[:, None] * st.barrier_unit[order]).sum(axis=0) / sims.sum()
    top = profile.max() if len(profile) else 0.0
    ks = np.flatnonzero(profile > 0)
    if not len(ks) or not top > 0:
        return []
    weights = np.round(INFER_WEIGHT * profile[ks] / top, 9)
    keep = weights >= MIN_BARRIER_WEIGHT
    ks, weights = ks[keep], weights[keep]
    names = st.barriers
    chosen = sorted(
        ((-w, names[k], k, w) for k, w in zip(ks.tolist(), weights, strict=True) if names[k] not in known),
        key=lambda t: (t[0], t[1]),
    )
    if limit is not None:
        chosen = chosen[: max(0, limit)]
    if not chosen:
        return []
    rows = np.asarray(order)
    raised = st.activity[rows[:, None], np.array([t[2] for t in chosen])] > 0  # rows: the related sites, best first
    by_barrier = raised.T.tolist()  # per chosen barrier: whether each related site raised it
    sites = st.sites
    return [
        ConsideredBarrier(iri, 0.0, 0.0, w, False, tuple(sites[order[r]] for r, hit in enumerate(by_barrier[n]) if hit))
        for n, (_, iri, _k, w) in enumerate(chosen)
    ]


def candidate_pairs(snapshot: Snapshot, barriers: list[ConsideredBarrier]) -> dict[str, list[_Pair]]:
    """Tactic IRI -> the (barrier, link) pairs through which the ontology proposes it."""
    out: dict[str, list[_Pair]] = {}
    for act in barriers:
        iri = act.iri
        for (tactic, concept, depth, link, evidence), (t, k, prior) in zip(
            _pair_templates(snapshot, iri), _template_columns(snapshot, iri), strict=True
        ):
            pairs = out.get(tactic)
            if pairs is None:
                pairs = out[tactic] = []
            pairs.append(_Pair(tactic, iri, concept, depth, link, evidence, t_col=t, k_col=k, prior=prior))
    return out


def _template_columns(snapshot: Snapshot, iri: str) -> list[tuple[int, int, float]]:
    """For each of the barrier's :func:`_pair_templates` (cached per snapshot): the :class:`_PairCounts` columns of
    its tactic and of the (tactic, barrier) pair (-1: no site has counts there), and the pair's prior rate over all
    sites, ``(successes + 4 × p0) / (tries + 4)`` with ``p0 = 0.2 + 0.3 × evidence`` (what :func:`_score_pairs`
    starts from)."""
    cache: dict[str, list[tuple[int, int, float]]] = snapshot.cache.setdefault("recommend.template_columns", {})
    hit = cache.get(iri)
    if hit is not None:
        return hit
    pc = _pair_counts(snapshot)
    eff = effectiveness_index(snapshot)
    out = []
    for tactic, _concept, _depth, _link, evidence in _pair_templates(snapshot, iri):
        g_n, g_s = eff.overall.get((tactic, iri), (0, 0))
        p0 = 0.2 + 0.3 * min(1.0, evidence)
        out.append((pc.tactics.get(tactic, -1), pc.keys.get((tactic, iri), -1), (g_s + PRIOR_GLOBAL * p0) / (g_n + PRIOR_GLOBAL)))
    cache[iri] = out
    return out


def _pair_templates(snapshot: Snapshot, iri: str) -> list[tuple[str, str, int, dict[str, Any], float]]:
    """The candidate pairs of one barrier (cached per snapshot): for each tactic with a ``MITIGATES`` link to
    the barrier or a broader concept, the nearest such link (ancestors nearest first, tactics by IRI), as
    (tactic, concept, depth, link props, evidence score). The link props are shared: read them only."""
    onto = ontology_index(snapshot)
    hit = onto.templates.get(iri)
    if hit is not None:
        return hit
    out: list[tuple[str, str, int, dict[str, Any], float]] = []
    seen: set[str] = set()
    for concept, depth, _path in _ancestors(snapshot, iri):
        for tactic, link in onto.mitigators.get(concept, []):
            if tactic in seen:  # a nearer (or equally near, earlier) link of this tactic to this barrier
                continue
            seen.add(tactic)
            out.append((tactic, concept, depth, dict(link), evidence_score(link.get("evidence_level"), link.get("effect"))))
    onto.templates[iri] = out
    return out


def similar_sites(snapshot: Snapshot, site_id: str, k: int | None = None) -> list[tuple[str, float]]:
    """The ``k`` (default 30) sites with the most similar barrier profile (cosine > 0), most similar first, ties by id."""
    k = NEIGHBOURS if k is None else k
    cache: dict[tuple[str, int], list[tuple[str, float]]] = snapshot.cache.setdefault("recommend.similar_sites", {})
    hit = cache.get((site_id, k))
    if hit is not None:
        return hit
    st = site_structure(snapshot)
    i = st.index.get(site_id)
    if i is None:
        return []
    sims = np.round(st.profile_similarity(i), 9)
    sims[i] = 0.0
    out = [(st.sites[j], float(sims[j])) for j in top_positive(sims, k)]
    if len(cache) >= SIMILAR_CACHE_SIZE:
        cache.clear()
    cache[(site_id, k)] = out
    return out


def _carried_with(snapshot: Snapshot, key: str, eff: EffectivenessIndex) -> Any | None:
    """The previous snapshot's index ``key``, built from the effectiveness index only (and the sites, the
    same after a write of interactions only), when the snapshot carried that effectiveness index over."""
    if carried(snapshot, "effectiveness.index") is not eff:
        return None
    return carried(snapshot, key)


def _beta_low(a: float, b: float) -> float:
    return float(betaincinv(a, b, LOWER_QUANTILE))


def country_rates(snapshot: Snapshot) -> dict[str, dict[str, tuple[int, int]]]:
    """Country -> tactic -> (tries, successes) against any barrier (cached per snapshot)."""
    cached = snapshot.cache.get("recommend.country_rates")
    if cached is not None:
        return cached
    eff = effectiveness_index(snapshot)
    previous = _carried_with(snapshot, "recommend.country_rates", eff)
    if previous is not None:
        snapshot.cache["recommend.country_rates"] = previous
        return previous
    out: dict[str, dict[str, list[int]]] = {}
    for site in sorted(eff.by_site_tactic):
        country = (snapshot.node("Site", site) or {}).get("country")
        if not isinstance(country, str) or not country:
            continue
        acc = out.setdefault(country, {})
        for tactic, (n, k) in eff.by_site_tactic[site].items():
            a = acc.setdefault(tactic, [0, 0])
            a[0] += n
            a[1] += k
    built = {c: {t: (v[0], v[1]) for t, v in d.items()} for c, d in out.items()}
    snapshot.cache["recommend.country_rates"] = built
    return built


@dataclass
class _PairCounts:
    """The effectiveness counts of every site as one sparse matrix (cached per snapshot): SiteStructure rows
    x [tries per tactic | successes per tactic | tries per (tactic, barrier) | successes per (tactic, barrier)]."""

    tactics: dict[str, int]
    keys: dict[tuple[str, str], int]
    counts: sparse.csr_matrix


def _pair_counts(snapshot: Snapshot) -> _PairCounts:
    cached = snapshot.cache.get("recommend.pair_counts")
    if cached is not None:
        return cached
    eff = effectiveness_index(snapshot)
    previous = _carried_with(snapshot, "recommend.pair_counts", eff)
    if isinstance(previous, _PairCounts):
        snapshot.cache["recommend.pair_counts"] = previous
        return previous
    st = site_structure(snapshot)
    tactics: dict[str, int] = {}
    keys: dict[tuple[str, str], int] = {}
    for d in eff.by_site_tactic.values():
        for t in d:
            tactics.setdefault(t, len(tactics))
    for d2 in eff.by_site.values():
        for k in d2:
            keys.setdefault(k, len(keys))
    n_t, n_k = len(tactics), len(keys)
    rows: list[int] = []
    cols: list[int] = []
    vals: list[int] = []
    for site, row in st.index.items():
        for t, (n, k) in eff.by_site_tactic.get(site, _NO_COUNTS).items():
            c = tactics[t]
            rows += (row, row)
            cols += (c, n_t + c)
            vals += (n, k)
        for key, (n, k) in eff.by_site.get(site, _NO_COUNTS).items():
            c = keys[key]
            rows += (row, row)
            cols += (2 * n_t + c, 2 * n_t + n_k + c)
            vals += (n, k)
    counts = sparse.csr_matrix(
        (np.array(vals, dtype=np.float64), (np.array(rows, dtype=np.int64), np.array(cols, dtype=np.int64))),
        shape=(len(st.sites), 2 * n_t + 2 * n_k),
    )
    counts.sort_indices()
    built = _PairCounts(tactics, keys, counts)
    snapshot.cache["recommend.pair_counts"] = built
    return built


@dataclass
class _NeighbourSums:
    """For each site of a block, its similar sites' counts (:class:`_PairCounts` columns): weighted by similarity
    and summed in neighbour order (as a loop over the neighbours adding ``w × n`` would), and unweighted."""

    weighted: sparse.csr_matrix
    raw: sparse.csr_matrix

    def at(self, b: int, wanted: np.ndarray) -> tuple[list[float], list[float]]:
        """Row ``b``'s weighted and raw sums at the columns ``wanted`` (-1: a column no site has; 0 there)."""
        out = []
        for m in (self.weighted, self.raw):
            lo, hi = int(m.indptr[b]), int(m.indptr[b + 1])
            cols, vals = m.indices[lo:hi], m.data[lo:hi]
            if not len(cols):
                out.append([0.0] * len(wanted))
                continue
            pos = np.minimum(np.searchsorted(cols, wanted), len(cols) - 1)
            hit = (cols[pos] == wanted) & (wanted >= 0)
            out.append(np.where(hit, vals[pos], 0.0).tolist())
        return out[0], out[1]


def _neighbour_sums(snapshot: Snapshot, neighbours: list[list[tuple[str, float]]]) -> _NeighbourSums:
    """:class:`_NeighbourSums` of sites whose similar sites (best first) and similarities are ``neighbours``.

    Two sparse products; each row of the left operand keeps its entries in neighbour order, and the
    product adds a row's terms in that order, so every sum is the one a loop over the neighbours gives."""
    st = site_structure(snapshot)
    pc = _pair_counts(snapshot)
    index = st.index
    indptr = np.zeros(len(neighbours) + 1, dtype=np.int64)
    np.cumsum([len(n) for n in neighbours], out=indptr[1:])
    cols = np.array([index[s] for n in neighbours for s, _ in n], dtype=np.int64)
    data = np.array([w for n in neighbours for _, w in n], dtype=np.float64)
    shape = (len(neighbours), len(st.sites))
    weighted = sparse.csr_matrix((data, cols, indptr), shape=shape)  # indices left in neighbour order
    ones = sparse.csr_matrix((np.ones(len(cols)), cols, indptr), shape=shape)
    out = []
    for left in (weighted, ones):
        m = sparse.csr_matrix(left @ pc.counts)
        m.sort_indices()  # moves entries, not values
        out.append(m)
    return _NeighbourSums(out[0], out[1])


_NO_COUNTS: dict[Any, tuple[int, int]] = {}


def _score_pairs(
    snapshot: Snapshot,
    pairs: dict[str, list[_Pair]],
    weights: Mapping[str, float],
    eff: EffectivenessIndex,
    site_id: str,
    sums: tuple[_NeighbourSums, int],
    country: dict[str, tuple[int, int]],
) -> None:
    own = eff.by_site.get(site_id, {})
    # The similar sites' counts of the candidates, each summed over the neighbours in neighbour order
    # (absent counts add nothing).
    pc = _pair_counts(snapshot)
    n_t, n_k = len(pc.tactics), len(pc.keys)
    wanted: list[int] = []
    for plist in pairs.values():
        t = plist[0].t_col  # the same tactic in every pair of the list
        wanted += (t, n_t + t) if t >= 0 else (-1, -1)
        for p in plist:
            k = p.k_col
            wanted += (2 * n_t + k, 2 * n_t + n_k + k) if k >= 0 else (-1, -1)
    w_sums, raw_sums = sums[0].at(sums[1], np.array(wanted, dtype=np.int64))
    at = 0
    flat: list[_Pair] = []
    a_list: list[float] = []
    b_list: list[float] = []
    for tactic, plist in pairs.items():
        c_n, c_s = country.get(tactic, (0, 0))
        lt_n, lt_s = w_sums[at], w_sums[at + 1]
        at += 2
        for p in plist:
            g = p.prior
            g = (c_s + PRIOR_COUNTRY * g) / (c_n + PRIOR_COUNTRY) if USE_COUNTRY else g
            h = (lt_s + PRIOR_TACTIC * g) / (lt_n + PRIOR_TACTIC)
            l_n, l_s, raw_n, raw_s = w_sums[at], w_sums[at + 1], raw_sums[at], raw_sums[at + 1]
            at += 2
            n, s = own.get((tactic, p.barrier), (0, 0))
            l_n += OWN_HISTORY_WEIGHT * n
            l_s += OWN_HISTORY_WEIGHT * s
            raw_n += n
            raw_s += s
            a = l_s + PRIOR_LOCAL * h
            b = (l_n - l_s) + PRIOR_LOCAL * (1 - h)
            flat.append(p)
            a_list.append(a)
            b_list.append(b)
            p.posterior_mean = a / (a + b)
            p.similar_tries, p.similar_successes = int(raw_n), int(raw_s)
    if not flat:
        return
    lows = betaincinv(np.array(a_list), np.array(b_list), LOWER_QUANTILE).tolist()  # elementwise: as one call per pair
    urgencies = {iri: URGENCY_FLOOR + (1 - URGENCY_FLOOR) * w for iri, w in weights.items()}
    for p, low in zip(flat, lows, strict=True):
        p.effectiveness = low
        urgency = urgencies[p.barrier]
        p.score = (
            urgency * DEPTH_DISCOUNT**p.depth * (EVIDENCE_WEIGHT * min(1.0, p.evidence) + EFFECTIVENESS_WEIGHT * p.effectiveness)
        )


def rank_candidates(snapshot: Snapshot, site_id: str) -> list[_Candidate]:
    """Every candidate tactic of the site, scored and ranked (no explanations)."""
    return _rank(snapshot, site_id, considered_barriers(snapshot, site_id), lambda: similar_sites(snapshot, site_id))


def _rank(
    snapshot: Snapshot,
    site_id: str,
    barriers: list[ConsideredBarrier],
    neighbours_of: Callable[[], list[tuple[str, float]]],
    sums: tuple[_NeighbourSums, int] | None = None,
    *,
    parts: bool = True,
) -> list[_Candidate]:
    """Every candidate of the site, scored and ranked; ``sums``: its row of its block's :class:`_NeighbourSums`
    when already computed (else computed for the site alone). Without ``parts``, the candidates' ``parts``
    are left empty (:func:`_fill_parts` fills them: the same values)."""
    if not barriers:
        return []
    weights = {b.iri: b.weight for b in barriers}
    pairs = candidate_pairs(snapshot, barriers)
    eff = effectiveness_index(snapshot)
    if sums is None:
        sums = (_neighbour_sums(snapshot, [neighbours_of()]), 0)
    site_country = snapshot.graph.nodes[("Site", site_id)].get("country")
    country = country_rates(snapshot).get(site_country, {}) if isinstance(site_country, str) else {}
    _score_pairs(snapshot, pairs, weights, eff, site_id, sums, country)
    eng = engagement_index(snapshot)
    history = _recent_history(eng, site_id)
    tactics = ontology_index(snapshot).tactics
    costs: dict[str, float] = snapshot.cache.setdefault("recommend.costs", {})  # tactic -> effort_cost of its effort
    out: list[_Candidate] = []
    for tactic, plist in pairs.items():
        if len(plist) > 1:  # (one pair: nothing to order)
            plist.sort(key=lambda p: (-round(p.score, 9), p.barrier))
        best = plist[0]
        others = sum(p.score for p in plist[1:] if p.barrier != best.barrier)
        cost = costs.get(tactic)
        if cost is None:
            cost = costs[tactic] = effort_cost(tactics.get(tactic, {}).get("effort"))
        failures, tried = history.get(tactic, (0, False))
        penalty = min(MAX_RECENT_PENALTY, RECENT_FAILURE_PENALTY * failures)
        score = best.score + OTHER_BARRIERS_WEIGHT * others - cost - penalty
        c = _Candidate(tactic, plist, round(score, 9), recently_tried=tried)
        c.terms = (weights[best.barrier], others, cost, penalty)
        if parts:
            _fill_parts(c)
        out.append(c)
    out.sort(key=lambda c: (-c.score, c.tactic))
    return out


def _fill_parts(c: _Candidate) -> None:
    """The candidate's ``parts`` (the components of its score, rounded) from its ranked pairs and ``terms``."""
    best = c.pairs[0]
    weight, others, cost, penalty = c.terms
    c.parts = {
        "barrier_weight": round(weight * DEPTH_DISCOUNT**best.depth, 6),
        "evidence": round(min(1.0, best.evidence), 6),
        "effectiveness": round(best.effectiveness, 6),
        "other_barriers": round(OTHER_BARRIERS_WEIGHT * others, 6),
        "cost": round(-cost, 6),
        "recent_failures": round(-penalty, 6),
    }


def _recent_history(eng: EngagementIndex, site_id: str) -> dict[str, tuple[int, bool]]:
    """Tactic -> (failed applications in the last 180 days since its last success here, tried in the last 180 days)."""
    ref = eng.reference_day
    out: dict[str, tuple[int, bool]] = {}
    if ref is None:
        return out
    for r in eng.records(site_id):
        if not r.tactic or ref - r.day > RECENT_DAYS:
            continue
        failures, _ = out.get(r.tactic, (0, False))
        if r.outcome in SUCCESS_OUTCOMES:
            failures = 0
        elif r.outcome in FAILURE_OUTCOMES:
            failures += 1
        out[r.tactic] = (failures, True)
    return out


def engage_for_site(snapshot: Snapshot, site_id: str) -> EngageWith:
    """Whom to engage (the most central investigator at the site) and through which channel."""
    st = site_structure(snapshot)
    i = st.index[site_id]
    invs = [st.investigators[k] for k in st.site_inv.indices[st.site_inv.indptr[i] : st.site_inv.indptr[i + 1]].tolist()]
    invs = sorted(set(invs))
    channel, channel_reason = best_channel(snapshot, site_id)
    if not invs:
        return EngageWith(reason="no investigator recorded at this site", channel=channel, channel_reason=channel_reason)
    nodes = snapshot.graph._node  # {node: its properties}: a plain dict read
    props = {k: nodes.get(("Investigator", k)) or {} for k in invs}
    ranks: dict[str, float] = {}
    for k, p in props.items():
        value = p.get("pagerank")
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            ranks[k] = float(value)
    if ranks:
        best = sorted(ranks, key=lambda k: (-round(ranks[k], 12), k))[0]
        reason = f"highest PageRank ({ranks[best]:.4g}) of the {len(invs)} investigator(s) at the site"
    else:

        def degree(k: str) -> tuple[int, int]:
            studies = len(set(_neighbour_keys(snapshot, "Investigator", k, "INVESTIGATOR_ON", "Study", incoming=False)))
            sites = len(set(_neighbour_keys(snapshot, "Investigator", k, "WORKS_AT", "Site", incoming=False)))
            return studies, sites

        degs = {k: degree(k) for k in invs}
        best = sorted(invs, key=lambda k: (-(degs[k][0] + degs[k][1]), k))[0]
        reason = (
            f"most connected of the {len(invs)} investigator(s) at the site "
            f"({degs[best][0]} stud(ies), {degs[best][1]} site(s)); "
            "run `sitegraph analyze` to rank by PageRank"
        )
    eng = engagement_index(snapshot)
    contacts = sum(1 for r in eng.records(site_id) if r.investigator == best)
    if contacts:
        reason += f"; {contacts} logged interaction(s) with them"
    return EngageWith(
        investigator_id=best,
        investigator_name=str(props[best].get("name") or best),
        reason=reason,
        channel=channel,
        channel_reason=channel_reason,
    )


def _step(snapshot: Snapshot, label: str, key: str) -> PathStep:
    """The node's :class:`PathStep` (one per node and snapshot, shared by the answers: it is immutable)."""
    steps: dict[tuple[str, str], PathStep] | None = snapshot.cache.get("recommend.steps")
    if steps is None:
        steps = snapshot.cache.setdefault("recommend.steps", {})
    hit = steps.get((label, key))
    if hit is None:
        hit = steps[(label, key)] = PathStep(label=label, id=key, name=_display_name(snapshot, label, key))
    return hit


def _display_name(snapshot: Snapshot, label: str, key: str) -> str:
    """The node's name, label or title, else its key."""
    props = snapshot.graph._node.get((label, key)) or {}
    return str(props.get("name") or props.get("label") or props.get("title") or key)


def _explanations(
    snapshot: Snapshot,
    eng: EngagementIndex,
    site_id: str,
    c: _Candidate,
    neighbours: list[tuple[str, float]],
    inferred_from: Mapping[str, tuple[str, ...]],
    mentions: dict[tuple[str, str], Any] | None = None,
    steps: dict[str, PathStep] | None = None,
) -> list[ExplanationPath]:
    """The candidate's explanation paths. ``mentions`` ((site, barrier) -> its latest mention) and ``steps``
    (interaction id -> its :class:`PathStep`, immutable) may be shared by the candidates of one site."""
    latest = mentions if mentions is not None else {}

    def latest_mention(site: str, iri: str) -> Any:
        key = (site, iri)
        if key not in latest:
            latest[key] = _latest_mention(eng, site, iri)
        return latest[key]

    shown = steps if steps is not None else {}

    def interaction_step(rec: Any) -> PathStep:
        hit = shown.get(rec.id)
        if hit is None:
            hit = shown[rec.id] = PathStep(
                label="Interaction", id=rec.id, name=f"{rec.channel or 'interaction'} {rec.occurred_at[:10]}"
            )
        return hit

    out: list[ExplanationPath] = []
    site_step = _step(snapshot, "Site", site_id)
    tactic_step = _step(snapshot, "Tactic", c.tactic)
    seen_barriers: set[str] = set()
    for p in c.pairs:
        if len(out) >= MAX_EXPLANATIONS or p.barrier in seen_barriers:
            continue
        seen_barriers.add(p.barrier)
        b_step, via, broader, chain_steps = _pair_path(snapshot, p)
        source_site = site_id
        rec = latest_mention(site_id, p.barrier)
        if rec is None:
            for other in inferred_from.get(p.barrier, ()):
                found = latest_mention(other, p.barrier)
                if found is not None and found.mentions[p.barrier].stored:
                    rec, source_site = found, other
                    break
        level = _link_fields(snapshot, p.link)[1] or "unknown evidence"
        params: dict[str, str | int | float | list[str]] = {"site": source_site, "barrier": p.barrier, "tactic": c.tactic}
        tail = "<-[:MITIGATES]-(t:Tactic {iri: $tactic})"
        if p.depth:
            params["mitigated"] = p.mitigated
        if rec is not None and rec.mentions[p.barrier].stored:
            params["interaction"] = rec.id
            m = rec.mentions[p.barrier]
            cypher = (
                "MATCH p = (s:Site {id: $site})<-[:WITH_SITE]-(i:Interaction {id: $interaction})-[:CONCERNS]->"
                f"(b:Barrier {{iri: $barrier}}){broader}{tail} RETURN p"
            )
            src_step = site_step if source_site == site_id else _step(snapshot, "Site", source_site)
            nodes = [
                src_step,
                interaction_step(rec),
                b_step,
            ]
            rels = ["WITH_SITE", "CONCERNS"]
            desc = (
                f"{src_step.name} raised '{b_step.name}' ({m.source}) on {rec.occurred_at[:10]}{via}; "
                f"'{tactic_step.name}' mitigates it ({level})"
            )
            if source_site != site_id:
                desc = f"Not raised at {site_step.name} yet, but common at related sites: " + desc
        elif rec is not None:  # mentioned in a note of this site only (no stored CONCERNS)
            params["interaction"] = rec.id
            cypher = (
                "MATCH p = (s:Site {id: $site})<-[:WITH_SITE]-(i:Interaction {id: $interaction}) "
                f"MATCH q = (b:Barrier {{iri: $barrier}}){broader}{tail} RETURN p, q"
            )
            nodes = [
                site_step,
                interaction_step(rec),
                b_step,
            ]
            rels = ["WITH_SITE", "CONCERNS"]
            desc = (
                f"A note of {site_step.name} on {rec.occurred_at[:10]} mentions '{b_step.name}'{via}; "
                f"'{tactic_step.name}' mitigates it ({level})"
            )
        else:  # no interaction to show: the ontology path alone
            del params["site"]
            cypher = f"MATCH p = (b:Barrier {{iri: $barrier}}){broader}{tail} RETURN p"
            nodes = [b_step]
            rels = []
            desc = f"'{b_step.name}' is common at related sites{via}; '{tactic_step.name}' mitigates it ({level})"
        nodes += chain_steps
        rels += ["BROADER"] * len(chain_steps)
        nodes.append(tactic_step)
        rels.append("MITIGATES")
        out.append(ExplanationPath(description=desc, nodes=nodes, relationships=rels, cypher=cypher, params=params))
    best = c.pairs[0]
    if best.similar_tries and neighbours:
        sites = [s for s, _ in neighbours] + [site_id]
        rate = best.similar_successes / best.similar_tries
        out.append(
            ExplanationPath(
                description=(
                    f"'{tactic_step.name}' against '{_step(snapshot, 'Barrier', best.barrier).name}' succeeded "
                    f"{best.similar_successes} of {best.similar_tries} times ({rate:.0%}) at this and the {len(neighbours)} "
                    "sites with the most similar barrier profile"
                ),
                nodes=[
                    PathStep(label="Site", id="(similar sites)", name="similar sites"),
                    PathStep(label="Interaction", id="(applications)", name="applications"),
                    tactic_step,
                ],
                relationships=["WITH_SITE", "APPLIED"],
                cypher=(
                    "MATCH p = (s:Site)<-[:WITH_SITE]-(i:Interaction)-[:APPLIED]->(t:Tactic {iri: $tactic}) "
                    "WHERE s.id IN $sites AND EXISTS { (i)-[:CONCERNS]->(:Barrier {iri: $barrier}) } RETURN p LIMIT 50"
                ),
                params={"tactic": c.tactic, "barrier": best.barrier, "sites": sites},
            )
        )
    return out


def _pair_path(snapshot: Snapshot, p: _Pair) -> tuple[PathStep, str, str, list[PathStep]]:
    """The site-independent parts of a pair's explanation (cached per snapshot): the barrier's step, the
    "narrower case" phrase, the ``BROADER`` hop of its Cypher, and the steps of the broader concepts up to
    the mitigated one (the barrier's path to it through :func:`_ancestors`)."""
    cache: dict[tuple[str, str, int], tuple[PathStep, str, str, list[PathStep]]] = snapshot.cache.setdefault(
        "recommend.pair_paths", {}
    )
    key = (p.barrier, p.mitigated, p.depth)
    hit = cache.get(key)
    if hit is None:
        chain = next((path for concept, _d, path in _ancestors(snapshot, p.barrier) if concept == p.mitigated), [p.barrier])
        via = f" (a narrower case of '{_step(snapshot, 'Barrier', p.mitigated).name}')" if p.depth else ""
        broader = f"-[:BROADER*{p.depth}]->(m:Barrier {{iri: $mitigated}})" if p.depth else ""
        hit = cache[key] = (
            _step(snapshot, "Barrier", p.barrier),
            via,
            broader,
            [_step(snapshot, "Barrier", parent) for parent in chain[1:]],
        )
    return hit


def _link_fields(snapshot: Snapshot, link: dict[str, Any]) -> tuple[dict[str, Any], str | None, str | None, str | None]:
    """(the link, its evidence level's local name, its source, its effect) of a ``MITIGATES`` link's shared
    properties (cached per snapshot by the link's id; the link is kept beside them, so the id stays its own)."""
    cache: dict[int, tuple[dict[str, Any], str | None, str | None, str | None]] = snapshot.cache.setdefault(
        "recommend.link_fields", {}
    )
    hit = cache.get(id(link))
    if hit is None or hit[0] is not link:
        effect = link.get("effect")
        hit = cache[id(link)] = (
            link,
            _local(link.get("evidence_level")),
            _source(link.get("source")),
            effect if isinstance(effect, str) else None,
        )
    return hit


def _latest_mention(eng: EngagementIndex, site_id: str, iri: str) -> Any:
    """The latest interaction at the site that mentions the barrier, preferring stored (observed first) mentions."""
    best = None
    for r in reversed(eng.records(site_id)):
        m = r.mentions.get(iri)
        if m is None:
            continue
        if m.stored and m.source == "observed":
            return r
        if best is None or (m.stored and not best.mentions[iri].stored):
            best = r
    return best


def recommend_tactics(source: Snapshot | GraphStore, site_id: str, limit: int = 5) -> list[TacticRecommendation]:
    """The ``limit`` next-best tactics for the site, best first, with whom to engage and explanations.

    :class:`NotFoundError` for an unknown site; an empty list when the site has no barrier mentions.
    """
    snapshot = as_snapshot(source)
    if snapshot.node("Site", site_id) is None:
        raise NotFoundError(f"no site with id {site_id!r}")
    return _recommend(snapshot, site_id, limit, considered_barriers(snapshot, site_id), lambda: similar_sites(snapshot, site_id))


def _recommend(
    snapshot: Snapshot,
    site_id: str,
    limit: int,
    barriers: list[ConsideredBarrier],
    neighbours_of: Callable[[], list[tuple[str, float]]],
    sums: tuple[_NeighbourSums, int] | None = None,
) -> list[TacticRecommendation]:
    ranked = _rank(snapshot, site_id, barriers, neighbours_of, sums, parts=False)[: max(0, limit)]
    if not ranked:
        return []
    for c in ranked:
        _fill_parts(c)
    inferred_from = {b.iri: b.inferred_from for b in barriers if b.inferred_from}
    engage = engage_for_site(snapshot, site_id)
    eng = engagement_index(snapshot)
    neighbours = neighbours_of()
    tactics = ontology_index(snapshot).tactics
    mentions: dict[tuple[str, str], Any] = {}  # (site, barrier) -> its latest mention, shared by the explanations
    steps: dict[str, PathStep] = {}  # interaction id -> its step, shared by the explanations
    # per snapshot: a tactic's (id, label, role, channel, effort) as the answer shows them
    tactic_fields: dict[str, tuple[str, str, str | None, str | None, str | None]] = snapshot.cache.setdefault(
        "recommend.tactic_fields", {}
    )
    out: list[TacticRecommendation] = []
    for rank, c in enumerate(ranked, start=1):
        described = tactic_fields.get(c.tactic)
        if described is None:
            tprops = tactics.get(c.tactic) or snapshot.node("Tactic", c.tactic) or {}
            described = tactic_fields[c.tactic] = (
                str(tprops.get("id") or c.tactic.rsplit("/", 1)[-1]),
                str(tprops.get("label") or c.tactic),
                _local(tprops.get("role")),
                _local(tprops.get("channel")),
                _local(tprops.get("effort")),
            )
        tactic_id, tactic_label, role, channel, effort = described
        evidence = []
        for p in c.pairs:
            rate = round(p.similar_successes / p.similar_tries, 4) if p.similar_tries else None
            fields = _link_fields(snapshot, p.link)
            evidence.append(
                Evidence(
                    barrier_iri=p.barrier,
                    evidence_level=fields[1],
                    source=fields[2],
                    effect=fields[3],
                    observed_success_rate=rate,
                    observed_interval=wilson_interval(p.similar_successes, p.similar_tries),
                    observed_tries=p.similar_tries,
                )
            )
        out.append(
            TacticRecommendation(
                rank=rank,
                tactic_iri=c.tactic,
                tactic_id=tactic_id,
                tactic_label=tactic_label,
                score=round(c.score, 6),
                score_parts=c.parts,
                barriers=sorted({p.barrier for p in c.pairs if p.barrier not in inferred_from}),
                inferred_barriers=sorted({p.barrier for p in c.pairs if p.barrier in inferred_from}),
                role=role,
                channel=channel,
                effort=effort,
                engage=engage,
                evidence=evidence,
                explanations=_explanations(snapshot, eng, site_id, c, neighbours, inferred_from, mentions, steps),
                recently_tried=c.recently_tried,
            )
        )
    return out


def _source(value: Any) -> str | None:
    if isinstance(value, str):
        return value
    if isinstance(value, (list, tuple)) and value:
        return "; ".join(str(v) for v in value)
    return None


def warm_up(source: Snapshot | GraphStore) -> Snapshot:
    """Build every per-snapshot index the per-site queries read, so that no request pays for it.

    The engagement and effectiveness indexes, the activity tables at both half-lives, the site
    structure (incidence matrices, barrier profiles), the ontology index, the country rates, the
    projection for network proximity and the operands of :func:`sitegraph.queries.related.block_top`.
    Each is built once per data version (``snapshot.cache``).
    """
    from sitegraph.queries.related import _block_operands, _proximity

    snapshot = as_snapshot(source)
    with gc_paused():  # millions of new, acyclic objects: the collector's passes over them find nothing
        engagement_index(snapshot)
        effectiveness_index(snapshot)
        for half_life in (HALF_LIFE_DAYS, RECURRENCE_HALF_LIFE_DAYS):
            activity_table(snapshot, half_life_days=half_life)
        site_structure(snapshot)
        ontology_index(snapshot)
        country_rates(snapshot)
        _pair_counts(snapshot)
        _proximity(snapshot)
        _block_operands(snapshot)
        # now, while the previous snapshot's table is at hand (after a write of interactions only)
        neighbour_table(snapshot, NEIGHBOURS, INFER_NEIGHBOURS)
    return snapshot


def _recommend_block(
    snapshot: Snapshot, block: list[str], rows: np.ndarray, limit: int
) -> Iterator[tuple[str, list[TacticRecommendation]]]:
    st = site_structure(snapshot)
    tops = block_top(snapshot, rows, NEIGHBOURS, INFER_NEIGHBOURS, record=True)
    names = st.sites
    neighbours = [[(names[j], v) for j, v in zip(t[0].tolist(), t[1].tolist(), strict=True)] for t in tops]
    sums = _neighbour_sums(snapshot, neighbours)
    table = neighbour_table(snapshot, NEIGHBOURS, INFER_NEIGHBOURS)
    col = {iri: j for j, iri in enumerate(st.barriers)}
    for b, (site, (_similar, _similarity, related, scores)) in enumerate(zip(block, tops, strict=True)):
        barriers = _considered(snapshot, site, (related.tolist(), scores))
        columns = [col[c.iri] for c in barriers if c.iri in col]
        if len(columns) == len(barriers):  # (else left unknown: the reach of an application counts it in)
            table.record_considered(int(rows[b]), columns)
        yield site, _recommend(snapshot, site, limit, barriers, lambda n=neighbours[b]: n, (sums, b))  # type: ignore[misc]


def recommend_all(
    source: Snapshot | GraphStore,
    site_ids: Iterable[str] | None = None,
    limit: int = 5,
    progress: Callable[[int], None] | None = None,
) -> Iterator[tuple[str, list[TacticRecommendation]]]:
    """:func:`recommend_tactics` for many sites (default: every site, in id order) on one snapshot, streamed.

    Yields ``(site id, recommendations)`` one site at a time, in the order given; each result is exactly
    :func:`recommend_tactics`'s. Sites are scored a block at a time: the similar-site and related-site
    scores of a block come from a few sparse matrix products (:func:`sitegraph.queries.related.block_top`)
    instead of vectors over every site per site; nothing of a block is kept after it is yielded.
    ``progress`` is called with 1 per site. :class:`NotFoundError` for an unknown site (when reached).
    """
    snapshot = warm_up(source)
    for block, rows in site_blocks(snapshot, site_ids):
        for site, recs in _recommend_block(snapshot, block, rows, limit):
            yield site, recs
            if progress is not None:
                progress(1)


_RECOMMENDATIONS_JSON = TypeAdapter(list[TacticRecommendation])


def _json_block(state: tuple[Snapshot, int], block: tuple[list[str], np.ndarray]) -> list[tuple[str, str]]:
    snapshot, limit = state
    sites, rows = block
    return [
        (site, _RECOMMENDATIONS_JSON.dump_json(recs).decode()) for site, recs in _recommend_block(snapshot, sites, rows, limit)
    ]


def recommend_all_json(
    source: Snapshot | GraphStore,
    site_ids: Iterable[str] | None = None,
    limit: int = 5,
    progress: Callable[[int], None] | None = None,
    *,
    workers: int = 1,
) -> Iterator[tuple[str, str]]:
    """:func:`recommend_all` serialised: ``(site id, JSON array of its recommendations)``, in the order given.

    Each text is what ``model_dump_json`` gives for each recommendation, in a JSON array. With
    ``workers`` > 1 the blocks of sites are computed in that many processes forked from this one
    (:func:`sitegraph.workers.map_blocks`: they share the snapshot's memory, and only the text
    comes back), so a batch uses every core; the answers are the same. ``progress`` is called with 1
    per site. :class:`NotFoundError` for an unknown site, after the sites before its block.
    """
    snapshot = warm_up(source)
    for results in map_blocks(_json_block, (snapshot, limit), site_blocks(snapshot, site_ids), workers):
        for site, text in results:
            yield site, text
            if progress is not None:
                progress(1)
