"""The parsed ontology: concepts, mitigation links and the controlled lists they use.

Everything is a frozen dataclass keyed by IRI. ``id`` is the compact local name
(``stalled-ethics-approval``); ``broader``, ``category``, ``tactic`` and ``barrier`` hold IRIs;
``role``, ``channel``, ``effort`` and ``evidence_level`` hold compact ids of controlled-list terms.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any
from typing import Literal as TypingLiteral

from rdflib import Graph, URIRef
from rdflib.namespace import RDF

ConceptKind = TypingLiteral["category", "barrier", "group", "tactic"]
BARRIER_KINDS: tuple[ConceptKind, ...] = ("category", "barrier")
TACTIC_KINDS: tuple[ConceptKind, ...] = ("group", "tactic")


@dataclass(frozen=True, kw_only=True)
class Concept:
    """A SKOS concept of the barrier or the tactic scheme."""

    iri: str
    id: str
    kind: ConceptKind
    label: str | None = None
    alt_labels: tuple[str, ...] = ()
    hidden_labels: tuple[str, ...] = ()
    definition: str | None = None
    scope_note: str | None = None
    examples: tuple[str, ...] = ()
    broader: tuple[str, ...] = ()
    category: str | None = None
    deprecated: bool = False
    replaced_by: str | None = None
    sources: tuple[str, ...] = ()
    citations: tuple[str, ...] = ()
    exact_match: tuple[str, ...] = ()
    close_match: tuple[str, ...] = ()
    related_match: tuple[str, ...] = ()
    relations: tuple[str, ...] = ()
    extra_types: tuple[str, ...] = ()
    file: str | None = None

    @property
    def scheme(self) -> TypingLiteral["barriers", "tactics"]:
        return "barriers" if self.kind in BARRIER_KINDS else "tactics"

    @property
    def labels(self) -> tuple[str, ...]:
        """Every label that names the concept: prefLabel first, then altLabels and hiddenLabels."""
        return ((self.label,) if self.label else ()) + self.alt_labels + self.hidden_labels


@dataclass(frozen=True, kw_only=True)
class Category(Concept):
    """A top-level barrier category (a top concept of the barrier scheme)."""


@dataclass(frozen=True, kw_only=True)
class Barrier(Concept):
    """A friction a site faces. ``severity`` (0–1) ranks how much it usually costs a study."""

    severity: float | None = None


@dataclass(frozen=True, kw_only=True)
class TacticGroup(Concept):
    """A top-level group of tactics (a top concept of the tactic scheme)."""


@dataclass(frozen=True, kw_only=True)
class Tactic(Concept):
    """An action that resolves barriers, carried out by ``role`` over ``channel`` at ``effort``."""

    role: str | None = None
    channel: str | None = None
    effort: str | None = None


@dataclass(frozen=True, kw_only=True)
class MitigationLink:
    """``tactic`` mitigates ``barrier``, with the evidence for it."""

    iri: str
    id: str
    tactic: str | None = None
    barrier: str | None = None
    evidence_level: str | None = None
    source: str | None = None
    citation: str | None = None
    effect: str | None = None
    certainty: str | None = None
    note: str | None = None
    extra_types: tuple[str, ...] = ()
    file: str | None = None


@dataclass(frozen=True, kw_only=True)
class Term:
    """A value of a controlled list: a role, a channel, an effort level or an evidence level."""

    iri: str
    id: str
    label: str | None = None
    definition: str | None = None
    rank: int | None = None
    exact_match: tuple[str, ...] = ()
    close_match: tuple[str, ...] = ()


@dataclass
class Ontology:
    """The whole ontology as read from its files.

    ``graph`` is the union of every file but the SHACL shapes (kept apart in ``shapes``); the dicts are keyed by IRI
    except the controlled lists (``roles`` ...), keyed by compact id.
    """

    graph: Graph
    shapes: Graph = field(default_factory=Graph)
    files: tuple[str, ...] = ()
    vocabulary_files: tuple[str, ...] = ()
    categories: dict[str, Category] = field(default_factory=dict)
    barriers: dict[str, Barrier] = field(default_factory=dict)
    groups: dict[str, TacticGroup] = field(default_factory=dict)
    tactics: dict[str, Tactic] = field(default_factory=dict)
    links: dict[str, MitigationLink] = field(default_factory=dict)
    roles: dict[str, Term] = field(default_factory=dict)
    channels: dict[str, Term] = field(default_factory=dict)
    efforts: dict[str, Term] = field(default_factory=dict)
    evidence_levels: dict[str, Term] = field(default_factory=dict)
    subject_files: dict[str, str] = field(default_factory=dict)
    content_subjects: frozenset[str] = frozenset()
    blank_subject_files: tuple[str, ...] = ()
    validation: Any = field(default=None, repr=False, compare=False)
    """The cached :class:`~sitegraph.ontology.report.ValidationReport` (set by ``validate_ontology``)."""

    # --- lookups -------------------------------------------------------------------------------
    def concepts(self) -> dict[str, Concept]:
        """Every concept of both schemes, keyed by IRI."""
        out: dict[str, Concept] = {}
        out.update(self.categories)
        out.update(self.barriers)
        out.update(self.groups)
        out.update(self.tactics)
        return out

    def concept(self, ref: str) -> Concept | None:
        """A concept by IRI or by compact id (ids are unique within a scheme; barriers win a tie)."""
        concepts = self.concepts()
        if ref in concepts:
            return concepts[ref]
        for c in concepts.values():
            if c.id == ref:
                return c
        return None

    def ancestors(self, iri: str) -> list[str]:
        """Every concept above ``iri`` through ``broader``, nearest first; safe on cycles."""
        concepts = self.concepts()
        seen: set[str] = {iri}
        order: list[str] = []
        queue = deque(concepts[iri].broader if iri in concepts else ())
        while queue:
            up = queue.popleft()
            if up in seen:
                continue
            seen.add(up)
            order.append(up)
            if up in concepts:
                queue.extend(concepts[up].broader)
        return order

    def narrower(self, iri: str) -> list[str]:
        """The concepts whose ``broader`` names ``iri`` directly."""
        return sorted(c.iri for c in self.concepts().values() if iri in c.broader)

    def links_for_tactic(self, tactic_iri: str) -> list[MitigationLink]:
        return sorted((lk for lk in self.links.values() if lk.tactic == tactic_iri), key=lambda lk: lk.iri)

    def links_for_barrier(self, barrier_iri: str, *, inherited: bool = True) -> list[tuple[MitigationLink, int]]:
        """Links that mitigate the barrier, with the ``broader`` distance they come from (0 = the barrier itself).

        With ``inherited``, tactics for a broader barrier apply to the narrower one too (a tactic for
        "slow patient recruitment" is a candidate for "screen failures on eligibility criteria").
        """
        targets = [barrier_iri] + (self.ancestors(barrier_iri) if inherited else [])
        out: list[tuple[MitigationLink, int]] = []
        for distance, target in enumerate(targets):
            out += [(lk, distance) for lk in sorted(self.links.values(), key=lambda lk: lk.iri) if lk.barrier == target]
        return out

    # --- RDF views -----------------------------------------------------------------------------
    def content_subjects_all(self) -> Iterator[str]:
        yield from self.concepts()
        yield from self.links

    def content_graph(self) -> Graph:
        """The triples about concepts and mitigation links: the part of the ontology the graph holds."""
        g = Graph()
        subjects = {URIRef(s) for s in self.content_subjects_all()}
        for s in subjects:
            for p, o in self.graph.predicate_objects(s):
                g.add((s, p, o))
        for prefix, ns in self.graph.namespaces():
            g.bind(prefix, ns)
        return g

    def counts(self) -> dict[str, int]:
        """How many categories, barriers, groups, tactics, links and labels the ontology holds."""
        barrier_like = list(self.categories.values()) + list(self.barriers.values())
        return {
            "categories": len(self.categories),
            "barriers": len(self.barriers),
            "tactic_groups": len(self.groups),
            "tactics": len(self.tactics),
            "links": len(self.links),
            "barrier_alt_labels": sum(len(c.alt_labels) + len(c.hidden_labels) for c in barrier_like),
            "alt_labels": sum(len(c.alt_labels) + len(c.hidden_labels) for c in self.concepts().values()),
            "deprecated": sum(1 for c in self.concepts().values() if c.deprecated),
        }


def types_of(graph: Graph, subject: URIRef) -> set[str]:
    return {str(t) for t in graph.objects(subject, RDF.type)}
