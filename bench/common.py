"""Timing helpers shared by the benchmarks: medians of interleaved repeats, tables, JSON.

Absolute times on the shared machines move 2-5x with load, so benchmarks report ratios of
functions timed in the same run. `compare` interleaves the repeats of the functions it is
given (round-robin), so a burst of load hits all of them alike.
"""

from __future__ import annotations

import json
import math
import os
import platform
import statistics
import sys
import time
import timeit
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass
from importlib import metadata
from typing import Any

from tvbeta.outputs import write_text


@dataclass(frozen=True)
class Timing:
    """Seconds per call: median over repeats of `loops` calls each, and every repeat."""

    median: float
    loops: int
    repeats: tuple[float, ...]

    @property
    def best(self) -> float:
        return min(self.repeats)


def calibrate(fn: Callable[[], object], target: float) -> int:
    """Loops per repeat so that one repeat takes about `target` seconds (at least 1)."""
    timer = timeit.Timer(fn)
    loops = 1
    while True:
        elapsed = timer.timeit(loops)
        if elapsed >= target / 10 or loops >= 1 << 20:
            return max(1, math.ceil(loops * target / max(elapsed, 1e-9)))
        loops *= 10


def compare(
    fns: Mapping[str, Callable[[], object]], repeat: int = 7, target: float = 0.1
) -> dict[str, Timing]:
    """Time each function timeit-style (GC off, `loops` calls per repeat), repeats interleaved."""
    timers = {name: timeit.Timer(fn) for name, fn in fns.items()}
    loops = {name: calibrate(fn, target) for name, fn in fns.items()}
    samples: dict[str, list[float]] = {name: [] for name in fns}
    for _ in range(repeat):
        for name, timer in timers.items():
            samples[name].append(timer.timeit(loops[name]) / loops[name])
    return {
        name: Timing(statistics.median(s), loops[name], tuple(s)) for name, s in samples.items()
    }


def first_call(fn: Callable[[], object]) -> float:
    """Seconds taken by one call (use on a numba function's first call: compile or cache load)."""
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def fmt_time(seconds: float) -> str:
    """'12.3 us', '4.56 ms', '1.23 s'."""
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("us", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds / 1e-9:.3g} ns"


def fmt_ratio(x: float) -> str:
    return f"{x:.3g}x"


def verdict(value: float, goal: float, at_least: bool) -> str:
    """'PASS' when value >= goal (at_least) or value <= goal (otherwise), else 'FAIL'."""
    return "PASS" if (value >= goal if at_least else value <= goal) else "FAIL"


def print_table(
    title: str, header: Sequence[str], rows: Sequence[Sequence[str]], note: str = ""
) -> None:
    """A plain-text table: first column left-aligned, the others right-aligned; note below."""
    cols = list(zip(header, *rows, strict=False))
    widths = [max(len(str(c)) for c in col) for col in cols]

    def line(cells: Sequence[str]) -> str:
        parts = [
            str(c).ljust(w) if i == 0 else str(c).rjust(w)
            for i, (c, w) in enumerate(zip(cells, widths, strict=False))
        ]
        return "  " + "  ".join(parts).rstrip()

    print(title)
    print(line(header))
    print("  " + "  ".join("-" * w for w in widths))
    for row in rows:
        print(line(row))
    if note:
        print("  " + note.replace("\n", "\n  "))
    print()


def cpu_model() -> str:
    """The CPU's model name (Linux's /proc/cpuinfo; else what `platform` knows).

    Ratios depend on it, not only absolute times: the mean-reverting terms' kernels cost 1.8x
    the random walk's on one 2-vCPU machine and 2.4-2.8x on another, an AMD EPYC
    (docs/benchmarks.md).
    """
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def environment() -> dict[str, Any]:
    """Versions, CPU model and count, and the thread settings that matter for timings."""
    versions = {}
    for dist in ("numpy", "numba", "statsmodels", "scipy", "pandas", "tvbeta"):
        try:
            versions[dist] = metadata.version(dist)
        except metadata.PackageNotFoundError:
            versions[dist] = None
    threads = {v: os.environ.get(v) for v in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS")}
    return {
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "cpu": cpu_model(),
        "cpu_count": os.cpu_count(),
        "load_avg_1min": os.getloadavg()[0],
        "versions": versions,
        "env": threads,
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, numpy scalars and tuples -> plain JSON types."""
    if isinstance(obj, Timing):
        return {**asdict(obj), "repeats": list(obj.repeats)}
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return [to_jsonable(v) for v in obj]
    if hasattr(obj, "item"):  # numpy scalar
        return obj.item()
    return obj


def write_json(path: str | os.PathLike[str], figures: Mapping[str, Any]) -> None:
    """Write the figures as indented JSON (atomically: an interrupted benchmark keeps the
    previous file)."""
    write_text(path, json.dumps(to_jsonable(figures), indent=2) + "\n")
    print(f"wrote {path}")
