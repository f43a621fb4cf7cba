"""Work split over worker processes forked from this one: blocks of sites in order, or one piece beside this process.

The batch functions (``recommend_all_json``) score sites a block at a time on one snapshot. One Python
process uses one core; :func:`map_blocks` runs the blocks in worker processes *forked* from the one
holding the snapshot, so each worker starts with the snapshot and its indexes already built and shares
their memory with the parent (copy-on-write) instead of rebuilding or receiving a copy. Only the blocks
(site ids and rows) go to the workers and only the results come back, so results should be cheap to
pickle (text, not models).

Where ``fork`` is not available (Windows, macOS defaults aside), or with one worker, the blocks run in
this process, with the same results.

:func:`in_fork` runs one piece of work in a forked worker while this process goes on with another (the
bulk load's CSV read and importer files), and :func:`spare_core` says whether a second core is idle
for it right now. Workers die with this process, however it ends (Linux).
"""

from __future__ import annotations

import contextlib
import ctypes
import gc
import multiprocessing
import os
import signal
import sys
import time
from collections import deque
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any, TypeVar

B = TypeVar("B")
R = TypeVar("R")

_WORK: tuple[Callable[[Any, Any], Any], Any] | None = None
"""The function and state a forked worker runs each block with (inherited at fork, never pickled)."""


def available_cores() -> int:
    """The cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def can_fork() -> bool:
    return "fork" in multiprocessing.get_all_start_methods()


#: :func:`spare_core` wants at least this much of a core idle besides this process's own.
SPARE = 0.6


def idle_cores(seconds: float = 0.1) -> float | None:
    """How many cores were idle (or waiting for I/O) over the next ``seconds``, from ``/proc/stat``;
    None where there is no such file."""

    def sample() -> tuple[int, int]:
        with open("/proc/stat", encoding="ascii") as f:
            ticks = [int(t) for t in f.readline().split()[1:]]
        return sum(ticks), ticks[3] + ticks[4]

    try:
        total0, idle0 = sample()
        time.sleep(seconds)
        total1, idle1 = sample()
    except (OSError, ValueError, IndexError):
        return None
    if total1 <= total0:
        return None
    return (idle1 - idle0) / (total1 - total0) * (os.cpu_count() or 1)


def spare_core() -> bool:
    """True if a worker forked now would likely get a core of its own: ``fork`` is available and, over
    the next tenth of a second (while this process sleeps), one core (this process's) and
    :data:`SPARE` of another were idle; where that cannot be read, if this process may run on more
    than one core.

    A worker beside this process only pays off on a core nobody else wants: on a machine that is
    already busy, it competes with this process and adds its own overhead (the copies of the pages
    both processes write to, and pickling).
    """
    if not can_fork():
        return False
    idle = idle_cores()
    return idle >= 1 + SPARE if idle is not None else available_cores() > 1


def _die_with(parent: int) -> None:
    """Have the kernel kill this worker when the process that forked it dies, however it dies (Linux):
    a worker blocked on its task queue would otherwise outlive a killed parent, holding its memory."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
    except (OSError, AttributeError):  # not Linux: the queue's end closes when the parent dies
        return
    if os.getppid() != parent:  # the parent died before prctl took effect
        os._exit(1)


_PR_SET_PDEATHSIG = 1


def _start_worker(fn: Callable[[Any, Any], Any], state: Any, parent: int) -> None:
    global _WORK
    _die_with(parent)
    _WORK = (fn, state)
    # a thread of the parent (a progress bar's) may have held the stream's lock at fork: fresh streams
    for name, fd in (("stdout", 1), ("stderr", 2)):
        with contextlib.suppress(OSError):
            setattr(sys, name, os.fdopen(os.dup(fd), "w", buffering=1, encoding="utf-8", errors="replace"))


def _died(e: BrokenProcessPool) -> RuntimeError:
    return RuntimeError(f"a worker process died (killed, or out of memory?): {e}")


def _run_block(block: Any) -> Any:
    assert _WORK is not None, "not a worker started by map_blocks"
    fn, state = _WORK
    return fn(state, block)


def map_blocks(fn: Callable[[Any, B], R], state: Any, blocks: Iterable[B], workers: int = 1) -> Iterator[R]:
    """``fn(state, block)`` for each block, yielded in the blocks' order.

    With ``workers`` > 1 (and ``fork`` available), the blocks run in that many worker processes forked
    from this one: ``fn`` and ``state`` are inherited, not pickled, so ``state`` may be a whole snapshot
    with its indexes; each block and each result is pickled. At most ``2 × workers`` blocks are in
    flight, so results never pile up faster than they are consumed. An error raised while getting the
    next block (say, an unknown site) is raised after the results of the blocks before it; an error in
    ``fn`` is raised in this process, at its block. Closing the iterator early (or Ctrl-C) stops the
    workers; if this process is killed, the kernel kills them too (Linux). Iterate in the thread that
    started iterating (the workers die with the thread that forked them).

    The objects alive when the workers start are moved to the collector's permanent generation
    (:func:`gc.freeze`) until the workers stop: a collection in any process would otherwise write to
    every object's header and turn the shared memory into copies.
    """
    if workers <= 1 or not can_fork():
        for block in blocks:
            yield fn(state, block)
        return
    with _forked_pool(fn, state, workers) as pool:
        pending: deque[Future[R]] = deque()
        source = iter(blocks)
        error: BaseException | None = None
        while True:
            while error is None and len(pending) < 2 * workers:
                try:
                    block = next(source)
                except StopIteration:
                    break
                except Exception as e:  # raised once the blocks before it are yielded
                    error = e
                    break
                try:
                    pending.append(pool.submit(_run_block, block))
                except BrokenProcessPool as e:
                    if not pending:  # nothing left to say why: never end quietly with blocks left out
                        raise _died(e) from e
                    break  # the pending result says why
            if not pending:
                break
            try:
                result = pending.popleft().result()
            except BrokenProcessPool as e:
                raise _died(e) from e
            yield result
        if error is not None:
            raise error


@contextlib.contextmanager
def in_fork(fn: Callable[[Any, B], R], state: Any, block: B) -> Iterator[Callable[[], R]]:
    """``fn(state, block)`` in one worker process forked from this one, while this process goes on.

    Yields a function that waits for the result and returns it (an error in ``fn`` is raised there,
    in this process). As with :func:`map_blocks`, ``fn`` and ``state`` are inherited, not pickled;
    ``block`` and the result are pickled. Leaving the ``with`` block waits for the worker, also
    when this process failed meanwhile. Without ``fork``, ``fn`` runs in this process when its result
    is asked for.

    The worker starts with a copy of this process's state *at the start of the ``with``*: what this
    process changes afterwards (writes to a file object it has open, say) the worker does not see, and
    the worker must leave alone what this process goes on using.
    """
    if not can_fork():
        yield lambda: fn(state, block)
        return
    with _forked_pool(fn, state, 1) as pool:
        future = pool.submit(_run_block, block)

        def result() -> R:
            try:
                return future.result()
            except BrokenProcessPool as e:
                raise _died(e) from e

        yield result


@contextlib.contextmanager
def _forked_pool(fn: Callable[[Any, Any], Any], state: Any, workers: int) -> Iterator[ProcessPoolExecutor]:
    """A pool of ``workers`` processes forked from this one that run ``fn(state, block)`` (see :func:`map_blocks`)."""
    was_frozen = gc.get_freeze_count() > 0
    gc.freeze()
    pool = ProcessPoolExecutor(
        max_workers=workers,
        mp_context=multiprocessing.get_context("fork"),
        initializer=_start_worker,
        initargs=(fn, state, os.getpid()),
    )
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        if not was_frozen:
            gc.unfreeze()
