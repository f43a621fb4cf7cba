"""Export the ontology part of the graph back to RDF (Turtle or JSON-LD).

The export holds every Barrier and Tactic node and every BROADER and MITIGATES relationship, mapped
back to the triples they came from (:mod:`sitegraph.ontology.graphmap`). After a sync of a valid
ontology it is isomorphic to the ontology's content graph (:meth:`Ontology.content_graph`: every
triple about a concept or a mitigation link); the vocabulary (``core.ttl``) and the shapes are not
graph data and are added only with ``with_vocabulary``.
"""

from __future__ import annotations

import contextlib
import json
import logging
from typing import Literal as TypingLiteral

from rdflib import Graph, Literal
from rdflib.compare import isomorphic
from rdflib.namespace import XSD

from sitegraph.errors import UsageError
from sitegraph.graph.store import GraphStore
from sitegraph.ontology.fields import decimal_literal
from sitegraph.ontology.files import packaged_sources
from sitegraph.ontology.graphmap import (
    BARRIER_LABEL,
    BROADER,
    MITIGATES,
    TACTIC_LABEL,
    broader_triple,
    mitigation_triples,
    node_triples,
)
from sitegraph.ontology.namespaces import PREFIXES, bind_prefixes

log = logging.getLogger(__name__)

Format = TypingLiteral["turtle", "json-ld"]
FORMATS: tuple[str, ...] = ("turtle", "json-ld")


def export_graph(store: GraphStore, *, with_vocabulary: bool = False) -> Graph:
    """The ontology part of the store as an rdflib graph."""
    g = bind_prefixes(Graph())
    for label in (BARRIER_LABEL, TACTIC_LABEL):
        for props in store.iter_nodes(label):
            for triple in node_triples(props):
                g.add(triple)
    for rel in store.iter_relationships(BROADER):
        g.add(broader_triple(rel.start, rel.end))
    for rel in store.iter_relationships(MITIGATES):
        for triple in mitigation_triples(rel.start, rel.end, rel.props):
            g.add(triple)
    if with_vocabulary:
        for source in packaged_sources(only=("core.ttl",)):
            g.parse(data=source.text, format="turtle")
    log.debug("exported %d triples", len(g))
    return g


def serialize(graph: Graph, fmt: str = "turtle") -> str:
    """Turtle or compact JSON-LD (with the ontology's prefixes as its context)."""
    if fmt == "turtle":
        return graph.serialize(format="turtle")
    if fmt == "json-ld":
        context = {prefix: str(ns) for prefix, ns in PREFIXES.items()}
        return json.dumps(json.loads(graph.serialize(format="json-ld", context=context)), indent=2, ensure_ascii=False) + "\n"
    raise UsageError(f"unknown export format {fmt!r}: use {' or '.join(FORMATS)}")


def export(store: GraphStore, fmt: str = "turtle", *, with_vocabulary: bool = False) -> str:
    """The ontology part of the graph as Turtle or JSON-LD text."""
    if fmt not in FORMATS:
        raise UsageError(f"unknown export format {fmt!r}: use {' or '.join(FORMATS)}")
    return serialize(export_graph(store, with_vocabulary=with_vocabulary), fmt)


def canonical(graph: Graph) -> Graph:
    """A copy with decimals in canonical form (``0.80`` becomes ``0.8``), the only literal sync rewrites."""
    out = Graph()
    for s, p, o in graph:
        if isinstance(o, Literal) and o.datatype == XSD.decimal:
            with contextlib.suppress(ValueError):
                o = decimal_literal(float(str(o)))
        out.add((s, p, o))
    return out


def same_content(a: Graph, b: Graph) -> bool:
    """Whether two graphs are isomorphic once decimals are canonical (the round-trip criterion)."""
    return isomorphic(canonical(a), canonical(b))
