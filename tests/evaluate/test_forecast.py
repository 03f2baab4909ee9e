"""One-step predictive distributions and scores, against scipy, statsmodels and simulation."""

from __future__ import annotations

import numpy as np
import pytest
import statsmodels.api as sm
from scipy import stats

from tests.kalman.models import random_model
from tests.model.nile import nile_frame
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.evaluate.forecast import (
    gaussian_forecast,
    kalman_predictive,
    mixture_forecast,
    rolling_ols_forecast,
    scores,
    stacked_forecast,
)


def test_gaussian_forecast_equals_scipy():
    rng = np.random.default_rng(0)
    y, m, v = rng.normal(size=20), rng.normal(size=20), rng.uniform(0.5, 2, 20)
    fc = gaussian_forecast(y, m, v)
    np.testing.assert_allclose(fc.log_density, stats.norm.logpdf(y, m, np.sqrt(v)), rtol=1e-13)
    np.testing.assert_allclose(fc.pit, stats.norm.cdf(y, m, np.sqrt(v)), rtol=1e-13)


def test_mixture_density_is_the_mean_of_component_densities():
    rng = np.random.default_rng(1)
    D, m = 7, 15
    y, means, vars_ = rng.normal(size=m), rng.normal(size=(D, m)), rng.uniform(0.5, 2, (D, m))
    fc = mixture_forecast(y, means, vars_)
    dens = stats.norm.pdf(y, means, np.sqrt(vars_)).mean(axis=0)
    np.testing.assert_allclose(fc.log_density, np.log(dens), rtol=1e-12)
    np.testing.assert_allclose(fc.pit, stats.norm.cdf(y, means, np.sqrt(vars_)).mean(0), rtol=1e-12)
    # law of total variance
    np.testing.assert_allclose(fc.sd**2, vars_.mean(0) + means.var(0), rtol=1e-12)


def test_mixture_of_one_draw_is_the_gaussian():
    rng = np.random.default_rng(2)
    y, mu, v = rng.normal(size=9), rng.normal(size=9), rng.uniform(0.5, 2, 9)
    a, b = mixture_forecast(y, mu[None], v[None]), gaussian_forecast(y, mu, v)
    for x, z in zip(a, b, strict=True):
        np.testing.assert_allclose(x, z, rtol=1e-12)


def test_stacked_forecast_is_the_weighted_mixture_of_its_predictives():
    """Stacking (Yao et al. 2018) mixes the predictives: density, CDF and moments of a weighted
    mixture of two Gaussians, written out with scipy."""
    rng = np.random.default_rng(3)
    y, m1, m2 = rng.normal(size=12), rng.normal(size=12), rng.normal(size=12)
    v1, v2 = rng.uniform(0.5, 2, 12), rng.uniform(0.5, 2, 12)
    w = np.array([0.3, 0.7])
    fc = stacked_forecast([gaussian_forecast(y, m1, v1), gaussian_forecast(y, m2, v2)], w)
    dens = w[0] * stats.norm.pdf(y, m1, np.sqrt(v1)) + w[1] * stats.norm.pdf(y, m2, np.sqrt(v2))
    np.testing.assert_allclose(fc.log_density, np.log(dens), rtol=1e-12)
    cdf = w[0] * stats.norm.cdf(y, m1, np.sqrt(v1)) + w[1] * stats.norm.cdf(y, m2, np.sqrt(v2))
    np.testing.assert_allclose(fc.pit, cdf, rtol=1e-12)
    mean = w[0] * m1 + w[1] * m2
    np.testing.assert_allclose(fc.mean, mean, rtol=1e-12)
    np.testing.assert_allclose(fc.sd**2, w[0] * (v1 + m1**2) + w[1] * (v2 + m2**2) - mean**2,
                               rtol=1e-10)  # fmt: skip
    alone = stacked_forecast([gaussian_forecast(y, m1, v1), gaussian_forecast(y, m2, v2)],
                             np.array([1.0, 0.0]))  # fmt: skip
    np.testing.assert_allclose(alone.log_density, stats.norm.logpdf(y, m1, np.sqrt(v1)),
                               rtol=1e-12)  # fmt: skip


def test_kalman_predictive_equals_statsmodels_innovations():
    m = random_model(3, 3, 200, n_missing=5, intercept=True)
    mean, var = kalman_predictive(m)
    ref = statsmodels_filter(*m)
    obs = ~np.isnan(m.y)
    np.testing.assert_allclose(mean[obs], (m.y - ref.v)[obs], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(var, ref.F, rtol=1e-9)  # statsmodels fills F where y is missing


def test_rolling_ols_predictive_equals_statsmodels_prediction():
    rng = np.random.default_rng(4)
    n, k, w = 120, 3, 40
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    y = Z @ np.array([0.1, 1.0, -0.5]) + rng.normal(scale=0.3, size=n)
    steps = np.array([40, 77, 119])
    fc = rolling_ols_forecast(y, Z, steps, w)
    for i, t in enumerate(steps):
        res = sm.OLS(y[t - w : t], Z[t - w : t]).fit()
        pred = res.get_prediction(Z[t][None])
        assert fc.mean[i] == pytest.approx(pred.predicted_mean[0], rel=1e-10)
        scale = float(np.sqrt(pred.se_mean[0] ** 2 + res.scale))
        want = stats.t.logpdf(y[t], w - k, pred.predicted_mean[0], scale)
        assert fc.log_density[i] == pytest.approx(want, rel=1e-10)


def test_rolling_ols_window_holds_the_last_observed_rows_before_each_step():
    """Targets missing inside the windows: step t is predicted from statsmodels' OLS on the
    last w rows before t with y observed (a window of w observations, not of w rows)."""
    rng = np.random.default_rng(14)
    n, k, w = 120, 3, 40
    Z = np.column_stack([np.ones(n), rng.normal(size=(n, k - 1))])
    y = Z @ np.array([0.1, 1.0, -0.5]) + rng.normal(scale=0.3, size=n)
    y[[3, 50, 51, 90]] = np.nan
    steps = np.array([41, 52, 77, 91, 119])
    fc = rolling_ols_forecast(y, Z, steps, w)
    observed = np.flatnonzero(~np.isnan(y))
    for i, t in enumerate(steps):
        rows = observed[observed < t][-w:]
        if t == 52:  # rows 50 and 51 missing: the window starts two rows earlier
            assert rows[0] == 52 - w - 2
        res = sm.OLS(y[rows], Z[rows]).fit()
        pred = res.get_prediction(Z[t][None])
        scale = float(np.sqrt(pred.se_mean[0] ** 2 + res.scale))
        want = stats.t.logpdf(y[t], w - k, pred.predicted_mean[0], scale)
        assert fc.mean[i] == pytest.approx(pred.predicted_mean[0], rel=1e-10)
        assert fc.log_density[i] == pytest.approx(want, rel=1e-10)
        assert fc.pit[i] == pytest.approx(stats.t.cdf(y[t], w - k, pred.predicted_mean[0],
                                                      scale), rel=1e-10)  # fmt: skip


def test_rolling_ols_refuses_a_step_with_too_few_observations_before_it():
    y = np.random.default_rng(15).normal(size=60)
    y[:25] = np.nan  # observed from row 25: row 50 has 25 observations before it
    with pytest.raises(ValueError, match=r"needs 30 observed targets .* row 50 has 25"):
        rolling_ols_forecast(y, np.ones((60, 1)), np.array([50, 59]), 30)


def test_rolling_ols_without_factors_is_the_rolling_mean_with_its_t_predictive():
    """Z = ones (the local level): the predictive of y_t is the mean m and sd s (ddof 1) of
    the w years before, t_{w-1}(m, s sqrt(1 + 1/w)) -- the classical predictive of a new draw
    from a normal sample. Nile, w = 15 (models/nile.toml), the last 30 years scored."""
    y = nile_frame()["volume"]
    w, steps = 15, np.arange(70, 100)
    fc = rolling_ols_forecast(y.to_numpy(), np.ones((100, 1)), steps, w)
    m = y.rolling(w).mean().shift(1).to_numpy()[steps]
    s = y.rolling(w).std(ddof=1).shift(1).to_numpy()[steps]
    want = stats.t.logpdf(y.to_numpy()[steps], w - 1, loc=m, scale=s * np.sqrt(1 + 1 / w))
    np.testing.assert_allclose(fc.mean, m, rtol=1e-12)
    np.testing.assert_allclose(fc.log_density, want, rtol=1e-10)


def test_calibrated_gaussian_forecasts_cover_at_the_nominal_rate():
    rng = np.random.default_rng(5)
    n = 4000
    mu, v = rng.normal(size=n), rng.uniform(0.5, 2, n)
    y = mu + np.sqrt(v) * rng.normal(size=n)
    s = scores(gaussian_forecast(y, mu, v), level=0.9)
    # Binomial(4000, 0.9): sd 0.0047; 4 sd
    assert abs(s["coverage 90%"] - 0.9) < 0.02
    assert stats.kstest(gaussian_forecast(y, mu, v).pit, "uniform").pvalue > 1e-3
    assert s["RMSE"] == pytest.approx(np.sqrt(np.mean((y - mu) ** 2)))
