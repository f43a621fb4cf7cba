"""map_blocks: blocks run in forked workers, results in order, errors where they belong."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator

import pytest

from sitegraph.queries import batch
from sitegraph.queries.batch import available_cores, can_fork, in_fork, map_blocks

needs_fork = pytest.mark.skipif(not can_fork(), reason="no fork start method on this platform")


def _square_with_pid(state: dict[str, int], block: int) -> tuple[int, int]:
    if block == state["fail_at"]:
        raise ValueError(f"block {block} is bad")
    return block * block + state["offset"], os.getpid()


def _blocks(n: int, bad: int | None = None) -> Iterator[int]:
    for i in range(n):
        if i == bad:
            raise LookupError(f"no block {i}")
        yield i


@pytest.mark.parametrize("workers", [1, 2, 3])
def test_results_in_order_with_the_state_inherited(workers: int) -> None:
    state = {"offset": 7, "fail_at": -1}
    got = list(map_blocks(_square_with_pid, state, range(25), workers))
    assert [r for r, _ in got] == [i * i + 7 for i in range(25)]
    pids = {pid for _, pid in got}
    if workers == 1 or not can_fork():
        assert pids == {os.getpid()}
    else:  # computed in other processes, more than one of them
        assert os.getpid() not in pids and len(pids) >= 2


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
    assert batch._WORK is None  # the parent never became a worker


@needs_fork
def test_in_fork_runs_beside_this_process_on_the_state_at_its_start() -> None:
    gc.unfreeze()
    state = {"offset": 5, "fail_at": -1}
    with in_fork(_square_with_pid, state, 3) as result:
        state["offset"] = 1000  # after the fork: the worker does not see it
        assert gc.get_freeze_count() > 0
        value, pid = result()
    assert value == 14 and pid != os.getpid()
    assert gc.get_freeze_count() == 0 and batch._WORK is None


@needs_fork
def test_in_fork_raises_the_workers_error_here() -> None:
    with pytest.raises(ValueError, match="block 2 is bad"), in_fork(_square_with_pid, {"offset": 0, "fail_at": 2}, 2) as result:
        result()


def test_in_fork_without_fork_runs_here(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(batch, "can_fork", lambda: False)
    with in_fork(_square_with_pid, {"offset": 1, "fail_at": -1}, 4) as result:
        assert result() == (17, os.getpid())


def test_spare_core_wants_an_idle_core_besides_this_one(monkeypatch: pytest.MonkeyPatch) -> None:
    idle = batch.idle_cores(0.05)
    assert idle is None or 0 <= idle <= (os.cpu_count() or 1) + 1e-9
    monkeypatch.setattr(batch, "idle_cores", lambda: 1.5)
    monkeypatch.setattr(batch, "SPARE", 0.6)
    assert batch.spare_core() is False  # this process's core and half another
    monkeypatch.setattr(batch, "idle_cores", lambda: 1.7)
    assert batch.spare_core() is can_fork()
    monkeypatch.setattr(batch, "idle_cores", lambda: None)
    assert batch.spare_core() is (can_fork() and available_cores() > 1)
    monkeypatch.setattr(batch, "can_fork", lambda: False)
    monkeypatch.setattr(batch, "idle_cores", lambda: 8.0)
    assert batch.spare_core() is False


def test_available_cores() -> None:
    assert 1 <= available_cores() <= (os.cpu_count() or 1)
