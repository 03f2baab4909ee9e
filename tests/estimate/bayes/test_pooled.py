"""The pooled (hierarchical) model of many funds: its likelihood, a fit, bad inputs."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from tests.kalman.models import assert_close
from tests.kalman.test_collapsed import augmented

from tvbeta.data.validate import DataValidationError
from tvbeta.estimate.bayes.diagnostics import BayesConvergenceWarning
from tvbeta.estimate.bayes.model import model_from_spec
from tvbeta.estimate.bayes.pooled import (
    PooledSpec,
    PopulationPriors,
    build_pooled_model,
    fit_bayes_pooled,
    fit_pooled_spec,
    pooled_spec,
)
from tvbeta.estimate.bayes.priors import Priors
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.funds import fund_summary
from tvbeta.nuts import SamplerSettings

FUNDS = ["A", "B", "C"]


def funds_frame(n: int = 80, seed: int = 0) -> pd.DataFrame:
    """Weekly returns of three funds on two factors with random-walk betas; fund C starts
    20 weeks late (NaN before) and has two missing weeks."""
    rng = np.random.default_rng(seed)
    F = 0.02 * rng.standard_normal((n, 2))
    df = pd.DataFrame(F, columns=["f1", "f2"],
                      index=pd.date_range("2020-01-03", periods=n, freq="W-FRI"))  # fmt: skip
    Z = np.column_stack([np.ones(n), F])
    for name in FUNDS:
        drift = rng.standard_normal((n, 3)) * [1e-4, 0.03, 0.03]
        beta = np.array([0.001, 1.0, 0.5]) + np.cumsum(drift, axis=0)
        df[name] = np.sum(Z * beta, axis=1) + 0.01 * rng.standard_normal(n)
    df.loc[df.index[:20], "C"] = np.nan
    df.loc[df.index[[40, 41]], "C"] = np.nan
    return df


def value_point(model, values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The model's initial point with the given free variables set (on the sampler's scale)."""
    point = model.initial_point()
    for rv in model.free_RVs:
        if rv.name in values:
            value_var = model.rvs_to_values[rv]
            transform = model.rvs_to_transforms.get(rv)
            x = values[rv.name]
            if transform is not None:
                x = transform.forward(x, *rv.owner.inputs)
                x = x.eval() if hasattr(x, "eval") else x
            point[value_var.name] = np.asarray(x)
    return point


def test_pooled_loglik_equals_the_sum_of_the_separate_funds_at_fixed_parameters():
    spec = pooled_spec(funds_frame(), FUNDS, ["f1", "f2"])
    model = build_pooled_model(spec)
    rng = np.random.default_rng(3)
    mu, tau = rng.normal(-1, 0.5, size=3), rng.uniform(0.2, 1.0, size=3)
    z = rng.standard_normal((3, 3))
    sigma_eps = rng.uniform(0.005, 0.02, size=3)
    sigma_beta = spec.drift_scale() * np.exp(mu + tau * z)
    point = value_point(model, {"mu": mu, "tau": tau, "z": z, "sigma_eps": sigma_eps})
    pooled = model.compile_logp(vars=[model["y"]])(point)
    separate = 0.0
    for j, fund in enumerate(spec.funds):
        single = model_from_spec(fund)
        p = value_point(single, {"sigma_eps": sigma_eps[j], "sigma_beta": sigma_beta[j]})
        separate += single.compile_logp(vars=[single["y"]])(p)
    assert_close(pooled, separate, 1e-10, "pooled vs sum of single-fund models")
    # one observed term per fund's observed step after its burn-in
    assert len(model.coords["obs"]) == sum(len(f.steps) for f in spec.funds)


def test_pooled_fit_has_a_fund_dim_and_fund_fits_that_single_fund_tools_take():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)  # short chains
        fit = fit_bayes_pooled(funds_frame(), FUNDS, ["f1", "f2"], seed=1, draws=100, tune=150,
                               chains=2, n_paths=10)  # fmt: skip
    post = fit.tree["posterior"]
    assert post["sigma_beta"].dims == ("chain", "draw", "fund", "state")
    assert list(post["fund"].values) == FUNDS
    assert post["mu"].dims == post["tau"].dims == ("chain", "draw", "state")
    one = fit.fund_fit("C")
    assert one.tree["posterior"]["sigma_beta"].dims == ("chain", "draw", "state")
    np.testing.assert_array_equal(one.tree["posterior"]["sigma_eps"].values,
                                  post["sigma_eps"].sel(fund="C").values)  # fmt: skip
    assert one.tree["log_likelihood"]["y"].sizes["time"] == len(fit.spec.funds[2].steps)
    Q, R = one.qr_draws()
    assert Q.shape == (200, 3, 3) and R.shape == (200,)
    summary = fund_summary(one)  # what fit_funds stores per fund
    assert np.all(np.isfinite(summary["beta"].sel(time=summary["time"][-1]).values))
    with pytest.raises(KeyError, match="not in this fit"):
        fit.fund_fit("D")


def test_pooled_fit_is_checked_like_a_single_fund_fit_e_bfmi_included():
    """The single-fund checks (diagnostics.check_convergence) on mu, tau, sigma_eps and
    sigma_beta: 2 x 100 draws cannot give the 400 effective draws the tail ESS needs."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)
        fit = fit_bayes_pooled(funds_frame(), FUNDS, ["f1", "f2"], seed=2, draws=100, tune=150,
                               chains=2, n_paths=0)  # fmt: skip
    report = fit.check_convergence(warn=False)
    assert report.bfmi.shape == (2,) and np.all(report.bfmi > 0)
    assert {"mu[f1]", "tau[f1]", "sigma_eps[C]", "sigma_beta[C, f2]"} <= set(report.summary.index)
    assert any(p.startswith("tail ESS < 400") for p in report.problems)
    with pytest.warns(BayesConvergenceWarning, match="pooled Bayesian fit failed"):
        fit.check_convergence()


def test_volatility_scaled_pooled_loglik_equals_the_sum_of_the_separate_funds():
    """R_t = sigma_eps[j]^2 h_jt^gamma[j], each fund's own index h: the pooled terms equal the
    single-fund volatility models' (whose terms equal statsmodels', test_model) at the same
    parameters, gamma[j] = gamma_mu + gamma_tau gamma_z[j]."""
    spec = pooled_spec(funds_frame(), FUNDS, ["f1", "f2"], noise="volatility")
    model = build_pooled_model(spec)
    rng = np.random.default_rng(4)
    mu, tau, z = rng.normal(-1, 0.5, size=3), rng.uniform(0.2, 1.0, size=3), rng.normal(size=(3, 3))
    sigma_eps = rng.uniform(0.005, 0.02, size=3)
    gamma_mu, gamma_tau, gamma_z = 0.7, 0.4, rng.standard_normal(3)
    gamma = gamma_mu + gamma_tau * gamma_z
    point = value_point(model, {"mu": mu, "tau": tau, "z": z, "sigma_eps": sigma_eps,
                                "gamma_mu": gamma_mu, "gamma_tau": gamma_tau,
                                "gamma_z": gamma_z})  # fmt: skip
    pooled = model.compile_logp(vars=[model["y"]])(point)
    separate = 0.0
    for j, fund in enumerate(spec.funds):
        single = model_from_spec(fund)
        sigma_beta = spec.drift_scale()[j] * np.exp(mu + tau * z[j])
        p = value_point(single, {"sigma_eps": sigma_eps[j], "sigma_beta": sigma_beta,
                                 "gamma": gamma[j]})  # fmt: skip
        separate += single.compile_logp(vars=[single["y"]])(p)
    assert_close(pooled, separate, 1e-10, "pooled vs sum of single-fund volatility models")
    # the exact gradient reaches gamma's population through the Op's dR: central differences
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    names = [v.name for v in model.value_vars]
    offset = sum(point[n].size for n in names[: names.index("gamma_mu")])
    h = 1e-6
    up, down = dict(point), dict(point)
    up["gamma_mu"], down["gamma_mu"] = point["gamma_mu"] + h, point["gamma_mu"] - h
    assert_close(dlogp(point)[offset], (logp(up) - logp(down)) / (2 * h), 1e-6,
                 "d logp / d gamma_mu vs central difference")  # fmt: skip


def test_pooled_volatility_fit_gives_each_fund_its_gamma():
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)  # short chains
        fit = fit_bayes_pooled(funds_frame(), FUNDS, ["f1", "f2"], seed=1, draws=100, tune=150,
                               chains=2, n_paths=0, noise="volatility")  # fmt: skip
    post = fit.tree["posterior"]
    assert post["gamma"].dims == ("chain", "draw", "fund")
    gamma = post["gamma_mu"].values[..., None] + post["gamma_tau"].values[..., None] * post[
        "gamma_z"].values  # fmt: skip
    np.testing.assert_allclose(post["gamma"].values, gamma)
    one = fit.fund_fit("B")
    np.testing.assert_array_equal(one.tree["posterior"]["gamma"].values,
                                  post["gamma"].sel(fund="B").values)  # fmt: skip
    _, R = one.qr_draws()  # R_t per row of the volatility-scaled model
    assert R.shape == (200, fit.spec.funds[1].n)
    assert "gamma_tau" in fit.check_convergence(warn=False).summary.index


def test_pooled_spec_refuses_what_the_population_cannot_carry():
    df = funds_frame()
    with pytest.raises(ValueError, match="more than once"):
        pooled_spec(df, ["A", "A"], ["f1"])
    with pytest.raises(DataValidationError, match="not in the DataFrame"):
        pooled_spec(df, ["A", "Z"], ["f1"])
    with pytest.raises(ValueError, match="sigma_beta prior other than HalfNormal"):
        pooled_spec(df, FUNDS, ["f1"], priors={"sigma_beta": {"dist": "HalfCauchy"}})
    specs = pooled_spec(df, FUNDS, ["f1"]).funds
    other = pooled_spec(df, ["A"], ["f2"]).funds[0]
    with pytest.raises(ValueError, match=r"fund 'x' cannot join .* states"):
        PooledSpec.of([specs[0], other], ["a", "x"])
    with pytest.raises(ValueError, match="tau_sd must be"):
        PopulationPriors(tau_sd=0.0)
    vol = pooled_spec(df, ["B"], ["f1"], noise="volatility").funds[0]
    with pytest.raises(ValueError, match=r"fund 'v' cannot join .* noise 'volatility'"):
        PooledSpec.of([specs[0], vol], ["a", "v"])
    with pytest.raises(ValueError, match=r"fund 'B' cannot join .* a sampled index half-life"):
        pooled_spec(df, ["B"], ["f1"], noise="volatility", priors={"index_half_life_sd": 0.5})


def reversion_point(spec: PooledSpec, rng: np.random.Generator) -> dict[str, np.ndarray]:
    """Random values of the mean-reverting pooled model's free variables (and gamma's)."""
    J, k = spec.J, spec.k
    values = {"mu": rng.normal(-1, 0.5, k), "tau": rng.uniform(0.2, 1.0, k),
              "z": rng.standard_normal((J, k)), "sigma_eps": rng.uniform(0.005, 0.02, J),
              "phi_mu": rng.normal(1.5, 1.0, k), "phi_tau": rng.uniform(0.2, 1.0, k),
              "phi_z": rng.standard_normal((J, k))}  # fmt: skip
    if spec.noise == "volatility":
        values.update(gamma_mu=0.6, gamma_tau=0.3, gamma_z=rng.standard_normal(J))
    return values


@pytest.mark.parametrize("noise", ["constant", "volatility"])
def test_mean_reverting_pooled_loglik_equals_statsmodels_of_each_funds_augmented_model(noise):
    """The pooled model's log-likelihood at fixed parameters against the sum over funds of
    statsmodels' filter of the 2k-state [beta; mu] model written out in the tests (from each
    fund's first observed row, so fund C's late start and gaps are in), with phi_annual =
    logistic(phi_mu + phi_tau phi_z) and, for noise="volatility", R_t = sigma_eps^2 h_t^gamma:
    1e-9 relative. Its gradient in every free variable against central differences."""
    spec = pooled_spec(funds_frame(), FUNDS, ["f1", "f2"], betas="mean_reverting", noise=noise)
    model = build_pooled_model(spec)
    v = reversion_point(spec, np.random.default_rng(7))
    point = value_point(model, v)
    sigma_beta = spec.drift_scale() * np.exp(v["mu"] + v["tau"] * v["z"])
    phi = (1.0 / (1.0 + np.exp(-(v["phi_mu"] + v["phi_tau"] * v["phi_z"])))) ** (1 / 52)
    expected = 0.0
    for j, f in enumerate(spec.funds):
        R = np.full(f.n, v["sigma_eps"][j] ** 2)
        if noise == "volatility":
            R *= np.exp((v["gamma_mu"] + v["gamma_tau"] * v["gamma_z"][j]) * f.log_h)
        first = np.flatnonzero(~np.isnan(f.y))[0]  # the model starts at the first target
        arrays = (f.y[first:], f.Z[first:], phi[j], np.diag(sigma_beta[j] ** 2), R[first:])
        ref = statsmodels_filter(*augmented(*arrays, f.a0, f.P0))
        expected += ref.loglik_t[f.steps - first].sum()
    got = model.compile_logp(vars=[model["y"]])(point)
    np.testing.assert_allclose(got, expected, rtol=1e-9)
    logp, dlogp = model.compile_logp(), model.compile_dlogp()
    names = [var.name for var in model.value_vars]
    flat = np.concatenate([np.ravel(point[n]) for n in names])
    ends = np.cumsum([np.size(point[n]) for n in names])

    def value(x):
        return logp({n: x[end - np.size(point[n]) : end].reshape(np.shape(point[n]))
                     for n, end in zip(names, ends, strict=True)})  # fmt: skip

    h = 1e-6
    fd = np.array([(value(flat + h * e) - value(flat - h * e)) / (2 * h)
                   for e in np.eye(flat.size)])  # fmt: skip
    np.testing.assert_allclose(dlogp(point), fd, rtol=1e-5, atol=1e-5 * np.abs(fd).max())


def test_phi_population_keeps_the_single_fund_beta_prior_logit_mean_and_variance():
    """Against a Monte Carlo reference (logit of 10^6 Beta(a, b) draws; sd of the estimated
    mean ~0.0014): phi_mu_mean = E logit, phi_mu_sd^2 + phi_tau_sd^2 = Var logit."""
    rng = np.random.default_rng(0)
    for a, b in [(4.0, 1.0), (2.0, 3.0)]:
        x = rng.beta(a, b, 10**6)
        logit = np.log(x) - np.log1p(-x)
        pop = PopulationPriors()
        mean, sd = pop.reversion_population(a, b)
        assert abs(mean - logit.mean()) < 0.01
        assert abs(sd**2 + pop.phi_tau_sd**2 - logit.var()) < 0.01 * logit.var()
    np.testing.assert_allclose(PopulationPriors().reversion_population(4, 1),
                               [1.8333, np.sqrt(1.9288 - 0.25)], atol=1e-4)  # fmt: skip
    assert PopulationPriors(phi_mu_mean=1.0, phi_mu_sd=0.5).reversion_population(4, 1) == (1, 0.5)


def test_pooled_mean_reverting_fit_gives_each_fund_its_phi_and_a_single_fund_fit():
    """Mean-reverting betas with a volatility-scaled R, pooled: phi_annual and phi (fund,
    state) follow phi_mu, phi_tau and phi_z; a fund's `BayesFit` has what a single-fund fit
    of that model has (its phi rows in qr_summary, beta bands from the [beta; mu] filter,
    `fund_summary`)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)  # short chains
        fit = fit_bayes_pooled(funds_frame(), FUNDS, ["f1", "f2"], seed=3, draws=100, tune=150,
                               chains=2, n_paths=10, betas="mean_reverting",
                               noise="volatility")  # fmt: skip
    post = fit.tree["posterior"]
    assert post["phi"].dims == post["phi_annual"].dims == ("chain", "draw", "fund", "state")
    x = post["phi_mu"].values[:, :, None] + post["phi_tau"].values[:, :, None] * post["phi_z"]
    np.testing.assert_allclose(post["phi_annual"].values, 1 / (1 + np.exp(-x.values)))
    np.testing.assert_allclose(post["phi"].values, post["phi_annual"].values ** (1 / 52))
    one = fit.fund_fit("C")
    assert one.spec.betas == "mean_reverting"
    np.testing.assert_array_equal(one.tree["posterior"]["phi"].values,
                                  post["phi"].sel(fund="C").values)  # fmt: skip
    assert list(one.qr_summary().index[-3:]) == ["phi[Intercept]", "phi[f1]", "phi[f2]"]
    assert one.tree["log_likelihood"]["y"].sizes["time"] == len(fit.spec.funds[2].steps)
    summary = fund_summary(one)
    assert np.all(np.isfinite(summary["beta"].values))
    assert "phi[f1]" in summary["parameter"].values
    checked = set(fit.check_convergence(warn=False).summary.index)
    assert {"phi_tau[f1]", "phi_annual[C, f2]", "gamma_tau"} <= checked
    assert not any(name.startswith("phi[") for name in checked)  # phi_annual's diagnostics


def test_pooled_spec_refuses_mixed_betas_or_reversion_priors():
    df = funds_frame()
    rw = pooled_spec(df, ["A"], ["f1"]).funds[0]
    mr = pooled_spec(df, ["B"], ["f1"], betas="mean_reverting").funds[0]
    with pytest.raises(ValueError, match=r"fund 'm' cannot join .* betas 'mean_reverting'"):
        PooledSpec.of([rw, mr], ["r", "m"])
    other = pooled_spec(df, ["C"], ["f1"], betas="mean_reverting",
                        priors=Priors(reversion_a=2.0)).funds[0]  # fmt: skip
    with pytest.raises(ValueError, match=r"reversion prior Beta\(2, 1\) \(Beta\(4, 1\)"):
        PooledSpec.of([mr, other], ["m", "o"])
    with pytest.raises(ValueError, match=r"phi_tau_sd = 1\.5 leaves no variance"):
        pooled_spec(df, FUNDS, ["f1"], betas="mean_reverting",
                    population=PopulationPriors(phi_tau_sd=1.5))  # fmt: skip
    with pytest.raises(ValueError, match="phi_mu_sd must be"):
        PopulationPriors(phi_mu_sd=-1.0)


def test_pooled_posterior_of_phi_mu_covers_a_known_common_persistence():
    """Six simulated quarterly funds of 150 quarters (the simulation written out in
    test_reversion_model, not through tvbeta) whose factor beta reverts with the same one-year
    persistence 0.5 (half-life one year, where the Beta(4, 1) prior puts 6% of its mass
    below; drift sd 0.08 a quarter): logit 0.5 = 0 lies in phi_mu[f1]'s central 98% posterior
    interval, and the population pulls the funds' phi_annual[f1] together below the prior's
    median 0.84 (a miss by chance has probability 2%). Measured: (-0.55, 1.61), medians
    0.54-0.65; about 10 s with warm caches."""
    from tests.estimate.bayes.test_reversion_model import PPY, simulate, spec_for

    phi = 0.5 ** (1 / PPY)
    funds = [spec_for(*simulate(60 + j, 150, [0.5, phi], [0.0, 1.0], [1e-4, 0.08]))
             for j in range(6)]  # fmt: skip
    settings = SamplerSettings(draws=300, tune=300, chains=2, cores=2, n_paths=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BayesConvergenceWarning)  # short chains
        post = fit_pooled_spec(PooledSpec.of(funds), settings, seed=4).tree["posterior"]
    lo, hi = np.quantile(post["phi_mu"].sel(state="f1").values, [0.01, 0.99])
    assert lo < 0.0 < hi, (lo, hi)
    assert np.all(np.median(post["phi_annual"].sel(state="f1").values, axis=(0, 1)) < 0.84)
