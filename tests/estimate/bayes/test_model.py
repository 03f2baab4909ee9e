"""The PyMC model: likelihood term, priors, frequency, initial state, predictive draws."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pymc as pm
import pytensor.tensor as pt
import pytest
from scipy.stats import halfnorm
from tests.kalman.models import assert_close
from tests.model.nile import DK_Q, DK_R, nile_frame

from tvbeta.data import simulate
from tvbeta.estimate.bayes.model import (
    BayesSpec,
    SystemDraws,
    bayes_spec,
    build_model,
    model_from_spec,
)
from tvbeta.estimate.bayes.priors import Prior, Priors, periods_per_year
from tvbeta.kalman import kalman_loglik

pytestmark = [
    # drawing from the CustomDist runs its Python simulator in numba object mode, by design
    pytest.mark.filterwarnings("ignore:Numba will use object mode to run CustomDist"),
    pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS"),
]


@pytest.fixture(scope="module")
def sim():
    return simulate(150, 2, Q=[1e-6, 4e-4, 1e-4], R=1e-4, beta0=[0.0, 1.0, 0.5],
                    intercept=True, seed=3, missing_frac=0.03)  # fmt: skip


def kalman_reference(spec: BayesSpec, Q: np.ndarray, R: float) -> float:
    return kalman_loglik(spec.y, spec.Z, spec.T[None], Q[None], np.array([R]), spec.a0,
                         spec.P0, burn=spec.burn)  # fmt: skip


def at(model: pm.Model, **values) -> dict[str, np.ndarray]:
    """The point of the model's value variables (what NUTS moves) where the named free
    variables take the given values, through each variable's own transform."""
    point = {}
    for name, value in values.items():
        rv = model[name]
        transform = model.rvs_to_transforms[rv]
        value = np.asarray(value, dtype=float)
        if transform is not None:
            value = transform.forward(pt.as_tensor(value), *rv.owner.inputs).eval()
        point[model.rvs_to_values[rv].name] = value
    return point


@pytest.mark.parametrize("burn", [0, 7])
def test_diag_model_likelihood_term_equals_kalman_loglik_after_burn(sim, burn):
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], burn=burn)
    model = model_from_spec(spec)
    f = model.compile_fn(model.logp(vars=[model["y"]], sum=True), point_fn=True)
    rng = np.random.default_rng(burn)
    for _ in range(3):
        sigma_beta, sigma_eps = rng.uniform(1e-3, 0.05, size=3), rng.uniform(5e-3, 0.02)
        point = at(model, sigma_eps=sigma_eps, sigma_beta=sigma_beta)
        expected = kalman_reference(spec, np.diag(sigma_beta**2), sigma_eps**2)
        assert_close(f(point), expected, 1e-12)
    # observed = the likelihood window's observed returns (the simulated NaN are not terms)
    assert model["y"].eval().shape == (sim.frame["y"].iloc[burn:].notna().sum(),)


def test_full_q_model_likelihood_term_equals_kalman_loglik_at_its_q(sim):
    model = build_model(sim.frame, "y", ["f1", "f2"], q="full", burn=4)
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], q="full", burn=4)
    Q_var, sigma_var = model.replace_rvs_by_values([model["Q"], model["sigma_eps"]])
    f = model.compile_fn([model.logp(vars=[model["y"]]), Q_var, sigma_var], point_fn=True)
    rng = np.random.default_rng(0)
    point = {k: v + rng.normal(scale=0.3, size=np.shape(v))
             for k, v in model.initial_point().items()}  # fmt: skip
    ll, Q, sigma_eps = f(point)
    assert np.linalg.eigvalsh(Q).min() > 0 and not np.allclose(Q, np.diag(np.diag(Q)))
    assert_close(ll, kalman_reference(spec, Q, float(sigma_eps) ** 2), 1e-12)


def test_model_has_time_and_state_coords_and_documented_parameters(sim):
    model = build_model(sim.frame, "y", ["f1", "f2"], burn=5)
    assert list(model.coords["state"]) == ["Intercept", "f1", "f2"]
    observed = sim.frame["y"].iloc[5:].dropna().index  # the missing returns are no step
    assert len(observed) < 145
    assert pd.Index(model.coords["time"]).equals(observed.rename("time"))
    assert {v.name for v in model.free_RVs} == {"sigma_eps", "sigma_beta"}
    full = build_model(sim.frame, "y", ["f1", "f2"], q="full")
    assert {"sigma_beta", "Q"} <= {v.name for v in full.deterministics}


def test_nuts_moves_signed_sds_whose_density_is_the_halfnormal_prior_times_the_likelihood(sim):
    """NUTS sees z = +-sigma / scale for sigma_eps and each sigma_beta (`SignedScale`). The
    model's log density at z must be the HalfNormal prior of sigma = scale |z| (scipy) plus
    log(scale) (the map's Jacobian) plus the Kalman log-likelihood: the same at z and -z, and
    finite at z = 0 (constant betas), where the log transform's density has its tail."""
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], burn=5)
    model = model_from_spec(spec)
    logp = model.compile_logp()
    s_eps = spec.resolved.sigma_eps.params["sigma"]
    s_beta = np.array(spec.resolved.sigma_beta.params["sigma"])
    names = [model.rvs_to_values[model[v]].name for v in ("sigma_eps", "sigma_beta")]
    for z_eps, z_beta in [(0.7, [0.3, 1.2, 0.5]), (-0.7, [-0.3, 1.2, -0.5]),
                          (1.1, [0.0, -0.8, 2.0])]:  # fmt: skip
        sigma_eps, sigma_beta = s_eps * abs(z_eps), s_beta * np.abs(z_beta)
        expected = (
            halfnorm.logpdf(sigma_eps, scale=s_eps) + np.log(s_eps)
            + np.sum(halfnorm.logpdf(sigma_beta, scale=s_beta) + np.log(s_beta))
            + kalman_reference(spec, np.diag(sigma_beta**2), sigma_eps**2)
        )  # fmt: skip
        assert_close(logp(dict(zip(names, [z_eps, np.array(z_beta)], strict=True))),
                     expected, 1e-12)  # fmt: skip


@pytest.mark.parametrize(
    ("freq", "ppy"), [("B", 252), ("W-FRI", 52), ("ME", 12), ("QE", 4), ("YE", 1)]
)
def test_frequency_is_inferred_from_the_date_index(freq, ppy):
    index = pd.date_range("2001-01-01", periods=30, freq=freq)
    assert periods_per_year(index) == ppy
    assert periods_per_year(None, freq) == ppy


def test_frequency_names_and_numbers_are_accepted_and_a_plain_index_needs_one():
    assert periods_per_year(None, "weekly") == 52
    assert periods_per_year(pd.RangeIndex(5), 4) == 4
    with pytest.raises(ValueError, match="frequency="):
        periods_per_year(pd.RangeIndex(5))


def test_default_priors_are_scaled_by_residual_sd_and_per_period_drift(sim):
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], burn=5)
    y, Z = spec.y[5:], spec.Z[5:]
    ok = ~np.isnan(y)
    coef = np.linalg.lstsq(Z[ok], y[ok], rcond=None)[0]
    resid = y[ok] - Z[ok] @ coef
    s_ols = np.sqrt(resid @ resid / (ok.sum() - 3))
    assert spec.ppy == 52
    assert spec.resolved.sigma_eps.params["sigma"] == pytest.approx(s_ols)
    scales = spec.resolved.sigma_beta.params["sigma"]
    assert scales[1:] == pytest.approx([0.5 / np.sqrt(52)] * 2)
    assert scales[0] == pytest.approx(0.1 * np.nanstd(spec.y) / np.sqrt(52))


def test_local_level_priors_and_start_are_in_the_units_of_the_level():
    """Nile, annual (ppy 1), models/nile.toml's intercept_drift_per_year = 0.25, burn 1:
    sigma_beta ~ HalfNormal(0.25 sd(y)) = 42.1 (D&K's MLE sqrt(1469.1) = 38.3), sigma_eps ~
    HalfNormal(sd of y after burn, the residual sd of OLS on a constant) = 168.9 (D&K 122.9);
    a0 = mean of the first max(burn, 2k + 2, ppy) = 4 years = 1113.25, P0 sd = 10 x its se."""
    y = nile_frame()["volume"].to_numpy()
    spec = bayes_spec(nile_frame(), "volume", [], priors={"intercept_drift_per_year": 0.25},
                      burn=1)  # fmt: skip
    assert spec.state_names == ("Intercept",) and spec.ppy == 1
    assert spec.resolved.sigma_beta.params["sigma"] == pytest.approx([0.25 * np.std(y)])
    assert spec.resolved.sigma_eps.params["sigma"] == pytest.approx(np.std(y[1:], ddof=1))
    assert_close(spec.a0, [np.mean(y[:4])], 1e-12)
    assert_close(np.sqrt(spec.P0), [[10 * np.std(y[:4], ddof=1) / 2]], 1e-12)


def test_local_level_model_likelihood_term_equals_kalman_loglik():
    spec = bayes_spec(nile_frame(), "volume", [], burn=1)
    model = model_from_spec(spec)
    f = model.compile_fn(model.logp(vars=[model["y"]], sum=True), point_fn=True)
    point = at(model, sigma_eps=np.sqrt(DK_R), sigma_beta=[np.sqrt(DK_Q)])
    assert_close(f(point), kalman_reference(spec, np.array([[DK_Q]]), DK_R), 1e-12)


def test_priors_round_trip_through_dict_and_toml_and_override_scales(sim):
    priors = Priors.from_toml(
        """
        [priors]
        sigma_eps = {dist = "HalfStudentT", nu = 3}
        sigma_beta = {dist = "HalfNormal", sigma = [0.001, 0.02, 0.03]}
        beta_drift_per_year = 0.25
        """
    )
    assert Priors.from_dict(priors.to_dict()) == priors
    assert priors.sigma_eps == Prior("HalfStudentT", {"nu": 3})
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], priors=priors.to_dict())
    assert spec.resolved.sigma_beta.params["sigma"] == [0.001, 0.02, 0.03]
    assert spec.resolved.sigma_eps.params["nu"] == 3  # the scale was filled in:
    assert spec.resolved.sigma_eps.params["sigma"] > 0
    with pytest.raises(ValueError, match="unknown prior setting"):
        Priors.from_dict({"sigma_epsilon": {}})
    with pytest.raises(ValueError, match="positive distribution"):
        Prior("Normal", {"sigma": 1.0})


@pytest.mark.parametrize(("given", "dist", "scale_name", "scale"), [
    ({"tau": 400.0}, "HalfNormal", "sigma", 0.05),
    ({"nu": 3, "lam": 100.0}, "HalfStudentT", "sigma", 0.1),
    ({"lam": 20.0}, "Exponential", "scale", 0.05),
])  # fmt: skip
def test_a_prior_given_by_precision_or_rate_is_the_same_prior_by_its_scale(
    sim, given, dist, scale_name, scale
):
    """PyMC's other parametrisations (HalfNormal's precision tau = sigma^-2, HalfStudentT's lam
    = sigma^-2, Exponential's rate lam = 1 / scale) resolve to the scale, and the model's log
    density equals the one of the prior given by that scale (they raised a bare KeyError)."""
    def model_logp(params: dict) -> float:
        priors = Priors(sigma_beta=Prior(dist, params))
        model = model_from_spec(bayes_spec(sim.frame, "y", ["f1", "f2"], priors=priors))
        return model.compile_logp()(model.initial_point())

    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], priors=Priors(sigma_beta=Prior(dist, given)))
    assert spec.resolved.sigma_beta.params[scale_name] == pytest.approx(scale, rel=1e-12)
    by_scale = {**{k: v for k, v in given.items() if k not in ("tau", "lam")}, scale_name: scale}
    assert model_logp(given) == pytest.approx(model_logp(by_scale), rel=1e-12)
    with pytest.raises(ValueError, match=f"both {scale_name} and"):
        bayes_spec(sim.frame, "y", ["f1", "f2"],
                   priors=Priors(sigma_beta=Prior(dist, {**given, scale_name: 1.0})))


def test_a_noise_prior_far_from_the_data_warns_naming_its_scale_and_the_residual_sd(sim):
    """A fresh user's HalfNormal(tau = 1e8) (sigma 1e-4) against residuals of sd ~0.01 gave a
    degenerate fit without a word: an explicit sigma_eps prior more than 100x from the OLS
    residual sd (statsmodels' OLS on the likelihood window), either way, warns; 10x does not,
    nor does the default."""
    import statsmodels.api as sm

    from tvbeta.estimate.bayes.priors import PriorScaleWarning

    spec = bayes_spec(sim.frame, "y", ["f1", "f2"])
    rows = ~np.isnan(spec.y)
    rows[: np.flatnonzero(rows)[spec.burn]] = False
    s_ols = float(np.sqrt(sm.OLS(spec.y[rows], spec.Z[rows]).fit().scale))
    for params in ({"tau": 1e8}, {"sigma": 200 * s_ols}):
        with pytest.warns(PriorScaleWarning, match=r"sigma_eps prior's scale sigma = .* times "
                          rf"the data's OLS residual sd \({s_ols:.3g} per period\)"):  # fmt: skip
            bayes_spec(sim.frame, "y", ["f1", "f2"],
                       priors=Priors(sigma_eps=Prior("HalfNormal", params)))
    with warnings.catch_warnings():
        warnings.simplefilter("error", PriorScaleWarning)
        bayes_spec(sim.frame, "y", ["f1", "f2"],
                   priors=Priors(sigma_eps=Prior("HalfNormal", {"sigma": 10 * s_ols})))
        bayes_spec(sim.frame, "y", ["f1", "f2"])


def test_initial_state_is_ols_on_the_first_window_with_wide_covariance(sim):
    """The window (max(burn, 2k + 2, one year) = 60) counts observed steps, as the burn does."""
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], burn=60)
    rows = np.flatnonzero(~np.isnan(spec.y))[:60]
    assert rows[-1] > 59  # a missing return among the first 60 rows: the window is longer
    assert_close(spec.a0, np.linalg.lstsq(spec.Z[rows], spec.y[rows], rcond=None)[0], 1e-10)
    assert np.all(np.sqrt(np.diag(spec.P0))[1:] >= 0.5)  # >= one year of prior drift
    explicit = Priors(a0=(0.0, 1.0, 1.0), P0=np.eye(3).tolist())
    spec2 = bayes_spec(sim.frame, "y", ["f1", "f2"], priors=explicit)
    assert_close(spec2.a0, [0.0, 1.0, 1.0], 0) and assert_close(spec2.P0, np.eye(3), 0)


def test_random_draws_replicate_the_observed_returns_with_the_model_scale(sim):
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], burn=10)
    model = model_from_spec(spec)
    with model:
        draws = pm.draw(model["y"], draws=200, random_seed=1)
    n_observed = int(np.sum(~np.isnan(spec.y))) - 10  # after the first 10 observed returns
    assert n_observed < 140  # the simulated NaN have no replicate
    assert draws.shape == (200, n_observed)
    assert np.isfinite(draws).all()
    assert 0.1 < np.std(draws) / np.nanstd(spec.y) < 10


def test_prior_predictive_check_compares_replicated_statistics_with_the_data(sim):
    from tvbeta.estimate.bayes.diagnostics import prior_predictive_check

    spec = bayes_spec(sim.frame, "y", ["f1", "f2"])
    table = prior_predictive_check(spec, draws=100, seed=0)
    assert {"observed", "replicated_q05", "replicated_q95", "p_value"} <= set(table.columns)
    sd = table.loc["sd"]
    assert sd["replicated_q05"] < sd["observed"] < sd["replicated_q95"]


def test_spec_from_arrays_needs_a_frequency_without_dates():
    rng = np.random.default_rng(0)
    y = rng.normal(size=50)
    with pytest.raises(ValueError, match="frequency"):
        BayesSpec.from_arrays(y, np.ones((50, 1)))
    spec = BayesSpec.from_arrays(y, np.ones((50, 1)), frequency=1, intercept=True)
    assert spec.ppy == 1 and spec.state_names == ("s0",)


def test_likelihood_with_leading_empty_rows_is_that_of_the_fund_rows(sim):
    """A fund whose first 20 returns are missing, burn 5 observed steps: the observed variable
    and the time coordinate start at its 6th return, and the likelihood term is statsmodels'
    sum of one-step terms of the model started at its first return (same a0, P0)."""
    from tvbeta.estimate.statsmodels_twin import statsmodels_filter

    late = sim.frame.copy()
    late.iloc[:20, late.columns.get_loc("y")] = np.nan
    spec = bayes_spec(late, "y", ["f1", "f2"], burn=5)
    first = np.flatnonzero(~np.isnan(spec.y))[5]
    assert spec.first_row == first and spec.time.equals(late.index[first:].rename("time"))
    model = model_from_spec(spec)
    # the observed variable holds the observed returns after the burn-in (sim has gaps)
    assert model["y"].eval().shape == (np.sum(~np.isnan(spec.y[first:])),)
    f = model.compile_fn(model.logp(vars=[model["y"]], sum=True), point_fn=True)
    sigma_beta, sigma_eps = np.array([1e-3, 0.02, 0.01]), 0.01
    point = at(model, sigma_eps=sigma_eps, sigma_beta=sigma_beta)
    sm = statsmodels_filter(spec.y[20:], spec.Z[20:], spec.T[None],
                            np.diag(sigma_beta**2)[None], [sigma_eps**2], spec.a0, spec.P0)
    assert_close(f(point), sm.loglik_t[first - 20 :].sum(), 1e-9)
    terms = spec.loglik_terms(
        SystemDraws(spec.T[None], np.diag(sigma_beta**2)[None], np.array([sigma_eps**2])))[0]
    assert np.all(terms[:20] == 0.0)
    assert_close(terms[20:], sm.loglik_t, 1e-9)
    # the initial state and the prior scales do not see the empty rows either
    trimmed = bayes_spec(late.iloc[20:], "y", ["f1", "f2"], burn=5)
    assert_close(spec.a0, trimmed.a0, 1e-12) and assert_close(spec.P0, trimmed.P0, 1e-12)
    assert spec.resolved == trimmed.resolved


def test_default_burn_is_the_number_of_states_as_in_fit_mle(sim):
    """One default burn: K observed steps (2 factors + intercept = 3), the default of
    fit_mle, for the frame and the array entry points alike."""
    from tvbeta.estimate.mle import fit_mle

    k = len(["f1", "f2"]) + 1
    assert bayes_spec(sim.frame, "y", ["f1", "f2"]).burn == k
    assert fit_mle(sim.frame, "y", ["f1", "f2"]).burn == k
    frame = sim.frame.dropna()
    Z = np.column_stack([np.ones(len(frame)), frame[["f1", "f2"]].to_numpy()])
    assert BayesSpec.from_arrays(frame["y"].to_numpy(), Z, frequency=52).burn == Z.shape[1]
    assert bayes_spec(sim.frame, "y", ["f1"], intercept=False).burn == 1


def test_spec_repr_is_short_and_states_the_observed_steps_and_span_after_burn(sim):
    """The steps and their span are counted by pandas on the input frame: the observed
    returns after the first `burn` observed ones."""
    burn = 5
    spec = bayes_spec(sim.frame, "y", ["f1", "f2"], burn=burn)
    text = repr(spec)
    observed = sim.frame.index[sim.frame["y"].notna()]
    first, last = observed[burn].strftime("%Y-%m-%d"), observed[-1].strftime("%Y-%m-%d")
    assert f"{len(observed) - burn} observed steps {first} .. {last}" in text
    assert f"burn={burn} of {len(sim.frame)} rows" in text
    assert "q='diag'" in text and "'Intercept', 'f1', 'f2'" in text and "frequency=52" in text
    assert len(text) < 300 and text.count("\n") <= 2
