"""Run the SHACL shapes with pySHACL and turn each result into a problem naming the file and the IRI."""

from __future__ import annotations

import logging

from rdflib import Graph, Literal, URIRef
from rdflib.namespace import RDF, SH
from rdflib.term import Node

from sitegraph.ontology.model import Ontology
from sitegraph.ontology.report import OntologyProblem

log = logging.getLogger(__name__)


def _short(graph: Graph, node: Node | None) -> str:
    if node is None:
        return ""
    if isinstance(node, URIRef):
        try:
            return graph.namespace_manager.normalizeUri(node)
        except Exception:  # rdflib raises for IRIs it cannot compact
            return f"<{node}>"
    if isinstance(node, Literal):
        return node.n3(graph.namespace_manager)
    return str(node)


def shacl_problems(onto: Ontology) -> list[OntologyProblem]:
    """Validate the ontology's graph against its shapes; one problem per SHACL result."""
    if len(onto.shapes) == 0:
        return [OntologyProblem("shacl", "no SHACL shapes were loaded (shapes.ttl)", severity="warning")]
    from pyshacl import validate as shacl_validate  # imported here: pySHACL takes a moment to import

    conforms, results, _text = shacl_validate(
        onto.graph,
        shacl_graph=onto.shapes,
        inference="none",
        abort_on_first=False,
        allow_infos=True,
        allow_warnings=True,
        advanced=False,
    )
    if conforms:
        return []
    assert isinstance(results, Graph)
    out: list[OntologyProblem] = []
    g = onto.graph
    for result in results.subjects(RDF.type, SH.ValidationResult):
        focus = results.value(result, SH.focusNode)
        path = results.value(result, SH.resultPath)
        value = results.value(result, SH.value)
        severity = results.value(result, SH.resultSeverity)
        component = results.value(result, SH.sourceConstraintComponent)
        messages = sorted(str(m) for m in results.objects(result, SH.resultMessage))
        text = messages[0] if messages else "violates a shape"
        if component == SH.ClosedConstraintComponent:
            text = "this predicate is not allowed here (the shapes are closed: shapes.ttl lists what a concept or link may say)"
        prefix = f"{_short(g, path)}: " if path is not None else ""
        shown_value = f" (value: {_short(g, value)})" if value is not None and value != focus else ""
        iri = str(focus) if isinstance(focus, URIRef) else None
        out.append(
            OntologyProblem(
                "shacl",
                f"{prefix}{text}{shown_value}",
                file=onto.subject_files.get(str(focus)) if focus is not None else None,
                iri=iri,
                severity="error" if severity in (None, SH.Violation) else "warning",
            )
        )
    log.debug("SHACL found %d result(s)", len(out))
    return sorted(out, key=lambda p: (p.file or "", p.iri or "", p.message))
