"""The benchmark suite: ``make bench SCALE=small|medium|large``.

Generates a synthetic sponsor network at the chosen scale, then measures, each step in its own
process (so each reports its own peak RSS) and each beside a baseline measured in the same run:
load into the embedded store and into a real local Neo4j, ``analyze`` (fast path vs networkx vs a
sparse-matrix lower bound), recommendations for every site, and the API under 32 concurrent
clients on loopback on both stores. Writes ``benchmarks/results/<time>-<scale>.json`` and ``.md``
and commits nothing.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from importlib import metadata
from pathlib import Path
from typing import Any

from benchmarks.steps import SCALES, process_peak_rss_mib

log = logging.getLogger("benchmarks.run")
RESULTS = Path(__file__).parent / "results"
ORDER = (
    "generate",
    "load-memory",
    "load-neo4j",
    "analyze",
    "analyze-baseline",
    "analyze-neo4j",
    "recommend",
    "api-memory",
    "api-neo4j",
)


def machine_facts() -> dict[str, Any]:
    mem_kib = 0
    with contextlib.suppress(OSError), open("/proc/meminfo") as f:
        for line in f:
            if line.startswith("MemTotal:"):
                mem_kib = int(line.split()[1])
    java = shutil.which("java")
    java_version = ""
    if java:
        proc = subprocess.run([java, "-version"], capture_output=True, text=True, check=False)
        java_version = (proc.stderr or proc.stdout).splitlines()[0] if (proc.stderr or proc.stdout) else ""
    versions = {}
    for pkg in ("sitegraph", "neo4j", "networkx", "numpy", "scipy", "fastapi", "uvicorn", "rdflib"):
        with contextlib.suppress(metadata.PackageNotFoundError):
            versions[pkg] = metadata.version(pkg)
    from sitegraph.graph.localserver import NEO4J_VERSION

    return {
        "cores": os.cpu_count(),
        "memory_gib": round(mem_kib / 1024 / 1024, 1),
        "cpu": platform.processor() or platform.machine(),
        "python": sys.version.split()[0],
        "java": java_version,
        "neo4j_server": NEO4J_VERSION,
        "packages": versions,
        "load_average_at_start": os.getloadavg(),
    }


@contextlib.contextmanager
def neo4j_for(scale: str, base: Path) -> Iterator[dict[str, str]]:
    from sitegraph.graph.localserver import temporary_instance

    heap, pagecache = {"small": ("1g", "512m"), "medium": ("2g", "1g"), "large": ("3g", "2g")}[scale]
    with temporary_instance(base, heap=heap, pagecache=pagecache) as server:
        yield {
            "NEO4J_URI": server.uri,
            "NEO4J_PASSWORD": server.password,
            "SITEGRAPH_HOME": str(base),
        }


def neo4j_server_pid(env: dict[str, str]) -> int | None:
    """The pid of the benchmark's server now (a bulk load restarts it under a new pid)."""
    from sitegraph.graph.localserver import LocalNeo4j

    server = LocalNeo4j.from_home(Path(env["SITEGRAPH_HOME"]) / "neo4j")
    return server.pid() if server is not None else None


def run_step(step: str, workdir: Path, scale: str, env: dict[str, str]) -> list[dict[str, Any]]:
    cmd = [sys.executable, "-m", "benchmarks.steps", step, "--workdir", str(workdir), "--scale", scale]
    log.info("step %s ...", step)
    started = time.perf_counter()
    proc = subprocess.run(cmd, env={**os.environ, **env}, stdout=subprocess.PIPE, text=True, check=False)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("[")]
    if proc.returncode != 0 or not lines:
        log.error("step %s failed (exit %d)", step, proc.returncode)
        return [{"name": f"{step}.failed", "scale": scale, "value": proc.returncode, "unit": "exit code"}]
    out: list[dict[str, Any]] = json.loads(lines[-1])
    log.info("step %s done in %.0fs", step, time.perf_counter() - started)
    return out


def markdown(result: dict[str, Any]) -> str:
    facts = result["machine"]
    lines = [
        f"# sitegraph benchmarks: scale {result['scale']}",
        "",
        f"{result['started']}, {facts['cores']} cores, {facts['memory_gib']} GiB, Python {facts['python']}, "
        f"Neo4j {facts['neo4j_server']} on {facts['java']}; load average at start {facts['load_average_at_start']}.",
        "",
        "| measurement | value | unit | baseline | baseline value | ratio |",
        "|---|---:|---|---|---:|---:|",
    ]
    for row in result["measurements"]:
        lines.append(
            f"| {row['name']} | {row['value']:,} | {row['unit']} | {row.get('baseline', '')} | "
            f"{'' if row.get('baseline_value') is None else format(row['baseline_value'], ',')} | {row.get('ratio', '') or ''} |"
        )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    p.add_argument("--scale", choices=sorted(SCALES), default=os.environ.get("SCALE", "small"))
    p.add_argument("--steps", default=",".join(ORDER), help="Comma-separated steps to run (default: all).")
    p.add_argument("--workdir", type=Path, help="Keep generated data here (default: a temporary folder).")
    p.add_argument("--out", type=Path, default=RESULTS)
    args = p.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s", stream=sys.stderr)
    steps = [s for s in args.steps.split(",") if s]
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    measurements: list[dict[str, Any]] = []
    with contextlib.ExitStack() as stack:
        workdir = args.workdir or Path(stack.enter_context(tempfile.TemporaryDirectory(prefix=f"sitegraph-bench-{args.scale}-")))
        workdir.mkdir(parents=True, exist_ok=True)
        facts = machine_facts()
        env: dict[str, str] = {}
        if any("neo4j" in s for s in steps):
            env = stack.enter_context(neo4j_for(args.scale, workdir / "neo4j-server"))
        for step in steps:
            measurements += run_step(step, workdir, args.scale, env)
            if "neo4j" in step:
                # The server is a separate JVM: its memory is part of what the Neo4j steps cost.
                rss = process_peak_rss_mib(neo4j_server_pid(env))
                if rss is not None:
                    measurements.append(
                        {"name": f"{step}.neo4j_server_peak_rss", "scale": args.scale, "value": round(rss, 1), "unit": "MiB"}
                    )
    result = {"scale": args.scale, "started": started, "machine": facts, "measurements": measurements}
    args.out.mkdir(parents=True, exist_ok=True)
    stem = args.out / f"{started.replace(':', '')}-{args.scale}"
    stem.with_suffix(".json").write_text(json.dumps(result, indent=2) + "\n")
    stem.with_suffix(".md").write_text(markdown(result))
    print(markdown(result))
    log.info("results in %s.{json,md}", stem)
    return 1 if any(r["name"].endswith(".failed") for r in measurements) else 0


if __name__ == "__main__":
    raise SystemExit(main())
