"""Smoothers: DK inverse-free recursion vs a dense joint-Gaussian solve, RTS, statsmodels."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kalman.models import assert_close, random_model
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.kalman import kalman_smoother, reference, simulation_smoother


def dense_posterior(y, Z, T, Q, R, a0, P0):
    """Posterior of all states (alpha_0..alpha_{n-1}) from the joint precision, by solving.

    Prior: alpha_0 ~ N(T_0 a0, T_0 P0 T_0' + Q_0), alpha_t | alpha_{t-1} ~ N(T_t alpha_{t-1}, Q_t);
    likelihood y_t ~ N(z_t' alpha_t, R_t). The precision is block tridiagonal.
    """
    n, k = Z.shape
    row = lambda x, t: x[t] if x.shape[0] > 1 else x[0]  # noqa: E731
    J = np.zeros((n * k, n * k))
    h = np.zeros(n * k)
    blk = lambda t: slice(t * k, (t + 1) * k)  # noqa: E731
    S0 = row(T, 0) @ P0 @ row(T, 0).T + row(Q, 0)
    J[blk(0), blk(0)] += np.linalg.inv(S0)
    h[blk(0)] += np.linalg.solve(S0, row(T, 0) @ a0)
    for t in range(1, n):
        A, Tt = np.linalg.inv(row(Q, t)), row(T, t)
        J[blk(t), blk(t)] += A
        J[blk(t - 1), blk(t - 1)] += Tt.T @ A @ Tt
        J[blk(t), blk(t - 1)] -= A @ Tt
        J[blk(t - 1), blk(t)] -= Tt.T @ A
    for t in range(n):
        if not np.isnan(y[t]):
            J[blk(t), blk(t)] += np.outer(Z[t], Z[t]) / row(R, t)
            h[blk(t)] += Z[t] * y[t] / row(R, t)
    cov = np.linalg.inv(J)
    mean = cov @ h
    return mean.reshape(n, k), np.stack([cov[blk(t), blk(t)] for t in range(n)])


@pytest.mark.parametrize(("seed", "k", "n", "n_missing"), [(0, 1, 15, 0), (1, 2, 25, 3),
                                                           (2, 3, 30, 5), (3, 5, 20, 2)])
def test_smoother_equals_dense_joint_gaussian_posterior(seed, k, n, n_missing):
    m = random_model(seed, k, n, n_missing=n_missing)
    sm = kalman_smoother(*m)
    mean, cov = dense_posterior(*m)
    assert_close(sm.a_smooth, mean, 1e-9, "mean")
    assert_close(sm.P_smooth, cov, 1e-9, "cov")


@pytest.mark.parametrize(("seed", "k", "n", "tv", "n_missing", "intercept"),
                         [(4, 2, 500, True, 10, True), (5, 4, 1500, False, 30, False),
                          (6, 6, 2000, True, 50, True)])
def test_smoother_equals_statsmodels_and_rts(seed, k, n, tv, n_missing, intercept):
    m = random_model(seed, k, n, time_varying=tv, n_missing=n_missing, intercept=intercept)
    sm = kalman_smoother(*m)
    ref = statsmodels_filter(*m)
    assert_close(sm.a_smooth, ref.a_smooth, 1e-9, "a_smooth vs statsmodels")
    assert_close(sm.P_smooth, ref.P_smooth, 1e-9, "P_smooth vs statsmodels")
    rts = reference.rts_smoother(*m)
    assert_close(sm.a_smooth, rts.a_smooth, 1e-9, "a_smooth vs RTS")
    assert_close(sm.P_smooth, rts.P_smooth, 1e-9, "P_smooth vs RTS")


def test_last_smoothed_state_is_last_filtered_and_covariances_symmetric_psd():
    m = random_model(7, 3, 200, n_missing=5, intercept=True)
    sm = kalman_smoother(*m)
    np.testing.assert_allclose(sm.a_smooth[-1], sm.filtered.a_filt[-1], rtol=1e-12)
    np.testing.assert_allclose(sm.P_smooth[-1], sm.filtered.P_filt[-1], rtol=1e-12)
    np.testing.assert_array_equal(sm.P_smooth, np.swapaxes(sm.P_smooth, 1, 2))
    assert np.linalg.eigvalsh(sm.P_smooth).min() > 0
    # smoothing never increases the variance
    assert np.all(np.diagonal(sm.P_smooth, axis1=1, axis2=2)
                  <= np.diagonal(sm.filtered.P_filt, axis1=1, axis2=2) + 1e-12)


def test_simulation_smoother_draws_match_smoothed_moments():
    m = random_model(8, 3, 60, n_missing=4, intercept=True)
    sm = kalman_smoother(*m)
    D = 4000
    draws = simulation_smoother(*m, n_draws=D, seed=123)
    assert draws.shape == (D, 60, 3)
    sd = np.sqrt(np.diagonal(sm.P_smooth, axis1=1, axis2=2))
    z = (draws.mean(0) - sm.a_smooth) / (sd / np.sqrt(D))
    assert np.abs(z).max() < 5.0
    # sample covariance at each t vs P_{t|n}: relative error of the variances ~ sqrt(2/D) = 2.2%
    var_ratio = draws.var(0, ddof=1) / sd**2
    assert np.abs(var_ratio - 1).max() < 5 * np.sqrt(2 / D)
    cov_emp = np.einsum("dti,dtj->tij", draws - draws.mean(0), draws - draws.mean(0)) / (D - 1)
    corr = lambda c: c / np.sqrt(np.einsum("tii,tjj->tij", c, c))  # noqa: E731
    assert np.abs(corr(cov_emp) - corr(sm.P_smooth)).max() < 5 / np.sqrt(D)


def test_simulation_smoother_is_reproducible_with_a_seed():
    m = random_model(9, 2, 40)
    a = simulation_smoother(*m, n_draws=5, seed=7)
    b = simulation_smoother(*m, n_draws=5, seed=7)
    c = simulation_smoother(*m, n_draws=5, seed=8)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_smoother_is_accurate_with_the_seeds_near_diffuse_intercept_prior():
    # P0 = 1e6 for the intercept next to weekly-return variances: the information-form dense
    # solve has no cancellation here, so it is the referee (the r/N recursion lost every digit
    # of P_{0|n}, giving a negative variance)
    rng = np.random.default_rng(3)
    n, k = 40, 3
    Z = np.column_stack([np.ones(n), rng.normal(0, 0.02, (n, 2))])
    y = rng.normal(0, 0.01, n)
    model = (y, Z, np.eye(k)[None], np.diag([1e-8, 1e-4, 1e-4])[None], np.array([1e-4]),
             np.zeros(k), np.diag([1e6, 100.0, 100.0]))
    sm = kalman_smoother(*model)
    mean, cov = dense_posterior(*model)
    for t in range(n):
        np.testing.assert_allclose(sm.P_smooth[t], cov[t], rtol=1e-5,
                                   atol=1e-6 * np.abs(cov[t]).max())
    assert_close(sm.a_smooth, mean, 1e-5)
