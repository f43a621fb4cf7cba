"""The one interface both stores implement, and the batch of changes they apply.

Write semantics are Neo4j's ``MERGE ... SET n += props`` everywhere: a node is identified by its
label and key, a relationship by its type, endpoints and identity properties; writing properties
merges them into what is there (a ``None`` value removes a property). So loading the same input
twice changes nothing.
"""

from __future__ import annotations

import abc
import contextlib
import gc
import json
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

from sitegraph.errors import StoreError
from sitegraph.graph.schema import NODES, RELATIONSHIPS, check_endpoints, node_spec

Props = dict[str, Any]
Direction = Literal["out", "in"]

# Property values both stores hold: scalars and homogeneous lists of scalars (Neo4j's rule).
_SCALARS = (str, int, float, bool)


def clean_props(props: Mapping[str, Any]) -> Props:
    """Check that values are storable in both stores; drop nothing silently."""
    out: Props = {}
    for name, value in props.items():
        if value is None or isinstance(value, _SCALARS):
            out[name] = value
        elif isinstance(value, (list, tuple)):
            items = list(value)
            if not all(isinstance(v, _SCALARS) for v in items):
                raise StoreError(f"property {name!r}: lists may hold only strings, numbers or booleans")
            if len({type(v) for v in items}) > 1:
                raise StoreError(f"property {name!r}: a list must hold values of one type")
            out[name] = items
        else:
            raise StoreError(f"property {name!r}: unsupported value type {type(value).__name__}")
    return out


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while a bulk step builds millions of acyclic objects.

    Reference counting still frees everything; only the collector's passes over the growing heap
    (a quarter of a bulk read's CPU time) are skipped. Nested uses are fine.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


class RelKey(NamedTuple):
    """What identifies one relationship (a named tuple: cheap to build and hash in bulk loads)."""

    type: str
    start_label: str
    start: str
    end_label: str
    end: str
    ident: tuple[tuple[str, Any], ...] = ()

    def ident_json(self) -> str:
        if not self.ident:
            return "{}"
        return json.dumps(dict(self.ident), sort_keys=True)


# (type, start label, end label) -> identity properties, for pairs already checked against the schema
_IDENTITY: dict[tuple[str, str, str], tuple[str, ...]] = {}


@dataclass
class GraphBatch:
    """Nodes and relationships to upsert together.

    Adding the same node or relationship twice merges the properties, like the stores do.
    """

    nodes: dict[str, dict[str, Props]] = field(default_factory=dict)
    rels: dict[RelKey, Props] = field(default_factory=dict)
    # One string object per distinct key for the bulk methods: millions of relationship ends then
    # share their nodes' key strings instead of holding a copy each (hundreds of MiB at scale).
    _keys: dict[str, str] = field(default_factory=dict, repr=False, compare=False)

    def add_node(self, label: str, key: str, props: Mapping[str, Any] | None = None) -> None:
        spec = node_spec(label)
        if not isinstance(key, str) or not key:
            raise StoreError(f"{label} needs a non-empty string key")
        merged = self.nodes.setdefault(label, {}).setdefault(key, {})
        cleaned = clean_props(props or {})
        cleaned.pop(spec.key, None)
        merged.update(cleaned)

    def add_rel(
        self,
        rel_type: str,
        start_label: str,
        start: str,
        end_label: str,
        end: str,
        props: Mapping[str, Any] | None = None,
    ) -> None:
        identity = _IDENTITY.get((rel_type, start_label, end_label))
        if identity is None:
            identity = check_endpoints(rel_type, start_label, end_label).identity
            _IDENTITY[(rel_type, start_label, end_label)] = identity
        if not (isinstance(start, str) and start and isinstance(end, str) and end):
            raise StoreError(f"{rel_type} needs non-empty string keys at both ends")
        cleaned = clean_props(props) if props else {}
        if identity:
            ident = tuple((name, cleaned.get(name, "")) for name in identity)
            for name, value in ident:
                cleaned[name] = value
            key = RelKey(rel_type, start_label, start, end_label, end, ident)
        else:
            key = RelKey(rel_type, start_label, start, end_label, end)
        self._put_rel(key, cleaned)

    def merge_node(self, label: str, key: str, props: Props) -> None:
        """:meth:`add_node` for a bulk reader whose values are already checked.

        ``key`` must be a non-empty string and ``props`` hold only storable values, without the
        key property. The batch may keep ``props`` itself (no copy), so the caller hands it over.
        """
        rows = self.nodes.get(label)
        if rows is None:
            node_spec(label)
            rows = self.nodes[label] = {}
        key = self._keys.setdefault(key, key)
        existing = rows.get(key)
        if existing is None:
            rows[key] = props
        else:
            existing.update(props)

    def merge_rel(self, rel_type: str, start_label: str, start: str, end_label: str, end: str, props: Props) -> None:
        """:meth:`add_rel` for a bulk reader whose keys and values are already checked (keeps ``props``)."""
        identity = _IDENTITY.get((rel_type, start_label, end_label))
        if identity is None:
            identity = check_endpoints(rel_type, start_label, end_label).identity
            _IDENTITY[(rel_type, start_label, end_label)] = identity
        keys = self._keys
        start = keys.setdefault(start, start)
        end = keys.setdefault(end, end)
        if identity:
            ident = tuple((name, props.setdefault(name, "")) for name in identity)
            key = RelKey(rel_type, start_label, start, end_label, end, ident)
        else:
            key = RelKey(rel_type, start_label, start, end_label, end)
        self._put_rel(key, props)

    def _put_rel(self, key: RelKey, props: Props) -> None:
        """Keep ``props`` for a new relationship, or merge them into the one already in the batch."""
        existing = self.rels.get(key)
        if existing is None:
            self.rels[key] = props
        else:
            existing.update(props)

    def extend(self, other: GraphBatch) -> None:
        for label, rows in other.nodes.items():
            for key, props in rows.items():
                self.add_node(label, key, props)
        for rk, props in other.rels.items():
            self.rels.setdefault(rk, {}).update(props)

    def node_count(self) -> int:
        return sum(len(rows) for rows in self.nodes.values())

    def rel_count(self) -> int:
        return len(self.rels)

    def __len__(self) -> int:
        return self.node_count() + self.rel_count()

    def endpoint_keys(self) -> dict[str, set[str]]:
        """Keys of relationship endpoints per label that the batch does not itself create."""
        nodes = self.nodes
        missing: dict[str, set[str]] = {}
        empty: dict[str, Props] = {}
        for _type, start_label, start, end_label, end, _ident in self.rels:  # one pass, no (label, key) pairs
            if start not in nodes.get(start_label, empty):
                missing.setdefault(start_label, set()).add(start)
            if end not in nodes.get(end_label, empty):
                missing.setdefault(end_label, set()).add(end)
        return missing


@dataclass(frozen=True)
class Rel:
    """A relationship read back from a store."""

    type: str
    start_label: str
    start: str
    end_label: str
    end: str
    props: Props


@dataclass(frozen=True)
class GraphStats:
    """Counts per node label and per relationship type (every allowed one, zeros included)."""

    nodes: dict[str, int]
    relationships: dict[str, int]

    def as_dict(self) -> dict[str, dict[str, int]]:
        return {"nodes": dict(self.nodes), "relationships": dict(self.relationships)}


def empty_stats() -> GraphStats:
    return GraphStats(
        nodes={label: 0 for label in NODES if label != "SitegraphMeta"},
        relationships={t: 0 for t in RELATIONSHIPS},
    )


class GraphStore(abc.ABC):
    """The interface of the embedded and the Neo4j store. A behavioural difference is a bug."""

    kind: str

    # --- lifecycle -------------------------------------------------------------------------
    @abc.abstractmethod
    def close(self) -> None: ...

    def __enter__(self) -> GraphStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @abc.abstractmethod
    def ping(self) -> None:
        """Raise :class:`StoreUnavailableError` unless the store answers."""

    @abc.abstractmethod
    def ensure_schema(self) -> None:
        """Create constraints and indexes (idempotent)."""

    # --- writes ------------------------------------------------------------------------------
    @abc.abstractmethod
    def write(self, batch: GraphBatch, *, progress: Any = None) -> None:
        """Upsert every node and relationship of the batch.

        Relationship endpoints must exist in the batch or the store; otherwise :class:`StoreError`
        is raised before anything is written.
        """

    @abc.abstractmethod
    def delete_nodes(self, label: str, keys: Iterable[str]) -> int:
        """Delete the nodes and their relationships; returns how many existed."""

    @abc.abstractmethod
    def delete_relationships(self, keys: Iterable[RelKey]) -> int:
        """Delete the relationships; returns how many existed."""

    @abc.abstractmethod
    def clear(self, *, confirm: bool = False) -> None:
        """Delete everything. Destructive, so ``confirm=True`` is required."""

    # --- reads -------------------------------------------------------------------------------
    @abc.abstractmethod
    def stats(self) -> GraphStats: ...

    @abc.abstractmethod
    def version(self) -> int:
        """A number that changes whenever the data changes (caches compare it)."""

    @abc.abstractmethod
    def get_node(self, label: str, key: str) -> Props | None:
        """The node's properties (key included), or None."""

    @abc.abstractmethod
    def existing_keys(self, label: str, keys: Iterable[str]) -> set[str]:
        """Which of the keys exist as nodes of the label."""

    @abc.abstractmethod
    def iter_nodes(self, label: str) -> Iterator[Props]:
        """Every node of the label, as property dicts with the key included, in key order."""

    @abc.abstractmethod
    def iter_relationships(self, rel_type: str) -> Iterator[Rel]:
        """Every relationship of the type, ordered by (start, end, identity)."""

    @abc.abstractmethod
    def neighbors(self, label: str, key: str, rel_type: str, direction: Direction = "out") -> list[tuple[str, Props, Props]]:
        """(other label, other node props, relationship props) for each relationship of the type."""

    # --- helpers shared by both stores ---------------------------------------------------------
    def check_endpoints_exist(self, batch: GraphBatch) -> None:
        missing_total: list[str] = []
        for label, keys in batch.endpoint_keys().items():
            found = self.existing_keys(label, keys)
            missing = sorted(keys - found)
            if missing:
                shown = ", ".join(missing[:5]) + (" ..." if len(missing) > 5 else "")
                missing_total.append(f"{len(missing)} {label} node(s) not found: {shown}")
        if missing_total:
            raise StoreError("relationships point at nodes that do not exist: " + "; ".join(missing_total))

    # --- bulk key reads for analytics (``sitegraph analyze``) ----------------------------------
    # Added after the methods above: defaults built on iter_nodes / iter_relationships, so every
    # store works; each store overrides them with a direct read that skips properties.
    def node_keys(self, label: str) -> list[str]:
        """The keys of every node of the label, sorted (Python string order)."""
        key_name = node_spec(label).key
        return sorted(str(props[key_name]) for props in self.iter_nodes(label))

    def relationship_endpoints(self, rel_type: str, start_label: str, end_label: str) -> tuple[list[str], list[str]]:
        """(start keys, end keys) of every relationship of the type from ``start_label`` to ``end_label``.

        Parallel lists, one entry per relationship (two relationships between the same nodes that
        differ in identity properties give two entries), in no particular order. Properties are not
        read.
        """
        check_endpoints(rel_type, start_label, end_label)
        starts: list[str] = []
        ends: list[str] = []
        for rel in self.iter_relationships(rel_type):
            if rel.start_label == start_label and rel.end_label == end_label:
                starts.append(rel.start)
                ends.append(rel.end)
        return starts, ends

    def graph_keys(
        self, labels: Iterable[str], relationships: Iterable[tuple[str, str, str]]
    ) -> tuple[int, dict[str, list[str]], dict[tuple[str, str, str], tuple[list[str], list[str]]]]:
        """The data version, :meth:`node_keys` of each label and :meth:`relationship_endpoints` of
        each ``(type, start label, end label)``, read together (in one read transaction where the
        store has them). The version is read first, so it is never newer than the keys."""
        version = self.version()
        keys = {label: self.node_keys(label) for label in labels}
        rels = {(t, sl, el): self.relationship_endpoints(t, sl, el) for t, sl, el in relationships}
        return version, keys, rels
