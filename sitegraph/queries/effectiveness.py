"""Tactic effectiveness: how often each tactic resolved each barrier, with uncertainty.

An *application* is an interaction that ``APPLIED`` a tactic with a known outcome (``pending`` and
missing outcomes are left out), paired with every barrier the interaction concerns (observed,
tagged, or found in its note). ``resolved`` and ``improved`` count as successes, ``no_change`` and
``worse`` as failures. The success rate comes with a 95% Wilson score interval, which stays wide for a
tactic tried a few times (2 successes out of 2 gives 0.34–1.00). Time to resolution is measured from
the first mention of the barrier at the site in the episode (since its previous resolution) to the
``resolved`` outcome.

Results can be split by kind of site: ``country`` or ``size`` (the number of studies the site takes
part in: ``1 study``, ``2-4 studies``, ``5+ studies``). :func:`effectiveness_index` holds the same
counts per site for the recommender.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Iterable
from dataclasses import dataclass, field
from functools import lru_cache

from sitegraph.errors import NotFoundError, UsageError
from sitegraph.graph.store import GraphStore
from sitegraph.queries.models import TacticEffectiveness
from sitegraph.queries.signals import KNOWN_OUTCOMES, SUCCESS_OUTCOMES, as_snapshot, engagement_delta, engagement_index
from sitegraph.queries.snapshot import Snapshot, carried

GROUPINGS = ("country", "size")


@lru_cache(maxsize=65536)  # a pure function of small counts, asked for the same ones again and again
def wilson_interval(successes: float, tries: float, z: float = 1.96) -> tuple[float, float] | None:
    """The Wilson score interval of a binomial proportion (None when nothing was tried).

    >>> wilson_interval(2, 2)
    (0.3424, 1.0)
    """
    if tries <= 0:
        return None
    p = successes / tries
    denom = 1 + z * z / tries
    centre = (p + z * z / (2 * tries)) / denom
    half = z * math.sqrt(p * (1 - p) / tries + z * z / (4 * tries * tries)) / denom
    return (round(max(0.0, centre - half), 4), round(min(1.0, centre + half), 4))


@dataclass(frozen=True, slots=True)
class Application:
    site: str
    tactic: str
    barrier: str
    success: bool
    resolved: bool
    day: float
    days_to_resolution: float | None
    interaction_id: str


@dataclass
class EffectivenessIndex:
    """Applications, and counts per (tactic, barrier) overall, per site, and per site and tactic."""

    applications: list[Application]
    overall: dict[tuple[str, str], tuple[int, int]]  # (tactic, barrier) -> (tries, successes)
    by_site: dict[str, dict[tuple[str, str], tuple[int, int]]]
    by_site_tactic: dict[str, dict[str, tuple[int, int]]]
    popularity: dict[str, dict[str, int]] = field(default_factory=dict)  # barrier -> tactic -> applications (any outcome)


def effectiveness_index(source: Snapshot | GraphStore) -> EffectivenessIndex:
    """Every application with its outcome (cached per snapshot)."""
    snapshot = as_snapshot(source)
    cached = snapshot.cache.get("effectiveness.index")
    if cached is not None:
        return cached
    previous = carried(snapshot, "effectiveness.index")
    if isinstance(previous, EffectivenessIndex):
        delta = engagement_delta(snapshot)
        if delta is not None and delta.same_applications:  # the write added no application: the same index
            snapshot.cache["effectiveness.index"] = previous
            return previous
    eng = engagement_index(snapshot)
    apps: list[Application] = []
    popularity: dict[str, dict[str, int]] = {}
    for site in sorted(eng.by_site):
        episode: dict[str, float] = {}
        for r in eng.by_site[site]:
            for iri in r.mentions:
                episode.setdefault(iri, r.day)
            if r.tactic:
                for iri in sorted(r.mentions):
                    pop = popularity.setdefault(iri, {})
                    pop[r.tactic] = pop.get(r.tactic, 0) + 1
            if r.tactic and r.outcome in KNOWN_OUTCOMES:
                resolved = r.outcome == "resolved"
                for iri in sorted(r.mentions):
                    start = episode.get(iri, r.day)
                    apps.append(
                        Application(
                            site,
                            r.tactic,
                            iri,
                            r.outcome in SUCCESS_OUTCOMES,
                            resolved,
                            r.day,
                            round(r.day - start, 3) if resolved else None,
                            r.id,
                        )
                    )
            if r.outcome == "resolved":
                for iri in r.mentions:
                    episode.pop(iri, None)
    overall: dict[tuple[str, str], list[int]] = {}
    by_site: dict[str, dict[tuple[str, str], list[int]]] = {}
    by_site_tactic: dict[str, dict[str, list[int]]] = {}
    for a in apps:
        for acc in (
            overall.setdefault((a.tactic, a.barrier), [0, 0]),
            by_site.setdefault(a.site, {}).setdefault((a.tactic, a.barrier), [0, 0]),
        ):
            acc[0] += 1
            acc[1] += int(a.success)
    seen: set[tuple[str, str]] = set()
    for a in apps:  # per site and tactic: count each interaction once, whatever the number of barriers
        key = (a.interaction_id, a.tactic)
        if key in seen:
            continue
        seen.add(key)
        acc = by_site_tactic.setdefault(a.site, {}).setdefault(a.tactic, [0, 0])
        acc[0] += 1
        acc[1] += int(a.success)
    built = EffectivenessIndex(
        applications=apps,
        overall={k: (v[0], v[1]) for k, v in overall.items()},
        by_site={s: {k: (v[0], v[1]) for k, v in d.items()} for s, d in by_site.items()},
        by_site_tactic={s: {k: (v[0], v[1]) for k, v in d.items()} for s, d in by_site_tactic.items()},
        popularity=popularity,
    )
    snapshot.cache["effectiveness.index"] = built
    return built


def resolve_concept(snapshot: Snapshot, label: str, ref: str) -> str:
    """The IRI of a Barrier or Tactic given its IRI, compact id or label (case-insensitive)."""
    if snapshot.node(label, ref) is not None:
        return ref
    low = ref.strip().lower()
    for iri, props in snapshot.nodes(label):
        if str(props.get("id", "")).lower() == low or str(props.get("label", "")).lower() == low:
            return iri
    raise NotFoundError(f"no {label.lower()} {ref!r} (give its IRI, id or label)")


def site_group(snapshot: Snapshot, site_id: str, group_by: str) -> str:
    """The kind of site used to split effectiveness: its country, or a size bucket by studies."""
    if group_by == "country":
        props = snapshot.node("Site", site_id) or {}
        return str(props.get("country") or "unknown")
    if group_by == "size":
        n = len({k for (lb, k), _ in snapshot.out("Site", site_id, "PARTICIPATES_IN") if lb == "Study"})
        return "1 study" if n <= 1 else "2-4 studies" if n <= 4 else "5+ studies"
    raise UsageError(f"group by must be one of {', '.join(GROUPINGS)}, not {group_by!r}")


def _names(snapshot: Snapshot, label: str, iri: str) -> tuple[str, str]:
    props = snapshot.node(label, iri) or {}
    return str(props.get("id") or iri.rsplit("/", 1)[-1]), str(props.get("label") or props.get("id") or iri)


def summarise(snapshot: Snapshot, apps: Iterable[Application], *, group_by: str | None = None) -> list[TacticEffectiveness]:
    """Tries, successes, Wilson interval and median time to resolution per tactic × barrier (× group)."""
    groups: dict[tuple[str, str, str | None], list[Application]] = {}
    site_groups: dict[str, str] = {}
    for a in apps:
        g = None
        if group_by:
            g = site_groups.get(a.site)
            if g is None:
                g = site_groups[a.site] = site_group(snapshot, a.site, group_by)
        groups.setdefault((a.tactic, a.barrier, g), []).append(a)
    out: list[TacticEffectiveness] = []
    for (t, b, g), rows in groups.items():
        tries = len(rows)
        succ = sum(1 for a in rows if a.success)
        resolved_days = sorted(a.days_to_resolution for a in rows if a.days_to_resolution is not None)
        tid, tlabel = _names(snapshot, "Tactic", t)
        bid, blabel = _names(snapshot, "Barrier", b)
        out.append(
            TacticEffectiveness(
                tactic_iri=t,
                tactic_id=tid,
                tactic_label=tlabel,
                barrier_iri=b,
                barrier_id=bid,
                barrier_label=blabel,
                group=g,
                tries=tries,
                successes=succ,
                resolved=sum(1 for a in rows if a.resolved),
                success_rate=round(succ / tries, 4) if tries else None,
                interval=wilson_interval(succ, tries),
                median_days_to_resolution=round(statistics.median(resolved_days), 1) if resolved_days else None,
                sites=len({a.site for a in rows}),
            )
        )
    out.sort(key=lambda e: (-e.tries, e.tactic_iri, e.barrier_iri, e.group or ""))
    return out


def tactic_effectiveness(
    source: Snapshot | GraphStore,
    *,
    tactic: str | None = None,
    barrier: str | None = None,
    group_by: str | None = None,
    min_tries: int = 1,
) -> list[TacticEffectiveness]:
    """Observed effectiveness per tactic × barrier, optionally for one tactic or barrier (IRI, id or label)
    and split by kind of site (``country`` or ``size``); most-tried first."""
    snapshot = as_snapshot(source)
    if group_by is not None and group_by not in GROUPINGS:
        raise UsageError(f"group by must be one of {', '.join(GROUPINGS)}, not {group_by!r}")
    t_iri = resolve_concept(snapshot, "Tactic", tactic) if tactic else None
    b_iri = resolve_concept(snapshot, "Barrier", barrier) if barrier else None
    apps = [
        a
        for a in effectiveness_index(snapshot).applications
        if (t_iri is None or a.tactic == t_iri) and (b_iri is None or a.barrier == b_iri)
    ]
    return [e for e in summarise(snapshot, apps, group_by=group_by) if e.tries >= min_tries]
