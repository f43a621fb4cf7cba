"""One root exception type with narrow subclasses.

The CLI maps them to exit codes and the API to HTTP status codes, each in one place
(``sitegraph.cli`` and ``sitegraph.api.errors``).
"""

from __future__ import annotations

from dataclasses import dataclass, field


class SitegraphError(Exception):
    """Root of every error sitegraph raises on purpose."""

    exit_code = 1


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an input: where it is and what is wrong."""

    source: str
    message: str
    line: int | None = None
    field: str | None = None

    def __str__(self) -> str:
        where = self.source
        if self.line is not None:
            where += f":{self.line}"
        if self.field:
            where += f" [{self.field}]"
        return f"{where}: {self.message}"


@dataclass
class InvalidInputError(SitegraphError):
    """Input failed validation; nothing from it was stored."""

    problems: list[Problem] = field(default_factory=list)
    summary: str = "invalid input"

    exit_code = 1

    def __post_init__(self) -> None:
        super().__init__(self.summary)

    def __str__(self) -> str:
        lines = [f"{self.summary} ({len(self.problems)} problem(s))"]
        lines += [f"  {p}" for p in self.problems]
        return "\n".join(lines)


class UsageError(SitegraphError):
    """The command was called the wrong way."""

    exit_code = 2


class StoreError(SitegraphError):
    """The store refused an operation."""

    exit_code = 1


class StoreUnavailableError(StoreError):
    """The store cannot be reached (server down, wrong credentials, missing files)."""

    exit_code = 3


class SchemaError(StoreError):
    """A label, relationship type or property is not in the schema's allow-list."""


class NotFoundError(SitegraphError):
    """A node asked for by key does not exist."""

    exit_code = 1
