"""The checks SHACL does not express well: structure across resources (cycles, references, duplicates).

Each check is a function ``(Ontology) -> list[OntologyProblem]``; :data:`STRUCTURAL_CHECKS` runs them all.
"""

from __future__ import annotations

import re
import unicodedata
from collections import defaultdict
from collections.abc import Callable

import networkx as nx
from rdflib import URIRef
from rdflib.namespace import RDF

from sitegraph.ontology.loader import KIND_CLASSES
from sitegraph.ontology.model import BARRIER_KINDS, Concept, Ontology, Tactic
from sitegraph.ontology.namespaces import SG
from sitegraph.ontology.report import OntologyProblem, Severity

Check = Callable[[Ontology], list[OntologyProblem]]

_KIND_WORDS = {"category": "barrier category", "barrier": "barrier", "group": "tactic group", "tactic": "tactic"}


def normalize_label(text: str) -> str:
    """Case-, accent- and punctuation-insensitive form of a label, for comparing labels."""
    text = unicodedata.normalize("NFKC", text).casefold().replace("\u2019", "'")
    return re.sub(r"\s+", " ", re.sub(r"[^\w']+", " ", text)).strip()


def _problem(onto: Ontology, check: str, iri: str, message: str, severity: Severity = "error") -> OntologyProblem:
    return OntologyProblem(check, message, file=onto.subject_files.get(iri), iri=iri, severity=severity)


def _name(onto: Ontology, iri: str) -> str:
    concept = onto.concepts().get(iri)
    if concept is not None and concept.label:
        return f'"{concept.label}" <{iri}>'
    return f"<{iri}>"


def check_subjects(onto: Ontology) -> list[OntologyProblem]:
    """Everything described in a content file must be a concept or a mitigation link, of one kind."""
    out: list[OntologyProblem] = []
    g = onto.graph
    known = set(onto.concepts()) | set(onto.links)
    for name in onto.blank_subject_files:
        out.append(OntologyProblem("unknown-subject", "describes a blank node: give every resource an IRI", file=name))
    for subject in sorted(onto.content_subjects - known):
        types = sorted(g.namespace_manager.normalizeUri(str(t)) for t in g.objects(URIRef(subject), RDF.type))
        typed = f"it is typed {', '.join(types)}" if types else "it has no rdf:type"
        out.append(
            _problem(
                onto,
                "unknown-subject",
                subject,
                f"is neither a concept nor a mitigation link ({typed}); "
                "expected sg:Barrier, sg:BarrierCategory, sg:Tactic, sg:TacticGroup or sg:Mitigation",
            )
        )
    for iri in sorted(known):
        uri = URIRef(iri)
        kinds = [str(cls).rsplit("/", 1)[-1] for cls in (*KIND_CLASSES, SG.Mitigation) if (uri, RDF.type, cls) in g]
        if len(kinds) > 1:
            out.append(
                _problem(
                    onto, "conflicting-types", iri, f"is typed as several kinds of thing: {', '.join('sg:' + k for k in kinds)}"
                )
            )
    return out


def check_labels(onto: Ontology) -> list[OntologyProblem]:
    """Every concept has a prefLabel; prefLabels are unique within a scheme; altLabels do not collide."""
    out: list[OntologyProblem] = []
    by_scheme: dict[str, dict[str, list[Concept]]] = defaultdict(lambda: defaultdict(list))
    for c in sorted(onto.concepts().values(), key=lambda c: c.iri):
        if not c.label:
            out.append(_problem(onto, "missing-label", c.iri, f"this {_KIND_WORDS[c.kind]} has no skos:prefLabel"))
            continue
        by_scheme[c.scheme][normalize_label(c.label)].append(c)
    for scheme, labels in by_scheme.items():
        for same in labels.values():
            first = same[0]
            for other in same[1:]:
                out.append(
                    _problem(
                        onto,
                        "duplicate-label",
                        other.iri,
                        f'has the prefLabel "{other.label}", already the prefLabel of <{first.iri}> in the {scheme} scheme',
                    )
                )
    # altLabels that name another concept of the scheme: tagging notes could not tell them apart.
    owners: dict[tuple[str, str], set[str]] = defaultdict(set)
    for c in onto.concepts().values():
        if c.deprecated:
            continue
        for label in c.labels:
            owners[(c.scheme, normalize_label(label))].add(c.iri)
    for (scheme, label), iris in sorted(owners.items()):
        if len(iris) > 1:
            ordered = sorted(iris)
            out.append(
                _problem(
                    onto,
                    "ambiguous-label",
                    ordered[1],
                    f'the label "{label}" names several concepts of the {scheme} scheme: ' + ", ".join(f"<{i}>" for i in ordered),
                    severity="warning",
                )
            )
    return out


def check_broader_cycles(onto: Ontology) -> list[OntologyProblem]:
    """``skos:broader`` must not lead back to where it started."""
    concepts = onto.concepts()
    dg = nx.DiGraph()
    for c in concepts.values():
        for up in c.broader:
            if up in concepts:
                dg.add_edge(c.iri, up)
    out: list[OntologyProblem] = []
    for component in sorted((sorted(scc) for scc in nx.strongly_connected_components(dg)), key=lambda s: s[0]):
        if len(component) == 1 and not dg.has_edge(component[0], component[0]):
            continue
        cycle = nx.find_cycle(dg.subgraph(component), source=component[0])
        path = [u for u, _v in cycle] + [cycle[0][0]]
        shown = " → ".join(concepts[i].id for i in path)
        out.append(_problem(onto, "broader-cycle", component[0], f"skos:broader goes round in a cycle: {shown}"))
    return out


def _reference(
    onto: Ontology, owner: str, what: str, target: str | None, allowed: tuple[str, ...], word: str
) -> OntologyProblem | None:
    if target is None:
        return None
    concept = onto.concepts().get(target)
    if concept is None:
        return _problem(onto, "undefined-reference", owner, f"{what} <{target}>, which is not defined as a {word}")
    if concept.kind not in allowed:
        return _problem(
            onto, "invalid-reference", owner, f"{what} <{target}>, which is a {_KIND_WORDS[concept.kind]}, not a {word}"
        )
    return None


def check_references(onto: Ontology) -> list[OntologyProblem]:
    """Broader concepts, replacements, link ends, roles, channels and effort levels must be defined."""
    out: list[OntologyProblem | None] = []
    for c in sorted(onto.concepts().values(), key=lambda c: c.iri):
        same_scheme = BARRIER_KINDS if c.kind in BARRIER_KINDS else ("group", "tactic")
        scheme_word = "concept of the barrier scheme" if c.kind in BARRIER_KINDS else "concept of the tactic scheme"
        for up in c.broader:
            out.append(_reference(onto, c.iri, "has skos:broader", up, same_scheme, scheme_word))
        out.append(_reference(onto, c.iri, "is replaced by", c.replaced_by, same_scheme, scheme_word))
        if isinstance(c, Tactic):
            for attr, terms, word in (
                ("role", onto.roles, "role"),
                ("channel", onto.channels, "channel"),
                ("effort", onto.efforts, "effort level"),
            ):
                value = getattr(c, attr)
                if value is not None and value not in terms:
                    out.append(
                        _problem(
                            onto,
                            "undefined-reference",
                            c.iri,
                            f"names the {word} '{value}', which is not defined; defined: {', '.join(sorted(terms))}",
                        )
                    )
    for link in sorted(onto.links.values(), key=lambda lk: lk.iri):
        out.append(_reference(onto, link.iri, "links the tactic", link.tactic, ("tactic",), "tactic"))
        out.append(_reference(onto, link.iri, "links the barrier", link.barrier, ("barrier",), "barrier"))
    return [p for p in out if p is not None]


def check_categories(onto: Ontology) -> list[OntologyProblem]:
    """Every live barrier reaches one category through broader; every live tactic reaches a group."""
    out: list[OntologyProblem] = []
    for c in sorted(list(onto.barriers.values()) + list(onto.tactics.values()), key=lambda c: c.iri):
        if c.deprecated:
            continue
        tops = [a for a in onto.ancestors(c.iri) if a in onto.categories or a in onto.groups]
        if not tops:
            if c.kind == "barrier":
                out.append(
                    _problem(
                        onto,
                        "barrier-without-category",
                        c.iri,
                        "this barrier has no category: give it skos:broader a category (or a barrier under one)",
                    )
                )
            else:
                out.append(
                    _problem(
                        onto,
                        "tactic-without-group",
                        c.iri,
                        "this tactic is in no tactic group: give it skos:broader a group",
                        severity="warning",
                    )
                )
        elif len(tops) > 1 and c.kind == "barrier":
            out.append(
                _problem(
                    onto,
                    "several-categories",
                    c.iri,
                    f"reaches several categories ({', '.join(onto.concepts()[t].id for t in tops)}); the nearest, "
                    f"{onto.concepts()[tops[0]].id}, is used",
                    severity="warning",
                )
            )
    return out


def check_links(onto: Ontology) -> list[OntologyProblem]:
    """Every live tactic mitigates something; no two links join the same pair; nothing deprecated is in use."""
    out: list[OntologyProblem] = []
    used = {lk.tactic for lk in onto.links.values()}
    for t in sorted(onto.tactics.values(), key=lambda t: t.iri):
        if not t.deprecated and t.iri not in used:
            out.append(
                _problem(
                    onto, "tactic-mitigates-nothing", t.iri, "this tactic mitigates no barrier: add a sg:Mitigation link for it"
                )
            )
    pairs: dict[tuple[str | None, str | None], str] = {}
    concepts = onto.concepts()
    for link in sorted(onto.links.values(), key=lambda lk: lk.iri):
        pair = (link.tactic, link.barrier)
        if pair in pairs:
            out.append(_problem(onto, "duplicate-link", link.iri, f"joins the same tactic and barrier as <{pairs[pair]}>"))
        else:
            pairs[pair] = link.iri
        for end, word in ((link.tactic, "tactic"), (link.barrier, "barrier")):
            target = concepts.get(end or "")
            if target is not None and target.deprecated:
                out.append(
                    _problem(
                        onto,
                        "deprecated-in-use",
                        link.iri,
                        f"links the deprecated {word} {_name(onto, target.iri)}: remove the link or point it at the replacement",
                    )
                )
    for c in sorted(concepts.values(), key=lambda c: c.iri):
        if c.deprecated:
            continue
        for up in c.broader:
            if up in concepts and concepts[up].deprecated:
                out.append(
                    _problem(onto, "deprecated-in-use", c.iri, f"has skos:broader the deprecated concept {_name(onto, up)}")
                )
    return out


STRUCTURAL_CHECKS: tuple[Check, ...] = (
    check_subjects,
    check_labels,
    check_broader_cycles,
    check_references,
    check_categories,
    check_links,
)


def structural_problems(onto: Ontology) -> list[OntologyProblem]:
    """Run every structural check."""
    out: list[OntologyProblem] = []
    for check in STRUCTURAL_CHECKS:
        out += check(onto)
    return out
