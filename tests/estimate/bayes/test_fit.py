"""fit_bayes: recovery of known Q and R, agreement with the MLE, beta paths, save and load.

Small settings (n 150-360, k <= 3, 2 chains x 300-500 draws) keep each fit at a few seconds;
most use PyMC's sampler, so that the default one (nutpie, also tested here and in
test_sampler.py) is checked against an independent NUTS implementation.
"""

from __future__ import annotations

import logging
import warnings

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm
import xarray as xr
from scipy.stats import binom
from tests.model.nile import DK_Q, DK_R, nile_frame

from tvbeta.data import load_french, load_seed_weekly, shared_data_dir, simulate
from tvbeta.estimate.bayes.diagnostics import BayesConvergenceWarning, check_convergence
from tvbeta.estimate.bayes.fit import (
    BayesFit,
    fit_bayes,
    fit_spec,
    settings_line,
)
from tvbeta.estimate.bayes.model import BayesSpec, bayes_spec
from tvbeta.estimate.bayes.priors import Prior, Priors
from tvbeta.estimate.mle import fit_mle, fit_qr
from tvbeta.kalman import StateSpace, kalman_smoother
from tvbeta.model import KalmanSpec
from tvbeta.nuts import SamplerSettings, nutpie_available

SEED_TARGET = "Preferred Income (FPE)"
SEED_FACTORS = ["Preferred Stock (PFF)", "Convertibles (ICVT)"]
SMALL = dict(draws=400, tune=400, chains=2, cores=2, sampler="pymc")

# PyMC starts its chain processes with fork(); Python 3.12 warns because numba has threads.
pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")


def quiet_fit(*args, **kwargs) -> BayesFit:
    """fit_bayes with convergence warnings silenced (small test runs are meant to be short)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)
        return fit_bayes(*args, **kwargs)


def mle_of(spec: BayesSpec):
    """Joint MLE of (Q, R) with the spec's own a0, P0 and burn (the same likelihood)."""
    k = spec.k
    m = StateSpace(spec.y, spec.Z, spec.T[None], np.zeros((1, k, k)), np.ones(1), spec.a0,
                   spec.P0)  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_qr(m, q=spec.q, burn=spec.burn, state_names=spec.state_names)


def variance_draws(fit: BayesFit) -> np.ndarray:
    """(D, k + 1) posterior draws of the MLE's natural parameters: diag(Q) then R."""
    Q, R = fit.qr_draws()
    return np.column_stack([np.diagonal(Q, axis1=1, axis2=2), R])


def small_fit_frame():
    return simulate(150, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                    seed=11, missing_frac=0.02).frame  # fmt: skip


@pytest.fixture(scope="module")
def small_fit() -> BayesFit:
    return quiet_fit(small_fit_frame(), "y", ["f1"], burn=8, seed=5, n_paths=60,
                     posterior_predictive=True, prior_predictive=True, **SMALL)  # fmt: skip


def test_posterior_90pct_intervals_cover_true_q_and_r_at_nominal_rate():
    """4 simulated data sets x 3 parameters: coverage of 90% equal-tailed intervals.

    Under calibration the number covered is Binomial(12, 0.9); >= 8 fails with probability
    about 2.6% for a calibrated method (the seeds are fixed, so the test is deterministic).
    """
    truth = {"sigma_eps": 0.01, "sigma_beta": np.array([0.04, 0.02])}
    covered = []
    for seed in range(4):
        sim = simulate(250, 2, Q=truth["sigma_beta"] ** 2, R=truth["sigma_eps"] ** 2,
                       beta0=[1.0, 0.5], seed=100 + seed)  # fmt: skip
        fit = quiet_fit(sim.frame, "y", ["f1", "f2"], intercept=False, burn=10, seed=seed,
                        n_paths=0, **SMALL)  # fmt: skip
        post = fit.tree["posterior"]
        for name, true in (("sigma_eps", [truth["sigma_eps"]]),
                           ("sigma_beta", truth["sigma_beta"])):  # fmt: skip
            draws = post[name].values.reshape(post.sizes["chain"] * post.sizes["draw"], -1)
            lo, hi = np.quantile(draws, [0.05, 0.95], axis=0)
            covered.extend((lo <= true) & (true <= hi))
    n_cov = int(np.sum(covered))
    print(f"90% interval coverage: {n_cov}/{len(covered)}")
    assert n_cov >= 8
    assert binom.cdf(7, len(covered), 0.9) < 0.01  # the bound is a real test


def test_nile_posterior_median_with_wide_priors_is_within_one_sd_of_the_mle():
    """Local level on the Nile (Durbin & Koopman 2012, ch. 2): MLE R = 15099, Q = 1469.1."""
    y = sm.datasets.nile.load_pandas().data["volume"].to_numpy(dtype=float)
    wide = Priors(sigma_eps=Prior("HalfNormal", {"sigma": 1000.0}),
                  sigma_beta=Prior("HalfNormal", {"sigma": 1000.0}),
                  a0=(y[0],), P0=((1e7,),))  # fmt: skip
    spec = BayesSpec.from_arrays(y, np.ones((len(y), 1)), intercept=True, priors=wide,
                                 burn=1, frequency=1, state_names=["level"])  # fmt: skip
    mle = mle_of(spec)
    np.testing.assert_allclose(mle.params, [1469.1, 15099.0], rtol=2e-3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)
        fit = fit_spec(spec, SamplerSettings(draws=500, tune=500, chains=2, cores=2,
                                             sampler="pymc", n_paths=0), seed=3)  # fmt: skip
    draws = variance_draws(fit)
    median, sd = np.median(draws, axis=0), draws.std(axis=0)
    print(f"Nile Q, R: posterior median {median}, sd {sd}, MLE {mle.params}")
    assert np.all(np.abs(median - mle.params) < sd)


def test_nile_from_a_frame_without_factors_posterior_median_is_within_one_sd_of_the_mle():
    """The public path of the local level: fit_bayes(df, "volume", [], intercept=True) with
    models/nile.toml's prior (intercept drift 0.25 sd(y) a year). Its MLE (same a0, P0, burn)
    is D&K's to 0.5% (the start is not diffuse: a0 = 1113, P0 sd 534)."""
    fit = quiet_fit(nile_frame(), "volume", [], intercept=True, burn=1, seed=6, n_paths=0,
                    priors={"intercept_drift_per_year": 0.25}, **SMALL)  # fmt: skip
    assert fit.spec.state_names == ("Intercept",) and fit.spec.k == 1
    mle = mle_of(fit.spec)
    np.testing.assert_allclose(mle.params, [DK_Q, DK_R], rtol=5e-3)
    draws = variance_draws(fit)
    median, sd = np.median(draws, axis=0), draws.std(axis=0)
    print(f"Nile (public path) Q, R: posterior median {median}, sd {sd}, MLE {mle.params}")
    assert np.all(np.abs(median - mle.params) < sd)


@pytest.mark.shared_data
@pytest.mark.skipif(shared_data_dir() is None, reason="seed data (../shared/data) absent")
def test_seed_case_posterior_median_with_wide_priors_is_within_one_sd_of_the_mle():
    df = load_seed_weekly()
    spec = bayes_spec(df, SEED_TARGET, SEED_FACTORS, burn=12)
    spec = bayes_spec(df, SEED_TARGET, SEED_FACTORS, burn=12, priors=wide_priors(spec))
    mle = mle_of(spec)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)
        fit = fit_spec(spec, SamplerSettings(draws=500, tune=500, chains=2, cores=2,
                                             sampler="pymc", n_paths=0), seed=4)  # fmt: skip
    draws = variance_draws(fit)
    median, sd = np.median(draws, axis=0), draws.std(axis=0)
    print(f"seed case diag(Q), R: posterior median {median}, sd {sd}, MLE {mle.params}")
    assert np.all(np.abs(median - mle.params) < sd)


DEMO_SERIES = ("NoDur", "Durbl", "Manuf", "Enrgy", "BusEq", "Hlth", "Money")


@pytest.mark.slow
def test_the_demos_bayes_fits_pass_every_convergence_check():
    """`tvbeta demo` must print no convergence warning (issue 10): its Bayes fits, as the
    comparison runs them (the seven industries' 210 training months on the Carhart factors,
    burn 5, the demo's 4 x (200 + 1000) draws, the default target_accept and priors, seed
    20240611 + i for the i-th series), each pass R-hat <= 1.01, bulk and tail ESS >= 400, no
    divergence, E-BFMI >= 0.3 (the thresholds of Vehtari et al. 2021 and Betancourt 2016 in
    `diagnostics`). With log-sd sampling and 4 x (400 + 400), 3 of 7 warned at this seed; with
    4 x (200 + 800) and the releases of 2026-12-01, Durbl (R-hat 1.012)."""
    from tvbeta.cli import DEMO_SAMPLER

    french = load_french(excess=True).loc["1992-04-01":"2017-03-31"].iloc[:210]
    for i, target in enumerate(DEMO_SERIES):
        with warnings.catch_warnings():
            warnings.simplefilter("error", BayesConvergenceWarning)
            fit = fit_bayes(french, target, ["MktRF", "SMB", "HML", "Mom"], burn=5,
                            seed=20240611 + i, n_paths=0, **DEMO_SAMPLER)  # fmt: skip
        report = check_convergence(fit, warn=False)
        assert report.ok, (target, report.problems)


@pytest.mark.slow
@pytest.mark.shared_data
@pytest.mark.skipif(shared_data_dir() is None, reason="seed data (../shared/data) absent")
def test_the_issues_three_factor_seed_case_passes_every_check_with_the_draws_the_warning_advises():
    """Issue 13: FPE on PFF, ICVT and HYG (the seed's weekly ETFs) with every default and seed 1
    warned (R-hat, tail ESS 368 < 400 for sigma_beta[HYG]). The PFF and HYG drifts trade off
    (posterior correlation -0.46): chains make rare excursions to small sigma_beta[PFF] with large
    sigma_beta[HYG] (one chain of seed 6: 5% quantile of sigma_beta[PFF] 0.044 against 0.082 in
    the others). With nutpie's low-rank adaptation (`tvbeta.constants.NUTPIE_ADAPTATION`) and
    the default 4 x (1000 + 1000), seeds 1-12 pass on 10 (the two others: min tail ESS 182 and
    356, both sigma_beta[HYG]); a longer tuning (2000) does not help (10 of 12), twice the draws,
    which the warning advises, passes on 12 of 12: the thresholds of Vehtari et al. 2021 and
    Betancourt 2016 (`diagnostics`)."""
    df = load_seed_weekly()
    factors = ["Preferred Stock (PFF)", "Convertibles (ICVT)", "High Yield (HYG)"]
    with warnings.catch_warnings():
        warnings.simplefilter("error", BayesConvergenceWarning)
        fit = fit_bayes(df, SEED_TARGET, factors, seed=1, draws=2000, n_paths=0)
    report = check_convergence(fit, warn=False)
    assert report.ok, report.problems


def _seed_or_stand_in():
    if shared_data_dir() is not None:
        return load_seed_weekly(), SEED_TARGET, SEED_FACTORS, 12
    sim = simulate(365, ["PFF", "ICVT"], Q=[1e-8, 0.01, 3e-5], R=1.4e-5,
                   beta0=[0.0, 0.7, 0.1], intercept=True, seed=7)  # fmt: skip
    return sim.frame, "y", ["PFF", "ICVT"], 12


def wide_priors(spec: BayesSpec) -> Priors:
    """Scales 10x the defaults, same initial state: the likelihood dominates."""
    return Priors(
        sigma_eps=Prior("HalfNormal", {"sigma": 10 * spec.resolved.sigma_eps.params["sigma"]}),
        sigma_beta=Prior("HalfNormal", {
            "sigma": [10 * s for s in spec.resolved.sigma_beta.params["sigma"]]}),
        a0=tuple(spec.a0), P0=spec.P0.tolist(),
    )  # fmt: skip


def test_posterior_beta_bands_are_wider_than_plug_in_smoother_bands_at_the_mle():
    """Uncertainty about Q and R widens the beta bands (seed case, or a simulated stand-in).

    Wide priors isolate parameter uncertainty: with the default priors, a prior that pulls a
    well-identified Q below its MLE can offset it (the seed case's PFF beta: ratio 0.999).
    """
    df, target, factors, burn = _seed_or_stand_in()
    spec = bayes_spec(df, target, factors, burn=burn)
    fit = quiet_fit(df, target, factors, burn=burn, seed=6, n_paths=200,
                    priors=wide_priors(spec), **SMALL)  # fmt: skip
    mle = mle_of(fit.spec)
    s = fit.spec
    plug = kalman_smoother(s.y, s.Z, s.T[None], mle.Q[None], np.array([mle.R]), s.a0, s.P0)
    plug_sd = np.sqrt(np.diagonal(plug.P_smooth, axis1=1, axis2=2))[burn:].mean(axis=0)
    post_sd = fit.beta["smoothed_sd"].values.mean(axis=0)  # Rao-Blackwellised: low noise
    band = (fit.beta["smoothed_q95"] - fit.beta["smoothed_q05"]).values.mean(axis=0)
    print(f"posterior / plug-in sd of smoothed betas: {post_sd / plug_sd}; "
          f"90% band / plug-in band: {band / (2 * 1.645 * plug_sd)}")
    assert np.all(post_sd > plug_sd)
    # the quantile band (200 paths: ~6% Monte Carlo error) agrees with the sd, to that error
    np.testing.assert_allclose(band, 2 * 1.645 * post_sd, rtol=0.15)
    # the posterior mean path is close to the plug-in path (same data, same model)
    assert np.abs(fit.beta["smoothed_mean"].values - plug.a_smooth[burn:]).mean(axis=0)[1] < 0.1


def test_beta_paths_are_labelled_and_ordered_and_filtered_bands_are_wider(small_fit):
    beta = small_fit.beta
    assert set(beta.dims) == {"time", "state"}
    assert beta.sizes["time"] == 150 - 8
    assert list(beta["state"].values) == ["Intercept", "f1"]
    for kind in ("filtered", "smoothed"):
        assert np.all(beta[f"{kind}_q05"] <= beta[f"{kind}_q50"])
        assert np.all(beta[f"{kind}_q50"] <= beta[f"{kind}_q95"])
    width = {k: float((beta[f"{k}_q95"] - beta[f"{k}_q05"]).sel(state="f1").mean())
             for k in ("filtered", "smoothed")}  # fmt: skip
    assert width["filtered"] > width["smoothed"]  # real-time knows less than hindsight


def test_every_labelled_output_of_a_fit_has_the_dims_of_the_one_table(small_fit):
    """Posterior variables (after chain, draw), the observed variable in every group, and the
    beta paths: their dims are those `constants.DIMS` lists, which the labelled layer reads."""
    from tvbeta.constants import DIMS

    tree = small_fit.tree
    for name, var in tree["posterior"].data_vars.items():
        assert var.dims == ("chain", "draw", *DIMS[name]), name
    for group in ("log_likelihood", "posterior_predictive", "observed_data"):
        assert tree[group]["y"].dims[-1:] == DIMS["y"], group
    assert {var.dims for var in small_fit.beta.data_vars.values()} == {DIMS["beta_path"]}


def test_fit_holds_posterior_log_likelihood_predictive_and_observed_groups(small_fit):
    tree = small_fit.tree
    for group in ("posterior", "sample_stats", "log_likelihood", "observed_data", "prior",
                  "prior_predictive", "posterior_predictive"):  # fmt: skip
        assert group in tree.children, group
    n_observed = small_fit_frame()["y"].iloc[8:].notna().sum()  # burn 8, a few returns NaN
    assert n_observed < 142
    assert tree["log_likelihood"]["y"].shape == (2, 400, n_observed)
    assert tree["posterior_predictive"]["y"].shape == (2, 400, n_observed)
    assert small_fit.settings["sampler"] == "pymc" and small_fit.settings["cores"] == 2


def test_fit_settings_and_their_line_say_what_ran(small_fit):
    """Issue 13 ("say what it runs"): the settings record the sampler's settings and the burn
    the caller gave (`small_fit`: PyMC, 2 x (400 + 400), burn 8, seed 5; PyMC's NUTS adapts a
    diagonal mass matrix), and `settings_line` states them in one line."""
    s = small_fit.settings
    ran = {"sampler": "pymc", "chains": 2, "tune": 400, "draws": 400, "burn": 8, "seed": 5,
           "target_accept": 0.8, "adaptation": "diag"}  # fmt: skip
    assert {key: s[key] for key in ran} == ran
    assert settings_line(s).startswith(
        "NUTS (pymc, diag mass matrix): 2 chains x (400 tune + 400 draws), target_accept 0.8, "
        "seed 5, burn 8, "
    )


def test_a_fit_records_the_sampler_settings_it_was_given_also_after_save_and_load(small_fit,
                                                                               tmp_path):
    """`small_fit` was given SMALL (sampler and cores explicit: nothing left to resolve) and
    n_paths 60 as keywords: the object they make is the one the fit records."""
    given = SamplerSettings(**SMALL, n_paths=60)
    assert small_fit.sampler_settings == given
    assert BayesFit.load(small_fit.save(tmp_path / "fit.nc")).sampler_settings == given


def test_a_settings_object_gives_the_draws_of_the_same_keywords():
    """Same seed, same settings: the keyword path (the pre-existing API) is the reference."""
    kw = dict(draws=50, tune=50, chains=2, cores=2, sampler="pymc", n_paths=0, check=False)
    by_keywords = fit_bayes(small_fit_frame(), "y", ["f1"], seed=2, **kw)
    nuts = SamplerSettings(**{k: v for k, v in kw.items() if k != "check"})
    by_object = fit_bayes(small_fit_frame(), "y", ["f1"], seed=2, settings=nuts, check=False)
    np.testing.assert_array_equal(variance_draws(by_object), variance_draws(by_keywords))


@pytest.mark.skipif(not nutpie_available(), reason="nutpie not installed")
def test_default_nutpie_fit_adapts_a_low_rank_mass_matrix_and_logs_its_settings(caplog):
    """A default fit (nutpie) runs the low-rank mass-matrix adaptation
    (`tvbeta.constants.NUTPIE_ADAPTATION`): nutpie itself then stores the rank of its low-rank
    correction (``num_eigenvalues``, absent from a diagonal run's sample stats); the settings
    record it and one INFO line states the settings."""
    sim = simulate(150, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                   seed=21)  # fmt: skip
    with caplog.at_level(logging.INFO, logger="tvbeta.estimate.bayes.fit"):
        fit = quiet_fit(sim.frame, "y", ["f1"], burn=5, draws=100, tune=200, chains=2, seed=1,
                        n_paths=0)  # fmt: skip
    assert "num_eigenvalues" in fit.tree["sample_stats"]
    assert fit.settings["adaptation"] == "low_rank"
    assert [r.getMessage() for r in caplog.records] == [settings_line(fit.settings)]
    assert "nutpie, low_rank mass matrix" in caplog.records[0].getMessage()


@pytest.mark.skipif(not nutpie_available(), reason="nutpie not installed")
def test_default_nutpie_fit_of_mean_reverting_betas_adapts_a_diagonal_mass_matrix():
    """Mean-reverting betas run nutpie's diagonal adaptation
    (`tvbeta.constants.NUTPIE_ADAPTATION_REVERTING`: the low-rank one's early window cost them
    a third more time at no gain in ESS): no low-rank correction in the sample stats, and the
    settings say so."""
    sim = simulate(150, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                   seed=21)  # fmt: skip
    fit = quiet_fit(sim.frame, "y", ["f1"], burn=5, draws=100, tune=200, chains=2, seed=1,
                    n_paths=0, betas="mean_reverting")  # fmt: skip
    assert "num_eigenvalues" not in fit.tree["sample_stats"]
    assert fit.settings["adaptation"] == "diag"


def test_half_life_is_log_2_over_minus_log_phi_annual_at_its_posterior_quantiles(small_fit):
    """`BayesFit.half_life` of mean-reverting betas: log 2 / -log q_p(phi_annual), in years, at
    the posterior median and 5% / 95% quantiles of the one-year persistence (computed here
    from the draws); a random-walk fit has none and says how to get one."""
    sim = simulate(150, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                   seed=21)  # fmt: skip
    fit = quiet_fit(sim.frame, "y", ["f1"], burn=5, draws=100, tune=200, chains=2, seed=1,
                    n_paths=0, betas="mean_reverting")  # fmt: skip
    got = fit.half_life()
    draws = fit.tree["posterior"]["phi_annual"].values.reshape(-1, 2)
    for column, p in (("median", 0.5), ("5%", 0.05), ("95%", 0.95)):
        expected = np.log(2.0) / -np.log(np.quantile(draws, p, axis=0))
        np.testing.assert_allclose(got[column].to_numpy(), expected, rtol=1e-12)
    assert list(got.index) == ["Intercept", "f1"] and got.index.name == "state"
    with pytest.raises(ValueError, match='half_life needs mean-reverting betas: fit with '
                       'betas="mean_reverting"'):  # fmt: skip
        small_fit.half_life()


def test_save_then_load_round_trips_every_group_path_summary_and_setting(small_fit, tmp_path):
    path = small_fit.save(tmp_path / "fit.nc")
    loaded = BayesFit.load(path)
    xr.testing.assert_identical(loaded.tree, small_fit.tree)
    xr.testing.assert_identical(loaded.beta, small_fit.beta)
    assert loaded.settings == small_fit.settings
    a, b = loaded.spec, small_fit.spec
    assert a.index.equals(b.index) and (a.index.name, a.index.dtype) == (b.index.name,
                                                                         b.index.dtype)
    for name in ("y", "Z", "T", "a0", "P0"):
        np.testing.assert_array_equal(getattr(a, name), getattr(b, name))
    assert (a.state_names, a.burn, a.ppy, a.q, a.intercept) == (
        b.state_names, b.burn, b.ppy, b.q, b.intercept)  # fmt: skip
    assert a.priors == b.priors and a.resolved == b.resolved
    assert (a.target_col, a.factor_cols) == (b.target_col, b.factor_cols)
    # the file is closed: it can be overwritten and deleted
    small_fit.save(path)
    path.unlink()
    # the rebuilt model gives the same log density
    point = small_fit.model().initial_point()
    assert loaded.model().compile_logp()(point) == small_fit.model().compile_logp()(point)


@pytest.mark.parametrize("unit", ["us", "s"])
def test_a_fit_on_dates_of_another_resolution_reloads_with_the_same_dates(unit, tmp_path):
    """pandas reads a CSV's dates at microseconds, NetCDF gives nanoseconds back: a fresh
    user's reloaded alpha table then failed `assert_frame_equal` on the index's dtype."""
    frame = small_fit_frame()
    frame.index = frame.index.as_unit(unit)
    fit = quiet_fit(frame, "y", ["f1"], burn=8, seed=5, draws=30, tune=30, chains=1, n_paths=20)
    loaded = BayesFit.load(fit.save(tmp_path / "fit.nc"))
    assert loaded.spec.index.dtype == f"datetime64[{unit}]"
    xr.testing.assert_identical(loaded.tree, fit.tree)
    xr.testing.assert_identical(loaded.beta, fit.beta)
    pd.testing.assert_frame_equal(loaded.alpha_probability(), fit.alpha_probability())


@pytest.mark.skipif(not nutpie_available(), reason="nutpie not installed")
def test_nutpie_and_pymc_samplers_agree_and_auto_picks_nutpie():
    sim = simulate(200, 1, Q=[1e-6, 0.03**2], R=0.01**2, beta0=[0.0, 1.0], intercept=True,
                   seed=21)  # fmt: skip
    kw = dict(burn=5, draws=500, tune=500, chains=2, cores=2, n_paths=0)
    fits = {s: quiet_fit(sim.frame, "y", ["f1"], seed=1, sampler=s, **kw) for s in ("auto", "pymc")}
    assert fits["auto"].settings["sampler"] == "nutpie"
    med = {s: np.median(variance_draws(f), axis=0) for s, f in fits.items()}
    sd = variance_draws(fits["pymc"]).std(axis=0)
    assert np.all(np.abs(med["auto"] - med["pymc"]) < 0.5 * sd)
    assert "diverging" in fits["auto"].tree["sample_stats"]


def test_full_q_fit_gives_positive_definite_q_draws_and_beta_paths():
    sim = simulate(150, 1, Q=[[1e-6, 0.0], [0.0, 0.03**2]], R=0.01**2, beta0=[0.0, 1.0],
                   intercept=True, seed=12)  # fmt: skip
    fit = quiet_fit(sim.frame, "y", ["f1"], q="full", burn=5, seed=2, n_paths=40,
                    draws=300, tune=300, chains=2, cores=2, sampler="pymc")  # fmt: skip
    assert fit.tree["posterior"]["Q"].dims == ("chain", "draw", "state", "state_")
    Q, R = fit.qr_draws()
    assert Q.shape == (600, 2, 2) and R.shape == (600,)
    assert np.all(np.linalg.eigvalsh(Q)[:, 0] > 0)
    assert np.isfinite(fit.beta["smoothed_mean"]).all()


def test_qr_summary_uses_the_mle_names_and_variance_units(small_fit):
    """Rows match fit_mle's parameter names; values are variances: the median of R is the
    median of sigma_eps^2 read straight from the posterior group."""
    table = small_fit.qr_summary()
    mle = fit_mle(small_fit_frame(), "y", ["f1"], burn=8,
                  spec=KalmanSpec.from_parts(small_fit.spec.model))
    assert list(table.index) == list(mle.params.index)
    sigma_eps = small_fit.tree["posterior"]["sigma_eps"].values.ravel()
    assert table.loc["R", "posterior median"] == pytest.approx(np.median(sigma_eps**2), rel=1e-12)
    assert list(table.columns) == ["posterior mean", "posterior sd", "posterior median", "5%",
                                   "95%"]  # fmt: skip


def test_default_burn_and_frequency_are_recorded_and_survive_save_and_load(tmp_path):
    """fit_bayes without burn leaves K = 2 observed steps out (intercept + one factor),
    the default of fit_mle; settings say so, and the weekly frequency pandas reads from the
    dates (7 days apart: 52 periods a year); a reloaded fit has both."""
    frame = small_fit_frame()
    assert (frame.index.to_series().diff().dropna() == pd.Timedelta(days=7)).all()
    fit = quiet_fit(frame, "y", ["f1"], seed=1, draws=30, tune=30, chains=1, cores=1,
                    sampler="pymc", n_paths=0, check=False)  # fmt: skip
    assert fit.settings["burn"] == 2 == fit_mle(frame, "y", ["f1"]).burn
    assert fit.settings["frequency"] == 52
    n_terms = frame["y"].notna().sum() - 2
    assert fit.tree["log_likelihood"]["y"].sizes["time"] == n_terms
    loaded = BayesFit.load(fit.save(tmp_path / "fit.nc"))
    assert (loaded.settings["burn"], loaded.settings["frequency"]) == (2, 52)


def test_fit_repr_is_short_and_summary_is_the_q_r_posterior(small_fit):
    """The repr (burn 8) states the observed steps and their span as pandas counts them on
    the input frame, and the sampler run; summary() is the Q/R table, one row per MLE
    parameter like MLEFit.summary()."""
    frame = small_fit_frame()
    observed = frame.index[frame["y"].notna()]
    text = repr(small_fit)
    first, last = observed[8].strftime("%Y-%m-%d"), observed[-1].strftime("%Y-%m-%d")
    assert f"{len(observed) - 8} observed steps {first} .. {last}" in text
    assert "burn=8" in text and "pymc: 2 chains x 400 draws after 400 tuning steps" in text
    assert len(text) < 400 and text.count("\n") <= 2
    summary = small_fit.summary()
    assert isinstance(summary, pd.DataFrame)
    assert list(summary.index) == ["Q[Intercept]", "Q[f1]", "R"]
    sigma_eps = small_fit.tree["posterior"]["sigma_eps"].values.ravel()
    assert summary.loc["R", "posterior mean"] == pytest.approx(np.mean(sigma_eps**2), rel=1e-12)
