"""`tvbeta` command line: `tvbeta demo` runs the main job on the built-in dataset."""

from __future__ import annotations

import argparse
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np

DEMO_TARGET = "BusEq"


def _demo(args: argparse.Namespace) -> int:
    from tvbeta.data import FRENCH_FACTORS, load_french
    from tvbeta.estimate.mle import MLEConvergenceWarning, fit_mle
    from tvbeta.viz import plot_filtered_vs_smoothed, save_html

    df = load_french()
    factors = list(FRENCH_FACTORS)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # shown as "at zero" below
        fit = fit_mle(df, args.target, factors, intercept=True, name=f"{args.target} (MLE)")
    result = fit.result
    print(f"tvbeta demo: {args.target} on {', '.join(factors)}, monthly excess returns "
          "(Ken French data via linearmodels)")
    print(f"  {result.beta.index[0]:%Y-%m} .. {result.beta.index[-1]:%Y-%m}, "
          f"{len(result.beta)} months after burn {fit.burn}; log-likelihood {fit.llf:.2f}, "
          f"R = {fit.estimate.R:.3g}")
    table = fit.summary()
    last = result.beta.index[-1]
    print(f"  {'state':<10}{'sd of drift/yr':>15}{'final beta':>12}{'sd':>8}"
          f"{'smoothed range':>20}")
    for name in result.beta.columns:
        row = table.loc[f"Q[{name}]"]
        drift = "at zero" if row["at bound"] else f"{np.sqrt(12 * row['estimate']):.3f}"
        lo, hi = result.beta_smooth[name].min(), result.beta_smooth[name].max()
        print(f"  {name:<10}{drift:>15}{result.beta.loc[last, name]:>12.3f}"
              f"{result.beta_sd.loc[last, name]:>8.3f}{lo:>11.3f} .. {hi:<7.3f}")
    fig = plot_filtered_vs_smoothed(result, n_cols=2)
    out = save_html(fig, Path(args.output) / "demo_betas.html")
    print(f"  figure: {out}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tvbeta", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    demo = sub.add_parser(
        "demo", help="MLE, filtered and smoothed betas of an industry on the built-in data"
    )
    demo.add_argument("--target", default=DEMO_TARGET, help="industry column (default BusEq)")
    demo.add_argument("--output", default="output", help="folder for the HTML figure")
    demo.set_defaults(func=_demo)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the `tvbeta` command; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError, KeyError) as err:
        print(f"tvbeta: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
