"""Offline evaluation of next-best tactics and related sites against the generator's ground truth.

The recommender never sees the truth file: it ranks from the store's data only. This module then
compares its top ``k`` with the truth (see ``docs/recommendations.md``):

Next-best tactics
    relevant = the tactics that truly work for the site (probability ≥ 0.5 of resolving one of its
    true barriers, ``works`` in the truth file). Baselines, computed in the same run on the same
    sites: *random*, the product's own candidate set (the ontology's tactics for the site's active
    barriers) in a seeded random order, padded with random tactics; *popular*, the tactics applied
    most often against the site's active barriers across all sites, padded with the most applied
    tactics overall.
Related sites
    relevant = the other sites of the same latent barrier cluster. Baselines: *random*, ``k`` seeded
    random sites; *popular*, the sites of highest degree in the site–investigator–study graph.

Sites are evaluated when they have at least one interaction in the store and at least one relevant
item; at most ``max_sites`` of them (a seeded sample). Metrics are averaged over sites:
precision@k = relevant items in the top k / k; NDCG@k with binary gains, ``1/log2(rank + 1)``
discounts and the ideal ranking of ``min(k, |relevant|)`` relevant items.
"""

from __future__ import annotations

import json
import logging
import math
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from sitegraph.errors import InvalidInputError, Problem, UsageError
from sitegraph.graph.store import GraphStore
from sitegraph.queries.effectiveness import effectiveness_index
from sitegraph.queries.models import EvaluationReport, RankingMetrics, TaskEvaluation
from sitegraph.queries.recommend import candidate_pairs, considered_barriers, recommend_tactics
from sitegraph.queries.related import degree_ranking, related_sites
from sitegraph.queries.signals import as_snapshot, engagement_index
from sitegraph.queries.snapshot import Snapshot

log = logging.getLogger(__name__)

DEFAULT_MAX_SITES = 500
ProgressFn = Callable[[str, int, int], None]


def load_truth(path: Path) -> dict[str, Any]:
    """Read a truth file written by ``sitegraph generate --truth``."""
    try:
        doc = json.loads(Path(path).read_text(encoding="utf-8"))
    except OSError as e:
        raise UsageError(f"cannot read the truth file {path}: {e.strerror}") from e
    except json.JSONDecodeError as e:
        raise InvalidInputError([Problem(str(path), f"not JSON: {e.msg}", line=e.lineno)], summary="invalid truth file") from e
    if not isinstance(doc, dict) or not isinstance(doc.get("sites"), dict):
        raise InvalidInputError(
            [Problem(str(path), "no 'sites' object: not a truth file of sitegraph generate")], summary="invalid truth file"
        )
    return doc


def precision_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Relevant items among the first ``k`` ranked, divided by ``k``.

    >>> precision_at_k(["a", "b", "c"], {"a", "c"}, 2)
    0.5
    """
    return sum(1 for x in ranked[:k] if x in relevant) / k if k > 0 else 0.0


def ndcg_at_k(ranked: Sequence[str], relevant: set[str], k: int) -> float:
    """Normalised discounted cumulative gain at ``k`` with binary gains.

    >>> ndcg_at_k(["a", "b"], {"a"}, 5)
    1.0
    """
    dcg = sum(1.0 / math.log2(i + 2) for i, x in enumerate(ranked[:k]) if x in relevant)
    ideal = sum(1.0 / math.log2(i + 2) for i in range(min(k, len(relevant))))
    return dcg / ideal if ideal > 0 else 0.0


class _Acc:
    def __init__(self) -> None:
        self.p: list[float] = []
        self.n: list[float] = []

    def add(self, ranked: Sequence[str], relevant: set[str], k: int) -> None:
        self.p.append(precision_at_k(ranked, relevant, k))
        self.n.append(ndcg_at_k(ranked, relevant, k))

    def metrics(self) -> RankingMetrics:
        return RankingMetrics(
            precision=round(float(np.mean(self.p)), 4) if self.p else 0.0,
            ndcg=round(float(np.mean(self.n)), 4) if self.n else 0.0,
        )


def _site_rng(seed: int, i: int, task: int) -> np.random.Generator:
    return np.random.default_rng([seed, task, i])


def _pad(ranked: list[str], pool: Sequence[str], k: int) -> list[str]:
    seen = set(ranked)
    for x in pool:
        if len(ranked) >= k:
            break
        if x not in seen:
            ranked.append(x)
            seen.add(x)
    return ranked


def evaluate(
    source: Snapshot | GraphStore,
    truth: dict[str, Any],
    *,
    k: int = 5,
    seed: int = 0,
    max_sites: int | None = DEFAULT_MAX_SITES,
    progress: ProgressFn | None = None,
) -> EvaluationReport:
    """Precision@k and NDCG@k of next-best tactics and related sites, and of the two baselines."""
    if k < 1:
        raise UsageError("k must be at least 1")
    snapshot = as_snapshot(source)
    eng = engagement_index(snapshot)
    truth_sites: dict[str, Any] = truth.get("sites", {})
    present = [s for s in sorted(truth_sites) if snapshot.node("Site", s) is not None]
    if not present:
        raise UsageError("none of the truth file's sites is in the store: evaluate the store the truth was generated for")
    candidates = [s for s in present if eng.records(s)]
    if max_sites is not None and len(candidates) > max_sites:
        rng = np.random.default_rng(seed)
        candidates = sorted(rng.choice(candidates, size=max_sites, replace=False).tolist())
    all_tactics = [t for t, p in snapshot.nodes("Tactic") if p.get("deprecated") is not True]
    eff = effectiveness_index(snapshot)
    overall_pop: dict[str, int] = {}
    for tactics in eff.popularity.values():
        for t, n in tactics.items():
            overall_pop[t] = overall_pop.get(t, 0) + n
    pop_order = sorted(overall_pop, key=lambda t: (-overall_pop[t], t))
    degree_order = degree_ranking(snapshot)
    store_sites = [s for s, _ in snapshot.nodes("Site")]
    cluster_of = {s: truth_sites[s].get("cluster") for s in present}
    members: dict[Any, set[str]] = {}
    for s in present:
        members.setdefault(cluster_of[s], set()).add(s)

    tac = {"product": _Acc(), "random": _Acc(), "popular": _Acc()}
    rel = {"product": _Acc(), "random": _Acc(), "popular": _Acc()}
    n_tac = n_rel = 0
    for i, site in enumerate(candidates):
        works = set(truth_sites[site].get("works", []))
        if works:
            n_tac += 1
            product = [r.tactic_iri for r in recommend_tactics(snapshot, site, k)]
            barriers = considered_barriers(snapshot, site)
            cand = sorted(candidate_pairs(snapshot, barriers))
            rng = _site_rng(seed, i, 1)
            rand = [cand[j] for j in rng.permutation(len(cand))][:k]
            rand = _pad(rand, [all_tactics[j] for j in rng.permutation(len(all_tactics))], k)
            counts: dict[str, int] = {}
            for b in barriers:
                for t, n in eff.popularity.get(b.iri, {}).items():
                    counts[t] = counts.get(t, 0) + n
            popular = _pad(sorted(counts, key=lambda t: (-counts[t], t))[:k], pop_order, k)
            tac["product"].add(product, works, k)
            tac["random"].add(rand, works, k)
            tac["popular"].add(popular, works, k)
        same = members.get(cluster_of[site], set()) - {site}
        if same:
            n_rel += 1
            product_r = [r.site_id for r in related_sites(snapshot, site, k)]
            rng = _site_rng(seed, i, 2)
            others = [s for s in (store_sites[j] for j in rng.permutation(len(store_sites))[: k + 1]) if s != site][:k]
            popular_r = [s for s in degree_order[: k + 1] if s != site][:k]
            rel["product"].add(product_r, same, k)
            rel["random"].add(others, same, k)
            rel["popular"].add(popular_r, same, k)
        if progress:
            progress("evaluating", 1, len(candidates))
    log.info("evaluated %d sites for tactics and %d for related sites", n_tac, n_rel)
    return EvaluationReport(
        k=k,
        seed=seed,
        tactics=TaskEvaluation(
            product=tac["product"].metrics(), random=tac["random"].metrics(), popular=tac["popular"].metrics(), sites=n_tac
        ),
        related=TaskEvaluation(
            product=rel["product"].metrics(), random=rel["random"].metrics(), popular=rel["popular"].metrics(), sites=n_rel
        ),
    )
