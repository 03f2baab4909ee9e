"""Model-menu benchmark: what a volatility-scaled R or mean-reverting betas cost (issue 12).

One monthly industry of the built-in data (NoDur on MktRF, SMB, HML, Mom with an intercept,
1949-2017, the first 70% of the rows: a comparison's training span), burn = K. Timed in the same
run, interleaved: `fit_mle` with a constant R and with ``noise="volatility"`` (median of
repeats), and a warm `fit_bayes` of the constant model, the volatility-scaled R and
mean-reverting betas (4 chains x (1000 tune + 1000 draws), compiled once before; the best of
the repeats). Goal: each variant costs at most twice the constant model.
"""

from __future__ import annotations

import argparse
import time
import warnings

from bench.common import compare, fmt_ratio, fmt_time, print_table, verdict, write_json

GOAL = 2.0


def main(argv: list[str] | None = None) -> int:
    """Time the MLE and a warm Bayes fit of both noise models."""
    parser = argparse.ArgumentParser(prog="python -m bench menu", description=__doc__)
    parser.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=5, help="repeats per MLE timing (median)")
    parser.add_argument("--bayes-repeat", type=int, default=2, help="warm Bayes fits per model")
    args = parser.parse_args(argv)

    from tvbeta import fit_bayes, fit_mle
    from tvbeta.data import FRENCH_FACTORS, load_french
    from tvbeta.estimate.bayes import BayesConvergenceWarning
    from tvbeta.estimate.mle import MLEConvergenceWarning

    df = load_french()
    df = df.iloc[: int(0.7 * len(df))]
    factors = list(FRENCH_FACTORS)
    warnings.simplefilter("ignore", MLEConvergenceWarning)
    warnings.simplefilter("ignore", BayesConvergenceWarning)
    mle = {noise: (lambda noise=noise: fit_mle(df, "NoDur", factors, noise=noise))
           for noise in ("constant", "volatility")}  # fmt: skip
    for fn in mle.values():
        fn()  # compile / cache load
    t = compare(mle, repeat=args.repeat, target=0.3)

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
    r_mle = t["volatility"].median / t["constant"].median
    r_bayes = {name: b[name] / b["constant"] for name in variants}
    print_table(
        "Model variants against the constant model, NoDur 1949-1996 (573 months, K = 5)",
        ["fit", "constant", "variant", "time", "ratio", "goal", ""],
        [["fit_mle (median)", fmt_time(t["constant"].median), "volatility-scaled R",
          fmt_time(t["volatility"].median), fmt_ratio(r_mle), f"<= {GOAL:g}x",
          verdict(r_mle, GOAL, False)],
         *[["fit_bayes warm, 4 x 2000 (best)", fmt_time(b["constant"]), name,
            fmt_time(b[name]), fmt_ratio(r_bayes[name]), f"<= {GOAL:g}x",
            verdict(r_bayes[name], GOAL, False)] for name in variants if name != "constant"]],
    )  # fmt: skip
    if args.json:
        write_json(args.json, {"mle_constant_s": t["constant"].median,
                               "mle_volatility_s": t["volatility"].median, "mle_ratio": r_mle,
                               **{f"bayes_{name}_s": b[name] for name in variants},
                               **{f"bayes_{name}_ratio": r_bayes[name] for name in variants
                                  if name != "constant"}})  # fmt: skip
    return 0
