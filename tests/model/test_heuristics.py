"""The seed's rules of thumb on arrays, against plain per-window loops."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tests.kalman.models import assert_close
from tvbeta.model import heuristics as hx


def _data(seed: int, n: int = 80, k: int = 3) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = np.column_stack([np.ones(n), rng.normal(0, 0.02, size=(n, k - 1))])
    y = X @ rng.normal(size=k) + rng.normal(0, 0.01, size=n)
    return y, X


@pytest.mark.parametrize("window", [1, 5, 20])
def test_rolling_ols_betas_use_only_the_past_window(window):
    y, X = _data(1)
    expected = np.full(X.shape, np.nan)
    for t in range(window, len(y)):
        expected[t] = np.linalg.pinv(X[t - window : t]) @ y[t - window : t]
    got = hx.rolling_ols_betas(y, X, window)
    assert np.isnan(got[:window]).all()
    assert_close(got[window:], expected[window:], rtol=1e-10)


def test_rolling_ols_has_no_look_ahead():
    y, X = _data(2)
    before = hx.rolling_ols_betas(y, X, 10)
    y2 = y.copy()
    y2[50:] += 1.0  # changing the future from step 50 on ...
    after = hx.rolling_ols_betas(y2, X, 10)
    np.testing.assert_array_equal(after[:51], before[:51])  # ... leaves steps <= 50 unchanged


def test_rolling_ols_is_one_batched_pinv(monkeypatch):
    calls = []
    real_pinv = np.linalg.pinv

    def counting_pinv(a, *args, **kwargs):
        calls.append(np.shape(a))
        return real_pinv(a, *args, **kwargs)

    monkeypatch.setattr(np.linalg, "pinv", counting_pinv)
    y, X = _data(3)
    hx.rolling_ols_betas(y, X, 12)
    assert calls == [(len(y) - 12, 12, X.shape[1])]


def test_rolling_ols_residual_var_is_the_population_variance():
    y, X = _data(4)
    window = 15
    expected = np.full(len(y), np.nan)
    for t in range(window, len(y)):
        Xw, yw = X[t - window : t], y[t - window : t]
        expected[t] = np.var(yw - Xw @ (np.linalg.pinv(Xw) @ yw))
    got = hx.rolling_ols_residual_var(y, X, window)
    assert np.isnan(got[:window]).all()
    assert_close(got[window:], expected[window:], rtol=1e-10)


def test_a_missing_value_is_skipped_and_the_window_reaches_back_past_it():
    """Step t regresses on the last 10 rows before t with y observed: past the gap at row 30
    the window starts one row earlier (a plain loop over those rows is the reference)."""
    y, X = _data(5)
    y[30] = np.nan
    window = 10
    observed = np.flatnonzero(~np.isnan(y))
    expected = np.full(len(y), np.nan)
    for t in range(window, len(y)):
        rows = observed[observed < t][-window:]
        Xw, yw = X[rows], y[rows]
        expected[t] = np.var(yw - Xw @ (np.linalg.pinv(Xw) @ yw))
    got = hx.rolling_ols_residual_var(y, X, window)
    assert np.isnan(got[:window]).all()
    assert_close(got[window:], expected[window:], rtol=1e-10)
    # the betas too, at a step whose window spans the gap: rows 21..29 and 31
    rows = [*range(21, 30), 31]
    assert_close(hx.rolling_ols_betas(y, X, window)[32], np.linalg.pinv(X[rows]) @ y[rows],
                 rtol=1e-10)  # fmt: skip


@pytest.mark.parametrize("window", [2, 7])
def test_rolling_var_is_pandas_rolling_var_of_the_observed_values(window):
    """Each column: pandas' rolling variance of its observed values; a missing row keeps the
    variance of the values before it."""
    rng = np.random.default_rng(6)
    x = rng.normal(1.0, 0.1, size=(60, 2))
    x[20, 1] = np.nan
    x[3, 0] = np.nan  # inside the warm-up
    expected = np.column_stack([
        pd.Series(col).dropna().rolling(window).var().reindex(range(60)).ffill().to_numpy()
        for col in x.T
    ])  # fmt: skip
    got = hx.rolling_var(x, window)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert_close(got[~np.isnan(got)], expected[~np.isnan(expected)], rtol=1e-10)


def test_rolling_var_without_missing_values_is_pandas_rolling_var():
    x = np.random.default_rng(11).normal(1.0, 0.1, size=(40, 2))
    expected = pd.DataFrame(x).rolling(5).var().to_numpy()
    got = hx.rolling_var(x, 5)
    np.testing.assert_array_equal(np.isnan(got), np.isnan(expected))
    assert_close(got[4:], expected[4:], rtol=1e-10)


def test_rolling_factor_vol_is_the_mean_rolling_std():
    rng = np.random.default_rng(7)
    H = rng.normal(0, [0.01, 0.03], size=(50, 2))
    expected = pd.DataFrame(H).rolling(8).std().mean(axis=1).to_numpy()
    got = hx.rolling_factor_vol(H, 8)
    assert np.isnan(got[:7]).all()
    assert_close(got[7:], expected[7:], rtol=1e-10)


def test_clip_and_backfill():
    x = np.array([np.nan, np.nan, 5e-9, 2.0, np.nan, 3.0, np.nan])
    got = hx.clip_and_backfill(x, 1e-8)
    # leading gaps take the next value (after clipping), inner gaps the next, the end the last
    np.testing.assert_array_equal(got, [1e-8, 1e-8, 1e-8, 2.0, 3.0, 3.0, 3.0])


def test_clip_and_backfill_works_column_by_column():
    x = np.array([[np.nan, 1.0], [2.0, np.nan], [3.0, 4.0]])
    expected = pd.DataFrame(x).clip(lower=0.0).bfill().to_numpy()
    np.testing.assert_array_equal(hx.clip_and_backfill(x, 0.0), expected)


def test_clip_and_backfill_needs_a_value():
    with pytest.raises(ValueError, match="no valid value"):
        hx.clip_and_backfill(np.full(4, np.nan), 0.0)


def test_full_sample_ols():
    y, X = _data(8)
    beta = np.linalg.pinv(X) @ y
    assert_close(hx.ols_beta(y, X), beta, rtol=1e-12)
    assert hx.ols_residual_var(y, X) == pytest.approx(np.var(y - X @ beta), rel=1e-12)


def test_factor_variances_are_sample_variances():
    rng = np.random.default_rng(9)
    H = rng.normal(size=(30, 3))
    expected = pd.DataFrame(H).var().to_numpy()
    assert_close(hx.factor_variances(H), expected, rtol=1e-12)


@pytest.mark.parametrize("window", [0, 80, 100])
def test_window_must_fit_the_data(window):
    y, X = _data(10)
    with pytest.raises(ValueError, match="window"):
        hx.rolling_ols_betas(y, X, window)
