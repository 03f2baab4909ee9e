"""The variance index of a volatility-scaled R_t = sigma_eps^2 h_t^gamma (tvbeta.model.volatility),
and the MLE of gamma (tvbeta.estimate.mle.fit_qr_volatility)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import statsmodels.api as sm

from tvbeta.estimate.mle import MLEConvergenceWarning, fit_qr_volatility
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.kalman import state_space
from tvbeta.model.volatility import VolatilityIndex


def regression_data(seed: int, n: int = 300, k: int = 3):
    """y on an intercept and k - 1 factors with constant betas and noise whose sd doubles
    halfway: a volatility regime the index must see."""
    rng = np.random.default_rng(seed)
    Z = np.column_stack([np.ones(n), 0.04 * rng.standard_normal((n, k - 1))])
    sd = np.where(np.arange(n) < n // 2, 0.01, 0.02)
    y = Z @ np.r_[0.001, np.linspace(0.5, 1.2, k - 1)] + sd * rng.standard_normal(n)
    return y, Z


def reference_raw_log_h(y, Z, window, half_life):
    """The definition written out with statsmodels' OLS, one regression per step, and a plain
    loop for the exponential average (no missing data)."""
    n = len(y)
    alpha = 1 - 0.5 ** (1 / half_life)
    out = np.full(n, np.nan)
    h = None
    for t in range(window, n):
        fit = sm.OLS(y[t - window:t], Z[t - window:t]).fit()
        if h is None:  # started at the first regression's in-window residual variance
            h = np.mean(fit.resid**2) - np.mean(fit.resid) ** 2
        out[t] = np.log(h)
        e = y[t] - Z[t] @ fit.params  # the residual of step t enters h_{t+1}
        h = (1 - alpha) * h + alpha * e**2
    return out


@pytest.mark.parametrize("seed", range(5))
def test_ewma_is_pandas_ewm_bit_for_bit_and_its_derivative_matches_differences(seed):
    """`ewma` against pandas' ``ewm(halflife=, adjust=False, ignore_na=True).mean()`` on
    series with missing values (equal arrays, NaN where pandas has NaN), and d/d alpha
    against central differences of `ewma` itself."""
    import pandas as pd

    from tvbeta.model.volatility import ewma, ewma_alpha

    rng = np.random.default_rng(seed)
    x = rng.exponential(1e-3, 400)
    x[rng.random(400) < 0.1] = np.nan
    x[0] = 2e-3
    for half_life in (0.7, 6.0, 26.0, 150.0):
        expected = pd.Series(x).ewm(halflife=half_life, adjust=False,
                                    ignore_na=True).mean().to_numpy()  # fmt: skip
        alpha = ewma_alpha(half_life)
        got, grad = ewma(x, alpha)
        np.testing.assert_array_equal(got, expected)
        fd = (ewma(x, alpha + 1e-7)[0] - ewma(x, alpha - 1e-7)[0]) / 2e-7
        np.testing.assert_allclose(grad, fd, rtol=1e-5, atol=1e-10)


def test_raw_index_equals_rolling_ols_residuals_averaged_by_hand():
    y, Z = regression_data(0)
    got = VolatilityIndex(36, 6.0).raw_log_h(y, Z)
    expected = reference_raw_log_h(y, Z, 36, 6.0)
    assert np.isnan(got[:36]).all()
    np.testing.assert_allclose(got[36:], expected[36:], rtol=1e-12, atol=0)


def test_index_at_t_does_not_depend_on_y_t_or_later():
    y, Z = regression_data(1)
    index = VolatilityIndex(24, 4.0)
    base = index.raw_log_h(y, Z)
    t = 150
    later = y.copy()
    later[t:] += np.random.default_rng(9).normal(0, 0.05, len(y) - t)
    changed = index.raw_log_h(later, Z)
    np.testing.assert_array_equal(changed[: t + 1], base[: t + 1])
    assert not np.allclose(changed[t + 1 :], base[t + 1 :])


def test_index_sees_the_volatility_regime():
    """The noise sd doubles halfway, so h (a variance) rises by about 4 (log 4 = 1.39)."""
    y, Z = regression_data(2, n=600)
    log_h = VolatilityIndex(36, 6.0).raw_log_h(y, Z)
    assert np.nanmean(log_h[450:]) - np.nanmean(log_h[100:300]) == pytest.approx(np.log(4), abs=0.3)


def test_missing_target_adds_nothing_to_the_average():
    y, Z = regression_data(3)
    y[[100, 101, 180]] = np.nan
    log_h = VolatilityIndex(36, 6.0).raw_log_h(y, Z)
    assert np.isfinite(log_h[36:]).all()
    assert log_h[102] == log_h[101] == log_h[100]  # two missing residuals: h carried forward


def test_centred_index_has_mean_zero_on_the_given_steps_and_zero_before_it_exists():
    y, Z = regression_data(4)
    steps = np.arange(50, 200)
    index = VolatilityIndex(36, 6.0).centred(y, Z, steps)
    log_h = index.log_h(y, Z)
    assert abs(log_h[steps].mean()) < 1e-12
    assert (log_h[:36] == 0.0).all()


def test_defaults_follow_the_frequency_and_shrink_for_short_series():
    assert VolatilityIndex.for_frequency(12, 600, 5) == VolatilityIndex(36, 6.0)
    assert VolatilityIndex.for_frequency(52, 600, 2) == VolatilityIndex(156, 26.0)
    assert VolatilityIndex.for_frequency(12, 60, 5).window == 20  # a third of the targets


@pytest.mark.parametrize(("window", "half_life", "match"), [
    (2, 6.0, "window must be an integer >= 3"), (36.5, 6.0, "window must be an integer"),
    (36, 0.0, "half_life must be a positive"), (36, np.nan, "half_life must be a positive")])
def test_bad_index_settings_are_refused(window, half_life, match):
    with pytest.raises(ValueError, match=match):
        VolatilityIndex(window, half_life)


def test_too_short_a_series_for_the_window_is_refused_clearly():
    """Fixed or sampled half-life (`log_h_at`), the same refusal naming window and steps."""
    y, Z = regression_data(5, n=40)
    index = VolatilityIndex(36, 6.0)
    match = "needs 36 observed targets before the scored steps and has none on the 31 of them"
    with pytest.raises(ValueError, match=match):
        index.centred(y, Z, np.arange(5, 36))
    with pytest.raises(ValueError, match=match):
        index.log_h_at(np.array([3.0, 6.0]), y, Z, np.arange(5, 36))


def simulate_scaled(seed: int, gamma: float, n: int = 500):
    """Random-walk betas (intercept + one factor) with R_t = r h_t^gamma for a known exogenous
    log h (a slow cycle of +-1): the truth the MLE must recover."""
    rng = np.random.default_rng(seed)
    log_h = np.sin(np.arange(n) / 25.0)
    Z = np.column_stack([np.ones(n), 0.04 * rng.standard_normal(n)])
    q = np.array([1e-8, 4e-4])
    beta = np.r_[0.0, 1.0] + np.cumsum(np.sqrt(q) * rng.standard_normal((n, 2)), axis=0)
    r = 1e-4
    y = np.einsum("tk,tk->t", Z, beta) + np.sqrt(r * np.exp(gamma * log_h)) * rng.standard_normal(n)
    m = state_space(y, Z, np.eye(2)[None], np.diag(q)[None], [r], np.r_[0.0, 1.0],
                    np.diag([1e-4, 1.0]))
    return m, log_h


@pytest.mark.parametrize(("seed", "gamma"), [(0, 0.0), (1, 1.0), (2, 2.0), (3, 0.5)])
def test_mle_recovers_known_gamma_within_three_standard_errors(seed, gamma):
    m, log_h = simulate_scaled(seed, gamma)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)  # the intercept's q at ~0
        est = fit_qr_volatility(m, log_h, burn=2)
    g, se = est.params[-1], est.se[-1]
    assert 0.05 < se < 0.3
    assert abs(g - gamma) < 3 * se, (g, se)


def test_mle_log_likelihood_is_statsmodels_at_the_estimates_per_step_r():
    """The profile trick (rescaled data plus a Jacobian) must give the likelihood of y itself:
    statsmodels' filter with R_t = R h_t^gamma at the estimates, terms after the burn."""
    m, log_h = simulate_scaled(4, 1.0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", MLEConvergenceWarning)
        est = fit_qr_volatility(m, log_h, burn=2)
    R_t = est.R * np.exp(est.params[-1] * log_h)
    ref = statsmodels_filter(m.y, m.Z, m.T, est.Q[None], R_t, m.a0, m.P0)
    np.testing.assert_allclose(est.llf, ref.loglik_t[2:].sum(), rtol=1e-9)
    assert est.names[-1] == "gamma"
