"""pymc-extras statespace peer of `bench.bayes`, run with the peer venv's Python (no tvbeta).

Usage: ``/work/bench-venv/bin/python bench/bayes_peer.py case.json out.json``. The case file
(written by `bench.bayes.run_peer`) holds y, Z, a0, P0, burn, prior scales and sampler
settings. Model: ``(Regression(innovations=True) + MeasurementError).build()`` with the same
priors as tvbeta's defaults (sigma_beta_beta ~ HalfNormal(tvbeta's scales), sigma_obs ~
HalfNormal(tvbeta's scale)) and the initial state fixed at tvbeta's (beta_beta = a0, P0).
Differences: pymc-extras' first state is N(a0, P0) where tvbeta's is N(a0, P0 + Q), and
pymc-extras has no burn, so its likelihood also counts the first ``burn`` terms (P0 is wide, so
these matter little for the timing comparison). Sampler: nutpie (numba), cores=2.
"""

from __future__ import annotations

import json
import sys
import time
import warnings


def main(case_path: str, out_path: str) -> None:
    t0 = time.perf_counter()
    import arviz as az
    import numpy as np
    import pymc as pm
    import pytensor.tensor as pt
    from pymc_extras.statespace import structural as st

    t_import = time.perf_counter() - t0
    case = json.loads(open(case_path).read())
    y, Z = np.asarray(case["y"]), np.asarray(case["Z"])
    k = Z.shape[1]
    names = [f"s{i}" for i in range(k)]
    t1 = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        mod = (st.Regression(name="beta", state_names=names, innovations=True)
               + st.MeasurementError(name="obs")).build(verbose=False)  # fmt: skip
        with pm.Model(coords=mod.coords):
            pm.Data("data_beta", Z, dims=("time", "state_beta"))
            pm.Deterministic("beta_beta", pt.as_tensor(np.asarray(case["a0"])),
                             dims="state_beta")  # fmt: skip
            pm.Deterministic("P0", pt.as_tensor(np.asarray(case["P0"])),
                             dims=("state", "state_aux"))  # fmt: skip
            pm.HalfNormal("sigma_beta_beta", sigma=np.asarray(case["sigma_beta"]),
                          dims="state_beta")  # fmt: skip
            pm.HalfNormal("sigma_obs", sigma=case["sigma_eps"])
            mod.build_statespace_graph(data=y[:, None])
            tree = pm.sample(draws=case["draws"], tune=case["tune"], chains=case["chains"],
                             cores=2, random_seed=1, nuts_sampler="nutpie", progressbar=False,
                             quiet=True, compute_convergence_checks=False)  # fmt: skip
    wall = time.perf_counter() - t1
    table = az.summary(tree, var_names=["sigma_beta_beta", "sigma_obs"], round_to="none")
    figures = {
        "import_s": t_import, "fit_wall_s": wall,
        "sampling_time_s": float(tree["posterior"].attrs.get("sampling_time", float("nan"))),
        "min_ess_bulk": float(table["ess_bulk"].min()), "max_rhat": float(table["r_hat"].max()),
        "divergences": int(tree["sample_stats"]["diverging"].sum()),
        "posterior_mean": {str(i): float(v) for i, v in table["mean"].items()},
    }  # fmt: skip
    open(out_path, "w").write(json.dumps(figures))


if __name__ == "__main__":
    main(sys.argv[1], sys.argv[2])
