"""The barrier–tactic ontology: Turtle files curators edit, and the code that validates, diffs, syncs and exports them.

Public API::

    load_ontology(path=None) -> Ontology          # packaged files, a folder/file, or a git revision
    validate(path=None) -> ValidationReport         # syntax + SHACL + structural checks, never raises for content
    validate_ontology(onto) -> ValidationReport
    diff(old, new=None) -> OntologyDiff             # paths, git revisions or loaded ontologies
    sync(store, ontology=None) -> SyncReport        # into either GraphStore; raises InvalidInputError first if invalid
    export(store, fmt="turtle"|"json-ld") -> str    # graph -> RDF; export_graph() for an rdflib Graph
    LabelIndex / tag_text                           # find barrier concepts named in free text

Recommendations use ``Ontology.links_for_barrier(iri, inherited=True)`` (tactics for a barrier and
for the barriers above it, with the ``broader`` distance) or, from the graph, the ``MITIGATES`` and
``BROADER`` relationships that :func:`sync` writes. See ``docs/ontology.md``.
"""

from sitegraph.ontology.diff import OntologyDiff, diff, diff_ontologies
from sitegraph.ontology.export import FORMATS, export, export_graph, same_content
from sitegraph.ontology.files import packaged_dir
from sitegraph.ontology.labels import LabelIndex, LabelMatch, tag_text
from sitegraph.ontology.loader import load_ontology
from sitegraph.ontology.model import Barrier, Category, Concept, MitigationLink, Ontology, Tactic, TacticGroup, Term
from sitegraph.ontology.namespaces import BARRIER, BASE, MITIGATION, SG, TACTIC
from sitegraph.ontology.report import CHECKS, OntologyProblem, ValidationReport
from sitegraph.ontology.sync import SyncReport, sync
from sitegraph.ontology.validation import validate, validate_ontology

__all__ = [
    "BARRIER",
    "BASE",
    "CHECKS",
    "FORMATS",
    "MITIGATION",
    "SG",
    "TACTIC",
    "Barrier",
    "Category",
    "Concept",
    "LabelIndex",
    "LabelMatch",
    "MitigationLink",
    "Ontology",
    "OntologyDiff",
    "OntologyProblem",
    "SyncReport",
    "Tactic",
    "TacticGroup",
    "Term",
    "ValidationReport",
    "diff",
    "diff_ontologies",
    "export",
    "export_graph",
    "load_ontology",
    "packaged_dir",
    "same_content",
    "sync",
    "tag_text",
    "validate",
    "validate_ontology",
]
