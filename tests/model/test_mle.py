"""set_Q_from_mle / set_R_from_mle: the returned scalar maximises the log-likelihood."""

from __future__ import annotations

import dataclasses
import warnings

import numpy as np
import pytest

from tests.model.nile import DK_Q, DK_R
from tests.model.simdata import FACTORS, TARGET
from tvbeta import constants
from tvbeta.data import prepare_design
from tvbeta.kalman import kalman_loglik
from tvbeta.model import KalmanSpec, TimeVarying


def _base(intercept: bool, which: str, frame) -> KalmanSpec:
    """Realistic fixed settings for the other matrix, so the optimum is usually interior."""
    spec = KalmanSpec(2).set_intercept() if intercept else KalmanSpec(2)
    if which == "Q":
        return spec.set_R_from_ols(frame[FACTORS], frame[TARGET])
    return spec.set_Q_from_factor_vols(frame[FACTORS])


def _profile(spec: KalmanSpec, which: str, frame, burn: int):
    """log s -> total log-likelihood after burn, with Q = s I or R = s and the rest fixed."""
    d = prepare_design(frame, TARGET, FACTORS, intercept=spec.intercept)
    m = spec.state_space(d.y, d.Z)

    def loglik(x: float) -> float:
        s = np.exp(x)
        Q = s * np.eye(spec.K)[None] if which == "Q" else m.Q
        R = np.array([s]) if which == "R" else m.R
        return kalman_loglik(m.y, m.Z, m.T, Q, R, m.a0, m.P0, burn=burn)

    return loglik


CASES = [
    (False, "Q", 0), (False, "Q", 10), (True, "Q", 0),
    (False, "R", 0), (False, "R", 10), (True, "R", 5),
]  # fmt: skip


@pytest.mark.parametrize(("intercept", "which", "burn"), CASES)
def test_mle_scalar_maximises_the_loglikelihood(frame, intercept, which, burn):
    base = _base(intercept, which, frame)
    if which == "Q":
        fitted = base.set_Q_from_mle(frame, TARGET, FACTORS, burn=burn)
        s, bounds = fitted.q_scalar, constants.Q_MLE_BOUNDS
        np.testing.assert_array_equal(fitted.Q.values, s * np.eye(fitted.K))
        assert (fitted.q_mode, fitted.R) == ("mle", base.R)  # R held fixed
    else:
        fitted = base.set_R_from_mle(frame, TARGET, FACTORS, burn=burn)
        s, bounds = fitted.r_scalar, constants.R_MLE_BOUNDS
        assert float(fitted.R.values) == s
        assert (fitted.r_mode, fitted.Q) == ("mle", base.Q)  # Q held fixed
    assert bounds[0] <= s <= bounds[1]
    loglik = _profile(base, which, frame, burn)
    # Central differences in x = log s. h is not tiny because with an intercept the seed's
    # prior P0[0, 0] = 1e6 leaves the log-likelihood ~1e-9 relative rounding noise.
    x, h = np.log(s), 1e-3
    best = loglik(x)
    slope = (loglik(x + h) - loglik(x - h)) / (2 * h)
    curvature = (loglik(x + h) - 2 * best + loglik(x - h)) / h**2
    if s == bounds[0]:
        assert slope <= 0  # the likelihood would rise only below the lower bound
    elif s == bounds[1]:
        assert slope >= 0
    else:  # first-order condition: a Newton step to the optimum moves log s by < 1e-4
        assert curvature < 0
        assert abs(slope / curvature) < 1e-4
    grid = np.linspace(np.log(bounds[0]), np.log(bounds[1]), 801)
    assert max(loglik(g) for g in grid) <= best + 1e-9 * abs(best)


def test_mle_on_a_bound_returns_the_bound_exactly(frame):
    """The seed's default R = 1e-2 is far too large for these returns: q goes to 1e-8."""
    fitted = KalmanSpec(2).set_Q_from_mle(frame, TARGET, FACTORS)
    assert fitted.q_scalar == constants.Q_MLE_BOUNDS[0]


def test_mle_scalars_are_described(frame):
    spec = _base(False, "R", frame).set_R_from_mle(frame, TARGET, FACTORS)
    desc = spec.describe(TARGET, FACTORS)
    assert (desc["R Mode"], desc["R Scalar"], desc["R Type"]) == ("mle", spec.r_scalar, "constant")
    assert desc["Q Scalar"] is None


@pytest.mark.parametrize("which", ["Q", "R"])
def test_local_level_scalar_mle_given_the_other_dk_variance_is_the_dk_estimate(nile, which):
    """Nile / 100 (variances / 1e4, inside the seed's bounds), near-diffuse start (P0 = 1e6),
    first term dropped: the profile optimum at D&K's other variance is D&K's (given to 5
    digits, so rtol 1e-4)."""
    df = nile / 100.0
    level = KalmanSpec(0).set_intercept()
    if which == "Q":
        fitted = dataclasses.replace(level, R=TimeVarying.constant(DK_R / 1e4))
        got = fitted.set_Q_from_mle(df, "volume", [], burn=1).q_scalar
    else:
        fitted = dataclasses.replace(level, Q=TimeVarying.constant([[DK_Q / 1e4]]))
        got = fitted.set_R_from_mle(df, "volume", [], burn=1).r_scalar
    assert got == pytest.approx((DK_Q if which == "Q" else DK_R) / 1e4, rel=1e-4)


def test_mle_stopping_an_ulp_inside_a_bound_returns_the_bound_without_a_convergence_warning(
    nile,
):
    """On the Nile's first 70 years (variances ~1e4), r runs to the seed's upper bound 100;
    L-BFGS-B stops at 4.605170185988091 < log(100) = 4.605170185988092. The only warning about
    the search is the one about the bound (not a false "did not converge"); the other says
    that river volumes are not decimal returns."""
    train = nile.iloc[:70]
    spec = KalmanSpec(0).set_intercept().set_Q_from_rolling_beta_var(train, "volume", [])
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", RuntimeWarning)
        fitted = spec.set_R_from_mle(train, "volume", [], burn=1)
    messages = [str(w.message) for w in caught if "decimal returns:" not in str(w.message)]
    assert len(messages) == 1 and "upper bound 100" in messages[0], messages
    assert fitted.r_scalar == constants.R_MLE_BOUNDS[1]
