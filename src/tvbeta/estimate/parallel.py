"""Run one task per key on an executor: submitted together, gathered in the keys' order.

The per-fund estimators map a function over funds with `run_tasks` (`compare_methods` over its
targets); `tvbeta.estimate.grid.as_executor` reads what the caller passed (an Executor, or a
Dask distributed Client through its ``get_executor()``).

A task that runs in another process (a process pool, Dask workers) records the warnings it
raises, and the caller raises them again in its own process (through its own filters), so a
warning such as a convergence check is not lost in a worker's log. A task in the caller's
process (threads) warns as any code does.
"""

from __future__ import annotations

import dataclasses
import multiprocessing
import os
import warnings
from collections.abc import Callable, Hashable, Iterator, Mapping
from concurrent.futures import Executor, Future, as_completed
from contextlib import contextmanager
from typing import Any

from tvbeta.nuts import SamplerSettings

__all__ = ["naming", "numba_threads", "run_tasks", "task_nuts", "within_task_budget"]

_Caught = list[tuple[str, type[Warning], str, int]]
"""Warnings a task raised in another process: (message, category, filename, line)."""


def run_tasks[K: Hashable, R](
    fn: Callable[..., R],
    jobs: Mapping[K, tuple[Any, ...]],
    executor: Executor | None,
    *,
    done: Callable[[K], None] | None = None,
    label: str = "key",
    collect: Callable[[K, R], None] | None = None,
) -> dict[K, R]:
    """Return ``{key: fn(*args)}`` for every ``key: args`` of ``jobs``, in the order of jobs.

    Parameters
    ----------
    fn : callable
        The task; with an executor that runs it in other processes, ``fn``, its arguments and
        its result must pickle (module-level functions, not lambdas).
    jobs : mapping
        Key -> the positional arguments of its task.
    executor : Executor or None
        None: the tasks run one after another, here. Else every task is submitted at once and
        the caller waits for them (read the caller's argument with `as_executor`).
    done : callable, optional
        ``done(key)``, called in the caller's thread when each task has finished (in the
        order they finish), e.g. to show progress.
    label : str, default "key"
        What a key is ("target", "fund"), for the note on a failed task's exception.
    collect : callable, optional
        ``collect(key, result)``, called in the caller's thread with each result as its task
        finishes (before ``done``), which is then not kept: e.g. to write results to disk as
        they come, so they never all sit in memory.

    Returns
    -------
    dict
        Key -> result, in the order of ``jobs`` whatever the order the tasks finished in;
        empty with ``collect``.

    Raises
    ------
    Exception
        The first failed task's own exception (its type kept, so callers catch it as in a
        serial run), with a note naming its key; the tasks not yet started are cancelled.
    KeyboardInterrupt
        Ctrl-C while waiting: the tasks not yet started are cancelled (running ones finish in
        their workers and their results are dropped).
    """
    results: dict[K, R] = {}

    def finished(key: K, result: R) -> None:
        if collect is None:
            results[key] = result
        else:
            collect(key, result)
        if done is not None:
            done(key)

    if executor is None:
        for key, args in jobs.items():
            with naming(label, key):
                result = fn(*args)
            finished(key, result)
        return results
    caller, registry = os.getpid(), {}  # one registry: "default" filters warn once per place
    futures: dict[Future, K] = {}
    try:
        for key, args in jobs.items():
            futures[executor.submit(_call, caller, fn, args)] = key
        for future in as_completed(futures):
            key = futures[future]
            with naming(label, key):
                result, caught = future.result()
            for message, category, filename, lineno in caught:
                warnings.warn_explicit(message, category, filename, lineno, registry=registry)
            finished(key, result)
    finally:
        for future in futures:  # no-op on finished ones: after a failure or Ctrl-C, the rest
            future.cancel()
    return {key: results[key] for key in jobs if key in results}


@contextmanager
def naming(label: str, key: Hashable) -> Iterator[None]:
    """Add a note "(raised by the task of <label> <key!r>)" to an exception raised inside."""
    try:
        yield
    except Exception as err:
        err.add_note(f"(raised by the task of {label} {key!r})")
        raise


def _call[R](caller: int, fn: Callable[..., R], args: tuple[Any, ...]) -> tuple[R, _Caught]:
    """Run ``fn(*args)``; in another process than ``caller``'s, return its warnings too."""
    if os.getpid() == caller:
        return fn(*args), []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the caller's filters decide when raised again there
        result = fn(*args)
    return result, [(str(w.message), w.category, w.filename, w.lineno) for w in caught]


def task_nuts(nuts: SamplerSettings) -> SamplerSettings:
    """Return the NUTS settings of one task of an executor: cores 1 unless ``nuts`` sets cores.

    With an executor the tasks are the parallelism: each fund's chains run one after another,
    unless the caller gave cores (a worker with cores to spare). The draws depend on the seed
    and the number of chains, not on cores (nutpie and PyMC), so the numbers stay the serial
    ones.
    """
    return nuts if nuts.cores is not None else dataclasses.replace(nuts, cores=1)


@contextmanager
def within_task_budget(nuts: SamplerSettings) -> Iterator[SamplerSettings]:
    """Run a task's body within its core budget; yields the NUTS settings it samples with.

    numba's parallel kernels (the batched log-likelihoods) get the task's cores; numba's
    thread count is per calling thread, and is restored for the worker's next task. PyMC
    cannot start chain processes from a daemonic worker (a process pool's, Dask's): there its
    chains run one after another (cores 1).
    """
    if multiprocessing.current_process().daemon and nuts.resolved().sampler == "pymc":
        nuts = dataclasses.replace(nuts, cores=1)
    with numba_threads(nuts.resolved().cores):
        yield nuts


@contextmanager
def numba_threads(cores: int | None) -> Iterator[None]:
    """Run the body with numba's parallel kernels on at most ``cores`` threads (None: as is).

    numba's thread count is per calling thread, and is restored after the body, for the
    worker's next task. One thread per task of an executor keeps the tasks from competing for
    the cores that the other tasks use (a parallel kernel's threads wait for work spinning).
    """
    import numba

    threads = numba.get_num_threads()
    if cores is not None:
        numba.set_num_threads(max(1, min(threads, cores)))
    try:
        yield
    finally:
        numba.set_num_threads(threads)
