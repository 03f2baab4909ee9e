"""MLE benchmark: tvbeta's joint MLE of (Q, R) against statsmodels' fit of the same model.

The seed case (weekly FPE ~ PFF + ICVT, 2016-2022, K = 2, no intercept; simulated data of the
same shape when ../shared/data is absent), seed initialisation (a0 = 0, P0 = 100 I, T = I),
burn = K. Both optimisers start from their own defaults; the table reports the maximised
log-likelihoods (they must agree to 1e-6 relative) and median fit times. Goal: >= 10x faster.
"""

from __future__ import annotations

import argparse
import warnings

import numpy as np

from bench.common import compare, fmt_ratio, fmt_time, print_table, verdict, write_json
from bench.kernels import seed_case

GOAL = 10.0


def main(argv: list[str] | None = None) -> int:
    """Time `fit_qr` (the estimate) and `fit_mle` (plus validation, filter and smoother)."""
    parser = argparse.ArgumentParser(prog="python -m bench mle", description=__doc__)
    parser.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument("--repeat", type=int, default=5, help="repeats per timing (median)")
    args = parser.parse_args(argv)

    import pandas as pd

    from tvbeta.estimate.mle import MLEConvergenceWarning, fit_mle, fit_qr
    from tvbeta.estimate.statsmodels_twin import TVPRegression
    from tvbeta.kalman import state_space

    case = seed_case()
    n, k = case.Z.shape
    burn = k
    m = state_space(*case.arrays)
    df = pd.DataFrame(np.column_stack([case.y, case.Z]), columns=["y", *map(str, range(k))],
                      index=pd.date_range("2016-01-08", periods=n, freq="W-FRI"))
    warnings.simplefilter("ignore", MLEConvergenceWarning)

    def ours_arrays():
        return fit_qr(m, burn=burn)

    def ours_full():
        return fit_mle(df, "y", [str(i) for i in range(k)], intercept=False, burn=burn)

    def theirs():
        mod = TVPRegression(case.y, case.Z, a0=case.a0, P0=case.P0, burn=burn)
        return mod.fit(disp=False, maxiter=5000)

    a, _, s = ours_arrays(), ours_full(), theirs()  # warm-up (compile / cache load)
    rel = abs(a.llf - s.llf) / abs(s.llf)
    print(f"tvbeta MLE benchmark: {case.source}\n  n={n}, k={k}, burn={burn}; llf tvbeta "
          f"{a.llf:.6f}, statsmodels {s.llf:.6f} (rel. diff {rel:.1e}); params tvbeta "
          f"{np.array2string(a.params, precision=4)}, statsmodels "
          f"{np.array2string(np.asarray(s.params), precision=4)}\n")
    t = compare({"statsmodels": theirs, "fit_qr": ours_arrays, "fit_mle": ours_full},
                repeat=args.repeat, target=0.3)
    ratio_arrays = t["statsmodels"].median / t["fit_qr"].median
    ratio_full = t["statsmodels"].median / t["fit_mle"].median
    print_table(
        "MLE of (Q, R), seed case",
        ["what", "median", "speedup", "goal", ""],
        [
            ["statsmodels TVPRegression.fit", fmt_time(t["statsmodels"].median), "1x", "", ""],
            ["tvbeta fit_qr (estimate + SEs)", fmt_time(t["fit_qr"].median),
             fmt_ratio(ratio_arrays), f">= {GOAL:g}x", verdict(ratio_arrays, GOAL, True)],
            ["tvbeta fit_mle (+ filter, smoother)", fmt_time(t["fit_mle"].median),
             fmt_ratio(ratio_full), "", ""],
        ],
    )
    if args.json:
        write_json(args.json, {"llf_rel_diff": rel, "statsmodels_s": t["statsmodels"].median,
                               "fit_qr_s": t["fit_qr"].median, "fit_mle_s": t["fit_mle"].median,
                               "speedup_fit_qr": ratio_arrays, "speedup_fit_mle": ratio_full})
    return 0
