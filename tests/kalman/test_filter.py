"""Filter and log-likelihood: numba kernels against the numpy reference and statsmodels."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kalman.models import assert_close, random_model
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.kalman import kalman_filter, kalman_loglik, loglik_batch, reference

CASES = [
    # (seed, k, n, time_varying, n_missing, intercept)
    (0, 1, 50, True, 0, False),
    (1, 2, 400, True, 5, False),
    (2, 3, 2000, True, 40, True),
    (3, 4, 300, False, 0, True),
    (4, 5, 800, True, 10, False),
    (5, 6, 1000, False, 25, True),
    (6, 6, 120, True, 3, False),
]


@pytest.mark.parametrize(("seed", "k", "n", "tv", "n_missing", "intercept"), CASES)
def test_filter_equals_statsmodels(seed, k, n, tv, n_missing, intercept):
    m = random_model(seed, k, n, time_varying=tv, n_missing=n_missing, intercept=intercept)
    ours = kalman_filter(*m)
    sm = statsmodels_filter(*m)
    assert ours.loglik == pytest.approx(sm.loglik, rel=1e-9)
    assert_close(ours.loglik_t, sm.loglik_t, 1e-9, "loglik_t")
    assert_close(ours.a_pred, sm.a_pred, 1e-9, "a_pred")
    assert_close(ours.P_pred, sm.P_pred, 1e-9, "P_pred")
    assert_close(ours.a_filt, sm.a_filt, 1e-9, "a_filt")
    assert_close(ours.P_filt, sm.P_filt, 1e-9, "P_filt")
    obs = ~np.isnan(m.y)
    assert_close(ours.v[obs], sm.v[obs], 1e-9, "v")
    assert_close(ours.F[obs], sm.F[obs], 1e-9, "F")


@pytest.mark.parametrize(("seed", "k", "n", "tv", "n_missing", "intercept"), CASES)
def test_numba_filter_equals_numpy_reference(seed, k, n, tv, n_missing, intercept):
    m = random_model(seed, k, n, time_varying=tv, n_missing=n_missing, intercept=intercept)
    ours, ref = kalman_filter(*m), reference.kalman_filter(*m)
    for name in ("a_pred", "P_pred", "a_filt", "P_filt", "K", "loglik_t"):
        assert_close(getattr(ours, name), getattr(ref, name), 1e-12, name)
    obs = ~np.isnan(m.y)
    assert_close(ours.v[obs], ref.v[obs], 1e-12, "v")
    assert np.all(np.isnan(ours.v[~obs])) and np.all(ours.loglik_t[~obs] == 0.0)
    assert ours.loglik == pytest.approx(ref.loglik, rel=1e-12)


def test_missing_step_predicts_without_update():
    m = random_model(10, 2, 30, n_missing=0)
    y = m.y.copy()
    y[7] = np.nan
    f = kalman_filter(y, *m[1:])
    np.testing.assert_array_equal(f.a_filt[7], f.a_pred[7])
    np.testing.assert_array_equal(f.P_filt[7], f.P_pred[7])
    assert f.loglik_t[7] == 0.0 and np.all(f.K[7] == 0.0)


def test_covariances_symmetric_psd_with_huge_intercept_prior():
    # The seed's intercept prior (P0 = 1e6) next to tiny weekly variances stresses P - s s'/F.
    rng = np.random.default_rng(3)
    n, k = 400, 3
    Z = np.column_stack([np.ones(n), rng.normal(0, 0.02, (n, 2))])
    y = rng.normal(0, 0.01, n)
    P0 = np.diag([1e6, 100.0, 100.0])
    f = kalman_filter(y, Z, np.eye(k)[None], 1e-8 * np.eye(k)[None], [1e-5], np.zeros(k), P0)
    for P in (f.P_pred, f.P_filt):
        np.testing.assert_array_equal(P, np.swapaxes(P, 1, 2))
        assert np.linalg.eigvalsh(P).min() > -1e-12 * np.abs(P).max()
    assert np.all(f.F > 0) and np.isfinite(f.loglik)


def test_loglik_matches_filter_sum_after_burn():
    """burn counts observed steps: the terms of the observed steps after the first 25."""
    m = random_model(11, 3, 200, n_missing=4)
    f = kalman_filter(*m)
    assert kalman_loglik(*m, burn=0) == pytest.approx(f.loglik, rel=1e-13)
    after = np.flatnonzero(~np.isnan(m.y))[25:]
    assert kalman_loglik(*m, burn=25) == pytest.approx(f.loglik_t[after].sum(), rel=1e-13)


def test_batched_loglik_equals_one_at_a_time():
    base = random_model(12, 2, 150, time_varying=False, n_missing=3)
    rng = np.random.default_rng(0)
    Qs = np.stack([base.Q * s for s in rng.uniform(0.1, 10, 20)])  # (20, 1, k, k)
    Rs = rng.uniform(0.2, 3.0, (20, 1))
    got = loglik_batch(base.y[None], base.Z[None], base.T[None], Qs, Rs, base.a0[None],
                       base.P0[None], burn=5)
    want = [kalman_loglik(base.y, base.Z, base.T, Q, R, base.a0, base.P0, burn=5)
            for Q, R in zip(Qs, Rs, strict=True)]
    assert_close(got, want, 1e-13)


def test_batched_terms_equal_the_filters_per_step_terms():
    """Reference: kalman_filter's loglik_t of each member, time-varying Q and R included."""
    models = [random_model(40 + i, 2, 90, time_varying=True, n_missing=2) for i in range(5)]
    stack = [np.stack(x) for x in zip(*models, strict=True)]
    got = loglik_batch(*stack, terms=True)
    assert got.shape == (5, 90)
    for b, m in enumerate(models):
        assert_close(got[b], kalman_filter(*m).loglik_t, 1e-12, f"member {b}")


def test_batched_loglik_over_many_series():
    models = [random_model(20 + i, 3, 100, time_varying=False, n_missing=i) for i in range(6)]
    stack = [np.stack(x) for x in zip(*models, strict=True)]
    got = loglik_batch(*stack)
    assert_close(got, [kalman_loglik(*m) for m in models], 1e-13)
