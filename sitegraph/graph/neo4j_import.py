"""A first large load into the project's own local Neo4j with ``neo4j-admin database import full``.

Neo4j's recommended way to load a large graph into an empty database is its offline importer, which
writes the store files directly instead of running transactions. It needs the database offline, so
this path is only for the local server that :mod:`sitegraph.graph.localserver` manages (the one
``sitegraph neo4j start`` runs; it can be stopped and started again from here):

1. everything is validated first, as for every load (rows, endpoints against the batch and the store);
2. the database must hold nothing but sitegraph's own labels, types and indexes, and few of them (the
   ontology, say: at most :data:`MAX_EXISTING` nodes and relationships). Those are read and written
   into the import with the load merged on top, exactly as the transactional upserts would merge them;
3. the importer's CSV files are written (typed headers, one id space per label), the server is
   stopped, the old database files are moved aside, the importer runs, the server starts again and
   the schema's constraints and indexes are created; the data version is the previous one plus one;
4. if the importer or the restart fails, the moved-aside files are put back and the server started:
   the database is as it was before the load, and the error says so.

The result is the same graph, property for property and type for type, as
:meth:`Neo4jStore.write <sitegraph.graph.neo4j_store.Neo4jStore.write>` gives on the same database
(``tests/test_neo4j_import.py`` compares both). While the server is down (the importer's run plus a
restart), other clients get "unavailable" errors; a write that another client commits between the
check of the database and the stop would be lost, so use this path for a first load, not beside a
live writer (``sitegraph load --bulk never`` forces the transactional path).
"""

from __future__ import annotations

import contextlib
import logging
import math
import os
import re
import resource
import shutil
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path
from typing import IO, Any
from urllib.parse import urlsplit

from sitegraph.errors import StoreError
from sitegraph.graph.localserver import ADMIN_TOOL, JVM_FLAGS, ClassArchive, LocalNeo4j, LocalServerError, classpath, find_java
from sitegraph.graph.neo4j_store import Neo4jStore
from sitegraph.graph.schema import NODES, RELATIONSHIPS, node_spec, rel_spec
from sitegraph.graph.store import GraphBatch, Props, RelKey, gc_paused
from sitegraph.workers import in_fork, spare_core

log = logging.getLogger(__name__)

#: ``auto`` takes the bulk path from this many nodes + relationships. Measured on 2 cores: at 0.97 M
#: (medium) both paths took the same time (stopping and restarting the server, the importer's start and
#: the index build are fixed costs); at 4.83 M (large) the bulk write was 1.5x faster.
MIN_ITEMS = 1_000_000
#: The most nodes + relationships the database may already hold (read back and imported again).
MAX_EXISTING = 50_000
#: From this many relationships, a forked worker writes part of the importer's files (2 cores: the
#: relationship rows are most of the rows; see :func:`write_import_files`).
FORK_RELS = 200_000
BULK_CHOICES = ("auto", "always", "never")

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*\Z")
_ARRAY_DELIMITER = "\x1f"  # unit separator: never in validated text (checked per element anyway)
_LOCAL_HOSTS = ("127.0.0.1", "localhost", "::1")


class BulkRefused(StoreError):
    """The bulk path cannot be used for this load (the reason says why); nothing was changed."""


class BulkFailed(StoreError):
    """The importer or the restart failed; the database was put back as it was before the load."""


@dataclass
class BulkReport:
    """What a bulk load did and how long each phase took (seconds)."""

    nodes: int = 0
    relationships: int = 0
    files: int = 0
    check_seconds: float = 0.0
    files_seconds: float = 0.0
    stop_seconds: float = 0.0
    import_seconds: float = 0.0
    start_seconds: float = 0.0
    schema_seconds: float = 0.0
    #: the importer's own account of its import (its ``IMPORT DONE in ...``); the rest of
    #: :attr:`import_seconds` is its JVM's start, its set-up (estimates, store creation) and its exit
    importer_work_seconds: float = 0.0
    importer_peak_rss_mib: float = 0.0
    importer_output: str = field(default="", repr=False)

    @property
    def seconds(self) -> float:
        # the server stops while the files are written
        files_or_stop = max(self.files_seconds, self.stop_seconds)
        return self.check_seconds + files_or_stop + self.import_seconds + self.start_seconds + self.schema_seconds


# --- which server ----------------------------------------------------------------------------------


def local_server_for(store: Neo4jStore, home: Path) -> LocalNeo4j | None:
    """The running local server under ``home`` (``SITEGRAPH_HOME/neo4j``) if ``store`` talks to it, else None."""
    server = LocalNeo4j.from_home(home)
    if server is None or not server.is_running():
        return None
    return server if serves(server, store) else None


def serves(server: LocalNeo4j, store: Neo4jStore) -> bool:
    """True if ``store`` is connected to ``server`` (same loopback Bolt port, default database)."""
    url = urlsplit(store.uri)
    return (
        url.hostname in _LOCAL_HOSTS
        and server.host in _LOCAL_HOSTS
        and url.port == server.bolt_port
        and store.database == "neo4j"
    )


# --- what the database holds -------------------------------------------------------------------------


@dataclass
class _Existing:
    version: int
    nodes: dict[str, dict[str, Props]]
    rels: dict[RelKey, list[Props]]

    def __len__(self) -> int:
        return sum(len(v) for v in self.nodes.values()) + sum(len(v) for v in self.rels.values())


def _our_index_names() -> set[str]:
    names: set[str] = set()
    for spec in NODES.values():
        names.add(f"{spec.label.lower()}_{spec.key}_unique")
        names.update(f"{spec.label.lower()}_{prop}" for prop in spec.indexes)
        if spec.fulltext:
            names.add(f"{spec.label.lower()}_fulltext")
    return names


def _read_existing(store: Neo4jStore) -> _Existing:
    """Everything the database holds, if it is little and only sitegraph's; :class:`BulkRefused` otherwise."""
    counts = store.read("MATCH (n) RETURN count(n) AS n")[0]["n"] + store.read("MATCH ()-[r]->() RETURN count(r) AS n")[0]["n"]
    if counts > MAX_EXISTING:
        raise BulkRefused(
            f"the database already holds {counts:,} nodes and relationships (the bulk path is for a first load: "
            f"at most {MAX_EXISTING:,})"
        )
    labels, types = sorted(NODES), sorted(RELATIONSHIPS)
    foreign = store.read(
        "MATCH (n) WHERE size(labels(n)) <> 1 OR NOT labels(n)[0] IN $labels RETURN count(n) AS n", {"labels": labels}
    )[0]["n"]
    foreign += store.read("MATCH ()-[r]->() WHERE NOT type(r) IN $types RETURN count(r) AS n", {"types": types})[0]["n"]
    if foreign:
        raise BulkRefused(f"the database holds {foreign} node(s) or relationship(s) that are not sitegraph's")
    ours = _our_index_names()
    others = [r["name"] for r in store.read("SHOW INDEXES YIELD name, type RETURN name, type") if r["type"] != "LOOKUP"]
    others += [r["name"] for r in store.read("SHOW CONSTRAINTS YIELD name RETURN name")]
    others = sorted(set(others) - ours)
    if others:
        raise BulkRefused(f"the database has indexes or constraints that sitegraph did not create: {', '.join(others)}")
    version = store.version()
    nodes: dict[str, dict[str, Props]] = {}
    for r in store.read("MATCH (n) RETURN labels(n)[0] AS l, properties(n) AS p"):
        spec = node_spec(r["l"])
        props = dict(r["p"])
        key = props.pop(spec.key, None)
        if not isinstance(key, str) or not key:
            raise BulkRefused(f"a {spec.label} node in the database has no {spec.key}")
        if key in nodes.setdefault(spec.label, {}):
            raise BulkRefused(f"two {spec.label} nodes in the database have {spec.key} {key!r}")
        nodes[spec.label][key] = props
    rels: dict[RelKey, list[Props]] = {}
    query = (
        "MATCH (a)-[r]->(b) RETURN labels(a)[0] AS sl, coalesce(a.id, a.iri) AS ak, a.iri AS ai, type(r) AS t, "
        "labels(b)[0] AS el, b.id AS bk, b.iri AS bi, properties(r) AS p"
    )
    for r in store.read(query):
        sl, el = node_spec(r["sl"]), node_spec(r["el"])
        if (sl.label, el.label) not in rel_spec(r["t"]).endpoints:
            raise BulkRefused(f"a {r['t']} relationship in the database joins {sl.label} to {el.label}")
        start = r["ai"] if sl.key == "iri" else r["ak"]
        end = r["bi"] if el.key == "iri" else r["bk"]
        props = dict(r["p"])
        ident = tuple((name, props.get(name, "")) for name in rel_spec(r["t"]).identity)
        rels.setdefault(RelKey(r["t"], sl.label, start, el.label, end, ident), []).append(props)
    return _Existing(version, nodes, rels)


def _check_endpoints(batch: GraphBatch, existing: _Existing) -> None:
    """Every relationship's endpoints are in the batch or the database (all of which ``existing`` holds);
    the same error as :meth:`GraphStore.check_endpoints_exist`, without asking the server."""
    empty: dict[str, Props] = {}
    known = {label: (batch.nodes.get(label, empty), existing.nodes.get(label, empty)) for label in NODES}
    missing: dict[str, set[str]] = {}
    for _, sl, start, el, end, _ in batch.rels:
        a, b = known[sl]
        if start not in a and start not in b:
            missing.setdefault(sl, set()).add(start)
        a, b = known[el]
        if end not in a and end not in b:
            missing.setdefault(el, set()).add(end)
    if missing:
        parts = []
        for label, keys in missing.items():
            shown = sorted(keys)
            parts.append(f"{len(shown)} {label} node(s) not found: " + ", ".join(shown[:5]) + (" ..." if len(shown) > 5 else ""))
        raise StoreError("relationships point at nodes that do not exist: " + "; ".join(parts))


# --- the importer's CSV files ------------------------------------------------------------------------


def _q(value: str) -> str:
    return '"' + value.replace('"', '""') + '"'


def _float(value: float) -> str:
    if math.isfinite(value):
        return repr(value)
    return "NaN" if math.isnan(value) else ("Infinity" if value > 0 else "-Infinity")


_SCALAR_TYPES: dict[type, str] = {str: "string", bool: "boolean", int: "long", float: "double"}


def _type_of(name: str, value: Any) -> str:
    """The importer's type of a property value (``string``, ``long[]``...); BulkRefused if it has none."""
    t = _SCALAR_TYPES.get(type(value))
    if t is not None:
        return t
    if isinstance(value, list):
        if not value:
            raise BulkRefused(f"property {name!r} holds an empty list, which the importer cannot write")
        et = _SCALAR_TYPES.get(type(value[0]))
        if et is None or any(type(v) is not type(value[0]) for v in value):
            raise BulkRefused(f"property {name!r} holds a list the importer cannot write")
        return et + "[]"
    raise BulkRefused(f"property {name!r} has a value of type {type(value).__name__} the importer cannot write")


def _cell(name: str, value: Any) -> str:
    if type(value) is str:
        return _q(value)
    if type(value) is bool:
        return "true" if value else "false"
    if type(value) is int:
        if not -(2**63) <= value < 2**63:
            raise BulkRefused(f"property {name!r}: {value} does not fit in 64 bits")
        return str(value)
    if type(value) is float:
        return _float(value)
    parts: list[str] = []
    for v in value:
        if type(v) is str:
            if _ARRAY_DELIMITER in v or not v:
                raise BulkRefused(f"property {name!r} holds a list element the importer cannot write")
            parts.append(v)
        else:
            parts.append(_cell(name, v))
    return _q(_ARRAY_DELIMITER.join(parts))


class _Files:
    """One importer CSV file per (label or type, endpoints, property names and types).

    Nodes get the importer's actual node ids (``--id-type=actual``: no id mapping in the importer,
    the relationships' ends are node ids already): node rows are kept as ``(key, row)`` until
    :meth:`number_nodes` numbers them file after file (ids ascending across the files, as the
    importer needs them) and :meth:`write_nodes` writes them; relationship rows are written in
    chunks with the ids of their ends (:attr:`ids`), also by another instance in a forked worker
    (its own files, named with its ``prefix``).
    """

    def __init__(self, folder: Path, prefix: str = "") -> None:
        self.folder = folder
        self.prefix = prefix
        self.open: dict[tuple[Any, ...], tuple[IO[str], list[Any], str]] = {}
        self.node_args: list[str] = []
        self.rel_args: list[str] = []
        self.multiline: list[str] = []
        self._multi: set[str] = set()
        self.count = 0
        #: label -> node key -> node id, once :meth:`number_nodes` ran
        self.ids: dict[str, dict[str, int]] = {}

    def _file(self, group: tuple[Any, ...], header: str, arg: str, *, rel: bool) -> tuple[IO[str], list[Any], str]:
        entry = self.open.get(group)
        if entry is None:
            self.count += 1
            path = self.folder / f"{self.prefix}{'r' if rel else 'n'}{self.count:04d}.csv"
            fh = path.open("w", encoding="utf-8", newline="")
            fh.write(header + "\n")
            (self.rel_args if rel else self.node_args).append(f"{arg}={path}")
            entry = (fh, [], str(path))
            self.open[group] = entry
        return entry

    def add(self, entry: tuple[IO[str], list[Any], str], line: str) -> None:
        buf = entry[1]
        buf.append(line)
        if len(buf) >= 20_000:
            self._flush(entry)

    def number_nodes(self) -> None:
        """Give every node row its id (ascending over the node files in the order of the arguments);
        :meth:`write_nodes` writes them."""
        n = 0
        for group, entry in self.open.items():
            if group[0] != "n":
                continue
            rows: list[Any] = entry[1]
            ids = self.ids.setdefault(group[1], {})
            ids.update(zip([key for key, _ in rows], range(n, n + len(rows)), strict=True))
            n += len(rows)

    def flush(self) -> None:
        for fh, _, _ in self.open.values():
            fh.flush()

    def node_rows(self) -> int:
        return sum(len(entry[1]) for group, entry in self.open.items() if group[0] == "n")

    def write_nodes(self) -> None:
        """Write the node rows with the ids :meth:`number_nodes` gave them."""
        n = 0
        for group, entry in self.open.items():
            if group[0] != "n":
                continue
            rows: list[Any] = entry[1]
            entry[1][:] = [f"{i},{line}" for i, (_, line) in enumerate(rows, n)]
            n += len(rows)
            self._flush(entry)

    def _flush(self, entry: tuple[IO[str], list[Any], str]) -> None:
        fh, buf, path = entry
        if not buf:
            return
        text = "".join(buf)
        # every row ends with one line break: any other one (or a carriage return) is inside a value
        if path not in self._multi and (text.count("\n") != len(buf) or "\r" in text):
            self._multi.add(path)
            self.multiline.append(path)
        buf.clear()
        fh.write(text)

    def close(self) -> None:
        for group, entry in self.open.items():
            if group[0] == "n" and entry[1] and isinstance(entry[1][0], tuple):
                entry[1].clear()  # not numbered: the files were not finished (an error), so not used
            self._flush(entry)
            entry[0].close()


def _props_cells(props: Props) -> tuple[tuple[tuple[str, str], ...], str]:
    """(the property names and types, the row's cells after the id columns) without None values."""
    sig: list[tuple[str, str]] = []
    cells: list[str] = []
    for name, value in props.items():
        if value is None:
            continue
        sig.append((name, _type_of(name, value)))
        cells.append(_cell(name, value))
    return tuple(sig), ("," + ",".join(cells)) if cells else ""


def _check_names(sig: tuple[tuple[str, str], ...]) -> None:
    for name, _ in sig:
        if not _NAME.match(name):
            raise BulkRefused(f"property name {name!r} cannot be a column of the importer's CSV")


class _Slow(Exception):
    """A value the fast row formatter does not handle: the row takes the general path."""


def _str_list(value: list[Any]) -> str:
    for v in value:
        if type(v) is not str or not v or _ARRAY_DELIMITER in v:
            raise _Slow
    if not value:
        raise _Slow
    return _q(_ARRAY_DELIMITER.join(value))


def _long(value: int) -> str:
    text = str(value)
    if len(text) > 18 and not -(2**63) <= value < 2**63:
        raise _Slow
    return text


_FAST: dict[type, tuple[str, Callable[[Any], str]]] = {
    str: ("string", _q),
    int: ("long", _long),
    float: ("double", _float),
    bool: ("boolean", lambda v: "true" if v else "false"),
    list: ("string[]", _str_list),
}


def _plan(
    names: tuple[str, ...], types: tuple[type, ...]
) -> tuple[tuple[tuple[str, str], ...], list[Callable[[Any], str]]] | None:
    """(header columns, formatters) for rows with these property names and value types; None: general path."""
    sig: list[tuple[str, str]] = []
    fmts: list[Callable[[Any], str]] = []
    for name, t in zip(names, types, strict=True):
        fast = _FAST.get(t)
        if fast is None:
            return None
        sig.append((name, fast[0]))
        fmts.append(fast[1])
    _check_names(tuple(sig))
    return tuple(sig), fmts


def write_import_files(folder: Path, batch: GraphBatch, existing: _Existing, version: int) -> _Files:
    """The importer's CSV files for the database's content with ``batch`` upserted into it.

    Rows of the batch whose values are plain (the usual case) are formatted by a fast path: one
    formatter per column, chosen once per combination of property names and value types; the others
    (merged with what the database holds, None values, lists of numbers...) by the general path.
    From :data:`FORK_RELS` relationships on, a forked worker writes part of the relationships' rows
    if a core is idle (:func:`~sitegraph.workers.spare_core`).
    """
    files = _Files(folder)
    checked: set[tuple[tuple[str, str], ...]] = set()
    try:
        for label, rows in batch.nodes.items():
            spec = node_spec(label)
            before = existing.nodes.get(label, {})
            plans: dict[Any, Any] = {}
            for key, props in rows.items():
                if (before and key in before) or label == "SitegraphMeta":
                    old = before.get(key, {})
                    merged = {**old, **props}
                    if label == "SitegraphMeta":
                        merged["version"] = version
                    _node_row(files, spec.label, spec.key, key, merged, checked)
                    continue
                ck = (tuple(props), tuple(map(type, props.values())))
                plan: Any = plans.get(ck)
                if plan is None:
                    made = _plan(*ck)
                    if made is None:
                        plans[ck] = plan = False
                    else:
                        sig, fmts = made
                        header = ",".join([":ID", f"{spec.key}:string", *(f"{n}:{t}" for n, t in sig)])
                        entry = files._file(("n", spec.label, sig), header, f"--nodes={spec.label}", rel=False)
                        plans[ck] = plan = (entry, fmts)
                if plan is False:
                    _node_row(files, spec.label, spec.key, key, props, checked)
                    continue
                entry, fmts = plan
                try:
                    cells = "".join(["," + f(v) for f, v in zip(fmts, props.values(), strict=True)])
                except _Slow:
                    _node_row(files, spec.label, spec.key, key, props, checked)
                    continue
                entry[1].append((key, '"' + key.replace('"', '""') + '"' + cells + "\n"))
        for label, rows in existing.nodes.items():
            spec = node_spec(label)
            written = batch.nodes.get(label, {})
            for key, props in rows.items():
                if key not in written:
                    if label == "SitegraphMeta":
                        props = {**props, "version": version}
                    _node_row(files, spec.label, spec.key, key, props, checked)
        if "meta" not in existing.nodes.get("SitegraphMeta", {}) and "meta" not in batch.nodes.get("SitegraphMeta", {}):
            _node_row(files, "SitegraphMeta", "id", "meta", {"version": version}, checked)
        files.number_nodes()
        rels = batch.rels
        # The relationships' rows need only the node ids: a worker forked now writes the last part of
        # them into files of its own while this process writes the node rows and the first part (about
        # as much work each: a node row costs about two thirds of a relationship row).
        split = len(rels) >= FORK_RELS and spare_core()
        cut = max(0, len(rels) // 2 - files.node_rows() // 3) if split else len(rels)
        if split:
            log.info("importer files: %d of %d relationships in a forked worker", len(rels) - cut, len(rels))
        files.flush()  # nothing of this process's buffers in the worker's copy
        forked = in_fork(_write_rels_part, (folder, batch, existing, files.ids), cut) if cut < len(rels) else None
        with forked or contextlib.nullcontext() as part:
            files.write_nodes()
            _write_rels(files, islice(rels.items(), cut), existing.rels, checked)
            for rk, olds in existing.rels.items():
                if rk not in rels:
                    for old in olds:
                        _rel_row(files, rk, old, checked)
            if part is not None:
                args, multiline, count = part()
                files.rel_args += args
                files.multiline += multiline
                files.count += count
    finally:
        files.close()
    return files


def _write_rels(
    files: _Files, items: Iterable[tuple[RelKey, Props]], old_rels: dict[RelKey, list[Props]], checked: set[Any]
) -> None:
    """The rows of these relationships of the batch (merged with what the database holds)."""
    ids = files.ids
    rel_plans: dict[Any, Any] = {}
    plan: Any
    for rk, props in items:
        if old_rels and rk in old_rels:
            for old in old_rels[rk]:
                _rel_row(files, rk, {**old, **props}, checked)
            continue
        rtype, sl, start, el, end, _ = rk
        rck: tuple[Any, ...] = (rtype, sl, el, tuple(props), tuple(map(type, props.values()))) if props else (rtype, sl, el)
        plan = rel_plans.get(rck)
        if plan is None:
            made = _plan(tuple(props), tuple(map(type, props.values()))) if props else ((), [])
            if made is None:
                rel_plans[rck] = plan = False
            else:
                sig, fmts = made
                header = ",".join([":START_ID", ":END_ID", *(f"{n}:{t}" for n, t in sig)])
                entry = files._file(("r", rtype, sl, el, sig), header, f"--relationships={rel_spec(rtype).type}", rel=True)
                rel_plans[rck] = plan = (entry, fmts, ids[sl], ids[el])
        if plan is False:
            _rel_row(files, rk, props, checked)
            continue
        entry, fmts, starts, ends = plan
        if props:
            try:
                cells = "".join(["," + f(v) for f, v in zip(fmts, props.values(), strict=True)])
            except _Slow:
                _rel_row(files, rk, props, checked)
                continue
        else:
            cells = ""
        buf = entry[1]
        buf.append(f"{starts[start]},{ends[end]}{cells}\n")
        if len(buf) >= 20_000:
            files._flush(entry)


def _write_rels_part(
    state: tuple[Path, GraphBatch, _Existing, dict[str, dict[str, int]]], cut: int
) -> tuple[list[str], list[str], int]:
    """In a forked worker: the rows of the batch's relationships from ``cut`` on, into files of its own
    (named ``w...``); their importer arguments, the files with multi-line values and how many files."""
    folder, batch, existing, ids = state
    files = _Files(folder, prefix="w")
    files.ids = ids
    try:
        _write_rels(files, islice(batch.rels.items(), cut, None), existing.rels, set())
    finally:
        files.close()
    return files.rel_args, files.multiline, files.count


def _node_row(files: _Files, label: str, key_name: str, key: str, props: Props, checked: set[Any]) -> None:
    if props:
        sig, cells = _props_cells(props)
    else:
        sig, cells = (), ""
    group = ("n", label, sig)
    entry = files.open.get(group)
    if entry is None:
        if sig not in checked:
            _check_names(sig)
            checked.add(sig)
        header = ",".join([":ID", f"{key_name}:string", *(f"{n}:{t}" for n, t in sig)])
        entry = files._file(group, header, f"--nodes={label}", rel=False)
    entry[1].append((key, _q(key) + cells + "\n"))  # numbered by files.number_nodes()


def _rel_row(files: _Files, rk: RelKey, props: Props, checked: set[Any]) -> None:
    if props:
        sig, cells = _props_cells(props)
    else:
        sig, cells = (), ""
    group = ("r", rk.type, rk.start_label, rk.end_label, sig)
    entry = files.open.get(group)
    if entry is None:
        if sig not in checked:
            _check_names(sig)
            checked.add(sig)
        header = ",".join([":START_ID", ":END_ID", *(f"{n}:{t}" for n, t in sig)])
        entry = files._file(group, header, f"--relationships={rel_spec(rk.type).type}", rel=True)
    files.add(entry, f"{files.ids[rk.start_label][rk.start]},{files.ids[rk.end_label][rk.end]}{cells}\n")


# --- the load ----------------------------------------------------------------------------------------


def refusal(store: Neo4jStore, batch: GraphBatch, server: LocalNeo4j | None, *, bulk: str = "auto") -> str | None:
    """Why the bulk path will not be taken for this load (None: it will). Reads nothing but counts."""
    if bulk == "never":
        return "--bulk never"
    if server is None:
        return "the store is not the local server that sitegraph manages (`sitegraph neo4j start`)"
    if not serves(server, store):
        return f"the store ({store.uri}, database {store.database}) is not the local server on port {server.bolt_port}"
    if not server.is_running():
        return f"the local server in {server.home} is not running"
    if bulk == "auto" and len(batch) < MIN_ITEMS:
        return f"the load is small ({len(batch):,} nodes and relationships; the bulk path starts at {MIN_ITEMS:,})"
    return None


def _importer_command(server: LocalNeo4j, java: str, files: _Files, report: Path, cds: list[str]) -> list[str]:
    return [
        java,
        "-Xms512m",
        "-Xmx1g",
        *JVM_FLAGS,
        *cds,
        "-cp",
        classpath(server.lib_dir),
        ADMIN_TOOL,
        "database",
        "import",
        "full",
        "neo4j",
        "--overwrite-destination=true",
        "--id-type=actual",
        "--bad-tolerance=0",
        "--skip-bad-relationships=false",
        "--skip-duplicate-nodes=false",
        "--strict=true",
        f"--array-delimiter=U+{ord(_ARRAY_DELIMITER):04X}",
        "--max-off-heap-memory=2G",
        f"--report-file={report}",
        *(["--multiline-fields-format=v2", "--multiline-fields=" + ",".join(files.multiline)] if files.multiline else []),
        *files.node_args,
        *files.rel_args,
    ]


def _database_dirs(server: LocalNeo4j) -> tuple[Path, Path]:
    return server.data_dir / "databases" / "neo4j", server.data_dir / "transactions" / "neo4j"


def bulk_load(
    store: Neo4jStore,
    batch: GraphBatch,
    server: LocalNeo4j,
    *,
    progress: Callable[[int], None] | None = None,
    workdir: Path | None = None,
) -> BulkReport:
    """Load ``batch`` with the offline importer into the database of ``server`` (which ``store`` talks to).

    :class:`BulkRefused` (nothing changed) if the database holds too much or anything not sitegraph's;
    :class:`BulkFailed` if the importer or the restart failed (the database was put back as it was).
    """
    reason = refusal(store, batch, server, bulk="always")
    if reason:
        raise BulkRefused(f"cannot bulk-load: {reason}")
    report = BulkReport()
    t0 = time.perf_counter()
    with gc_paused():
        existing = _read_existing(store)
        _check_endpoints(batch, existing)
    report.check_seconds = time.perf_counter() - t0
    java = find_java(server.java)
    base = Path(workdir) if workdir else server.home / "import"
    base.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="sitegraph-bulk-", dir=base) as tmp:
        folder = Path(tmp)
        # The last moment anything could change: a write after this check would be lost. The server
        # stops in the background while the files are written.
        if store.version() != existing.version:
            raise BulkRefused("the database changed while it was being checked (another writer?); nothing was changed")
        stopped: list[float] = []
        t1 = time.perf_counter()
        with _background(lambda: stopped.append(_timed(server.stop))):
            try:
                with gc_paused():
                    files = write_import_files(folder, batch, existing, existing.version + 1)
            except BaseException:
                _restart_after(stopped, server)
                raise
        report.files_seconds = time.perf_counter() - t1
        if not stopped or server.is_running():
            raise BulkRefused(f"could not stop the local server in {server.home}; nothing was changed")
        report.stop_seconds = stopped[0]
        report.files = files.count
        db_dir, tx_dir = _database_dirs(server)
        aside = server.data_dir / f"sitegraph-before-bulk-{os.getpid()}"
        shutil.rmtree(aside, ignore_errors=True)
        aside.mkdir(parents=True)
        moved: list[tuple[Path, Path]] = []
        for src in (db_dir, tx_dir):
            if src.exists():
                dst = aside / src.parent.name
                src.rename(dst)
                moved.append((src, dst))
        try:
            t3 = time.perf_counter()
            _run_importer(server, java, files, folder, report)
            report.import_seconds = time.perf_counter() - t3
            sizes = {label: len(rows) for label, rows in batch.nodes.items()}
            schema_error = _start_and_build_schema(server, store, report, sizes)
        except (BulkFailed, LocalServerError, OSError) as e:
            _put_back(server, moved)
            store.reconnect()
            raise BulkFailed(
                f"the bulk import failed, so the database was put back as it was before this load (nothing loaded): {e}"
            ) from e
        shutil.rmtree(aside, ignore_errors=True)
    if schema_error is not None:
        raise schema_error
    report.nodes = batch.node_count()
    report.relationships = batch.rel_count()
    if progress:
        progress(len(batch))
    log.info("bulk load: %s", report)
    return report


def _start_and_build_schema(
    server: LocalNeo4j, store: Neo4jStore, report: BulkReport, sizes: dict[str, int] | None = None
) -> Exception | None:
    """Start the server on the imported files and create the constraints and indexes.

    The schema is built as soon as the database answers on Bolt, while the server is still starting
    its web server (the Browser; about 6 s); then the start is waited for. If the start fails, its
    error is raised (the caller puts the old files back). An error of the schema build itself (the
    import stands) is returned.
    """
    t4 = time.perf_counter()
    failed: list[BaseException] = []

    def start() -> None:
        try:
            server.start()
        except BaseException as e:  # handed to the caller's thread below
            failed.append(e)

    thread = threading.Thread(target=start, name="sitegraph-bulk-start", daemon=True)
    thread.start()
    answered = False
    while thread.is_alive() and not answered:
        # one connectivity check at a time: a query through the store would wait in the driver's
        # retries, which back off for up to seconds while the server starts
        answered = server.bolt_ready()
        if not answered:
            time.sleep(0.1)
    report.start_seconds = time.perf_counter() - t4
    t5 = time.perf_counter()
    if not answered:  # the start finished (or failed) before a check got through
        thread.join()
        if failed:
            raise failed[0]
    store.reconnect()
    schema_error: Exception | None = None
    try:
        build_schema(store, sizes)
    except Exception as e:
        schema_error = e
    thread.join()
    if failed:
        raise failed[0]
    report.schema_seconds = time.perf_counter() - t5
    return schema_error


def schema_statements() -> tuple[list[tuple[str, str]], list[str]]:
    """The statements of :meth:`Neo4jStore.ensure_schema`: (label, uniqueness constraint) per label, then
    the other indexes (range and full-text)."""
    constraints: list[tuple[str, str]] = []
    indexes: list[str] = []
    for spec in NODES.values():
        low = spec.label.lower()
        unique = f"CREATE CONSTRAINT {low}_{spec.key}_unique IF NOT EXISTS FOR (n:{spec.label}) REQUIRE n.{spec.key} IS UNIQUE"
        constraints.append((spec.label, unique))
        indexes += [f"CREATE INDEX {low}_{prop} IF NOT EXISTS FOR (n:{spec.label}) ON (n.{prop})" for prop in spec.indexes]
        if spec.fulltext:
            props = ", ".join(f"n.{p}" for p in spec.fulltext)
            indexes.append(f"CREATE FULLTEXT INDEX {low}_fulltext IF NOT EXISTS FOR (n:{spec.label}) ON EACH [{props}]")
    return constraints, indexes


def build_schema(store: Neo4jStore, sizes: dict[str, int] | None = None) -> None:
    """The schema of :meth:`Neo4jStore.ensure_schema` on a freshly imported database.

    A uniqueness constraint's statement returns once its index is built, while a plain index is built
    in the background, and Neo4j builds one schema change at a time (constraints from two sessions
    were built one after the other). So the plain indexes are created first, in one transaction (one
    population job over the nodes), and are built while the constraints are created one by one, the
    label with the most nodes first; then the indexes are awaited, as ``ensure_schema`` does.
    ``sizes``: nodes per label (what was imported), else counted.
    """
    constraints, indexes = schema_statements()

    def create_indexes(tx: Any) -> None:
        for statement in indexes:
            tx.run(statement).consume()

    store._run_write(create_indexes)
    if sizes is None:  # from the count store, one label at a time (labels from the schema's allow-list)
        sizes = {label: store.read(f"MATCH (n:{label}) RETURN count(n) AS n")[0]["n"] for label, _ in constraints}
    counts = sizes
    for _, statement in sorted(constraints, key=lambda c: -counts.get(c[0], 0)):
        store._run_statement(statement)
    store._run_statement("CALL db.awaitIndexes(300)")


def _run_importer(server: LocalNeo4j, java: str, files: _Files, folder: Path, report: BulkReport) -> None:
    archive = ClassArchive(server.lib_dir, java, "importer")
    dump = folder / "importer-classes.jsa"
    cmd = _importer_command(server, java, files, folder / "import.report", archive.flags(dump))
    env = dict(os.environ, NEO4J_HOME=str(server.home), NEO4J_CONF=str(server.conf_dir))
    log.info("running neo4j-admin database import full (%d files)", files.count)
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    try:
        proc = subprocess.run(
            cmd, env=env, cwd=str(folder), stdin=subprocess.DEVNULL, capture_output=True, text=True, check=False, timeout=6 * 3600
        )
    except (OSError, subprocess.TimeoutExpired) as e:
        raise BulkFailed(f"could not run the importer: {e}") from e
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    report.importer_peak_rss_mib = max(before, after) / 1024
    report.importer_output = proc.stdout[-4000:] + proc.stderr[-4000:]
    if proc.returncode != 0:
        tail = "\n".join((proc.stdout + proc.stderr).strip().splitlines()[-15:])
        raise BulkFailed(f"neo4j-admin database import exited with {proc.returncode}:\n{tail}")
    report.importer_work_seconds = importer_done_seconds(proc.stdout)
    archive.promote(dump)  # the first import writes the archive the next ones start with


_DONE = re.compile(r"^IMPORT DONE in (.+?)\.?\s*$", re.MULTILINE)
_DURATION_PART = re.compile(r"(\d+)(ms|d|h|m|s)\b")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def importer_done_seconds(output: str) -> float:
    """Seconds from the importer's ``IMPORT DONE in 1m 2s 345ms.`` line (0.0 if it has none).

    >>> importer_done_seconds("...\\nIMPORT DONE in 1m 25s 346ms. \\nImported:")
    85.346
    """
    found = _DONE.search(output)
    if not found:
        return 0.0
    return round(sum(int(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(found.group(1))), 3)


def _put_back(server: LocalNeo4j, moved: list[tuple[Path, Path]]) -> None:
    """Undo a failed import: the previous database files back in place, the server running again."""
    with contextlib.suppress(LocalServerError):
        server.stop()
    for src, _ in moved:
        shutil.rmtree(src, ignore_errors=True)
    for path in _database_dirs(server):
        shutil.rmtree(path, ignore_errors=True)
    for src, dst in moved:
        dst.rename(src)
    with contextlib.suppress(OSError):
        moved[0][1].parent.rmdir() if moved else None
    server.start()


def write_load(
    store: Any,
    batch: GraphBatch,
    *,
    bulk: str = "auto",
    server: LocalNeo4j | None = None,
    progress: Callable[[int], None] | None = None,
) -> tuple[str, BulkReport | None]:
    """Write a validated load the way ``bulk`` says: ("bulk", report) or ("transactional", None).

    ``auto`` takes the bulk path for a large load into the local server's (nearly) empty database and
    the transactions otherwise (also when the importer failed: the database was put back first);
    ``always`` raises :class:`BulkRefused` or :class:`BulkFailed` instead; ``never`` writes transactions.
    """
    if bulk not in BULK_CHOICES:
        raise StoreError(f"bulk must be one of {', '.join(BULK_CHOICES)}, not {bulk!r}")
    if not isinstance(store, Neo4jStore):
        if bulk == "always":
            raise BulkRefused(f"cannot bulk-load: the bulk path is for Neo4j, not the {store.kind} store")
        store.ensure_schema()
        store.write(batch, progress=progress)
        return "transactional", None
    reason = refusal(store, batch, server, bulk=bulk)
    if reason is None:
        assert server is not None
        try:
            return "bulk", bulk_load(store, batch, server, progress=progress)
        except (BulkRefused, BulkFailed) as e:
            if bulk == "always":
                raise
            log.warning("bulk load not possible, writing transactions instead: %s", e)
    elif bulk == "always":
        raise BulkRefused(f"cannot bulk-load: {reason}")
    else:
        log.info("transactional load: %s", reason)
    store.ensure_schema()
    store.write(batch, progress=progress)
    return "transactional", None


def _timed(fn: Callable[[], Any]) -> float:
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def _restart_after(stopped: list[float], server: LocalNeo4j) -> None:
    """The files could not be written while the server stopped: start it again (nothing was changed)."""
    deadline = time.monotonic() + 120
    while not stopped and time.monotonic() < deadline:
        time.sleep(0.1)
    server.start()


@contextlib.contextmanager
def _background(fn: Callable[[], Any]) -> Iterator[threading.Thread]:
    t = threading.Thread(target=fn, daemon=True)
    t.start()
    try:
        yield t
    finally:
        t.join()
