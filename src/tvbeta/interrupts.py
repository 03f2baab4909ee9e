"""Ctrl-C (SIGINT) that is never lost and never lands half-way through a commit.

Two context managers, both active only in the main thread (the only thread Python delivers
signal handlers to) and only when SIGINT has a Python handler (not when the process ignores it,
as a shell does for background jobs):

- `noting_interrupts`: records every SIGINT, then lets the previous handler raise
  KeyboardInterrupt. Some libraries swallow it and return what they have (PyMC's and nutpie's
  samplers return the draws made before Ctrl-C; a weakref callback prints and drops it), so
  the caller checks the note afterwards (`InterruptNote.check`). One place must not raise at
  all: a Python callback LLVM calls through ctypes while numba compiles (llvmlite's object
  cache hooks), where LLVM carries on with a half-done callback (seen: exit -11 on a Ctrl-C
  during a cold compile). Nor may it raise inside ``multiprocessing``'s ``Process.start`` after
  the fork and before the process is recorded: nothing would ever stop that child (PyMC's chain
  processes: a forked chain holds both ends of its pipe and waits for orders for ever). A
  SIGINT that lands in either is raised again once the main thread has left them.
- `deferring_interrupts`: holds SIGINT and SIGTERM back for the few renames that must happen
  together (`tvbeta.outputs.run_folder` commits a run folder), then delivers them.

`terminating_as_interrupts` makes a SIGTERM (``kill``, a job scheduler's stop) take the
Ctrl-C path of a command, so it too leaves no staging folder and no chain process behind.
"""

from __future__ import annotations

import os
import signal
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from types import FrameType
from typing import Any

__all__ = ["InterruptNote", "Termination", "deferring_interrupts", "noting_interrupts",
           "terminating_as_interrupts"]


@dataclass
class InterruptNote:
    """What `noting_interrupts` yields: whether a SIGINT arrived while it was active."""

    interrupted: bool = False
    #: A SIGINT that landed where it must not raise and has not been raised yet.
    deferred: bool = field(default=False, repr=False)

    def check(self) -> None:
        """Raise KeyboardInterrupt if a SIGINT arrived, even if something swallowed it."""
        if self.interrupted:
            self.deferred = False
            raise KeyboardInterrupt


def _in_main_thread() -> bool:
    return threading.current_thread() is threading.main_thread()


#: How often a deferred SIGINT looks whether the main thread has left the place (seconds).
_RETRY_S = 0.02


#: ``BaseProcess.start``'s file, as the end of a code object's path.
_PROCESS_FILE = str(Path("multiprocessing") / "process.py")


def _must_not_raise(frame: FrameType | None, parent: bool) -> bool:
    """Tell whether a KeyboardInterrupt here would do harm (module doc).

    llvmlite's code on the stack (numba compiling through LLVM), or, in the process that
    started the block (``parent``), ``BaseProcess.start`` of ``multiprocessing`` (a child may
    be forked and not yet recorded). A forked child's whole life runs under its parent's
    ``start`` frame: there it is no reason to wait.
    """
    while frame is not None:
        code = frame.f_code
        if "llvmlite" in code.co_filename or (
            parent and code.co_name == "start" and code.co_filename.endswith(_PROCESS_FILE)
        ):
            return True
        frame = frame.f_back
    return False


@contextmanager
def noting_interrupts() -> Iterator[InterruptNote]:
    """Record every SIGINT in the yielded note; the previous handler still runs (nests).

    By default the previous handler raises KeyboardInterrupt; an inner note chains to the outer.
    """
    note = InterruptNote()
    previous = signal.getsignal(signal.SIGINT) if _in_main_thread() else None
    if not callable(previous):  # another thread, or SIGINT ignored / left to the OS
        yield note
        return

    main = threading.main_thread().ident
    owner = os.getpid()
    lock = threading.Lock()  # the retry's check and its SIGINT against the handler's restore
    over = threading.Event()  # the block has ended: its end delivers a deferred SIGINT

    def retry() -> None:
        parent = os.getpid() == owner
        while note.deferred:
            time.sleep(_RETRY_S)
            with lock:
                if over.is_set():
                    return
                if note.deferred and not _must_not_raise(sys._current_frames().get(main), parent):
                    signal.raise_signal(signal.SIGINT)  # handled in the main thread

    def handler(signum: int, frame: FrameType | None) -> Any:
        note.interrupted = True
        if _must_not_raise(frame, parent=os.getpid() == owner):
            if not note.deferred:
                note.deferred = True
                threading.Thread(target=retry, name="tvbeta-sigint-retry", daemon=True).start()
            return None
        note.deferred = False
        return previous(signum, frame)

    signal.signal(signal.SIGINT, handler)
    try:
        yield note
    finally:
        with lock:
            over.set()
            try:
                signal.signal(signal.SIGINT, previous)
            except KeyboardInterrupt:  # a retried SIGINT ran (our handler) before the restore
                signal.signal(signal.SIGINT, previous)
                raise
        if note.deferred:  # left the place and the block before the retry came round
            note.deferred = False
            previous(signal.SIGINT, None)


@dataclass
class _Held:
    signals: list[int] = field(default_factory=list)

    def __call__(self, signum: int, frame: FrameType | None) -> None:
        self.signals.append(signum)


@contextmanager
def deferring_interrupts() -> Iterator[None]:
    """Hold SIGINT and SIGTERM back while the block runs; deliver them (once each) after it.

    A handler rather than ``pthread_sigmask``: the mask is per thread, and a signal the kernel
    delivers to another thread (BLAS, numba) would still raise in the main thread mid-block.
    """
    if not _in_main_thread():  # signals run their Python handlers in the main thread only
        yield
        return
    held = _Held()
    # a handler installed outside Python (getsignal gives None) cannot be restored: leave it
    wanted = [s for s in (signal.SIGINT, signal.SIGTERM) if signal.getsignal(s) is not None]
    previous = {s: signal.signal(s, held) for s in wanted}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        for s in dict.fromkeys(held.signals):
            if previous[s] != signal.SIG_IGN:
                signal.raise_signal(s)


@dataclass
class Termination:
    """What `terminating_as_interrupts` yields: whether a SIGTERM arrived while it was active."""

    received: bool = False


@contextmanager
def terminating_as_interrupts() -> Iterator[Termination]:
    """Deliver a SIGTERM as a SIGINT while the block runs (main thread, default SIGTERM only).

    The SIGINT then takes every path a Ctrl-C takes (`noting_interrupts`' deferrals, the
    samplers' clean-up, `tvbeta.outputs.run_folder`'s removal of a half-written run); where
    SIGINT is ignored (a background job) the KeyboardInterrupt is raised directly, as Python's
    own SIGINT handler would. Without this a SIGTERM ends the process at once, leaving its
    staging folder and, with PyMC's sampler, its chain processes.
    """
    note = Termination()
    if not _in_main_thread() or signal.getsignal(signal.SIGTERM) != signal.SIG_DFL:
        yield note
        return
    owner = os.getpid()

    def handler(signum: int, frame: FrameType | None) -> None:
        if os.getpid() != owner:  # a forked child (PyMC's chains): terminate() ends it at once
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            signal.raise_signal(signal.SIGTERM)
            return
        note.received = True
        if callable(signal.getsignal(signal.SIGINT)):
            signal.raise_signal(signal.SIGINT)
        else:
            raise KeyboardInterrupt

    previous = signal.signal(signal.SIGTERM, handler)
    try:
        yield note
    finally:
        signal.signal(signal.SIGTERM, previous)
