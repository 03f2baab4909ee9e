"""Plain-numpy reference of the kernels' steps, written for clarity, not speed.

The tests check the compiled kernels against these functions (and both against statsmodels and
a dense joint-Gaussian solve). Shapes as in `tvbeta.kalman.kalman_filter`.
"""

from __future__ import annotations

import numpy as np

from tvbeta.kalman.arrays import burn_row
from tvbeta.kalman.filter import FilterOutput
from tvbeta.kalman.smoother import SmootherOutput


def predict(a: np.ndarray, P: np.ndarray, T: np.ndarray, Q: np.ndarray):
    """a_{t|t-1} = T a_{t-1|t-1}; P_{t|t-1} = T P T' + Q."""
    return T @ a, T @ P @ T.T + Q


def update(a: np.ndarray, P: np.ndarray, y: float, z: np.ndarray, r: float):
    """Returns (a_{t|t}, P_{t|t}, v, F, K, loglik_t) for one scalar observation."""
    v = y - z @ a
    F = z @ P @ z + r
    K = P @ z / F
    a_f = a + K * v
    P_f = (np.eye(len(a)) - np.outer(K, z)) @ P
    ll = -0.5 * (np.log(2 * np.pi) + np.log(F) + v**2 / F)
    return a_f, 0.5 * (P_f + P_f.T), v, F, K, ll


def _row(x: np.ndarray, t: int) -> np.ndarray:
    return x[t] if x.shape[0] > 1 else x[0]


def kalman_filter(y, Z, T, Q, R, a0, P0) -> FilterOutput:
    """Rows before the first observed y are not part of the model: NaN moments, K = 0."""
    n, k = Z.shape
    a, P = np.asarray(a0, float), np.asarray(P0, float)
    out = {name: [] for name in FilterOutput._fields[:-1]}
    first = burn_row(np.asarray(y, float), 0)
    nan_a, nan_P = np.full(k, np.nan), np.full((k, k), np.nan)
    for _ in range(first):
        leading = (nan_a, nan_P, nan_a, nan_P, np.nan, np.nan, np.zeros(k), 0.0)
        for name, val in zip(out, leading, strict=True):
            out[name].append(val)
    for t in range(first, n):
        ap, Pp = predict(a, P, _row(T, t), _row(Q, t))
        if np.isnan(y[t]):
            a, P, v, F, K, ll = ap, Pp, np.nan, np.nan, np.zeros(k), 0.0
        else:
            a, P, v, F, K, ll = update(ap, Pp, y[t], Z[t], _row(R, t))
        for name, val in zip(out, (ap, Pp, a, P, v, F, K, ll), strict=True):
            out[name].append(val)
    arrays = {name: np.array(vals) for name, vals in out.items()}
    return FilterOutput(**arrays, loglik=float(arrays["loglik_t"].sum()))


def rts_smoother(y, Z, T, Q, R, a0, P0) -> SmootherOutput:
    """Rauch-Tung-Striebel: J_t = P_{t|t} T_{t+1}' P_{t+1|t}^{-1} (by a solve)."""
    f = kalman_filter(y, Z, T, Q, R, a0, P0)
    n = Z.shape[0]
    a_s, P_s = f.a_filt.copy(), f.P_filt.copy()
    for t in range(n - 2, burn_row(np.asarray(y, float), 0) - 1, -1):
        Tn = _row(T, t + 1)
        J = np.linalg.solve(f.P_pred[t + 1], Tn @ f.P_filt[t]).T
        a_s[t] = f.a_filt[t] + J @ (a_s[t + 1] - f.a_pred[t + 1])
        P_s[t] = f.P_filt[t] + J @ (P_s[t + 1] - f.P_pred[t + 1]) @ J.T
    return SmootherOutput(f, a_s, P_s)
