"""Load test of the HTTP API's read endpoints, on loopback, for one store.

Starts the API with uvicorn in a subprocess on 127.0.0.1 (a free port) for the given store, waits
until ``/ready`` answers, warms every endpoint on every connection (each worker process builds its own
snapshot), then drives ``/sites/{id}``, ``/sites/{id}/related``, ``/sites/{id}/tactics`` and
``/sites?q=`` with N concurrent clients in a closed loop (each client sends its next request when the
previous answer has been read; keep-alive) for a bounded time, and reports throughput,
p50/p95/p99/max latency per endpoint and overall, and the error count (any status other than 200,
or a transport error), as a table and as JSON.

The server answers every site's ``/tactics`` and ``/related`` ahead in a background thread
(``sitegraph.api.precompute``). ``--precompute wait`` (the default) measures once that has finished
for the current data version (how long it took is reported); ``during`` starts right away, while it
runs; ``both`` drives one window while it runs (reported under ``precomputed.during``), waits, then
measures; ``off`` starts the server without it (every answer computed on request, as before). The server
is a new process for every run (``--url`` excepted), so no answer is cached from an earlier run.

``--write-every S`` adds a window in which an interaction dated now is logged through the API every
S seconds (on a store the run may change: give it a copy with ``--home``). Before it, one such write
opens the day: the first write of a UTC day moves the reference date barrier activity decays from, so
the server computes every answer again; its cost is reported apart (``under_writes.opening_write``),
and the window measures the writes after it, which keep the answers they cannot change. Reads and
writes are reported apart, with the seconds whose read p99 is over 50 ms or in which no read was sent.

Every request sent in the measured window is counted, including those still answering at its end.
Besides the latencies it reports what bounds them on a small machine: the load generator's own CPU
(its share of the machine), the server's CPU and peak RSS (all its processes, sampled from /proc), the
worker count, the HTTP client and event loop used, and the load average before and after.

The client is aiohttp (on uvloop when installed) when aiohttp is installed, else httpx; httpx's async
client costs several milliseconds of CPU per request at 32 connections, so on a 2-core machine it
measures itself more than the server (``--client httpx`` to compare).

Usage::

    python -m benchmarks.load_test --store memory --prepare            # demo data in a temp folder
    python -m benchmarks.load_test --store neo4j --start-neo4j --prepare  # a temporary local Neo4j
    python -m benchmarks.load_test --store memory --home DIR           # a loaded store (DIR/memory)
    python -m benchmarks.load_test --url http://127.0.0.1:8000         # an API already running here

Only loopback targets are accepted. Exit code 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import importlib.util
import ipaddress
import json
import logging
import math
import os
import random
import re
import resource
import secrets
import socket
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

log = logging.getLogger("benchmarks.load_test")

ENDPOINTS = ("site", "related", "tactics", "search")
READY_TIMEOUT = 180.0
PRECOMPUTE_TIMEOUT = 3600.0
PRECOMPUTE_MODES = ("wait", "during", "both", "off")
WARM_TIMEOUT = 1800.0  # the first request of each worker waits for its snapshot (minutes at large scale)
CLIENTS = ("aiohttp", "httpx")


@dataclass
class Sample:
    endpoint: str
    seconds: float
    ok: bool
    at: float = 0.0  # when the request was sent (perf_counter)


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)
    started: float = 0.0  # perf_counter at the start of the measured window

    def add(self, endpoint: str, seconds: float, ok: bool, why: str | None = None, at: float = 0.0) -> None:
        self.samples.append(Sample(endpoint, seconds, ok, at))
        if not ok and why:
            self.errors[why] = self.errors.get(why, 0) + 1


def percentile(sorted_values: list[float], q: float) -> float:
    """Nearest-rank percentile of already sorted values (q in 0..100)."""
    if not sorted_values:
        return math.nan
    rank = max(1, math.ceil(q / 100 * len(sorted_values)))
    return sorted_values[rank - 1]


def summarize(samples: list[Sample], duration: float) -> dict[str, Any]:
    ms = sorted(s.seconds * 1000 for s in samples)
    return {
        "requests": len(samples),
        "errors": sum(1 for s in samples if not s.ok),
        "throughput_rps": round(len(samples) / duration, 1) if duration > 0 else 0.0,
        "p50_ms": round(percentile(ms, 50), 2) if ms else None,
        "p95_ms": round(percentile(ms, 95), 2) if ms else None,
        "p99_ms": round(percentile(ms, 99), 2) if ms else None,
        "max_ms": round(ms[-1], 2) if ms else None,
        "mean_ms": round(sum(ms) / len(ms), 2) if ms else None,
    }


SLOW_MS = 50.0
"""A second of the write-stream window is slow when the reads sent in it have a p99 above this (the target)."""


def write_stream_summary(rec: Recorder, elapsed: float) -> dict[str, Any]:
    """Reads and writes of a window with a write stream: each apart, and second by second (when the
    reads were sent): how many seconds had a read p99 above :data:`SLOW_MS` or no read sent at all
    (stalled: every client waiting), and how long the reads after each write took to get back under it."""
    reads = [s for s in rec.samples if s.endpoint != "write"]
    writes = sorted((s for s in rec.samples if s.endpoint == "write"), key=lambda s: s.at)
    buckets: dict[int, list[float]] = {}
    for s in reads:
        buckets.setdefault(int(s.at - rec.started), []).append(s.seconds * 1000)
    p99s: list[float | None] = []
    for t in range(math.ceil(elapsed)):
        ms = sorted(buckets.get(t, []))
        p99s.append(round(percentile(ms, 99), 1) if ms else None)
    seconds = [{"t": t, "requests": len(buckets.get(t, [])), "p99_ms": p} for t, p in enumerate(p99s)]
    # a second in which no request was even sent (every client waiting on an answer) is slow too
    slow = [t for t, p in enumerate(p99s) if p is None or p > SLOW_MS]
    stalled = [t for t, p in enumerate(p99s) if p is None]
    recovery: list[int | None] = []
    for w in writes:
        t0 = int(w.at - rec.started)
        back = next((t for t in range(t0 + 1, len(p99s)) if (p := p99s[t]) is not None and p <= SLOW_MS), None)
        recovery.append(None if back is None else back - t0)
    return {
        "reads": summarize(reads, elapsed),
        "endpoints": {e: summarize([s for s in reads if s.endpoint == e], elapsed) for e in ENDPOINTS},
        "writes": summarize(writes, elapsed),
        "seconds": seconds,
        "slow_seconds": len(slow),
        "stalled_seconds": len(stalled),
        "slow_share": round(len(slow) / max(1, len(seconds)), 3),
        "recovery_s": recovery,  # per write: seconds until the first second after it with read p99 <= SLOW_MS (None: never)
    }


def is_loopback_url(url: str) -> bool:
    host = urlsplit(url).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def default_client() -> str:
    return "aiohttp" if importlib.util.find_spec("aiohttp") else "httpx"


# --- what the processes use (Linux /proc) -----------------------------------------------------------

_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_PAGE = os.sysconf("SC_PAGE_SIZE") if hasattr(os, "sysconf") else 4096


def process_tree(pid: int) -> list[int]:
    """``pid`` and all its descendants (uvicorn's supervisor and its workers)."""
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        with contextlib.suppress(OSError):
            for task in os.listdir(f"/proc/{p}/task"):
                with contextlib.suppress(OSError), open(f"/proc/{p}/task/{task}/children") as f:
                    todo += [int(c) for c in f.read().split()]
    return out


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of one process, 0 if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / _TICKS  # utime, stime


def rss_bytes(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/statm") as f:
            return int(f.read().split()[1]) * _PAGE
    except (OSError, IndexError, ValueError):
        return 0


class ServerMonitor:
    """Samples the RSS of the server's processes every ``interval`` s in a thread; CPU from /proc."""

    def __init__(self, pid: int | None, interval: float = 0.5) -> None:
        self.pid = pid
        self.interval = interval
        self.peak_total = 0
        self.peak_per_process = 0
        self.processes = 0
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._cpu: dict[int, float] = {}
        self.cpu_used = 0.0

    def sample(self) -> None:
        if self.pid is None:
            return
        pids = process_tree(self.pid)
        sizes = [rss_bytes(p) for p in pids]
        self.processes = max(self.processes, sum(1 for s in sizes if s))
        self.peak_total = max(self.peak_total, sum(sizes))
        self.peak_per_process = max(self.peak_per_process, *sizes)

    def cpu(self) -> dict[int, float]:
        return {p: cpu_seconds(p) for p in process_tree(self.pid)} if self.pid is not None else {}

    def __enter__(self) -> ServerMonitor:
        self._cpu = self.cpu()

        def loop() -> None:
            while not self._stop.is_set():
                self.sample()
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=loop, name="server-monitor", daemon=True)
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join()
        self.sample()
        end = self.cpu()
        self.cpu_used = sum(end.get(p, 0.0) - self._cpu.get(p, 0.0) for p in end)


def client_cpu_seconds() -> float:
    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# --- the server under test ----------------------------------------------------------------------


def prepare_store(env: dict[str, str], seed: int) -> None:
    """Load the demo data into the store the server will use (idempotent)."""
    from sitegraph.demo import build_demo
    from sitegraph.graph.factory import open_store
    from sitegraph.settings import Settings

    settings = Settings(
        _env_file=None,  # type: ignore[call-arg]
        sitegraph_home=Path(env["SITEGRAPH_HOME"]),
        sitegraph_store=env["SITEGRAPH_STORE"],  # type: ignore[arg-type]
        neo4j_uri=env.get("NEO4J_URI"),
        neo4j_password=env.get("NEO4J_PASSWORD"),  # type: ignore[arg-type]
    )
    started = time.perf_counter()
    with open_store(settings=settings) as store:
        report = build_demo(store, seed=seed)
    log.info("demo data ready in %.1fs: %s", time.perf_counter() - started, "; ".join(report.steps))


@contextlib.contextmanager
def temporary_neo4j(base: Path) -> Iterator[tuple[str, str]]:
    from sitegraph.graph.localserver import temporary_instance

    with temporary_instance(base) as server:
        yield server.uri, server.password


@contextlib.contextmanager
def api_server(env: dict[str, str], port: int, workers: int, log_path: Path) -> Iterator[tuple[str, int]]:
    """uvicorn serving the API on 127.0.0.1:port in a subprocess, stopped afterwards: (url, pid)."""
    cmd = [
        sys.executable, "-m", "uvicorn", "sitegraph.api.main:create_app", "--factory",
        "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers),
        "--log-level", "warning", "--no-access-log", "--timeout-keep-alive", "75",
    ]  # fmt: skip
    if workers > 1:
        cmd += ["--timeout-worker-healthcheck", "60"]  # workers import for seconds on a busy machine
    with log_path.open("wb") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT)
        try:
            yield f"http://127.0.0.1:{port}", proc.pid
        finally:
            proc.terminate()
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_ready(base: str, timeout: float = READY_TIMEOUT) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            r = httpx.get(f"{base}/ready", timeout=5)
            if r.status_code == 200:
                return dict(r.json())
            last = f"{r.status_code} {r.text[:200]}"
        except httpx.HTTPError as e:
            last = str(e)
        time.sleep(0.5)
    raise SystemExit(f"the API at {base} was not ready after {timeout:.0f}s: {last}")


def precompute_status(base: str) -> dict[str, Any] | None:
    """The server's ``/ready`` progress of the answers computed ahead, with its current data version."""
    r = httpx.get(f"{base}/ready", timeout=30)
    r.raise_for_status()
    body = r.json()
    status = body.get("precomputed")
    return None if status is None else {**status, "current_version": body["data_version"]}


def wait_precomputed(base: str, timeout: float = PRECOMPUTE_TIMEOUT) -> dict[str, Any] | None:
    """Wait until the server has answered every site ahead for its current data version (None: it does not)."""
    deadline = time.monotonic() + timeout
    last_log = 0.0
    while True:
        status = precompute_status(base)
        if status is None:
            log.info("the server does not precompute answers")
            return None
        if status["finished"] and status["data_version"] == status["current_version"]:
            log.info("precompute finished: %d answers, %d sites, %.1fs", status["answers"], status["sites"], status["seconds"])
            return status
        if time.monotonic() > deadline:
            raise SystemExit(f"the server did not finish precomputing within {timeout:.0f}s: {status}")
        if time.monotonic() - last_log > 30:
            log.info("waiting for the precompute: %d of %d answers, %.0fs", status["answers"], status["total"], status["seconds"])
            last_log = time.monotonic()
        time.sleep(2.0)


def open_the_day(base: str, sites: list[str], api_key: str, seed: int) -> dict[str, Any]:
    """Log one interaction dated now and wait for the server to answer every site ahead again.

    The first write of a UTC day moves the reference date barrier activity decays from (the end of the
    newest interaction's day), so it changes nearly every answer, and the server computes them all again
    (as after a restart). The writes after it the same day reach only the sites near the written one. So
    the window under writes starts after this one, and this one's cost is reported on its own.
    """
    rng = random.Random(seed * 104729)
    t0 = time.perf_counter()
    r = httpx.post(
        f"{base}/interactions", json=interaction_body(rng.choice(sites), rng), headers={"X-API-Key": api_key}, timeout=120
    )
    write_ms = (time.perf_counter() - t0) * 1000
    if r.status_code != 201:
        raise SystemExit(f"the opening write failed: HTTP {r.status_code} {r.text[:300]}")
    log.info("the day's first write logged in %.0f ms; waiting for the server to answer every site again", write_ms)
    status = wait_precomputed(base)
    return {
        "write_ms": round(write_ms, 1),
        "recompute_s": round(time.perf_counter() - t0, 1),
        "carried": None if status is None else status.get("carried"),
    }


# --- the load --------------------------------------------------------------------------------------


def pick_targets(base: str, n_sites: int, seed: int) -> tuple[list[str], list[str]]:
    """Site ids and search words taken from the API itself (a deterministic sample; n_sites 0 = all)."""
    ids: list[str] = []
    names: list[str] = []
    offset = 0
    with httpx.Client(base_url=base, timeout=WARM_TIMEOUT) as client:
        while True:
            page = client.get("/sites", params={"limit": 100, "offset": offset}).raise_for_status().json()
            ids += [s["id"] for s in page["items"]]
            names += [s["name"] for s in page["items"]]
            offset += 100
            if offset >= page["total"] or not page["items"]:
                break
    if not ids:
        raise SystemExit("the store has no sites: load data first (sitegraph demo), or pass --prepare")
    rng = random.Random(seed)
    sites = rng.sample(ids, min(n_sites, len(ids))) if n_sites > 0 else ids
    words = sorted({w.lower() for name in names for w in re.findall(r"[A-Za-z]{4,}", name)})
    queries = rng.sample(words, min(50, len(words))) or ["hospital"]
    return sites, queries


def request_path(endpoint: str, site: str, query: str) -> str:
    sid = quote(site, safe=":")
    return {
        "site": f"/sites/{sid}",
        "related": f"/sites/{sid}/related?limit=10",
        "tactics": f"/sites/{sid}/tactics?limit=5",
        "search": f"/sites?q={quote(query)}&limit=20",
    }[endpoint]


Get = Callable[[str], Awaitable[tuple[int, bytes]]]
Post = Callable[[str, dict[str, Any], dict[str, str]], Awaitable[tuple[int, bytes]]]


@contextlib.asynccontextmanager
async def http_client(kind: str, base: str, concurrency: int) -> Any:
    """A keep-alive client with ``concurrency`` connections (and one more for writes): yields
    ``(get(path), post(path, json, headers))``, each returning ``(status, body)``."""
    if kind == "aiohttp":
        import aiohttp

        connector = aiohttp.TCPConnector(limit=concurrency + 1, limit_per_host=concurrency + 1, force_close=False)
        timeout = aiohttp.ClientTimeout(total=WARM_TIMEOUT)
        async with aiohttp.ClientSession(base_url=base, connector=connector, timeout=timeout) as session:

            async def get_aiohttp(path: str) -> tuple[int, bytes]:
                async with session.get(path) as r:
                    return r.status, await r.read()

            async def post_aiohttp(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
                async with session.post(path, json=body, headers=headers) as r:
                    return r.status, await r.read()

            yield get_aiohttp, post_aiohttp
    else:
        limits = httpx.Limits(max_connections=concurrency + 1, max_keepalive_connections=concurrency + 1)
        async with httpx.AsyncClient(base_url=base, limits=limits, timeout=WARM_TIMEOUT) as client:

            async def get_httpx(path: str) -> tuple[int, bytes]:
                r = await client.get(path)
                return r.status_code, await r.aread()

            async def post_httpx(path: str, body: dict[str, Any], headers: dict[str, str]) -> tuple[int, bytes]:
                r = await client.post(path, json=body, headers=headers)
                return r.status_code, await r.aread()

            yield get_httpx, post_httpx


WRITE_NOTES = (
    "Budget negotiation stalled again; the PI is frustrated with the delay.",
    "The ethics committee asked for more changes; approval slips another month.",
    "Screen failures on the eligibility criteria keep piling up.",
    "The coordinator is behind on data queries after staff turnover.",
)
"""Notes of the interactions ``--write-every`` logs (each tags a barrier, as a real call note would)."""


def interaction_body(site: str, rng: random.Random) -> dict[str, Any]:
    """A call at ``site`` logged now (so it is the newest interaction of the data, as in real use)."""
    from datetime import UTC, datetime

    return {
        "site_id": site,
        "channel": "call",
        "occurred_at": datetime.now(UTC).isoformat(),
        "note": rng.choice(WRITE_NOTES),
    }


TRANSPORT_ERRORS: tuple[type[BaseException], ...] = (httpx.HTTPError, OSError, asyncio.TimeoutError)
if importlib.util.find_spec("aiohttp"):
    import aiohttp

    TRANSPORT_ERRORS += (aiohttp.ClientError,)


async def drive(
    base: str,
    sites: list[str],
    queries: list[str],
    concurrency: int,
    duration: float,
    seed: int,
    *,
    client: str = "aiohttp",
    warmup: float = 3.0,
    on_start: Callable[[], None] | None = None,
    write_every: float = 0.0,
    api_key: str | None = None,
) -> tuple[Recorder, float]:
    """Warm up (every endpoint once on every connection, then ``warmup`` s of unrecorded load), then
    drive the closed loop for ``duration`` s. Returns the samples and the measured wall time.

    With ``write_every`` > 0 a writer beside the clients logs an interaction (``POST /interactions``
    with ``api_key``) at a random site of ``sites`` every ``write_every`` s of the measured window, the
    first one ``write_every`` s in; its samples are recorded under the endpoint ``write``.
    """
    recorder = Recorder()
    async with http_client(client, base, concurrency) as (get, post):

        async def warm(i: int) -> None:
            for endpoint in ENDPOINTS:
                status, body = await get(request_path(endpoint, sites[i % len(sites)], queries[i % len(queries)]))
                if status != 200:
                    raise SystemExit(f"warm-up {endpoint} failed: {status} {body[:300]!r}")

        await asyncio.gather(*(warm(i) for i in range(concurrency)))

        async def loop(i: int, until: float, rec: Recorder | None) -> None:
            rng = random.Random(seed * 1000 + i)
            n = i
            while time.perf_counter() < until:
                endpoint = ENDPOINTS[n % len(ENDPOINTS)]
                n += 1
                path = request_path(endpoint, rng.choice(sites), rng.choice(queries))
                t0 = time.perf_counter()
                try:
                    status, _ = await get(path)
                    ok, why = status == 200, None if status == 200 else f"HTTP {status}"
                except TRANSPORT_ERRORS as e:
                    ok, why = False, f"{type(e).__name__}: {e}"[:160]
                if rec is not None:
                    rec.add(endpoint, time.perf_counter() - t0, ok, why, t0)

        async def writer(until: float, rec: Recorder) -> None:
            rng = random.Random(seed * 7919)
            headers = {"X-API-Key": api_key or ""}
            due = time.perf_counter() + write_every
            while due < until:
                await asyncio.sleep(max(0.0, due - time.perf_counter()))
                due += write_every
                t0 = time.perf_counter()
                try:
                    status, body = await post("/interactions", interaction_body(rng.choice(sites), rng), headers)
                    ok, why = status == 201, None if status == 201 else f"write: HTTP {status} {body[:120]!r}"
                except TRANSPORT_ERRORS as e:
                    ok, why = False, f"write: {type(e).__name__}: {e}"[:160]
                rec.add("write", time.perf_counter() - t0, ok, why, t0)

        if warmup > 0:
            until = time.perf_counter() + warmup
            await asyncio.gather(*(loop(1_000_000 + i, until, None) for i in range(concurrency)))
        if on_start:
            on_start()
        started = time.perf_counter()
        tasks = [loop(i, started + duration, recorder) for i in range(concurrency)]
        if write_every > 0:
            tasks.append(writer(started + duration, recorder))
        await asyncio.gather(*tasks)
        elapsed = time.perf_counter() - started
        recorder.started = started
    return recorder, elapsed


def run_loop(coro: Any) -> Any:
    """Run on uvloop when it is installed (less client CPU per request), else on asyncio's loop."""
    if importlib.util.find_spec("uvloop"):
        import uvloop

        return uvloop.run(coro)
    return asyncio.run(coro)


def report(result: dict[str, Any]) -> str:
    rows = [["endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]]
    for name, s in [*result["endpoints"].items(), ("overall", result["overall"])]:
        latencies = ["-" if s[k] is None else f"{s[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        rows.append([name, str(s["requests"]), str(s["errors"]), f"{s['throughput_rps']:.1f}", *latencies])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"load test: {result['store']} store, {result['workers']} worker(s), {result['concurrency']} clients "
        f"({result['client']} on {result['client_loop']}), {result['duration_s']:.0f}s, {len(result['sites'])} sites sampled"
    ]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    c, srv = result["client_cpu"], result["server"]
    lines.append(
        f"client CPU: {c['cores']:.2f} cores ({c['share_of_machine']:.0%} of the machine), {c['us_per_request']:.0f} us/request"
    )
    if srv.get("cpu_cores") is not None:
        lines.append(
            f"server: {srv['cpu_cores']:.2f} cores, {srv['cpu_ms_per_request']:.2f} ms CPU/request, "
            f"peak RSS {srv['peak_rss_mib']:.0f} MiB (largest process {srv['peak_rss_per_process_mib']:.0f} MiB), "
            f"{srv['processes']} process(es); peak RSS over the whole run {srv.get('peak_rss_whole_run_mib', 0):.0f} MiB"
        )
    pre = result.get("precomputed") or {}
    if pre.get("during"):
        d = pre["during"]
        parts = [f"{e} p99 {d['endpoints'][e]['p99_ms']} ms" for e in ENDPOINTS if d["endpoints"][e]["p99_ms"] is not None]
        lines.append(
            f"while precomputing: {d['overall']['throughput_rps']} req/s, {d['overall']['errors']} errors, " + ", ".join(parts)
        )
    for when in ("at_start", "at_end"):
        st = pre.get(when)
        if st:
            lines.append(
                f"precompute {when.replace('_', ' ')}: {st['answers']}/{st['total']} answers for version {st['data_version']} "
                f"({'finished' if st['finished'] else 'running'}, {st['seconds']:.0f}s, "
                f"{st['kept_mib']:.0f} MiB kept, {st['hits']} hits)"
            )
    if pre.get("mode") == "off" or (pre and pre.get("at_start") is None):
        lines.append(f"precompute: {pre.get('mode', 'off')} (every answer computed on request or from the response cache)")
    la = result["load_average"]
    lines.append(f"load average: {la['before'][0]:.2f} before, {la['after'][0]:.2f} after (1 min)")
    if result["error_kinds"]:
        lines.append("errors: " + ", ".join(f"{k}: {v}" for k, v in sorted(result["error_kinds"].items())))
    ws = result.get("under_writes")
    if ws:
        r, w = ws["reads"], ws["writes"]
        recovered = [x for x in ws["recovery_s"] if x is not None]
        missed = len(ws["recovery_s"]) - len(recovered)
        lines.append(
            f"under writes (one every {ws['write_every_s']:.0f}s, {w['requests']} writes, {w['errors']} failed, "
            f"write p50 {w['p50_ms']} ms, max {w['max_ms']} ms): reads {r['throughput_rps']} req/s, {r['errors']} errors, "
            f"p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, max {r['max_ms']} ms; {ws['slow_seconds']} of {len(ws['seconds'])} s "
            f"with read p99 over {SLOW_MS:.0f} ms or stalled ({ws['stalled_seconds']} stalled); "
            f"back under it {recovered or '-'} s after each write" + ("" if not missed else f" ({missed} not within the window)")
        )
        op = ws.get("opening_write")
        if op:
            lines.append(
                f"before it, the day's first write (it moves the reference date): {op['write_ms']} ms, then every "
                f"answer computed again in {op['recompute_s']} s ({op['carried']} kept)"
            )
        end = ws.get("at_end") or {}
        if end.get("carried") is not None:
            lines.append(
                f"after the last write: {end['carried']} of {end['total']} answers kept from the version before "
                f"({end['answers']} ready at the end of the window)"
            )
        if ws.get("error_kinds"):
            lines.append("errors under writes: " + ", ".join(f"{k}: {v}" for k, v in sorted(ws["error_kinds"].items())))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    server_pid: int | None = args.server_pid
    with contextlib.ExitStack() as stack:
        if args.url:
            if not is_loopback_url(args.url):
                raise SystemExit("only loopback targets are allowed (127.0.0.1, ::1 or localhost)")
            base = args.url.rstrip("/")
            ready = wait_ready(base)
        else:
            env = {k: v for k, v in os.environ.items() if k != "SITEGRAPH_API_KEYS"}
            if args.write_every > 0:
                args.api_key = args.api_key or secrets.token_urlsafe(24)
                env["SITEGRAPH_API_KEYS"] = args.api_key
            env["SITEGRAPH_STORE"] = args.store
            env["SITEGRAPH_API_PRECOMPUTE"] = "0" if args.precompute == "off" else "1"
            tmp = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="sitegraph-load-")))
            home = args.home or (tmp / "home" if args.prepare or args.start_neo4j else None)
            if home is not None:
                env["SITEGRAPH_HOME"] = str(home)
            else:
                env.setdefault("SITEGRAPH_HOME", ".sitegraph")
            if args.start_neo4j:
                if args.store != "neo4j":
                    raise SystemExit("--start-neo4j needs --store neo4j")
                uri, password = stack.enter_context(temporary_neo4j(tmp))
                env["NEO4J_URI"], env["NEO4J_PASSWORD"] = uri, password
            if args.prepare:
                prepare_store(env, args.seed)
            log_path = (args.out.parent if args.out else tmp) / f"load_test_{args.store}_server.log"
            log_path.parent.mkdir(parents=True, exist_ok=True)
            base, server_pid = stack.enter_context(api_server(env, args.port or free_port(), args.workers, log_path))
            ready = wait_ready(base)
        log.info("API ready at %s on the %s store (data version %s)", base, ready.get("store"), ready.get("data_version"))
        whole = stack.enter_context(ServerMonitor(server_pid, interval=1.0))  # peak RSS over the whole run
        precomputed: dict[str, Any] = {"mode": args.precompute}
        sites, queries = pick_targets(base, args.sites, args.seed)
        if args.precompute == "both":  # a first window while the server precomputes, then the measured one after
            log.info("driving %d clients for %.0fs while the server precomputes", args.concurrency, args.duration)
            precomputed["during"] = {"at_start": precompute_status(base)}
            during, during_elapsed = run_loop(
                drive(base, sites, queries, args.concurrency, args.duration, args.seed + 1, client=args.client, warmup=0)
            )
            precomputed["during"] |= {
                "at_end": precompute_status(base),
                "endpoints": {e: summarize([s for s in during.samples if s.endpoint == e], during_elapsed) for e in ENDPOINTS},
                "overall": summarize(during.samples, during_elapsed),
                "error_kinds": during.errors,
            }
        if args.precompute in ("wait", "both"):
            precomputed["before_load"] = wait_precomputed(base)
        log.info("warming up, then driving %d clients (%s) for %.0fs", args.concurrency, args.client, args.duration)
        monitor = ServerMonitor(server_pid)
        marks: dict[str, Any] = {}

        def on_start() -> None:
            precomputed["at_start"] = precompute_status(base)
            marks["load_before"] = os.getloadavg()
            marks["cpu_before"] = client_cpu_seconds()
            monitor.__enter__()

        try:
            recorder, elapsed = run_loop(
                drive(
                    base, sites, queries, args.concurrency, args.duration, args.seed,
                    client=args.client, warmup=args.warmup, on_start=on_start,
                )
            )  # fmt: skip
        finally:
            client_cpu = client_cpu_seconds() - marks.get("cpu_before", 0.0)
            load_after = os.getloadavg()
            monitor.__exit__(None, None, None)
        precomputed["at_end"] = precompute_status(base)
        under_writes: dict[str, Any] | None = None
        if args.write_every > 0:
            opening = open_the_day(base, sites, args.api_key or "", args.seed)
            log.info("driving %d clients for %.0fs with a write every %.0fs", args.concurrency, args.duration, args.write_every)
            version_before = precompute_status(base)
            wrec, welapsed = run_loop(
                drive(
                    base, sites, queries, args.concurrency, args.duration, args.seed + 2,
                    client=args.client, warmup=0, write_every=args.write_every, api_key=args.api_key,
                )
            )  # fmt: skip
            under_writes = {
                "opening_write": opening,
                "write_every_s": args.write_every,
                "duration_s": round(welapsed, 2),
                "version_before": None if version_before is None else version_before["current_version"],
                "at_end": precompute_status(base),
                **write_stream_summary(wrec, welapsed),
                "error_kinds": wrec.errors,
            }
        whole.sample()
    overall = summarize(recorder.samples, elapsed)
    n = max(1, overall["requests"])
    cores = os.cpu_count() or 1
    server: dict[str, Any] = {"pid": server_pid}
    if server_pid is not None:
        server |= {
            "cpu_cores": round(monitor.cpu_used / elapsed, 2),
            "cpu_ms_per_request": round(monitor.cpu_used / n * 1000, 3),
            "peak_rss_mib": round(monitor.peak_total / 2**20, 1),
            "peak_rss_per_process_mib": round(monitor.peak_per_process / 2**20, 1),
            "processes": monitor.processes,
            "peak_rss_whole_run_mib": round(whole.peak_total / 2**20, 1),
        }
    loop_name = "uvloop" if importlib.util.find_spec("uvloop") else "asyncio"
    return {
        "store": ready.get("store", args.store),
        "workers": args.workers,
        "concurrency": args.concurrency,
        "client": args.client,
        "client_loop": loop_name,
        "duration_s": round(elapsed, 2),
        "sites": sites,
        "sites_sampled": len(sites),
        "precomputed": precomputed,
        "endpoints": {e: summarize([s for s in recorder.samples if s.endpoint == e], elapsed) for e in ENDPOINTS},
        "overall": overall,
        "error_kinds": recorder.errors,
        "under_writes": under_writes,
        "client_cpu": {
            "seconds": round(client_cpu, 2),
            "cores": round(client_cpu / elapsed, 2),
            "share_of_machine": round(client_cpu / elapsed / cores, 3),
            "us_per_request": round(client_cpu / n * 1e6, 1),
        },
        "server": server,
        "load_average": {"before": marks["load_before"], "after": load_after},
        "python": sys.version.split()[0],
        "cpus": cores,
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", choices=("memory", "neo4j"), default="memory", help="Store the server uses.")
    p.add_argument("--duration", type=float, default=60.0, help="Seconds of measured load (default 60).")
    p.add_argument("--warmup", type=float, default=3.0, help="Seconds of unrecorded load before measuring (default 3).")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="Concurrent clients (default 32).")
    p.add_argument("--sites", type=int, default=200, help="How many site ids to sample for the requests (0: every site).")
    p.add_argument("--seed", type=int, default=42, help="Seed of the request mix (and of --prepare's demo data).")
    p.add_argument(
        "--home", type=Path, help="SITEGRAPH_HOME of the server (default: a temp folder with --prepare, else the setting)."
    )
    p.add_argument(
        "--precompute",
        choices=PRECOMPUTE_MODES,
        default="wait",
        help="wait: measure after the server answered every site ahead (default); during: while it does; "
        "both: a window during, then the measured one after; off: without it.",
    )
    p.add_argument(
        "--write-every",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="After the measured window, drive a second one while an interaction is logged every SECONDS "
        "(POST /interactions, dated now; changes the store: use a copy). Reported under under_writes.",
    )
    p.add_argument("--api-key", help="With --url and --write-every: a key the running server accepts for writes.")
    p.add_argument("--prepare", action="store_true", help="Load the demo data into the store first (sitegraph demo).")
    p.add_argument("--start-neo4j", action="store_true", help="Start a temporary local Neo4j (with --store neo4j).")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes (with --url: as started, for the report).")
    p.add_argument("--port", type=int, default=0, help="Port of the server (default: a free one).")
    p.add_argument("--url", help="Drive an API already running on loopback instead of starting one.")
    p.add_argument("--server-pid", type=int, help="With --url: the server's process id, to report its CPU and RSS.")
    p.add_argument("--client", choices=CLIENTS, default=default_client(), help="HTTP client (default: aiohttp if installed).")
    p.add_argument("--out", type=Path, help="Also write the JSON result to this file.")
    p.add_argument("--json", action="store_true", help="Print the JSON result instead of the table.")
    args = p.parse_args(argv)
    if args.write_every < 0 or (args.write_every > 0 and args.url and not args.api_key):
        p.error("--write-every must not be negative, and with --url it needs --api-key")
    if args.concurrency < 1 or args.duration <= 0 or args.warmup < 0:
        p.error("--concurrency must be at least 1, --duration positive and --warmup not negative")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text if args.json else report(result))
    return 1 if result["overall"]["errors"] or (result["under_writes"] or {}).get("reads", {}).get("errors") else 0


if __name__ == "__main__":
    sys.exit(main())
