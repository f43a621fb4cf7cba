"""How far a write of interactions reaches: the sites whose answers it can change.

After ``POST /interactions`` (a write of interactions only, :class:`~sitegraph.queries.snapshot.Lineage`)
that leaves the reference date where it was, a site's answers read no other site's data than:

- its own records (its Site 360, its barrier activity, channels and failed tactics);
- the records of its 30 most similar sites and of its 20 most related sites (the related sites'
  reasons, the barriers inferred from them, the tactics' success at similar sites), and which sites
  those are;
- for its tactics, two rates over every application: of each candidate tactic against each barrier
  the tactics address (over all sites), and of each candidate tactic in the site's country.

(A note dated before an application at its site may move when that application's episode began,
which only the days to resolution of the effectiveness table read, not the tactics.)

So a write at sites ``W`` (each gets new records, hence a new barrier profile) changes the answers of
``W`` themselves, and of a site ``T`` only when a site of ``W`` is among ``T``'s most similar or most
related sites before the write or can be after it. A write that applies a tactic ``t`` against
barriers ``B`` at a site in country ``c`` also moves those two rates for (``t``, ``b`` in ``B``) and
(``t``, ``c``): it reaches the tactics of the sites whose tactics address a barrier of ``B``, and of
the sites in ``c`` that address a barrier ``t`` mitigates (the barriers each site's tactics address
are recorded with its lists). Before the write, the lists come from the previous snapshot's
:class:`~sitegraph.queries.related.NeighbourTable`; after it, only the scores of ``T`` against the
sites of ``W`` are new (every other pair keeps its features), so a site of ``W`` enters ``T``'s list
only if its new score reaches the last one of that list. Those new scores are computed from the side
of ``W``, for every ``T`` at once:

- profile similarity and the shared investigators, studies and conditions are symmetric;
- network proximity is not (each walk is divided by its own largest value), but the walk with
  restart on the undirected projection is reversible: ``x_T(S) × strength(T) = x_S(T) × strength(S)``,
  so one walk from ``S`` gives ``x_T(S)`` for every ``T``; the table keeps each ``T``'s divisor.

The comparison keeps a margin (1e-6 on scores, 1e-8 on similarities) far above the rounding of the
two computations, so the reach may hold a few sites too many, never one too few. Sites the table does
not know (never computed in the previous snapshot, or reached by an earlier write and not computed
since) are reached. The test of this module compares every answer after random writes with a full
computation on fresh indexes.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from sitegraph.queries.related import (
    NEIGHBOURS_KEY,
    WEIGHTS,
    NeighbourTable,
    _proximity,
    _salton,
    _shared_counts,
    proximity_vector,
    site_structure,
)
from sitegraph.queries.signals import EngagementDelta, engagement_delta
from sitegraph.queries.snapshot import Snapshot, carried

REACH_KEY = "reach"
COUNTRIES_KEY = "reach.countries"
SCORE_MARGIN = 1e-6
SIMILARITY_MARGIN = 1e-8


@dataclass(frozen=True)
class Reach:
    """The sites a write of interactions only can change the answers of (see the module docstring)."""

    written: frozenset[str]
    """Sites with new interactions: every answer of theirs may change."""
    rows: np.ndarray
    """SiteStructure rows of the sites whose related sites or tactics may change (``written`` included)."""
    sites: frozenset[str]
    """The same sites, by id."""
    tactic_rows: np.ndarray
    """SiteStructure rows of the sites whose tactics may change (``rows`` and, after an application, more)."""
    tactic_sites: frozenset[str]

    def changed(self, depends: str) -> frozenset[str]:
        """The sites whose answer of a kind may have changed.

        ``depends``: ``"own"`` (the site's own data: the Site 360), ``"neighbours"`` (and its most similar
        and related sites': related sites), ``"tactics"`` (and every application: tactics).
        """
        if depends == "own":
            return self.written
        if depends == "neighbours":
            return self.sites
        if depends == "tactics":
            return self.tactic_sites
        raise ValueError(f"unknown dependency {depends!r}")


def reach(snapshot: Snapshot) -> Reach | None:
    """The :class:`Reach` of the write that made ``snapshot`` (cached), or None when its answers cannot be
    carried over: not a write of interactions only, the reference date moved, or the previous snapshot
    recorded no :class:`~sitegraph.queries.related.NeighbourTable`."""
    if REACH_KEY in snapshot.cache:
        return snapshot.cache[REACH_KEY]
    found = _reach(snapshot)
    snapshot.cache[REACH_KEY] = found
    return found


def _reach(snapshot: Snapshot) -> Reach | None:
    table = carried(snapshot, NEIGHBOURS_KEY)
    delta = engagement_delta(snapshot)
    if not isinstance(table, NeighbourTable) or delta is None or not delta.same_reference:
        return None
    st = site_structure(snapshot)
    if len(st.sites) != len(table.known):
        return None
    written = sorted(st.index[s] for s in delta.sites if s in st.index)
    scores = [(s, *new_scores(snapshot, s)) for s in written]
    with table._lock:  # the previous snapshot's precompute may still be recording into it
        reached = ~table.known
        reached[written] = True
        for s, similarity, score in scores:
            reached |= (table.similar == s).any(axis=1) | (table.related == s).any(axis=1)
            reached |= _can_enter(similarity, table.similar_last, SIMILARITY_MARGIN)
            reached |= _can_enter(score, table.related_last, SCORE_MARGIN)
        rows = np.flatnonzero(reached)
        if delta.applied:
            reached |= _applications_reach(snapshot, table, delta)
    tactic_rows = np.flatnonzero(reached)
    sites = st.sites
    return Reach(
        frozenset(delta.sites),
        rows,
        frozenset(sites[i] for i in rows.tolist()),
        tactic_rows,
        frozenset(sites[i] for i in tactic_rows.tolist()),
    )


def _applications_reach(snapshot: Snapshot, table: NeighbourTable, delta: EngagementDelta) -> np.ndarray:
    """The sites whose tactics read a rate the new applications move (see the module docstring): those
    whose tactics address a barrier an application concerns, those in an application's country whose
    tactics address a barrier its tactic mitigates, and those whose barriers were not recorded."""
    from sitegraph.queries.recommend import _pair_templates

    st = site_structure(snapshot)
    col = {iri: j for j, iri in enumerate(st.barriers)}
    countries = site_countries(snapshot)
    out = ~table.considered_known
    for r in delta.applied:
        concerned = [col[iri] for iri in r.mentions if iri in col]
        if concerned:
            out |= table.considered[:, concerned].any(axis=1)
        mitigated = [j for j, iri in enumerate(st.barriers) if any(t[0] == r.tactic for t in _pair_templates(snapshot, iri))]
        country = countries[st.index[r.site]]
        if mitigated and country is not None:
            out |= (countries == country) & table.considered[:, mitigated].any(axis=1)
    return out


def site_countries(snapshot: Snapshot) -> np.ndarray:
    """Each site's country (SiteStructure order; None when it has none), as
    :func:`sitegraph.queries.recommend.country_rates` reads it. Built once and kept across writes of
    interactions only (they change no site)."""
    cached = snapshot.cache.get(COUNTRIES_KEY)
    if cached is None:
        cached = carried(snapshot, COUNTRIES_KEY)
    if cached is None:
        countries = []
        for s in site_structure(snapshot).sites:
            country = (snapshot.node("Site", s) or {}).get("country")
            countries.append(country if isinstance(country, str) and country else None)
        cached = np.array(countries, dtype=object)
    snapshot.cache[COUNTRIES_KEY] = cached
    return cached


def _can_enter(values: np.ndarray, last: np.ndarray, margin: float) -> np.ndarray:
    """Whether a value can be among a list whose last entry is ``last`` (0: the list is not full, so any
    positive value enters)."""
    return np.where(last > 0, values + margin >= last, values > 0)


def new_scores(snapshot: Snapshot, s: int) -> tuple[np.ndarray, np.ndarray]:
    """For every site ``T`` (SiteStructure rows): the profile similarity of ``T`` and site row ``s``, and an
    upper bound of the related score of ``s`` seen from ``T`` (``s`` itself: 0)."""
    st = site_structure(snapshot)
    n = len(st.sites)
    similarity = np.clip(st.profile_similarity(s), 0.0, 1.0)
    score = WEIGHTS["shared_investigator"] * (1 - np.exp(-_shared_counts(st.site_inv, st.inv_site, s, n)))
    score += WEIGHTS["shared_study"] * _salton(_shared_counts(st.site_study, st.study_site, s, n), st.n_std[s], st.n_std)
    score += WEIGHTS["shared_condition"] * _salton(_shared_counts(st.site_cond, st.cond_site, s, n), st.n_cond[s], st.n_cond)
    score += WEIGHTS["similar_barriers"] * similarity
    # x_T(s) for every T, from the walk of s: x_T(s) = x_s(T) * strength(s) / strength(T)
    walk_from_s = proximity_vector(snapshot, st.sites[s])
    prox = _proximity(snapshot)
    strength = _strength(snapshot)
    rows = prox.site_rows
    present = rows >= 0
    toward_s = np.zeros(n)
    if rows[s] >= 0:
        toward_s[present] = walk_from_s[present] * strength[rows[s]] / np.maximum(strength[rows[present]], 1e-300)
    table = snapshot.cache.get(NEIGHBOURS_KEY) or carried(snapshot, NEIGHBOURS_KEY)
    top = table.walk_top if isinstance(table, NeighbourTable) else np.zeros(n)
    # a walk that reaches s has a largest value (at least its value at s); unknown divisors count as reached anyway
    normalised = np.divide(toward_s, top, out=np.ones(n), where=top > 0)
    normalised = np.where(toward_s > 0, np.minimum(normalised, 1.0), 0.0)
    score += WEIGHTS["network_proximity"] * normalised
    similarity[s] = 0.0
    score[s] = 0.0
    return np.round(similarity, 9), score


def _strength(snapshot: Snapshot) -> np.ndarray:
    """Each projection node's strength (the sum of its edge weights), the walk's divisor."""
    cached = snapshot.cache.get("reach.strength")
    if cached is None:
        cached = carried(snapshot, "reach.strength")  # a write of interactions only: the same projection
    if cached is None:
        from sitegraph.graph.projections import site_investigator_study

        proj = snapshot.cache.get("related.sis_projection") or site_investigator_study(snapshot)
        cached = np.asarray(proj.adjacency.sum(axis=1), dtype=np.float64).ravel()
    snapshot.cache["reach.strength"] = cached
    return cached
