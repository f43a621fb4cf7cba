"""map_blocks: blocks run in forked workers, results in order, errors where they belong."""

from __future__ import annotations

import gc
import multiprocessing
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from sitegraph import workers as workers_mod
from sitegraph.workers import available_cores, can_fork, in_fork, map_blocks

IN_CI = os.environ.get("CI", "").lower() == "true"  # CI runs on Linux: there, nothing here may skip
needs_fork = pytest.mark.skipif(not can_fork() and not IN_CI, reason="no fork start method on this platform")


def _square_with_pid(state: dict[str, Any], block: int) -> tuple[int, int]:
    if block == state["fail_at"]:
        raise ValueError(f"block {block} is bad")
    if block < 2 and state.get("meet") is not None:  # blocks 0 and 1 wait for each other: two workers ran them
        state["meet"].wait(timeout=30)
    return block * block + state["offset"], os.getpid()


def _blocks(n: int, bad: int | None = None) -> Iterator[int]:
    for i in range(n):
        if i == bad:
            raise LookupError(f"no block {i}")
        yield i


def test_one_worker_runs_in_this_process() -> None:
    got = list(map_blocks(_square_with_pid, {"offset": 7, "fail_at": -1}, range(25), 1))
    assert got == [(i * i + 7, os.getpid()) for i in range(25)]


@needs_fork
@pytest.mark.parametrize("workers", [2, 3])
def test_results_in_order_from_several_workers_with_the_state_inherited(workers: int) -> None:
    meet = multiprocessing.get_context("fork").Barrier(2)  # inherited by the workers, like any state
    got = list(map_blocks(_square_with_pid, {"offset": 7, "fail_at": -1, "meet": meet}, range(25), workers))
    assert [r for r, _ in got] == [i * i + 7 for i in range(25)]
    pids = {pid for _, pid in got}
    assert os.getpid() not in pids and 2 <= len(pids) <= workers


@needs_fork
def test_an_error_in_a_block_is_raised_at_that_block() -> None:
    seen = []
    with pytest.raises(ValueError, match="block 9 is bad"):
        for r, _ in map_blocks(_square_with_pid, {"offset": 0, "fail_at": 9}, range(20), 2):
            seen.append(r)
    assert seen == [i * i for i in range(9)]


@needs_fork
@pytest.mark.parametrize("workers", [1, 2])
def test_an_error_getting_a_block_comes_after_the_blocks_before_it(workers: int) -> None:
    seen = []
    with pytest.raises(LookupError, match="no block 6"):
        for r, _ in map_blocks(_square_with_pid, {"offset": 0, "fail_at": -1}, _blocks(10, bad=6), workers):
            seen.append(r)
    assert seen == [i * i for i in range(6)]


@needs_fork
def test_closing_early_stops_the_workers_and_restores_the_collector() -> None:
    gc.unfreeze()  # what an earlier test froze (snapshots freeze their graph): only costs collector time
    assert gc.get_freeze_count() == 0
    it = map_blocks(_square_with_pid, {"offset": 0, "fail_at": -1}, range(1000), 2)
    first = next(it)
    assert first[0] == 0 and gc.get_freeze_count() > 0  # frozen while the workers share memory
    it.close()
    assert gc.get_freeze_count() == 0
    assert workers_mod._WORK is None  # the parent never became a worker


@needs_fork
def test_in_fork_runs_beside_this_process_on_the_state_at_its_start() -> None:
    gc.unfreeze()
    state = {"offset": 5, "fail_at": -1}
    with in_fork(_square_with_pid, state, 3) as result:
        state["offset"] = 1000  # after the fork: the worker does not see it
        assert gc.get_freeze_count() > 0
        value, pid = result()
    assert value == 14 and pid != os.getpid()
    assert gc.get_freeze_count() == 0 and workers_mod._WORK is None


@needs_fork
def test_in_fork_raises_the_workers_error_here() -> None:
    with pytest.raises(ValueError, match="block 2 is bad"), in_fork(_square_with_pid, {"offset": 0, "fail_at": 2}, 2) as result:
        result()


def test_in_fork_without_fork_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(workers_mod, "can_fork", lambda: False)
    with in_fork(_square_with_pid, {"offset": 1, "fail_at": -1}, 4) as result:
        assert result() == (17, os.getpid())


def test_spare_core_wants_an_idle_core_besides_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    idle = workers_mod.idle_cores(0.05)
    assert idle is None or 0 <= idle <= (os.cpu_count() or 1) + 1e-9
    monkeypatch.setattr(workers_mod, "idle_cores", lambda: 1.5)
    monkeypatch.setattr(workers_mod, "SPARE", 0.6)
    assert workers_mod.spare_core() is False  # this process's core and half another
    monkeypatch.setattr(workers_mod, "idle_cores", lambda: 1.7)
    assert workers_mod.spare_core() is can_fork()
    monkeypatch.setattr(workers_mod, "idle_cores", lambda: None)
    assert workers_mod.spare_core() is (can_fork() and available_cores() > 1)
    monkeypatch.setattr(workers_mod, "can_fork", lambda: False)
    monkeypatch.setattr(workers_mod, "idle_cores", lambda: 8.0)
    assert workers_mod.spare_core() is False


def test_available_cores() -> None:
    assert 1 <= available_cores() <= (os.cpu_count() or 1)


_KILLED_PARENT = """
import os, sys, time
from sitegraph.workers import map_blocks

def slow(state, block):
    time.sleep(60)
    return block

for _ in map_blocks(slow, None, range(4), 2):
    pass
"""


@pytest.mark.skipif(not sys.platform.startswith("linux") and not IN_CI, reason="the parent-death signal is Linux's")
def test_workers_die_with_a_killed_parent(tmp_path: Path) -> None:
    """A parent killed outright (no clean-up runs) takes its workers with it, instead of leaving them
    blocked on their task queue, holding a copy of its memory."""
    parent = subprocess.Popen([sys.executable, "-c", _KILLED_PARENT])
    try:
        deadline = time.monotonic() + 30
        workers: list[int] = []
        while len(workers) < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            out = Path(f"/proc/{parent.pid}/task/{parent.pid}/children").read_text().split()
            workers = [int(p) for p in out]
        assert len(workers) == 2, "the workers did not start"
        parent.send_signal(signal.SIGKILL)
        parent.wait(10)
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.1)
        assert not any(_alive(p) for p in workers)
    finally:
        parent.kill()


def _alive(pid: int) -> bool:
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return False
    return "\nState:\tZ" not in status


def _die(state: None, block: int) -> int:
    if block == 3:
        os.kill(os.getpid(), signal.SIGKILL)
    return block


@needs_fork
def test_a_worker_killed_is_a_clear_error() -> None:
    with pytest.raises(RuntimeError, match="a worker process died"):
        list(map_blocks(_die, None, range(8), 2))


def _idle_death(state: None, block: int) -> int:
    if block == 0:  # dies after its first result is sent: the pool breaks between blocks
        import threading

        threading.Timer(0.2, os.kill, (os.getpid(), signal.SIGKILL)).start()
    return block


@needs_fork
def test_a_worker_dying_between_blocks_is_never_a_quiet_end() -> None:
    got: list[int] = []
    with pytest.raises(RuntimeError, match="a worker process died"):
        for r in map_blocks(_idle_death, None, range(50), 2):
            got.append(r)
            time.sleep(0.05)
    assert got == list(range(len(got))) and len(got) < 50
