"""The Neo4j store, through the official driver over Bolt.

Writes are batched ``UNWIND $rows AS row MERGE ...`` statements inside managed write transactions;
reads use managed read transactions, so ``neo4j://`` routing URIs work against a cluster or Aura.
Labels and relationship types are spliced into Cypher only from the schema's allow-list
(:mod:`sitegraph.graph.schema`); every value is a parameter.
"""

from __future__ import annotations

import json
import logging
import re
import threading
from collections.abc import Callable, Iterable, Iterator
from functools import partial
from typing import Any, LiteralString

import neo4j
import numpy as np
import numpy.typing as npt
from neo4j import GraphDatabase, ManagedTransaction, RoutingControl
from neo4j.exceptions import (
    AuthError,
    ClientError,
    ConstraintError,
    DriverError,
    Neo4jError,
    ServiceUnavailable,
    SessionExpired,
)

from sitegraph.errors import StoreError, StoreUnavailableError
from sitegraph.graph.schema import NODES, RELATIONSHIPS, check_endpoints, node_spec, rel_spec
from sitegraph.graph.store import Direction, GraphBatch, GraphStats, GraphStore, Props, Rel, RelKey, empty_stats, gc_paused

log = logging.getLogger(__name__)

# Rows per UNWIND statement, and the largest batch written in a single transaction (all or nothing).
CHUNK = 10_000
SINGLE_TX_LIMIT = 50_000
# Sessions writing at once when a batch spans many transactions: node statements, relationship statements.
WRITERS = 2
REL_WRITERS = 2

Statement = tuple[str, list[list[Any]]]  # a query and its rows
_UNAVAILABLE = (ServiceUnavailable, SessionExpired, AuthError, OSError)
_BUMP = "MERGE (m:SitegraphMeta {id: 'meta'}) SET m.version = coalesce(m.version, 0) + 1"


def _q(text: str) -> LiteralString:
    """Mark Cypher assembled from allow-listed names (never from input) as a query string."""
    return text


# Property names written as ``SET n.`name` = r[i]``: plain identifiers only (anything else goes in a map).
_PROPERTY_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
# Above this many distinct property-name lists among one label's rows, the rows go as maps instead.
_MAX_SHAPES = 16


def _node_statements(verb: str, label: str, key: str, pairs: list[tuple[str, Props]]) -> list[Statement]:
    """``UNWIND`` statements creating or merging nodes of ``label`` and setting their properties.

    Rows sharing the same property names are written as lists, ``[key, value, ...]``, by one
    statement that sets each property by name (``SET n.`a` = r[1], n.`b` = r[2]``): at large scale
    about a third less time than sending each row's properties as a map (``SET n += r[1]``), whose
    names the server reads again for every row. The names are spliced into the query only when they
    are plain identifiers (backquoted as well); otherwise, or when the rows have many different sets
    of names, every row goes as ``[key, map]`` with ``SET n += r[1]`` (same result).
    """
    head = f"UNWIND $rows AS r {verb} (n:{label} {{{key}: r[0]}})"
    groups: dict[tuple[str, ...], list[list[Any]]] = {}
    for k, props in pairs:
        names = tuple(props)
        rows = groups.get(names)
        if rows is None:
            if len(groups) == _MAX_SHAPES or not all(_PROPERTY_NAME.fullmatch(name) for name in names):
                return [(f"{head} SET n += r[1]", [[k2, p2] for k2, p2 in pairs])]
            rows = groups[names] = []
        rows.append([k, *props.values()])
    out: list[Statement] = []
    for names, rows in groups.items():
        sets = ", ".join(f"n.`{name}` = r[{i}]" for i, name in enumerate(names, 1))
        out.append((f"{head} SET {sets}" if sets else head, rows))
    return out


def _ident_json(spec_identity: tuple[str, ...], props: Props) -> str:
    return json.dumps({name: props.get(name, "") for name in spec_identity}, sort_keys=True)


class Neo4jStore(GraphStore):
    """A Neo4j database reached with the official driver."""

    kind = "neo4j"

    def __init__(
        self, uri: str, user: str, password: str, database: str = "neo4j", *, driver: neo4j.Driver | None = None
    ) -> None:
        self.uri = uri
        self.database = database
        self._auth = (user, password)
        self.driver = driver or self._new_driver()

    def _new_driver(self) -> neo4j.Driver:
        try:
            return GraphDatabase.driver(
                self.uri,
                auth=self._auth,
                connection_timeout=10,
                max_connection_pool_size=64,
                # "label does not exist" hints on an empty database are not worth a warning per query
                notifications_min_severity="OFF",
            )
        except (DriverError, ValueError) as e:
            raise StoreUnavailableError(f"cannot create a Neo4j driver for {self.uri}: {e}") from e

    def reconnect(self) -> None:
        """A fresh driver: after the database was replaced under it (a bulk import), the old driver's
        connections are dead and its bookmarks name transactions the new database never had."""
        self.driver.close()
        self.driver = self._new_driver()

    # --- lifecycle -------------------------------------------------------------------------
    def close(self) -> None:
        self.driver.close()

    def ping(self) -> None:
        try:
            self.driver.verify_connectivity()
            self.read("RETURN 1 AS ok")
        except _UNAVAILABLE as e:
            raise StoreUnavailableError(f"Neo4j at {self.uri} is not available: {e}") from e
        except Neo4jError as e:
            raise StoreUnavailableError(f"Neo4j at {self.uri} refused the connection: {e}") from e

    def ensure_schema(self) -> None:
        statements: list[str] = []
        for spec in NODES.values():
            statements.append(
                f"CREATE CONSTRAINT {spec.label.lower()}_{spec.key}_unique IF NOT EXISTS "
                f"FOR (n:{spec.label}) REQUIRE n.{spec.key} IS UNIQUE"
            )
            for prop in spec.indexes:
                statements.append(f"CREATE INDEX {spec.label.lower()}_{prop} IF NOT EXISTS FOR (n:{spec.label}) ON (n.{prop})")
            if spec.fulltext:
                props = ", ".join(f"n.{p}" for p in spec.fulltext)
                statements.append(
                    f"CREATE FULLTEXT INDEX {spec.label.lower()}_fulltext IF NOT EXISTS FOR (n:{spec.label}) ON EACH [{props}]"
                )
        for stmt in statements:
            self._run_statement(stmt)
        self._run_statement("CALL db.awaitIndexes(300)")

    # --- low-level helpers ---------------------------------------------------------------------
    def read(self, query: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        """Run a read query (routed to readers) and return its rows as dicts."""
        try:
            records, _, _ = self.driver.execute_query(
                _q(query), parameters_=params or {}, database_=self.database, routing_=RoutingControl.READ
            )
        except _UNAVAILABLE as e:
            raise StoreUnavailableError(f"Neo4j at {self.uri} is not available: {e}") from e
        except ClientError as e:
            raise StoreError(f"Neo4j rejected a query: {e.message}") from e
        return [r.data() for r in records]

    def _run_statement(self, query: str, **params: Any) -> None:
        def work(tx: ManagedTransaction) -> None:
            tx.run(_q(query), params).consume()

        self._run_write(work)

    def _run_write(self, work: Callable[[ManagedTransaction], Any]) -> Any:
        return self._managed(work, write=True)

    def run_read(self, work: Callable[[ManagedTransaction], Any], *, fetch_size: int | None = None) -> Any:
        """Run ``work`` in one managed read transaction (routed to readers, retried from the start on
        transient errors, so ``work`` must build its result afresh each time)."""
        return self._managed(work, write=False, fetch_size=fetch_size)

    def _managed(self, work: Callable[[ManagedTransaction], Any], *, write: bool, fetch_size: int | None = None) -> Any:
        config: dict[str, Any] = {"database": self.database}
        if fetch_size is not None:
            config["fetch_size"] = fetch_size
        try:
            with self.driver.session(**config) as session:
                return session.execute_write(work) if write else session.execute_read(work)
        except _UNAVAILABLE as e:
            raise StoreUnavailableError(f"Neo4j at {self.uri} is not available: {e}") from e
        except Neo4jError as e:
            if write:
                raise StoreError(f"Neo4j write failed, transaction rolled back: {e.message}") from e
            raise StoreError(f"Neo4j read failed: {e.message}") from e

    # --- writes ------------------------------------------------------------------------------
    def _new_keys(self, batch: GraphBatch) -> dict[str, set[str]]:
        """Keys of the batch's nodes that the store does not hold yet (they will be created)."""
        return {label: set(rows) - self.existing_keys(label, rows) for label, rows in batch.nodes.items()}

    def _statements(self, batch: GraphBatch, new: dict[str, set[str]] | None = None) -> tuple[list[Statement], list[Statement]]:
        """(query, rows) pairs for the batch's nodes and for its relationships, in chunks; rows are lists.

        ``new`` names nodes known to be absent: they are created without a lookup, and so are the
        relationships that touch them (a node that did not exist has none). Everything else is
        merged. Without ``new`` everything is merged.
        """
        new = new or {}
        out: list[Statement] = []

        def add(query: str, items: list[list[Any]]) -> None:
            out.extend((query, items[i : i + CHUNK]) for i in range(0, len(items), CHUNK))

        for label, rows in batch.nodes.items():
            spec = node_spec(label)
            created = new.get(label, set())
            fresh = [(k, p) for k, p in rows.items() if k in created]
            known = [(k, p) for k, p in rows.items() if k not in created] if fresh else list(rows.items())
            for verb, pairs in (("CREATE", fresh), ("MERGE", known)):
                if pairs:
                    for query, items in _node_statements(verb, spec.label, spec.key, pairs):
                        add(query, items)
        nodes, out = out, []
        # Grouped by type, endpoints, whether the relationship is new, and whether it has properties
        # (most have none: their rows are [start, end] and the statement sets nothing).
        grouped: dict[tuple[str, str, str, bool, bool], list[list[Any]]] = {}
        empty: set[str] = set()
        for rk, props in batch.rels.items():
            is_new = rk.start in new.get(rk.start_label, empty) or rk.end in new.get(rk.end_label, empty)
            row = [rk.start, rk.end, props] if props else [rk.start, rk.end]
            grouped.setdefault((rk.type, rk.start_label, rk.end_label, is_new, bool(props)), []).append(row)
        for (rtype, sl, el, is_new, has_props), items in grouped.items():
            rspec = check_endpoints(rtype, sl, el)
            start, end = node_spec(sl), node_spec(el)
            match = f"UNWIND $rows AS r MATCH (a:{start.label} {{{start.key}: r[0]}}) MATCH (b:{end.label} {{{end.key}: r[1]}}) "
            set_props = " SET x += r[2]" if has_props else ""
            if is_new:
                query = f"{match}CREATE (a)-[x:{rspec.type}]->(b){set_props}"
            else:
                # identity properties are always in the row's properties (GraphBatch adds them)
                ident = ", ".join(f"{name}: r[2].{name}" for name in rspec.identity)
                ident_map = f" {{{ident}}}" if ident else ""
                query = f"{match}MERGE (a)-[x:{rspec.type}{ident_map}]->(b){set_props}"
            add(query, items)
        return nodes, out

    def write(self, batch: GraphBatch, *, progress: Callable[[int], None] | None = None) -> None:
        if not len(batch):
            return
        with gc_paused():
            self.check_endpoints_exist(batch)
            if not batch.rels:
                # Nodes only (analyze's write-back, to nodes that all exist): MERGE each, which looks
                # the key up in the constraint's index as CREATE would, without reading first which
                # of them exist.
                self._write(batch, None, progress)
                return
            try:
                self._write(batch, self._new_keys(batch), progress)
            except StoreError as e:
                if not isinstance(e.__cause__, ConstraintError):
                    raise
                # Someone else created one of "our" new nodes meanwhile: merge everything instead.
                log.info("a node appeared during the write (%s); writing again with MERGE only", e)
                self._write(batch, None, progress)

    def _write(self, batch: GraphBatch, new: dict[str, set[str]] | None, progress: Callable[[int], None] | None) -> None:
        nodes, rels = self._statements(batch, new)

        def run_all(tx: ManagedTransaction, stmts: list[Statement]) -> None:
            for query, rows in stmts:
                tx.run(_q(query), rows=rows).consume()
            tx.run(_BUMP).consume()

        if len(batch) <= SINGLE_TX_LIMIT:
            self._run_write(partial(run_all, stmts=nodes + rels))
            if progress:
                progress(len(batch))
            return
        # Too big for one transaction: everything is validated already (rows, endpoints), so write
        # one statement per transaction. Each is an idempotent upsert: a failed run leaves part of
        # the batch, and running the same load again completes it (docs/data-format.md). Node
        # statements never touch the same node twice, so WRITERS sessions run them side by side;
        # relationships follow once every node is there.
        done = [0]
        try:
            self._run_parallel(run_all, nodes, WRITERS, progress, done)
            self._run_parallel(run_all, rels, REL_WRITERS, progress, done)
        except StoreError as e:
            if not done[0]:
                raise
            raise StoreError(
                f"{e}; {done[0]} of {len(nodes) + len(rels)} transactions of this load were committed before the "
                "failure: run the same load again to complete it (writes are idempotent)"
            ) from e.__cause__

    def _run_parallel(
        self,
        run_all: Callable[..., None],
        statements: list[Statement],
        writers: int,
        progress: Callable[[int], None] | None,
        done: list[int],
    ) -> None:
        """Each statement in its own managed transaction, on up to ``writers`` sessions at once.

        ``done[0]`` counts the committed transactions.
        """
        if writers <= 1 or len(statements) <= 1:
            for query, rows in statements:
                self._run_write(partial(run_all, stmts=[(query, rows)]))
                done[0] += 1
                if progress:
                    progress(len(rows))
            return
        todo = iter(statements)
        lock = threading.Lock()
        errors: list[BaseException] = []

        def worker() -> None:
            while not errors:
                with lock:
                    item = next(todo, None)
                if item is None:
                    return
                try:
                    self._run_write(partial(run_all, stmts=[item]))
                except BaseException as e:
                    errors.append(e)
                    return
                with lock:
                    done[0] += 1
                    if progress:
                        progress(len(item[1]))

        threads = [threading.Thread(target=worker, name=f"neo4j-writer-{i}", daemon=True) for i in range(writers)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if errors:
            raise errors[0]

    def delete_nodes(self, label: str, keys: Iterable[str]) -> int:
        spec = node_spec(label)
        keys = list(keys)
        if not keys:
            return 0

        def work(tx: ManagedTransaction) -> int:
            rec = tx.run(
                _q(f"UNWIND $keys AS k MATCH (n:{spec.label} {{{spec.key}: k}}) DETACH DELETE n RETURN count(*) AS n"), keys=keys
            ).single()
            tx.run(_BUMP).consume()
            return int(rec["n"]) if rec else 0

        return int(self._run_write(work))

    def delete_relationships(self, keys: Iterable[RelKey]) -> int:
        total = 0
        grouped: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
        for rk in keys:
            grouped.setdefault((rk.type, rk.start_label, rk.end_label), []).append(
                {"s": rk.start, "e": rk.end, "ident": dict(rk.ident)}
            )
        for (rtype, sl, el), rows in grouped.items():
            spec = rel_spec(rtype)
            sk, ek = node_spec(sl).key, node_spec(el).key
            conds = " AND ".join(f"r.{name} = row.ident.{name}" for name in spec.identity) or "true"
            query = (
                f"UNWIND $rows AS row MATCH (a:{sl} {{{sk}: row.s}})-[r:{spec.type}]->(b:{el} {{{ek}: row.e}}) "
                f"WHERE {conds} DELETE r RETURN count(*) AS n"
            )

            def work(tx: ManagedTransaction, q: str = query, r: list[dict[str, Any]] = rows) -> int:
                rec = tx.run(_q(q), rows=r).single()
                tx.run(_BUMP).consume()
                return int(rec["n"]) if rec else 0

            total += int(self._run_write(work))
        return total

    def clear(self, *, confirm: bool = False) -> None:
        if not confirm:
            raise StoreError("refusing to delete everything without confirm=True")

        def delete_some(tx: ManagedTransaction, label: str) -> int:
            spec = node_spec(label)
            rec = tx.run(_q(f"MATCH (n:{spec.label}) WITH n LIMIT 10000 DETACH DELETE n RETURN count(*) AS n")).single()
            return int(rec["n"]) if rec else 0

        for label in NODES:
            if label == "SitegraphMeta":
                continue
            while self._run_write(partial(delete_some, label=label)):
                pass
        self._run_statement(_BUMP)

    # --- reads -------------------------------------------------------------------------------
    def stats(self) -> GraphStats:
        out = empty_stats()
        for label in out.nodes:
            out.nodes[label] = int(self.read(_q(f"MATCH (n:{node_spec(label).label}) RETURN count(n) AS n"))[0]["n"])
        for rtype in RELATIONSHIPS:
            out.relationships[rtype] = int(self.read(_q(f"MATCH ()-[r:{rel_spec(rtype).type}]->() RETURN count(r) AS n"))[0]["n"])
        return out

    def version(self) -> int:
        rows = self.read("MATCH (m:SitegraphMeta {id: 'meta'}) RETURN m.version AS v")
        return int(rows[0]["v"]) if rows and rows[0]["v"] is not None else 0

    def get_node(self, label: str, key: str) -> Props | None:
        spec = node_spec(label)
        rows = self.read(f"MATCH (n:{spec.label} {{{spec.key}: $key}}) RETURN properties(n) AS p", {"key": key})
        return dict(rows[0]["p"]) if rows else None

    def existing_keys(self, label: str, keys: Iterable[str]) -> set[str]:
        spec = node_spec(label)
        keys = list(keys)
        found: set[str] = set()
        # The keys that are *not* there come back, as one list per chunk: a write-back to existing
        # nodes (analyze) gets empty lists, and no read returns a record per key (~25 us each).
        for i in range(0, len(keys), 50_000):
            chunk = keys[i : i + 50_000]
            rows = self.read(
                f"UNWIND $keys AS k OPTIONAL MATCH (n:{spec.label} {{{spec.key}: k}}) "
                "WITH k, n WHERE n IS NULL RETURN collect(k) AS missing",
                {"keys": chunk},
            )
            missing = set(rows[0]["missing"]) if rows else set()
            found.update(k for k in chunk if k not in missing)
        return found

    def iter_nodes(self, label: str) -> Iterator[Props]:
        spec = node_spec(label)
        rows = self.read(f"MATCH (n:{spec.label}) RETURN properties(n) AS p ORDER BY n.{spec.key}")
        for r in rows:
            yield dict(r["p"])

    def iter_relationships(self, rel_type: str) -> Iterator[Rel]:
        spec = rel_spec(rel_type)
        out: list[tuple[tuple[str, str, str], Rel]] = []
        for sl, el in spec.endpoints:
            sk, ek = node_spec(sl).key, node_spec(el).key
            rows = self.read(f"MATCH (a:{sl})-[r:{spec.type}]->(b:{el}) RETURN a.{sk} AS s, b.{ek} AS e, properties(r) AS p")
            for r in rows:
                props = dict(r["p"])
                out.append(((r["s"], r["e"], _ident_json(spec.identity, props)), Rel(spec.type, sl, r["s"], el, r["e"], props)))
        out.sort(key=lambda t: t[0])
        for _, rel in out:
            yield rel

    def neighbors(self, label: str, key: str, rel_type: str, direction: Direction = "out") -> list[tuple[str, Props, Props]]:
        spec = node_spec(label)
        rspec = rel_spec(rel_type)
        pattern = f"-[r:{rspec.type}]->" if direction == "out" else f"<-[r:{rspec.type}]-"
        rows = self.read(
            f"MATCH (n:{spec.label} {{{spec.key}: $key}}){pattern}(m) "
            "RETURN labels(m) AS labels, properties(m) AS p, properties(r) AS rp",
            {"key": key},
        )
        out: list[tuple[str, Props, Props]] = []
        for r in rows:
            other = next(lb for lb in r["labels"] if lb in NODES)
            out.append((other, dict(r["p"]), dict(r["rp"])))
        out.sort(key=lambda t: (t[0], str(t[1].get(node_spec(t[0]).key)), json.dumps(t[2], sort_keys=True, default=str)))
        return out

    # --- bulk key reads for analytics: keys only ---------------------------------------------------
    # Each read returns its keys as one list (collect) in one record: a record per key costs the
    # driver ~25 us of Python each (3 s for the medium benchmark's 121,000 keys, 0.05 s as lists).
    # The server holds the lists while sending them: tens of MB for a million keys.
    @staticmethod
    def _tx_node_keys(tx: ManagedTransaction, label: str) -> list[str]:
        spec = node_spec(label)
        rec = tx.run(_q(f"MATCH (n:{spec.label}) WHERE n.{spec.key} IS NOT NULL RETURN collect(n.{spec.key}) AS k")).single()
        return sorted(rec["k"]) if rec is not None else []

    @staticmethod
    def _tx_endpoints(tx: ManagedTransaction, rel_type: str, start_label: str, end_label: str) -> tuple[list[str], list[str]]:
        spec = check_endpoints(rel_type, start_label, end_label)
        start, end = node_spec(start_label), node_spec(end_label)
        rec = tx.run(
            _q(
                f"MATCH (a:{start.label})-[:{spec.type}]->(b:{end.label}) "
                f"WHERE a.{start.key} IS NOT NULL AND b.{end.key} IS NOT NULL "
                f"RETURN collect(a.{start.key}) AS s, collect(b.{end.key}) AS e"
            )
        ).single()
        if rec is None:
            return [], []
        return list(rec["s"]), list(rec["e"])

    def node_keys(self, label: str) -> list[str]:
        node_spec(label)
        return list(self.run_read(partial(self._tx_node_keys, label=label)))

    def relationship_endpoints(self, rel_type: str, start_label: str, end_label: str) -> tuple[list[str], list[str]]:
        check_endpoints(rel_type, start_label, end_label)
        starts, ends = self.run_read(partial(self._tx_endpoints, rel_type=rel_type, start_label=start_label, end_label=end_label))
        return starts, ends

    @staticmethod
    def _tx_node_ids(tx: ManagedTransaction, label: str) -> tuple[npt.NDArray[np.int64], list[str]]:
        """Internal ids and keys of every node of the label (with a key), in the same order."""
        spec = node_spec(label)
        rec = tx.run(
            _q(f"MATCH (n:{spec.label}) WHERE n.{spec.key} IS NOT NULL RETURN collect(id(n)) AS i, collect(n.{spec.key}) AS k")
        ).single()
        if rec is None:
            return np.zeros(0, dtype=np.int64), []
        return np.array(rec["i"], dtype=np.int64), list(rec["k"])

    @staticmethod
    def _tx_endpoint_ids(
        tx: ManagedTransaction, rel_type: str, start_label: str, end_label: str
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]]:
        spec = check_endpoints(rel_type, start_label, end_label)
        start, end = node_spec(start_label), node_spec(end_label)
        rec = tx.run(
            _q(f"MATCH (a:{start.label})-[:{spec.type}]->(b:{end.label}) RETURN collect(id(a)) AS s, collect(id(b)) AS e")
        ).single()
        if rec is None:
            return np.zeros(0, dtype=np.int64), np.zeros(0, dtype=np.int64)
        return np.array(rec["s"], dtype=np.int64), np.array(rec["e"], dtype=np.int64)

    def graph_keys(
        self, labels: Iterable[str], relationships: Iterable[tuple[str, str, str]]
    ) -> tuple[int, dict[str, list[str]], dict[tuple[str, str, str], tuple[list[str], list[str]]]]:
        """Every read in one managed read transaction (Neo4j's read-committed isolation: the version
        is read first, so it is never newer than the keys).

        Relationships come back as the internal ids of their ends, mapped to keys here through each
        label's (id, key) list: the server then reads no property per relationship (a key lookup for
        each of millions of ends, slow on a cold page cache) and sends integers. Ids are only
        compared within this one transaction. Ends without a key are left out, as before.
        """
        wanted = [node_spec(label).label for label in labels]
        pairs = [(check_endpoints(t, sl, el).type, sl, el) for t, sl, el in relationships]
        involved = list(dict.fromkeys([*wanted, *(sl for _, sl, _ in pairs), *(el for _, _, el in pairs)]))

        def work(
            tx: ManagedTransaction,
        ) -> tuple[int, dict[str, list[str]], dict[tuple[str, str, str], tuple[list[str], list[str]]]]:
            rec = tx.run(_q("MATCH (m:SitegraphMeta {id: 'meta'}) RETURN m.version AS v")).single()
            version = int(rec["v"]) if rec is not None and rec["v"] is not None else 0
            lookup = {label: _IdKeys(*self._tx_node_ids(tx, label)) for label in involved}
            keys = {label: sorted(lookup[label].keys) for label in wanted}
            rels: dict[tuple[str, str, str], tuple[list[str], list[str]]] = {}
            for pair in pairs:
                s_ids, e_ids = self._tx_endpoint_ids(tx, *pair)
                s_pos, s_found = lookup[pair[1]].find(s_ids)
                e_pos, e_found = lookup[pair[2]].find(e_ids)
                ok = s_found & e_found
                if not ok.all():
                    s_pos, e_pos = s_pos[ok], e_pos[ok]
                rels[pair] = lookup[pair[1]].keys_at(s_pos), lookup[pair[2]].keys_at(e_pos)
            return version, keys, rels

        return self.run_read(work)


class _IdKeys:
    """One label's nodes as (internal id, key), for mapping relationship ends to keys in bulk."""

    def __init__(self, ids: npt.NDArray[np.int64], keys: list[str]) -> None:
        self.keys = keys
        order = np.argsort(ids, kind="stable")
        self._ids = ids[order]
        self._keys = np.empty(len(keys), dtype=object)
        self._keys[:] = keys
        self._keys = self._keys[order]

    def find(self, ids: npt.NDArray[np.int64]) -> tuple[npt.NDArray[np.intp], npt.NDArray[np.bool_]]:
        """Positions of ``ids`` among this label's nodes, and which were found."""
        if not self._ids.size:
            return np.zeros(ids.size, dtype=np.intp), np.zeros(ids.size, dtype=bool)
        pos = np.minimum(np.searchsorted(self._ids, ids), self._ids.size - 1)
        return pos, self._ids[pos] == ids

    def keys_at(self, pos: npt.NDArray[np.intp]) -> list[str]:
        return list(self._keys[pos].tolist())
