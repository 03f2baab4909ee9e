"""Horseshoe shrinkage of sigma_beta and the posterior probability that a beta is static."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest
import xarray as xr
from scipy.stats import halfcauchy, halfnorm, norm
from tests.kalman.models import assert_close

from tvbeta.data import simulate
from tvbeta.estimate.bayes.diagnostics import check_convergence
from tvbeta.estimate.bayes.fit import BayesFit, fit_bayes
from tvbeta.estimate.bayes.model import bayes_spec, model_from_spec
from tvbeta.estimate.bayes.priors import Priors
from tvbeta.kalman import kalman_loglik

pytestmark = [
    pytest.mark.filterwarnings("ignore:Numba will use object mode to run CustomDist"),
    pytest.mark.filterwarnings("ignore:PyTensor could not link to a BLAS"),
]

FACTORS = ["f1", "f2", "f3"]
# intercept and f2 static (Q entry 0); f1 and f3 drift by 0.3 and 0.2 beta per year (weekly)
Q_TRUE = [0.0, 0.3**2 / 52, 0.0, 0.2**2 / 52]
MOVING = np.array(Q_TRUE) > 0
SEEDS = (1, 2, 3)


def fund(seed: int):
    """A weekly fund of 450 steps on three factors, two of its four betas static."""
    return simulate(450, 3, Q=Q_TRUE, R=1e-4, beta0=[0.0, 1.0, 0.5, -0.3], intercept=True,
                    seed=seed).frame  # fmt: skip


def quiet_fit(frame, shrinkage: str, seed: int) -> BayesFit:
    """2 chains x (300 + 300) at target_accept 0.9, the horseshoe's recommended setting."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return fit_bayes(frame, "y", FACTORS, draws=300, tune=300, chains=2, seed=seed,
                         target_accept=0.9, shrinkage=shrinkage, n_paths=0,
                         check=False)  # fmt: skip


def fit_funds(seeds) -> dict[tuple[int, str], BayesFit]:
    return {(seed, shrinkage): quiet_fit(fund(seed), shrinkage, seed)
            for seed in seeds for shrinkage in ("none", "horseshoe")}  # fmt: skip


def classified_right(fits, shrinkage: str) -> np.ndarray:
    """(seeds, 4) whether P(static) is > 0.5 for a static state and < 0.5 for a moving one."""
    p = np.array([fit.static_probability().to_numpy()
                  for (_, s), fit in fits.items() if s == shrinkage])  # fmt: skip
    return np.where(MOVING, p < 0.5, p > 0.5)


@pytest.fixture(scope="module")
def fits() -> dict[tuple[int, str], BayesFit]:
    """The six fits of the default suite: three simulated funds, without and with shrinkage."""
    return fit_funds(SEEDS)


def test_horseshoe_log_density_is_its_priors_plus_the_kalman_loglik():
    """At a point of the value variables (log tau, log lambda, z, signed sigma_eps) the model's
    log density must be scipy's HalfCauchy(tau0) and HalfCauchy(1) densities with the log
    transforms' Jacobians (+ log tau, + log lambda), Normal(0, 1) for z, the HalfNormal of
    sigma_eps with its Jacobian, plus the Kalman log-likelihood at sigma_beta_j = s_j c tau
    lambda_j / sqrt(c^2 + tau^2 lambda_j^2) |z_j|: the same at z and -z, finite at z = 0.
    Tolerance 1e-10, not 1e-12: PyMC's HalfCauchy adds log 2 in float32 (``pt.log(2)`` of an
    int), 1.9e-9 off in each of its five terms."""
    frame = fund(4).iloc[:120]
    priors = Priors(horseshoe_global=0.5, horseshoe_slab=3.0)
    spec = bayes_spec(frame, "y", FACTORS, priors=priors, burn=6, shrinkage="horseshoe")
    model = model_from_spec(spec)
    logp = model.compile_logp()
    s_beta = np.array(spec.resolved.sigma_beta.params["sigma"])
    s_eps = spec.resolved.sigma_eps.params["sigma"]
    value = {v: model.rvs_to_values[model[v]].name
             for v in ("shrink_tau", "shrink_lambda", "shrink_z", "sigma_eps")}  # fmt: skip
    for tau, lam, z, z_eps in [
        (0.3, [0.5, 2.0, 0.1, 8.0], [0.4, -1.1, 0.0, 0.7], 0.8),
        (0.3, [0.5, 2.0, 0.1, 8.0], [-0.4, 1.1, 0.0, -0.7], -0.8),
        (4.0, [0.05, 1.0, 30.0, 0.7], [1.5, 0.2, -2.0, 0.0], 1.2),
    ]:
        lam, z = np.array(lam), np.array(z)
        local = tau * lam
        sigma_beta = s_beta * 3.0 * local / np.sqrt(9.0 + local**2) * np.abs(z)
        sigma_eps = s_eps * abs(z_eps)
        expected = (
            halfcauchy.logpdf(tau, scale=0.5) + np.log(tau)
            + np.sum(halfcauchy.logpdf(lam) + np.log(lam)) + np.sum(norm.logpdf(z))
            + halfnorm.logpdf(sigma_eps, scale=s_eps) + np.log(s_eps)
            + kalman_loglik(spec.y, spec.Z, spec.T[None], np.diag(sigma_beta**2)[None],
                            np.array([sigma_eps**2]), spec.a0, spec.P0, burn=spec.burn)
        )  # fmt: skip
        point = {value["shrink_tau"]: np.log(tau), value["shrink_lambda"]: np.log(lam),
                 value["shrink_z"]: z, value["sigma_eps"]: z_eps}  # fmt: skip
        assert_close(logp(point), expected, 1e-10)


def test_horseshoe_model_keeps_sigma_beta_with_state_dims_as_a_deterministic():
    spec = bayes_spec(fund(4).iloc[:120], "y", FACTORS, shrinkage="horseshoe")
    model = model_from_spec(spec)
    assert {v.name for v in model.free_RVs} == {"sigma_eps", "shrink_tau", "shrink_lambda",
                                                "shrink_z"}  # fmt: skip
    assert "sigma_beta" in {v.name for v in model.deterministics}
    assert model.named_vars_to_dims["sigma_beta"] == ("state",)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"shrinkage": "horsehoe"}, "shrinkage must be one of"),
        ({"shrinkage": "horseshoe", "q": "full"}, 'use q="diag"'),
        ({"shrinkage": "horseshoe", "priors": {"sigma_beta": {"dist": "HalfCauchy"}}},
         "leave priors.sigma_beta unset"),
        ({"priors": {"horseshoe_slab": 0.0}}, "horseshoe_slab must be a number > 0"),
    ],
)
def test_bad_shrinkage_settings_are_refused_naming_what_to_change(kwargs, match):
    with pytest.raises(ValueError, match=match):
        bayes_spec(fund(4).iloc[:120], "y", FACTORS, **kwargs)


def test_horseshoe_classifies_static_and_moving_betas_right_at_least_as_often(fits):
    """A state is classified right when P(static) > 0.5 for a static beta (Q entry 0), < 0.5
    for a drifting one; reference: the simulation's known Q. Measured (2 chains x (300 + 300),
    target_accept 0.9, default threshold), states right out of 4 (intercept static, f1
    moving, f2 static, f3 moving): seed 1: none 3, horseshoe 3; seed 2: 3, 3; seed 3: 3, 4
    (the intercept). Asserted with a margin of one state each (9 of 12 with the horseshoe,
    8 of 12 without)."""
    assert classified_right(fits, "horseshoe").sum() >= 9
    assert classified_right(fits, "none").sum() >= 8


def test_horseshoe_raises_the_static_probability_of_every_static_beta(fits):
    """Shrinkage pulls the drift of the betas the data do not move towards 0. Reference: the
    known static states (intercept and f2). Measured P(static) without -> with the horseshoe:
    intercept 0.07 -> 0.16, 0.24 -> 0.48, 0.21 -> 0.51; f2 0.60 -> 0.73, 0.50 -> 0.69,
    0.57 -> 0.78 (seeds 1, 2, 3)."""
    for seed in SEEDS:
        none = fits[seed, "none"].static_probability().to_numpy()
        horseshoe = fits[seed, "horseshoe"].static_probability().to_numpy()
        assert np.all(horseshoe[~MOVING] > none[~MOVING]), (seed, none, horseshoe)


@pytest.mark.slow
@pytest.mark.skipif(not os.environ.get("TVBETA_SHRINKAGE_STUDY"),
                    reason="set TVBETA_SHRINKAGE_STUDY=1 to run (24 fits, about 3 minutes)")
def test_horseshoe_classification_rate_over_twelve_funds():
    """As above over seeds 1-12 (24 fits). Measured, states right out of 48: none 34 (0.71;
    intercept 0/12, f1 12/12, f2 10/12, f3 12/12), horseshoe 40 (0.83; intercept 3/12, f1
    12/12, f2 11/12, f3 12/12); the horseshoe's P(static) was higher for every static state
    of every seed (smallest gain 0.08). On a fresh clone (other compiled code, so other draws
    from the same seeds) the horseshoe got 37: rounding-level changes move a borderline state
    or two. The intercept's drift, 0.01 sd(y) a year, is too small for 450 weekly returns to
    tell: its P(static) stays near the prior's. Asserted: horseshoe >= 36 (3/4), none >= 31,
    horseshoe > none. Opt-in: 3 minutes and borderline states make it a study, not a unit test
    (the default suite runs seeds 1-3 above)."""
    fits12 = fit_funds(range(1, 13))
    right_none = classified_right(fits12, "none").sum()
    right_horseshoe = classified_right(fits12, "horseshoe").sum()
    assert right_horseshoe >= 36 and right_none >= 31 and right_horseshoe > right_none


def test_static_probability_is_the_posterior_share_of_one_year_drifts_below_the_threshold(fits):
    """Reference: the definition, counted on the posterior draws of sigma_beta by hand; the
    default threshold is 0.1 x the default prior's one-year drift (0.05 for a factor beta,
    0.01 sd(y) for the intercept)."""
    fit = fits[1, "horseshoe"]
    drift = fit.tree["posterior"]["sigma_beta"].values.reshape(-1, 4) * np.sqrt(52)
    limit = np.array([0.01 * np.nanstd(fit.spec.y), 0.05, 0.05, 0.05])
    p = fit.static_probability()
    assert list(p.index) == ["Intercept", *FACTORS]
    np.testing.assert_array_equal(p.to_numpy(), np.mean(drift < limit, axis=0))
    np.testing.assert_array_equal(fit.static_probability(0.2).to_numpy(),
                                  np.mean(drift < 0.2, axis=0))  # fmt: skip


@pytest.mark.parametrize("threshold", [0.0, -0.1, np.nan, [0.05, 0.05]])
def test_static_probability_refuses_a_threshold_that_is_not_positive_or_one_per_state(
        fits, threshold):  # fmt: skip
    with pytest.raises(ValueError, match="threshold must be one number > 0 or 4"):
        fits[1, "none"].static_probability(threshold)


def test_a_horseshoe_fit_saves_and_loads_with_its_shrinkage_and_log_density(fits, tmp_path):
    fit = fits[1, "horseshoe"]
    loaded = BayesFit.load(fit.save(tmp_path / "fit.nc"))
    assert loaded.spec.shrinkage == "horseshoe" and loaded.spec.priors == fit.spec.priors
    xr.testing.assert_identical(loaded.tree, fit.tree)
    point = fit.model().initial_point()
    assert loaded.model().compile_logp()(point) == fit.model().compile_logp()(point)
    # a fit without shrinkage records none and reads back as "none"
    assert BayesFit.load(fits[1, "none"].save(tmp_path / "none.nc")).spec.shrinkage == "none"


def test_convergence_checks_cover_the_horseshoes_global_scale(fits):
    """check_convergence diagnoses shrink_tau besides sigma_beta (it checked sigma_eps and
    sigma_beta only, whatever the model)."""
    report = check_convergence(fits[(SEEDS[0], "horseshoe")], warn=False)
    assert "shrink_tau" in report.summary.index
    assert not any(str(name).startswith("shrink_tau") for name in
                   check_convergence(fits[(SEEDS[0], "none")], warn=False).summary.index)
