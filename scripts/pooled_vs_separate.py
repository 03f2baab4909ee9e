"""Does pooling help funds with short histories? Out-of-sample log score, pooled vs separate.

Two sets of short histories (issue 14, point 3):

- ``seed``: the last 78 weeks (2021-07 .. 2022-12) of the seed's four ETFs (FPE, HYG, ICVT,
  LQD) on PFF with an intercept (`tvbeta.data.load_seed_weekly`, as ``models/preferreds.toml``);
  the first 52 weeks train, the last 26 are scored;
- ``industries``: the 12 built-in industries on MktRF, SMB, HML, Mom with an intercept, the
  last 5 years (60 months, 2012-04 .. 2017-03); the first 48 months train, the last 12 are
  scored.

Per set: one pooled fit of every fund's training rows (`fit_bayes_pooled`) and one `fit_bayes`
per fund on the same rows with the same priors (the single-fund defaults; burn = K) and the same
model: ``--betas`` random walks (the default) or mean-reverting betas (phi pooled by factor),
``--noise`` a constant R (the default) or R_t = sigma_eps^2 h_t^gamma (gamma pooled). Then, with
the hyperparameters fixed, the filter runs on through the test rows: each scored step is a
one-step-ahead forecast from y_{<t}, the posterior mixture over 200 draws of that model's own
Kalman predictive (`tvbeta.evaluate.forecast.posterior_forecast`, the scoring of
`tvbeta.evaluate.compare`, ``bayes``). Reported per fund: the mean log predictive density
(nats per step) of each; across funds: the mean of the per-fund differences (pooled minus
separate) with its standard error (sd / sqrt(J)); as the funds share their test steps (one
market), whose errors they share too, also the standard error across the m test steps of the
per-step difference averaged over funds (sd / sqrt(m)); how many funds pooling improves, the
divergent transitions of the pooled fit and of the separate fits, and the wall times.

The volatility index of ``--noise volatility`` is the library's default
(`tvbeta.model.volatility.VolatilityIndex.for_frequency`): its rolling regression's window is
capped at a third of the training targets, so these short histories do get one, but a short one:
16 months (half-life 6) for the industries, 17 weeks (half-life 26) for the seed; before the
first regression (the first 16 / 17 training rows) h_t = 1, so gamma is learnt from the last 32
/ 35 training rows only. The test rows extend the same index (y_{<t}, the training centring).

Run: ``.venv/bin/python scripts/pooled_vs_separate.py [--noise volatility] [--betas
mean_reverting] [--sets industries] [--json out.json] [--draws 1000]`` (needs ../shared/data
for the ``seed`` set; both sets took 1-7 minutes per model on 2 shared cores, the
mean-reverting ones the longest).
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # bench.common, run from anywhere

from bench.common import print_table, write_json

N_PREDICTIVE = 200


def short_histories(
    sets: Sequence[str] = ("seed", "industries"),
) -> dict[str, tuple[pd.DataFrame, list[str], list[str], int]]:
    """Return {set: (frame, funds, factors, training rows)} of the module docstring."""
    from tvbeta.data import FRENCH_FACTORS, FRENCH_INDUSTRIES, load_french, load_seed_weekly

    out = {}
    try:
        if "seed" in sets:
            seed = load_seed_weekly().iloc[-78:]
            funds = ["Preferred Income (FPE)", "High Yield (HYG)", "Convertibles (ICVT)",
                     "Investment Grade (LQD)"]  # fmt: skip
            out["seed"] = (seed, funds, ["Preferred Stock (PFF)"], 52)
    except FileNotFoundError as err:
        print(f"seed set skipped: {err}")
    if "industries" in sets:
        french = load_french().iloc[-60:]
        out["industries"] = (french, list(FRENCH_INDUSTRIES), list(FRENCH_FACTORS), 48)
    return out


def scores(df, funds, factors, n_train, draws: int, seed: int, noise: str = "constant",
           betas: str = "random_walk") -> pd.DataFrame:  # fmt: skip
    """Per fund: mean test log score of the pooled and the separate fit, and the wall times."""
    from tvbeta.data.validate import prepare_design
    from tvbeta.estimate.bayes import BayesConvergenceWarning, fit_bayes
    from tvbeta.estimate.bayes.pooled import fit_bayes_pooled
    from tvbeta.evaluate.compare import _bayes_forecast
    from tvbeta.evaluate.settings import Split

    warnings.simplefilter("ignore", BayesConvergenceWarning)  # reported below, per fit
    train = df.iloc[:n_train]
    split = Split(len(df), n_train)
    nuts = {"draws": draws, "tune": draws, "chains": 4, "n_paths": 0, "noise": noise,
            "betas": betas}  # fmt: skip
    t0 = time.perf_counter()
    pooled = fit_bayes_pooled(train, funds, factors, seed=seed, **nuts)
    t_pooled = time.perf_counter() - t0
    problems = pooled.check_convergence(warn=False).problems
    rows, step_differences = [], []
    for i, fund in enumerate(funds):
        design = prepare_design(df, fund, factors, intercept=True)
        t0 = time.perf_counter()
        alone = fit_bayes(train, fund, factors, seed=seed + 1 + i, **nuts)
        t_alone = time.perf_counter() - t0
        divergent = int(alone.tree["sample_stats"]["diverging"].sum())
        fc = {name: _bayes_forecast(fit, design, split, N_PREDICTIVE, seed)
              for name, fit in (("pooled", pooled.fund_fit(fund, n_paths=0)),
                                ("separate", alone))}  # fmt: skip
        step_differences.append(fc["pooled"].log_density - fc["separate"].log_density)
        rows.append(
            {
                "fund": fund,
                "n test": len(fc["pooled"].y),
                "pooled": fc["pooled"].log_density.mean(),
                "separate": fc["separate"].log_density.mean(),
                "time separate": t_alone,
                "divergent separate": divergent,
            }
        )
    table = pd.DataFrame(rows).set_index("fund")
    table["difference"] = table["pooled"] - table["separate"]
    table.attrs.update(
        time_pooled=t_pooled,
        pooled_problems=problems,
        pooled_divergent=int(pooled.tree["sample_stats"]["diverging"].sum()),
        # the funds share their test steps (one market), so their differences are correlated
        step_difference=np.mean(step_differences, axis=0).tolist(),
        tau=pooled.tree["posterior"]["tau"].mean(("chain", "draw")).values.tolist(),
    )
    return table


def main(argv: list[str] | None = None) -> int:
    """Score both sets and print the tables."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--json", metavar="PATH", help="write the figures to this JSON file")
    parser.add_argument("--draws", type=int, default=1000, help="draws and tuning steps/chain")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument(
        "--noise",
        choices=["constant", "volatility"],
        default="constant",
        help="observation noise of both fits (R, or R_t = sigma_eps^2 h_t^gamma)",
    )
    parser.add_argument(
        "--betas",
        choices=["random_walk", "mean_reverting"],
        default="random_walk",
        help="beta dynamics of both fits",
    )
    parser.add_argument("--sets", nargs="+", choices=["seed", "industries"],
                        default=["seed", "industries"], help="the sets to score")  # fmt: skip
    args = parser.parse_args(argv)
    figures = {"noise": args.noise, "betas": args.betas}
    for name, (df, funds, factors, n_train) in short_histories(args.sets).items():
        table = scores(df, funds, factors, n_train, args.draws, args.seed, args.noise, args.betas)
        d = table["difference"]
        se = d.std(ddof=1) / np.sqrt(len(d))
        by_step = np.asarray(table.attrs["step_difference"])
        se_steps = by_step.std(ddof=1) / np.sqrt(len(by_step))
        print_table(
            f"{name}, noise {args.noise}, betas {args.betas}: {len(funds)} funds, train "
            f"{n_train} rows, test {len(df) - n_train}; mean "
            f"log score (nats/step); pooled fit {table.attrs['time_pooled']:.0f} s, separate "
            f"{table['time separate'].sum():.0f} s in all",
            ["fund", "n test", "pooled", "separate", "pooled - separate"],
            [[f, int(r["n test"]), f"{r['pooled']:.4f}", f"{r['separate']:.4f}",
              f"{r['difference']:+.4f}"] for f, r in table.iterrows()],
        )  # fmt: skip
        print(
            f"{name}: mean difference {d.mean():+.4f} nats/step, SE {se:.4f} (t = "
            f"{d.mean() / se:.2f}); SE across the {len(by_step)} test steps (funds averaged) "
            f"{se_steps:.4f} (t = {by_step.mean() / se_steps:.2f}); pooling better for "
            f"{(d > 0).sum()} of {len(d)} funds; "
            f"posterior mean tau {np.round(table.attrs['tau'], 2).tolist()}; pooled fit "
            f"checks: {table.attrs['pooled_problems'] or 'passed'}; divergent transitions: "
            f"pooled {table.attrs['pooled_divergent']}, separate "
            f"{table['divergent separate'].sum()} in all\n"
        )
        figures[name] = {"table": table.reset_index().to_dict("list"), "mean": d.mean(),
                         "se": se, "se_steps": se_steps, "better": int((d > 0).sum()),
                         **table.attrs}  # fmt: skip
    if args.json:
        write_json(args.json, figures)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
