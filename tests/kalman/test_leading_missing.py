"""Burn counts observed steps, and rows before the first observation are not in the model.

A fund that starts later than its factors has leading rows with a missing target. The model
starts at its first return: (a0, P0) describe the state just before it, and the empty rows
neither predict nor update. References: statsmodels on the trimmed arrays (its exact filter
and smoother), the kernels' own outputs checked against statsmodels elsewhere, and central
finite differences for the gradient.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.kalman.models import assert_close, random_model
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.kalman import (
    StateSpace,
    kalman_filter,
    kalman_loglik,
    kalman_smoother,
    loglik_batch,
    loglik_vjp,
    reference,
    simulation_smoother,
)
from tvbeta.kalman.arrays import burn_row

LEAD = 20


def _leading_empty(m: StateSpace, lead: int = LEAD) -> StateSpace:
    """The model with its first ``lead`` targets missing (the data of a later-starting fund)."""
    y = m.y.copy()
    y[:lead] = np.nan
    return m._replace(y=y)


def _trimmed(m: StateSpace, lead: int = LEAD) -> StateSpace:
    """The model from row ``lead`` on: per-time T, Q, R trimmed alike; same a0, P0."""
    cut = lambda x: x[lead:] if x.shape[0] > 1 else x  # noqa: E731
    return StateSpace(m.y[lead:], m.Z[lead:], cut(m.T), cut(m.Q), cut(m.R), m.a0, m.P0)


@pytest.mark.parametrize("burn", [0, 1, 7, 95, 96, 200])
def test_burn_row_is_the_row_of_the_first_counted_observation(burn):
    """Reference: numpy's positions of the observed values."""
    y = random_model(1, 1, 100, n_missing=30).y
    y[:4] = np.nan
    observed = np.flatnonzero(~np.isnan(y))
    expected = observed[burn] if burn < observed.size else y.size
    assert burn_row(y, burn) == expected


@pytest.mark.parametrize("burn", [0, 3, 12])
def test_loglik_burn_counts_observed_steps(burn):
    """Reference: statsmodels' llf_obs summed over the observed steps after the first burn."""
    m = random_model(2, 3, 120, time_varying=True)
    y = m.y.copy()
    y[[1, 2, 5, 8, 9, 40]] = np.nan  # missing values inside the burn span too
    m = m._replace(y=y)
    sm = statsmodels_filter(*m)
    expected = sm.loglik_t[np.flatnonzero(~np.isnan(y))[burn:]].sum()
    assert kalman_loglik(*m, burn=burn) == pytest.approx(expected, rel=1e-10)
    assert loglik_vjp(*m, burn=burn).value == pytest.approx(expected, rel=1e-10)
    batch = loglik_batch(*(np.asarray(x)[None] for x in m), burn=burn)
    assert batch[0] == pytest.approx(expected, rel=1e-10)


@pytest.mark.parametrize(("seed", "k", "tv", "intercept"), [(3, 1, True, False),
                                                            (4, 3, False, True),
                                                            (5, 4, True, True)])  # fmt: skip
def test_filter_starts_at_the_first_observation(seed, k, tv, intercept):
    """Rows from the first observation on are statsmodels' filter on the trimmed model; the
    leading rows are NaN (states, covariances, v, F) with K = 0 and no likelihood term."""
    full = random_model(seed, k, 150, time_varying=tv, n_missing=4, intercept=intercept)
    m = _leading_empty(full)
    ours, sm = kalman_filter(*m), statsmodels_filter(*_trimmed(full))
    assert ours.loglik == pytest.approx(sm.loglik, rel=1e-10)
    for name in ("a_pred", "P_pred", "a_filt", "P_filt", "loglik_t"):
        assert_close(getattr(ours, name)[LEAD:], getattr(sm, name), 1e-9, name)
        assert_close(getattr(reference.kalman_filter(*m), name), getattr(ours, name), 1e-12,
                     f"{name} vs the numpy reference")  # fmt: skip
    for name in ("a_pred", "P_pred", "a_filt", "P_filt", "v", "F"):
        assert np.isnan(getattr(ours, name)[:LEAD]).all(), name
    assert np.all(ours.K[:LEAD] == 0.0) and np.all(ours.loglik_t[:LEAD] == 0.0)
    for burn in (0, 5):
        assert kalman_loglik(*m, burn=burn) == pytest.approx(
            kalman_loglik(*_trimmed(full), burn=burn), rel=1e-12
        )


def test_smoother_starts_at_the_first_observation():
    """Reference: statsmodels' smoothed states on the trimmed model, and the numpy RTS."""
    full = random_model(6, 3, 200, time_varying=True, n_missing=5, intercept=True)
    m = _leading_empty(full)
    ours, sm = kalman_smoother(*m), statsmodels_filter(*_trimmed(full))
    assert_close(ours.a_smooth[LEAD:], sm.a_smooth, 1e-9, "a_smooth")
    assert_close(ours.P_smooth[LEAD:], sm.P_smooth, 1e-9, "P_smooth")
    rts = reference.rts_smoother(*m)
    assert_close(ours.a_smooth[LEAD:], rts.a_smooth[LEAD:], 1e-9, "a_smooth vs RTS")
    assert np.isnan(ours.a_smooth[:LEAD]).all() and np.isnan(ours.P_smooth[:LEAD]).all()


def test_simulation_smoother_paths_start_at_the_first_observation():
    """Draws are NaN before the first observation; after it their mean and variance are the
    smoother's (checked against statsmodels above) within Monte Carlo error."""
    m = _leading_empty(random_model(7, 2, 60, n_missing=3, intercept=True))
    sm = kalman_smoother(*m)
    D = 4000
    draws = simulation_smoother(*m, n_draws=D, seed=5)
    assert np.isnan(draws[:, :LEAD]).all() and np.isfinite(draws[:, LEAD:]).all()
    sd = np.sqrt(np.diagonal(sm.P_smooth, axis1=1, axis2=2))[LEAD:]
    z = (draws[:, LEAD:].mean(0) - sm.a_smooth[LEAD:]) / (sd / np.sqrt(D))
    assert np.abs(z).max() < 5.0
    assert np.abs(draws[:, LEAD:].var(0, ddof=1) / sd**2 - 1).max() < 5 * np.sqrt(2 / D)


def test_gradient_with_leading_empty_rows_equals_finite_differences():
    """d loglik / d(log q, log R, a0) by the adjoint vs central differences of kalman_loglik
    (burn 3 observed steps); per-time Q gets no gradient on the leading rows."""
    base = random_model(8, 2, 90, time_varying=False, n_missing=3, intercept=True)
    m = _leading_empty(base)
    q = np.array([0.02, 0.05])

    def f(x):
        return kalman_loglik(m.y, m.Z, m.T, np.diag(np.exp(x[:2]))[None], np.exp(x[2:3]),
                             x[3:], m.P0, burn=3)  # fmt: skip

    x = np.r_[np.log(q), np.log(m.R), m.a0]
    g = loglik_vjp(m.y, m.Z, m.T, np.diag(q)[None], m.R, m.a0, m.P0, burn=3)
    analytic = np.r_[np.diagonal(g.dQ[0]) * q, g.dR * m.R, g.da0]
    h = 1e-5
    numeric = np.array([(f(x + h * e) - f(x - h * e)) / (2 * h) for e in np.eye(x.size)])
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
    per_time = loglik_vjp(m.y, m.Z, m.T, np.repeat(np.diag(q)[None], 90, axis=0), m.R, m.a0,
                          m.P0)  # fmt: skip
    assert np.all(per_time.dQ[:LEAD] == 0.0) and np.any(per_time.dQ[LEAD] != 0.0)
