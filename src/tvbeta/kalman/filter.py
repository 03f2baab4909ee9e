"""Kalman filter, log-likelihood (the hot path) and the batched log-likelihood.

All three are loops over `steps.predict` and `steps.update`; they differ only in what they
store. Missing observations (NaN in y) predict and skip the update, adding no likelihood term.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
from numba import njit, prange

from tvbeta.kalman.arrays import StateSpace, check_values, raise_bad_step, state_space
from tvbeta.kalman.steps import at, predict, skip_update, update


class FilterOutput(NamedTuple):
    """Kalman filter output, time-first.

    a_pred : (n, k) predicted states a_{t|t-1};  P_pred : (n, k, k) their covariances.
    a_filt : (n, k) filtered states a_{t|t};    P_filt : (n, k, k) their covariances.
    v : (n,) innovations y_t - z_t' a_{t|t-1} (NaN where y is missing).
    F : (n,) innovation variances z_t' P_{t|t-1} z_t + R_t (NaN where y is missing).
    K : (n, k) gains P_{t|t-1} z_t / F_t (0 where y is missing).
    loglik_t : (n,) one-step log predictive densities log p(y_t | y_{<t}) (0 where missing).
    loglik : float, their sum.
    """

    a_pred: np.ndarray
    P_pred: np.ndarray
    a_filt: np.ndarray
    P_filt: np.ndarray
    v: np.ndarray
    F: np.ndarray
    K: np.ndarray
    loglik_t: np.ndarray
    loglik: float


@njit(cache=True)
def filter_kernel(y, Z, T, Q, R, a0, P0, a_pred, P_pred, a_filt, P_filt, v, F, K, ll):
    """Full filter into preallocated outputs; returns the first step with F <= 0, or -1."""
    n, k = Z.shape
    a_prev = a0.copy()
    P_prev = P0.copy()
    for t in range(n):
        predict(a_prev, P_prev, T[at(t, T.shape[0])], Q[at(t, Q.shape[0])], a_pred[t], P_pred[t])
        if np.isnan(y[t]):
            skip_update(a_pred[t], P_pred[t], a_filt[t], P_filt[t])
            v[t] = np.nan
            F[t] = np.nan
            K[t, :] = 0.0
            ll[t] = 0.0
        else:
            vt, Ft, llt = update(
                a_pred[t], P_pred[t], y[t], Z[t], R[at(t, R.shape[0])], a_filt[t], P_filt[t], K[t]
            )
            if not Ft > 0.0:
                return t
            for i in range(k):
                K[t, i] /= Ft
            v[t] = vt
            F[t] = Ft
            ll[t] = llt
        a_prev = a_filt[t]
        P_prev = P_filt[t]
    return -1


@njit(cache=True)
def loglik_kernel(y, Z, T, Q, R, a0, P0, burn):
    """Sum of log p(y_t | y_{<t}) for t >= burn, storing nothing; returns (loglik, bad_t)."""
    n, k = Z.shape
    a = a0.copy()
    P = P0.copy()
    ap = np.empty(k)
    Pp = np.empty((k, k))
    s = np.empty(k)
    total = 0.0
    for t in range(n):
        predict(a, P, T[at(t, T.shape[0])], Q[at(t, Q.shape[0])], ap, Pp)
        if np.isnan(y[t]):
            a, ap = ap, a
            P, Pp = Pp, P
            continue
        _, Ft, llt = update(ap, Pp, y[t], Z[t], R[at(t, R.shape[0])], a, P, s)
        if not Ft > 0.0:
            return np.nan, t
        if t >= burn:
            total += llt
    return total, -1


@njit(cache=True, parallel=True)
def loglik_batch_kernel(y, Z, T, Q, R, a0, P0, burn, out, bad):
    """loglik_kernel over a leading batch axis; each input's batch axis is 1 or B."""
    B = out.shape[0]
    for i in prange(B):
        b = np.int64(i)  # prange indices are unsigned; mixed with int64 they become float
        out[b], bad[b] = loglik_kernel(
            y[at(b, y.shape[0])],
            Z[at(b, Z.shape[0])],
            T[at(b, T.shape[0])],
            Q[at(b, Q.shape[0])],
            R[at(b, R.shape[0])],
            a0[at(b, a0.shape[0])],
            P0[at(b, P0.shape[0])],
            burn,
        )


def kalman_filter(y, Z, T, Q, R, a0, P0) -> FilterOutput:
    """Run the Kalman filter (DK 4.3) on the model described in `arrays.StateSpace`.

    Shapes: y (n,), Z (n, k), T and Q (1 | n, k, k), R (1 | n,), a0 (k,), P0 (k, k).
    Raises KalmanNumericalError naming the step where F_t <= 0.
    """
    return filter_state_space(state_space(y, Z, T, Q, R, a0, P0))


def filter_state_space(m: StateSpace) -> FilterOutput:
    """`kalman_filter` on already-validated arrays."""
    n, k = m.n, m.k
    a_pred, a_filt, K = np.empty((n, k)), np.empty((n, k)), np.empty((n, k))
    P_pred, P_filt = np.empty((n, k, k)), np.empty((n, k, k))
    v, F, ll = np.empty(n), np.empty(n), np.empty(n)
    bad = filter_kernel(*m, a_pred, P_pred, a_filt, P_filt, v, F, K, ll)
    raise_bad_step(bad)
    return FilterOutput(a_pred, P_pred, a_filt, P_filt, v, F, K, ll, float(ll.sum()))


def kalman_loglik(y, Z, T, Q, R, a0, P0, burn: int = 0) -> float:
    """Total log-likelihood, sum over t >= burn of log p(y_t | y_{<t}) (nats).

    The hot path: no storage. Shapes as in `kalman_filter`.
    """
    m = state_space(y, Z, T, Q, R, a0, P0)
    ll, bad = loglik_kernel(*m, int(burn))
    raise_bad_step(bad)
    return float(ll)


def _batched(name: str, x, ndim: int) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float64)
    if arr.ndim != ndim + 1:
        raise ValueError(
            f"{name} must have a leading batch axis and {ndim} more dims, got {arr.shape}"
        )
    return arr


def loglik_batch(y, Z, T, Q, R, a0, P0, burn: int = 0) -> np.ndarray:
    """Log-likelihoods of B models in one parallel call: many parameter sets and/or series.

    Every argument gets a leading batch axis of length 1 (shared) or B: y (1|B, n),
    Z (1|B, n, k), T and Q (1|B, 1|n, k, k), R (1|B, 1|n), a0 (1|B, k), P0 (1|B, k, k).
    All series share n and k. Returns (B,) totals over t >= burn. Every batch member is
    validated like a single model.
    """
    args = [
        _batched(name, x, nd)
        for name, x, nd in (
            ("y", y, 1), ("Z", Z, 2), ("T", T, 3), ("Q", Q, 3),
            ("R", R, 1), ("a0", a0, 1), ("P0", P0, 2),
        )
    ]
    sizes = {a.shape[0] for a in args} - {1}
    if len(sizes) > 1:
        raise ValueError(f"batch axes disagree: {sorted(sizes)}; each must be 1 or the same B")
    B = sizes.pop() if sizes else 1
    state_space(*(a[0] for a in args))  # shapes: every member has member 0's
    check_values(*args)
    out = np.empty(B)
    bad = np.empty(B, dtype=np.int64)
    loglik_batch_kernel(*args, int(burn), out, bad)
    for b in np.flatnonzero(bad >= 0)[:1]:
        raise_bad_step(int(bad[b]), f" in batch member {b}")
    return out
