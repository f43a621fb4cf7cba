"""How far a write of interactions reaches: the sites whose answers it can change.

After ``POST /interactions`` (a write of interactions only, :class:`~sitegraph.queries.snapshot.Lineage`)
that leaves the reference date where it was, a site's answers read no other site's data than:

- its own records (its Site 360, its barrier activity, channels and failed tactics);
- the records of its 30 most similar sites and of its 20 most related sites (the related sites'
  reasons, the barriers inferred from them, the tactics' success at similar sites), and which sites
  those are;
- for its tactics, the counts of every application (a tactic's rate in the site's country and over
  all sites).

So a write at sites ``W`` (each gets new records, hence a new barrier profile) changes the answers of
``W`` themselves, and of a site ``T`` only when a site of ``W`` is among ``T``'s most similar or most
related sites before the write or can be after it; and, when the write adds an application, the
tactics of any site. Before the write, the lists come from the previous snapshot's
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
    _salton,
    _shared_counts,
    proximity_vector,
    site_structure,
)
from sitegraph.queries.signals import engagement_delta
from sitegraph.queries.snapshot import Snapshot, carried

REACH_KEY = "reach"
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
    all_tactics: bool
    """The write added an application of a tactic (or changed an application's episode): every site's tactics may change."""

    def changed(self, depends: str) -> frozenset[str] | None:
        """The sites whose answer of a kind may have changed (None: every site's).

        ``depends``: ``"own"`` (the site's own data: the Site 360), ``"neighbours"`` (and its most similar
        and related sites': related sites), ``"tactics"`` (and every application: tactics).
        """
        if depends == "own":
            return self.written
        if depends == "neighbours":
            return self.sites
        if depends == "tactics":
            return None if self.all_tactics else self.sites
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
    reached = ~table.known
    written = sorted(st.index[s] for s in delta.sites if s in st.index)
    reached[written] = True
    if written:
        for s in written:
            reached |= (table.similar == s).any(axis=1) | (table.related == s).any(axis=1)
            similarity, score = new_scores(snapshot, s)
            reached |= _can_enter(similarity, table.similar_last, SIMILARITY_MARGIN)
            reached |= _can_enter(score, table.related_last, SCORE_MARGIN)
    rows = np.flatnonzero(reached)
    return Reach(frozenset(delta.sites), rows, frozenset(st.sites[i] for i in rows.tolist()), not delta.same_applications)


def _can_enter(values: np.ndarray, last: np.ndarray, margin: float) -> np.ndarray:
    """Whether a value can be among a list whose last entry is ``last`` (0: the list is not full, so any
    positive value enters)."""
    return np.where(last > 0, values + margin >= last, values > 0)


def new_scores(snapshot: Snapshot, s: int) -> tuple[np.ndarray, np.ndarray]:
    """For every site ``T`` (SiteStructure rows): the profile similarity of ``T`` and site row ``s``, and an
    upper bound of the related score of ``s`` seen from ``T`` (``s`` itself: 0)."""
    from sitegraph.queries.related import _proximity

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
