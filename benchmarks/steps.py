"""One benchmark step per process, so that each reports its own peak RSS.

``python -m benchmarks.steps STEP --workdir DIR --scale SCALE`` prints a JSON list of measurements
(``name``, ``scale``, ``value``, ``unit`` and, where there is one, ``baseline``, ``baseline_value``,
``ratio``) on its last line. :mod:`benchmarks.run` runs the steps in order and collects them.
"""

from __future__ import annotations

import argparse
import gc
import json
import logging
import os
import random
import resource
import shutil
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

log = logging.getLogger("benchmarks.steps")

Measurement = dict[str, Any]


@dataclass(frozen=True)
class Scale:
    sites: int
    investigators: int
    studies: int
    interactions: int
    api_seconds: float
    baseline_rows: int  # rows written one transaction each by the straightforward baseline
    baseline_sites: int  # sites recommended without the snapshot cache by the baseline


SCALES: dict[str, Scale] = {
    "small": Scale(2_000, 6_000, 400, 40_000, api_seconds=20, baseline_rows=2_000, baseline_sites=5),
    "medium": Scale(10_000, 30_000, 2_000, 200_000, api_seconds=30, baseline_rows=3_000, baseline_sites=5),
    "large": Scale(50_000, 150_000, 10_000, 1_000_000, api_seconds=60, baseline_rows=3_000, baseline_sites=3),
}


def peak_rss_mib() -> float:
    """Peak resident set size of this process (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def m(
    name: str,
    scale: str,
    value: float,
    unit: str,
    baseline: str | None = None,
    baseline_value: float | None = None,
    higher_is_better: bool = True,
) -> Measurement:
    out: Measurement = {"name": name, "scale": scale, "value": round(value, 6), "unit": unit}
    if baseline is not None and baseline_value is not None:
        out["baseline"] = baseline
        out["baseline_value"] = round(baseline_value, 6)
        if higher_is_better:
            out["ratio"] = round(value / baseline_value, 3) if baseline_value else None
        else:
            out["ratio"] = round(baseline_value / value, 3) if value else None
    return out


def _store(kind: str, workdir: Path) -> Any:
    from sitegraph.graph.memory import MemoryStore
    from sitegraph.graph.neo4j_store import Neo4jStore

    if kind == "memory":
        return MemoryStore(workdir / "memory")
    return Neo4jStore(os.environ["NEO4J_URI"], "neo4j", os.environ["NEO4J_PASSWORD"])


# --- steps ---------------------------------------------------------------------------------------


def step_generate(workdir: Path, scale: str) -> list[Measurement]:
    """Synthesise the scale's sites, investigators, studies and interactions as CSV (no store writes)."""
    from sitegraph.graph.memory import MemoryStore
    from sitegraph.loaders.generate import GeneratorConfig, generate
    from sitegraph.ontology import load_ontology, sync

    sc = SCALES[scale]
    scratch = MemoryStore(workdir / "generator-scratch")
    sync(scratch, load_ontology())
    cfg = GeneratorConfig(
        seed=7,
        scale="large" if scale == "large" else "medium" if scale == "medium" else "small",
        interactions=sc.interactions,
        synthesize_sites=sc.sites,
        synthesize_investigators=sc.investigators,
        synthesize_studies=sc.studies,
        real_sites=False,
        write_store=False,
        chunk_size=50_000,
    )
    started = time.perf_counter()
    report = generate(scratch, cfg, out=workdir / "csv", truth=workdir / "truth.json")
    secs = time.perf_counter() - started
    rows = _csv_rows(workdir / "csv")
    return [
        m("generate.interactions_per_s", scale, report.interactions / secs, "interactions/s"),
        m("generate.csv_rows", scale, rows, "rows"),
        m("generate.seconds", scale, secs, "s"),
    ]


def _csv_rows(folder: Path) -> int:
    from sitegraph.loaders.csvfiles import count_rows

    return count_rows(folder)


def _read_batch(workdir: Path) -> Any:
    from sitegraph.loaders.csvfiles import read_csv_folder

    res = read_csv_folder(workdir / "csv")
    if res.problems:
        raise SystemExit(f"generated CSV does not validate: {res.problems[:3]}")
    return res


def _baseline_rows(batch: Any, n: int) -> list[Any]:
    """The first n nodes and relationships of the batch as one-item batches, endpoints first."""
    from sitegraph.graph.store import GraphBatch

    items: list[Any] = []
    for label, rows in batch.nodes.items():
        for key, props in list(rows.items())[: n // 4]:
            b = GraphBatch()
            b.add_node(label, key, props)
            items.append(b)
    for rk, props in list(batch.rels.items())[: n // 4]:
        b = GraphBatch()
        b.rels[rk] = props
        items.append(b)
    return items[:n]


def _neo4j_write(store: Any, batch: Any) -> tuple[str, Any]:
    """Write a validated load into Neo4j the way ``sitegraph load`` does: ``--bulk auto`` (the offline
    importer for a large load into the local server's nearly empty database) unless
    ``SITEGRAPH_BENCH_BULK`` says ``never`` or ``always``. The benchmark's server is the managed one
    under ``SITEGRAPH_HOME/neo4j`` (``benchmarks.run`` starts it there)."""
    from sitegraph.graph.factory import LOCAL_NEO4J_DIR
    from sitegraph.graph.neo4j_import import local_server_for, write_load
    from sitegraph.settings import get_settings

    bulk = os.environ.get("SITEGRAPH_BENCH_BULK", "auto")
    server = local_server_for(store, get_settings().home / LOCAL_NEO4J_DIR)
    return write_load(store, batch, bulk=bulk, server=server)


def _server_peak_rss_mib() -> float | None:
    """Peak RSS (VmHWM) of the local server now running (after a bulk load restarted it, the pid
    that ``benchmarks.run`` watches is gone)."""
    from sitegraph.graph.factory import LOCAL_NEO4J_DIR
    from sitegraph.graph.localserver import LocalNeo4j
    from sitegraph.settings import get_settings

    server = LocalNeo4j.from_home(get_settings().home / LOCAL_NEO4J_DIR)
    return process_peak_rss_mib(server.pid() if server else None)


def process_peak_rss_mib(pid: str | int | None) -> float | None:
    """Peak resident set size (VmHWM) of a live process, from /proc; None if it cannot be read."""
    if not pid:
        return None
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    except (OSError, ValueError):
        return None
    return None


def _children_cpu() -> float:
    """CPU seconds of this process's finished (waited for) child processes."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _load(kind: str, workdir: Path, scale: str) -> list[Measurement]:
    from sitegraph.ontology import load_ontology, sync

    store = _store(kind, workdir)
    store.ensure_schema()
    sync(store, load_ontology())
    # CPU seconds of this process beside the wall clock: on a shared machine they show where the
    # client's own time goes (the Neo4j server's work is in another process).
    # The CPU of finished child processes apart: forked workers (read, importer files) and the importer.
    started, cpu0, child0 = time.perf_counter(), time.process_time(), _children_cpu()
    with _PssSampler() as read_pss:  # this process and its forked reader, when there is one
        res = _read_batch(workdir)
    read_secs, read_cpu = time.perf_counter() - started, time.process_time() - cpu0
    read_child_cpu = _children_cpu() - child0
    batch = res.batch
    nodes, rels = batch.node_count(), batch.rel_count()
    t0, cpu1, child1 = time.perf_counter(), time.process_time(), _children_cpu()
    how, bulk = ("transactional", None)
    with _PssSampler() as write_pss:  # and its importer-file worker, when it runs
        if kind == "neo4j":
            how, bulk = _neo4j_write(store, batch)
        else:
            store.write(batch)
    write_secs, write_cpu = time.perf_counter() - t0, time.process_time() - cpu1
    write_child_cpu = _children_cpu() - child1
    total = time.perf_counter() - started
    rows_per_s = res.rows / total
    # Baseline: the straightforward way, one transaction per node or relationship, on a sample
    # written into a separate (already loaded, so MERGE finds the nodes) store.
    sample = _baseline_rows(batch, SCALES[scale].baseline_rows)
    t1 = time.perf_counter()
    for b in sample:
        store.write(b)
    base_secs = time.perf_counter() - t1
    base_rate = len(sample) / base_secs
    out = [
        m(f"load.{kind}.rows_per_s", scale, rows_per_s, "rows/s", "one transaction per row", base_rate),
        m(f"load.{kind}.nodes_per_s", scale, nodes / write_secs, "nodes/s"),
        m(f"load.{kind}.relationships_per_s", scale, rels / write_secs, "relationships/s"),
        m(
            f"load.{kind}.items_per_s_write_only",
            scale,
            (nodes + rels) / write_secs,
            "items/s",
            "one transaction per row",
            base_rate,
        ),
        m(f"load.{kind}.read_validate_seconds", scale, read_secs, "s"),
        m(f"load.{kind}.read_validate_cpu_seconds", scale, read_cpu, "s"),
        m(f"load.{kind}.write_seconds", scale, write_secs, "s"),
        m(f"load.{kind}.write_cpu_seconds", scale, write_cpu, "s"),
        m(f"load.{kind}.read_validate_child_cpu_seconds", scale, read_child_cpu, "s"),
        m(f"load.{kind}.write_child_cpu_seconds", scale, write_child_cpu, "s"),
        m(f"load.{kind}.seconds", scale, total, "s"),
        m(f"load.{kind}.rows", scale, res.rows, "rows"),
        m(f"load.{kind}.read_validate_peak_pss", scale, read_pss.peak_kib / 1024, "MiB"),
        m(f"load.{kind}.write_peak_pss", scale, write_pss.peak_kib / 1024, "MiB"),
    ]
    if kind == "neo4j":
        out.append(m("load.neo4j.bulk_import", scale, 1 if how == "bulk" else 0, "1 = neo4j-admin import, 0 = transactions"))
    if bulk is not None:
        # phases of the bulk path; the server stops while the import files are written
        for phase in ("check", "files", "stop", "import", "start", "schema"):
            out.append(m(f"load.neo4j.bulk_{phase}_seconds", scale, getattr(bulk, f"{phase}_seconds"), "s"))
        # the importer's own time; the rest of bulk_import_seconds is its JVM's start, set-up and exit
        out.append(m("load.neo4j.bulk_importer_work_seconds", scale, bulk.importer_work_seconds, "s"))
        out.append(m("load.neo4j.bulk_importer_peak_rss", scale, bulk.importer_peak_rss_mib, "MiB"))
        rss = _server_peak_rss_mib()
        if rss is not None:
            out.append(m("load.neo4j.server_peak_rss_after_restart", scale, rss, "MiB"))
    store.close()
    return out


_GRAPH_READ = """
import json, sys, time
from sitegraph.graph.memory import MemoryStore
store = MemoryStore(sys.argv[1])
t, c = time.perf_counter(), time.process_time()
g = store.graph()
hwm = next(int(ln.split()[1]) for ln in open("/proc/self/status") if ln.startswith("VmHWM:"))
print(json.dumps({"seconds": time.perf_counter() - t, "cpu": time.process_time() - c, "rss": hwm / 1024}))
"""


def _graph_read(workdir: Path, scale: str) -> list[Measurement]:
    """What the API and snapshots pay at start-up: the stored graph read into networkx, in a fresh process.

    Its peak RSS is the child's VmHWM (getrusage would report the parent's peak, inherited at fork).
    """
    import subprocess

    proc = subprocess.run(
        [sys.executable, "-c", _GRAPH_READ, str(workdir / "memory")], capture_output=True, text=True, check=True
    )
    res = json.loads(proc.stdout.strip().splitlines()[-1])
    return [
        m("load.memory.graph_read_seconds", scale, res["seconds"], "s"),
        m("load.memory.graph_read_cpu_seconds", scale, res["cpu"], "s"),
        m("load.memory.graph_read_peak_rss", scale, res["rss"], "MiB"),
    ]


def step_load_memory(workdir: Path, scale: str) -> list[Measurement]:
    return _load("memory", workdir, scale) + _graph_read(workdir, scale)


def step_load_neo4j(workdir: Path, scale: str) -> list[Measurement]:
    return _load("neo4j", workdir, scale)


def _analyze(kind: str, workdir: Path, scale: str) -> list[Measurement]:
    """``sitegraph analyze`` on the loaded store, alone in its process: seconds per phase (its RSS
    is the product's; the networkx and scipy baselines run in ``analyze-baseline``)."""
    from sitegraph.graph.analyze import analyze

    step = "analyze" if kind == "memory" else f"analyze.{kind}"
    store = _store(kind, workdir)
    started = time.perf_counter()
    report = analyze(store)
    secs = time.perf_counter() - started
    store.close()
    out = [
        m(f"{step}.store_end_to_end_seconds", scale, secs, "s"),
        m(f"{step}.read_seconds", scale, report.snapshot_seconds, "s"),
    ]
    for run in report.measures:
        out.append(m(f"{step}.{run.projection}.{run.measure}_seconds", scale, run.seconds, "s"))
    out += [
        m(f"{step}.measures_seconds", scale, sum(r.seconds for r in report.measures if r.measure != "projection"), "s"),
        m(f"{step}.batch_seconds", scale, report.batch_seconds, "s"),
        m(f"{step}.write_seconds", scale, report.write_seconds, "s"),
        m(f"{step}.nodes_written", scale, report.nodes_written, "nodes"),
        m(f"{step}.properties_written", scale, report.properties_written, "properties"),
    ]
    return out


def step_analyze(workdir: Path, scale: str) -> list[Measurement]:
    """``sitegraph analyze`` end to end on the loaded embedded store (read, measures, write-back)."""
    return _analyze("memory", workdir, scale)


def step_analyze_neo4j(workdir: Path, scale: str) -> list[Measurement]:
    """``sitegraph analyze`` end to end on the loaded Neo4j."""
    return _analyze("neo4j", workdir, scale)


def step_analyze_baseline(workdir: Path, scale: str) -> list[Measurement]:
    """The baselines of ``analyze``, in their own process: on the embedded store's own projections,
    the fast path against networkx and against a plain scipy power iteration (the lower bound);
    then the same on the synthetic network of ``benchmarks.bench_centrality`` (names without
    ``store_``)."""
    from benchmarks import bench_centrality

    store = _store("memory", workdir)
    out: list[Measurement] = bench_centrality.run_on_store(store, scale)
    store.close()
    out += bench_centrality.run(scale)
    return out


LATENCY_SAMPLE = {"small": 100, "medium": 100, "large": 40}
"""Sites timed one call each for the per-call latencies of recommend_tactics and related_sites."""


def _quantiles(seconds: list[float]) -> tuple[float, float]:
    ms = sorted(x * 1000 for x in seconds)
    return ms[len(ms) // 2], ms[max(0, -(-99 * len(ms) // 100) - 1)]


class _PssSampler:
    """Peak of the summed proportional set size (PSS) of this process and its Python children (forked
    workers), sampled from /proc every :data:`PSS_EVERY` seconds and whenever :meth:`sample` is called:
    the memory a step with forked workers really holds (each worker's RSS counts the pages it shares
    with the parent; PSS splits them between the processes sharing them). Other children (the Neo4j
    importer, a JVM) are left out: their peak RSS is reported on its own.

    Reading a process's PSS walks its page tables in the kernel (tens of milliseconds per GiB, holding
    the process's memory-map lock), so the samples are spaced out: at 0.5 s they took a noticeable
    share of a core from the step they measured."""

    def __init__(self) -> None:
        import threading

        self.peak_kib = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    @staticmethod
    def _pss_kib(pid: int) -> int:
        try:
            if Path(f"/proc/{pid}/comm").read_text().strip() == "java":
                return 0
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    return int(line.split()[1])
        except (OSError, ValueError):
            pass
        return 0

    def sample(self) -> None:
        me = os.getpid()
        try:
            children = [int(p) for p in Path(f"/proc/{me}/task/{me}/children").read_text().split()]
        except OSError:
            children = []
        self.peak_kib = max(self.peak_kib, sum(self._pss_kib(p) for p in [me, *children]))

    def _run(self) -> None:
        while not self._stop.wait(PSS_EVERY):
            self.sample()

    def __enter__(self) -> _PssSampler:
        self.sample()
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


PSS_EVERY = 3.0
"""Seconds between two samples of :class:`_PssSampler`."""


def step_recommend(workdir: Path, scale: str) -> list[Measurement]:
    """Next-best tactics and related sites on the loaded embedded store.

    The per-snapshot indexes are built once (``warm_up``: timed); then per-call latencies of
    ``recommend_tactics`` and ``related_sites`` on sites not asked before (disjoint seeded samples), and
    the throughput of ``recommend_all`` over every site (streamed, in blocks of sites; results dropped as
    they come, so memory stays flat), beside ``recommend_tactics`` called site after site on a sample of
    sites not asked before (the per-site path, same indexes, same run). Then what
    ``sitegraph recommend --all`` does: ``recommend_all_json`` over every site with one worker process
    per available core, each site's JSON line built as the CLI builds it (beside the one-process
    ``recommend_all`` above), with the peak PSS of this process and its workers.
    Baseline: a fresh snapshot per site (no cache), on a few sites.
    """
    from sitegraph.queries.recommend import recommend_all, recommend_all_json, recommend_tactics, warm_up
    from sitegraph.queries.related import related_sites
    from sitegraph.queries.snapshot import build_snapshot, get_snapshot
    from sitegraph.workers import available_cores

    store = _store("memory", workdir)
    t0, c0 = time.perf_counter(), time.process_time()
    snap = get_snapshot(store)
    snap_secs, snap_cpu = time.perf_counter() - t0, time.process_time() - c0
    sites = [k for k, _ in snap.nodes("Site")]
    t1, c1 = time.perf_counter(), time.process_time()
    warm_up(snap)
    index_secs, index_cpu = time.perf_counter() - t1, time.process_time() - c1
    gc.freeze()  # as the API does after its warm-up: later collections do not walk the indexes
    index_rss = peak_rss_mib()
    rng = random.Random(0)
    shuffled = rng.sample(sites, len(sites))
    n_lat = min(LATENCY_SAMPLE[scale], len(sites) // 3)
    rel_sample, rec_sample = shuffled[:n_lat], shuffled[n_lat : 2 * n_lat]
    rel_times, rec_times = [], []
    for sid in rel_sample:
        t = time.perf_counter()
        related_sites(snap, sid, 10)
        rel_times.append(time.perf_counter() - t)
    for sid in rec_sample:
        t = time.perf_counter()
        recommend_tactics(snap, sid, 5)
        rec_times.append(time.perf_counter() - t)
    # the per-site path on sites not asked before (a nightly batch written the straightforward way)
    single_sample = shuffled[2 * n_lat : 2 * n_lat + min(2000, max(1, len(sites) // 10))]
    t2 = time.perf_counter()
    for sid in single_sample:
        recommend_tactics(snap, sid, 5)
    single_rate = len(single_sample) / (time.perf_counter() - t2)
    load_before = os.getloadavg()[0]
    t2 = time.perf_counter()
    done = 0
    for _site, _recs in recommend_all(snap, sites, 5):  # every site, as a nightly batch would
        done += 1
    secs = time.perf_counter() - t2
    rate = done / secs
    load_after = os.getloadavg()[0]
    # recommend --all: every site in worker processes, as JSON lines
    workers = available_cores()
    json_load_before = os.getloadavg()[0]
    t2 = time.perf_counter()
    json_done = json_bytes = 0
    with _PssSampler() as pss:
        for site, text in recommend_all_json(snap, sites, 5, workers=workers):
            json_bytes += len(f'{{"site_id":{json.dumps(site, ensure_ascii=False)},"recommendations":{text}}}\n')
            json_done += 1
            if json_done == len(sites):  # the workers' copies only grow: sample once more before they stop
                pss.sample()
    json_secs = time.perf_counter() - t2
    json_load = round((json_load_before + os.getloadavg()[0]) / 2, 2)
    # Baseline: no cache, every call reads the store into a fresh snapshot (what a naive service does).
    sample = random.Random(0).sample(sites, min(len(sites), SCALES[scale].baseline_sites))
    t3 = time.perf_counter()
    for sid in sample:
        recommend_tactics(build_snapshot(store), sid)
    base_rate = len(sample) / (time.perf_counter() - t3)
    store.close()
    rec_p50, rec_p99 = _quantiles(rec_times)
    rel_p50, rel_p99 = _quantiles(rel_times)
    return [
        m("recommend.sites_per_s", scale, rate, "sites/s", "fresh snapshot per site (no cache)", base_rate),
        m("recommend.sites_timed", scale, done, "sites"),
        m("recommend.batch_seconds", scale, secs, "s"),
        m("recommend.per_site_path_sites_per_s", scale, single_rate, "sites/s"),
        m("recommend.batch_vs_per_site_path", scale, rate / single_rate, "x"),
        m("recommend.load_average_batch", scale, round((load_before + load_after) / 2, 2), "1-min load"),
        m("recommend.all_json_sites_per_s", scale, json_done / json_secs, "sites/s", "recommend_all, one process", rate),
        m("recommend.all_json_workers", scale, workers, "processes"),
        m("recommend.all_json_seconds", scale, json_secs, "s"),
        m("recommend.all_json_mib", scale, json_bytes / 2**20, "MiB"),
        m("recommend.all_json_peak_pss", scale, pss.peak_kib / 1024, "MiB"),
        m("recommend.load_average_all_json", scale, json_load, "1-min load"),
        m("recommend.snapshot_seconds", scale, snap_secs, "s"),
        m("recommend.index_build_seconds", scale, index_secs, "s"),
        m("recommend.snapshot_cpu_seconds", scale, snap_cpu, "s"),
        m("recommend.index_build_cpu_seconds", scale, index_cpu, "s"),
        m("recommend.peak_rss_after_index", scale, index_rss, "MiB"),
        m("recommend.recommend_tactics_p50_ms", scale, rec_p50, "ms"),
        m("recommend.recommend_tactics_p99_ms", scale, rec_p99, "ms"),
        m("recommend.related_sites_p50_ms", scale, rel_p50, "ms"),
        m("recommend.related_sites_p99_ms", scale, rel_p99, "ms"),
        m("recommend.sites", scale, len(sites), "sites"),
    ]


def step_api(workdir: Path, scale: str, kind: str) -> list[Measurement]:
    """API latency and throughput at 32 clients on loopback (the load test against the loaded store)."""
    from benchmarks import load_test

    out_file = workdir / f"api-{kind}.json"
    seconds = SCALES[scale].api_seconds
    args = ["--store", kind, "--duration", str(seconds), "--concurrency", "32", "--out", str(out_file)]
    # every site, uniformly at random; one window while the server answers every site ahead, the
    # measured one after it has (sitegraph.api.precompute)
    args += ["--sites", "0", "--precompute", "both"]
    if kind == "memory":
        # then a third window while interactions are logged through the API: on a copy of the store,
        # which the writes change
        home = workdir / "api-home"
        shutil.rmtree(home, ignore_errors=True)
        (home / "memory").mkdir(parents=True)
        shutil.copy2(workdir / "memory" / "graph.sqlite", home / "memory" / "graph.sqlite")
        args += ["--home", str(home), "--write-every", str(seconds / 6)]
    load_test.main(args)  # exits non-zero on errors, which are reported below as a measurement
    result = json.loads(out_file.read_text())
    out: list[Measurement] = []
    overall = result["overall"]
    out.append(m(f"api.{kind}.throughput", scale, overall["throughput_rps"], "requests/s"))
    out.append(m(f"api.{kind}.errors", scale, overall["errors"], "errors"))
    for endpoint, summary in result["endpoints"].items():
        for q in ("p50", "p95", "p99"):
            if summary.get(f"{q}_ms") is not None:
                out.append(m(f"api.{kind}.{endpoint}.{q}_ms", scale, summary[f"{q}_ms"], "ms"))
    # what bounds the figures on a small machine: the load generator's own CPU, the server's CPU and RSS
    out.append(m(f"api.{kind}.client_cpu_share", scale, result["client_cpu"]["share_of_machine"], "fraction of all cores"))
    server = result.get("server", {})
    if server.get("peak_rss_mib") is not None:
        out.append(m(f"api.{kind}.server_peak_rss", scale, server["peak_rss_mib"], "MiB"))
        out.append(m(f"api.{kind}.server_cpu_per_request", scale, server["cpu_ms_per_request"], "ms"))
    out.append(m(f"api.{kind}.load_average", scale, round(result["load_average"]["after"][0], 2), "1-min load"))
    if server.get("peak_rss_whole_run_mib") is not None:
        out.append(m(f"api.{kind}.server_peak_rss_whole_run", scale, server["peak_rss_whole_run_mib"], "MiB"))
    out.append(m(f"api.{kind}.sites", scale, result["sites_sampled"], "sites"))
    ws = result.get("under_writes")
    if ws:
        w = f"api.{kind}.under_writes"
        out.append(m(f"{w}.write_every", scale, ws["write_every_s"], "s"))
        out.append(m(f"{w}.writes", scale, ws["writes"]["requests"], "writes"))
        out.append(m(f"{w}.write_errors", scale, ws["writes"]["errors"], "errors"))
        if ws["writes"]["p50_ms"] is not None:
            out.append(m(f"{w}.write_p50_ms", scale, ws["writes"]["p50_ms"], "ms"))
        out.append(m(f"{w}.throughput", scale, ws["reads"]["throughput_rps"], "requests/s"))
        out.append(m(f"{w}.errors", scale, ws["reads"]["errors"], "errors"))
        for endpoint, summary in ws["endpoints"].items():
            if summary.get("p99_ms") is not None:
                out.append(m(f"{w}.{endpoint}.p99_ms", scale, summary["p99_ms"], "ms"))
        out.append(m(f"{w}.slow_share", scale, ws["slow_share"], "fraction of seconds with read p99 > 50 ms"))
        recovered = [x for x in ws["recovery_s"] if x is not None]
        if recovered:
            out.append(m(f"{w}.recovery_max", scale, max(recovered), "s"))
        out.append(m(f"{w}.writes_not_recovered", scale, len(ws["recovery_s"]) - len(recovered), "writes"))
        end = ws.get("at_end") or {}
        if end.get("carried") is not None and end.get("total"):
            out.append(m(f"{w}.kept_share_last_write", scale, end["carried"] / end["total"], "fraction of answers kept"))
        op = ws.get("opening_write") or {}
        if op.get("recompute_s") is not None:
            out.append(m(f"{w}.day_first_write_recompute", scale, op["recompute_s"], "s"))
    pre = result.get("precomputed") or {}
    if pre.get("before_load"):
        out.append(m(f"api.{kind}.precompute_seconds", scale, pre["before_load"]["seconds"], "s"))
    if (pre.get("at_end") or {}).get("kept_mib") is not None:
        out.append(m(f"api.{kind}.precompute_kept", scale, pre["at_end"]["kept_mib"], "MiB"))
    during = pre.get("during") or {}
    if during.get("overall"):
        out.append(m(f"api.{kind}.during_precompute.throughput", scale, during["overall"]["throughput_rps"], "requests/s"))
        out.append(m(f"api.{kind}.during_precompute.errors", scale, during["overall"]["errors"], "errors"))
        for endpoint, summary in during["endpoints"].items():
            if summary.get("p99_ms") is not None:
                out.append(m(f"api.{kind}.during_precompute.{endpoint}.p99_ms", scale, summary["p99_ms"], "ms"))
    return out


STEPS: dict[str, Callable[[Path, str], list[Measurement]]] = {
    "generate": step_generate,
    "load-memory": step_load_memory,
    "load-neo4j": step_load_neo4j,
    "analyze": step_analyze,
    "analyze-baseline": step_analyze_baseline,
    "analyze-neo4j": step_analyze_neo4j,
    "recommend": step_recommend,
    "api-memory": lambda w, s: step_api(w, s, "memory"),
    "api-neo4j": lambda w, s: step_api(w, s, "neo4j"),
}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("step", choices=sorted(STEPS))
    p.add_argument("--workdir", type=Path, required=True)
    p.add_argument("--scale", choices=sorted(SCALES), default="small")
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s", stream=sys.stderr)
    started = time.perf_counter()
    out = STEPS[args.step](args.workdir, args.scale)
    out.append(m(f"{args.step}.peak_rss", args.scale, peak_rss_mib(), "MiB"))
    out.append(m(f"{args.step}.wall_seconds", args.scale, time.perf_counter() - started, "s"))
    print(json.dumps(out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
