"""Kernel benchmark: tvbeta's Kalman log-likelihood, gradient and batch vs statsmodels.

`python -m bench kernels [--json out.json] [--repeat 7] [--sm-calls 1000] [--cold]`

Case: the seed's weekly FPE ~ PFF + ICVT, 2016-2022 (n = 365, k = 2) when tvbeta.data can load
it, else simulated data of that shape; Q = 1e-4 I, R = 1e-4, a0 = 0, P0 = 100 I, T = I.

0. first call of each numba kernel (compile or cache load), before any timing;
1. one log-likelihood: `kalman_loglik` and the raw `loglik_kernel` vs statsmodels
   `TVPRegression.loglike` (values must agree to rel 1e-9); goal >= 20x;
2. gradient: `loglik_vjp` (and its raw kernel) time / one log-likelihood; goal <= 4x;
   statsmodels' complex-step `score` for context;
3. 1,000 (Q, R) sets: `loglik_batch` vs a Python loop of `kalman_loglik` vs statsmodels.

Times are medians of interleaved repeats (see bench.common); the goals are judged on ratios
from the same run. Always exits 0 unless the implementations disagree.
"""

from __future__ import annotations

import argparse
import atexit
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from bench.common import (
    Timing,
    compare,
    environment,
    first_call,
    fmt_ratio,
    fmt_time,
    print_table,
    verdict,
    write_json,
)

GOAL_SPEEDUP = 20.0  # statsmodels loglike time / tvbeta loglik time, at least
GOAL_GRADIENT = 4.0  # gradient time / loglik time, at most
N_SETS = 1000
SEED_COLUMNS = ("Preferred Income (FPE)", "Preferred Stock (PFF)", "Convertibles (ICVT)")
Q_VAR, R_VAR, P0_SCALE = 1e-4, 1e-4, 100.0
RTOL = 1e-9


@dataclass(frozen=True)
class Case:
    """The model in tvbeta's shapes (contiguous, writable float64) and where the data came from."""

    y: np.ndarray
    Z: np.ndarray
    T: np.ndarray
    Q: np.ndarray
    R: np.ndarray
    a0: np.ndarray
    P0: np.ndarray
    source: str

    @property
    def arrays(self) -> tuple[np.ndarray, ...]:
        return (self.y, self.Z, self.T, self.Q, self.R, self.a0, self.P0)

    @property
    def params(self) -> np.ndarray:
        """statsmodels TVPRegression(q="diag") parameters: diag(Q), then R."""
        return np.r_[np.diagonal(self.Q[0]), self.R[0]]


def simulated_yZ(n: int = 365, k: int = 2, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Weekly-return-like data: factor sd 0.015-0.02, random-walk betas, noise sd 0.01."""
    rng = np.random.default_rng(seed)
    Z = rng.normal(0.0, np.linspace(0.015, 0.02, k), size=(n, k))
    beta = np.linspace(0.8, 0.3, k) + np.cumsum(rng.normal(0.0, 0.01, (n, k)), axis=0)
    y = np.einsum("tk,tk->t", Z, beta) + rng.normal(0.0, 0.01, n)
    return y, Z


def load_yZ() -> tuple[np.ndarray, np.ndarray, str]:
    """The seed's weekly data via tvbeta.data when available, else simulated (says which)."""
    try:
        import tvbeta.data as data
    except ImportError as exc:
        reason = f"tvbeta.data is not importable ({exc})"
    else:
        load = getattr(data, "load_seed_weekly", None)
        where = getattr(data, "shared_data_dir", None)
        folder = where() if callable(where) else None
        if load is None or where is None:
            reason = "tvbeta.data has no load_seed_weekly / shared_data_dir yet"
        elif folder is None:
            reason = "tvbeta.data.shared_data_dir() is None"
        else:
            try:
                df = load()
                y = df[SEED_COLUMNS[0]].to_numpy(np.float64, copy=True)
                Z = np.ascontiguousarray(df[list(SEED_COLUMNS[1:])].to_numpy(np.float64))
                span = f"{str(df.index[0])[:10]}..{str(df.index[-1])[:10]}"
                return y, Z, f"seed data, weekly FPE ~ PFF + ICVT {span} ({folder})"
            except Exception as exc:  # fall back, but say why
                reason = f"load_seed_weekly() failed: {exc!r}"
    y, Z = simulated_yZ()
    return y, Z, f"SIMULATED data (seed 0, n=365, k=2) because {reason}"


def seed_case() -> Case:
    """The benchmark model: seed (or simulated) y, Z with the seed's default Q, R, a0, P0, T."""
    y, Z, source = load_yZ()
    k = Z.shape[1]
    return Case(
        y=y,
        Z=Z,
        T=np.eye(k)[None].copy(),
        Q=(Q_VAR * np.eye(k))[None].copy(),
        R=np.array([R_VAR]),
        a0=np.zeros(k),
        P0=P0_SCALE * np.eye(k),
        source=source,
    )


def parameter_sets(k: int, n_sets: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """n_sets diagonal Q (B, 1, k, k) and R (B, 1), variances log-uniform in [1e-5, 1e-3]."""
    rng = np.random.default_rng(seed)
    Qb = np.zeros((n_sets, 1, k, k))
    Qb[:, 0, np.arange(k), np.arange(k)] = 10.0 ** rng.uniform(-5, -3, (n_sets, k))
    Rb = 10.0 ** rng.uniform(-5, -3, (n_sets, 1))
    return Qb, Rb


def _cache_counts(dispatcher: Any) -> tuple[int, int]:
    stats = getattr(dispatcher, "stats", None)
    if stats is None:
        return 0, 0
    return sum(stats.cache_hits.values()), sum(stats.cache_misses.values())


def first_calls(calls: dict[str, tuple[Any, Callable[[], object]]]) -> dict[str, dict[str, Any]]:
    """Time the first call of each (dispatcher, call) and say whether it compiled or loaded."""
    out = {}
    for name, (dispatcher, call) in calls.items():
        hits0, misses0 = _cache_counts(dispatcher)
        seconds = first_call(call)
        hits1, misses1 = _cache_counts(dispatcher)
        how = (
            "compiled (cache miss)"
            if misses1 > misses0
            else "loaded from cache"
            if hits1 > hits0
            else "already in memory"
        )
        out[name] = {"seconds": seconds, "how": how}
    return out


def _check_close(what: str, value: float, reference: float, rtol: float = RTOL) -> float:
    rel = abs(value - reference) / max(abs(reference), 1e-300)
    if not rel <= rtol:
        raise AssertionError(f"{what}: {value!r} vs {reference!r} (rel {rel:.2e} > {rtol:.0e})")
    return rel


def main(argv: list[str] | None = None) -> int:
    """Run the kernel benchmark, print the tables, optionally write --json."""
    parser = argparse.ArgumentParser(
        prog="python -m bench kernels", description=(__doc__ or "").split("\n")[0]
    )
    parser.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=7, help="repeats per timing (median)")
    parser.add_argument(
        "--sm-calls",
        type=int,
        default=N_SETS,
        help=f"statsmodels calls in section 3 (< {N_SETS}: extrapolated to {N_SETS})",
    )
    parser.add_argument(
        "--cold", action="store_true", help="compile into a fresh NUMBA_CACHE_DIR (cold figure)"
    )
    args = parser.parse_args(argv)
    cold_note = ""
    if args.cold:
        if "numba" in sys.modules:
            cold_note = " (--cold ignored: numba was already imported)"
        else:
            cold_dir = tempfile.mkdtemp(prefix="tvbeta-numba-cold-")
            atexit.register(shutil.rmtree, cold_dir, ignore_errors=True)
            os.environ["NUMBA_CACHE_DIR"] = cold_dir
            cold_note = f" (--cold: NUMBA_CACHE_DIR={os.environ['NUMBA_CACHE_DIR']})"

    wall = time.perf_counter()
    case = seed_case()
    t0 = time.perf_counter()
    already = "tvbeta.kalman" in sys.modules
    import numba

    from tvbeta.kalman import kalman_loglik, loglik_batch, loglik_vjp
    from tvbeta.kalman.filter import loglik_batch_kernel, loglik_kernel, sweep_constant
    from tvbeta.kalman.gradient import loglik_vjp_kernel

    import_s = time.perf_counter() - t0
    from tvbeta.estimate.statsmodels_twin import TVPRegression

    env = environment()
    n, k = case.Z.shape
    a = case.arrays
    y, Z, T, Q, R, a0, P0 = a
    print(f"tvbeta kernel benchmark: {case.source}")
    print(
        f"  n={n}, k={k}; Q={Q_VAR:g} I, R={R_VAR:g}, a0=0, P0={P0_SCALE:g} I, T=I; "
        f"python {env['python']}, numpy {env['versions']['numpy']}, numba {numba.__version__}, "
        f"statsmodels {env['versions']['statsmodels']}"
    )
    print(
        f"  OPENBLAS_NUM_THREADS={env['env']['OPENBLAS_NUM_THREADS']}, "
        f"numba threads {numba.get_num_threads()}, cpus {env['cpu_count']}; "
        f"load avg {env['load_avg_1min']:.2f}; medians of {args.repeat} interleaved repeats"
        f"{cold_note}\n"
    )

    # Buffers for the raw kernels (the arrays the wrappers would allocate).
    w = np.ones(n)
    ll_t, dQ, dR = np.empty(n), np.empty_like(Q), np.empty_like(R)
    da0, dP0 = np.empty_like(a0), np.empty_like(P0)
    Qb, Rb = parameter_sets(k, N_SETS)
    batch = (y[None], Z[None], T[None], Qb, Rb, a0[None], P0[None])
    b_out, b_bad = np.empty(N_SETS), np.empty(N_SETS, dtype=np.int64)
    static_k = sweep_constant(T, k)

    def raw_loglik() -> object:
        return loglik_kernel(*a, 0, static_k)

    def raw_vjp() -> object:
        return loglik_vjp_kernel(*a, w, ll_t, dQ, dR, da0, dP0, static_k)

    # 0. First calls, before anything else touches the kernels.
    fc = first_calls(
        {
            "loglik_kernel": (loglik_kernel, raw_loglik),
            "loglik_vjp_kernel": (loglik_vjp_kernel, raw_vjp),
            "loglik_batch_kernel (parallel)": (
                loglik_batch_kernel,
                lambda: loglik_batch_kernel(*batch, 0, static_k, b_out, b_bad),
            ),
        }
    )
    rows = [
        [
            "import tvbeta.kalman (numba, ...)",
            fmt_time(import_s),
            "already imported" if already else "",
        ]
    ]
    rows += [[name, fmt_time(f["seconds"]), f["how"]] for name, f in fc.items()]
    cache = getattr(getattr(loglik_kernel, "stats", None), "cache_path", "?")
    print_table(f"0. First calls (numba cache: {cache})", ["what", "time", "how"], rows)

    # 1. One log-likelihood.
    model = TVPRegression(y, Z, T=T[0], a0=a0, P0=P0)
    params = case.params
    ll_sm = float(model.loglike(params))
    ll_w = kalman_loglik(*a)
    ll_raw, bad = raw_loglik()
    rel = max(
        _check_close("kalman_loglik vs statsmodels", ll_w, ll_sm),
        _check_close("loglik_kernel vs statsmodels", float(ll_raw), ll_sm),
    )
    if bad >= 0:
        raise AssertionError(f"loglik_kernel reported a bad step {bad}")
    t1 = compare(
        {
            "statsmodels": lambda: model.loglike(params),
            "wrapper": lambda: kalman_loglik(*a),
            "raw": raw_loglik,
        },
        repeat=args.repeat,
    )
    sp_w = t1["statsmodels"].median / t1["wrapper"].median
    sp_raw = t1["statsmodels"].median / t1["raw"].median
    goal = f">= {GOAL_SPEEDUP:g}x"
    print_table(
        f"1. One log-likelihood (loglik {ll_w:.6f}; tvbeta = statsmodels to rel {rel:.1e})",
        ["what", "median", "speedup vs statsmodels", "goal", ""],
        [
            ["statsmodels TVPRegression.loglike", fmt_time(t1["statsmodels"].median), "1x", "", ""],
            [
                "tvbeta kalman_loglik (validated)",
                fmt_time(t1["wrapper"].median),
                fmt_ratio(sp_w),
                goal,
                verdict(sp_w, GOAL_SPEEDUP, True),
            ],
            [
                "tvbeta loglik_kernel (raw njit)",
                fmt_time(t1["raw"].median),
                fmt_ratio(sp_raw),
                goal,
                verdict(sp_raw, GOAL_SPEEDUP, True),
            ],
        ],
    )

    # 2. Gradient relative to one log-likelihood.
    g = loglik_vjp(*a)
    _check_close("loglik_vjp value vs kalman_loglik", g.value, ll_w)
    score = np.asarray(model.score(params))
    ours = np.r_[np.diagonal(g.dQ[0]), g.dR[0]]
    grad_rel = float(np.max(np.abs(ours - score) / np.abs(score)))
    t2 = compare(
        {
            "loglik": lambda: kalman_loglik(*a),
            "raw": raw_loglik,
            "vjp": lambda: loglik_vjp(*a),
            "vjp_raw": raw_vjp,
            "sm_loglike": lambda: model.loglike(params),
            "sm_score": lambda: model.score(params),
        },
        repeat=args.repeat,
    )
    gr_w = t2["vjp"].median / t2["loglik"].median
    gr_raw = t2["vjp_raw"].median / t2["raw"].median
    sm_gr = t2["sm_score"].median / t2["sm_loglike"].median
    goal = f"<= {GOAL_GRADIENT:g}x"
    print_table(
        f"2. Gradient cost (tvbeta gradient = statsmodels score to rel {grad_rel:.1e})",
        ["what", "median", "/ one loglik", "goal", ""],
        [
            [
                "tvbeta loglik_vjp (validated)",
                fmt_time(t2["vjp"].median),
                fmt_ratio(gr_w) + " of kalman_loglik",
                goal,
                verdict(gr_w, GOAL_GRADIENT, False),
            ],
            [
                "tvbeta loglik_vjp_kernel (raw njit)",
                fmt_time(t2["vjp_raw"].median),
                fmt_ratio(gr_raw) + " of loglik_kernel",
                goal,
                verdict(gr_raw, GOAL_GRADIENT, False),
            ],
            [
                "statsmodels score (complex step, 3 params)",
                fmt_time(t2["sm_score"].median),
                fmt_ratio(sm_gr) + " of its loglike",
                "",
                "",
            ],
            [
                "  (statsmodels score / tvbeta loglik_vjp)",
                "",
                fmt_ratio(t2["sm_score"].median / t2["vjp"].median),
                "",
                "",
            ],
        ],
    )

    # 3. 1,000 parameter sets.
    ref = loglik_batch(*batch)
    for i in (0, N_SETS // 2, N_SETS - 1):
        _check_close(
            f"loglik_batch[{i}] vs kalman_loglik",
            ref[i],
            kalman_loglik(y, Z, T, Qb[i], Rb[i], a0, P0),
            1e-12,
        )
        _check_close(
            f"loglik_batch[{i}] vs statsmodels",
            ref[i],
            float(model.loglike(np.r_[np.diagonal(Qb[i, 0]), Rb[i, 0]])),
        )
    sm_params = np.c_[np.diagonal(Qb[:, 0], axis1=1, axis2=2), Rb[:, 0]]
    m_sm = min(max(args.sm_calls, 1), N_SETS)

    def py_loop() -> None:
        for i in range(N_SETS):
            kalman_loglik(y, Z, T, Qb[i], Rb[i], a0, P0)

    def sm_loop() -> None:
        for i in range(m_sm):
            model.loglike(sm_params[i])

    t3 = compare(
        {"batch": lambda: loglik_batch(*batch), "loop": py_loop, "sm": sm_loop},
        repeat=args.repeat,
        target=0.0,
    )
    per = {
        "batch": t3["batch"].median / N_SETS,
        "loop": t3["loop"].median / N_SETS,
        "sm": t3["sm"].median / m_sm,
        "raw_single": t2["raw"].median,
    }
    sm_label = f"{N_SETS} statsmodels loglike calls" + (
        "" if m_sm == N_SETS else f" (EXTRAPOLATED from {m_sm})"
    )
    print_table(
        f"3. {N_SETS} (Q, R) parameter sets (numba threads {numba.get_num_threads()})",
        ["what", "total", "per set", "vs loglik_batch"],
        [
            [
                f"tvbeta loglik_batch (B={N_SETS}, prange)",
                fmt_time(t3["batch"].median),
                fmt_time(per["batch"]),
                "1x",
            ],
            [
                f"Python loop of {N_SETS} kalman_loglik",
                fmt_time(t3["loop"].median),
                fmt_time(per["loop"]),
                fmt_ratio(per["loop"] / per["batch"]),
            ],
            [
                sm_label,
                fmt_time(per["sm"] * N_SETS),
                fmt_time(per["sm"]),
                fmt_ratio(per["sm"] / per["batch"]),
            ],
            [
                "  (one raw loglik_kernel call, section 2)",
                "",
                fmt_time(per["raw_single"]),
                fmt_ratio(per["raw_single"] / per["batch"]),
            ],
        ],
        note="(one call / batch per set ~ the number of idle cores: ~1x when another job holds\n"
        " the second vCPU; compare the load average above)",
    )
    goals = {
        "loglik_speedup_wrapper": (sp_w, GOAL_SPEEDUP, True),
        "loglik_speedup_raw": (sp_raw, GOAL_SPEEDUP, True),
        "gradient_ratio_wrapper": (gr_w, GOAL_GRADIENT, False),
        "gradient_ratio_raw": (gr_raw, GOAL_GRADIENT, False),
    }
    print(
        "Goals: "
        + ", ".join(
            f"{name} {fmt_ratio(v)} ({'>=' if hi else '<='} {g:g}x) {verdict(v, g, hi)}"
            for name, (v, g, hi) in goals.items()
        )
    )
    total = time.perf_counter() - wall
    print(f"(kernels benchmark took {total:.1f} s; load avg now {os.getloadavg()[0]:.2f})")

    if args.json:
        timings: dict[str, dict[str, Timing]] = {"loglik": t1, "gradient": t2, "batch": t3}
        write_json(
            args.json,
            {
                "benchmark": "kernels",
                "case": {
                    "source": case.source,
                    "n": n,
                    "k": k,
                    "Q": Q_VAR,
                    "R": R_VAR,
                    "P0": P0_SCALE,
                    "loglik": ll_w,
                    "loglik_statsmodels": ll_sm,
                },
                "environment": {**env, "numba_threads": numba.get_num_threads()},
                "first_call": {"import_tvbeta_kalman_s": import_s, **fc},
                "timings_s": timings,
                "per_set_s": per,
                "sm_calls": m_sm,
                "goals": {
                    name: {
                        "value": v,
                        "goal": g,
                        "at_least": hi,
                        "pass": verdict(v, g, hi) == "PASS",
                    }
                    for name, (v, g, hi) in goals.items()
                },
                "wall_s": total,
            },
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
