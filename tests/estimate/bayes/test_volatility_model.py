"""The Bayes model with a volatility-scaled R_t = sigma_eps^2 h_t^gamma (``noise="volatility"``):
its likelihood against statsmodels, recovery of a known gamma, a small SBC, save and load."""

from __future__ import annotations

import warnings
from dataclasses import replace
from types import SimpleNamespace

import numpy as np
import pytest
from scipy.stats import chi2, chisquare
from tests.estimate.bayes.test_model import at
from tests.model.test_volatility import reference_raw_log_h

from tvbeta.estimate.bayes.diagnostics import BayesConvergenceWarning, check_convergence
from tvbeta.estimate.bayes.fit import BayesFit, fit_spec
from tvbeta.estimate.bayes.model import BayesSpec, model_from_spec
from tvbeta.estimate.bayes.priors import Prior, Priors
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.model.volatility import VolatilityIndex
from tvbeta.nuts import SamplerSettings

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
INDEX = VolatilityIndex(10, 4.0, offset=float(np.log(1e-4)))
"""The index of the simulations: short, so that it exists from step 10 of short series."""


def simulate(seed: int, n: int, sigma_eps: float, gamma: float, sigma_beta) -> tuple:
    """y from the model itself, step by step: R_t = sigma_eps^2 h_t^gamma with h_t computed
    by INDEX from the simulated y_{<t} (it is 1 before the index exists), betas a random walk
    from (0, 1). Returns (y (n,), Z (n, 2))."""
    rng = np.random.default_rng(seed)
    Z = np.column_stack([np.ones(n), 0.03 * rng.standard_normal(n)])
    beta = np.r_[0.0, 1.0] + np.cumsum(np.asarray(sigma_beta) * rng.standard_normal((n, 2)), 0)
    y = np.full(n, np.nan)
    for t in range(n):
        log_h = INDEX.log_h(np.r_[y[:t], np.nan], Z[: t + 1])[t] if t > INDEX.window else 0.0
        y[t] = Z[t] @ beta[t] + sigma_eps * np.exp(0.5 * gamma * log_h) * rng.standard_normal()
    return y, Z


def spec_for(y, Z, priors: Priors | None = None, burn: int = 2) -> BayesSpec:
    spec = BayesSpec.from_arrays(y, Z, intercept=True, state_names=["Intercept", "f1"],
                                 frequency=52, burn=burn, noise="volatility", priors=priors)
    return replace(spec, noise_index=INDEX)  # the simulation's centring: sigma_eps is its own


def test_log_likelihood_equals_statsmodels_with_the_same_per_step_r():
    """The model's log density of y at fixed (sigma_eps, sigma_beta, gamma), against
    statsmodels' filter with R_t = sigma_eps^2 exp(gamma log h_t) (terms after the burn)."""
    y, Z = simulate(0, 150, 0.01, 1.0, [1e-4, 0.02])
    spec = spec_for(y, Z)
    model = model_from_spec(spec)
    loglik = model.compile_logp(vars=[model["y"]])
    for sigma_eps, sigma_beta, gamma in [(0.01, [1e-4, 0.02], 1.0), (0.02, [1e-3, 0.1], -0.5)]:
        got = loglik(at(model, sigma_eps=sigma_eps, sigma_beta=sigma_beta, gamma=gamma))
        R_t = sigma_eps**2 * np.exp(gamma * spec.log_h)
        ref = statsmodels_filter(y, Z, spec.T[None], np.diag(np.square(sigma_beta))[None], R_t,
                                 spec.a0, spec.P0)  # fmt: skip
        np.testing.assert_allclose(got, ref.loglik_t[spec.first_row :].sum(), rtol=1e-9)


def test_a_sampled_half_life_gives_statsmodels_likelihood_with_that_half_lifes_index():
    """With ``index_half_life_sd`` > 0 the model's log density at a half-life h equals
    statsmodels' filter with R_t from the index written out by hand at h (statsmodels' OLS
    per window, a plain loop for the average: `reference_raw_log_h`), centred on the
    likelihood's steps, 0 before the first regression."""
    y, Z = simulate(0, 150, 0.01, 1.0, [1e-4, 0.02])
    spec = spec_for(y, Z, Priors(index_half_life_sd=0.75))
    model = model_from_spec(spec)
    loglik = model.compile_logp(vars=[model["y"]])
    for half_life, gamma in [(4.0, 1.0), (1.5, 0.6), (13.0, -0.5)]:
        got = loglik(at(model, sigma_eps=0.01, sigma_beta=[1e-4, 0.02], gamma=gamma,
                        index_half_life=half_life / spec.ppy))  # fmt: skip
        raw = reference_raw_log_h(y, Z, INDEX.window, half_life)
        log_h = np.nan_to_num(raw - np.nanmean(raw[spec.steps]), nan=0.0)
        ref = statsmodels_filter(y, Z, spec.T[None], np.diag([1e-8, 4e-4])[None],
                                 1e-4 * np.exp(gamma * log_h), spec.a0, spec.P0)  # fmt: skip
        np.testing.assert_allclose(got, ref.loglik_t[spec.first_row :].sum(), rtol=1e-9)


def test_the_gradient_in_a_sampled_half_life_matches_finite_differences():
    """d log p / d (log half-life) of the whole model, exact by the index's forward-mode
    derivative, against central differences of the log density (step 1e-5)."""
    y, Z = simulate(1, 150, 0.01, 1.0, [1e-4, 0.02])
    model = model_from_spec(spec_for(y, Z, Priors(index_half_life_sd=0.75)))
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    name = model.rvs_to_values[model["index_half_life"]].name
    keys = [model.rvs_to_values[v].name for v in model.free_RVs]
    for half_life in (0.03, 0.1, 0.4):  # years at 52 periods: 1.6, 5.2 and 21 weeks
        point = {**model.initial_point(),
                 **at(model, gamma=1.2, index_half_life=half_life)}  # fmt: skip
        grad = dict(zip(keys, np.split(dlogp(point), np.cumsum(
            [np.size(point[key]) for key in keys])[:-1]), strict=True))  # fmt: skip
        step = 1e-5
        up, down = dict(point), dict(point)
        up[name], down[name] = point[name] + step, point[name] - step
        fd = (logp(up) - logp(down)) / (2 * step)
        np.testing.assert_allclose(grad[name], fd, rtol=1e-6, atol=1e-6)


@pytest.fixture(scope="module")
def half_life_fit() -> tuple[BayesFit, np.ndarray, np.ndarray]:
    """(fit, y, Z): a fit with a sampled half-life on the first 120 of 140 simulated rows."""
    y, Z = simulate(6, 140, 0.01, 1.0, [1e-4, 0.02])
    spec = spec_for(y[:120], Z[:120], Priors(index_half_life_sd=0.75))
    return quiet_fit(spec, 0, draws=40, chains=1), y, Z


def test_each_posterior_draw_scales_r_with_the_index_at_its_half_life(half_life_fit, tmp_path):
    """A fit with a sampled half-life: R_t of draw d (on the fitted rows and on a longer
    series) is sigma_eps_d^2 h_t^gamma_d with the fixed-half-life index at that draw's
    half-life, centred on the fit's steps (`VolatilityIndex.centred`, the pandas path); a
    saved fit reloads to the same draws of R_t."""
    fit, y, Z = half_life_fit
    spec = fit.spec
    post = fit.tree["posterior"]
    years = post["index_half_life"].values.ravel()
    assert np.std(years) > 0 and "index_half_life" in fit.summary().index
    _, R = fit.qr_draws()
    longer = SimpleNamespace(y=y, Z=Z)
    _, R_long = fit.qr_draws(longer)
    for d in (0, 17, 39):
        index = VolatilityIndex(INDEX.window, years[d] * spec.ppy).centred(y[:120], Z[:120],
                                                                          spec.steps)
        scale = post["sigma_eps"].values.ravel()[d] ** 2
        gamma = post["gamma"].values.ravel()[d]
        np.testing.assert_allclose(R[d], scale * np.exp(gamma * index.log_h(y[:120], Z[:120])),
                                   rtol=1e-12)  # fmt: skip
        np.testing.assert_allclose(R_long[d], scale * np.exp(gamma * index.log_h(y, Z)),
                                   rtol=1e-12)  # fmt: skip
    loaded = BayesFit.load(fit.save(tmp_path / "fit.nc"))
    assert loaded.spec.samples_half_life
    np.testing.assert_array_equal(loaded.qr_draws(longer)[1], R_long)


def test_convergence_checks_cover_gamma_and_a_sampled_half_life(half_life_fit):
    """check_convergence diagnoses gamma and index_half_life (it checked sigma_eps and
    sigma_beta only): 40 draws of one chain are far below the ESS threshold for each."""
    report = check_convergence(half_life_fit[0], warn=False)
    assert {"gamma", "index_half_life"} <= set(report.summary.index)
    low = next(p for p in report.problems if p.startswith("bulk ESS"))
    assert "gamma" in low and "index_half_life" in low


def quiet_fit(spec: BayesSpec, seed: int, draws: int = 300, chains: int = 2) -> BayesFit:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)
        return fit_spec(spec, SamplerSettings(draws=draws, tune=draws, chains=chains,
                                              cores=chains, n_paths=0), seed=seed)  # fmt: skip


@pytest.mark.parametrize(("seed", "gamma"), [(1, 0.0), (2, 1.0), (3, 2.0)])
def test_posterior_of_gamma_covers_a_known_truth(seed, gamma):
    """Simulated with known gamma and sigma_eps (400 weeks): the truth (gamma, log sigma_eps)
    lies in the posterior's central 99% region, by the Mahalanobis distance under the draws'
    mean and covariance against chi2(2)'s 0.99 quantile 9.21 (a miss by chance: 1%). Jointly,
    not one interval each: the two are correlated (|r| 0.6-0.8 here, as R_t = sigma_eps^2
    h_t^gamma trades one for the other where log h_t is far from 0): on one CPU both marginal
    98% intervals of seed 3 missed by a hair (gamma's upper end 1.9993) with the truth at a
    distance of 6.1, inside the joint 98% region (7.82)."""
    y, Z = simulate(seed, 400, 0.01, gamma, [1e-4, 0.01])
    post = quiet_fit(spec_for(y, Z), seed).tree["posterior"]
    draws = np.column_stack([post["gamma"].values.ravel(),
                             np.log(post["sigma_eps"].values.ravel())])  # fmt: skip
    gap = np.r_[gamma, np.log(0.01)] - draws.mean(axis=0)
    distance = gap @ np.linalg.solve(np.cov(draws.T), gap)
    assert distance < chi2.ppf(0.99, 2), (distance, draws.mean(axis=0))


def test_small_sbc_ranks_of_gamma_and_sigma_eps_are_uniform():
    """Simulation-based calibration (Talts et al. 2018): 30 series of 60 weeks simulated with
    (sigma_eps, sigma_beta, gamma) drawn from the priors of the fitted model, 1 chain of 200
    draws each, ranks among L = 19 draws in 5 bins. p > 1e-3 per parameter, as the constant
    model's small SBC (tests/estimate/bayes/test_sbc.py). gamma_sd = 0.5, as `Priors` advises
    for simulating: with 1.0, two of the 30 simulated series exploded (log h_t up to 103, a
    noise variance e^133 times its start), data no fit is meant for (one stopped nutpie at its
    initial point on another CPU)."""
    prior_sd = np.array([0.01, 1e-3, 0.03])
    gamma_sd = 0.5
    priors = Priors(sigma_eps=Prior("HalfNormal", {"sigma": float(prior_sd[0])}),
                    sigma_beta=Prior("HalfNormal", {"sigma": prior_sd[1:].tolist()}),
                    a0=(0.0, 1.0), P0=((1e-4, 0.0), (0.0, 0.25)), gamma_sd=gamma_sd)  # fmt: skip
    rng = np.random.default_rng(0)
    ranks = []
    for i in range(30):
        sd = np.abs(rng.normal(0, prior_sd))
        gamma = rng.normal(0, gamma_sd)
        y, Z = simulate(100 + i, 60, sd[0], gamma, sd[1:])
        # burn=0: the proper prior N(a0, P0) is part of the simulated model
        post = quiet_fit(spec_for(y, Z, priors, burn=0), i, draws=200, chains=1).tree["posterior"]
        draws = np.column_stack([post["gamma"].values.ravel(), post["sigma_eps"].values.ravel()])
        thin = draws[np.linspace(0, len(draws) - 1, 19).astype(int)]
        ranks.append((thin < np.r_[gamma, sd[0]]).sum(axis=0))
    for name, r in zip(("gamma", "sigma_eps"), np.array(ranks).T, strict=True):
        p = chisquare(np.bincount(r // 4, minlength=5)).pvalue
        assert p > 1e-3, (name, np.sort(r).tolist())


def test_save_and_load_keep_the_index_and_the_log_density(tmp_path):
    y, Z = simulate(5, 120, 0.01, 1.0, [1e-4, 0.02])
    fit = quiet_fit(spec_for(y, Z), 0, draws=50, chains=1)
    loaded = BayesFit.load(fit.save(tmp_path / "fit.nc"))
    assert loaded.spec.noise_index == INDEX
    np.testing.assert_array_equal(loaded.spec.log_h, fit.spec.log_h)
    point = fit.model().initial_point()
    assert loaded.model().compile_logp()(point) == fit.model().compile_logp()(point)
    assert list(fit.summary().index)[-1] == "gamma"
