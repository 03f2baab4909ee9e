"""The batched (pooled) likelihood Op: every fund's terms and gradient in one numba call.

References: the separate funds' `KalmanLoglikOp` terms, the plain-numpy covariance filter
(`kalman.reference`; for mean-reverting betas of the 2k-state augmented model written out in
tests/kalman/test_collapsed.py), central finite differences and `verify_grad`.
"""

from __future__ import annotations

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest
from pytensor.gradient import verify_grad
from tests.estimate.bayes.test_op import compile_numba, shared
from tests.kalman.models import assert_close, random_model
from tests.kalman.test_collapsed import augmented, model

from tvbeta.estimate.bayes.op import KalmanLoglikOp, PooledLoglikOp, PooledVJPOp
from tvbeta.kalman import reference

LENGTHS = (90, 60, 75)  # funds of different lengths, padded with NaN at the end to n = 90


def pooled_data(k: int, seed: int = 0, lengths=LENGTHS):
    """J random-walk funds (T = I) with missing targets, stacked and padded at the end.

    Returns (q (J, k) drift sds, R (J, 1), y (J, n), Z (J, n, k), a0 (J, k), P0 (J, k, k)).
    """
    n, J = max(lengths), len(lengths)
    y, Z = np.full((J, n), np.nan), np.zeros((J, n, k))
    R, a0, P0 = np.empty((J, 1)), np.empty((J, k)), np.empty((J, k, k))
    for j, length in enumerate(lengths):
        m = random_model(seed + j, k, length, time_varying=False, n_missing=3)
        y[j, :length], Z[j, :length] = m.y, m.Z
        R[j], a0[j], P0[j] = m.R, m.a0, m.P0
    q = np.random.default_rng(seed).uniform(0.05, 0.3, size=(J, k))
    return q, R, y, Z, a0, P0


def diag_q(q):
    """Q (J, k, k) = diag(q_j^2) of drift sds q (J, k), numpy or symbolic."""
    k = q.shape[-1]
    return (q**2)[:, :, None] * (pt.eye(k) if isinstance(q, pt.Variable) else np.eye(k))[None]


@pytest.mark.parametrize("k", [1, 3])
def test_pooled_terms_equal_separate_funds_and_the_plain_numpy_filter(k):
    q, R, y, Z, a0, P0 = pooled_data(k)
    Q, T = diag_q(q), np.eye(k)
    for static in (0, k):  # the copies with k read at run time and with k a constant
        got = compile_numba([], PooledLoglikOp(static)(Q, R, *shared(y, Z, T, a0, P0)))()
        for j, length in enumerate(LENGTHS):
            alone = compile_numba([], KalmanLoglikOp(static)(Q[j], R[j], *shared(
                y[j], Z[j], T, a0[j], P0[j])))()  # fmt: skip
            assert_close(got[j], alone, 1e-12, f"fund {j} vs KalmanLoglikOp")
            ref = reference.kalman_filter(y[j, :length], Z[j, :length], T[None], Q[j][None],
                                          R[j], a0[j], P0[j]).loglik_t  # fmt: skip
            assert_close(got[j, :length], ref, 1e-10, f"fund {j} vs reference")
            assert np.all(got[j, length:] == 0.0)  # the padding adds nothing
        total = sum(reference.kalman_filter(y[j, :m], Z[j, :m], T[None], Q[j][None], R[j],
                                            a0[j], P0[j]).loglik_t.sum()
                    for j, m in enumerate(LENGTHS))  # fmt: skip
        assert_close(got.sum(), total, 1e-10, "sum over funds")


def test_pooled_gradient_matches_central_finite_differences():
    """d/dtheta of sum_jt w_jt ll_jt, theta = (log q (J, k), log R (J,)), random weights."""
    k = 2
    q, R, y, Z, a0, P0 = pooled_data(k, seed=5)
    J = len(LENGTHS)
    w = np.random.default_rng(1).normal(size=y.shape)
    theta0 = np.r_[np.log(q).ravel(), np.log(R).ravel()]
    th = pt.vector("theta")
    log_q, log_r = th[: J * k].reshape((J, k)), th[J * k :]
    ll = PooledLoglikOp(k)(diag_q(pt.exp(log_q)), pt.exp(log_r),
                                     *shared(y, Z, np.eye(k), a0, P0))  # fmt: skip
    assert_gradient_matches_central_differences(th, (ll * shared(w)[0]).sum(), theta0, 1e-5)


def assert_gradient_matches_central_differences(th, value, theta0: np.ndarray, h: float):
    """The compiled gradient of ``value`` (a function of the vector ``th``) at theta0 against
    central differences of step h, to 1e-6 relative."""
    f = compile_numba([th], value)
    g = compile_numba([th], pytensor.grad(value, th))(theta0)
    fd = np.array([(f(theta0 + h * e) - f(theta0 - h * e)) / (2 * h)
                   for e in np.eye(len(theta0))])  # fmt: skip
    assert_close(g, fd, 1e-6, "gradient vs central differences")


def test_pooled_op_passes_verify_grad_in_log_space():
    k = 2
    q, R, y, Z, a0, P0 = pooled_data(k, seed=9)
    data = shared(y, Z, np.eye(k), a0, P0)

    def total(log_q, log_r):
        return PooledLoglikOp(k)(diag_q(pt.exp(log_q)), pt.exp(log_r), *data).sum()

    verify_grad(total, [np.log(q), np.log(R[:, 0])], rng=np.random.default_rng(42))


def test_a_failing_fund_gives_minus_inf_terms_and_zero_gradients_for_that_fund_only():
    k = 1
    q, R, y, Z, a0, P0 = pooled_data(k, seed=3)
    R_bad = R.copy()
    R_bad[1] = -1e6  # F_t < 0: no density
    Qv, Rv = pt.tensor3("Q"), pt.matrix("R")
    ll = PooledLoglikOp(k)(Qv, Rv, *shared(y, Z, np.eye(k), a0, P0))
    f = compile_numba([Qv, Rv], [ll, *pytensor.grad(ll.sum(), [Qv, Rv])])
    terms, dQ, dR = f(diag_q(q), R_bad)
    assert np.all(terms[1] == -np.inf) and np.all(np.isfinite(terms[[0, 2]]))
    assert np.all(dQ[1] == 0.0) and dR[1, 0] == 0.0 and np.all(dQ[[0, 2]] != 0.0)


def test_pooled_ops_refuse_inputs_of_the_wrong_rank():
    with pytest.raises(ValueError, match="Q must have 3 dimension"):
        PooledLoglikOp()(np.eye(2), np.ones(3), np.ones((3, 5)), np.ones((3, 5, 2)), np.eye(2),
                         np.zeros((3, 2)), np.ones((3, 2, 2)))  # fmt: skip
    with pytest.raises(ValueError, match="w must be a matrix"):
        data = [np.ones((3, 5)), np.ones((3, 5, 2)), np.eye(2), np.ones((3, 1)), np.ones((3, 2, 2))]
        PooledVJPOp()(np.ones(5), np.ones((3, 5)), np.ones((3, 5, 4)), *data)


def reversion_data(k: int, seed: int = 0, lengths=LENGTHS, per_step_r: bool = False):
    """J mean-reverting funds (tests/kalman/test_collapsed.py's model: a full Q, three NaN
    targets) of different lengths, stacked and padded at the end to n = max(lengths).

    Returns the funds' own (unpadded) arrays and the stacked (Q (J, k, k), R (J, 1 | n),
    y (J, n), Z (J, n, k), phi (J, k), a0 (J, k), P0 (J, k, k)).
    """
    funds = [model(seed + j, k, n=length, per_step_r=per_step_r)
             for j, length in enumerate(lengths)]  # fmt: skip
    n, J = max(lengths), len(lengths)
    y, Z, R = np.full((J, n), np.nan), np.zeros((J, n, k)), np.ones((J, n if per_step_r else 1))
    for j, (yj, Zj, _, _, Rj, _, _) in enumerate(funds):
        y[j, : len(yj)], Z[j, : len(yj)], R[j, : len(Rj)] = yj, Zj, Rj
    phi, Q, a0, P0 = (np.array([f[i] for f in funds]) for i in (2, 3, 5, 6))
    return funds, (Q, R, y, Z, phi, a0, P0)


@pytest.mark.parametrize(("k", "per_step_r"), [(1, False), (3, True)])
def test_pooled_reversion_terms_equal_the_augmented_filter_of_each_fund(k, per_step_r):
    """Mean-reverting betas: fund j's row equals the plain-numpy filter of its 2k-state
    [beta; mu] model (1e-9 relative on the sum), the padding adds nothing, both copies
    (k read at run time, k a constant)."""
    funds, (Q, R, y, Z, phi, a0, P0) = reversion_data(k, seed=20 * k, per_step_r=per_step_r)
    refs = [reference.kalman_filter(*augmented(*f)).loglik_t for f in funds]
    for static in (0, k):
        got = compile_numba([], PooledLoglikOp(static, reversion=True)(
            Q, R, *shared(y, Z, phi, a0, P0)))()  # fmt: skip
        for j, (ref, length) in enumerate(zip(refs, LENGTHS, strict=True)):
            assert_close(got[j, :length], ref, 1e-10, f"fund {j} vs the augmented filter")
            assert np.all(got[j, length:] == 0.0)
        assert_close(got.sum(), sum(r.sum() for r in refs), 1e-9, "sum over funds")


def reversion_total(k: int, data, w=None):
    """sum_jt w_jt ll_jt as a function of (phi (J, k), log R (J, 1 | n), L (J, k, k)), Q_j =
    L_j L_j' (w: all ones by default)."""
    y, Z, a0, P0 = (data[i] for i in (2, 3, 5, 6))
    inputs = shared(y, Z, a0, P0)
    op = PooledLoglikOp(k, reversion=True)

    def total(phi, log_r, L):
        L = pt.specify_shape(L, (len(LENGTHS), k, k))
        ll = op(L @ L.transpose(0, 2, 1), pt.exp(log_r), *inputs[:2], phi, *inputs[2:])
        return (ll if w is None else ll * shared(w)[0]).sum()

    return total


def test_pooled_reversion_op_passes_verify_grad_in_phi_r_and_the_factor_of_q():
    """dphi (J, k), dR (J, n) per step and dQ (through Q_j = L_j L_j') against PyTensor's own
    finite differences, funds of different lengths."""
    k = 2
    _, data = reversion_data(k, seed=30, per_step_r=True)
    Q, R, phi = data[0], data[1], data[4]
    verify_grad(reversion_total(k, data), [phi, np.log(R), np.linalg.cholesky(Q)],
                rng=np.random.default_rng(46))  # fmt: skip


def test_pooled_reversion_gradient_matches_central_finite_differences():
    """d/dtheta of sum_jt w_jt ll_jt, theta = (phi, log R, L), random weights, native numba."""
    k = 2
    _, data = reversion_data(k, seed=40)
    Q, R, phi = data[0], data[1], data[4]
    w = np.random.default_rng(2).normal(size=data[2].shape)
    parts = [phi, np.log(R), np.linalg.cholesky(Q)]
    ends = np.cumsum([p.size for p in parts])
    th = pt.vector("theta")
    pieces = [th[end - p.size : end].reshape(p.shape) for p, end in zip(parts, ends, strict=True)]
    theta0 = np.concatenate([p.ravel() for p in parts])
    assert_gradient_matches_central_differences(th, reversion_total(k, data, w)(*pieces), theta0,
                                                1e-6)  # fmt: skip


def test_a_failing_mean_reverting_fund_gives_minus_inf_terms_and_zero_gradients():
    k = 2
    _, (Q, R, y, Z, phi, a0, P0) = reversion_data(k, seed=50)
    Q_bad = Q.copy()
    Q_bad[0] = np.nan  # a NaN proposal, as a sampler may make
    Qv, Rv, pv = pt.tensor3("Q"), pt.matrix("R"), pt.matrix("phi")
    ll = PooledLoglikOp(k, reversion=True)(Qv, Rv, *shared(y, Z), pv, *shared(a0, P0))
    f = compile_numba([Qv, Rv, pv], [ll, *pytensor.grad(ll.sum(), [Qv, Rv, pv])])
    terms, dQ, dR, dphi = f(Q_bad, R, phi)
    assert np.all(terms[0] == -np.inf) and np.all(np.isfinite(terms[1:]))
    assert np.all(dQ[0] == 0.0) and dR[0, 0] == 0.0 and np.all(dphi[0] == 0.0)
    assert np.all(dphi[1:] != 0.0)
