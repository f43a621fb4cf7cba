"""The named Cypher query catalogue: parameterised, documented, read-only questions about the graph.

Each query is a file ``sitegraph/queries/cypher/NN-name.cypher``: a header of ``//`` comment lines, then
the Cypher itself. The same files feed ``sitegraph query``, the Neo4j Browser guide
(:mod:`sitegraph.queries.browser.guide`) and ``docs/exploring.md``, so none of them can drift apart.
A file is valid Cypher as it stands (the header is comments), so it can also be pasted into Browser or
``cypher-shell`` after setting its parameters. The header::

    // name: site-360
    // group: Sites
    // title: A site's 360° neighbourhood
    // description: One paragraph; continuation lines are indented
    //   by two spaces after the comment marker.
    // param site_id: string, required, example "site:..." -- what it is
    // param limit: integer = 150, example 50 -- what it is
    // returns: graph

Parameter types are ``string``, ``integer``, ``float``, ``boolean`` and ``list<string>``; defaults and
examples are JSON values (``null`` for "no filter"). Loading checks every file: every value is a
``$parameter`` that the header declares (and every declared parameter is used), every label and
relationship type is in the schema's allow-list (:mod:`sitegraph.graph.schema`), and the text holds no
write clause. Queries run only through :meth:`Neo4jStore.read`, which routes them to readers in a read
transaction, so even a write that slipped through would be refused by the server.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.resources import files
from typing import TYPE_CHECKING, Any, Literal, cast, get_args

from sitegraph.errors import SitegraphError, UsageError
from sitegraph.graph.schema import NODES, RELATIONSHIPS

if TYPE_CHECKING:
    from sitegraph.graph.neo4j_store import Neo4jStore

ParamType = Literal["string", "integer", "float", "boolean", "list<string>"]
PARAM_TYPES: tuple[str, ...] = get_args(ParamType)
Returns = Literal["graph", "table"]

#: The groups, in the order the guide and the docs present them.
GROUPS: tuple[str, ...] = ("Sites", "Site performance", "Investigators", "Barriers and tactics", "Interactions")

CYPHER_PACKAGE = "sitegraph.queries"
CYPHER_DIR = "cypher"

_NAME = re.compile(r"[a-z][a-z0-9]*(?:-[a-z0-9]+)*")
_IDENT = re.compile(r"[a-z][a-z0-9_]*")
_PARAM_LINE = re.compile(r"param\s+(?P<name>\w+)\s*:\s*(?P<type>list<string>|\w+)\s*(?P<rest>(?:,\s*required|=).*)")
_PARAM_USE = re.compile(r"\$(\w+)")
# A label or relationship type: after ':' (or '|' / '&' in a label or type expression), capitalised.
_LABEL_USE = re.compile(r"[:|&]\s*([A-Z][A-Za-z0-9_]*)\b")
# Capitalised words that may follow ':' or '|' in expressions without being labels.
_NOT_LABELS = frozenset({"CASE", "NULL", "TRUE", "FALSE", "NOT", "EXISTS", "COUNT", "COLLECT", "ALL", "ANY", "NONE", "SINGLE"})
_WRITE_CLAUSES = re.compile(
    r"\b(CREATE|MERGE|SET|DELETE|DETACH|REMOVE|DROP|FOREACH|LOAD\s+CSV|GRANT|DENY|REVOKE|ALTER|RENAME|START|STOP|TERMINATE|ENABLE)\b"
    r"|\bIN\s+TRANSACTIONS\b",
    re.IGNORECASE,
)
_PROCEDURE_CALL = re.compile(r"\bCALL\s+([A-Za-z_][\w.]*)\s*\(", re.IGNORECASE)
#: Procedures a catalogue query may call (read-only ones only).
READ_PROCEDURES = frozenset({"db.schema.visualization", "db.labels", "db.relationshipTypes", "db.propertyKeys"})
_STRING_LITERAL = re.compile(r"'(?:[^'\\]|\\.)*'|\"(?:[^\"\\]|\\.)*\"")
_COMMENT = re.compile(r"//[^\n]*|/\*.*?\*/", re.DOTALL)
_TRUE = frozenset({"true", "yes", "y", "1", "on"})
_FALSE = frozenset({"false", "no", "n", "0", "off"})


class CatalogueError(SitegraphError):
    """A catalogue file is malformed, uses something outside the schema, or could write."""


def strip_literals(cypher: str) -> str:
    """The Cypher text without comments and string literals (what keyword checks should look at)."""
    return _STRING_LITERAL.sub("''", _COMMENT.sub(" ", cypher))


def write_clauses(cypher: str) -> list[str]:
    """Write clauses (and non-read procedure calls) in ``cypher``; empty for a read-only query."""
    text = strip_literals(cypher)
    found = [m.group(0).upper() for m in _WRITE_CLAUSES.finditer(text)]
    found += [f"CALL {m.group(1)}" for m in _PROCEDURE_CALL.finditer(text) if m.group(1) not in READ_PROCEDURES]
    return found


def check_read_only(cypher: str) -> None:
    """Raise :class:`CatalogueError` if ``cypher`` holds a write clause or calls a non-read procedure."""
    found = write_clauses(cypher)
    if found:
        raise CatalogueError(f"catalogue queries must be read-only; found {', '.join(dict.fromkeys(found))}")


def labels_and_types(cypher: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """The node labels and relationship types ``cypher`` names, each sorted; unknown names raise."""
    labels: set[str] = set()
    types: set[str] = set()
    for m in _LABEL_USE.finditer(strip_literals(cypher)):
        word = m.group(1)
        if word in _NOT_LABELS:
            continue
        if word in NODES:
            labels.add(word)
        elif word in RELATIONSHIPS:
            types.add(word)
        else:
            raise CatalogueError(f"{word!r} is neither a label nor a relationship type of the schema")
    return tuple(sorted(labels)), tuple(sorted(types))


def cypher_literal(value: Any) -> str:
    """``value`` written as a Cypher literal (for ``:param`` lines in Browser and the docs)."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, str):
        return "'" + value.replace("\\", "\\\\").replace("'", "\\'") + "'"
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(cypher_literal(v) for v in value) + "]"
    raise TypeError(f"no Cypher literal for {type(value).__name__}")


@dataclass(frozen=True)
class Parameter:
    """One ``$parameter`` of a catalogue query."""

    name: str
    type: ParamType
    description: str
    required: bool = False
    default: Any = None
    example: Any = None

    def check(self, value: Any) -> Any:
        """``value`` if it has this parameter's type (``None`` only when optional); else :class:`UsageError`."""
        if value is None:
            if self.required:
                raise UsageError(f"parameter {self.name!r} is required")
            return None
        ok = {
            "string": isinstance(value, str),
            "integer": isinstance(value, int) and not isinstance(value, bool),
            "float": isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value),
            "boolean": isinstance(value, bool),
            "list<string>": isinstance(value, (list, tuple)) and all(isinstance(v, str) for v in value),
        }[self.type]
        if not ok:
            raise UsageError(f"parameter {self.name!r} must be {self.type}, not {value!r}")
        if self.type == "float":
            return float(value)
        if self.type == "list<string>":
            return list(value)
        return value

    def parse(self, raw: str) -> Any:
        """Coerce a command-line string (``--param name=raw``) to this parameter's type."""
        try:
            if self.type == "string":
                return raw
            if self.type == "integer":
                return int(raw.strip())
            if self.type == "float":
                value = float(raw.strip())
                if not math.isfinite(value):
                    raise ValueError(raw)
                return value
            if self.type == "boolean":
                word = raw.strip().lower()
                if word in _TRUE:
                    return True
                if word in _FALSE:
                    return False
                raise ValueError(raw)
            stripped = raw.strip()
            if stripped.startswith("["):
                return self.check(json.loads(stripped))
            return [part.strip() for part in raw.split(",") if part.strip()]
        except (ValueError, json.JSONDecodeError):
            hint = {"boolean": " (true or false)", "list<string>": " (comma-separated, or a JSON list)"}.get(self.type, "")
            raise UsageError(f"parameter {self.name!r} must be {self.type}{hint}, not {raw!r}") from None

    def as_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "type": self.type,
            "required": self.required,
            "default": self.default,
            "example": self.example,
            "description": self.description,
        }


@dataclass(frozen=True)
class CatalogueQuery:
    """A named, parameterised, read-only Cypher query."""

    name: str
    title: str
    group: str
    description: str
    cypher: str
    parameters: tuple[Parameter, ...]
    returns: Returns
    labels: tuple[str, ...] = field(default=())
    relationships: tuple[str, ...] = field(default=())
    source: str = ""

    def parameter(self, name: str) -> Parameter:
        for p in self.parameters:
            if p.name == name:
                return p
        known = ", ".join(p.name for p in self.parameters) or "none"
        raise UsageError(f"query {self.name!r} has no parameter {name!r} (parameters: {known})")

    def example_params(self) -> dict[str, Any]:
        """Every parameter set to its example (defaults where no example is given)."""
        return {p.name: p.example if p.example is not None else p.default for p in self.parameters}

    def bind(self, values: Mapping[str, Any]) -> dict[str, Any]:
        """The full parameter map for a run: ``values`` type-checked, defaults filled in.

        Unknown names and missing required parameters raise :class:`UsageError`.
        """
        for name in values:
            self.parameter(name)
        return {p.name: p.check(values.get(p.name, p.default)) for p in self.parameters}

    def parse_args(self, pairs: list[str]) -> dict[str, Any]:
        """``["k=v", ...]`` from the command line, coerced to the parameters' types (not yet bound)."""
        out: dict[str, Any] = {}
        for pair in pairs:
            name, sep, raw = pair.partition("=")
            name = name.strip()
            if not sep or not name:
                raise UsageError(f"--param takes name=value, not {pair!r}")
            if name in out:
                raise UsageError(f"parameter {name!r} given twice")
            out[name] = self.parameter(name).parse(raw)
        return out

    def param_lines(self, values: Mapping[str, Any] | None = None) -> str:
        """``:param name => literal`` lines setting ``values`` (the examples by default), for Browser."""
        values = self.example_params() if values is None else values
        return "\n".join(f":param {name} => {cypher_literal(values.get(name))}" for name in (p.name for p in self.parameters))

    def params_command(self, values: Mapping[str, Any] | None = None) -> str:
        """One Browser ``:params {...}`` command setting exactly this query's parameters (JSON map)."""
        values = self.example_params() if values is None else values
        return ":params " + json.dumps({p.name: values.get(p.name) for p in self.parameters}, ensure_ascii=False)

    def as_dict(self) -> dict[str, Any]:
        """The ``sitegraph query --list --json`` entry."""
        return {"name": self.name, "description": self.description, "parameters": [p.as_dict() for p in self.parameters]}


class Catalogue(Mapping[str, CatalogueQuery]):
    """The catalogue queries by name, in presentation order (group, then file name)."""

    def __init__(self, queries: list[CatalogueQuery]) -> None:
        self._queries: dict[str, CatalogueQuery] = {}
        for q in queries:
            if q.name in self._queries:
                raise CatalogueError(f"two catalogue queries are named {q.name!r}")
            self._queries[q.name] = q

    def __getitem__(self, name: str) -> CatalogueQuery:
        return self._queries[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._queries)

    def __len__(self) -> int:
        return len(self._queries)

    def get_query(self, name: str) -> CatalogueQuery:
        """The query called ``name``; :class:`UsageError` (listing the names) otherwise."""
        try:
            return self._queries[name]
        except KeyError:
            raise UsageError(f"no catalogue query {name!r}; known: {', '.join(self._queries)}") from None

    def groups(self) -> list[tuple[str, list[CatalogueQuery]]]:
        """(group, queries) pairs in :data:`GROUPS` order."""
        return [
            (g, [q for q in self._queries.values() if q.group == g]) for g in GROUPS if any(q.group == g for q in self.values())
        ]


def _json_value(text: str, where: str) -> tuple[Any, str]:
    """Decode one JSON value at the start of ``text``; return it and the rest of the text."""
    try:
        value, end = json.JSONDecoder().raw_decode(text)
    except json.JSONDecodeError as e:
        raise CatalogueError(f"{where}: expected a JSON value at {text[:30]!r}: {e.msg}") from None
    return value, text[end:]


def _parse_param(line: str, where: str) -> Parameter:
    m = _PARAM_LINE.fullmatch(line)
    if not m:
        raise CatalogueError(f"{where}: expected 'param NAME: TYPE, required|= DEFAULT, example VALUE -- text', not {line!r}")
    name, ptype, rest = m.group("name"), m.group("type"), m.group("rest")
    if not _IDENT.fullmatch(name):
        raise CatalogueError(f"{where}: parameter names are snake_case, not {name!r}")
    if ptype not in PARAM_TYPES:
        raise CatalogueError(f"{where}: parameter {name!r} has unknown type {ptype!r}; use one of {', '.join(PARAM_TYPES)}")
    required = False
    default: Any = None
    if rest.startswith("="):
        default, rest = _json_value(rest[1:].lstrip(), where)
    else:  # ", required" (the regular expression allows nothing else)
        required, rest = True, rest[1:].lstrip()[len("required") :]
    rest = rest.strip()
    if not rest.startswith(","):
        raise CatalogueError(f"{where}: parameter {name!r}: expected ', example VALUE' after the default")
    rest = rest[1:].strip()
    if not rest.startswith("example"):
        raise CatalogueError(f"{where}: parameter {name!r} needs an example")
    example, rest = _json_value(rest[len("example") :].lstrip(), where)
    rest = rest.strip()
    if not rest.startswith("--") or not rest[2:].strip():
        raise CatalogueError(f"{where}: parameter {name!r} needs a description after '--'")
    param = Parameter(name, cast(ParamType, ptype), rest[2:].strip(), required, default, example)
    try:
        if not required:
            param.check(default)
        param.check(example)
    except UsageError as e:
        raise CatalogueError(f"{where}: default or example of the wrong type: {e}") from None
    if example is None:
        raise CatalogueError(f"{where}: parameter {name!r} needs a non-null example")
    return param


def parse_query(text: str, source: str) -> CatalogueQuery:
    """Parse and check one catalogue file; :class:`CatalogueError` says what is wrong and where."""
    lines = text.splitlines()
    header: dict[str, str] = {}
    params: list[Parameter] = []
    last_key: str | None = None
    body_start = len(lines)
    for i, line in enumerate(lines):
        if not line.startswith("//"):
            body_start = i
            break
        content = line[2:]
        where = f"{source}:{i + 1}"
        if content.startswith("   ") and last_key is not None:  # continuation of the previous field
            header[last_key] += " " + content.strip()
            continue
        content = content.strip()
        if content.startswith("param "):
            params.append(_parse_param(content, where))
            last_key = None
            continue
        key, sep, value = content.partition(":")
        if not sep or key not in ("name", "group", "title", "description", "returns"):
            raise CatalogueError(f"{where}: unknown header line {line!r}")
        if key in header:
            raise CatalogueError(f"{where}: {key!r} given twice")
        header[key] = value.strip()
        last_key = key
    missing = [k for k in ("name", "group", "title", "description", "returns") if not header.get(k)]
    if missing:
        raise CatalogueError(f"{source}: header lacks {', '.join(missing)}")
    name = header["name"]
    if not _NAME.fullmatch(name):
        raise CatalogueError(f"{source}: query names are kebab-case, not {name!r}")
    if header["group"] not in GROUPS:
        raise CatalogueError(f"{source}: group {header['group']!r} is not one of {', '.join(GROUPS)}")
    if header["returns"] not in ("graph", "table"):
        raise CatalogueError(f"{source}: returns must be 'graph' or 'table'")
    cypher = "\n".join(lines[body_start:]).strip()
    if not cypher:
        raise CatalogueError(f"{source}: no Cypher after the header")
    try:
        check_read_only(cypher)
    except CatalogueError as e:
        raise CatalogueError(f"{source}: {e}") from None
    used = set(_PARAM_USE.findall(strip_literals(cypher)))
    declared = [p.name for p in params]
    if len(set(declared)) != len(declared):
        raise CatalogueError(f"{source}: a parameter is declared twice")
    if used - set(declared):
        raise CatalogueError(f"{source}: undeclared parameter(s) {', '.join(sorted(used - set(declared)))}")
    if set(declared) - used:
        raise CatalogueError(f"{source}: declared but unused parameter(s) {', '.join(sorted(set(declared) - used))}")
    try:
        labels, types = labels_and_types(cypher)
    except CatalogueError as e:
        raise CatalogueError(f"{source}: {e}") from None
    return CatalogueQuery(
        name=name,
        title=header["title"],
        group=header["group"],
        description=header["description"],
        cypher=cypher,
        parameters=tuple(params),
        returns=cast(Returns, header["returns"]),
        labels=labels,
        relationships=types,
        source=source,
    )


@lru_cache(maxsize=1)
def load_catalogue() -> Catalogue:
    """Every query of the packaged catalogue, checked, in presentation order (read once)."""
    folder = files(CYPHER_PACKAGE) / CYPHER_DIR
    entries = sorted((f for f in folder.iterdir() if f.name.endswith(".cypher")), key=lambda f: f.name)
    queries = [parse_query(f.read_text(encoding="utf-8"), f"{CYPHER_DIR}/{f.name}") for f in entries]
    order = {g: i for i, g in enumerate(GROUPS)}
    queries.sort(key=lambda q: order[q.group])  # stable: file order within a group
    return Catalogue(queries)


def _md(text: str) -> str:
    return text.replace("|", "\\|")


def markdown_table(catalogue: Catalogue | None = None) -> str:
    """The catalogue as the Markdown table of ``docs/exploring.md`` (a test keeps the doc in step)."""
    catalogue = catalogue or load_catalogue()
    lines = [
        "| query | what it answers | parameters (example) | labels and relationships |",
        "|---|---|---|---|",
    ]
    for q in catalogue.values():
        params = "<br>".join(
            f"`{p.name}` {p.type}, {'required' if p.required else 'default `' + cypher_literal(p.default) + '`'}"
            f" (`{cypher_literal(p.example)}`): {p.description}"
            for p in q.parameters
        )
        involves = ", ".join([f"`{label}`" for label in q.labels] + [f"`{t}`" for t in q.relationships])
        lines.append(f"| `{q.name}`<br>{_md(q.group)} | **{_md(q.title)}**: {_md(q.description)} | {_md(params)} | {involves} |")
    return "\n".join(lines) + "\n"


def run_query(store: Neo4jStore, query: CatalogueQuery, values: Mapping[str, Any] | None = None) -> list[dict[str, Any]]:
    """Run a catalogue query with read access (routed to readers) and return its rows.

    ``values`` are type-checked and completed with defaults first (:meth:`CatalogueQuery.bind`).
    """
    check_read_only(query.cypher)
    return store.read(query.cypher, query.bind(values or {}))
