"""Where the cost of a mean-reverting Bayes fit goes, and two ways to cut it.

Issue 12 asks that a mean-reverting fit cost at most twice the constant model's wall time;
`python -m bench menu` measures 2.1x on NoDur (2.7-2.9x on the stale build of before commit
bb9f988, docs/benchmarks.md). This study splits that ratio and tries the two obvious cuts.
Data: NoDur on an intercept and MktRF, SMB, HML, Mom, the first 70% of the monthly rows
1949-2017 (573 months, k = 5: `bench.menu`'s case), default priors.

1. One value and gradient of the compiled log density, the function nutpie calls (PyTensor's
   numba code: the priors, the transforms, the Kalman Op and its adjoint), for the constant
   model, ``noise="volatility"``, ``betas="mean_reverting"`` and both (median of interleaved
   repeats).
2. Warm `fit_bayes` fits, 4 x (1000 + 1000): the constant model and mean-reverting betas at
   the default target_accept 0.8, mean-reverting betas at 0.7 (a larger step, fewer leapfrog
   steps: is the sampler's share the lever?), and mean-reverting betas with the long-run means
   mu *sampled* by NUTS (mu = a0 + chol(P0) mu_z, mu_z ~ N(0, I): the same prior) instead of
   integrated out: then one k-state filter of beta - mu would do (about the random walk's cost
   per gradient; here the augmented [beta; mu] filter with a transition gradient stands in,
   since only the sampler's behaviour is compared). Printed: wall time, leapfrog steps per
   draw, divergences, the smallest bulk and tail ESS of the sampled parameters.

Run: ``.venv/bin/python scripts/reversion_cost.py [--seeds 1 2] [--assets NoDur Enrgy]
[--no-sampled-mu] [--json out.json]`` (about 6 minutes a seed and asset on 2 cores, most of it
the sampled-mu fit, 20 s without it; ``--assets`` fits other industries and the portfolios too,
``--assets all`` the 30 of the README's comparison; part 1 is NoDur's).
"""

from __future__ import annotations

import argparse
import json
import time
import warnings

import arviz as az
import numpy as np
import pymc as pm
import pytensor.tensor as pt

from tvbeta import fit_bayes
from tvbeta.constants import STATE
from tvbeta.data import FRENCH_FACTORS, FRENCH_INDUSTRIES, FRENCH_PORTFOLIOS, load_french
from tvbeta.estimate.bayes.model import (
    _scale_prior,
    bayes_spec,
    model_from_spec,
    reversion_persistence,
    reverting_sigma_beta,
)
from tvbeta.estimate.bayes.op import KalmanLoglikOp
from tvbeta.estimate.bayes.sampler import _compiled_functions, _without_fast_math, sample_nuts
from tvbeta.nuts import SamplerSettings

ASSET = "NoDur"
REVERTING = {"betas": "mean_reverting"}
VARIANTS = {"constant": {}, "volatility": {"noise": "volatility"}, "mean_reverting": REVERTING,
            "volatility + mean_reverting": {"noise": "volatility", **REVERTING}}  # fmt: skip
FREE = ("sigma_eps", "sigma_beta", "sigma_drift", "phi_z", "mu_z")


def evaluation_cost(df, repeat: int = 25) -> dict[str, float]:
    """Return the microseconds of one log density and gradient per variant (median)."""
    calls = {}
    for name, options in VARIANTS.items():
        model = model_from_spec(bayes_spec(df, ASSET, list(FRENCH_FACTORS), **options))
        made, _ = _without_fast_math(_compiled_functions)(model)
        n_dim, logp_fn = made[0], made[2]
        args = [np.full(n_dim, 0.1), *(np.array(v.get_value(), order="C")
                                       for v in logp_fn.get_shared())]  # fmt: skip
        logp_fn.vm.jit_fn(*args)
        calls[name] = (logp_fn.vm.jit_fn, args)
    times = {name: [] for name in calls}
    for _ in range(repeat):
        for name, (fn, args) in calls.items():
            start = time.perf_counter()
            for _ in range(40):
                fn(*args)
            times[name].append((time.perf_counter() - start) / 40 * 1e6)
    return {name: float(np.median(t)) for name, t in times.items()}


def sampled_mu_model(spec) -> pm.Model:
    """Mean-reverting betas with mu sampled (non-centred) and the filter of [beta; mu].

    The priors of `model_from_spec` (sigma_eps, `reversion_persistence`, sigma_drift) and
    mu ~ N(a0, P0); T = [[Phi, I - Phi], [0, I]], Q = diag(Q_beta, 0), the state starting at
    (a0, mu) with covariance diag(P0, 0): given mu, the model's likelihood.
    """
    k = spec.k
    with pm.Model(coords={STATE: list(spec.state_names)}) as model:
        sigma_eps = _scale_prior("sigma_eps", spec.resolved.sigma_eps)
        phi_annual, phi = reversion_persistence(spec)
        sigma_beta = reverting_sigma_beta(spec, phi_annual, phi)
        mu_z = pm.Normal("mu_z", 0.0, 1.0, dims=STATE)
        mu = spec.a0 + pt.dot(np.linalg.cholesky(spec.P0), mu_z)
        Q = pt.set_subtensor(pt.zeros((2 * k, 2 * k))[:k, :k], pt.diag(sigma_beta**2))
        T = pt.set_subtensor(pt.eye(2 * k)[:k, :k], pt.diag(phi))
        T = pt.set_subtensor(T[:k, k:], pt.diag(1.0 - phi))
        P0 = np.zeros((2 * k, 2 * k))
        P0[:k, :k] = spec.P0
        ll = KalmanLoglikOp(0, transition_gradient=True)(
            Q, pt.shape_padleft(sigma_eps**2), spec.y, np.hstack([spec.Z, 0.0 * spec.Z]), T,
            pt.concatenate([pt.as_tensor(spec.a0), mu]), P0,
        )  # fmt: skip
        pm.Potential("loglik", ll[spec.steps].sum())
    return model


def summary(tree, wall: float) -> dict[str, float]:
    """Return wall time, leapfrog steps per draw, divergences, smallest bulk and tail ESS."""
    stats, post = tree["sample_stats"], tree["posterior"]
    free = [name for name in FREE if name in post.data_vars]
    bulk, tail = az.ess(tree, var_names=free), az.ess(tree, var_names=free, method="tail")
    return {"wall_s": round(wall, 2), "steps": round(float(stats["n_steps"].values.mean()), 2),
            "divergences": int(stats["diverging"].values.sum()),
            "bulk_ess": round(min(float(bulk[v].min()) for v in free)),
            "tail_ess": round(min(float(tail[v].min()) for v in free))}  # fmt: skip


def fits(df, asset: str, seed: int, sampled_mu: bool = True) -> dict[str, dict[str, float]]:
    """Return `summary` of each fit of part 2 of the module docstring for one asset and seed."""
    out = {}
    for name, options, target in (("constant", {}, 0.8), ("mean_reverting", REVERTING, 0.8),
                                  ("mean_reverting, target 0.7", REVERTING, 0.7)):  # fmt: skip
        start = time.perf_counter()
        fit = fit_bayes(df, asset, list(FRENCH_FACTORS), seed=seed, n_paths=0,
                        target_accept=target, **options)  # fmt: skip
        out[name] = summary(fit.tree, time.perf_counter() - start)
    if not sampled_mu:
        return out
    spec = bayes_spec(df, asset, list(FRENCH_FACTORS), **REVERTING)
    run = sample_nuts(sampled_mu_model(spec), SamplerSettings(), seed=seed, adaptation="diag")
    out["mean_reverting, mu sampled"] = summary(run.tree, run.seconds)
    return out


def main() -> None:
    """Print both parts for each seed (and write them as JSON with --json)."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[1])
    parser.add_argument("--assets", nargs="+", default=[ASSET],
                        help="French industries or portfolios; all: the 30 of the comparison")
    parser.add_argument("--no-sampled-mu", action="store_true",
                        help="skip the fit with mu sampled (the slow one)")
    parser.add_argument("--json", help="write the figures to this file")
    args = parser.parse_args()
    warnings.simplefilter("ignore")  # convergence warnings: the table reports ESS and divergences
    df = load_french()
    df = df.iloc[: int(0.7 * len(df))]
    for options in VARIANTS.values():  # compile once, outside the timings
        fit_bayes(df, ASSET, list(FRENCH_FACTORS), draws=50, tune=50, seed=1, n_paths=0,
                  **options)  # fmt: skip
    cost = evaluation_cost(df)
    print("one log density + gradient (us, median), ratio to the constant model:")
    for name, us in cost.items():
        print(f"  {name:30s} {us:7.1f}  {us / cost['constant']:.2f}x")
    results = {"evaluation_us": cost, "fits": {}}
    assets = [*FRENCH_INDUSTRIES, *FRENCH_PORTFOLIOS] if args.assets == ["all"] else args.assets
    for asset, seed in ((asset, seed) for asset in assets for seed in args.seeds):
        results["fits"][f"{asset} {seed}"] = rows = fits(df, asset, seed, not args.no_sampled_mu)
        print(f"\nwarm fits, 4 x (1000 + 1000), {asset}, seed {seed}:")
        base = rows["constant"]["wall_s"]
        for name, row in rows.items():
            figures = "  ".join(f"{key} {value}" for key, value in row.items())
            print(f"  {name:30s} {figures}  ({row['wall_s'] / base:.2f}x the constant's wall)")
        if not args.no_sampled_mu:
            print("  (mu sampled: a stand-in filter and its compile; compare steps, divergences, "
                  "ESS)")
    _print_target_accept(results["fits"])
    if args.json:
        with open(args.json, "w") as fh:
            json.dump(results, fh, indent=1)


def _print_target_accept(rows: dict[str, dict[str, dict[str, float]]]) -> None:
    """Print mean-reverting fits at target_accept 0.7 against 0.8 over every asset and seed."""
    if len(rows) < 2:
        return
    low, default = "mean_reverting, target 0.7", "mean_reverting"
    print(f"\ntarget_accept 0.7 against 0.8, mean-reverting betas, {len(rows)} fits:")
    for key in ("steps", "wall_s", "bulk_ess", "tail_ess"):
        a, b = ([row[name][key] for row in rows.values()] for name in (default, low))
        print(f"  {key:9s} median {np.median(a):8.2f} -> {np.median(b):8.2f}, smallest "
              f"{min(a):8.2f} -> {min(b):8.2f}")
    print("  divergences " + " -> ".join(str(sum(row[name]["divergences"] for row in rows.values()))
                                        for name in (default, low)))  # fmt: skip


if __name__ == "__main__":
    main()
