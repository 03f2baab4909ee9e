"""The adjoint gradient against central finite differences in log space."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kalman.models import assert_close, mean_reverting_model, random_model
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.kalman import kalman_filter, loglik_vjp, reference


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


# --- the gradient with respect to the transition T --------------------------------------------


def _entrywise_central_diff(f, T, h=1e-6):
    """Central differences of f in every entry of T (any shape)."""
    g = np.empty_like(T)
    for idx in np.ndindex(T.shape):
        Tp, Tm = T.copy(), T.copy()
        Tp[idx] += h
        Tm[idx] -= h
        g[idx] = (f(Tp) - f(Tm)) / (2 * h)
    return g


@pytest.mark.parametrize(
    ("seed", "k", "time_varying"), [(40, 1, False), (41, 2, False), (42, 3, True), (43, 4, True)]
)
def test_transition_gradient_equals_central_differences_of_the_plain_numpy_filter(
    seed, k, time_varying
):
    """dT (constant T, and one T_t per step) against central differences of the weighted
    terms of `kalman.reference.kalman_filter` (the plain-numpy covariance filter, a different
    code from the factored kernels), with NaN targets."""
    m = random_model(seed, k, 60, time_varying=time_varying, n_missing=3)
    w = np.random.default_rng(seed).normal(size=m.n)
    g = loglik_vjp(*m, weights=w, transition=True)

    def f(T):
        return float(w @ reference.kalman_filter(m.y, m.Z, T, *m[3:]).loglik_t)

    assert g.dT.shape == m.T.shape
    numeric = _entrywise_central_diff(f, m.T)
    np.testing.assert_allclose(g.dT, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


@pytest.mark.parametrize(("seed", "k"), [(44, 1), (45, 2), (46, 3)])
def test_transition_gradient_of_mean_reverting_model_equals_statsmodels_differences(seed, k):
    """dT of the augmented mean-reverting model ([beta; mu], Q singular on mu) against central
    differences of statsmodels' own filter (`statsmodels_filter`) log-likelihood."""
    m = mean_reverting_model(seed, k)
    g = loglik_vjp(*m, transition=True)

    def f(T):
        return statsmodels_filter(m.y, m.Z, T, *m[3:]).loglik

    numeric = _entrywise_central_diff(f, m.T)
    np.testing.assert_allclose(g.dT, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


@pytest.mark.parametrize(("seed", "k"), [(47, 1), (48, 2), (49, 3)])
def test_mean_reverting_model_loglik_equals_statsmodels_filter(seed, k):
    """The augmented model's log-likelihood (and its terms) against statsmodels' filter, 1e-9
    relative; the transition-tape forward sweep gives the same terms."""
    m = mean_reverting_model(seed, k)
    sm = statsmodels_filter(*m)
    assert kalman_filter(*m).loglik == pytest.approx(sm.loglik, rel=1e-9)
    g = loglik_vjp(*m, transition=True)
    assert g.value == pytest.approx(sm.loglik, rel=1e-9)
    np.testing.assert_allclose(g.loglik_t, sm.loglik_t, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("seed", "k"), [(50, 2), (51, 3)])
def test_transition_gradient_leaves_the_other_gradients_as_without_it(seed, k):
    """Asking for dT changes the forward sweep (the full filter) but not dQ, dR, da0, dP0 nor
    the terms, beyond rounding (s_t = K_t F_t instead of P z); without it dT is None."""
    m = random_model(seed, k, 80, time_varying=False, n_missing=3)
    w = np.random.default_rng(seed).normal(size=m.n)
    plain = loglik_vjp(*m, weights=w)
    with_T = loglik_vjp(*m, weights=w, transition=True)
    assert plain.dT is None
    assert_close(with_T.loglik_t, plain.loglik_t, 1e-13, "terms")  # two filters: rounding apart
    for name in ("dQ", "dR", "da0", "dP0"):
        assert_close(getattr(with_T, name), getattr(plain, name), 1e-12, name)


def test_transition_gradient_at_the_identity_takes_the_random_walk_sweep():
    """T = I (phi = 1) runs the random-walk prediction; dT there still equals central
    differences of the plain-numpy filter."""
    m = random_model(52, 2, 50, time_varying=False, n_missing=2)
    m = m._replace(T=np.eye(2)[None])
    g = loglik_vjp(*m, transition=True)

    def f(T):
        return reference.kalman_filter(m.y, m.Z, T, *m[3:]).loglik

    numeric = _entrywise_central_diff(f, m.T)
    np.testing.assert_allclose(g.dT, numeric, rtol=1e-6, atol=1e-6 * np.abs(numeric).max())


def test_adjoint_sweep_refuses_a_constant_k_that_does_not_fit():
    """The constant-k copy (random walks, narrow tapes) checks k and T instead of reading
    past the arrays: the wrong k, or a T that is not the identity, raises."""
    from tvbeta.kalman.filter import constant_k, tape_kernel
    from tvbeta.kalman.gradient import adjoint_kernel

    m = _const_model(0, 2, 40, n_missing=0)
    ll, tape, T = np.empty(m.n), np.empty((m.n, 4)), np.eye(2)[None]
    Q = np.diag([0.01, 0.02])[None]
    assert tape_kernel(m.y, m.Z, T, Q, m.R, m.a0, m.P0, ll, tape, constant_k(2)) == -1
    grads = np.empty((1, 2, 2)), np.empty(1), np.empty(2), np.empty((2, 2))
    w = np.ones(m.n)
    adjoint_kernel(m.y, m.Z, T, w, tape, *grads, grads[0], constant_k(2))  # fits: runs
    with pytest.raises(ValueError, match="static_k"):
        adjoint_kernel(m.y, m.Z, T, w, tape, *grads, grads[0], constant_k(3))
    with pytest.raises(ValueError, match="static_k"):
        adjoint_kernel(m.y, m.Z, 0.9 * T, w, tape, *grads, grads[0], constant_k(2))
