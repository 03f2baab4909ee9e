"""Mean-reverting betas (``betas="mean_reverting"``): the model's likelihood and its gradient in
phi against statsmodels and finite differences, the beta paths against statsmodels' smoother,
recovery of a known phi (Bayes and MLE), a small SBC, save and load, and bad settings."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from scipy.stats import beta as beta_dist
from scipy.stats import chisquare, norm
from tests.estimate.bayes.test_model import at
from tests.estimate.bayes.test_volatility_model import quiet_fit
from tests.kalman.models import mean_reverting_transition

from tvbeta.estimate.bayes.diagnostics import check_convergence
from tvbeta.estimate.bayes.fit import BayesFit
from tvbeta.estimate.bayes.model import BayesSpec, SystemDraws, model_from_spec
from tvbeta.estimate.bayes.paths import beta_path_summary
from tvbeta.estimate.bayes.priors import Prior, Priors
from tvbeta.estimate.mle import MLEConvergenceWarning, fit_qr_mean_reverting
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.kalman import state_space

pytestmark = pytest.mark.filterwarnings("ignore:This process .* is multi-threaded")
PPY = 4.0
"""Quarterly data: a one-year persistence phi^4 is identified by a few hundred steps."""


def phi_z_of(phi_annual) -> np.ndarray:
    """The sampled coordinate of one-year persistences: Phi^-1(F(phi_annual)), F the CDF of
    their default Beta(reversion_a, reversion_b) prior (scipy's)."""
    priors = Priors()
    return norm.ppf(beta_dist.cdf(phi_annual, priors.reversion_a, priors.reversion_b))


def drift_of(sigma_beta, phi) -> np.ndarray:
    """The sampled coordinate of the drift sds: sigma_beta sqrt(g), g = sqrt(Var_1y / (ppy
    sigma_beta^2)), Var_1y = sigma_beta^2 (1 + phi^2 + ... + phi^(2 (ppy - 1))) the
    deviation's variance one year ahead (PPY steps of the AR(1)), summed here term by term."""
    powers = np.power.outer(np.asarray(phi, float), 2 * np.arange(int(PPY)))
    return np.asarray(sigma_beta, float) * (powers.sum(axis=-1) / PPY) ** 0.25


def simulate(seed: int, n: int, phi, mu, sigma_beta, sigma_eps: float = 0.01,
             beta0=None, noise_scale=None) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """y from beta_t - mu = phi (beta_{t-1} - mu) + eta_t on an intercept and one factor
    (sd 0.05), written out as the model's definition (not through tvbeta). noise_scale (n,):
    the sd of eps_t is sigma_eps * noise_scale_t (default 1). Returns y, Z."""
    rng = np.random.default_rng(seed)
    Z = np.column_stack([np.ones(n), 0.05 * rng.standard_normal(n)])
    phi, mu = np.asarray(phi, float), np.asarray(mu, float)
    beta = mu.copy() if beta0 is None else np.asarray(beta0, float)
    scale = np.ones(n) if noise_scale is None else noise_scale
    y = np.empty(n)
    for t in range(n):
        beta = mu + phi * (beta - mu) + np.asarray(sigma_beta) * rng.standard_normal(2)
        y[t] = Z[t] @ beta + sigma_eps * scale[t] * rng.standard_normal()
    return y, Z


def spec_for(y, Z, priors: Priors | None = None, burn: int = 2) -> BayesSpec:
    return BayesSpec.from_arrays(y, Z, intercept=True, state_names=["Intercept", "f1"],
                                 frequency=PPY, burn=burn, betas="mean_reverting",
                                 priors=priors)  # fmt: skip


def augmented(spec: BayesSpec, phi, sigma_beta, sigma_eps):
    """The [beta; mu] arrays written out here: T from tests/kalman/models.py, Q = blockdiag(
    diag(sigma_beta^2), 0), Z = [z, 0], (beta_{-1}, mu) independent N(a0, P0)."""
    k = spec.k
    Q = np.zeros((2 * k, 2 * k))
    Q[:k, :k] = np.diag(np.square(sigma_beta))
    P0 = np.zeros((2 * k, 2 * k))
    P0[:k, :k] = P0[k:, k:] = spec.P0
    Z = np.hstack([spec.Z, np.zeros_like(spec.Z)])
    return (spec.y, Z, mean_reverting_transition(np.asarray(phi))[None], Q[None],
            np.array([sigma_eps**2]), np.r_[spec.a0, spec.a0], P0)  # fmt: skip


def test_log_likelihood_equals_statsmodels_with_the_augmented_transition():
    """The model's log density at fixed (sigma_eps, sigma_beta, phi) against statsmodels'
    filter of the augmented model (terms after the burn), to 1e-9 relative."""
    y, Z = simulate(0, 160, [0.8, 0.9], [0.001, 1.0], [1e-3, 0.05])
    spec = spec_for(y, Z)
    model = model_from_spec(spec)
    loglik = model.compile_logp(vars=[model["y"]])
    for sigma_eps, sigma_beta, phi in [(0.01, [1e-3, 0.05], [0.8, 0.9]),
                                       (0.02, [1e-4, 0.1], [0.99, 0.5])]:  # fmt: skip
        point = at(model, sigma_eps=sigma_eps, sigma_drift=drift_of(sigma_beta, phi),
                   phi_z=phi_z_of(np.power(phi, PPY)))  # fmt: skip
        ref = statsmodels_filter(*augmented(spec, phi, sigma_beta, sigma_eps))
        np.testing.assert_allclose(loglik(point), ref.loglik_t[spec.first_row :].sum(), rtol=1e-9)


def test_pointwise_terms_of_posterior_draws_equal_statsmodels_with_the_augmented_transition():
    """`BayesSpec.loglik_terms` (the log_likelihood group, LOO and LFO) of two draws in the
    augmented form `posterior_system` gives, against statsmodels' filter of each, to 1e-9."""
    from tvbeta.model import reversion

    y, Z = simulate(4, 160, [0.8, 0.9], [0.001, 1.0], [1e-3, 0.05])
    spec = spec_for(y, Z)
    cases = [(0.01, [1e-3, 0.05], [0.8, 0.9]), (0.02, [1e-4, 0.1], [0.99, 0.5])]
    draws = SystemDraws(
        reversion.transition(np.array([c[2] for c in cases])),
        reversion.augmented_q(np.array([np.diag(np.square(c[1])) for c in cases])),
        np.array([c[0] ** 2 for c in cases]),
    )  # fmt: skip
    terms = spec.loglik_terms(draws)
    for d, case in enumerate(cases):
        ref = statsmodels_filter(*augmented(spec, case[2], case[1], case[0])).loglik_t
        np.testing.assert_allclose(terms[d], ref, rtol=1e-9, atol=1e-12)
    with pytest.raises(ValueError, match="draws must be augmented"):
        spec.loglik_terms(draws._replace(T=draws.T[:, ::-1]))


def test_mean_reverting_betas_with_volatility_scaled_noise_equal_statsmodels():
    """Both menu items at once (``noise="volatility"``, ``betas="mean_reverting"``): the log
    density at fixed (sigma_eps, sigma_beta, gamma, phi) against statsmodels' filter of the
    augmented model with R_t = sigma_eps^2 exp(gamma log h_t), to 1e-9 relative."""
    y, Z = simulate(3, 160, [0.8, 0.9], [0.001, 1.0], [1e-3, 0.05])
    spec = BayesSpec.from_arrays(y, Z, intercept=True, state_names=["Intercept", "f1"],
                                 frequency=PPY, burn=2, betas="mean_reverting",
                                 noise="volatility")  # fmt: skip
    model = model_from_spec(spec)
    loglik = model.compile_logp(vars=[model["y"]])
    for sigma_eps, sigma_beta, phi, gamma in [(0.01, [1e-3, 0.05], [0.8, 0.9], 0.7),
                                              (0.02, [1e-4, 0.1], [0.99, 0.5], -0.3)]:
        point = at(model, sigma_eps=sigma_eps, sigma_drift=drift_of(sigma_beta, phi),
                   gamma=gamma, phi_z=phi_z_of(np.power(phi, PPY)))  # fmt: skip
        arrays = list(augmented(spec, phi, sigma_beta, sigma_eps))
        arrays[4] = sigma_eps**2 * np.exp(gamma * spec.log_h)
        ref = statsmodels_filter(*arrays)
        np.testing.assert_allclose(loglik(point), ref.loglik_t[spec.first_row :].sum(), rtol=1e-9)


def test_gradient_in_phi_matches_finite_differences_of_the_log_density():
    """d logp / d phi_z (phi_annual = F^-1(Phi(phi_z))) from the Op's exact dT, against
    central differences of the compiled log density (step 1e-5 in the sampler's space)."""
    y, Z = simulate(1, 120, [0.7, 0.95], [0.0, 1.0], [1e-3, 0.03])
    model = model_from_spec(spec_for(y, Z))
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    phi = np.power([0.4, 0.85], 1 / PPY)
    point = at(model, sigma_eps=0.012, sigma_drift=drift_of([1e-3, 0.03], phi),
               phi_z=phi_z_of([0.4, 0.85]))  # fmt: skip
    names = [v.name for v in model.value_vars]
    sizes = [np.size(point[n]) for n in names]
    grad = dlogp(point)
    flat = np.concatenate([np.ravel(point[n]) for n in names])

    def value(x):
        parts = np.split(x, np.cumsum(sizes)[:-1])
        return logp({n: p.reshape(np.shape(point[n])) for n, p, in zip(names, parts, strict=True)})

    h = 1e-5
    fd = np.array([(value(flat + h * e) - value(flat - h * e)) / (2 * h)
                   for e in np.eye(flat.size)])  # fmt: skip
    np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())


@pytest.mark.parametrize(("a", "b"), [(4.0, 1.0), (1.5, 1.0), (2.0, 3.0)])
def test_phi_annual_is_the_beta_priors_quantile_of_the_sampled_normal(a, b):
    """phi_annual = F^-1(Phi(phi_z)) with phi_z ~ N(0, 1): the Beta(a, b) prior exactly
    (reference: scipy's beta.ppf of norm.cdf, to 1e-10), in coordinates with the normal's
    tails; z far out maps into [0, 1]."""
    y, Z = simulate(0, 60, [0.8, 0.9], [0.0, 1.0], [1e-3, 0.05])
    spec = spec_for(y, Z, priors=Priors(reversion_a=a, reversion_b=b))
    model = model_from_spec(spec)
    phi_annual = model.compile_fn(model["phi_annual"], inputs=[model["phi_z"]])
    for z in ([-2.5, 0.3], [0.0, 1.7], [-9.0, 9.0]):
        got = phi_annual({"phi_z": np.array(z)})
        np.testing.assert_allclose(got, beta_dist.ppf(norm.cdf(z), a, b), rtol=1e-10, atol=1e-14)


def test_drift_coordinates_keep_the_priors_of_sigma_beta_and_phi():
    """NUTS samples (sigma_drift, phi_z) with sigma_beta = sigma_drift / c(phi), c = sqrt(g):
    the model's log density of the free variables in those coordinates equals, by the change
    of variables, log HalfNormal(sigma_beta; s) + log N(phi_z) + log(d sigma_beta / d z) with
    z = sigma_drift / s the signed coordinate (scipy's densities; c from `drift_of`), and its
    deterministic sigma_beta is sigma_drift / c."""
    from scipy.stats import halfnorm

    y, Z = simulate(0, 60, [0.8, 0.9], [0.0, 1.0], [1e-3, 0.05])
    spec = spec_for(y, Z)
    s = np.asarray(spec.resolved.sigma_beta.params["sigma"])
    model = model_from_spec(spec)
    logp = model.compile_logp(vars=[model["sigma_drift"], model["phi_z"]])
    sigma_beta_of = model.compile_fn(model["sigma_beta"], inputs=[model["sigma_drift"],
                                                                   model["phi_z"]])  # fmt: skip
    for sigma_beta, phi_annual in [([1e-3, 0.05], [0.3, 0.9]), ([2e-4, 0.2], [0.99, 0.05])]:
        phi = np.power(phi_annual, 1 / PPY)
        drift = drift_of(sigma_beta, phi)
        c = drift / np.asarray(sigma_beta)
        z = phi_z_of(phi_annual)
        point = at(model, sigma_eps=0.01, sigma_drift=drift, phi_z=z)
        expected = np.sum(halfnorm.logpdf(sigma_beta, scale=s) + np.log(s / c) + norm.logpdf(z))
        np.testing.assert_allclose(logp(point), expected, rtol=1e-10)
        np.testing.assert_allclose(sigma_beta_of({"sigma_drift": drift, "phi_z": z}),
                                   sigma_beta, rtol=1e-10)  # fmt: skip


def test_beta_paths_are_the_first_k_states_of_statsmodels_smoother():
    """One draw's smoothed beta path and sd (`beta_path_summary`) against statsmodels' smoother
    of the augmented model, states 0..k-1."""
    y, Z = simulate(2, 100, [0.9, 0.8], [0.0, 1.2], [1e-3, 0.04])
    spec = spec_for(y, Z)
    phi, sb, se = np.array([0.9, 0.8]), np.array([1e-3, 0.04]), 0.01
    draws = SystemDraws(mean_reverting_transition(phi)[None], augmented(spec, phi, sb, se)[3],
                        np.array([se**2]))  # fmt: skip
    paths = beta_path_summary(spec, draws, n_paths=1, seed=0)
    ref = statsmodels_filter(*augmented(spec, phi, sb, se))
    b = spec.first_row
    np.testing.assert_allclose(paths["smoothed_mean"].values, ref.a_smooth[b:, :2], rtol=1e-8,
                               atol=1e-10)  # fmt: skip
    sd = np.sqrt(np.diagonal(ref.P_smooth, axis1=1, axis2=2)[b:, :2])
    np.testing.assert_allclose(paths["smoothed_sd"].values, sd, rtol=1e-6, atol=1e-10)


@pytest.mark.parametrize(("seed", "phi_annual"), [(1, 0.5), (2, 0.8), (3, 0.95)])
def test_posterior_of_phi_covers_a_known_truth(seed, phi_annual):
    """Simulated quarterly with a known one-year persistence of the factor's beta (half-lives
    1, 3.1 and 13.5 years, where the prior Beta(4, 1) puts 6%, 41% and 81% of its mass below;
    sd of its drift 0.08 per quarter, 400 quarters) and a nearly static intercept; phi[f1]
    must lie in its central 98% posterior interval (a miss by chance has probability 2%).
    A truth the prior all but excludes (phi_annual = 0.13 was tried) is not recovered from
    400 quarters: the SBC below is the calibration check over the prior."""
    phi_f = phi_annual ** (1 / PPY)
    y, Z = simulate(seed, 400, [0.5, phi_f], [0.0, 1.0], [1e-4, 0.08])
    post = quiet_fit(spec_for(y, Z), seed).tree["posterior"]
    lo, hi = np.quantile(post["phi"].sel(state="f1").values, [0.01, 0.99])
    assert lo < phi_f < hi, (lo, hi)


@pytest.mark.parametrize("seed", [11, 12, 13, 14])
def test_mle_recovers_a_known_phi_within_three_standard_errors(seed):
    """`fit_qr_mean_reverting` on 600 simulated quarters with phi = (0.5, 0.8): the factor's
    phi within 3 of its standard errors of the truth, and the log-likelihood at the estimate
    equal to statsmodels' filter there (the objective is the model's)."""
    y, Z = simulate(seed, 600, [0.5, 0.8], [0.0, 1.0], [1e-4, 0.08])
    spec = spec_for(y, Z)
    m = state_space(y, Z, np.eye(2)[None], np.eye(2)[None] * 1e-4, [1e-4], spec.a0, spec.P0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # the intercept's drift ~0
        est = fit_qr_mean_reverting(m, ppy=PPY, burn=spec.burn, state_names=("Intercept", "f1"))
    phi = est.params[-2:]
    assert abs(phi[1] - 0.8) < 3 * est.se[-1], (phi, est.se[-2:])
    ref = statsmodels_filter(*augmented(spec, phi, np.sqrt(np.diag(est.Q)), np.sqrt(est.R)))
    np.testing.assert_allclose(est.llf, ref.loglik_t[spec.first_row :].sum(), rtol=1e-9)


@pytest.mark.parametrize(("seed", "gamma"), [(21, 1.0), (22, 0.0), (23, 2.0)])
def test_mle_with_volatility_scaled_noise_recovers_known_gamma_and_phi(seed, gamma):
    """`fit_qr_mean_reverting(log_h=...)` (``mle_vol_mr``) on 600 simulated quarters with
    phi = (0.5, 0.8) and R_t = sigma_eps^2 h_t^gamma, log h_t a known slow cycle of +-1 (as in
    tests/model/test_volatility.py): gamma and the factor's phi within 3 of their standard
    errors of the truth, and the log-likelihood at the estimate equal to statsmodels' filter of
    the augmented model with that R_t (1e-9)."""
    n = 600
    log_h = np.sin(np.arange(n) / 25.0)
    y, Z = simulate(seed, n, [0.5, 0.8], [0.0, 1.0], [1e-4, 0.08],
                    noise_scale=np.exp(0.5 * gamma * log_h))  # fmt: skip
    spec = spec_for(y, Z)
    m = state_space(y, Z, np.eye(2)[None], np.eye(2)[None] * 1e-4, [1e-4], spec.a0, spec.P0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # the intercept's drift ~0
        est = fit_qr_mean_reverting(m, ppy=PPY, burn=spec.burn, log_h=log_h,
                                    state_names=("Intercept", "f1"))  # fmt: skip
    assert est.names[-3:] == ["gamma", "phi[Intercept]", "phi[f1]"]
    (g, phi), (se_g, se_phi) = est.params[[-3, -1]], est.se[[-3, -1]]
    assert abs(g - gamma) < 3 * se_g, (g, se_g)
    assert abs(phi - 0.8) < 3 * se_phi, (phi, se_phi)
    arrays = list(augmented(spec, est.params[-2:], np.sqrt(np.diag(est.Q)), np.sqrt(est.R)))
    arrays[4] = est.R * np.exp(g * log_h)
    ref = statsmodels_filter(*arrays)
    np.testing.assert_allclose(est.llf, ref.loglik_t[spec.first_row :].sum(), rtol=1e-9)


def test_small_sbc_ranks_of_phi_are_uniform():
    """Simulation-based calibration (Talts et al. 2018): 30 series of 80 quarters, the factor
    beta only (no intercept), with (sigma_eps, sigma_beta, phi_annual, mu, beta_{-1}) drawn
    from the fitted model's priors, 1 chain of 200 draws each, ranks of phi_annual and
    sigma_beta among L = 19 draws in 5 bins; p > 1e-3 each, as the other small SBCs."""
    prior = dict(sigma_eps=0.01, sigma_beta=0.05, a0=1.0, P0=0.25)
    priors = Priors(sigma_eps=Prior("HalfNormal", {"sigma": prior["sigma_eps"]}),
                    sigma_beta=Prior("HalfNormal", {"sigma": [prior["sigma_beta"]]}),
                    a0=(prior["a0"],), P0=((prior["P0"],),))  # fmt: skip
    rng = np.random.default_rng(0)
    ranks = []
    for i in range(30):
        se, sb = np.abs(rng.normal(0, [prior["sigma_eps"], prior["sigma_beta"]]))
        phi_annual = rng.beta(priors.reversion_a, priors.reversion_b)
        mu, beta0 = rng.normal(prior["a0"], np.sqrt(prior["P0"]), 2)
        y, Z2 = simulate(200 + i, 80, [1.0, phi_annual ** (1 / PPY)], [0.0, mu], [0.0, sb],
                         se, beta0=[0.0, beta0])  # fmt: skip
        spec = BayesSpec.from_arrays(y, Z2[:, 1:], state_names=["f1"], frequency=PPY, burn=0,
                                     betas="mean_reverting", priors=priors)  # fmt: skip
        post = quiet_fit(spec, i, draws=200, chains=1).tree["posterior"]
        draws = np.column_stack([post["phi_annual"].values.ravel(),
                                 post["sigma_beta"].values.ravel()])  # fmt: skip
        thin = draws[np.linspace(0, len(draws) - 1, 19).astype(int)]
        ranks.append((thin < np.r_[phi_annual, sb]).sum(axis=0))
    for name, r in zip(("phi_annual", "sigma_beta"), np.array(ranks).T, strict=True):
        p = chisquare(np.bincount(r // 4, minlength=5)).pvalue
        assert p > 1e-3, (name, np.sort(r).tolist())


@pytest.fixture(scope="module")
def small_fit() -> BayesFit:
    y, Z = simulate(5, 120, [0.9, 0.9], [0.0, 1.0], [1e-4, 0.05])
    return quiet_fit(spec_for(y, Z), 0, draws=50, chains=1)


def test_save_and_load_keep_mean_reversion_and_the_log_density(small_fit, tmp_path):
    fit = small_fit
    loaded = BayesFit.load(fit.save(tmp_path / "fit.nc"))
    assert loaded.spec.betas == "mean_reverting"
    point = fit.model().initial_point()
    assert loaded.model().compile_logp()(point) == fit.model().compile_logp()(point)
    assert list(fit.summary().index)[-2:] == ["phi[Intercept]", "phi[f1]"]


def test_convergence_checks_cover_the_persistence_once(small_fit):
    """check_convergence diagnoses phi_annual (it checked sigma_eps and sigma_beta only), not
    also phi per step: a monotone function of it, with the same ranks, R-hat and ESS."""
    report = check_convergence(small_fit, warn=False)
    names = list(map(str, report.summary.index))
    assert names[-2:] == ["phi_annual[Intercept]", "phi_annual[f1]"]
    assert not any(name.startswith("phi[") for name in names)


def test_unknown_betas_is_refused_naming_the_choices():
    y, Z = simulate(6, 40, [0.9, 0.9], [0.0, 1.0], [1e-4, 0.05])
    with pytest.raises(ValueError, match=r"betas must be one of .*mean_reverting.*'mean_revert'"):
        BayesSpec.from_arrays(y, Z, frequency=PPY, betas="mean_revert")


def test_mean_reverting_betas_with_an_explicit_transition_is_refused():
    y, Z = simulate(6, 40, [0.9, 0.9], [0.0, 1.0], [1e-4, 0.05])
    with pytest.raises(ValueError, match="leave T unset"):
        BayesSpec.from_arrays(y, Z, frequency=PPY, betas="mean_reverting", T=np.eye(2))
