"""Validate ontology files: Turtle syntax, then the SHACL shapes and the structural checks.

A failed validation is a result (:class:`~sitegraph.ontology.report.ValidationReport`), not an
exception; callers that must not go on with an invalid ontology call ``report.raise_if_invalid()``.
"""

from __future__ import annotations

import logging
from pathlib import Path

from sitegraph.errors import InvalidInputError
from sitegraph.ontology.checks import structural_problems
from sitegraph.ontology.files import Source, resolve_sources
from sitegraph.ontology.loader import build_ontology, parse_sources
from sitegraph.ontology.model import Ontology
from sitegraph.ontology.report import OntologyProblem, ValidationReport
from sitegraph.ontology.shacl import shacl_problems

log = logging.getLogger(__name__)


def validate_ontology(onto: Ontology) -> ValidationReport:
    """Run the structural checks and the SHACL shapes on a loaded ontology (cached on the ontology)."""
    if isinstance(onto.validation, ValidationReport):
        return onto.validation
    problems = structural_problems(onto) + shacl_problems(onto)
    onto.validation = ValidationReport(problems=problems, counts=onto.counts(), files=onto.files)
    return onto.validation


def validate_sources(sources: list[Source]) -> ValidationReport:
    parsed, problems = parse_sources(sources)
    if problems:
        return ValidationReport(problems=problems, files=tuple(s.name for s in sources))
    return validate_ontology(build_ontology(parsed))


def validate(path: str | Path | None = None) -> ValidationReport:
    """Validate the packaged ontology (``None``), a folder or a file, or a git revision.

    Never raises for bad content: every problem is in the report.
    """
    try:
        sources = resolve_sources(path)
    except InvalidInputError as e:
        return ValidationReport(problems=[OntologyProblem("no-files", p.message, file=p.source) for p in e.problems])
    return validate_sources(sources)
