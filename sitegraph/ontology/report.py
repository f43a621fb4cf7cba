"""What validation finds: problems (each naming a file and line, or an IRI) gathered in a report."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal as TypingLiteral

from sitegraph.errors import InvalidInputError, Problem

Severity = TypingLiteral["error", "warning"]

CHECKS: dict[str, str] = {
    "no-files": "there are no Turtle files to read",
    "syntax": "a file is not valid Turtle",
    "shacl": "a SHACL shape is violated (wrong datatype, value outside a list, missing definition ...)",
    "unknown-subject": "something in a content file is neither a concept nor a mitigation link",
    "conflicting-types": "a resource is typed as two kinds of thing (say, both a barrier and a tactic)",
    "missing-label": "a concept has no skos:prefLabel",
    "duplicate-label": "two concepts of one scheme share a prefLabel",
    "ambiguous-label": "one label names two concepts of a scheme, so tagging cannot tell them apart (warning)",
    "broader-cycle": "following skos:broader comes back to where it started",
    "undefined-reference": "a broader, link, replacement or role/channel/effort points at something not defined",
    "invalid-reference": "a broader, link or replacement points at a concept of the wrong kind or scheme",
    "barrier-without-category": "a barrier does not reach a top-level category through skos:broader",
    "tactic-without-group": "a tactic does not reach a tactic group through skos:broader (warning)",
    "several-categories": "a barrier reaches more than one top-level category (warning)",
    "tactic-mitigates-nothing": "a tactic has no mitigation link",
    "deprecated-in-use": "a deprecated concept is still used by a link or as broader of a live concept",
    "duplicate-link": "two mitigation links join the same tactic and barrier",
}
"""Every check by code, with what it means (the curator docs list the same)."""


@dataclass(frozen=True)
class OntologyProblem:
    """One thing wrong: which check found it, where (file and line, or IRI), and what is wrong."""

    check: str
    message: str
    file: str | None = None
    line: int | None = None
    iri: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = self.file or self.iri or "ontology"
        if self.line is not None:
            where += f":{self.line}"
        subject = f" <{self.iri}>" if self.iri and self.file else ""
        prefix = "warning " if self.severity == "warning" else ""
        return f"{where}: {prefix}[{self.check}]{subject} {self.message}"

    def to_problem(self) -> Problem:
        source = self.file or self.iri or "ontology"
        message = f"[{self.check}] " + (f"<{self.iri}> " if self.iri and self.file else "") + self.message
        return Problem(source=source, message=message, line=self.line)


@dataclass
class ValidationReport:
    """The result of validating an ontology: every problem found, and what was counted."""

    problems: list[OntologyProblem] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=dict)
    files: tuple[str, ...] = ()

    @property
    def errors(self) -> list[OntologyProblem]:
        return [p for p in self.problems if p.severity == "error"]

    @property
    def warnings(self) -> list[OntologyProblem]:
        return [p for p in self.problems if p.severity == "warning"]

    @property
    def ok(self) -> bool:
        """True when nothing but warnings was found."""
        return not self.errors

    def checks_failed(self) -> set[str]:
        return {p.check for p in self.errors}

    def raise_if_invalid(self, summary: str = "the ontology is invalid") -> None:
        """Raise :class:`InvalidInputError` listing every error, when there is one."""
        if not self.ok:
            raise InvalidInputError([p.to_problem() for p in self.errors], summary)

    def render(self) -> str:
        """The report as lines a curator reads."""
        lines = [str(p) for p in sorted(self.problems, key=_order)]
        if self.ok:
            summary = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts.items())
            lines.append(f"valid: {summary}" + (f" ({len(self.warnings)} warning(s))" if self.warnings else ""))
        else:
            lines.append(
                f"invalid: {len(self.errors)} problem(s)" + (f", {len(self.warnings)} warning(s)" if self.warnings else "")
            )
        return "\n".join(lines)


def _order(p: OntologyProblem) -> tuple[int, str, int, str, str]:
    return (0 if p.severity == "error" else 1, p.file or "", p.line or 0, p.iri or "", p.check)
