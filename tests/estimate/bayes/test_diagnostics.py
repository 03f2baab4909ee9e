"""Convergence checks, LOO, predictive checks and plots of a BayesFit."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest

from tvbeta.data import simulate
from tvbeta.estimate.bayes import diagnostics as dg
from tvbeta.estimate.bayes.fit import fit_bayes

# PyMC starts its chain processes with fork(); Python 3.12 warns because numba has threads.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")


@pytest.fixture(scope="module")
def fits():
    sim = simulate(160, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                   seed=2)  # fmt: skip
    kw = dict(burn=6, chains=2, cores=2, sampler="pymc", n_paths=0)
    with warnings.catch_warnings(record=True) as caught_short:
        warnings.simplefilter("always")
        short = fit_bayes(sim.frame, "y", ["f1"], draws=40, tune=40, seed=1, **kw)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BayesConvergenceWarning)
        good = fit_bayes(sim.frame, "y", ["f1"], draws=500, tune=500, seed=2,
                         target_accept=0.95, **kw)  # fmt: skip
    return {"short": short, "good": good, "short_warnings": caught_short}


def test_too_short_a_run_warns_naming_the_failed_checks(fits):
    messages = [str(w.message) for w in fits["short_warnings"]
                if issubclass(w.category, dg.BayesConvergenceWarning)]  # fmt: skip
    assert len(messages) == 1
    assert "ESS < 400" in messages[0]
    report = dg.check_convergence(fits["short"], warn=False)
    assert not report.ok and report.problems


def test_summary_has_rhat_ess_and_mcse_for_every_parameter(fits):
    table = dg.summary(fits["good"])
    assert list(table.index) == ["sigma_eps", "sigma_beta[Intercept]", "sigma_beta[f1]"]
    for col in ("r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
        assert np.all(np.isfinite(table[col]))
    report = dg.check_convergence(fits["good"], warn=False)
    assert report.n_divergent == int(fits["good"].tree["sample_stats"]["diverging"].sum())
    assert report.bfmi.shape == (2,) and np.all(report.bfmi > 0)


def test_loo_gives_one_pareto_k_per_observed_step(fits):
    result = dg.loo(fits["good"])
    assert result.pareto_k.shape == (160 - 6,)
    assert np.isfinite(result.elpd) and result.se > 0
    ll = fits["good"].tree["log_likelihood"]["y"].values
    # elpd_loo is at most the log pointwise predictive density summed (p_loo >= 0)
    lppd = np.sum(np.log(np.mean(np.exp(ll.reshape(-1, ll.shape[-1])), axis=0)))
    assert result.elpd <= lppd + 1e-8


def test_posterior_predictive_check_puts_the_data_inside_the_replicates(fits):
    table = dg.posterior_predictive_check(fits["good"], seed=3)
    for stat in ("sd", "mean"):
        row = table.loc[stat]
        assert row["replicated_q05"] <= row["observed"] <= row["replicated_q95"], stat
    assert table["p_value"].between(0, 1).all()


@pytest.mark.skipif(importlib.util.find_spec("matplotlib") is None, reason="needs matplotlib")
def test_trace_and_rank_plots_return_plot_collections_and_save_png(fits, tmp_path):
    import arviz as az

    for plot, name in ((dg.plot_trace, "trace.png"), (dg.plot_rank, "rank.png")):
        pc = plot(fits["good"], tmp_path / name)
        assert isinstance(pc, az.PlotCollection)
        assert (tmp_path / name).stat().st_size > 1000
