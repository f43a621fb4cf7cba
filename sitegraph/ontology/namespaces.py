"""The IRIs of the ontology: its base, the namespaces of each kind of resource, and the prefixes files use.

Everything sitegraph mints lives under :data:`BASE` (``https://w3id.org/sitegraph/``), one folder per
kind of resource, so the compact id of a concept is its IRI minus the namespace of its kind
(``https://w3id.org/sitegraph/barrier/stalled-ethics-approval`` has the id ``stalled-ethics-approval``).
"""

from __future__ import annotations

from rdflib import Graph, Namespace
from rdflib.namespace import DCTERMS, OWL, PROV, RDFS, SH, SKOS, XSD

BASE = "https://w3id.org/sitegraph/"

SG = Namespace(BASE + "ontology/")
"""Classes and properties of the core vocabulary (``sg:Barrier``, ``sg:performedBy`` ...)."""

BARRIER = Namespace(BASE + "barrier/")
TACTIC = Namespace(BASE + "tactic/")
MITIGATION = Namespace(BASE + "mitigation/")
ROLE = Namespace(BASE + "role/")
CHANNEL = Namespace(BASE + "channel/")
EFFORT = Namespace(BASE + "effort/")
EVIDENCE = Namespace(BASE + "evidence/")
SCHEME = Namespace(BASE + "scheme/")
SOURCE = Namespace(BASE + "source/")
NCIT = Namespace("http://purl.obolibrary.org/obo/NCIT_")

BARRIER_SCHEME = SCHEME["barriers"]
TACTIC_SCHEME = SCHEME["tactics"]

PREFIXES: dict[str, str] = {
    k: str(v)
    for k, v in {
        "sg": SG,
        "sgb": BARRIER,
        "sgt": TACTIC,
        "sgm": MITIGATION,
        "sgrole": ROLE,
        "sgch": CHANNEL,
        "sgeff": EFFORT,
        "sgev": EVIDENCE,
        "sgs": SCHEME,
        "sgsrc": SOURCE,
        "ncit": NCIT,
        "skos": SKOS,
        "dcterms": DCTERMS,
        "owl": OWL,
        "prov": PROV,
        "rdfs": RDFS,
        "xsd": XSD,
        "sh": SH,
    }.items()
}


def bind_prefixes(graph: Graph) -> Graph:
    """Bind the ontology's prefixes on a graph (for readable Turtle and compact JSON-LD)."""
    for prefix, ns in PREFIXES.items():
        graph.bind(prefix, Namespace(ns), override=True, replace=True)
    return graph


def local_id(iri: str, namespace: str) -> str:
    """The compact id of an IRI in a namespace; the full IRI when it lies outside it."""
    return iri[len(namespace) :] if iri.startswith(namespace) and len(iri) > len(namespace) else iri


__all__ = [
    "BARRIER",
    "BARRIER_SCHEME",
    "BASE",
    "CHANNEL",
    "EFFORT",
    "EVIDENCE",
    "MITIGATION",
    "NCIT",
    "PREFIXES",
    "ROLE",
    "SCHEME",
    "SG",
    "SOURCE",
    "TACTIC",
    "TACTIC_SCHEME",
    "bind_prefixes",
    "local_id",
]
