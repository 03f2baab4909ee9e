"""Simulation-based calibration (Talts et al. 2018) of the Bayesian fit.

Repeat: draw (sigma_eps, sigma_beta) from the prior, simulate returns from the state-space
model with them (beta_{-1} ~ N(a0, P0)), fit, and record the rank of each true value among
L thinned posterior draws. For a correct sampler and likelihood the ranks are uniform on
0..L. Slow (a few seconds per fit), so it runs only when TVBETA_SBC is set to the number of
simulations, e.g. ``TVBETA_SBC=100 pytest tests/estimate/bayes/test_sbc.py -s``.
"""

from __future__ import annotations

import os
import warnings
from dataclasses import replace

import numpy as np
import pytest
from scipy.stats import chisquare

from tvbeta.estimate.bayes.diagnostics import BayesConvergenceWarning
from tvbeta.estimate.bayes.fit import fit_spec
from tvbeta.estimate.bayes.model import BayesSpec, simulate_returns
from tvbeta.estimate.bayes.priors import Prior, Priors

N_SIMS = int(os.environ.get("TVBETA_SBC", "0"))
L = 99  # thinned draws per fit: ranks in 0..99, 10 bins of 10
pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(N_SIMS == 0, reason="set TVBETA_SBC=<number of simulations> to run"),
    pytest.mark.filterwarnings("ignore:This process .* is multi-threaded"),
]


def sbc_spec(seed: int, n: int = 120) -> BayesSpec:
    """A fixed design (intercept + one factor) with fixed, data-independent priors and start."""
    rng = np.random.default_rng(seed)
    Z = np.column_stack([np.ones(n), 0.02 * rng.standard_normal(n)])
    priors = Priors(sigma_eps=Prior("HalfNormal", {"sigma": 0.01}),
                    sigma_beta=Prior("HalfNormal", {"sigma": [0.001, 0.05]}),
                    a0=(0.0, 1.0), P0=((1e-4, 0.0), (0.0, 0.25)))  # fmt: skip
    # burn=0: the proper prior N(a0, P0) is part of the model that is simulated from
    return BayesSpec.from_arrays(np.zeros(n), Z, intercept=True, priors=priors, frequency=52,
                                 state_names=["Intercept", "f1"], burn=0)  # fmt: skip


def sbc_ranks(n_sims: int, seed: int = 0) -> np.ndarray:
    """(n_sims, 3) ranks of sigma_eps, sigma_beta[0], sigma_beta[1]."""
    base = sbc_spec(seed)
    rng = np.random.default_rng(seed)
    ranks = []
    for i in range(n_sims):
        sigma_eps = abs(rng.normal(0, 0.01))
        sigma_beta = np.abs(rng.normal(0, [0.001, 0.05]))
        y = simulate_returns(base, np.diag(sigma_beta**2), sigma_eps**2, rng)
        spec = replace(base, y=y)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", BayesConvergenceWarning)
            # the default sampler (nutpie), as users get it
            fit = fit_spec(spec, draws=500, tune=500, chains=2, cores=2, seed=i, n_paths=0)
        post = fit.tree["posterior"]
        draws = np.column_stack([post["sigma_eps"].values.reshape(-1),
                                 post["sigma_beta"].values.reshape(-1, 2)])  # fmt: skip
        thin = draws[np.linspace(0, len(draws) - 1, L).astype(int)]
        ranks.append((thin < np.r_[sigma_eps, sigma_beta]).sum(axis=0))
    return np.array(ranks)


def test_sbc_ranks_of_q_and_r_are_uniform():
    ranks = sbc_ranks(N_SIMS)
    for j, name in enumerate(["sigma_eps", "sigma_beta[Intercept]", "sigma_beta[f1]"]):
        counts = np.bincount(ranks[:, j] // 10, minlength=10)
        p = chisquare(counts).pvalue
        print(f"SBC {name}: rank histogram {counts.tolist()}, chi-square p = {p:.3f}")
        assert p > 0.001, name
