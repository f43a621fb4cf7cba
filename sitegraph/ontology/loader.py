"""Parse Turtle sources with rdflib and build the :class:`~sitegraph.ontology.model.Ontology` from them.

Parsing reports syntax errors as problems (file and line); building never fails on content: it
reads what is there, and the checks (:mod:`sitegraph.ontology.checks`, :mod:`sitegraph.ontology.shacl`)
say what is wrong with it.
"""

from __future__ import annotations

import logging
import re
from collections import deque
from pathlib import Path
from typing import Any

from rdflib import BNode, Graph, Literal, URIRef
from rdflib.namespace import RDF, SKOS

from sitegraph.errors import InvalidInputError
from sitegraph.ontology.fields import BARRIER_FIELDS, CONCEPT_FIELDS, LINK_ENDPOINTS, LINK_FIELDS, TACTIC_FIELDS, read_fields
from sitegraph.ontology.files import Source, resolve_sources
from sitegraph.ontology.model import Barrier, Category, Concept, ConceptKind, MitigationLink, Ontology, Tactic, TacticGroup, Term
from sitegraph.ontology.namespaces import BARRIER, MITIGATION, SG, TACTIC, bind_prefixes
from sitegraph.ontology.report import OntologyProblem

log = logging.getLogger(__name__)

KIND_CLASSES: dict[URIRef, ConceptKind] = {
    SG.BarrierCategory: "category",
    SG.Barrier: "barrier",
    SG.TacticGroup: "group",
    SG.Tactic: "tactic",
}
CLASS_OF_KIND: dict[ConceptKind, URIRef] = {kind: cls for cls, kind in KIND_CLASSES.items()}
NAMESPACE_OF_KIND: dict[ConceptKind, str] = {
    "category": str(BARRIER),
    "barrier": str(BARRIER),
    "group": str(TACTIC),
    "tactic": str(TACTIC),
}
TERM_CLASSES: dict[str, URIRef] = {
    "roles": SG.Role,
    "channels": SG.Channel,
    "efforts": SG.EffortLevel,
    "evidence_levels": SG.EvidenceLevel,
}
_CONCEPT_CLASSES: dict[ConceptKind, type[Concept]] = {
    "category": Category,
    "barrier": Barrier,
    "group": TacticGroup,
    "tactic": Tactic,
}

_LINE = re.compile(r"at line (\d+)")


def compact_id(iri: str, namespace: str) -> str:
    """The id of a concept: its IRI minus the namespace, or the last path segment outside it."""
    if iri.startswith(namespace) and len(iri) > len(namespace):
        return iri[len(namespace) :]
    return re.split(r"[/#]", iri.rstrip("/#"))[-1] or iri


def _syntax_problem(source: Source, exc: Exception) -> OntologyProblem:
    text = str(exc)
    match = _LINE.search(text)
    line = int(match.group(1)) if match else None
    lines = getattr(exc, "lines", None)
    if line is None and isinstance(lines, int):
        line = lines + 1
    why = getattr(exc, "_why", None) or getattr(exc, "why", None) or (text.splitlines()[0] if text else type(exc).__name__)
    near = ""
    raw, index = getattr(exc, "_str", None), getattr(exc, "_i", None)
    if isinstance(raw, (bytes, str)) and isinstance(index, int):
        chunk = raw[index : index + 40]
        snippet = chunk.decode("utf-8", "replace") if isinstance(chunk, bytes) else chunk
        snippet = snippet.split("\n", 1)[0].strip()
        if snippet:
            near = f" near '{snippet}'"
    return OntologyProblem("syntax", f"Turtle syntax error: {why}{near}", file=source.name, line=line)


def parse_sources(sources: list[Source]) -> tuple[list[tuple[Source, Graph]], list[OntologyProblem]]:
    """Parse each source as Turtle; syntax errors come back as problems, not exceptions."""
    parsed: list[tuple[Source, Graph]] = []
    problems: list[OntologyProblem] = []
    for source in sources:
        g = Graph()
        try:
            g.parse(data=source.text, format="turtle")
        except Exception as e:  # rdflib raises BadSyntax, ValueError and others for bad input
            log.debug("syntax error in %s: %s", source.name, e)
            problems.append(_syntax_problem(source, e))
            continue
        parsed.append((source, g))
    if not sources:
        problems.append(OntologyProblem("no-files", "there are no Turtle files to read"))
    return parsed, problems


def _is_shapes(source: Source) -> bool:
    return source.basename == "shapes.ttl"


def build_ontology(parsed: list[tuple[Source, Graph]]) -> Ontology:
    """The model of parsed sources (which must have parsed without syntax errors)."""
    graph = bind_prefixes(Graph())
    shapes = bind_prefixes(Graph())
    subject_files: dict[str, str] = {}
    content: set[str] = set()
    blank_files: list[str] = []
    for source, g in parsed:
        (shapes if _is_shapes(source) else graph).__iadd__(g)
        for s in g.subjects(unique=True):
            subject_files.setdefault(str(s), source.name)
            if source.vocabulary:
                continue
            if isinstance(s, BNode):
                if source.name not in blank_files:
                    blank_files.append(source.name)
            else:
                content.add(str(s))
    onto = Ontology(
        graph=graph,
        shapes=shapes,
        files=tuple(s.name for s, _ in parsed),
        vocabulary_files=tuple(s.name for s, _ in parsed if s.vocabulary),
        subject_files=subject_files,
        content_subjects=frozenset(content),
        blank_subject_files=tuple(blank_files),
    )
    _read_terms(onto)
    _read_concepts(onto)
    _read_links(onto)
    return onto


def _kind_of(graph: Graph, subject: URIRef) -> ConceptKind | None:
    for cls, kind in KIND_CLASSES.items():
        if (subject, RDF.type, cls) in graph:
            return kind
    return None


def _read_terms(onto: Ontology) -> None:
    g = onto.graph
    for attr, cls in TERM_CLASSES.items():
        terms: dict[str, Term] = {}
        for s in sorted(set(g.subjects(RDF.type, cls)), key=str):
            if not isinstance(s, URIRef):
                continue
            rank = g.value(s, SG.rank)
            label = g.value(s, SKOS.prefLabel)
            definition = g.value(s, SKOS.definition)
            term = Term(
                iri=str(s),
                id=compact_id(str(s), str(s).rsplit("/", 1)[0] + "/"),
                label=str(label) if label is not None else None,
                definition=str(definition) if definition is not None else None,
                rank=int(rank.toPython()) if isinstance(rank, Literal) and str(rank).lstrip("-").isdigit() else None,
                exact_match=tuple(sorted(str(o) for o in g.objects(s, SKOS.exactMatch))),
                close_match=tuple(sorted(str(o) for o in g.objects(s, SKOS.closeMatch))),
            )
            terms[term.id] = term
        setattr(onto, attr, terms)


def _read_concepts(onto: Ontology) -> None:
    g = onto.graph
    rows: dict[str, dict[str, Any]] = {}
    for cls in KIND_CLASSES:
        for s in g.subjects(RDF.type, cls):
            if not isinstance(s, URIRef) or str(s) in rows:
                continue
            kind = _kind_of(g, s)
            assert kind is not None
            specs = CONCEPT_FIELDS + (BARRIER_FIELDS if kind == "barrier" else TACTIC_FIELDS if kind == "tactic" else ())
            row = read_fields(g, s, specs)
            row.update(
                iri=str(s),
                id=compact_id(str(s), NAMESPACE_OF_KIND[kind]),
                kind=kind,
                deprecated=bool(row.get("deprecated")),
                extra_types=tuple(
                    sorted({str(t) for t in g.objects(s, RDF.type)} - {str(SKOS.Concept), str(CLASS_OF_KIND[kind])})
                ),
                file=onto.subject_files.get(str(s)),
            )
            rows[str(s)] = row
    tops = {iri for iri, row in rows.items() if row["kind"] in ("category", "group")}
    for iri, row in rows.items():
        row["category"] = iri if iri in tops else _nearest_top(iri, rows, tops)
    for iri in sorted(rows):
        row = rows[iri]
        concept = _CONCEPT_CLASSES[row["kind"]](**row)
        if isinstance(concept, Category):
            onto.categories[iri] = concept
        elif isinstance(concept, Barrier):
            onto.barriers[iri] = concept
        elif isinstance(concept, TacticGroup):
            onto.groups[iri] = concept
        elif isinstance(concept, Tactic):
            onto.tactics[iri] = concept


def _nearest_top(iri: str, rows: dict[str, dict[str, Any]], tops: set[str]) -> str | None:
    """The nearest top concept (category or tactic group) above ``iri`` through broader."""
    seen = {iri}
    queue = deque(rows[iri]["broader"])
    while queue:
        up = queue.popleft()
        if up in seen:
            continue
        seen.add(up)
        if up in tops:
            return str(up)
        if up in rows:
            queue.extend(rows[up]["broader"])
    return None


def _read_links(onto: Ontology) -> None:
    g = onto.graph
    for s in sorted(set(g.subjects(RDF.type, SG.Mitigation)), key=str):
        if not isinstance(s, URIRef) or _kind_of(g, s) is not None:
            continue
        row = read_fields(g, s, LINK_ENDPOINTS + LINK_FIELDS)
        extra = tuple(sorted({str(t) for t in g.objects(s, RDF.type)} - {str(SG.Mitigation)}))
        onto.links[str(s)] = MitigationLink(
            iri=str(s), id=compact_id(str(s), str(MITIGATION)), extra_types=extra, file=onto.subject_files.get(str(s)), **row
        )


def load_sources(sources: list[Source]) -> Ontology:
    """Parse and build; :class:`InvalidInputError` when a file is not valid Turtle."""
    parsed, problems = parse_sources(sources)
    if problems:
        raise InvalidInputError([p.to_problem() for p in problems], "the ontology files cannot be parsed")
    onto = build_ontology(parsed)
    log.debug("loaded ontology from %d file(s): %s", len(onto.files), onto.counts())
    return onto


def load_ontology(path: str | Path | None = None) -> Ontology:
    """Load the ontology: the packaged files (``None``), a folder or file, or a git revision (``HEAD~1``).

    Raises :class:`~sitegraph.errors.InvalidInputError` when a file cannot be parsed; other problems
    are found by :func:`~sitegraph.ontology.validation.validate_ontology`, not here.
    """
    return load_sources(resolve_sources(path))
