"""A seeded, reproducible synthetic engagement history for the sites already in the graph.

``sitegraph generate`` (see ``docs/generator.md``) adds, for the sites and investigators in the store
(real ClinicalTrials.gov ones included) and optionally for synthesised sites, investigators and
studies: interactions (call, email, visit, fax, portal message) with free-text notes, barrier
observations (``CONCERNS {source: 'observed', severity}``), the tags found in the notes
(``CONCERNS {source: 'tagged', confidence}``), tactic applications with outcomes
(``APPLIED {outcome}``) and per-site study facts on ``PARTICIPATES_IN``.

Every site gets latent traits: a *barrier cluster* (sites of a cluster share most of their true
barriers), the barriers it really has, and how well each tactic really works for it (the ontology's
``MITIGATES`` links, their evidence level, a per-cluster affinity and per-site noise). The traits
drive what is generated and are written only to the ``--truth`` file; nothing in the product reads
that file except ``sitegraph evaluate``.

Distributions come from ``../shared/research/site-performance.md``; each parameter names its source
next to it (``[source]``), and parameters without a published anchor say ``assumption``.

Everything is drawn up front with numpy from one seed (per-stage child generators), so the same seed
on the same graph gives byte-identical CSV and the same store content whatever the chunk size;
writes go through :meth:`GraphStore.write` in chunks, and ``--out`` streams the documented CSV files.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from sitegraph.errors import UsageError
from sitegraph.graph.store import GraphBatch, GraphStore
from sitegraph.loaders.csvfiles import FILES_BY_NAME
from sitegraph.queries.signals import BarrierIndex, build_barrier_index, note_tags, sentiment
from sitegraph.queries.snapshot import Snapshot, get_snapshot

log = logging.getLogger(__name__)

GENERATOR_VERSION = 1
ProgressFn = Callable[[str, int, int], None]
"""progress(stage, advance, total): called as work is done."""

CHANNELS = ("call", "email", "visit", "fax", "portal")
# Channel mix of site contacts: assumption (no published figure); email-heavy with few faxes.
CHANNEL_MIX = np.array([0.26, 0.42, 0.10, 0.06, 0.16])
OUTCOMES = ("resolved", "improved", "no_change", "worse", "pending")

SYNTH_SITE_PREFIX = "site:synth-"
SYNTH_INV_PREFIX = "inv:synth-"
SYNTH_STUDY_PREFIX = "SYNTH-"


@dataclass(frozen=True)
class Scale:
    """A size preset: interactions per site, and how much to synthesise when nothing is asked for."""

    per_site: float
    synthesize_sites: int = 0


SCALES: dict[str, Scale] = {
    "demo": Scale(per_site=8),  # the real sites only, a light history each
    "small": Scale(per_site=30, synthesize_sites=300),  # ~9,000 interactions: tests and evaluation
    "medium": Scale(per_site=40, synthesize_sites=3_000),  # ~120,000 interactions
    "large": Scale(per_site=50, synthesize_sites=20_000),  # ~1,000,000 interactions: benchmarks
}


@dataclass
class GeneratorConfig:
    """What to generate. ``interactions`` (a total) overrides the scale's interactions per site."""

    seed: int = 0
    scale: str = "demo"
    interactions: int | None = None
    per_site: float | None = None
    synthesize_sites: int | None = None
    synthesize_investigators: int | None = None
    synthesize_studies: int | None = None
    real_sites: bool = True
    months: int = 24
    end_date: date = date(2025, 6, 30)
    clusters: int = 8
    chunk_size: int = 20_000
    write_store: bool = True

    def preset(self) -> Scale:
        try:
            return SCALES[self.scale]
        except KeyError:
            raise UsageError(f"unknown scale {self.scale!r}: use one of {', '.join(SCALES)}") from None


@dataclass
class GenerateReport:
    seed: int
    sites: int = 0
    synthetic_sites: int = 0
    synthetic_investigators: int = 0
    synthetic_studies: int = 0
    site_studies: int = 0
    interactions: int = 0
    observations: int = 0
    tags: int = 0
    applications: int = 0
    seconds: float = 0.0
    files: list[str] = field(default_factory=list)
    truth: str | None = None

    @property
    def interactions_per_second(self) -> float:
        return self.interactions / self.seconds if self.seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {
            "seed": self.seed,
            "sites": self.sites,
            "synthetic_sites": self.synthetic_sites,
            "synthetic_investigators": self.synthetic_investigators,
            "synthetic_studies": self.synthetic_studies,
            "site_studies": self.site_studies,
            "interactions": self.interactions,
            "observations": self.observations,
            "tags": self.tags,
            "applications": self.applications,
            "seconds": round(self.seconds, 2),
            "interactions_per_second": round(self.interactions_per_second, 1),
            "files": self.files,
            "truth": self.truth,
        }


# --- the world: what is in the graph ------------------------------------------------------------------


@dataclass
class World:
    """Sites, people, studies and the ontology, as arrays the generator indexes."""

    site_ids: list[str]
    site_country: list[str | None]
    site_invs: list[list[str]]
    site_studies: list[list[str]]
    study_enrollment: dict[str, int | None]
    study_sites: dict[str, int]
    pair_status: dict[tuple[str, str], str | None]
    barriers: list[str]  # barriers sites can truly have (specific concepts)
    barrier_severity: np.ndarray
    barrier_phrases: list[list[str]]
    barrier_kpis: list[frozenset[str]]
    barrier_nodes: list[dict[str, Any]]  # every Barrier node (for the tagger)
    tactics: list[str]
    tactic_names: list[list[str]]
    cand_depth: np.ndarray  # tactics x barriers: broader distance of the MITIGATES link, -1 for none
    cand_evidence: np.ndarray  # tactics x barriers: evidence score of that link
    synthetic: Synthetic | None = None


@dataclass
class Synthetic:
    """Synthesised sites, investigators and studies, as rows of the CSV format."""

    files: dict[str, list[dict[str, Any]]]
    site_ids: list[str]
    site_cluster_hint: dict[str, int]
    pairs: list[tuple[str, str]]
    investigator_count: int = 0
    study_count: int = 0


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def evidence_score(level: Any) -> float:
    """The generator's reading of an evidence level (published trial > observed > expert consensus)."""
    text = str(level or "").lower()
    if "trial" in text or "published" in text:
        return 1.0
    if "observed" in text:
        return 0.7
    if "consensus" in text or "expert" in text:
        return 0.5
    return 0.3


# Keywords that tie a barrier (its id, label or category) to the KPI it moves.
KPI_KEYWORDS: dict[str, tuple[str, ...]] = {
    "contract": ("contract", "budget", "cta", "payment", "invoice", "legal", "indemn", "negotiat"),
    "ethics": ("ethic", "irb", "regulat", "approval", "committee", "submission", "consent"),
    "startup": ("feasib", "start-up", "startup", "activation", "initiation", "siv", "document", "ancillary"),
    "surveys": ("questionnaire", "survey"),
    "recruitment": ("recruit", "enrol", "enroll", "referral", "retention", "follow-up", "invitation", "randomis"),
    "eligibility": ("eligib", "screen", "inclusion", "exclusion", "criteria"),
    "queries": ("quer", "data", "crf", "edc", "entry", "source"),
}


def _kpis_of(text: str) -> frozenset[str]:
    low = text.lower()
    return frozenset(k for k, words in KPI_KEYWORDS.items() if any(w in low for w in words))


def read_world(snapshot: Snapshot, config: GeneratorConfig) -> World:
    """Sites, investigators, studies and the barrier–tactic ontology of the graph."""
    barrier_nodes = [props for _, props in snapshot.nodes("Barrier")]
    live_barriers = {p["iri"]: p for p in barrier_nodes if p.get("deprecated") is not True}
    tactic_nodes = {k: p for k, p in snapshot.nodes("Tactic") if p.get("deprecated") is not True}
    if not live_barriers or not tactic_nodes:
        raise UsageError("the store holds no barrier/tactic ontology: run `sitegraph ontology sync` first")
    parents = {
        iri: sorted(v[1] for v, _ in snapshot.out("Barrier", iri, "BROADER") if v[1] in live_barriers) for iri in live_barriers
    }
    specific = sorted(iri for iri, ps in parents.items() if ps) or sorted(live_barriers)
    tparents = {iri: [v[1] for v, _ in snapshot.out("Tactic", iri, "BROADER")] for iri in tactic_nodes}
    has_children = {p for ps in tparents.values() for p in ps}
    tactics = sorted(iri for iri in tactic_nodes if tparents[iri] or iri not in has_children)

    def ancestors(iri: str) -> list[tuple[str, int]]:
        out, seen, frontier, depth = [(iri, 0)], {iri}, [iri], 0
        while frontier:
            depth += 1
            nxt = []
            for b in frontier:
                for p in parents.get(b, []):
                    if p not in seen:
                        seen.add(p)
                        out.append((p, depth))
                        nxt.append(p)
            frontier = nxt
        return out

    tindex = {iri: i for i, iri in enumerate(tactics)}
    cand_depth = np.full((len(tactics), len(specific)), -1, dtype=np.int16)
    cand_evidence = np.zeros((len(tactics), len(specific)), dtype=np.float64)
    for j, b in enumerate(specific):
        for target, depth in ancestors(b):
            for (label, t), props in snapshot.into("Barrier", target, "MITIGATES"):
                i = tindex.get(t)
                if label != "Tactic" or i is None:
                    continue
                if cand_depth[i, j] == -1 or depth < cand_depth[i, j]:
                    cand_depth[i, j] = depth
                    cand_evidence[i, j] = evidence_score(props.get("evidence_level"))
    sev = np.array([float(live_barriers[b].get("severity") or 0.5) for b in specific])
    phrases: list[list[str]] = []
    kpis: list[frozenset[str]] = []
    for b in specific:
        p = live_barriers[b]
        names = [str(p.get("label") or p.get("id") or b)] + [a for a in (p.get("alt_labels") or []) if isinstance(a, str)]
        phrases.append(names)
        cat = live_barriers.get(str(p.get("category") or ""), {})
        kpis.append(_kpis_of(" ".join([b, str(p.get("label") or ""), str(p.get("category") or ""), str(cat.get("label") or "")])))
    tnames = []
    for t in tactics:
        p = tactic_nodes[t]
        tnames.append([str(p.get("label") or p.get("id") or t)] + [a for a in (p.get("alt_labels") or []) if isinstance(a, str)])

    site_ids: list[str] = []
    countries: list[str | None] = []
    invs: list[list[str]] = []
    studies: list[list[str]] = []
    pair_status: dict[tuple[str, str], str | None] = {}
    if config.real_sites:
        for sid, props in snapshot.nodes("Site"):
            if sid.startswith(SYNTH_SITE_PREFIX):
                continue  # synthesised by an earlier run: re-synthesised identically below if asked for
            site_ids.append(sid)
            countries.append(_str(props.get("country")))
            invs.append(sorted({k for (lb, k), _ in snapshot.into("Site", sid, "WORKS_AT") if lb == "Investigator"}))
            rows = snapshot.out("Site", sid, "PARTICIPATES_IN")
            studies.append(sorted({k for (lb, k), _ in rows if lb == "Study"}))
            for (_lb, k), rp in rows:
                pair_status[(sid, k)] = _str(rp.get("status"))
    enrollment: dict[str, int | None] = {}
    study_sites: dict[str, int] = {}
    for sts in studies:
        for s in sts:
            study_sites[s] = study_sites.get(s, 0) + 1
    for s in study_sites:
        props = snapshot.node("Study", s) or {}
        e = props.get("enrollment")
        enrollment[s] = int(e) if isinstance(e, int) and not isinstance(e, bool) else None
    return World(
        site_ids=site_ids,
        site_country=countries,
        site_invs=invs,
        site_studies=studies,
        study_enrollment=enrollment,
        study_sites=study_sites,
        pair_status=pair_status,
        barriers=specific,
        barrier_severity=sev,
        barrier_phrases=phrases,
        barrier_kpis=kpis,
        barrier_nodes=barrier_nodes,
        tactics=tactics,
        tactic_names=tnames,
        cand_depth=cand_depth,
        cand_evidence=cand_evidence,
    )


# --- synthesis of sites, investigators and studies ------------------------------------------------------

_CITIES = [
    ("Boston", "MA", "United States", 42.36, -71.06),
    ("Houston", "TX", "United States", 29.76, -95.37),
    ("Seattle", "WA", "United States", 47.61, -122.33),
    ("Atlanta", "GA", "United States", 33.75, -84.39),
    ("Chicago", "IL", "United States", 41.88, -87.63),
    ("Toronto", "ON", "Canada", 43.65, -79.38),
    ("Montreal", "QC", "Canada", 45.50, -73.57),
    ("London", None, "United Kingdom", 51.51, -0.13),
    ("Manchester", None, "United Kingdom", 53.48, -2.24),
    ("Paris", None, "France", 48.86, 2.35),
    ("Lyon", None, "France", 45.76, 4.84),
    ("Berlin", None, "Germany", 52.52, 13.40),
    ("Munich", None, "Germany", 48.14, 11.58),
    ("Madrid", None, "Spain", 40.42, -3.70),
    ("Barcelona", None, "Spain", 41.39, 2.17),
    ("Milan", None, "Italy", 45.46, 9.19),
    ("Rome", None, "Italy", 41.90, 12.50),
    ("Amsterdam", None, "Netherlands", 52.37, 4.90),
    ("Warsaw", None, "Poland", 52.23, 21.01),
    ("Prague", None, "Czechia", 50.08, 14.44),
    ("Tokyo", None, "Japan", 35.68, 139.69),
    ("Osaka", None, "Japan", 34.69, 135.50),
    ("Seoul", None, "Korea, Republic of", 37.57, 126.98),
    ("Sydney", "NSW", "Australia", -33.87, 151.21),
    ("Melbourne", "VIC", "Australia", -37.81, 144.96),
    ("Sao Paulo", None, "Brazil", -23.55, -46.63),
    ("Buenos Aires", None, "Argentina", -34.60, -58.38),
    ("Mexico City", None, "Mexico", 19.43, -99.13),
]
_SITE_KINDS = [
    "General Hospital",
    "University Medical Center",
    "Cancer Institute",
    "Clinical Research Center",
    "Regional Hospital",
    "Children's Hospital",
    "Heart Institute",
    "Community Clinic",
    "Research Institute",
    "Teaching Hospital",
]
_SITE_NAMES = [
    "St. Mary",
    "Northside",
    "Lakeview",
    "Riverside",
    "Hillcrest",
    "Westgate",
    "Central",
    "Eastwood",
    "Parkland",
    "Summit",
    "Harbor",
    "Valley",
    "Mercy",
    "Grace",
    "Unity",
    "Kingsway",
    "Oakridge",
    "Fairview",
    "Bayside",
    "Highland",
]
_FIRST = [
    "Anna",
    "Ben",
    "Carla",
    "David",
    "Elena",
    "Farid",
    "Grace",
    "Hiro",
    "Ines",
    "Jon",
    "Kemal",
    "Lena",
    "Marco",
    "Nadia",
    "Omar",
    "Priya",
    "Quentin",
    "Rosa",
    "Sven",
    "Tara",
    "Ugo",
    "Vera",
    "Wei",
    "Ximena",
    "Yusuf",
    "Zoe",
]
_LAST = [
    "Alvarez",
    "Brandt",
    "Chen",
    "Dubois",
    "Eriksen",
    "Fischer",
    "Garcia",
    "Hoffmann",
    "Ibrahim",
    "Jensen",
    "Kowalski",
    "Larsen",
    "Moreau",
    "Nakamura",
    "Okafor",
    "Petrov",
    "Quinn",
    "Rossi",
    "Schmidt",
    "Tanaka",
    "Urban",
    "Varga",
    "Weber",
    "Xu",
    "Yilmaz",
    "Zhang",
]
_CONDITIONS = [
    ("Breast Cancer", "Oncology"),
    ("Non-Small Cell Lung Cancer", "Oncology"),
    ("Colorectal Cancer", "Oncology"),
    ("Prostate Cancer", "Oncology"),
    ("Melanoma", "Oncology"),
    ("Multiple Myeloma", "Oncology"),
    ("Type 2 Diabetes", "Metabolic"),
    ("Obesity", "Metabolic"),
    ("Heart Failure", "Cardiovascular"),
    ("Atrial Fibrillation", "Cardiovascular"),
    ("Hypertension", "Cardiovascular"),
    ("Asthma", "Respiratory"),
    ("COPD", "Respiratory"),
    ("Rheumatoid Arthritis", "Immunology"),
    ("Psoriasis", "Immunology"),
    ("Crohn Disease", "Immunology"),
    ("Alzheimer Disease", "Neurology"),
    ("Parkinson Disease", "Neurology"),
    ("Multiple Sclerosis", "Neurology"),
    ("Migraine", "Neurology"),
    ("Major Depressive Disorder", "Psychiatry"),
    ("Schizophrenia", "Psychiatry"),
    ("Chronic Kidney Disease", "Nephrology"),
    ("HIV Infections", "Infectious disease"),
    ("Hepatitis B", "Infectious disease"),
    ("Sickle Cell Disease", "Haematology"),
]
_DRUGS = ["SG-101", "SG-214", "SG-377", "SG-402", "SG-518", "SG-623", "SG-745", "SG-880", "SG-931"]


def _condition_id(name: str) -> str:
    try:
        from sitegraph.loaders.normalize import condition_id
    except ImportError:  # pragma: no cover
        import re

        return "condition:" + re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    return condition_id(name)


def _synthesize(
    world: World, config: GeneratorConfig, n_sites: int, rng: np.random.Generator, home_cluster: dict[str, int]
) -> Synthetic:
    """Sites, investigators, studies and conditions with cluster homophily (studies recruit mostly within a cluster)."""
    K = config.clusters
    n_inv = config.synthesize_investigators if config.synthesize_investigators is not None else round(1.6 * n_sites)
    n_std = config.synthesize_studies if config.synthesize_studies is not None else max(5, n_sites // 6)
    city_idx = rng.integers(0, len(_CITIES), n_sites)
    site_ids = [f"{SYNTH_SITE_PREFIX}{i + 1:06d}" for i in range(n_sites)]
    # A site's cluster follows its country 60% of the time (assumption: barrier profiles are regional).
    clusters = np.where(
        rng.random(n_sites) < 0.6,
        np.array([home_cluster[_CITIES[c][2]] for c in city_idx]),
        rng.integers(0, K, n_sites),
    )
    name_a = rng.integers(0, len(_SITE_NAMES), n_sites)
    name_b = rng.integers(0, len(_SITE_KINDS), n_sites)
    sites_rows = []
    for i, sid in enumerate(site_ids):
        city, state, country, lat, lon = _CITIES[city_idx[i]]
        sites_rows.append(
            {
                "id": sid,
                "name": f"{_SITE_NAMES[name_a[i]]} {_SITE_KINDS[name_b[i]]} {city}",
                "city": city,
                "state": state,
                "zip": None,
                "country": country,
                "lat": lat,
                "lon": lon,
                "aliases": [],
            }
        )
    by_cluster = [np.flatnonzero(clusters == k) for k in range(K)]
    # investigators: one home site; 15% also work at a second site, 70% of those in the same cluster (assumption)
    inv_rows, inv_site_rows = [], []
    site_invs: list[list[str]] = [[] for _ in range(n_sites)]
    homes = (
        np.concatenate([np.arange(n_sites), rng.integers(0, n_sites, max(0, n_inv - n_sites))])[:n_inv]
        if n_sites
        else np.array([], int)
    )
    fn = rng.integers(0, len(_FIRST), n_inv)
    ln = rng.integers(0, len(_LAST), n_inv)
    second = rng.random(n_inv) < 0.15
    same = rng.random(n_inv) < 0.7
    pick = rng.random(n_inv)
    for i in range(n_inv):
        iid = f"{SYNTH_INV_PREFIX}{i + 1:06d}"
        h = int(homes[i])
        inv_rows.append({"id": iid, "name": f"{_FIRST[fn[i]]} {_LAST[ln[i]]}", "degrees": ["MD"], "affiliations": []})
        sites_of = [h]
        if second[i] and n_sites > 1:
            pool = by_cluster[clusters[h]] if same[i] and len(by_cluster[clusters[h]]) > 1 else np.arange(n_sites)
            o = int(pool[int(pick[i] * len(pool)) % len(pool)])
            if o != h:
                sites_of.append(o)
        for s in sites_of:
            inv_site_rows.append({"investigator_id": iid, "site_id": site_ids[s]})
            site_invs[s].append(iid)
    # studies: sites per study lognormal (median 8, assumption), 60% drawn from the study's home cluster
    study_ids = [f"{SYNTH_STUDY_PREFIX}{i + 1:06d}" for i in range(n_std)]
    size = np.clip(np.round(rng.lognormal(math.log(8), 0.7, n_std)), 2, max(2, min(80, n_sites))).astype(int)
    home = rng.integers(0, K, n_std)
    cond_a = rng.integers(0, len(_CONDITIONS), n_std)
    cond_b = rng.integers(0, len(_CONDITIONS), n_std)
    two = rng.random(n_std) < 0.3
    phase = rng.choice(["PHASE1", "PHASE2", "PHASE3", "PHASE4"], n_std, p=[0.15, 0.35, 0.4, 0.1])
    status = rng.choice(["RECRUITING", "ACTIVE_NOT_RECRUITING", "COMPLETED"], n_std, p=[0.5, 0.3, 0.2])
    start_off = rng.integers(-365, config.months * 30 - 180, n_std)
    drug = rng.integers(0, len(_DRUGS), n_std)
    window_start = config.end_date - timedelta(days=int(config.months * 30.44))
    study_rows, cond_rows, study_cond_rows = [], {}, []
    site_studies: list[set[str]] = [set() for _ in range(n_sites)]
    for i, st in enumerate(study_ids):
        conds = [cond_a[i]] + ([cond_b[i]] if two[i] and cond_b[i] != cond_a[i] else [])
        cname = _CONDITIONS[conds[0]][0]
        start = window_start + timedelta(days=int(start_off[i]))
        study_rows.append(
            {
                "id": st,
                "title": f"A {phase[i].replace('PHASE', 'phase ')} study of {_DRUGS[drug[i]]} in {cname}",
                "phase": str(phase[i]),
                "overall_status": str(status[i]),
                "study_type": "INTERVENTIONAL",
                "start_date": start.isoformat(),
                "completion_date": None,
                "enrollment": None,
            }
        )
        for c in conds:
            name, area = _CONDITIONS[c]
            cid = _condition_id(name)
            cond_rows[cid] = {"id": cid, "name": name, "therapeutic_area": area}
            study_cond_rows.append({"study_id": st, "condition_id": cid})
        n_home = round(size[i] * 0.6)
        pool = by_cluster[home[i]]
        chosen: set[int] = set()
        if len(pool):
            chosen |= {int(x) for x in rng.choice(pool, min(n_home, len(pool)), replace=False)}
        if n_sites:
            chosen |= (
                {int(x) for x in rng.choice(n_sites, min(int(size[i]) - len(chosen), n_sites), replace=False)}
                if size[i] > len(chosen)
                else set()
            )
        for s in chosen:
            site_studies[s].add(st)
    # every site takes part in at least one study of its cluster's studies (or any)
    study_home = {st: int(home[i]) for i, st in enumerate(study_ids)}
    cluster_studies = [[st for st in study_ids if study_home[st] == k] or study_ids for k in range(K)]
    fill = rng.random(n_sites)
    for s in range(n_sites):
        if not site_studies[s] and study_ids:
            pool_s = cluster_studies[clusters[s]]
            site_studies[s].add(pool_s[int(fill[s] * len(pool_s)) % len(pool_s)])
    # the principal investigator of each site-study pair: one of the site's investigators, at random
    pairs = [(site_ids[s], st) for s in range(n_sites) for st in sorted(site_studies[s])]
    pi_pick = rng.random(len(pairs))
    inv_study_rows = []
    index_of = {sid: i for i, sid in enumerate(site_ids)}
    for (sid, st), u in zip(pairs, pi_pick, strict=True):
        invs = site_invs[index_of[sid]]
        if invs:
            pi = invs[int(u * len(invs))]
            inv_study_rows.append({"investigator_id": pi, "study_id": st, "role": "PRINCIPAL_INVESTIGATOR", "site_id": sid})
    files = {
        "sites.csv": sites_rows,
        "investigators.csv": inv_rows,
        "studies.csv": study_rows,
        "conditions.csv": [cond_rows[k] for k in sorted(cond_rows)],
        "investigator_sites.csv": inv_site_rows,
        "investigator_studies.csv": inv_study_rows,
        "study_conditions.csv": study_cond_rows,
    }
    # extend the world
    for s, sid in enumerate(site_ids):
        world.site_ids.append(sid)
        world.site_country.append(sites_rows[s]["country"])
        world.site_invs.append(sorted(site_invs[s]))
        world.site_studies.append(sorted(site_studies[s]))
    for _sid, st in pairs:
        world.study_sites[st] = world.study_sites.get(st, 0) + 1
        world.study_enrollment.setdefault(st, None)
    return Synthetic(
        files=files,
        site_ids=site_ids,
        site_cluster_hint={sid: int(clusters[i]) for i, sid in enumerate(site_ids)},
        pairs=pairs,
        investigator_count=n_inv,
        study_count=n_std,
    )


# --- latent traits ---------------------------------------------------------------------------------------


@dataclass
class Latent:
    """What is really true of each site (written to the truth file only)."""

    cluster: np.ndarray  # site -> cluster
    cluster_core: list[list[int]]  # cluster -> core barrier indexes
    intensity: np.ndarray  # sites x barriers, 0 where the site does not have the barrier
    friction: np.ndarray  # site -> how much friction overall
    trend: np.ndarray  # site -> slope of friction over the window
    mood: np.ndarray  # site -> tone of its notes
    preferred: np.ndarray  # site -> index into CHANNELS
    affinity: np.ndarray  # clusters x tactics (logit)
    noise: np.ndarray  # sites x tactics (logit)
    new_site: np.ndarray  # site -> new to research (slower start-up)

    def success_logit(self, sites: np.ndarray, tactics: np.ndarray, depth: np.ndarray, evidence: np.ndarray) -> np.ndarray:
        """Logit of a tactic resolving a barrier it is linked to (the channel bonus is added by the caller)."""
        # base -0.35, evidence +0.8 per unit, -0.5 per broader step, cluster affinity N(0, 1.1), site noise N(0, 0.6): assumption
        return (
            -0.35
            + 0.8 * (evidence - 0.5)
            - 0.5 * depth
            + self.affinity[self.cluster[sites], tactics]
            + self.noise[sites, tactics]
        )


def _draw_latent(
    world: World, config: GeneratorConfig, rng: np.random.Generator, cluster_hint: dict[str, int], home_cluster: dict[str, int]
) -> Latent:
    S, B, T, K = len(world.site_ids), len(world.barriers), len(world.tactics), config.clusters
    has_cand = (world.cand_depth >= 0).any(axis=0)
    # cluster core barriers: 3-5, mostly from one KPI theme (assumption); barriers some tactic mitigates are 3x as likely
    weights = np.where(has_cand, 3.0, 1.0)
    cores: list[list[int]] = []
    for _k in range(K):
        n = int(rng.integers(3, 6))
        theme_pick = rng.integers(0, B)
        theme = world.barrier_kpis[theme_pick]
        w = weights * np.array([2.5 if (theme & world.barrier_kpis[b]) else 1.0 for b in range(B)])
        cores.append(sorted(int(x) for x in rng.choice(B, size=min(n, B), replace=False, p=w / w.sum())))
    cluster = np.empty(S, dtype=np.int64)
    fallback = rng.integers(0, K, S)
    follow = rng.random(S) < 0.6
    for i, sid in enumerate(world.site_ids):
        if sid in cluster_hint:
            cluster[i] = cluster_hint[sid]
        elif follow[i] and world.site_country[i] in home_cluster:
            cluster[i] = home_cluster[world.site_country[i]]  # type: ignore[index]
        else:
            cluster[i] = fallback[i]
    intensity = np.zeros((S, B), dtype=np.float64)
    core_level = [rng.uniform(0.5, 1.0, len(c)) for c in cores]
    keep = rng.random((S, 6)) < 0.85  # each core barrier is present at 85% of the cluster's sites
    jitter = rng.lognormal(0.0, 0.25, (S, 6))
    n_extra = rng.poisson(0.7, S)  # idiosyncratic barriers of the site
    extra_b = rng.integers(0, B, (S, 4))
    extra_l = rng.uniform(0.3, 0.6, (S, 4))
    for i in range(S):
        core = cores[cluster[i]]
        for j, b in enumerate(core):
            if keep[i, j]:
                intensity[i, b] = min(1.0, core_level[cluster[i]][j] * jitter[i, j])
        for j in range(min(int(n_extra[i]), 4)):
            intensity[i, extra_b[i, j]] = max(intensity[i, extra_b[i, j]], extra_l[i, j])
        if not intensity[i].any():
            intensity[i, core[0]] = core_level[cluster[i]][0]
    return Latent(
        cluster=cluster,
        cluster_core=cores,
        intensity=intensity,
        friction=rng.lognormal(0.0, 0.35, S),
        trend=rng.normal(0.0, 0.35, S),
        mood=rng.normal(0.0, 0.3, S),
        preferred=rng.choice(len(CHANNELS), S, p=CHANNEL_MIX),
        affinity=rng.normal(0.0, 1.1, (K, T)),
        noise=rng.normal(0.0, 0.6, (S, T)),
        new_site=rng.random(S) < 0.28,  # 28% of sites are new [WCG "avoid enrollment pitfalls"]
    )


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-x))


def true_success(world: World, latent: Latent, site: int) -> dict[int, float]:
    """{tactic index: probability it resolves the site's true barriers (best over them)}, for linked tactics."""
    out: dict[int, float] = {}
    bs = np.flatnonzero(latent.intensity[site] > 0)
    for b in bs:
        ts = np.flatnonzero(world.cand_depth[:, b] >= 0)
        if not len(ts):
            continue
        logit = latent.success_logit(
            np.full(len(ts), site), ts, world.cand_depth[ts, b].astype(float), world.cand_evidence[ts, b]
        )
        for t, p in zip(ts, _sigmoid(logit), strict=True):
            out[int(t)] = max(out.get(int(t), 0.0), float(p))
    return out


WORKS_THRESHOLD = 0.5
"""A tactic 'truly works' for a site when it resolves one of its true barriers with probability ≥ 0.5."""


def truth_document(world: World, latent: Latent, config: GeneratorConfig) -> dict[str, Any]:
    """The ground truth: clusters, and per site its cluster, true barriers and the tactics that work."""
    sites: dict[str, Any] = {}
    for i, sid in enumerate(world.site_ids):
        probs = true_success(world, latent, i)
        works = sorted((t for t, p in probs.items() if p >= WORKS_THRESHOLD), key=lambda t: (-probs[t], world.tactics[t]))
        bs = np.flatnonzero(latent.intensity[i] > 0)
        sites[sid] = {
            "cluster": int(latent.cluster[i]),
            "barriers": {world.barriers[b]: round(float(latent.intensity[i, b]), 4) for b in bs},
            "works": [world.tactics[t] for t in works],
            "tactic_success": {world.tactics[t]: round(probs[t], 4) for t in sorted(probs, key=lambda t: world.tactics[t])},
            "preferred_channel": CHANNELS[int(latent.preferred[i])],
        }
    return {
        "generator_version": GENERATOR_VERSION,
        "seed": config.seed,
        "works_threshold": WORKS_THRESHOLD,
        "clusters": {str(k): {"core_barriers": [world.barriers[b] for b in core]} for k, core in enumerate(latent.cluster_core)},
        "sites": sites,
    }


# --- per-site study facts ----------------------------------------------------------------------------------


def _site_kpi_load(world: World, latent: Latent) -> dict[str, np.ndarray]:
    """Per site and KPI theme: the summed intensity of its true barriers of that theme."""
    out = {k: np.zeros(len(world.site_ids)) for k in KPI_KEYWORDS}
    for b, themes in enumerate(world.barrier_kpis):
        for k in themes:
            out[k] += latent.intensity[:, b]
    return out


def _site_study_rows(world: World, latent: Latent, config: GeneratorConfig, rng: np.random.Generator) -> list[dict[str, Any]]:
    pairs = [(i, st) for i, sts in enumerate(world.site_studies) for st in sts]
    n = len(pairs)
    if not n:
        return []
    site = np.array([p[0] for p in pairs])
    load = _site_kpi_load(world, latent)
    # Contract negotiation: median 33 days, mean 54.9 -> lognormal sigma sqrt(2 ln(54.9/33)) = 1.01 [PMC4765218 table 2];
    # sites with contracting barriers take about twice as long (CTSA sites average over 100 days)
    # [J Clin Transl Sci contracts study]
    contract_days = rng.lognormal(math.log(33), 1.01, n) * (1 + np.minimum(load["contract"][site], 1.5))
    # revision rounds: one per ~25 days of negotiation, at least one: assumption anchored on the durations above
    contract_revisions = 1 + rng.poisson(contract_days / 25.0)
    # Ethics approval: median 114 days (local review 50, central 138) -> sigma 0.5 [BMC Medical Ethics 2020 21:80 table 2]
    ethics_days = rng.lognormal(math.log(114), 0.5, n) * (1 + 0.6 * np.minimum(load["ethics"][site], 1.5))
    # Start-up work after both approvals: median 21 days (assumption); new sites ~10 weeks longer (28% of sites)
    # [WCG "avoid enrollment pitfalls"]
    overhead = rng.lognormal(math.log(21), 0.5, n) + 70 * latent.new_site[site] + 30 * np.minimum(load["startup"][site], 1.5)
    activation_days = (
        np.maximum(contract_days, ethics_days) + overhead
    )  # median ~150 days; Canadian hospitals median 111 [CMAJ Open]
    # 11% of initiated sites never activate [WCG "avoid enrollment pitfalls"]
    never_active = rng.random(n) < 0.11
    # Per-site target: the study's enrollment split over its sites, else lognormal median 10 (assumption)
    target = np.empty(n)
    default_target = np.round(rng.lognormal(math.log(10), 0.6, n))
    for j, (_i, st) in enumerate(pairs):
        e = world.study_enrollment.get(st)
        k = world.study_sites.get(st, 1)
        target[j] = round(e / k) if e and k else default_target[j]
    target = np.clip(target, 1, 250)
    # Non-enrolling sites: 11% (Tufts) to about 1 in 3 (Medidata) [clinicalleader.com; appliedclinicaltrialsonline.com]:
    # 0.12 baseline, up to +0.25 for recruitment barriers -> ~20% overall
    p_zero = 0.12 + 0.25 * np.minimum(load["recruitment"][site], 1.0)
    zero = (rng.random(n) < p_zero) | never_active
    # Enrolling sites: enrolled/target lognormal median 1.05, sigma 0.5 -> ~46% of enrolling sites under target, 37% of all
    # [WCG/Tufts "Reinventing site feasibility": 37% under-enroll]; recruitment barriers cut it by up to 40%
    ratio = rng.lognormal(math.log(1.05), 0.5, n) * (1 - 0.4 * np.minimum(load["recruitment"][site], 1.0))
    enrolled = np.where(zero, 0, np.maximum(1, np.round(target * ratio)))
    # Screen failure: mean 0.30 (oncology phase III 19-26%, one centre 51%) [readbyqxmd 28993132; ecancer 1476];
    # eligibility barriers add up to +0.2
    sf = np.clip(rng.beta(3.0, 7.0, n) + 0.2 * np.minimum(load["eligibility"][site], 1.0), 0.02, 0.9)
    screened = np.where(never_active, 0, np.round(enrolled / (1 - sf)) + (zero & ~never_active) * rng.poisson(3, n))
    screen_failures = screened - enrolled
    # Data queries: ~60 per 1,000 data points [appliedclinicaltrialsonline.com "high rate autoqueries"]; 250 data points per
    # enrolled patient and 10% of queries open at any time: assumptions; data-quality barriers x2.5
    open_queries = rng.poisson(enrolled * 250 * 0.060 * 0.10 * (1 + 1.5 * np.minimum(load["queries"][site], 1.0)))
    # Feasibility surveys: median 5 per site per month [WCG "leveraging standardized data"], site load lognormal sigma 0.5,
    # over a 1-3 month feasibility window (assumption); questionnaire-fatigue barriers x2
    site_load = rng.lognormal(math.log(5), 0.5, len(world.site_ids))
    months = rng.uniform(1, 3, n)
    surveys = rng.poisson(site_load[site] * months * (1 + np.minimum(load["surveys"][site], 1.0)))
    window_start = config.end_date - timedelta(days=int(config.months * 30.44))
    selected = rng.integers(-365, max(1, config.months * 30 - 60), n)
    rows: list[dict[str, Any]] = []
    for j, (i, st) in enumerate(pairs):
        sid = world.site_ids[i]
        act_days = None if never_active[j] else round(float(activation_days[j]))
        act_date = None
        if act_days is not None:
            d = window_start + timedelta(days=int(selected[j]) + act_days)
            act_date = d.isoformat() if d <= config.end_date else None
        status = (
            None
            if (sid, st) in world.pair_status
            else ("NOT_ACTIVATED" if never_active[j] else "ACTIVE" if act_date else "PENDING")
        )
        rows.append(
            {
                "site_id": sid,
                "study_id": st,
                "status": status,
                "activation_date": act_date,
                "activation_days": act_days,
                "enrolled": int(enrolled[j]),
                "target": int(target[j]),
                "screened": int(screened[j]),
                "screen_failures": int(screen_failures[j]),
                "contract_revisions": int(contract_revisions[j]),
                "ethics_approval_days": round(float(ethics_days[j])),
                "open_queries": int(open_queries[j]),
                "surveys_received": int(surveys[j]),
            }
        )
    return rows


# --- interactions ---------------------------------------------------------------------------------------------

_OPENERS: dict[str, list[str]] = {
    "call": [
        "Call with the study coordinator.",
        "Phone call with the PI.",
        "Spoke with the research nurse by phone.",
        "Left a voicemail, coordinator called back.",
        "Quick call with the site team.",
    ],
    "email": [
        "Email from the study coordinator.",
        "Emailed the site team.",
        "Email thread with the research office.",
        "Sent a follow-up email to the PI.",
        "Reply from the site by email.",
    ],
    "visit": [
        "Monitoring visit on site.",
        "Site visit with the PI and coordinator.",
        "On-site visit today.",
        "Met the research team at the site.",
    ],
    "fax": ["Fax received from the site.", "Faxed documents to the site.", "Site sent a fax to the sponsor office."],
    "portal": [
        "Message from the site in the portal.",
        "Portal message to the coordinator.",
        "Site posted a question in the portal.",
    ],
}
_ROUTINE = [
    "Routine check-in, nothing urgent.",
    "Discussed the upcoming monitoring visit.",
    "Shared the updated study timelines.",
    "Confirmed the next data entry deadline.",
    "Coordinator asked about the next newsletter.",
    "Reviewed the visit schedule together.",
    "Walked through the updated visit guide.",
    "Confirmed shipment of study supplies.",
    "Agreed on the agenda for next month.",
]
_OBSERVE = [
    "Site reports {p}.",
    "Coordinator frustrated about {p}.",
    "{P} again, this is slowing everything down.",
    "Raised concern: {p}.",
    "PI annoyed by {p}.",
    "They mentioned {p}.",
    "Flagged {p} as a blocker.",
    "Still struggling with {p}.",
]
_APPLY = ['Proposed "{t}".', 'Went ahead with "{t}".', 'Agreed to try "{t}".', 'Set up "{t}" with the site.']
_OUTCOME_SENTENCE = {
    "resolved": ["Site confirms {p} is resolved now.", "{P} resolved after this."],
    "improved": ["Some improvement on {p}.", "{P} is easing a little."],
    "no_change": ["No change on {p} so far.", "{P} is still there."],
    "worse": ["{P} is getting worse.", "{P} has become worse, site upset."],
    "pending": ["Waiting to see if it helps with {p}.", "Will check back on {p} next week."],
}
_NEGATED = [
    "No issues with {p} this time.",
    "{P} is no longer a problem.",
    "Not seeing any {p} anymore.",
    "{P} was resolved last month.",
]
_CLOSERS = {
    "pos": [
        "Site appreciated the help.",
        "Good conversation, thanks from the team.",
        "Coordinator very responsive and positive.",
        "Great collaboration, the PI is happy.",
    ],
    "neu": ["Will follow up next week.", "Action items logged.", "Next contact planned.", ""],
    "neg": [
        "Coordinator sounded overwhelmed.",
        "Tense exchange, site unhappy with the sponsor.",
        "The PI was frustrated and short.",
        "Difficult conversation, little goodwill left.",
    ],
}
# Common misspellings (noise in notes); the tagger is not expected to see through them.
_MISSPELL = {
    "coordinator": "cordinator",
    "received": "recieved",
    "schedule": "schedual",
    "follow": "folow",
    "conversation": "converstation",
    "appreciated": "apreciated",
    "frustrated": "frustated",
    "week": "wk",
}


def _typo(phrase: str) -> str:
    """Swap two letters in the phrase's longest word (a deterministic misspelling)."""
    words = phrase.split(" ")
    j = max(range(len(words)), key=lambda k: (len(words[k]), -k))
    w = words[j]
    if len(w) >= 5:
        k = len(w) // 2
        words[j] = w[: k - 1] + w[k] + w[k - 1] + w[k + 1 :]
    return " ".join(words)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:] if text else text


@dataclass
class Draws:
    """Every random choice of every interaction, drawn up front (index j = interaction j)."""

    site: np.ndarray
    day: np.ndarray
    kind: np.ndarray  # 0 routine, 1 barrier observed/mentioned, 2 tactic applied
    barrier: np.ndarray
    tactic: np.ndarray
    outcome: np.ndarray  # index into OUTCOMES, -1 none
    channel: np.ndarray
    inbound: np.ndarray
    investigator: np.ndarray  # index into the site's list, -1 none
    study: np.ndarray
    observed: np.ndarray
    mentioned: np.ndarray
    severity: np.ndarray
    tone: np.ndarray  # 0 neg, 1 neu, 2 pos
    picks: np.ndarray  # N x 8 uniform integers for template and phrase choices
    negated_noise: np.ndarray
    noise_barrier: np.ndarray
    typo: np.ndarray
    misspell: np.ndarray
    lower: np.ndarray


def _segment_sample(ptr: np.ndarray, weights: np.ndarray, groups: np.ndarray, u: np.ndarray) -> np.ndarray:
    """For each draw i, an index into ``weights`` within segment ``groups[i]`` (CSR ``ptr``), with probability ∝ weight."""
    cum = np.zeros(len(weights))
    for g in range(len(ptr) - 1):
        a, b = ptr[g], ptr[g + 1]
        if b > a:
            c = np.cumsum(weights[a:b])
            c = c / c[-1] if c[-1] > 0 else np.linspace(1 / (b - a), 1, b - a)
            c[-1] = 1.0
            cum[a:b] = g + c
    return np.searchsorted(cum, groups + u, side="right")


def _draw_interactions(world: World, latent: Latent, config: GeneratorConfig, total: int, rng: np.random.Generator) -> Draws:
    S, B, T = len(world.site_ids), len(world.barriers), len(world.tactics)
    window = config.months * 30.44
    # Interactions per site: gamma(2)-distributed activity x friction^0.5, then an exact multinomial split (assumption)
    w = rng.gamma(2.0, 1.0, S) * np.sqrt(latent.friction)
    counts = rng.multinomial(total, w / w.sum()) if S else np.zeros(0, dtype=int)
    site = np.repeat(np.arange(S), counts)
    n = len(site)
    day = rng.uniform(0, window, n)
    order = np.lexsort((day, site))
    site, day = site[order], day[order]
    # friction over time: a per-site linear trend, clipped
    trend = np.clip(1 + latent.trend[site] * (2 * day / window - 1), 0.3, 2.0)
    p_barrier = np.clip(0.42 * latent.friction[site] * trend, 0.05, 0.85)  # share of contacts about a barrier: assumption
    u = rng.random(n)
    kind = np.where(u < p_barrier, np.where(rng.random(n) < 0.45, 2, 1), 0)
    # barrier: a true one (85%, by intensity) or the site's passing barrier of the quarter (15%)
    ptr = np.arange(0, (S + 1) * B, B)
    true_b = _segment_sample(ptr, latent.intensity.reshape(-1), site, rng.random(n)) - site * B
    quarters = math.ceil(window / 91.3) + 1
    passing = rng.integers(0, B, (S, quarters))
    transient = passing[site, (day // 91.3).astype(int)]
    barrier = np.where(rng.random(n) < 0.85, true_b, transient)
    barrier = np.where(kind > 0, barrier, -1)
    # Tactic picked by staff: 75% one of the barrier's linked tactics weighted by habit (lognormal, unrelated to success),
    # 25% any tactic (assumption)
    habit = rng.lognormal(0.0, 1.0, T)
    cand = (world.cand_depth >= 0).T  # barriers x tactics
    tptr = np.concatenate([[0], np.cumsum(cand.sum(axis=1))])
    tlist = np.concatenate([np.flatnonzero(cand[b]) for b in range(B)]) if B else np.zeros(0, int)
    tw = habit[tlist] if len(tlist) else np.zeros(0)
    has_cand: np.ndarray = np.asarray(cand.any(axis=1))
    bsafe = np.maximum(barrier, 0)
    linked = _segment_sample(tptr, tw, bsafe, rng.random(n))
    linked_t = tlist[np.minimum(linked, max(0, len(tlist) - 1))] if len(tlist) else np.zeros(n, int)
    any_t = rng.integers(0, T, n)
    use_linked = (rng.random(n) < 0.75) & has_cand[bsafe]
    tactic = np.where(kind == 2, np.where(use_linked, linked_t, any_t), -1)
    # channel: the site's preferred one 35% of the time, else the general mix (assumption)
    channel = np.where(rng.random(n) < 0.35, latent.preferred[site], rng.choice(len(CHANNELS), n, p=CHANNEL_MIX))
    # outcome
    tsafe = np.maximum(tactic, 0)
    depth = world.cand_depth[tsafe, bsafe].astype(float)
    evid = world.cand_evidence[tsafe, bsafe]
    logit = latent.success_logit(site, tsafe, np.maximum(depth, 0), evid) + 0.35 * (channel == latent.preferred[site])
    p = np.where(depth >= 0, _sigmoid(logit), 0.06)  # unlinked tactics rarely help: assumption
    success = rng.random(n) < p
    resolved_share = rng.random(n) < 0.65
    worse_share = rng.random(n) < 0.2
    outcome = np.where(success, np.where(resolved_share, 0, 1), np.where(worse_share, 3, 2))
    recent = (window - day) < 21
    outcome = np.where(recent & (rng.random(n) < 0.6), 4, outcome)
    outcome = np.where(kind == 2, outcome, -1)
    inbound = rng.random(n) < np.where(kind == 1, 0.55, 0.3)
    n_inv = np.array([len(x) for x in world.site_invs])[site] if S else np.zeros(0, int)
    n_std = np.array([len(x) for x in world.site_studies])[site] if S else np.zeros(0, int)
    investigator = np.where((n_inv > 0) & (rng.random(n) < 0.75), (rng.random(n) * np.maximum(n_inv, 1)).astype(int), -1)
    study = np.where((n_std > 0) & (rng.random(n) < 0.8), (rng.random(n) * np.maximum(n_std, 1)).astype(int), -1)
    observed = (kind == 2) | ((kind == 1) & (rng.random(n) < 0.6))
    mentioned = (kind > 0) & ((rng.random(n) < 0.85) | ~observed)
    inten = np.where(barrier >= 0, latent.intensity[site, bsafe], 0.0)
    inten = np.where(inten > 0, inten, 0.5)
    sev = np.clip(world.barrier_severity[bsafe] * (0.6 + 0.6 * inten) * rng.lognormal(0, 0.2, n), 0.05, 1.0)
    severity = np.round(sev, 2)
    # tone of the note: site mood, preferred channel, outcome, noise (assumption)
    effect = np.select([kind == 0, kind == 1, outcome <= 1, outcome == 4], [0.2, -0.5, 0.8, 0.0], -0.8)
    tone_score = latent.mood[site] + 0.5 * (channel == latent.preferred[site]) + effect + rng.normal(0, 0.5, n)
    tone = np.where(tone_score > 0.4, 2, np.where(tone_score < -0.4, 0, 1))
    return Draws(
        site=site,
        day=day,
        kind=kind,
        barrier=barrier,
        tactic=tactic,
        outcome=outcome,
        channel=channel,
        inbound=inbound,
        investigator=investigator,
        study=study,
        observed=observed,
        mentioned=mentioned,
        severity=severity,
        tone=tone,
        picks=rng.integers(0, 1 << 30, (n, 8)),
        negated_noise=(kind == 0) & (rng.random(n) < 0.12),
        noise_barrier=rng.integers(0, max(B, 1), n),
        typo=rng.random(n) < 0.04,
        misspell=rng.random(n) < 0.06,
        lower=rng.random(n) < 0.05,
    )


def _note(world: World, d: Draws, j: int) -> str:
    pk = d.picks[j]
    ch = CHANNELS[d.channel[j]]
    parts = [_OPENERS[ch][pk[0] % len(_OPENERS[ch])]]
    kind = d.kind[j]
    if kind == 0:
        parts.append(_ROUTINE[pk[1] % len(_ROUTINE)])
        if d.negated_noise[j]:
            nb = d.noise_barrier[j]
            phr = world.barrier_phrases[nb][pk[2] % len(world.barrier_phrases[nb])]
            parts.append(_NEGATED[pk[3] % len(_NEGATED)].replace("{P}", _cap(phr)).replace("{p}", phr))
    else:
        b = d.barrier[j]
        phr = world.barrier_phrases[b][pk[2] % len(world.barrier_phrases[b])]
        if d.typo[j]:
            phr = _typo(phr)
        if not d.mentioned[j]:
            phr = "the issue we discussed"
        if kind == 1:
            parts.append(_OBSERVE[pk[3] % len(_OBSERVE)].replace("{P}", _cap(phr)).replace("{p}", phr))
        else:
            t = d.tactic[j]
            tname = world.tactic_names[t][pk[4] % len(world.tactic_names[t])]
            parts.append(_APPLY[pk[5] % len(_APPLY)].replace("{t}", tname))
            sentences = _OUTCOME_SENTENCE[OUTCOMES[d.outcome[j]]]
            parts.append(sentences[pk[3] % len(sentences)].replace("{P}", _cap(phr)).replace("{p}", phr))
    closers = _CLOSERS[("neg", "neu", "pos")[d.tone[j]]]
    parts.append(closers[pk[6] % len(closers)])
    text = " ".join(p for p in parts if p)
    if d.misspell[j]:
        word = list(_MISSPELL)[pk[7] % len(_MISSPELL)]
        text = text.replace(word, _MISSPELL[word], 1)
    if d.lower[j]:
        text = text.lower()
    return text.strip()


# --- output -------------------------------------------------------------------------------------------------------


class _CsvSink:
    """Streams rows of the documented CSV files (columns in the format's order)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._files: dict[str, tuple[TextIO, Any, list[str]]] = {}

    def _writer(self, name: str) -> tuple[Any, list[str]]:
        if name not in self._files:
            f = (self.folder / name).open("w", newline="", encoding="utf-8")
            columns = list(FILES_BY_NAME[name].model.model_fields)
            w = csv.writer(f)
            w.writerow(columns)
            self._files[name] = (f, w, columns)
        _, w, columns = self._files[name]
        return w, columns

    def rows(self, name: str, rows: list[dict[str, Any]]) -> None:
        w, columns = self._writer(name)
        w.writerows([_cell(row.get(c)) for c in columns] for row in rows)

    def cells(self, name: str, rows: list[list[str]]) -> None:
        """Rows already as cells in the file's column order."""
        w, _ = self._writer(name)
        w.writerows(rows)

    def close(self) -> list[str]:
        names = []
        for name, (f, _, _) in self._files.items():
            f.close()
            names.append(str(self.folder / name))
        return names


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):
        return "|".join(str(v) for v in value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _batch_from_rows(files: dict[str, list[dict[str, Any]]]) -> GraphBatch:
    """The batch the CSV loader would build from these rows (so ``--out`` + ``load`` equals the direct write)."""
    batch = GraphBatch()
    for spec in FILES_BY_NAME.values():
        rows = files.get(spec.name)
        if not rows:
            continue
        for row in rows:
            spec.add(batch, spec.model.model_validate({k: _cell(v) for k, v in row.items()}))
    return batch


def _site_study_batch(rows: list[dict[str, Any]]) -> GraphBatch:
    """PARTICIPATES_IN facts as the CSV loader stores them (blank cells set nothing)."""
    batch = GraphBatch()
    for row in rows:
        props = {k: v for k, v in row.items() if k not in ("site_id", "study_id") and v is not None}
        batch.add_rel("PARTICIPATES_IN", "Site", row["site_id"], "Study", row["study_id"], props)
    return batch


def _stage(progress: ProgressFn | None, stage: str, advance: int, total: int) -> None:
    if progress:
        progress(stage, advance, total)


def generate(
    store: GraphStore,
    config: GeneratorConfig,
    *,
    out: Path | None = None,
    truth: Path | None = None,
    progress: ProgressFn | None = None,
) -> GenerateReport:
    """Generate the history for the store's sites (and synthesised ones), write it, and return what was made."""
    started = time.perf_counter()
    _check_format()
    preset = config.preset()
    if config.chunk_size < 1:
        raise UsageError("chunk size must be at least 1")
    snapshot = get_snapshot(store)
    world = read_world(snapshot, config)
    seq = np.random.SeedSequence(config.seed)
    rng_world, rng_latent, rng_kpi, rng_ix = (np.random.default_rng(s) for s in seq.spawn(4))
    countries = sorted({c for c in world.site_country if c} | {c[2] for c in _CITIES})
    home_cluster = {c: int(k) for c, k in zip(countries, rng_world.integers(0, config.clusters, len(countries)), strict=True)}
    n_synth = config.synthesize_sites if config.synthesize_sites is not None else preset.synthesize_sites
    if n_synth:
        world.synthetic = _synthesize(world, config, n_synth, rng_world, home_cluster)
    if not world.site_ids:
        raise UsageError("no sites to generate for: load sites first, or ask for synthetic ones with --synthesize-sites N")
    report = GenerateReport(seed=config.seed, sites=len(world.site_ids))
    hint = world.synthetic.site_cluster_hint if world.synthetic else {}
    latent = _draw_latent(world, config, rng_latent, hint, home_cluster)
    per_site = config.per_site if config.per_site is not None else preset.per_site
    total = config.interactions if config.interactions is not None else round(per_site * len(world.site_ids))
    sink = _CsvSink(out) if out is not None else None
    index = build_barrier_index(world.barrier_nodes)
    if config.write_store:
        store.ensure_schema()

    # 1. synthesised entities
    if world.synthetic:
        syn = world.synthetic
        report.synthetic_sites = len(syn.site_ids)
        report.synthetic_investigators = syn.investigator_count
        report.synthetic_studies = syn.study_count
        n_rows = sum(len(v) for v in syn.files.values())
        if sink:
            for name, rows in syn.files.items():
                sink.rows(name, rows)
        if config.write_store:
            store.write(_batch_from_rows(syn.files))
        _stage(progress, "synthesising sites, investigators, studies", n_rows, n_rows)

    # 2. per-site study facts
    kpi_rows = _site_study_rows(world, latent, config, rng_kpi)
    report.site_studies = len(kpi_rows)
    for i in range(0, len(kpi_rows), config.chunk_size):
        chunk = kpi_rows[i : i + config.chunk_size]
        if sink:
            sink.rows("site_studies.csv", chunk)
        if config.write_store:
            store.write(_site_study_batch(chunk))
        _stage(progress, "per-site study facts", len(chunk), len(kpi_rows))

    # 3. interactions
    d = _draw_interactions(world, latent, config, total, rng_ix)
    n = len(d.site)
    window_start = datetime.combine(config.end_date, datetime.min.time(), tzinfo=UTC) - timedelta(
        days=round(config.months * 30.44)
    )
    seconds = np.floor(d.day * 86400).astype(np.int64)
    memo: dict[str, tuple[float, list[tuple[str, float]]]] = {}
    for lo in range(0, n, config.chunk_size):
        hi = min(n, lo + config.chunk_size)
        ix_rows, bar_rows, batch = _interaction_chunk(world, d, lo, hi, config, window_start, seconds, index, report, memo)
        if sink:
            sink.cells("interactions.csv", ix_rows)
            sink.cells("interaction_barriers.csv", bar_rows)
        if config.write_store:
            store.write(batch)
        _stage(progress, "interactions", hi - lo, n)
    report.interactions = n
    if sink:
        report.files = sink.close()
    if truth is not None:
        doc = truth_document(world, latent, config)
        truth.parent.mkdir(parents=True, exist_ok=True)
        truth.write_text(json.dumps(doc, indent=1, sort_keys=True), encoding="utf-8")
        report.truth = str(truth)
    report.seconds = time.perf_counter() - started
    log.info("generated %d interactions for %d sites in %.1fs", n, report.sites, report.seconds)
    return report


_IX_COLUMNS = [
    "id",
    "site_id",
    "investigator_id",
    "study_id",
    "channel",
    "direction",
    "occurred_at",
    "note",
    "tactic_id",
    "outcome",
    "sentiment",
]
_IB_COLUMNS = ["interaction_id", "barrier_id", "source", "severity", "confidence"]


def _check_format() -> None:
    """The interaction rows are written as cells in this order; fail loudly if the CSV format changed."""
    for name, cols in (("interactions.csv", _IX_COLUMNS), ("interaction_barriers.csv", _IB_COLUMNS)):
        if list(FILES_BY_NAME[name].model.model_fields) != cols:
            raise RuntimeError(f"the columns of {name} changed; update sitegraph.loaders.generate")


def _interaction_chunk(
    world: World,
    d: Draws,
    lo: int,
    hi: int,
    config: GeneratorConfig,
    window_start: datetime,
    seconds: np.ndarray,
    index: BarrierIndex,
    report: GenerateReport,
    memo: dict[str, tuple[float, list[tuple[str, float]]]],
) -> tuple[list[list[str]], list[list[str]], GraphBatch]:
    """Rows of interactions.csv and interaction_barriers.csv (as cells, in column order) and the batch of interactions lo..hi."""
    ix_rows: list[list[str]] = []
    bar_rows: list[list[str]] = []
    batch = GraphBatch()
    build = config.write_store
    width = max(7, len(str(len(d.site))))
    base = np.datetime64(window_start.replace(tzinfo=None), "s")
    stamps = np.datetime_as_string(base + seconds[lo:hi].astype("timedelta64[s]"), unit="s")
    for j in range(lo, hi):
        s = int(d.site[j])
        sid = world.site_ids[s]
        iid = f"ix-{config.seed}-{j:0{width}d}"
        note = _note(world, d, j)
        scored = memo.get(note)
        if scored is None:
            scored = (sentiment(note), sorted(note_tags(note, index).items()))
            if len(memo) > 500_000:
                memo.clear()
            memo[note] = scored
        senti, tags = scored
        occurred = f"{stamps[j - lo]}+00:00"
        inv = world.site_invs[s][d.investigator[j]] if d.investigator[j] >= 0 else None
        std = world.site_studies[s][d.study[j]] if d.study[j] >= 0 else None
        tac = world.tactics[d.tactic[j]] if d.tactic[j] >= 0 else None
        outcome = OUTCOMES[d.outcome[j]] if d.outcome[j] >= 0 else None
        channel = CHANNELS[d.channel[j]]
        direction = "inbound" if d.inbound[j] else "outbound"
        # cells in the order of _IX_COLUMNS
        ix_rows.append([iid, sid, inv or "", std or "", channel, direction, occurred, note, tac or "", outcome or "", str(senti)])
        if build:
            props: dict[str, Any] = {
                "channel": channel,
                "direction": direction,
                "occurred_at": occurred,
                "note": note,
                "sentiment": senti,
            }
            if outcome:
                props["outcome"] = outcome
            batch.add_node("Interaction", iid, props)
            batch.add_rel("WITH_SITE", "Interaction", iid, "Site", sid)
            if inv:
                batch.add_rel("WITH_INVESTIGATOR", "Interaction", iid, "Investigator", inv)
            if std:
                batch.add_rel("ABOUT_STUDY", "Interaction", iid, "Study", std)
            if tac:
                batch.add_rel("APPLIED", "Interaction", iid, "Tactic", tac, {"outcome": outcome})
        if tac:
            report.applications += 1
        observed_iri = None
        if d.observed[j]:
            observed_iri = world.barriers[d.barrier[j]]
            sev = float(d.severity[j])
            # columns of interaction_barriers.csv: interaction_id, barrier_id, source, severity, confidence
            bar_rows.append([iid, observed_iri, "observed", str(sev), ""])
            if build:
                batch.add_rel("CONCERNS", "Interaction", iid, "Barrier", observed_iri, {"source": "observed", "severity": sev})
            report.observations += 1
        for iri, conf in tags:
            if iri == observed_iri:
                continue
            bar_rows.append([iid, iri, "tagged", "", str(conf)])
            if build:
                batch.add_rel("CONCERNS", "Interaction", iid, "Barrier", iri, {"source": "tagged", "confidence": conf})
            report.tags += 1
    return ix_rows, bar_rows, batch


def iter_truth_sites(doc: dict[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    """(site id, truth) pairs of a truth document, in id order."""
    for sid in sorted(doc.get("sites", {})):
        yield sid, doc["sites"][sid]
