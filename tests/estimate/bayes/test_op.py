"""The Kalman likelihood Op: values, exact gradient, native numba code, failure handling."""

from __future__ import annotations

import warnings

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from tests.kalman.models import assert_close, mean_reverting_model, random_model

from tvbeta.estimate.bayes.op import KalmanLoglikOp, KalmanVJPOp, ReversionLogpOp
from tvbeta.kalman import kalman_filter, kalman_loglik, loglik_vjp, reference

OBJECT_MODE = "object mode"


def constant_model(seed: int, k: int, n: int = 120, n_missing: int = 3):
    """A random constant-(T, Q, R) model with missing targets, as (Q (k,k), R, y, Z, T, a0, P0)."""
    m = random_model(seed, k, n, time_varying=False, n_missing=n_missing)
    return m.Q[0], m.R[0], m.y, m.Z, m.T[0], m.a0, m.P0


def shared(*arrays):
    """Data as shared variables: the compiled graph is then independent of the data and comes
    from PyTensor's numba cache (constants would force a fresh 2-5 s compile per data set)."""
    return [pytensor.shared(np.asarray(a, dtype=np.float64)) for a in arrays]


def compile_numba(inputs, outputs):
    """pytensor.function in the default (numba) mode, failing on any object-mode fallback."""
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f = pytensor.function(inputs, outputs, mode="NUMBA")
    fallbacks = [str(w.message) for w in caught if OBJECT_MODE in str(w.message)]
    assert not fallbacks, fallbacks
    return f


@pytest.mark.parametrize(("seed", "k"), [(0, 1), (1, 2), (2, 3)])
def test_op_terms_equal_kalman_filter_loglik_terms_in_numba_and_python(seed, k):
    Q, R, y, Z, T, a0, P0 = constant_model(seed, k)
    q, r = pt.matrix("Q"), pt.scalar("R")
    ll = KalmanLoglikOp()(q, r, *shared(y, Z, T, a0, P0))
    expected = kalman_filter(y, Z, T[None], Q[None], np.array([R]), a0, P0).loglik_t
    for mode in ("NUMBA", "FAST_COMPILE"):
        got = pytensor.function([q, r], ll, mode=mode)(Q, R)
        assert_close(got, expected, 1e-12, f"mode {mode}")
    assert np.all(got[np.isnan(y)] == 0.0)


@pytest.mark.parametrize("k", [1, 3, 5])
def test_random_walk_op_terms_equal_plain_numpy_filter(k):
    """The copy compiled with k a constant (what `fit_bayes` uses for T = I, k <= 5) against
    `kalman.reference`, the plain-numpy covariance filter."""
    Q, R, y, Z, _, a0, P0 = constant_model(10 + k, k)
    T = np.eye(k)
    q, r = pt.matrix("Q"), pt.scalar("R")
    ll = KalmanLoglikOp(random_walk_k=k)(q, r, *shared(y, Z, T, a0, P0))
    expected = reference.kalman_filter(y, Z, T[None], Q[None], np.array([R]), a0, P0).loglik_t
    for mode in ("NUMBA", "FAST_COMPILE"):
        got = pytensor.function([q, r], ll, mode=mode)(Q, R)
        assert_close(got, expected, 1e-10, f"mode {mode}")


def test_random_walk_op_refuses_a_transition_that_is_not_the_identity():
    Q, R, y, Z, T, a0, P0 = constant_model(0, 2)
    q, r = pt.matrix("Q"), pt.scalar("R")
    f = pytensor.function([q, r], KalmanLoglikOp(random_walk_k=2)(q, r, *shared(y, Z, T, a0, P0)))
    with pytest.raises(ValueError, match="random-walk models"):
        f(Q, R)
    with pytest.raises(ValueError, match=r"random_walk_k must be in 0\.\.5"):
        KalmanLoglikOp(random_walk_k=6)


@pytest.mark.parametrize(("seed", "k"), [(3, 1), (4, 2), (5, 3)])
def test_op_pullback_equals_adjoint_kernel_for_random_cotangent(seed, k):
    Q, R, y, Z, T, a0, P0 = constant_model(seed, k)
    w = np.random.default_rng(seed).normal(size=len(y))
    q, r, A0, PP0 = pt.matrix("Q"), pt.scalar("R"), pt.vector("a0"), pt.matrix("P0")
    value = pt.dot(KalmanLoglikOp()(q, r, *shared(y, Z, T), A0, PP0), shared(w)[0])
    f = compile_numba([q, r, A0, PP0], [value, *pytensor.grad(value, [q, r, A0, PP0])])
    val, dQ, dR, da0, dP0 = f(Q, R, a0, P0)
    ref = loglik_vjp(y, Z, T[None], Q[None], np.array([R]), a0, P0, weights=w)
    assert_close(val, ref.value, 1e-12)
    assert_close(dQ, ref.dQ[0], 1e-12, "dQ")
    assert_close(dR, ref.dR[0], 1e-12, "dR")
    assert_close(da0, ref.da0, 1e-12, "da0")
    assert_close(dP0, ref.dP0, 1e-12, "dP0")


@pytest.mark.parametrize(("seed", "k"), [(6, 1), (7, 2), (8, 3)])
def test_gradient_matches_central_finite_differences_for_random_cotangents(seed, k):
    """d/dtheta of w' ll(Q(theta), R(theta)) with Q = L L' (log-diagonal L), R = exp(theta_R)."""
    Q0, R0, y, Z, T, a0, P0 = constant_model(seed, k)
    rng = np.random.default_rng(seed)
    w = rng.normal(size=len(y))
    tril = np.tril_indices(k)
    L0 = np.linalg.cholesky(Q0)
    L0[np.diag_indices(k)] = np.log(np.diag(L0))
    theta0 = np.r_[L0[tril], np.log(R0)]

    th = pt.vector("theta")
    L = pt.zeros((k, k))[tril].set(th[:-1])
    L = L[np.diag_indices(k)].set(pt.exp(pt.diag(L)))
    data = shared(y, Z, T, a0, P0)
    value = pt.dot(KalmanLoglikOp()(L @ L.T, pt.exp(th[-1]), *data), shared(w)[0])
    f = compile_numba([th], value)
    g = compile_numba([th], pytensor.grad(value, th))(theta0)
    h = 1e-5
    fd = np.array([
        (f(theta0 + h * e) - f(theta0 - h * e)) / (2 * h) for e in np.eye(len(theta0))
    ])  # fmt: skip
    assert_close(g, fd, 1e-6, "gradient vs central differences")


@pytest.mark.parametrize("k", [1, 2])
def test_op_passes_verify_grad_in_log_space(k):
    Q0, R0, y, Z, T, a0, P0 = constant_model(10 + k, k)
    q_diag = np.diag(Q0).copy()
    data = shared(y, Z, T, a0, P0)

    def total(log_q, log_r):
        return KalmanLoglikOp()(pt.diag(pt.exp(log_q)), pt.exp(log_r), *data).sum()

    verify_grad(total, [np.log(q_diag), np.array(np.log(R0))],
                rng=np.random.default_rng(42))  # fmt: skip


def test_model_logp_and_gradient_compile_without_object_mode():
    """The whole model's logp + dlogp, as NUTS compiles it, is native numba code."""
    from tvbeta.data import simulate
    from tvbeta.estimate.bayes.model import build_model

    sim = simulate(80, 2, Q=[1e-4, 1e-4, 1e-4], R=1e-4, beta0=0.5, intercept=True, seed=0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for q in ("diag", "full"):
            model = build_model(sim.frame, "y", ["f1", "f2"], q=q, burn=5)
            fn = model.logp_dlogp_function(ravel_inputs=True)
            fn.set_extra_values({})
            x = np.concatenate([np.ravel(v) for v in model.initial_point().values()])
            logp, grad = fn(x)
            assert np.isfinite(logp) and np.all(np.isfinite(grad))
    fallbacks = [str(w.message) for w in caught if OBJECT_MODE in str(w.message)]
    assert not fallbacks, fallbacks


def test_numerical_failure_gives_minus_inf_logp_and_zero_gradient_instead_of_raising():
    Q, R, y, Z, T, a0, P0 = constant_model(20, 2)
    q, r = pt.matrix("Q"), pt.scalar("R")
    total = KalmanLoglikOp()(q, r, *shared(y, Z, T, a0, P0)).sum()
    f = compile_numba([q, r], [total, *pytensor.grad(total, [q, r])])
    for bad_Q, bad_R in ((Q, -1e6), (Q * np.nan, R)):
        val, dQ, dR = f(bad_Q, bad_R)
        assert val == -np.inf
        assert np.all(dQ == 0.0) and dR == 0.0


def test_vjp_op_has_the_shapes_of_its_inputs():
    Q, R, y, Z, T, a0, P0 = constant_model(21, 3)
    ll, tape = KalmanLoglikOp().make_node(*shared(Q, R, y, Z, T, a0, P0)).outputs
    outs = KalmanVJPOp()(shared(np.ones(len(y)))[0], ll, tape, *shared(y, Z, T, [R], Q, a0, P0))
    values = pytensor.function([], list(outs), mode="NUMBA")()
    assert [v.shape for v in values] == [(3, 3), (1,), (3,), (3, 3)]
    total = kalman_loglik(y, Z, T[None], Q[None], np.array([R]), a0, P0)
    assert np.isfinite(total)


def per_step_model(seed: int, k: int, n: int = 120):
    """A constant-(T, Q) model with a per-step R_t (n,) that swings over a factor of 20."""
    Q, R, y, Z, T, a0, P0 = constant_model(seed, k, n)
    R_t = R * np.exp(1.5 * np.sin(np.arange(n) / 7.0))
    return Q, R_t, y, Z, T, a0, P0


@pytest.mark.parametrize(("seed", "k"), [(30, 1), (31, 3)])
def test_op_with_per_step_r_equals_plain_numpy_filter_and_its_pullback_the_adjoint_kernel(seed, k):
    """A volatility-scaled R_t (n,) against `kalman.reference` (the plain-numpy covariance
    filter) for the terms, and against `loglik_vjp` for dR_t, one entry per step."""
    Q, R_t, y, Z, T, a0, P0 = per_step_model(seed, k)
    w = np.random.default_rng(seed).normal(size=len(y))
    q, r = pt.matrix("Q"), pt.vector("R")
    ll = KalmanLoglikOp()(q, r, *shared(y, Z, T, a0, P0))
    value = pt.dot(ll, shared(w)[0])
    f = compile_numba([q, r], [ll, *pytensor.grad(value, [q, r])])
    got, dQ, dR = f(Q, R_t)
    expected = reference.kalman_filter(y, Z, T[None], Q[None], R_t, a0, P0).loglik_t
    assert_close(got, expected, 1e-10, "terms")
    ref = loglik_vjp(y, Z, T[None], Q[None], R_t, a0, P0, weights=w)
    assert dR.shape == R_t.shape
    assert_close(dR, ref.dR, 1e-12, "dR_t")
    assert_close(dQ, ref.dQ[0], 1e-12, "dQ")


def test_volatility_scaled_r_passes_verify_grad_in_sigma_and_gamma():
    """R_t = sigma^2 h_t^gamma: the chain rule through the per-step dR_t, checked by PyTensor's
    finite differences in (log sigma, gamma) and log q."""
    Q0, R0, y, Z, T, a0, P0 = constant_model(32, 2)
    log_h = np.sin(np.arange(len(y)) / 5.0)
    data = shared(y, Z, T, a0, P0)

    def total(log_q, log_sigma, gamma):
        R_t = pt.exp(2 * log_sigma + gamma * log_h)
        return KalmanLoglikOp()(pt.diag(pt.exp(log_q)), R_t, *data).sum()

    verify_grad(total, [np.log(np.diag(Q0)), np.array(0.5 * np.log(R0)), np.array(0.7)],
                rng=np.random.default_rng(43))  # fmt: skip


@pytest.mark.parametrize("half_life", [1.3, 6.0, 40.0])
def test_sampled_index_half_life_passes_verify_grad(half_life):
    """`EwmaLogOp`: log of the exponential average of squared residuals (some missing) as a
    function of its half-life; its forward-mode derivative against PyTensor's finite
    differences of a weighted sum, and its values against pandas' ewm."""
    import pandas as pd

    from tvbeta.estimate.bayes.index_op import EwmaLogOp

    rng = np.random.default_rng(7)
    x = rng.exponential(1e-3, 120)
    x[[10, 11, 57]] = np.nan
    weights = rng.standard_normal(119)
    verify_grad(lambda h: (weights * EwmaLogOp()(h, x)).sum(), [np.array(half_life)],
                rng=np.random.default_rng(44))  # fmt: skip
    h = pt.dscalar("h")
    got = pytensor.function([h], EwmaLogOp()(h, x))(half_life)
    pandas = pd.Series(x).ewm(halflife=half_life, adjust=False, ignore_na=True).mean()
    np.testing.assert_allclose(got, np.log(pandas.to_numpy()[:-1]), rtol=1e-13)


# --- mean-reverting betas: the gradient with respect to T --------------------------------------


def augmented_transition(phi):
    """T(phi) = [[diag(phi), I - diag(phi)], [0, I]] as a PyTensor graph (2k, 2k)."""
    k = phi.type.shape[0]
    top = pt.concatenate([pt.diag(phi), pt.eye(k) - pt.diag(phi)], axis=1)
    bottom = pt.concatenate([pt.zeros((k, k)), pt.eye(k)], axis=1)
    return pt.concatenate([top, bottom], axis=0)


@pytest.mark.parametrize("k", [1, 2, 3])
def test_transition_gradient_passes_verify_grad_in_phi_of_a_mean_reverting_model(k):
    """d/dphi through T(phi) by the Op's pullback, checked by PyTensor's own finite
    differences (`verify_grad`), with missing targets (three NaN rows)."""
    m = mean_reverting_model(60 + k, k)
    phi0 = np.diag(m.T[0])[:k].copy()
    data = shared(m.y, m.Z)
    a0, P0 = shared(m.a0, m.P0)
    op = KalmanLoglikOp(transition_gradient=True)

    def total(phi):
        phi = pt.specify_shape(phi, (k,))
        return op(m.Q[0], m.R, *data, augmented_transition(phi), a0, P0).sum()

    verify_grad(total, [phi0], rng=np.random.default_rng(44))


@pytest.mark.parametrize(("seed", "k"), [(70, 1), (71, 2)])
def test_op_transition_pullback_equals_loglik_vjp_in_native_numba(seed, k):
    """dT (and dQ, the terms) of the Op built with transition_gradient, compiled without any
    object-mode fallback, against the kernel API `loglik_vjp(transition=True)`."""
    m = mean_reverting_model(seed, k)
    w = np.random.default_rng(seed).normal(size=m.n)
    q, t = pt.matrix("Q"), pt.matrix("T")
    ll = KalmanLoglikOp(transition_gradient=True)(q, m.R, *shared(m.y, m.Z), t, m.a0, m.P0)
    value = pt.dot(ll, shared(w)[0])
    f = compile_numba([q, t], [ll, *pytensor.grad(value, [q, t])])
    got, dQ, dT = f(m.Q[0], m.T[0])
    ref = loglik_vjp(*m, weights=w, transition=True)
    assert_close(got, ref.loglik_t, 1e-12, "terms")
    assert_close(dT, ref.dT[0], 1e-12, "dT")
    assert_close(dQ, ref.dQ[0], 1e-12, "dQ")


def test_op_without_transition_gradient_refuses_a_gradient_for_t():
    Q, R, y, Z, _, a0, P0 = constant_model(72, 2)
    t = pt.matrix("T")
    total = KalmanLoglikOp()(Q, R, *shared(y, Z), t, a0, P0).sum()
    with pytest.raises(Exception, match="transition_gradient=True"):
        pytensor.grad(total, t)
    with pytest.raises(ValueError, match="exclude each other"):
        KalmanLoglikOp(random_walk_k=2, transition_gradient=True)


@pytest.mark.parametrize("k", [1, 2])
def test_reversion_op_passes_verify_grad_in_phi_r_and_the_factor_of_q(k):
    """`ReversionLogpOp`'s pullback (dphi, dR, dQ through Q = L L'), against PyTensor's own
    finite differences (`verify_grad`), with missing targets, R_t per step and a burn-in."""
    from tests.kalman.test_collapsed import model

    y, Z, phi, Q, R, a0, P0 = model(80 + k, k, n=60)
    data = shared(y, Z)
    L0 = np.linalg.cholesky(Q)

    def total(phi, log_r, L):
        L = pt.specify_shape(L, (k, k))
        return ReversionLogpOp()(L @ L.T, pt.exp(log_r), *data, phi, a0, P0, 5)

    verify_grad(total, [phi, np.log(R), L0], rng=np.random.default_rng(45))


@pytest.mark.parametrize("burn", [0, 7, 200])
def test_reversion_op_equals_the_two_filters_after_the_burn_in_natively(burn):
    """Value, dQ, dR and dphi of the compiled Op (no object-mode fallback; the means in closed
    form) against `reversion_loglik_vjp` (the second, sequential filter of the long-run means,
    checked against statsmodels in tests/kalman/test_collapsed.py) with the same burn-in;
    burn = 200 leaves no step (80 rows): value and gradients 0."""
    from tests.kalman.test_collapsed import model

    from tvbeta.kalman.arrays import burn_row
    from tvbeta.kalman.collapsed import reversion_loglik_vjp

    y, Z, phi, Q, R, a0, P0 = model(90, 3, n=80)
    q, r, p = pt.matrix("Q"), pt.vector("R"), pt.vector("phi")
    logp = ReversionLogpOp(3)(q, r, *shared(y, Z), p, a0, P0, burn_row(y, burn))
    f = compile_numba([q, r, p], [logp, *pytensor.grad(logp, [q, r, p])])
    got, dQ, dR, dphi = f(Q, R, phi)
    ref = reversion_loglik_vjp(y, Z, phi, Q, R, a0, P0, burn=burn)
    assert_close(got, ref.value, 1e-12, "value")
    assert_close(dQ, ref.dQ, 1e-11, "dQ")
    assert_close(dR, ref.dR, 1e-11, "dR")
    assert_close(dphi, ref.dphi, 1e-11, "dphi")


def test_reversion_op_gives_minus_inf_and_zero_gradients_on_a_failure():
    """A NaN proposal (as a sampler may make) does not raise: the value -inf, gradients 0."""
    from tests.kalman.test_collapsed import model

    y, Z, phi, _, R, a0, P0 = model(91, 2, n=40)
    q = pt.matrix("Q")
    logp = ReversionLogpOp()(q, R, *shared(y, Z), phi, a0, P0, 0)
    f = compile_numba([q], [logp, pytensor.grad(logp, q)])
    value, dQ = f(np.full((2, 2), np.nan))
    assert value == -np.inf and np.all(dQ == 0.0)
