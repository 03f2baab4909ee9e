"""Fixed-interval state smoother and simulation smoother.

The smoother is the Rauch-Tung-Striebel recursion (Durbin & Koopman 2012, section 4.4.5) over
the filter's predicted and filtered moments, with a Cholesky solve instead of an inverse; see
`steps.rts_step` for why it is preferred to the inverse-free r/N recursion here.

The simulation smoother draws whole state paths from p(alpha_{0:n-1} | y) by the mean-correction
method of Durbin & Koopman (2002): draw (alpha+, y+) from the model, then
alpha~ = alpha+ + E[alpha | y - y+] where the smoothed mean is taken with a zero initial mean.
Because the gains do not depend on the data, each draw costs only a means-only filter and
smoother pass over the stored gains.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit

from tvbeta.kalman.arrays import KalmanNumericalError, StateSpace, burn_row, state_space
from tvbeta.kalman.filter import FilterOutput, filter_state_space
from tvbeta.kalman.steps import at, rts_step


class SmootherOutput(NamedTuple):
    """Filter output plus smoothed states a_{t|n} : (n, k) and covariances P_{t|n} : (n, k, k)."""

    filtered: FilterOutput
    a_smooth: np.ndarray
    P_smooth: np.ndarray


@njit(cache=True, fastmath=False)
def smoother_kernel(y, T, a_pred, P_pred, a_filt, P_filt, a_smooth, P_smooth):
    """Run the backward RTS sweep into a_smooth (n, k), P_smooth (n, k, k).

    Returns the first step whose next predicted covariance is singular, or -1. The sweep ends
    at the first observed y; rows before it are not part of the model (NaN, as in the filter).
    """
    n, k = a_pred.shape
    first = burn_row(y, 0)
    a_smooth[:first] = np.nan
    P_smooth[:first] = np.nan
    if first == n:
        return -1
    a_smooth[n - 1] = a_filt[n - 1]
    P_smooth[n - 1] = P_filt[n - 1]
    J, tmp = np.empty((k, k)), np.empty((k, k))
    for t in range(n - 2, first - 1, -1):
        ok = rts_step(a_filt[t], P_filt[t], a_pred[t + 1], P_pred[t + 1], a_smooth[t + 1],
                      P_smooth[t + 1], T[at(t + 1, T.shape[0])], a_smooth[t], P_smooth[t], J, tmp)
        if not ok:
            return t + 1
    return -1


@njit(cache=True, fastmath=False)
def _smoothed_mean_of(y, Z, T, a0, P_pred, F, K, out):
    """Smoothed means for data y given the (data-independent) gains of a filter run.

    A means-only pass: a_{t|t-1} = T_t a_{t-1|t-1}, a_{t|t} = a_{t|t-1} + K_t v_t, then
    r_{t-1} = z v/F + (I - K z')' T_{t+1}' r_t and a_{t|n} = a_{t|t-1} + P_{t|t-1} r_{t-1}.
    """
    n, k = Z.shape
    v = np.empty(n)
    a_prev = a0.copy()
    first = burn_row(y, 0)
    out[:first] = np.nan
    for t in range(first, n):
        Tt = T[at(t, T.shape[0])]
        for i in range(k):
            acc = 0.0
            for j in range(k):
                acc += Tt[i, j] * a_prev[j]
            out[t, i] = acc
        if np.isnan(y[t]):
            v[t] = np.nan
        else:
            vt = y[t]
            for i in range(k):
                vt -= Z[t, i] * out[t, i]
            v[t] = vt
        a_prev = out[t].copy()
        if not np.isnan(y[t]):
            for i in range(k):
                a_prev[i] += K[t, i] * v[t]
    r = np.zeros(k)
    u = np.empty(k)
    for t in range(n - 1, first - 1, -1):
        if t + 1 < n:
            Tn = T[at(t + 1, T.shape[0])]
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    acc += Tn[j, i] * r[j]
                u[i] = acc
        else:
            u[:] = 0.0
        if np.isnan(y[t]):
            r[:] = u
        else:
            ku = 0.0
            for i in range(k):
                ku += K[t, i] * u[i]
            vf = v[t] / F[t]
            for i in range(k):
                r[i] = Z[t, i] * (vf - ku) + u[i]
        for i in range(k):
            acc = 0.0
            for j in range(k):
                acc += P_pred[t, i, j] * r[j]
            out[t, i] += acc


@njit(cache=True, fastmath=False)
def simulation_smoother_kernel(
    y, Z, T, R, a0, sqrtP0, sqrtQ, P_pred, F, K, e0, e, u, draws
):
    """Draw state paths by mean correction (DK 2002) into draws (D, n, k), normals in e0, e, u.

    The paths start at the first observed y (rows before it: NaN, not part of the model).
    """
    D = draws.shape[0]
    n, k = Z.shape
    alpha = np.empty(k)
    nxt = np.empty(k)
    y_star = np.full(n, np.nan)
    zero = np.zeros(k)
    corr = np.empty((n, k))
    first = burn_row(y, 0)
    for d in range(D):
        draws[d, :first] = np.nan
        for i in range(k):
            acc = a0[i]
            for j in range(k):
                acc += sqrtP0[i, j] * e0[d, j]
            alpha[i] = acc
        for t in range(first, n):
            Tt = T[at(t, T.shape[0])]
            Lq = sqrtQ[at(t, sqrtQ.shape[0])]
            for i in range(k):
                acc = 0.0
                for j in range(k):
                    acc += Tt[i, j] * alpha[j] + Lq[i, j] * e[d, t, j]
                nxt[i] = acc
            alpha[:] = nxt
            draws[d, t] = alpha
            if np.isnan(y[t]):
                y_star[t] = np.nan
            else:
                y_plus = np.sqrt(R[at(t, R.shape[0])]) * u[d, t]
                for i in range(k):
                    y_plus += Z[t, i] * alpha[i]
                y_star[t] = y[t] - y_plus
        _smoothed_mean_of(y_star, Z, T, zero, P_pred, F, K, corr)
        for t in range(first, n):
            for i in range(k):
                draws[d, t, i] += corr[t, i]


def kalman_smoother(y, Z, T, Q, R, a0, P0) -> SmootherOutput:
    """Filter, then smooth: a_{t|n} = E[alpha_t | y] and P_{t|n} = Var[alpha_t | y].

    Shapes as in `kalman_filter`; outputs (n, k) and (n, k, k), NaN on the rows before the
    first observed y (not part of the model).
    """
    return smooth_state_space(state_space(y, Z, T, Q, R, a0, P0))


def smooth_state_space(m: StateSpace, filtered: FilterOutput | None = None) -> SmootherOutput:
    """`kalman_smoother` on validated arrays, reusing a filter run when given."""
    f = filter_state_space(m) if filtered is None else filtered
    a_s, P_s = np.empty_like(f.a_pred), np.empty_like(f.P_pred)
    bad = smoother_kernel(m.y, m.T, f.a_pred, f.P_pred, f.a_filt, f.P_filt, a_s, P_s)
    if bad >= 0:
        raise KalmanNumericalError(
            f"predicted state covariance P_(t|t-1) is singular at step {bad}: the smoother "
            "needs positive variances there; give P0 or Q positive diagonals"
        )
    return SmootherOutput(f, a_s, P_s)


def psd_sqrt(A: np.ndarray) -> np.ndarray:
    """Return L with L L' = A (eigendecomposition: zero variances allowed, rounding clipped).

    Parameters
    ----------
    A : np.ndarray, (..., k, k)
        Symmetric positive semi-definite matrices.

    Returns
    -------
    np.ndarray, (..., k, k)
        L with L @ L.swapaxes(-1, -2) equal to A up to rounding.

    Raises
    ------
    ValueError
        When an eigenvalue is below -1e-10 times the largest in magnitude (A not PSD).
    """
    w, U = np.linalg.eigh(A)
    scale = np.maximum(np.abs(w).max(axis=-1, keepdims=True), 1e-300)
    if np.any(w < -1e-10 * scale):
        raise ValueError("covariance is not positive semi-definite")
    return U * np.sqrt(np.clip(w, 0.0, None))[..., None, :]


def simulation_smoother(
    y, Z, T, Q, R, a0, P0, n_draws: int, seed: int | np.random.Generator
) -> np.ndarray:
    """Draw whole state paths from p(alpha_0, ..., alpha_{n-1} | y): (n_draws, n, k).

    Durbin & Koopman (2002) mean-correction simulation smoother, seeded by `seed` (an int or a
    numpy Generator); shapes as in `kalman_filter`; NaN on the rows before the first observed y.
    """
    m = state_space(y, Z, T, Q, R, a0, P0)
    f = filter_state_space(m)
    rng = np.random.default_rng(seed)
    e0 = rng.standard_normal((n_draws, m.k))
    e = rng.standard_normal((n_draws, m.n, m.k))
    u = rng.standard_normal((n_draws, m.n))
    draws = np.empty((n_draws, m.n, m.k))
    simulation_smoother_kernel(
        m.y, m.Z, m.T, m.R, m.a0, psd_sqrt(m.P0), psd_sqrt(m.Q),
        f.P_pred, f.F, f.K, e0, e, u, draws,
    )
    return draws
