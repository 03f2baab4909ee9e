"""`run_tasks`: one task per key on an executor; Ctrl-C, failures and warnings of the tasks.

Real executors only (a thread pool, a process pool started with "spawn"); the tasks are
library functions, so that a worker process can import them.
"""

from __future__ import annotations

import math
import multiprocessing
import os
import signal
import threading
import warnings
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor

import pytest

from tvbeta.estimate.parallel import run_tasks


@pytest.fixture(scope="module")
def processes():
    with ProcessPoolExecutor(max_workers=1,
                             mp_context=multiprocessing.get_context("spawn")) as pool:  # fmt: skip
        yield pool


def test_results_come_in_the_order_of_the_jobs_whatever_order_they_finish_in():
    release = threading.Event()
    jobs = {"slow": (release.wait, 30), "fast": (math.sqrt, 4.0)}
    finished = []

    def done(key: str) -> None:  # slow is released only once fast is reported done
        finished.append(key)
        if key == "fast":
            release.set()

    with ThreadPoolExecutor(max_workers=2) as pool:
        out = run_tasks(lambda fn, *args: fn(*args), jobs, pool, done=done)
    assert list(out) == ["slow", "fast"] and out["slow"] is True
    assert finished == ["fast", "slow"]


def test_ctrl_c_while_waiting_cancels_the_tasks_not_yet_started():
    """A real SIGINT to this process while it waits: the job queued behind a blocked one never
    runs (its future is cancelled), and KeyboardInterrupt reaches the caller."""
    if threading.current_thread() is not threading.main_thread():
        pytest.skip("SIGINT is delivered to the main thread only")
    blocked, ran = threading.Event(), []
    # at most 30 s: should the SIGINT be lost, the test fails instead of hanging the suite
    jobs = {"blocked": (blocked.wait, 30), "queued": (ran.append, "queued")}
    timer = threading.Timer(0.5, os.kill, (os.getpid(), signal.SIGINT))
    # Python's own handler, as in a terminal: a process started in the background by a
    # non-interactive shell (a CI job) inherits SIGINT ignored, and the suite hung here
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        with ThreadPoolExecutor(max_workers=1) as pool:
            timer.start()
            try:
                with pytest.raises(KeyboardInterrupt):
                    run_tasks(lambda fn, *args: fn(*args), jobs, pool)
            finally:
                timer.cancel()
                blocked.set()
    finally:
        signal.signal(signal.SIGINT, previous)
    assert ran == []


def test_a_failed_task_in_another_process_raises_its_own_error_naming_its_key(processes):
    with pytest.raises(ValueError, match="math domain error") as caught:
        run_tasks(math.sqrt, {"four": (4.0,), "minus one": (-1.0,)}, processes, label="fund")
    assert caught.value.__notes__ == ["(raised by the task of fund 'minus one')"]


def test_warnings_of_a_task_in_another_process_are_raised_in_the_caller(processes):
    with pytest.warns(RuntimeWarning, match="raised in the worker") as caught:
        out = run_tasks(warnings.warn, {"a": ("raised in the worker", RuntimeWarning)},
                        processes)  # fmt: skip
    assert out == {"a": None} and len(caught) == 1


def test_without_an_executor_the_tasks_run_here_in_order():
    seen = []
    out = run_tasks(seen.append, {"x": (1,), "y": (2,)}, None, done=seen.append)
    assert seen == [1, "x", 2, "y"] and out == {"x": None, "y": None}
