"""Convergence checks, LOO, predictive checks and plots of a BayesFit."""

from __future__ import annotations

import importlib.util
import warnings

import numpy as np
import pytest
import xarray as xr

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


def test_convergence_warning_names_parameters_as_the_summary_shows_them(fits):
    """The user reads Q[state] and R in `BayesFit.summary` (`QRParameterization.natural_names`);
    the warning names those, each with the sampled sd it diagnosed. 2 x 40 draws: tail ESS
    < 400 for some parameter (the table says which)."""
    message = next(str(w.message) for w in fits["short_warnings"]
                   if issubclass(w.category, dg.BayesConvergenceWarning))  # fmt: skip
    assert list(fits["short"].summary().index) == ["Q[Intercept]", "Q[f1]", "R"]
    shown = {"sigma_beta[Intercept]": "Q[Intercept] (sigma_beta[Intercept])",
             "sigma_beta[f1]": "Q[f1] (sigma_beta[f1])", "sigma_eps": "R (sigma_eps)"}
    table = dg.summary(fits["short"])
    low = table.index[table["ess_tail"] < dg.ESS_MIN]
    assert len(low) > 0
    tail_line = next(line for line in message.splitlines() if "tail ESS" in line)
    assert all(shown[name] in tail_line for name in low)


def test_a_one_chain_fit_says_rhat_was_not_checked_instead_of_chains_disagreeing():
    """R-hat compares chains (Vehtari et al. 2021): with one there is nothing to compare."""
    sim = simulate(60, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                   seed=5)  # fmt: skip
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit_bayes(sim.frame, "y", ["f1"], burn=4, draws=30, tune=30, chains=1, cores=1,
                  sampler="pymc", n_paths=0, seed=1)  # fmt: skip
    messages = [str(w.message) for w in caught
                if issubclass(w.category, dg.BayesConvergenceWarning)]  # fmt: skip
    assert len(messages) == 1
    assert "R-hat not checked: it compares chains and this fit has 1" in messages[0]
    assert "chains disagree" not in messages[0]


def test_convergence_warning_points_at_the_callers_line(fits):
    """The fixture above calls fit_bayes from this file: the warning names this file, not
    tvbeta's diagnostics module (`warnings.WarningMessage.filename`)."""
    caught = [w for w in fits["short_warnings"]
              if issubclass(w.category, dg.BayesConvergenceWarning)]  # fmt: skip
    assert [w.filename for w in caught] == [__file__]


def test_draws_of_variables_with_different_dims_keep_their_own_labels():
    """check_draws over mu (state), w (fund) and x (fund, state), x's draws centred on
    10 j + i for fund j, state i: each row's mean is the one its label names (ArviZ 1.3
    alone, asked for the three at once, labels x fund-major over values laid out state-major)."""
    rng = np.random.default_rng(0)
    x = 10.0 * np.arange(3)[:, None] + np.arange(2)[None, :] \
        + 0.01 * rng.standard_normal((2, 50, 3, 2))
    post = xr.Dataset(
        {"mu": (("chain", "draw", "state"), rng.normal(size=(2, 50, 2))),
         "w": (("chain", "draw", "fund"), rng.normal(size=(2, 50, 3))),
         "x": (("chain", "draw", "fund", "state"), x)},
        coords={"fund": ["A", "B", "C"], "state": ["s0", "s1"]})  # fmt: skip
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((2, 50), bool))})})  # fmt: skip
    table = dg.check_draws(tree, ["mu", "w", "x"], what="test", warn=False).summary
    for j, fund in enumerate("ABC"):
        for i in range(2):
            assert table.loc[f"x[{fund}, s{i}]", "mean"] == pytest.approx(10 * j + i, abs=0.01)


def test_a_warning_names_six_parameters_and_counts_the_rest():
    """50 draws of 2 chains: bulk ESS < 400 for each of 20 funds' x; the warning lists six
    of them and says how many more (it listed all: a pooled fit's ran to pages)."""
    rng = np.random.default_rng(1)
    post = xr.Dataset({"x": (("chain", "draw", "fund"), rng.normal(size=(2, 50, 20)))},
                      coords={"fund": [f"f{j:02d}" for j in range(20)]})  # fmt: skip
    tree = xr.DataTree.from_dict({"posterior": post, "sample_stats": xr.Dataset(
        {"diverging": (("chain", "draw"), np.zeros((2, 50), bool))})})  # fmt: skip
    with pytest.warns(dg.BayesConvergenceWarning) as caught:
        dg.check_draws(tree, ["x"], what="test")
    bulk = next(line for line in str(caught[0].message).splitlines() if "bulk ESS" in line)
    assert bulk.startswith("- bulk ESS < 400 for x[f00], x[f01], x[f02], x[f03], x[f04], "
                           "x[f05] and 14 more (all 20 in the summary of the ConvergenceReport")


def test_summary_has_rhat_ess_and_mcse_for_every_parameter(fits):
    table = dg.summary(fits["good"])
    assert list(table.index) == ["sigma_eps", "sigma_beta[Intercept]", "sigma_beta[f1]"]
    for col in ("r_hat", "ess_bulk", "ess_tail", "mcse_mean"):
        assert np.all(np.isfinite(table[col]))
    report = fits["good"].check_convergence(warn=False)  # = dg.check_convergence(fit)
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


# --- a missing return ------------------------------------------------------------------------

GAP_BURN, GAP_ROW = 2, 40


@pytest.fixture(scope="module")
def gappy():
    """80 weekly returns on one factor, the return at row 40 missing; the default sampler."""
    frame = simulate(80, ["f1"], Q=[1e-7, 4e-4], R=1e-4, beta0=[0.001, 0.9], intercept=True,
                     seed=3).frame  # fmt: skip
    frame.iloc[GAP_ROW, frame.columns.get_loc("y")] = np.nan
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", dg.BayesConvergenceWarning)
        fit = fit_bayes(frame, "y", ["f1"], burn=GAP_BURN, draws=200, tune=200, chains=2,
                        cores=2, seed=1, n_paths=10, posterior_predictive=True)  # fmt: skip
    return frame, fit


def _statsmodels_terms(fit) -> np.ndarray:
    """(draws, rows) log p(y_t | y_<t, Q, R) by statsmodels' filter (the oracle of
    `statsmodels_twin`) at every posterior draw, on the fit's data and initial state."""
    from tvbeta.estimate.statsmodels_twin import statsmodels_filter

    s = fit.spec
    Q, R = fit.qr_draws()
    return np.array([statsmodels_filter(s.y, s.Z, s.T[None], Q[d][None], [R[d]], s.a0,
                                        s.P0).loglik_t for d in range(len(R))])  # fmt: skip


def test_a_missing_return_has_no_log_likelihood_term_and_every_group_skips_it(gappy, tmp_path):
    frame, fit = gappy
    observed = frame.index[GAP_BURN:].drop(frame.index[GAP_ROW])  # 77 dates
    for group in ("log_likelihood", "observed_data", "posterior_predictive"):
        y = fit.tree[group]["y"]
        assert (y["time"].values == observed.values).all(), group
        assert np.isfinite(y.values).all(), group
    np.testing.assert_array_equal(fit.tree["observed_data"]["y"].values,
                                  frame["y"].loc[observed].to_numpy())  # fmt: skip
    # the group holds what statsmodels' filter gives at each draw, on the observed steps
    ll = fit.tree["log_likelihood"]["y"].values.reshape(-1, len(observed))
    ref = _statsmodels_terms(fit)
    keep = frame.index.get_indexer(observed)
    np.testing.assert_allclose(ll, ref[:, keep], rtol=1e-9, atol=1e-11)
    # PyMC's own pointwise log-likelihood of the model has the same layout and values
    import pymc as pm

    tree = fit.tree.copy()
    with fit.model():
        pm.compute_log_likelihood(tree, extend_inferencedata=True, progressbar=False)
    xr_ll = tree["log_likelihood"]["y"]
    assert (xr_ll["time"].values == observed.values).all()
    np.testing.assert_allclose(xr_ll.values, fit.tree["log_likelihood"]["y"].values, rtol=1e-10)
    assert len(fit.beta["time"]) == 80 - GAP_BURN  # the beta paths still cover every row
    path = fit.save(tmp_path / "fit.nc")
    xr.testing.assert_identical(type(fit).load(path).tree, fit.tree)


def test_loo_with_a_missing_return_is_psis_loo_over_the_observed_terms(gappy):
    """Reference: ArviZ's PSIS-LOO on a DataTree built here from statsmodels' terms at the
    same draws, without the missing week's column (and the burn rows)."""
    import arviz as az

    frame, fit = gappy
    observed = frame.index[GAP_BURN:].drop(frame.index[GAP_ROW])
    post = fit.tree["posterior"]
    shape = (post.sizes["chain"], post.sizes["draw"], len(observed))
    ref_ll = _statsmodels_terms(fit)[:, frame.index.get_indexer(observed)].reshape(shape)
    by_hand = xr.DataTree.from_dict({
        "posterior": post.to_dataset(),
        "log_likelihood": xr.Dataset({"y": (("chain", "draw", "time"), ref_ll)},
                                     coords={"time": observed.values}),
    })  # fmt: skip
    want = az.loo(by_hand, pointwise=True)
    for got in (dg.loo(fit), az.loo(fit.tree, pointwise=True)):
        assert got.elpd == pytest.approx(want.elpd, rel=1e-9)
        assert got.se == pytest.approx(want.se, rel=1e-9)
        assert got.pareto_k.shape == (77,)
        np.testing.assert_allclose(got.elpd_i.values, want.elpd_i.values, rtol=1e-9)
