"""The adjoint gradient against central finite differences in log space."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kalman.models import random_model
from tvbeta.kalman import kalman_filter, loglik_vjp


def _weighted(m, w, Q, R):
    return float(w @ kalman_filter(m.y, m.Z, m.T, Q, R, m.a0, m.P0).loglik_t)


def central_diff(f, x, h=1e-5):
    g = np.empty_like(x)
    for i in range(x.size):
        e = np.zeros_like(x)
        e[i] = h
        g[i] = (f(x + e) - f(x - e)) / (2 * h)
    return g


def _const_model(seed, k, n, n_missing):
    return random_model(seed, k, n, time_varying=False, n_missing=n_missing, intercept=k > 1)


@pytest.mark.parametrize("weights", ["total", "random"])
@pytest.mark.parametrize(("seed", "k", "n"), [(0, 1, 80), (1, 2, 200), (2, 4, 150), (3, 6, 100)])
def test_gradient_diagonal_q_and_r_equals_finite_differences(seed, k, n, weights):
    m = _const_model(seed, k, n, n_missing=3)
    rng = np.random.default_rng(seed)
    w = np.ones(n) if weights == "total" else rng.normal(size=n)
    q = rng.uniform(0.01, 0.2, k)

    def f(logp):
        return _weighted(m, w, np.diag(np.exp(logp[:k]))[None], np.exp(logp[k:]))

    x = np.log(np.r_[q, m.R])
    g = loglik_vjp(m.y, m.Z, m.T, np.diag(q)[None], m.R, m.a0, m.P0, weights=w)
    # chain rule to log space: d/dlog q = q * d/dq
    analytic = np.r_[np.diagonal(g.dQ[0]) * q, g.dR * m.R]
    numeric = central_diff(f, x)
    np.testing.assert_allclose(analytic, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())
    assert g.value == pytest.approx(f(x), rel=1e-13)


@pytest.mark.parametrize(("seed", "k"), [(4, 2), (5, 3), (6, 5)])
def test_gradient_full_q_through_cholesky_equals_finite_differences(seed, k):
    m = _const_model(seed, k, 120, n_missing=2)
    rng = np.random.default_rng(seed)
    w = rng.uniform(0, 2, 120)
    L = np.linalg.cholesky(m.Q[0])
    il = np.tril_indices(k)

    def unpack(theta):
        M = np.zeros((k, k))
        M[il] = theta
        M[np.diag_indices(k)] = np.exp(np.diag(M))  # log-diagonal Cholesky
        return M

    theta = L[il].copy()
    theta[[i * (i + 1) // 2 + i for i in range(k)]] = np.log(np.diag(L))

    def f(th):
        Lm = unpack(th)
        return _weighted(m, w, (Lm @ Lm.T)[None], m.R)

    Lm = unpack(theta)
    g = loglik_vjp(m.y, m.Z, m.T, (Lm @ Lm.T)[None], m.R, m.a0, m.P0, weights=w)
    dL = 2 * g.dQ[0] @ Lm
    dL[np.diag_indices(k)] *= np.diag(Lm)  # through exp of the diagonal
    numeric = central_diff(f, theta)
    np.testing.assert_allclose(dL[il], numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


def test_gradient_respects_burn():
    m = _const_model(7, 2, 100, n_missing=0)
    full = loglik_vjp(*m, burn=0)
    burned = loglik_vjp(*m, burn=10)
    w = np.r_[np.zeros(10), np.ones(90)]
    explicit = loglik_vjp(*m, weights=w)
    np.testing.assert_allclose(burned.dQ, explicit.dQ, rtol=1e-14)
    assert burned.value == pytest.approx(full.loglik_t[10:].sum(), rel=1e-13)


def test_gradient_with_respect_to_time_varying_r_and_initial_state():
    m = random_model(8, 2, 40, time_varying=True, n_missing=2)
    g = loglik_vjp(*m)
    h = 1e-6
    for t in (0, 17, 39):
        Rp, Rm = m.R.copy(), m.R.copy()
        Rp[t] += h
        Rm[t] -= h
        num = (kalman_filter(*m[:4], Rp, *m[5:]).loglik - kalman_filter(*m[:4], Rm, *m[5:]).loglik)
        assert g.dR[t] == pytest.approx(num / (2 * h), rel=1e-6, abs=1e-9)
    for i in range(2):
        e = np.zeros(2)
        e[i] = h
        num = (kalman_filter(*m[:5], m.a0 + e, m.P0).loglik
               - kalman_filter(*m[:5], m.a0 - e, m.P0).loglik) / (2 * h)
        assert g.da0[i] == pytest.approx(num, rel=1e-6, abs=1e-9)
