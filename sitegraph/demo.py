"""The demo graph: real ClinicalTrials.gov sites, the ontology, a seeded engagement history, centrality.

:func:`build_demo` is what ``sitegraph demo`` runs, and what tests use to get the same graph on
either store. Every step is idempotent, so running it twice changes nothing.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from sitegraph.errors import InvalidInputError
from sitegraph.graph.store import GraphStore

log = logging.getLogger(__name__)

DEMO_SEED = 42
StepFn = Callable[[str], None]


@dataclass
class DemoReport:
    studies: int = 0
    files: int = 0
    interactions: int = 0
    analyzed_nodes: int = 0
    example_site: str | None = None
    steps: list[str] = field(default_factory=list)


def build_demo(
    store: GraphStore,
    *,
    seed: int = DEMO_SEED,
    ctgov_paths: list[Path] | None = None,
    analyze: bool = True,
    on_step: StepFn | None = None,
) -> DemoReport:
    """Load the bundled demo records, sync the ontology, generate engagement data, compute centrality."""
    from sitegraph.graph.analyze import analyze as run_analyze
    from sitegraph.loaders.ctgov import DEMO_CTGOV_DIR, read_ctgov
    from sitegraph.loaders.generate import GeneratorConfig, generate
    from sitegraph.ontology import load_ontology, sync

    report = DemoReport()

    def step(text: str) -> None:
        report.steps.append(text)
        log.info("%s", text)
        if on_step:
            on_step(text)

    store.ensure_schema()
    paths = ctgov_paths or [DEMO_CTGOV_DIR]
    res = read_ctgov(paths, existing_sites=list(store.iter_nodes("Site")))
    if res.problems:
        raise InvalidInputError(res.problems, summary="the demo records did not load")
    store.write(res.batch)
    report.studies, report.files = res.studies, res.files
    step(f"loaded {res.studies} ClinicalTrials.gov studies from {res.files} file(s)")

    sync_report = sync(store, load_ontology())
    created = sum(len(v) for v in sync_report.created.values())
    step(f"synced the barrier–tactic ontology ({created} concept(s) created, changed: {sync_report.changed})")

    if store.stats().nodes["Interaction"] == 0:
        gen = generate(store, GeneratorConfig(seed=seed, scale="demo"))
        report.interactions = gen.interactions
        step(f"generated {gen.interactions} interactions for {gen.sites} sites (seed {seed})")
    else:
        step("engagement history already present: not generated again")

    if analyze:
        ar = run_analyze(store)
        report.analyzed_nodes = ar.nodes_written
        step(f"computed centrality for {ar.nodes_written} nodes")
    report.example_site = busiest_site(store)
    return report


def busiest_site(store: GraphStore) -> str | None:
    """The site in the most studies (ties by id): a good first site to look at."""
    counts: dict[str, int] = {}
    for rel in store.iter_relationships("PARTICIPATES_IN"):
        counts[rel.start] = counts.get(rel.start, 0) + 1
    if not counts:
        return None
    return min(counts, key=lambda k: (-counts[k], k))
