"""Model-menu benchmark: what a volatility-scaled R or mean-reverting betas cost (issue 12).

One monthly industry of the built-in data (NoDur on MktRF, SMB, HML, Mom with an intercept,
1949-2017, the first 70% of the rows: a comparison's training span), burn = K. Timed in the same
run, interleaved: `fit_mle` with a constant R, with ``noise="volatility"`` and with
``betas="mean_reverting"`` (median of repeats), the same over all 12 industries (the median
and range of their ratios: NoDur's constant-R fit is among the quickest, so its ratios are
among the highest), and a warm `fit_bayes` of the constant model, the volatility-scaled R and
mean-reverting betas (4 chains x (1000 tune + 1000 draws), compiled once before; the best of
the repeats). Goal: each variant costs at most twice the constant model. For context, one
value and gradient of the likelihood at the same size: the random walk's kernel (`tape_kernel`
+ `adjoint_kernel`, k a constant) against the mean-reverting betas' kernels of the sum, which
fits run (`collapsed_sum_kernel` + its adjoint), and of the terms, which the pointwise
log-likelihood and the pooled model run (`collapsed_tape_kernel` + its adjoint; median of
repeats, warm). The ratios depend on the CPU (printed below the table).
"""

from __future__ import annotations

import argparse
import statistics
import time
import warnings

from bench.common import (
    compare,
    environment,
    fmt_ratio,
    fmt_time,
    print_table,
    verdict,
    write_json,
)

GOAL = 2.0


def main(argv: list[str] | None = None) -> int:
    """Time the MLE and a warm Bayes fit of both noise models."""
    parser = argparse.ArgumentParser(prog="python -m bench menu", description=__doc__)
    parser.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=5, help="repeats per MLE timing (median)")
    parser.add_argument("--bayes-repeat", type=int, default=2, help="warm Bayes fits per model")
    args = parser.parse_args(argv)

    from tvbeta import fit_bayes, fit_mle
    from tvbeta.data import FRENCH_FACTORS, FRENCH_INDUSTRIES, load_french
    from tvbeta.estimate.bayes import BayesConvergenceWarning
    from tvbeta.estimate.mle import MLEConvergenceWarning

    df = load_french()
    df = df.iloc[: int(0.7 * len(df))]
    factors = list(FRENCH_FACTORS)
    warnings.simplefilter("ignore", MLEConvergenceWarning)
    warnings.simplefilter("ignore", BayesConvergenceWarning)
    mle_variants = {"constant": {}, "volatility": {"noise": "volatility"},
                    "mean_reverting": {"betas": "mean_reverting"}}  # fmt: skip

    def mle_calls(asset: str) -> dict:
        return {name: (lambda o=options: fit_mle(df, asset, factors, **o))
                for name, options in mle_variants.items()}  # fmt: skip

    for fn in mle_calls("NoDur").values():
        fn()  # compile / cache load
    t = compare(mle_calls("NoDur"), repeat=args.repeat, target=0.3)
    industry_ratios = {name: [] for name in mle_variants if name != "constant"}
    for asset in FRENCH_INDUSTRIES:
        ti = compare(mle_calls(asset), repeat=max(args.repeat // 2, 1), target=0.05)
        for name, ratios in industry_ratios.items():
            ratios.append(ti[name].median / ti["constant"].median)

    variants = {"constant": {}, "volatility": {"noise": "volatility"},
                "mean-reverting": {"betas": "mean_reverting"}}  # fmt: skip

    def bayes(options: dict, draws: int = 1000) -> float:
        start = time.perf_counter()
        fit_bayes(df, "NoDur", factors, draws=draws, tune=draws, seed=1, n_paths=0, **options)
        return time.perf_counter() - start

    for options in variants.values():
        bayes(options, draws=50)  # compile each graph once
    walls = {name: [] for name in variants}
    for _ in range(args.bayes_repeat):
        for name, options in variants.items():
            walls[name].append(bayes(options))
    b = {name: min(w) for name, w in walls.items()}
    kernel = compare(_kernel_calls(df, factors), repeat=args.repeat * 4, target=0.1)
    r_kernel = {name: kernel[name].median / kernel["random walk"].median
                for name in ("mean-reverting", "mean-reverting terms")}  # fmt: skip
    r_mle = {name: t[name].median / t["constant"].median for name in industry_ratios}
    r_industries = {name: statistics.median(r) for name, r in industry_ratios.items()}
    r_bayes = {name: b[name] / b["constant"] for name in variants}
    env = environment()
    print_table(
        "Model variants against the constant model, NoDur 1949-1996 (573 months, K = 5)",
        ["fit", "constant", "variant", "time", "ratio", "goal", ""],
        [*[["fit_mle (median)", fmt_time(t["constant"].median), name, fmt_time(t[name].median),
            fmt_ratio(r_mle[name]), f"<= {GOAL:g}x", verdict(r_mle[name], GOAL, False)]
           for name in industry_ratios],
         *[["fit_mle, 12 industries", "", name, f"{fmt_ratio(min(r))} .. {fmt_ratio(max(r))}",
            f"{fmt_ratio(r_industries[name])} (median)", f"<= {GOAL:g}x",
            verdict(r_industries[name], GOAL, False)] for name, r in industry_ratios.items()],
         *[["fit_bayes warm, 4 x 2000 (best)", fmt_time(b["constant"]), name,
            fmt_time(b[name]), fmt_ratio(r_bayes[name]), f"<= {GOAL:g}x",
            verdict(r_bayes[name], GOAL, False)] for name in variants if name != "constant"],
         *[["value + gradient (median)", fmt_time(kernel["random walk"].median), name,
            fmt_time(kernel[name].median), fmt_ratio(r), "", ""]
           for name, r in r_kernel.items()]],
        note=f"{env['cpu']}, {env['cpu_count']} CPUs, load {env['load_avg_1min']:.1f}; "
             "the ratios depend on the CPU (docs/benchmarks.md)",
    )  # fmt: skip
    if args.json:
        write_json(args.json, {"environment": env, "mle_constant_s": t["constant"].median,
                               "mle_volatility_s": t["volatility"].median,
                               "mle_mean_reverting_s": t["mean_reverting"].median,
                               **{f"mle_{name}_ratio": r for name, r in r_mle.items()},
                               **{f"mle_{name}_industries": r
                                  for name, r in industry_ratios.items()},
                               **{f"bayes_{name}_s": b[name] for name in variants},
                               **{f"bayes_{name}_ratio": r_bayes[name] for name in variants
                                  if name != "constant"},
                               "kernel_random_walk_s": kernel["random walk"].median,
                               "kernel_mean_reverting_s": kernel["mean-reverting"].median,
                               "kernel_mean_reverting_terms_s":
                                   kernel["mean-reverting terms"].median})
    return 0


def _kernel_calls(df, factors) -> dict:
    """One value and gradient each: the random walk's and the mean-reverting betas' kernels.

    NoDur's training rows on an intercept and the factors, Q = 1e-4 I, R = 1e-3, phi = 0.99,
    a0 = 0, P0 = I; every buffer allocated once, as the PyTensor Ops' callers see the kernels.
    """
    import numpy as np

    from tvbeta.kalman.collapsed import (
        collapsed_adjoint_kernel,
        collapsed_sum_adjoint_kernel,
        collapsed_sum_kernel,
        collapsed_sum_width,
        collapsed_tape_kernel,
        collapsed_tape_width,
    )
    from tvbeta.kalman.filter import constant_k, sweep_constant
    from tvbeta.kalman.gradient import loglik_vjp_kernel

    y = np.ascontiguousarray(df["NoDur"].to_numpy(dtype=float))
    Z = np.column_stack([np.ones(len(df)), df[factors].to_numpy(dtype=float)])
    n, k = Z.shape
    T, Q, R = np.eye(k)[None], 1e-4 * np.eye(k)[None], np.array([1e-3])
    a0, P0, w, ll = np.zeros(k), np.eye(k), np.ones(n), np.empty(n)
    dQ, dR, da0, dP0 = np.empty((1, k, k)), np.empty(1), np.empty(k), np.empty((k, k))
    phi, tape, dphi = np.full(k, 0.99), np.empty((n, collapsed_tape_width(k))), np.empty(k)
    sum_tape, post = np.empty((n, collapsed_sum_width(k))), np.empty((2, k, k + 1))
    rw_k, mr_k = sweep_constant(T, k), constant_k(k)

    def random_walk() -> None:
        loglik_vjp_kernel(y, Z, T, Q, R, a0, P0, w, ll, dQ, dR, da0, dP0, rw_k)

    def reverting() -> None:
        collapsed_sum_kernel(y, Z, phi, Q[0], R, a0, P0, 0, sum_tape, post, mr_k)
        collapsed_sum_adjoint_kernel(y, Z, phi, a0, 0, sum_tape, post, dQ[0], dR, dphi, mr_k)

    def reverting_terms() -> None:
        collapsed_tape_kernel(y, Z, phi, Q[0], R, a0, P0, ll, tape, mr_k)
        collapsed_adjoint_kernel(y, Z, phi, w, tape, dQ[0], dR, dphi, mr_k)

    random_walk(), reverting(), reverting_terms()  # compile / cache load
    return {"random walk": random_walk, "mean-reverting": reverting,
            "mean-reverting terms": reverting_terms}  # fmt: skip
