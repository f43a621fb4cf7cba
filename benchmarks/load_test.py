"""Load test of the HTTP API's read endpoints, on loopback, for one store.

Starts the API with uvicorn in a subprocess on 127.0.0.1 (a free port) for the given store, waits
until ``/ready`` answers, warms every endpoint once (the first request builds the snapshot), then
drives ``/sites/{id}``, ``/sites/{id}/related``, ``/sites/{id}/tactics`` and ``/sites?q=`` with N
concurrent clients (asyncio + httpx, keep-alive) for a bounded time, and reports throughput,
p50/p95/p99/max latency per endpoint and overall, and the error count (any status other than 200,
or a transport error), as a table and as JSON.

Usage::

    python -m benchmarks.load_test --store memory --prepare            # demo data in a temp folder
    python -m benchmarks.load_test --store neo4j --start-neo4j --prepare  # a temporary local Neo4j
    python -m benchmarks.load_test --store memory                      # the store in SITEGRAPH_HOME
    python -m benchmarks.load_test --url http://127.0.0.1:8000         # an API already running here

Only loopback targets are accepted. Exit code 1 when any request failed.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import ipaddress
import json
import logging
import math
import os
import random
import re
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

import httpx

log = logging.getLogger("benchmarks.load_test")

ENDPOINTS = ("site", "related", "tactics", "search")
READY_TIMEOUT = 180.0


@dataclass
class Sample:
    endpoint: str
    seconds: float
    ok: bool


@dataclass
class Recorder:
    samples: list[Sample] = field(default_factory=list)
    errors: dict[str, int] = field(default_factory=dict)

    def add(self, endpoint: str, seconds: float, ok: bool, why: str | None = None) -> None:
        self.samples.append(Sample(endpoint, seconds, ok))
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
def api_server(env: dict[str, str], port: int, workers: int, log_path: Path) -> Iterator[str]:
    """uvicorn serving the API on 127.0.0.1:port in a subprocess, stopped afterwards."""
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
            yield f"http://127.0.0.1:{port}"
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


# --- the load --------------------------------------------------------------------------------------


def pick_targets(base: str, n_sites: int, seed: int) -> tuple[list[str], list[str]]:
    """Site ids and search words taken from the API itself (a deterministic sample)."""
    ids: list[str] = []
    names: list[str] = []
    offset = 0
    with httpx.Client(base_url=base, timeout=120) as client:
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
    sites = rng.sample(ids, min(n_sites, len(ids)))
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


def warm_up(base: str, sites: list[str], queries: list[str]) -> None:
    with httpx.Client(base_url=base, timeout=300) as client:
        for endpoint in ENDPOINTS:
            r = client.get(request_path(endpoint, sites[0], queries[0]))
            if r.status_code != 200:
                raise SystemExit(f"warm-up {endpoint} failed: {r.status_code} {r.text[:300]}")


async def drive(
    base: str, sites: list[str], queries: list[str], concurrency: int, duration: float, seed: int
) -> tuple[Recorder, float]:
    recorder = Recorder()
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:
        started = time.perf_counter()
        deadline = started + duration

        async def worker(i: int) -> None:
            rng = random.Random(seed * 1000 + i)
            n = i
            while time.perf_counter() < deadline:
                endpoint = ENDPOINTS[n % len(ENDPOINTS)]
                n += 1
                path = request_path(endpoint, rng.choice(sites), rng.choice(queries))
                t0 = time.perf_counter()
                try:
                    r = await client.get(path)
                    await r.aread()
                    ok, why = r.status_code == 200, None if r.status_code == 200 else f"HTTP {r.status_code}"
                except httpx.HTTPError as e:
                    ok, why = False, f"{type(e).__name__}: {e}"[:160]
                recorder.add(endpoint, time.perf_counter() - t0, ok, why)

        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - started
    return recorder, elapsed


def report(result: dict[str, Any]) -> str:
    rows = [["endpoint", "requests", "errors", "req/s", "p50 ms", "p95 ms", "p99 ms", "max ms"]]
    for name, s in [*result["endpoints"].items(), ("overall", result["overall"])]:
        latencies = ["-" if s[k] is None else f"{s[k]:.1f}" for k in ("p50_ms", "p95_ms", "p99_ms", "max_ms")]
        rows.append([name, str(s["requests"]), str(s["errors"]), f"{s['throughput_rps']:.1f}", *latencies])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = [
        f"load test: {result['store']} store, {result['concurrency']} clients, {result['duration_s']:.0f}s, "
        f"{len(result['sites'])} sites sampled"
    ]
    for j, r in enumerate(rows):
        lines.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths, strict=True))))
        if j == 0:
            lines.append("  ".join("-" * w for w in widths))
    if result["error_kinds"]:
        lines.append("errors: " + ", ".join(f"{k}: {v}" for k, v in sorted(result["error_kinds"].items())))
    return "\n".join(lines)


def run(args: argparse.Namespace) -> dict[str, Any]:
    with contextlib.ExitStack() as stack:
        if args.url:
            if not is_loopback_url(args.url):
                raise SystemExit("only loopback targets are allowed (127.0.0.1, ::1 or localhost)")
            base = args.url.rstrip("/")
            ready = wait_ready(base)
        else:
            env = {k: v for k, v in os.environ.items() if k != "SITEGRAPH_API_KEYS"}
            env["SITEGRAPH_STORE"] = args.store
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
            base = stack.enter_context(api_server(env, args.port or free_port(), args.workers, log_path))
            ready = wait_ready(base)
        log.info("API ready at %s on the %s store (data version %s)", base, ready.get("store"), ready.get("data_version"))
        sites, queries = pick_targets(base, args.sites, args.seed)
        warm_up(base, sites, queries)
        log.info("driving %d clients for %.0fs over %d sites", args.concurrency, args.duration, len(sites))
        recorder, elapsed = asyncio.run(drive(base, sites, queries, args.concurrency, args.duration, args.seed))
    by_endpoint = {e: summarize([s for s in recorder.samples if s.endpoint == e], elapsed) for e in ENDPOINTS}
    return {
        "store": ready.get("store", args.store),
        "concurrency": args.concurrency,
        "duration_s": round(elapsed, 2),
        "sites": sites,
        "endpoints": by_endpoint,
        "overall": summarize(recorder.samples, elapsed),
        "error_kinds": recorder.errors,
        "python": sys.version.split()[0],
        "cpus": os.cpu_count(),
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", choices=("memory", "neo4j"), default="memory", help="Store the server uses.")
    p.add_argument("--duration", type=float, default=60.0, help="Seconds of load (default 60).")
    p.add_argument("--concurrency", "-c", type=int, default=32, help="Concurrent clients (default 32).")
    p.add_argument("--sites", type=int, default=200, help="How many site ids to sample for the requests.")
    p.add_argument("--seed", type=int, default=42, help="Seed of the request mix (and of --prepare's demo data).")
    p.add_argument(
        "--home", type=Path, help="SITEGRAPH_HOME of the server (default: a temp folder with --prepare, else the setting)."
    )
    p.add_argument("--prepare", action="store_true", help="Load the demo data into the store first (sitegraph demo).")
    p.add_argument("--start-neo4j", action="store_true", help="Start a temporary local Neo4j (with --store neo4j).")
    p.add_argument("--workers", type=int, default=1, help="uvicorn worker processes.")
    p.add_argument("--port", type=int, default=0, help="Port of the server (default: a free one).")
    p.add_argument("--url", help="Drive an API already running on loopback instead of starting one.")
    p.add_argument("--out", type=Path, help="Also write the JSON result to this file.")
    p.add_argument("--json", action="store_true", help="Print the JSON result instead of the table.")
    args = p.parse_args(argv)
    if args.concurrency < 1 or args.duration <= 0:
        p.error("--concurrency must be at least 1 and --duration positive")
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    logging.getLogger("httpx").setLevel(logging.WARNING)
    result = run(args)
    text = json.dumps(result, indent=2)
    if args.out:
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(text + "\n")
    print(text if args.json else report(result))
    return 1 if result["overall"]["errors"] else 0


if __name__ == "__main__":
    sys.exit(main())
