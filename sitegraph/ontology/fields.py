"""One table of what each field of a concept or a mitigation link means in RDF.

The loader reads RDF into the model with it, sync writes the model's fields as graph properties
under the same names, and export turns those properties back into the same triples. Because the
SHACL shapes are closed (a concept may carry only the predicates listed here, plus ``rdf:type``),
everything a valid file says about a concept or a link survives the trip through the graph.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation
from typing import Any
from typing import Literal as TypingLiteral

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import DCTERMS, OWL, SKOS, XSD
from rdflib.term import Node

from sitegraph.ontology.namespaces import CHANNEL, EFFORT, EVIDENCE, ROLE, SG, local_id

log = logging.getLogger(__name__)

ValueKind = TypingLiteral["text", "string", "iri", "term", "decimal", "boolean"]
"""``text``: an English language-tagged literal; ``string``: a plain literal; ``iri``: any IRI, kept
as a string; ``term``: an IRI of a controlled list kept as its compact id; ``decimal``: an
``xsd:decimal`` kept as a float; ``boolean``: an ``xsd:boolean``."""

LANG = "en"


@dataclass(frozen=True)
class FieldSpec:
    """A model attribute / graph property and the RDF predicate it stands for."""

    name: str
    predicate: URIRef
    kind: ValueKind
    many: bool = False
    namespace: str | None = None

    def to_python(self, node: Node) -> Any:
        """The model value of one RDF object (None when it cannot be read as this kind)."""
        if self.kind in ("iri", "term"):
            if not isinstance(node, URIRef):
                return None
            return local_id(str(node), self.namespace) if self.kind == "term" and self.namespace else str(node)
        if not isinstance(node, Literal):
            return None
        if self.kind == "decimal":
            try:
                return float(Decimal(str(node)))
            except (InvalidOperation, ValueError):
                return None
        if self.kind == "boolean":
            return str(node).strip().lower() in ("true", "1")
        return str(node)

    def to_rdf(self, value: Any) -> Node:
        """The RDF object for one model value (the inverse of :meth:`to_python` on valid input)."""
        if self.kind == "iri":
            return URIRef(str(value))
        if self.kind == "term":
            text = str(value)
            return URIRef(text if "://" in text or not self.namespace else self.namespace + text)
        if self.kind == "text":
            return Literal(str(value), lang=LANG)
        if self.kind == "decimal":
            return decimal_literal(float(value))
        if self.kind == "boolean":
            return Literal(bool(value))
        return Literal(str(value))


def decimal_literal(value: float) -> Literal:
    """An ``xsd:decimal`` literal in canonical form (``0.8``, ``1.0``)."""
    return Literal(repr(float(value)), datatype=XSD.decimal)


CONCEPT_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("label", SKOS.prefLabel, "text"),
    FieldSpec("alt_labels", SKOS.altLabel, "text", many=True),
    FieldSpec("hidden_labels", SKOS.hiddenLabel, "text", many=True),
    FieldSpec("definition", SKOS.definition, "text"),
    FieldSpec("scope_note", SKOS.scopeNote, "text"),
    FieldSpec("examples", SKOS.example, "text", many=True),
    FieldSpec("broader", SKOS.broader, "iri", many=True),
    FieldSpec("deprecated", OWL.deprecated, "boolean"),
    FieldSpec("replaced_by", DCTERMS.isReplacedBy, "iri"),
    FieldSpec("sources", DCTERMS.source, "iri", many=True),
    FieldSpec("citations", DCTERMS.bibliographicCitation, "string", many=True),
    FieldSpec("exact_match", SKOS.exactMatch, "iri", many=True),
    FieldSpec("close_match", SKOS.closeMatch, "iri", many=True),
    FieldSpec("related_match", SKOS.relatedMatch, "iri", many=True),
    FieldSpec("relations", DCTERMS.relation, "string", many=True),
)

BARRIER_FIELDS: tuple[FieldSpec, ...] = (FieldSpec("severity", SG.severityWeight, "decimal"),)

TACTIC_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("role", SG.performedBy, "term", namespace=str(ROLE)),
    FieldSpec("channel", SG.channel, "term", namespace=str(CHANNEL)),
    FieldSpec("effort", SG.effort, "term", namespace=str(EFFORT)),
)

LINK_ENDPOINTS: tuple[FieldSpec, ...] = (
    FieldSpec("tactic", SG.tactic, "iri"),
    FieldSpec("barrier", SG.barrier, "iri"),
)

LINK_FIELDS: tuple[FieldSpec, ...] = (
    FieldSpec("evidence_level", SG.evidenceLevel, "term", namespace=str(EVIDENCE)),
    FieldSpec("source", DCTERMS.source, "iri"),
    FieldSpec("citation", DCTERMS.bibliographicCitation, "string"),
    FieldSpec("effect", SG.effect, "string"),
    FieldSpec("certainty", SG.certainty, "string"),
    FieldSpec("note", SKOS.note, "text"),
)

# Fields kept as relationships in the graph rather than as node properties.
RELATIONSHIP_FIELDS = frozenset({"broader"})


def read_fields(graph: Graph, subject: URIRef, specs: tuple[FieldSpec, ...]) -> dict[str, Any]:
    """The values of the fields on one subject: sorted tuples for many-valued fields, else one value or None."""
    out: dict[str, Any] = {}
    for spec in specs:
        values = [v for v in (spec.to_python(o) for o in graph.objects(subject, spec.predicate)) if v is not None]
        values = sorted(set(values), key=str)
        if spec.many:
            out[spec.name] = tuple(values)
        else:
            if len(values) > 1:
                log.debug("%s has %d values for %s; the shapes allow one", subject, len(values), spec.predicate)
            out[spec.name] = values[0] if values else None
    return out


def field_triples(subject: URIRef, values: Mapping[str, Any], specs: tuple[FieldSpec, ...]) -> Iterator[tuple[Node, Node, Node]]:
    """The triples that say ``values`` (model values or graph properties) about ``subject``."""
    for spec in specs:
        value = values.get(spec.name)
        if value is None or value == () or value == []:
            continue
        if spec.kind == "boolean" and value is False:
            continue  # owl:deprecated false is the default and is not written
        items = list(value) if spec.many and isinstance(value, (list, tuple)) else [value]
        for item in items:
            yield subject, spec.predicate, spec.to_rdf(item)
