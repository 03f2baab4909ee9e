"""Mean-reverting betas by two k-state filters (`tvbeta.kalman.collapsed`; their sum by one):
the terms equal statsmodels' filter of the augmented state [beta; mu] (one draw, or a batch of
draws), the gradient equals differences of statsmodels' log-likelihood, hard inputs keep their
digits, and bad phi is refused. The sum after a burn-in by one filter with the long-run means in
closed form (`reversion_loglik_grad`) against the same references."""

from __future__ import annotations

import numpy as np
import pytest

from tests.kalman.models import mean_reverting_transition, random_spd
from tvbeta.estimate.statsmodels_twin import statsmodels_filter
from tvbeta.kalman import KalmanInputError, KalmanNumericalError
from tvbeta.kalman.arrays import burn_row
from tvbeta.kalman.collapsed import (
    reversion_loglik_grad,
    reversion_loglik_terms,
    reversion_loglik_vjp,
)
from tvbeta.kalman.reference import loglik_decimal


def model(seed: int, k: int, n: int = 150, per_step_r: bool = True):
    """(y, Z, phi, Q, R, a0, P0) drawn from the model itself: phi in 0.7..0.99, a proper prior
    N(a0, P0) on both beta_{-1} and mu, R_t per step (or constant), three NaN targets."""
    rng = np.random.default_rng(seed)
    phi = rng.uniform(0.7, 0.99, k)
    Q = random_spd(rng, k, 0.05)
    Z = rng.normal(size=(n, k))
    R = rng.uniform(0.5, 1.5, n if per_step_r else 1)
    a0, P0 = rng.normal(size=k), random_spd(rng, k, 1.0)
    chol = np.linalg.cholesky(P0)
    beta, mu = a0 + chol @ rng.normal(size=k), a0 + chol @ rng.normal(size=k)
    y = np.empty(n)
    for t in range(n):
        beta = mu + phi * (beta - mu) + np.linalg.cholesky(Q) @ rng.normal(size=k)
        y[t] = Z[t] @ beta + np.sqrt(R[min(t, R.size - 1)]) * rng.normal()
    y[[4, n // 3, n // 2]] = np.nan
    return y, Z, phi, Q, R, a0, P0


def augmented(y, Z, phi, Q, R, a0, P0):
    """The same model as the 2k-state arrays of the augmented filter, written out here."""
    k = len(phi)
    QA, PA = np.zeros((2 * k, 2 * k)), np.zeros((2 * k, 2 * k))
    QA[:k, :k] = Q
    PA[:k, :k] = PA[k:, k:] = P0
    return (y, np.hstack([Z, np.zeros_like(Z)]), mean_reverting_transition(phi)[None],
            QA[None], R, np.r_[a0, a0], PA)  # fmt: skip


def assert_central_differences(g, value, phi, Q, R, h: float = 1e-6) -> None:
    """g's dphi, dR (constant R) and dQ (symmetric perturbations E_ij + E_ji) against central
    differences of value(phi=, Q=, R=) with step h."""
    k = len(phi)
    for i in range(k):
        e = np.eye(k)[i] * h
        fd = (value(phi=phi + e) - value(phi=phi - e)) / (2 * h)
        assert g.dphi[i] == pytest.approx(fd, rel=1e-5, abs=1e-6), f"dphi[{i}]"
        for j in range(i, k):
            E = np.zeros((k, k))
            E[i, j] = E[j, i] = h
            fd = (value(Q=Q + E) - value(Q=Q - E)) / (2 * h)
            got = g.dQ[i, j] * (1 if i == j else 2)  # d/dh of sum Qbar dQ with dQ_ij = dQ_ji
            assert got == pytest.approx(fd, rel=1e-5, abs=1e-6), f"dQ[{i},{j}]"
    fd = (value(R=R + h) - value(R=R - h)) / (2 * h)
    assert g.dR[0] == pytest.approx(fd, rel=1e-5, abs=1e-6)


@pytest.mark.parametrize(("seed", "k"), [(0, 1), (1, 2), (2, 3), (3, 5)])
def test_terms_equal_statsmodels_filter_of_the_augmented_model(seed, k):
    m = model(seed, k)
    got = reversion_loglik_vjp(*m).loglik_t
    ref = statsmodels_filter(*augmented(*m)).loglik_t
    np.testing.assert_allclose(got, ref, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize(("seed", "k"), [(10, 1), (11, 2), (12, 3)])
def test_gradient_equals_central_differences_of_statsmodels_loglik(seed, k):
    """dphi, dR (constant R) and dQ (symmetric perturbations E_ij + E_ji) of the weighted sum,
    against central differences (step 1e-6) of statsmodels' weighted terms."""
    y, Z, phi, Q, R, a0, P0 = model(seed, k, per_step_r=False)
    w = np.random.default_rng(seed).uniform(0.5, 1.5, len(y))
    g = reversion_loglik_vjp(y, Z, phi, Q, R, a0, P0, weights=w)

    def value(phi=phi, Q=Q, R=R) -> float:
        return float(w @ statsmodels_filter(*augmented(y, Z, phi, Q, R, a0, P0)).loglik_t)

    assert_central_differences(g, value, phi, Q, R)


@pytest.mark.parametrize("p0", [1e5, 1e6, 1e7, 1e9])
@pytest.mark.parametrize("total", [reversion_loglik_vjp, reversion_loglik_grad])
def test_price_levels_with_a_diffuse_prior_keep_their_digits(total, p0):
    """Regressors at price levels (~4000) with P0 = p0 I on beta and mu: the total against the
    60-digit augmented filter (`loglik_decimal`), within 1e-9 nats as the other kernels', by
    the two filters and by the closed form of the means (which subtracts the fitted part of
    sum u_t^2 / F_t, where the sequential filter of the means adds only: seen 2e-10 at
    p0 = 1e9)."""
    rng = np.random.default_rng(5)
    n = 30
    x = 4000.0 + np.cumsum(rng.normal(0.0, 20.0, n))
    Z = np.column_stack([np.ones(n), x])
    y = 0.5 + 0.1 * x + rng.normal(0.0, 0.01, n)
    m = (y, Z, np.array([0.999, 0.99]), np.diag([1e-10, 1e-12]), np.array([1e-4]), np.zeros(2),
         p0 * np.eye(2))  # fmt: skip
    exact = loglik_decimal(*augmented(*m))
    assert total(*m).value == pytest.approx(exact, rel=0, abs=1e-9)


@pytest.mark.parametrize("phi", [[0.5, 0.0], [0.5, 1.2], [0.5, np.nan], [0.5]])
def test_phi_outside_zero_one_or_of_the_wrong_length_is_refused(phi):
    y, Z, _, Q, R, a0, P0 = model(20, 2)
    with pytest.raises(KalmanInputError, match=r"phi must be 2 persistences in \(0, 1\]"):
        reversion_loglik_vjp(y, Z, phi, Q, R, a0, P0)


def test_terms_of_a_batch_of_draws_equal_statsmodels_filter_of_each_augmented_draw():
    """Three draws of (phi, Q, R_t) on one series (the posterior's pointwise terms)."""
    draws = [model(30 + b, 3) for b in range(3)]
    y, Z, _, _, _, a0, P0 = draws[0]
    phi, Q, R = (np.stack([d[i] for d in draws]) for i in (2, 3, 4))
    got = reversion_loglik_terms(y, Z, phi, Q, R, a0, P0)
    for b in range(3):
        ref = statsmodels_filter(*augmented(y, Z, phi[b], Q[b], R[b], a0, P0)).loglik_t
        np.testing.assert_allclose(got[b], ref, rtol=1e-9, atol=1e-12)


def test_a_batch_draw_with_a_bad_covariance_is_named():
    y, Z, phi, Q, R, a0, P0 = model(40, 2)
    Qs = np.stack([Q, -Q])
    with pytest.raises(KalmanInputError, match="in batch member 1"):
        reversion_loglik_terms(y, Z, np.stack([phi, phi]), Qs, R[None], a0, P0)
    with pytest.raises(KalmanInputError, match=r"phi must be \(B, k\) persistences"):
        reversion_loglik_terms(y, Z, np.stack([phi, phi + 0.5]), np.stack([Q, Q]), R[None], a0,
                               P0)  # fmt: skip


@pytest.mark.parametrize(("seed", "k", "burn"), [(50, 1, 0), (51, 2, 4), (52, 3, 0), (53, 5, 9)])
def test_sum_after_the_burn_in_equals_statsmodels_filter_of_the_augmented_model(seed, k, burn):
    """The closed form's value: statsmodels' terms of the 2k-state filter summed from the row
    after ``burn`` observed steps (R_t per step, three missing targets)."""
    m = model(seed, k)
    ref = statsmodels_filter(*augmented(*m)).loglik_t[burn_row(m[0], burn):].sum()
    assert reversion_loglik_grad(*m, burn=burn).value == pytest.approx(ref, rel=1e-10)


@pytest.mark.parametrize(("seed", "k", "burn"), [(60, 1, 3), (61, 2, 0), (62, 3, 5)])
def test_sum_gradient_equals_central_differences_of_statsmodels_loglik(seed, k, burn):
    """dphi, dR (constant R) and dQ (symmetric perturbations E_ij + E_ji) of the sum after the
    burn-in, against central differences (step 1e-6) of statsmodels' summed terms."""
    y, Z, phi, Q, R, a0, P0 = model(seed, k, per_step_r=False)
    g = reversion_loglik_grad(y, Z, phi, Q, R, a0, P0, burn=burn)
    start = burn_row(y, burn)

    def value(phi=phi, Q=Q, R=R) -> float:
        return float(statsmodels_filter(*augmented(y, Z, phi, Q, R, a0, P0)).loglik_t[start:].sum())

    assert_central_differences(g, value, phi, Q, R)


def test_sum_with_a_known_long_run_mean_equals_statsmodels():
    """P0 singular (the intercept's prior variance 0: its beta_{-1} and mu known): the closed
    form's factor of P0 has a zero column, and the value is still statsmodels'."""
    y, Z, phi, Q, R, a0, P0 = model(70, 3)
    P0[0, :] = P0[:, 0] = 0.0
    ref = statsmodels_filter(*augmented(y, Z, phi, Q, R, a0, P0)).loglik_t.sum()
    assert reversion_loglik_grad(y, Z, phi, Q, R, a0, P0).value == pytest.approx(ref, rel=1e-10)


def test_sum_of_no_step_is_zero_with_zero_gradients():
    """A burn-in of every observation leaves nothing to sum."""
    y, Z, phi, Q, R, a0, P0 = model(71, 2, n=20)
    g = reversion_loglik_grad(y, Z, phi, Q, R, a0, P0, burn=50)
    assert g.value == 0.0 and g.loglik_t is None
    assert not g.dQ.any() and not g.dR.any() and not g.dphi.any()


def test_sum_refuses_bad_phi_and_names_a_failed_step():
    y, Z, phi, Q, _, a0, P0 = model(72, 2)
    with pytest.raises(KalmanInputError, match=r"phi must be 2 persistences in \(0, 1\]"):
        reversion_loglik_grad(y, Z, np.array([0.5, 1.5]), Q, np.ones(1), a0, P0)
    Z[:] = 0.0  # with R = 0 nothing gives y_t a variance: F_t = 0 at the first step
    with pytest.raises(KalmanNumericalError, match="F_t = z_t'P z_t \\+ R_t = 0 at step 0"):
        reversion_loglik_grad(y, Z, phi, Q, np.zeros(1), a0, P0)

