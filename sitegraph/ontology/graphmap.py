"""How concepts and links become graph nodes and relationships, and back into RDF.

A concept becomes a ``Barrier`` node (categories and barriers) or a ``Tactic`` node (tactic groups
and tactics) keyed by IRI, with one property per field of :mod:`sitegraph.ontology.fields` (lists for
many-valued ones) plus ``kind`` and the derived ``category`` and ``effort_rank``. ``skos:broader`` becomes
``BROADER`` relationships; a ``sg:Mitigation`` becomes a ``MITIGATES`` relationship (Tactic→Barrier)
carrying the link's IRI and evidence. :func:`node_triples` and :func:`rel_triples` are the inverse.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from typing import Any

from rdflib import URIRef
from rdflib.namespace import RDF, SKOS
from rdflib.term import Node

from sitegraph.graph.store import Props
from sitegraph.ontology.fields import (
    BARRIER_FIELDS,
    CONCEPT_FIELDS,
    LINK_FIELDS,
    RELATIONSHIP_FIELDS,
    TACTIC_FIELDS,
    FieldSpec,
    field_triples,
)
from sitegraph.ontology.loader import CLASS_OF_KIND, compact_id
from sitegraph.ontology.model import BARRIER_KINDS, Barrier, Concept, ConceptKind, MitigationLink, Ontology, Tactic
from sitegraph.ontology.namespaces import BARRIER, BARRIER_SCHEME, MITIGATION, SG, TACTIC, TACTIC_SCHEME

Triple = tuple[Node, Node, Node]

BARRIER_LABEL = "Barrier"
TACTIC_LABEL = "Tactic"
BROADER = "BROADER"
MITIGATES = "MITIGATES"
CONCERNS = "CONCERNS"
APPLIED = "APPLIED"

_NODE_FIELDS = tuple(f for f in CONCEPT_FIELDS + BARRIER_FIELDS + TACTIC_FIELDS if f.name not in RELATIONSHIP_FIELDS)
DERIVED_NODE_PROPS = ("id", "kind", "category", "effort_rank", "rdf_types", "removed_from_ontology")
MANAGED_NODE_PROPS = frozenset(f.name for f in _NODE_FIELDS) | frozenset(DERIVED_NODE_PROPS)
"""Node properties sync owns: it sets them from the files and removes them when the files drop them."""
MANAGED_REL_PROPS = frozenset({"iri", "rdf_types"} | {f.name for f in LINK_FIELDS})


def node_label(concept: Concept) -> str:
    """The graph label of a concept: ``Barrier`` for the barrier scheme, ``Tactic`` for the tactic scheme."""
    return BARRIER_LABEL if concept.kind in BARRIER_KINDS else TACTIC_LABEL


def _value(spec: FieldSpec, value: Any) -> Any:
    if spec.many:
        return list(value) if value else None
    if spec.kind == "boolean":
        return bool(value)
    return value


def concept_props(concept: Concept, onto: Ontology) -> Props:
    """The node properties of a concept (``None`` for what it does not have, so sync can remove it)."""
    specs = CONCEPT_FIELDS + (
        BARRIER_FIELDS if isinstance(concept, Barrier) else TACTIC_FIELDS if isinstance(concept, Tactic) else ()
    )
    props: Props = {
        spec.name: _value(spec, getattr(concept, spec.name)) for spec in specs if spec.name not in RELATIONSHIP_FIELDS
    }
    category = onto.concepts().get(concept.category or "")
    effort = onto.efforts.get(concept.effort) if isinstance(concept, Tactic) and concept.effort else None
    props.update(
        id=concept.id,
        kind=concept.kind,
        category=category.id if category is not None else None,
        effort_rank=effort.rank if effort is not None else None,
        rdf_types=list(concept.extra_types) or None,
        removed_from_ontology=None,
    )
    return props


def link_props(link: MitigationLink) -> Props:
    """The properties of the ``MITIGATES`` relationship of a link."""
    props: Props = {spec.name: getattr(link, spec.name) for spec in LINK_FIELDS}
    props.update(iri=link.iri, rdf_types=list(link.extra_types) or None)
    return props


# --- back to RDF ---------------------------------------------------------------------------------
_KIND_SPECS: dict[str, tuple[FieldSpec, ...]] = {
    "category": (),
    "barrier": BARRIER_FIELDS,
    "group": (),
    "tactic": TACTIC_FIELDS,
}


def node_triples(props: Mapping[str, Any]) -> Iterator[Triple]:
    """The RDF of one Barrier or Tactic node (its ``BROADER`` relationships are separate)."""
    subject = URIRef(str(props["iri"]))
    kind: ConceptKind = props.get("kind") or "barrier"
    yield subject, RDF.type, CLASS_OF_KIND[kind]
    yield subject, RDF.type, SKOS.Concept
    for extra in props.get("rdf_types") or ():
        yield subject, RDF.type, URIRef(extra)
    scheme = BARRIER_SCHEME if kind in BARRIER_KINDS else TACTIC_SCHEME
    yield subject, SKOS.inScheme, scheme
    if kind in ("category", "group"):
        yield subject, SKOS.topConceptOf, scheme
    specs = tuple(f for f in CONCEPT_FIELDS if f.name not in RELATIONSHIP_FIELDS) + _KIND_SPECS[kind]
    yield from field_triples(subject, props, specs)


def broader_triple(start: str, end: str) -> Triple:
    return URIRef(start), SKOS.broader, URIRef(end)


def link_iri(tactic: str, barrier: str) -> str:
    """The IRI a link gets by convention: ``mitigation/<tactic-id>--<barrier-id>``."""
    return f"{MITIGATION}{compact_id(tactic, str(TACTIC))}--{compact_id(barrier, str(BARRIER))}"


def mitigation_triples(tactic: str, barrier: str, props: Mapping[str, Any]) -> Iterator[Triple]:
    """The RDF of one ``MITIGATES`` relationship: a ``sg:Mitigation`` resource with its evidence."""
    subject = URIRef(str(props.get("iri") or link_iri(tactic, barrier)))
    yield subject, RDF.type, SG.Mitigation
    for extra in props.get("rdf_types") or ():
        yield subject, RDF.type, URIRef(extra)
    yield subject, SG.tactic, URIRef(tactic)
    yield subject, SG.barrier, URIRef(barrier)
    yield from field_triples(subject, props, LINK_FIELDS)
