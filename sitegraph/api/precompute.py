"""Every site's default answers of the per-site read endpoints, computed ahead for each snapshot.

A request for a site's ``/tactics`` or ``/related`` costs several milliseconds of CPU to compute at
sponsor scale (50,000 sites), and requests spread over every site rarely hit the LRU of
:mod:`sitegraph.api.cache`. So, when the API serves for real, a background thread computes those
answers for every site of the current snapshot, in blocks of sites (through the batch functions of
:data:`sitegraph.api.routes.sites.PER_SITE`), serialises them exactly as a request would and keeps
them compressed in the snapshot's ``cache`` (:class:`Answers`).

Correctness is the response cache's: the answers live in the snapshot they were computed from, and a
request only looks in the snapshot the version check gave it. After any write (through the API or
from outside) requests get a newer snapshot; the thread drops the older snapshot's work as soon as it
sees the newer one (or the store's version move) and starts on the new one. It does not wait for a
request to show it: a write through the API nudges it, and while idle it looks at the store's version
every :data:`POLL` seconds. A new snapshot's answers start empty, except after a write of interactions
only that kept the reference date: then the previous snapshot's answers of the sites the write cannot
reach are kept (:func:`carry_answers`, :mod:`sitegraph.queries.reach`), and only the others are
computed again. A site not computed yet is computed by the request as before.

While it runs it must not hold up requests: it works in short blocks, lowers the interpreter's
switch interval so a request waiting for the GIL gets it within a millisecond, and when requests
came in during a block it rests in proportion to the block's time (at most :data:`SHARE` of the
time). After the indexes of a snapshot are built it calls ``gc.freeze()``: the snapshot (millions of
objects) is then left out of the collector's full passes, which otherwise stall every thread for
seconds at this scale. Frozen objects are still freed by reference counting when the snapshot is
replaced.
"""

from __future__ import annotations

import gc
import logging
import sys
import threading
import time
import zlib
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from sitegraph.queries.reach import Reach, reach
from sitegraph.queries.snapshot import Snapshot, carried, carry

log = logging.getLogger(__name__)

PRECOMPUTED_KEY = carry("api.precomputed")
"""The key of a snapshot's :class:`Answers` in :attr:`Snapshot.cache`."""
BLOCK = 32
"""Sites per block: the thread checks for a newer snapshot and yields between blocks."""
SHARE = 0.5
"""Largest share of the time the thread computes while requests are coming in."""
SWITCH_INTERVAL = 0.001
"""The interpreter's switch interval while the thread computes (Python's default is 0.005 s)."""
POLL = 2.0
"""Seconds between two looks at the store's data version while the thread has nothing to do."""
COMPRESS_LEVEL = 1
"""zlib level of the kept bodies: JSON of 16-17 KB shrinks about 7 times in ~0.2-0.4 ms."""


@dataclass(frozen=True)
class PerSite:
    """One per-site endpoint answered for every site: the route's own function, response model and
    default ``limit`` (what its cache key is made of: ``fn(snapshot, site_id, limit)``, or
    ``fn(snapshot, site_id)`` when ``limit`` is None), and a batch function that gives the same
    response object for many sites at once."""

    name: str
    model: Any
    fn: Callable[..., Any]
    limit: int | None
    batch: Callable[[Snapshot, list[str], int | None], Mapping[str, Any]]
    depends: str = "tactics"
    """What else than the site's own data an answer reads: see :meth:`sitegraph.queries.reach.Reach.changed`
    (the answers a write cannot reach are carried over to the next snapshot)."""
    stamped: bool = False
    """The body ends with the snapshot's ``"data_version"`` (restamped when the body is carried over)."""

    def args(self, site_id: str) -> tuple[Any, ...]:
        """The route's arguments after the snapshot (what the response cache keys on)."""
        return (site_id,) if self.limit is None else (site_id, self.limit)


class Answers:
    """The precomputed bodies of one snapshot, compressed, keyed by (endpoint, site)."""

    def __init__(self, version: int, specs: tuple[PerSite, ...], sites: int) -> None:
        self.version = version
        self.sites = sites
        self.total = sites * len(specs)
        self.started = time.time()
        self.finished: float | None = None
        self.abandoned = False
        self.failed = 0  # answers whose computation raised (requests compute them)
        self.seconds = 0.0
        self.raw_bytes = 0
        self.kept_bytes = 0
        self.hits = 0
        self.carried = 0  # answers kept from the previous snapshot's (a write that could not change them)
        # one table per endpoint, found by the route's cache-key parts (fn, model, limit)
        self._tables: dict[tuple[Any, Any, int | None], dict[str, bytes]] = {(s.fn, s.model, s.limit): {} for s in specs}
        self._stamped = {(s.fn, s.model, s.limit) for s in specs if s.stamped}

    def carry(self, previous: Answers, specs: tuple[PerSite, ...], reach: Reach) -> None:
        """Keep ``previous``'s answers that the write between the two snapshots cannot have changed."""
        for spec in specs:
            key = (spec.fn, spec.model, spec.limit)
            changed = reach.changed(spec.depends)
            before = previous._tables.get(key)
            if before is None:
                continue
            kept = {site: body for site, body in before.items() if site not in changed}
            self._tables[key].update(kept)
            self.carried += len(kept)
            self.kept_bytes += sum(map(len, kept.values()))  # (the carried bodies' JSON size is not known)

    @property
    def done(self) -> int:
        return sum(len(t) for t in self._tables.values())

    def put(self, spec: PerSite, site_id: str, body: bytes) -> None:
        packed = zlib.compress(body, COMPRESS_LEVEL)
        self._tables[(spec.fn, spec.model, spec.limit)][site_id] = packed
        self.raw_bytes += len(body)
        self.kept_bytes += len(packed)

    def has(self, spec: PerSite, site_id: str) -> bool:
        return site_id in self._tables[(spec.fn, spec.model, spec.limit)]

    def get(self, fn: Any, model: Any, args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> bytes | None:
        """The body of ``fn(snapshot, *args, **kwargs)`` as ``model``, if it was computed ahead."""
        if kwargs or not 1 <= len(args) <= 2 or not isinstance(args[0], str):
            return None
        limit = args[1] if len(args) == 2 else None
        if limit is not None and type(limit) is not int:
            return None
        table = self._tables.get((fn, model, limit))
        packed = table.get(args[0]) if table is not None else None
        if packed is None:
            return None
        self.hits += 1
        body = zlib.decompress(packed)
        if (fn, model, limit) in self._stamped:
            body = restamp(body, self.version)
        return body

    def status(self) -> dict[str, Any]:
        return {
            "data_version": self.version,
            "sites": self.sites,
            "answers": self.done,
            "total": self.total,
            "finished": self.finished is not None,
            "abandoned": self.abandoned,
            "seconds": round(self.seconds, 1),
            "kept_mib": round(self.kept_bytes / 2**20, 1),
            "hits": self.hits,
            "carried": self.carried,
        }


_STAMP = b',"data_version":'


def restamp(body: bytes, version: int) -> bytes:
    """A JSON object whose last member is ``"data_version"``, with that version instead."""
    cut = body.rfind(_STAMP)
    if cut < 0 or not body.endswith(b"}"):
        raise ValueError("the body does not end with its data_version")
    return body[:cut] + _STAMP + str(version).encode("ascii") + b"}"


def carry_answers(snapshot: Snapshot, specs: tuple[PerSite, ...]) -> Answers | None:
    """After a write of interactions only, the new snapshot's :class:`Answers` started from the previous
    snapshot's (the answers of the sites the write cannot reach, :mod:`sitegraph.queries.reach`); None when
    there is nothing to carry. Call it before the snapshot lets its lineage go (:func:`sitegraph.api.state.ensure_warm`)."""
    previous = carried(snapshot, PRECOMPUTED_KEY)
    if not isinstance(previous, Answers) or answers_of(snapshot) is not None:
        return None
    found = reach(snapshot)
    if found is None:
        return None
    answers = Answers(snapshot.version, specs, previous.sites)
    answers.carry(previous, specs, found)
    snapshot.cache[PRECOMPUTED_KEY] = answers
    log.info(
        "data version %d: %d answers kept from version %d (the write reached %d of %d sites%s)",
        snapshot.version, answers.carried, previous.version, len(found.sites), previous.sites,
        f"; the tactics of {len(found.tactic_sites) - len(found.sites)} more" if found.tactic_sites != found.sites else "",
    )  # fmt: skip
    return answers


def answers_of(snapshot: Snapshot) -> Answers | None:
    """The answers computed ahead for ``snapshot`` so far (None when nothing was started for it)."""
    answers = snapshot.cache.get(PRECOMPUTED_KEY)
    return answers if isinstance(answers, Answers) else None


def site_ids(snapshot: Snapshot) -> list[str]:
    return [key for key, _ in snapshot.nodes("Site")]


class Precomputer:
    """The background thread that fills :class:`Answers` for the current snapshot.

    ``current()`` returns the store's current snapshot (building it if needed); :meth:`offer` is
    called with the snapshot each request reads, so a newer one is noticed without asking the
    store; ``requests()`` counts the requests served so far (to rest while they come in).
    """

    def __init__(
        self,
        specs: tuple[PerSite, ...],
        current: Callable[[], Snapshot],
        *,
        version: Callable[[], int] | None = None,
        warm_up: Callable[[Snapshot], Any] | None = None,
        requests: Callable[[], int] = lambda: 0,
        block: int = BLOCK,
        share: float = SHARE,
        freeze: bool = True,
        poll: float = POLL,
    ) -> None:
        self.specs = specs
        self.current = current
        self.version = version
        self.warm_up = warm_up
        self.requests = requests
        self.block = block
        self.share = share
        self.freeze = freeze
        self.poll = poll
        self._look = False
        self._wanted: Snapshot | None = None
        self._wake = threading.Event()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self.latest: Answers | None = None
        self.rested = 0.0
        self._started = time.perf_counter()

    # --- control --------------------------------------------------------------------------------
    def start(self) -> None:
        self._thread = threading.Thread(target=self._main, name="sitegraph-precompute", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        self._wake.set()
        if self._thread is not None:
            self._thread.join(timeout)

    def nudge(self) -> None:
        """The data may have changed (a write through the API): look at the store's version now, and
        precompute for the new snapshot before any request asks for it."""
        self._look = True
        self._wake.set()

    def _follow_store(self) -> None:
        """Offer the store's current snapshot when its data version moved past the one in hand (a write
        through the API, or from outside: no request needs to come first)."""
        self._look = False
        if self.version is None:
            return
        try:
            wanted = self._wanted
            if wanted is None or self.version() != wanted.version:
                self.offer(self.current())
        except Exception as e:  # the store is down: requests (or the next look) offer a snapshot when it is back
            log.debug("precompute: could not look at the store: %s", e)

    def offer(self, snapshot: Snapshot) -> None:
        """The snapshot requests now read: precompute for it if it is not the one in hand."""
        if snapshot is not self._wanted:
            self._wanted = snapshot
            self._wake.set()

    def status(self) -> dict[str, Any]:
        """Progress for ``/ready``: the latest answers, or (before any) the snapshot being warmed up."""
        if self.latest is not None and (self._wanted is None or self.latest.version == self._wanted.version):
            return {"phase": "finished" if self.latest.finished is not None else "computing", **self.latest.status()}
        wanted = self._wanted
        return {
            "phase": "warming up",
            "data_version": wanted.version if wanted is not None else None,
            "sites": 0,
            "answers": 0,
            "total": 0,
            "finished": False,
            "abandoned": False,
            "seconds": round(time.perf_counter() - self._started, 1),
            "kept_mib": 0.0,
            "hits": 0,
            "carried": 0,
        }

    # --- the thread -----------------------------------------------------------------------------
    def _main(self) -> None:
        try:
            self.offer(self.current())
        except Exception as e:  # the store is down: the requests will offer a snapshot when it is back
            log.warning("precompute: no snapshot yet: %s", e)
        while not self._stop.is_set():
            if not self._wake.wait(self.poll) or self._look:
                self._follow_store()
            self._wake.clear()
            snapshot = self._wanted
            done = answers_of(snapshot) if snapshot is not None else None
            if snapshot is None or self._stop.is_set() or (done is not None and done.finished is not None):
                continue
            try:
                self.run(snapshot)
            except Exception:
                log.exception("precompute of data version %d failed; requests compute their answers", snapshot.version)

    def _superseded(self, snapshot: Snapshot) -> bool:
        if self._stop.is_set() or self._wanted is not snapshot:
            return True
        if self.version is not None:
            try:
                return self.version() != snapshot.version
            except Exception:
                return False  # the store is unreachable: keep going, the answers stay valid for this snapshot
        return False

    def run(self, snapshot: Snapshot) -> Answers:
        """Compute every site's answers for ``snapshot`` (in this thread); stop early if it is superseded."""
        started = self._started = time.perf_counter()
        if self.warm_up is not None:
            self.warm_up(snapshot)
        if self.freeze:
            gc.freeze()  # the snapshot and its indexes: out of the collector's passes from now on
        sites = site_ids(snapshot)
        answers = answers_of(snapshot)
        if answers is None:
            answers = snapshot.cache[PRECOMPUTED_KEY] = Answers(snapshot.version, self.specs, len(sites))
        answers.abandoned = False  # resumed: what was computed already is kept
        self.latest = answers
        # only the sites with an answer left to compute (after a write most were carried over, or a run is
        # resumed): the blocks, and their checks of the store's version, go over those alone
        todo = [s for s in sites if not all(answers.has(spec, s) for spec in self.specs)]
        log.info(
            "precompute: %d sites x %d endpoints for data version %d (%d sites to compute)",
            len(sites), len(self.specs), snapshot.version, len(todo),
        )  # fmt: skip
        previous_interval = sys.getswitchinterval()
        sys.setswitchinterval(min(previous_interval, SWITCH_INTERVAL))
        try:
            for start in range(0, len(todo), self.block):
                if self._superseded(snapshot):
                    answers.abandoned = True
                    log.info("precompute: data version %d superseded after %d answers", snapshot.version, answers.done)
                    return answers
                block = todo[start : start + self.block]
                for spec in self.specs:
                    self._compute_block(snapshot, answers, spec, block)
                answers.seconds = time.perf_counter() - started
        finally:
            sys.setswitchinterval(previous_interval)
        answers.finished = time.time()
        answers.seconds = time.perf_counter() - started
        if self.freeze:
            # what the answers left behind (per-snapshot caches of path steps, explanations...) lives as
            # long as the snapshot: out of the collector's passes too, or every full collection walks it
            gc.freeze()
        log.info(
            "precompute: data version %d done in %.1fs (%d answers, %.0f MiB kept, %.0f MiB as JSON, rested %.1fs)",
            snapshot.version, answers.seconds, answers.done, answers.kept_bytes / 2**20, answers.raw_bytes / 2**20, self.rested,
        )  # fmt: skip
        return answers

    def _compute_block(self, snapshot: Snapshot, answers: Answers, spec: PerSite, block: list[str]) -> None:
        from sitegraph.api.deps import to_json

        todo = [s for s in block if not answers.has(spec, s)]
        if not todo:
            return
        seen = self.requests()
        t0 = time.perf_counter()
        try:
            results = spec.batch(snapshot, todo, spec.limit)
            for site in todo:
                answers.put(spec, site, to_json(spec.model, results[site]))
        except Exception:  # left to the requests, which compute (and report) it themselves
            answers.failed += len(todo)
            if answers.failed == len(todo):  # the first failure of this snapshot
                log.exception("precompute: %s of %d sites failed (version %d)", spec.name, len(todo), snapshot.version)
        spent = time.perf_counter() - t0
        if self.requests() != seen and 0 < self.share < 1:
            rest = spent * (1 - self.share) / self.share
            self.rested += rest
            self._stop.wait(rest)
        else:
            time.sleep(0)  # let a waiting thread take the GIL
