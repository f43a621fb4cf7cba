"""The in-memory graph both stores' snapshots use: a compact networkx ``MultiDiGraph``.

Same shape as a plain ``MultiDiGraph`` built with ``add_node``/``add_edge``: nodes ``(label, key)`` with
their properties (plus ``_label``), edges keyed by ``(type, identity-json)`` carrying the relationship's
properties. What differs is only how much memory it takes at a million nodes:

- :class:`GraphBuilder` gives every edge end the node's own id tuple (not a copy per edge), one key tuple
  per relationship type when it has no identity properties, one string object per distinct label,
  type and property name, and one per distinct repeated value (countries, statuses, channels, notes);
- every relationship without properties shares :data:`EMPTY_PROPS`, an empty mapping that refuses
  changes (a ``dict`` subclass, so readers, ``json`` and ``orjson`` see a dict);
- :class:`SnapshotGraph` does not cache its edge and degree views (networkx's views hold the graph, a
  reference cycle that only the cyclic collector can free: a frozen graph, see
  :func:`sitegraph.queries.snapshot.collect_garbage`, would then never be freed);
- :func:`cow_copy` makes a new graph that shares every inner dict with the old one, and the write
  helpers below copy only what they change (copy on write): a write while a snapshot holds the graph
  costs three outer dict copies, not a copy of the whole graph.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any, NoReturn

import networkx as nx
from networkx.classes.reportviews import (
    DiMultiDegreeView,
    InMultiDegreeView,
    InMultiEdgeView,
    OutMultiDegreeView,
    OutMultiEdgeView,
)

from sitegraph.graph.schema import NODES, RELATIONSHIPS

NodeId = tuple[str, str]
EdgeKey = tuple[str, str]


class _FrozenEmptyProps(dict[str, Any]):
    """An empty ``dict`` that refuses to change: shared by every relationship without properties."""

    __slots__ = ()

    def _refuse(self, *args: Any, **kwargs: Any) -> NoReturn:
        raise TypeError("relationship properties in a snapshot graph are read-only")

    __setitem__ = __delitem__ = setdefault = pop = popitem = clear = __ior__ = _refuse

    def update(self, *args: Any, **kwargs: Any) -> None:
        if kwargs or any(args):
            self._refuse()

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, ())

    def __repr__(self) -> str:
        return "{}"


EMPTY_PROPS: dict[str, Any] = _FrozenEmptyProps()


class SnapshotGraph(nx.MultiDiGraph):
    """A ``MultiDiGraph`` whose edge and degree views are made per access instead of cached.

    networkx caches ``G.edges`` & co. on the graph, and those views hold the graph: a cycle. Without it
    a dropped graph is freed by reference counting alone, even after ``gc.freeze()``.
    """

    _owned: _Owned | None = None  # set on copies made by cow_copy: which inner dicts are this graph's own

    # networkx's own views, made per access (its cached_property versions would hold the graph)
    edges = out_edges = property(OutMultiEdgeView)
    in_edges = property(InMultiEdgeView)
    degree = property(DiMultiDegreeView)
    in_degree = property(InMultiDegreeView)
    out_degree = property(OutMultiDegreeView)


def clear_nx_cache(g: nx.MultiDiGraph) -> None:
    """networkx's per-graph cache (backends): to be cleared after changing the graph's dicts directly."""
    clear = getattr(nx, "_clear_cache", None)
    if clear is not None:
        clear(g)


# --- building: interned, shared, compact -------------------------------------------------------------

_CHECK_EVERY = 4096  # values of one (owner, property) between checks of how repetitive they are
_MAX_DISTINCT = 0.9  # stop interning a property once more than this share of its values were new


class _Prop:
    __slots__ = ("name", "seen", "table")

    def __init__(self, name: str) -> None:
        self.name = sys.intern(name)
        self.table: dict[str, str] | None = {}
        self.seen = 0


class _Interner:
    """Property names interned; one string object per distinct value, per (label or type, property).

    Adaptive: a property whose values are nearly all distinct (timestamps, ids) stops being interned
    after a few thousand values and its table is dropped, so unique values cost no table entry.
    """

    def __init__(self) -> None:
        self._props: dict[str, dict[str, _Prop]] = {}

    def props(self, owner: str, props: Mapping[str, Any], out: dict[str, Any] | None = None) -> dict[str, Any]:
        """``props`` copied into ``out`` (a new dict by default), names interned, repeated strings shared."""
        if out is None:
            out = {}
        known = self._props.get(owner)
        if known is None:
            known = self._props[owner] = {}
        for name, value in props.items():
            prop = known.get(name)
            if prop is None:
                prop = known[name] = _Prop(name)
            table = prop.table
            if table is not None:
                kind = type(value)
                if kind is str:
                    value = table.setdefault(value, value)
                elif kind is list:
                    for i, v in enumerate(value):  # in place: the list is the reader's fresh one
                        if type(v) is str:
                            value[i] = table.setdefault(v, v)
                else:
                    out[prop.name] = value
                    continue
                prop.seen += 1
                if not prop.seen % _CHECK_EVERY and len(table) > _MAX_DISTINCT * prop.seen:
                    prop.table = None  # nearly all distinct: stop, and free the table
            out[prop.name] = value
        return out


_LABELS: dict[str, str] = {label: label for label in NODES}
_TYPES: dict[str, str] = {rtype: rtype for rtype in RELATIONSHIPS}
_NO_IDENTITY = "{}"


class GraphBuilder:
    """Builds a :class:`SnapshotGraph` from streamed nodes and relationships (in any order).

    ``add_node`` of a node already present (added bare as an edge end) merges its properties, and
    ``add_edge`` of an edge already present merges too: what ``add_node``/``add_edges_from`` do.
    """

    def __init__(self) -> None:
        self.graph = SnapshotGraph()
        self.ids: dict[str, dict[str, NodeId]] = {}  # {label: {key: the node's id tuple}} (read-only outside)
        self._values = _Interner()
        self.edge_keys: dict[str, dict[str, EdgeKey]] = {}  # {type: {identity json: edge key}} (read-only outside)

    def node_id(self, label: str, key: str) -> NodeId:
        """The graph's own id tuple for (label, key); a bare node is added when it is not there yet."""
        ids = self.ids.get(label)
        if ids is None:
            label = _LABELS.get(label) or sys.intern(label)
            ids = self.ids[label] = {}
        nid = ids.get(key)
        if nid is None:
            nid = ids[key] = (_LABELS.get(label) or sys.intern(label), key)
            g = self.graph
            g._node[nid] = {}
            g._succ[nid] = {}
            g._pred[nid] = {}
        return nid

    def props(self, owner: str, props: Mapping[str, Any], out: dict[str, Any] | None = None) -> dict[str, Any]:
        """Properties as the graph holds them (into ``out`` when given): names interned, repeated values shared."""
        return self._values.props(owner, props, out)

    def add_node(self, label: str, key: str, attrs: dict[str, Any]) -> None:
        """Add a node with its attribute dict (adopted as it is: build it with :meth:`props`)."""
        nid = self.node_id(label, key)
        node = self.graph._node
        if node[nid]:
            node[nid].update(attrs)
        else:
            node[nid] = attrs

    def edge_key(self, rtype: str, ident: str) -> EdgeKey:
        """The shared key tuple of a relationship of type ``rtype`` with identity JSON ``ident``."""
        keys = self.edge_keys.get(rtype)
        if keys is None:
            rtype = _TYPES.get(rtype) or sys.intern(rtype)
            keys = self.edge_keys[rtype] = {}
        ek = keys.get(ident)
        if ek is None:
            if ident == _NO_IDENTITY:
                ident = _NO_IDENTITY
            ek = keys[ident] = (_TYPES.get(rtype) or sys.intern(rtype), ident)
        return ek

    def add_edge(self, u: NodeId, v: NodeId, ek: EdgeKey, props: Mapping[str, Any]) -> None:
        """Add an edge between ids from :meth:`node_id`; ``props`` as built by :meth:`edge_props`."""
        g = self.graph
        keydict = g._succ[u].get(v)
        if keydict is None:
            g._succ[u][v] = g._pred[v][u] = {ek: props}
            return
        data = keydict.get(ek)
        keydict[ek] = props if data is None else freeze_props({**data, **props})

    def edge_props(self, rtype: str, props: Mapping[str, Any]) -> dict[str, Any]:
        return self.props(rtype, props) if props else EMPTY_PROPS

    def finish(self) -> SnapshotGraph:
        self.ids.clear()
        self.edge_keys.clear()
        self._values = _Interner()
        clear_nx_cache(self.graph)
        return self.graph


def freeze_props(props: dict[str, Any]) -> dict[str, Any]:
    """``props``, or the shared empty mapping when it is empty."""
    return props if props else EMPTY_PROPS


# --- copy on write --------------------------------------------------------------------------------


@dataclass
class _Owned:
    """What a copy made by :func:`cow_copy` has copied so far (everything else is shared)."""

    node: set[NodeId] = field(default_factory=set)
    succ: set[NodeId] = field(default_factory=set)
    pred: set[NodeId] = field(default_factory=set)
    keydicts: set[tuple[NodeId, NodeId]] = field(default_factory=set)


def cow_copy(g: nx.MultiDiGraph) -> SnapshotGraph:
    """A new graph equal to ``g`` that shares all of ``g``'s inner dicts.

    Change it only through the helpers of this module: they copy a shared dict before changing it, so
    ``g`` never changes. Costs three dict copies of the node count (about 0.1 s and 100 MiB at 1.2 M
    nodes) instead of a copy of every node and edge.
    """
    h = SnapshotGraph()
    h.graph = dict(g.graph)
    h._node = dict(g._node)
    h._adj = dict(g._succ)
    h._succ = h._adj
    h._pred = dict(g._pred)
    h._owned = _Owned()
    return h


def _own_succ(g: nx.MultiDiGraph, u: NodeId) -> dict[NodeId, dict[EdgeKey, Any]]:
    owned: _Owned | None = getattr(g, "_owned", None)
    nbrs: dict[NodeId, dict[EdgeKey, Any]] = g._succ[u]
    if owned is not None and u not in owned.succ:
        nbrs = g._succ[u] = dict(nbrs)
        owned.succ.add(u)
    return nbrs


def _own_pred(g: nx.MultiDiGraph, v: NodeId) -> dict[NodeId, dict[EdgeKey, Any]]:
    owned: _Owned | None = getattr(g, "_owned", None)
    nbrs: dict[NodeId, dict[EdgeKey, Any]] = g._pred[v]
    if owned is not None and v not in owned.pred:
        nbrs = g._pred[v] = dict(nbrs)
        owned.pred.add(v)
    return nbrs


def _own_keydict(g: nx.MultiDiGraph, u: NodeId, v: NodeId) -> dict[EdgeKey, Any] | None:
    """The (writable) keydict of u -> v, or None when there is no edge u -> v."""
    owned: _Owned | None = getattr(g, "_owned", None)
    keydict: dict[EdgeKey, Any] | None = g._succ[u].get(v)
    if keydict is None or owned is None or (u, v) in owned.keydicts:
        return keydict
    keydict = dict(keydict)
    _own_succ(g, u)[v] = keydict
    _own_pred(g, v)[u] = keydict  # networkx shares one keydict between succ[u][v] and pred[v][u]
    owned.keydicts.add((u, v))
    return keydict


def _merged(data: Mapping[str, Any], props: Mapping[str, Any]) -> dict[str, Any]:
    """``data`` with ``props`` merged (a None value removes the property), as a new dict."""
    out = dict(data)
    for name, value in props.items():
        if value is None:
            out.pop(name, None)
        else:
            out[name] = value
    return freeze_props(out)


def upsert_node(g: nx.MultiDiGraph, nid: NodeId, base: Mapping[str, Any], props: Mapping[str, Any]) -> None:
    """Merge ``props`` into the node (created with the attributes ``base`` when new)."""
    old = g._node.get(nid)
    if old is None:
        g._node[nid] = _merged(base, props) or {}
        g._succ[nid] = {}
        g._pred[nid] = {}
        return
    owned: _Owned | None = getattr(g, "_owned", None)
    if owned is None or nid in owned.node:
        for name, value in props.items():
            if value is None:
                old.pop(name, None)
            else:
                old[name] = value
        return
    g._node[nid] = dict(_merged(old, props))
    owned.node.add(nid)


def upsert_edge(g: nx.MultiDiGraph, u: NodeId, v: NodeId, ek: EdgeKey, props: Mapping[str, Any]) -> None:
    """Merge ``props`` into the edge u -> v keyed ``ek`` (created when missing, with bare end nodes)."""
    for nid in (u, v):
        if nid not in g._node:
            g._node[nid] = {}
            g._succ[nid] = {}
            g._pred[nid] = {}
    keydict = _own_keydict(g, u, v)
    if keydict is None:
        _own_succ(g, u)[v] = keydict = {}
        _own_pred(g, v)[u] = keydict
        owned: _Owned | None = getattr(g, "_owned", None)
        if owned is not None:
            owned.keydicts.add((u, v))
    keydict[ek] = _merged(keydict.get(ek, EMPTY_PROPS), props)


def remove_edge(g: nx.MultiDiGraph, u: NodeId, v: NodeId, ek: EdgeKey) -> None:
    keydict = _own_keydict(g, u, v)
    if keydict is None or ek not in keydict:
        raise nx.NetworkXError(f"there is no edge {u}-{v} keyed {ek}")
    del keydict[ek]
    if not keydict:
        del _own_succ(g, u)[v]
        del _own_pred(g, v)[u]


def remove_nodes(g: nx.MultiDiGraph, nids: Iterable[NodeId]) -> None:
    """Remove the nodes present and their edges."""
    owned: _Owned | None = getattr(g, "_owned", None)
    for n in nids:
        if n not in g._node:
            continue
        for v in list(g._succ[n]):
            del _own_pred(g, v)[n]
        for u in list(g._pred[n]):
            del _own_succ(g, u)[n]
        del g._node[n], g._succ[n], g._pred[n]
        if owned is not None:
            owned.node.discard(n)
            owned.succ.discard(n)
            owned.pred.discard(n)
    clear_nx_cache(g)
